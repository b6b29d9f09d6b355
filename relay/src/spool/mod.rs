//! The durable spool: where an accepted message lives until its upstream has
//! taken it or it has failed for good.
//!
//! # Promise
//!
//! *Nothing acknowledged is ever lost.* [`Spool::accept`] resolves only after
//! the message bytes and their envelope are on stable storage: appended to a
//! segment file and `fdatasync`ed. A message leaves the spool only after
//! every recipient has a final outcome (delivered, or failed), and that
//! outcome itself was fsynced first. Delivery is therefore *at least once*: a
//! crash between an upstream's `250` and the fsync of that outcome sends the
//! message again on restart (the "on the wire" case); nothing else is ever
//! sent twice. A delivery worker starts its next message while the previous
//! outcome is being fsynced, but never more than one: per upstream
//! connection a crash re-sends at most two messages.
//!
//! # Invariants
//!
//! 1. Message records are only ever appended, one group at a time, each
//!    group made durable by one `fdatasync` before any message in it is
//!    acknowledged. A segment file is created (and its directory fsynced)
//!    before its first append, so the name of a file holding an acknowledged
//!    message cannot vanish in a crash. A crash mid-append leaves a torn group
//!    at the end of a segment: recovery cuts it off. Every record carries a
//!    CRC-32, so that torn or damaged bytes are detected, never delivered.
//! 2. A writer never appends to a segment after an append or sync on it
//!    failed (after a failed `fsync` nothing is known of the file's tail): it
//!    moves on to a new segment.
//! 3. Progress lives in the journal, an append-only log of checksummed
//!    *settle* records, fsynced after each group of appends. A torn tail is
//!    cut off at recovery; everything before it is valid. After a failed
//!    append the journal is rewritten from the index (temporary file, fsync,
//!    rename, directory fsync) before anything more is appended, so that torn
//!    bytes never sit in front of valid records.
//! 4. A segment is deleted only when no writer appends to it any more and
//!    every message in it has reached a final state *and* the journal
//!    records saying so were fsynced.
//! 5. The idempotency key of a message is `(token name, client id)`. While the
//!    key is known (its segment is live, or its final settle record is within
//!    the retention window) a resubmission is answered from the index and
//!    never stored or sent again.
//! 6. Exactly one process owns a data directory: the spool holds an exclusive
//!    lock on `spool/LOCK` while it is open.
//!
//! A group whose append reached the disk but whose `fdatasync` had not
//! returned when the process died was never acknowledged, yet its complete
//! records may be found at recovery: those messages are delivered (at least
//! once), and a client that resubmits one is told it is a duplicate.
//!
//! # On-disk layout
//!
//! ```text
//! <data-dir>/spool/
//!   LOCK                              exclusive lock of the owning process
//!   journal.log                       settle records, append-only
//!   batches/00000000000000000042.batch    a segment: groups of message records
//!   corrupt/                          damaged segment tails, kept for the operator
//! ```
//!
//! # Record format
//!
//! Segments and the journal are both sequences of records (see
//! [`record`]): a 16-byte header — magic `PWR1`, kind (u8), three zero bytes,
//! payload length (u32 LE), CRC-32 (u32 LE) of kind, length and payload —
//! then the payload. A *message* record's payload is a u32 LE length, a JSON
//! [`MessageMeta`], then the raw message bytes; a *settle* record's payload
//! is a JSON [`record::Settle`]. Lengths read back from disk are checked
//! against the bytes actually present before anything is allocated.
//!
//! # Group commit
//!
//! Writer threads own the files. A batch writer takes every submission queued
//! while it was busy and appends them together to its own segment, with one
//! `fdatasync` (no rename, no directory sync: one flush per group). Two batch
//! writers run in parallel, each with its segment, so a group does not wait
//! for the sync of the group before it. The journal writer does the same
//! with settle records. The cost of a sync is shared by every message in the
//! group, which is what lets the relay acknowledge thousands of messages per
//! second with each one durable before its `accepted`. A segment takes no
//! new group past [`SpoolOptions::segment_bytes`], nor past
//! [`SpoolOptions::drained_segment_bytes`] (1 MiB) once every message in it
//! is final; it is deleted once its last message is final and no writer
//! appends to it, so one long-deferred message keeps its whole segment on
//! disk until then.
//!
//! # Recovery
//!
//! On open: leftover `*.tmp` files are removed; the journal and each segment
//! are read record by record. A bad record with a good one somewhere after
//! it is damage: its bytes are copied to `corrupt/` and logged, reading goes
//! on at the next record that decodes (the first `PWR1` whose checksum
//! holds), and the count is reported (`postwire_spool_damaged_records`). A
//! bad record with nothing readable after it is a torn tail (a crash
//! mid-append: never acknowledged; cut off with a warning) or damage at the
//! end (copied to `corrupt/` first, then cut). A damaged message whose meta
//! still reads is reported failed ("the spooled copy was damaged on disk");
//! messages whose
//! recipients are not all final are queued for delivery at once; new groups
//! go to new segments; the journal is compacted (one record per known key,
//! final keys older than the retention window dropped) and rewritten
//! atomically. The journal is compacted the same way while the relay runs,
//! once it has grown past [`SpoolOptions::journal_compact_bytes`] (16 MiB)
//! and four times its last compacted size;
//! keys past their retention leave the index then.
//!
//! # Operator actions
//!
//! [`Spool::control`] (the admin API, `postwire queue`) holds, releases,
//! retries, cancels and deletes messages. Each durable action is a settle
//! record with `control` set (fields `held`, `deleted`; absent in older
//! journals, which read as before), appended and fsynced by the journal
//! writer like any outcome, and kept by compaction. A held message is never
//! leased (an attempt already in flight finishes); a cancel makes every
//! recipient not final `Failed`, publishes the events, and frees the segment
//! by rule 4 like any final outcome; it is refused while an attempt is in
//! flight, so that an attempt's outcome never overwrites it. A deleted
//! message is no longer listed, but its key stays in the index until its
//! retention ends (rule 5 holds). A retry only moves the due time (not
//! journaled: every message not final is due at once after a restart).
//!
//! The spool sits behind the [`Spool`] trait so that a distributed queue can
//! replace this filesystem implementation without touching the server.

