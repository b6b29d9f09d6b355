//! The SMTP envelope of a message: MAIL FROM and RCPT TO, derived by the
//! rules every sender must follow, and kept apart from the headers so that a
//! message can be forwarded unchanged to recipients it does not name.
//!
//! Rules: MAIL FROM is the `sender` when there is one, else the `from`;
//! RCPT TO is `to` + `cc` + `bcc` in that order, de-duplicated (addresses
//! compare with a case-insensitive domain).

use serde::{Deserialize, Serialize};

use crate::{address::Mailbox, parse::ParseError, spec::MessageSpec};

/// Why no envelope could be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Neither `sender` nor `from` is set.
    #[error("no sender: the message has neither Sender nor From")]
    NoSender,
    /// No recipient in To, Cc or Bcc.
    #[error("no recipients: the message has no To, Cc or Bcc address")]
    NoRecipients,
    /// The bytes are not a message.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// An address given for the envelope is invalid.
    #[error("{path}: {source}")]
    Address {
        /// `mailFrom` or `rcptTo[N]`.
        path: String,
        /// Why.
        source: crate::address::AddressError,
    },
}

/// MAIL FROM and RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    /// The reverse path (bare address).
    pub mail_from: String,
    /// The forward paths (bare addresses), de-duplicated.
    pub rcpt_to: Vec<String>,
}

impl Envelope {
    /// A validated envelope from explicit addresses (bare or `Name <addr>`).
    pub fn new<S: AsRef<str>>(mail_from: &str, rcpt_to: &[S]) -> Result<Self, EnvelopeError> {
        let from = Mailbox::parse(mail_from).map_err(|source| EnvelopeError::Address {
            path: "mailFrom".into(),
            source,
        })?;
        let mut rcpts = Vec::with_capacity(rcpt_to.len());
        for (i, r) in rcpt_to.iter().enumerate() {
            let m = Mailbox::parse(r.as_ref()).map_err(|source| EnvelopeError::Address {
                path: format!("rcptTo[{i}]"),
                source,
            })?;
            rcpts.push(m);
        }
        if rcpts.is_empty() {
            return Err(EnvelopeError::NoRecipients);
        }
        Ok(Envelope {
            mail_from: from.email,
            rcpt_to: dedup(rcpts.iter()),
        })
    }

    /// The envelope of a spec.
    pub fn of_spec(spec: &MessageSpec) -> Result<Self, EnvelopeError> {
        let from = spec
            .sender
            .as_ref()
            .or(spec.from.as_ref())
            .ok_or(EnvelopeError::NoSender)?;
        let rcpt_to = dedup(spec.to.iter().chain(&spec.cc).chain(&spec.bcc));
        if rcpt_to.is_empty() {
            return Err(EnvelopeError::NoRecipients);
        }
        Ok(Envelope {
            mail_from: from.email.clone(),
            rcpt_to,
        })
    }

    /// The envelope of finished message bytes (their headers, Bcc included if present).
    pub fn of_message(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        Self::of_spec(&crate::parse::parse(bytes)?)
    }
}

fn dedup<'a>(list: impl Iterator<Item = &'a Mailbox>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for m in list {
        let key = m.email.to_ascii_lowercase();
        if !seen.contains(&key) {
            seen.push(key);
            out.push(m.email.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::from_json;

    #[test]
    fn sender_wins_and_recipients_are_deduplicated() {
        let spec = from_json(
            r#"{"from": "a@x.org", "sender": "s@x.org", "to": ["b@y.org", "B@Y.ORG"],
            "cc": ["c@y.org", "b@y.org"], "bcc": ["d@y.org"]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let env = Envelope::of_spec(&spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(env.mail_from, "s@x.org");
        assert_eq!(env.rcpt_to, ["b@y.org", "c@y.org", "d@y.org"]);
    }

    #[test]
    fn missing_parts_are_errors() {
        let spec = from_json(r#"{"to": ["b@y.org"]}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Envelope::of_spec(&spec), Err(EnvelopeError::NoSender));
        let spec = from_json(r#"{"from": "a@x.org"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Envelope::of_spec(&spec), Err(EnvelopeError::NoRecipients));
        assert!(matches!(
            Envelope::new("a@x.org", &["b\r\n@y.org"]),
            Err(EnvelopeError::Address { .. })
        ));
    }
}
