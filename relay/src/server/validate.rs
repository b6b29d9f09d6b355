//! Checks of a submission before it is spooled: the id, the envelope (given
//! or derived from the headers), the token's allowed senders (the envelope's
//! `MAIL FROM` and every `From`, `Sender`, `Resent-From` and `Resent-Sender`
//! address of the header, [`super::senders`]) and its size limit. Each refusal is a [`Refusal`] with the protocol [`Code`] it maps to.

use postwire_core::address::{AddressError, Mailbox};

use super::protocol::Code;
use crate::spool::Envelope;
use crate::token::TokenRecord;

/// Longest client id, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Most recipients of one message.
pub const MAX_RECIPIENTS: usize = 1000;

/// A submission refused, with the code and message the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The protocol code.
    pub code: Code,
    /// What was wrong, naming the field.
    pub message: String,
}

fn refuse(code: Code, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// Checks a client id: 1 to 128 characters of `A-Z a-z 0-9 . _ : @ + = -`.
pub fn id(id: &str) -> Result<(), Refusal> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:@+=-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(refuse(
            Code::BadId,
            format!("id must be 1-{MAX_ID_LEN} characters of A-Z a-z 0-9 . _ : @ + = -"),
        ))
    }
}

/// Checks an announced size against the token's limit.
pub fn size(size: u64, token: &TokenRecord) -> Result<(), Refusal> {
    if size > token.max_size {
        return Err(refuse(
            Code::TooLarge,
            format!(
                "message of {size} bytes exceeds this token's limit of {} bytes",
                token.max_size
            ),
        ));
    }
    if size == 0 {
        return Err(refuse(Code::Protocol, "size must be at least 1 byte"));
    }
    Ok(())
}

/// One envelope address: bare `local@domain` only (no display name, no
/// brackets), normalised by [`Mailbox::parse`].
fn address(field: &str, value: &str) -> Result<String, Refusal> {
    if value.chars().any(char::is_control) {
        return Err(refuse(
            Code::BadEnvelope,
            format!("{field} contains CR, LF or another control character"),
        ));
    }
    if value.contains(['<', '>']) || value.trim() != value {
        return Err(refuse(
            Code::InvalidAddress,
            format!("{field} must be a bare address (local@domain), got {value:?}"),
        ));
    }
    match Mailbox::parse(value) {
        Ok(m) => Ok(m.email),
        Err(AddressError::ControlCharacter(_)) => Err(refuse(
            Code::BadEnvelope,
            format!("{field} contains CR, LF or another control character"),
        )),
        Err(e) => Err(refuse(Code::InvalidAddress, format!("{field}: {e}"))),
    }
}

/// Validates and normalises an envelope, then checks that `token` may use
/// its sender. Without an explicit envelope one is derived from `bytes`.
pub fn envelope(
    given: Option<&Envelope>,
    bytes: &[u8],
    token: &TokenRecord,
) -> Result<Envelope, Refusal> {
    let env = match given {
        Some(e) => e.clone(),
        None => {
            let derived = postwire_core::envelope::Envelope::of_message(bytes).map_err(|e| {
                refuse(
                    Code::NoEnvelope,
                    format!("no envelope given and none derived from the headers: {e}"),
                )
            })?;
            Envelope {
                mail_from: derived.mail_from,
                rcpt_to: derived.rcpt_to,
                ..Envelope::default()
            }
        }
    };
    let mail_from = address("envelope.mailFrom", &env.mail_from)?;
    if env.rcpt_to.is_empty() {
        return Err(refuse(Code::InvalidAddress, "envelope.rcptTo is empty"));
    }
    if env.rcpt_to.len() > MAX_RECIPIENTS {
        return Err(refuse(
            Code::TooManyRecipients,
            format!(
                "{} recipients; at most {MAX_RECIPIENTS} per message",
                env.rcpt_to.len()
            ),
        ));
    }
    let mut rcpt_to: Vec<String> = Vec::with_capacity(env.rcpt_to.len());
    for (i, r) in env.rcpt_to.iter().enumerate() {
        let a = address(&format!("envelope.rcptTo[{i}]"), r)?;
        if !rcpt_to.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
            rcpt_to.push(a);
        }
    }
    if !token.may_send_as(&mail_from) {
        return Err(refuse(
            Code::SenderNotAllowed,
            format!("token {:?} may not send as {mail_from:?}", token.name),
        ));
    }
    header_senders(bytes, token)?;
    if let Some(dsn) = &env.dsn {
        dsn.validate()
            .map_err(|e| refuse(Code::InvalidDsn, format!("envelope.{e}")))?;
    }
    Ok(Envelope {
        mail_from,
        rcpt_to,
        dsn: env.dsn,
        require_tls: env.require_tls,
    })
}

