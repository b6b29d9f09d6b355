//! A Rust client of a postwire relay (`postwire.v1`, docs/protocol.md), on
//! tokio-tungstenite: [`RelayClient`] connects with a token, submits
//! messages (bytes with an optional envelope, or a spec it builds), keeps the
//! relay's window full, and reports what became of each recipient as a
//! stream of [`ClientEvent`]s. It behaves as the JavaScript `RelayClient`
//! of the npm package does:
//!
//! - every message has an id (given, or random), the relay's idempotency key;
//! - after a dropped connection it reconnects with a growing delay,
//!   resubmits every message not yet answered with the same id (the relay
//!   answers `accepted` with `duplicate` for one it already has, and never
//!   sends it twice) and asks `status` for accepted messages whose
//!   recipients are not all final; a final state learnt from `status` is
//!   reported as the `delivered` or `failed` event it stands for;
//! - `unauthorized`, `auth_required` and `protocol` end the client: no
//!   reconnect can help;
//! - a message over the relay's `maxSize` is refused `too_large` without
//!   being uploaded.
//!
//! `wss://` is verified against the webpki roots (and a private CA file when
//! given); `ws://` is refused except to a loopback address, unless
//! [`ClientOptions::plaintext_anywhere_dangerous`] says otherwise.
//!
//! ```no_run
//! # async fn demo() -> Result<(), postwire_relay::client::ClientError> {
//! use postwire_relay::client::{ClientEvent, ClientOptions, OutgoingMessage, RelayClient};
//! let mut client = RelayClient::connect(
//!     "wss://relay.example/v1/submit",
//!     ClientOptions::new("pw_secret"),
//! )
//! .await?;
//! let mut events = client.take_events().expect("events");
//! let bytes = b"From: ana@example.com\r\nTo: bob@example.org\r\n\r\nhi\r\n".to_vec();
//! let accepted = client.submit(OutgoingMessage::new(bytes)).await?;
//! while let Some(event) = events.recv().await {
//!     if let ClientEvent::Settled { id, recipients } = event {
//!         if id == accepted.id {
//!             println!("{recipients:?}");
//!             break;
//!         }
//!     }
//! }
//! client.close().await;
//! # Ok(()) }
//! ```

pub(crate) mod connect;
mod driver;
mod frames;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use postwire_core::envelope::Envelope;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use crate::spool::{RcptState, RcptStatus};

/// Errors of the client, each with the protocol's `code` (see [`ClientError::code`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not a `wss://` or `ws://` URL with a host.
    #[error("relay URL {url}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `ws://` (no TLS) to a host other than this machine.
    #[error(
        "ws:// sends the token in the clear: use wss:// for {host} (ws:// is allowed to 127.0.0.1 only)"
    )]
    Plaintext {
        /// The host.
        host: String,
    },
    /// The private CA file cannot be used.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TLS configuration could not be made.
    #[error("TLS: {0}")]
    Tls(String),
    /// No connection could be made (TCP, TLS, the upgrade, or no `ready`).
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The relay's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The relay does not know the token, or revoked it. Final.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The relay ended the connection with an `error` frame.
    #[error("relay error {code}: {message}")]
    Relay {
        /// The protocol's code (`protocol`, `shutting_down`, ...).
        code: String,
        /// The relay's message.
        message: String,
    },
    /// The relay (or the client, for `too_large`) refused one message;
    /// nothing of it was stored.
    #[error("{id}: rejected ({code}): {message}")]
    Rejected {
        /// The message's id.
        id: String,
        /// The protocol's code (`sender_not_allowed`, `too_large`, ...).
        code: String,
        /// Why.
        message: String,
    },
    /// The message cannot be built or has no envelope.
    #[error("{0}")]
    Build(String),
    /// The connection was lost and could not be made again in time
    /// ([`ClientOptions::give_up_after`]) or reconnecting is off.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The client was closed before the message was answered.
    #[error("the client is closed")]
    Closed,
}

impl ClientError {
    /// The machine-readable code, as the JavaScript client's `RelayError.code`.
    pub fn code(&self) -> &str {
        match self {
            ClientError::InvalidUrl { .. } => "invalid_url",
            ClientError::Plaintext { .. } => "plaintext",
            ClientError::CaFile { .. } | ClientError::Tls(_) => "tls",
            ClientError::Connect { .. } => "connection_failed",
            ClientError::Unauthorized(_) => "unauthorized",
            ClientError::Relay { code, .. } | ClientError::Rejected { code, .. } => code,
            ClientError::Build(_) => "bad_input",
            ClientError::ConnectionLost(_) => "connection_closed",
            ClientError::Closed => "closed",
        }
    }

    /// Whether reconnecting cannot help (the token is refused, or the relay
    /// and the client disagree on the protocol).
    pub fn is_fatal(&self) -> bool {
        matches!(self.code(), "unauthorized" | "auth_required" | "protocol")
            || matches!(
                self,
                ClientError::InvalidUrl { .. }
                    | ClientError::Plaintext { .. }
                    | ClientError::CaFile { .. }
                    | ClientError::Tls(_)
            )
    }

