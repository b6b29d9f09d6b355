//! An attacker's tour of the relay (issue 18, item 5; docs/relay.md,
//! "Attacker's tour"): each test starts `postwire serve` (delivering into a
//! pickup directory, so the bytes that would go on the wire are on disk)
//! and attacks it the way a stranger or a token holder could: guessing
//! tokens, sending as someone else through every sender field, injecting
//! header lines through every string the protocol takes, flooding frames,
//! holding the upgrade open (slowloris) and coming from a foreign Origin.

mod smtp_support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

/// Longest wait for anything the relay should do at once.
const WAIT: Duration = Duration::from_secs(20);

/// A running `postwire serve` with its log; killed on drop.
struct Relay {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    pickup: PathBuf,
    secret: String,
    _data: tempfile::TempDir,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a relay with token "app" (senders `@example.com`) and `args`.
fn relay(args: &[&str], env: &[(&str, &str)]) -> Relay {
    let data = tempfile::tempdir().expect("test setup");
    let secret = postwire_relay::token::add(
        data.path(),
        "app",
        &["@example.com".into()],
        1_000_000,
        100_000,
    )
    .expect("test setup");
    let pickup = data.path().join("pickup");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postwire"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POSTWIRE_") && k != "POSTWIRE_VENV" {
            cmd.env_remove(k);
        }
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path());
    if !args.contains(&"--smtp") {
        cmd.arg("--pickup-dir").arg(&pickup);
    }
    cmd.args(args)
        .env("POSTWIRE_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start postwire serve");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let _ = tx.send(rest.split(',').next().unwrap_or_default().to_string());
            }
            sink.lock().expect("test setup").push(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the relay did not say where it listens")
        .parse()
        .expect("test setup");
    Relay {
        child,
        addr,
        log,
        pickup,
        secret,
        _data: data,
    }
}

impl Relay {
    fn log_text(&self) -> String {
        self.log.lock().expect("test setup").join("\n")
    }

    /// Waits until a log line contains `needle`.
    fn wait_log(&self, needle: &str) {
        let end = Instant::now() + WAIT;
        while !self.log_text().contains(needle) {
            assert!(
                Instant::now() < end,
                "no log line with {needle:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The relay's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("test setup");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// The messages in the pickup directory: (envelope JSON, bytes).
    fn picked_up(&self) -> Vec<(Value, Vec<u8>)> {
        let mut emls: Vec<PathBuf> = std::fs::read_dir(&self.pickup)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        emls.sort();
        emls.iter()
            .map(|p| {
                let json = std::fs::read_to_string(p.with_extension("json")).unwrap_or_default();
                (
                    serde_json::from_str(&json).unwrap_or(Value::Null),
                    std::fs::read(p).expect("test setup"),
                )
            })
            .collect()
    }
}

type Ws = WebSocketStream<TcpStream>;

/// A TCP connection to the relay from `from` (any 127.x.y.z address).
async fn tcp_from(from: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().expect("test setup");
    s.bind(format!("{from}:0").parse().expect("test setup"))
        .expect("test setup");
    s.connect(to).await.expect("test setup")
}

/// Opens `/v1/submit` from `from` with extra headers; `Err` carries the
/// HTTP status, `Retry-After` and body of a refused upgrade.
async fn open(
    relay: &Relay,
    from: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, (u16, Option<String>, Value)> {
    let mut request = format!("ws://{}/v1/submit", relay.addr)
        .into_client_request()
        .expect("test setup");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "postwire.v1".parse().expect("test setup"),
    );
    for (k, v) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("test setup"),
            v.parse().expect("test setup"),
        );
    }
    let tcp = tcp_from(from, relay.addr).await;
    match tokio_tungstenite::client_async(request, tcp).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(r)) => {
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().expect("test setup").to_string());
            let body = r
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((r.status().as_u16(), retry, body))
        }
        Err(e) => panic!("upgrade failed unexpectedly: {e}"),
    }
}

