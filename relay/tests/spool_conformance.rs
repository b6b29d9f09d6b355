//! The spool trait's own test suite, run against both implementations
//! through `Arc<dyn Spool>`: every test body below is written once, as an
//! async fn taking an [`Env`] (which opens the spool under test), and the
//! `both!` macro instantiates it as `fs::NAME` (the file spool in a temporary
//! directory) and `pg::NAME` (the PostgreSQL spool on a database of its own,
//! on the test binary's shared server, see `pg_support`).
//!
//! What is promised by the trait is checked here; what only a shared spool
//! can do (two relays on one database, fencing of lapsed leases, a database
//! restart, concurrent migrations, gaps in the event sequence) is in
//! `pg_only` at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pg_support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pg_support::PgServer;
use postwire_relay::spool::pg::{PgOptions, PgSpool, SpoolUrl};
use postwire_relay::spool::{
    Accepted, BounceKind, Control, Controlled, Envelope, Event, EventKind, FsSpool, Key, Lease,
    MessageMeta, Outcome, RcptState, Spool, SpoolError, SpoolOptions, Submission,
};
use tokio::sync::broadcast;

/// Longest wait for anything that should happen (a lease, an event).
const WAIT: Duration = Duration::from_secs(10);

/// Where the spool under test lives.
enum Env {
    Fs(tempfile::TempDir),
    Pg { url: String, password: String },
}

impl Env {
    fn fs() -> Env {
        Env::Fs(tempfile::tempdir().expect("temp dir"))
    }

    /// A fresh database named after the test on the shared server.
    fn pg(name: &str) -> Env {
        let server = PgServer::shared();
        let url = server.create_database(&format!("conf_{name}"));
        Env::Pg {
            url,
            password: server.password().to_string(),
        }
    }

    /// Opens the spool with `opts` (and, on PostgreSQL, a lease of `lease`).
    async fn open_with(&self, opts: SpoolOptions, lease: Duration) -> Arc<dyn Spool> {
        match self {
            Env::Fs(dir) => Arc::new(FsSpool::open(&spool_dir(dir), opts).expect("open FsSpool")),
            Env::Pg { url, password } => Arc::new(open_pg(url, password, opts, lease).await),
        }
    }

    async fn open(&self, opts: SpoolOptions) -> Arc<dyn Spool> {
        self.open_with(opts, Duration::from_secs(30)).await
    }
}

fn spool_dir(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("spool")
}

async fn open_pg(url: &str, password: &str, opts: SpoolOptions, lease: Duration) -> PgSpool {
    let url = SpoolUrl::parse(url, Some(password.to_string())).expect("spool URL");
    PgSpool::open(
        url,
        opts,
        PgOptions {
            lease,
            pool_size: 8,
            ..PgOptions::default()
        },
    )
    .await
    .expect("open PgSpool")
}

/// Short retry delays, so that deferred messages come back quickly.
fn opts() -> SpoolOptions {
    SpoolOptions {
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        max_age: Duration::from_secs(3600),
        ..SpoolOptions::default()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn key(id: &str) -> Key {
    Key {
        token: "tok".into(),
        id: id.into(),
    }
}

fn sub_with(id: &str, rcpts: &[&str], bytes: Vec<u8>) -> Submission {
    Submission {
        meta: MessageMeta {
            key: key(id),
            envelope: Envelope {
                mail_from: "from@example.com".into(),
                rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
                ..Envelope::default()
            },
            received_ms: now_ms(),
        },
        bytes,
    }
}

fn sub(id: &str, rcpts: &[&str]) -> Submission {
    sub_with(
        id,
        rcpts,
        format!("Subject: {id}\r\n\r\nbody of {id}\r\n").into_bytes(),
    )
}

async fn lease(spool: &Arc<dyn Spool>) -> Lease {
    tokio::time::timeout(WAIT, spool.next())
        .await
        .expect("a message was due")
        .expect("the spool is open")
}

async fn recv(rx: &mut broadcast::Receiver<Event>) -> Event {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an event came")
        .expect("event channel open")
}

/// The next `n` events of message `k` (events of other messages skipped).
async fn events_of(rx: &mut broadcast::Receiver<Event>, k: &Key, n: usize) -> Vec<Event> {
    let mut out = Vec::new();
    while out.len() < n {
        let ev = recv(rx).await;
        if &ev.key == k {
            out.push(ev);
        }
    }
    out
}

fn all(lease: &Lease, outcome: impl Fn() -> Outcome) -> Vec<(String, Outcome)> {
    lease
        .envelope
        .rcpt_to
        .iter()
        .map(|r| (r.clone(), outcome()))
        .collect()
}

fn delivered() -> Outcome {
    Outcome::Delivered("250 2.0.0 ok".into())
}

async fn status(spool: &Arc<dyn Spool>, k: &Key) -> Vec<(String, RcptState)> {
    spool
        .status(k)
        .await
        .expect("status")
        .expect("a known message")
        .into_iter()
        .map(|r| (r.rcpt, r.state))
        .collect()
}

/// Each test body once; `fs::NAME` and `pg::NAME` run it on each spool.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod fs {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(super::Env::fs()).await
                }
            )*
        }
        mod pg {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    super::$name(super::Env::pg(stringify!($name))).await
                }
            )*
        }
    };
}

both!(
    accept_is_idempotent_and_leases_once,
    concurrent_accepts_of_one_key_store_it_once,
    settle_records_each_recipient_and_publishes_events,
    a_deferred_message_comes_back_for_the_rest,
    a_recipient_missing_from_the_outcomes_is_transient,
    past_max_age_a_transient_outcome_gives_up,
    bytes_round_trip_exactly,
    operator_view_and_actions,
    cancel_and_delete,
    reports_only_after_delivery,
    close_ends_next,
);

async fn accept_is_idempotent_and_leases_once(env: Env) {
    let spool = env.open(opts()).await;
    let a = key("a");
    assert!(spool.status(&a).await.unwrap().is_none(), "unknown yet");
    let s = sub("a", &["x@example.org", "y@example.org"]);
    let bytes = s.bytes.clone();
    let received = s.meta.received_ms;
    assert_eq!(spool.accept(s).await.unwrap(), Accepted::Stored);
    assert_eq!(
        status(&spool, &a).await,
        vec![
            ("x@example.org".to_string(), RcptState::Queued),
            ("y@example.org".to_string(), RcptState::Queued)
        ]
    );
    // The same key again, even with other bytes: nothing stored twice.
    let again = sub_with("a", &["z@example.org"], b"other".to_vec());
    assert_eq!(spool.accept(again).await.unwrap(), Accepted::Duplicate);
    assert_eq!(status(&spool, &a).await.len(), 2);
    // Another token with the same client id is another message.
    let mut other_token = sub("a", &["x@example.org"]);
    other_token.meta.key.token = "tok2".into();
    assert_eq!(spool.accept(other_token).await.unwrap(), Accepted::Stored);

    let l = lease(&spool).await;
    assert_eq!(l.key, a, "the first accepted first");
    assert_eq!(l.bytes, bytes);
    assert_eq!(l.attempts, 0);
    assert_eq!(l.received_ms, received);
    assert_eq!(l.envelope.mail_from, "from@example.com");
    assert_eq!(l.envelope.rcpt_to, vec!["x@example.org", "y@example.org"]);
    // A duplicate while leased is still a duplicate, and is not leased again:
    // the next lease is the other message.
    assert_eq!(
        spool.accept(sub("a", &["x@example.org"])).await.unwrap(),
        Accepted::Duplicate
    );
    let l2 = lease(&spool).await;
    assert_eq!(l2.key.token, "tok2");
    spool.settle(l2.clone(), all(&l2, delivered)).await.unwrap();
    spool.settle(l.clone(), all(&l, delivered)).await.unwrap();
    // Final: still a duplicate.
    assert_eq!(
        spool.accept(sub("a", &["x@example.org"])).await.unwrap(),
        Accepted::Duplicate
    );
}

