//! Golden files: core/tests/data/tnef/NAME.tnef is what our writer produces
//! for a pinned message, and NAME.json is what our reader (and
//! `postwire tnef decode`) prints for it. A change in either is a change in
//! our output format: review it, then re-bless with
//! `POSTWIRE_BLESS=1 cargo test -p postwire-core --test tnef_golden`.
//! The judges (tnef_judges.rs) check that such output is right; this pins it.

mod tnef_common;

use std::path::PathBuf;

use postwire_core::tnef::{
    self, MapiProperty, NameKind, PropValue, PropertyName, TnefAttachment, TnefMessage,
};

fn cases() -> Vec<(&'static str, TnefMessage)> {
    let guid = [
        0x02, 0x20, 0x06, 0x00, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46,
    ];
    vec![
        ("note-html-two-attachments", tnef_common::sample(600)),
        (
            "meeting-request-embedded",
            TnefMessage {
                legacy_key: 0x0001,
                message_class: Some("IPM.Schedule.Meeting.Request".into()),
                subject: Some("Planificación".into()),
                text: Some("Agenda:\n1. Presupuesto".into()),
                date_sent: Some(1_796_115_600),
                properties: vec![
                    MapiProperty {
                        name: Some(PropertyName {
                            guid,
                            kind: NameKind::Id(0x8208),
                        }),
                        ..MapiProperty::new(0x8000, PropValue::Unicode("Sala 4".into()))
                    },
                    MapiProperty::new(0x0E17, PropValue::Long(3)),
                ],
                attachments: vec![TnefAttachment {
                    long_filename: Some("previous.msg".into()),
                    embedded: Some(Box::new(TnefMessage {
                        subject: Some("previous".into()),
                        text: Some("old".into()),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ),
    ]
}

#[test]
fn writer_output_and_reader_json_match_the_golden_files() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tnef"));
    let bless = std::env::var_os("POSTWIRE_BLESS").is_some();
    let mut checked = 0;
    for (name, message) in cases() {
        let bytes = tnef::encode(&message).unwrap_or_else(|e| panic!("{name}: {e}"));
        let decoded = tnef::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut json = serde_json::to_string_pretty(&decoded).unwrap_or_else(|e| panic!("{e}"));
        json.push('\n');
        let (tnef_path, json_path) = (
            dir.join(format!("{name}.tnef")),
            dir.join(format!("{name}.json")),
        );
        if bless {
            std::fs::write(&tnef_path, &bytes).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&json_path, &json).unwrap_or_else(|e| panic!("{e}"));
        }
        let want =
            std::fs::read(&tnef_path).unwrap_or_else(|e| panic!("{}: {e}", tnef_path.display()));
        assert!(
            bytes == want,
            "{name}: writer output differs from {}",
            tnef_path.display()
        );
        let want_json = std::fs::read_to_string(&json_path)
            .unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
        assert_eq!(json, want_json, "{name}: reader JSON differs");
        checked += 1;
    }
    assert_eq!(checked, 2, "golden cases found");
}
