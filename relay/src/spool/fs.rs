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
    Accepted, Depth, Event, EventKind, Key, Lease, Outcome, RcptState, RcptStatus, Spool,
    SpoolError, SpoolOptions, Submission,
};

const JOURNAL: &str = "journal.log";
const BATCHES: &str = "batches";
const CORRUPT: &str = "corrupt";
const MAX_GROUP: usize = 4096;

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
    received_ms: u64,
    /// `None` once every recipient is final.
    body: Option<Body>,
    attempts: u32,
    due_ms: u64,
    leased: bool,
    final_at_ms: Option<u64>,
}

impl Entry {
    fn is_final(&self) -> bool {
        self.rcpts.iter().all(|r| r.state.is_final())
    }
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// Due time, tie-breaker, key. Stale items (entry leased, final or
    /// rescheduled) are skipped when popped.
    heap: BinaryHeap<Reverse<(u64, u64, Key)>>,
    seq: u64,
    /// Live (not final) messages per batch file.
    batch_live: HashMap<u64, usize>,
    next_batch: u64,
    queued: usize,
    in_flight: usize,
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
            disk,
            opts,
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            events,
            closed: AtomicBool::new(false),
            _lock: lock,
        });
        let state = recover(&inner, dir)?;
        *inner.lock() = state;
        // Two writers, so that recording outcomes never waits behind storing
        // new messages (and the other way round): each commits its own file.
        let (accepts, rx) = mpsc::channel::<AcceptJob>();
        let writer = Arc::clone(&inner);
        std::thread::Builder::new()
            .name("spool-batches".into())
            .spawn(move || {
                group_loop(&rx, |job| job.0.bytes.len(), writer.opts.max_batch_bytes, |g| {
                    commit_accepts(&writer, g)
                })
            })
            .map_err(io_err("starting the batch writer thread for", dir))?;
        let (settles, rx) = mpsc::channel::<SettleJob>();
        let writer = Arc::clone(&inner);
        std::thread::Builder::new()
            .name("spool-journal".into())
            .spawn(move || group_loop(&rx, |_| 0, usize::MAX, |g| commit_settles(&writer, g)))
            .map_err(io_err("starting the journal writer thread for", dir))?;
        Ok(FsSpool { inner, accepts, settles })
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

    fn status(&self, key: &Key) -> Option<Vec<RcptStatus>> {
        self.inner.lock().entries.get(key).map(|e| e.rcpts.clone())
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
        }
    }

    fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }
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
                if e.leased || e.due_ms != due || e.is_final() {
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
                    },
                    bytes: Vec::new(),
                    attempts: e.attempts,
                    received_ms: e.received_ms,
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
                let reason = format!("the spooled copy could not be read: {e}");
                let outcomes = lease
                    .envelope
                    .rcpt_to
                    .iter()
                    .map(|r| (r.clone(), Outcome::Permanent(reason.clone())))
                    .collect();
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
        })
    }
}

/// A writer thread: takes every job queued while it was busy (up to
/// `max_bytes` as measured by `size`, and [`MAX_GROUP`] jobs) and commits them
/// as one group, with as few fsyncs as possible.
fn group_loop<J>(
    rx: &mpsc::Receiver<J>,
    size: impl Fn(&J) -> usize,
    max_bytes: usize,
    mut commit: impl FnMut(Vec<J>),
) {
    while let Ok(first) = rx.recv() {
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
        commit(group);
    }
}

