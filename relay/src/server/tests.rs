//! Session tests over channels: a real spool in a temporary directory, the
//! pickup deliverer, and the session driven frame by frame.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::limits::RateLimits;
use super::live_tokens::LiveTokens;
use super::metrics::Metrics;
use super::protocol::{Code, ServerFrame};
use super::session::{self, SessionContext, WsIn, WsOut};
use crate::pickup::Pickup;
use crate::spool::deliver::{Deliver, TransportDeliver};
use crate::spool::{FsSpool, Spool, SpoolOptions};
use crate::token;

/// A relay's parts without the HTTP server: token "app" (senders
/// `@example.com`, 1000 bytes, `rate` per minute) in a temporary data dir.
pub(super) struct Relay {
    pub(super) dir: tempfile::TempDir,
    pub(super) ctx: SessionContext,
    pub(super) secret: String,
    shutdown: watch::Sender<bool>,
    _runner: tokio::task::JoinSet<()>,
}

pub(super) fn relay_with(rate: u32) -> Relay {
    let dir = tempfile::tempdir().unwrap();
    let secret = token::add(dir.path(), "app", &["@example.com".into()], 1000, rate).unwrap();
    let spool: Arc<dyn Spool> =
        Arc::new(FsSpool::open(&dir.path().join("spool"), SpoolOptions::default()).unwrap());
    let pickup = Pickup::new(dir.path().join("pickup")).unwrap();
    let deliver: Arc<dyn Deliver> = Arc::new(TransportDeliver::new(pickup, 2, "pickup"));
    let metrics = Arc::new(Metrics::default());
    let runner = crate::spool::runner::start(Arc::clone(&spool), deliver, Arc::clone(&metrics));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let events = super::events::EventRouter::start(Arc::clone(&spool), Arc::clone(&metrics));
    let ctx = SessionContext {
        spool,
        tokens: Arc::new(LiveTokens::load(dir.path()).unwrap()),
        limits: Arc::new(RateLimits::default()),
        metrics,
        events,
        window: 4,
        suppressions: None,
        auth_timeout: Duration::from_millis(300),
        shutdown: shutdown_rx,
    };
    Relay {
        dir,
        ctx,
        secret,
        shutdown,
        _runner: runner,
    }
}

fn relay() -> Relay {
    relay_with(1000)
}

struct Client {
    tx: mpsc::UnboundedSender<Result<WsIn, String>>,
    rx: mpsc::UnboundedReceiver<WsOut>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    fn connect(relay: &Relay) -> Client {
        let (in_tx, in_rx) = mpsc::unbounded_channel::<Result<WsIn, String>>();
        let (out_tx, out_rx) = mpsc::unbounded_channel::<WsOut>();
        let sink = futures_util::sink::unfold(out_tx, |tx, item: WsOut| async move {
            tx.send(item).map_err(|_| "closed")?;
            Ok::<_, &'static str>(tx)
        });
        let stream = futures_util::stream::unfold(in_rx, |mut rx| async move {
            rx.recv().await.map(|m| (m, rx))
        });
        let task = tokio::spawn(session::run(
            relay.ctx.clone(),
            None,
            Box::pin(sink),
            Box::pin(stream),
        ));
        Client {
            tx: in_tx,
            rx: out_rx,
            task,
        }
    }

    async fn ready(relay: &Relay) -> Client {
        let mut c = Client::connect(relay);
        c.json(json!({"type": "auth", "token": relay.secret}));
        match c.frame().await {
            ServerFrame::Ready {
                protocol,
                token,
                window,
                ..
            } => {
                assert_eq!(
                    (protocol.as_str(), token.as_str(), window),
                    ("postwire.v1", "app", 4)
                );
            }
            other => panic!("expected ready, got {other:?}"),
        }
        c
    }

    fn json(&self, v: serde_json::Value) {
        self.tx.send(Ok(WsIn::Text(v.to_string()))).unwrap();
    }

