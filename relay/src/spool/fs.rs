//! [`FsSpool`]: the filesystem implementation of [`Spool`], with its writer
//! thread (group commit), its in-memory index and its recovery. The design,
//! invariants and layout are in the parent module's documentation.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use tokio::sync::{Notify, broadcast, oneshot};

use super::disk::{Disk, StdDisk};
use super::record::{self, Kind, RecordError, Settle};
use super::{
    Accepted, Control, Controlled, Depth, Event, EventKind, HistoryItem, Key, Lease, MessageView,
    Outcome, RcptState, RcptStatus, Spool, SpoolError, SpoolOptions, Submission,
};

const JOURNAL: &str = "journal.log";
const BATCHES: &str = "batches";
const CORRUPT: &str = "corrupt";
/// A file of zeros kept beside the journal (`SpoolOptions::reserve_bytes`).
/// When the disk is full, it is removed so that delivery outcomes can still
/// be journaled: only then can finished segments be removed and their space
/// come back. Without it a full disk never recovers (issue 18): the journal
/// append fails, so nothing becomes final, so no segment is freed.
const RESERVE: &str = "reserve";
const MAX_GROUP: usize = 4096;
/// Most state changes kept per message for the operator's view.
const MAX_HISTORY: usize = 64;

/// What recovery learns of a key from the journal: its recipients' states,
/// the time of its last record, whether it is done, and its history.
type Settled = (Vec<RcptStatus>, u64, bool, Vec<HistoryItem>);

/// Appends a state change to `history`, keeping the last [`MAX_HISTORY`]
/// (a `queued` state is no change worth showing).
fn push_history(history: &mut Vec<HistoryItem>, rcpt: &str, at_ms: u64, state: &RcptState) {
    if *state == RcptState::Queued {
        return;
    }
    if history.len() >= MAX_HISTORY {
        history.remove(0);
    }
    history.push(HistoryItem {
        rcpt: rcpt.to_string(),
        at_ms,
        state: state.clone(),
    });
}
/// Threads appending groups of messages in parallel, each to its own segment.
const BATCH_WRITERS: usize = 2;

/// Milliseconds since the Unix epoch, from the system clock.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where the bytes of a message are: a batch file, an offset and a length.
#[derive(Debug, Clone, Copy)]
struct Body {
    batch: u64,
    offset: u64,
    len: usize,
}

#[derive(Debug)]
struct Entry {
    rcpts: Vec<RcptStatus>,
    mail_from: String,
    /// The envelope's DSN request (boxed: most messages have none).
    dsn: Option<Box<postwire_core::envelope::Dsn>>,
    require_tls: bool,
    received_ms: u64,
    /// `None` once every recipient is final.
    body: Option<Body>,
    attempts: u32,
    due_ms: u64,
    leased: bool,
    final_at_ms: Option<u64>,
    /// Size of the message bytes (0 when only the journal knew it).
    size: u64,
    /// Held by an operator: never leased until released.
    held: bool,
    /// Deleted by an operator: not listed, key still known.
    deleted: bool,
    /// An operator's cancel is being journaled: not leased meanwhile.
    cancelling: bool,
    /// State changes seen by this process (see [`MessageView::history`]).
    history: Vec<HistoryItem>,
}

impl Entry {
    fn is_final(&self) -> bool {
        self.rcpts.iter().all(|r| r.state.is_final())
    }

    fn new(rcpts: Vec<RcptStatus>, mail_from: String, received_ms: u64) -> Self {
        Entry {
            rcpts,
            mail_from,
            dsn: None,
            require_tls: false,
            received_ms,
            body: None,
            attempts: 0,
            due_ms: 0,
            leased: false,
            final_at_ms: None,
            size: 0,
            held: false,
            deleted: false,
            cancelling: false,
            history: Vec::new(),
        }
    }

    fn record(&mut self, rcpt: &str, at_ms: u64, state: &RcptState) {
        if self.history.len() >= MAX_HISTORY {
            self.history.remove(0);
        }
        self.history.push(HistoryItem {
            rcpt: rcpt.to_string(),
            at_ms,
            state: state.clone(),
        });
    }

    fn view(&self, key: &Key) -> MessageView {
        let mut v = self.view_without_history(key);
        v.history = self.history.clone();
        v
    }

    fn view_without_history(&self, key: &Key) -> MessageView {
        let final_ = self.is_final();
        MessageView {
            key: key.clone(),
            mail_from: self.mail_from.clone(),
            received_ms: self.received_ms,
            size: self.size,
            held: self.held,
            in_flight: self.leased,
            attempts: self.attempts,
            next_attempt_ms: (!final_ && !self.held && !self.leased).then_some(self.due_ms),
            rcpts: self.rcpts.clone(),
            history: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// Due time, tie-breaker, key. Stale items (entry leased, final or
    /// rescheduled) are skipped when popped.
    heap: BinaryHeap<Reverse<(u64, u64, Key)>>,
    seq: u64,
    /// Live (not final) messages per segment file.
    batch_live: HashMap<u64, usize>,
    /// Segments a writer is appending to: never removed, even with no live
    /// message, until the writer moves on.
    active: HashSet<u64>,
    next_batch: u64,
    queued: usize,
    in_flight: usize,
    /// Records found damaged (and moved to `corrupt/`) at start.
    damaged: usize,
    /// Keys in a group commit right now, with the replies of duplicates
    /// that arrived meanwhile.
    in_commit: HashMap<Key, Vec<oneshot::Sender<Result<Accepted, SpoolError>>>>,
}

impl State {
    fn schedule(&mut self, key: Key, due_ms: u64) {
        self.seq += 1;
        self.heap.push(Reverse((due_ms, self.seq, key)));
    }
}

/// A message to store, and where to answer.
type AcceptJob = (Submission, oneshot::Sender<Result<Accepted, SpoolError>>);
/// An outcome to record, and where to answer.
type SettleJob = (Settle, oneshot::Sender<Result<(), SpoolError>>);

struct Inner {
    batches: PathBuf,
    journal: PathBuf,
    /// The directory of the journal and the reserve file.
    dir: PathBuf,
    /// The reserve file is in place (see [`RESERVE`]).
    reserve_held: AtomicBool,
    disk: Arc<dyn Disk>,
    opts: SpoolOptions,
    state: Mutex<State>,
    notify: Notify,
    events: broadcast::Sender<Event>,
    closed: AtomicBool,
    _lock: std::fs::File,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug in this module; the
        // index stays usable (every update is a plain assignment).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn batch_path(&self, n: u64) -> PathBuf {
        self.batches.join(batch_name(n))
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1).min(30))
            .unwrap_or(u32::MAX);
        self.opts
            .retry_initial
            .saturating_mul(factor)
            .min(self.opts.retry_max)
    }
}

fn batch_name(n: u64) -> String {
    format!("{n:020}.batch")
}

/// The filesystem spool. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct FsSpool {
    inner: Arc<Inner>,
    accepts: mpsc::Sender<AcceptJob>,
    settles: mpsc::Sender<SettleJob>,
}

impl std::fmt::Debug for FsSpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsSpool")
            .field("batches", &self.inner.batches)
            .finish_non_exhaustive()
    }
}

fn io_err<'a>(
    doing: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        doing,
        path: path.to_path_buf(),
        source,
    }
}

impl FsSpool {
    /// Opens (creating if needed) the spool in `dir`, recovers it, and starts
    /// its writer thread.
    pub fn open(dir: &Path, opts: SpoolOptions) -> Result<Self, SpoolError> {
        Self::open_with_disk(dir, opts, Arc::new(StdDisk::default()))
    }

