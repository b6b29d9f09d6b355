//! The webhook outbox catching up with the file spool's record: a delivery
//! event the outbox never got (a crash between the spool's commit and the
//! outbox write) is queued at the next start under the id it would have
//! had, and nothing already queued is queued twice.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::dispatch::{Options, Webhooks, spool_event_id};
use super::mark::{self, Mark};
use super::outbox::Entry;
use super::store::{self, Endpoint};
use crate::spool::{
    Envelope, EventKind, FsSpool, Key, MessageMeta, Outcome, Spool, SpoolOptions, Submission,
};

fn sub(id: &str) -> Submission {
    Submission {
        meta: MessageMeta {
            key: Key {
                token: "app".into(),
                id: id.into(),
            },
            envelope: Envelope {
                mail_from: "a@example.com".into(),
                rcpt_to: vec!["b@example.org".into()],
                ..Envelope::default()
            },
            received_ms: 1,
        },
        bytes: format!("Subject: {id}\r\n\r\nbody\r\n").into_bytes(),
    }
}

/// Accepts `id` and delivers it (one recipient).
async fn deliver(spool: &Arc<dyn Spool>, id: &str) {
    spool.accept(sub(id)).await.unwrap();
    let lease = tokio::time::timeout(Duration::from_secs(5), spool.next())
        .await
        .expect("due")
        .expect("open");
    assert_eq!(lease.key.id, id);
    spool
        .settle(
            lease,
            vec![("b@example.org".into(), Outcome::Delivered("250 ok".into()))],
        )
        .await
        .unwrap();
}

/// The stored entries, read without `DirOutbox::open` (which removes the
/// temporary files of writes in progress: it is for the relay at start).
fn outbox(data: &Path) -> Vec<Entry> {
    let Ok(dir) = std::fs::read_dir(data.join("webhooks").join("outbox")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect()
}

fn delivered_of(data: &Path, id: &str) -> Vec<Entry> {
    outbox(data)
        .into_iter()
        .filter(|e| e.kind == "delivered" && e.body.contains(&format!("\"id\":\"{id}\"")))
        .collect()
}

async fn until_delivered_of(data: &Path, id: &str) -> Vec<Entry> {
    // Generous: a loaded machine (CI runs other tests beside this one).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let found = delivered_of(data, id);
        if !found.is_empty() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no delivered event of {id} in the outbox");
}

fn hook_opts() -> Options {
    Options {
        // One failed attempt (nothing listens), then the entry waits.
        retry_initial: Duration::from_secs(3600),
        retry_max: Duration::from_secs(3600),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_outbox_missed_is_queued_at_the_next_start_under_its_own_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    store::add(
        data,
        Endpoint {
            name: "app".into(),
            url: "http://127.0.0.1:9/hook".into(),
            token: None,
            allow_http: true,
            allow_private: true,
        },
    )
    .unwrap();
    let spool: Arc<dyn Spool> = Arc::new(
        FsSpool::open(
            &data.join("spool"),
            SpoolOptions {
                retry_initial: Duration::from_millis(20),
                ..SpoolOptions::default()
            },
        )
        .unwrap(),
    );

    // Running: m1's event reaches the outbox live; a graceful stop saves an
    // exact watermark.
    let first = Webhooks::start(data, hook_opts(), spool.subscribe()).unwrap();
    first.catch_up(Arc::clone(&spool)).await;
    deliver(&spool, "m1").await;
    let live = until_delivered_of(data, "m1").await;
    first.stop().await;
    let saved = mark::load(data).expect("a watermark at the stop");
    assert!(saved.clean, "{saved:?}");

    // The crash window: m2's event is published with no outbox listening.
    deliver(&spool, "m2").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(delivered_of(data, "m2").is_empty());

    // The next start reads it again from the spool, under the id the live
    // path gives it; m1's is not queued twice.
    let second = Webhooks::start(data, hook_opts(), spool.subscribe()).unwrap();
    second.catch_up(Arc::clone(&spool)).await;
    let again = delivered_of(data, "m2");
    assert_eq!(again.len(), 1, "{again:?}");
    let recorded = spool
        .events_since(0)
        .await
        .unwrap()
        .expect("the file spool keeps a record");
    let m2 = recorded
        .iter()
        .find(|e| e.key.id == "m2")
        .expect("m2's event in the record");
    assert!(matches!(m2.kind, EventKind::Delivered { .. }));
    assert!(m2.last, "the message's last event");
    assert_eq!(
        again[0].id,
        format!("{}-app", spool_event_id(m2, "delivered"))
    );
    let m1 = recorded.iter().find(|e| e.key.id == "m1").unwrap();
    assert_eq!(
        live[0].id,
        format!("{}-app", spool_event_id(m1, "delivered"))
    );
    assert_eq!(delivered_of(data, "m1").len(), 1);

    // After a crash (unclean watermark) both lie within the slack: read
    // again, recognised, not queued twice.
    mark::save(
        data,
        Mark {
            ms: m2.at_ms + 1,
            clean: false,
        },
    )
    .unwrap();
    let third = Webhooks::start(data, hook_opts(), spool.subscribe()).unwrap();
    third.catch_up(Arc::clone(&spool)).await;
    assert_eq!(delivered_of(data, "m1").len(), 1);
    assert_eq!(delivered_of(data, "m2").len(), 1);
    spool.close();
}
