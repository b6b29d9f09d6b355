//! Real-world winmail.dat files: libytnef's test-data (from its Debian source
//! package, fetched by scripts/setup.d/30-tnef.sh) decode to the expected
//! attachments (its results/ folder) and properties (its test.sh), and our
//! RTF bodies match what Debian's `tnef` extracts from the same files.
//! A missing corpus fails, it does not skip.

mod tnef_common;

use std::path::PathBuf;

use postwire_core::tnef::{self, PropValue, TnefMessage, attributes, mapi::find};
use tnef_common::{files, run, scratch};

fn corpus() -> PathBuf {
    let dir = std::env::var_os("POSTWIRE_TNEF_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/tnef-testdata"
            ))
        })
        .join("test-data");
    assert!(
        dir.join("results").is_dir(),
        "libytnef test-data missing at {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

const FILES: &[&str] = &[
    "winmail.dat",
    "one-file.tnef",
    "long-filename.tnef",
    "missing-filenames.tnef",
    "multi-value-attribute.tnef",
    "rtf.tnef",
];

fn decode(name: &str) -> TnefMessage {
    let data = std::fs::read(corpus().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    tnef::decode(&data).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_attachment_matches_libytnef_results_folder() {
    let mut extracted = Vec::new();
    for name in FILES {
        for a in decode(name).attachments {
            // ytnef (whose results these are) writes spaces in names as '_'.
            let file = a
                .filename()
                .unwrap_or_else(|| panic!("{name}: attachment without a name"))
                .replace(' ', "_");
            extracted.push((file, a.data));
        }
    }
    extracted.sort();
    let expected = files(&corpus().join("results"));
    assert_eq!(expected.len(), 9, "results/ should hold 9 files");
    assert_eq!(
        extracted
            .iter()
            .map(|(n, d)| (n.as_str(), d.len()))
            .collect::<Vec<_>>(),
        expected
            .iter()
            .map(|(n, d)| (n.as_str(), d.len()))
            .collect::<Vec<_>>()
    );
    assert!(
        extracted == expected,
        "attachment bytes differ from results/"
    );
}

#[test]
fn winmail_dat_has_the_properties_libytnef_checks() {
    let m = decode("winmail.dat");
    let p = &m.properties;
    // PR_MESSAGE_DELIVERY_TIME: Tuesday June 17, 2003 3:23:00 pm.
    assert_eq!(
        m.date_received.map(attributes::format_rfc3339).as_deref(),
        Some("2003-06-17T15:23:00Z")
    );
    // PR_TNEF_CORRELATION_KEY.
    let key = find(p, 0x007F)
        .and_then(PropValue::as_bytes)
        .unwrap_or_else(|| panic!("no correlation key"));
    assert_eq!(key, b"00000000CFF233DD7623274EB78A4912C247A0E464532700\0");
    assert_eq!(
        m.correlator.as_deref(),
        Some("00000000CFF233DD7623274EB78A4912C247A0E464532700")
    );
    // PR_RTF_SYNC_BODY_CRC and PR_RTF_SYNC_BODY_COUNT.
    assert_eq!(find(p, 0x1006), Some(&PropValue::Long(872_404_792)));
    assert_eq!(find(p, 0x1007), Some(&PropValue::Long(90)));
    let rtf = String::from_utf8_lossy(m.rtf.as_deref().unwrap_or_default()).into_owned();
    assert!(rtf.contains("\\pard Casdasdfasdfasd\\par"), "{rtf}");
    // attMessageClass "IPM.Microsoft Mail.Note" is the legacy name of IPM.Note.
    assert_eq!(m.message_class.as_deref(), Some("IPM.Note"));
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(m.attachments[0].title.as_deref(), Some("ZAPPA_~2.JPG"));
    assert!(
        m.attachments[0]
            .meta_file
            .as_ref()
            .is_some_and(|w| w.starts_with(&[1, 0, 9, 0])),
        "WMF icon"
    );
    assert_eq!(
        m.attachments[0]
            .modify_date
            .map(attributes::format_rfc3339)
            .as_deref(),
        Some("2003-04-07T10:35:38Z")
    );
}

#[test]
fn the_other_files_decode_to_their_known_content() {
    let m = decode("long-filename.tnef");
    assert_eq!(m.subject.as_deref(), Some("RE: license file"));
    assert!(
        m.text
            .as_deref()
            .is_some_and(|t| t.starts_with("I've attached a temp. license for QARun 4.7.")),
        "{:?}",
        m.text
    );
    assert_eq!(
        m.attachments[0].long_filename.as_deref(),
        Some("allproductsmar2000.dat")
    );

    let m = decode("missing-filenames.tnef");
    assert_eq!(m.subject.as_deref(), Some("Y2K problem with Add-DT"));
    assert_eq!(m.attachments.len(), 4);

    let m = decode("multi-value-attribute.tnef");
    assert_eq!(
        m.message_class.as_deref(),
        Some("IPM.Note.Microsoft.Voicemail.UM.CA")
    );
    assert!(
        m.properties.iter().any(|p| p.prop_type & 0x1000 != 0),
        "a multi-valued property"
    );
    assert!(
        m.properties.iter().any(|p| p.name.is_some()),
        "named properties"
    );
    let html = m
        .html
        .as_deref()
        .unwrap_or_else(|| panic!("HTML de-encapsulated from the RTF body"));
    assert!(
        html.trim_start().to_ascii_lowercase().starts_with("<html"),
        "{html}"
    );
    assert!(
        !html.contains("\\htmltag") && !html.contains("{\\"),
        "{html}"
    );

    let m = decode("one-file.tnef");
    assert_eq!(
        (m.subject.as_deref(), m.attachments.len()),
        (Some("one-file"), 1)
    );

    let m = decode("rtf.tnef");
    assert!(m.rtf.as_deref().is_some_and(|r| r.starts_with(b"{\\rtf1")));
}

#[test]
fn our_rtf_bodies_match_what_debian_tnef_extracts() {
    for name in FILES {
        let m = decode(name);
        let dir = scratch(&format!("corpus-{name}"));
        let src = corpus().join(name);
        run(
            "tnef",
            &[
                "-C",
                dir.to_str().unwrap_or("."),
                "--save-body",
                "--body-pref=R",
                src.to_str().unwrap_or(""),
            ],
            &dir,
        );
        let theirs = std::fs::read(dir.join("message.rtf")).ok();
        let ours = m.rtf.clone();
        assert_eq!(
            ours.is_some(),
            theirs.is_some(),
            "{name}: RTF presence differs"
        );
        if ours != theirs {
            let (o, t) = (ours.unwrap_or_default(), theirs.unwrap_or_default());
            let at = o
                .iter()
                .zip(&t)
                .position(|(a, b)| a != b)
                .unwrap_or(o.len().min(t.len()));
            panic!(
                "{name}: RTF body differs from tnef's at byte {at} (ours {} bytes, theirs {}): ours {:?} theirs {:?}",
                o.len(),
                t.len(),
                String::from_utf8_lossy(&o[at.saturating_sub(20)..(at + 40).min(o.len())]),
                String::from_utf8_lossy(&t[at.saturating_sub(20)..(at + 40).min(t.len())])
            );
        }
    }
}

#[test]
fn the_oob_sample_is_a_clear_error() {
    let data = std::fs::read(corpus().join("ytnef-oob-TNEFVersion-SwapWord"))
        .unwrap_or_else(|e| panic!("{e}"));
    let e = tnef::decode(&data).unwrap_err().to_string();
    assert!(e.contains("offset 6"), "{e}");
}

#[test]
fn parsing_a_message_that_carries_a_real_winmail_dat_surfaces_its_files() {
    use postwire_core::{Attachment, BuildOptions, MessageSpec, build, parse};
    let winmail = std::fs::read(corpus().join("winmail.dat")).unwrap_or_else(|e| panic!("{e}"));
    let outer = MessageSpec {
        from: postwire_core::Mailbox::parse("jgerland@synacor.com").ok(),
        subject: Some("test".into()),
        text: Some("stub body written by the sender's server\n".into()),
        attachments: vec![Attachment {
            filename: Some("winmail.dat".into()),
            content_type: "application/ms-tnef".into(),
            content: winmail.clone(),
            inline: false,
            content_id: None,
        }],
        ..Default::default()
    };
    let bytes = build(
        &outer,
        &BuildOptions {
            now: 1_055_863_380,
            seed: 3,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let spec = parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(spec.tnef);
    let results = corpus().join("results");
    let got: Vec<_> = spec
        .attachments
        .iter()
        .map(|a| (a.filename.as_deref().unwrap_or(""), a.content.len()))
        .collect();
    assert_eq!(
        got,
        [
            ("zappa_av1.jpg", 2937),
            ("bookmark.htm", 85805),
            ("winmail.dat", winmail.len())
        ]
    );
    assert_eq!(
        spec.attachments[0].content,
        std::fs::read(results.join("zappa_av1.jpg")).unwrap_or_default()
    );
    assert_eq!(
        spec.attachments[1].content,
        std::fs::read(results.join("bookmark.htm")).unwrap_or_default()
    );
    assert_eq!(spec.attachments[2].content, winmail);
    // This winmail.dat has only an RTF body: the outer text stays.
    assert_eq!(
        spec.text.as_deref(),
        Some("stub body written by the sender's server\n")
    );
}

#[test]
fn an_rtf_only_winmail_dat_gives_its_text_when_the_message_has_none() {
    use postwire_core::{Attachment, BuildOptions, MessageSpec, build, parse};
    let winmail = std::fs::read(corpus().join("winmail.dat")).unwrap_or_else(|e| panic!("{e}"));
    let outer = MessageSpec {
        from: postwire_core::Mailbox::parse("jgerland@synacor.com").ok(),
        attachments: vec![Attachment {
            filename: Some("winmail.dat".into()),
            content_type: "application/ms-tnef".into(),
            content: winmail,
            inline: false,
            content_id: None,
        }],
        ..Default::default()
    };
    let bytes = build(&outer, &BuildOptions { now: 0, seed: 3 }).unwrap_or_else(|e| panic!("{e}"));
    let spec = parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    // The RTF of libytnef's winmail.dat: six "Casdasdfasdfasd" paragraphs,
    // empty ones between them, and two attachment placeholders.
    let text = spec.text.unwrap_or_else(|| panic!("no text surfaced"));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines, ["Casdasdfasdfasd"; 6], "{text:?}");
}

/// The header offset of every attribute of a sound stream.
fn attribute_starts(s: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 6;
    while at + 11 <= s.len() {
        out.push(at);
        let len = u32::from_le_bytes([s[at + 5], s[at + 6], s[at + 7], s[at + 8]]) as usize;
        at += 11 + len;
    }
    out
}

/// Issue 13: a real file damaged in the middle (garbage before an attribute,
/// or one attribute's length broken) is refused strictly and read leniently:
/// every attachment outside the damage comes back byte for byte, with one
/// warning naming the offset.
#[test]
fn real_files_damaged_in_the_middle_keep_the_attachments_around_the_damage() {
    let dir = corpus();
    for name in FILES {
        let sound = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = tnef::decode(&sound).unwrap_or_else(|e| panic!("{name}: {e}"));
        let files_of = |m: &TnefMessage| -> Vec<(Option<String>, Vec<u8>)> {
            m.attachments
                .iter()
                .map(|a| (a.filename().map(str::to_string), a.data.clone()))
                .collect()
        };
        let starts = attribute_starts(&sound);
        let middle = starts[starts.len() / 2];
        // Garbage before the middle attribute: nothing is lost.
        let mut damaged = sound[..middle].to_vec();
        damaged.extend_from_slice(b"\x05\x00junk from a relay\xff");
        damaged.extend_from_slice(&sound[middle..]);
        assert!(
            tnef::decode(&damaged).is_err(),
            "{name}: strict accepted garbage"
        );
        let got = tnef::decode_with(&damaged, tnef::DecodeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: lenient: {e}"));
        assert_eq!(files_of(&got.message), files_of(&want), "{name}");
        assert_eq!(got.warnings.len(), 1, "{name}: {:?}", got.warnings);
        assert!(
            got.warnings[0].contains(&format!("bytes {middle}..")),
            "{name}: {:?}",
            got.warnings
        );
        // The middle attribute's length broken: only that attribute is lost.
        let mut broken = sound.clone();
        broken[middle + 5..middle + 9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(tnef::decode(&broken).is_err(), "{name}");
        let got = tnef::decode_with(&broken, tnef::DecodeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: lenient: {e}"));
        assert_eq!(got.warnings.len(), 1, "{name}: {:?}", got.warnings);
        let kept = files_of(&got.message);
        let lost = files_of(&want)
            .into_iter()
            .filter(|f| !kept.contains(f))
            .count();
        assert!(
            lost <= 1,
            "{name}: {lost} attachments lost: {:?}",
            got.warnings
        );
    }
}
