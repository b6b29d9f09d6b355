//! RFC 5322 bytes -> MessageSpec. `parse/tree.rs` splits the MIME structure
//! (as Python's `email` reads real-world mail); mail-parser reads each header
//! block (RFC 2047 words, RFC 2231 parameters, addresses, dates) and decodes
//! charsets; transfer decoding (lenient base64 and quoted-printable) is
//! here. This module maps the part tree onto the spec.
//!
//! Lenient: a message that has headers always parses, best effort, and what
//! could not be kept (an unparseable address, a part with an encoding problem)
//! is reported in [`Parsed::warnings`] rather than dropped silently. Only input
//! that is not a message at all is an error. The rule the tests hold it to
//! (`tests/accounting.rs`): every leaf part of the input is in the spec
//! (a body, an alternate, an attachment, the calendar) or named in a warning
//! (`part N`, entities numbered depth first, 0 being the message). The spec
//! never holds a multipart type as a part: a multipart that cannot be split
//! (no boundary, no delimiter line) is kept as a text/plain attachment.
//!
//! Mapping: the first `text/plain` and `text/html` views become `text` and
//! `html`; other views of a `multipart/alternative` become `alternates`;
//! parts of a `multipart/related` after its root and every part with an
//! attachment disposition or a non-text type become `attachments` (their
//! bytes exactly as transfer-decoded, never charset-converted). Headers the
//! spec has no field for are kept in order in `headers`. A From, Subject,
//! Date or Message-ID that appears twice keeps its first value, as Python's
//! email package does, with a warning; so does a part's Content-Type. A
//! charset label no decoder knows is named in a warning and read as UTF-8.
//! A UTF-8 byte-order mark before the first header is skipped, with a
//! warning. Without the `full-encoding` feature
//! (the npm package), text in the legacy multi-byte charsets is decoded by
//! the host through [`LegacyDecoder`] (see `parse/legacy.rs`).

mod legacy;
pub(crate) mod tree;

pub use legacy::{LegacyDecoder, legacy_encoding};

use mail_parser::{
    Address as ParsedAddress, HeaderName, HeaderValue, MessageParser, MessagePart, MimeHeaders,
    decoders::charsets::map::charset_decoder,
};
use tree::{Defect, Entity, MAX_NESTING};

use crate::{
    address::Mailbox,
    spec::{
        Alternate, Attachment, MessageSpec, Priority, Timestamp, bracket_id, normalise_newlines,
    },
};

/// Why bytes could not be parsed as a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is empty.
    #[error("empty input: not a message")]
    Empty,
    /// No header block was found: the input is not an RFC 5322 message.
    #[error("not an RFC 5322 message: no header fields found")]
    NotAMessage,
}

/// A parsed message and what the parser could not keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The message.
    pub spec: MessageSpec,
    /// Human-readable notes on what was skipped or repaired.
    pub warnings: Vec<String>,
}

// The entry points, which surface TNEF and calendar content after the MIME
// parse, live in `compose.rs`; kept here under their public paths.
pub use crate::compose::{parse, parse_with_decoder, parse_with_warnings};

fn parser() -> MessageParser {
    MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .header_text(HeaderName::Subject)
        .header_address(HeaderName::DispositionNotificationTo)
        .default_header_text()
}

/// The MIME engine: the spec of a message as its MIME structure gives it,
/// before TNEF and calendar content are surfaced (`compose.rs`). `legacy`
/// decodes the legacy multi-byte charsets (builds without `full-encoding`).
pub(crate) fn parse_mime(
    bytes: &[u8],
    legacy: Option<&dyn LegacyDecoder>,
) -> Result<Parsed, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let mut warnings = Vec::new();
    // A byte-order mark is no part of a field name (MimeKit skips it too).
    let bytes = match bytes.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => {
            warnings.push("a UTF-8 byte-order mark before the first header was skipped".into());
            rest
        }
        None => bytes,
    };
    let parser = parser();
    let root = tree::split(&parser, bytes);
    if root.head.headers.is_empty() {
        return Err(ParseError::NotAMessage);
    }
    let mut walker = Walker {
        input: bytes,
        spec: MessageSpec::default(),
        warnings,
        legacy,
        next_id: 0,
    };
    walker.headers(&root.head);
    walker.body(&root, Container::Top, false);
    let Walker { spec, warnings, .. } = walker;
    Ok(Parsed { spec, warnings })
}

