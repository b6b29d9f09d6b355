//! The reader on hand-made streams: what MS-OXTNEF allows and real writers
//! do (zero or odd legacy keys, attachments without attAttachRendData,
//! message attributes after attachments, 8-bit strings in other code pages),
//! and what it must refuse, each with an error that names the place.

use postwire_core::tnef::{self, TnefError};

/// A TNEF stream assembled attribute by attribute, checksums computed.
struct Stream(Vec<u8>);

impl Stream {
    fn new(key: u16) -> Self {
        let mut v = 0x223E_9F78u32.to_le_bytes().to_vec();
        v.extend_from_slice(&key.to_le_bytes());
        Stream(v)
    }
    fn attr(mut self, level: u8, id: u32, data: &[u8]) -> Self {
        self.0.push(level);
        self.0.extend_from_slice(&id.to_le_bytes());
        self.0.extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.0.extend_from_slice(data);
        let sum = data.iter().fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        self.0.extend_from_slice(&sum.to_le_bytes());
        self
    }
}

const MSG: u8 = 1;
const ATT: u8 = 2;
const SUBJECT: u32 = 0x0001_8004;
const CLASS: u32 = 0x0007_8008;
const CODEPAGE: u32 = 0x0006_9007;
const TITLE: u32 = 0x0001_8010;
const DATA: u32 = 0x0006_800F;
const ATTACHMENT: u32 = 0x0006_9005;
const REND: u32 = 0x0006_9002;

#[test]
fn zero_and_odd_legacy_keys_are_accepted() {
    for key in [0u16, 1, 0xFFFF, 0x1235] {
        let s = Stream::new(key).attr(MSG, SUBJECT, b"hi\0");
        let m = tnef::decode(&s.0).unwrap_or_else(|e| panic!("key {key}: {e}"));
        assert_eq!((m.legacy_key, m.subject.as_deref()), (key, Some("hi")));
    }
}

#[test]
fn attachments_without_rend_data_are_split_where_they_must_be() {
    let s = Stream::new(0)
        .attr(MSG, CLASS, b"IPM.Note\0")
        // First attachment: no attAttachRendData at all.
        .attr(ATT, TITLE, b"one.txt\0")
        .attr(ATT, DATA, b"first")
        // Second: a repeated title starts it (still no rend data).
        .attr(ATT, TITLE, b"two.txt\0")
        .attr(ATT, DATA, b"second")
        .attr(ATT, ATTACHMENT, &0u32.to_le_bytes())
        // Third: anything after attAttachment starts a new one.
        .attr(ATT, DATA, b"third")
        .attr(ATT, TITLE, b"three.txt\0")
        // Fourth: with rend data, the normal case.
        .attr(
            ATT,
            REND,
            &[
                1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0,
            ],
        )
        .attr(ATT, TITLE, b"four.txt\0")
        // A message attribute after the attachments still belongs to the message.
        .attr(MSG, SUBJECT, b"late subject\0");
    let m = tnef::decode(&s.0).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<_> = m
        .attachments
        .iter()
        .map(|a| (a.title.as_deref(), a.data.as_slice(), a.rend_data.is_some()))
        .collect();
    assert_eq!(
        got,
        [
            (Some("one.txt"), &b"first"[..], false),
            (Some("two.txt"), &b"second"[..], false),
            (Some("three.txt"), &b"third"[..], false),
            (Some("four.txt"), &b""[..], true)
        ]
    );
    assert_eq!(m.subject.as_deref(), Some("late subject"));
}

#[cfg(feature = "full-encoding")]
#[test]
fn eight_bit_strings_use_the_oem_code_page() {
    // Windows-1251 "Привет" as the subject, code page announced first.
    let subject = [0xCF, 0xF0, 0xE8, 0xE2, 0xE5, 0xF2, 0x00];
    let mut cp = 1251u32.to_le_bytes().to_vec();
    cp.extend_from_slice(&[0; 4]);
    let s = Stream::new(0)
        .attr(MSG, CODEPAGE, &cp)
        .attr(MSG, SUBJECT, &subject);
    let m = tnef::decode(&s.0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((m.code_page, m.subject.as_deref()), (1251, Some("Привет")));
}

#[test]
fn refusals_name_what_and_where() {
    let good = Stream::new(0).attr(MSG, SUBJECT, b"hi\0").0;

    let mut bad_sum = good.clone();
    let n = bad_sum.len();
    bad_sum[n - 1] ^= 0xFF;
    let e = tnef::decode(&bad_sum).unwrap_err();
    assert!(
        matches!(
            e,
            TnefError::Checksum {
                offset: 6,
                attribute: SUBJECT,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("checksum") && e.to_string().contains("offset 6"),
        "{e}"
    );

    let e = tnef::decode(b"PK\x03\x04zipfile").unwrap_err();
    assert!(e.to_string().contains("not a TNEF stream"), "{e}");

    let mut bad_level = good.clone();
    bad_level[6] = 3;
    assert!(matches!(
        tnef::decode(&bad_level).unwrap_err(),
        TnefError::BadLevel {
            offset: 6,
            level: 3
        }
    ));

    let e = tnef::decode(&Stream::new(0).attr(ATT, REND, &[1, 0, 0]).0).unwrap_err();
    assert!(
        e.to_string().contains("attAttachRendData") && e.to_string().contains("14 bytes"),
        "{e}"
    );

    let e = tnef::decode(
        &Stream::new(0)
            .attr(
                MSG,
                0x0003_8005,
                &[0xD3, 0x07, 13, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            )
            .0,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("attDateSent") && e.to_string().contains("invalid date"),
        "{e}"
    );

    // A MAPI property of a type that does not exist.
    let mut props = 1u32.to_le_bytes().to_vec();
    props.extend_from_slice(&0x0099u16.to_le_bytes());
    props.extend_from_slice(&0x1234u16.to_le_bytes());
    props.extend_from_slice(&[0; 4]);
    let e = tnef::decode(&Stream::new(0).attr(MSG, 0x0006_9003, &props).0).unwrap_err();
    assert!(
        matches!(
            e,
            TnefError::UnsupportedPropertyType {
                id: 0x1234,
                prop_type: 0x0099,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn embedded_messages_cannot_nest_without_bound() {
    use postwire_core::tnef::{TnefAttachment, TnefMessage};
    let mut m = TnefMessage {
        subject: Some("leaf".into()),
        ..Default::default()
    };
    for _ in 0..=tnef::MAX_DEPTH {
        m = TnefMessage {
            attachments: vec![TnefAttachment {
                embedded: Some(Box::new(m)),
                ..Default::default()
            }],
            ..Default::default()
        };
    }
    let bytes = tnef::encode(&m).unwrap_or_else(|e| panic!("{e}"));
    let e = tnef::decode(&bytes).unwrap_err();
    assert!(matches!(e, TnefError::TooDeep { max: 16, .. }), "{e}");
}