/// Checks that `token` may use every sender address of the message's header.
fn header_senders(bytes: &[u8], token: &TokenRecord) -> Result<(), Refusal> {
    let senders = super::senders::header_senders(bytes)
        .map_err(|e| refuse(Code::SenderNotAllowed, format!("{e}; it cannot be checked")))?;
    match senders.iter().find(|(_, a)| !token.may_send_as(a)) {
        Some((field, addr)) => Err(refuse(
            Code::SenderNotAllowed,
            format!(
                "token {:?} may not send as {addr:?} (the {field} header)",
                token.name
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> TokenRecord {
        TokenRecord {
            name: "t".into(),
            hash: String::new(),
            allow_from: vec!["@example.com".into()],
            max_size: 100,
            rate_per_minute: 10,
        }
    }

    fn env(from: &str, to: &[&str]) -> Envelope {
        Envelope {
            mail_from: from.into(),
            rcpt_to: to.iter().map(|s| s.to_string()).collect(),
            ..Envelope::default()
        }
    }

    #[test]
    fn crlf_in_any_envelope_address_is_a_bad_envelope() {
        let t = token();
        let e = envelope(
            Some(&env("a@example.com\r\nRCPT TO:<x@y.org>", &["b@x.org"])),
            b"",
            &t,
        );
        assert_eq!(e.unwrap_err().code, Code::BadEnvelope);
        let e = envelope(Some(&env("a@example.com", &["b@x.org\n"])), b"", &t);
        assert_eq!(e.unwrap_err().code, Code::BadEnvelope);
    }

    #[test]
    fn malformed_addresses_name_the_field() {
        let r = envelope(
            Some(&env("a@example.com", &["ok@x.org", "no-at-sign"])),
            b"",
            &token(),
        )
        .unwrap_err();
        assert_eq!(r.code, Code::InvalidAddress);
        assert!(r.message.contains("rcptTo[1]"), "{}", r.message);
        let r = envelope(Some(&env("A <a@example.com>", &["b@x.org"])), b"", &token()).unwrap_err();
        assert_eq!(r.code, Code::InvalidAddress);
    }

    #[test]
    fn a_sender_outside_the_token_allow_list_is_refused() {
        let r = envelope(Some(&env("a@other.org", &["b@x.org"])), b"", &token()).unwrap_err();
        assert_eq!(r.code, Code::SenderNotAllowed);
    }

    #[test]
    fn the_envelope_is_derived_from_headers_when_not_given() {
        let msg = b"From: Ana <ana@example.com>\r\nTo: bob@x.org\r\nCc: Carl <carl@y.org>\r\nSubject: hi\r\n\r\nbody\r\n";
        let e = envelope(None, msg, &token()).unwrap();
        assert_eq!(e, env("ana@example.com", &["bob@x.org", "carl@y.org"]));
        let r = envelope(None, b"Subject: nobody\r\n\r\nx\r\n", &token()).unwrap_err();
        assert_eq!(r.code, Code::NoEnvelope);
    }

    #[test]
    fn ids_and_sizes_are_bounded() {
        assert!(id("msg-1_a.b:c@d+e=f").is_ok());
        assert_eq!(id("").unwrap_err().code, Code::BadId);
        assert_eq!(id("has space").unwrap_err().code, Code::BadId);
        assert_eq!(id(&"x".repeat(129)).unwrap_err().code, Code::BadId);
        assert_eq!(size(101, &token()).unwrap_err().code, Code::TooLarge);
        assert!(size(100, &token()).is_ok());
    }
}