/// The entity tree of a whole message, for the other readers of core
/// (`report/`): the same split as [`parse`] uses.
pub(crate) fn mime_tree(bytes: &[u8]) -> Entity<'_> {
    tree::split(&parser(), bytes)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Top,
    Mixed,
    Alternative,
    Related,
}

struct Walker<'m> {
    /// The whole message (after a byte-order mark).
    input: &'m [u8],
    spec: MessageSpec,
    warnings: Vec<String>,
    /// The host's decoder of legacy multi-byte charsets (builds without `full-encoding`).
    legacy: Option<&'m dyn LegacyDecoder>,
    /// The number of the next entity met, depth first (0 is the message).
    next_id: usize,
}

impl<'m> Walker<'m> {
    fn headers(&mut self, head: &MessagePart<'_>) {
        for header in &head.headers {
            let name = header.name.as_str();
            let lower = name.to_ascii_lowercase();
            let raw = raw_header(self.input, header);
            if !utf8_value(self.input, header) {
                self.warnings.push(format!(
                    "{name}: raw 8-bit bytes that are not UTF-8 (undeclared charset) replaced by U+FFFD"
                ));
            }
            for label in unknown_word_charsets(&raw) {
                self.warnings.push(format!(
                    "{name}: unknown charset \"{label}\" in an encoded word, read as UTF-8"
                ));
            }
            // A header with encoded words in a legacy charset, decoded by the
            // host (builds without full-encoding), is read as plain text.
            let decoded = self.legacy_header(&raw, &lower);
            let decoded = decoded.as_deref();
            let value = &header.value;
            match lower.as_str() {
                // Fields RFC 5322 allows once: the first is kept, as Python's
                // email package and most mail clients do.
                "from" if self.spec.from.is_some() => self.repeated(name),
                "subject" if self.spec.subject.is_some() => self.repeated(name),
                "date" if self.spec.date.is_some() => self.repeated(name),
                "message-id" if self.spec.message_id.is_some() => self.repeated(name),
                "from" => self.spec.from = self.mailboxes(name, value, decoded).into_iter().next(),
                "sender" => {
                    self.spec.sender = self.mailboxes(name, value, decoded).into_iter().next()
                }
                "to" => {
                    let list = self.mailboxes(name, value, decoded);
                    self.spec.to.extend(list);
                }
                "cc" => {
                    let list = self.mailboxes(name, value, decoded);
                    self.spec.cc.extend(list);
                }
                "bcc" => {
                    let list = self.mailboxes(name, value, decoded);
                    self.spec.bcc.extend(list);
                }
                "reply-to" => {
                    let list = self.mailboxes(name, value, decoded);
                    self.spec.reply_to.extend(list);
                }
                "disposition-notification-to" => {
                    let list = self.mailboxes(name, value, decoded);
                    self.spec.disposition_notification_to.extend(list);
                }
                "subject" => {
                    self.spec.subject = decoded.or_else(|| value.as_text()).map(str::to_string);
                }
                "date" => match value.as_datetime() {
                    Some(dt) if dt.is_valid() => self.spec.date = Some(Timestamp::from_parser(dt)),
                    _ => self
                        .warnings
                        .push(format!("Date: unreadable value skipped ({raw})")),
                },
                "message-id" => self.spec.message_id = first_id(value),
                "in-reply-to" => self.spec.in_reply_to = first_id(value),
                "references" => self.spec.references = all_ids(value),
                "x-priority" => {
                    let v = text_of(value);
                    match v.trim_start().chars().next() {
                        Some('1' | '2') => self.spec.priority = Priority::High,
                        Some('4' | '5') => self.spec.priority = Priority::Low,
                        _ => {}
                    }
                }
                "importance" | "priority" => {
                    match text_of(value).trim().to_ascii_lowercase().as_str() {
                        "high" | "urgent" => self.spec.priority = Priority::High,
                        "low" | "non-urgent" => self.spec.priority = Priority::Low,
                        _ => {}
                    }
                }
                "mime-version" => {}
                // The part headers build writes itself; other Content-* headers
                // (Content-Language, Content-Class, ...) are kept like any other.
                "content-type"
                | "content-transfer-encoding"
                | "content-disposition"
                | "content-id" => {}
                _ => self.spec.headers.push((
                    name.to_string(),
                    decoded.map_or_else(|| text_of(value), str::to_string),
                )),
            }
        }
    }

