//! The message spec: one serde model that is the JSON of the CLI, the object
//! of the JavaScript API and the Rust struct (field names in camelCase; they
//! are a contract, see DESIGN.md). `build` turns a spec into RFC 5322 bytes
//! and `parse` turns bytes back into a spec.
//!
//! Normal form (what `parse` returns, and what `parse(build(spec))` equals):
//! domains in lower-case A-labels, message ids in angle brackets, body line
//! breaks as `\n`, no `bcc` (it never goes out in the bytes), `date` as
//! RFC 3339 with the offset it was written with, attached messages
//! (`message/rfc822`) with the CRLF line ends they travel with, and
//! attachments in MIME order (the HTML's inline parts with a Content-ID first),
//! a readable `text/calendar` view as `calendar` (see [`crate::ical::mime`]),
//! and no `dsn` or `requireTls` (they go into the envelope, not the bytes).

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::address::Mailbox;

/// A whole message, as built and as parsed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageSpec {
    /// The author (`From`). Required to build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Mailbox>,
    /// The agent that sent it on the author's behalf (`Sender`); also MAIL FROM when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Mailbox>,
    /// Primary recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<Mailbox>,
    /// Carbon-copy recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<Mailbox>,
    /// Blind recipients: in the envelope, never in the bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<Mailbox>,
    /// Where replies go (`Reply-To`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<Mailbox>,
    /// The subject, any Unicode (RFC 2047-encoded when not ASCII).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The origination date; when absent, `build` uses the injected clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<Timestamp>,
    /// `<id@domain>`; when absent, `build` generates one from the injected seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The message this one answers (`In-Reply-To`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// The thread (`References`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// The plain-text body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The HTML body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Further alternative views (text/calendar, text/watch-html, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<Alternate>,
    /// Attached files and inline resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Any other header, in order, as `[name, value]` pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Priority, written as `X-Priority` and `Importance`.
    #[serde(default, skip_serializing_if = "Priority::is_normal")]
    pub priority: Priority,
    /// Where read receipts go (`Disposition-Notification-To`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disposition_notification_to: Vec<Mailbox>,
    /// A meeting request, cancellation, reply or published event: built as
    /// a `text/calendar` part (RFC 6047), read back from one. See [`crate::ical`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<crate::ical::Appointment>,
    /// Send as TNEF (issue 7): a text/plain body plus an application/ms-tnef
    /// winmail.dat carrying the whole message, the shape Outlook sends. Set by
    /// `parse` when a message carries a winmail.dat. See `tnef::spec`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tnef: bool,
    /// Delivery status notifications to ask for when sending (RFC 3461)
    /// (cargo feature `transfer-requests`, on by default, not in the npm package):
    /// `{"notify": ["failure", "delay"], "ret": "hdrs", "envid": "x"}`. Goes
    /// into the envelope, never into the bytes; `parse` leaves it out.
    #[cfg(feature = "transfer-requests")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsn: Option<crate::envelope::Dsn>,
    /// Ask for REQUIRETLS (RFC 8689) when sending: refused by a server that
    /// does not offer it. Envelope only, like `dsn`.
    #[cfg(feature = "transfer-requests")]
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_tls: bool,
}

/// An alternative view of the body in another content type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Alternate {
    /// Full content type with parameters, e.g. `text/calendar; method=REQUEST`.
    pub content_type: String,
    /// The content as text.
    pub content: String,
}

/// A file attached to the message, or an inline resource (an image the HTML
/// refers to by `cid:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attachment {
    /// The file name (any Unicode; RFC 2231-encoded when needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The media type, `application/octet-stream` when not given.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// The bytes; base64 in JSON.
    #[serde(with = "base64_bytes")]
    pub content: Vec<u8>,
    /// Shown inline (`Content-Disposition: inline`) rather than as a file.
    #[serde(default, skip_serializing_if = "is_false")]
    pub inline: bool,
    /// The Content-ID the HTML refers to (without angle brackets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

