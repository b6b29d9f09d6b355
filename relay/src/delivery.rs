//! Delivery, whatever the transport: the result and error vocabulary that the
//! SMTP pool ([`crate::smtp`]) and the pickup directory ([`crate::pickup`])
//! both speak, and the [`Transport`] trait the spool drives them through.
//! This module depends on neither transport, so they do not depend on each
//! other.
//!
//! - [`SmtpReply`] (code, [`EnhancedStatus`], text), [`RecipientStatus`] and
//!   [`DeliveryReport`]: what a transport answers for a message it took;
//! - [`Failure`]: what every transport error answers (transient or permanent,
//!   the server's reply, the recipients refused one by one);
//! - [`Content`], [`Outgoing`], [`BulkProgress`]: what goes in.

use std::{fmt, path::PathBuf, sync::Arc};

use postwire_core::envelope::Envelope;

/// An RFC 3463 enhanced status code such as `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// Subject (0 to 999).
    pub subject: u16,
    /// Detail (0 to 999).
    pub detail: u16,
}

impl EnhancedStatus {
    /// Reads a code like `4.2.2` at the start of `text`, if there is one.
    pub fn parse_prefix(text: &str) -> Option<Self> {
        let word = text.split_ascii_whitespace().next()?;
        let mut parts = word.split('.');
        let class = parts.next()?;
        let subject = parts.next()?;
        let detail = parts.next()?;
        if parts.next().is_some() {
            return None;
        }
        let digits = |s: &str, max: usize| {
            !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !(digits(class, 1) && digits(subject, 3) && digits(detail, 3)) {
            return None;
        }
        let class: u8 = class.parse().ok()?;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        Some(EnhancedStatus {
            class,
            subject: subject.parse().ok()?,
            detail: detail.parse().ok()?,
        })
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One reply of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    /// The three-digit reply code, e.g. 250 or 550.
    pub code: u16,
    /// The enhanced status code at the start of the text, when the server sent one.
    pub enhanced: Option<EnhancedStatus>,
    /// The text of the reply; lines of a multi-line reply joined by `\n`.
    pub text: String,
}

impl SmtpReply {
    /// A reply from a code and text; the enhanced status is read from the text.
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        let text = text.into();
        SmtpReply {
            code,
            enhanced: EnhancedStatus::parse_prefix(&text),
            text,
        }
    }

    /// 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: do not try again.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text.replace('\n', " / "))
    }
}

/// The server's answer to `RCPT TO` for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    /// The recipient address as given in the envelope.
    pub recipient: String,
    /// The server's reply to `RCPT TO` for it.
    pub reply: SmtpReply,
}

impl RecipientStatus {
    /// The server accepted this recipient (and, in a [`DeliveryReport`], the message for it).
    pub fn is_accepted(&self) -> bool {
        self.reply.is_positive()
    }
}

/// The outcome of one message handed to the server.
///
/// A report exists only when the server took the message for at least one
/// recipient; recipients it refused are listed with their reply, so the caller
/// can retry the transient ones and bounce the permanent ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// One entry per envelope recipient, in envelope order.
    pub recipients: Vec<RecipientStatus>,
    /// The server's reply at the end of the message data (e.g. `250 2.0.0 queued as X`).
    pub reply: SmtpReply,
    /// Bytes of message content handed over (before dot-stuffing).
    pub bytes: u64,
    /// What was asked for but not passed on (e.g. a DSN request to a server
    /// without the DSN extension); the message went without it.
    pub warnings: Vec<Warning>,
}

/// Something asked for that the transport could not pass on; the message
/// was sent without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// The envelope asked for delivery status notifications, but the server
    /// does not offer the DSN extension (RFC 3461): no NOTIFY, RET, ENVID or
    /// ORCPT was sent, and the server's own defaults apply.
    DsnNotOffered,
}

impl Warning {
    /// A stable name for JSON output.
    pub fn code(self) -> &'static str {
        match self {
            Warning::DsnNotOffered => "dsnNotOffered",
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Warning::DsnNotOffered => {
                "the server does not offer DSN: sent without the delivery status notification request"
            }
        })
    }
}

impl DeliveryReport {
    /// Recipients the server accepted.
    pub fn accepted(&self) -> impl Iterator<Item = &RecipientStatus> {
        self.recipients.iter().filter(|r| r.is_accepted())
    }