async fn concurrent_accepts_of_one_key_store_it_once(env: Env) {
    let spool = env.open(opts()).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let spool = Arc::clone(&spool);
            tokio::spawn(async move { spool.accept(sub("same", &["x@example.org"])).await })
        })
        .collect();
    let mut stored = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Accepted::Stored => stored += 1,
            Accepted::Duplicate => {}
        }
    }
    assert_eq!(stored, 1, "one of the concurrent accepts stores it");
    // Leased once: the next lease after it is a message accepted later.
    let first = lease(&spool).await;
    assert_eq!(first.key, key("same"));
    spool
        .accept(sub("later", &["x@example.org"]))
        .await
        .unwrap();
    assert_eq!(lease(&spool).await.key, key("later"));
}

async fn settle_records_each_recipient_and_publishes_events(env: Env) {
    let spool = env.open(opts()).await;
    let mut mine = spool.subscribe();
    let mut every = spool.subscribe_all();
    let k = key("m");
    spool
        .accept(sub("m", &["d@x.org", "p@x.org", "t@x.org"]))
        .await
        .unwrap();
    let l = lease(&spool).await;
    assert_eq!(l.envelope.rcpt_to, vec!["d@x.org", "p@x.org", "t@x.org"]);
    let before = now_ms();
    spool
        .settle(
            l,
            vec![
                ("d@x.org".into(), Outcome::Delivered("250 yes".into())),
                ("p@x.org".into(), Outcome::Permanent("550 no".into())),
                ("t@x.org".into(), Outcome::Transient("451 later".into())),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        status(&spool, &k).await,
        vec![
            (
                "d@x.org".to_string(),
                RcptState::Delivered {
                    response: "250 yes".into()
                }
            ),
            (
                "p@x.org".to_string(),
                RcptState::Failed {
                    reason: "550 no".into()
                }
            ),
            (
                "t@x.org".to_string(),
                RcptState::Deferred {
                    reason: "451 later".into(),
                    attempts: 1
                }
            ),
        ]
    );
    for rx in [&mut mine, &mut every] {
        let evs = events_of(rx, &k, 3).await;
        let rcpts: Vec<&str> = evs.iter().map(|e| e.rcpt.as_str()).collect();
        assert_eq!(rcpts, ["d@x.org", "p@x.org", "t@x.org"]);
        assert_eq!(
            evs[0].kind,
            EventKind::Delivered {
                response: "250 yes".into()
            }
        );
        assert_eq!(
            evs[1].kind,
            EventKind::Failed {
                reason: "550 no".into()
            }
        );
        match &evs[2].kind {
            EventKind::Deferred {
                reason,
                attempts,
                retry_at_ms,
            } => {
                assert_eq!(reason, "451 later");
                assert_eq!(*attempts, 1);
                // retry_initial (50 ms) after the settle
                assert!(
                    *retry_at_ms + 5 >= before + 50 && *retry_at_ms <= now_ms() + 5_000,
                    "retry_at_ms {retry_at_ms}, settled at {before}"
                );
            }
            other => panic!("expected a deferral, got {other:?}"),
        }
        assert!(evs.iter().all(|e| !e.last), "one recipient is not final");
    }
    // The rest: the deferred recipient only, then the last event.
    let l = lease(&spool).await;
    assert_eq!(l.envelope.rcpt_to, vec!["t@x.org"]);
    assert_eq!(l.attempts, 1);
    spool.settle(l.clone(), all(&l, delivered)).await.unwrap();
    for rx in [&mut mine, &mut every] {
        let ev = events_of(rx, &k, 1).await.remove(0);
        assert_eq!(ev.rcpt, "t@x.org");
        assert!(ev.last, "every recipient is final now");
    }
    assert!(status(&spool, &k).await.iter().all(|(_, s)| s.is_final()));
    assert!(spool.message_bytes(&k).await.unwrap().is_none());
}

async fn a_deferred_message_comes_back_for_the_rest(env: Env) {
    let spool = env.open(opts()).await;
    let mut events = spool.subscribe();
    let k = key("d");
    spool
        .accept(sub("d", &["a@x.org", "b@x.org"]))
        .await
        .unwrap();
    // Attempt 1: all transient.
    let l = lease(&spool).await;
    spool
        .settle(l.clone(), all(&l, || Outcome::Transient("421 busy".into())))
        .await
        .unwrap();
    let evs = events_of(&mut events, &k, 2).await;
    let EventKind::Deferred { retry_at_ms, .. } = evs[1].kind else {
        panic!("expected a deferral, got {:?}", evs[1].kind)
    };
    // Attempt 2: after the delay, both, attempts + 1; one delivered.
    let l = lease(&spool).await;
    assert!(
        now_ms() + 5 >= retry_at_ms,
        "leased at {} before its retry time {retry_at_ms}",
        now_ms()
    );
    assert_eq!(l.attempts, 1);
    assert_eq!(l.envelope.rcpt_to, vec!["a@x.org", "b@x.org"]);
    spool
        .settle(
            l,
            vec![
                ("a@x.org".into(), delivered()),
                ("b@x.org".into(), Outcome::Transient("421 busy".into())),
            ],
        )
        .await
        .unwrap();
    let evs = events_of(&mut events, &k, 2).await;
    assert!(matches!(
        evs[1].kind,
        EventKind::Deferred { attempts: 2, .. }
    ));
    assert!(!evs[1].last);
    // Attempt 3: only the one still open.
    let l = lease(&spool).await;
    assert_eq!(l.attempts, 2);
    assert_eq!(l.envelope.rcpt_to, vec!["b@x.org"]);
    spool.settle(l.clone(), all(&l, delivered)).await.unwrap();
    let ev = events_of(&mut events, &k, 1).await.remove(0);
    assert!(ev.last);
    let view = spool.message(&k).await.unwrap().expect("listed");
    assert_eq!(view.attempts, 3);
    assert_eq!(view.next_attempt_ms, None, "final");
}

async fn a_recipient_missing_from_the_outcomes_is_transient(env: Env) {
    let spool = env.open(opts()).await;
    let k = key("half");
    spool
        .accept(sub("half", &["a@x.org", "b@x.org"]))
        .await
        .unwrap();
    let l = lease(&spool).await;
    spool
        .settle(l, vec![("a@x.org".into(), delivered())])
        .await
        .unwrap();
    let st = status(&spool, &k).await;
    assert!(matches!(st[0].1, RcptState::Delivered { .. }));
    match &st[1].1 {
        RcptState::Deferred { attempts: 1, .. } => {}
        other => panic!("a recipient without an outcome is deferred, got {other:?}"),
    }
    // ... and tried again.
    let l = lease(&spool).await;
    assert_eq!(l.envelope.rcpt_to, vec!["b@x.org"]);
}

async fn past_max_age_a_transient_outcome_gives_up(env: Env) {
    let spool = env
        .open(SpoolOptions {
            max_age: Duration::ZERO,
            ..opts()
        })
        .await;
    let mut events = spool.subscribe();
    let k = key("old");
    spool.accept(sub("old", &["a@x.org"])).await.unwrap();
    let l = lease(&spool).await;
    spool
        .settle(
            l.clone(),
            all(&l, || Outcome::Transient("451 later".into())),
        )
        .await
        .unwrap();
    match &status(&spool, &k).await[0].1 {
        RcptState::Failed { reason } => {
            assert!(reason.starts_with("gave up"), "{reason}");
            assert!(reason.contains("451 later"), "{reason}");
        }
        other => panic!("expected failed, got {other:?}"),
    }
    let ev = events_of(&mut events, &k, 1).await.remove(0);
    assert!(matches!(ev.kind, EventKind::Failed { .. }));
    assert!(ev.last);
}

async fn bytes_round_trip_exactly(env: Env) {
    let spool = env.open(opts()).await;
    // 5 MiB and a bit (not a multiple of PostgreSQL's 256 KiB chunks), every byte value.
    let big: Vec<u8> = (0..(5usize << 20) + 7)
        .map(|i| (i ^ (i >> 8) ^ (i >> 16)) as u8)
        .collect();
    let mut seen = [false; 256];
    for b in &big {
        seen[*b as usize] = true;
    }
    assert!(seen.iter().all(|s| *s));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("big", big),
        ("tiny", b"\n".to_vec()),
        ("empty", Vec::new()),
        ("nul", vec![0, 0, 0xff, b'\r']),
    ];
    for (id, bytes) in &cases {
        assert_eq!(
            spool
                .accept(sub_with(id, &["a@x.org"], bytes.clone()))
                .await
                .unwrap(),
            Accepted::Stored
        );
    }
    for (id, bytes) in &cases {
        let got = spool
            .message_bytes(&key(id))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("bytes of {id}"));
        assert!(
            got == *bytes,
            "{id}: {} bytes back for {}",
            got.len(),
            bytes.len()
        );
        let view = spool.message(&key(id)).await.unwrap().unwrap();
        assert_eq!(view.size, bytes.len() as u64, "{id}");
    }
    let expected: HashMap<Key, Vec<u8>> = cases.into_iter().map(|(id, b)| (key(id), b)).collect();
    for _ in 0..expected.len() {
        let l = lease(&spool).await;
        let want = &expected[&l.key];
        assert!(
            l.bytes == *want,
            "{:?}: {} bytes leased for {}",
            l.key,
            l.bytes.len(),
            want.len()
        );
        spool.settle(l.clone(), all(&l, delivered)).await.unwrap();
        assert!(
            spool.message_bytes(&l.key).await.unwrap().is_none(),
            "gone once final"
        );
    }
}