#[cfg(test)]
mod control_tests;
pub mod deliver;
pub mod disk;
mod fs;
#[cfg(test)]
mod idle_tests;
pub mod pg;
pub mod record;
#[cfg(test)]
mod report_tests;
pub mod runner;
#[cfg(test)]
mod tests;

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use fs::FsSpool;
pub(crate) use fs::now_ms;

/// The idempotency key of a message: the name of the token that submitted it
/// and the id its client gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    /// Name of the token the message was submitted with.
    pub token: String,
    /// The client's id for the message.
    pub id: String,
}

/// SMTP envelope of a spooled message (JSON `mailFrom`, `rcptTo`, and
/// optionally `dsn` and `requireTls`, passed on to the upstream).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Reverse path (`MAIL FROM`); may be empty for bounces.
    pub mail_from: String,
    /// Forward paths (`RCPT TO`), at least one.
    pub rcpt_to: Vec<String>,
    /// Delivery status notifications asked for (RFC 3461); absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsn: Option<postwire_core::envelope::Dsn>,
    /// REQUIRETLS (RFC 8689) asked for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_tls: bool,
}

/// What the spool stores beside the bytes of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageMeta {
    /// Idempotency key.
    pub key: Key,
    /// Envelope to deliver with.
    pub envelope: Envelope,
    /// When the message was accepted, in milliseconds since the Unix epoch.
    pub received_ms: u64,
}

/// A message handed to [`Spool::accept`].
#[derive(Debug, Clone)]
pub struct Submission {
    /// Key, envelope and time of acceptance.
    pub meta: MessageMeta,
    /// The RFC 5322 message, exactly as it will be sent.
    pub bytes: Vec<u8>,
}

/// Answer of [`Spool::accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The message is now durably spooled.
    Stored,
    /// The key was already known: nothing was stored, nothing will be sent again.
    Duplicate,
}

