//! The space of delivered messages comes back when traffic stops: an idle
//! batch writer gives up its segment once every message in it is final
//! (before, the writers' two current segments stayed on disk, up to 64 MiB
//! each of delivered messages, until they filled up: the soak benchmark).

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;

fn sub(id: &str) -> Submission {
    Submission {
        meta: MessageMeta {
            key: Key {
                token: "t".into(),
                id: id.into(),
            },
            envelope: Envelope {
                mail_from: "a@example.com".into(),
                rcpt_to: vec!["b@x.org".into()],
                ..Envelope::default()
            },
            received_ms: now_ms(),
        },
        bytes: format!("Subject: {id}\r\n\r\nbody of {id}\r\n").into_bytes(),
    }
}

fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("batches"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "batch"))
            })
            .count()
        })
        .unwrap_or(0)
}

/// Waits (bounded) until no segment file is left.
async fn until_no_segment(dir: &Path) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    while segments(dir) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    segments(dir)
}

async fn lease(spool: &FsSpool) -> Lease {
    tokio::time::timeout(Duration::from_secs(10), spool.next())
        .await
        .expect("a message was due")
        .expect("spool open")
}

#[tokio::test]
async fn an_idle_writer_gives_up_a_segment_whose_messages_are_all_final() {
    let dir = tempfile::tempdir().unwrap();
    let opts = SpoolOptions {
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(40),
        ..SpoolOptions::default()
    };
    let spool = FsSpool::open(dir.path(), opts).unwrap();
    for id in ["m1", "m2"] {
        assert_eq!(spool.accept(sub(id)).await.unwrap(), Accepted::Stored);
    }
    assert!(segments(dir.path()) > 0);

    // One delivered, one deferred: the deferred one keeps its segment.
    let first = lease(&spool).await;
    let second = lease(&spool).await;
    let ok = |l: &Lease| {
        vec![(
            l.envelope.rcpt_to[0].clone(),
            Outcome::Delivered("250 ok".into()),
        )]
    };
    spool.settle(first.clone(), ok(&first)).await.unwrap();
    let later = vec![(
        "b@x.org".to_string(),
        Outcome::Transient("451 later".into()),
    )];
    spool.settle(second.clone(), later).await.unwrap();
    assert!(segments(dir.path()) > 0, "a live message's segment stays");

    // Once it is delivered too, the idle writer lets the segment go.
    let retry = lease(&spool).await;
    spool.settle(retry.clone(), ok(&retry)).await.unwrap();
    assert_eq!(
        until_no_segment(dir.path()).await,
        0,
        "no segment left once all is final"
    );

    // The writer opens a new segment for the next message, which is
    // delivered and known as before.
    assert_eq!(spool.accept(sub("m3")).await.unwrap(), Accepted::Stored);
    let third = lease(&spool).await;
    assert_eq!(third.bytes, b"Subject: m3\r\n\r\nbody of m3\r\n");
    spool.settle(third.clone(), ok(&third)).await.unwrap();
    assert_eq!(until_no_segment(dir.path()).await, 0);
    for id in ["m1", "m2", "m3"] {
        let st = spool
            .status(&Key {
                token: "t".into(),
                id: id.into(),
            })
            .expect("known");
        assert!(
            matches!(st[0].state, RcptState::Delivered { .. }),
            "{id}: {st:?}"
        );
    }
    assert_eq!(spool.accept(sub("m1")).await.unwrap(), Accepted::Duplicate);
}
