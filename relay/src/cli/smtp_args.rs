//! Options shared by `postwire send` and `postwire forward`: where messages go
//! (an SMTP server or a pickup directory) and how to reach it. Every option is
//! also an environment variable (`POSTWIRE_SMTP_*`). The password is never an
//! option: it comes from `POSTWIRE_SMTP_PASSWORD`, from a file
//! (`--password-file` / `POSTWIRE_SMTP_PASSWORD_FILE`) or from the URL, and is
//! never printed.

use std::path::PathBuf;

use crate::{
    delivery::{BoxedFailure, BulkProgress, Content, DeliveryReport, Outgoing},
    pickup::Pickup,
    smtp::{Envelope, Secret, Security, SmtpPool, SmtpSettings, settings},
};

/// The result of one message, whichever the destination.
pub type AnyResult = Result<DeliveryReport, BoxedFailure>;

fn boxed<E: crate::delivery::Failure>(r: Result<DeliveryReport, E>) -> AnyResult {
    r.map_err(|e| Box::new(e) as BoxedFailure)
}

use super::CliError;

/// The environment variable holding the SMTP password.
pub const PASSWORD_ENV: &str = "POSTWIRE_SMTP_PASSWORD";

/// Where to deliver and how.
#[derive(Debug, Clone, clap::Args)]
pub struct SmtpArgs {
    /// SMTP server: smtp://user@host:587?security=starttls&connections=8, or
    /// smtps://user@host for implicit TLS. URL parameters: security, connections,
    /// auth, timeout, connect_timeout, helo, ca_file, allow_plaintext_auth.
    #[arg(
        long,
        env = "POSTWIRE_SMTP_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub smtp: Option<String>,
    /// Deliver into this pickup directory (one .eml + .json per message) instead of SMTP.
    #[arg(
        long,
        env = "POSTWIRE_PICKUP_DIR",
        value_name = "DIR",
        conflicts_with = "smtp"
    )]
    pub pickup_dir: Option<PathBuf>,
    /// Connection security: none, starttls, tls or auto (STARTTLS when offered).
    #[arg(long, env = "POSTWIRE_SMTP_SECURITY", value_name = "MODE")]
    pub security: Option<Security>,
    /// SMTP user name (the password comes from POSTWIRE_SMTP_PASSWORD or --password-file).
    #[arg(long, env = "POSTWIRE_SMTP_USER", value_name = "USER")]
    pub user: Option<String>,
    /// Read the SMTP password (or XOAUTH2 token) from this file.
    #[arg(long, env = "POSTWIRE_SMTP_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// AUTH mechanisms to use, comma-separated: PLAIN, LOGIN, XOAUTH2.
    #[arg(long, env = "POSTWIRE_SMTP_AUTH", value_name = "MECHS")]
    pub auth: Option<String>,
    /// Number of parallel SMTP connections.
    #[arg(long, env = "POSTWIRE_SMTP_CONNECTIONS", value_name = "N")]
    pub connections: Option<String>,
    /// PEM file of CA certificates to trust besides the bundled roots (a private CA).
    #[arg(long, env = "POSTWIRE_SMTP_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// PEM file with a TLS client certificate (chain) for servers that require one.
    #[arg(
        long,
        env = "POSTWIRE_SMTP_CLIENT_CERT",
        value_name = "PEM",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// PEM file with the private key of --client-cert.
    #[arg(
        long,
        env = "POSTWIRE_SMTP_CLIENT_KEY",
        value_name = "PEM",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
    /// Reach the server through a proxy: socks5://[user:pass@]host:port or
    /// http://[user:pass@]host:port (CONNECT). Prefer the variable when it holds a password.
    #[arg(
        long,
        env = "POSTWIRE_SMTP_PROXY",
        value_name = "URL",
        hide_env_values = true
    )]
    pub proxy: Option<String>,
    /// Name to send in EHLO (default: this machine's host name).
    #[arg(long, env = "POSTWIRE_SMTP_HELO", value_name = "NAME")]
    pub helo: Option<String>,
    /// Seconds to wait for each reply of the server.
    #[arg(long, env = "POSTWIRE_SMTP_TIMEOUT", value_name = "SECS")]
    pub timeout: Option<String>,
    /// Allow sending the password over an unencrypted connection.
    #[arg(long, env = "POSTWIRE_SMTP_ALLOW_PLAINTEXT_AUTH", value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_plaintext_auth: bool,
}

