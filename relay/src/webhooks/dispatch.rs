//! From spool events to HTTP requests: [`Webhooks`] listens to the spool's
//! events (and, through [`super::HookedSpool`], to acceptances), writes one
//! [`Entry`] per event and interested endpoint into the [`Outbox`] (durably,
//! before it counts as queued), and a worker POSTs each, signed, retrying
//! with exponential backoff and jitter (capped at `retry_max`) until the
//! endpoint answers 2xx or the entry is older than `retention` (then it is
//! given up, with a warning and a metric). Endpoints are re-read from
//! `webhooks.toml` when the file changes.
//!
//! No event is lost between the spool and the outbox: the `accepted` event
//! is written before the client is answered; a delivery, bounce or
//! complaint event carries an id derived from the event itself, and what
//! the process did not get into the outbox before a crash (or missed by
//! falling behind the spool's broadcast) is read again from the spool's
//! record ([`Spool::events_since`]) from the watermark in [`super::mark`]
//! ([`Webhooks::catch_up`] at start). Events of one message may reach an
//! endpoint out of order; each carries its `timestamp`.
//!
//! This is the file spool's dispatcher; on the PostgreSQL spool the
//! database keeps the outbox and [`super::shared`] delivers it. Both render
//! bodies and judge attempts with the functions here (`render`,
//! `judge`), so an endpoint cannot tell them apart.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, Semaphore, broadcast};

use super::mark::{self, Mark};
use super::outbox::{DirOutbox, Entry, Outbox, OutboxError};
use super::stats::Stats;
use super::store::{self, Endpoint};
use super::{http, sign};
use crate::spool::{Event, EventKind, Key, Spool};

/// Retry settings of the webhook worker.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Delay before the first retry.
    pub retry_initial: Duration,
    /// Longest delay between retries.
    pub retry_max: Duration,
    /// An event not delivered this long after it was queued is given up.
    pub retention: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            retention: Duration::from_secs(3 * 86_400),
            concurrency: 8,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // Without randomness ids still differ by time and sequence; jitter is lost.
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

/// The delay before attempt `attempts + 1`: `initial * 2^(attempts-1)`,
/// capped at `max`, times a random factor in [0.5, 1].
pub fn backoff(opts: &Options, attempts: u32, random: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let base = opts
        .retry_initial
        .saturating_mul(1u32 << exp)
        .min(opts.retry_max);
    let factor = 0.5 + f64::from(random) / f64::from(u32::MAX) / 2.0;
    base.mul_f64(factor)
}

/// The endpoints, re-read when `webhooks.toml` changes.
struct EndpointCache {
    data_dir: PathBuf,
    state: Mutex<(Option<SystemTime>, Arc<Vec<Endpoint>>)>,
}

impl EndpointCache {
    fn current(&self) -> Arc<Vec<Endpoint>> {
        let path = self.data_dir.join(store::ENDPOINTS_FILE);
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.0 != mtime || mtime.is_none() && !st.1.is_empty() {
            match store::load(&self.data_dir) {
                Ok(eps) => {
                    tracing::info!(endpoints = eps.len(), "webhook endpoints loaded");
                    *st = (mtime, Arc::new(eps));
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the webhook endpoints; keeping the previous ones");
                    st.0 = mtime;
                }
            }
        }
        Arc::clone(&st.1)
    }
}

#[derive(Default)]
struct Queue {
    due: BTreeSet<(u64, String)>,
    entries: HashMap<String, Entry>,
}

