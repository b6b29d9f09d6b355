//! The frames of the `postwire.v1` WebSocket protocol (docs/protocol.md):
//! JSON text frames tagged by `type`, and the error codes they carry.

use serde::{Deserialize, Serialize};

use crate::spool::{Envelope, RcptStatus};

/// Name of the protocol, sent in `ready` and accepted as WebSocket subprotocol.
pub const PROTOCOL: &str = "postwire.v1";

/// A control frame from the client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientFrame {
    /// Authenticates the connection (when no `Authorization` header was sent).
    Auth {
        /// The token's secret.
        token: String,
    },
    /// Announces a message; its bytes follow in exactly one binary frame.
    Submit {
        /// The client's id, the idempotency key of the message.
        id: String,
        /// Explicit envelope; when absent it is derived from the headers.
        #[serde(default)]
        envelope: Option<Envelope>,
        /// Size of the binary frame that follows, in bytes.
        size: u64,
    },
    /// Asks for the state of a message submitted before (on any connection).
    Status {
        /// The client's id of the message.
        id: String,
    },
}

/// A frame from the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerFrame {
    /// Authentication succeeded; submissions may start.
    #[serde(rename_all = "camelCase")]
    Ready {
        /// Always `postwire.v1`.
        protocol: String,
        /// Name of the authenticated token.
        token: String,
        /// Most submissions unanswered at once; more are not read until answered.
        window: usize,
        /// Largest message this token may send, in bytes.
        max_size: u64,
    },
    /// The message is durably spooled (or was already: `duplicate`).
    #[serde(rename_all = "camelCase")]
    Accepted {
        /// The client's id.
        id: String,
        /// The id was known: nothing was stored or will be sent again.
        duplicate: bool,
        /// The recipients of the envelope, normalised: one `delivered` or
        /// `failed` event per recipient will follow (unless `duplicate`).
        rcpt_to: Vec<String>,
    },
    /// The message was refused; nothing was stored.
    Rejected {
        /// The client's id (empty when the submit frame had none).
        id: String,
        /// Machine-readable reason.
        code: Code,
        /// Human-readable reason.
        message: String,
    },
    /// One recipient was delivered.
    Delivered {
        /// The client's id.
        id: String,
        /// The recipient.
        rcpt: String,
        /// The upstream's reply.
        response: String,
        /// The reply's code (`250`), when the text starts with one.
        #[serde(rename = "smtpCode", default, skip_serializing_if = "Option::is_none")]
        smtp_code: Option<u16>,
        /// The reply's RFC 3463 enhanced status code (`2.0.0`), when it has one.
        #[serde(
            rename = "enhancedCode",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        enhanced_code: Option<String>,
    },
    /// One recipient was refused for now; the relay retries.
    #[serde(rename_all = "camelCase")]
    Deferred {
        /// The client's id.
        id: String,
        /// The recipient.
        rcpt: String,
        /// The upstream's reply or the connection error.
        reason: String,
        /// Attempts so far.
        attempts: u32,
        /// Next attempt, milliseconds since the Unix epoch.
        retry_at: u64,
        /// The reply's code (`451`), when `reason` is a server's reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        smtp_code: Option<u16>,
        /// The reply's RFC 3463 enhanced status code (`4.2.2`), when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enhanced_code: Option<String>,
    },
    /// One recipient failed for good.
    Failed {
        /// The client's id.
        id: String,
        /// The recipient.
        rcpt: String,
        /// Why.
        reason: String,
        /// The reply's code (`550`), when `reason` is a server's reply.
        #[serde(rename = "smtpCode", default, skip_serializing_if = "Option::is_none")]
        smtp_code: Option<u16>,
        /// The reply's RFC 3463 enhanced status code (`5.1.1`), when it has one.
        #[serde(
            rename = "enhancedCode",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        enhanced_code: Option<String>,
    },
    /// A delivered recipient's server sent a delivery status notification
    /// back to the relay's bounce address (docs/bounces.md).
    Bounced {
        /// The client's id.
        id: String,
        /// The recipient.
        rcpt: String,
        /// `hard` (status 5.x.x: the recipient is now suppressed) or `soft` (4.x.x).
        bounce: crate::spool::BounceKind,
        /// The report's RFC 3463 status (`5.1.1`).
        status: String,
        /// The report's diagnostic code (`smtp; 550 5.1.1 no such user`), when present.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        diagnostic: Option<String>,
    },
    /// The recipient's provider sent an abuse report (ARF) for the message;
    /// the recipient is now suppressed.
    #[serde(rename_all = "camelCase")]
    Complained {
        /// The client's id.
        id: String,
        /// The recipient.
        rcpt: String,
        /// The report's feedback type (`abuse`), when present.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feedback_type: Option<String>,
    },
    /// Answer to a `status` frame.
    Status {
        /// The client's id.
        id: String,
        /// Whether the relay knows the message.
        known: bool,
        /// Each recipient and its state (`queued`, `deferred`, `delivered`, `failed`).
        recipients: Vec<RcptStatus>,
    },
    /// A connection-level error; the relay closes the connection after it.
    Error {
        /// Machine-readable reason.
        code: Code,
        /// Human-readable reason.
        message: String,
    },
}

