//! The webhook dispatcher of a relay on the PostgreSQL spool: its outbox is
//! the database's ([`super::pg`]), filled by the database in the
//! transactions that record the events, and emptied by whichever relay
//! claims a row first. So webhooks scale out with the spool: a relay that
//! dies with events claimed leaves them to the others once its lease
//! passed, and no relay keeps anything of its own.
//!
//! The loop claims due rows in batches ([`CLAIM_PER_SLOT`] per request
//! slot) into a local queue and sends each (at most `concurrency` at once;
//! signed, as [`super::dispatch`] does; the body is rendered from the row,
//! so an event sent again has the same id and body). It then deletes the
//! rows done in one statement per round, or puts a row back with its
//! backoff. One claim and one delete per batch rather than per event: the
//! outbox costs the database a few statements per hundred events
//! (docs/perf.md, "Webhooks on the PostgreSQL spool"). A row left in the
//! local queue near the end of its lease is handed back (due now, for any
//! relay to claim), so a slow endpoint cannot make a queued row be sent
//! twice at once.
//!
//! It looks for due rows when this relay stored or settled a message
//! ([`SharedWebhooks::wake`]) and at least once a second otherwise (rows
//! of other relays, retries coming due); never while no endpoint exists,
//! and not again within [`EMPTY_PAUSE`] of a claim that found nothing.
//! Per-endpoint counters are this relay's; the queue depth gauge is the
//! shared outbox's, read every few seconds.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio::sync::{Notify, Semaphore, broadcast};

use super::dispatch::{self, Options, Verdict};
use super::hooked::AcceptHook;
use super::pg::{Claimed, PgWebhooks};
use super::stats::Stats;
use crate::spool::{Envelope, Event, MessageMeta};

/// How often the loop looks for due rows when nothing woke it.
const POLL: Duration = Duration::from_secs(1);
/// The shortest lease on a claimed row: one request's timeout and then some.
pub const MIN_LEASE: Duration = Duration::from_secs(super::http::TIMEOUT.as_secs() + 5);
/// Most rows claimed by one statement, per request slot.
pub const CLAIM_PER_SLOT: i64 = 4;
/// A claimed row still waiting here this close to the end of its lease is
/// not sent but handed back: one request's timeout and then some.
const LEASE_MARGIN: Duration = Duration::from_secs(super::http::TIMEOUT.as_secs() + 2);
/// After a claim that found nothing, the next waits this long (however
/// often the loop is woken meanwhile).
pub const EMPTY_PAUSE: Duration = Duration::from_millis(25);
/// How often the shared queue depth is read.
const DEPTH_EVERY: Duration = Duration::from_secs(2);

/// The shared webhook dispatcher of a running relay.
pub struct SharedWebhooks {
    db: PgWebhooks,
    owner: String,
    opts: Options,
    lease: Duration,
    stats: Arc<Stats>,
    wake: Notify,
    stopping: AtomicBool,
    slots: Arc<Semaphore>,
    /// Claimed rows not yet being sent, with when they were claimed.
    queued: Mutex<VecDeque<(Instant, Claimed)>>,
    /// Rows sent (or given up) and not yet deleted: `(id, lease_until_ms)`.
    finished: Mutex<Vec<(i64, i64)>>,
}