/// The webhook dispatcher of a running relay.
pub struct Webhooks {
    data_dir: PathBuf,
    outbox: Arc<dyn Outbox>,
    endpoints: EndpointCache,
    opts: Options,
    queue: Mutex<Queue>,
    wake: Notify,
    stats: Arc<Stats>,
    seq: AtomicU64,
    /// Every event published before this time (ms) is in the outbox (0:
    /// none received yet); saved as the watermark by [`Webhooks::catch_up`]'s
    /// task.
    drained_ms: AtomicU64,
    /// The spool events are read again from (set by [`Webhooks::catch_up`]).
    spool: std::sync::OnceLock<Arc<dyn Spool>>,
    /// Asks the listener to drain and stop ([`Webhooks::stop`]).
    stop: Arc<Notify>,
    /// Answered by the listener once drained.
    stopped: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Opens the outbox in `DATA_DIR/webhooks/outbox`, queues what it holds,
    /// and starts listening to `events` and delivering.
    pub fn start(
        data_dir: &Path,
        opts: Options,
        events: broadcast::Receiver<Event>,
    ) -> Result<Arc<Self>, OutboxError> {
        let outbox = Arc::new(DirOutbox::open(&data_dir.join("webhooks").join("outbox"))?);
        Self::start_with(data_dir, opts, events, outbox)
    }

    /// [`Webhooks::start`] with another [`Outbox`].
    pub fn start_with(
        data_dir: &Path,
        opts: Options,
        events: broadcast::Receiver<Event>,
        outbox: Arc<dyn Outbox>,
    ) -> Result<Arc<Self>, OutboxError> {
        let hooks = Arc::new(Webhooks {
            data_dir: data_dir.to_path_buf(),
            endpoints: EndpointCache {
                data_dir: data_dir.to_path_buf(),
                state: Mutex::new((None, Arc::new(Vec::new()))),
            },
            outbox,
            opts,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            stats: Arc::new(Stats::default()),
            seq: AtomicU64::new(0),
            drained_ms: AtomicU64::new(0),
            spool: std::sync::OnceLock::new(),
            stop: Arc::new(Notify::new()),
            stopped: Mutex::new(None),
        });
        let pending = hooks.outbox.load()?;
        if !pending.is_empty() {
            tracing::info!(
                pending = pending.len(),
                "webhook events from before the restart queued again"
            );
        }
        hooks.requeue(pending);
        // Loaded now, so that the "loaded" log line comes at start and every
        // endpoint has its metrics from the start.
        for ep in hooks.endpoints.current().iter() {
            hooks.stats.with(&ep.name, |_| {});
        }
        tokio::spawn(listen(Arc::downgrade(&hooks), events));
        tokio::spawn(work(Arc::clone(&hooks)));
        Ok(hooks)
    }