    fn repeated(&mut self, name: &str) {
        self.warnings
            .push(format!("{name}: appears more than once; the first is kept"));
    }

    /// The mailboxes of an address list written as text.
    fn mailboxes_in(&mut self, header: &str, text: &str) -> Vec<Mailbox> {
        let mut out = Vec::new();
        for item in split_address_list(text) {
            match Mailbox::parse(item) {
                Ok(m) => out.push(m),
                Err(e) => self.warnings.push(format!("{header}: {e}; skipped")),
            }
        }
        out
    }

    /// A header holding encoded words in a legacy multi-byte charset, decoded
    /// by the host's decoder; `None` for every other header (and always with
    /// `full-encoding`), which keeps mail-parser's reading.
    fn legacy_header(&self, raw: &str, lower: &str) -> Option<String> {
        let decoder = self.legacy?;
        let address = match lower {
            "from"
            | "sender"
            | "to"
            | "cc"
            | "bcc"
            | "reply-to"
            | "disposition-notification-to" => true,
            "date"
            | "message-id"
            | "in-reply-to"
            | "references"
            | "x-priority"
            | "importance"
            | "priority"
            | "mime-version"
            | "content-type"
            | "content-transfer-encoding"
            | "content-disposition"
            | "content-id" => return None,
            _ => false,
        };
        legacy::decode_header(raw, decoder, address)
    }