async fn operator_view_and_actions(env: Env) {
    // Deferrals wait long here: only an operator's retry brings them back.
    let spool = env
        .open(SpoolOptions {
            retry_initial: Duration::from_secs(600),
            retry_max: Duration::from_secs(600),
            ..opts()
        })
        .await;
    let k = key("op");
    let s = sub("op", &["a@x.org", "b@x.org"]);
    let bytes = s.bytes.clone();
    spool.accept(s).await.unwrap();
    let list = spool.messages().await.unwrap();
    assert_eq!(list.len(), 1);
    let v = &list[0];
    assert_eq!(v.key, k);
    assert_eq!(v.mail_from, "from@example.com");
    assert_eq!(v.size, bytes.len() as u64);
    assert!(!v.held && !v.in_flight);
    assert_eq!(v.attempts, 0);
    assert!(v.next_attempt_ms.is_some());
    assert!(v.history.is_empty(), "lists leave the history out");
    assert_eq!(
        spool.message_bytes(&k).await.unwrap().as_deref(),
        Some(&bytes[..])
    );
    assert_eq!(
        spool.find(&|c: &Key| c.id == "op").await.unwrap(),
        Some(k.clone())
    );
    assert_eq!(spool.find(&|c: &Key| c.id == "nope").await.unwrap(), None);

    // Held: never leased (the message accepted after it is), even by a retry.
    assert_eq!(
        spool.control(k.clone(), Control::Hold).await.unwrap(),
        Controlled::Done
    );
    assert_eq!(
        spool.control(k.clone(), Control::Hold).await.unwrap(),
        Controlled::Done
    );
    let v = spool.message(&k).await.unwrap().unwrap();
    assert!(v.held);
    assert_eq!(v.next_attempt_ms, None, "held");
    assert_eq!(
        spool.control(k.clone(), Control::Retry).await.unwrap(),
        Controlled::Done
    );
    assert!(
        spool.message(&k).await.unwrap().unwrap().held,
        "a retry keeps the hold"
    );
    spool.accept(sub("other", &["a@x.org"])).await.unwrap();
    let l = lease(&spool).await;
    assert_eq!(l.key, key("other"), "the held message is not leased");
    spool.settle(l.clone(), all(&l, delivered)).await.unwrap();

    // Released: due now.
    assert_eq!(
        spool.control(k.clone(), Control::Release).await.unwrap(),
        Controlled::Done
    );
    let l = lease(&spool).await;
    assert_eq!(l.key, k);
    let v = spool.message(&k).await.unwrap().unwrap();
    assert!(v.in_flight && !v.held);
    // In flight: a cancel is refused, a retry changes nothing.
    assert!(matches!(
        spool
            .control(k.clone(), Control::Cancel("stop".into()))
            .await
            .unwrap(),
        Controlled::Conflict(_)
    ));
    assert_eq!(
        spool.control(k.clone(), Control::Retry).await.unwrap(),
        Controlled::Done
    );
    spool
        .settle(
            l,
            vec![
                ("a@x.org".into(), delivered()),
                ("b@x.org".into(), Outcome::Transient("451 later".into())),
            ],
        )
        .await
        .unwrap();
    let v = spool.message(&k).await.unwrap().unwrap();
    assert!(!v.in_flight);
    assert_eq!(v.attempts, 1);
    let due = v.next_attempt_ms.expect("deferred: due later");
    assert!(due > now_ms() + 60_000, "retry_initial is 10 minutes");
    // History: what happened to each recipient, oldest first (a shared
    // spool also records the acceptance, as Queued).
    let changes: Vec<(String, RcptState)> = v
        .history
        .iter()
        .filter(|h| h.state != RcptState::Queued)
        .map(|h| (h.rcpt.clone(), h.state.clone()))
        .collect();
    assert_eq!(
        changes,
        vec![
            (
                "a@x.org".to_string(),
                RcptState::Delivered {
                    response: "250 2.0.0 ok".into()
                }
            ),
            (
                "b@x.org".to_string(),
                RcptState::Deferred {
                    reason: "451 later".into(),
                    attempts: 1
                }
            ),
        ]
    );
    assert!(v.history.iter().all(|h| h.at_ms > 0));
    // Retry: due now, for the open recipient only.
    assert_eq!(
        spool.control(k.clone(), Control::Retry).await.unwrap(),
        Controlled::Done
    );
    let l = lease(&spool).await;
    assert_eq!(l.key, k);
    assert_eq!(l.envelope.rcpt_to, vec!["b@x.org"]);
    spool
        .settle(
            l.clone(),
            all(&l, || Outcome::Transient("451 later".into())),
        )
        .await
        .unwrap();
    // A hold while an attempt runs: the attempt finishes, the hold stays.
    assert_eq!(
        spool.control(k.clone(), Control::Retry).await.unwrap(),
        Controlled::Done
    );
    let l = lease(&spool).await;
    assert_eq!(
        spool.control(k.clone(), Control::Hold).await.unwrap(),
        Controlled::Done
    );
    spool
        .settle(
            l.clone(),
            all(&l, || Outcome::Transient("451 later".into())),
        )
        .await
        .unwrap();
    let v = spool.message(&k).await.unwrap().unwrap();
    assert!(v.held && !v.in_flight);
    assert_eq!(v.attempts, 3);
    assert_eq!(
        spool.control(key("unknown"), Control::Hold).await.unwrap(),
        Controlled::NotFound
    );
}