    /// The metrics.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn requeue(&self, entries: Vec<Entry>) {
        let mut q = self.queue();
        for e in entries {
            // Queued already (an event read again from the spool that
            // also arrived live).
            if q.entries.contains_key(&e.id) {
                continue;
            }
            self.stats.with(&e.endpoint, |s| s.pending += 1);
            q.due.insert((e.next_ms, e.id.clone()));
            q.entries.insert(e.id.clone(), e);
        }
        drop(q);
        self.wake.notify_one();
    }

    /// Queues event `kind` of message `key` with `fields` for every endpoint
    /// that hears of `key.token`; returns once it is in the outbox.
    pub async fn enqueue(&self, kind: &str, key: &Key, fields: Map<String, Value>) {
        let endpoints = self.endpoints.current();
        let entries = self.entries_for(&endpoints, kind, key, fields, None);
        self.store(entries).await;
    }

    /// The outbox entries of one event: one per endpoint that hears of it.
    /// `spool_event`: the id ([`spool_event_id`]) and time of a spool
    /// event; `None` makes a new unique id, dated now.
    fn entries_for(
        &self,
        endpoints: &[Endpoint],
        kind: &str,
        key: &Key,
        fields: Map<String, Value>,
        spool_event: Option<(String, u64)>,
    ) -> Vec<Entry> {
        let targets: Vec<&Endpoint> = endpoints.iter().filter(|e| e.hears(&key.token)).collect();
        if targets.is_empty() {
            return Vec::new();
        }
        let now = now_ms();
        let (event_id, at) = spool_event.unwrap_or_else(|| {
            let id = format!(
                "evt_{now}_{:08x}{:04x}",
                random_u32(),
                self.seq.fetch_add(1, Ordering::Relaxed) & 0xffff
            );
            (id, now)
        });
        let body = render(&event_id, kind, if at > 0 { at } else { now }, key, fields);
        targets
            .iter()
            .map(|ep| Entry {
                id: format!("{event_id}-{}", ep.name),
                endpoint: ep.name.clone(),
                kind: kind.to_string(),
                body: body.clone(),
                created_ms: now,
                attempts: 0,
                next_ms: now,
            })
            .collect()
    }

    /// The outbox entries of spool events (ids derived from the events).
    fn entries_of_events(&self, events: &[Event]) -> Vec<Entry> {
        let endpoints = self.endpoints.current();
        let mut entries = Vec::new();
        for ev in events {
            let (kind, fields) = describe(ev);
            let id = spool_event_id(ev, &kind);
            entries.extend(self.entries_for(
                &endpoints,
                &kind,
                &ev.key,
                fields,
                Some((id, ev.at_ms)),
            ));
        }
        entries
    }

    /// Reads again, from `spool`'s record, the events since the saved
    /// watermark ([`super::mark`]) and queues those the outbox lacks (what a
    /// crash kept from it), then keeps the watermark up to date (about once
    /// a second) and keeps `spool` for reading again after falling behind.
    /// Call once at start, before deliveries begin.
    pub async fn catch_up(self: &Arc<Self>, spool: Arc<dyn Spool>) {
        let _ = self.spool.set(spool);
        if let Some(mark) = mark::load(&self.data_dir) {
            let _ = self.replay(mark.replay_from(), "after a restart").await;
        }
        tokio::spawn(keep_mark(Arc::downgrade(self)));
    }

    /// Queues the events since `since_ms` that the outbox lacks; `false`
    /// when they cannot be read again (no spool, or one without a record of
    /// this process's events, or it failed: logged).
    async fn replay(&self, since_ms: u64, why: &str) -> bool {
        let Some(spool) = self.spool.get() else {
            return false;
        };
        match spool.events_since(since_ms).await {
            Ok(Some(events)) => {
                let entries = self.entries_of_events(&events);
                let new: Vec<Entry> = {
                    let q = self.queue();
                    entries
                        .into_iter()
                        .filter(|e| !q.entries.contains_key(&e.id))
                        .collect()
                };
                if !new.is_empty() {
                    tracing::info!(
                        entries = new.len(),
                        since_ms,
                        why,
                        "webhook events read again from the spool"
                    );
                }
                self.store(new).await;
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, why, "cannot read the spool's events again for the webhooks");
                false
            }
        }
    }

    /// After the spool stopped publishing (closed, its attempts finished):
    /// waits until every event it published is in the outbox, then saves
    /// an exact watermark, so that the next start reads nothing again.
    pub async fn stop(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        self.stop.notify_one();
        if tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .is_err()
        {
            tracing::warn!(
                "webhook events still being queued at shutdown; the next start reads them again"
            );
        }
    }

    /// Writes `entries` to the outbox (one directory fsync for all), then
    /// queues them for delivery.
    async fn store(&self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let outbox = Arc::clone(&self.outbox);
        let stored = entries.clone();
        let pushed = tokio::task::spawn_blocking(move || outbox.push(&stored)).await;
        let error = match pushed {
            Ok(Ok(())) => return self.requeue(entries),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        self.stats
            .queue_errors
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        for e in &entries {
            tracing::error!(%error, endpoint = %e.endpoint, kind = %e.kind, "webhook event not queued");
        }
    }

    /// Takes the earliest entry due now, or says when the next one is due.
    fn take_due(&self) -> Result<Entry, Option<u64>> {
        let now = now_ms();
        let mut q = self.queue();
        let Some((at, id)) = q.due.first().cloned() else {
            return Err(None);
        };
        if at > now {
            return Err(Some(at));
        }
        q.due.remove(&(at, id.clone()));
        q.entries.remove(&id).ok_or(Some(now))
    }

    async fn outbox_op(
        &self,
        op: impl FnOnce(&dyn Outbox) -> Result<(), OutboxError> + Send + 'static,
    ) {
        let outbox = Arc::clone(&self.outbox);
        match tokio::task::spawn_blocking(move || op(outbox.as_ref())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "webhook outbox"),
            Err(e) => tracing::error!(error = %e, "webhook outbox"),
        }
    }

    async fn finish(&self, entry: &Entry) {
        let id = entry.id.clone();
        self.outbox_op(move |o| o.remove(&id)).await;
        self.stats
            .with(&entry.endpoint, |s| s.pending = s.pending.saturating_sub(1));
    }

    /// One attempt at `entry`, and what follows from its result.
    async fn attempt(&self, mut entry: Entry) {
        let endpoints = self.endpoints.current();
        let Some(ep) = endpoints.iter().find(|e| e.name == entry.endpoint) else {
            tracing::warn!(endpoint = %entry.endpoint, kind = %entry.kind,
                "webhook endpoint removed; its undelivered event is dropped");
            self.finish(&entry).await;
            return;
        };
        let result = match store::secret(&self.data_dir, &ep.name) {
            Ok(secret) => send(ep, &secret, &entry.kind, entry.body.as_bytes()).await,
            Err(e) => Err(e.to_string()),
        };
        entry.attempts = entry.attempts.saturating_add(1);
        let now = now_ms();
        let age = now.saturating_sub(entry.created_ms);
        let delay = match judge(
            &self.stats,
            &self.opts,
            &ep.name,
            &entry.kind,
            entry.attempts,
            age,
            result,
        ) {
            Verdict::Retry(delay) => delay,
            done => {
                self.finish(&entry).await;
                return settled(&self.stats, &ep.name, done);
            }
        };
        entry.next_ms = now.saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        let stored = entry.clone();
        self.outbox_op(move |o| o.update(&stored)).await;
        let mut q = self.queue();
        q.due.insert((entry.next_ms, entry.id.clone()));
        q.entries.insert(entry.id.clone(), entry);
        drop(q);
        self.wake.notify_one();
    }
}