/// The next text frame as JSON; `None` when the connection ended.
async fn next_text(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time");
        match msg {
            Some(Ok(Message::Text(t))) => {
                return Some(serde_json::from_str(&t).expect("test setup"));
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Reads until the connection ends; returns the error frame, if any.
async fn until_closed(ws: &mut Ws) -> Option<Value> {
    let mut error = None;
    while let Some(v) = next_text(ws).await {
        if v["type"] == "error" {
            error = Some(v);
        }
    }
    error
}

/// An authenticated connection (Bearer) from 127.0.0.1.
async fn ready(relay: &Relay) -> Ws {
    let auth = format!("Bearer {}", relay.secret);
    let mut ws = open(relay, "127.0.0.1", &[("Authorization", &auth)])
        .await
        .expect("upgrade");
    let r = next_text(&mut ws).await.expect("ready");
    assert_eq!(r["type"], "ready", "{r}");
    ws
}

/// Submits `bytes` with `envelope` (JSON or null) and returns the answer
/// (`accepted` or `rejected`); after `accepted`, waits for delivery.
async fn submit(ws: &mut Ws, id: &str, envelope: Value, bytes: &[u8]) -> Value {
    let mut frame = json!({"type": "submit", "id": id, "size": bytes.len()});
    if !envelope.is_null() {
        frame["envelope"] = envelope;
    }
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .expect("test setup");
    ws.send(Message::Binary(bytes.to_vec().into()))
        .await
        .expect("test setup");
    let answer = loop {
        let v = next_text(ws).await.expect("an answer");
        if v["id"] == id && (v["type"] == "accepted" || v["type"] == "rejected") {
            break v;
        }
    };
    if answer["type"] == "accepted" {
        let n = answer["rcptTo"].as_array().map_or(0, Vec::len);
        let mut done = 0;
        while done < n {
            let v = next_text(ws).await.expect("a delivery event");
            if v["id"] == id && (v["type"] == "delivered" || v["type"] == "failed") {
                assert_eq!(v["type"], "delivered", "{v}");
                done += 1;
            }
        }
    }
    answer
}

fn env_of(from: &str, to: &[&str]) -> Value {
    json!({"mailFrom": from, "rcptTo": to})
}

// ---------------------------------------------------------------- tokens

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guesses_are_limited_per_address_and_never_logged() {
    let relay = relay(&[], &[]);
    let mut guesses: Vec<String> = (0..5)
        .map(|i| format!("pw_guess{i}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"))
        .collect();
    // A near miss: the real secret with its last character changed.
    let mut near = relay.secret.clone();
    let last = near.pop().unwrap();
    near.push(if last == 'A' { 'B' } else { 'A' });
    guesses.push(near);

    // Ten failures from 127.0.0.1, half in the header, half in the auth frame.
    for (i, g) in guesses.iter().cycle().take(10).enumerate() {
        if i % 2 == 0 {
            let (status, _, body) = open(
                &relay,
                "127.0.0.1",
                &[("Authorization", &format!("Bearer {g}"))],
            )
            .await
            .expect_err("an unknown token is refused at the upgrade");
            assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
        } else {
            let mut ws = open(&relay, "127.0.0.1", &[]).await.expect("upgrade");
            ws.send(Message::Text(
                json!({"type": "auth", "token": g}).to_string().into(),
            ))
            .await
            .unwrap();
            let e = until_closed(&mut ws).await.expect("an error frame");
            assert_eq!(e["code"], "unauthorized", "{e}");
        }
    }
    // The eleventh try is refused unchecked, with a time to retry, even
    // with the right token and whichever way it comes.
    let auth = format!("Bearer {}", relay.secret);
    let (status, retry, body) = open(&relay, "127.0.0.1", &[("Authorization", &auth)])
        .await
        .expect_err("a locked address is refused");
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    let retry: u64 = retry.expect("Retry-After").parse().expect("test setup");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let (status, ..) = open(&relay, "127.0.0.1", &[]).await.expect_err("locked");
    assert_eq!(status, 429);

    // Another address is not affected.
    let mut ws = open(&relay, "127.0.0.2", &[]).await.expect("upgrade");
    ws.send(Message::Text(
        json!({"type": "auth", "token": relay.secret})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    assert_eq!(next_text(&mut ws).await.unwrap()["type"], "ready");

    // Every failure is logged with the address, never with the token.
    relay.wait_log("status=429");
    let log = relay.log_text();
    assert!(log.matches("failed authentication").count() >= 10, "{log}");
    assert!(log.contains("127.0.0.1"), "{log}");
    for secret in guesses.iter().chain([&relay.secret]) {
        assert!(
            !log.contains(secret.as_str()),
            "the log shows a token: {secret}\n{log}"
        );
        assert!(
            !log.contains(&secret[3..20]),
            "the log shows part of a token\n{log}"
        );
    }
}

// ---------------------------------------------------------------- senders

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_may_not_send_as_another_sender_through_any_field() {
    let relay = relay(&[], &[]);
    let mut ws = ready(&relay).await;
    let ok = env_of("ana@example.com", &["bob@dest.example"]);
    let refused: &[(&str, Value, &str)] = &[
        (
            "envelope",
            env_of("ceo@bank.example", &["bob@dest.example"]),
            "From: ana@example.com\r\n",
        ),
        ("from", ok.clone(), "From: ceo@bank.example\r\n"),
        (
            "from-list",
            ok.clone(),
            "From: ana@example.com, ceo@bank.example\r\n",
        ),
        (
            "from-name",
            ok.clone(),
            "From: ana@example.com <ceo@bank.example>\r\n",
        ),
        (
            "from-folded",
            ok.clone(),
            "From: Ana\r\n <ceo@bank.example>\r\n",
        ),
        ("from-case", ok.clone(), "fROM : ceo@bank.example\r\n"),
        (
            "from-second",
            ok.clone(),
            "From: ana@example.com\r\nFrom: ceo@bank.example\r\n",
        ),
        (
            "from-bare-cr",
            ok.clone(),
            "From: ana@example.com\r\nX-A: 1\rFrom: ceo@bank.example\r\n",
        ),
        (
            "from-group",
            ok.clone(),
            "From: staff: ana@example.com, ceo@bank.example;\r\n",
        ),
        ("from-empty", ok.clone(), "From: Just a name\r\n"),
        (
            "sender",
            ok.clone(),
            "From: ana@example.com\r\nSender: ceo@bank.example\r\n",
        ),
        (
            "resent-from",
            ok.clone(),
            "From: ana@example.com\r\nResent-From: ceo@bank.example\r\n",
        ),
        (
            "resent-sender",
            ok.clone(),
            "From: ana@example.com\r\nResent-Sender: ceo@bank.example\r\n",
        ),
        (
            "derived",
            Value::Null,
            "From: ana@example.com\r\nSender: ceo@bank.example\r\nTo: bob@dest.example\r\n",
        ),
    ];
    for (name, envelope, head) in refused {
        let bytes = format!("{head}Subject: {name}\r\n\r\nbody\r\n");
        let a = submit(&mut ws, name, envelope.clone(), bytes.as_bytes()).await;
        assert_eq!(
            (a["type"].as_str(), a["code"].as_str()),
            (Some("rejected"), Some("sender_not_allowed")),
            "{name}: {a}"
        );
    }
    // Allowed: every sender covered; Reply-To is not a sender; a display
    // name that reads like an address is only a name (documented).
    let allowed: &[&str] = &[
        "From: Ana <ana@example.com>\r\nSender: desk@example.com\r\n",
        "From: ana@example.com\r\nReply-To: ceo@bank.example\r\n",
        "From: \"ceo@bank.example\" <ana@example.com>\r\n",
        "From: ana@example.com\r\nSubject: From: ceo@bank.example\r\n",
    ];
    for (i, head) in allowed.iter().enumerate() {
        let bytes = format!("{head}\r\nbody\r\nFrom: ceo@bank.example in the body is text\r\n");
        let a = submit(&mut ws, &format!("ok{i}"), ok.clone(), bytes.as_bytes()).await;
        assert_eq!(a["type"], "accepted", "{head:?}: {a}");
    }

    // By spec: built by postwire-core as the JS client and `postwire send` build.
    let build = |json: Value| {
        let spec = postwire_core::spec::from_json(&json.to_string()).unwrap();
        postwire_core::build(
            &spec,
            &postwire_core::BuildOptions {
                now: 1_700_000_000,
                seed: 7,
            },
        )
        .unwrap()
    };
    let spoofs = [
        json!({"from": "ceo@bank.example", "to": ["bob@dest.example"], "subject": "s", "text": "x"}),
        json!({"from": "ana@example.com", "sender": "ceo@bank.example", "to": ["bob@dest.example"], "subject": "s", "text": "x"}),
    ];
    for (i, spec) in spoofs.into_iter().enumerate() {
        let a = submit(&mut ws, &format!("spec{i}"), ok.clone(), &build(spec)).await;
        assert_eq!(a["code"], "sender_not_allowed", "{a}");
        let a = submit(&mut ws, &format!("spec-derived{i}"), Value::Null, &build(json!({"from": "ana@example.com", "sender": "ceo@bank.example", "to": ["bob@dest.example"], "text": "x"}))).await;
        assert_eq!(a["code"], "sender_not_allowed", "{a}");
    }
    let fine = build(
        json!({"from": "Ana <ana@example.com>", "replyTo": ["x@else.example"], "to": ["bob@dest.example"], "subject": "s", "text": "x"}),
    );
    assert_eq!(
        submit(&mut ws, "spec-ok", Value::Null, &fine).await["type"],
        "accepted"
    );
    // Nothing refused reached the pickup directory.
    let got = relay.picked_up();
    assert_eq!(got.len(), allowed.len() + 1);
    for (_, bytes) in &got {
        let head = String::from_utf8_lossy(bytes);
        let head = head.split("\r\n\r\n").next().unwrap();
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("from: ceo@")
                    || l.to_ascii_lowercase().starts_with("sender: ceo@")),
            "{head}"
        );
    }
}

// ---------------------------------------------------------------- header injection

/// Lines of a message that start a header named `name` (any case).
fn header_lines(bytes: &[u8], name: &str) -> usize {
    bytes
        .split(|&b| b == b'\n' || b == b'\r')
        .filter(|l| {
            l.len() > name.len()
                && l[..name.len()].eq_ignore_ascii_case(name.as_bytes())
                && l[name.len()] == b':'
        })
        .count()
}

/// Whether any header section of the message (the top one read line by
/// line with CR, LF or CRLF breaks, and every MIME part's) has an
/// `X-Injected` field. Body text may mention it: that is content.
fn injected(bytes: &[u8]) -> bool {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    if header_lines(&bytes[..end], "X-Injected") > 0 {
        return true;
    }
    let parsed = mail_parser::MessageParser::default()
        .parse(bytes)
        .expect("test setup");
    parsed.parts.iter().any(|p| {
        p.headers
            .iter()
            .any(|h| h.name.as_str().eq_ignore_ascii_case("X-Injected"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_injection_through_every_protocol_string_is_refused_or_encoded() {
    let relay = relay(&[], &[]);
    let mut ws = ready(&relay).await;
    let msg = b"From: ana@example.com\r\nTo: bob@dest.example\r\nSubject: s\r\n\r\nbody\r\n";
    let inj = "\r\nX-Injected: 1";

    // Protocol strings: the id and the envelope (addresses, DSN envid and orcpt).
    let bad_id = format!("m1{inj}");
    let a = submit(
        &mut ws,
        &bad_id,
        env_of("ana@example.com", &["bob@dest.example"]),
        msg,
    )
    .await;
    assert_eq!(a["code"], "bad_id", "{a}");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "mail-from",
            env_of(&format!("ana@example.com{inj}"), &["bob@dest.example"]),
            "bad_envelope",
        ),
        (
            "mail-from-nul",
            env_of("ana@example.com\0", &["bob@dest.example"]),
            "bad_envelope",
        ),
        (
            "rcpt-to",
            env_of("ana@example.com", &[&format!("bob@dest.example{inj}")]),
            "bad_envelope",
        ),
        (
            "rcpt-to-lf",
            env_of(
                "ana@example.com",
                &["bob@dest.example\nRCPT TO:<x@evil.example>"],
            ),
            "bad_envelope",
        ),
        (
            "envid",
            json!({"mailFrom": "ana@example.com", "rcptTo": ["bob@dest.example"], "dsn": {"notify": ["failure"], "envid": format!("e{inj}")}}),
            "invalid_dsn",
        ),
        (
            "orcpt",
            json!({"mailFrom": "ana@example.com", "rcptTo": ["bob@dest.example"], "dsn": {"recipients": [{"address": "bob@dest.example", "orcpt": format!("rfc822;bob@dest.example{inj}")}]}}),
            "invalid_dsn",
        ),
    ];
    for (name, envelope, code) in cases {
        let a = submit(&mut ws, name, envelope, msg).await;
        assert_eq!(a["code"], code, "{name}: {a}");
    }

    // Spec fields: built by postwire-core (as every client builds), then sent;
    // each is refused by the builder or arrives with no second header line.
    let base = json!({"from": "Ana <ana@example.com>", "to": ["bob@dest.example"], "subject": "s", "text": "x"});
    let with = |path: &str, v: Value| {
        let mut s = base.clone();
        s[path] = v;
        s
    };
    let att = |k: &str, v: &str| {
        let mut a = json!({"filename": "a.txt", "contentType": "text/plain", "content": "aGk="});
        a[k] = json!(v);
        with("attachments", json!([a]))
    };
    let specs = vec![
        ("subject", with("subject", json!(format!("hi{inj}")))),
        ("subject-lf", with("subject", json!("hi\nX-Injected: 1"))),
        ("subject-nul", with("subject", json!("hi\0X-Injected: 1"))),
        (
            "from-name",
            with("from", json!(format!("\"Ana{inj}\" <ana@example.com>"))),
        ),
        (
            "to-name",
            with("to", json!([format!("\"Bob{inj}\" <bob@dest.example>")])),
        ),
        (
            "cc-name",
            with("cc", json!([format!("Carl{inj} <carl@dest.example>")])),
        ),
        (
            "message-id",
            with("messageId", json!(format!("<a@b{inj}>"))),
        ),
        (
            "custom-header",
            with("headers", json!([["X-Campaign", format!("7{inj}")]])),
        ),
        (
            "custom-name",
            with("headers", json!([[format!("X-A{inj}"), "1"]])),
        ),
        ("filename", att("filename", &format!("a{inj}.txt"))),
        // Encoded, not refused: quotes, semicolons and non-ASCII in names.
        (
            "filename-encoded",
            att("filename", "naïve \"q\"; X-Injected=1.txt"),
        ),
        (
            "subject-encoded",
            with("subject", json!("Ünï: X-Injected: 1 =?utf-8?q?x?=")),
        ),
        (
            "from-name-encoded",
            with("from", json!("\"Ana; X-Injected: 1\" <ana@example.com>")),
        ),
        (
            "filename-quote",
            att("filename", "a\"\r\nX-Injected: 1; x=\".txt"),
        ),
        (
            "content-type",
            att("contentType", &format!("text/plain{inj}")),
        ),
        ("content-id", att("contentId", &format!("<c1{inj}>"))),
        (
            "calendar-uid",
            with(
                "calendar",
                json!({"method": "REQUEST", "uid": format!("u{inj}"), "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00", "timeZone": "UTC", "organizer": "Ana <ana@example.com>", "attendees": [{"email": "bob@dest.example"}]}),
            ),
        ),
        (
            "calendar-organizer",
            with(
                "calendar",
                json!({"method": "REQUEST", "uid": "u1", "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00", "timeZone": "UTC", "organizer": format!("\"Ana{inj}\" <ana@example.com>")}),
            ),
        ),
        (
            "calendar-text",
            with(
                "calendar",
                json!({"method": "REQUEST", "uid": "u1", "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00", "timeZone": "UTC",
            "summary": format!("Meet{inj}"), "description": format!("d{inj}"), "location": "l\nX-Injected: 1",
            "organizer": "Ana <ana@example.com>", "attendees": [{"email": "bob@dest.example", "name": format!("Bob{inj}")}]}),
            ),
        ),
    ];
    let mut sent = 0;
    for (name, spec) in specs {
        let built = postwire_core::spec::from_json(&spec.to_string())
            .map_err(|e| e.to_string())
            .and_then(|s| {
                postwire_core::build(
                    &s,
                    &postwire_core::BuildOptions {
                        now: 1_700_000_000,
                        seed: 3,
                    },
                )
                .map_err(|e| e.to_string())
            });
        let bytes = match built {
            Ok(b) => b,
            Err(e) => {
                // Refused by the builder: nothing to send.
                eprintln!("{name}: refused by the builder: {e}");
                continue;
            }
        };
        eprintln!("{name}: built and sent");
        assert!(
            !injected(&bytes),
            "{name}: the builder wrote a header line:\n{}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(!bytes.contains(&0), "{name}: a NUL byte in the message");
        // Nor a property line in an iCalendar part (escaped as \n and ^n).
        use mail_parser::MimeHeaders as _;
        let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        for part in parsed.parts.iter().filter(|p| {
            p.content_type()
                .is_some_and(|c| c.subtype() == Some("calendar"))
        }) {
            let ics = String::from_utf8_lossy(part.contents()).to_string();
            assert!(ics.contains("BEGIN:VEVENT"), "{ics}");
            assert_eq!(
                header_lines(ics.as_bytes(), "X-Injected"),
                0,
                "{name}: {ics}"
            );
        }
        let a = submit(&mut ws, name, Value::Null, &bytes).await;
        assert_eq!(a["type"], "accepted", "{name}: {a}");
        sent += 1;
    }
    // What arrived: exactly the envelope asked for, no injected line anywhere.
    assert!(sent >= 4, "the encoded cases were sent");
    let got = relay.picked_up();
    assert_eq!(got.len(), sent);
    for (env, bytes) in &got {
        assert!(!injected(bytes), "{}", String::from_utf8_lossy(bytes));
        assert!(!env.to_string().contains("evil"), "{env}");
        assert_eq!(env["rcptTo"].as_array().map(Vec::len), Some(1), "{env}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_strings_reach_the_smtp_server_as_one_encoded_parameter_each() {
    // The real test SMTP server (aiosmtpd) records each MAIL and RCPT
    // parameter as it arrived: DSN values with blanks, `+`, `=` and a
    // backslash are xtext-encoded, never split into another parameter or
    // command.
    let pki = smtp_support::pki();
    let server = smtp_support::Server::start_with("secure", Some(&pki), &["--extensions"]);
    let url = format!(
        "smtp://{}@localhost:{}?security=starttls&timeout=10",
        smtp_support::USER.replace('@', "%40"),
        server.port
    );
    let ca = pki.ca.display().to_string();
    let relay = relay(
        &["--smtp", &url],
        &[
            ("POSTWIRE_SMTP_PASSWORD", smtp_support::PASSWORD),
            ("POSTWIRE_SMTP_CA_FILE", &ca),
        ],
    );
    let mut ws = ready(&relay).await;
    let envelope = json!({"mailFrom": "ana@example.com", "rcptTo": ["bob@dest.example"],
        "dsn": {"notify": ["failure"], "ret": "hdrs", "envid": "a b+c=d\\ RCPT TO:<x@evil.example>",
                "recipients": [{"address": "bob@dest.example", "orcpt": "rfc822;bob+tag=1 NOTIFY=NEVER@dest.example"}]}});
    let a = submit(
        &mut ws,
        "wire",
        envelope,
        b"From: ana@example.com\r\nTo: bob@dest.example\r\n\r\nx\r\n",
    )
    .await;
    assert_eq!(a["type"], "accepted", "{a}");
    let got = server.messages();
    assert_eq!(got.len(), 1);
    let env = &got[0].0;
    assert_eq!(env["rcptTo"], json!(["bob@dest.example"]), "{env}");
    let mail = env["mailParams"].as_array().expect("mailParams");
    let envid: Vec<_> = mail
        .iter()
        .filter_map(|p| p.as_str()?.strip_prefix("ENVID="))
        .collect();
    assert_eq!(
        envid,
        ["a+20b+2Bc+3Dd\\+20RCPT+20TO:<x@evil.example>"],
        "{env}"
    );
    let rcpt = env["rcptParams"][0].as_array().expect("rcptParams");
    assert_eq!(rcpt.len(), 2, "NOTIFY and ORCPT only: {env}");
    assert_eq!(
        rcpt[1], "ORCPT=rfc822;bob+2Btag+3D1+20NOTIFY+3DNEVER@dest.example",
        "{env}"
    );
}

// ---------------------------------------------------------------- floods

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_floods_and_oversize_frames_end_the_connection_and_others_are_served() {
    // Frames up to 100 kB + 64 kB of framing.
    let relay = relay(&["--max-message-size", "100000"], &[]);
    let baseline = relay.rss_kib();

    // Before auth: an oversize frame, a binary frame, a flood of text frames.
    let mut ws = open(&relay, "127.0.0.1", &[]).await.unwrap();
    let _ = ws.send(Message::Binary(vec![b'x'; 4 << 20].into())).await;
    assert!(
        until_closed(&mut ws)
            .await
            .is_none_or(|e| e["code"] != "ready")
    );
    let mut ws = open(&relay, "127.0.0.1", &[]).await.unwrap();
    ws.send(Message::Binary(vec![0; 1000].into()))
        .await
        .unwrap();
    assert_eq!(
        until_closed(&mut ws).await.unwrap()["code"],
        "auth_required"
    );
    let mut ws = open(&relay, "127.0.0.1", &[]).await.unwrap();
    let flood = async {
        for i in 0..5000 {
            if ws
                .send(Message::Text(
                    json!({"type": "status", "id": format!("x{i}")})
                        .to_string()
                        .into(),
                ))
                .await
                .is_err()
            {
                break;
            }
        }
        until_closed(&mut ws).await
    };
    assert_eq!(flood.await.unwrap()["code"], "auth_required");

    // Before auth, a frame under the frame limit but over the pre-auth
    // budget (64 KiB) ends the connection unread: even a valid auth frame
    // padded with 150 kB of blanks (valid JSON) gets no `ready`.
    let mut ws = open(&relay, "127.0.0.1", &[]).await.expect("upgrade");
    let padded = format!(
        "{}{}",
        json!({"type": "auth", "token": relay.secret}),
        " ".repeat(150_000)
    );
    let _ = ws.send(Message::Text(padded.into())).await;
    let mut answers = Vec::new();
    while let Some(v) = next_text(&mut ws).await {
        answers.push(v);
    }
    assert!(answers.iter().all(|v| v["type"] != "ready"), "{answers:?}");
    // After an auth frame, the budget is lifted: a 90 kB message goes through.
    let mut ws = open(&relay, "127.0.0.1", &[]).await.expect("upgrade");
    ws.send(Message::Text(
        json!({"type": "auth", "token": relay.secret})
            .to_string()
            .into(),
    ))
    .await
    .expect("auth");
    assert_eq!(next_text(&mut ws).await.expect("ready")["type"], "ready");
    let mut big = b"From: ana@example.com\r\nSubject: big\r\n\r\n".to_vec();
    big.resize(90_000, b'a');
    let a = submit(
        &mut ws,
        "big-after-auth-frame",
        env_of("ana@example.com", &["bob@dest.example"]),
        &big,
    )
    .await;
    assert_eq!(a["type"], "accepted", "{a}");

    // After auth: an oversize frame; a flood of pings; a flood of status
    // frames read by nobody (backpressure, not memory); submits without bytes.
    let mut ws = ready(&relay).await;
    let _ = ws.send(Message::Binary(vec![b'x'; 4 << 20].into())).await;
    assert!(until_closed(&mut ws).await.is_none());
    let mut ws = ready(&relay).await;
    for _ in 0..20_000 {
        ws.send(Message::Ping(vec![1; 100].into())).await.unwrap();
    }
    let a = submit(
        &mut ws,
        "after-pings",
        env_of("ana@example.com", &["bob@dest.example"]),
        b"From: ana@example.com\r\n\r\nx\r\n",
    )
    .await;
    assert_eq!(a["type"], "accepted", "{a}");
    let mut unread = ready(&relay).await;
    let status = Message::Text(
        json!({"type": "status", "id": "nothing"})
            .to_string()
            .into(),
    );
    let pushed = tokio::time::timeout(Duration::from_secs(3), async {
        let mut n = 0u32;
        while n < 200_000 && unread.send(status.clone()).await.is_ok() {
            n += 1;
        }
        n
    })
    .await
    .unwrap_or(0);
    let mut ws = ready(&relay).await;
    ws.send(Message::Text(
        json!({"type": "submit", "id": "s1", "size": 10})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    ws.send(Message::Text(
        json!({"type": "submit", "id": "s2", "size": 10})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    assert_eq!(until_closed(&mut ws).await.unwrap()["code"], "protocol");

    // Meanwhile another client is served, and memory stayed bounded.
    let mut other = ready(&relay).await;
    let a = submit(
        &mut other,
        "other",
        env_of("ana@example.com", &["bob@dest.example"]),
        b"From: ana@example.com\r\n\r\nx\r\n",
    )
    .await;
    assert_eq!(a["type"], "accepted", "{a}");
    let grown = relay.rss_kib().saturating_sub(baseline);
    eprintln!(
        "RSS {baseline} KiB at start, grew by {grown} KiB; {pushed} status frames pushed unread"
    );
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB (status frames pushed unread: {pushed})"
    );
    drop(unread);
}

// ---------------------------------------------------------------- slowloris

/// Whether the server closes `tcp` (EOF or reset) within `WAIT`.
async fn closed_by_server(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(end, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upgrade_times_out_and_other_clients_are_served() {
    let relay = relay(&[], &[("POSTWIRE_HEAD_TIMEOUT", "1s")]);
    // Forty connections that send half a head and stop, and one that
    // dribbles a byte every 100 ms.
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut t = tcp_from("127.0.0.1", relay.addr).await;
        t.write_all(b"GET /v1/submit HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
            .await
            .unwrap();
        slow.push(t);
    }
    let mut dribbler = tcp_from("127.0.0.1", relay.addr).await;
    let dribble = tokio::spawn(async move {
        let head = b"GET /v1/submit HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for b in head.iter().cycle().take(10_000) {
            if dribbler.write_all(&[*b]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    // Others are served while those hang.
    let mut ws = ready(&relay).await;
    let a = submit(
        &mut ws,
        "while-slow",
        env_of("ana@example.com", &["bob@dest.example"]),
        b"From: ana@example.com\r\n\r\nx\r\n",
    )
    .await;
    assert_eq!(a["type"], "accepted", "{a}");
    // The slow ones are closed by the relay.
    for t in &mut slow {
        assert!(closed_by_server(t).await, "a half-sent head was kept open");
    }
    assert!(
        tokio::time::timeout(WAIT, dribble)
            .await
            .expect("the dribbler is cut")
            .unwrap()
    );
    // An upgraded connection has no head deadline: idle past it, it still works.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let a = submit(
        &mut ws,
        "after-idle",
        env_of("ana@example.com", &["bob@dest.example"]),
        b"From: ana@example.com\r\n\r\nx\r\n",
    )
    .await;
    assert_eq!(a["type"], "accepted", "{a}");
    // Keep-alive HTTP requests still work (one head each).
    let mut t = tcp_from("127.0.0.1", relay.addr).await;
    for _ in 0..2 {
        t.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = t.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

// ---------------------------------------------------------------- origin

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused_even_with_a_valid_token() {
    let relay = relay(&["--allow-origin", "https://app.example"], &[]);
    let auth = format!("Bearer {}", relay.secret);
    for origin in [
        "https://evil.example",
        "null",
        "http://127.0.0.1.evil.example",
        "https://app.example.evil.example",
    ] {
        let (status, _, body) = open(
            &relay,
            "127.0.0.1",
            &[("Authorization", &auth), ("Origin", origin)],
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("{origin} was let in"));
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden_origin")),
            "{origin}"
        );
    }
    // Allowed: the configured origin, the relay's own origin (its page),
    // and clients that send no Origin (not browsers).
    let own = format!("http://{}", relay.addr);
    for origin in [Some("https://app.example"), Some(own.as_str()), None] {
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        let mut ws = open(&relay, "127.0.0.1", &headers)
            .await
            .unwrap_or_else(|e| panic!("{origin:?}: {e:?}"));
        assert_eq!(next_text(&mut ws).await.unwrap()["type"], "ready");
    }
    // A refused origin is not a failed authentication.
    let log = relay.log_text();
    assert!(!log.contains("failed authentication"), "{log}");
}