    /// As [`FsSpool::open`], with a given [`Disk`] (for tests).
    pub fn open_with_disk(
        dir: &Path,
        opts: SpoolOptions,
        disk: Arc<dyn Disk>,
    ) -> Result<Self, SpoolError> {
        let batches = dir.join(BATCHES);
        for d in [dir.to_path_buf(), batches.clone(), dir.join(CORRUPT)] {
            std::fs::create_dir_all(&d).map_err(io_err("creating", &d))?;
        }
        let lock_path = dir.join("LOCK");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("opening", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::Locked(dir.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err("locking", &lock_path)(e)),
        }
        let (events, _) = broadcast::channel(1 << 16);
        let inner = Arc::new(Inner {
            batches,
            journal: dir.join(JOURNAL),
            dir: dir.to_path_buf(),
            reserve_held: AtomicBool::new(false),
            disk,
            opts,
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            events,
            closed: AtomicBool::new(false),
            _lock: lock,
        });
        let (state, journal_len) = recover(&inner, dir)?;
        *inner.lock() = state;
        take_reserve(&inner);
        // Two writers, so that recording outcomes never waits behind storing
        // new messages (and the other way round): each commits its own file.
        // Batch writers run in parallel: a group does not wait for the fsyncs
        // of the group before it, which halves the accept latency under load.
        let (accepts, rx) = mpsc::channel::<AcceptJob>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..BATCH_WRITERS {
            let writer = Arc::clone(&inner);
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("spool-batches-{i}"))
                .spawn(move || {
                    let segment = std::cell::RefCell::new(None);
                    group_loop(
                        &rx,
                        |job| job.0.bytes.len(),
                        writer.opts.max_batch_bytes,
                        |g| commit_accepts(&writer, &mut segment.borrow_mut(), g),
                        || retire_drained(&writer, &mut segment.borrow_mut()),
                    );
                    if let Some(seg) = segment.into_inner() {
                        retire(&writer, seg.n);
                    }
                })
                .map_err(io_err("starting a batch writer thread for", dir))?;
        }
        let (settles, rx) = mpsc::channel::<SettleJob>();
        let rx = Mutex::new(rx);
        let writer = Arc::clone(&inner);
        std::thread::Builder::new()
            .name("spool-journal".into())
            .spawn(move || {
                let mut size = JournalSize {
                    len: journal_len,
                    compacted: journal_len,
                    dirty: false,
                };
                group_loop(
                    &rx,
                    |_| 0,
                    usize::MAX,
                    |g| commit_settles(&writer, &mut size, g),
                    || {},
                )
            })
            .map_err(io_err("starting the journal writer thread for", dir))?;
        Ok(FsSpool {
            inner,
            accepts,
            settles,
        })
    }
}

impl FsSpool {
    /// The state of each recipient of a known message, or `None` if unknown.
    pub fn status(&self, key: &Key) -> Option<Vec<RcptStatus>> {
        self.inner.lock().entries.get(key).map(|e| e.rcpts.clone())
    }

    /// The first known message whose key `matches`.
    pub fn find(&self, matches: &mut dyn FnMut(&Key) -> bool) -> Option<Key> {
        // The predicate may be costly (a keyed hash per key): not under the lock.
        let keys: Vec<Key> = self.inner.lock().entries.keys().cloned().collect();
        keys.into_iter().find(|k| matches(k))
    }

    /// Every message not deleted, without history.
    pub fn messages(&self) -> Vec<MessageView> {
        let s = self.inner.lock();
        s.entries
            .iter()
            .filter(|(_, e)| !e.deleted)
            .map(|(k, e)| {
                // Lists leave the history out (see the trait).
                e.view_without_history(k)
            })
            .collect()
    }

    /// The events of every message's history at or after `since_ms` (see
    /// [`Spool::events_since`]); the history is in the journal, so this
    /// holds across restarts (the last [`MAX_HISTORY`] changes per message).
    pub fn events_since(&self, since_ms: u64) -> Vec<Event> {
        let s = self.inner.lock();
        let mut out = Vec::new();
        for (key, e) in s.entries.iter().filter(|(_, e)| !e.deleted) {
            let first = out.len();
            let newest = e.history.len().saturating_sub(1);
            for (i, h) in e.history.iter().enumerate() {
                if h.at_ms < since_ms {
                    continue;
                }
                // Known for the newest change only: the next attempt.
                let retry_at = if i == newest && !e.is_final() {
                    e.due_ms
                } else {
                    h.at_ms
                };
                let Some(kind) = EventKind::of_state(&h.state, retry_at) else {
                    continue;
                };
                out.push(Event {
                    key: key.clone(),
                    rcpt: h.rcpt.clone(),
                    kind,
                    last: false,
                    at_ms: h.at_ms,
                });
            }
            // As published: `last` on the last delivery outcome of the
            // change that made the message final.
            if let Some(done) = e.final_at_ms
                && let Some(ev) = out[first..].iter_mut().rev().find(|ev| {
                    ev.at_ms == done
                        && matches!(
                            ev.kind,
                            EventKind::Delivered { .. } | EventKind::Failed { .. }
                        )
                })
            {
                ev.last = true;
            }
        }
        out
    }

    /// One message with its history.
    pub fn message(&self, key: &Key) -> Option<MessageView> {
        let s = self.inner.lock();
        s.entries
            .get(key)
            .filter(|e| !e.deleted)
            .map(|e| e.view(key))
    }

    /// The stored bytes of a message.
    pub fn message_bytes(&self, key: &Key) -> Result<Option<Vec<u8>>, SpoolError> {
        let body = {
            let s = self.inner.lock();
            match s.entries.get(key) {
                Some(e) if !e.deleted => e.body,
                _ => None,
            }
        };
        let Some(body) = body else { return Ok(None) };
        let path = self.inner.batch_path(body.batch);
        match self.inner.disk.read_at(&path, body.offset, body.len) {
            Ok(bytes) => Ok(Some(bytes)),
            // Delivered and its segment removed meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading", &path)(e)),
        }
    }
}

impl Spool for FsSpool {
    fn accept(&self, sub: Submission) -> BoxFuture<'_, Result<Accepted, SpoolError>> {
        Box::pin(async move {
            if self.inner.lock().entries.contains_key(&sub.meta.key) {
                return Ok(Accepted::Duplicate);
            }
            let (tx, rx) = oneshot::channel();
            self.accepts
                .send((sub, tx))
                .map_err(|_| SpoolError::Closed)?;
            rx.await.map_err(|_| SpoolError::Closed)?
        })
    }

    fn status<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<Vec<RcptStatus>>, SpoolError>> {
        let r = FsSpool::status(self, key);
        Box::pin(async move { Ok(r) })
    }

    fn next(&self) -> BoxFuture<'_, Option<Lease>> {
        Box::pin(async move {
            loop {
                let notified = self.inner.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.inner.closed.load(Ordering::SeqCst) {
                    return None;
                }
                let (lease, wait) = self.try_lease();
                if let Some(lease) = lease {
                    return Some(lease);
                }
                let wait = wait.unwrap_or(Duration::from_secs(3600));
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
        })
    }

    fn settle(
        &self,
        lease: Lease,
        outcomes: Vec<(String, Outcome)>,
    ) -> BoxFuture<'_, Result<(), SpoolError>> {
        Box::pin(async move {
            let settle = self.plan_settle(&lease, outcomes)?;
            let (tx, rx) = oneshot::channel();
            self.settles
                .send((settle, tx))
                .map_err(|_| SpoolError::Closed)?;
            rx.await.map_err(|_| SpoolError::Closed)?
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    fn depth(&self) -> Depth {
        let s = self.inner.lock();
        Depth {
            queued: s.queued,
            in_flight: s.in_flight,
            damaged: s.damaged,
            shared_queued: None,
        }
    }

    fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    fn find<'a>(
        &'a self,
        matches: &'a (dyn Fn(&Key) -> bool + Send + Sync),
    ) -> BoxFuture<'a, Result<Option<Key>, SpoolError>> {
        let r = FsSpool::find(self, &mut |k| matches(k));
        Box::pin(async move { Ok(r) })
    }

    fn messages(&self) -> BoxFuture<'_, Result<Vec<MessageView>, SpoolError>> {
        let r = FsSpool::messages(self);
        Box::pin(async move { Ok(r) })
    }

    fn message<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<MessageView>, SpoolError>> {
        let r = FsSpool::message(self, key);
        Box::pin(async move { Ok(r) })
    }

    fn events_since(&self, since_ms: u64) -> BoxFuture<'_, Result<Option<Vec<Event>>, SpoolError>> {
        let r = FsSpool::events_since(self, since_ms);
        Box::pin(async move { Ok(Some(r)) })
    }

    fn message_bytes<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SpoolError>> {
        let r = FsSpool::message_bytes(self, key);
        Box::pin(async move { r })
    }

    fn control(&self, key: Key, action: Control) -> BoxFuture<'_, Result<Controlled, SpoolError>> {
        Box::pin(async move {
            let settle = match self.plan_control(&key, &action) {
                Ok(Some(settle)) => settle,
                Ok(None) => return Ok(Controlled::Done),
                Err(answer) => return Ok(answer),
            };
            let (tx, rx) = oneshot::channel();
            if self.settles.send((settle, tx)).is_err() {
                if let Some(e) = self.inner.lock().entries.get_mut(&key) {
                    e.cancelling = false;
                }
                return Err(SpoolError::Closed);
            }
            rx.await.map_err(|_| SpoolError::Closed)??;
            Ok(Controlled::Done)
        })
    }

    fn report(
        &self,
        key: Key,
        rcpt: String,
        state: RcptState,
    ) -> BoxFuture<'_, Result<bool, SpoolError>> {
        Box::pin(async move {
            if !state.is_report() {
                return Ok(false);
            }
            {
                let s = self.inner.lock();
                let Some(e) = s.entries.get(&key) else {
                    return Ok(false);
                };
                let Some(r) = e.rcpts.iter().find(|r| r.rcpt == rcpt) else {
                    return Ok(false);
                };
                if !matches!(r.state, RcptState::Delivered { .. }) && !r.state.is_report() {
                    return Ok(false);
                }
            }
            // Journalled like an attempt's outcome (a settle record whose
            // states are all reports: see `commit_settles`), so recovery and
            // compaction keep it with the message's status.
            let settle = Settle {
                key,
                rcpts: vec![RcptStatus { rcpt, state }],
                at_ms: now_ms(),
                done: true,
                held: None,
                deleted: false,
                control: false,
                history: Vec::new(),
            };
            let (tx, rx) = oneshot::channel();
            self.settles
                .send((settle, tx))
                .map_err(|_| SpoolError::Closed)?;
            rx.await.map_err(|_| SpoolError::Closed)??;
            Ok(true)
        })
    }
}

