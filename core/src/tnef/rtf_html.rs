//! RTF that carries another format ([MS-OXRTFEX]): de-encapsulating the HTML
//! (`\fromhtml1`, with `{\*\htmltagN ...}` groups and `\htmlrtf` toggles) or
//! the plain text (`\fromtext`) that Outlook wraps in RTF, and the reverse:
//! wrapping HTML or text in RTF for the writer.
//!
//! Our own: no crate does RTF de-encapsulation. The tokenizer handles only
//! what de-encapsulation needs (groups, control words and symbols, `\'hh`,
//! `\uN` with `\ucN` fallbacks, ignorable destinations); it is not an RTF
//! renderer.

use super::codepage;

/// What an RTF body encapsulates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encapsulated {
    /// `\fromhtml1`: the original HTML.
    Html(String),
    /// `\fromtext`: the original plain text.
    Text(String),
}

/// Destinations whose content is never text.
const SKIPPED_DESTINATIONS: &[&[u8]] = &[
    b"fonttbl",
    b"colortbl",
    b"stylesheet",
    b"info",
    b"pict",
    b"object",
    b"header",
    b"footer",
    b"headerl",
    b"headerr",
    b"footerl",
    b"footerr",
    b"themedata",
    b"colorschememapping",
    b"latentstyles",
    b"datastore",
    b"listtable",
    b"listoverridetable",
    b"rsidtbl",
    b"generator",
    b"xmlnstbl",
    b"mmathPr",
    b"pgdsctbl",
    b"filetbl",
    b"revtbl",
    b"fldinst",
];

#[derive(Clone, Copy)]
struct Group {
    skip: bool,
    htmltag: bool,
    htmlrtf: bool,
    uc: usize,
}

/// Collects output: 8-bit bytes in the RTF's code page, flushed to text
/// whenever a Unicode character arrives.
struct Out {
    text: String,
    bytes: Vec<u8>,
    code_page: u32,
}

impl Out {
    fn flush(&mut self) {
        if !self.bytes.is_empty() {
            self.text
                .push_str(&codepage::decode(&self.bytes, self.code_page));
            self.bytes.clear();
        }
    }
    fn byte(&mut self, b: u8) {
        self.bytes.push(b);
    }
    fn char(&mut self, c: char) {
        if c.is_ascii() {
            self.bytes.push(c as u8);
        } else {
            self.flush();
            self.text.push(c);
        }
    }
    fn str(&mut self, s: &str) {
        s.chars().for_each(|c| self.char(c));
    }
}

/// Extracts the HTML or text that an RTF body encapsulates; `None` when the
/// RTF is not an encapsulation (no `\fromhtml1` or `\fromtext` in its header).
///
/// Lenient: unbalanced braces and unknown control words are tolerated.
pub fn deencapsulate(rtf: &[u8]) -> Option<Encapsulated> {
    let head = &rtf[..rtf.len().min(2048)];
    let contains = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    let html = contains(b"\\fromhtml1");
    if !html && !contains(b"\\fromtext") {
        return None;
    }
    let mut out = Out {
        text: String::new(),
        bytes: Vec::new(),
        code_page: 1252,
    };
    let mut stack: Vec<Group> = Vec::new();
    let mut g = Group {
        skip: false,
        htmltag: false,
        htmlrtf: false,
        uc: 1,
    };
    let mut fallback_skip = 0usize;
    let mut i = 0;
    let emit = |g: &Group| !g.skip && (g.htmltag || !g.htmlrtf);
    while let Some(&b) = rtf.get(i) {
        i += 1;
        match b {
            b'{' => {
                stack.push(g);
                fallback_skip = 0;
            }
            b'}' => {
                if let Some(prev) = stack.pop() {
                    g = prev;
                }
                fallback_skip = 0;
            }
            b'\r' | b'\n' => {}
            b'\\' => {
                let Some(&next) = rtf.get(i) else { break };
                if next.is_ascii_alphabetic() {
                    let start = i;
                    while rtf.get(i).is_some_and(u8::is_ascii_alphabetic) {
                        i += 1;
                    }
                    let word = &rtf[start..i];
                    let num_start = i;
                    if rtf.get(i) == Some(&b'-') {
                        i += 1;
                    }
                    while rtf.get(i).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                    }
                    let param: Option<i64> = std::str::from_utf8(&rtf[num_start..i])
                        .ok()
                        .and_then(|s| s.parse().ok());
                    if rtf.get(i) == Some(&b' ') {
                        i += 1;
                    }
                    if fallback_skip > 0 {
                        fallback_skip -= 1;
                        continue;
                    }
                    control_word(word, param, &mut g, &mut out, &mut fallback_skip, emit);
                } else {
                    i += 1;
                    match next {
                        b'\'' => {
                            let hex = rtf
                                .get(i..i + 2)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u8::from_str_radix(h, 16).ok());
                            i += 2;
                            if fallback_skip > 0 {
                                fallback_skip -= 1;
                            } else if let (Some(v), true) = (hex, emit(&g)) {
                                out.byte(v);
                            }
                        }
                        b'*' => {
                            // An ignorable destination: only htmltag is ours.
                            let is_htmltag = rtf[i..].starts_with(b"\\htmltag");
                            if is_htmltag {
                                g.htmltag = true;
                            } else {
                                g.skip = true;
                            }
                        }
                        b'\\' | b'{' | b'}' => {
                            if fallback_skip > 0 {
                                fallback_skip -= 1;
                            } else if emit(&g) {
                                out.byte(next);
                            }
                        }
                        b'~' if emit(&g) => out.char('\u{A0}'),
                        b'\r' | b'\n' if emit(&g) => out.str("\r\n"),
                        _ => {}
                    }
                }
            }
            _ => {
                if fallback_skip > 0 {
                    fallback_skip -= 1;
                } else if emit(&g) {
                    out.byte(b);
                }
            }
        }
    }
    out.flush();
    Some(if html {
        Encapsulated::Html(out.text)
    } else {
        Encapsulated::Text(out.text)
    })
}

