//! The MAIL FROM and RCPT TO commands of one transaction, with their
//! parameters decided from the envelope, the content and the server's
//! [`Capabilities`]: `SIZE` (RFC 1870), `BODY=8BITMIME` (RFC 6152),
//! `SMTPUTF8` (RFC 6531), `RET`/`ENVID`/`NOTIFY`/`ORCPT` (RFC 3461, values in
//! xtext) and `REQUIRETLS` (RFC 8689).
//!
//! We write these commands ourselves (lettre's `Address` refuses UTF-8 local
//! parts and its `Mail` has no place for a DSN request it cannot check).
//! Everything that would make the server refuse the message anyway is refused
//! here first, before a byte is sent, as a permanent error with the reason:
//! a message larger than the announced SIZE, a UTF-8 address without
//! SMTPUTF8, 8-bit content without 8BITMIME, REQUIRETLS without TLS or
//! without the extension. A DSN request to a server without DSN is not an
//! error: the message goes without the parameters and the report says so.

use postwire_core::{
    address::Mailbox,
    envelope::{Envelope, Ret},
};

use super::{capabilities::Capabilities, error::SmtpError};
use crate::delivery::{Content, Warning};

/// The commands of one transaction, each ending in CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Commands {
    /// `MAIL FROM:<...> params`.
    pub(crate) mail: String,
    /// `RCPT TO:<...> params`, one per envelope recipient, in order.
    pub(crate) rcpts: Vec<String>,
    /// What was asked for but could not be passed on.
    pub(crate) warnings: Vec<Warning>,
}

/// Decides the commands for `envelope` and `content` on a server with `caps`,
/// over an encrypted connection or not.
pub(crate) fn commands(
    envelope: &Envelope,
    content: &Content,
    caps: &Capabilities,
    encrypted: bool,
) -> Result<Commands, SmtpError> {
    if envelope.rcpt_to.is_empty() {
        return Err(SmtpError::NoRecipients);
    }
    if !envelope.mail_from.is_empty() {
        check_address("sender", &envelope.mail_from)?;
    }
    for r in &envelope.rcpt_to {
        check_address("recipient", r)?;
    }
    if let Some(dsn) = &envelope.dsn {
        dsn.validate()?;
    }

    let mut mail_params = String::new();
    let mut warnings = Vec::new();

    let size = content.len_hint();
    if let (Some(size), Some(limit)) = (size, caps.size_limit())
        && size > limit
    {
        return Err(SmtpError::TooLarge { size, limit });
    }
    if let (Some(size), Some(_)) = (size, caps.size) {
        mail_params.push_str(&format!(" SIZE={size}"));
    }

    match content.is_ascii() {
        Some(true) => {}
        Some(false) if !caps.eight_bit_mime => {
            return Err(SmtpError::ExtensionMissing {
                what: "a message with 8-bit content",
                extension: "8BITMIME",
            });
        }
        // Unknown (a file being streamed) or known 8-bit: declare it when we can.
        _ => {
            if caps.eight_bit_mime {
                mail_params.push_str(" BODY=8BITMIME");
            }
        }
    }

    let utf8_envelope =
        !envelope.mail_from.is_ascii() || envelope.rcpt_to.iter().any(|r| !r.is_ascii());
    if utf8_envelope && !caps.smtputf8 {
        return Err(SmtpError::ExtensionMissing {
            what: "a non-ASCII (internationalised) envelope address",
            extension: "SMTPUTF8",
        });
    }
    // UTF-8 headers (RFC 6532) are declared too when the server takes them;
    // a server without SMTPUTF8 gets them as before (8BITMIME), as many accept.
    if utf8_envelope || (caps.smtputf8 && has_utf8_headers(content)) {
        mail_params.push_str(" SMTPUTF8");
    }

    if envelope.require_tls {
        if !encrypted {
            return Err(SmtpError::NotEncrypted { what: "REQUIRETLS" });
        }
        if !caps.requiretls {
            return Err(SmtpError::ExtensionMissing {
                what: "REQUIRETLS (asked for by the message)",
                extension: "REQUIRETLS",
            });
        }
        mail_params.push_str(" REQUIRETLS");
    }

    let dsn = envelope.dsn.as_ref().filter(|d| **d != Default::default());
    let send_dsn = match dsn {
        Some(_) if caps.dsn => true,
        Some(_) => {
            warnings.push(Warning::DsnNotOffered);
            false
        }
        None => false,
    };
    if let Some(dsn) = dsn.filter(|_| send_dsn) {
        if let Some(ret) = dsn.ret {
            mail_params.push_str(match ret {
                Ret::Full => " RET=FULL",
                Ret::Hdrs => " RET=HDRS",
            });
        }
        if let Some(envid) = &dsn.envid {
            mail_params.push_str(" ENVID=");
            mail_params.push_str(&xtext(envid));
        }
    }

    let mail = format!("MAIL FROM:<{}>{mail_params}\r\n", envelope.mail_from);
    let rcpts = envelope
        .rcpt_to
        .iter()
        .map(|r| {
            let mut line = format!("RCPT TO:<{r}>");
            if let Some(dsn) = dsn.filter(|_| send_dsn) {
                let (notify, orcpt) = dsn.for_recipient(r);
                if !notify.is_empty() {
                    let words: Vec<&str> = notify.iter().map(|n| n.keyword()).collect();
                    line.push_str(" NOTIFY=");
                    line.push_str(&words.join(","));
                }
                if let Some(o) = orcpt {
                    line.push_str(" ORCPT=");
                    line.push_str(&orcpt_value(o));
                }
            }
            line.push_str("\r\n");
            line
        })
        .collect();
    Ok(Commands {
        mail,
        rcpts,
        warnings,
    })
}