    /// The mailboxes of an address header; `decoded` is its text as the
    /// host decoded it (legacy charsets), which takes the place of `value`.
    fn mailboxes(
        &mut self,
        header: &str,
        value: &HeaderValue<'_>,
        decoded: Option<&str>,
    ) -> Vec<Mailbox> {
        if let Some(text) = decoded {
            return self.mailboxes_in(header, text);
        }
        let addrs: Vec<_> = match value {
            HeaderValue::Address(ParsedAddress::List(list)) => list.iter().collect(),
            HeaderValue::Address(ParsedAddress::Group(groups)) => {
                groups.iter().flat_map(|g| g.addresses.iter()).collect()
            }
            HeaderValue::Empty => Vec::new(),
            HeaderValue::Text(text) => return self.mailboxes_in(header, text),
            other => {
                self.warnings.push(format!(
                    "{header}: not an address list, skipped ({})",
                    text_of(other)
                ));
                Vec::new()
            }
        };
        let mut out = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let Some(email) = addr.address.as_deref() else {
                self.warnings
                    .push(format!("{header}: entry without an address skipped"));
                continue;
            };
            match Mailbox::new(addr.name.as_deref(), email) {
                Ok(m) => out.push(m),
                Err(e) => self.warnings.push(format!("{header}: {e}; skipped")),
            }
        }
        out
    }

    fn body(&mut self, entity: &Entity<'_>, container: Container, digest: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let part = &entity.head;
        let (essence, is_attachment) = classify(part, digest);
        if entity.skipped_lines > 0 {
            self.warnings.push(format!(
                "part {id}: {} line(s) in the header block that are not header fields skipped",
                entity.skipped_lines
            ));
        }
        if entity.unterminated_head {
            self.warnings.push(format!(
                "part {id}: no empty line after the header fields; the body starts at the first line that is not one"
            ));
        }
        if entity.content_types > 1 {
            self.warnings.push(format!(
                "part {id}: {} Content-Type fields; the first ({essence}) is used",
                entity.content_types
            ));
        }
        match entity.defect {
            Some(Defect::TooDeep) => {
                // mail-parser read any depth; walking it recursively would overflow the stack.
                self.warnings.push(format!(
                    "part {id}: nested deeper than {MAX_NESTING} multiparts, skipped"
                ));
                return;
            }
            Some(Defect::Unclosed) => self.warnings.push(format!(
                "part {id} ({essence}): no close delimiter; it ends at the next delimiter of an enclosing multipart or at the end of the message"
            )),
            Some(defect @ (Defect::NoBoundary | Defect::NoParts)) => {
                let why = if defect == Defect::NoBoundary {
                    "no boundary parameter"
                } else {
                    "no delimiter line of its boundary"
                };
                let content = self.input.get(entity.body.clone()).unwrap_or_default();
                if content.iter().all(u8::is_ascii_whitespace) {
                    self.warnings
                        .push(format!("part {id} ({essence}): {why} and no content"));
                } else {
                    // Never a multipart leaf in the spec (build could not write it).
                    self.warnings.push(format!(
                        "part {id} ({essence}): {why}; its body is kept as a text/plain attachment"
                    ));
                    self.spec.attachments.push(Attachment {
                        filename: None,
                        content_type: "text/plain".into(),
                        content: content.to_vec(),
                        inline: false,
                        content_id: None,
                    });
                }
                return;
            }
            None => {}
        }
        if entity.multipart {
            let digest = essence == "multipart/digest";
            match essence.as_str() {
                "multipart/alternative" => {
                    for child in &entity.children {
                        self.body(child, Container::Alternative, false);
                    }
                }
                "multipart/related" => {
                    let mut children = entity.children.iter();
                    if let Some(root) = children.next() {
                        self.body(root, container, false);
                    }
                    for child in children {
                        self.body(child, Container::Related, false);
                    }
                }
                _ => {
                    for (i, child) in entity.children.iter().enumerate() {
                        let c = if i == 0 { container } else { Container::Mixed };
                        self.body(child, c, digest);
                    }
                }
            }
            return;
        }
        let body_slot =
            matches!(container, Container::Top | Container::Alternative) && !is_attachment;
        let text_view = essence.starts_with("text/")
            && !is_attachment
            && ((body_slot
                && ((essence == "text/plain" && self.spec.text.is_none())
                    || (essence == "text/html" && self.spec.html.is_none())))
                || container == Container::Alternative
                || (container == Container::Top && part.attachment_name().is_none()));
        if !text_view {
            let content = self.transfer_decoded(id, &essence, entity);
            self.attachment(part, container, content);
            return;
        }
        let text = normalise_newlines(&self.text(id, &essence, entity));
        match essence.as_str() {
            "text/plain" if body_slot && self.spec.text.is_none() => self.spec.text = Some(text),
            "text/html" if body_slot && self.spec.html.is_none() => self.spec.html = Some(text),
            // A view: in an alternative, or the message's only body (a spec whose
            // one view is an alternate, e.g. text/calendar) when it is not a file.
            _ => {
                let content_type = content_type_string(part, digest, &["charset"]);
                self.spec.alternates.push(Alternate {
                    content_type,
                    content: text,
                });
            }
        }
    }

    /// The text of a text part: transfer-decoded, then read in its charset
    /// (a host decoder for the legacy multi-byte ones without `full-encoding`).
    fn text(&mut self, id: usize, essence: &str, entity: &Entity<'_>) -> String {
        let bytes = self.transfer_decoded(id, essence, entity);
        let charset = entity
            .head
            .content_type()
            .and_then(|ct| ct.attribute("charset"))
            .map(str::trim)
            .filter(|c| !c.is_empty());
        if let (Some(decoder), Some(label)) = (self.legacy, charset)
            && let Some(encoding) = legacy::legacy_encoding(label)
            && let Some(text) = decoder.decode(encoding, &bytes)
        {
            return text;
        }
        if let Some(label) = charset {
            if let Some(decode) = charset_decoder(label.as_bytes()) {
                return decode(&bytes);
            }
            if !is_utf8_label(label) {
                self.warnings.push(format!(
                    "part {id} ({essence}): unknown charset \"{label}\", read as UTF-8"
                ));
            }
        }
        match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                self.warnings.push(format!(
                    "part {id} ({essence}): bytes that are not UTF-8 replaced by U+FFFD"
                ));
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }
        }
    }

    fn attachment(&mut self, part: &MessagePart<'_>, container: Container, content: Vec<u8>) {
        let filename = part.attachment_name().map(str::to_string);
        let disposition = part
            .content_disposition()
            .map(|d| d.ctype().to_ascii_lowercase());
        let inline = match disposition.as_deref() {
            Some("inline") => true,
            Some(_) => false,
            None => container == Container::Related,
        };
        let mut skip = vec!["name"];
        if filename.is_none() {
            skip.clear();
        }
        let content_type = content_type_string(part, false, &skip);
        let content_id = part
            .content_id()
            .map(|c| c.trim_start_matches('<').trim_end_matches('>').to_string());
        self.spec.attachments.push(Attachment {
            filename,
            content_type,
            content,
            inline,
            content_id,
        });
    }

    /// The part's bytes after transfer decoding only (no charset conversion),
    /// so a text attachment in any charset comes back byte for byte. Bytes
    /// that do not decode are kept as they are, with a warning.
    // One copy for attachments and bodies (the browser module's size).
    #[inline(never)]
    fn transfer_decoded(&mut self, id: usize, essence: &str, entity: &Entity<'_>) -> Vec<u8> {
        let body = self.input.get(entity.body.clone()).unwrap_or_default();
        let cte = entity
            .head
            .content_transfer_encoding()
            .unwrap_or("7bit")
            .trim()
            .to_ascii_lowercase();
        let decoded = match cte.as_str() {
            // Ours first: it also takes a final quantum without padding, which
            // mail-parser's decoder drops (the text would lose its last bytes).
            "base64" => {
                let strict = std::str::from_utf8(body)
                    .ok()
                    .and_then(|s| crate::spec::base64_bytes::decode(s).ok())
                    .or_else(|| mail_parser::decoders::base64::base64_decode(body));
                if strict.is_some() {
                    strict
                } else {
                    // As Python's binascii and MimeKit: skip what is not base64.
                    let (bytes, skipped) = lenient_base64(body);
                    self.warnings.push(format!(
                        "part {id} ({essence}): malformed base64, {skipped} stray characters skipped"
                    ));
                    Some(bytes)
                }
            }
            "quoted-printable" => Some(quoted_printable(body)),
            _ => return body.to_vec(),
        };
        decoded.unwrap_or_else(|| {
            self.warnings.push(format!(
                "part {id} ({essence}): malformed {cte}, kept undecoded"
            ));
            body.to_vec()
        })
    }
}

