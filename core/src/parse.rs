//! RFC 5322 bytes -> MessageSpec, with the mail-parser crate doing the
//! decoding (every charset and transfer encoding it reads, RFC 2047 words,
//! RFC 2231 parameters). This module maps its part tree onto the spec.
//!
//! Lenient: a message that has headers always parses, best effort, and what
//! could not be kept (an unparseable address, a part with an encoding problem)
//! is reported in [`Parsed::warnings`] rather than dropped silently. Only input
//! that is not a message at all is an error.
//!
//! Mapping: the first `text/plain` and `text/html` views become `text` and
//! `html`; other views of a `multipart/alternative` become `alternates`;
//! parts of a `multipart/related` after its root and every part with an
//! attachment disposition or a non-text type become `attachments` (their
//! bytes exactly as transfer-decoded, never charset-converted). Headers the
//! spec has no field for are kept in order in `headers`. A From, Subject,
//! Date or Message-ID that appears twice keeps its first value, as Python's
//! email package does, with a warning. Without the `full-encoding` feature
//! (the npm package), text in the legacy multi-byte charsets is decoded by
//! the host through [`LegacyDecoder`] (see `parse/legacy.rs`).

use std::borrow::Cow;

mod legacy;

pub use legacy::{LegacyDecoder, legacy_encoding};

use mail_parser::{
    Address as ParsedAddress, HeaderName, HeaderValue, Message, MessageParser, MessagePart,
    MimeHeaders, PartType,
};

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

/// Parses a message into its spec (lenient; see the module doc).
pub fn parse(bytes: &[u8]) -> Result<MessageSpec, ParseError> {
    parse_with_warnings(bytes).map(|p| p.spec)
}

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

/// Parses a message and reports what could not be kept.
pub fn parse_with_warnings(bytes: &[u8]) -> Result<Parsed, ParseError> {
    parse_inner(bytes, None)
}

/// As [`parse_with_warnings`], with a host decoder for the legacy multi-byte
/// charsets (see `parse/legacy.rs`): used only when core is built without
/// `full-encoding`; with it, mail-parser decodes them itself.
pub fn parse_with_decoder(bytes: &[u8], decoder: &dyn LegacyDecoder) -> Result<Parsed, ParseError> {
    parse_inner(bytes, (!cfg!(feature = "full-encoding")).then_some(decoder))
}

fn parse_inner(bytes: &[u8], legacy: Option<&dyn LegacyDecoder>) -> Result<Parsed, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let message = parser().parse(bytes).ok_or(ParseError::NotAMessage)?;
    if message.root_part().headers.is_empty() {
        return Err(ParseError::NotAMessage);
    }
    let mut walker = Walker {
        message: &message,
        spec: MessageSpec::default(),
        warnings: Vec::new(),
        legacy,
    };
    walker.headers();
    walker.body(0, Container::Top, 0);
    let Walker {
        mut spec,
        mut warnings,
        ..
    } = walker;
    // TNEF (issue 7): surface winmail.dat's bodies and attachments, keep the raw file.
    crate::tnef::spec::surface(&mut spec, &mut warnings);
    // ical: text/calendar part -> `calendar` (RFC 6047).
    crate::ical::mime::extract(&mut spec, &mut warnings);
    if spec.text.as_deref() == Some("") {
        spec.text = None;
    }
    Ok(Parsed { spec, warnings })
}

/// How many multiparts deep the walk goes; deeper parts are skipped with a warning.
const MAX_NESTING: usize = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Top,
    Mixed,
    Alternative,
    Related,
}

struct Walker<'m, 'x> {
    message: &'m Message<'x>,
    spec: MessageSpec,
    warnings: Vec<String>,
    /// The host's decoder of legacy multi-byte charsets (builds without `full-encoding`).
    legacy: Option<&'m dyn LegacyDecoder>,
}

