//! Round trips: our writer's output read back by our reader gives the same
//! message; real-world files rewritten by us keep their content; a spec with
//! `tnef: true` survives build -> parse -> build byte for byte.

mod tnef_common;

use postwire_core::tnef::{self, PropValue, TnefAttachment, TnefMessage, mapi::find};
use postwire_core::{BuildOptions, build, parse, spec::from_json};
use tnef_common::{HTML, TEXT, sample};

fn round(m: &TnefMessage) -> TnefMessage {
    tnef::decode(&tnef::encode(m).unwrap_or_else(|e| panic!("encode: {e}")))
        .unwrap_or_else(|e| panic!("decode: {e}"))
}

#[test]
fn a_written_message_reads_back_field_for_field() {
    let m = sample(100 * 1024);
    let back = round(&m);
    assert_eq!(back.legacy_key, 0x1234);
    assert_eq!(back.version, Some(0x0001_0000));
    assert_eq!(back.code_page, 1252);
    assert_eq!(back.message_class, m.message_class);
    assert_eq!(back.subject, m.subject);
    assert_eq!(back.from, m.from);
    assert_eq!(back.date_sent, m.date_sent);
    assert_eq!(back.internet_message_id, m.internet_message_id);
    assert_eq!(back.correlator, m.correlator);
    assert_eq!(back.text.as_deref(), Some(TEXT));
    assert_eq!(back.html.as_deref(), Some(HTML));
    assert_eq!(back.rtf, m.rtf);
    assert_eq!(
        back.recipients
            .iter()
            .map(|r| (r.kind, &r.address))
            .collect::<Vec<_>>(),
        m.recipients
            .iter()
            .map(|r| (r.kind, &r.address))
            .collect::<Vec<_>>()
    );
    assert_eq!(back.attachments.len(), 2);
    for (a, b) in m.attachments.iter().zip(&back.attachments) {
        assert_eq!(
            (&a.long_filename, &a.mime_type, &a.content_id, &a.data),
            (&b.long_filename, &b.mime_type, &b.content_id, &b.data)
        );
        assert_eq!(b.method, Some(1));
    }
    // Writing what we read gives the same bytes: the writer is a fixed point.
    assert_eq!(tnef::encode(&back).ok(), tnef::encode(&round(&back)).ok());
}

#[test]
fn embedded_messages_nest_and_come_back() {
    let inner = TnefMessage {
        subject: Some("inner".into()),
        text: Some("inner body".into()),
        ..sample(10)
    };
    let outer = TnefMessage {
        subject: Some("outer".into()),
        attachments: vec![TnefAttachment {
            long_filename: Some("Fwd.msg".into()),
            embedded: Some(Box::new(inner.clone())),
            ..Default::default()
        }],
        ..Default::default()
    };
    let back = round(&outer);
    let e = back.attachments[0]
        .embedded
        .as_deref()
        .unwrap_or_else(|| panic!("embedded message lost"));
    assert_eq!(back.attachments[0].method, Some(5));
    assert_eq!(
        (e.subject.as_deref(), e.text.as_deref()),
        (Some("inner"), Some("inner body"))
    );
    assert_eq!(
        e.attachments.iter().map(|a| &a.data).collect::<Vec<_>>(),
        inner
            .attachments
            .iter()
            .map(|a| &a.data)
            .collect::<Vec<_>>()
    );
}

#[test]
fn meeting_requests_keep_their_class_and_named_properties() {
    use postwire_core::tnef::{MapiProperty, NameKind, PropertyName};
    // PSETID_Appointment {00062002-0000-0000-C000-000000000046}, PidLidLocation (0x8208).
    let guid = [
        0x02, 0x20, 0x06, 0x00, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46,
    ];
    let m = TnefMessage {
        message_class: Some("IPM.Schedule.Meeting.Request".into()),
        subject: Some("Planning".into()),
        properties: vec![
            MapiProperty {
                name: Some(PropertyName {
                    guid,
                    kind: NameKind::Id(0x8208),
                }),
                ..MapiProperty::new(0x8001, PropValue::Unicode("Room 4".into()))
            },
            MapiProperty {
                name: Some(PropertyName {
                    guid,
                    kind: NameKind::Name("Keywords".into()),
                }),
                ..MapiProperty::new(
                    0x8002,
                    PropValue::MultiUnicode(vec!["a".into(), "b".into()]),
                )
            },
            MapiProperty::new(0x0E17, PropValue::Long(3)),
        ],
        ..Default::default()
    };
    let back = round(&m);
    assert_eq!(
        back.message_class.as_deref(),
        Some("IPM.Schedule.Meeting.Request")
    );
    for p in &m.properties {
        assert!(back.properties.contains(p), "lost {p:?}");
    }
}

