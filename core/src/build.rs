//! MessageSpec -> RFC 5322 bytes, with the mail-builder crate doing the
//! encoding (RFC 2047 words, RFC 2231 parameters, quoted-printable, base64,
//! folding). This module decides the structure and the headers:
//!
//! ```text
//! multipart/mixed                      when there are attachments
//! ├── multipart/alternative            when more than one view
//! │   ├── text/plain
//! │   ├── multipart/related            when inline parts have a Content-ID
//! │   │   ├── text/html
//! │   │   └── image/png (inline, cid)
//! │   └── text/calendar, ...           alternates
//! └── application/pdf (attachment)
//! ```
//!
//! Deterministic: the date comes from the spec or `BuildOptions::now`, the
//! message id from the spec or the seeded [`IdSource`], and every multipart
//! boundary from that same source. No clock, no OS randomness.

use std::borrow::Cow;

use base64::Engine as _;
use mail_builder::{
    MessageBuilder,
    headers::{
        HeaderType, address::Address, content_type::ContentType, message_id::MessageId, raw::Raw,
        text::Text,
    },
    mime::{BodyPart, MimePart},
};

use crate::{
    address::Mailbox,
    content_type::MediaType,
    entropy::IdSource,
    spec::{Alternate, Attachment, MessageSpec, Priority, Timestamp, rfc822_wire_form},
};

/// What `build` takes besides the spec: the injected clock and entropy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BuildOptions {
    /// Unix seconds, used for `Date` when the spec has no `date`.
    pub now: i64,
    /// Seeds the message id (when the spec has none) and the MIME boundaries.
    pub seed: u64,
}