/// An envelope address must be a valid mailbox address, with nothing that
/// could break out of the `<...>` of the command.
fn check_address(role: &'static str, address: &str) -> Result<(), SmtpError> {
    let invalid = |reason: String| SmtpError::InvalidAddress {
        role,
        address: address.to_owned(),
        reason,
    };
    if address.contains(['<', '>']) || address.chars().any(char::is_whitespace) {
        return Err(invalid("brackets or white space in a bare address".into()));
    }
    Mailbox::new(None, address)
        .map(|_| ())
        .map_err(|e| invalid(e.to_string()))
}

/// The header section of in-memory content holds non-ASCII bytes.
fn has_utf8_headers(content: &Content) -> bool {
    let Content::Bytes(bytes) = content else {
        return false;
    };
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    !bytes.get(..end).unwrap_or_default().is_ascii()
}

/// RFC 3461 section 4: `+` and `=`, and anything outside `!`..`~`, as `+XX`.
pub(crate) fn xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// RFC 6533 section 3 `utf-8-addr-xtext`: ASCII as is except `+`, `=`, `\`
/// and controls, which like every non-ASCII character become `\x{HEX}`.
fn utf8_addr_xtext(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_graphic() && !matches!(c, '+' | '=' | '\\') {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{{{:X}}}", u32::from(c)));
        }
    }
    out
}