async fn cancel_and_delete(env: Env) {
    let spool = env.open(opts()).await;
    let mut mine = spool.subscribe();
    let mut every = spool.subscribe_all();
    let k = key("c");
    spool
        .accept(sub("c", &["a@x.org", "b@x.org", "c@x.org"]))
        .await
        .unwrap();
    let l = lease(&spool).await;
    spool
        .settle(
            l,
            vec![
                ("a@x.org".into(), delivered()),
                ("b@x.org".into(), Outcome::Transient("451".into())),
                ("c@x.org".into(), Outcome::Transient("451".into())),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        spool.control(k.clone(), Control::Hold).await.unwrap(),
        Controlled::Done
    );
    assert!(
        matches!(
            spool.control(k.clone(), Control::Delete).await.unwrap(),
            Controlled::Conflict(_)
        ),
        "not final: no delete"
    );
    assert!(spool.message_bytes(&k).await.unwrap().is_some());
    let reason = "cancelled by operator".to_string();
    assert_eq!(
        spool
            .control(k.clone(), Control::Cancel(reason.clone()))
            .await
            .unwrap(),
        Controlled::Done
    );
    for rx in [&mut mine, &mut every] {
        let evs = events_of(rx, &k, 5).await;
        let cancelled: Vec<(&str, bool)> = evs[3..]
            .iter()
            .map(|e| {
                assert_eq!(
                    e.kind,
                    EventKind::Failed {
                        reason: reason.clone()
                    }
                );
                (e.rcpt.as_str(), e.last)
            })
            .collect();
        assert_eq!(cancelled, [("b@x.org", false), ("c@x.org", true)]);
    }
    let st = status(&spool, &k).await;
    assert!(
        matches!(st[0].1, RcptState::Delivered { .. }),
        "final stays"
    );
    assert_eq!(
        st[1].1,
        RcptState::Failed {
            reason: reason.clone()
        }
    );
    assert_eq!(
        st[2].1,
        RcptState::Failed {
            reason: reason.clone()
        }
    );
    assert!(
        spool.message_bytes(&k).await.unwrap().is_none(),
        "bytes gone once final"
    );
    let v = spool.message(&k).await.unwrap().unwrap();
    assert!(!v.held, "nothing left to hold");
    assert_eq!(v.next_attempt_ms, None);
    for action in [
        Control::Hold,
        Control::Release,
        Control::Retry,
        Control::Cancel("x".into()),
    ] {
        assert!(
            matches!(
                spool.control(k.clone(), action.clone()).await.unwrap(),
                Controlled::Conflict(_)
            ),
            "{action:?} on a final message"
        );
    }
    // Deleted: no longer listed nor found, still a duplicate.
    spool.accept(sub("keep", &["a@x.org"])).await.unwrap();
    assert_eq!(
        spool.control(k.clone(), Control::Delete).await.unwrap(),
        Controlled::Done
    );
    assert!(spool.message(&k).await.unwrap().is_none());
    assert!(spool.message_bytes(&k).await.unwrap().is_none());
    let listed: Vec<Key> = spool
        .messages()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.key)
        .collect();
    assert_eq!(listed, vec![key("keep")]);
    assert_eq!(
        spool.control(k.clone(), Control::Delete).await.unwrap(),
        Controlled::NotFound
    );
    assert_eq!(
        spool.control(k.clone(), Control::Hold).await.unwrap(),
        Controlled::NotFound
    );
    assert_eq!(
        spool.accept(sub("c", &["a@x.org"])).await.unwrap(),
        Accepted::Duplicate
    );
    // Nothing of it is leased again.
    assert_eq!(lease(&spool).await.key, key("keep"));
}

async fn reports_only_after_delivery(env: Env) {
    let spool = env.open(opts()).await;
    let mut events = spool.subscribe();
    let k = key("r");
    let bounce = || RcptState::Bounced {
        bounce: BounceKind::Hard,
        status: "5.1.1".into(),
        diagnostic: Some("smtp; 550 5.1.1 no such user".into()),
        at_ms: 0,
    };
    spool
        .accept(sub("r", &["ok@x.org", "no@x.org"]))
        .await
        .unwrap();
    assert!(
        !spool
            .report(k.clone(), "ok@x.org".into(), bounce())
            .await
            .unwrap(),
        "queued"
    );
    let l = lease(&spool).await;
    spool
        .settle(
            l,
            vec![
                ("ok@x.org".into(), delivered()),
                ("no@x.org".into(), Outcome::Permanent("550".into())),
            ],
        )
        .await
        .unwrap();
    events_of(&mut events, &k, 2).await;
    assert!(
        !spool
            .report(k.clone(), "no@x.org".into(), bounce())
            .await
            .unwrap(),
        "failed"
    );
    assert!(
        !spool
            .report(key("none"), "ok@x.org".into(), bounce())
            .await
            .unwrap()
    );
    assert!(
        !spool
            .report(k.clone(), "other@x.org".into(), bounce())
            .await
            .unwrap()
    );
    assert!(
        !spool
            .report(
                k.clone(),
                "ok@x.org".into(),
                RcptState::Delivered {
                    response: "x".into()
                }
            )
            .await
            .unwrap(),
        "not a report"
    );
    assert!(
        spool
            .report(k.clone(), "ok@x.org".into(), bounce())
            .await
            .unwrap()
    );
    let ev = events_of(&mut events, &k, 1).await.remove(0);
    assert_eq!(ev.rcpt, "ok@x.org");
    assert_eq!(
        ev.kind,
        EventKind::Bounced {
            bounce: BounceKind::Hard,
            status: "5.1.1".into(),
            diagnostic: Some("smtp; 550 5.1.1 no such user".into())
        }
    );
    match &status(&spool, &k).await[0].1 {
        RcptState::Bounced { status, .. } => assert_eq!(status, "5.1.1"),
        other => panic!("expected bounced, got {other:?}"),
    }
    // A complaint after the bounce is recorded too.
    let complaint = RcptState::Complained {
        feedback_type: Some("abuse".into()),
        at_ms: 0,
    };
    assert!(
        spool
            .report(k.clone(), "ok@x.org".into(), complaint)
            .await
            .unwrap()
    );
    let ev = events_of(&mut events, &k, 1).await.remove(0);
    assert_eq!(
        ev.kind,
        EventKind::Complained {
            feedback_type: Some("abuse".into())
        }
    );
    assert!(matches!(
        status(&spool, &k).await[0].1,
        RcptState::Complained { .. }
    ));
    assert!(matches!(
        status(&spool, &k).await[1].1,
        RcptState::Failed { .. }
    ));
}

async fn close_ends_next(env: Env) {
    let spool = env.open(opts()).await;
    let waiting = {
        let spool = Arc::clone(&spool);
        tokio::spawn(async move { spool.next().await.map(|l| l.key) })
    };
    // Nothing is due: the worker waits (or finds the spool closed already).
    spool.close();
    let r = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("a waiting next() returns once closed")
        .unwrap();
    assert_eq!(r, None);
    // Closed: stored messages stay stored, but are not leased.
    let stored = spool.accept(sub("after", &["a@x.org"])).await;
    if let Ok(a) = stored {
        assert_eq!(a, Accepted::Stored);
    }
    let r = tokio::time::timeout(WAIT, spool.next())
        .await
        .expect("at once");
    assert!(r.is_none());
}