/// State of one recipient of a spooled message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum RcptState {
    /// Not tried yet.
    Queued,
    /// Tried and refused for now; will be tried again.
    Deferred {
        /// The upstream's reply or the connection error.
        reason: String,
        /// Attempts made so far.
        attempts: u32,
    },
    /// The upstream accepted the message for this recipient (final).
    Delivered {
        /// The upstream's reply.
        response: String,
    },
    /// Refused for good, or retried past the maximum age (final).
    Failed {
        /// Why.
        reason: String,
    },
    /// Delivered, then a delivery status notification came back for it to
    /// the relay's bounce address (final; see [`crate::bounces`]).
    #[serde(rename_all = "camelCase")]
    Bounced {
        /// `hard` (status 5.x.x) or `soft` (4.x.x).
        bounce: BounceKind,
        /// The report's RFC 3463 status (`5.1.1`).
        status: String,
        /// The report's diagnostic code, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        diagnostic: Option<String>,
        /// When the report arrived (ms since the Unix epoch).
        at_ms: u64,
    },
    /// Delivered, then an abuse report (RFC 5965 ARF) came back for it (final).
    #[serde(rename_all = "camelCase")]
    Complained {
        /// The report's feedback type (`abuse`), when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feedback_type: Option<String>,
        /// When the report arrived (ms since the Unix epoch).
        at_ms: u64,
    },
}

/// How bad a bounce is: from the class of its status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BounceKind {
    /// A permanent failure (5.x.x): the recipient is suppressed.
    Hard,
    /// A transient failure (4.x.x) the remote side gave up on or warns about.
    Soft,
}

impl RcptState {
    /// Whether nothing will happen to this recipient any more.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RcptState::Delivered { .. }
                | RcptState::Failed { .. }
                | RcptState::Bounced { .. }
                | RcptState::Complained { .. }
        )
    }

    /// Whether this state came from a report after delivery (bounce or complaint).
    pub fn is_report(&self) -> bool {
        matches!(
            self,
            RcptState::Bounced { .. } | RcptState::Complained { .. }
        )
    }
}

/// The state of every recipient of a message, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcptStatus {
    /// The recipient address.
    pub rcpt: String,
    /// Its state.
    #[serde(flatten)]
    pub state: RcptState,
}

/// A per-recipient event, published when a delivery attempt was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The message.
    pub key: Key,
    /// The recipient.
    pub rcpt: String,
    /// What happened to it.
    pub kind: EventKind,
    /// This is the last event the message will ever have: every recipient
    /// is now final (set on the last event of the attempt that made it so).
    pub last: bool,
    /// When the spool recorded it, ms since the Unix epoch (the time of the
    /// history item it also left, so that the event read again from the
    /// spool's record, [`Spool::events_since`], is recognisably the same).
    pub at_ms: u64,
}

/// What happened to one recipient in one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// Accepted by the upstream.
    Delivered {
        /// The upstream's reply.
        response: String,
    },
    /// Refused for now; retried at `retry_at_ms`.
    Deferred {
        /// The upstream's reply or the connection error.
        reason: String,
        /// Attempts so far.
        attempts: u32,
        /// Next attempt, milliseconds since the Unix epoch.
        retry_at_ms: u64,
    },
    /// Refused for good.
    Failed {
        /// Why.
        reason: String,
    },
    /// A delivery status notification came back after delivery.
    Bounced {
        /// Hard (5.x.x) or soft (4.x.x).
        bounce: BounceKind,
        /// The RFC 3463 status.
        status: String,
        /// The diagnostic code, when the report has one.
        diagnostic: Option<String>,
    },
    /// An abuse report came back after delivery.
    Complained {
        /// The feedback type, when the report has one.
        feedback_type: Option<String>,
    },
}

