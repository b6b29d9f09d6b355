//! Webhooks end to end: a real relay (`postwire serve`, delivering into its
//! pickup directory) and a real HTTP server here on 127.0.0.1 (endpoints
//! registered with `postwire webhook add --allow-http --allow-private`).
//! Every signature is recomputed here with ring from the documented format
//! (docs/webhooks.md), not with the relay's signing code. Covered: accepted
//! and delivered of a message submitted with the Rust client; a 500 answered
//! first gets the event again; events queued while the endpoint is down
//! survive a SIGKILL of the relay and arrive after the restart; a loopback
//! address without --allow-private is refused (by the CLI's test and by the
//! relay); an event never delivered is given up after the retention
//! window; an https endpoint with a self-signed certificate is refused
//! (verification on); `postwire webhook test`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use postwire_relay::client::{ClientOptions, OutgoingMessage, RelayClient};
use serde_json::Value;
use tokio::sync::mpsc;

/// A running `postwire serve`; killed on drop. Its stderr is collected.
struct Relay {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

fn postwire() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postwire"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POSTWIRE_") && k != "POSTWIRE_VENV" {
            cmd.env_remove(k);
        }
    }
    cmd
}

impl Relay {
    fn start(data: &Path, more: &[&str]) -> Relay {
        let mut cmd = postwire();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(more)
            .env("POSTWIRE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start postwire serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split(',').next().unwrap_or_default().to_string());
                }
                let mut log = sink.lock().expect("test setup");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "the relay did not start: {}",
                    log.lock().expect("test setup")
                )
            });
        Relay { child, addr, log }
    }

    fn url(&self) -> String {
        format!("ws://{}/v1/submit", self.addr)
    }

    fn log(&self) -> String {
        self.log.lock().expect("test setup").clone()
    }

    /// GET /metrics.
    fn metrics(&self) -> String {
        let mut s = std::net::TcpStream::connect(&self.addr).expect("connect");
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("request");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("response");
        text
    }

    /// /metrics once it contains `line` (the relay counts a delivery once
    /// the endpoint's answer is read, after the endpoint has the event).
    fn metrics_with(&self, line: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.metrics();
            if m.contains(line) || std::time::Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the endpoint received, and the status it answered.
#[derive(Debug, Clone)]
struct Hit {
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
    answered: u16,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

#[derive(Clone)]
struct HookState {
    tx: mpsc::UnboundedSender<Hit>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<AtomicU32>,
    /// The status after that.
    status: Arc<AtomicU16>,
}

/// The test's webhook endpoint.
struct Hook {
    addr: SocketAddr,
    hits: mpsc::UnboundedReceiver<Hit>,
    status: Arc<AtomicU16>,
}

async fn receive(
    State(s): State<HookState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let failing = s
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let answered = if failing {
        500
    } else {
        s.status.load(Ordering::SeqCst)
    };
    let _ = s.tx.send(Hit {
        uri,
        headers,
        body,
        answered,
    });
    StatusCode::from_u16(answered).expect("status")
}

impl Hook {
    async fn start(fail_first: u32, status: u16) -> Hook {
        let (tx, hits) = mpsc::unbounded_channel();
        let status = Arc::new(AtomicU16::new(status));
        let state = HookState {
            tx,
            fail_first: Arc::new(AtomicU32::new(fail_first)),
            status: Arc::clone(&status),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hook { addr, hits, status }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    async fn next(&mut self) -> Hit {
        tokio::time::timeout(Duration::from_secs(60), self.hits.recv())
            .await
            .expect("a webhook request arrives")
            .expect("hook running")
    }
}

/// Checks `Postwire-Signature: t=<unix>,v1=<hex>` against HMAC-SHA256 of
/// `t + "." + body` keyed with `secret`, computed here.
fn verify(hit: &Hit, secret: &str) {
    let header = hit
        .headers
        .get("postwire-signature")
        .expect("signature header")
        .to_str()
        .expect("ascii");
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (t, v1) = (t.expect("t="), v1.expect("v1="));
    let ts: u64 = t.parse().expect("unix seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(ts.abs_diff(now) < 600, "timestamp {ts} is now");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = t.into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(&hit.body);
    let mac: Vec<u8> = (0..v1.len() / 2)
        .map(|i| u8::from_str_radix(&v1[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    ring::hmac::verify(&key, &signed, &mac).expect("the signature verifies");
    assert!(
        ring::hmac::verify(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"whsec_wrong"),
            &signed,
            &mac
        )
        .is_err()
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run postwire")
}

/// A data directory with the token "app"; its secret.
fn data_dir() -> (tempfile::TempDir, String) {
    let data = tempfile::tempdir().expect("test setup");
    let secret = postwire_relay::token::add(
        data.path(),
        "app",
        &["@example.com".into()],
        1_000_000,
        10_000,
    )
    .expect("test setup");
    (data, secret)
}

/// `postwire webhook add NAME --url URL --token app FLAGS...`; the secret.
fn add_webhook(data: &Path, name: &str, url: &str, flags: &[&str]) -> String {
    let out = run(postwire()
        .args([
            "webhook",
            "add",
            name,
            "--url",
            url,
            "--token",
            "app",
            "--data-dir",
        ])
        .arg(data)
        .args(flags));
    assert!(
        out.status.success(),
        "webhook add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    secret
}

async fn submit(relay: &Relay, token: &str, id: &str) {
    let client = RelayClient::connect(&relay.url(), ClientOptions::new(token))
        .await
        .expect("connect");
    let mut msg = OutgoingMessage::new(
        format!(
            "From: ana@example.com\r\nTo: bob@example.org\r\nSubject: {id}\r\n\
             Message-ID: <{id}@example.com>\r\n\r\nhello\r\n"
        )
        .into_bytes(),
    );
    msg.id = Some(id.to_string());
    let accepted = client.submit(msg).await.expect("accepted");
    assert_eq!(accepted.id, id);
    client.close().await;
}

/// Waits for requests until one of each `kinds` answered 2xx; every request
/// is checked against `secret` and must be about message `id`.
async fn until_delivered(hook: &mut Hook, secret: &str, id: &str, kinds: &[&str]) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut missing: Vec<&str> = kinds.to_vec();
    while !missing.is_empty() {
        let hit = hook.next().await;
        verify(&hit, secret);
        let body = hit.json();
        assert_eq!(body["message"]["id"], id, "{body}");
        assert_eq!(body["message"]["token"], "app");
        let kind = body["type"].as_str().expect("type").to_string();
        assert_eq!(
            hit.headers
                .get("postwire-event")
                .and_then(|v| v.to_str().ok()),
            Some(kind.as_str())
        );
        if hit.answered == 200 {
            missing.retain(|k| *k != kind);
        }
        hits.push(hit);
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accepted_and_delivered_arrive_signed_and_a_refused_event_comes_again() {
    let (data, token) = data_dir();
    // The first request is answered 500: that event must come again.
    let mut hook = Hook::start(1, 200).await;
    let secret = add_webhook(
        data.path(),
        "crm",
        &hook.url(),
        &["--allow-http", "--allow-private"],
    );
    let listed = run(postwire()
        .args(["webhook", "list", "--json", "--data-dir"])
        .arg(data.path()));
    let listed = String::from_utf8(listed.stdout).expect("utf-8");
    assert!(
        listed.contains("\"crm\"") && !listed.contains(&secret),
        "{listed}"
    );
    let relay = Relay::start(
        data.path(),
        &[
            "--webhook-retry-initial",
            "50ms",
            "--webhook-retry-max",
            "200ms",
        ],
    );
    submit(&relay, &token, "m1").await;
    let hits = until_delivered(&mut hook, &secret, "m1", &["accepted", "delivered"]).await;
    let refused = hits
        .iter()
        .find(|h| h.answered == 500)
        .expect("a 500 answered");
    let again = hits
        .iter()
        .find(|h| h.answered == 200 && h.json()["id"] == refused.json()["id"]);
    assert!(again.is_some(), "the refused event came again: {hits:?}");
    let accepted = hits
        .iter()
        .map(Hit::json)
        .find(|b| b["type"] == "accepted")
        .expect("accepted");
    assert_eq!(accepted["mailFrom"], "ana@example.com");
    assert_eq!(accepted["recipients"][0], "bob@example.org");
    let delivered = hits
        .iter()
        .map(Hit::json)
        .find(|b| b["type"] == "delivered")
        .expect("delivered");
    assert_eq!(delivered["recipient"], "bob@example.org");
    assert_eq!(delivered["final"], true);
    let metrics = relay.metrics_with("postwire_webhook_delivered_total{endpoint=\"crm\"} 2");
    assert!(
        metrics.contains("postwire_webhook_delivered_total{endpoint=\"crm\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("postwire_webhook_failed_attempts_total{endpoint=\"crm\"} 1"));
    assert!(metrics.contains("postwire_webhook_queue_depth{endpoint=\"crm\"} 0"));
    assert!(metrics.contains("postwire_webhook_last_status{endpoint=\"crm\"} 200"));
    assert!(!relay.log().contains(&secret), "the secret is never logged");

    // `postwire webhook test` sends a signed sample and prints the status.
    let out = run(postwire()
        .args(["webhook", "test", "crm", "--data-dir"])
        .arg(data.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200");
    let hit = hook.next().await;
    verify(&hit, &secret);
    assert_eq!(hit.json()["type"], "test");
    hook.status.store(503, Ordering::SeqCst);
    let out = run(postwire()
        .args(["webhook", "test", "crm", "--data-dir"])
        .arg(data.path()));
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_queued_while_the_endpoint_is_down_survive_a_killed_relay() {
    let (data, token) = data_dir();
    let mut hook = Hook::start(0, 503).await;
    let secret = add_webhook(
        data.path(),
        "crm",
        &hook.url(),
        &["--allow-http", "--allow-private"],
    );
    let args = [
        "--webhook-retry-initial",
        "50ms",
        "--webhook-retry-max",
        "300ms",
    ];
    let relay = Relay::start(data.path(), &args);
    submit(&relay, &token, "m2").await;
    // Both events reach the endpoint, which refuses them: they are in the outbox.
    let mut refused = std::collections::BTreeMap::new();
    while refused.len() < 2 {
        let hit = hook.next().await;
        verify(&hit, &secret);
        let body = hit.json();
        refused.insert(
            body["type"].as_str().expect("type").to_string(),
            body["id"].clone(),
        );
    }
    let metrics = relay.metrics();
    assert!(
        metrics.contains("postwire_webhook_queue_depth{endpoint=\"crm\"} 2"),
        "{metrics}"
    );
    drop(relay); // SIGKILL
    hook.status.store(200, Ordering::SeqCst);
    let relay = Relay::start(data.path(), &args);
    let hits = until_delivered(&mut hook, &secret, "m2", &["accepted", "delivered"]).await;
    for kind in ["accepted", "delivered"] {
        assert!(
            hits.iter()
                .any(|h| h.answered == 200 && h.json()["id"] == refused[kind]),
            "the {kind} event from before the restart arrived: {hits:?}"
        );
    }
    let metrics = relay.metrics_with("postwire_webhook_queue_depth{endpoint=\"crm\"} 0");
    assert!(
        metrics.contains("postwire_webhook_queue_depth{endpoint=\"crm\"} 0"),
        "{metrics}"
    );
    assert!(relay.log().contains("queued again"), "{}", relay.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_loopback_endpoint_without_allow_private_is_refused_and_http_needs_allow_http() {
    let (data, _) = data_dir();
    let mut hook = Hook::start(0, 200).await;
    // By name: the check is on the resolved address.
    let url = format!("http://localhost:{}/hook", hook.addr.port());
    let out = run(postwire()
        .args(["webhook", "add", "plain", "--url", &url, "--data-dir"])
        .arg(data.path()));
    assert!(
        !out.status.success(),
        "http without --allow-http is refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-http"));
    add_webhook(data.path(), "local", &url, &["--allow-http"]);
    let out = run(postwire()
        .args(["webhook", "test", "local", "--data-dir"])
        .arg(data.path()));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused") && err.contains("127.0.0.1"),
        "{err}"
    );
    // Nothing reached the endpoint: a request that got through would be here
    // before this one, which is sent with allow_private.
    add_webhook(
        data.path(),
        "allowed",
        &url,
        &["--allow-http", "--allow-private"],
    );
    let out = run(postwire()
        .args(["webhook", "test", "allowed", "--data-dir"])
        .arg(data.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = hook.next().await;
    assert_eq!(first.json()["type"], "test");
    assert!(hook.hits.try_recv().is_err(), "exactly one request arrived");
    let out = run(postwire()
        .args(["webhook", "remove", "allowed", "--data-dir"])
        .arg(data.path()));
    assert!(out.status.success());
    let listed = run(postwire()
        .args(["webhook", "list", "--data-dir"])
        .arg(data.path()));
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("local") && !listed.contains("allowed"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_never_delivered_is_given_up_and_a_private_endpoint_never_reached() {
    let (data, token) = data_dir();
    let mut hook = Hook::start(0, 500).await;
    add_webhook(
        data.path(),
        "down",
        &hook.url(),
        &["--allow-http", "--allow-private"],
    );
    let private = format!("{}?private=1", hook.url());
    add_webhook(data.path(), "private", &private, &["--allow-http"]);
    let relay = Relay::start(
        data.path(),
        &[
            "--webhook-retry-initial",
            "20ms",
            "--webhook-retry-max",
            "50ms",
            "--webhook-retention",
            "300ms",
        ],
    );
    submit(&relay, &token, "m3").await;
    for endpoint in ["down", "private"] {
        let line = format!("postwire_webhook_given_up_total{{endpoint=\"{endpoint}\"}} 2");
        let metrics = relay.metrics_with(&line);
        assert!(metrics.contains(&line), "{metrics}");
        assert!(metrics.contains(&format!(
            "postwire_webhook_queue_depth{{endpoint=\"{endpoint}\"}} 0"
        )));
    }
    let metrics = relay.metrics();
    assert!(metrics.contains("postwire_webhook_last_status{endpoint=\"down\"} 500"));
    assert!(metrics.contains("postwire_webhook_last_status{endpoint=\"private\"} 0"));
    assert!(relay.log().contains("given up after the retention window"));
    while let Ok(hit) = hook.hits.try_recv() {
        assert_eq!(
            hit.uri.query(),
            None,
            "the private endpoint was never reached"
        );
    }
    let outbox = data.path().join("webhooks").join("outbox");
    assert_eq!(std::fs::read_dir(outbox).expect("outbox").count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_https_endpoint_is_verified_and_a_self_signed_certificate_refused() {
    let (data, _) = data_dir();
    let dir = tempfile::tempdir().expect("test setup");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("self-signed certificate");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("test setup");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("test setup");
    let config = postwire_relay::server::tls::server_config(&cert, &key).expect("server config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, mut handshakes) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        while let Ok((tcp, _)) = listener.accept().await {
            let done = acceptor.accept(tcp).await.is_ok();
            let _ = tx.send(done);
        }
    });
    let url = format!("https://localhost:{port}/hook");
    add_webhook(data.path(), "tls", &url, &["--allow-private"]);
    let out = run(postwire()
        .args(["webhook", "test", "tls", "--data-dir"])
        .arg(data.path()));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TLS") && err.contains("UnknownIssuer"),
        "{err}"
    );
    let completed = tokio::time::timeout(Duration::from_secs(30), handshakes.recv())
        .await
        .expect("the relay connected")
        .expect("server running");
    assert!(!completed, "the handshake did not complete");
}