fn commit_accepts(
    inner: &Inner,
    jobs: Vec<(Submission, oneshot::Sender<Result<Accepted, SpoolError>>)>,
) {
    let mut buf = Vec::new();
    let mut placed = Vec::new(); // (job index, offset of body, len)
    let mut seen = HashSet::new();
    let batch = {
        let mut s = inner.lock();
        let n = s.next_batch;
        s.next_batch += 1;
        for (i, (sub, _)) in jobs.iter().enumerate() {
            if s.entries.contains_key(&sub.meta.key) || !seen.insert(sub.meta.key.clone()) {
                continue;
            }
            placed.push(i);
        }
        n
    };
    let mut bodies = HashMap::new();
    for &i in &placed {
        let (sub, _) = &jobs[i];
        let start = buf.len();
        match record::encode_message(&mut buf, &sub.meta, &sub.bytes) {
            Ok(()) => {
                let body_len = sub.bytes.len();
                let offset = (buf.len() - body_len) as u64;
                debug_assert!(offset as usize > start);
                bodies.insert(
                    i,
                    Body {
                        batch,
                        offset,
                        len: body_len,
                    },
                );
            }
            Err(e) => {
                buf.truncate(start);
                tracing::error!(error = %e, "cannot encode a message record");
            }
        }
    }
    let result = if bodies.is_empty() {
        Ok(())
    } else {
        inner
            .disk
            .publish(&inner.batches, &batch_name(batch), &buf)
            .map_err(io_err("writing", &inner.batch_path(batch)))
    };
    if let Err(e) = result {
        tracing::error!(error = %e, batch, "group commit failed; nothing in it was acknowledged");
        let msg = e.to_string();
        for (_, tx) in jobs {
            let _ = tx.send(Err(SpoolError::Encode(format!("not stored: {msg}"))));
        }
        return;
    }
    let now = now_ms();
    let mut s = inner.lock();
    let mut stored = 0usize;
    for (i, (sub, tx)) in jobs.into_iter().enumerate() {
        let answer = match bodies.get(&i) {
            Some(&body) => {
                let key = sub.meta.key;
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
                        received_ms: sub.meta.received_ms,
                        body: Some(body),
                        attempts: 0,
                        due_ms: now,
                        leased: false,
                        final_at_ms: None,
                    },
                );
                s.schedule(key, now);
                s.queued += 1;
                stored += 1;
                Ok(Accepted::Stored)
            }
            None if placed.contains(&i) => {
                Err(SpoolError::Encode("message record too large".into()))
            }
            None => Ok(Accepted::Duplicate),
        };
        let _ = tx.send(answer);
    }
    if stored > 0 {
        s.batch_live.insert(batch, stored);
    }
    drop(s);
    inner.notify.notify_waiters();
}

fn commit_settles(inner: &Inner, jobs: Vec<(Settle, oneshot::Sender<Result<(), SpoolError>>)>) {
    let mut buf = Vec::new();
    let mut encode_err = None;
    for (settle, _) in &jobs {
        if let Err(e) = record::encode_settle(&mut buf, settle) {
            encode_err = Some(e.to_string());
        }
    }
    let result = match encode_err {
        Some(e) => Err(SpoolError::Encode(e)),
        None => inner
            .disk
            .append_sync(&inner.journal, &buf)
            .map_err(io_err("appending to", &inner.journal)),
    };
    let now = now_ms();
    let mut s = inner.lock();
    if let Err(e) = result {
        tracing::error!(error = %e, "cannot record delivery outcomes; the messages will be tried again");
        let msg = e.to_string();
        for (settle, tx) in jobs {
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
        let State { entries, .. } = &mut *s;
        let Some(e) = entries.get_mut(&settle.key) else {
            replies.push((tx, Err(SpoolError::UnknownLease(settle.key))));
            continue;
        };
        let mut retry_at = None;
        for new in &settle.rcpts {
            if let Some(r) = e.rcpts.iter_mut().find(|r| r.rcpt == new.rcpt) {
                r.state = new.state.clone();
            }
        }
        e.attempts += 1;
        e.leased = false;
        let was_body = e.body;
        if e.is_final() {
            e.final_at_ms = Some(settle.at_ms);
            e.body = None;
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
                RcptState::Queued => continue,
            };
            events.push(Event {
                key: settle.key.clone(),
                rcpt: new.rcpt,
                kind,
            });
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
                        to_delete.push(body.batch);
                    }
                }
            }
        }
        replies.push((tx, Ok(())));
    }
    drop(s);
    // The journal says these batches are finished (fsynced above): remove them.
    for batch in to_delete {
        let path = inner.batch_path(batch);
        if let Err(e) = inner.disk.remove(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a finished batch file");
        }
    }
    for (tx, r) in replies {
        let _ = tx.send(r);
    }
    for ev in events {
        let _ = inner.events.send(ev);
    }
    inner.notify.notify_waiters();
}