fn default_content_type() -> String {
    "application/octet-stream".to_string()
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Message priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// `X-Priority: 1 (Highest)`, `Importance: high`.
    High,
    /// No priority headers.
    #[default]
    Normal,
    /// `X-Priority: 5 (Lowest)`, `Importance: low`.
    Low,
}

impl Priority {
    fn is_normal(&self) -> bool {
        *self == Priority::Normal
    }
}

/// A point in time with the UTC offset it is written with (RFC 3339 in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub unix: i64,
    /// Offset from UTC in minutes, east positive.
    pub offset_minutes: i32,
}

impl Timestamp {
    /// A UTC timestamp.
    pub fn from_unix(unix: i64) -> Self {
        Timestamp {
            unix,
            offset_minutes: 0,
        }
    }

    /// Parses RFC 3339 (`2026-12-01T09:00:00Z`, `...+01:00`).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let dt = mail_parser::DateTime::parse_rfc3339(s)?;
        dt.is_valid().then(|| Self::from_parser(&dt))
    }

    pub(crate) fn from_parser(dt: &mail_parser::DateTime) -> Self {
        let mut offset = i32::from(dt.tz_hour) * 60 + i32::from(dt.tz_minute);
        if dt.tz_before_gmt {
            offset = -offset;
        }
        Timestamp {
            unix: dt.to_timestamp(),
            offset_minutes: offset,
        }
    }

    /// The date-time in its own offset, as mail-parser represents it.
    pub(crate) fn to_parser(self) -> mail_parser::DateTime {
        let local = self.unix + i64::from(self.offset_minutes) * 60;
        let mut dt = mail_parser::DateTime::from_timestamp(local);
        let abs = self.offset_minutes.unsigned_abs();
        dt.tz_before_gmt = self.offset_minutes < 0;
        dt.tz_hour = u8::try_from(abs / 60).unwrap_or(0);
        dt.tz_minute = u8::try_from(abs % 60).unwrap_or(0);
        dt
    }

    /// RFC 5322 form for the `Date` header.
    pub fn to_rfc5322(self) -> String {
        self.to_parser().to_rfc822()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_parser().to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid date {s:?}: expected RFC 3339 such as 2026-12-01T09:00:00Z"
            ))
        })
    }
}

/// base64 (standard alphabet, padding optional, white space ignored) for byte fields.
pub(crate) mod base64_bytes {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        decode(&s).map_err(serde::de::Error::custom)
    }

    /// Decodes base64, tolerating line breaks and missing padding.
    pub(crate) fn decode(s: &str) -> Result<Vec<u8>, String> {
        // One pass, no copy (crate::b64); it leaves every error to the path below.
        if let Some(bytes) = crate::b64::decode(s.as_bytes()) {
            return Ok(bytes);
        }
        // Bytes, not chars: a quarter of the time on large attachments (parse
        // decodes every base64 part with this); non-ASCII still fails below.
        // Most content (from JS, JSON) has no line breaks: then no copy at all
        // (saves a copy of every attachment in buildEml of the npm package).
        let compact: std::borrow::Cow<'_, [u8]> = if s.bytes().any(|b| b.is_ascii_whitespace()) {
            s.bytes().filter(|b| !b.is_ascii_whitespace()).collect()
        } else {
            std::borrow::Cow::Borrowed(s.as_bytes())
        };
        let end = compact
            .iter()
            .rposition(|&b| b != b'=')
            .map_or(0, |i| i + 1);
        let trimmed = compact.get(..end).unwrap_or_default();
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(trimmed)
            .map_err(|e| format!("invalid base64 content: {e}"))
    }
}

/// Why a JSON spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message} (line {line}, column {column})")]
pub struct SpecError {
    /// The field path, such as `to[1]` or `attachments[0].content`; `.` for the top.
    pub path: String,
    /// What was wrong.
    pub message: String,
    /// 1-based line in the JSON text (0 when not from text).
    pub line: usize,
    /// 1-based column in the JSON text (0 when not from text).
    pub column: usize,
}

