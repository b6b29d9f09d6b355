//! Routes the spool's delivery events to the sessions that watch each
//! message, so that an event wakes the sessions that asked for it and no
//! other: with a thousand composer pages connected, one delivery is one
//! wake-up, not a thousand.
//!
//! A session [`EventRouter::register`]s itself once and then
//! [`Watcher::watch`]es each message it submits or asks about. One task
//! reads the spool's broadcast and forwards each event to the watchers of its
//! key. A route is dropped after the message's last event (every recipient
//! delivered or failed: [`Event::last`]), and every route of a session when
//! the session ends (its [`Watcher`] is dropped).
//!
//! A bounce or complaint can arrive long after the last delivery event (the
//! relay's inbound SMTP port, [`crate::inbound`]): each session keeps the
//! routes of its last [`FINISHED_KEEP`] finished messages for those reports
//! only, so a client that stays connected sees `bounced` after `delivered`.
//!
//! Each session has a bounded queue: a session that stops reading loses
//! events (logged), never the relay's memory; its client can ask with
//! `status`.
//!
//! The spool's broadcast is bounded too: when this task falls behind it,
//! the events it skipped are gone from the channel. The final events a
//! client waits for (`delivered`, `failed`) are then made again from the
//! spool's state of every watched message, for the recipients not yet
//! reported; a final event that was already routed is not routed twice.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, mpsc};

use super::metrics::Metrics;
use crate::spool::{Event, Key, Spool};

/// Events a session may have queued before newer ones are dropped.
const SESSION_QUEUE: usize = 4096;

/// Finished messages per session whose reports (bounces, complaints) still
/// reach it; older ones are forgotten (their clients can ask with `status`).
pub const FINISHED_KEEP: usize = 1024;

#[derive(Default)]
struct Routes {
    /// Sessions watching each message.
    by_key: HashMap<Key, Vec<(u64, mpsc::Sender<Event>)>>,
    /// Messages each session watches.
    by_session: HashMap<u64, HashSet<Key>>,
    /// Finished messages: reports after delivery still reach these sessions.
    finished: HashMap<Key, Vec<(u64, mpsc::Sender<Event>)>>,
    /// Each session's finished messages, oldest first (at most [`FINISHED_KEEP`]).
    finished_order: HashMap<u64, VecDeque<Key>>,
    /// Recipients of each watched message whose final event was routed.
    reported: HashMap<Key, HashSet<String>>,
}

impl Routes {
    /// Session `session` no longer hears reports about the finished `key`.
    fn drop_finished(routes: &mut Routes, key: &Key, session: u64) {
        if let Some(list) = routes.finished.get_mut(key) {
            list.retain(|(s, _)| *s != session);
            if list.is_empty() {
                routes.finished.remove(key);
            }
        }
    }

    /// Session `session` no longer watches `key` (the key's own entry goes
    /// with its last watcher).
    fn drop_route(&mut self, key: &Key, session: u64) {
        if let Some(watchers) = self.by_key.get_mut(key) {
            watchers.retain(|(s, _)| *s != session);
            if watchers.is_empty() {
                self.by_key.remove(key);
                self.reported.remove(key);
            }
        }
    }
}

/// The routing table and its dispatch task.
pub struct EventRouter {
    routes: Mutex<Routes>,
    next_session: AtomicU64,
}

impl std::fmt::Debug for EventRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRouter").finish_non_exhaustive()
    }
}

impl EventRouter {
    /// Starts routing the events of `spool`; events dropped for a session
    /// that does not read are counted in `metrics`.
    pub fn start(spool: Arc<dyn Spool>, metrics: Arc<Metrics>) -> Arc<Self> {
        let router = Arc::new(EventRouter {
            routes: Mutex::new(Routes::default()),
            next_session: AtomicU64::new(1),
        });
        let events = spool.subscribe_all();
        tokio::spawn(dispatch(
            Arc::downgrade(&router),
            Arc::downgrade(&spool),
            events,
            metrics,
        ));
        router
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        // Every update is a plain insert or remove: usable after a panic elsewhere.
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session's handle and the queue its events arrive on.
    pub fn register(self: &Arc<Self>) -> (Watcher, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        self.routes().by_session.insert(id, HashSet::new());
        (
            Watcher {
                router: Arc::clone(self),
                id,
                tx,
            },
            rx,
        )
    }

    /// Number of messages with at least one watcher (for tests and metrics).
    pub fn watched(&self) -> usize {
        self.routes().by_key.len()
    }

    fn drop_key(routes: &mut Routes, key: &Key) {
        routes.reported.remove(key);
        if let Some(watchers) = routes.by_key.remove(key) {
            for (session, tx) in watchers {
                if let Some(keys) = routes.by_session.get_mut(&session) {
                    keys.remove(key);
                }
                // Kept for reports after delivery, within the session's budget.
                let order = routes.finished_order.entry(session).or_default();
                order.push_back(key.clone());
                let evicted = if order.len() > FINISHED_KEEP {
                    order.pop_front()
                } else {
                    None
                };
                let list = routes.finished.entry(key.clone()).or_default();
                if !list.iter().any(|(s, _)| *s == session) {
                    list.push((session, tx));
                }
                if let Some(old) = evicted {
                    Routes::drop_finished(routes, &old, session);
                }
            }
        }
    }
}

/// A session's handle on the router; dropping it drops the session's routes.
pub struct Watcher {
    router: Arc<EventRouter>,
    id: u64,
    tx: mpsc::Sender<Event>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("id", &self.id).finish()
    }
}

