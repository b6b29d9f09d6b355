//! Reports after delivery (bounces, complaints) in the filesystem spool:
//! journalled with the message's status, published as events, kept across
//! a restart, and refused for recipients that were not delivered.

use std::path::Path;
use std::time::Duration;

use super::*;

fn sub(id: &str, rcpts: &[&str]) -> Submission {
    Submission {
        meta: MessageMeta {
            key: key(id),
            envelope: Envelope {
                mail_from: "a@example.com".into(),
                rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
                ..Envelope::default()
            },
            received_ms: now_ms(),
        },
        bytes: format!("Subject: {id}\r\n\r\nbody\r\n").into_bytes(),
    }
}

fn key(id: &str) -> Key {
    Key {
        token: "t".into(),
        id: id.into(),
    }
}

fn open(dir: &Path) -> FsSpool {
    for _ in 0..200 {
        match FsSpool::open(dir, SpoolOptions::default()) {
            Ok(s) => return s,
            Err(SpoolError::Locked(_)) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("open failed: {e}"),
        }
    }
    panic!("spool stayed locked")
}

fn bounced() -> RcptState {
    RcptState::Bounced {
        bounce: BounceKind::Hard,
        status: "5.1.1".into(),
        diagnostic: Some("smtp; 550 5.1.1 unknown".into()),
        at_ms: 7,
    }
}

#[tokio::test]
async fn a_bounce_after_delivery_is_journalled_published_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path());
    spool
        .accept(sub("m1", &["b@x.org", "c@x.org"]))
        .await
        .unwrap();
    let l = tokio::time::timeout(Duration::from_secs(5), spool.next())
        .await
        .unwrap()
        .unwrap();
    let outcomes = vec![
        ("b@x.org".to_string(), Outcome::Delivered("250 ok".into())),
        ("c@x.org".to_string(), Outcome::Permanent("550 no".into())),
    ];
    spool.settle(l, outcomes).await.unwrap();
    let mut events = spool.subscribe();
    assert!(
        !spool
            .report(key("m1"), "c@x.org".into(), bounced())
            .await
            .unwrap(),
        "a failed recipient was never delivered: nothing to bounce"
    );
    assert!(
        !spool
            .report(key("nope"), "b@x.org".into(), bounced())
            .await
            .unwrap()
    );
    assert!(
        spool
            .report(key("m1"), "b@x.org".into(), bounced())
            .await
            .unwrap()
    );
    // The attempt's own events may be published after its settle returned: skip them.
    let ev = loop {
        let ev = events.recv().await.unwrap();
        if !matches!(
            ev.kind,
            EventKind::Delivered { .. } | EventKind::Failed { .. }
        ) {
            break ev;
        }
    };
    assert_eq!(ev.rcpt, "b@x.org");
    assert!(
        matches!(ev.kind, EventKind::Bounced { bounce: BounceKind::Hard, ref status, .. } if status == "5.1.1")
    );
    assert_eq!(
        spool.find(&mut |k| k.id == "m1"),
        Some(key("m1")),
        "a delivered message can still be found"
    );
    drop(spool);

    let spool = open(dir.path());
    let st = spool.status(&key("m1")).expect("known after a restart");
    assert_eq!(st[0].state, bounced());
    assert!(matches!(st[1].state, RcptState::Failed { .. }));
    // A complaint after the bounce replaces it; the message stays final.
    let complained = RcptState::Complained {
        feedback_type: Some("abuse".into()),
        at_ms: 9,
    };
    assert!(
        spool
            .report(key("m1"), "b@x.org".into(), complained.clone())
            .await
            .unwrap()
    );
    assert_eq!(spool.depth().queued, 0);
    drop(spool);
    let spool = open(dir.path());
    assert_eq!(spool.status(&key("m1")).unwrap()[0].state, complained);
}