impl std::fmt::Debug for SharedWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedWebhooks")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl SharedWebhooks {
    /// Starts delivering the database's outbox as relay `owner`, claims
    /// leased for `lease` (at least [`MIN_LEASE`]: longer than one request
    /// may take, so that no other relay sends an event while this one still
    /// waits for its answer); `events` (this relay's settled events) wake it.
    pub fn start(
        db: PgWebhooks,
        owner: &str,
        opts: Options,
        lease: Duration,
        events: broadcast::Receiver<Event>,
    ) -> Arc<Self> {
        let hooks = Arc::new(SharedWebhooks {
            db,
            owner: owner.to_string(),
            slots: Arc::new(Semaphore::new(opts.concurrency.max(1))),
            opts,
            lease: lease.max(MIN_LEASE),
            stats: Arc::new(Stats::default()),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            queued: Mutex::new(VecDeque::new()),
            finished: Mutex::new(Vec::new()),
        });
        tokio::spawn(woken_by_events(Arc::downgrade(&hooks), events));
        tokio::spawn(work(Arc::clone(&hooks)));
        hooks
    }

    /// The metrics.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// New rows may be due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops claiming, lets the attempts under way finish (10 s at most),
    /// and hands back what this relay still holds, due now, to the others.
    pub async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let all = u32::try_from(self.opts.concurrency.max(1)).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.slots.acquire_many(all)).await;
        self.forget_finished().await;
        match self.db.release(&self.owner).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "webhook events handed back to the other relays"),
            Err(e) => tracing::warn!(error = %e,
                "cannot hand back claimed webhook events; another relay takes them when their lease ends"),
        }
    }

    /// One attempt at a claimed row, and what follows.
    async fn attempt(&self, row: Claimed) {
        let (kind, body) = match render(&row) {
            Ok(r) => r,
            Err(why) => {
                tracing::error!(endpoint = %row.endpoint.name, id = row.id, %why,
                    "webhook outbox row unreadable; dropped");
                self.forget(&row);
                return;
            }
        };
        let result = dispatch::send(&row.endpoint, &row.secret, &kind, body.as_bytes()).await;
        let attempts = row.attempts.saturating_add(1);
        let verdict = dispatch::judge(
            &self.stats,
            &self.opts,
            &row.endpoint.name,
            &kind,
            attempts,
            row.age_ms,
            result,
        );
        if let Verdict::Retry(delay) = verdict {
            let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            if let Err(e) = self.db.retry(&self.owner, &row, attempts, delay_ms).await {
                tracing::warn!(error = %e, endpoint = %row.endpoint.name,
                    "cannot put a webhook event back; it is tried again when its lease ends");
            }
        } else {
            self.forget(&row);
            dispatch::settled(&self.stats, &row.endpoint.name, verdict);
        }
    }

    /// Marks `row` done: deleted with the others at the loop's next round.
    fn forget(&self, row: &Claimed) {
        lock(&self.finished).push((row.id, row.lease_until_ms));
        self.wake.notify_one();
    }

    /// Deletes the rows done since the last call, in one statement.
    async fn forget_finished(&self) {
        let done = std::mem::take(&mut *lock(&self.finished));
        if done.is_empty() {
            return;
        }
        match self.db.done_all(&self.owner, &done).await {
            Ok(n) if n == done.len() as u64 => {}
            Ok(n) => tracing::warn!(
                events = done.len() as u64 - n,
                "webhook events' leases ended before they were done; another relay sends them again"
            ),
            Err(e) => tracing::warn!(error = %e, events = done.len(),
                "cannot forget sent webhook events; they are sent again when their lease ends"),
        }
    }

    /// The next queued row whose lease leaves time to send it; those that
    /// waited too long for a free slot are set aside in `stale`.
    fn next_queued(&self, stale: &mut Vec<(i64, i64)>) -> Option<Claimed> {
        let mut q = lock(&self.queued);
        let keep = self.lease.saturating_sub(LEASE_MARGIN);
        while let Some((at, row)) = q.pop_front() {
            if at.elapsed() < keep {
                return Some(row);
            }
            stale.push((row.id, row.lease_until_ms));
        }
        None
    }

    /// Hands back, due now, rows that waited here too long to be sent
    /// within their lease (a slow endpoint), rather than leaving them
    /// unclaimable until the lease ends.
    async fn hand_back(&self, stale: Vec<(i64, i64)>) {
        if stale.is_empty() {
            return;
        }
        tracing::debug!(
            events = stale.len(),
            "webhook events waited too long for a free slot; handed back"
        );
        if let Err(e) = self.db.hand_back(&self.owner, &stale).await {
            tracing::warn!(error = %e, events = stale.len(),
                "cannot hand back webhook events; they are claimed again when their lease ends");
        }
    }

    /// Reads the shared depth per endpoint into the metrics; whether any
    /// endpoint exists (`true` when it cannot be read).
    async fn refresh_depth(&self) -> bool {
        match self.db.depth().await {
            Ok(depths) => {
                let any = !depths.is_empty();
                for (endpoint, n) in depths {
                    self.stats.with(&endpoint, |s| s.pending = n);
                }
                any
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the webhook outbox depth");
                true
            }
        }
    }
}

impl AcceptHook for SharedWebhooks {
    fn accepted<'a>(&'a self, _meta: &'a MessageMeta) -> BoxFuture<'a, ()> {
        // The database wrote the outbox rows with the message.
        self.wake();
        Box::pin(async {})
    }
}