    fn submit(&self, id: &str, from: &str, to: &[&str], bytes: &[u8]) {
        self.json(json!({"type": "submit", "id": id, "envelope": {"mailFrom": from, "rcptTo": to}, "size": bytes.len()}));
        self.tx.send(Ok(WsIn::Binary(bytes.to_vec()))).unwrap();
    }

    async fn next(&mut self) -> WsOut {
        tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .expect("a frame in time")
            .expect("open")
    }

    async fn frame(&mut self) -> ServerFrame {
        match self.next().await {
            WsOut::Text(t) => serde_json::from_str(&t).unwrap(),
            WsOut::Close(code, reason) => panic!("closed {code} {reason}"),
        }
    }

    /// The error frame and close code that end the session.
    async fn closed_with(&mut self) -> (Code, u16) {
        let code = match self.frame().await {
            ServerFrame::Error { code, .. } => code,
            other => panic!("expected error, got {other:?}"),
        };
        match self.next().await {
            WsOut::Close(close, _) => (code, close),
            other => panic!("expected close, got {other:?}"),
        }
    }
}

/// id, mailFrom, rcptTo, bytes, expected code.
type Case<'a> = (&'a str, &'a str, Vec<&'a str>, &'a [u8], Code);

pub(super) const MSG: &[u8] =
    b"From: ana@example.com\r\nTo: bob@x.org\r\nSubject: hi\r\n\r\nhello\r\n";

pub(super) fn pickup_files(relay: &Relay) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(relay.dir.path().join("pickup"))
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_submission_is_accepted_and_its_delivery_is_reported_per_recipient() {
    let relay = relay();
    let mut c = Client::ready(&relay).await;
    c.submit("m1", "ana@example.com", &["bob@x.org", "carl@y.org"], MSG);
    assert_eq!(
        c.frame().await,
        ServerFrame::Accepted {
            id: "m1".into(),
            duplicate: false,
            rcpt_to: vec!["bob@x.org".into(), "carl@y.org".into()]
        }
    );
    let mut delivered = Vec::new();
    while delivered.len() < 2 {
        match c.frame().await {
            ServerFrame::Delivered { id, rcpt, .. } if id == "m1" => delivered.push(rcpt),
            other => panic!("unexpected {other:?}"),
        }
    }
    delivered.sort();
    assert_eq!(delivered, ["bob@x.org", "carl@y.org"]);
    let files = pickup_files(&relay);
    assert_eq!(files.len(), 1);
    assert_eq!(
        std::fs::read(&files[0]).unwrap(),
        MSG,
        "delivered byte for byte"
    );
}

#[tokio::test]
async fn a_dsn_request_and_requiretls_in_the_envelope_reach_the_transport() {
    let relay = relay();
    let mut c = Client::ready(&relay).await;
    let dsn = json!({"notify": ["failure", "delay"], "ret": "hdrs", "envid": "x"});
    c.json(json!({"type": "submit", "id": "d1", "size": MSG.len(),
        "envelope": {"mailFrom": "ana@example.com", "rcptTo": ["José@ejemplo.es"],
                     "dsn": dsn, "requireTls": true}}));
    c.tx.send(Ok(WsIn::Binary(MSG.to_vec()))).unwrap();
    assert!(
        matches!(c.frame().await, ServerFrame::Accepted { rcpt_to, .. } if rcpt_to == ["José@ejemplo.es"])
    );
    assert!(matches!(c.frame().await, ServerFrame::Delivered { .. }));
    // The pickup transport writes the envelope it was handed.
    let files = pickup_files(&relay);
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(files[0].with_extension("json")).unwrap()).unwrap();
    assert_eq!(envelope["dsn"], dsn);
    assert_eq!(envelope["requireTls"], true);

    // A malformed request is refused before anything is stored.
    c.json(json!({"type": "submit", "id": "d2", "size": MSG.len(),
        "envelope": {"mailFrom": "ana@example.com", "rcptTo": ["bob@x.org"],
                     "dsn": {"notify": ["never", "delay"]}}}));
    c.tx.send(Ok(WsIn::Binary(MSG.to_vec()))).unwrap();
    match c.frame().await {
        ServerFrame::Rejected { code, message, .. } => {
            assert_eq!(code, Code::InvalidDsn);
            assert!(message.contains("never"), "{message}");
        }
        other => panic!("expected rejected, got {other:?}"),
    }
    assert_eq!(pickup_files(&relay).len(), 1);
}

