//! Webhooks on the shared PostgreSQL spool, with a real PostgreSQL
//! (pg_support), the real `postwire` binary (`$POSTWIRE_BIN`, else cargo's)
//! and a real HTTP endpoint here on 127.0.0.1 whose every request has its
//! `Postwire-Signature` recomputed here with ring from the documented format
//! (docs/webhooks.md), not with the relay's signing code. Covered:
//! `postwire webhook add|list|remove|test --spool URL` keep the endpoints in
//! the database (the secret printed once, never listed, no file written);
//! two `postwire serve --spool` relays (pickup delivery) share one outbox in
//! the database: events refused by the endpoint pile up there, one relay is
//! SIGKILLed while a request of its own is held unanswered (so it dies
//! holding a leased claim), and once the endpoint answers 200 every
//! message's `accepted` and `delivered` still arrive, signed, each event
//! under one stable `id` however often it is sent, and the outbox empties.

mod pg_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use pg_support::PgServer;
use postwire_relay::client::{ClientEvent, ClientOptions, OutgoingMessage, RcptState, RelayClient};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// How long any one test may wait, all its waits together.
const TEST_DEADLINE: Duration = Duration::from_secs(90);

/// The end of a test's time; every wait of the test is bounded by it.
#[derive(Clone, Copy)]
struct Deadline(Instant);

impl Deadline {
    /// [`TEST_DEADLINE`] from now.
    fn start() -> Deadline {
        Deadline(Instant::now() + TEST_DEADLINE)
    }

    /// The time left (zero once passed).
    fn left(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether the time is up.
    fn passed(self) -> bool {
        Instant::now() >= self.0
    }
}

/// The binary under test.
fn bin() -> PathBuf {
    std::env::var_os("POSTWIRE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_postwire")))
}