impl Watcher {
    /// From now on, the events of `key` reach this session.
    pub fn watch(&self, key: Key) {
        let mut routes = self.router.routes();
        let Some(keys) = routes.by_session.get_mut(&self.id) else {
            return;
        };
        if !keys.insert(key.clone()) {
            return;
        }
        routes
            .by_key
            .entry(key)
            .or_default()
            .push((self.id, self.tx.clone()));
    }

    /// The events of `key` no longer reach this session.
    pub fn unwatch(&self, key: &Key) {
        let mut routes = self.router.routes();
        if let Some(keys) = routes.by_session.get_mut(&self.id) {
            keys.remove(key);
        }
        routes.drop_route(key, self.id);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut routes = self.router.routes();
        let Some(keys) = routes.by_session.remove(&self.id) else {
            return;
        };
        for key in keys {
            routes.drop_route(&key, self.id);
        }
        if let Some(order) = routes.finished_order.remove(&self.id) {
            for key in order {
                Routes::drop_finished(&mut routes, &key, self.id);
            }
        }
    }
}

async fn dispatch(
    router: std::sync::Weak<EventRouter>,
    spool: std::sync::Weak<dyn Spool>,
    mut events: broadcast::Receiver<Event>,
    metrics: Arc<Metrics>,
) {
    loop {
        let ev = match events.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "event routing fell behind; final events are made again from the spool"
                );
                let (Some(router), Some(spool)) = (router.upgrade(), spool.upgrade()) else {
                    return;
                };
                for ev in missed_finals(&router, spool.as_ref()).await {
                    route(&router, ev, &metrics);
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(router) = router.upgrade() else {
            return;
        };
        route(&router, ev, &metrics);
    }
}

/// Whether `kind` settles its recipient for good (what a client waits for).
fn is_final(kind: &crate::spool::EventKind) -> bool {
    matches!(
        kind,
        crate::spool::EventKind::Delivered { .. } | crate::spool::EventKind::Failed { .. }
    )
}

/// The final events of watched messages that the spool's state has and the
/// routes have not seen (after the broadcast dropped some); `last` on the
/// last one of a message whose every recipient is final.
async fn missed_finals(router: &EventRouter, spool: &dyn Spool) -> Vec<Event> {
    use crate::spool::{EventKind, RcptState};
    let watched: Vec<(Key, HashSet<String>)> = {
        let routes = router.routes();
        routes
            .by_key
            .keys()
            .map(|k| {
                (
                    k.clone(),
                    routes.reported.get(k).cloned().unwrap_or_default(),
                )
            })
            .collect()
    };
    let mut made = Vec::new();
    for (key, reported) in watched {
        let rcpts = match spool.status(&key).await {
            Ok(Some(rcpts)) => rcpts,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, id = %key.id, "cannot read a watched message's status");
                continue;
            }
        };
        let all_final = !rcpts.is_empty() && rcpts.iter().all(|r| r.state.is_final());
        let first = made.len();
        for r in rcpts {
            if reported.contains(&r.rcpt) {
                continue;
            }
            let kind = match r.state {
                RcptState::Delivered { response } => EventKind::Delivered { response },
                RcptState::Failed { reason } => EventKind::Failed { reason },
                // Delivered before its report came: the report is the state now.
                RcptState::Bounced { .. } | RcptState::Complained { .. } => EventKind::Delivered {
                    response: "250 delivered (then reported back)".into(),
                },
                RcptState::Queued | RcptState::Deferred { .. } => continue,
            };
            made.push(Event {
                key: key.clone(),
                rcpt: r.rcpt,
                kind,
                last: false,
                // Made up from the status now (for the sessions' routing
                // only; no webhook sees it).
                at_ms: 0,
            });
        }
        if all_final
            && made.len() > first
            && let Some(ev) = made.last_mut()
        {
            ev.last = true;
        }
    }
    made
}

