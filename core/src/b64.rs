//! A one-pass base64 decoder for the hot path of `spec::base64_bytes::decode`
//! (every base64 part that `parse` reads, and every base64 `content` of a
//! spec). It reads four symbols at a time straight into the output, skipping
//! white space between quanta, with no intermediate copy. It accepts exactly
//! what the general decoder accepts (white space anywhere, padding only at
//! the end, a final quantum without padding, zero trailing bits) and gives
//! `None` for anything else, so that the caller's general path reports the
//! error in its own words.
//!
//! Public (hidden) for the WebAssembly bindings, which decode base64
//! attachment contents with it before serde sees them.

const INVALID: u8 = 0xff;
const SPACE: u8 = 0xfe;

/// Symbol -> 6-bit value; `SPACE` for ASCII white space, `INVALID` otherwise
/// (including `=`, handled by the caller).
static TABLE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t[b' ' as usize] = SPACE;
    t[b'\t' as usize] = SPACE;
    t[b'\n' as usize] = SPACE;
    t[b'\r' as usize] = SPACE;
    t[0x0c] = SPACE;
    t
};

/// Decodes standard base64 as `spec::base64_bytes::decode` does, or `None`
/// where that would fail (or the input is unusual enough to leave to it).
///
/// `#[inline]` so that a caller in a crate built for speed (the npm
/// package's bindings, at opt-level 3) gets its own copy compiled at its
/// level; core itself is built for size there.
#[inline]
pub fn decode(input: &[u8]) -> Option<Vec<u8>> {
    // Plain slice indexing into a sized buffer: postwire-core is built at
    // opt-level z for the npm package, where `extend_from_slice`, iterator
    // adapters and even `Vec`'s `IndexMut` stay calls and cost more than the
    // decoding itself; indexing a slice is a bounds check, never a call.
    let mut vec = vec![0u8; input.len() / 4 * 3 + 3];
    let out = vec.as_mut_slice();
    let (mut o, mut i, n) = (0usize, 0usize, input.len());
    let (mut acc, mut held) = (0u32, 0u32);
    while i < n {
        // Whole quanta while nothing is held (line breaks fall between quanta).
        if held == 0 {
            while i + 4 <= n {
                let (a, b, c, d) = (
                    TABLE[input[i] as usize],
                    TABLE[input[i + 1] as usize],
                    TABLE[input[i + 2] as usize],
                    TABLE[input[i + 3] as usize],
                );
                if (a | b | c | d) >= 64 {
                    break;
                }
                let v = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
                out[o] = (v >> 16) as u8;
                out[o + 1] = (v >> 8) as u8;
                out[o + 2] = v as u8;
                o += 3;
                i += 4;
            }
            if i >= n {
                break;
            }
        }
        let c = input[i];
        match TABLE[c as usize] {
            SPACE => {}
            INVALID if c == b'=' => {
                // Padding: only more padding and white space may follow.
                if input[i..]
                    .iter()
                    .all(|&b| b == b'=' || TABLE[b as usize] == SPACE)
                {
                    break;
                }
                return None;
            }
            INVALID => return None,
            v => {
                acc = acc << 6 | u32::from(v);
                held += 1;
                if held == 4 {
                    out[o] = (acc >> 16) as u8;
                    out[o + 1] = (acc >> 8) as u8;
                    out[o + 2] = acc as u8;
                    o += 3;
                    (acc, held) = (0, 0);
                }
            }
        }
        i += 1;
    }
    match held {
        0 => {}
        2 if acc & 0xf == 0 => {
            out[o] = (acc >> 4) as u8;
            o += 1;
        }
        3 if acc & 0x3 == 0 => {
            out[o] = (acc >> 10) as u8;
            out[o + 1] = (acc >> 2) as u8;
            o += 2;
        }
        _ => return None,
    }
    vec.truncate(o);
    Some(vec)
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    fn general(s: &str) -> Option<Vec<u8>> {
        let compact: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        let end = compact
            .iter()
            .rposition(|&b| b != b'=')
            .map_or(0, |i| i + 1);
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&compact[..end])
            .ok()
    }

    #[test]
    fn agrees_with_the_general_decoder() {
        let mut cases: Vec<String> = [
            "",
            "=",
            "==",
            "QQ",
            "QQ=",
            "QQ==",
            "QUI",
            "QUI=",
            "QUJD",
            "QUJDRA",
            "QR==",
            "QUJ=",
            "Q",
            "QUJDR",
            "QU JD",
            "QU\r\nJD\r\n",
            " QUJD ",
            "QQ==\r\n",
            "QQ=\n=",
            "Q=Q=",
            "QUJD=QUJD",
            "QUJD\r\n==",
            "QU\tJ\x0cD",
            "QUJD!",
            "QUJD\u{e9}",
            "QU-D",
            "QU_D",
            "QUJD\x0b",
            "////",
            "++++",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut x: u32 = 1;
        for len in 0..300usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 24) as u8
                })
                .collect();
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let wrapped: Vec<&str> = text
                .as_bytes()
                .chunks(76)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect();
            cases.push(wrapped.join("\r\n"));
            cases.push(text.trim_end_matches('=').to_string());
            cases.push(format!("{text}\r\n"));
            if len % 7 == 0 {
                // white space inside a quantum
                let mut odd = text.clone();
                odd.insert(text.len() / 2, ' ');
                cases.push(odd);
            }
        }
        for case in &cases {
            assert_eq!(super::decode(case.as_bytes()), general(case), "{case:?}");
        }
    }
}
