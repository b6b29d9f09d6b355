//! The shared webhook outbox of the PostgreSQL spool (`webhooks::pg`,
//! migration 4), on a real PostgreSQL (pg_support) through the library:
//! every event of a message whose token an endpoint hears gets its outbox
//! row in the transaction that records the event (accepted with its
//! envelope, then one per recipient's outcome), and none for an endpoint of
//! another token; events are captured only while an endpoint exists; a claimed row is leased, invisible to other relays until
//! the lease passes, fenced (the relay whose lease passed can neither
//! delete nor put back the row), put back with its attempts, handed back at
//! a stop, and removed with its endpoint. The HTTP side, with relays, is in
//! `pg_webhooks.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pg_support;

use std::sync::Arc;
use std::time::Duration;

use pg_support::PgServer;
use postwire_relay::spool::pg::{PgOptions, PgSpool, SpoolUrl};
use postwire_relay::spool::{
    Accepted, Envelope, Key, MessageMeta, Outcome, Spool, SpoolOptions, Submission,
};
use postwire_relay::webhooks::Endpoint;
use postwire_relay::webhooks::pg::{Claimed, PgWebhooks};

async fn open(name: &str) -> (PgSpool, PgWebhooks) {
    let server = PgServer::shared();
    let url = server.create_database(&format!("whout_{name}"));
    let url = SpoolUrl::parse(&url, Some(server.password().to_string())).expect("spool URL");
    let spool = PgSpool::open(
        url.clone(),
        SpoolOptions::default(),
        PgOptions {
            lease: Duration::from_secs(30),
            pool_size: 4,
            ..PgOptions::default()
        },
    )
    .await
    .expect("open PgSpool");
    let hooks = PgWebhooks::new(spool.pool(), &url);
    (spool, hooks)
}

fn endpoint(name: &str, token: Option<&str>) -> Endpoint {
    Endpoint {
        name: name.into(),
        url: format!("https://{name}.example/hook"),
        token: token.map(str::to_string),
        allow_http: false,
        allow_private: false,
    }
}

fn sub(id: &str, rcpts: &[&str]) -> Submission {
    Submission {
        meta: MessageMeta {
            key: Key {
                token: "app".into(),
                id: id.into(),
            },
            envelope: Envelope {
                mail_from: "from@example.com".into(),
                rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
                ..Envelope::default()
            },
            received_ms: 1_700_000_000_000,
        },
        bytes: format!("Subject: {id}\r\n\r\nbody\r\n").into_bytes(),
    }
}

/// A claimed row as the fenced statements take it.
fn held(row: &Claimed) -> (i64, i64) {
    (row.id, row.lease_until_ms)
}