/// A resolved destination.
// Made once per run; boxing the settings would change a public variant for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Destination {
    /// An SMTP server.
    Smtp(SmtpSettings),
    /// A pickup directory.
    Pickup(PathBuf),
}

impl SmtpArgs {
    /// Combines URL, options, environment and password file into a destination.
    pub fn destination(&self) -> Result<Destination, CliError> {
        if let Some(dir) = &self.pickup_dir {
            return Ok(Destination::Pickup(dir.clone()));
        }
        let Some(url) = &self.smtp else {
            return Err(
                "no destination: give --smtp URL (or set POSTWIRE_SMTP_URL), \
                        or --pickup-dir DIR"
                    .into(),
            );
        };
        let mut s = SmtpSettings::from_url(url)?;
        if let Some(security) = self.security {
            s.security = security;
        }
        if let Some(user) = &self.user {
            s.username = Some(user.clone());
        }
        if let Some(auth) = &self.auth {
            s.mechanisms = settings::parse_mechanisms(auth)?;
        }
        if let Some(n) = &self.connections {
            s.connections = settings::parse_connections(n)?;
        }
        if let Some(ca) = &self.ca_file {
            s.ca_file = Some(ca.clone());
        }
        if let Some(cert) = &self.client_cert {
            s.client_cert = Some(cert.clone());
        }
        if let Some(key) = &self.client_key {
            s.client_key = Some(key.clone());
        }
        if let Some(proxy) = &self.proxy {
            s.proxy = Some(proxy.parse()?);
        }
        if let Some(helo) = &self.helo {
            s.helo_name = Some(helo.clone());
        }
        if let Some(t) = &self.timeout {
            s.timeout = settings::parse_seconds(t, "timeout")?;
        }
        if self.allow_plaintext_auth {
            s.allow_plaintext_auth = true;
        }
        if let Some(file) = &self.password_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("password file {}: {e}", file.display()))?;
            let password = text.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(format!("password file {} is empty", file.display()).into());
            }
            s.password = Some(Secret::new(password));
        } else if let Some(password) = std::env::var_os(PASSWORD_ENV) {
            let password = password
                .into_string()
                .map_err(|_| format!("{PASSWORD_ENV} is not valid UTF-8"))?;
            s.password = Some(Secret::new(password));
        }
        if s.username.is_some() && s.password.is_none() {
            return Err(format!(
                "the SMTP user {:?} needs a password: set {PASSWORD_ENV} or \
                 POSTWIRE_SMTP_PASSWORD_FILE (or --password-file)",
                s.username.as_deref().unwrap_or_default()
            )
            .into());
        }
        s.validate()?;
        Ok(Destination::Smtp(s))
    }
}

/// An opened destination.
#[derive(Debug)]
pub enum Delivery {
    /// A connected SMTP pool.
    Smtp(SmtpPool),
    /// A pickup directory.
    Pickup(Pickup),
}

impl Delivery {
    /// Connects to the server (checking TLS and credentials) or opens the directory.
    pub async fn open(destination: Destination) -> Result<Self, CliError> {
        Ok(match destination {
            Destination::Smtp(settings) => Delivery::Smtp(SmtpPool::connect(settings).await?),
            Destination::Pickup(dir) => Delivery::Pickup(Pickup::new(dir)?),
        })
    }

    /// Parallel sessions in use (1 for a pickup directory).
    pub fn connections(&self) -> usize {
        match self {
            Delivery::Smtp(pool) => pool.connections(),
            Delivery::Pickup(_) => 1,
        }
    }

    /// Delivers one message.
    pub async fn deliver(&self, envelope: Envelope, content: Content) -> AnyResult {
        match self {
            Delivery::Smtp(pool) => boxed(pool.send_content(envelope, content).await),
            Delivery::Pickup(p) => boxed(p.deliver_blocking(&envelope, &content)),
        }
    }

    /// Delivers many messages with a progress callback.
    pub async fn send_bulk(
        &self,
        messages: Vec<Outgoing>,
        progress: impl FnMut(&BulkProgress),
    ) -> Vec<AnyResult> {
        match self {
            Delivery::Smtp(pool) => pool
                .send_bulk(messages, progress)
                .await
                .into_iter()
                .map(boxed)
                .collect(),
            Delivery::Pickup(p) => p
                .send_bulk(messages, progress)
                .into_iter()
                .map(boxed)
                .collect(),
        }
    }

    /// Closes the connections (QUIT).
    pub async fn close(self) {
        if let Delivery::Smtp(pool) = self {
            pool.close().await;
        }
    }
}

/// The small runtime the delivery commands run on.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