impl<'m, 'x> Walker<'m, 'x> {
    fn headers(&mut self) {
        let message = self.message;
        for header in &message.root_part().headers {
            let name = header.name.as_str();
            let lower = name.to_ascii_lowercase();
            if !utf8_value(message, header) {
                self.warnings.push(format!(
                    "{name}: raw 8-bit bytes that are not UTF-8 (undeclared charset) replaced by U+FFFD"
                ));
            }
            // A header with encoded words in a legacy charset, decoded by the
            // host (builds without full-encoding), is read as plain text.
            let decoded = self.legacy_header(header, &lower);
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
                    _ => self.warnings.push(format!(
                        "Date: unreadable value skipped ({})",
                        raw_header(message, header)
                    )),
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
    fn legacy_header(&self, header: &mail_parser::Header<'_>, lower: &str) -> Option<String> {
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
        legacy::decode_header(&raw_header(self.message, header), decoder, address)
    }

    /// The text of a body part in a legacy multi-byte charset, decoded by the
    /// host's decoder (see `parse/legacy.rs`); `None` otherwise.
    fn legacy_body(&self, part: &MessagePart<'_>) -> Option<String> {
        let decoder = self.legacy?;
        if !matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
            return None;
        }
        let encoding = legacy::legacy_encoding(part.content_type()?.attribute("charset")?)?;
        decoder.decode(encoding, &transfer_decoded(self.message, part))
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

    fn part(&self, id: u32) -> Option<&'m MessagePart<'x>> {
        let message: &'m Message<'x> = self.message;
        message.parts.get(usize::try_from(id).ok()?)
    }

    fn body(&mut self, id: u32, container: Container, depth: usize) {
        let Some(part) = self.part(id) else { return };
        if depth > MAX_NESTING {
            // mail-parser reads any depth; walking it recursively would overflow the stack.
            self.warnings.push(format!(
                "part {id}: nested deeper than {MAX_NESTING} multiparts, skipped"
            ));
            return;
        }
        let (essence, is_attachment) = classify(part);
        if part.is_encoding_problem {
            self.warnings.push(format!(
                "part {id} ({essence}): malformed encoding, kept as text"
            ));
        }
        if let PartType::Multipart(children) = &part.body {
            let children = children.clone();
            match essence.as_str() {
                "multipart/alternative" => {
                    for child in children {
                        self.body(child, Container::Alternative, depth + 1);
                    }
                }
                "multipart/related" => {
                    let mut children = children.into_iter();
                    if let Some(root) = children.next() {
                        self.body(root, container, depth + 1);
                    }
                    for child in children {
                        self.body(child, Container::Related, depth + 1);
                    }
                }
                _ => {
                    for (i, child) in children.into_iter().enumerate() {
                        self.body(
                            child,
                            if i == 0 { container } else { Container::Mixed },
                            depth + 1,
                        );
                    }
                }
            }
            return;
        }
        let body_slot =
            matches!(container, Container::Top | Container::Alternative) && !is_attachment;
        let legacy = self.legacy_body(part);
        let text_of_part = |text: &str| normalise_newlines(legacy.as_deref().unwrap_or(text));
        match (&part.body, essence.as_str()) {
            (PartType::Text(text), "text/plain") if body_slot && self.spec.text.is_none() => {
                self.spec.text = Some(text_of_part(text));
            }
            (PartType::Html(html), "text/html") if body_slot && self.spec.html.is_none() => {
                self.spec.html = Some(text_of_part(html));
            }
            // A view: in an alternative, or the message's only body (a spec whose
            // one view is an alternate, e.g. text/calendar) when it is not a file.
            (PartType::Text(text) | PartType::Html(text), _)
                if !is_attachment
                    && (container == Container::Alternative
                        || (container == Container::Top && part.attachment_name().is_none())) =>
            {
                let content_type = content_type_string(part, &["charset"]);
                self.spec.alternates.push(Alternate {
                    content_type,
                    content: text_of_part(text),
                });
            }
            _ => self.attachment(part, container),
        }
    }

    fn attachment(&mut self, part: &MessagePart<'_>, container: Container) {
        let filename = part.attachment_name().map(str::to_string);
        let content = transfer_decoded(self.message, part);
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
        let content_type = content_type_string(part, &skip);
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
}

/// `type/subtype` in lower case, and whether the part is marked as an attachment.
fn classify(part: &MessagePart<'_>) -> (String, bool) {
    let essence = match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => match &part.body {
            PartType::Message(_) => "message/rfc822".to_string(),
            _ => "text/plain".to_string(),
        },
    };
    let is_attachment = part
        .content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
    (essence, is_attachment)
}

/// The content type with its parameters, leaving out those in `skip`.
fn content_type_string(part: &MessagePart<'_>, skip: &[&str]) -> String {
    let (essence, _) = classify(part);
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

fn other_bytes<'a>(body: &'a PartType<'_>) -> &'a [u8] {
    match body {
        PartType::Binary(b) | PartType::InlineBinary(b) => b,
        PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
        PartType::Message(m) => &m.raw_message,
        PartType::Multipart(_) => &[],
    }
}

/// The part's bytes after transfer decoding only (no charset conversion), so a
/// text attachment in any charset comes back byte for byte.
// One copy for attachments and legacy-charset bodies (the browser module's size).
#[inline(never)]
fn transfer_decoded(message: &Message<'_>, part: &MessagePart<'_>) -> Vec<u8> {
    let raw = &message.raw_message;
    let start = usize::try_from(part.offset_body).unwrap_or(usize::MAX);
    let end = usize::try_from(part.offset_end).unwrap_or(usize::MAX);
    let Some(body) = raw.get(start..end.min(raw.len())) else {
        return other_bytes(&part.body).to_vec();
    };
    let cte = part
        .content_transfer_encoding()
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let decoded: Option<Cow<'_, [u8]>> = match cte.as_str() {
        // Ours first: it also takes a final quantum without padding, which
        // mail-parser's decoder drops (the attachment would lose its last bytes).
        "base64" => std::str::from_utf8(body)
            .ok()
            .and_then(|s| crate::spec::base64_bytes::decode(s).ok())
            .or_else(|| mail_parser::decoders::base64::base64_decode(body))
            .map(Cow::Owned),
        "quoted-printable" => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body).map(Cow::Owned)
        }
        _ => Some(Cow::Borrowed(body)),
    };
    decoded.map_or_else(|| other_bytes(&part.body).to_vec(), Cow::into_owned)
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
fn utf8_value(message: &Message<'_>, header: &mail_parser::Header<'_>) -> bool {
    let start = usize::try_from(header.offset_start).unwrap_or(0);
    let end = usize::try_from(header.offset_end).unwrap_or(0);
    message
        .raw_message
        .get(start..end)
        .is_none_or(|b| std::str::from_utf8(b).is_ok())
}

fn raw_header(message: &Message<'_>, header: &mail_parser::Header<'_>) -> String {
    let start = usize::try_from(header.offset_start).unwrap_or(0);
    let end = usize::try_from(header.offset_end).unwrap_or(0);
    message
        .raw_message
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
