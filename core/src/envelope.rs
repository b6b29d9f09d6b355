//! The SMTP envelope of a message: MAIL FROM and RCPT TO, derived by the
//! rules every sender must follow, and kept apart from the headers so that a
//! message can be forwarded unchanged to recipients it does not name.
//!
//! Rules: MAIL FROM is the `sender` when there is one, else the `from`;
//! RCPT TO is `to` + `cc` + `bcc` in that order, de-duplicated (addresses
//! compare with a case-insensitive domain).
//!
//! Beside the addresses, an envelope carries what the sender asks of the
//! transfer itself: delivery status notifications ([`Dsn`], RFC 3461) and
//! REQUIRETLS (RFC 8689). Both come from the spec (`dsn`, `requireTls`) and
//! are written as MAIL FROM / RCPT TO parameters by the SMTP client. The
//! fields exist with the cargo feature `transfer-requests` (default; the npm
//! package, which takes no default features, leaves them out for size).

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
    /// The delivery status notification request is not valid.
    #[error("dsn: {0}")]
    Dsn(String),
    /// An address given for the envelope is invalid.
    #[error("{path}: {source}")]
    Address {
        /// `mailFrom` or `rcptTo[N]`.
        path: String,
        /// Why.
        source: crate::address::AddressError,
    },
}

/// MAIL FROM and RCPT TO, and what is asked of the transfer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    /// The reverse path (bare address).
    pub mail_from: String,
    /// The forward paths (bare addresses), de-duplicated.
    pub rcpt_to: Vec<String>,
    /// Delivery status notifications asked for (RFC 3461); none when `None`.
    /// (Cargo feature `transfer-requests`, on by default.)
    #[cfg(feature = "transfer-requests")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsn: Option<Dsn>,
    /// REQUIRETLS (RFC 8689): every hop must use verified TLS, or the message bounces.
    #[cfg(feature = "transfer-requests")]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_tls: bool,
}

/// When the receiving side should send a delivery status notification
/// (RFC 3461 `NOTIFY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Notify {
    /// Never (excludes the others).
    Never,
    /// On successful delivery.
    Success,
    /// On failure.
    Failure,
    /// When delivery is delayed.
    Delay,
}

impl Notify {
    /// The RFC 3461 keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Notify::Never => "NEVER",
            Notify::Success => "SUCCESS",
            Notify::Failure => "FAILURE",
            Notify::Delay => "DELAY",
        }
    }
}

/// How much of the message a failure notification returns (RFC 3461 `RET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ret {
    /// The whole message.
    Full,
    /// The headers only.
    Hdrs,
}

/// A request for delivery status notifications (RFC 3461): `RET` and
/// `ENVID` for the message, `NOTIFY` for every recipient (or per recipient),
/// `ORCPT` per recipient. In JSON:
/// `{"notify": ["failure", "delay"], "ret": "hdrs", "envid": "x",
///   "recipients": [{"address": "b@y.org", "notify": ["never"], "orcpt": "rfc822;b@y.org"}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dsn {
    /// `NOTIFY` for every recipient without its own; empty: the server's default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<Notify>,
    /// `RET`: full message or headers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<Ret>,
    /// `ENVID`: the sender's id for this transfer (printable ASCII, at most 100 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
    /// Requests for single recipients, by address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<DsnRecipient>,
}

/// `NOTIFY` and `ORCPT` for one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DsnRecipient {
    /// The recipient (as in RCPT TO; compared ignoring ASCII case, as the
    /// envelope de-duplicates).
    pub address: String,
    /// `NOTIFY` for this recipient; empty: the message's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<Notify>,
    /// `ORCPT`: the original recipient, `type;address` (e.g. `rfc822;bob@example.org`)
    /// or a bare address (`rfc822`, or `utf-8` when not ASCII).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<String>,
}

impl Dsn {
    /// Checks what the JSON cannot: `never` alone, ENVID printable ASCII of
    /// at most 100 characters, no control characters in an ORCPT.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        let bad = |m: String| Err(EnvelopeError::Dsn(m));
        let notify_ok = |n: &[Notify]| !(n.contains(&Notify::Never) && n.len() > 1);
        if !notify_ok(&self.notify) {
            return bad("notify: \"never\" cannot be combined with other values".into());
        }
        if let Some(id) = &self.envid
            && (id.is_empty() || id.len() > 100 || !id.bytes().all(|b| (0x20..0x7f).contains(&b)))
        {
            return bad(format!(
                "envid {id:?}: 1 to 100 printable ASCII characters expected"
            ));
        }
        for (i, r) in self.recipients.iter().enumerate() {
            if !notify_ok(&r.notify) {
                return bad(format!(
                    "recipients[{i}].notify: \"never\" cannot be combined with other values"
                ));
            }
            if r.orcpt
                .as_deref()
                .is_some_and(|o| o.is_empty() || o.chars().any(char::is_control))
            {
                return bad(format!(
                    "recipients[{i}].orcpt: empty or has control characters"
                ));
            }
        }
        Ok(())
    }

    /// The request for `rcpt`: its own entry, else the message's `notify`.
    pub fn for_recipient(&self, rcpt: &str) -> (&[Notify], Option<&str>) {
        let own = self
            .recipients
            .iter()
            .find(|r| r.address.eq_ignore_ascii_case(rcpt));
        let notify = match own {
            Some(r) if !r.notify.is_empty() => &r.notify[..],
            _ => &self.notify[..],
        };
        (notify, own.and_then(|r| r.orcpt.as_deref()))
    }
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
            ..Envelope::default()
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
        #[cfg(feature = "transfer-requests")]
        if let Some(dsn) = &spec.dsn {
            dsn.validate()?;
        }
        Ok(Envelope {
            mail_from: from.email.clone(),
            rcpt_to,
            #[cfg(feature = "transfer-requests")]
            dsn: spec.dsn.clone(),
            #[cfg(feature = "transfer-requests")]
            require_tls: spec.require_tls,
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

    #[cfg(feature = "transfer-requests")]
    #[test]
    fn dsn_and_requiretls_come_from_the_spec_and_are_checked() {
        let spec = from_json(
            r#"{"from": "a@x.org", "to": ["b@y.org", "c@y.org"], "requireTls": true,
            "dsn": {"notify": ["failure", "delay"], "ret": "hdrs", "envid": "x",
                    "recipients": [{"address": "C@Y.ORG", "notify": ["never"], "orcpt": "rfc822;c@y.org"}]}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let env = Envelope::of_spec(&spec).unwrap_or_else(|e| panic!("{e}"));
        assert!(env.require_tls);
        let dsn = env.dsn.unwrap_or_default();
        assert_eq!(dsn.ret, Some(Ret::Hdrs));
        assert_eq!(
            dsn.for_recipient("b@y.org"),
            (&[Notify::Failure, Notify::Delay][..], None)
        );
        assert_eq!(
            dsn.for_recipient("c@y.org"),
            (&[Notify::Never][..], Some("rfc822;c@y.org"))
        );
        let bad = from_json(
            r#"{"from": "a@x.org", "to": ["b@y.org"], "dsn": {"notify": ["never", "success"]}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            Envelope::of_spec(&bad),
            Err(EnvelopeError::Dsn(_))
        ));
        let bad = from_json(r#"{"from": "a@x.org", "to": ["b@y.org"], "dsn": {"envid": "é"}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            Envelope::of_spec(&bad),
            Err(EnvelopeError::Dsn(_))
        ));
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