impl FsSpool {
    /// Checks an operator's action against the message's state and returns
    /// the journal record that makes it durable (`Ok(None)`: nothing to
    /// journal, the action is done).
    fn plan_control(&self, key: &Key, action: &Control) -> Result<Option<Settle>, Controlled> {
        let now = now_ms();
        let mut s = self.inner.lock();
        let Some(e) = s.entries.get_mut(key) else {
            return Err(Controlled::NotFound);
        };
        if e.deleted {
            return Err(Controlled::NotFound);
        }
        let final_ = e.is_final();
        let conflict = |m: &str| Err(Controlled::Conflict(m.to_string()));
        let mut settle = Settle {
            key: key.clone(),
            rcpts: Vec::new(),
            at_ms: now,
            done: final_,
            held: None,
            deleted: false,
            control: true,
            history: Vec::new(),
        };
        match action {
            Control::Retry => {
                if final_ {
                    return conflict("every recipient is final: nothing to retry");
                }
                if !e.leased {
                    e.due_ms = now;
                    s.schedule(key.clone(), now);
                    self.inner.notify.notify_waiters();
                }
                return Ok(None);
            }
            Control::Hold | Control::Release => {
                let hold = *action == Control::Hold;
                if final_ {
                    return conflict("every recipient is final");
                }
                if e.held == hold {
                    return Ok(None);
                }
                settle.held = Some(hold);
            }
            Control::Cancel(reason) => {
                if final_ {
                    return conflict("every recipient is final: nothing to cancel");
                }
                if e.leased {
                    return conflict(
                        "a delivery attempt is in flight; hold the message and cancel it once the attempt has finished",
                    );
                }
                if e.cancelling {
                    return conflict("the message is being cancelled");
                }
                e.cancelling = true;
                settle.rcpts = e
                    .rcpts
                    .iter()
                    .filter(|r| !r.state.is_final())
                    .map(|r| RcptStatus {
                        rcpt: r.rcpt.clone(),
                        state: RcptState::Failed {
                            reason: reason.clone(),
                        },
                    })
                    .collect();
                settle.done = true;
            }
            Control::Delete => {
                if !final_ {
                    return conflict("some recipients are not final: cancel the message first");
                }
                settle.deleted = true;
                settle.at_ms = e.final_at_ms.unwrap_or(now);
            }
        }
        Ok(Some(settle))
    }
}

/// A settle record that only records reports after delivery (bounces,
/// complaints): it changes no lease, attempt count or queue.
fn is_report(settle: &Settle) -> bool {
    !settle.rcpts.is_empty() && settle.rcpts.iter().all(|r| r.state.is_report())
}

impl FsSpool {
    /// Pops the first due message and leases it; otherwise says how long
    /// until the next one is due.
    fn try_lease(&self) -> (Option<Lease>, Option<Duration>) {
        let now = now_ms();
        let (key, body, lease) = {
            let mut s = self.inner.lock();
            loop {
                let Some(Reverse((due, _, _))) = s.heap.peek() else {
                    return (None, None);
                };
                if *due > now {
                    return (None, Some(Duration::from_millis(*due - now)));
                }
                let Some(Reverse((due, _, key))) = s.heap.pop() else {
                    return (None, None);
                };
                let Some(e) = s.entries.get_mut(&key) else {
                    continue;
                };
                if e.leased || e.held || e.cancelling || e.due_ms != due || e.is_final() {
                    continue;
                }
                let Some(body) = e.body else { continue };
                e.leased = true;
                let rcpt_to = e
                    .rcpts
                    .iter()
                    .filter(|r| !r.state.is_final())
                    .map(|r| r.rcpt.clone())
                    .collect();
                let lease = Lease {
                    key: key.clone(),
                    envelope: super::Envelope {
                        mail_from: e.mail_from.clone(),
                        rcpt_to,
                        dsn: e.dsn.as_deref().cloned(),
                        require_tls: e.require_tls,
                    },
                    bytes: Vec::new(),
                    attempts: e.attempts,
                    received_ms: e.received_ms,
                    fence: 0,
                };
                s.in_flight += 1;
                break (key, body, lease);
            }
        };
        let path = self.inner.batch_path(body.batch);
        match self.inner.disk.read_at(&path, body.offset, body.len) {
            Ok(bytes) => (Some(Lease { bytes, ..lease }), None),
            Err(e) => {
                // The bytes are gone or unreadable: fail the message loudly
                // rather than retrying a read that cannot succeed.
                tracing::error!(id = %key.id, token = %key.token, path = %path.display(), error = %e,
                    "cannot read a spooled message; reporting it failed");
                let outcomes = lease.fail_all(&format!("the spooled copy could not be read: {e}"));
                let this = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = this.settle(lease, outcomes).await {
                        tracing::error!(error = %e, "cannot record the failure of an unreadable message");
                    }
                });
                (None, Some(Duration::ZERO))
            }
        }
    }

    /// Turns an attempt's outcomes into the settle record to write.
    fn plan_settle(
        &self,
        lease: &Lease,
        outcomes: Vec<(String, Outcome)>,
    ) -> Result<Settle, SpoolError> {
        let now = now_ms();
        let s = self.inner.lock();
        let e = s
            .entries
            .get(&lease.key)
            .ok_or_else(|| SpoolError::UnknownLease(lease.key.clone()))?;
        let attempts = e.attempts + 1;
        let age = Duration::from_millis(now.saturating_sub(e.received_ms));
        let mut by_rcpt: HashMap<String, Outcome> = outcomes.into_iter().collect();
        let mut rcpts = Vec::new();
        for rcpt in &lease.envelope.rcpt_to {
            let outcome = by_rcpt.remove(rcpt).unwrap_or_else(|| {
                Outcome::Transient("the upstream reported no result for this recipient".into())
            });
            let state = match outcome {
                Outcome::Delivered(response) => RcptState::Delivered { response },
                Outcome::Permanent(reason) => RcptState::Failed { reason },
                Outcome::Transient(reason) if age >= self.inner.opts.max_age => RcptState::Failed {
                    reason: format!(
                        "gave up after {attempts} attempts over {}s: {reason}",
                        age.as_secs()
                    ),
                },
                Outcome::Transient(reason) => RcptState::Deferred { reason, attempts },
            };
            rcpts.push(RcptStatus {
                rcpt: rcpt.clone(),
                state,
            });
        }
        let done = e.rcpts.iter().all(|r| {
            r.state.is_final() || rcpts.iter().any(|n| n.rcpt == r.rcpt && n.state.is_final())
        });
        Ok(Settle {
            key: lease.key.clone(),
            rcpts,
            at_ms: now,
            done,
            held: None,
            deleted: false,
            control: false,
            history: Vec::new(),
        })
    }
}