/// Machine-readable reasons of `rejected` and `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Code {
    /// The first frame was not `auth` (and no `Authorization` header was sent).
    AuthRequired,
    /// The token is unknown.
    Unauthorized,
    /// A frame is not valid JSON of a known type, or comes out of order.
    Protocol,
    /// The message is larger than the token's limit.
    TooLarge,
    /// The binary frame's size differs from the `submit` frame's `size`.
    SizeMismatch,
    /// The id is empty, too long or has characters outside `[A-Za-z0-9._:@+=-]`.
    BadId,
    /// An envelope address contains CR, LF or another control character.
    BadEnvelope,
    /// An envelope address is not a valid address, or there is no recipient.
    InvalidAddress,
    /// No envelope was given and none could be derived from the headers.
    NoEnvelope,
    /// The envelope's `dsn` request is not valid (e.g. `never` with other values).
    InvalidDsn,
    /// The token may not use this envelope sender.
    SenderNotAllowed,
    /// Too many recipients in one message.
    TooManyRecipients,
    /// The token's rate limit is exhausted; try again later.
    RateLimited,
    /// The message could not be stored; it was not accepted.
    Storage,
    /// The relay is shutting down; reconnect and resubmit what was not accepted.
    ShuttingDown,
    /// No frame arrived in time.
    Timeout,
    /// A recipient hard-bounced or complained before; the token may not
    /// send to it until the operator removes the suppression.
    Suppressed,
}

impl Code {
    /// WebSocket close code used when this error ends the connection.
    pub fn close_code(self) -> u16 {
        match self {
            Code::AuthRequired | Code::Unauthorized => 4401,
            Code::Timeout => 4408,
            Code::RateLimited => 4429,
            Code::ShuttingDown => 1001,
            _ => 4400,
        }
    }
}

/// The reply code and enhanced status code at the start of an upstream's
/// reply text (`"550 5.1.1 no such user"` -> `(Some(550), Some("5.1.1"))`);
/// `None`s for text that is not a reply (a connection error).
pub fn reply_codes(text: &str) -> (Option<u16>, Option<String>) {
    let t = text.trim_start();
    let code = t
        .get(..3)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .filter(|_| t.len() == 3 || matches!(t.as_bytes()[3], b' ' | b'-'))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (200..600).contains(c));
    let Some(code) = code else {
        return (None, None);
    };
    let enhanced = crate::delivery::EnhancedStatus::parse_prefix(t.get(4..).unwrap_or(""))
        .filter(|e| u16::from(e.class) == code / 100)
        .map(|e| e.to_string());
    (Some(code), enhanced)
}

#[cfg(test)]
mod reply_code_tests {
    use super::reply_codes;

    #[test]
    fn codes_are_read_from_a_reply_and_not_from_other_text() {
        assert_eq!(
            reply_codes("550 5.1.1 no such user"),
            (Some(550), Some("5.1.1".into()))
        );
        assert_eq!(reply_codes("451 try later"), (Some(451), None));
        assert_eq!(
            reply_codes("250 2.0.0 written"),
            (Some(250), Some("2.0.0".into()))
        );
        assert_eq!(reply_codes("550 4.1.1 class disagrees"), (Some(550), None));
        assert_eq!(reply_codes("connection refused"), (None, None));
        assert_eq!(reply_codes("1234 x"), (None, None));
        assert_eq!(reply_codes(""), (None, None));
    }
}