/// Reads a spec from JSON text; errors name the field path and the line.
pub fn from_json(json: &str) -> Result<MessageSpec, SpecError> {
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let mut message = inner.to_string();
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        SpecError {
            path,
            message,
            line: inner.line(),
            column: inner.column(),
        }
    })
}

/// Writes a spec as pretty JSON.
pub fn to_json(spec: &MessageSpec) -> String {
    // Serialising this model cannot fail: every map key is a string.
    serde_json::to_string_pretty(spec).unwrap_or_default()
}

/// The bytes a message/rfc822 attachment goes out as when it can travel
/// unencoded (CRLF line ends, a final CRLF), or `None` when it cannot (NUL
/// bytes, lines over 998 octets). `build` and [`MessageSpec::normalized`] use it.
pub(crate) fn rfc822_wire_form(content: &[u8]) -> Option<Vec<u8>> {
    let fits_8bit = !content.contains(&0) && content.split(|&b| b == b'\n').all(|l| l.len() <= 998);
    if !fits_8bit {
        return None;
    }
    let mut bytes = Vec::with_capacity(content.len() + content.len() / 32 + 2);
    let mut prev = 0u8;
    for &b in content {
        if b == b'\n' && prev != b'\r' {
            bytes.push(b'\r');
        }
        bytes.push(b);
        prev = b;
    }
    if !bytes.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    Some(bytes)
}

/// `<id>` form of a message id given with or without brackets.
pub fn bracket_id(id: &str) -> String {
    let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{bare}>")
}

/// CRLF and lone CR become LF.
pub(crate) fn normalise_newlines(s: &str) -> String {
    if !s.contains('\r') {
        return s.to_string();
    }
    s.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_design_example() {
        let spec = from_json(
            r#"{"from": "Ana Núñez <ana@example.com>", "to": ["bob@example.com", "\"Carl\" <carl@example.org>"],
                "subject": "Reunión", "date": "2026-12-01T09:00:00Z", "messageId": "<abc@example.com>",
                "text": "plain", "attachments": [{"filename": "a.pdf", "contentType": "application/pdf", "content": "aGVsbG8="}],
                "headers": [["X-Campaign", "7"]], "priority": "high"}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.to.len(), 2);
        assert_eq!(spec.attachments[0].content, b"hello");
        assert_eq!(spec.priority, Priority::High);
        assert_eq!(
            spec.date.map(|d| d.to_string()).as_deref(),
            Some("2026-12-01T09:00:00Z")
        );
    }

    #[test]
    fn errors_name_the_field_path_and_line() {
        let err = from_json("{\n \"to\": [\"ok@example.com\",\n \"bad\"]\n}").unwrap_err();
        assert_eq!(err.path, "to[1]");
        assert_eq!(err.line, 3);
        assert!(err.message.contains("missing '@'"), "{err}");
        let err = from_json(r#"{"form": "a@b.c"}"#).unwrap_err();
        assert!(err.message.contains("unknown field `form`"), "{err}");
        let err = from_json(r#"{"attachments": [{"content": "!!"}]}"#).unwrap_err();
        assert_eq!(err.path, "attachments[0].content");
        let err = from_json(r#"{"date": "yesterday"}"#).unwrap_err();
        assert_eq!(err.path, "date");
    }

    #[test]
    fn timestamps_keep_their_offset() {
        let t = Timestamp::parse_rfc3339("2026-12-01T09:00:00+01:00").unwrap_or_else(|| panic!());
        assert_eq!(t.offset_minutes, 60);
        assert_eq!(t.to_string(), "2026-12-01T09:00:00+01:00");
        assert_eq!(t.to_rfc5322(), "Tue, 1 Dec 2026 09:00:00 +0100");
        let neg = Timestamp::parse_rfc3339("2026-12-01T09:00:00-05:30").unwrap_or_else(|| panic!());
        assert_eq!(neg.to_string(), "2026-12-01T09:00:00-05:30");
    }
}
