//! Windows code pages for TNEF's 8-bit strings (attOemCodepage,
//! PidTagInternetCodepage, RTF `\ansicpgN`).
//!
//! Windows-1252, ISO-8859-1, US-ASCII and UTF-8 are handled here without any
//! table crate; with the `full-encoding` feature every other code page that
//! encoding_rs knows (the CJK, Cyrillic, Greek... pages) decodes too. Writing
//! always uses Windows-1252 for the legacy 8-bit attributes (MAPI strings are
//! written as UTF-16), which is what Outlook reads everywhere.

/// Characters 0x80..=0x9F of Windows-1252; 0 marks an unassigned byte.
const CP1252_HIGH: [u16; 32] = [
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC,
    0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
];

/// The code page Windows uses when none is given.
pub const DEFAULT_CODE_PAGE: u32 = 1252;

/// Decodes `bytes` in Windows code page `code_page`. Unknown code pages fall
/// back to Windows-1252, which never fails; invalid sequences become U+FFFD.
pub fn decode(bytes: &[u8], code_page: u32) -> String {
    match code_page {
        65001 => String::from_utf8_lossy(bytes).into_owned(),
        20127 | 28591 => bytes.iter().map(|&b| char::from(b)).collect(),
        1252 | 0 => decode_1252(bytes),
        1200 => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        other => decode_other(bytes, other).unwrap_or_else(|| decode_1252(bytes)),
    }
}

fn decode_1252(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9F => {
                let u = CP1252_HIGH[usize::from(b - 0x80)];
                if u == 0 {
                    char::from(b)
                } else {
                    char::from_u32(u32::from(u)).unwrap_or(char::REPLACEMENT_CHARACTER)
                }
            }
            _ => char::from(b),
        })
        .collect()
}

#[cfg(feature = "full-encoding")]
fn decode_other(bytes: &[u8], code_page: u32) -> Option<String> {
    let label = match code_page {
        874 => "windows-874",
        932 => "shift_jis",
        936 => "gbk",
        949 => "euc-kr",
        950 => "big5",
        1250..=1258 => return decode_windows(bytes, code_page),
        10000 => "macintosh",
        20866 => "koi8-r",
        21866 => "koi8-u",
        28592 => "iso-8859-2",
        28593 => "iso-8859-3",
        28594 => "iso-8859-4",
        28595 => "iso-8859-5",
        28596 => "iso-8859-6",
        28597 => "iso-8859-7",
        28598 => "iso-8859-8",
        28603 => "iso-8859-13",
        28605 => "iso-8859-15",
        50220..=50222 => "iso-2022-jp",
        51932 => "euc-jp",
        51949 => "euc-kr",
        54936 => "gb18030",
        _ => return None,
    };
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes())?;
    Some(encoding.decode_without_bom_handling(bytes).0.into_owned())
}

#[cfg(feature = "full-encoding")]
fn decode_windows(bytes: &[u8], code_page: u32) -> Option<String> {
    let label = format!("windows-{code_page}");
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes())?;
    Some(encoding.decode_without_bom_handling(bytes).0.into_owned())
}

#[cfg(not(feature = "full-encoding"))]
fn decode_other(_bytes: &[u8], _code_page: u32) -> Option<String> {
    None
}

/// Encodes `text` in Windows-1252; characters it lacks become `?`.
pub fn encode_1252(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| {
            let u = u32::from(c);
            if u < 0x80 || (0xA0..=0xFF).contains(&u) {
                u as u8
            } else {
                CP1252_HIGH
                    .iter()
                    .position(|&h| h != 0 && u32::from(h) == u)
                    .map_or(b'?', |i| 0x80 + i as u8)
            }
        })
        .collect()
}

/// Decodes UTF-16LE, dropping a trailing NUL terminator (and what follows it).
pub fn decode_utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// Cuts an 8-bit string at its first NUL (TNEF strings are NUL-terminated).
pub fn trim_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(i) => &bytes[..i],
        None => bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_1252_round_trips_its_own_characters() {
        let text = "Café € – “quoted” ÿ";
        assert_eq!(decode(&encode_1252(text), 1252), text);
        assert_eq!(encode_1252("Ж"), b"?");
    }

    #[cfg(feature = "full-encoding")]
    #[test]
    fn other_code_pages_decode_with_encoding_rs() {
        assert_eq!(decode(&[0xC6, 0xE8, 0xE2], 1251), "Жив");
        assert_eq!(decode(&[0x93, 0xFA, 0x96, 0x7B], 932), "日本");
    }
}