/// Reads the spool back after a restart (see "Recovery" in the module docs).
fn recover(inner: &Inner, dir: &Path) -> Result<State, SpoolError> {
    let disk = &inner.disk;
    let now = now_ms();
    for p in disk
        .list(&inner.batches)
        .map_err(io_err("listing", &inner.batches))?
    {
        if p.extension().is_some_and(|e| e == "tmp") {
            disk.remove(&p).map_err(io_err("removing", &p))?;
        }
    }
    // 1. The journal, up to its first bad record.
    let mut settled: HashMap<Key, (Vec<RcptStatus>, u64, bool)> = HashMap::new();
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
                let slot = settled
                    .entry(settle.key.clone())
                    .or_insert_with(|| (Vec::new(), 0, false));
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
                let lost = journal.len() - pos;
                match e {
                    RecordError::Truncated { .. } => tracing::warn!(
                        offset = pos,
                        bytes = lost,
                        "journal ends in a torn record (crash mid-write); cutting it off"
                    ),
                    _ => tracing::error!(offset = pos, bytes = lost, error = %e,
                        "journal record damaged; cutting the journal here (messages settled after it will be sent again)"),
                }
                break;
            }
        }
    }

    // 2. The batch files.
    let mut state = State::default();
    let mut to_salvage: Vec<(super::MessageMeta, Vec<u8>)> = Vec::new();
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
            tracing::warn!(path = %path.display(), "ignoring a file that is not a batch");
            continue;
        };
        max_batch = max_batch.max(n);
        let buf = disk.read(&path).map_err(io_err("reading", &path))?;
        let mut pos = 0usize;
        let mut good = Vec::new();
        let mut damage = None;
        while pos < buf.len() {
            let parsed = record::decode(&buf[pos..]).and_then(|(rec, used)| {
                if rec.kind != Kind::Message {
                    return Err(RecordError::Payload(
                        "a settle record in a batch file".into(),
                    ));
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
                Err(e) => {
                    damage = Some((pos, e));
                    break;
                }
            }
        }
        if let Some((at, e)) = &damage {
            tracing::error!(path = %path.display(), offset = at, bytes_lost = buf.len() - at, error = %e,
                good_records = good.len(),
                "damaged batch file: salvaging its good records and moving it to corrupt/");
            for (meta, offset, len) in good.drain(..) {
                let body = buf[offset..offset + len].to_vec();
                to_salvage.push((meta, body));
            }
            let target = dir.join(CORRUPT).join(path.file_name().unwrap_or_default());
            disk.rename(&path, &target)
                .map_err(io_err("quarantining", &path))?;
            continue;
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
    if !to_salvage.is_empty() {
        let n = state.next_batch;
        state.next_batch += 1;
        let mut buf = Vec::new();
        let mut placed = Vec::new();
        for (meta, body) in to_salvage {
            record::encode_message(&mut buf, &meta, &body)
                .map_err(|e| SpoolError::Encode(e.to_string()))?;
            placed.push((meta, (buf.len() - body.len()) as u64, body.len()));
        }
        disk.publish(&inner.batches, &batch_name(n), &buf)
            .map_err(io_err("writing", &inner.batch_path(n)))?;
        let mut live = 0;
        for (meta, offset, len) in placed {
            if add_recovered(
                &mut state,
                &mut settled,
                meta,
                Some(Body {
                    batch: n,
                    offset,
                    len,
                }),
                now,
            ) {
                live += 1;
            }
        }
        if live > 0 {
            state.batch_live.insert(n, live);
        }
    }

    // 3. Keys known only from the journal: final messages whose batch is gone.
    let retain_ms = inner.opts.retain.as_millis() as u64;
    for (key, (mut rcpts, at_ms, done)) in settled {
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
        state.entries.insert(
            key,
            Entry {
                rcpts,
                mail_from: String::new(),
                received_ms: at_ms,
                body: None,
                attempts: 0,
                due_ms: 0,
                leased: false,
                final_at_ms: Some(at_ms),
            },
        );
    }

    // 4. Compact the journal: one record per key with any progress.
    let mut buf = Vec::new();
    let mut keys: Vec<&Key> = state.entries.keys().collect();
    keys.sort();
    for key in keys {
        let Some(e) = state.entries.get(key) else {
            continue;
        };
        if e.rcpts.iter().all(|r| r.state == RcptState::Queued) {
            continue;
        }
        let settle = Settle {
            key: key.clone(),
            rcpts: e.rcpts.clone(),
            at_ms: e.final_at_ms.unwrap_or(now),
            done: e.is_final(),
        };
        record::encode_settle(&mut buf, &settle).map_err(|e| SpoolError::Encode(e.to_string()))?;
    }
    disk.publish(dir, JOURNAL, &buf)
        .map_err(io_err("compacting", &inner.journal))?;
    tracing::info!(
        queued = state.queued,
        known = state.entries.len(),
        "spool recovered"
    );
    Ok(state)
}

/// Adds a message found in a batch file to the index, merged with what the
/// journal says about it. Returns whether it is still live.
fn add_recovered(
    state: &mut State,
    settled: &mut HashMap<Key, (Vec<RcptStatus>, u64, bool)>,
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
    if let Some((known, at_ms, _)) = settled.remove(&meta.key) {
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
            received_ms: meta.received_ms,
            body: if is_final { None } else { body },
            attempts,
            due_ms: now,
            leased: false,
            final_at_ms: if is_final { final_at } else { None },
        },
    );
    if !is_final {
        state.queued += 1;
        state.schedule(key, now);
    }
    !is_final
}