/// Quoted-printable (RFC 2045 6.7), leniently as Python's quopri reads
/// it: `=XX` in either case is a byte, `=` before the line end (or the end
/// of the body) is a soft line break, any other `=` is itself, and white
/// space at a line's end is transport padding.
pub(crate) fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        let (content, eol): (&[u8], &[u8]) = match line.strip_suffix(b"\r\n") {
            Some(c) => (c, b"\r\n"),
            None => match line.strip_suffix(b"\n") {
                Some(c) => (c, b"\n"),
                None => (line, b""),
            },
        };
        let content = content.trim_ascii_end();
        let (content, soft) = match content.strip_suffix(b"=") {
            Some(c) => (c, true),
            None => (content, false),
        };
        let mut i = 0;
        while let Some(&b) = content.get(i) {
            let pair = (
                content.get(i + 1).copied().and_then(hex),
                content.get(i + 2).copied().and_then(hex),
            );
            match (b, pair) {
                (b'=', (Some(h), Some(l))) => {
                    out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                    i += 3;
                }
                _ => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        if !soft {
            out.extend_from_slice(eol);
        }
    }
    out
}

/// Base64 read past damage: characters outside the alphabet (and padding)
/// are skipped, a final partial quantum gives the bytes it holds. Returns
/// the bytes and how many characters other than white space were skipped.
pub(crate) fn lenient_base64(body: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 3);
    let (mut acc, mut bits, mut skipped) = (0u32, 0u32, 0usize);
    for &b in body {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => {
                if !b.is_ascii_whitespace() && b != b'=' {
                    skipped += 1;
                }
                continue;
            }
        };
        acc = ((acc << 6) | u32::from(v)) & 0x00ff_ffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
        }
    }
    (out, skipped)
}

