//! Fuzzes the spool's recovery, the reader of every file it finds after a
//! crash: arbitrary bytes as the journal and as segment files are opened as
//! a spool; recovery keeps the intact records, cuts torn tails, quarantines
//! damage, and never panics. Record decoders are also fed directly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postwire_relay::spool::record;
use postwire_relay::spool::{FsSpool, Spool, SpoolOptions};

fuzz_target!(|data: &[u8]| {
    // The decoders on their own.
    if let Ok((rec, used)) = record::decode(data) {
        assert!(used <= data.len());
        let _ = record::decode_message(rec.payload);
        let _ = record::decode_settle(rec.payload);
    }
    // Files: [journal length: 2 bytes LE][journal][segment 1][0xFF 0xFF][segment 2]...
    if data.len() < 2 {
        return;
    }
    let jlen = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let journal = &data[2..2 + jlen];
    let rest = &data[2 + jlen..];
    let Ok(dir) = tempfile::tempdir() else { return };
    let spool_dir = dir.path();
    let batches = spool_dir.join("batches");
    if std::fs::create_dir_all(&batches).is_err() {
        return;
    }
    let _ = std::fs::write(spool_dir.join("journal.log"), journal);
    // Each segment: raw bytes (first byte 1), or its chunks (split at 0) as
    // well-framed records with valid checksums, so that mutations reach the
    // payload decoders and recovery's bookkeeping, not only the CRC check.
    for (n, seg) in rest.split(|&b| b == 0xFF).take(4).enumerate() {
        let bytes = match seg.split_first() {
            Some((1, raw)) => raw.to_vec(),
            _ => {
                let mut out = Vec::new();
                for chunk in seg.split(|&b| b == 0).take(64) {
                    let kind = if chunk.len() % 2 == 0 {
                        record::Kind::Message
                    } else {
                        record::Kind::Settle
                    };
                    let _ = record::encode(&mut out, kind, &[chunk]);
                }
                out
            }
        };
        let _ = std::fs::write(batches.join(format!("{:020}.batch", n + 1)), bytes);
    }
    let opts = SpoolOptions {
        reserve_bytes: 0,
        ..SpoolOptions::default()
    };
    if let Ok(spool) = FsSpool::open(spool_dir, opts) {
        let _ = spool.depth();
        spool.close();
    }
});