impl EventKind {
    /// The event a recipient's new `state` gives (`None` for `Queued`);
    /// `retry_at_ms` is a deferral's next attempt.
    pub fn of_state(state: &RcptState, retry_at_ms: u64) -> Option<EventKind> {
        Some(match state.clone() {
            RcptState::Queued => return None,
            RcptState::Deferred { reason, attempts } => EventKind::Deferred {
                reason,
                attempts,
                retry_at_ms,
            },
            RcptState::Delivered { response } => EventKind::Delivered { response },
            RcptState::Failed { reason } => EventKind::Failed { reason },
            RcptState::Bounced {
                bounce,
                status,
                diagnostic,
                ..
            } => EventKind::Bounced {
                bounce,
                status,
                diagnostic,
            },
            RcptState::Complained { feedback_type, .. } => EventKind::Complained { feedback_type },
        })
    }
}

/// Result of one delivery attempt for one recipient, as an upstream reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted (2xx).
    Delivered(String),
    /// Try again later (4xx, connection or timeout error).
    Transient(String),
    /// Never (5xx, invalid recipient).
    Permanent(String),
}

/// A message leased to a delivery worker by [`Spool::next`].
#[derive(Debug, Clone)]
pub struct Lease {
    /// The message.
    pub key: Key,
    /// The envelope, restricted to recipients that still need an attempt.
    pub envelope: Envelope,
    /// The message bytes.
    pub bytes: Vec<u8>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the message was accepted (ms since the Unix epoch).
    pub received_ms: u64,
    /// The lease's fencing token: a shared spool records this attempt's
    /// outcome only while the lease still carries it (0 where leases cannot
    /// be lost, as in [`FsSpool`]).
    pub fence: u64,
}

impl Lease {
    /// The same permanent failure for every recipient of this attempt (a
    /// spooled copy that cannot be sent).
    pub fn fail_all(&self, reason: &str) -> Vec<(String, Outcome)> {
        self.envelope
            .rcpt_to
            .iter()
            .map(|r| (r.clone(), Outcome::Permanent(reason.to_string())))
            .collect()
    }
}

/// How the spool retries and how long it remembers.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// Delay before the first retry; doubled after each further attempt.
    pub retry_initial: Duration,
    /// Longest delay between two attempts.
    pub retry_max: Duration,
    /// A message still deferred this long after acceptance fails for good.
    pub max_age: Duration,
    /// How long a final message's key stays known for idempotency.
    pub retain: Duration,
    /// Most bytes of messages one group commit appends at once.
    pub max_batch_bytes: usize,
    /// A segment file takes no new group once it holds this many bytes.
    pub segment_bytes: u64,
    /// A writer's segment with every message in it final is given up (and
    /// so removed) at the next group once it holds this many bytes, rather
    /// than kept until `segment_bytes`: on a small disk, the space of
    /// delivered messages comes back while traffic goes on.
    pub drained_segment_bytes: u64,
    /// The journal is compacted while running once it holds this many bytes
    /// and four times its size after the last compaction.
    pub journal_compact_bytes: u64,
    /// Bytes of the reserve file kept in the data directory and released
    /// when the disk is full, so that delivery outcomes can still be
    /// recorded and finished segments removed (0: no reserve). Recovery
    /// removes it first (its journal rewrite may need the room) and takes it
    /// again after.
    pub reserve_bytes: u64,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            retry_initial: Duration::from_secs(30),
            retry_max: Duration::from_secs(30 * 60),
            max_age: Duration::from_secs(2 * 24 * 3600),
            retain: Duration::from_secs(7 * 24 * 3600),
            max_batch_bytes: 8 << 20,
            segment_bytes: 64 << 20,
            drained_segment_bytes: 1 << 20,
            journal_compact_bytes: 16 << 20,
            reserve_bytes: 4 << 20,
        }
    }
}

/// Counts the spool can report for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Messages with at least one recipient not final.
    pub queued: usize,
    /// Of those, leased to a delivery worker right now.
    pub in_flight: usize,
    /// Damaged records found in the segments and the journal at start and
    /// moved to `corrupt/`.
    pub damaged: usize,
    /// Messages not final over every relay sharing the spool (a shared
    /// spool only).
    pub shared_queued: Option<usize>,
}