/// `postwire` with no POSTWIRE_* of the caller's environment but the
/// database's password.
fn postwire(pg: &PgServer) -> Command {
    let mut cmd = Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("POSTWIRE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("POSTWIRE_SPOOL_PASSWORD", pg.password())
        .stdin(Stdio::null());
    cmd
}

/// Bytes of a command's output as text.
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a CLI command to its end without holding up the runtime (the test's
/// HTTP endpoint may have to answer it meanwhile).
fn run(cmd: &mut Command) -> Output {
    tokio::task::block_in_place(|| cmd.output().expect("run postwire"))
}

/// `postwire webhook ARGS --spool URL`, in the directory `cwd`.
fn webhook(pg: &PgServer, url: &str, cwd: &Path, args: &[&str]) -> Output {
    run(postwire(pg)
        .arg("webhook")
        .args(args)
        .args(["--spool", url])
        .current_dir(cwd))
}

/// `postwire token add app --spool URL` for senders @example.com; its secret.
fn add_token(pg: &PgServer, url: &str) -> String {
    let out = run(postwire(pg).args([
        "token",
        "add",
        "app",
        "--allow-from",
        "@example.com",
        "--spool",
        url,
    ]));
    assert!(out.status.success(), "token add: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// `postwire webhook add NAME --url HOOK --token app --allow-http
/// --allow-private --spool URL`, which must succeed; the signing secret it
/// printed.
fn add_webhook(pg: &PgServer, url: &str, cwd: &Path, name: &str, hook: &str) -> String {
    let out = webhook(
        pg,
        url,
        cwd,
        &[
            "add",
            name,
            "--url",
            hook,
            "--token",
            "app",
            "--allow-http",
            "--allow-private",
        ],
    );
    assert!(out.status.success(), "webhook add: {}", text(&out.stderr));
    let secret = text(&out.stdout).trim().to_string();
    assert!(
        secret.starts_with("whsec_") && secret.len() > "whsec_".len() + 16,
        "{secret:?}"
    );
    secret
}

/// A running `postwire serve --spool URL` with a data directory of its own
/// (delivering into its pickup directory); killed on drop. Its stderr is
/// collected.
struct Relay {
    name: &'static str,
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
    _data: tempfile::TempDir,
}

impl Relay {
    /// Starts a relay on the database `url` with the flags `more`; returns
    /// once it listens.
    fn start(pg: &PgServer, url: &str, name: &'static str, more: &[&str]) -> Relay {
        let data = tempfile::tempdir().expect("test setup");
        let mut child = postwire(pg)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--spool",
                url,
                "--data-dir",
            ])
            .arg(data.path())
            .args(more)
            .env("POSTWIRE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start postwire serve");
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
        let addr = tokio::task::block_in_place(|| rx.recv_timeout(Duration::from_secs(60)))
            .unwrap_or_else(|_| {
                panic!(
                    "relay {name} did not start: {}",
                    log.lock().expect("test setup")
                )
            });
        Relay {
            name,
            child,
            addr,
            log,
            _data: data,
        }
    }

    /// The relay's submission endpoint.
    fn url(&self) -> String {
        format!("ws://{}/v1/submit", self.addr)
    }

    /// Its stderr so far.
    fn log(&self) -> String {
        self.log.lock().expect("test setup").clone()
    }

    /// SIGKILL (what `Child::kill` sends on unix), and reaps it.
    fn kill(&mut self) {
        self.child.kill().expect("kill the relay");
        let _ = self.child.wait();
    }

    /// GET /metrics: the response's body.
    async fn metrics(&self) -> String {
        let mut s = tokio::net::TcpStream::connect(&self.addr)
            .await
            .unwrap_or_else(|e| panic!("connect to relay {}: {e}", self.name));
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        s.write_all(request.as_bytes()).await.expect("request");
        let mut response = Vec::new();
        s.read_to_end(&mut response).await.expect("response");
        let response = text(&response);
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or(response)
    }

    /// Polls /metrics until it has the line `line` (the whole line), until
    /// `deadline`; panics with the last metrics and the relay's log if not.
    async fn metrics_with(&self, line: &str, deadline: Deadline) -> String {
        loop {
            let metrics = self.metrics().await;
            if metrics.lines().any(|l| l.trim() == line) {
                return metrics;
            }
            assert!(
                !deadline.passed(),
                "relay {}: no {line:?} in /metrics in time\n{metrics}\n--- log\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
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
    /// The relay's end of the connection.
    peer: SocketAddr,
    headers: HeaderMap,
    body: Bytes,
    answered: u16,
    /// Held unanswered (see [`Hook::hold`]); answered 503 when released.
    held: bool,
}

impl Hit {
    /// The body, parsed.
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// [`HookState::status`] while requests are held.
const HOLD: u16 = 0;

/// What the endpoint's handler shares with the [`Hook`].
#[derive(Clone)]
struct HookState {
    tx: mpsc::UnboundedSender<Hit>,
    /// The status answered, or [`HOLD`].
    status: Arc<AtomicU16>,
    /// Held requests wait until this is true.
    release: watch::Receiver<bool>,
}

/// The test's webhook endpoint: `POST /hook` answers the current status
/// (changed with [`Hook::answer`], or held with [`Hook::hold`]) and passes
/// every request to the test.
struct Hook {
    addr: SocketAddr,
    hits: mpsc::UnboundedReceiver<Hit>,
    status: Arc<AtomicU16>,
    release: watch::Sender<bool>,
}

/// `POST /hook`: records the request, then answers (or holds it first).
async fn receive(
    State(s): State<HookState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = s.status.load(Ordering::SeqCst);
    let held = status == HOLD;
    let answered = if held { 503 } else { status };
    let _ = s.tx.send(Hit {
        peer,
        headers,
        body,
        answered,
        held,
    });
    if held {
        let mut release = s.release.clone();
        let _ = release.wait_for(|go| *go).await;
    }
    StatusCode::from_u16(answered).expect("status")
}

impl Hook {
    /// Listens on 127.0.0.1, answering `status` to every request.
    async fn start(status: u16) -> Hook {
        let (tx, hits) = mpsc::unbounded_channel();
        let status = Arc::new(AtomicU16::new(status));
        let (release, released) = watch::channel(true);
        let state = HookState {
            tx,
            status: Arc::clone(&status),
            release: released,
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Hook {
            addr,
            hits,
            status,
            release,
        }
    }

    /// The endpoint's URL.
    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers `status` to the requests from now on; held requests are
    /// released (answered 503, as recorded).
    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
        self.release.send_replace(true);
    }

    /// Holds the requests from now on without an answer, until
    /// [`Hook::answer`]: their senders keep their claims meanwhile.
    fn hold(&self) {
        self.release.send_replace(false);
        self.status.store(HOLD, Ordering::SeqCst);
    }

    /// The next request; `None` if none came before `deadline`.
    async fn next(&mut self, deadline: Deadline) -> Option<Hit> {
        tokio::time::timeout(deadline.left(), self.hits.recv())
            .await
            .ok()
            .map(|hit| hit.expect("hook running"))
    }

    /// Whether the request `hit`, still open, came from process `pid`: the
    /// socket of its connection (found in /proc/net/tcp by its two ports)
    /// is among the process's file descriptors.
    fn sent_by(&self, hit: &Hit, pid: u32) -> bool {
        // Addresses in /proc/net/tcp: the IPv4 address as a little-endian
        // word, the port big-endian, both in hex.
        let local = format!("0100007F:{:04X}", hit.peer.port());
        let remote = format!("0100007F:{:04X}", self.addr.port());
        let tcp = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
        let Some(inode) = tcp.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()))
                .then(|| fields.get(9).map(|inode| inode.to_string()))
                .flatten()
        }) else {
            return false;
        };
        let socket = format!("socket:[{inode}]");
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.map_while(Result::ok).any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|to| to.as_os_str() == socket.as_str())
                })
            })
            .unwrap_or(false)
    }
}