/// What only a spool shared by several relays does: PostgreSQL.
mod pg_only {
    use super::*;

    fn db(name: &str) -> (String, String) {
        let server = PgServer::shared();
        (
            server.create_database(&format!("pgonly_{name}")),
            server.password().to_string(),
        )
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn two_relays_share_the_work_and_the_events() {
        let (url, pw) = db("two_relays");
        let a: Arc<dyn Spool> = Arc::new(open_pg(&url, &pw, opts(), Duration::from_secs(30)).await);
        let b: Arc<dyn Spool> = Arc::new(open_pg(&url, &pw, opts(), Duration::from_secs(30)).await);
        let mut b_all = b.subscribe_all();
        let mut b_mine = b.subscribe();
        const N: usize = 200;
        // Leases per message, and which relay settled it.
        let leased: Arc<Mutex<HashMap<Key, usize>>> = Arc::default();
        let settled_by: Arc<Mutex<HashMap<Key, &'static str>>> = Arc::default();
        let (done_tx, done_rx) = tokio::sync::watch::channel(0usize);
        let mut workers = Vec::new();
        for (name, spool) in [("a", &a), ("b", &b)] {
            for _ in 0..3 {
                let spool = Arc::clone(spool);
                let leased = Arc::clone(&leased);
                let settled_by = Arc::clone(&settled_by);
                let done_tx = done_tx.clone();
                workers.push(tokio::spawn(async move {
                    while let Some(l) = spool.next().await {
                        *leased.lock().unwrap().entry(l.key.clone()).or_default() += 1;
                        let k = l.key.clone();
                        spool.settle(l.clone(), all(&l, delivered)).await.unwrap();
                        let n = {
                            let mut s = settled_by.lock().unwrap();
                            s.insert(k, name);
                            s.len()
                        };
                        done_tx.send_replace(n);
                    }
                }));
            }
        }
        // Accepted alternately on each relay, while the workers run.
        for i in 0..N {
            let spool = if i % 2 == 0 { &a } else { &b };
            let id = format!("m{i:03}");
            assert_eq!(
                spool
                    .accept(sub(&id, &["a@x.org", "b@x.org"]))
                    .await
                    .unwrap(),
                Accepted::Stored
            );
        }
        let mut done_rx = done_rx;
        tokio::time::timeout(Duration::from_secs(30), done_rx.wait_for(|n| *n >= N))
            .await
            .expect("every message settled")
            .unwrap();
        a.close();
        b.close();
        for w in workers {
            w.await.unwrap();
        }
        let leased = leased.lock().unwrap().clone();
        assert_eq!(leased.len(), N);
        assert!(
            leased.values().all(|n| *n == 1),
            "leased more than once: {:?}",
            leased.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
        );
        let settled_by = settled_by.lock().unwrap().clone();
        let by_a = settled_by.values().filter(|r| **r == "a").count();
        let by_b = N - by_a;
        assert!(
            by_a > 0 && by_b > 0,
            "both relays worked: a {by_a}, b {by_b}"
        );
        for i in 0..N {
            let k = key(&format!("m{i:03}"));
            assert!(
                status(&a, &k)
                    .await
                    .iter()
                    .all(|(_, s)| matches!(s, RcptState::Delivered { .. })),
                "{k:?} delivered"
            );
        }
        // B hears every message's last event, A's included; its own
        // subscribers only what B settled.
        let mut last_seen: HashMap<Key, usize> = HashMap::new();
        while last_seen.len() < N {
            let ev = recv(&mut b_all).await;
            if ev.last {
                *last_seen.entry(ev.key).or_default() += 1;
            }
        }
        assert!(last_seen.values().all(|n| *n == 1), "each event once");
        let mut mine = 0;
        while let Ok(ev) = b_mine.try_recv() {
            if ev.last {
                assert_eq!(settled_by[&ev.key], "b", "{:?} was settled by a", ev.key);
                mine += 1;
            }
        }
        assert_eq!(mine, by_b);
        // Idempotency across relays.
        assert_eq!(
            a.accept(sub("x1", &["a@x.org"])).await.unwrap(),
            Accepted::Stored
        );
        assert_eq!(
            b.accept(sub("x1", &["a@x.org"])).await.unwrap(),
            Accepted::Duplicate
        );
        assert_eq!(
            b.accept(sub("m000", &["a@x.org"])).await.unwrap(),
            Accepted::Duplicate
        );
        assert_eq!(
            a.accept(sub("m001", &["a@x.org"])).await.unwrap(),
            Accepted::Duplicate
        );
    }

    /// Accepts, claims and settles of one relay are written in groups
    /// (pg/accept.rs, claim.rs, settle.rs): in a burst, each submission and
    /// each attempt still gets its own answer, a key sent twice in one burst
    /// is stored once, each message is leased once, and a stale attempt in
    /// the same group as good ones is refused alone.
    #[tokio::test(flavor = "multi_thread")]
    async fn grouped_accepts_claims_and_settles_keep_each_answer() {
        let (url, pw) = db("groups");
        let a: Arc<dyn Spool> = Arc::new(open_pg(&url, &pw, opts(), Duration::from_secs(30)).await);
        const N: usize = 300;
        // Every key twice, all at once.
        let mut accepts = tokio::task::JoinSet::new();
        for i in 0..N * 2 {
            let a = Arc::clone(&a);
            accepts.spawn(async move {
                let id = format!("g{:03}", i % N);
                (
                    id.clone(),
                    a.accept(sub(&id, &["a@x.org", "b@x.org"])).await.unwrap(),
                )
            });
        }
        let mut stored = std::collections::HashMap::<String, usize>::new();
        while let Some(r) = accepts.join_next().await {
            let (id, answer) = r.unwrap();
            let n = stored.entry(id).or_default();
            if answer == Accepted::Stored {
                *n += 1;
            }
        }
        assert_eq!(stored.len(), N);
        assert!(
            stored.values().all(|&n| n == 1),
            "each key stored exactly once"
        );

        // Sixteen workers at once: every message leased exactly once, with
        // its own fence and both recipients.
        let mut workers = tokio::task::JoinSet::new();
        let leases = Arc::new(std::sync::Mutex::new(Vec::new()));
        for _ in 0..16 {
            let a = Arc::clone(&a);
            let leases = Arc::clone(&leases);
            workers.spawn(async move {
                while leases.lock().unwrap().len() < N {
                    match tokio::time::timeout(Duration::from_millis(500), a.next()).await {
                        Ok(Some(l)) => leases.lock().unwrap().push(l),
                        _ => break,
                    }
                }
            });
        }
        while workers.join_next().await.is_some() {}
        let leases = std::mem::take(&mut *leases.lock().unwrap());
        assert_eq!(leases.len(), N, "every message leased");
        let keys: std::collections::HashSet<_> = leases.iter().map(|l| l.key.id.clone()).collect();
        assert_eq!(keys.len(), N, "no message leased twice");
        let fences: std::collections::HashSet<_> = leases.iter().map(|l| l.fence).collect();
        assert_eq!(fences.len(), N, "a fence per lease");
        assert!(leases.iter().all(|l| l.envelope.rcpt_to.len() == 2));

        // All settled at once, each with a stale twin (a fence no lease has):
        // the good ones are recorded, the stale ones refused alone.
        let mut settles = tokio::task::JoinSet::new();
        for l in leases {
            let mut stale = l.clone();
            stale.fence = l.fence + 1_000_000;
            let a1 = Arc::clone(&a);
            let a2 = Arc::clone(&a);
            settles.spawn(async move {
                let r = a1.settle(stale.clone(), all(&stale, delivered)).await;
                assert!(matches!(r, Err(SpoolError::LeaseLost(_))), "stale: {r:?}");
            });
            settles.spawn(async move {
                a2.settle(l.clone(), all(&l, delivered)).await.unwrap();
            });
        }
        while let Some(r) = settles.join_next().await {
            r.unwrap();
        }
        for i in 0..N {
            let st = status(&a, &key(&format!("g{i:03}"))).await;
            assert_eq!(st.len(), 2);
            assert!(
                st.iter()
                    .all(|(_, s)| matches!(s, RcptState::Delivered { .. })),
                "{st:?}"
            );
        }
    }

    /// One submission the database refuses (a NUL byte in a text column)
    /// fails alone, not the other submissions of its group.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_refused_submission_fails_alone_in_its_group() {
        let (url, pw) = db("refused");
        let a: Arc<dyn Spool> = Arc::new(open_pg(&url, &pw, opts(), Duration::from_secs(30)).await);
        for round in 0..5 {
            let mut accepts = tokio::task::JoinSet::new();
            for i in 0..40 {
                let a = Arc::clone(&a);
                accepts.spawn(async move {
                    let id = if i == 17 {
                        format!("bad\0{round}")
                    } else {
                        format!("ok{round}-{i}")
                    };
                    (i, a.accept(sub(&id, &["a@x.org"])).await)
                });
            }
            while let Some(r) = accepts.join_next().await {
                match r.unwrap() {
                    (17, r) => assert!(matches!(r, Err(SpoolError::NotStored(_))), "{r:?}"),
                    (_, r) => assert_eq!(r.unwrap(), Accepted::Stored),
                }
            }
        }
    }