/// The storage side of the relay, so that a distributed queue can take the
/// place of [`FsSpool`] later.
pub trait Spool: Send + Sync + 'static {
    /// Stores a message durably; resolves only once it would survive a crash.
    fn accept(&self, sub: Submission) -> BoxFuture<'_, Result<Accepted, SpoolError>>;

    /// The state of each recipient of a known message, or `None` if unknown.
    /// (Asynchronous: a shared spool reads it from the database, where any
    /// relay may have changed it.)
    fn status<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<Vec<RcptStatus>>, SpoolError>>;

    /// Waits until a message is due for delivery and leases it; `None` once
    /// the spool is shutting down.
    fn next(&self) -> BoxFuture<'_, Option<Lease>>;

    /// Records the outcome of an attempt (one entry per leased recipient),
    /// durably, then publishes one [`Event`] per recipient.
    fn settle(
        &self,
        lease: Lease,
        outcomes: Vec<(String, Outcome)>,
    ) -> BoxFuture<'_, Result<(), SpoolError>>;

    /// A receiver of every event this process publishes from now on (the
    /// outcomes it settles and the reports it records): what its metrics
    /// count and its webhooks send, so that N relays sharing a spool send
    /// each event once.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event>;

    /// A receiver of every event of every process sharing this spool, from
    /// now on: what clients connected to this process hear. The same as
    /// [`Spool::subscribe`] for a spool one process owns.
    fn subscribe_all(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.subscribe()
    }

    /// Current queue depth.
    fn depth(&self) -> Depth;

    /// Whether the spool's storage answered the last time it was used
    /// (`Err` with why not): `/readyz` says 503 meanwhile. A local spool
    /// always is.
    fn usable(&self) -> Result<(), String> {
        Ok(())
    }

    /// Stops handing out leases: pending and future [`Spool::next`] calls
    /// return `None`. Stored messages stay stored.
    fn close(&self);

    /// The first known message whose key `matches` (used to find the message
    /// a bounce's VERP address names). A spool that cannot search finds none.
    fn find<'a>(
        &'a self,
        matches: &'a (dyn Fn(&Key) -> bool + Send + Sync),
    ) -> BoxFuture<'a, Result<Option<Key>, SpoolError>> {
        let _ = matches;
        Box::pin(async { Ok(None) })
    }

    /// Renews the lease of an attempt still running (a shared spool's lease
    /// expires so that another relay can take over from a dead one); `false`
    /// when the lease was lost meanwhile (the attempt's outcome will be
    /// refused). A spool whose leases never expire has nothing to renew.
    fn renew<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<bool, SpoolError>> {
        let _ = lease;
        Box::pin(async { Ok(true) })
    }

    /// How often [`Spool::renew`] should be called while an attempt runs
    /// (`None`: never).
    fn renew_every(&self) -> Option<Duration> {
        None
    }

    /// Records, durably, a report that came back for recipient `rcpt` of a
    /// delivered message (`state` is [`RcptState::Bounced`] or
    /// [`RcptState::Complained`]), then publishes its [`Event`]. Resolves to
    /// `false` when the message or recipient is unknown, or the recipient was
    /// not delivered (nothing recorded).
    fn report(
        &self,
        key: Key,
        rcpt: String,
        state: RcptState,
    ) -> BoxFuture<'_, Result<bool, SpoolError>> {
        let _ = (key, rcpt, state);
        Box::pin(async { Ok(false) })
    }

    /// Every message known to the spool and not deleted, in no particular
    /// order, without their history (empty; [`Spool::message`] has it). A
    /// spool that cannot list returns none.
    fn messages(&self) -> BoxFuture<'_, Result<Vec<MessageView>, SpoolError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// One message, as [`Spool::messages`] shows it, with its history.
    fn message<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<MessageView>, SpoolError>> {
        let _ = key;
        Box::pin(async { Ok(None) })
    }

    /// The stored bytes of a message, `None` once they are gone (every
    /// recipient final) or when the message is unknown.
    fn message_bytes<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SpoolError>> {
        let _ = key;
        Box::pin(async { Ok(None) })
    }

    /// Applies an operator's action to a message (see [`Control`]).
    fn control(&self, key: Key, action: Control) -> BoxFuture<'_, Result<Controlled, SpoolError>> {
        let _ = (key, action);
        Box::pin(async { Ok(Controlled::Unsupported) })
    }

    /// The delivery, bounce and complaint events this process published
    /// with [`Event::at_ms`] at or after `since_ms`, rebuilt from the
    /// spool's durable record (oldest first per message): what a consumer
    /// that lost its place reads again (the webhook outbox after a crash
    /// between a commit and its own write, or after falling behind). A
    /// rebuilt `deferred` event carries the message's current next attempt
    /// as its retry time. `None`: this spool keeps no such record of this
    /// process's events.
    fn events_since(&self, since_ms: u64) -> BoxFuture<'_, Result<Option<Vec<Event>>, SpoolError>> {
        let _ = since_ms;
        Box::pin(async { Ok(None) })
    }
}