/// The JSON body of an event as endpoints receive it (docs/webhooks.md).
pub(super) fn render(
    event_id: &str,
    kind: &str,
    at_ms: u64,
    key: &Key,
    fields: Map<String, Value>,
) -> String {
    let mut body = Map::new();
    body.insert("id".into(), json!(event_id));
    body.insert("type".into(), json!(kind));
    body.insert("timestamp".into(), json!(at_ms));
    body.insert(
        "message".into(),
        json!({ "token": key.token, "id": key.id }),
    );
    body.extend(fields);
    Value::Object(body).to_string()
}

/// The fields of an `accepted` event.
pub(super) fn accepted_fields(
    mail_from: &str,
    recipients: &[String],
    received_ms: u64,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("mailFrom".into(), json!(mail_from));
    m.insert("recipients".into(), json!(recipients));
    m.insert("receivedAt".into(), json!(received_ms));
    m
}

/// Whether a failed attempt is logged as a warning: the 1st, 2nd, 4th, 8th,
/// ... of an event, so an endpoint that is down for a day does not fill the
/// log (every attempt is counted in the metrics).
fn loud(attempts: u32) -> bool {
    attempts.is_power_of_two()
}

/// What follows from one attempt at an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Delivered (2xx, the status): forget it.
    Delivered(u16),
    /// Try again in this long.
    Retry(Duration),
    /// Older than the retention window: forget it.
    GiveUp,
}

