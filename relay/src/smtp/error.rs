//! The one error type of SMTP delivery. Every failure says at which step of the
//! session it happened and answers the questions a spool asks: try again later
//! ([`SmtpError::is_transient`]) or give up ([`SmtpError::is_permanent`]), and
//! what the server said ([`SmtpError::reply`], [`SmtpError::status`]).

use std::{fmt, path::PathBuf, time::Duration};

use super::{
    reply::{RecipientStatus, SmtpReply},
    settings::{Security, SettingsError},
};

/// The step of the SMTP session at which something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Opening the TCP connection.
    Connect,
    /// TLS handshake (implicit TLS or after STARTTLS).
    Tls,
    /// Waiting for the server's 220 greeting and EHLO.
    Greeting,
    /// The STARTTLS command.
    StartTls,
    /// SMTP AUTH.
    Auth,
    /// `MAIL FROM`.
    MailFrom,
    /// `RCPT TO`.
    RcptTo,
    /// The `DATA` command.
    Data,
    /// Sending the message content.
    Content,
    /// Waiting for the reply after the end of the message data.
    EndOfData,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Tls => "TLS handshake",
            Stage::Greeting => "greeting/EHLO",
            Stage::StartTls => "STARTTLS",
            Stage::Auth => "AUTH",
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Content => "message content",
            Stage::EndOfData => "end of data",
        })
    }
}

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// The settings are unusable (bad URL, missing password, unreadable CA file).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The TCP connection could not be opened.
    #[error("cannot connect to {server}: {source}")]
    Connect {
        /// `host:port`.
        server: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The proxy did not open a tunnel to the server.
    #[error(transparent)]
    Proxy(#[from] super::proxy::ProxyError),
    /// TLS could not be set up (handshake failed, certificate not trusted).
    #[error("TLS with {server} failed: {reason}")]
    Tls {
        /// `host:port`.
        server: String,
        /// What TLS said, e.g. that the certificate is signed by an unknown issuer.
        reason: String,
    },
    /// `security=starttls` was asked for but the server does not offer STARTTLS.
    #[error("{server} does not offer STARTTLS (security=starttls)")]
    StartTlsUnavailable {
        /// `host:port`.
        server: String,
    },
    /// Credentials would have gone over an unencrypted connection; refused.
    #[error(
        "refusing to send the password to {server} over an unencrypted connection \
         (security={security}{}; use security=starttls or tls, or allow_plaintext_auth)",
        if *security == Security::Auto { " and the server offers no STARTTLS" } else { "" }
    )]
    PlaintextAuthRefused {
        /// `host:port`.
        server: String,
        /// The security mode in force.
        security: Security,
    },
    /// The server offers none of the configured AUTH mechanisms, or no AUTH at all.
    #[error("{server} offers no usable AUTH mechanism (wanted {wanted})")]
    NoAuthMechanism {
        /// `host:port`.
        server: String,
        /// The mechanisms we were willing to use.
        wanted: String,
    },
    /// The server refused the credentials.
    #[error("authentication as {user:?} failed: {reply}")]
    AuthFailed {
        /// The user name (never the password).
        user: String,
        /// The server's reply, e.g. `535 5.7.8 Authentication credentials invalid`.
        reply: SmtpReply,
    },
    /// The server answered a step of the session with a 4xx or 5xx reply.
    #[error("server refused {stage}: {reply}")]
    Rejected {
        /// The step it refused.
        stage: Stage,
        /// Its reply.
        reply: SmtpReply,
    },
    /// Every recipient was refused, so no message was sent.
    #[error("all {} recipient(s) refused: {}", recipients.len(), summarize(recipients))]
    AllRecipientsRejected {
        /// The reply per recipient.
        recipients: Vec<RecipientStatus>,
    },
    /// The server did not answer (or stopped reading) within the timeout.
    #[error("timed out after {after:?} at {stage}")]
    Timeout {
        /// The step that was waiting.
        stage: Stage,
        /// The configured timeout.
        after: Duration,
    },
    /// The connection broke (closed by the server, reset, I/O error).
    #[error("connection lost at {stage}: {reason}")]
    ConnectionLost {
        /// The step in progress.
        stage: Stage,
        /// What the network layer said.
        reason: String,
    },
    /// The server sent something that is not SMTP.
    #[error("protocol error at {stage}: {reason}")]
    Protocol {
        /// The step in progress.
        stage: Stage,
        /// What could not be understood.
        reason: String,
    },
    /// An envelope address is not a valid mailbox.
    #[error("invalid {role} address {address:?}: {reason}")]
    InvalidAddress {
        /// `sender` or `recipient`.
        role: &'static str,
        /// The address.
        address: String,
        /// Why it was refused.
        reason: String,
    },
    /// The forward envelope could not be made from the addresses given.
    #[error("envelope: {0}")]
    Envelope(#[from] postwire_core::envelope::EnvelopeError),
    /// The message spec could not be built into a message.
    #[error("build: {0}")]
    Build(#[from] postwire_core::build::BuildError),
    /// The envelope has no recipient.
    #[error("the envelope has no recipient")]
    NoRecipients,
    /// The message needs SMTPUTF8 or 8BITMIME and the server does not offer it.
    #[error("{what} needs the {extension} extension, which the server does not offer")]
    ExtensionMissing {
        /// What needs it.
        what: &'static str,
        /// The extension.
        extension: &'static str,
    },
    /// The message is larger than the limit the server announced (SIZE);
    /// nothing was sent.
    #[error("the message is {size} bytes, more than the {limit} bytes the server takes (SIZE)")]
    TooLarge {
        /// The message size in bytes.
        size: u64,
        /// The server's limit.
        limit: u64,
    },
    /// Something that needs an encrypted connection was asked for over a
    /// plain one (REQUIRETLS without TLS); nothing was sent.
    #[error(
        "{what} needs a TLS connection; this one is not encrypted (use security=starttls or tls)"
    )]
    NotEncrypted {
        /// What needs it.
        what: &'static str,
    },
    /// The message file to forward could not be read.
    #[error("cannot read message file {path}: {source}")]
    MessageFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The pool was shut down before the message could be sent.
    #[error("the SMTP pool is shut down")]
    PoolClosed,
}