fn control_word(
    word: &[u8],
    param: Option<i64>,
    g: &mut Group,
    out: &mut Out,
    fallback_skip: &mut usize,
    emit: impl Fn(&Group) -> bool,
) {
    match word {
        b"htmltag" => g.htmltag = true,
        b"mhtmltag" => g.skip = true,
        b"htmlrtf" => g.htmlrtf = param != Some(0),
        b"ansicpg" => {
            if let Some(cp) = param.and_then(|p| u32::try_from(p).ok()) {
                out.flush();
                out.code_page = cp;
            }
        }
        b"uc" => {
            g.uc = param
                .and_then(|p| usize::try_from(p).ok())
                .unwrap_or(1)
                .min(8)
        }
        b"u" => {
            if let Some(p) = param {
                let unit = if p < 0 { p + 65_536 } else { p } as u32;
                if emit(g) {
                    out.char(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                *fallback_skip = g.uc;
            }
        }
        _ if SKIPPED_DESTINATIONS.contains(&word) => g.skip = true,
        _ if !emit(g) => {}
        b"par" | b"line" => out.str("\r\n"),
        b"tab" => out.char('\t'),
        b"lquote" => out.char('\u{2018}'),
        b"rquote" => out.char('\u{2019}'),
        b"ldblquote" => out.char('\u{201C}'),
        b"rdblquote" => out.char('\u{201D}'),
        b"bullet" => out.char('\u{2022}'),
        b"endash" => out.char('\u{2013}'),
        b"emdash" => out.char('\u{2014}'),
        _ => {}
    }
}

// ---------------------------------------------------------------- writing

const HEADER_FONTS: &str = "\\deff0{\\fonttbl{\\f0\\fswiss\\fcharset0 Arial;}}\\uc1\\f0\\fs20 ";

/// Appends `text` to RTF, escaped: braces and backslashes, tabs, and
/// non-ASCII characters as `\uN?`. Line feeds become `lf`.
fn escape(rtf: &mut String, text: &str, lf: &str) {
    for c in text.chars() {
        match c {
            '\\' | '{' | '}' => {
                rtf.push('\\');
                rtf.push(c);
            }
            '\n' => rtf.push_str(lf),
            '\r' if lf == "\\par " => {}
            '\r' => rtf.push_str("\\'0d"),
            '\t' => rtf.push_str("\\tab "),
            c if c.is_ascii() && !c.is_ascii_control() => rtf.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    rtf.push_str(&format!("\\u{}?", *u as i16));
                }
            }
        }
    }
}

/// Wraps plain text in RTF (`\fromtext`): what Outlook writes for a plain-text message.
pub fn encapsulate_text(text: &str) -> String {
    let mut rtf = format!("{{\\rtf1\\ansi\\ansicpg1252\\fromtext {HEADER_FONTS}");
    escape(&mut rtf, text, "\\par\r\n");
    rtf.push('}');
    rtf
}

