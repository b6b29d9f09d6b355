//! Compressed RTF ([MS-OXRTFCP]): the LZFu codec that PidTagRtfCompressed
//! uses, with its CRC-32, and the uncompressed "MELA" form.
//!
//! Why our own and not the `compressed-rtf` crate (MIT, Microsoft, 1.0.1):
//! that crate slices its input without length checks (a buffer shorter than
//! 16 bytes, or a "MELA" header with a large raw size, panics), preallocates
//! by the untrusted raw-size header, returns a `String` cut at the first NUL
//! rather than the bytes, and its compressor scans the whole 4 KiB window for
//! every input byte. The codec is small; this one never panics, never
//! allocates beyond what the input can expand to, and finds matches through a
//! hash chain.

use super::error::{Result, TnefError};

/// `LZFu`: LZ77-compressed RTF.
const COMPRESSED: u32 = 0x7546_5A4C;
/// `MELA`: uncompressed RTF with the same header.
const UNCOMPRESSED: u32 = 0x414C_454D;
/// Size of the ring dictionary.
const DICT_SIZE: usize = 4096;
/// Longest match a reference can encode.
const MAX_MATCH: usize = 17;
/// Shortest match worth a two-byte reference.
const MIN_MATCH: usize = 3;
/// How many earlier positions the compressor tries per byte.
const CHAIN_DEPTH: usize = 64;

/// The dictionary's initial contents, fixed by [MS-OXRTFCP] 2.1.3.1.1.
const INITIAL_DICTIONARY: &[u8] = b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx";

