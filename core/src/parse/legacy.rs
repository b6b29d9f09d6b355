//! The legacy multi-byte charsets (Shift_JIS, EUC-JP, ISO-2022-JP, GBK,
//! GB18030, Big5, EUC-KR) in a build without the `full-encoding` feature.
//!
//! The npm package leaves encoding_rs out (its tables would add ~127 KB
//! gzipped to the browser module); mail-parser then turns text in those
//! charsets into lossy UTF-8. The host running the module has the tables
//! anyway (a browser's or Node.js's `TextDecoder`, which implements the same
//! WHATWG Encoding Standard as encoding_rs), so the parser asks it through
//! [`LegacyDecoder`] for the text of body parts and of RFC 2047 encoded
//! words in those charsets. With `full-encoding`, mail-parser decodes them
//! itself and no decoder is asked.
//!
//! RFC 2047 is decoded here rather than by mail-parser because mail-parser
//! has already turned the words into lossy text by the time core sees them,
//! and keeps its own decoder private. Only headers that hold at least one
//! word in a legacy charset are decoded here; every other header keeps
//! mail-parser's reading.

use base64::Engine as _;

/// Decodes bytes in a legacy multi-byte charset, as a host's `TextDecoder` does.
pub trait LegacyDecoder {
    /// `bytes` decoded from `encoding`, a WHATWG Encoding Standard name
    /// (`shift_jis`, `euc-jp`, `iso-2022-jp`, `gbk`, `gb18030`, `big5`,
    /// `euc-kr`), malformed sequences replaced by U+FFFD; `None` if the host
    /// does not know the encoding.
    fn decode(&self, encoding: &str, bytes: &[u8]) -> Option<String>;
}

/// Labels (lower case, `_` for `-`) of the multi-byte charsets as mailers
/// write them, and the WHATWG name of each. mail-parser knows a few more
/// aliases (`csshiftjis`, `iso-ir-149`...); text in those keeps the lossy
/// reading in the npm build. A table scanned in a loop rather than a
/// `match`: a fraction of the code in the browser module.
const LABELS: &[(&str, &str)] = &[
    ("shift_jis", "shift_jis"),
    ("sjis", "shift_jis"),
    ("x_sjis", "shift_jis"),
    ("ms_kanji", "shift_jis"),
    ("ms932", "shift_jis"),
    ("windows_31j", "shift_jis"),
    ("euc_jp", "euc-jp"),
    ("x_euc_jp", "euc-jp"),
    ("iso_2022_jp", "iso-2022-jp"),
    ("csiso2022jp", "iso-2022-jp"),
    ("gbk", "gbk"),
    ("x_gbk", "gbk"),
    ("cp936", "gbk"),
    ("ms936", "gbk"),
    ("windows_936", "gbk"),
    ("gb_2312", "gbk"),
    ("gb18030", "gb18030"),
    ("gb2312", "gb18030"),
    // Python's codec names, which its email package writes into headers.
    ("eucgb2312_cn", "gb18030"),
    ("euc_cn", "gb18030"),
    ("big5_tw", "big5"),
    ("big5", "big5"),
    ("big5_hkscs", "big5"),
    ("cn_big5", "big5"),
    ("x_x_big5", "big5"),
    ("euc_kr", "euc-kr"),
    ("ks_c_5601_1987", "euc-kr"),
    ("ksc5601", "euc-kr"),
    ("windows_949", "euc-kr"),
];

/// The WHATWG name of a charset label that needs a multi-byte table, for
/// the labels mail-parser maps to those tables (case-insensitive, `-` and
/// `_` alike).
pub fn legacy_encoding(label: &str) -> Option<&'static str> {
    let label = label.trim();
    let label = label
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(label)
        .as_bytes();
    // Compared in place (no lower-cased copy): the table is lower case with `_`.
    let same = |l: &str| {
        l.len() == label.len()
            && l.bytes()
                .zip(label.iter())
                .all(|(a, &b)| a == b.to_ascii_lowercase() || (a == b'_' && b == b'-'))
    };
    LABELS
        .iter()
        .find(|(l, _)| same(l))
        .map(|(_, encoding)| *encoding)
}