#[tokio::test]
async fn the_envelope_is_taken_from_the_headers_when_the_client_gives_none() {
    let relay = relay();
    let mut c = Client::ready(&relay).await;
    c.json(json!({"type": "submit", "id": "m1", "size": MSG.len()}));
    c.tx.send(Ok(WsIn::Binary(MSG.to_vec()))).unwrap();
    assert_eq!(
        c.frame().await,
        ServerFrame::Accepted {
            id: "m1".into(),
            duplicate: false,
            rcpt_to: vec!["bob@x.org".into()]
        }
    );
    assert!(matches!(c.frame().await, ServerFrame::Delivered { rcpt, .. } if rcpt == "bob@x.org"));
}

#[tokio::test]
async fn a_first_frame_that_is_not_auth_closes_with_auth_required() {
    let relay = relay();
    let mut c = Client::connect(&relay);
    c.submit("m1", "ana@example.com", &["bob@x.org"], MSG);
    assert_eq!(c.closed_with().await, (Code::AuthRequired, 4401));
    assert!(
        relay
            .ctx
            .spool
            .status(&crate::spool::Key {
                token: "app".into(),
                id: "m1".into()
            })
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_wrong_token_closes_with_unauthorized() {
    let relay = relay();
    let mut c = Client::connect(&relay);
    c.json(json!({"type": "auth", "token": "pw_not-a-real-token"}));
    assert_eq!(c.closed_with().await, (Code::Unauthorized, 4401));
}

#[tokio::test]
async fn no_auth_frame_in_time_closes_with_timeout() {
    let relay = relay();
    let mut c = Client::connect(&relay);
    assert_eq!(c.closed_with().await, (Code::Timeout, 4408));
}

#[tokio::test]
async fn each_bad_submission_gets_its_code_and_nothing_is_spooled_or_delivered() {
    let relay = relay();
    let mut c = Client::ready(&relay).await;
    let big = vec![b'x'; 1001];
    let cases: Vec<Case<'_>> = vec![
        (
            "big",
            "ana@example.com",
            vec!["bob@x.org"],
            &big,
            Code::TooLarge,
        ),
        (
            "crlf",
            "ana@example.com\r\nRCPT TO:<evil@z.org>",
            vec!["bob@x.org"],
            MSG,
            Code::BadEnvelope,
        ),
        (
            "lf",
            "ana@example.com",
            vec!["bob@x.org\nDATA"],
            MSG,
            Code::BadEnvelope,
        ),
        (
            "addr",
            "ana@example.com",
            vec!["not an address"],
            MSG,
            Code::InvalidAddress,
        ),
        ("none", "ana@example.com", vec![], MSG, Code::InvalidAddress),
        (
            "sender",
            "mallory@elsewhere.org",
            vec!["bob@x.org"],
            MSG,
            Code::SenderNotAllowed,
        ),
        (
            "bad id!",
            "ana@example.com",
            vec!["bob@x.org"],
            MSG,
            Code::BadId,
        ),
    ];
    for (id, from, to, bytes, code) in &cases {
        c.submit(id, from, to, bytes);
        match c.frame().await {
            ServerFrame::Rejected {
                id: got,
                code: got_code,
                message,
            } => {
                assert_eq!((&got.as_str(), got_code), (id, *code), "{message}");
                assert!(!message.is_empty());
            }
            other => panic!("{id}: expected rejected, got {other:?}"),
        }
    }
    // The session is still usable, and nothing bad reached the spool.
    c.submit("good", "ana@example.com", &["bob@x.org"], MSG);
    assert_eq!(
        c.frame().await,
        ServerFrame::Accepted {
            id: "good".into(),
            duplicate: false,
            rcpt_to: vec!["bob@x.org".into()]
        }
    );
    assert!(matches!(c.frame().await, ServerFrame::Delivered { .. }));
    assert_eq!(pickup_files(&relay).len(), 1);
    for (id, ..) in &cases {
        assert!(
            relay
                .ctx
                .spool
                .status(&crate::spool::Key {
                    token: "app".into(),
                    id: id.to_string()
                })
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn a_pickup_delivery_names_the_file_but_no_server_path() {
    let relay = relay();
    let mut c = Client::ready(&relay).await;
    c.submit("p1", "ana@example.com", &["bob@x.org"], MSG);
    assert!(matches!(c.frame().await, ServerFrame::Accepted { .. }));
    match c.frame().await {
        ServerFrame::Delivered {
            response,
            smtp_code,
            enhanced_code,
            ..
        } => {
            assert_eq!(
                (smtp_code, enhanced_code.as_deref()),
                (Some(250), Some("2.0.0"))
            );
            assert!(
                response.starts_with("250 2.0.0 written to pickup directory as "),
                "{response}"
            );
            assert!(
                !response.contains('/'),
                "a server path reached the client: {response}"
            );
            assert!(response.ends_with(".eml"), "{response}");
        }
        other => panic!("expected delivered, got {other:?}"),
    }
}

#[tokio::test]
async fn a_submit_announcing_too_much_is_refused_before_its_bytes() {
    let relay = relay();
    let mut c = Client::ready(&relay).await;
    // 200 MB announced, no binary frame sent: the answer comes at once.
    c.json(json!({"type": "submit", "id": "huge", "envelope": {"mailFrom": "ana@example.com", "rcptTo": ["bob@x.org"]}, "size": 200_000_000u64}));
    match c.frame().await {
        ServerFrame::Rejected { id, code, .. } => {
            assert_eq!((id.as_str(), code), ("huge", Code::TooLarge))
        }
        other => panic!("expected rejected, got {other:?}"),
    }
    // The client skips the bytes and goes on: the session takes the next submit.
    c.submit("next", "ana@example.com", &["bob@x.org"], MSG);
    assert!(matches!(c.frame().await, ServerFrame::Accepted { ref id, .. } if id == "next"));
    assert!(matches!(c.frame().await, ServerFrame::Delivered { .. }));
    // A client that sends the bytes anyway gets no second answer for them.
    let big = vec![b'x'; 1001];
    c.submit("big", "ana@example.com", &["bob@x.org"], &big);
    assert!(
        matches!(c.frame().await, ServerFrame::Rejected { ref id, code: Code::TooLarge, .. } if id == "big")
    );
    c.submit("after", "ana@example.com", &["bob@x.org"], MSG);
    assert!(matches!(c.frame().await, ServerFrame::Accepted { ref id, .. } if id == "after"));
}

#[tokio::test]
async fn a_binary_frame_of_the_wrong_size_is_rejected() {
    let relay = relay();
    let mut c = Client::ready(&relay).await;
    c.json(json!({"type": "submit", "id": "m1", "envelope": {"mailFrom": "ana@example.com", "rcptTo": ["b@x.org"]}, "size": 10}));
    c.tx.send(Ok(WsIn::Binary(MSG.to_vec()))).unwrap();
    assert!(matches!(
        c.frame().await,
        ServerFrame::Rejected {
            code: Code::SizeMismatch,
            ..
        }
    ));
}

#[tokio::test]
async fn a_malformed_frame_with_multibyte_text_closes_with_protocol_and_never_panics() {
    let relay = relay();
    for n in 0..4 {
        let mut c = Client::ready(&relay).await;
        // The error message quotes the type; its 120-byte cut must land between characters.
        let odd = format!("{}{}", "x".repeat(n), "ñ".repeat(100));
        c.json(json!({"type": odd}));
        assert_eq!(c.closed_with().await, (Code::Protocol, 4400));
    }
}

#[tokio::test]
async fn a_binary_frame_without_submit_is_a_protocol_error() {
    let relay = relay();
    let mut c = Client::ready(&relay).await;
    c.tx.send(Ok(WsIn::Binary(MSG.to_vec()))).unwrap();
    assert_eq!(c.closed_with().await, (Code::Protocol, 4400));
}

#[tokio::test]
async fn a_resubmitted_id_is_a_duplicate_and_is_delivered_once_and_status_answers_on_a_new_connection()
 {
    let relay = relay();
    let mut c = Client::ready(&relay).await;
    c.submit("m1", "ana@example.com", &["bob@x.org"], MSG);
    assert_eq!(
        c.frame().await,
        ServerFrame::Accepted {
            id: "m1".into(),
            duplicate: false,
            rcpt_to: vec!["bob@x.org".into()]
        }
    );
    assert!(matches!(c.frame().await, ServerFrame::Delivered { .. }));
    drop(c);

    let mut c = Client::ready(&relay).await;
    c.submit("m1", "ana@example.com", &["bob@x.org"], MSG);
    assert_eq!(
        c.frame().await,
        ServerFrame::Accepted {
            id: "m1".into(),
            duplicate: true,
            rcpt_to: vec!["bob@x.org".into()]
        }
    );
    c.json(json!({"type": "status", "id": "m1"}));
    match c.frame().await {
        ServerFrame::Status {
            id,
            known,
            recipients,
        } => {
            assert_eq!((id.as_str(), known), ("m1", true));
            assert!(matches!(
                recipients[0].state,
                crate::spool::RcptState::Delivered { .. }
            ));
        }
        other => panic!("{other:?}"),
    }
    let routed = relay.ctx.events.watched();
    c.json(json!({"type": "status", "id": "never-sent"}));
    assert!(matches!(
        c.frame().await,
        ServerFrame::Status { known: false, .. }
    ));
    assert_eq!(
        relay.ctx.events.watched(),
        routed,
        "asking about an unknown id leaves no route behind"
    );
    assert_eq!(pickup_files(&relay).len(), 1);
}

#[tokio::test]
async fn the_rate_limit_of_a_token_is_enforced_across_its_connections() {
    let relay = relay_with(2);
    let mut a = Client::ready(&relay).await;
    let mut b = Client::ready(&relay).await;
    a.submit("m1", "ana@example.com", &["bob@x.org"], MSG);
    assert!(matches!(a.frame().await, ServerFrame::Accepted { .. }));
    b.submit("m2", "ana@example.com", &["bob@x.org"], MSG);
    assert!(matches!(b.frame().await, ServerFrame::Accepted { .. }));
    b.submit("m3", "ana@example.com", &["bob@x.org"], MSG);
    loop {
        match b.frame().await {
            ServerFrame::Rejected { id, code, .. } => {
                assert_eq!((id.as_str(), code), ("m3", Code::RateLimited));
                break;
            }
            ServerFrame::Delivered { .. } => continue,
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn shutdown_answers_what_was_received_then_closes_with_going_away() {
    let relay = relay();
    let mut c = Client::ready(&relay).await;
    c.submit("m1", "ana@example.com", &["bob@x.org"], MSG);
    assert!(matches!(c.frame().await, ServerFrame::Accepted { .. }));
    relay.shutdown.send(true).unwrap();
    loop {
        match c.next().await {
            WsOut::Text(t) => match serde_json::from_str::<ServerFrame>(&t).unwrap() {
                ServerFrame::Error { code, .. } => assert_eq!(code, Code::ShuttingDown),
                ServerFrame::Delivered { .. } => {}
                other => panic!("{other:?}"),
            },
            WsOut::Close(code, _) => {
                assert_eq!(code, 1001);
                break;
            }
        }
    }
    tokio::time::timeout(Duration::from_secs(2), c.task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_session_ends_when_the_client_goes_away() {
    let relay = relay();
    let c = Client::ready(&relay).await;
    c.tx.send(Ok(WsIn::Close)).unwrap();
    tokio::time::timeout(Duration::from_secs(2), c.task)
        .await
        .unwrap()
        .unwrap();
}

/// The relay's spool, but `accept` answers only after the message's last
/// delivery event reached the sessions watching it: the order a fast
/// upstream on a busy machine produces.
struct AnswersLate {
    inner: Arc<dyn Spool>,
    events: Arc<super::events::EventRouter>,
}

impl Spool for AnswersLate {
    fn accept(
        &self,
        sub: crate::spool::Submission,
    ) -> futures_util::future::BoxFuture<'_, Result<crate::spool::Accepted, crate::spool::SpoolError>>
    {
        Box::pin(async move {
            let (watcher, mut routed) = self.events.register();
            watcher.watch(sub.meta.key.clone());
            let r = self.inner.accept(sub).await;
            while let Some(ev) = routed.recv().await {
                if ev.last {
                    break;
                }
            }
            // The session's event task has its turn before the answer.
            for _ in 0..16 {
                tokio::task::yield_now().await;
            }
            r
        })
    }
    fn status<'a>(
        &'a self,
        key: &'a crate::spool::Key,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<Option<Vec<crate::spool::RcptStatus>>, crate::spool::SpoolError>,
    > {
        self.inner.status(key)
    }
    fn next(&self) -> futures_util::future::BoxFuture<'_, Option<crate::spool::Lease>> {
        self.inner.next()
    }
    fn settle(
        &self,
        lease: crate::spool::Lease,
        outcomes: Vec<(String, crate::spool::Outcome)>,
    ) -> futures_util::future::BoxFuture<'_, Result<(), crate::spool::SpoolError>> {
        self.inner.settle(lease, outcomes)
    }
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::spool::Event> {
        self.inner.subscribe()
    }
    fn depth(&self) -> crate::spool::Depth {
        self.inner.depth()
    }
    fn close(&self) {
        self.inner.close();
    }
}

#[tokio::test]
async fn accepted_comes_before_the_delivery_events_of_its_id_even_when_delivery_is_faster() {
    let mut relay = relay();
    relay.ctx.spool = Arc::new(AnswersLate {
        inner: Arc::clone(&relay.ctx.spool),
        events: Arc::clone(&relay.ctx.events),
    });
    let mut c = Client::ready(&relay).await;
    c.submit("m1", "ana@example.com", &["bob@x.org", "carl@y.org"], MSG);
    match c.frame().await {
        ServerFrame::Accepted { id, .. } => assert_eq!(id, "m1"),
        other => panic!("accepted must come first, got {other:?}"),
    }
    let mut delivered = Vec::new();
    while delivered.len() < 2 {
        match c.frame().await {
            ServerFrame::Delivered { id, rcpt, .. } if id == "m1" => delivered.push(rcpt),
            other => panic!("unexpected {other:?}"),
        }
    }
    delivered.sort();
    assert_eq!(delivered, ["bob@x.org", "carl@y.org"], "held, not lost");
    // Nothing is left waiting: the next submission is answered and reported too.
    c.submit("m2", "ana@example.com", &["dan@z.org"], MSG);
    assert!(matches!(c.frame().await, ServerFrame::Accepted { id, .. } if id == "m2"));
    assert!(matches!(c.frame().await, ServerFrame::Delivered { id, .. } if id == "m2"));
}
