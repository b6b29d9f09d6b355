//! Fuzzes the TNEF reader: any input must decode or fail with an error,
//! never panic; what decodes (strictly or leniently) must encode, and decode
//! again strictly. Each input is
//! tried as it is and with its attribute checksums repaired, so that
//! mutations reach the MAPI, RTF and date parsers behind the checksums.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_core::tnef;

/// Recomputes every attribute checksum, as far as the framing holds.
fn repair_checksums(data: &mut [u8]) {
    let mut pos = 6;
    while pos + 9 <= data.len() {
        let len = u32::from_le_bytes([data[pos + 5], data[pos + 6], data[pos + 7], data[pos + 8]])
            as usize;
        let start = pos + 9;
        let Some(end) = start.checked_add(len).filter(|&e| e + 2 <= data.len()) else {
            return;
        };
        let sum = data[start..end]
            .iter()
            .fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        data[end..end + 2].copy_from_slice(&sum.to_le_bytes());
        pos = end + 2;
    }
}

fn check(data: &[u8]) {
    let lenient = tnef::decode_with(data, tnef::DecodeOptions::default()).map(|d| d.message);
    for message in [tnef::decode(data), lenient].into_iter().flatten() {
        let bytes = match tnef::encode(&message) {
            Ok(bytes) => bytes,
            Err(e) => panic!("a decoded message does not encode: {e}"),
        };
        if let Err(e) = tnef::decode(&bytes) {
            panic!("re-encoded message does not decode: {e}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut repaired = data.to_vec();
    repair_checksums(&mut repaired);
    if repaired != data {
        check(&repaired);
    }
});