fn kinds(rows: &[Claimed]) -> Vec<String> {
    let mut k: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}:{}:{}:{}",
                r.endpoint.name,
                r.key.id,
                r.kind["kind"].as_str().unwrap(),
                r.rcpt
            )
        })
        .collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_of_a_heard_token_gets_its_outbox_row_with_the_event() {
    let (spool, hooks) = open("rows").await;
    let pool = spool.pool();
    let capture = || async {
        let c = pool.get().await.expect("connection");
        let row = c
            .query_one(
                "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'postwire_webhook_events'",
                &[],
            )
            .await
            .expect("trigger");
        row.get::<_, String>(0)
    };
    assert_eq!(capture().await, "D", "no endpoint: events are not captured");
    let spool: Arc<dyn Spool> = Arc::new(spool);
    spool
        .accept(sub("before", &["a@example.org"]))
        .await
        .expect("accept");
    let secret = hooks.add(endpoint("all", None)).await.expect("add all");
    assert!(secret.starts_with("whsec_"));
    hooks
        .add(endpoint("other", Some("not-app")))
        .await
        .expect("add other");
    assert!(
        hooks.add(endpoint("all", None)).await.is_err(),
        "name taken"
    );
    let listed = hooks.list().await.expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(hooks.get("all").await.expect("get").1, secret);
    assert_eq!(capture().await, "O", "an endpoint: events are captured");
    let r = spool
        .accept(sub("m1", &["a@example.org", "b@example.org"]))
        .await
        .expect("accept");
    assert!(matches!(r, Accepted::Stored));
    let rows = hooks.claim("relay-a", 100, 30_000).await.expect("claim");
    assert_eq!(
        kinds(&rows),
        ["all:m1:accepted:"],
        "none for the message before"
    );
    let env = rows[0]
        .envelope
        .clone()
        .expect("accepted carries the envelope");
    assert_eq!(env["mailFrom"], "from@example.com");
    assert_eq!(env["rcptTo"][1], "b@example.org");
    assert_eq!(rows[0].key.id, "m1");
    assert_eq!(
        hooks
            .done_all("relay-a", &[held(&rows[0])])
            .await
            .expect("done"),
        1
    );

    // The message accepted before any endpoint existed is settled first.
    let early = tokio::time::timeout(Duration::from_secs(10), spool.next())
        .await
        .expect("due")
        .expect("open");
    assert_eq!(early.key.id, "before");
    spool
        .settle(
            early,
            vec![("a@example.org".into(), Outcome::Delivered("250 ok".into()))],
        )
        .await
        .expect("settle");
    let lease = tokio::time::timeout(Duration::from_secs(10), spool.next())
        .await
        .expect("due")
        .expect("open");
    let outcomes = lease
        .envelope
        .rcpt_to
        .iter()
        .map(|r| (r.clone(), Outcome::Delivered("250 ok".into())))
        .collect();
    spool.settle(lease, outcomes).await.expect("settle");
    let rows = hooks.claim("relay-a", 100, 30_000).await.expect("claim");
    // The earlier message's outcome came after the endpoint: it is heard.
    assert_eq!(
        kinds(&rows),
        [
            "all:before:delivered:a@example.org",
            "all:m1:delivered:a@example.org",
            "all:m1:delivered:b@example.org"
        ]
    );
    // Each message's last event says so.
    assert_eq!(rows.iter().filter(|r| r.last).count(), 2);
    assert!(rows.iter().all(|r| r.attempts == 0));
    let depth = hooks.depth().await.expect("depth");
    assert!(depth.contains(&("all".to_string(), 3)), "{depth:?}");
    assert!(depth.contains(&("other".to_string(), 0)), "{depth:?}");
    hooks.remove("all").await.expect("remove");
    assert_eq!(capture().await, "O", "one endpoint left");
    hooks.remove("other").await.expect("remove");
    assert_eq!(capture().await, "D", "the last endpoint removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_is_leased_fenced_put_back_handed_back_and_removed_with_its_endpoint() {
    let (spool, hooks) = open("lease").await;
    hooks.add(endpoint("crm", Some("app"))).await.expect("add");
    let spool: Arc<dyn Spool> = Arc::new(spool);
    spool
        .accept(sub("m2", &["a@example.org"]))
        .await
        .expect("accept");

    let a = hooks.claim("relay-a", 10, 300).await.expect("claim a");
    assert_eq!(a.len(), 1);
    assert!(
        hooks
            .claim("relay-b", 10, 300)
            .await
            .expect("claim b")
            .is_empty(),
        "a leased row is not claimed again"
    );
    // The lease passes: relay b takes the row; relay a is fenced out.
    let b = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let b = hooks.claim("relay-b", 10, 30_000).await.expect("claim b");
        if !b.is_empty() {
            break b;
        }
    };
    assert_eq!(b[0].id, a[0].id);
    assert_eq!(b[0].taken_from.as_deref(), Some("relay-a"));
    assert_eq!(a[0].taken_from, None);
    assert_eq!(
        hooks
            .done_all("relay-a", &[held(&a[0])])
            .await
            .expect("done a"),
        0
    );
    assert!(!hooks.retry("relay-a", &a[0], 1, 0).await.expect("retry a"));
    // Put back by its holder, due now, with the attempt counted.
    assert!(hooks.retry("relay-b", &b[0], 1, 0).await.expect("retry b"));
    let again = hooks.claim("relay-a", 10, 30_000).await.expect("claim a");
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    // Handed back unsent (it waited too long here): due at once for
    // another relay, and only by the relay holding it.
    assert_eq!(
        hooks
            .hand_back("relay-b", &[held(&again[0])])
            .await
            .expect("hand back b"),
        0
    );
    assert_eq!(
        hooks
            .hand_back("relay-a", &[held(&again[0])])
            .await
            .expect("hand back a"),
        1
    );
    let b2 = hooks.claim("relay-b", 10, 30_000).await.expect("claim b");
    assert_eq!((b2.len(), b2[0].attempts), (1, 1));
    assert!(hooks.retry("relay-b", &b2[0], 1, 0).await.expect("retry b"));
    let again = hooks.claim("relay-a", 10, 30_000).await.expect("claim a");
    assert_eq!(again.len(), 1);
    // Handed back at a stop: due at once for another relay.
    assert_eq!(hooks.release("relay-a").await.expect("release"), 1);
    let c = hooks.claim("relay-c", 10, 30_000).await.expect("claim c");
    assert_eq!(c.len(), 1);
    // Removing the endpoint removes its events.
    hooks.remove("crm").await.expect("remove");
    assert!(hooks.remove("crm").await.is_err(), "removed already");
    assert!(hooks.depth().await.expect("depth").is_empty());
    assert_eq!(
        hooks
            .done_all("relay-c", &[held(&c[0])])
            .await
            .expect("done c"),
        0
    );
}