/// Whether a charset label names UTF-8, which mail-parser reads without a table.
fn is_utf8_label(label: &str) -> bool {
    let l: String = label
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    l.ends_with("utf8") || l == "unicode20utf8" || l == "unicode11utf8"
}

/// The charsets of the RFC 2047 encoded words in a raw header value that
/// neither mail-parser's tables nor UTF-8 cover (their text is read as UTF-8).
fn unknown_word_charsets(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = raw;
    while let Some(at) = rest.find("=?") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find('?') else { break };
        let label = rest[..end].split('*').next().unwrap_or_default();
        let is_word = rest[end + 1..]
            .get(..2)
            .is_some_and(|e| matches!(e, "q?" | "Q?" | "b?" | "B?"));
        if is_word
            && !label.is_empty()
            && charset_decoder(label.as_bytes()).is_none()
            && !is_utf8_label(label)
            && !out.iter().any(|l| l == label)
        {
            out.push(label.to_string());
        }
    }
    out
}

/// `type/subtype` in lower case (the first Content-Type field; without one,
/// text/plain, or message/rfc822 in a digest), and whether the part is
/// marked as an attachment.
fn classify(part: &MessagePart<'_>, digest: bool) -> (String, bool) {
    let essence = match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None if digest => "message/rfc822".to_string(),
        None => "text/plain".to_string(),
    };
    let is_attachment = part
        .content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
    (essence, is_attachment)
}

/// The content type with its parameters, leaving out those in `skip`.
fn content_type_string(part: &MessagePart<'_>, digest: bool, skip: &[&str]) -> String {
    let (essence, _) = classify(part, digest);
    let mut out = essence;
    if let Some(attrs) = part.content_type().and_then(|ct| ct.attributes()) {
        for attr in attrs {
            let name = attr.name.to_ascii_lowercase();
            if skip.contains(&name.as_str()) || name == "boundary" {
                continue;
            }
            out.push_str("; ");
            out.push_str(&name);
            out.push('=');
            let v: &str = &attr.value;
            let token = !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c));
            if token {
                out.push_str(v);
            } else {
                out.push('"');
                for c in v.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out
}

/// Splits `a, "b, c" <d>` at the commas outside quotes and angle brackets.
fn split_address_list(text: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted, mut angle, mut escaped) =
        (Vec::new(), 0, false, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn text_of(value: &HeaderValue<'_>) -> String {
    match value {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(list) => list.join(", "),
        HeaderValue::DateTime(dt) => dt.to_rfc822(),
        HeaderValue::Empty => String::new(),
        HeaderValue::Address(a) => {
            let items: Vec<String> = match a {
                ParsedAddress::List(list) => list
                    .iter()
                    .filter_map(|x| x.address.as_deref().map(str::to_string))
                    .collect(),
                ParsedAddress::Group(g) => g
                    .iter()
                    .flat_map(|g| g.addresses.iter())
                    .filter_map(|x| x.address.as_deref().map(str::to_string))
                    .collect(),
            };
            items.join(", ")
        }
        HeaderValue::ContentType(ct) => ct.ctype().to_string(),
        HeaderValue::Received(_) => String::new(),
    }
}

/// False when the header's raw value has 8-bit bytes that are not UTF-8.
fn utf8_value(input: &[u8], header: &mail_parser::Header<'_>) -> bool {
    let start = usize::try_from(header.offset_start).unwrap_or(0);
    let end = usize::try_from(header.offset_end).unwrap_or(0);
    input
        .get(start..end)
        .is_none_or(|b| std::str::from_utf8(b).is_ok())
}

fn raw_header(input: &[u8], header: &mail_parser::Header<'_>) -> String {
    let start = usize::try_from(header.offset_start).unwrap_or(0);
    let end = usize::try_from(header.offset_end).unwrap_or(0);
    input
        .get(start..end)
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .unwrap_or_default()
}

fn first_id(value: &HeaderValue<'_>) -> Option<String> {
    all_ids(value).into_iter().next()
}

fn all_ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![bracket_id(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| bracket_id(t)).collect(),
        _ => Vec::new(),
    }
}
