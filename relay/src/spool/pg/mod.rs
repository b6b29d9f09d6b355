//! The spool on PostgreSQL: many relays share one database, and any of them
//! can die without losing what was accepted (issue #14, docs/scale-out.md).
//!
//! # Promise
//!
//! The same as the file spool's, across machines: [`Spool::accept`]
//! resolves `Stored` only after the transaction holding the message, its
//! idempotency key, its recipients and its first event has committed; with
//! `synchronous_commit = on` PostgreSQL has then fsynced its WAL (and, with
//! `synchronous_standby_names`, a replica has it too). Delivery is at least
//! once: a relay that dies (or is cut off) after an upstream's `250` and
//! before its outcome commits leaves a lease that expires, and another
//! relay sends the message again. Nothing else is sent twice.
//!
//! # Leases and fencing
//!
//! A worker claims a due message with `SELECT … FOR UPDATE OF m SKIP
//! LOCKED` (one statement for every worker of the relay then waiting:
//! [`claim`]; the message row is the lock, so two relays never split one
//! message's recipients), and writes on each recipient row it takes: its
//! relay (`lease_owner`), an expiry (`lease_expires_ms`, database clock)
//! and a fresh `lease_token` from a sequence: the lease's fence. The runner
//! renews the lease while the transfer runs ([`Spool::renew`]). An outcome
//! is written only where the rows still carry that token; a relay whose
//! lease lapsed and was claimed again (paused, partitioned) gets
//! [`SpoolError::LeaseLost`] and changes nothing. Expired leases are claimed
//! again by any relay.
//!
//! # Events
//!
//! Every outcome, report and operator cancel inserts one row per recipient
//! into `postwire_events` in its own transaction, and `NOTIFY
//! postwire_events`. Every relay follows that table ([`follow`]): a
//! `LISTEN` connection wakes it, and it polls every second behind that, so
//! a lost notification (or a dead `LISTEN` connection) only delays an
//! event. Followed events feed [`Spool::subscribe_all`] (what connected
//! clients hear, from whichever relay settled them); the events this relay
//! settles itself feed [`Spool::subscribe`] (its metrics and webhooks), so
//! that each event is counted and sent once over all relays.
//!
//! # Housekeeping
//!
//! Every relay runs it, without a leader: bodies go in the transaction that
//! makes a message's last recipient final; messages (and their key, so
//! resubmission becomes possible again) and events are deleted once their
//! retention has passed, in small batches that any number of relays can run
//! at once.
//!
//! # Groups
//!
//! Accepts, claims and settles that arrive while their kind of statement
//! runs are written together by the next one ([`accept`], [`claim`],
//! [`settle`]): one statement and one commit for the group, each
//! submission, lease and outcome still answered and fenced on its own.
//!
//! # Plans
//!
//! The tables swing from empty to thousands of rows and back. The relay
//! analyzes them itself as they grow (`follow::statistics`), and plans each
//! prepared statement once per connection ([`connect::SESSION_SETUP`]);
//! the statements are written so that their plans stay index walks.
//!
//! Tables and migrations: [`schema`]; connection, password and TLS:
//! [`connect`]; the shared tokens and rate counters: [`tokens`], [`rate`].

mod accept;
mod claim;
pub mod connect;
mod follow;
mod group;
pub(crate) mod kinds;
mod ops;
mod pipelined;
pub mod rate;
pub mod schema;
mod settle;
pub mod tokens;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{Notify, broadcast};

use super::{
    Accepted, Control, Controlled, Depth, Event, Key, Lease, MessageView, Outcome, RcptState,
    RcptStatus, Spool, SpoolError, SpoolOptions, Submission,
};
pub use connect::{SpoolUrl, is_postgres_url};

/// Bytes per row of `postwire_message_chunks`.
pub const CHUNK_BYTES: usize = 256 << 10;

/// Settings of a [`PgSpool`] beyond [`SpoolOptions`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// How long a claimed attempt is this relay's before another may take
    /// it (renewed every third of it while the attempt runs).
    pub lease: Duration,
    /// Most database connections this relay opens.
    pub pool_size: usize,
    /// Name of this relay in leases and events (host name and process id
    /// by default).
    pub relay_name: String,
    /// How long [`PgSpool::open`] waits for the database to answer.
    pub connect_wait: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            lease: Duration::from_secs(60),
            pool_size: 16,
            relay_name: default_relay_name(),
            connect_wait: Duration::from_secs(60),
        }
    }
}

/// `HOST:PID:RANDOM`: unique per process, readable in `lease_owner`.
pub fn default_relay_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "relay".into());
    let mut r = [0u8; 4];
    let _ = getrandom::fill(&mut r);
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        u32::from_le_bytes(r)
    )
}