/// An operator's action on one message ([`Spool::control`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Every recipient not final is due now (a held message stays held).
    Retry,
    /// Not leased again until released (durable: survives a restart); an
    /// attempt in flight finishes.
    Hold,
    /// Undoes [`Control::Hold`]; the message is due now.
    Release,
    /// Every recipient not final becomes final `Failed` with this reason,
    /// published as events like any failure. Refused while an attempt is
    /// in flight.
    Cancel(String),
    /// Forgets the message for the operator (it is no longer listed; its
    /// key stays known for idempotency until its retention ends). Only when
    /// every recipient is final.
    Delete,
}

/// Answer of [`Spool::control`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Controlled {
    /// Done (durably, for hold, release, cancel and delete).
    Done,
    /// No such message (or it was deleted).
    NotFound,
    /// The action does not apply to the message in its state; why.
    Conflict(String),
    /// This spool does not support operator actions.
    Unsupported,
}

/// One recipient's state change, for a message's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    /// The recipient.
    pub rcpt: String,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// Its new state.
    pub state: RcptState,
}

/// A spooled message as the operator sees it ([`Spool::messages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    /// Its key.
    pub key: Key,
    /// Envelope sender (empty once only the journal knows the message).
    pub mail_from: String,
    /// When it was accepted (ms since the Unix epoch).
    pub received_ms: u64,
    /// Size of the message bytes (0 once they are gone).
    pub size: u64,
    /// Held by an operator.
    pub held: bool,
    /// Leased to a delivery worker right now.
    pub in_flight: bool,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due, if one will be made (not held, not final).
    pub next_attempt_ms: Option<u64>,
    /// Every recipient and its state.
    pub rcpts: Vec<RcptStatus>,
    /// State changes, oldest first (the last 64 per message; kept in the
    /// journal, so they survive a restart).
    pub history: Vec<HistoryItem>,
}

/// Errors of the spool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A file operation failed; nothing was acknowledged.
    #[error("spool I/O error while {doing} {path}: {source}")]
    Io {
        /// What the spool was doing.
        doing: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Another process holds the spool's lock.
    #[error("the spool at {0} is in use by another process")]
    Locked(std::path::PathBuf),
    /// The spool's writer has stopped (after a fatal error or at shutdown).
    #[error("the spool is closed")]
    Closed,
    /// The message could not be written durably (a full disk, an I/O
    /// error); it was not acknowledged and may be submitted again.
    #[error("message not stored: {0}")]
    NotStored(String),
    /// A record could not be encoded (should not happen for valid input).
    #[error("cannot encode spool record: {0}")]
    Encode(String),
    /// The lease does not match a message that is in the spool.
    #[error("unknown lease for message {0:?}")]
    UnknownLease(Key),
    /// The lease lapsed and another attempt holds the message now: this
    /// attempt's outcome was not recorded (the newer attempt's will be).
    #[error("lease lost for message {0:?}: its outcome was refused (another attempt holds it)")]
    LeaseLost(Key),
    /// The spool database failed or is unreachable.
    #[error("spool database: {0}")]
    Database(String),
}