/// How long a writer waits for work before it calls its `idle` step: a
/// batch writer then gives up a segment whose every message is final, so
/// that the space of delivered messages comes back when traffic stops, not
/// only once the segment is full (the soak benchmark, docs/perf.md).
const IDLE: Duration = Duration::from_secs(1);

/// A writer thread: takes every job queued while it was busy (up to
/// `max_bytes` as measured by `size`, and [`MAX_GROUP`] jobs) and commits them
/// as one group, with as few fsyncs as possible; after [`IDLE`] without a
/// job it runs `idle`.
fn group_loop<J>(
    rx: &Mutex<mpsc::Receiver<J>>,
    size: impl Fn(&J) -> usize,
    max_bytes: usize,
    mut commit: impl FnMut(Vec<J>),
    mut idle: impl FnMut(),
) {
    loop {
        let group = {
            // Writers sharing the receiver take turns gathering a group.
            let Ok(rx) = rx.lock() else { return };
            let first = match rx.recv_timeout(IDLE) {
                Ok(first) => Some(first),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let Some(first) = first else {
                drop(rx);
                idle();
                continue;
            };
            let mut bytes = size(&first);
            let mut group = vec![first];
            while bytes < max_bytes && group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => {
                        bytes += size(&job);
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        commit(group);
    }
}

/// The segment a batch writer appends to.
#[derive(Debug)]
struct Segment {
    n: u64,
    /// Bytes in the file, all of them durable.
    len: u64,
}

/// A writer is done with segment `n` (full, or its append failed): it becomes
/// an ordinary closed segment, removed as soon as it holds no live message.
fn retire(inner: &Inner, n: u64) {
    let path = inner.batch_path(n);
    inner.disk.close(&path);
    let unused = {
        let mut s = inner.lock();
        s.active.remove(&n);
        !s.batch_live.contains_key(&n)
    };
    if unused {
        match inner.disk.remove(&path) {
            // A segment taken but never written to (its group held only duplicates).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a finished segment");
            }
            Ok(()) => {}
        }
    }
}

/// An idle batch writer gives up its segment once every message in it is
/// final: the file goes now, instead of staying on disk with only delivered
/// messages in it until the writer fills it. The next group opens a new one.
fn retire_drained(inner: &Inner, segment: &mut Option<Segment>) {
    if let Some(seg) =
        segment.take_if(|seg| seg.len > 0 && !inner.lock().batch_live.contains_key(&seg.n))
    {
        retire(inner, seg.n);
    }
}

fn commit_accepts(inner: &Inner, segment: &mut Option<Segment>, jobs: Vec<AcceptJob>) {
    type Reply = oneshot::Sender<Result<Accepted, SpoolError>>;
    // A full segment is retired before the group, so that a group never
    // straddles two files; so is a drained one (every message in it final)
    // past `drained_segment_bytes`, so that its space comes back now rather
    // than once it is full (issue 18: a small disk filled with delivered
    // messages in the writers' segments).
    if let Some(seg) = segment.take_if(|seg| {
        seg.len >= inner.opts.segment_bytes
            || (seg.len >= inner.opts.drained_segment_bytes
                && !inner.lock().batch_live.contains_key(&seg.n))
    }) {
        retire(inner, seg.n);
    }
    // Under the lock: open a segment if needed, answer keys already stored,
    // and reserve the others. A key another writer is committing right now
    // waits for that commit: its duplicate is confirmed only once the
    // original is durable (or fails with it).
    let mut mine: Vec<(Submission, Reply)> = Vec::new();
    {
        let mut s = inner.lock();
        if segment.is_none() {
            let n = s.next_batch;
            s.next_batch += 1;
            s.active.insert(n);
            *segment = Some(Segment { n, len: 0 });
        }
        for (sub, tx) in jobs {
            if s.entries.contains_key(&sub.meta.key) {
                let _ = tx.send(Ok(Accepted::Duplicate));
            } else if let Some(waiters) = s.in_commit.get_mut(&sub.meta.key) {
                waiters.push(tx);
            } else {
                s.in_commit.insert(sub.meta.key.clone(), Vec::new());
                mine.push((sub, tx));
            }
        }
    }
    let Some(seg) = segment.as_mut() else {
        return;
    };
    if mine.is_empty() {
        return;
    }
    let batch = seg.n;
    let base = seg.len;
    let mut buf = Vec::new();
    let mut bodies: Vec<Result<Body, String>> = Vec::with_capacity(mine.len());
    for (sub, _) in &mine {
        let start = buf.len();
        match record::encode_message(&mut buf, &sub.meta, &sub.bytes) {
            Ok(()) => {
                let len = sub.bytes.len();
                bodies.push(Ok(Body {
                    batch,
                    offset: base + (buf.len() - len) as u64,
                    len,
                }));
            }
            Err(e) => {
                buf.truncate(start);
                tracing::error!(error = %e, "cannot encode a message record");
                bodies.push(Err(e.to_string()));
            }
        }
    }
    // One append and one fdatasync for the whole group.
    let written = if bodies.iter().any(Result::is_ok) {
        inner
            .disk
            .append_sync(&inner.batch_path(batch), &buf)
            .map_err(io_err("appending to", &inner.batch_path(batch)))
    } else {
        Ok(())
    };
    match &written {
        Ok(()) => seg.len += buf.len() as u64,
        Err(e) => {
            tracing::error!(error = %e, segment = batch,
                "group commit failed; nothing in it was acknowledged; moving on to a new segment");
            // After a failed write or sync nothing is known of the file's
            // tail: never append to it again. What of the group did reach
            // the file is cut off (cutting needs no space), so that a restart
            // never finds a whole record of a message that was refused and
            // delivers it (a full disk: the first records of a group written,
            // the rest not).
            if let Err(e) = inner.disk.truncate(&inner.batch_path(batch), base)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(error = %e, segment = batch,
                    "cannot cut the failed group off its segment; a restart may deliver some of its messages");
            }
            *segment = None;
        }
    }
    let now = now_ms();
    let mut s = inner.lock();
    let mut stored = 0usize;
    let mut answers = Vec::new();
    for ((sub, tx), body) in mine.into_iter().zip(bodies) {
        let key = sub.meta.key;
        let waiters = s.in_commit.remove(&key).unwrap_or_default();
        let ok = match (&written, body) {
            (Ok(()), Ok(body)) => {
                s.entries.insert(
                    key.clone(),
                    Entry {
                        rcpts: sub
                            .meta
                            .envelope
                            .rcpt_to
                            .into_iter()
                            .map(|rcpt| RcptStatus {
                                rcpt,
                                state: RcptState::Queued,
                            })
                            .collect(),
                        mail_from: sub.meta.envelope.mail_from,
                        dsn: sub.meta.envelope.dsn.map(Box::new),
                        require_tls: sub.meta.envelope.require_tls,
                        received_ms: sub.meta.received_ms,
                        body: Some(body),
                        attempts: 0,
                        due_ms: now,
                        leased: false,
                        final_at_ms: None,
                        size: body.len as u64,
                        held: false,
                        deleted: false,
                        cancelling: false,
                        history: Vec::new(),
                    },
                );
                s.schedule(key, now);
                s.queued += 1;
                stored += 1;
                Ok(())
            }
            (Err(e), _) => Err(NotStored::Io(e.to_string())),
            (Ok(()), Err(e)) => Err(NotStored::Encode(format!("not stored: {e}"))),
        };
        match ok {
            Ok(()) => {
                answers.push((tx, Ok(Accepted::Stored)));
                answers.extend(waiters.into_iter().map(|w| (w, Ok(Accepted::Duplicate))));
            }
            Err(why) => {
                answers.push((tx, Err(why.to_error())));
                answers.extend(waiters.into_iter().map(|w| (w, Err(why.to_error()))));
            }
        }
    }
    if stored > 0 {
        *s.batch_live.entry(batch).or_insert(0) += stored;
    }
    drop(s);
    if written.is_err() {
        retire(inner, batch);
    }
    for (tx, a) in answers {
        let _ = tx.send(a);
    }
    inner.notify.notify_waiters();
}

/// Why a message of a group was not stored.
#[derive(Debug, Clone)]
enum NotStored {
    /// The group's append or sync failed (a full disk, an I/O error).
    Io(String),
    /// Its record could not be encoded.
    Encode(String),
}

impl NotStored {
    fn to_error(&self) -> SpoolError {
        match self {
            NotStored::Io(e) => SpoolError::NotStored(e.clone()),
            NotStored::Encode(e) => SpoolError::Encode(e.clone()),
        }
    }
}

/// Writes the reserve file if it is not in place. A disk too full for it is
/// no error: the reserve is taken again once finished segments free space.
fn take_reserve(inner: &Inner) {
    if inner.opts.reserve_bytes == 0 || inner.reserve_held.load(Ordering::SeqCst) {
        return;
    }
    let zeros = vec![
        0u8;
        usize::try_from(inner.opts.reserve_bytes)
            .unwrap_or(usize::MAX)
            .min(64 << 20)
    ];
    match inner.disk.publish(&inner.dir, RESERVE, &zeros) {
        Ok(()) => inner.reserve_held.store(true, Ordering::SeqCst),
        Err(e) => {
            let _ = inner.disk.remove(&inner.dir.join(format!("{RESERVE}.tmp")));
            tracing::warn!(error = %e, bytes = zeros.len(),
                "cannot write the spool's disk reserve; will try again when space is freed");
        }
    }
}

/// Removes the reserve file so that a journal append can succeed on a full
/// disk. True if there was one to remove.
fn release_reserve(inner: &Inner) -> bool {
    if !inner.reserve_held.swap(false, Ordering::SeqCst) {
        return false;
    }
    match inner.disk.remove(&inner.dir.join(RESERVE)) {
        Ok(()) => {
            tracing::warn!(
                bytes = inner.opts.reserve_bytes,
                "the spool's disk is full: released its reserve so that delivery outcomes can be recorded and space freed"
            );
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot remove the spool's disk reserve");
            false
        }
    }
}

/// Size of the journal, for deciding when to compact it.
#[derive(Debug, Default)]
struct JournalSize {
    /// Bytes in the file now.
    len: u64,
    /// Bytes right after the last compaction.
    compacted: u64,
    /// An append failed: the file must be rewritten before the next one.
    dirty: bool,
}

fn commit_settles(
    inner: &Inner,
    size: &mut JournalSize,
    jobs: Vec<(Settle, oneshot::Sender<Result<(), SpoolError>>)>,
) {
    let mut buf = Vec::new();
    let mut encode_err = None;
    for (settle, _) in &jobs {
        if let Err(e) = record::encode_settle(&mut buf, settle) {
            encode_err = Some(e.to_string());
        }
    }
    let mut result = append_settles(inner, size, &buf, encode_err.clone());
    // A full disk: outcomes must still be recorded, or nothing ever becomes
    // final and no segment is ever freed. Release the reserve and try again.
    if matches!(result, Err(SpoolError::Io { .. })) && release_reserve(inner) {
        result = append_settles(inner, size, &buf, encode_err);
    }
    let now = now_ms();
    let mut s = inner.lock();
    if let Err(e) = result {
        tracing::error!(error = %e, "cannot record delivery outcomes; the messages will be tried again");
        let msg = e.to_string();
        for (settle, tx) in jobs {
            if is_report(&settle) || settle.control {
                if let Some(e) = s.entries.get_mut(&settle.key) {
                    e.cancelling = false;
                }
                let _ = tx.send(Err(SpoolError::Encode(format!(
                    "report not recorded: {msg}"
                ))));
                continue;
            }
            if let Some(e) = s.entries.get_mut(&settle.key) {
                e.leased = false;
                e.due_ms = now + inner.opts.retry_initial.as_millis() as u64;
                let due = e.due_ms;
                s.in_flight = s.in_flight.saturating_sub(1);
                s.schedule(settle.key.clone(), due);
            }
            let _ = tx.send(Err(SpoolError::Encode(format!(
                "outcome not recorded: {msg}"
            ))));
        }
        return;
    }
    let mut to_delete = Vec::new();
    let mut events = Vec::new();
    let mut replies = Vec::new();
    for (settle, tx) in jobs {
        if settle.control {
            apply_control(&mut s, settle, now, &mut events, &mut to_delete);
            replies.push((tx, Ok(())));
            continue;
        }
        let State { entries, .. } = &mut *s;
        let Some(e) = entries.get_mut(&settle.key) else {
            replies.push((tx, Err(SpoolError::UnknownLease(settle.key))));
            continue;
        };
        if is_report(&settle) && !settle.control {
            for new in settle.rcpts {
                if let Some(r) = e.rcpts.iter_mut().find(|r| r.rcpt == new.rcpt) {
                    r.state = new.state.clone();
                }
                e.record(&new.rcpt, settle.at_ms, &new.state);
                // A report publishes only what reports add.
                let kind = match EventKind::of_state(&new.state, 0) {
                    Some(k @ (EventKind::Bounced { .. } | EventKind::Complained { .. })) => k,
                    _ => continue,
                };
                events.push(Event {
                    key: settle.key.clone(),
                    rcpt: new.rcpt,
                    kind,
                    last: false,
                    at_ms: settle.at_ms,
                });
            }
            replies.push((tx, Ok(())));
            continue;
        }
        let mut retry_at = None;
        for new in &settle.rcpts {
            if let Some(r) = e.rcpts.iter_mut().find(|r| r.rcpt == new.rcpt) {
                r.state = new.state.clone();
            }
            e.record(&new.rcpt, settle.at_ms, &new.state);
        }
        e.attempts += 1;
        e.leased = false;
        let was_body = e.body;
        if e.is_final() {
            e.final_at_ms = Some(settle.at_ms);
            e.body = None;
            // Held while its last attempt was in flight: nothing left to hold.
            e.held = false;
        } else {
            let due = now + inner.backoff(e.attempts).as_millis() as u64;
            e.due_ms = due;
            retry_at = Some(due);
        }
        for new in settle.rcpts {
            let kind = match new.state {
                RcptState::Delivered { response } => EventKind::Delivered { response },
                RcptState::Failed { reason } => EventKind::Failed { reason },
                RcptState::Deferred { reason, attempts } => EventKind::Deferred {
                    reason,
                    attempts,
                    retry_at_ms: retry_at.unwrap_or(now),
                },
                RcptState::Queued | RcptState::Bounced { .. } | RcptState::Complained { .. } => {
                    continue;
                }
            };
            events.push(Event {
                key: settle.key.clone(),
                rcpt: new.rcpt,
                kind,
                last: false,
                at_ms: settle.at_ms,
            });
        }
        if retry_at.is_none()
            && let Some(ev) = events.last_mut()
            && ev.key == settle.key
        {
            ev.last = true;
        }
        s.in_flight = s.in_flight.saturating_sub(1);
        match retry_at {
            Some(due) => s.schedule(settle.key.clone(), due),
            None => {
                s.queued = s.queued.saturating_sub(1);
                if let Some(body) = was_body {
                    let live = s.batch_live.entry(body.batch).or_insert(1);
                    *live = live.saturating_sub(1);
                    if *live == 0 {
                        s.batch_live.remove(&body.batch);
                        if !s.active.contains(&body.batch) {
                            to_delete.push(body.batch);
                        }
                    }
                }
            }
        }
        replies.push((tx, Ok(())));
    }
    drop(s);
    // The journal says these segments are finished (fsynced above): remove them.
    let freed = !to_delete.is_empty();
    for batch in to_delete {
        let path = inner.batch_path(batch);
        if let Err(e) = inner.disk.remove(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a finished segment");
        }
    }
    if freed {
        take_reserve(inner);
    }
    for (tx, r) in replies {
        let _ = tx.send(r);
    }
    for ev in events {
        let _ = inner.events.send(ev);
    }
    inner.notify.notify_waiters();
    if size.len
        >= inner
            .opts
            .journal_compact_bytes
            .max(size.compacted.saturating_mul(4))
        && let Err(e) = compact_journal(inner, size)
    {
        tracing::error!(error = %e, "cannot compact the journal; keeping it as it is");
    }
}

/// Applies an operator's journaled action (see [`FsSpool::plan_control`])
/// to the index: hold, release, delete, or a cancel's failed recipients
/// (published as events; a message that becomes final frees its segment as
/// an attempt's outcome would).
fn apply_control(
    s: &mut State,
    settle: Settle,
    now: u64,
    events: &mut Vec<Event>,
    to_delete: &mut Vec<u64>,
) {
    let Some(e) = s.entries.get_mut(&settle.key) else {
        return;
    };
    e.cancelling = false;
    if settle.deleted {
        e.deleted = true;
    }
    let mut due = None;
    if let Some(held) = settle.held {
        e.held = held;
        if !held && !e.is_final() {
            e.due_ms = now;
            due = Some(now);
        }
    }
    let was_final = e.is_final();
    let first_event = events.len();
    for new in settle.rcpts {
        let Some(r) = e.rcpts.iter_mut().find(|r| r.rcpt == new.rcpt) else {
            continue;
        };
        if r.state.is_final() {
            continue;
        }
        r.state = new.state.clone();
        e.record(&new.rcpt, settle.at_ms, &new.state);
        if let RcptState::Failed { reason } = new.state {
            events.push(Event {
                key: settle.key.clone(),
                rcpt: new.rcpt,
                kind: EventKind::Failed { reason },
                last: false,
                at_ms: settle.at_ms,
            });
        }
    }
    let mut freed = None;
    if !was_final && e.is_final() {
        e.final_at_ms = Some(settle.at_ms);
        e.held = false;
        freed = e.body.take();
        if events.len() > first_event
            && let Some(ev) = events.last_mut()
        {
            ev.last = true;
        }
        s.queued = s.queued.saturating_sub(1);
    }
    if let Some(body) = freed {
        let live = s.batch_live.entry(body.batch).or_insert(1);
        *live = live.saturating_sub(1);
        if *live == 0 {
            s.batch_live.remove(&body.batch);
            if !s.active.contains(&body.batch) {
                to_delete.push(body.batch);
            }
        }
    }
    if let Some(due) = due {
        s.schedule(settle.key, due);
    }
}

/// One append of a group's settle records. After a failed append the
/// journal's tail is unknown (a torn record there would hide every later one
/// from recovery): it is rewritten from the index before anything more is
/// appended.
fn append_settles(
    inner: &Inner,
    size: &mut JournalSize,
    buf: &[u8],
    encode_err: Option<String>,
) -> Result<(), SpoolError> {
    let rewritten = if size.dirty {
        compact_journal(inner, size)
    } else {
        Ok(())
    };
    let result = match (rewritten, encode_err) {
        (Err(e), _) => Err(e),
        (Ok(()), Some(e)) => Err(SpoolError::Encode(e)),
        (Ok(()), None) => inner
            .disk
            .append_sync(&inner.journal, buf)
            .map_err(io_err("appending to", &inner.journal)),
    };
    match &result {
        Ok(()) => size.len += buf.len() as u64,
        Err(SpoolError::Io { .. }) => size.dirty = true,
        Err(_) => {}
    }
    result
}

/// Rewrites the journal while the relay runs: one record per known key, and
/// final keys past the retention window forgotten (in the file and in the
/// index). Runs on the journal's writer thread, between two groups, so no
/// append can interleave. The old journal stays in place until the new one
/// is durable (written, fsynced, renamed, directory fsynced).
fn compact_journal(inner: &Inner, size: &mut JournalSize) -> Result<(), SpoolError> {
    let now = now_ms();
    let snapshot = {
        let mut s = inner.lock();
        forget_expired(&mut s, now, &inner.opts);
        progress_records(&s, now)
    };
    let mut buf = Vec::new();
    for settle in &snapshot {
        if let Err(e) = record::encode_settle(&mut buf, settle) {
            // Not retried at every group: the next try is at four times the size.
            size.compacted = size.len;
            return Err(SpoolError::Encode(e.to_string()));
        }
    }
    let dir = inner.journal.parent().unwrap_or(Path::new("."));
    if let Err(e) = inner.disk.publish(dir, JOURNAL, &buf) {
        // The old journal is intact: the new one never replaced it.
        size.compacted = size.len;
        return Err(io_err("compacting", &inner.journal)(e));
    }
    tracing::info!(
        before = size.len,
        after = buf.len(),
        keys = snapshot.len(),
        "journal rewritten"
    );
    size.len = buf.len() as u64;
    size.compacted = size.len;
    size.dirty = false;
    Ok(())
}

/// Drops from the index the final messages whose retention has passed: their
/// ids are free again.
fn forget_expired(s: &mut State, now: u64, opts: &SpoolOptions) {
    let retain_ms = opts.retain.as_millis() as u64;
    s.entries.retain(|_, e| {
        !matches!(e.final_at_ms, Some(at) if e.is_final() && now.saturating_sub(at) > retain_ms)
    });
}

/// One settle record per key that has any progress to remember, sorted by key.
fn progress_records(s: &State, now: u64) -> Vec<Settle> {
    let mut keys: Vec<&Key> = s.entries.keys().collect();
    keys.sort();
    keys.into_iter()
        .filter_map(|key| {
            let e = s.entries.get(key)?;
            if e.rcpts.iter().all(|r| r.state == RcptState::Queued) && !e.held && !e.deleted {
                return None;
            }
            Some(Settle {
                key: key.clone(),
                rcpts: e.rcpts.clone(),
                at_ms: e.final_at_ms.unwrap_or(now),
                done: e.is_final(),
                held: e.held.then_some(true),
                deleted: e.deleted,
                control: false,
                history: e.history.clone(),
            })
        })
        .collect()
}

/// Reads the spool back after a restart (see "Recovery" in the module docs).
fn recover(inner: &Inner, dir: &Path) -> Result<(State, u64), SpoolError> {
    let disk = &inner.disk;
    let now = now_ms();
    // The reserve left by the last run is given up first: on a full disk
    // its space is what lets recovery rewrite the journal (and quarantine
    // damage) at all. It is written again once recovery is done, or later
    // as space comes back (issue 18: a relay killed on a full disk could not
    // start again, "No space left on device" while compacting the journal).
    match disk.remove(&inner.dir.join(RESERVE)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot remove the spool's disk reserve before recovery")
        }
    }
    for p in disk
        .list(&inner.batches)
        .map_err(io_err("listing", &inner.batches))?
    {
        if p.extension().is_some_and(|e| e == "tmp") {
            disk.remove(&p).map_err(io_err("removing", &p))?;
        }
    }
    // Records found damaged (moved to corrupt/), with the meta of the
    // message when it could still be read.
    let mut damaged: Vec<Option<super::MessageMeta>> = Vec::new();
    // 1. The journal; damaged records are skipped.
    let mut settled: HashMap<Key, Settled> = HashMap::new();
    // Operator flags per key: held (last record wins), deleted.
    let mut flags: HashMap<Key, (bool, bool)> = HashMap::new();
    let journal = match disk.read(&inner.journal) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("reading", &inner.journal)(e)),
    };
    let mut pos = 0;
    while pos < journal.len() {
        let parsed = record::decode(&journal[pos..]).and_then(|(rec, used)| {
            if rec.kind != Kind::Settle {
                return Err(RecordError::Payload(
                    "a message record in the journal".into(),
                ));
            }
            Ok((record::decode_settle(rec.payload)?, used))
        });
        match parsed {
            Ok((settle, used)) => {
                if settle.held.is_some() || settle.deleted {
                    let f = flags.entry(settle.key.clone()).or_default();
                    if let Some(h) = settle.held {
                        f.0 = h;
                    }
                    f.1 |= settle.deleted;
                }
                let slot = settled
                    .entry(settle.key.clone())
                    .or_insert_with(|| (Vec::new(), 0, false, Vec::new()));
                if settle.history.is_empty() {
                    for r in &settle.rcpts {
                        push_history(&mut slot.3, &r.rcpt, settle.at_ms, &r.state);
                    }
                } else {
                    // A compacted record: the history until then.
                    slot.3 = settle.history;
                }
                for r in settle.rcpts {
                    match slot.0.iter_mut().find(|x| x.rcpt == r.rcpt) {
                        Some(x) => x.state = r.state,
                        None => slot.0.push(r),
                    }
                }
                slot.1 = settle.at_ms;
                slot.2 = settle.done;
                pos += used;
            }
            Err(e) => {
                // Damage in the middle: the next record that reads well is
                // where the journal goes on; the bytes between are kept in
                // corrupt/. A bad record with nothing readable after it is a
                // torn tail (a crash mid-write) or damage at the end.
                let next = resync(&journal, pos, is_settle_record);
                let lost = next.unwrap_or(journal.len()) - pos;
                if next.is_none() && is_torn(&journal[pos..]) {
                    tracing::warn!(
                        offset = pos,
                        bytes = lost,
                        "journal ends in a torn record (crash mid-write); cutting it off"
                    );
                    break;
                }
                let name = format!("{JOURNAL}.damaged-{pos}");
                tracing::error!(offset = pos, bytes_lost = lost, error = %e,
                    kept_in = %dir.join(CORRUPT).join(&name).display(),
                    "journal record damaged; its bytes are moved to corrupt/ (messages it settled may be sent again)");
                inner
                    .disk
                    .publish(&dir.join(CORRUPT), &name, &journal[pos..pos + lost])
                    .map_err(io_err("quarantining", &inner.journal))?;
                damaged.push(None);
                match next {
                    Some(p) => pos = p,
                    None => break,
                }
            }
        }
    }

    // 2. The segments. Each is read up to its first bad record; what follows
    //    is a torn group (a crash mid-append: never acknowledged) or damage.
    let mut state = State::default();
    let mut max_batch = 0u64;
    let files = disk
        .list(&inner.batches)
        .map_err(io_err("listing", &inner.batches))?;
    for path in files {
        let Some(n) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".batch"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            tracing::warn!(path = %path.display(), "ignoring a file that is not a segment");
            continue;
        };
        max_batch = max_batch.max(n);
        let buf = disk.read(&path).map_err(io_err("reading", &path))?;
        let (mut good, mut end) = read_segment(&buf);
        while end < buf.len() {
            // A damaged record in the middle: the records after it are read
            // from the next one that decodes; the bytes between go to
            // corrupt/ (the segment is left as it is: it takes no new group).
            let Some(next) = resync(&buf, end, is_message_record) else {
                if let Some(meta) = cut_segment_tail(inner, dir, &path, &buf, end)? {
                    damaged.push(meta);
                }
                break;
            };
            damaged.push(quarantine(inner, dir, &path, &buf[end..next], end, None)?);
            let (more, used) = read_segment(&buf[next..]);
            good.extend(
                more.into_iter()
                    .map(|(meta, offset, len)| (meta, offset + next, len)),
            );
            end = next + used;
        }
        let mut live = 0usize;
        for (meta, offset, len) in good {
            if add_recovered(
                &mut state,
                &mut settled,
                meta,
                Some(Body {
                    batch: n,
                    offset: offset as u64,
                    len,
                }),
                now,
            ) {
                live += 1;
            }
        }
        if live == 0 {
            disk.remove(&path).map_err(io_err("removing", &path))?;
        } else {
            state.batch_live.insert(n, live);
        }
    }
    state.next_batch = max_batch + 1;

    // 3. Keys known only from the journal: final messages whose batch is gone.
    let retain_ms = inner.opts.retain.as_millis() as u64;
    for (key, (mut rcpts, at_ms, done, history)) in settled {
        if !done {
            tracing::error!(id = %key.id, token = %key.token,
                "a message with recipients still to deliver has no readable copy in the spool; reporting it failed");
            for r in &mut rcpts {
                if !r.state.is_final() {
                    r.state = RcptState::Failed {
                        reason: "the spooled copy was damaged on disk".into(),
                    };
                }
            }
        } else if now.saturating_sub(at_ms) > retain_ms {
            continue;
        }
        let mut entry = Entry::new(rcpts, String::new(), at_ms);
        entry.final_at_ms = Some(at_ms);
        entry.history = history;
        state.entries.insert(key, entry);
    }

    // 3b. Messages whose only copy was damaged: failed, so that a client
    //     asking for their status learns it (the journal may know them
    //     already from step 3).
    for meta in damaged.iter().flatten() {
        if state.entries.contains_key(&meta.key) {
            continue;
        }
        tracing::error!(id = %meta.key.id, token = %meta.key.token,
            "a message's spooled copy was damaged on disk; reporting it failed");
        let rcpts = meta
            .envelope
            .rcpt_to
            .iter()
            .map(|r| RcptStatus {
                rcpt: r.clone(),
                state: RcptState::Failed {
                    reason: "the spooled copy was damaged on disk".into(),
                },
            })
            .collect();
        let mut entry = Entry::new(rcpts, meta.envelope.mail_from.clone(), meta.received_ms);
        entry.final_at_ms = Some(now);
        state.entries.insert(meta.key.clone(), entry);
    }
    state.damaged = damaged.len();
    // 3c. Operator holds and deletions (journaled by `Spool::control`).
    for (key, (held, deleted)) in flags {
        if let Some(e) = state.entries.get_mut(&key) {
            e.held = held && !e.is_final();
            e.deleted = deleted;
        }
    }

    // 4. Compact the journal: one record per key with any progress.
    let mut buf = Vec::new();
    for settle in progress_records(&state, now) {
        record::encode_settle(&mut buf, &settle).map_err(|e| SpoolError::Encode(e.to_string()))?;
    }
    disk.publish(dir, JOURNAL, &buf)
        .map_err(io_err("compacting", &inner.journal))?;
    tracing::info!(
        queued = state.queued,
        known = state.entries.len(),
        "spool recovered"
    );
    Ok((state, buf.len() as u64))
}