pub(crate) struct Inner {
    pub(crate) pool: deadpool_postgres::Pool,
    pub(crate) url: SpoolUrl,
    pub(crate) opts: SpoolOptions,
    pub(crate) pg: PgOptions,
    /// Events this relay settled.
    pub(crate) local: broadcast::Sender<Event>,
    /// Events of every relay, as followed from the table.
    pub(crate) all: broadcast::Sender<Event>,
    /// Work may be due (an accept here or elsewhere, a retry, a release).
    pub(crate) due: Notify,
    /// New events may be in the table.
    pub(crate) events: Notify,
    pub(crate) closed: AtomicBool,
    pub(crate) in_flight: AtomicUsize,
    /// Messages with a recipient not final, over every relay (refreshed).
    pub(crate) shared_queued: AtomicUsize,
    /// Whether the database answered the last time we asked.
    pub(crate) reachable: AtomicBool,
    /// Wake-ups the other relays are owed (see [`Inner::wake_others`]).
    pub(crate) owe_due: AtomicBool,
    pub(crate) owe_events: AtomicBool,
    pub(crate) notifier: Notify,
    /// Workers waiting in [`Spool::next`] (see [`claim`]).
    waiting: AtomicUsize,
    /// One claim statement at a time.
    claiming: tokio::sync::Mutex<()>,
    /// Leases a claim took for other waiting workers.
    claimed: std::sync::Mutex<Vec<Lease>>,
    /// Claims that found nothing due, counted.
    claims_empty: AtomicU64,
    /// Settle transactions at once (see [`settle`]).
    settling: tokio::sync::Semaphore,
    /// Attempts waiting for the next settle transaction.
    settles: std::sync::Mutex<Vec<settle::Attempt>>,
    /// Accept statements at once (see [`accept`]).
    accepting: tokio::sync::Semaphore,
    /// Submissions waiting for the next accept statement.
    accepts: std::sync::Mutex<Vec<accept::Pending>>,
}

/// The PostgreSQL spool. Cloning shares it.
#[derive(Clone)]
pub struct PgSpool {
    inner: Arc<Inner>,
    /// Aborted when the last clone is dropped.
    _tasks: Arc<Tasks>,
}

struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

impl std::fmt::Debug for PgSpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSpool")
            .field("url", &self.inner.url)
            .field("relay", &self.inner.pg.relay_name)
            .finish()
    }
}

impl PgSpool {
    /// Connects, applies the migrations and starts following events.
    /// Waits up to [`PgOptions::connect_wait`] (60 s) for the database, so
    /// that relays started beside their database come up by themselves.
    pub async fn open(
        url: SpoolUrl,
        opts: SpoolOptions,
        pg: PgOptions,
    ) -> Result<Self, SpoolError> {
        let pool = url
            .pool(pg.pool_size)
            .map_err(|e| SpoolError::Database(e.to_string()))?;
        let started = std::time::Instant::now();
        let mut client = loop {
            match pool.get().await {
                Ok(c) => break c,
                Err(e) if started.elapsed() < pg.connect_wait => {
                    tracing::warn!(url = %url, error = %describe_pool(&e), "spool database not reachable yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    return Err(SpoolError::Database(format!(
                        "cannot connect to the spool database {url}: {}",
                        describe_pool(&e)
                    )));
                }
            }
        };
        let version = schema::migrate(&mut client)
            .await
            .map_err(|e| SpoolError::Database(e.to_string()))?;
        drop(client);
        let (local, _) = broadcast::channel(4096);
        let (all, _) = broadcast::channel(4096);
        let inner = Arc::new(Inner {
            pool,
            url,
            opts,
            pg,
            local,
            all,
            due: Notify::new(),
            events: Notify::new(),
            closed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            shared_queued: AtomicUsize::new(0),
            reachable: AtomicBool::new(true),
            owe_due: AtomicBool::new(false),
            owe_events: AtomicBool::new(false),
            notifier: Notify::new(),
            waiting: AtomicUsize::new(0),
            claiming: tokio::sync::Mutex::new(()),
            claimed: std::sync::Mutex::new(Vec::new()),
            claims_empty: AtomicU64::new(0),
            settling: tokio::sync::Semaphore::new(settle::GROUPS),
            settles: std::sync::Mutex::new(Vec::new()),
            accepting: tokio::sync::Semaphore::new(accept::GROUPS),
            accepts: std::sync::Mutex::new(Vec::new()),
        });
        let cursor = follow::start_cursor(&inner).await?;
        let tasks = vec![
            tokio::spawn(follow::follow(Arc::downgrade(&inner), cursor)),
            tokio::spawn(follow::listen(Arc::downgrade(&inner))),
            tokio::spawn(follow::housekeeping(Arc::downgrade(&inner))),
            tokio::spawn(follow::notify_others(Arc::downgrade(&inner))),
        ];
        tracing::info!(url = %inner.url, relay = %inner.pg.relay_name, schema = version,
            lease_s = inner.pg.lease.as_secs(), "spool on PostgreSQL");
        Ok(PgSpool {
            inner,
            _tasks: Arc::new(Tasks(tasks)),
        })
    }

    /// This relay's name in leases and events.
    pub fn relay_name(&self) -> &str {
        &self.inner.pg.relay_name
    }

    /// The pool, for the shared token store.
    pub fn pool(&self) -> deadpool_postgres::Pool {
        self.inner.pool.clone()
    }
}