/// Why a spec could not be built. Every variant names the field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// There is no `from`: RFC 5322 requires an author.
    #[error("from: a message needs a From address")]
    MissingFrom,
    /// A custom header has an invalid name or value, or one that a spec field owns.
    #[error("{path}: {reason}")]
    Header {
        /// `headers[N]`.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A content type could not be parsed.
    #[error("{path}: {source}")]
    ContentType {
        /// `attachments[N].contentType` or `alternates[N].contentType`.
        path: String,
        /// The parse error.
        source: crate::content_type::ContentTypeError,
    },
    /// A message id, Content-ID or reference is not of the form `left@right`.
    #[error("{path}: invalid identifier {value:?}: expected <left@right> without spaces")]
    Identifier {
        /// The field, e.g. `messageId` or `attachments[2].contentId`.
        path: String,
        /// The value as given.
        value: String,
    },
    /// The subject or a file name has a control character (header injection).
    #[error("{path}: control characters (CR, LF, ...) are not allowed")]
    ControlCharacter {
        /// The field.
        path: String,
    },
    /// The `calendar` appointment is invalid or breaks an iTIP rule (the message names the field).
    #[error(transparent)]
    Calendar(#[from] crate::ical::IcalError),
    /// Writing the bytes failed (cannot happen for an in-memory buffer).
    #[error("writing the message failed: {0}")]
    Write(String),
}

impl BuildError {
    /// The field path the error is about (`from`, `headers[1]`, ...).
    pub fn path(&self) -> &str {
        match self {
            BuildError::MissingFrom => "from",
            BuildError::Header { path, .. }
            | BuildError::ContentType { path, .. }
            | BuildError::Identifier { path, .. }
            | BuildError::ControlCharacter { path } => path,
            BuildError::Calendar(_) => "calendar",
            BuildError::Write(_) => "",
        }
    }
}

/// Header names a spec field owns; custom headers may not set them.
const MANAGED_HEADERS: &[&str] = &[
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
    "x-priority",
    "importance",
    "disposition-notification-to",
];

/// True when `name` is a header that `build` writes from a spec field.
pub fn is_managed_header(name: &str) -> bool {
    MANAGED_HEADERS.iter().any(|m| m.eq_ignore_ascii_case(name))
}

// The entry point, which composes the calendar and TNEF parts first, lives
// in `compose.rs`; kept here under its public path.
pub use crate::compose::build;

/// The MIME engine: the RFC 5322 bytes of a spec whose calendar and TNEF
/// parts are already composed (`calendar` is ignored, `tnef` must be false).
pub(crate) fn build_mime(
    spec: &MessageSpec,
    options: &BuildOptions,
) -> Result<Vec<u8>, BuildError> {
    let mut ids = IdSource::new(options.seed);
    let from = spec.from.as_ref().ok_or(BuildError::MissingFrom)?;
    let mut message = MessageBuilder::new().from(address(from));
    if let Some(sender) = &spec.sender {
        message = message.sender(address(sender));
    }
    if !spec.to.is_empty() {
        message = message.to(address_list(&spec.to));
    }
    if !spec.cc.is_empty() {
        message = message.cc(address_list(&spec.cc));
    }
    if !spec.reply_to.is_empty() {
        message = message.reply_to(address_list(&spec.reply_to));
    }
    if let Some(subject) = &spec.subject {
        if subject.chars().any(|c| c.is_control() && c != '\t') {
            return Err(BuildError::ControlCharacter {
                path: "subject".into(),
            });
        }
        message = message.subject(Text::new(subject.as_str()));
    }
    let date = spec.date.unwrap_or(Timestamp::from_unix(options.now));
    message = message.header("Date", Raw::new(date.to_rfc5322()));
    let message_id = match &spec.message_id {
        Some(id) => bare_id(id, "messageId")?.to_string(),
        None => {
            let generated = ids.message_id(from.domain());
            bare_id(&generated, "messageId")?.to_string()
        }
    };
    message = message.message_id(MessageId::new(message_id));
    if let Some(id) = &spec.in_reply_to {
        message = message.in_reply_to(MessageId::new(bare_id(id, "inReplyTo")?));
    }
    if !spec.references.is_empty() {
        let refs = spec
            .references
            .iter()
            .enumerate()
            .map(|(i, r)| bare_id(r, &format!("references[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        message = message.references(MessageId::new_list(refs.into_iter()));
    }
    match spec.priority {
        Priority::Normal => {}
        Priority::High => {
            message = message
                .header("X-Priority", Raw::new("1 (Highest)"))
                .header("Importance", Raw::new("high"));
        }
        Priority::Low => {
            message = message
                .header("X-Priority", Raw::new("5 (Lowest)"))
                .header("Importance", Raw::new("low"));
        }
    }
    if !spec.disposition_notification_to.is_empty() {
        message = message.header(
            "Disposition-Notification-To",
            HeaderType::Address(address_list(&spec.disposition_notification_to)),
        );
    }
    for (i, (name, value)) in spec.headers.iter().enumerate() {
        check_custom_header(i, name, value)?;
        message = message.header(name.as_str(), Text::new(value.as_str()));
    }
    message = message.body(body_tree(spec, &mut ids)?);
    message
        .write_to_vec()
        .map_err(|e| BuildError::Write(e.to_string()))
}

fn address(m: &Mailbox) -> Address<'_> {
    Address::new_address(m.name.as_deref(), m.email.as_str())
}

fn address_list(list: &[Mailbox]) -> Address<'_> {
    if let [one] = list {
        return address(one);
    }
    Address::new_list(list.iter().map(address).collect())
}

/// A message id without its brackets, validated as `left@right`.
fn bare_id<'a>(id: &'a str, path: &str) -> Result<&'a str, BuildError> {
    bare_identifier(id, path, true)
}

/// A Content-ID without its brackets. RFC 2392 wants `left@right`, but Apple
/// Mail (and others) write bare UUIDs that every client resolves and that
/// `parse` keeps, so any non-empty token that cannot break the header is taken.
fn bare_cid<'a>(id: &'a str, path: &str) -> Result<&'a str, BuildError> {
    bare_identifier(id, path, false)
}