    /// Recipients the server refused (with a 4xx or 5xx reply).
    pub fn rejected(&self) -> impl Iterator<Item = &RecipientStatus> {
        self.recipients.iter().filter(|r| !r.is_accepted())
    }

    /// Every recipient was accepted.
    pub fn is_complete(&self) -> bool {
        self.recipients.iter().all(RecipientStatus::is_accepted)
    }
}

/// The message content of one transaction.
#[derive(Debug, Clone)]
pub enum Content {
    /// The whole message in memory.
    Bytes(Arc<[u8]>),
    /// A message file, read while it is sent: files above 1 MiB are streamed
    /// in 64 KiB chunks, never loaded whole.
    File(PathBuf),
}

impl Content {
    /// `Some(true)` when the content is known to be 7-bit, `None` when unknown.
    pub fn is_ascii(&self) -> Option<bool> {
        match self {
            Content::Bytes(b) => Some(b.is_ascii()),
            Content::File(_) => None,
        }
    }

    /// The size in bytes: the length in memory, or the file's size now.
    pub fn len_hint(&self) -> Option<u64> {
        match self {
            Content::Bytes(b) => Some(b.len() as u64),
            Content::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }
}

/// One message of a bulk send: its envelope and its content.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// MAIL FROM and RCPT TO (and the DSN requests, if any).
    pub envelope: Envelope,
    /// The message.
    pub content: Content,
}

/// How far a bulk send has come; handed to the progress callback after each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkProgress {
    /// Messages finished (delivered or failed).
    pub done: usize,
    /// Messages in the bulk.
    pub total: usize,
    /// Messages the server took (for at least one recipient).
    pub delivered: usize,
    /// Messages that failed.
    pub failed: usize,
}

/// What every transport's error answers, so that a spool can act on it
/// without knowing the transport: retry later or give up, and per recipient
/// when the transport refused them one by one.
pub trait Failure: std::error::Error + Send + Sync + 'static {
    /// Trying again later may succeed (4xx, timeouts, lost connections, a full disk).
    fn is_transient(&self) -> bool;

    /// Trying again with the same message will fail the same way.
    fn is_permanent(&self) -> bool {
        !self.is_transient()
    }

    /// The server's reply behind the failure, if there was one.
    fn reply(&self) -> Option<&SmtpReply> {
        None
    }

    /// Every recipient was refused, each with its own reply: those replies.
    /// Empty when the failure concerns the message as a whole.
    fn refused_recipients(&self) -> &[RecipientStatus] {
        &[]
    }
}

/// Any transport's failure, boxed (for code that drives several transports).
pub type BoxedFailure = Box<dyn Failure>;

/// Something that takes a message for its envelope's recipients: the SMTP pool
/// or the pickup directory. Both answer with a [`DeliveryReport`] per message
/// and an error that is a [`Failure`].
pub trait Transport: Send + Sync {
    /// Why a message was not taken.
    type Error: Failure;

    /// Delivers one message (in memory or streamed from a file).
    fn deliver(
        &self,
        envelope: Envelope,
        content: Content,
    ) -> impl Future<Output = Result<DeliveryReport, Self::Error>> + Send;

    /// Delivers message bytes.
    fn send_bytes(
        &self,
        envelope: Envelope,
        message: Arc<[u8]>,
    ) -> impl Future<Output = Result<DeliveryReport, Self::Error>> + Send {
        self.deliver(envelope, Content::Bytes(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_status_is_read_from_the_text() {
        let r = SmtpReply::new(550, "5.1.1 <x@y>: user unknown");
        assert_eq!(r.enhanced.map(|e| e.to_string()).as_deref(), Some("5.1.1"));
        assert!(r.is_permanent() && !r.is_transient());
        assert_eq!(SmtpReply::new(250, "OK").enhanced, None);
        assert_eq!(SmtpReply::new(250, "1.2.3 x").enhanced, None);
        assert_eq!(SmtpReply::new(250, "2.0.0.1 x").enhanced, None);
        assert_eq!(SmtpReply::new(250, "2.a.0 x").enhanced, None);
        assert!(SmtpReply::new(451, "4.3.0 try later").is_transient());
    }
}
