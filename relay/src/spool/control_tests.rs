//! Operator actions on the filesystem spool ([`Spool::control`]): holds
//! that survive a restart, cancels that free segments and publish failures,
//! deletions that keep the idempotency key.

use std::path::Path;
use std::time::Duration;

use super::*;

fn opts() -> SpoolOptions {
    SpoolOptions {
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(40),
        ..SpoolOptions::default()
    }
}

fn key(id: &str) -> Key {
    Key {
        token: "t".into(),
        id: id.into(),
    }
}

fn sub(id: &str) -> Submission {
    Submission {
        meta: MessageMeta {
            key: key(id),
            envelope: Envelope {
                mail_from: "a@example.com".into(),
                rcpt_to: vec!["b@x.org".into(), "c@x.org".into()],
                ..Envelope::default()
            },
            received_ms: now_ms(),
        },
        bytes: format!("Subject: {id}\r\n\r\nbody\r\n").into_bytes(),
    }
}

fn open(dir: &Path) -> FsSpool {
    for _ in 0..200 {
        match FsSpool::open(dir, opts()) {
            Ok(s) => return s,
            Err(SpoolError::Locked(_)) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("open failed: {e}"),
        }
    }
    panic!("spool stayed locked")
}

async fn no_lease_within(spool: &FsSpool, ms: u64) {
    let r = tokio::time::timeout(Duration::from_millis(ms), spool.next()).await;
    assert!(r.is_err(), "nothing should be leased");
}

async fn lease(spool: &FsSpool) -> Lease {
    tokio::time::timeout(Duration::from_secs(5), spool.next())
        .await
        .expect("a message was due")
        .expect("spool open")
}

#[tokio::test]
async fn a_held_message_is_never_leased_even_after_a_restart_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    spool.accept(sub("m")).await.unwrap();
    assert_eq!(
        spool.control(key("m"), Control::Hold).await.unwrap(),
        Controlled::Done
    );
    assert!(spool.message(&key("m")).unwrap().held);
    assert_eq!(
        spool.control(key("m"), Control::Retry).await.unwrap(),
        Controlled::Done
    );
    no_lease_within(&spool, 100).await;
    drop(spool);
    let spool = open(dir.path());
    assert!(
        spool.message(&key("m")).unwrap().held,
        "the hold is durable"
    );
    no_lease_within(&spool, 100).await;
    assert_eq!(
        spool.control(key("m"), Control::Release).await.unwrap(),
        Controlled::Done
    );
    let l = lease(&spool).await;
    assert_eq!(l.key, key("m"));
    // A delivery in flight: cancel is refused, the attempt finishes.
    assert!(matches!(
        spool
            .control(key("m"), Control::Cancel("x".into()))
            .await
            .unwrap(),
        Controlled::Conflict(_)
    ));
    let outcomes = l
        .envelope
        .rcpt_to
        .iter()
        .map(|r| (r.clone(), Outcome::Delivered("250 ok".into())))
        .collect();
    spool.settle(l, outcomes).await.unwrap();
    assert!(matches!(
        spool.control(key("m"), Control::Hold).await.unwrap(),
        Controlled::Conflict(_)
    ));
    let v = spool.message(&key("m")).unwrap();
    assert_eq!(v.history.len(), 2);
    assert_eq!(
        spool.control(key("nope"), Control::Hold).await.unwrap(),
        Controlled::NotFound
    );
}

#[tokio::test]
async fn a_cancel_fails_every_recipient_publishes_it_and_frees_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    let mut events = spool.subscribe();
    spool.accept(sub("m")).await.unwrap();
    spool.control(key("m"), Control::Hold).await.unwrap();
    assert_eq!(
        spool.message_bytes(&key("m")).unwrap().unwrap(),
        b"Subject: m\r\n\r\nbody\r\n"
    );
    assert!(matches!(
        spool.control(key("m"), Control::Delete).await.unwrap(),
        Controlled::Conflict(_)
    ));
    let reason = "cancelled by operator".to_string();
    assert_eq!(
        spool
            .control(key("m"), Control::Cancel(reason.clone()))
            .await
            .unwrap(),
        Controlled::Done
    );
    for last in [false, true] {
        let ev = events.recv().await.unwrap();
        assert_eq!(
            ev.kind,
            EventKind::Failed {
                reason: reason.clone()
            }
        );
        assert_eq!(ev.last, last);
    }
    assert_eq!(spool.depth().queued, 0);
    assert!(spool.message_bytes(&key("m")).unwrap().is_none());
    assert!(spool.status(&key("m")).unwrap().iter().all(|r| r.state
        == RcptState::Failed {
            reason: reason.clone()
        }));
    // Deleted: not listed, still a duplicate, and so after a restart.
    assert_eq!(
        spool.control(key("m"), Control::Delete).await.unwrap(),
        Controlled::Done
    );
    assert!(spool.messages().is_empty());
    assert_eq!(spool.accept(sub("m")).await.unwrap(), Accepted::Duplicate);
    drop(spool);
    let spool = open(dir.path());
    assert!(spool.messages().is_empty());
    assert!(spool.message(&key("m")).is_none());
    assert_eq!(spool.accept(sub("m")).await.unwrap(), Accepted::Duplicate);
    no_lease_within(&spool, 100).await;
}

#[tokio::test]
async fn a_message_history_survives_restarts_and_journal_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    spool.accept(sub("h")).await.unwrap();
    let l = lease(&spool).await;
    spool
        .settle(
            l,
            vec![
                ("b@x.org".into(), Outcome::Transient("451 later".into())),
                ("c@x.org".into(), Outcome::Delivered("250 ok".into())),
            ],
        )
        .await
        .unwrap();
    let l = lease(&spool).await;
    spool
        .settle(
            l,
            vec![("b@x.org".into(), Outcome::Delivered("250 ok".into()))],
        )
        .await
        .unwrap();
    let before = spool.message(&key("h")).unwrap().history;
    let states = |h: &[HistoryItem]| -> Vec<(String, &'static str)> {
        h.iter()
            .map(|i| {
                let s = match i.state {
                    RcptState::Deferred { .. } => "deferred",
                    RcptState::Delivered { .. } => "delivered",
                    _ => "other",
                };
                (i.rcpt.clone(), s)
            })
            .collect()
    };
    assert_eq!(
        states(&before),
        vec![
            ("b@x.org".to_string(), "deferred"),
            ("c@x.org".to_string(), "delivered"),
            ("b@x.org".to_string(), "delivered"),
        ]
    );
    // Each open compacts the journal to one record per key: twice, so the
    // second reads the history back from a compacted record.
    let mut spool = Some(spool);
    for _ in 0..2 {
        drop(spool.take());
        let reopened = open(dir.path());
        let after = reopened.message(&key("h")).unwrap().history;
        assert_eq!(states(&after), states(&before));
        assert_eq!(
            after.iter().map(|i| i.at_ms).collect::<Vec<_>>(),
            before.iter().map(|i| i.at_ms).collect::<Vec<_>>()
        );
        spool = Some(reopened);
    }
}
