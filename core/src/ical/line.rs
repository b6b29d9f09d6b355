//! Content lines (RFC 5545 section 3.1): unfolding and splitting them into
//! name, parameters and value on the way in; escaping, parameter quoting and
//! folding at 75 octets (never inside a UTF-8 sequence) on the way out.

use super::error::{IcalError, shorten};

/// The longest line, in octets without the CRLF, that the writer emits.
pub(crate) const MAX_OCTETS: usize = 75;

/// One unfolded content line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentLine {
    /// Property name, upper-cased.
    pub(crate) name: String,
    /// Parameters: upper-cased name and its values (quotes removed, RFC 6868 decoded).
    pub(crate) params: Vec<(String, Vec<String>)>,
    /// The raw value, still escaped.
    pub(crate) value: String,
    /// 1-based physical line where the content line starts.
    pub(crate) line: usize,
    /// The whole unfolded line, as it was.
    pub(crate) raw: String,
}

impl ContentLine {
    /// The first value of parameter `name` (upper-case).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }

    /// An error about this line's value.
    pub(crate) fn bad(&self, reason: impl Into<String>) -> IcalError {
        IcalError::BadValue {
            property: self.name.clone(),
            value: shorten(&self.value),
            reason: reason.into(),
            line: self.line,
        }
    }
}

/// Unfolds `bytes` into logical lines with the physical line number each
/// starts on. Accepts CRLF and bare LF; blank lines are skipped. Unfolding
/// works on octets before UTF-8 decoding, so a fold that some writer put
/// inside a multi-octet character is mended.
pub(crate) fn unfold(bytes: &[u8]) -> Result<Vec<(usize, String)>, IcalError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut logical: Vec<(usize, Vec<u8>)> = Vec::new();
    for (i, physical) in bytes.split(|b| *b == b'\n').enumerate() {
        let physical = physical.strip_suffix(b"\r").unwrap_or(physical);
        match physical.first() {
            Some(b' ' | b'\t') => match logical.last_mut() {
                Some((_, l)) => l.extend_from_slice(physical.get(1..).unwrap_or_default()),
                None => {
                    return Err(IcalError::Syntax {
                        line: i + 1,
                        reason: "a continuation line (starting with a space) comes first"
                            .to_string(),
                    });
                }
            },
            Some(_) => logical.push((i + 1, physical.to_vec())),
            None => {}
        }
    }
    logical
        .into_iter()
        .map(|(n, l)| match String::from_utf8(l) {
            Ok(s) => Ok((n, s)),
            Err(_) => Err(IcalError::NotUtf8 { line: n }),
        })
        .collect()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// Decodes RFC 6868 caret escapes in a parameter value (`^n`, `^'`, `^^`).
fn decode_caret(s: &str) -> String {
    if !s.contains('^') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '^' {
            match chars.peek() {
                Some('n') => out.push('\n'),
                Some('\'') => out.push('"'),
                Some('^') => out.push('^'),
                _ => {
                    out.push('^');
                    continue;
                }
            }
            chars.next();
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits a logical line into name, parameters and value.
pub(crate) fn parse_line(raw: &str, line: usize) -> Result<ContentLine, IcalError> {
    let syntax = |reason: String| IcalError::Syntax { line, reason };
    let name_end = raw.find(|c: char| !is_name_char(c)).unwrap_or(raw.len());
    let name = raw.get(..name_end).unwrap_or_default();
    if name.is_empty() {
        return Err(syntax(format!(
            "expected a property name in {:?}",
            shorten(raw)
        )));
    }
    let mut rest = raw.get(name_end..).unwrap_or_default();
    let mut params = Vec::new();
    loop {
        if let Some(value) = rest.strip_prefix(':') {
            return Ok(ContentLine {
                name: name.to_ascii_uppercase(),
                params,
                value: value.to_string(),
                line,
                raw: raw.to_string(),
            });
        }
        let Some(after) = rest.strip_prefix(';') else {
            return Err(syntax(format!(
                "expected ':' or ';' after {name} in {:?}",
                shorten(raw)
            )));
        };
        let pname_end = after
            .find(|c: char| !is_name_char(c))
            .unwrap_or(after.len());
        let pname = after.get(..pname_end).unwrap_or_default();
        rest = after.get(pname_end..).unwrap_or_default();
        let Some(after_eq) = rest.strip_prefix('=') else {
            return Err(syntax(format!(
                "parameter {pname:?} of {name} has no '=' value"
            )));
        };
        if pname.is_empty() {
            return Err(syntax(format!("empty parameter name in {name}")));
        }
        rest = after_eq;
        let mut values = Vec::new();
        loop {
            if let Some(quoted) = rest.strip_prefix('"') {
                let Some(close) = quoted.find('"') else {
                    return Err(syntax(format!(
                        "parameter {pname} of {name} has an unclosed quote"
                    )));
                };
                values.push(decode_caret(quoted.get(..close).unwrap_or_default()));
                rest = quoted.get(close + 1..).unwrap_or_default();
            } else {
                let end = rest.find([',', ';', ':', '"']).unwrap_or(rest.len());
                values.push(decode_caret(rest.get(..end).unwrap_or_default()));
                rest = rest.get(end..).unwrap_or_default();
            }
            match rest.strip_prefix(',') {
                Some(more) => rest = more,
                None => break,
            }
        }
        params.push((pname.to_ascii_uppercase(), values));
    }
}

/// Escapes TEXT (section 3.3.11): backslash, semicolon, comma and newlines.
pub(crate) fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`escape_text`]; an unknown escape keeps the escaped character.
pub(crate) fn unescape_text(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits a TEXT list (CATEGORIES) on unescaped commas and unescapes each item.
pub(crate) fn split_text_list(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            items.push(unescape_text(&current));
            current.clear();
        } else {
            current.push(c);
        }
    }
    if escaped {
        current.push('\\');
    }
    items.push(unescape_text(&current));
    items.retain(|i| !i.is_empty());
    items
}