fn summarize(recipients: &[RecipientStatus]) -> String {
    recipients
        .iter()
        .map(|r| format!("{}: {}", r.recipient, r.reply))
        .collect::<Vec<_>>()
        .join("; ")
}

impl SmtpError {
    /// Trying again later may succeed: 4xx replies, timeouts, lost or refused
    /// connections, and TLS that could not be set up (a certificate that does
    /// not verify, a failed handshake, STARTTLS not offered): as Postfix
    /// defers rather than bounces those, an expired or misissued certificate
    /// on the upstream delays mail until it is fixed instead of failing it.
    /// Nothing is ever sent without the TLS the settings ask for.
    pub fn is_transient(&self) -> bool {
        match self {
            SmtpError::Connect { .. }
            | SmtpError::Tls { .. }
            | SmtpError::StartTlsUnavailable { .. }
            | SmtpError::Timeout { .. }
            | SmtpError::ConnectionLost { .. }
            | SmtpError::Protocol { .. }
            | SmtpError::PoolClosed => true,
            SmtpError::AuthFailed { reply, .. } | SmtpError::Rejected { reply, .. } => {
                reply.is_transient()
            }
            SmtpError::Proxy(e) => e.is_transient(),
            SmtpError::AllRecipientsRejected { recipients } => {
                recipients.iter().any(|r| r.reply.is_transient())
            }
            _ => false,
        }
    }