/// A message record found in a segment: its meta, and where its bytes are.
type Found = (super::MessageMeta, usize, usize);

/// Reads a segment's records up to the first one that does not decode.
/// Returns them and the offset where the valid part ends.
fn read_segment(buf: &[u8]) -> (Vec<Found>, usize) {
    let mut pos = 0usize;
    let mut good = Vec::new();
    while pos < buf.len() {
        let parsed = record::decode(&buf[pos..]).and_then(|(rec, used)| {
            if rec.kind != Kind::Message {
                return Err(RecordError::Payload("a settle record in a segment".into()));
            }
            let (meta, body_at) = record::decode_message(rec.payload)?;
            Ok((
                meta,
                pos + record::HEADER_LEN + body_at,
                rec.payload.len() - body_at,
                used,
            ))
        });
        match parsed {
            Ok((meta, offset, len, used)) => {
                good.push((meta, offset, len));
                pos += used;
            }
            Err(_) => break,
        }
    }
    (good, pos)
}

/// Whether the bytes after a segment's last valid record are what a crash in
/// the middle of an append leaves: a record cut short, or zeros (the file grew
/// but its new blocks were never written).
fn is_torn(tail: &[u8]) -> bool {
    matches!(record::decode(tail), Err(RecordError::Truncated { .. }))
        || tail.iter().all(|&b| b == 0)
}