    /// A spool that fills from empty has its tables analyzed within seconds
    /// (pg/follow.rs `statistics`), not after autovacuum's minute: plans
    /// made for empty tables would scan every row once thousands wait.
    #[tokio::test(flavor = "multi_thread")]
    async fn tables_that_fill_from_empty_are_analyzed_soon() {
        let (url, pw) = db("analyze");
        let a: Arc<dyn Spool> = Arc::new(open_pg(&url, &pw, opts(), Duration::from_secs(30)).await);
        // Autovacuum kept out: only the relay's own analyze can pass this.
        PgServer::shared().psql(
            "pgonly_analyze",
            "ALTER TABLE postwire_messages SET (autovacuum_enabled = false);
             ALTER TABLE postwire_deliveries SET (autovacuum_enabled = false);
             ALTER TABLE postwire_events SET (autovacuum_enabled = false)",
        );
        let mut accepts = tokio::task::JoinSet::new();
        for i in 0..1500 {
            let a = Arc::clone(&a);
            accepts
                .spawn(async move { a.accept(sub(&format!("s{i}"), &["a@x.org"])).await.unwrap() });
        }
        while let Some(r) = accepts.join_next().await {
            assert_eq!(r.unwrap(), Accepted::Stored);
        }
        let (client, _driver) = connect(&url, &pw).await;
        let started = Instant::now();
        loop {
            let row = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_user_tables
                     WHERE relname IN ('postwire_messages', 'postwire_deliveries', 'postwire_events')
                       AND last_analyze IS NOT NULL",
                    &[],
                )
                .await
                .unwrap();
            if row.get::<_, i64>(0) == 3 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "not analyzed within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// An upstream reply with a NUL character (which PostgreSQL's jsonb
    /// refuses) is recorded, with U+FFFD in its place, and does not keep
    /// the other outcomes settled with it from being recorded.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_reply_with_a_nul_character_is_recorded() {
        let (url, pw) = db("nul");
        let a: Arc<dyn Spool> = Arc::new(open_pg(&url, &pw, opts(), Duration::from_secs(30)).await);
        for i in 0..8 {
            a.accept(sub(&format!("n{i}"), &["a@x.org"])).await.unwrap();
        }
        let mut leases = Vec::new();
        for _ in 0..8 {
            leases.push(lease(&a).await);
        }
        let mut settles = tokio::task::JoinSet::new();
        for l in leases {
            let a = Arc::clone(&a);
            settles.spawn(async move {
                let reply = if l.key.id == "n3" {
                    "250 ok\0x"
                } else {
                    "250 ok"
                };
                a.settle(l.clone(), all(&l, || Outcome::Delivered(reply.into())))
                    .await
                    .unwrap();
            });
        }
        while let Some(r) = settles.join_next().await {
            r.unwrap();
        }
        for i in 0..8 {
            let want = if i == 3 { "250 ok\u{FFFD}x" } else { "250 ok" };
            assert_eq!(
                status(&a, &key(&format!("n{i}"))).await,
                vec![(
                    "a@x.org".to_string(),
                    RcptState::Delivered {
                        response: want.into()
                    }
                )]
            );
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_lapsed_lease_is_fenced_and_a_renewed_one_is_kept() {
        let (url, pw) = db("fencing");
        let lease_time = Duration::from_millis(1500);
        let a: Arc<dyn Spool> = Arc::new(open_pg(&url, &pw, opts(), lease_time).await);
        let b: Arc<dyn Spool> = Arc::new(open_pg(&url, &pw, opts(), lease_time).await);
        assert_eq!(a.renew_every(), Some(lease_time / 3));

        // A leases and stalls past its lease; B takes the message over.
        a.accept(sub("f", &["a@x.org", "b@x.org"])).await.unwrap();
        let la = lease(&a).await;
        assert_ne!(la.fence, 0);
        let lb = lease(&b).await;
        assert_eq!(lb.key, la.key);
        assert!(lb.fence > la.fence, "a new fence");
        assert_eq!(lb.envelope.rcpt_to, la.envelope.rcpt_to);
        assert!(!a.renew(&la).await.unwrap(), "A's lease is lost");
        match a
            .settle(
                la.clone(),
                all(&la, || Outcome::Delivered("250 from A".into())),
            )
            .await
        {
            Err(SpoolError::LeaseLost(k)) => assert_eq!(k, la.key),
            other => panic!("A's late outcome must be refused, got {other:?}"),
        }
        assert!(
            status(&a, &la.key)
                .await
                .iter()
                .all(|(_, s)| *s == RcptState::Queued)
        );
        b.settle(
            lb.clone(),
            all(&lb, || Outcome::Delivered("250 from B".into())),
        )
        .await
        .unwrap();
        assert!(status(&a, &la.key).await.iter().all(|(_, s)| *s
            == RcptState::Delivered {
                response: "250 from B".into()
            }));
        // Too late still, once final.
        assert!(matches!(
            a.settle(la.clone(), all(&la, delivered)).await,
            Err(SpoolError::LeaseLost(_))
        ));

        // A renews while its attempt runs twice its lease time: B gets nothing,
        // and A's outcome is recorded.
        a.accept(sub("r", &["a@x.org"])).await.unwrap();
        let la = lease(&a).await;
        let b_next = {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.next().await.map(|l| l.key) })
        };
        let started = Instant::now();
        let mut every = tokio::time::interval(a.renew_every().unwrap());
        while started.elapsed() < lease_time * 2 {
            every.tick().await;
            assert!(a.renew(&la).await.unwrap(), "renewed in time");
            assert!(!b_next.is_finished(), "B leased a renewed message");
        }
        a.settle(la.clone(), all(&la, delivered)).await.unwrap();
        assert!(!b_next.is_finished());
        b.close();
        assert_eq!(
            tokio::time::timeout(WAIT, b_next).await.unwrap().unwrap(),
            None
        );
        assert!(
            !a.renew(&la).await.unwrap(),
            "nothing to renew once settled"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_database_restart_loses_nothing_and_is_survived() {
        let server = Arc::new(PgServer::start());
        let url = server.create_database("restart");
        let spool: Arc<dyn Spool> =
            Arc::new(open_pg(&url, server.password(), opts(), Duration::from_secs(30)).await);
        let mut every = spool.subscribe_all();
        let stored: Arc<Mutex<Vec<Key>>> = Arc::default();
        // Refused accepts: not acknowledged, but one whose COMMIT reached the
        // disk just before the crash is stored (and so delivered) all the same.
        let failed: Arc<Mutex<Vec<Key>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Traffic: accepts one after the other until told to stop.
        let traffic = {
            let (spool, stored, failed, stop) = (
                Arc::clone(&spool),
                Arc::clone(&stored),
                Arc::clone(&failed),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let id = format!("t{i}");
                    i += 1;
                    match spool.accept(sub(&id, &["a@x.org"])).await {
                        Ok(Accepted::Stored) => stored.lock().unwrap().push(key(&id)),
                        Ok(Accepted::Duplicate) => panic!("{id} is new"),
                        Err(_) => {
                            failed.lock().unwrap().push(key(&id));
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        };
        let wait_stored = |n: usize| {
            let stored = Arc::clone(&stored);
            async move {
                tokio::time::timeout(Duration::from_secs(30), async {
                    while stored.lock().unwrap().len() < n {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
                .await
                .expect("accepts go on")
            }
        };
        wait_stored(20).await;
        let s = Arc::clone(&server);
        tokio::task::spawn_blocking(move || s.restart_immediate())
            .await
            .unwrap();
        let before = stored.lock().unwrap().len();
        // Accepts work again by themselves.
        wait_stored(before + 20).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        traffic.await.unwrap();

        // While it is down, an accept fails (never a false Stored); once it
        // is back, accepts work again on the same spool.
        let s = Arc::clone(&server);
        tokio::task::spawn_blocking(move || s.stop_immediate())
            .await
            .unwrap();
        assert!(spool.accept(sub("down", &["a@x.org"])).await.is_err());
        assert!(spool.status(&key("down")).await.is_err());
        let s = Arc::clone(&server);
        tokio::task::spawn_blocking(move || s.start_again())
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match spool.accept(sub("up", &["a@x.org"])).await {
                Ok(Accepted::Stored) => break,
                Ok(Accepted::Duplicate) => panic!("never stored before"),
                Err(e) => assert!(Instant::now() < deadline, "accepts still fail: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(spool.status(&key("down")).await.unwrap().is_none());
        let mut stored = stored.lock().unwrap().clone();
        stored.push(key("up"));

        // Nothing acknowledged is lost: every one is delivered, and its
        // event reaches the relay's clients.
        for k in &stored {
            assert!(spool.status(k).await.unwrap().is_some(), "{k:?} lost");
        }
        let mut open: std::collections::HashSet<Key> = stored.iter().cloned().collect();
        let failed = failed.lock().unwrap().clone();
        let mut leased = std::collections::HashSet::new();
        while !open.iter().all(|k| leased.contains(k)) {
            let l = lease(&spool).await;
            assert!(
                open.contains(&l.key) || failed.contains(&l.key),
                "{:?} was never submitted",
                l.key
            );
            assert!(leased.insert(l.key.clone()), "{:?} leased twice", l.key);
            spool.settle(l.clone(), all(&l, delivered)).await.unwrap();
        }
        while !open.is_empty() {
            let ev = recv(&mut every).await;
            if ev.last {
                open.remove(&ev.key);
            }
        }
        eprintln!(
            "restart: {} accepts stored, {} refused while the database was away",
            stored.len(),
            failed.len()
        );
    }

    /// Event `seq` values commit out of order and leave gaps (a rollback; the
    /// jump a sequence makes after a crash): the follower publishes a late
    /// commit below a gap, and is held up by no gap, however many events
    /// come after it.
    #[tokio::test(flavor = "multi_thread")]
    async fn events_reach_every_relay_across_gaps_and_late_commits() {
        let (url, pw) = db("event_gaps");
        let spool: Arc<dyn Spool> =
            Arc::new(open_pg(&url, &pw, opts(), Duration::from_secs(30)).await);
        let mut every = spool.subscribe_all();
        let server = PgServer::shared();
        // A transaction takes a seq and commits late.
        let (client, driver) = connect(&url, &pw).await;
        client
            .batch_execute(&format!("BEGIN; {}", insert(0, 0)))
            .await
            .unwrap();
        // A gap no transaction will fill: a rolled-back insert.
        server.psql(
            "pgonly_event_gaps",
            &format!("BEGIN; {}; ROLLBACK", insert(1, 1)),
        );
        // More events after them than the follower reads at once.
        let n = 2500;
        server.psql("pgonly_event_gaps", &insert(2, n));
        let mut got = std::collections::HashSet::new();
        while got.len() < n - 1 {
            let ev = recv(&mut every).await;
            assert!(got.insert(ev.key.id.clone()), "{} twice", ev.key.id);
        }
        assert!(!got.contains("g0") && !got.contains("g1"));
        client.batch_execute("COMMIT").await.unwrap();
        let ev = recv(&mut every).await;
        assert_eq!(ev.key.id, "g0", "the late commit is published");
        drop(client);
        let _ = driver.await;
        // And what comes next too.
        server.psql("pgonly_event_gaps", &insert(n + 1, n + 1));
        let ev = recv(&mut every).await;
        assert_eq!(ev.key.id, format!("g{}", n + 1));
    }

    /// Rate limits counted in blocks: two relays taking from one token's
    /// budget of 640 a minute (blocks of 10) are granted exactly 640 in
    /// the minute, then refused until it ends.
    #[tokio::test(flavor = "multi_thread")]
    async fn rate_blocks_of_two_relays_grant_exactly_the_budget() {
        use postwire_relay::spool::pg::rate::{PgRate, block_for};
        const LIMIT: u32 = 640;
        assert_eq!(block_for(LIMIT), 10);
        let (url, pw) = db("rate_blocks");
        let a = open_pg(&url, &pw, opts(), Duration::from_secs(30)).await;
        let b = open_pg(&url, &pw, opts(), Duration::from_secs(30)).await;
        let rates = [PgRate::new(a.pool()), PgRate::new(b.pool())];
        // Well inside one minute of the database's clock.
        let server = PgServer::shared();
        let deadline = Instant::now() + Duration::from_secs(70);
        while server
            .psql("pgonly_rate_blocks", "SELECT postwire_now_ms() % 60000")
            .parse::<u64>()
            .unwrap()
            > 40_000
        {
            assert!(
                Instant::now() < deadline,
                "the database's clock stands still"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (mut granted, mut refused) = (0, 0);
        for n in 0..LIMIT + 60 {
            // Unevenly: relay A takes two for each of B's.
            let rate = &rates[usize::from(n % 3 == 2)];
            match rate.take("app", LIMIT).await.expect("counted") {
                Ok(()) => granted += 1,
                Err(wait) => {
                    assert!(wait <= Duration::from_secs(60), "{wait:?}");
                    refused += 1;
                }
            }
        }
        assert_eq!((granted, refused), (LIMIT, 60));
        // Far fewer round trips than submissions.
        let counted: i64 = server
            .psql(
                "pgonly_rate_blocks",
                "SELECT sum(count) FROM postwire_rate WHERE token = 'app'",
            )
            .parse()
            .unwrap();
        assert!(
            counted >= i64::from(LIMIT) && counted <= i64::from(LIMIT) + 20,
            "{counted}"
        );
    }

    /// A late commit whose transaction id is newer than that of the commit
    /// the follower saw after its gap (it took its id later, its `seq`
    /// earlier): the gap waits for it. (A snapshot's `xmax` is one past the
    /// newest *completed* transaction, so such a writer is at or above it:
    /// waiting for `xmin` to pass `xmax` moved over its event for ever.)
    #[tokio::test(flavor = "multi_thread")]
    async fn a_late_commit_with_the_newest_transaction_id_is_not_skipped() {
        let (url, pw) = db("newest_xid");
        let spool: Arc<dyn Spool> =
            Arc::new(open_pg(&url, &pw, opts(), Duration::from_secs(30)).await);
        let mut every = spool.subscribe_all();
        let (first, d1) = connect(&url, &pw).await;
        let (late, d2) = connect(&url, &pw).await;
        // `first` takes its id, then `late` its id and a seq, then `first`
        // the next seq, and commits.
        first
            .batch_execute("BEGIN; SELECT pg_current_xact_id()")
            .await
            .unwrap();
        late.batch_execute(&format!(
            "BEGIN; SELECT pg_current_xact_id(); {}",
            insert(0, 0)
        ))
        .await
        .unwrap();
        first
            .batch_execute(&format!("{}; COMMIT", insert(1, 1)))
            .await
            .unwrap();
        assert_eq!(recv(&mut every).await.key.id, "g1");
        // Several reads of the follower with `late` still open.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        late.batch_execute("COMMIT").await.unwrap();
        assert_eq!(
            recv(&mut every).await.key.id,
            "g0",
            "the late commit is published"
        );
        drop((first, late));
        let _ = (d1.await, d2.await);
    }

    /// A message whose chunks are not all there (damage, a hand-made
    /// deletion) is failed, never sent short.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_incomplete_copy_is_failed_not_sent() {
        let (url, pw) = db("incomplete");
        let spool: Arc<dyn Spool> =
            Arc::new(open_pg(&url, &pw, opts(), Duration::from_secs(30)).await);
        let mut events = spool.subscribe();
        let big = vec![b'x'; 300 << 10];
        spool
            .accept(sub_with("broken", &["a@x.org", "b@x.org"], big))
            .await
            .unwrap();
        PgServer::shared().psql(
            "pgonly_incomplete",
            "DELETE FROM postwire_message_chunks WHERE seq = 1 AND message_id =
               (SELECT id FROM postwire_messages WHERE client_id = 'broken')",
        );
        spool
            .accept(sub("badenvelope", &["c@x.org"]))
            .await
            .unwrap();
        PgServer::shared().psql(
            "pgonly_incomplete",
            "UPDATE postwire_messages SET envelope = '\"not an envelope\"' WHERE client_id = 'badenvelope'",
        );
        spool.accept(sub("fine", &["a@x.org"])).await.unwrap();
        assert_eq!(lease(&spool).await.key, key("fine"));
        for (_, state) in status(&spool, &key("badenvelope")).await {
            match state {
                RcptState::Failed { reason } => assert!(reason.contains("unreadable"), "{reason}"),
                other => panic!("expected failed, got {other:?}"),
            }
        }
        for (_, state) in status(&spool, &key("broken")).await {
            match state {
                RcptState::Failed { reason } => assert!(reason.contains("incomplete"), "{reason}"),
                other => panic!("expected failed, got {other:?}"),
            }
        }
        let evs = events_of(&mut events, &key("broken"), 2).await;
        assert!(evs[1].last);
    }

    /// A relay that starts while an event's transaction is committing (its
    /// `seq` below the newest one) publishes it once committed, and not the
    /// events committed before it started.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_relay_started_while_an_event_commits_hears_it() {
        let (url, pw) = db("start_mid_commit");
        let a = open_pg(&url, &pw, opts(), Duration::from_secs(30)).await;
        let server = PgServer::shared();
        let (client, driver) = connect(&url, &pw).await;
        client
            .batch_execute(&format!("BEGIN; {}", insert(0, 0)))
            .await
            .unwrap();
        server.psql("pgonly_start_mid_commit", &insert(1, 3));
        let b = open_pg(&url, &pw, opts(), Duration::from_secs(30)).await;
        let mut every = b.subscribe_all();
        server.psql("pgonly_start_mid_commit", &insert(4, 4));
        assert_eq!(recv(&mut every).await.key.id, "g4", "from now on");
        client.batch_execute("COMMIT").await.unwrap();
        assert_eq!(recv(&mut every).await.key.id, "g0", "the late commit");
        drop(client);
        let _ = driver.await;
        drop(a);
    }

    /// SQL inserting events for ids `g{from}` to `g{to}` (as a relay's
    /// settle would, without its message; dated now, so that housekeeping
    /// keeps them).
    fn insert(from: usize, to: usize) -> String {
        format!(
            "INSERT INTO postwire_events (message_id, token, client_id, rcpt, kind, last, at_ms, relay)
             SELECT 0, 'tok', 'g' || i, 'a@x.org', '{{\"kind\":\"delivered\",\"response\":\"250\"}}', true, postwire_now_ms(), 'psql'
             FROM generate_series({from}, {to}) AS i"
        )
    }

    /// A connection of the test's own, and the task driving it.
    async fn connect(url: &str, pw: &str) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
        let url = SpoolUrl::parse(url, Some(pw.to_string())).unwrap();
        let (client, mut conn) = url.connect_one().await.unwrap();
        let driver = tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(m) = conn.next().await {
                if m.is_err() {
                    return;
                }
            }
        });
        (client, driver)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn relays_starting_at_once_migrate_once() {
        let (url, pw) = db("migrations");
        let opens = (0..4).map(|_| open_pg(&url, &pw, opts(), Duration::from_secs(30)));
        let spools = futures_util::future::join_all(opens).await;
        assert_eq!(spools.len(), 4);
        let server = PgServer::shared();
        assert_eq!(
            server.psql(
                "pgonly_migrations",
                "SELECT count(*), count(DISTINCT version) FROM postwire_migrations"
            ),
            {
                let n = postwire_relay::spool::pg::schema::MIGRATIONS.len();
                format!("{n}|{n}")
            }
        );
        // Usable by all.
        let a: Arc<dyn Spool> = Arc::new(spools[0].clone());
        let d: Arc<dyn Spool> = Arc::new(spools[3].clone());
        assert_eq!(
            a.accept(sub("m", &["a@x.org"])).await.unwrap(),
            Accepted::Stored
        );
        assert_eq!(
            d.accept(sub("m", &["a@x.org"])).await.unwrap(),
            Accepted::Duplicate
        );
        // A database migrated by a newer relay is refused.
        server.psql(
            "pgonly_migrations",
            "INSERT INTO postwire_migrations (version) VALUES (999)",
        );
        let url = SpoolUrl::parse(&url, Some(pw)).unwrap();
        match PgSpool::open(url, opts(), PgOptions::default()).await {
            Err(SpoolError::Database(e)) => assert!(e.contains("999"), "{e}"),
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
    }
}
