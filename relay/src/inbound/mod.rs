//! The relay's inbound SMTP listener (`postwire serve --inbound-smtp ADDR`):
//! where remote MTAs send delivery status notifications and abuse reports
//! back to the bounce domain (docs/bounces.md).
//!
//! Why our own code: lettre, the SMTP crate in the tree, is a client only,
//! and the server crates (samotop, mailin-embedded, Stalwart's smtp server)
//! bring a runtime or a whole mail server for what is here a few hundred
//! lines: a small, line-based server of RFC 5321 that takes mail for one
//! domain and hands it to [`Mailbox`]. It is never a relay: a recipient
//! outside the bounce domain gets `550 5.7.1`.
//!
//! Limits: [`Config::max_size`] bytes per message (also announced as SIZE),
//! [`Config::max_rcpts`] recipients, command lines of 2 KiB, text lines of
//! 64 KiB, [`Config::command_timeout`] per command and 3 minutes per text
//! line, ten bad commands, [`Config::max_connections`] sessions at once (more
//! are answered `421` and closed), 10 s for a TLS handshake. STARTTLS is
//! offered when the relay has a TLS certificate (`--tls-cert`/`--tls-key`).
//!
//! - [`line`]: bounded line reading;
//! - [`session`]: the SMTP state machine of one connection;
//! - [`reports`]: the [`Mailbox`] that hands messages to the bounce correlation.

pub mod line;
pub mod reports;
pub mod session;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// Longest TLS handshake after STARTTLS.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the inbound server.
#[derive(Clone)]
pub struct Config {
    /// The domain mail is accepted for.
    pub domain: String,
    /// The name in the greeting and EHLO reply.
    pub hostname: String,
    /// Largest message, in bytes.
    pub max_size: usize,
    /// Most recipients per message.
    pub max_rcpts: usize,
    /// Most sessions at once.
    pub max_connections: usize,
    /// Time allowed for each command.
    pub command_timeout: Duration,
    /// TLS for STARTTLS, if the relay has a certificate.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("domain", &self.domain)
            .field("max_size", &self.max_size)
            .field("starttls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for `domain`: 10 MiB, 100 recipients, 64 sessions, 5 minutes per command.
    pub fn new(domain: &str) -> Self {
        Config {
            domain: domain.to_ascii_lowercase(),
            hostname: domain.to_ascii_lowercase(),
            max_size: 10 << 20,
            max_rcpts: 100,
            max_connections: 64,
            command_timeout: Duration::from_secs(300),
            tls: None,
        }
    }
}

/// Where accepted mail goes.
pub trait Mailbox: Send + Sync + 'static {
    /// Whether mail for `rcpt` is accepted here.
    fn accepts(&self, rcpt: &str) -> bool;
    /// Takes a message; an error is answered `451` (the sender retries).
    fn deliver(
        &self,
        mail_from: String,
        rcpts: Vec<String>,
        bytes: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), String>>;
}

/// Accepts connections on `listener` until `shutdown` turns `true`.
pub async fn serve(
    listener: TcpListener,
    cfg: Arc<Config>,
    mailbox: Arc<dyn Mailbox>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            changed = shutdown.changed() => {
                // `true`, or the relay is gone: stop taking connections.
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
                continue;
            }
        };
        let (mut tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "inbound SMTP: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tokio::spawn(async move {
                let _ = tcp
                    .write_all(b"421 4.3.2 too busy; try again later\r\n")
                    .await;
            });
            continue;
        };
        let cfg = Arc::clone(&cfg);
        let mailbox = Arc::clone(&mailbox);
        tokio::spawn(async move {
            connection(tcp, &peer.to_string(), &cfg, &*mailbox).await;
            drop(permit);
        });
    }
}

/// One connection: greeting, session, and a second session after STARTTLS.
async fn connection(tcp: TcpStream, peer: &str, cfg: &Config, mailbox: &dyn Mailbox) {
    let _ = tcp.set_nodelay(true);
    let mut conn = BufReader::new(tcp);
    let greeting = format!("220 {} ESMTP postwire (reports only)\r\n", cfg.hostname);
    if conn.get_mut().write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    match session::run(&mut conn, cfg, mailbox, false, peer).await {
        Ok(session::End::StartTls) => {}
        Ok(session::End::Closed) => return,
        Err(e) => {
            tracing::debug!(peer, error = %e, "inbound SMTP: connection error");
            return;
        }
    }
    let Some(tls) = &cfg.tls else { return };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(tls));
    let tls_stream =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(conn.into_inner())).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::info!(peer, error = %e, "inbound SMTP: TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(peer, "inbound SMTP: TLS handshake timed out");
                return;
            }
        };
    let mut conn = BufReader::new(tls_stream);
    if let Err(e) = session::run(&mut conn, cfg, mailbox, true, peer).await {
        tracing::debug!(peer, error = %e, "inbound SMTP: connection error");
    }
}