/// The ORCPT value for `type;address` or a bare address: `rfc822;` + xtext
/// for ASCII, `utf-8;` + utf-8-addr-xtext for internationalised addresses.
fn orcpt_value(given: &str) -> String {
    let (kind, address) = match given.split_once(';') {
        Some((k, a)) if !k.is_empty() && !k.contains('@') => (k.trim().to_string(), a.trim()),
        _ if given.is_ascii() => ("rfc822".to_string(), given),
        _ => ("utf-8".to_string(), given),
    };
    if kind.eq_ignore_ascii_case("utf-8") {
        format!("utf-8;{}", utf8_addr_xtext(address))
    } else if !address.is_ascii() {
        // rfc822 cannot carry UTF-8: say it as utf-8 (RFC 6533 section 3).
        format!("utf-8;{}", utf8_addr_xtext(address))
    } else {
        format!("{kind};{}", xtext(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postwire_core::envelope::{Dsn, DsnRecipient, Notify};
    use std::sync::Arc;

    fn caps(lines: &[&str]) -> Capabilities {
        Capabilities::parse(std::iter::once("mx").chain(lines.iter().copied()))
    }

    fn env(to: &[&str]) -> Envelope {
        Envelope {
            mail_from: "ana@example.com".into(),
            rcpt_to: to.iter().map(|s| s.to_string()).collect(),
            ..Envelope::default()
        }
    }

    fn bytes(b: &[u8]) -> Content {
        Content::Bytes(Arc::from(b))
    }

    #[test]
    fn xtext_encodes_plus_equals_and_non_printables() {
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext("x"), "x");
        assert_eq!(xtext("é"), "+C3+A9");
        assert_eq!(utf8_addr_xtext("josé+1@x"), "jos\\x{E9}\\x{2B}1@x");
        assert_eq!(
            orcpt_value("bob+x@example.org"),
            "rfc822;bob+2Bx@example.org"
        );
        assert_eq!(orcpt_value("rfc822;b@x"), "rfc822;b@x");
        assert_eq!(
            orcpt_value("José@ejemplo.es"),
            "utf-8;Jos\\x{E9}@ejemplo.es"
        );
    }

    #[test]
    fn dsn_parameters_go_on_mail_and_rcpt_when_offered() {
        let mut e = env(&["b@y.org", "c@y.org"]);
        e.dsn = Some(Dsn {
            notify: vec![Notify::Failure, Notify::Delay],
            ret: Some(Ret::Hdrs),
            envid: Some("id+1=2".into()),
            recipients: vec![DsnRecipient {
                address: "c@y.org".into(),
                notify: vec![Notify::Never],
                orcpt: Some("c@y.org".into()),
            }],
        });
        let c = commands(
            &e,
            &bytes(b"Subject: x\r\n\r\nhi\r\n"),
            &caps(&["DSN", "SIZE 100"]),
            false,
        )
        .unwrap();
        assert_eq!(
            c.mail,
            "MAIL FROM:<ana@example.com> SIZE=18 RET=HDRS ENVID=id+2B1+3D2\r\n"
        );
        assert_eq!(c.rcpts[0], "RCPT TO:<b@y.org> NOTIFY=FAILURE,DELAY\r\n");
        assert_eq!(
            c.rcpts[1],
            "RCPT TO:<c@y.org> NOTIFY=NEVER ORCPT=rfc822;c@y.org\r\n"
        );
        assert!(c.warnings.is_empty());

        let c = commands(&e, &bytes(b"x"), &caps(&[]), false).unwrap();
        assert_eq!(c.mail, "MAIL FROM:<ana@example.com>\r\n");
        assert_eq!(c.rcpts[0], "RCPT TO:<b@y.org>\r\n");
        assert_eq!(c.warnings, [Warning::DsnNotOffered]);
    }

    #[test]
    fn what_the_server_would_refuse_is_refused_first() {
        let big = bytes(&[b'a'; 200]);
        let err = commands(&env(&["b@y.org"]), &big, &caps(&["SIZE 100"]), false).unwrap_err();
        assert!(
            matches!(
                err,
                SmtpError::TooLarge {
                    size: 200,
                    limit: 100
                }
            ),
            "{err:?}"
        );
        assert!(err.is_permanent());
        let err = commands(
            &env(&["b@y.org"]),
            &bytes("é".as_bytes()),
            &caps(&[]),
            false,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            SmtpError::ExtensionMissing {
                extension: "8BITMIME",
                ..
            }
        ));
        let mut r = env(&["b@y.org"]);
        r.require_tls = true;
        let err = commands(&r, &bytes(b"x"), &caps(&["REQUIRETLS"]), false).unwrap_err();
        assert!(matches!(err, SmtpError::NotEncrypted { .. }), "{err:?}");
        let err = commands(&r, &bytes(b"x"), &caps(&[]), true).unwrap_err();
        assert!(matches!(
            err,
            SmtpError::ExtensionMissing {
                extension: "REQUIRETLS",
                ..
            }
        ));
        let ok = commands(&r, &bytes(b"x"), &caps(&["REQUIRETLS"]), true).unwrap();
        assert_eq!(ok.mail, "MAIL FROM:<ana@example.com> REQUIRETLS\r\n");
        let err = commands(&env(&["b@y.org>"]), &bytes(b"x"), &caps(&[]), false).unwrap_err();
        assert!(matches!(err, SmtpError::InvalidAddress { .. }), "{err:?}");
        let err = commands(&env(&[]), &bytes(b"x"), &caps(&[]), false).unwrap_err();
        assert!(matches!(err, SmtpError::NoRecipients));
    }
}
