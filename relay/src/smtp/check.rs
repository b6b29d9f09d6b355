//! The checks an operator runs before going live (`postwire smtp check`):
//! connect, TLS (version, cipher suite, certificate, verified against the
//! roots), the capabilities of the EHLO reply, AUTH with the configured
//! credentials (ValidateCredentials), NOOP and QUIT. The first step that
//! fails ends the check and is named in the error, with what the earlier
//! steps found.

use std::fmt;

use lettre::transport::smtp::commands::Noop;
use sha2::{Digest, Sha256};

use super::{
    capabilities::Capabilities,
    connection::{Client, Connection},
    error::{SmtpError, Stage},
    reply::{self, SmtpReply},
    settings::SmtpSettings,
    wire::TlsInfo,
};

/// A step of [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckStep {
    /// The settings themselves (URL, CA file, client certificate).
    Settings,
    /// Opening the TCP connection.
    Connect,
    /// TLS: STARTTLS or implicit TLS, handshake, certificate verification.
    Tls,
    /// The greeting and EHLO.
    Greeting,
    /// AUTH with the configured credentials.
    Auth,
    /// NOOP.
    Noop,
    /// QUIT.
    Quit,
}

impl CheckStep {
    /// The exit status `postwire smtp check` ends with when this step fails.
    pub fn exit_code(self) -> u8 {
        match self {
            CheckStep::Settings => 2,
            CheckStep::Connect => 10,
            CheckStep::Tls => 11,
            CheckStep::Greeting => 12,
            CheckStep::Auth => 13,
            CheckStep::Noop => 14,
            CheckStep::Quit => 15,
        }
    }

    fn of(error: &SmtpError) -> Self {
        match error {
            SmtpError::Settings(_) => CheckStep::Settings,
            SmtpError::StartTlsUnavailable { .. } | SmtpError::Tls { .. } => CheckStep::Tls,
            e => match e.stage() {
                Some(Stage::Connect) => CheckStep::Connect,
                Some(Stage::Tls | Stage::StartTls) => CheckStep::Tls,
                Some(Stage::Auth) => CheckStep::Auth,
                _ => CheckStep::Greeting,
            },
        }
    }
}

impl fmt::Display for CheckStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStep::Settings => "settings",
            CheckStep::Connect => "connect",
            CheckStep::Tls => "TLS",
            CheckStep::Greeting => "greeting/EHLO",
            CheckStep::Auth => "AUTH",
            CheckStep::Noop => "NOOP",
            CheckStep::Quit => "QUIT",
        })
    }
}

/// What the TLS step found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsReport {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The negotiated cipher suite.
    pub cipher_suite: String,
    /// SHA-256 fingerprint of the server's certificate, `AB:CD:...`.
    pub certificate_sha256: String,
    /// Certificates the server sent (its own first).
    pub chain_length: usize,
    /// The name the certificate was verified for (always verified: a
    /// certificate that does not verify fails the check).
    pub verified_for: String,
}

impl TlsReport {
    fn new(info: &TlsInfo, host: &str) -> Self {
        let fingerprint = info
            .chain
            .first()
            .map(|der| {
                Sha256::digest(der)
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .unwrap_or_default();
        TlsReport {
            version: info.version.clone(),
            cipher_suite: info.cipher_suite.clone(),
            certificate_sha256: fingerprint,
            chain_length: info.chain.len(),
            verified_for: host.to_owned(),
        }
    }
}

/// The outcome of the AUTH step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthCheck {
    /// No user configured: AUTH not tried.
    NotConfigured,
    /// The server took the credentials.
    Accepted {
        /// The user name.
        user: String,
    },
}

/// What every step found, when all of them passed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckReport {
    /// `host:port`.
    pub server: String,
    /// The TLS step; `None` for a plain connection (`security=none`, or
    /// `auto` with a server that offers no STARTTLS).
    pub tls: Option<TlsReport>,
    /// The EHLO reply (after STARTTLS).
    pub capabilities: Capabilities,
    /// The AUTH step.
    pub auth: AuthCheck,
    /// The reply to NOOP.
    pub noop: SmtpReply,
    /// The reply to QUIT.
    pub quit: SmtpReply,
}

/// The step that failed, why, and what the steps before it found.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed: {error}")]
#[non_exhaustive]
pub struct CheckError {
    /// The step that failed.
    pub step: CheckStep,
    /// Why.
    pub error: SmtpError,
    /// The TLS step, if it passed.
    pub tls: Option<TlsReport>,
    /// The capabilities, if EHLO passed.
    pub capabilities: Option<Capabilities>,
}

impl CheckError {
    fn new(error: SmtpError) -> Self {
        CheckError {
            step: CheckStep::of(&error),
            error,
            tls: None,
            capabilities: None,
        }
    }
}

/// Runs every step against the server of `settings` (one connection,
/// whatever `settings.connections` says). Must be called inside a tokio
/// runtime.
pub async fn check(settings: SmtpSettings) -> Result<CheckReport, CheckError> {
    let client = Client::new(settings).map_err(CheckError::new)?;
    let host = client.settings.host.clone();
    let mut conn = Connection::greet(&client).await.map_err(CheckError::new)?;
    let tls = conn.tls.as_ref().map(|t| TlsReport::new(t, &host));
    let capabilities = conn.capabilities.clone();
    let fail = |step: CheckStep, error: SmtpError| CheckError {
        step,
        error,
        tls: tls.clone(),
        capabilities: Some(capabilities.clone()),
    };
    conn.authenticate(&client)
        .await
        .map_err(|e| fail(CheckStep::Auth, e))?;
    let auth = match &client.settings.username {
        Some(user) => AuthCheck::Accepted { user: user.clone() },
        None => AuthCheck::NotConfigured,
    };
    let noop = conn
        .command(&client, Stage::Greeting, Noop)
        .await
        .map_err(|e| fail(CheckStep::Noop, e))?;
    let quit = conn
        .quit_reply(&client)
        .await
        .map_err(|e| fail(CheckStep::Quit, e))?;
    Ok(CheckReport {
        server: client.server().to_owned(),
        tls,
        capabilities,
        auth,
        noop: reply::from_response(&noop),
        quit: reply::from_response(&quit),
    })
}