/// Checks `Postwire-Signature: t=<unix>,v1=<hex>` against HMAC-SHA256 of
/// `t + "." + body` keyed with `secret`, computed here, and that the
/// `Postwire-Event` header names the body's type.
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
    assert!(v1.len() == 64, "v1 is 32 bytes in hex: {header}");
    let mac: Vec<u8> = (0..v1.len() / 2)
        .map(|i| u8::from_str_radix(&v1[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    ring::hmac::verify(&key, &signed, &mac).unwrap_or_else(|_| {
        panic!(
            "the signature of {} does not verify with the endpoint's secret",
            text(&hit.body)
        )
    });
    assert_eq!(
        hit.headers
            .get("postwire-event")
            .and_then(|v| v.to_str().ok()),
        hit.json()["type"].as_str(),
        "{}",
        text(&hit.body)
    );
}

/// The message numbered `n` (From ana@example.com, To bob@example.org).
fn eml(n: usize) -> Vec<u8> {
    format!(
        "From: Ana <ana@example.com>\r\nTo: bob@example.org\r\nSubject: webhook {n}\r\n\
         Message-ID: <{n}.pg-webhooks@example.com>\r\n\r\nbody {n}\r\n"
    )
    .into_bytes()
}

/// Submits the messages `ids` to `relay` with one client and waits until each
/// is settled with its recipient delivered (learnt from the client's events).
async fn submit_and_settle(relay: &Relay, token: &str, ids: &[String], deadline: Deadline) {
    let mut client = RelayClient::connect(&relay.url(), ClientOptions::new(token))
        .await
        .unwrap_or_else(|e| panic!("connect to relay {}: {e}", relay.name));
    let mut events = client.take_events().expect("events");
    let tickets: Vec<_> = ids
        .iter()
        .map(|id| {
            let n: usize = id.trim_start_matches('m').parse().expect("m<n>");
            client.submit(OutgoingMessage::new(eml(n)).id(id.clone()))
        })
        .collect();
    for (id, ticket) in ids.iter().zip(tickets) {
        let accepted = tokio::time::timeout(deadline.left(), ticket)
            .await
            .unwrap_or_else(|_| panic!("{id} not answered in time\n{}", relay.log()))
            .unwrap_or_else(|e| panic!("{id} refused by relay {}: {e}", relay.name));
        assert_eq!(&accepted.id, id);
        assert!(!accepted.duplicate, "{accepted:?}");
    }
    let mut waiting: BTreeSet<&String> = ids.iter().collect();
    while !waiting.is_empty() {
        match tokio::time::timeout(deadline.left(), events.recv()).await {
            Ok(Some(ClientEvent::Settled { id, recipients })) => {
                assert!(
                    recipients
                        .iter()
                        .all(|r| matches!(r.state, RcptState::Delivered { .. })),
                    "{id}: {recipients:?}"
                );
                waiting.remove(&id);
            }
            Ok(Some(_)) => {}
            other => panic!(
                "relay {}: {waiting:?} not settled in time ({other:?})\n{}",
                relay.name,
                relay.log()
            ),
        }
    }
    client.close().await;
}

/// Every webhook request of one test, checked as it comes: signed with the
/// endpoint's secret, about a message of token `app` the test submitted, and
/// each event (message, type, recipient) always under one `id`, every `id`
/// for one event only.
struct Seen {
    secret: String,
    messages: BTreeSet<String>,
    /// (message id, type, recipient) -> the event's id.
    ids: BTreeMap<(String, String, String), String>,
    /// The event's id -> (message id, type, recipient).
    events: BTreeMap<String, (String, String, String)>,
    /// Events answered 2xx at least once.
    ok: BTreeSet<(String, String, String)>,
    /// Events answered otherwise at least once.
    refused: BTreeSet<(String, String, String)>,
    /// Requests so far, and those answered 2xx.
    hits: usize,
    ok_hits: usize,
}

impl Seen {
    fn new(secret: &str, messages: &[String]) -> Seen {
        Seen {
            secret: secret.to_string(),
            messages: messages.iter().cloned().collect(),
            ids: BTreeMap::new(),
            events: BTreeMap::new(),
            ok: BTreeSet::new(),
            refused: BTreeSet::new(),
            hits: 0,
            ok_hits: 0,
        }
    }

    /// Checks one request and records it; its event (message id, type,
    /// recipient).
    fn record(&mut self, hit: &Hit) -> (String, String, String) {
        verify(hit, &self.secret);
        let body = hit.json();
        let message = body["message"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(self.messages.contains(&message), "{body}");
        assert_eq!(body["message"]["token"], "app", "{body}");
        let kind = body["type"].as_str().expect("type").to_string();
        let id = body["id"].as_str().expect("id").to_string();
        assert!(body["timestamp"].as_u64().is_some(), "{body}");
        match kind.as_str() {
            "accepted" => {
                assert_eq!(body["mailFrom"], "ana@example.com", "{body}");
                assert_eq!(body["recipients"], serde_json::json!(["bob@example.org"]));
                assert!(body["receivedAt"].as_u64().is_some(), "{body}");
            }
            "delivered" => assert_eq!(body["recipient"], "bob@example.org", "{body}"),
            _ => {}
        }
        let recipient = body["recipient"].as_str().unwrap_or_default().to_string();
        let key = (message, kind, recipient);
        let first = self.ids.entry(key.clone()).or_insert_with(|| id.clone());
        assert_eq!(
            *first, id,
            "the event {key:?} came under two ids; now {body}"
        );
        let of = self.events.entry(id.clone()).or_insert_with(|| key.clone());
        assert_eq!(*of, key, "the id {id} names two events; now {body}");
        self.hits += 1;
        if (200..300).contains(&hit.answered) {
            self.ok_hits += 1;
            self.ok.insert(key.clone());
        } else {
            self.refused.insert(key.clone());
        }
        key
    }

    /// The messages of which an event of type `kind` was answered 2xx.
    fn ok_of(&self, kind: &str) -> BTreeSet<&String> {
        self.ok
            .iter()
            .filter(|(_, k, _)| k == kind)
            .map(|(m, _, _)| m)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_endpoints_live_in_the_database() {
    let deadline = Deadline::start();
    let pg = PgServer::shared();
    let url = pg.create_database("webhooks_cli");
    // The CLI runs in an empty directory, which must stay empty: nothing of
    // the endpoints is kept in files.
    let cwd = tempfile::tempdir().expect("test setup");
    add_token(pg, &url);
    let mut hook = Hook::start(200).await;

    let out = webhook(pg, &url, cwd.path(), &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");

    let secret = add_webhook(pg, &url, cwd.path(), "crm", &hook.url());

    let out = webhook(pg, &url, cwd.path(), &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert!(
        lines[0].starts_with("crm") && lines[0].contains(&hook.url()),
        "{listed}"
    );
    assert!(!listed.contains(&secret) && !text(&out.stderr).contains(&secret));

    let out = webhook(pg, &url, cwd.path(), &["list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains(&secret));
    let json: Value = serde_json::from_slice(&out.stdout).expect("a JSON array");
    assert_eq!(
        json,
        serde_json::json!([{
            "name": "crm",
            "url": hook.url(),
            "token": "app",
            "allowHttp": true,
            "allowPrivate": true,
        }])
    );

    // `test` sends a signed sample to the endpoint and prints its status.
    let out = webhook(pg, &url, cwd.path(), &["test", "crm"]);
    assert!(out.status.success(), "webhook test: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "200");
    let hit = hook.next(deadline).await.expect("the test event arrives");
    verify(&hit, &secret);
    let body = hit.json();
    assert_eq!(body["type"], "test", "{body}");
    assert!(
        body["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{body}"
    );
    assert!(hook.hits.try_recv().is_err(), "exactly one request arrived");

    let out = webhook(pg, &url, cwd.path(), &["remove", "crm"]);
    assert!(
        out.status.success(),
        "webhook remove: {}",
        text(&out.stderr)
    );
    let out = webhook(pg, &url, cwd.path(), &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let out = webhook(pg, &url, cwd.path(), &["list", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).expect("a JSON array");
    assert_eq!(json, serde_json::json!([]));
    let out = webhook(pg, &url, cwd.path(), &["remove", "crm"]);
    assert!(!out.status.success(), "removing it again fails");
    assert!(
        text(&out.stderr).contains("crm"),
        "the error names the endpoint: {}",
        text(&out.stderr)
    );

    let files: Vec<_> = std::fs::read_dir(cwd.path())
        .expect("cwd")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(files.is_empty(), "files written: {files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_share_the_outbox_and_a_killed_relay_loses_no_event() {
    const N: usize = 10;
    const ENDPOINT: &str = "crm";
    let deadline = Deadline::start();
    let pg = PgServer::shared();
    let url = pg.create_database("webhooks_two");
    let cwd = tempfile::tempdir().expect("test setup");
    let token = add_token(pg, &url);
    // Everything is refused at first: the events stay in the outbox.
    let mut hook = Hook::start(503).await;
    let secret = add_webhook(pg, &url, cwd.path(), ENDPOINT, &hook.url());

    let flags = [
        "--spool-lease",
        "2s",
        "--webhook-retry-initial",
        "200ms",
        "--webhook-retry-max",
        "1s",
    ];
    let mut a = Relay::start(pg, &url, "A", &flags);
    let b = Relay::start(pg, &url, "B", &flags);

    let ids: Vec<String> = (0..N).map(|n| format!("m{n}")).collect();
    // Even numbers to A, odd ones to B.
    let (to_a, to_b): (Vec<String>, Vec<String>) = ids
        .iter()
        .cloned()
        .partition(|id| id[1..].parse::<usize>().expect("m<n>") % 2 == 0);
    tokio::join!(
        submit_and_settle(&a, &token, &to_a, deadline),
        submit_and_settle(&b, &token, &to_b, deadline),
    );

    // Every message's accepted and delivered are in the shared outbox, and
    // the endpoint has refused at least one request.
    let depth = |n: usize| format!("postwire_webhook_queue_depth{{endpoint=\"{ENDPOINT}\"}} {n}");
    b.metrics_with(&depth(2 * N), deadline).await;
    let mut seen = Seen::new(&secret, &ids);
    while seen.refused.is_empty() {
        let hit = hook.next(deadline).await.unwrap_or_else(|| {
            panic!(
                "no webhook request in time\n--- A\n{}\n--- B\n{}",
                a.log(),
                b.log()
            )
        });
        seen.record(&hit);
    }

    // Requests are held unanswered from now on, until one of A's is among
    // them: A holds that event's claim, leased, when it is SIGKILLed.
    hook.hold();
    let held_by_a = loop {
        let hit = hook.next(deadline).await.unwrap_or_else(|| {
            panic!(
                "no request of relay A held in time\n--- A\n{}\n--- B\n{}",
                a.log(),
                b.log()
            )
        });
        let key = seen.record(&hit);
        if hit.held && hook.sent_by(&hit, a.child.id()) {
            break key;
        }
    };
    let before_kill = seen.hits;
    a.kill();
    hook.answer(200);

    let complete =
        |seen: &Seen| seen.ok_of("accepted").len() == N && seen.ok_of("delivered").len() == N;
    while !complete(&seen) {
        let Some(hit) = hook.next(deadline).await else {
            let missing = |kind: &str| {
                let ok = seen.ok_of(kind);
                ids.iter()
                    .filter(|id| !ok.contains(id))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            panic!(
                "not every event arrived in time: accepted missing for {:?}, delivered missing \
                 for {:?} ({} requests, {before_kill} before the kill; A held {held_by_a:?})\n\
                 --- A (killed)\n{}\n--- B\n{}",
                missing("accepted"),
                missing("delivered"),
                seen.hits,
                a.log(),
                b.log()
            );
        };
        seen.record(&hit);
    }
    assert!(seen.ok.contains(&held_by_a), "{held_by_a:?}");

    // The outbox empties (the gauge is the database's, which B reports);
    // whatever still came meanwhile is a duplicate under the same id. Every
    // 2xx answer went to B (A was dead by then), and B counted each.
    b.metrics_with(&depth(0), deadline).await;
    while let Ok(hit) = hook.hits.try_recv() {
        seen.record(&hit);
    }
    b.metrics_with(
        &format!(
            "postwire_webhook_delivered_total{{endpoint=\"{ENDPOINT}\"}} {}",
            seen.ok_hits
        ),
        deadline,
    )
    .await;
    for relay in [&a, &b] {
        let log = relay.log();
        assert!(
            !log.contains(&secret) && !log.contains(&token) && !log.contains(pg.password()),
            "relay {} logged a secret\n{log}",
            relay.name
        );
    }
}