/// Cuts a segment at `end`, the end of its valid records (nothing readable
/// follows). A crash in the middle of an append leaves a torn record or zeros
/// there: that group was never acknowledged, and is dropped with a warning.
/// Anything else is damage: the bytes are copied to `corrupt/` for the
/// operator first, and the error is logged with the count of bytes lost.
/// Returns, for damage, the meta of the damaged message if still readable.
fn cut_segment_tail(
    inner: &Inner,
    dir: &Path,
    path: &Path,
    buf: &[u8],
    end: usize,
) -> Result<Option<Option<super::MessageMeta>>, SpoolError> {
    let tail = &buf[end..];
    let damaged = if is_torn(tail) {
        tracing::warn!(path = %path.display(), offset = end, bytes = tail.len(),
            "segment ends in a torn group (crash mid-append, never acknowledged); cutting it off");
        None
    } else {
        Some(quarantine(inner, dir, path, tail, end, Some("tail"))?)
    };
    inner
        .disk
        .truncate(path, end as u64)
        .map_err(io_err("cutting", path))?;
    Ok(damaged)
}

/// Copies damaged bytes of a segment (found at `offset`) to `corrupt/`, logs
/// the error, and returns the meta of the message they held when its header
/// and meta are still readable (the damage was in its body).
fn quarantine(
    inner: &Inner,
    dir: &Path,
    path: &Path,
    bytes: &[u8],
    offset: usize,
    what: Option<&str>,
) -> Result<Option<super::MessageMeta>, SpoolError> {
    let name = format!(
        "{}.{}-{offset}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("segment"),
        what.unwrap_or("damaged")
    );
    let error = record::decode(bytes).err().map(|e| e.to_string());
    let meta = damaged_meta(bytes);
    tracing::error!(path = %path.display(), offset, bytes_lost = bytes.len(),
        error = error.as_deref().unwrap_or("unreadable record"),
        id = meta.as_ref().map(|m| m.key.id.as_str()).unwrap_or("unknown"),
        kept_in = %dir.join(CORRUPT).join(&name).display(),
        "damaged segment record: the bytes are moved to corrupt/; the segment's other records are kept");
    inner
        .disk
        .publish(&dir.join(CORRUPT), &name, bytes)
        .map_err(io_err("quarantining", path))?;
    Ok(meta)
}

