//! The pool: N workers, each owning one SMTP connection, taking jobs from one
//! bounded queue. Bounding the work by workers (not by lettre's pool, whose
//! `max_size` only caps idle connections) means at most N sessions are ever
//! open, however many messages are queued.
//!
//! A worker connects lazily on its first job and reconnects after a broken
//! session. When a reused connection turns out dead before the server took
//! `DATA` (typically closed by the server while idle), the job is retried once
//! on a fresh connection: no content was sent, so it cannot be delivered twice.

use std::sync::Arc;

use postwire_core::{
    build::{BuildOptions, build},
    envelope::Envelope,
    spec::MessageSpec,
};
use tokio::{
    sync::{Mutex, mpsc, oneshot},
    task::JoinHandle,
};

use super::{
    connection::{Client, Connection},
    content::Content,
    error::{SmtpError, Stage},
    reply::DeliveryReport,
    settings::SmtpSettings,
};

pub use crate::delivery::{BulkProgress, Outgoing};

/// The result of one message.
pub type DeliveryResult = Result<DeliveryReport, SmtpError>;

enum ReplyTo {
    One(oneshot::Sender<DeliveryResult>),
    Bulk(usize, mpsc::UnboundedSender<(usize, DeliveryResult)>),
}

struct Job {
    envelope: Envelope,
    content: Content,
    reply: ReplyTo,
}

/// A pool of N parallel SMTP sessions to one server.
///
/// ```no_run
/// # async fn demo() -> Result<(), postwire_relay::smtp::SmtpError> {
/// use postwire_core::envelope::Envelope;
/// use postwire_relay::smtp::{SmtpPool, SmtpSettings};
///
/// let settings = SmtpSettings::from_url("smtp://ana@mail.example.com:587?security=starttls&connections=8")?;
/// let pool = SmtpPool::connect(settings).await?;
/// let envelope = Envelope::new("ana@example.com", &["bob@example.org"])?;
/// let report = pool.send(&envelope, b"Subject: hi\r\n\r\nhello\r\n".to_vec()).await?;
/// for r in &report.recipients {
///     println!("{}: {}", r.recipient, r.reply);
/// }
/// pool.close().await;
/// # Ok(()) }
/// ```
pub struct SmtpPool {
    client: Arc<Client>,
    jobs: mpsc::Sender<Job>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpPool")
            .field("server", &self.client.server())
            .field("connections", &self.workers.len())
            .finish()
    }
}

impl SmtpPool {
    /// Opens one connection now (so that bad settings, TLS or credentials fail
    /// here, not on the first message), then starts `settings.connections`
    /// workers; the others connect on their first message. Must be called
    /// inside a tokio runtime.
    pub async fn connect(settings: SmtpSettings) -> Result<Self, SmtpError> {
        let client = Arc::new(Client::new(settings)?);
        let first = Connection::open(&client).await?;
        Ok(Self::start(client, Some(first)))
    }

    /// Starts the workers without connecting; every worker connects on its
    /// first message. For a relay that must start while its upstream is down.
    /// Checks the settings and reads the CA file; must be called inside a
    /// tokio runtime (the workers are spawned on it).
    pub fn new(settings: SmtpSettings) -> Result<Self, SmtpError> {
        let client = Arc::new(Client::new(settings)?);
        Ok(Self::start(client, None))
    }

    fn start(client: Arc<Client>, first: Option<Connection>) -> Self {
        let n = client.settings.connections.max(1);
        let (tx, rx) = mpsc::channel(n * 2);
        let rx = Arc::new(Mutex::new(rx));
        let mut first = first;
        let workers = (0..n)
            .map(|_| tokio::spawn(worker(client.clone(), rx.clone(), first.take())))
            .collect();
        SmtpPool {
            client,
            jobs: tx,
            workers,
        }
    }

    /// Number of parallel sessions (workers).
    pub fn connections(&self) -> usize {
        self.workers.len()
    }

    /// The settings the pool was made with.
    pub fn settings(&self) -> &SmtpSettings {
        &self.client.settings
    }

    /// Sends one message given as bytes (RFC 5322, CRLF line ends) to the
    /// envelope's recipients, on the next free connection.
    pub async fn send(&self, envelope: &Envelope, message: impl Into<Arc<[u8]>>) -> DeliveryResult {
        self.send_content(envelope.clone(), Content::Bytes(message.into()))
            .await
    }