    fn from_relay(code: String, message: String) -> ClientError {
        if code == "unauthorized" {
            ClientError::Unauthorized(message)
        } else {
            ClientError::Relay { code, message }
        }
    }
}

/// How to connect.
#[derive(Clone)]
pub struct ClientOptions {
    token: String,
    ca_file: Option<PathBuf>,
    reconnect: bool,
    max_reconnect_delay: Duration,
    give_up_after: Option<Duration>,
    connect_timeout: Duration,
    plaintext_anywhere: bool,
}

impl std::fmt::Debug for ClientOptions {
    /// Never shows the token's secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("token", &"<secret>")
            .field("ca_file", &self.ca_file)
            .field("reconnect", &self.reconnect)
            .field("max_reconnect_delay", &self.max_reconnect_delay)
            .field("give_up_after", &self.give_up_after)
            .field("connect_timeout", &self.connect_timeout)
            .field("plaintext_anywhere", &self.plaintext_anywhere)
            .finish()
    }
}

impl ClientOptions {
    /// Options with the token's secret; reconnecting on, delays up to 10 s,
    /// never giving up, 30 s to connect.
    pub fn new(token: impl Into<String>) -> Self {
        ClientOptions {
            token: token.into(),
            ca_file: None,
            reconnect: true,
            max_reconnect_delay: Duration::from_secs(10),
            give_up_after: None,
            connect_timeout: Duration::from_secs(30),
            plaintext_anywhere: false,
        }
    }

    /// Also trusts the certificates of this PEM file (a private CA).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Whether to reconnect after a dropped connection (default `true`).
    pub fn reconnect(mut self, on: bool) -> Self {
        self.reconnect = on;
        self
    }

    /// The longest wait between two reconnection attempts (default 10 s).
    pub fn max_reconnect_delay(mut self, delay: Duration) -> Self {
        self.max_reconnect_delay = delay;
        self
    }

    /// Stop reconnecting after this long without a connection, failing what
    /// is still unanswered with [`ClientError::ConnectionLost`] (default: never).
    pub fn give_up_after(mut self, limit: Duration) -> Self {
        self.give_up_after = Some(limit);
        self
    }

    /// How long one connection may take up to `ready` (default 30 s).
    pub fn connect_timeout(mut self, limit: Duration) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// Allows `ws://` (no TLS: the token and messages in the clear) to any
    /// host, not only to this machine.
    pub fn plaintext_anywhere_dangerous(mut self, allow: bool) -> Self {
        self.plaintext_anywhere = allow;
        self
    }
}

/// The relay's `ready` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ready {
    /// `postwire.v1`.
    pub protocol: String,
    /// The token's name.
    pub token: String,
    /// Most submissions unanswered at once.
    pub window: usize,
    /// Largest message the token may send.
    pub max_size: u64,
}

/// A message to submit.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// Its id, the relay's idempotency key (a random one when `None`).
    pub id: Option<String>,
    /// The RFC 5322 bytes, sent as they are.
    pub bytes: Vec<u8>,
    /// The envelope; when `None` the relay derives it from the headers.
    pub envelope: Option<Envelope>,
}

impl OutgoingMessage {
    /// Finished message bytes whose envelope the relay derives from the headers.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        OutgoingMessage {
            id: None,
            bytes: bytes.into(),
            envelope: None,
        }
    }

    /// A spec built into bytes (with the clock and entropy of `options`)
    /// and its envelope (sender or from; to, cc and bcc; dsn and requireTls),
    /// as the JavaScript client derives it.
    pub fn from_spec(
        spec: &postwire_core::MessageSpec,
        options: &postwire_core::BuildOptions,
    ) -> Result<Self, ClientError> {
        let envelope = Envelope::of_spec(spec).map_err(|e| ClientError::Build(e.to_string()))?;
        let bytes =
            postwire_core::build(spec, options).map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(OutgoingMessage {
            id: None,
            bytes,
            envelope: Some(envelope),
        })
    }

    /// With this id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// With this envelope.
    pub fn envelope(mut self, envelope: Envelope) -> Self {
        self.envelope = Some(envelope);
        self
    }
}

/// The relay's `accepted` answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The message's id.
    pub id: String,
    /// The relay already had it: nothing was stored or will be sent again.
    pub duplicate: bool,
    /// Its recipients, as the relay normalised them.
    pub rcpt_to: Vec<String>,
}