/// `id` without angle brackets: printable ASCII that cannot break the
/// header, and `left@right` when `need_at`.
fn bare_identifier<'a>(id: &'a str, path: &str, need_at: bool) -> Result<&'a str, BuildError> {
    let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
    let shape_ok = if need_at {
        bare.split_once('@')
            .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty())
    } else {
        !bare.is_empty()
    };
    if shape_ok
        && bare
            .chars()
            .all(|c| c.is_ascii_graphic() && !"<>\"\\".contains(c))
    {
        Ok(bare)
    } else {
        Err(BuildError::Identifier {
            path: path.to_string(),
            value: id.to_string(),
        })
    }
}

fn check_custom_header(i: usize, name: &str, value: &str) -> Result<(), BuildError> {
    let err = |reason: String| BuildError::Header {
        path: format!("headers[{i}]"),
        reason,
    };
    if name.is_empty() || name.len() > 76 || !name.chars().all(|c| c.is_ascii_graphic() && c != ':')
    {
        return Err(err(format!(
            "invalid header name {name:?}: printable ASCII without ':' expected"
        )));
    }
    if is_managed_header(name) {
        return Err(err(format!(
            "header {name:?} is written from its own spec field; set that field instead"
        )));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(err(format!(
            "value of {name:?} has a control character (CR, LF, ...)"
        )));
    }
    Ok(())
}

fn multipart<'x>(
    essence: &'static str,
    parts: Vec<MimePart<'x>>,
    ids: &mut IdSource,
) -> MimePart<'x> {
    MimePart::new(
        ContentType::new(essence).attribute("boundary", ids.boundary()),
        parts,
    )
}

fn text_part<'x>(essence: &'static str, text: &'x str) -> MimePart<'x> {
    MimePart::new(
        ContentType::new(essence).attribute("charset", "utf-8"),
        BodyPart::Text(canonical_text(text)),
    )
}

/// Text in MIME canonical form (RFC 2046 4.1.1): every line break CRLF. The
/// builder converts line ends itself for 7bit and quoted-printable, but not
/// before base64, so without this a base64 text part would carry bare LFs and
/// a spec with CRLF bodies would give other bytes than the same spec with LF.
fn canonical_text(text: &str) -> Cow<'_, str> {
    if !text.contains(['\r', '\n']) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(crate::spec::normalise_newlines(text).replace('\n', "\r\n"))
}

fn media_type_header(media: &MediaType) -> ContentType<'static> {
    let mut ct = ContentType::new(media.essence.clone());
    for (name, value) in &media.params {
        ct = ct.attribute(name.clone(), value.clone());
    }
    ct
}

fn body_tree<'x>(spec: &'x MessageSpec, ids: &mut IdSource) -> Result<MimePart<'x>, BuildError> {
    let related_ok = spec.html.is_some();
    let (related, mixed): (Vec<_>, Vec<_>) = spec
        .attachments
        .iter()
        .enumerate()
        .partition(|(_, a)| related_ok && a.inline && a.content_id.is_some());

    let mut views = Vec::new();
    if let Some(text) = &spec.text {
        views.push(text_part("text/plain", text));
    }
    if let Some(html) = &spec.html {
        let html_part = text_part("text/html", html);
        if related.is_empty() {
            views.push(html_part);
        } else {
            let mut parts = vec![html_part];
            for (i, a) in &related {
                parts.push(attachment_part(*i, a)?);
            }
            views.push(multipart("multipart/related", parts, ids));
        }
    }
    for (i, alt) in spec.alternates.iter().enumerate() {
        views.push(alternate_part(i, alt)?);
    }
    let body = match views.len() {
        0 => None,
        1 => views.pop(),
        _ => Some(multipart("multipart/alternative", views, ids)),
    };
    if mixed.is_empty() {
        return Ok(body.unwrap_or_else(|| text_part("text/plain", "")));
    }
    let mut parts: Vec<MimePart<'x>> = body.into_iter().collect();
    for (i, a) in &mixed {
        parts.push(attachment_part(*i, a)?);
    }
    Ok(multipart("multipart/mixed", parts, ids))
}