/// Judges attempt number `attempts` at an event `age_ms` old of kind `kind`
/// to endpoint `endpoint` (its HTTP status, or why there is none); counts
/// and logs a failed attempt. A final verdict is counted by [`settled`]
/// once the event is out of the queue, so that the depth gauge never lags
/// the delivered counter.
pub(super) fn judge(
    stats: &Stats,
    opts: &Options,
    endpoint: &str,
    kind: &str,
    attempts: u32,
    age_ms: u64,
    result: Result<u16, String>,
) -> Verdict {
    match result {
        Ok(status) if (200..300).contains(&status) => return Verdict::Delivered(status),
        Ok(status) => {
            stats.with(endpoint, |s| {
                s.failed_attempts += 1;
                s.last_status = Some(status);
            });
            if loud(attempts) {
                tracing::warn!(
                    endpoint,
                    kind,
                    status,
                    attempts,
                    "webhook endpoint refused an event; will retry"
                );
            }
        }
        Err(error) => {
            stats.with(endpoint, |s| {
                s.failed_attempts += 1;
                s.last_status = Some(0);
            });
            if loud(attempts) {
                tracing::warn!(endpoint, kind, %error, attempts,
                "webhook attempt failed; will retry");
            }
        }
    }
    let retention = u64::try_from(opts.retention.as_millis()).unwrap_or(u64::MAX);
    if age_ms >= retention {
        tracing::warn!(
            endpoint,
            kind,
            attempts,
            "webhook event given up after the retention window"
        );
        return Verdict::GiveUp;
    }
    Verdict::Retry(backoff(opts, attempts, random_u32()))
}

/// Counts a final verdict (delivered or given up) in `stats`.
pub(super) fn settled(stats: &Stats, endpoint: &str, verdict: Verdict) {
    match verdict {
        Verdict::Delivered(status) => stats.with(endpoint, |s| {
            s.delivered += 1;
            s.last_status = Some(status);
        }),
        Verdict::GiveUp => stats.with(endpoint, |s| s.given_up += 1),
        Verdict::Retry(_) => {}
    }
}

/// Signs and POSTs one body; the HTTP status or why there is none.
pub(super) async fn send(
    ep: &Endpoint,
    secret: &str,
    kind: &str,
    body: &[u8],
) -> Result<u16, String> {
    let ts = now_ms() / 1000;
    let headers = [
        (sign::HEADER, sign::header_value(secret, ts, body)),
        ("Postwire-Event", kind.to_string()),
    ];
    http::post(ep, &headers, body)
        .await
        .map_err(|e| e.to_string())
}

/// Sends a sample `test` event to endpoint `name` of `data_dir` (for
/// `postwire webhook test`); the HTTP status.
pub async fn send_test(data_dir: &Path, name: &str) -> Result<u16, String> {
    let endpoints = store::load(data_dir).map_err(|e| e.to_string())?;
    let ep = endpoints
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| format!("no webhook named {name:?}"))?;
    let secret = store::secret(data_dir, name).map_err(|e| e.to_string())?;
    send_sample(ep, &secret).await
}

/// Sends a sample `test` event, signed with `secret`, to `ep`; the HTTP
/// status.
pub async fn send_sample(ep: &Endpoint, secret: &str) -> Result<u16, String> {
    let now = now_ms();
    let body = json!({
        "id": format!("evt_{now}_test"),
        "type": "test",
        "timestamp": now,
        "message": { "token": ep.token.clone().unwrap_or_default(), "id": "test" },
        "recipient": "test@example.invalid",
    })
    .to_string();
    send(ep, secret, "test", body.as_bytes()).await
}

/// The JSON type and fields of a spool event.
pub(super) fn describe(ev: &Event) -> (String, Map<String, Value>) {
    let mut m = Map::new();
    m.insert("recipient".into(), json!(ev.rcpt));
    m.insert("final".into(), json!(ev.last));
    let kind = match &ev.kind {
        EventKind::Delivered { response } => {
            m.insert("response".into(), json!(response));
            "delivered".to_string()
        }
        EventKind::Deferred {
            reason,
            attempts,
            retry_at_ms,
        } => {
            m.insert("reason".into(), json!(reason));
            m.insert("attempts".into(), json!(attempts));
            m.insert("retryAt".into(), json!(retry_at_ms));
            "deferred".to_string()
        }
        EventKind::Failed { reason } => {
            m.insert("reason".into(), json!(reason));
            "failed".to_string()
        }
        EventKind::Bounced {
            bounce,
            status,
            diagnostic,
        } => {
            m.insert("bounce".into(), json!(bounce));
            m.insert("status".into(), json!(status));
            if let Some(d) = diagnostic {
                m.insert("diagnostic".into(), json!(d));
            }
            "bounced".to_string()
        }
        EventKind::Complained { feedback_type } => {
            if let Some(f) = feedback_type {
                m.insert("feedbackType".into(), json!(f));
            }
            "complained".to_string()
        }
        // Kinds added later go out under their own name with their fields
        // as text until they get a case here.
        #[allow(unreachable_patterns)]
        other => {
            let text = format!("{other:?}");
            let name: String = text
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            m.insert("detail".into(), json!(text));
            name
        }
    };
    (kind, m)
}