/// Something that happened, in the order the client learnt it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A connection is ready (the first one, or after a reconnect).
    Ready(Ready),
    /// A message was accepted.
    Accepted(Accepted),
    /// A message was refused.
    Rejected {
        /// The message's id.
        id: String,
        /// The protocol's code.
        code: String,
        /// Why.
        message: String,
    },
    /// A recipient was delivered (an event, or a `status` answer that said so).
    Delivered {
        /// The message's id.
        id: String,
        /// The recipient.
        rcpt: String,
        /// The upstream's reply.
        response: String,
    },
    /// A recipient was refused for now; the relay retries.
    Deferred {
        /// The message's id.
        id: String,
        /// The recipient.
        rcpt: String,
        /// The upstream's reply or the connection error.
        reason: String,
        /// Attempts so far.
        attempts: u32,
        /// Next attempt, milliseconds since the Unix epoch.
        retry_at_ms: u64,
    },
    /// A recipient failed for good (an event, or a `status` answer that said so).
    Failed {
        /// The message's id.
        id: String,
        /// The recipient.
        rcpt: String,
        /// Why.
        reason: String,
    },
    /// Every recipient of an accepted message is final; nothing more will
    /// be reported about it.
    Settled {
        /// The message's id.
        id: String,
        /// Each recipient and its final state, in the envelope's order.
        recipients: Vec<RcptStatus>,
    },
    /// The connection was lost; the client reconnects after `delay`.
    Reconnecting {
        /// Why the connection ended.
        reason: String,
        /// The wait before the next attempt.
        delay: Duration,
        /// Messages waiting for an answer.
        pending: usize,
        /// Accepted messages whose recipients are not all final.
        tracked: usize,
    },
    /// The relay answered `status` for an accepted message with `known:
    /// false` (its spool was replaced or the id's retention passed): nothing
    /// more will be reported about it.
    Forgotten {
        /// The message's id.
        id: String,
    },
    /// The client stopped: a fatal error, reconnecting was off, or no
    /// connection within [`ClientOptions::give_up_after`]. Unanswered
    /// messages were failed; accepted ones in `untracked` are no longer
    /// followed (ask the relay's `status` later).
    Stopped {
        /// Why.
        reason: String,
        /// Accepted messages whose recipients were not all final.
        untracked: Vec<String>,
    },
}

/// The answer to one submission: resolves with [`Accepted`] or the
/// [`ClientError`] that refused it. The message is queued when the ticket is
/// made, whether or not the ticket is awaited.
#[derive(Debug)]
pub struct Ticket {
    id: String,
    answer: oneshot::Receiver<Result<Accepted, ClientError>>,
}

impl Ticket {
    /// The message's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Future for Ticket {
    type Output = Result<Accepted, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClientError::Closed)))
    }
}

/// A connected client; see the module documentation.
#[derive(Debug)]
pub struct RelayClient {
    commands: mpsc::UnboundedSender<driver::Command>,
    events: Option<mpsc::UnboundedReceiver<ClientEvent>>,
    ready: Ready,
    task: tokio::task::JoinHandle<()>,
}

impl RelayClient {
    /// Connects to the relay's `/v1/submit` URL and waits for `ready`. A
    /// first connection that fails is an error (later ones are retried).
    pub async fn connect(url: &str, options: ClientOptions) -> Result<RelayClient, ClientError> {
        let target = connect::Target::parse(url, options.plaintext_anywhere)?;
        let tls = connect::tls_config(options.ca_file.as_deref())?;
        let (ws, ready) =
            connect::open(&target, &options.token, &tls, options.connect_timeout).await?;
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let _ = events_tx.send(ClientEvent::Ready(ready.clone()));
        let task = tokio::spawn(driver::run(
            driver::Driver::new(target, tls, options, &ready, commands_rx, events_tx),
            ws,
        ));
        Ok(RelayClient {
            commands,
            events: Some(events),
            ready,
            task,
        })
    }

    /// The first `ready` frame: the token's name, the window, the size limit.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// The stream of events (once; `None` after the first call). Events
    /// are kept until read, so a client that submits many messages should
    /// read them, or drop the receiver if it does not want them.
    pub fn take_events(&mut self) -> Option<mpsc::UnboundedReceiver<ClientEvent>> {
        self.events.take()
    }

    /// Queues a message for submission now; the returned ticket resolves
    /// when the relay answered it. Messages are sent in the order they were
    /// queued, at most the relay's window at once.
    pub fn submit(&self, message: OutgoingMessage) -> Ticket {
        let id = message.id.clone().unwrap_or_else(new_id);
        let (tx, answer) = oneshot::channel();
        let entry = driver::Entry::new(id.clone(), message, tx);
        if let Err(mpsc::error::SendError(driver::Command::Submit(entry))) =
            self.commands.send(driver::Command::Submit(Box::new(entry)))
        {
            entry.answer(Err(ClientError::Closed));
        }
        Ticket { id, answer }
    }

    /// Waits until every queued message was answered, then closes the
    /// connection. Delivery events that have not come yet are not waited for.
    pub async fn close(self) {
        let _ = self.commands.send(driver::Command::Close);
        drop(self.commands);
        let _ = self.task.await;
    }
}

/// A random id: 32 hex digits (128 bits from the OS).
pub fn new_id() -> String {
    let mut raw = [0u8; 16];
    if getrandom::fill(&mut raw).is_err() {
        // No OS entropy: a clock and counter based id, still unique per process.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("{t:x}-{:x}-{n}", std::process::id());
    }
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_never_show_the_token() {
        let shown = format!("{:?}", ClientOptions::new("pw_very_secret"));
        assert!(!shown.contains("pw_very_secret"), "{shown}");
    }
}
