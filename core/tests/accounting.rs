//! The accounting rule (issue 13): every leaf part of every message in the
//! corpora is in the parse output (body, alternate, attachment, calendar)
//! or named in a warning (`part N`, entities numbered depth first from 0,
//! the message itself).
//!
//! The leaves are found here by a small splitter of this file's own (RFC 2046
//! delimiters as whole lines, any enclosing delimiter ends a part), not by
//! parse: it transfer-decodes each leaf with the base64 crate and a QP
//! decoder written here, reads text in its charset with encoding_rs, and
//! looks for the result in the output. Line ends are compared as LF and
//! text with surrounding white space trimmed. It reads charsets with
//! encoding_rs, so it needs the default `full-encoding` feature.
#![cfg(feature = "full-encoding")]

use std::{fs, path::PathBuf};

use base64::Engine as _;
use postwire_core::parse::{Parsed, parse_with_warnings};

struct Leaf {
    id: usize,
    essence: String,
    charset: Option<String>,
    bytes: Vec<u8>,
}

fn lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        if !(b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|&b| b == b'\n').collect()
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A parameter of a header value, unquoted (`name=value` or `name="value"`).
fn param(value: &str, name: &str) -> Option<String> {
    for piece in value.split(';').skip(1) {
        let (k, v) = piece.split_once('=')?;
        if k.trim().eq_ignore_ascii_case(name) {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

struct Splitter<'a> {
    lines: Vec<&'a [u8]>,
    at: usize,
    stack: Vec<String>,
    next_id: usize,
    leaves: Vec<Leaf>,
}

impl Splitter<'_> {
    /// Some(close) when the line is a delimiter of an enclosing multipart.
    fn delimiter(&self, line: &[u8]) -> Option<(usize, bool)> {
        let line = std::str::from_utf8(trim_eol(line)).ok()?;
        let rest = line.strip_prefix("--")?.trim_end_matches([' ', '\t']);
        for (depth, b) in self.stack.iter().enumerate().rev() {
            if rest == b {
                return Some((depth, false));
            }
            if rest.strip_suffix("--") == Some(b.as_str()) {
                return Some((depth, true));
            }
        }
        None
    }

    /// Reads one entity from the current line; stops at an enclosing delimiter.
    fn entity(&mut self, top: bool, digest: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let mut headers: Vec<(String, String)> = Vec::new();
        while let Some(line) = self.lines.get(self.at).copied() {
            let text = String::from_utf8_lossy(trim_eol(line)).into_owned();
            if text.is_empty() {
                self.at += 1;
                break;
            }
            if self.delimiter(line).is_some() {
                break;
            }
            if text.starts_with([' ', '\t']) && !headers.is_empty() {
                if let Some(last) = headers.last_mut() {
                    last.1.push_str(&text);
                }
            } else if let Some((k, v)) = text.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            } else if !top {
                break;
            }
            self.at += 1;
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let content_type = header("content-type").unwrap_or_default();
        let mut essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence.is_empty() {
            essence = if digest {
                "message/rfc822"
            } else {
                "text/plain"
            }
            .into();
        }
        let boundary = param(&content_type, "boundary").filter(|b| !b.is_empty());
        if essence.starts_with("multipart/")
            && let Some(boundary) = boundary
        {
            self.stack.push(boundary);
            let level = self.stack.len() - 1;
            let start = self.at;
            // Preamble.
            while let Some(line) = self.lines.get(self.at).copied() {
                if self.delimiter(line).is_some() {
                    break;
                }
                self.at += 1;
            }
            let first = self.lines.get(self.at).and_then(|l| self.delimiter(l));
            if first == Some((level, false)) {
                let digest = essence == "multipart/digest";
                while let Some(line) = self.lines.get(self.at).copied() {
                    match self.delimiter(line) {
                        Some((d, false)) if d == level => {
                            self.at += 1;
                            self.entity(false, digest);
                        }
                        Some((d, true)) if d == level => {
                            self.at += 1;
                            self.stack.pop();
                            // Epilogue.
                            while let Some(line) = self.lines.get(self.at).copied() {
                                if self.delimiter(line).is_some() {
                                    break;
                                }
                                self.at += 1;
                            }
                            return;
                        }
                        _ => break,
                    }
                }
                self.stack.pop();
                return;
            }
            // No parts: the body is one leaf (parse keeps it as text/plain).
            self.stack.pop();
            self.at = start;
            essence = "text/plain".into();
        }
        let start = self.at;
        while let Some(line) = self.lines.get(self.at).copied() {
            if self.delimiter(line).is_some() {
                break;
            }
            self.at += 1;
        }
        let mut raw: Vec<u8> = self.lines[start..self.at].concat();
        if self.at < self.lines.len() {
            // The line break before a delimiter belongs to it.
            if raw.last() == Some(&b'\n') {
                raw.pop();
                if raw.last() == Some(&b'\r') {
                    raw.pop();
                }
            }
        }
        let cte = header("content-transfer-encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = match cte.trim() {
            "base64" => {
                let clean: Vec<u8> = raw
                    .iter()
                    .copied()
                    .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
                    .collect();
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(&clean[..clean.len() - usize::from(clean.len() % 4 == 1)])
                    .unwrap_or(raw)
            }
            "quoted-printable" => qp(&raw),
            _ => raw,
        };
        self.leaves.push(Leaf {
            id,
            essence,
            charset: param(&content_type, "charset"),
            bytes,
        });
    }
}

fn qp(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines(raw) {
        let has_eol = line.ends_with(b"\n");
        let body = trim_eol(line).trim_ascii_end();
        let (body, soft) = match body.strip_suffix(b"=") {
            Some(b) => (b, true),
            None => (body, false),
        };
        let mut i = 0;
        while i < body.len() {
            let hex = body
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (body[i], hex) {
                (b'=', Some(v)) => {
                    out.push(v);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        if has_eol && !soft {
            out.push(b'\n');
        }
    }
    out
}

fn leaves(message: &[u8]) -> Vec<Leaf> {
    let message = message.strip_prefix(b"\xef\xbb\xbf").unwrap_or(message);
    let mut s = Splitter {
        lines: lines(message),
        at: 0,
        stack: Vec::new(),
        next_id: 0,
        leaves: Vec::new(),
    };
    s.entity(true, false);
    s.leaves
}

fn text_of(leaf: &Leaf) -> String {
    let encoding = leaf
        .charset
        .as_deref()
        .and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    let (text, _, _) = encoding.decode(&leaf.bytes);
    text.replace("\r\n", "\n").trim().to_string()
}

/// Whether the leaf is in the output or named in a warning.
fn accounted(leaf: &Leaf, p: &Parsed) -> bool {
    let bytes = lf(&leaf.bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return true;
    }
    let spec = &p.spec;
    if spec
        .attachments
        .iter()
        .any(|a| lf(&a.content).trim_ascii() == bytes.trim_ascii())
    {
        return true;
    }
    let name = format!("part {} ", leaf.id);
    let name_end = format!("part {}:", leaf.id);
    if p.warnings
        .iter()
        .any(|w| w.contains(&name) || w.contains(&name_end))
    {
        return true;
    }
    if leaf.essence.starts_with("text/") {
        // UTF-7 is outside encoding_rs (WHATWG): corpus.rs checks c13's text.
        if leaf
            .charset
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("utf-7"))
        {
            return spec.text.is_some();
        }
        let text = text_of(leaf);
        let views = [spec.text.as_deref(), spec.html.as_deref()];
        if views
            .into_iter()
            .flatten()
            .chain(spec.alternates.iter().map(|a| a.content.as_str()))
            .any(|v| v.replace("\r\n", "\n").trim() == text)
        {
            return true;
        }
        if leaf.essence == "text/calendar" && spec.calendar.is_some() {
            return true;
        }
    }
    // winmail.dat surfaced: its bodies and files replace nothing; the raw
    // file is kept as an attachment (compared above).
    false
}

fn corpora() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut out = Vec::new();
    for dir in ["corpus", "realworld"] {
        let entries = fs::read_dir(root.join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        for e in entries {
            let path = e.unwrap_or_else(|e| panic!("{e}")).path();
            if path.extension().is_some_and(|x| x == "eml") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 37, "corpora too small: {} files", out.len());
    out
}

#[test]
fn every_leaf_of_every_corpus_message_is_in_the_output_or_a_warning() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for path in corpora() {
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let parsed = parse_with_warnings(&bytes)
            .unwrap_or_else(|e| panic!("{}: parse error: {e}", path.display()));
        for leaf in leaves(&bytes) {
            checked += 1;
            if !accounted(&leaf, &parsed) {
                failures.push(format!(
                    "{}: part {} ({}) is neither in the output nor in a warning: {:?}",
                    path.display(),
                    leaf.id,
                    leaf.essence,
                    String::from_utf8_lossy(&leaf.bytes[..leaf.bytes.len().min(80)])
                ));
            }
        }
    }
    assert!(checked > 60, "only {checked} leaves found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_dropped_part_fails_the_rule() {
    // The rule itself: a leaf missing from the output without a warning is caught.
    let message = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                    Content-Type: text/plain\r\n\r\nkept\r\n--b\r\nContent-Type: application/pdf\r\n\r\nlost\r\n--b--\r\n";
    let mut parsed = parse_with_warnings(message).unwrap_or_else(|e| panic!("{e}"));
    let found = leaves(message);
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|l| accounted(l, &parsed)));
    parsed.spec.attachments.clear();
    assert!(!accounted(&found[1], &parsed));
}