/// Most events written to the outbox together.
const BATCH: usize = 256;

async fn listen(hooks: std::sync::Weak<Webhooks>, mut events: broadcast::Receiver<Event>) {
    let Some(stop) = hooks.upgrade().map(|h| Arc::clone(&h.stop)) else {
        return;
    };
    loop {
        let first = tokio::select! {
            r = events.recv() => r,
            () = stop.notified() => {
                drain_and_stop(&hooks, &mut events).await;
                return;
            }
        };
        let first = match first {
            Ok(ev) => Some(ev),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                lagged(&hooks, n).await;
                None
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        // What else is already there goes to the outbox with it.
        let mut batch: Vec<Event> = first.into_iter().collect();
        let mut drained_at = 0;
        while batch.len() < BATCH {
            let before = now_ms();
            match events.try_recv() {
                Ok(ev) => batch.push(ev),
                Err(broadcast::error::TryRecvError::Lagged(n)) => lagged(&hooks, n).await,
                Err(_) => {
                    // Everything published before `before` is in `batch`.
                    drained_at = before;
                    break;
                }
            }
        }
        let Some(hooks) = hooks.upgrade() else { return };
        let entries = hooks.entries_of_events(&batch);
        hooks.store(entries).await;
        if drained_at > 0 {
            hooks.drained_ms.fetch_max(drained_at, Ordering::SeqCst);
        }
    }
}

/// Fell behind the spool's broadcast by `n` events: they are read again
/// from the spool's record, from before the last point known complete.
async fn lagged(hooks: &std::sync::Weak<Webhooks>, n: u64) {
    let Some(h) = hooks.upgrade() else { return };
    let since = h.drained_ms.load(Ordering::SeqCst);
    let from = Mark {
        ms: since,
        clean: false,
    }
    .replay_from();
    let replayed = since > 0 && h.replay(from, "after falling behind").await;
    if replayed {
        tracing::warn!(
            missed = n,
            "webhooks fell behind the spool's events; read them again from the spool"
        );
    } else {
        h.stats.missed.fetch_add(n, Ordering::Relaxed);
        tracing::error!(
            missed = n,
            "webhooks fell behind the spool's events; some were not queued"
        );
    }
}

/// At a graceful stop: queues what is left in the channel, saves an exact
/// watermark, and answers [`Webhooks::stop`].
async fn drain_and_stop(
    hooks: &std::sync::Weak<Webhooks>,
    events: &mut broadcast::Receiver<Event>,
) {
    let Some(hooks) = hooks.upgrade() else { return };
    let mut missed = false;
    let mut batch = Vec::new();
    let before = now_ms();
    loop {
        match events.try_recv() {
            Ok(ev) => batch.push(ev),
            Err(broadcast::error::TryRecvError::Lagged(_)) => missed = true,
            Err(_) => break,
        }
    }
    let entries = hooks.entries_of_events(&batch);
    hooks.store(entries).await;
    // A lag at the very end: the next start reads again from before it.
    if !missed && hooks.spool.get().is_some() {
        let clean = Mark {
            ms: before,
            clean: true,
        };
        if let Err(e) = mark::save(&hooks.data_dir, clean) {
            tracing::warn!(error = %e, "cannot save the webhook watermark");
        }
    }
    if let Some(tx) = hooks
        .stopped
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        let _ = tx.send(());
    }
}