/// Forwards `ev` to the sessions watching its message.
fn route(router: &EventRouter, ev: Event, metrics: &Metrics) {
    let last = ev.last;
    let report = matches!(
        ev.kind,
        crate::spool::EventKind::Bounced { .. } | crate::spool::EventKind::Complained { .. }
    );
    let mut routes = router.routes();
    if is_final(&ev.kind)
        && routes.by_key.contains_key(&ev.key)
        && !routes
            .reported
            .entry(ev.key.clone())
            .or_default()
            .insert(ev.rcpt.clone())
    {
        // Already made again from the spool after a lag: not twice.
        if last {
            EventRouter::drop_key(&mut routes, &ev.key);
        }
        return;
    }
    let live = routes.by_key.get(&ev.key).into_iter().flatten();
    let finished = if report {
        routes.finished.get(&ev.key)
    } else {
        None
    };
    // A session that asked with `status` after the end may be on both lists.
    let mut sent: Vec<u64> = Vec::new();
    for (session, tx) in live.chain(finished.into_iter().flatten()) {
        if sent.contains(session) {
            continue;
        }
        sent.push(*session);
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(ev.clone()) {
            metrics.inc(&metrics.events_dropped);
            tracing::warn!(
                session,
                id = %ev.key.id,
                "a session is not reading its events; dropped one (clients can ask with status)"
            );
        }
    }
    if last {
        EventRouter::drop_key(&mut routes, &ev.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::{
        Accepted, Depth, EventKind, Lease, Outcome, RcptStatus, SpoolError, Submission,
    };
    use futures_util::future::BoxFuture;
    use std::time::Duration;

    /// A spool that only publishes the events a test sends.
    struct Events(broadcast::Sender<Event>);

    impl Spool for Events {
        fn accept(&self, _: Submission) -> BoxFuture<'_, Result<Accepted, SpoolError>> {
            Box::pin(async { Err(SpoolError::Closed) })
        }
        fn status<'a>(
            &'a self,
            _: &'a Key,
        ) -> BoxFuture<'a, Result<Option<Vec<RcptStatus>>, SpoolError>> {
            Box::pin(async { Ok(None) })
        }
        fn next(&self) -> BoxFuture<'_, Option<Lease>> {
            Box::pin(async { None })
        }
        fn settle(
            &self,
            _: Lease,
            _: Vec<(String, Outcome)>,
        ) -> BoxFuture<'_, Result<(), SpoolError>> {
            Box::pin(async { Ok(()) })
        }
        fn subscribe(&self) -> broadcast::Receiver<Event> {
            self.0.subscribe()
        }
        fn depth(&self) -> Depth {
            Depth::default()
        }
        fn close(&self) {}
    }

    fn key(id: &str) -> Key {
        Key {
            token: "t".into(),
            id: id.into(),
        }
    }

    fn delivered(id: &str, rcpt: &str, last: bool) -> Event {
        Event {
            key: key(id),
            rcpt: rcpt.into(),
            kind: EventKind::Delivered {
                response: "250".into(),
            },
            last,
            at_ms: 0,
        }
    }

    fn deferred(id: &str) -> Event {
        Event {
            key: key(id),
            rcpt: "b@x.org".into(),
            kind: EventKind::Deferred {
                reason: "421".into(),
                attempts: 1,
                retry_at_ms: 0,
            },
            last: false,
            at_ms: 0,
        }
    }

    fn router() -> (broadcast::Sender<Event>, Arc<EventRouter>) {
        let (tx, _) = broadcast::channel(SESSION_QUEUE * 2 + 64);
        let router = EventRouter::start(Arc::new(Events(tx.clone())), Arc::new(Metrics::default()));
        (tx, router)
    }

    async fn recv(rx: &mut mpsc::Receiver<Event>) -> Event {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event arrives")
            .expect("queue open")
    }

    /// Waits until the dispatcher has handled everything sent before this call.
    async fn settled(tx: &broadcast::Sender<Event>, router: &Arc<EventRouter>) {
        let (probe, mut rx) = router.register();
        probe.watch(key("probe"));
        tx.send(deferred("probe")).unwrap();
        recv(&mut rx).await;
    }

    #[tokio::test]
    async fn an_event_reaches_only_the_sessions_watching_its_message() {
        let (tx, router) = router();
        let (a, mut a_rx) = router.register();
        let (b, mut b_rx) = router.register();
        a.watch(key("m1"));
        b.watch(key("m2"));
        tx.send(deferred("m1")).unwrap();
        tx.send(deferred("m2")).unwrap();
        settled(&tx, &router).await;
        assert_eq!(recv(&mut a_rx).await.key, key("m1"));
        assert_eq!(recv(&mut b_rx).await.key, key("m2"));
        assert!(a_rx.try_recv().is_err(), "a saw only m1");
        assert!(b_rx.try_recv().is_err(), "b saw only m2");
    }

    #[tokio::test]
    async fn a_route_ends_after_its_messages_last_event_or_with_its_session() {
        let (tx, router) = router();
        let (a, mut a_rx) = router.register();
        a.watch(key("m1"));
        a.watch(key("m2"));
        assert_eq!(router.watched(), 2);
        // m1 has two recipients: the first final event keeps the route, the last ends it.
        tx.send(delivered("m1", "b@x.org", false)).unwrap();
        tx.send(delivered("m1", "c@x.org", true)).unwrap();
        settled(&tx, &router).await;
        assert_eq!(recv(&mut a_rx).await.rcpt, "b@x.org");
        assert_eq!(recv(&mut a_rx).await.rcpt, "c@x.org");
        assert_eq!(router.watched(), 1, "only m2 is still routed");
        a.watch(key("m3"));
        a.unwatch(&key("m3"));
        assert_eq!(router.watched(), 1, "an unwatched message has no route");
        drop(a);
        assert_eq!(router.watched(), 0, "a session's routes end with it");
    }

    #[tokio::test]
    async fn a_session_that_does_not_read_loses_events_not_memory() {
        let (tx, _) = broadcast::channel(SESSION_QUEUE * 2 + 64);
        let metrics = Arc::new(Metrics::default());
        let router = EventRouter::start(Arc::new(Events(tx.clone())), Arc::clone(&metrics));
        let (a, mut a_rx) = router.register();
        a.watch(key("m1"));
        for _ in 0..SESSION_QUEUE + 10 {
            tx.send(deferred("m1")).unwrap();
        }
        settled(&tx, &router).await;
        let mut queued = 0;
        while a_rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, SESSION_QUEUE, "the queue is bounded");
        assert_eq!(
            metrics.events_dropped.load(Ordering::Relaxed),
            10,
            "every dropped event is counted for /metrics"
        );
    }

    /// A spool whose state says both recipients of every message were delivered.
    struct AllDelivered(broadcast::Sender<Event>);

    impl Spool for AllDelivered {
        fn accept(&self, _: Submission) -> BoxFuture<'_, Result<Accepted, SpoolError>> {
            Box::pin(async { Err(SpoolError::Closed) })
        }
        fn status<'a>(
            &'a self,
            key: &'a Key,
        ) -> BoxFuture<'a, Result<Option<Vec<RcptStatus>>, SpoolError>> {
            let r = (key.id != "probe").then(|| {
                ["b@x.org", "c@x.org"]
                    .into_iter()
                    .map(|rcpt| RcptStatus {
                        rcpt: rcpt.into(),
                        state: crate::spool::RcptState::Delivered {
                            response: "250".into(),
                        },
                    })
                    .collect()
            });
            Box::pin(async move { Ok(r) })
        }
        fn next(&self) -> BoxFuture<'_, Option<Lease>> {
            Box::pin(async { None })
        }
        fn settle(
            &self,
            _: Lease,
            _: Vec<(String, Outcome)>,
        ) -> BoxFuture<'_, Result<(), SpoolError>> {
            Box::pin(async { Ok(()) })
        }
        fn subscribe(&self) -> broadcast::Receiver<Event> {
            self.0.subscribe()
        }
        fn depth(&self) -> Depth {
            Depth::default()
        }
        fn close(&self) {}
    }

    #[tokio::test]
    async fn final_events_a_lagging_broadcast_dropped_are_made_again_from_the_spool_once() {
        let (tx, _) = broadcast::channel(4);
        let spool: Arc<dyn Spool> = Arc::new(AllDelivered(tx.clone()));
        let router = EventRouter::start(Arc::clone(&spool), Arc::new(Metrics::default()));
        let (a, mut a_rx) = router.register();
        a.watch(key("m1"));
        a.watch(key("m2"));
        tx.send(delivered("m1", "b@x.org", false)).unwrap();
        settled(&tx, &router).await;
        // m1's last event is pushed out of the channel before the router
        // reads it; m2's events are still in it, after the lag.
        tx.send(delivered("m1", "c@x.org", true)).unwrap();
        for _ in 0..6 {
            tx.send(deferred("other")).unwrap();
        }
        tx.send(delivered("m2", "b@x.org", false)).unwrap();
        tx.send(delivered("m2", "c@x.org", true)).unwrap();
        settled(&tx, &router).await;
        let mut got = Vec::new();
        while let Ok(ev) = a_rx.try_recv() {
            got.push((ev.key.id, ev.rcpt, ev.last));
        }
        // Messages in any order; each one's recipients in theirs.
        got.sort();
        let want = [
            ("m1", "b@x.org", false),
            ("m1", "c@x.org", true),
            ("m2", "b@x.org", false),
            ("m2", "c@x.org", true),
        ];
        assert_eq!(
            got,
            want.map(|(k, r, l)| (k.to_string(), r.to_string(), l)),
            "each recipient's final event exactly once"
        );
        assert_eq!(router.watched(), 0, "both messages are finished");
        drop(a);
    }
}