/// A parameter value ready to write: RFC 6868-encoded, and quoted when it holds `:;,`.
pub(crate) fn param_value(s: &str) -> String {
    let mut v = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '^' => v.push_str("^^"),
            '"' => v.push_str("^'"),
            '\n' => v.push_str("^n"),
            c if c.is_control() => {}
            c => v.push(c),
        }
    }
    if v.contains([':', ';', ',']) || v.starts_with(' ') || v.ends_with(' ') {
        format!("\"{v}\"")
    } else {
        v
    }
}

/// Appends `line` folded at [`MAX_OCTETS`] with CRLF line ends; a fold never
/// splits a UTF-8 sequence.
pub(crate) fn fold_into(line: &str, out: &mut String) {
    let mut rest = line;
    let mut limit = MAX_OCTETS;
    loop {
        if rest.len() <= limit {
            out.push_str(rest);
            out.push_str("\r\n");
            return;
        }
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push_str(head);
        out.push_str("\r\n ");
        rest = tail;
        limit = MAX_OCTETS - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_keeps_lines_short_and_utf8_whole() {
        let text = format!("DESCRIPTION:{}", "Reunión ñandú 会議 😀 ".repeat(20));
        let mut out = String::new();
        fold_into(&text, &mut out);
        for l in out.split("\r\n") {
            assert!(l.len() <= MAX_OCTETS, "{} octets: {l}", l.len());
        }
        let unfolded = unfold(out.as_bytes()).expect("unfold");
        assert_eq!(unfolded, vec![(1, text)]);
    }

    #[test]
    fn params_quoted_and_plain() {
        let l = parse_line(
            "ATTENDEE;CN=\"Núñez, Ana\";ROLE=REQ-PARTICIPANT;DELEGATED-TO=\"mailto:a@x\",\"mailto:b@x\":mailto:ana@example.com",
            3,
        )
        .expect("line");
        assert_eq!(l.name, "ATTENDEE");
        assert_eq!(l.param("CN"), Some("Núñez, Ana"));
        assert_eq!(l.params[2].1, vec!["mailto:a@x", "mailto:b@x"]);
        assert_eq!(l.value, "mailto:ana@example.com");
        assert_eq!(param_value("Núñez, Ana"), "\"Núñez, Ana\"");
        assert_eq!(param_value("say \"hi\""), "say ^'hi^'");
        assert_eq!(decode_caret("say ^'hi^'"), "say \"hi\"");
    }

    #[test]
    fn bad_lines_name_their_line() {
        for (raw, needle) in [
            ("DTSTART", "expected ':'"),
            (":x", "property name"),
            ("A;B:x", "no '='"),
            ("A;B=\"x:y", "unclosed quote"),
        ] {
            let err = parse_line(raw, 7).expect_err(raw);
            assert_eq!(err.line(), Some(7));
            assert!(err.to_string().contains(needle), "{err}");
        }
        assert_eq!(unfold(b" x").err().and_then(|e| e.line()), Some(1));
        assert_eq!(
            unfold(b"A:1\r\nB:\xff").err().and_then(|e| e.line()),
            Some(2)
        );
    }

    #[test]
    fn text_escaping_round_trips() {
        let s = "a;b,c\\d\nline 2";
        assert_eq!(escape_text(s), "a\\;b\\,c\\\\d\\nline 2");
        assert_eq!(unescape_text(&escape_text(s)), s);
        assert_eq!(split_text_list("a\\,b,c"), vec!["a,b", "c"]);
    }
}