#[test]
fn real_world_files_rewritten_by_us_keep_their_content() {
    let dir = std::env::var_os("POSTWIRE_TNEF_TESTDATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/tnef-testdata"
            ))
        })
        .join("test-data");
    let mut seen = 0;
    for name in [
        "winmail.dat",
        "one-file.tnef",
        "long-filename.tnef",
        "missing-filenames.tnef",
        "multi-value-attribute.tnef",
        "rtf.tnef",
    ] {
        let data = std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e} (run scripts/setup.sh)"));
        let original = tnef::decode(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        let once = round(&original);
        assert_eq!(once.subject, original.subject, "{name}");
        assert_eq!(once.text, original.text, "{name}");
        assert_eq!(once.html, original.html, "{name}");
        assert_eq!(once.rtf, original.rtf, "{name}");
        assert_eq!(once.message_class, original.message_class, "{name}");
        let names = |m: &TnefMessage| {
            m.attachments
                .iter()
                .map(|a| {
                    (
                        a.filename().map(str::to_owned),
                        a.data.clone(),
                        a.meta_file.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert!(
            names(&once) == names(&original),
            "{name}: attachments changed"
        );
        for p in original.properties.iter().filter(|p| p.name.is_some()) {
            assert!(
                once.properties.contains(p),
                "{name}: lost named property {p:?}"
            );
        }
        assert_eq!(
            find(&once.properties, 0x1006),
            find(&original.properties, 0x1006),
            "{name}"
        );
        // And the rewrite is a fixed point.
        assert_eq!(round(&once), once, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 6);
}

fn tnef_spec() -> postwire_core::MessageSpec {
    from_json(
        r#"{"from": "Ana Núñez <ana@example.com>", "to": ["Bob <bob@example.com>"], "cc": ["carl@example.org"],
            "bcc": ["hidden@example.net"], "subject": "Reunión", "date": "2026-12-01T09:00:00+01:00",
            "text": "Hola\nBob", "html": "<p>Hola <img src=\"cid:logo@example.com\"></p>", "priority": "high",
            "attachments": [
              {"filename": "logo.png", "contentType": "image/png", "content": "iVBORw0KGgo=", "inline": true, "contentId": "logo@example.com"},
              {"filename": "presupuesto año.pdf", "contentType": "application/pdf", "content": "JVBERi0xLjQK"}],
            "headers": [["X-Campaign", "7"]],
            "tnef": true}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_tnef_spec_survives_build_parse_build_byte_for_byte() {
    let spec = tnef_spec();
    let options = BuildOptions { now: 0, seed: 7 };
    let bytes = build(&spec, &options).unwrap_or_else(|e| panic!("{e}"));
    let parsed = parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(parsed.tnef);
    let raw = parsed
        .attachments
        .last()
        .unwrap_or_else(|| panic!("no raw winmail.dat"));
    assert_eq!(raw.content_type, "application/ms-tnef");
    let mut expected = spec.normalized();
    expected.message_id = parsed.message_id.clone();
    expected.attachments.push(raw.clone());
    assert_eq!(parsed, expected);
    // The bcc never reaches winmail.dat.
    let t = tnef::decode(&raw.content).unwrap_or_else(|e| panic!("{e}"));
    assert!(!String::from_utf8_lossy(&raw.content).contains("hidden@") && t.recipients.len() == 2);
    assert!(t.attachments[0].hidden);
    assert_eq!(t.priority, Some(1));
    // Building the parsed spec again gives the very same message.
    let again = build(&parsed, &options).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        again == bytes,
        "second build differs:\n{}\n---\n{}",
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&bytes)
    );
}

#[test]
fn a_winmail_dat_that_does_not_decode_stays_an_attachment_with_a_warning() {
    let mut spec = tnef_spec();
    spec.tnef = false;
    spec.attachments = vec![postwire_core::Attachment {
        filename: Some("winmail.dat".into()),
        content_type: "application/ms-tnef".into(),
        content: b"\x78\x9f\x3e\x22\x00\x00\x01\x06\x90".to_vec(),
        inline: false,
        content_id: None,
    }];
    let bytes = build(&spec, &BuildOptions { now: 0, seed: 1 }).unwrap_or_else(|e| panic!("{e}"));
    let parsed =
        postwire_core::parse::parse_with_warnings(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(!parsed.spec.tnef);
    assert_eq!(parsed.spec.attachments, spec.attachments);
    assert!(
        parsed
            .warnings
            .iter()
            .any(|w| w.contains("winmail.dat could not be decoded as TNEF")
                && w.contains("truncated")),
        "{:?}",
        parsed.warnings
    );
}