/// The event type and JSON body of a row, as [`super::dispatch`] renders
/// the same event on the file spool.
fn render(row: &Claimed) -> Result<(String, String), String> {
    let kind = crate::spool::pg::kinds::decode(row.kind.clone()).map_err(|e| e.to_string())?;
    match kind {
        None => {
            let env: Envelope = row
                .envelope
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            let id = dispatch::event_id(&row.key, "", "accepted", row.at_ms, None);
            let fields = dispatch::accepted_fields(&env.mail_from, &env.rcpt_to, row.at_ms);
            let body = dispatch::render(&id, "accepted", row.at_ms, &row.key, fields);
            Ok(("accepted".into(), body))
        }
        Some(kind) => {
            let ev = Event {
                key: row.key.clone(),
                rcpt: row.rcpt.clone(),
                kind,
                last: row.last,
                at_ms: row.at_ms,
            };
            let (name, fields) = dispatch::describe(&ev);
            let id = dispatch::spool_event_id(&ev, &name);
            let body = dispatch::render(&id, &name, row.at_ms, &row.key, fields);
            Ok((name, body))
        }
    }
}

/// Wakes the loop on each batch of this relay's events.
async fn woken_by_events(
    hooks: std::sync::Weak<SharedWebhooks>,
    mut events: broadcast::Receiver<Event>,
) {
    loop {
        match events.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
        let Some(h) = hooks.upgrade() else { return };
        h.wake();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn work(hooks: Arc<SharedWebhooks>) {
    let lease_ms = i64::try_from(hooks.lease.as_millis()).unwrap_or(i64::MAX);
    let batch = i64::try_from(hooks.opts.concurrency.max(1))
        .unwrap_or(1)
        .saturating_mul(CLAIM_PER_SLOT);
    let mut depth_at: Option<Instant> = None;
    let mut failing = false;
    // Whether an endpoint exists, as of the last depth read.
    let mut endpoints = true;
    // When the last claim found nothing.
    let mut empty_at: Option<Instant> = None;
    loop {
        if hooks.stopping.load(Ordering::SeqCst) {
            return;
        }
        hooks.forget_finished().await;
        if depth_at.is_none_or(|at| at.elapsed() >= DEPTH_EVERY) {
            endpoints = hooks.refresh_depth().await;
            depth_at = Some(Instant::now());
        }
        // Send what is queued, as far as there are free slots.
        let mut stale = Vec::new();
        while let Ok(permit) = Arc::clone(&hooks.slots).try_acquire_owned() {
            let Some(row) = hooks.next_queued(&mut stale) else {
                drop(permit);
                break;
            };
            if let Some(from) = &row.taken_from {
                tracing::info!(endpoint = %row.endpoint.name, relay = %from,
                    "webhook event taken over from a relay whose lease on it passed");
            }
            let h = Arc::clone(&hooks);
            tokio::spawn(async move {
                h.attempt(row).await;
                drop(permit);
                // A slot is free.
                h.wake.notify_one();
            });
        }
        hooks.hand_back(stale).await;
        // Nothing queued and a slot free: claim the next batch. Not while
        // no endpoint exists (there is nothing to claim), nor again within
        // EMPTY_PAUSE of a claim that found nothing: every message stored
        // or settled wakes this loop, and a spool under load must not pay
        // a claim statement for each.
        let idle = hooks.slots.available_permits() > 0;
        let paused = empty_at.is_some_and(|at| at.elapsed() < EMPTY_PAUSE);
        if endpoints && idle && !paused && lock(&hooks.queued).is_empty() {
            match hooks.db.claim(&hooks.owner, batch, lease_ms).await {
                Ok(rows) => {
                    if failing {
                        tracing::info!("webhook outbox readable again");
                        failing = false;
                    }
                    if !rows.is_empty() {
                        empty_at = None;
                        let now = Instant::now();
                        lock(&hooks.queued).extend(rows.into_iter().map(|r| (now, r)));
                        continue;
                    }
                    empty_at = Some(Instant::now());
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, "cannot claim webhook events; retrying");
                        failing = true;
                    }
                }
            }
        }
        // Woken by a finished attempt, a stored or settled message, or the
        // clock; a wake during the pause is served when it ends.
        let wait = match empty_at {
            Some(at) if at.elapsed() < EMPTY_PAUSE => EMPTY_PAUSE - at.elapsed(),
            _ => POLL,
        };
        if paused {
            tokio::time::sleep(wait).await;
        } else {
            tokio::select! {
                () = hooks.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
