//! RFC 6376 section 3.4: splitting a message into header fields and body, and
//! the `simple` and `relaxed` canonicalizations of both.
//!
//! Lenient by design: the relay signs what it was given. A bare LF ends a line
//! as CRLF does (the canonical form always uses CRLF), a line without a colon
//! in the header is kept as a field no header list will ever name, and a
//! message without a blank line has an empty body.

/// One header field as it stands in the message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    /// The field name, without trailing white space.
    pub(crate) name: &'a [u8],
    /// The whole field: name, colon, value and folding, with its line ending.
    pub(crate) raw: &'a [u8],
}

impl Field<'_> {
    /// The value after the colon, unfolded, trimmed, as text (lossy).
    pub(crate) fn unfolded_value(&self) -> String {
        let value = match self.raw.iter().position(|&b| b == b':') {
            Some(i) => &self.raw[i + 1..],
            None => &[][..],
        };
        let text: Vec<u8> = value
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        String::from_utf8_lossy(&text).trim().to_string()
    }
}

/// Splits `message` into its header fields and its body (what follows the
/// blank line).
pub(crate) fn split(message: &[u8]) -> (Vec<Field<'_>>, &[u8]) {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < message.len() {
        let rest = &message[pos..];
        if rest.starts_with(b"\r\n") {
            return (fields, &message[pos + 2..]);
        }
        if rest.starts_with(b"\n") {
            return (fields, &message[pos + 1..]);
        }
        // The field runs until a line that does not start with WSP.
        let mut end = pos;
        loop {
            end = match message[end..].iter().position(|&b| b == b'\n') {
                Some(i) => end + i + 1,
                None => message.len(),
            };
            match message.get(end) {
                Some(b' ' | b'\t') => continue,
                _ => break,
            }
        }
        let raw = &message[pos..end];
        let name_end = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
        let name = trim_wsp_end(&raw[..name_end]);
        fields.push(Field { name, raw });
        pos = end;
    }
    (fields, &message[message.len()..])
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_wsp_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if is_wsp(*last) || *last == b'\r' || *last == b'\n' {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Header canonicalization (`c=` before the slash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Canonicalization {
    /// RFC 6376 3.4.1 / 3.4.3: the bytes as they are (line ends made CRLF).
    Simple,
    /// RFC 6376 3.4.2 / 3.4.4: case and white space normalised; survives the
    /// re-folding and re-spacing that relays do.
    Relaxed,
}

impl Canonicalization {
    /// The name used in the `c=` tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Canonicalization::Simple => "simple",
            Canonicalization::Relaxed => "relaxed",
        }
    }
}

/// Appends the canonical form of one header field, with its CRLF unless
/// `with_crlf` is false (the DKIM-Signature field itself).
pub(crate) fn header(c: Canonicalization, raw: &[u8], with_crlf: bool, out: &mut Vec<u8>) {
    match c {
        Canonicalization::Simple => {
            let body = trim_line_end(raw);
            // Inner line ends become CRLF.
            let mut prev = 0u8;
            for &b in body {
                if b == b'\n' && prev != b'\r' {
                    out.push(b'\r');
                }
                out.push(b);
                prev = b;
            }
        }
        Canonicalization::Relaxed => {
            let colon = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
            let name = trim_wsp_end(&raw[..colon]);
            out.extend(name.iter().map(u8::to_ascii_lowercase));
            out.push(b':');
            let value = raw.get(colon + 1..).unwrap_or_default();
            let start = out.len();
            let mut pending_space = false;
            for &b in value {
                match b {
                    b'\r' | b'\n' => {}
                    b' ' | b'\t' => pending_space = true,
                    _ => {
                        if pending_space && out.len() > start {
                            out.push(b' ');
                        }
                        pending_space = false;
                        out.push(b);
                    }
                }
            }
        }
    }
    if with_crlf {
        out.extend_from_slice(b"\r\n");
    }
}

/// `raw` without its final line ending.
fn trim_line_end(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

/// The canonical body (RFC 6376 3.4.3 and 3.4.4).
pub(crate) fn body(c: Canonicalization, body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if body.ends_with(b"\n") || body.is_empty() {
        lines.pop();
    }
    let mut canon: Vec<Vec<u8>> = lines
        .into_iter()
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match c {
                Canonicalization::Simple => line.to_vec(),
                Canonicalization::Relaxed => {
                    let mut out = Vec::with_capacity(line.len());
                    let mut pending_space = false;
                    for &b in line {
                        if is_wsp(b) {
                            pending_space = true;
                        } else {
                            if pending_space {
                                out.push(b' ');
                            }
                            pending_space = false;
                            out.push(b);
                        }
                    }
                    out
                }
            }
        })
        .collect();
    while canon.last().is_some_and(Vec::is_empty) {
        canon.pop();
    }
    let mut out = Vec::with_capacity(body.len() + 2);
    for line in &canon {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    if out.is_empty() && c == Canonicalization::Simple {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Canonicalization::{Relaxed, Simple};

    // The examples of RFC 6376 section 3.4.5.
    const EXAMPLE: &[u8] = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";

    fn headers(c: Canonicalization) -> Vec<u8> {
        let (fields, _) = split(EXAMPLE);
        let mut out = Vec::new();
        for f in fields {
            header(c, f.raw, true, &mut out);
        }
        out
    }

    #[test]
    fn relaxed_matches_the_example_of_rfc_6376() {
        assert_eq!(headers(Relaxed), b"a:X\r\nb:Y Z\r\n");
        let (_, b) = split(EXAMPLE);
        assert_eq!(body(Relaxed, b), b" C\r\nD E\r\n");
    }

    #[test]
    fn simple_matches_the_example_of_rfc_6376() {
        assert_eq!(headers(Simple), b"A: X\r\nB : Y\t\r\n\tZ  \r\n");
        let (_, b) = split(EXAMPLE);
        assert_eq!(body(Simple, b), b" C \r\nD \t E\r\n");
    }

    #[test]
    fn empty_bodies_are_empty_when_relaxed_and_one_crlf_when_simple() {
        assert_eq!(body(Relaxed, b""), b"");
        assert_eq!(body(Relaxed, b"\r\n\r\n"), b"");
        assert_eq!(body(Simple, b""), b"\r\n");
        assert_eq!(body(Simple, b"\r\n\r\n"), b"\r\n");
    }

    #[test]
    fn a_last_line_without_crlf_gets_one_and_bare_lf_counts_as_crlf() {
        assert_eq!(body(Relaxed, b"a\nb"), b"a\r\nb\r\n");
        assert_eq!(body(Simple, b"a \nb"), b"a \r\nb\r\n");
    }

    #[test]
    fn a_message_without_a_blank_line_has_an_empty_body() {
        let (fields, b) = split(b"From: a@b\r\nTo: c@d\r\n");
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].name, b"To");
        assert!(b.is_empty());
    }
}