    /// Builds a message spec (core's `build`, with the given clock and seed) and
    /// sends it to its envelope (Sender or From; To, Cc and Bcc; Bcc is not in
    /// the built headers).
    pub async fn send_spec(&self, spec: &MessageSpec, options: &BuildOptions) -> DeliveryResult {
        let envelope = Envelope::of_spec(spec)?;
        let message = build(spec, options)?;
        self.send_content(envelope, Content::Bytes(message.into()))
            .await
    }

    /// Sends one message from memory or streamed from a file.
    pub async fn send_content(&self, envelope: Envelope, content: Content) -> DeliveryResult {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            envelope,
            content,
            reply: ReplyTo::One(tx),
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| SmtpError::PoolClosed)?;
        rx.await.map_err(|_| SmtpError::PoolClosed)?
    }

    /// Sends every message, spread over the pool's connections, and returns a
    /// result per message in input order. `progress` is called after each
    /// message finishes.
    pub async fn send_bulk(
        &self,
        messages: impl IntoIterator<Item = Outgoing>,
        mut progress: impl FnMut(&BulkProgress),
    ) -> Vec<DeliveryResult> {
        let messages: Vec<Outgoing> = messages.into_iter().collect();
        let total = messages.len();
        let mut results: Vec<Option<DeliveryResult>> = (0..total).map(|_| None).collect();
        let (res_tx, mut res_rx) = mpsc::unbounded_channel();
        let feed = async move {
            for (i, m) in messages.into_iter().enumerate() {
                let job = Job {
                    envelope: m.envelope,
                    content: m.content,
                    reply: ReplyTo::Bulk(i, res_tx.clone()),
                };
                if let Err(mpsc::error::SendError(Job {
                    reply: ReplyTo::Bulk(i, tx),
                    ..
                })) = self.jobs.send(job).await
                {
                    let _ = tx.send((i, Err(SmtpError::PoolClosed)));
                }
            }
        };
        let collect = async {
            let mut state = BulkProgress {
                done: 0,
                total,
                delivered: 0,
                failed: 0,
            };
            while let Some((i, result)) = res_rx.recv().await {
                state.done += 1;
                if result.is_ok() {
                    state.delivered += 1;
                } else {
                    state.failed += 1;
                }
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(result);
                }
                progress(&state);
            }
        };
        tokio::join!(feed, collect);
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(SmtpError::PoolClosed)))
            .collect()
    }

    /// Stops taking messages, lets the workers finish what they hold, says QUIT
    /// on every connection and waits for the workers.
    pub async fn close(self) {
        drop(self.jobs);
        for w in self.workers {
            let _ = w.await;
        }
    }
}

async fn worker(
    client: Arc<Client>,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    first: Option<Connection>,
) {
    let mut conn = first;
    loop {
        let job = { jobs.lock().await.recv().await };
        let Some(job) = job else { break };
        let result = deliver(&client, &mut conn, &job.envelope, &job.content).await;
        match job.reply {
            ReplyTo::One(tx) => {
                let _ = tx.send(result);
            }
            ReplyTo::Bulk(i, tx) => {
                let _ = tx.send((i, result));
            }
        }
    }
    if let Some(c) = conn {
        c.quit(&client).await;
    }
}

async fn deliver(
    client: &Client,
    slot: &mut Option<Connection>,
    envelope: &Envelope,
    content: &Content,
) -> DeliveryResult {
    let mut retried = false;
    loop {
        let reused = slot.is_some();
        let conn = match slot {
            Some(c) => c,
            None => slot.insert(Connection::open(client).await?),
        };
        let result = conn.deliver(client, envelope, content).await;
        if conn.is_broken() {
            *slot = None;
        }
        match result {
            Err(e) if reused && !retried && died_before_content(&e) => {
                *slot = None;
                retried = true;
            }
            other => return other,
        }
    }
}

/// The connection was found dead (or closing) before the server accepted
/// `DATA`: no content went out, so the message cannot have been delivered and
/// is safe to send again on a fresh connection.
fn died_before_content(e: &SmtpError) -> bool {
    let before_content =
        |stage: &Stage| matches!(stage, Stage::MailFrom | Stage::RcptTo | Stage::Data);
    match e {
        SmtpError::ConnectionLost { stage, .. } | SmtpError::Protocol { stage, .. } => {
            before_content(stage)
        }
        SmtpError::Rejected { stage, reply } => before_content(stage) && reply.code == 421,
        _ => false,
    }
}