/// The meta of a message record whose checksum failed, when its header and
/// meta JSON are intact (the damage is in the message bytes).
fn damaged_meta(bytes: &[u8]) -> Option<super::MessageMeta> {
    let header = bytes.get(..record::HEADER_LEN)?;
    if header[..4] != record::MAGIC || header[4] != Kind::Message as u8 {
        return None;
    }
    let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
    let end = record::HEADER_LEN.saturating_add(len).min(bytes.len());
    record::decode_message(&bytes[record::HEADER_LEN..end])
        .ok()
        .map(|(meta, _)| meta)
}

/// The offset of the first record after `from` that reads well (`valid`),
/// if any: how reading goes on past a damaged record. When the damaged
/// record's header is intact (the damage is in its payload), the next
/// record is where its length says, and the payload is not searched: a
/// message's bytes may themselves hold something that looks like a record.
/// Otherwise the bytes are searched for the next `PWR1` that decodes.
fn resync(buf: &[u8], from: usize, valid: fn(&[u8]) -> bool) -> Option<usize> {
    if let Some(header) = buf.get(from..from + record::HEADER_LEN)
        && header[..4] == record::MAGIC
    {
        let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
        let next = from + record::HEADER_LEN + len;
        if next == buf.len() {
            return None;
        }
        if next < buf.len() && valid(&buf[next..]) {
            return Some(next);
        }
    }
    let mut at = from + 1;
    while at < buf.len() {
        let i = buf[at..]
            .windows(record::MAGIC.len())
            .position(|w| w == record::MAGIC)?;
        if valid(&buf[at + i..]) {
            return Some(at + i);
        }
        at += i + 1;
    }
    None
}

