//! The Rust relay client and `postwire submit` against a real relay
//! (`postwire serve`, started here) delivering to the test SMTP server
//! (smtpd.py in `pipelining` mode: "reject..." recipients get 550): files
//! and a bulk folder, `--wait` with delivered and failed recipients, `--json`,
//! a refused sender, the access log of the relay; a relay killed in the
//! middle of a submission and started again on the same data directory and
//! port, with every message answered and delivered once; and `/readyz`.

mod smtp_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use postwire_relay::client::{ClientEvent, ClientOptions, OutgoingMessage, RcptState, RelayClient};
use serde_json::Value;
use smtp_support::{Server, message, pki};

/// A running `postwire serve`; killed on drop. Its stderr is collected.
struct Relay {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Relay {
    /// Starts a relay on `listen` (`127.0.0.1:0` for any port) with the
    /// given upstream URL (`None`: the pickup directory).
    fn start(data: &Path, listen: &str, smtp: Option<&str>) -> Relay {
        Relay::start_with(data, listen, smtp, &[])
    }

    /// [`Relay::start`] with more arguments of `postwire serve`.
    fn start_with(
        data: &Path,
        listen: &str,
        smtp: Option<&str>,
        more: &[&std::ffi::OsStr],
    ) -> Relay {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postwire"));
        for (k, _) in std::env::vars() {
            if k.starts_with("POSTWIRE_") && k != "POSTWIRE_VENV" {
                cmd.env_remove(k);
            }
        }
        cmd.args(["serve", "--listen", listen, "--data-dir"])
            .arg(data)
            .args(more)
            .env("POSTWIRE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = smtp {
            cmd.arg("--smtp").arg(url);
        }
        let mut child = cmd.spawn().expect("start postwire serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let (tx, rx) = mpsc::channel();
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

    /// The log once it has `n` access lines (the relay writes them before
    /// it answers, but they reach this process through a pipe and a thread).
    fn log_with_access_lines(&self, n: usize) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            let seen = log
                .lines()
                .filter(|l| l.contains("postwire::access"))
                .count();
            if seen >= n || std::time::Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: no graceful shutdown, connections cut.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_url(server: &Server) -> String {
    format!("smtp://127.0.0.1:{}?security=none&timeout=10", server.port)
}

/// A data directory with the token "app" (senders @example.com); its secret.
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

fn eml(to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Ana <ana@example.com>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.com>\r\n\r\nsecret body text {subject}\r\n"
    )
    .into_bytes()
}

/// Runs `postwire submit` with the token in POSTWIRE_TOKEN.
fn submit(secret: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postwire"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POSTWIRE_") && k != "POSTWIRE_VENV" {
            cmd.env_remove(k);
        }
    }
    cmd.arg("submit")
        .args(args)
        .env("POSTWIRE_TOKEN", secret)
        .stdin(Stdio::null())
        .output()
        .expect("run postwire submit")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON on stdout ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn files_are_submitted_and_waited_for_with_delivered_and_failed_recipients_in_json() {
    let server = Server::start("pipelining", None);
    let (data, secret) = data_dir();
    let relay = Relay::start(data.path(), "127.0.0.1:0", Some(&smtp_url(&server)));
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.eml");
    std::fs::write(&a, eml("bob@example.org", "first")).unwrap();
    let b = dir.path().join("b.eml");
    std::fs::write(&b, eml("ok@example.org, reject@example.org", "second")).unwrap();
    let spec = dir.path().join("c.json");
    std::fs::write(
        &spec,
        r#"{"from":"ana@example.com","to":["carl@example.org"],"bcc":["dora@example.org"],"subject":"spec","text":"hello"}"#,
    )
    .unwrap();
    let url = relay.url();
    let out = submit(
        &secret,
        &[
            "--relay",
            &url,
            "--wait",
            "--json",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            spec.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed recipient: exit 1; stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["token"], "app");
    assert_eq!(v["waited"], true);
    assert_eq!(v["complete"], true);
    let messages = v["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    for m in messages {
        assert_eq!(m["state"], "accepted", "{m}");
        assert!(m["id"].as_str().is_some_and(|id| id.len() == 32), "{m}");
    }
    assert_eq!(messages[0]["file"], a.to_str().unwrap());
    assert_eq!(messages[0]["recipients"][0]["rcpt"], "bob@example.org");
    assert_eq!(messages[0]["recipients"][0]["state"], "delivered");
    assert!(
        messages[0]["recipients"][0]["response"]
            .as_str()
            .unwrap()
            .starts_with("250")
    );
    let second: Vec<(&str, &str)> = messages[1]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rcpt"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        second,
        [
            ("ok@example.org", "delivered"),
            ("reject@example.org", "failed")
        ]
    );
    assert!(
        messages[1]["recipients"][1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("550")
    );
    // The spec's Bcc is in the envelope the client derived, not in the bytes.
    let third: Vec<&str> = messages[2]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rcpt"].as_str().unwrap())
        .collect();
    assert_eq!(third, ["carl@example.org", "dora@example.org"]);
    let totals = &v["totals"];
    assert_eq!(
        (
            totals["messages"].as_u64(),
            totals["accepted"].as_u64(),
            totals["delivered"].as_u64(),
            totals["failed"].as_u64()
        ),
        (Some(3), Some(3), Some(4), Some(1)),
        "{totals}"
    );
    let got = server.messages();
    assert_eq!(got.len(), 3);
    assert!(
        !String::from_utf8_lossy(&got[2].1).contains("dora@"),
        "no Bcc header in the bytes"
    );

    // The access log: one line per submission, named token, no secret, no body.
    let log = relay.log_with_access_lines(3);
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("postwire::access"))
        .collect();
    assert_eq!(access.len(), 3, "{log}");
    assert!(
        access
            .iter()
            .all(|l| l.contains("token=\"app\"") && l.contains("outcome=\"accepted\"")),
        "{log}"
    );
    assert!(access.iter().any(|l| l.contains("recipients=2")), "{log}");
    assert!(!log.contains(&secret), "the token's secret is never logged");
    assert!(!log.contains("secret body text"), "bodies are never logged");
}

#[test]
fn a_bulk_folder_is_submitted_with_the_token_from_a_file_and_a_refused_sender_exits_non_zero() {
    let server = Server::start("pipelining", None);
    let (data, secret) = data_dir();
    let relay = Relay::start(data.path(), "127.0.0.1:0", Some(&smtp_url(&server)));
    let dir = tempfile::tempdir().unwrap();
    for i in 0..12 {
        std::fs::write(dir.path().join(format!("{i:02}.eml")), message(i, 2_000)).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "skipped").unwrap();
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), format!("{secret}\n")).unwrap();
    let url = relay.url();
    let out = submit(
        "",
        &[
            "--relay",
            &url,
            "--token-file",
            token_file.path().to_str().unwrap(),
            "--bulk",
            dir.path().to_str().unwrap(),
            "--wait",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout {stdout} stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("12 message(s): 12 accepted (0 duplicate), 0 rejected; recipients: 12 delivered, 0 failed"),
        "{stdout}"
    );
    assert_eq!(server.messages().len(), 12);

    // A sender the token may not use: rejected, exit 1, nothing delivered.
    let bad = dir.path().join("bad.eml");
    std::fs::write(
        &bad,
        b"From: mallory@elsewhere.org\r\nTo: bob@example.org\r\nSubject: x\r\n\r\nx\r\n",
    )
    .unwrap();
    let out = submit(&secret, &["--relay", &url, bad.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("rejected (sender_not_allowed)"), "{stdout}");
    assert_eq!(server.messages().len(), 12);

    // No token: a clear error before any connection.
    let out = submit("", &["--relay", &url, bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("POSTWIRE_TOKEN"));
    // ws:// to another host is refused (the token would travel in the clear).
    let out = submit(
        &secret,
        &[
            "--relay",
            "ws://relay.example/v1/submit",
            bad.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wss://"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_during_a_submission_gets_every_message_again_by_id_and_delivers_each_once()
{
    let server = Server::start("pipelining", None);
    let (data, secret) = data_dir();
    // The first relay's upstream is a closed port: nothing is delivered
    // before the kill, so the count below can only show a double submission.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let first = Relay::start(
        data.path(),
        "127.0.0.1:0",
        Some(&format!(
            "smtp://127.0.0.1:{closed_port}?security=none&timeout=5"
        )),
    );
    let addr = first.addr.clone();
    let mut client = RelayClient::connect(
        &first.url(),
        ClientOptions::new(&secret).max_reconnect_delay(Duration::from_millis(300)),
    )
    .await
    .expect("connect");
    let mut events = client.take_events().unwrap();
    const N: usize = 40;
    let tickets: Vec<_> = (0..N)
        .map(|i| client.submit(OutgoingMessage::new(message(i, 20_000)).id(format!("m{i}"))))
        .collect();
    // Kill the relay as soon as it accepted the first message: the others
    // are queued, in flight, or stored without an answer the client saw.
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Some(ClientEvent::Accepted(_))) => break,
            Ok(Some(_)) => {}
            other => panic!("no accepted event: {other:?}"),
        }
    }
    first.kill();
    let second = Relay::start(data.path(), &addr, Some(&smtp_url(&server)));
    assert_eq!(second.addr, addr);

    let mut accepted = Vec::new();
    for t in tickets {
        let a = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("answered in time")
            .expect("accepted");
        accepted.push(a);
    }
    assert_eq!(accepted.len(), N);
    // The same id once more: the relay knows it.
    let again = client
        .submit(OutgoingMessage::new(message(0, 20_000)).id("m0"))
        .await
        .expect("answered");
    assert!(again.duplicate, "{again:?}");

    // Every message ends delivered, learnt from events or from `status`.
    let mut settled = std::collections::HashSet::new();
    let mut reconnected = false;
    let mut duplicates = 0usize;
    while settled.len() < N {
        match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
            Ok(Some(ClientEvent::Settled { id, recipients })) => {
                assert!(
                    recipients
                        .iter()
                        .all(|r| matches!(r.state, RcptState::Delivered { .. })),
                    "{id}: {recipients:?}"
                );
                settled.insert(id);
            }
            Ok(Some(ClientEvent::Reconnecting { .. })) => reconnected = true,
            Ok(Some(ClientEvent::Accepted(a))) if a.duplicate => duplicates += 1,
            Ok(Some(_)) => {}
            other => panic!("events ended with {} settled: {other:?}", settled.len()),
        }
    }
    assert!(reconnected, "the client reconnected");
    // Messages the first relay stored but whose `accepted` was lost with it
    // came back as duplicates (how many depends on the moment of the kill).
    eprintln!("answered duplicate: {duplicates} (m0, resubmitted on purpose, among them)");
    client.close().await;
    let got = server.messages();
    let mut subjects: Vec<String> = got
        .iter()
        .map(|(_, bytes)| {
            let text = String::from_utf8_lossy(bytes);
            text.lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), N, "each message once");
    assert_eq!(got.len(), N, "no message twice");
}

/// `GET path` over HTTP/1.1; the status and the body.
fn get(addr: &str, path: &str) -> (u16, Value) {
    let mut tcp = std::net::TcpStream::connect(addr).expect("test setup");
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("test setup");
    let mut text = String::new();
    tcp.read_to_string(&mut text).expect("test setup");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn readyz_is_503_while_the_upstream_is_unreachable_and_200_otherwise() {
    let (data, _secret) = data_dir();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = Relay::start(
        data.path(),
        "127.0.0.1:0",
        Some(&format!(
            "smtp://127.0.0.1:{closed_port}?security=none&timeout=5"
        )),
    );
    let (status, body) = get(&down.addr, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["upstream"], "unreachable", "{body}");
    let (status, _) = get(&down.addr, "/healthz");
    assert_eq!(status, 200, "alive, though not ready");
    drop(down);

    let server = Server::start("pipelining", None);
    let up = Relay::start(data.path(), "127.0.0.1:0", Some(&smtp_url(&server)));
    let (status, body) = get(&up.addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["upstream"], "ok");
    drop(up);

    let pickup = Relay::start(data.path(), "127.0.0.1:0", None);
    let (status, body) = get(&pickup.addr, "/readyz");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn wss_is_verified_against_the_roots_and_a_private_ca_file_is_trusted_when_given() {
    let pki = pki();
    let (data, secret) = data_dir();
    let relay = Relay::start_with(
        data.path(),
        "127.0.0.1:0",
        None,
        &[
            "--tls-cert".as_ref(),
            pki.cert.as_os_str(),
            "--tls-key".as_ref(),
            pki.key.as_os_str(),
        ],
    );
    let port = relay.addr.rsplit(':').next().unwrap();
    let url = format!("wss://localhost:{port}/v1/submit");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.eml");
    std::fs::write(&file, eml("bob@example.org", "tls")).unwrap();

    // First (the relay's first connection over TLS) with the test CA.
    let ca = pki.ca.to_str().unwrap();
    let out = submit(
        &secret,
        &[
            "--relay",
            &url,
            "--ca-file",
            ca,
            "--json",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["messages"][0]["state"], "accepted", "{v}");
    assert_eq!(v["waited"], false);

    // The test CA is not among the roots: refused, nothing sent.
    let out = submit(&secret, &["--relay", &url, file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("TLS") && stderr.contains("certificate"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_at_connect_and_a_message_over_the_limit_is_refused_without_upload()
 {
    let (data, secret) = data_dir();
    let small = postwire_relay::token::add(
        data.path(),
        "small",
        &["@example.com".into()],
        1_000,
        10_000,
    )
    .unwrap();
    let relay = Relay::start(data.path(), "127.0.0.1:0", None);
    let err = RelayClient::connect(&relay.url(), ClientOptions::new("pw_wrong"))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "unauthorized", "{err}");
    assert!(err.is_fatal());

    let client = RelayClient::connect(&relay.url(), ClientOptions::new(&small))
        .await
        .expect("connect");
    assert_eq!(client.ready().token, "small");
    assert_eq!(client.ready().max_size, 1_000);
    let err = client
        .submit(OutgoingMessage::new(message(1, 5_000)).id("big"))
        .await
        .expect_err("too large");
    assert_eq!(err.code(), "too_large", "{err}");
    let ok = client
        .submit(OutgoingMessage::new(message(2, 500)).id("fits"))
        .await
        .expect("accepted");
    assert!(!ok.duplicate);
    client.close().await;
    // The relay never saw the large one: one access line, for "fits".
    let log = relay.log_with_access_lines(1);
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("postwire::access"))
        .collect();
    assert_eq!(access.len(), 1, "{log}");
    assert!(access[0].contains("id=\"fits\""), "{log}");
    assert!(!log.contains(&secret) && !log.contains(&small));
}

#[test]
fn wait_timeout_reports_a_deferred_recipient_and_exits_non_zero() {
    let server = Server::start("pipelining", None);
    let (data, secret) = data_dir();
    let relay = Relay::start(data.path(), "127.0.0.1:0", Some(&smtp_url(&server)));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("later.eml");
    std::fs::write(&file, eml("bob@example.org, tempfail@example.org", "later")).unwrap();
    let url = relay.url();
    // 451 for tempfail@: retried by the relay in 30 s, long after the wait ends.
    let out = submit(
        &secret,
        &[
            "--relay",
            &url,
            "--wait",
            "--wait-timeout",
            "3",
            "--json",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out);
    assert_eq!(v["complete"], false, "{v}");
    let states: Vec<(&str, &str)> = v["messages"][0]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rcpt"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("bob@example.org", "delivered"),
            ("tempfail@example.org", "deferred")
        ]
    );
    let deferred = &v["messages"][0]["recipients"][1];
    assert!(
        deferred["reason"].as_str().unwrap().starts_with("451"),
        "{deferred}"
    );
    assert_eq!(deferred["attempts"], 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not final"));
}