/// Saves the watermark when it moved, about once a second.
async fn keep_mark(hooks: std::sync::Weak<Webhooks>) {
    let mut saved = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(h) = hooks.upgrade() else { return };
        let now = h.drained_ms.load(Ordering::SeqCst);
        if now > saved {
            let data_dir = h.data_dir.clone();
            let mark = Mark {
                ms: now,
                clean: false,
            };
            match tokio::task::spawn_blocking(move || mark::save(&data_dir, mark)).await {
                Ok(Ok(())) => saved = now,
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot save the webhook watermark"),
                Err(e) => tracing::warn!(error = %e, "cannot save the webhook watermark"),
            }
        }
    }
}

/// The id of a spool event as endpoints see it: derived from the event
/// (message, recipient, kind, the time the spool recorded it, and for a
/// deferral its attempt), so that the same event read again from the spool
/// after a crash has the same id.
pub fn spool_event_id(ev: &Event, kind: &str) -> String {
    let attempt = match ev.kind {
        EventKind::Deferred { attempts, .. } => Some(attempts),
        _ => None,
    };
    event_id(&ev.key, &ev.rcpt, kind, ev.at_ms, attempt)
}

/// The id of an event of message `key` (see [`spool_event_id`]): a hash of
/// its message, recipient, kind, time and (for a deferral) attempt.
pub(super) fn event_id(
    key: &Key,
    rcpt: &str,
    kind: &str,
    at_ms: u64,
    attempt: Option<u32>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [key.token.as_str(), key.id.as_str(), rcpt, kind] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(at_ms.to_be_bytes());
    if let Some(attempts) = attempt {
        h.update(attempts.to_be_bytes());
    }
    let d = h.finalize();
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("evt_{at_ms}_{hex}")
}

async fn work(hooks: Arc<Webhooks>) {
    let slots = Arc::new(Semaphore::new(hooks.opts.concurrency.max(1)));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        match hooks.take_due() {
            Ok(entry) => {
                let h = Arc::clone(&hooks);
                tokio::spawn(async move {
                    h.attempt(entry).await;
                    drop(permit);
                });
            }
            Err(next) => {
                drop(permit);
                let wait = match next {
                    Some(at) => Duration::from_millis(at.saturating_sub(now_ms())),
                    None => Duration::from_secs(3600),
                };
                tokio::select! {
                    () = hooks.wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounces_and_complaints_go_out_with_their_fields() {
        let ev = |kind| Event {
            key: Key {
                token: "app".into(),
                id: "m1".into(),
            },
            rcpt: "bob@example.org".into(),
            kind,
            last: false,
            at_ms: 0,
        };
        let (kind, m) = describe(&ev(EventKind::Bounced {
            bounce: crate::spool::BounceKind::Hard,
            status: "5.1.1".into(),
            diagnostic: Some("smtp; 550 5.1.1 no such user".into()),
        }));
        assert_eq!(kind, "bounced");
        assert_eq!(m["bounce"], "hard");
        assert_eq!(m["status"], "5.1.1");
        assert_eq!(m["recipient"], "bob@example.org");
        let (kind, m) = describe(&ev(EventKind::Complained {
            feedback_type: Some("abuse".into()),
        }));
        assert_eq!(kind, "complained");
        assert_eq!(m["feedbackType"], "abuse");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let o = Options {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(8),
            ..Options::default()
        };
        assert_eq!(backoff(&o, 1, u32::MAX), Duration::from_secs(1));
        assert_eq!(backoff(&o, 3, u32::MAX), Duration::from_secs(4));
        assert_eq!(backoff(&o, 10, u32::MAX), Duration::from_secs(8));
        assert_eq!(backoff(&o, 100, u32::MAX), Duration::from_secs(8));
        assert_eq!(backoff(&o, 3, 0), Duration::from_secs(2));
    }
}