/// Whether `buf` starts with a whole, checksummed message record.
fn is_message_record(buf: &[u8]) -> bool {
    matches!(record::decode(buf), Ok((rec, _)) if rec.kind == Kind::Message
        && record::decode_message(rec.payload).is_ok())
}

/// Whether `buf` starts with a whole, checksummed settle record.
fn is_settle_record(buf: &[u8]) -> bool {
    matches!(record::decode(buf), Ok((rec, _)) if rec.kind == Kind::Settle
        && record::decode_settle(rec.payload).is_ok())
}

/// Adds a message found in a batch file to the index, merged with what the
/// journal says about it. Returns whether it is still live.
fn add_recovered(
    state: &mut State,
    settled: &mut HashMap<Key, Settled>,
    meta: super::MessageMeta,
    body: Option<Body>,
    now: u64,
) -> bool {
    if state.entries.contains_key(&meta.key) {
        tracing::warn!(id = %meta.key.id, token = %meta.key.token, "message stored twice in the spool; keeping the first copy");
        return false;
    }
    let mut rcpts: Vec<RcptStatus> = meta
        .envelope
        .rcpt_to
        .iter()
        .map(|r| RcptStatus {
            rcpt: r.clone(),
            state: RcptState::Queued,
        })
        .collect();
    let mut attempts = 0;
    let mut final_at = None;
    let mut history = Vec::new();
    if let Some((known, at_ms, _, recorded)) = settled.remove(&meta.key) {
        history = recorded;
        for k in known {
            if let RcptState::Deferred { attempts: a, .. } = &k.state {
                attempts = attempts.max(*a);
            }
            if let Some(r) = rcpts.iter_mut().find(|r| r.rcpt == k.rcpt) {
                r.state = k.state;
            }
        }
        final_at = Some(at_ms);
    }
    let is_final = rcpts.iter().all(|r| r.state.is_final());
    let key = meta.key;
    state.entries.insert(
        key.clone(),
        Entry {
            rcpts,
            mail_from: meta.envelope.mail_from,
            dsn: meta.envelope.dsn.map(Box::new),
            require_tls: meta.envelope.require_tls,
            received_ms: meta.received_ms,
            size: body.map_or(0, |b| b.len as u64),
            body: if is_final { None } else { body },
            attempts,
            due_ms: now,
            leased: false,
            final_at_ms: if is_final { final_at } else { None },
            held: false,
            deleted: false,
            cancelling: false,
            history,
        },
    );
    if !is_final {
        state.queued += 1;
        state.schedule(key, now);
    }
    !is_final
}

#[cfg(test)]
mod segment_tests {
    use super::*;
    use crate::spool::{Envelope, MessageMeta};

    fn meta(id: &str) -> MessageMeta {
        MessageMeta {
            key: Key {
                token: "t".into(),
                id: id.into(),
            },
            envelope: Envelope {
                mail_from: "a@example.com".into(),
                rcpt_to: vec!["b@x.org".into()],
                ..Envelope::default()
            },
            received_ms: 1,
        }
    }

    #[test]
    fn a_segment_cut_at_every_byte_reads_exactly_its_complete_records_and_the_rest_is_torn() {
        let mut full = Vec::new();
        let mut ends = Vec::new();
        for i in 0..3 {
            let body = format!("Subject: m{i}\r\n\r\nbody {i}\r\n");
            record::encode_message(&mut full, &meta(&format!("m{i}")), body.as_bytes()).unwrap();
            ends.push(full.len());
        }
        for cut in 0..=full.len() {
            let (good, end) = read_segment(&full[..cut]);
            let complete = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(good.len(), complete, "cut at {cut}");
            assert_eq!(end, if complete == 0 { 0 } else { ends[complete - 1] });
            for (i, (m, offset, len)) in good.iter().enumerate() {
                assert_eq!(m.key.id, format!("m{i}"));
                assert_eq!(
                    &full[*offset..offset + len],
                    format!("Subject: m{i}\r\n\r\nbody {i}\r\n").as_bytes()
                );
            }
            assert!(
                is_torn(&full[end..cut]),
                "cut at {cut}: a cut record is a torn tail"
            );
        }
    }

    #[test]
    fn zeros_are_torn_but_a_damaged_record_is_not() {
        assert!(is_torn(&[0; 4096]));
        let mut rec = Vec::new();
        record::encode_message(&mut rec, &meta("m"), b"x").unwrap();
        let n = rec.len();
        rec[n - 1] ^= 1;
        assert!(
            !is_torn(&rec),
            "a whole record with a bad checksum is damage"
        );
        let (good, end) = read_segment(&rec);
        assert!(good.is_empty());
        assert_eq!(end, 0);
    }
}