    /// Trying again with the same message and settings will fail the same way:
    /// 5xx replies, bad addresses, bad settings, AUTH refused.
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }

    /// The server's reply behind this error, if the server gave one.
    pub fn reply(&self) -> Option<&SmtpReply> {
        match self {
            SmtpError::AuthFailed { reply, .. } | SmtpError::Rejected { reply, .. } => Some(reply),
            SmtpError::AllRecipientsRejected { recipients } => recipients.first().map(|r| &r.reply),
            _ => None,
        }
    }

    /// The reply code behind this error (e.g. 451, 550), if the server gave one.
    pub fn status(&self) -> Option<u16> {
        self.reply().map(|r| r.code)
    }

    /// The step of the session that failed, where one applies.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            SmtpError::Connect { .. } | SmtpError::Proxy(_) => Some(Stage::Connect),
            SmtpError::Tls { .. } => Some(Stage::Tls),
            SmtpError::StartTlsUnavailable { .. } => Some(Stage::StartTls),
            SmtpError::PlaintextAuthRefused { .. }
            | SmtpError::NoAuthMechanism { .. }
            | SmtpError::AuthFailed { .. } => Some(Stage::Auth),
            SmtpError::AllRecipientsRejected { .. } => Some(Stage::RcptTo),
            SmtpError::TooLarge { .. }
            | SmtpError::NotEncrypted { .. }
            | SmtpError::ExtensionMissing { .. } => Some(Stage::MailFrom),
            SmtpError::Rejected { stage, .. }
            | SmtpError::Timeout { stage, .. }
            | SmtpError::ConnectionLost { stage, .. }
            | SmtpError::Protocol { stage, .. } => Some(*stage),
            _ => None,
        }
    }

    /// Maps an error of lettre's connection at `stage` into ours.
    pub(crate) fn from_lettre(
        stage: Stage,
        server: &str,
        err: lettre::transport::smtp::Error,
    ) -> Self {
        if let Some(reply) = super::reply::from_lettre_error(&err) {
            return SmtpError::Rejected { stage, reply };
        }
        let reason = match std::error::Error::source(&err) {
            Some(source) => source.to_string(),
            None => err.to_string(),
        };
        if err.is_tls() || tls_failure(&err).is_some() {
            SmtpError::Tls {
                server: server.to_owned(),
                reason,
            }
        } else if err.is_timeout() {
            SmtpError::ConnectionLost { stage, reason }
        } else if err.is_response() {
            if reason.contains("incomplete response") {
                SmtpError::ConnectionLost {
                    stage,
                    reason: "the server closed the connection".into(),
                }
            } else {
                SmtpError::Protocol { stage, reason }
            }
        } else if err.is_client() {
            SmtpError::Protocol { stage, reason }
        } else {
            SmtpError::ConnectionLost { stage, reason }
        }
    }
}

impl crate::delivery::Failure for SmtpError {
    fn is_transient(&self) -> bool {
        SmtpError::is_transient(self)
    }

    fn reply(&self) -> Option<&SmtpReply> {
        SmtpError::reply(self)
    }

    fn refused_recipients(&self) -> &[RecipientStatus] {
        match self {
            SmtpError::AllRecipientsRejected { recipients } => recipients,
            _ => &[],
        }
    }
}

/// The rustls error somewhere in `err`'s chain of causes (a failed handshake
/// reaches us wrapped in an I/O error inside a lettre connection error).
pub(crate) fn tls_failure<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_and_permanent_follow_the_reply_class() {
        let t = SmtpError::Rejected {
            stage: Stage::MailFrom,
            reply: SmtpReply::new(451, "4.3.0 later"),
        };
        assert!(t.is_transient() && !t.is_permanent());
        assert_eq!(t.status(), Some(451));
        let p = SmtpError::AllRecipientsRejected {
            recipients: vec![RecipientStatus {
                recipient: "a@b".into(),
                reply: SmtpReply::new(550, "5.1.1 unknown"),
            }],
        };
        assert!(p.is_permanent());
        assert!(p.to_string().contains("a@b: 550 5.1.1 unknown"));
        let lost = SmtpError::ConnectionLost {
            stage: Stage::Content,
            reason: "reset".into(),
        };
        assert!(lost.is_transient());
    }
}
