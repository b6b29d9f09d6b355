//! Bad input never panics and never makes the reader allocate more than the
//! input could justify. A deterministic mutation loop (cargo-fuzz needs a
//! nightly toolchain this project does not have; fuzz/ holds the target for
//! machines that do): every truncation, single-byte flips at every offset,
//! and random multi-byte mutations with the attribute checksums repaired so
//! that the MAPI, RTF and date parsers behind them are reached. A counting
//! global allocator (stats_alloc) checks what decoding hostile input allocates.

mod tnef_common;

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

use postwire_core::tnef::{self, TnefError, TnefMessage};
use tnef_common::sample;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A small but complete message: every attribute kind, MAPI types, RTF, an
/// embedded message, recipients.
fn corpus_message() -> Vec<u8> {
    let mut m = sample(300);
    m.attachments.push(tnef::TnefAttachment {
        long_filename: Some("inner.msg".into()),
        embedded: Some(Box::new(TnefMessage {
            subject: Some("inner".into()),
            ..sample(40)
        })),
        ..Default::default()
    });
    tnef::encode(&m).unwrap_or_else(|e| panic!("{e}"))
}

/// Recomputes every attribute checksum, walking the attribute framing as far as it holds.
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

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The fuzz target's property: decoding never panics, and what decodes
/// encodes to bytes that decode again. Returns whether `data` decoded.
fn exercise(data: &[u8]) -> bool {
    match tnef::decode(data) {
        Ok(m) => {
            if let Ok(bytes) = tnef::encode(&m) {
                if let Err(e) = tnef::decode(&bytes) {
                    panic!("our re-encoding of a decoded mutant does not decode: {e}");
                }
            }
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

/// Where each attribute starts, and the byte ranges of the attribute ids.
fn layout(data: &[u8]) -> (Vec<usize>, Vec<std::ops::Range<usize>>) {
    let (mut starts, mut ids) = (vec![6], Vec::new());
    let mut pos = 6;
    while pos + 9 <= data.len() {
        ids.push(pos + 1..pos + 5);
        let len = u32::from_le_bytes([data[pos + 5], data[pos + 6], data[pos + 7], data[pos + 8]])
            as usize;
        pos += 9 + len + 2;
        starts.push(pos);
    }
    (starts, ids)
}

#[test]
fn every_truncation_is_a_clear_error_unless_it_falls_between_attributes() {
    let data = corpus_message();
    let (starts, _) = layout(&data);
    assert!(starts.len() > 20, "{}", starts.len());
    for len in 0..data.len() {
        match tnef::decode(&data[..len]) {
            // TNEF has no end marker: a stream cut between attributes is a shorter valid stream.
            Ok(_) => assert!(
                starts.contains(&len),
                "cut at {len} (inside an attribute) decoded"
            ),
            Err(e) => assert!(
                matches!(e, TnefError::Truncated { .. })
                    || (len < 4
                        && matches!(
                            e,
                            TnefError::Truncated { .. } | TnefError::BadSignature { .. }
                        )),
                "cut at {len}: unexpected error {e}"
            ),
        }
    }
}

#[test]
fn single_byte_flips_anywhere_never_panic_and_checksums_catch_them() {
    let data = corpus_message();
    let (_, ids) = layout(&data);
    let mut cases = 0;
    for i in 6..data.len() {
        for x in [0x01u8, 0x80, 0xFF] {
            let mut d = data.clone();
            d[i] ^= x;
            cases += 1;
            // A flip in data, length, level or checksum must be refused; a flip
            // in an attribute id only renames the attribute (kept as unknown).
            if exercise(&d) {
                assert!(
                    ids.iter().any(|r| r.contains(&i)),
                    "a corrupted byte at {i} (^{x:#04x}) was accepted"
                );
            }
        }
    }
    assert!(cases > 5_000, "{cases}");
}

#[test]
fn mutations_behind_valid_checksums_never_panic() {
    let data = corpus_message();
    let mut rng = Rng(0x5EED_0F7E_4E0F);
    let mut ok = 0;
    let cases = 20_000;
    for _ in 0..cases {
        let mut d = data.clone();
        for _ in 0..=rng.below(4) {
            let i = 6 + rng.below(d.len() - 6);
            match rng.below(4) {
                0 => d[i] ^= 1 << rng.below(8),
                1 => d[i] = [0x00, 0xFF, 0x7F, 0x80, 0x10][rng.below(5)],
                2 if i + 4 <= d.len() => d[i..i + 4].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0x7F]),
                _ => d.truncate(i.max(7)),
            }
        }
        repair_checksums(&mut d);
        if exercise(&d) {
            ok += 1;
        }
    }
    // Both outcomes must occur, or the mutations are not reaching the parsers.
    assert!(ok > 0 && ok < cases, "{ok} of {cases} decoded");
}

#[test]
fn lying_length_fields_never_size_an_allocation() {
    let limit = 1 << 20;
    let hostile: Vec<Vec<u8>> = vec![
        // attribute length 0x7FFFFFFF
        [
            &0x223E_9F78u32.to_le_bytes()[..],
            &[0, 0, 1],
            &0x0006_9003u32.to_le_bytes(),
            &0x7FFF_FFFFu32.to_le_bytes(),
        ]
        .concat(),
        // attMAPIProps with a huge property count and value counts
        mapi_attr(&[&0x0FFF_FFFFu32.to_le_bytes()[..]].concat()),
        mapi_attr(
            &[
                &1u32.to_le_bytes()[..],
                &0x1102u16.to_le_bytes(),
                &0x3701u16.to_le_bytes(),
                &0x0FFF_FFFFu32.to_le_bytes(),
            ]
            .concat(),
        ),
        mapi_attr(
            &[
                &1u32.to_le_bytes()[..],
                &0x0102u16.to_le_bytes(),
                &0x1009u16.to_le_bytes(),
                &1u32.to_le_bytes(),
                &0x7FFF_FFF0u32.to_le_bytes(),
            ]
            .concat(),
        ),
        // PidTagRtfCompressed claiming a 2 GiB raw size
        mapi_attr(&rtf_prop(
            &[
                &16u32.to_le_bytes()[..],
                &0x7FFF_FFFFu32.to_le_bytes(),
                b"LZFu",
                &0u32.to_le_bytes(),
                &[0xFF, 0xFF],
            ]
            .concat(),
        )),
        mapi_attr(&rtf_prop(
            &[
                &16u32.to_le_bytes()[..],
                &0x7FFF_FFFFu32.to_le_bytes(),
                b"MELA",
                &0u32.to_le_bytes(),
                &[0; 4],
            ]
            .concat(),
        )),
    ];
    for (i, h) in hostile.iter().enumerate() {
        let region = Region::new(GLOBAL);
        let r = tnef::decode(h);
        let largest = region.change().bytes_allocated;
        assert!(r.is_err(), "case {i} decoded");
        assert!(
            largest < limit,
            "case {i}: allocated {largest} bytes in all for a {}-byte input",
            h.len()
        );
    }
}

fn mapi_attr(props: &[u8]) -> Vec<u8> {
    let sum = props
        .iter()
        .fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
    [
        &0x223E_9F78u32.to_le_bytes()[..],
        &[0, 0, 1],
        &0x0006_9003u32.to_le_bytes(),
        &(props.len() as u32).to_le_bytes(),
        props,
        &sum.to_le_bytes(),
    ]
    .concat()
}

fn rtf_prop(value: &[u8]) -> Vec<u8> {
    let pad = vec![0u8; (4 - value.len() % 4) % 4];
    [
        &1u32.to_le_bytes()[..],
        &0x0102u16.to_le_bytes(),
        &0x1009u16.to_le_bytes(),
        &1u32.to_le_bytes(),
        &(value.len() as u32).to_le_bytes(),
        value,
        &pad,
    ]
    .concat()
}

#[test]
fn mutations_of_real_world_files_never_panic() {
    let dir = std::env::var_os("POSTWIRE_TNEF_TESTDATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/tnef-testdata"
            ))
        })
        .join("test-data");
    let mut rng = Rng(42);
    let mut decoded = 0;
    for name in [
        "winmail.dat",
        "one-file.tnef",
        "long-filename.tnef",
        "multi-value-attribute.tnef",
        "rtf.tnef",
    ] {
        let data = std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e} (run scripts/setup.sh)"));
        for _ in 0..400 {
            let mut d = data.clone();
            for _ in 0..=rng.below(3) {
                let i = 6 + rng.below(d.len() - 6);
                d[i] ^= 1 << rng.below(8);
            }
            repair_checksums(&mut d);
            if exercise(&d) {
                decoded += 1;
            }
        }
    }
    assert!(decoded > 0 && decoded < 2000, "{decoded} of 2000 decoded");
}