/// The CRC-32 table of [MS-OXRTFCP] 2.1.3.2 (polynomial 0xEDB88320).
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC of compressed RTF: CRC-32 without pre- or post-inversion.
pub fn crc32(data: &[u8]) -> u32 {
    data.iter().fold(0u32, |crc, &b| {
        CRC_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

fn err(msg: impl Into<String>) -> TnefError {
    TnefError::CompressedRtf(msg.into())
}

/// Decompresses a PidTagRtfCompressed value (LZFu or MELA) into RTF bytes,
/// checking the size fields and the CRC.
///
/// Strict: a bad CRC, a truncated stream, an unknown type or output that does
/// not reach the announced size is an error. Output never exceeds the
/// announced size, and the announced size is trusted only as a ceiling.
pub fn decompress(data: &[u8]) -> Result<Vec<u8>> {
    let header = data.get(..16).ok_or_else(|| {
        err(format!(
            "{} bytes is shorter than the 16-byte header",
            data.len()
        ))
    })?;
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (comp_size, raw_size, comp_type, crc) = (word(0), word(4), word(8), word(12));
    let end = (comp_size as usize)
        .checked_add(4)
        .filter(|&e| e >= 16 && e <= data.len())
        .ok_or_else(|| {
            err(format!(
                "header says {comp_size} compressed bytes, the value holds {}",
                data.len().saturating_sub(4)
            ))
        })?;
    let body = &data[16..end];
    let raw_size = raw_size as usize;
    match comp_type {
        UNCOMPRESSED => body.get(..raw_size).map(<[u8]>::to_vec).ok_or_else(|| {
            err(format!(
                "MELA header says {raw_size} bytes, {} present",
                body.len()
            ))
        }),
        COMPRESSED => {
            let computed = crc32(body);
            if computed != crc {
                return Err(err(format!(
                    "CRC 0x{crc:08X} does not match computed 0x{computed:08X}"
                )));
            }
            lzfu_decode(body, raw_size)
        }
        other => Err(err(format!("unknown compression type 0x{other:08X}"))),
    }
}

fn lzfu_decode(body: &[u8], raw_size: usize) -> Result<Vec<u8>> {
    let mut dict = [0u8; DICT_SIZE];
    dict[..INITIAL_DICTIONARY.len()].copy_from_slice(INITIAL_DICTIONARY);
    let mut write = INITIAL_DICTIONARY.len();
    // Each input byte yields at most MAX_MATCH/2 output bytes: bounded by the input.
    let mut out = Vec::with_capacity(raw_size.min(body.len().saturating_mul(MAX_MATCH / 2 + 1)));
    let mut pos = 0;
    'runs: while pos < body.len() && out.len() < raw_size {
        let control = body[pos];
        pos += 1;
        for bit in 0..8 {
            if out.len() >= raw_size {
                break 'runs;
            }
            if control & (1 << bit) == 0 {
                let Some(&b) = body.get(pos) else { break 'runs };
                pos += 1;
                out.push(b);
                dict[write] = b;
                write = (write + 1) % DICT_SIZE;
            } else {
                let (Some(&hi), Some(&lo)) = (body.get(pos), body.get(pos + 1)) else {
                    return Err(err(format!("reference cut short at byte {}", pos + 16)));
                };
                pos += 2;
                let token = u16::from_be_bytes([hi, lo]);
                let mut offset = usize::from(token >> 4);
                let length = usize::from(token & 0xF) + 2;
                if offset == write {
                    break 'runs;
                }
                for _ in 0..length.min(raw_size - out.len()) {
                    let b = dict[offset];
                    offset = (offset + 1) % DICT_SIZE;
                    out.push(b);
                    dict[write] = b;
                    write = (write + 1) % DICT_SIZE;
                }
            }
        }
    }
    if out.len() != raw_size {
        return Err(err(format!(
            "decompressed to {} bytes, header says {raw_size}",
            out.len()
        )));
    }
    Ok(out)
}

/// Compresses RTF bytes into an LZFu PidTagRtfCompressed value with its CRC.
pub fn compress(rtf: &[u8]) -> Result<Vec<u8>> {
    let too_large = || TnefError::TooLarge {
        what: "RTF body",
        len: rtf.len(),
    };
    let raw_size = u32::try_from(rtf.len()).map_err(|_| too_large())?;
    let base = INITIAL_DICTIONARY.len();
    let at = |v: usize| -> u8 {
        if v < base {
            INITIAL_DICTIONARY[v]
        } else {
            rtf[v - base]
        }
    };
    let total = base + rtf.len();
    let hash = |v: usize| -> usize {
        let h = (u32::from(at(v)) << 16) ^ (u32::from(at(v + 1)) << 8) ^ u32::from(at(v + 2));
        (h.wrapping_mul(2_654_435_761) >> 20) as usize
    };
    // head[h]: latest virtual position with hash h; prev[v % DICT_SIZE]: the one before.
    let mut head = vec![usize::MAX; 4096];
    let mut prev = vec![usize::MAX; DICT_SIZE];
    let insert = |v: usize, head: &mut Vec<usize>, prev: &mut Vec<usize>| {
        if v + MIN_MATCH <= total {
            let h = hash(v);
            prev[v % DICT_SIZE] = head[h];
            head[h] = v;
        }
    };
    for v in 0..base {
        insert(v, &mut head, &mut prev);
    }

    let mut out = vec![0u8; 16];
    let mut v = base;
    loop {
        let control_at = out.len();
        out.push(0);
        let mut control = 0u8;
        let mut finished = false;
        for bit in 0..8 {
            if v >= total {
                let token = ((v % DICT_SIZE) as u16) << 4;
                out.extend_from_slice(&token.to_be_bytes());
                control |= 1 << bit;
                finished = true;
                break;
            }
            let (best_pos, best_len) = longest_match(v, total, &at, &head, &prev, hash);
            if best_len >= MIN_MATCH {
                let token = (((best_pos % DICT_SIZE) as u16) << 4) | (best_len - 2) as u16;
                out.extend_from_slice(&token.to_be_bytes());
                control |= 1 << bit;
                for k in 0..best_len {
                    insert(v + k, &mut head, &mut prev);
                }
                v += best_len;
            } else {
                out.push(at(v));
                insert(v, &mut head, &mut prev);
                v += 1;
            }
        }
        out[control_at] = control;
        if finished {
            break;
        }
    }
    let comp_size = u32::try_from(out.len() - 4).map_err(|_| too_large())?;
    let crc = crc32(&out[16..]);
    out[0..4].copy_from_slice(&comp_size.to_le_bytes());
    out[4..8].copy_from_slice(&raw_size.to_le_bytes());
    out[8..12].copy_from_slice(&COMPRESSED.to_le_bytes());
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// The longest earlier match (within the 4 KiB window) for position `v`.
fn longest_match(
    v: usize,
    total: usize,
    at: &impl Fn(usize) -> u8,
    head: &[usize],
    prev: &[usize],
    hash: impl Fn(usize) -> usize,
) -> (usize, usize) {
    let max = MAX_MATCH.min(total - v);
    if max < MIN_MATCH {
        return (0, 0);
    }
    let (mut best_pos, mut best_len) = (0, 0);
    let mut candidate = head[hash(v)];
    for _ in 0..CHAIN_DEPTH {
        if candidate == usize::MAX || candidate >= v || v - candidate >= DICT_SIZE {
            break;
        }
        let len = (0..max)
            .take_while(|&k| at(candidate + k) == at(v + k))
            .count();
        if len > best_len {
            best_pos = candidate;
            best_len = len;
            if len == max {
                break;
            }
        }
        let next = prev[candidate % DICT_SIZE];
        if next >= candidate {
            break;
        }
        candidate = next;
    }
    (best_pos, best_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [MS-OXRTFCP] 4.1.1, "Example 1: Simple Compressed RTF".
    const SPEC_COMPRESSED: &[u8] = &[
        0x2d, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xf1, 0xc5, 0xc7,
        0xa7, 0x03, 0x00, 0x0a, 0x00, 0x72, 0x63, 0x70, 0x67, 0x31, 0x32, 0x35, 0x42, 0x32, 0x0a,
        0xf3, 0x20, 0x68, 0x65, 0x6c, 0x09, 0x00, 0x20, 0x62, 0x77, 0x05, 0xb0, 0x6c, 0x64, 0x7d,
        0x0a, 0x80, 0x0f, 0xa0,
    ];
    const SPEC_RTF: &[u8] = b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n";

    #[test]
    fn decompresses_the_specification_example() {
        assert_eq!(decompress(SPEC_COMPRESSED).unwrap(), SPEC_RTF);
    }

    /// [MS-OXRTFCP] 4.1.2: a reference that crosses the write position.
    #[test]
    fn decompresses_a_reference_crossing_the_write_position() {
        let data = [
            0x1a, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xe2, 0xd4,
            0x4b, 0x51, 0x41, 0x00, 0x04, 0x20, 0x57, 0x58, 0x59, 0x5a, 0x0d, 0x6e, 0x7d, 0x01,
            0x0e, 0xb0,
        ];
        assert_eq!(decompress(&data).unwrap(), b"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}");
    }

    #[test]
    fn compress_round_trips_and_shrinks_repetitive_rtf() {
        let mut rtf =
            b"{\\rtf1\\ansi\\ansicpg1252\\fromtext \\deff0{\\fonttbl{\\f0\\fswiss Arial;}}"
                .to_vec();
        for i in 0..2000 {
            rtf.extend_from_slice(format!("line {i} of the body\\par\r\n").as_bytes());
        }
        rtf.push(b'}');
        let packed = compress(&rtf).unwrap();
        assert!(
            packed.len() < rtf.len() / 2,
            "{} vs {}",
            packed.len(),
            rtf.len()
        );
        assert_eq!(decompress(&packed).unwrap(), rtf);
        for text in [
            &b""[..],
            b"a",
            b"ab",
            b"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}",
            SPEC_RTF,
        ] {
            assert_eq!(decompress(&compress(text).unwrap()).unwrap(), text);
        }
    }

    #[test]
    fn a_flipped_byte_is_a_crc_error() {
        let mut data = SPEC_COMPRESSED.to_vec();
        data[20] ^= 0x01;
        let e = decompress(&data).unwrap_err().to_string();
        assert!(e.contains("CRC"), "{e}");
    }

    #[test]
    fn short_and_lying_headers_are_errors_not_panics() {
        assert!(decompress(&[1, 2, 3]).is_err());
        let mut mela = vec![0u8; 16];
        mela[0..4].copy_from_slice(&12u32.to_le_bytes());
        mela[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        mela[8..12].copy_from_slice(&UNCOMPRESSED.to_le_bytes());
        assert!(decompress(&mela).unwrap_err().to_string().contains("MELA"));
        let mut big = SPEC_COMPRESSED.to_vec();
        big[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decompress(&big).is_err());
    }
}
