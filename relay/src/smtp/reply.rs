//! What the server answered: an SMTP reply (code, enhanced status code, text),
//! the outcome per recipient, and the report of one delivered message.

use std::fmt;

use lettre::transport::smtp::response::Response;

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

    pub(crate) fn from_response(response: &Response) -> Self {
        let text = response.message().collect::<Vec<_>>().join("\n");
        SmtpReply::new(u16::from(response.code()), text)
    }

    /// Builds the reply carried by a lettre error for a negative answer (4xx/5xx).
    pub(crate) fn from_lettre_error(err: &lettre::transport::smtp::Error) -> Option<Self> {
        let code = err.status()?;
        let text = std::error::Error::source(err)
            .map(|s| s.to_string())
            .unwrap_or_default();
        Some(SmtpReply::new(u16::from(code), text))
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