impl Spool for PgSpool {
    fn accept(&self, sub: Submission) -> BoxFuture<'_, Result<Accepted, SpoolError>> {
        Box::pin(accept::accept(&self.inner, sub))
    }

    fn status<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<Vec<RcptStatus>>, SpoolError>> {
        Box::pin(ops::status(&self.inner, key))
    }

    fn next(&self) -> BoxFuture<'_, Option<Lease>> {
        Box::pin(claim::next(&self.inner))
    }

    fn settle(
        &self,
        lease: Lease,
        outcomes: Vec<(String, Outcome)>,
    ) -> BoxFuture<'_, Result<(), SpoolError>> {
        Box::pin(async move {
            let r = settle::settle(&self.inner, &lease, outcomes).await;
            self.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
            r
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<bool, SpoolError>> {
        Box::pin(ops::renew(&self.inner, lease))
    }

    fn renew_every(&self) -> Option<Duration> {
        Some(self.inner.pg.lease / 3)
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.local.subscribe()
    }

    fn subscribe_all(&self) -> broadcast::Receiver<Event> {
        self.inner.all.subscribe()
    }

    fn depth(&self) -> Depth {
        let shared = self.inner.shared_queued.load(Ordering::Relaxed);
        Depth {
            queued: shared,
            in_flight: self.inner.in_flight.load(Ordering::Relaxed),
            damaged: 0,
            shared_queued: Some(shared),
        }
    }

    fn usable(&self) -> Result<(), String> {
        if self.inner.reachable.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("the spool database is unreachable".into())
        }
    }

    fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.due.notify_waiters();
    }

    fn find<'a>(
        &'a self,
        matches: &'a (dyn Fn(&Key) -> bool + Send + Sync),
    ) -> BoxFuture<'a, Result<Option<Key>, SpoolError>> {
        Box::pin(ops::find(&self.inner, matches))
    }

    fn report(
        &self,
        key: Key,
        rcpt: String,
        state: RcptState,
    ) -> BoxFuture<'_, Result<bool, SpoolError>> {
        Box::pin(ops::report(&self.inner, key, rcpt, state))
    }

    fn messages(&self) -> BoxFuture<'_, Result<Vec<MessageView>, SpoolError>> {
        Box::pin(ops::messages(&self.inner))
    }

    fn message<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<MessageView>, SpoolError>> {
        Box::pin(ops::message(&self.inner, key))
    }

    fn message_bytes<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SpoolError>> {
        Box::pin(ops::message_bytes(&self.inner, key))
    }

    fn control(&self, key: Key, action: Control) -> BoxFuture<'_, Result<Controlled, SpoolError>> {
        Box::pin(ops::control(&self.inner, key, action))
    }
}

impl Inner {
    /// A pooled connection, or the error as a [`SpoolError`].
    pub(crate) async fn conn(&self) -> Result<deadpool_postgres::Object, SpoolError> {
        match self.pool.get().await {
            Ok(c) => {
                self.reachable.store(true, Ordering::Relaxed);
                Ok(c)
            }
            Err(e) => {
                self.reachable.store(false, Ordering::Relaxed);
                Err(SpoolError::Database(format!(
                    "no connection to the spool database: {e}"
                )))
            }
        }
    }

    /// Asks for a `NOTIFY` to the other relays after a commit: `due` (work
    /// may be due) and/or `events` (new events). Sent by
    /// [`follow::notify_others`] in a transaction of its own, outside the
    /// writing one, and coalesced: a transaction that notifies holds a
    /// database-wide lock from the start of its commit to its end (PostgreSQL
    /// queues notifications in commit order), so a NOTIFY inside every
    /// accept would make commits wait for each other's WAL flush and lose
    /// group commit (measured with pgbench, 16 clients: 2,151 commits/s
    /// without, 435 with NOTIFY inside). Only a wake-up: the other relays
    /// poll behind it.
    pub(crate) fn wake_others(&self, due: bool, events: bool) {
        if due {
            self.owe_due.store(true, Ordering::Relaxed);
        }
        if events {
            self.owe_events.store(true, Ordering::Relaxed);
        }
        self.notifier.notify_one();
    }

    /// Delay before attempt `attempts + 1` (as the file spool).
    pub(crate) fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1).min(30))
            .unwrap_or(u32::MAX);
        self.opts
            .retry_initial
            .saturating_mul(factor)
            .min(self.opts.retry_max)
    }
}

/// A database error as a [`SpoolError`].
pub(crate) fn db(e: tokio_postgres::Error) -> SpoolError {
    SpoolError::Database(describe(&e))
}

/// What went wrong, with the server's message (tokio-postgres's own text is
/// only "db error") or the underlying cause.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    use std::error::Error;
    if let Some(d) = e.as_db_error() {
        return format!("{} {}: {}", d.severity(), d.code().code(), d.message());
    }
    match e.source() {
        Some(src) => format!("{e}: {src}"),
        None => e.to_string(),
    }
}

/// A pool error, as [`describe`] says it.
pub(crate) fn describe_pool(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => describe(e),
        other => other.to_string(),
    }
}