/// The content type of one leaf part: a multipart type is refused, since
/// the spec holds no multipart structure (build writes that itself) and a
/// multipart header without a boundary would be invalid MIME.
fn leaf_media(value: &str, path: impl Fn() -> String) -> Result<MediaType, BuildError> {
    let media = MediaType::parse(value).map_err(|source| BuildError::ContentType {
        path: path(),
        source,
    })?;
    if media.essence.starts_with("multipart/") {
        return Err(BuildError::ContentType {
            path: path(),
            source: crate::content_type::ContentTypeError {
                value: value.to_string(),
                reason: "a multipart type cannot be the content of one part",
            },
        });
    }
    Ok(media)
}

fn alternate_part(i: usize, alt: &Alternate) -> Result<MimePart<'_>, BuildError> {
    let mut media = leaf_media(&alt.content_type, || format!("alternates[{i}].contentType"))?;
    if media.is_text() && media.param("charset").is_none() {
        media.params.insert(0, ("charset".into(), "utf-8".into()));
    }
    Ok(MimePart::new(
        media_type_header(&media),
        BodyPart::Text(canonical_text(&alt.content)),
    ))
}

fn attachment_part(i: usize, a: &Attachment) -> Result<MimePart<'_>, BuildError> {
    let media = leaf_media(&a.content_type, || format!("attachments[{i}].contentType"))?;
    let mut ct = media_type_header(&media);
    if let Some(name) = &a.filename {
        if name.chars().any(char::is_control) {
            return Err(BuildError::ControlCharacter {
                path: format!("attachments[{i}].filename"),
            });
        }
        if media.param("name").is_none() {
            ct = ct.attribute("name", name.as_str());
        }
    }
    let mut part = if media.essence == "message/rfc822" {
        message_rfc822_body(ct, &a.content)
    } else if media.is_text() {
        // Text attachments keep their exact bytes: base64, never line-ending repair.
        let encoded = base64::engine::general_purpose::STANDARD.encode(&a.content);
        let mut wrapped = String::with_capacity(encoded.len() + encoded.len() / 38 + 2);
        for (n, line) in encoded.as_bytes().chunks(76).enumerate() {
            if n > 0 {
                wrapped.push_str("\r\n");
            }
            wrapped.push_str(std::str::from_utf8(line).unwrap_or_default());
        }
        MimePart::new(ct, BodyPart::Binary(Cow::Owned(wrapped.into_bytes())))
            .transfer_encoding("base64")
    } else {
        MimePart::new(ct, BodyPart::Binary(Cow::Borrowed(a.content.as_slice())))
    };
    let mut disposition = ContentType::new(if a.inline { "inline" } else { "attachment" });
    if let Some(name) = &a.filename {
        disposition = disposition.attribute("filename", name.as_str());
    }
    part.headers
        .push(("Content-Disposition".into(), disposition.into()));
    if let Some(cid) = &a.content_id {
        part = part.cid(bare_cid(cid, &format!("attachments[{i}].contentId"))?);
    }
    Ok(part)
}