/// One `=?charset?enc?text?=` word: its charset label (language suffix
/// removed) and its decoded bytes; `None` if `s` does not start with one.
fn encoded_word(s: &str) -> Option<(&str, Vec<u8>, usize)> {
    let rest = s.strip_prefix("=?")?;
    let (charset, rest) = rest.split_once('?')?;
    let (enc, rest) = rest.split_once('?')?;
    // (Byte scans rather than `str::find` with a string pattern: the
    // substring searcher would cost the browser module kilobytes.)
    let end = rest.as_bytes().windows(2).position(|w| w == b"?=")?;
    let text = &rest[..end];
    if charset.is_empty() || text.contains(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let bytes = match enc {
        "B" | "b" => {
            // `&[u8]`, as spec.rs decodes: one instance of the decoder.
            let trimmed = text.trim_end_matches('=').as_bytes();
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(trimmed)
                .ok()?
        }
        "Q" | "q" => {
            let mut out = Vec::with_capacity(text.len());
            let b = text.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => out.push(b' '),
                    b'=' => {
                        let hi = hex_digit(*b.get(i + 1)?)?;
                        let lo = hex_digit(*b.get(i + 2)?)?;
                        out.push(hi << 4 | lo);
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            out
        }
        _ => return None,
    };
    let charset = charset.split('*').next().unwrap_or(charset);
    // "=?" + charset + "?" + enc + "?" + text + "?="
    let used = 2 + s[2..].find('?')? + 1 + enc.len() + 1 + end + 2;
    Some((charset, bytes, used))
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Text of one encoded word: legacy charsets through `decoder`, the others
/// through mail-parser's own tables.
fn word_text(charset: &str, bytes: &[u8], decoder: &dyn LegacyDecoder) -> Option<String> {
    if let Some(encoding) = legacy_encoding(charset) {
        return decoder.decode(encoding, bytes);
    }
    Some(
        match mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes()) {
            Some(decode) => decode(bytes),
            None => String::from_utf8_lossy(bytes).into_owned(),
        },
    )
}

/// Characters that make a display name need quotes in an address list.
fn needs_quotes(s: &str) -> bool {
    s.contains(|c| "()<>[]:;@\\,.\"".contains(c))
}

/// Decodes a raw header value whose encoded words include a legacy charset;
/// `None` when it has no such word (mail-parser's reading stands) or the
/// decoder does not know the charset. Folding is undone, white space between
/// two adjacent encoded words is dropped (RFC 2047, 6.2), the ends are
/// trimmed. With `address`, a decoded word holding address specials is
/// quoted so that the list still splits where it should.
pub(super) fn decode_header(
    raw: &str,
    decoder: &dyn LegacyDecoder,
    address: bool,
) -> Option<String> {
    let mut has_legacy = false;
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = String::new();
    let mut last_was_word = false;
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some((charset, bytes, used)) = encoded_word(rest) {
            has_legacy |= legacy_encoding(charset).is_some();
            let text = word_text(charset, &bytes, decoder)?;
            if !last_was_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            if address && needs_quotes(&text) {
                out.push('"');
                out.push_str(&text.replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
            } else {
                out.push_str(&text);
            }
            last_was_word = true;
            rest = &rest[used..];
            continue;
        }
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        if c == '\r' || c == '\n' {
            // Folding is undone: the line break goes, the white space after it stays.
        } else if c == ' ' || c == '\t' {
            pending_space.push(c);
        } else {
            out.push_str(&pending_space);
            pending_space.clear();
            out.push(c);
            last_was_word = false;
        }
        rest = chars.as_str();
    }
    out.push_str(&pending_space);
    has_legacy.then(|| out.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder that knows one mapping, to see what is asked of it.
    struct Fixed;
    impl LegacyDecoder for Fixed {
        fn decode(&self, encoding: &str, bytes: &[u8]) -> Option<String> {
            (encoding == "shift_jis").then(|| format!("<sjis:{}>", bytes.len()))
        }
    }

    #[test]
    fn labels_map_to_whatwg_names_and_single_byte_ones_do_not() {
        assert_eq!(legacy_encoding("Shift_JIS"), Some("shift_jis"));
        assert_eq!(legacy_encoding("\"ISO-2022-JP\""), Some("iso-2022-jp"));
        assert_eq!(legacy_encoding("ks_c_5601-1987"), Some("euc-kr"));
        assert_eq!(legacy_encoding("GB2312"), Some("gb18030"));
        assert_eq!(legacy_encoding("iso-8859-1"), None);
        assert_eq!(legacy_encoding("utf-8"), None);
    }

    #[test]
    fn a_header_without_legacy_words_is_left_to_mail_parser() {
        assert_eq!(decode_header("=?utf-8?Q?caf=C3=A9?=", &Fixed, false), None);
        assert_eq!(decode_header("plain text", &Fixed, false), None);
    }

    #[test]
    fn words_are_joined_without_the_space_between_them_and_other_text_is_kept() {
        let raw = "Re: =?shift_jis?B?gqA=?=\r\n =?utf-8?Q?_caf=C3=A9?= end";
        assert_eq!(
            decode_header(raw, &Fixed, false).as_deref(),
            Some("Re: <sjis:2> café end")
        );
    }

    #[test]
    fn in_an_address_a_decoded_name_with_specials_is_quoted() {
        let raw = "=?shift_jis?B?gqA=?= <a@example.jp>, =?utf-8?Q?Doe=2C_J?= <d@example.com>";
        assert_eq!(
            decode_header(raw, &Fixed, true).as_deref(),
            Some("\"<sjis:2>\" <a@example.jp>, \"Doe, J\" <d@example.com>")
        );
    }

    #[test]
    fn an_unknown_legacy_charset_or_a_broken_word_is_not_guessed() {
        assert_eq!(decode_header("=?big5?B?pKQ=?=", &Fixed, false), None);
        // Not a word (bad base64): kept as text, and no legacy word was found.
        assert_eq!(decode_header("=?shift_jis?B?***?=", &Fixed, false), None);
    }
}
