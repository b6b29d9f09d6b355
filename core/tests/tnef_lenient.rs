//! The lenient TNEF reader (issue 13): stray bytes after the last
//! attribute, a damaged attribute in the middle (broken framing or only a
//! wrong checksum) and garbage between attributes are read past with a
//! warning naming the offset and what was lost, keeping every attachment
//! before and after the damage; `DecodeOptions { strict: true }` and
//! `decode` refuse the same streams as before.

use postwire_core::tnef::{self, DecodeOptions, Decoded, TnefAttachment, TnefMessage};

const LENIENT: DecodeOptions = DecodeOptions { strict: false };
const STRICT: DecodeOptions = DecodeOptions { strict: true };
const DATA: u32 = 0x0006_800F;

fn message() -> TnefMessage {
    let file = |name: &str, data: &[u8]| TnefAttachment {
        long_filename: Some(name.into()),
        mime_type: Some("application/octet-stream".into()),
        data: data.to_vec(),
        ..Default::default()
    };
    TnefMessage {
        subject: Some("three files".into()),
        text: Some("see the files".into()),
        attachments: vec![
            file("one.bin", b"first file"),
            file("two.bin", b"second file, the one damaged"),
            file("three.bin", b"third file"),
        ],
        ..Default::default()
    }
}

fn encoded() -> Vec<u8> {
    tnef::encode(&message()).unwrap_or_else(|e| panic!("encode: {e}"))
}

/// (offset of the attribute header, id, offset of its data, length) of each attribute.
fn attributes(s: &[u8]) -> Vec<(usize, u32, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 6;
    while at + 11 <= s.len() {
        let id = u32::from_le_bytes(s[at + 1..at + 5].try_into().unwrap_or_default());
        let len = u32::from_le_bytes(s[at + 5..at + 9].try_into().unwrap_or_default()) as usize;
        out.push((at, id, at + 9, len));
        at += 11 + len;
    }
    out
}

/// The attAttachData attribute of the `n`th attachment (0-based).
fn attach_data(s: &[u8], n: usize) -> (usize, u32, usize, usize) {
    attributes(s)
        .into_iter()
        .filter(|a| a.1 == DATA)
        .nth(n)
        .unwrap_or_else(|| panic!("no attAttachData #{n}"))
}

fn lenient(s: &[u8]) -> Decoded {
    tnef::decode_with(s, LENIENT).unwrap_or_else(|e| panic!("lenient decode: {e}"))
}

fn files(d: &Decoded) -> Vec<(Option<&str>, &[u8])> {
    d.message
        .attachments
        .iter()
        .map(|a| (a.filename(), a.data.as_slice()))
        .collect()
}

#[test]
fn a_sound_stream_reads_the_same_in_both_modes_without_warnings() {
    let s = encoded();
    let d = lenient(&s);
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let strict = tnef::decode_with(&s, STRICT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d, strict);
    assert_eq!(Ok(d.message), tnef::decode(&s));
}

#[test]
fn stray_bytes_after_the_last_attribute_are_ignored_with_a_warning() {
    let mut s = encoded();
    let end = s.len();
    s.extend_from_slice(&[0, 0, 0x0d, 0x0a]);
    assert!(
        tnef::decode(&s).is_err(),
        "strict must refuse trailing bytes"
    );
    assert!(tnef::decode_with(&s, STRICT).is_err());
    let d = lenient(&s);
    assert_eq!(d.message, lenient(&encoded()).message);
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(
        d.warnings[0].contains(&format!(
            "4 trailing bytes after the last attribute ignored (offset {end})"
        )),
        "{:?}",
        d.warnings
    );
}

#[test]
fn a_broken_length_in_the_middle_loses_only_that_attribute() {
    let mut s = encoded();
    let (header, _, _, _) = attach_data(&s, 1);
    // The length of the second file's data now runs past the end.
    s[header + 5..header + 9].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    assert!(tnef::decode(&s).is_err());
    let d = lenient(&s);
    let got = files(&d);
    assert_eq!(got.len(), 3, "{got:?} {:?}", d.warnings);
    assert_eq!(got[0], (Some("one.bin"), &b"first file"[..]));
    assert_eq!(
        got[1],
        (Some("two.bin"), &b""[..]),
        "its data is what was lost"
    );
    assert_eq!(got[2], (Some("three.bin"), &b"third file"[..]));
    assert_eq!(d.message.subject.as_deref(), Some("three files"));
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(
        d.warnings[0].contains(&format!("bytes {header}.."))
            && d.warnings[0].contains("skipped, reading resumed at offset"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn a_wrong_checksum_with_sound_framing_keeps_the_data_with_a_warning() {
    let mut s = encoded();
    let (header, _, data, _) = attach_data(&s, 1);
    s[data] ^= 0x20; // "second" -> "Second"
    assert!(matches!(
        tnef::decode(&s),
        Err(tnef::TnefError::Checksum { offset, .. }) if offset == header
    ));
    let d = lenient(&s);
    let got = files(&d);
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[1],
        (Some("two.bin"), &b"Second file, the one damaged"[..])
    );
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(
        d.warnings[0].contains(&format!("at offset {header}: checksum"))
            && d.warnings[0].contains("kept"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn garbage_between_attributes_is_skipped_and_reading_resumes() {
    let s = encoded();
    let (header, _, _, _) = attach_data(&s, 2);
    let mut damaged = s[..header].to_vec();
    damaged.extend_from_slice(b"\x07garbage inserted by a broken gateway\x00\x01\x02");
    damaged.extend_from_slice(&s[header..]);
    assert!(tnef::decode(&damaged).is_err());
    let d = lenient(&damaged);
    assert_eq!(files(&d), files(&lenient(&s)));
    assert_eq!(d.warnings.len(), 1, "{:?}", d.warnings);
    assert!(
        d.warnings[0].contains(&format!("bytes {header}..")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn a_stream_cut_short_keeps_what_came_before_the_cut() {
    let s = encoded();
    let (header, _, _, _) = attach_data(&s, 2);
    let cut = &s[..header + 12];
    assert!(tnef::decode(cut).is_err());
    let d = lenient(cut);
    let got = files(&d);
    assert_eq!(got[..2], files(&lenient(&s))[..2]);
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains(&format!("offset {header}"))),
        "{:?}",
        d.warnings
    );
}

#[test]
fn not_tnef_at_all_is_an_error_in_both_modes() {
    for options in [LENIENT, STRICT] {
        assert!(tnef::decode_with(b"", options).is_err());
        assert!(tnef::decode_with(b"PK\x03\x04 a zip file", options).is_err());
    }
}

#[test]
fn any_one_damaged_byte_never_panics_and_lenient_always_reads_past_the_header() {
    let s = encoded();
    for at in 6..s.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut d = s.clone();
            d[at] ^= flip;
            let got = tnef::decode_with(&d, LENIENT)
                .unwrap_or_else(|e| panic!("byte {at} ^ {flip:#x}: {e}"));
            if got.warnings.is_empty() {
                // Only bytes no check covers may change silently (none today
                // but the checksum-protected data, which a warning names).
                assert_eq!(
                    tnef::decode(&d).map(|m| m == got.message),
                    Ok(true),
                    "byte {at}"
                );
            }
        }
    }
}