/// A message/rfc822 part: RFC 2046 allows only 7bit, 8bit or binary here, so
/// the original goes in unencoded (CRLF line ends); only a message that
/// cannot travel as 8bit text (NUL bytes, lines over 998 octets) falls back to base64.
fn message_rfc822_body<'x>(ct: ContentType<'x>, content: &'x [u8]) -> MimePart<'x> {
    let Some(bytes) = rfc822_wire_form(content) else {
        return MimePart::new(ct, BodyPart::Binary(Cow::Borrowed(content)));
    };
    let encoding = if bytes.is_ascii() { "7bit" } else { "8bit" };
    MimePart::new(ct, BodyPart::Binary(Cow::Owned(bytes))).transfer_encoding(encoding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::from_json;

    fn spec(json: &str) -> MessageSpec {
        from_json(json).unwrap_or_else(|e| panic!("{e}"))
    }

    fn built(json: &str) -> String {
        let bytes = build(
            &spec(json),
            &BuildOptions {
                now: 1_700_000_000,
                seed: 42,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8(bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn same_options_same_bytes() {
        let json = r#"{"from": "a@example.com", "to": ["b@example.com"], "text": "hi", "html": "<p>hi</p>"}"#;
        assert_eq!(built(json), built(json));
        let other = build(
            &spec(json),
            &BuildOptions {
                now: 1_700_000_000,
                seed: 43,
            },
        )
        .unwrap_or_default();
        assert_ne!(built(json).into_bytes(), other);
    }

    #[test]
    fn bcc_never_appears_and_headers_are_there() {
        let out = built(
            r#"{"from": "Ana <a@example.com>", "to": ["b@example.com"], "bcc": ["secret@example.com"],
            "subject": "Reunión", "priority": "high", "headers": [["X-Campaign", "7"]], "text": "hi"}"#,
        );
        assert!(!out.to_ascii_lowercase().contains("bcc"), "{out}");
        assert!(!out.contains("secret@example.com"));
        assert!(out.contains("X-Priority: 1 (Highest)\r\n"));
        assert!(out.contains("X-Campaign: 7\r\n"));
        assert!(out.contains("Subject: =?utf-8?"), "{out}");
        assert!(
            out.contains("Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"),
            "{out}"
        );
        assert!(
            out.contains("Message-ID: <") && out.contains("@example.com>\r\n"),
            "{out}"
        );
    }

    #[test]
    fn structure_follows_what_is_present() {
        let out = built(
            r#"{"from": "a@example.com", "text": "t", "html": "<img src=cid:logo@x>",
            "attachments": [{"filename": "logo.png", "contentType": "image/png", "content": "AAEC", "inline": true, "contentId": "logo@x"},
                            {"filename": "r.pdf", "contentType": "application/pdf", "content": "JVBERg=="}]}"#,
        );
        let mixed = out.find("multipart/mixed").unwrap_or(usize::MAX);
        let alt = out.find("multipart/alternative").unwrap_or(usize::MAX);
        let rel = out.find("multipart/related").unwrap_or(usize::MAX);
        assert!(mixed < alt && alt < rel && rel < out.len(), "{out}");
        assert!(out.contains("Content-ID: <logo@x>"), "{out}");
    }

    #[test]
    fn bad_fields_are_named() {
        let opts = BuildOptions::default();
        assert_eq!(
            build(&spec(r#"{"to": ["b@example.com"]}"#), &opts),
            Err(BuildError::MissingFrom)
        );
        let e = build(
            &spec(r#"{"from": "a@x.org", "headers": [["X-Ok", "1"], ["Bad Name", "v"]]}"#),
            &opts,
        )
        .unwrap_err();
        assert_eq!(e.path(), "headers[1]");
        let e = build(
            &spec(r#"{"from": "a@x.org", "headers": [["X-A", "v\r\nBcc: x@y.z"]]}"#),
            &opts,
        )
        .unwrap_err();
        assert_eq!(e.path(), "headers[0]");
        let e = build(
            &spec(r#"{"from": "a@x.org", "headers": [["Subject", "v"]]}"#),
            &opts,
        )
        .unwrap_err();
        assert!(e.to_string().contains("own spec field"), "{e}");
        let e = build(
            &spec(r#"{"from": "a@x.org", "attachments": [{"contentType": "pdf", "content": ""}]}"#),
            &opts,
        )
        .unwrap_err();
        assert_eq!(e.path(), "attachments[0].contentType");
        let e = build(
            &spec(r#"{"from": "a@x.org", "messageId": "no-at-sign"}"#),
            &opts,
        )
        .unwrap_err();
        assert_eq!(e.path(), "messageId");
        let e = build(&spec(r#"{"from": "a@x.org", "subject": "a\nb"}"#), &opts).unwrap_err();
        assert_eq!(e.path(), "subject");
    }
}