/// Wraps HTML in RTF (`\fromhtml1`): tags and non-displayed content go into
/// `{\*\htmltag}` groups, displayed text stays RTF text, so that an RTF
/// reader shows the text and a de-encapsulating reader gets the HTML back.
pub fn encapsulate_html(html: &str) -> String {
    let mut rtf = format!("{{\\rtf1\\ansi\\ansicpg1252\\fromhtml1 {HEADER_FONTS}");
    let mut hidden_depth = 0usize; // inside <head>, <style>, <script>, <title>
    let mut rest = html;
    while !rest.is_empty() {
        if rest.starts_with('<') {
            let end = rest.find('>').map_or(rest.len(), |e| e + 1);
            let tag = &rest[..end];
            rest = &rest[end..];
            let name: String = tag
                .trim_start_matches('<')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '!')
                .collect::<String>()
                .to_ascii_lowercase();
            rtf.push_str("{\\*\\htmltag0 ");
            escape(&mut rtf, tag, "\\'0a");
            rtf.push('}');
            match name.as_str() {
                "head" | "style" | "script" | "title" => hidden_depth += 1,
                "/head" | "/style" | "/script" | "/title" => {
                    hidden_depth = hidden_depth.saturating_sub(1)
                }
                "br" | "br/" | "/p" | "/div" | "/h1" | "/h2" | "/h3" | "/h4" | "/h5" | "/h6"
                | "/li" | "/tr" => {
                    rtf.push_str("\\htmlrtf \\par\r\n\\htmlrtf0 ");
                }
                _ => {}
            }
            continue;
        }
        let end = rest.find('<').unwrap_or(rest.len());
        let text = &rest[..end];
        rest = &rest[end..];
        if hidden_depth > 0 {
            rtf.push_str("{\\*\\htmltag0 ");
            escape(&mut rtf, text, "\\'0a");
            rtf.push('}');
            continue;
        }
        let mut t = text;
        while !t.is_empty() {
            let amp = t.find('&').unwrap_or(t.len());
            let (plain, after) = t.split_at(amp);
            for (k, line) in plain.split('\n').enumerate() {
                if k > 0 {
                    rtf.push_str("{\\*\\htmltag0 \\'0a}\\htmlrtf  \\htmlrtf0 ");
                }
                escape(&mut rtf, line, "\\'0a");
            }
            t = after;
            if t.is_empty() {
                break;
            }
            let semi = t.find(';').filter(|&s| s < 12).map(|s| s + 1);
            let (entity, after) = t.split_at(semi.unwrap_or(1));
            rtf.push_str("{\\*\\htmltag0 ");
            escape(&mut rtf, entity, "\\'0a");
            rtf.push('}');
            if let Some(c) = decode_entity(entity) {
                rtf.push_str("\\htmlrtf ");
                escape(&mut rtf, &c.to_string(), "");
                rtf.push_str("\\htmlrtf0 ");
            }
            t = after;
        }
    }
    rtf.push('}');
    rtf
}

fn decode_entity(e: &str) -> Option<char> {
    let body = e.strip_prefix('&')?.strip_suffix(';')?;
    match body {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{A0}'),
        _ => {
            let n = body.strip_prefix('#')?;
            let v = match n.strip_prefix(['x', 'X']) {
                Some(h) => u32::from_str_radix(h, 16).ok()?,
                None => n.parse().ok()?,
            };
            char::from_u32(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_survives_encapsulation_byte_for_byte() {
        let html = "<html><head><style>p {color: red}</style></head>\n<body><p>Caf\u{e9} &amp; \"t\u{e9}\" 日本 {x} \\y</p>\n<br><img src=\"cid:logo@x\"></body></html>";
        let rtf = encapsulate_html(html);
        assert!(rtf.is_ascii());
        assert_eq!(
            deencapsulate(rtf.as_bytes()),
            Some(Encapsulated::Html(html.to_owned()))
        );
    }

    #[test]
    fn text_survives_encapsulation_with_crlf_lines() {
        let rtf = encapsulate_text("Hello {world}\nsecond \\ line \u{20ac}");
        assert_eq!(
            deencapsulate(rtf.as_bytes()),
            Some(Encapsulated::Text(
                "Hello {world}\r\nsecond \\ line \u{20ac}".to_owned()
            ))
        );
    }

    #[test]
    fn outlook_style_encapsulation_is_read() {
        let rtf = br"{\rtf1\ansi\ansicpg1252\fromhtml1 \fbidis \deff0{\fonttbl{\f0\fswiss Arial;}}
{\*\htmltag19 <html>}{\*\htmltag34 <head>}{\*\htmltag41 <style>}{\*\htmltag241 p\{x:y\}}{\*\htmltag49 </style>}{\*\htmltag35 </head>}
{\*\htmltag50 <body>}\htmlrtf {\htmlrtf0 {\*\htmltag64 <p>}\htmlrtf {\htmlrtf0 Gr\'fc\'dfe \u8364\'80{\*\htmltag84 &nbsp;}\htmlrtf \'a0\htmlrtf0 x\htmlrtf\par}\htmlrtf0 {\*\htmltag72 </p>}{\*\mhtmltag4 <img src=cid:x>}{\*\htmltag58 </body>}}";
        assert_eq!(
            deencapsulate(rtf),
            Some(Encapsulated::Html(
                "<html><head><style>p{x:y}</style></head><body><p>Grüße €&nbsp;x</p></body>"
                    .to_owned()
            ))
        );
        assert_eq!(deencapsulate(br"{\rtf1\ansi hello}"), None);
    }
}
