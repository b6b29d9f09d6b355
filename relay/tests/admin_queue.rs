//! The admin API (`/admin/v1`) and `postwire queue` against a real relay
//! (`postwire serve`, started here) delivering to the test SMTP server in
//! `storm-451` mode with `--faulty-file`: while the file exists every MAIL
//! gets 451, so messages stay deferred; once it is gone they are delivered.
//!
//! A deferred message is listed and shown (CLI and HTTP); held, it is not
//! delivered while the upstream accepts other mail, even once its retry time
//! has passed and after a restart of the relay; released, it is delivered.
//! A cancelled message fails with "cancelled by operator" for the client
//! waiting on it; delete needs final recipients or `--force`; a wrong admin
//! secret and a submission token get 401; with no admin token the API is
//! absent (404); `--admin-listen` serves it alone; failed authentications
//! are limited; offline `--data-dir`.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod smtp_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use smtp_support::Server;

/// A running `postwire serve`; killed on drop.
struct Relay {
    child: Child,
    addr: String,
    admin_addr: Option<String>,
    log: Arc<Mutex<String>>,
}

fn postwire() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postwire"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POSTWIRE_") && k != "POSTWIRE_VENV" {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

impl Relay {
    fn start(data: &Path, smtp: &str, more: &[&str]) -> Relay {
        let mut cmd = postwire();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(["--smtp", smtp])
            .args(["--retry-initial", "200ms", "--retry-max", "200ms"])
            .args(more)
            .env("POSTWIRE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start postwire serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("admin API listening on ").nth(1) {
                    let _ = tx.send(("admin", rest.trim().to_string()));
                }
                if let Some(rest) = line.split("relay listening on ").nth(1) {
                    let _ = tx.send((
                        "main",
                        rest.split(',').next().unwrap_or_default().to_string(),
                    ));
                }
                let mut log = sink.lock().expect("test setup");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut admin_addr = None;
        let addr = loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(("admin", a)) => admin_addr = Some(a),
                Ok((_, a)) => break a,
                Err(_) => panic!("the relay did not start: {}", log.lock().unwrap()),
            }
        };
        Relay {
            child,
            addr,
            admin_addr,
            log,
        }
    }

    fn ws(&self) -> String {
        format!("ws://{}/v1/submit", self.addr)
    }

    fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP request to `addr`; status and JSON body.
fn http(addr: &str, method: &str, path: &str, secret: Option<&str>) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect to the relay");
    let auth = secret
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    let v = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, v)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
}

/// Polls `check` until it returns `Some` (a readiness check, not a timing
/// assertion: the deadline only bounds a broken run).
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn eml(to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Ana <ana@example.com>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.com>\r\n\r\nsecret body text {subject}\r\n"
    )
    .into_bytes()
}

/// Submits one message with `postwire submit` (no wait); its client id.
fn submit(relay: &Relay, secret: &str, dir: &Path, to: &str, subject: &str) -> String {
    let f = dir.join(format!("{subject}.eml"));
    std::fs::write(&f, eml(to, subject)).unwrap();
    let out = postwire()
        .args(["submit", "--relay", &relay.ws(), "--json"])
        .arg(&f)
        .env("POSTWIRE_TOKEN", secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["messages"][0]["id"].as_str().unwrap().to_string()
}

/// `postwire queue ARGS --json` against the relay; exit status and JSON.
fn queue(relay: &Relay, admin: &str, args: &[&str]) -> (Option<i32>, Value, String) {
    let out = postwire()
        .arg("queue")
        .args(args)
        .args(["--relay", &relay.http(), "--json"])
        .env("POSTWIRE_ADMIN_TOKEN", admin)
        .output()
        .unwrap();
    parse(out)
}

fn parse(out: Output) -> (Option<i32>, Value, String) {
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code(),
        v,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The admin API's list item of the message with this client id.
fn find(relay: &Relay, admin: &str, client_id: &str) -> Option<Value> {
    let (status, v) = http(
        &relay.addr,
        "GET",
        "/admin/v1/messages?limit=1000",
        Some(admin),
    );
    assert_eq!(status, 200, "{v}");
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["clientId"] == client_id)
        .cloned()
}

fn state_of(relay: &Relay, admin: &str, client_id: &str) -> Option<(String, String)> {
    let m = find(relay, admin, client_id)?;
    Some((
        m["state"].as_str()?.to_string(),
        m["recipients"][0]["state"].as_str()?.to_string(),
    ))
}

fn received_subjects(server: &Server) -> Vec<String> {
    server
        .messages()
        .into_iter()
        .filter_map(|(_, bytes)| {
            let text = String::from_utf8_lossy(&bytes).to_string();
            text.lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        })
        .collect()
}

fn setup() -> (tempfile::TempDir, String, String) {
    let data = tempfile::tempdir().unwrap();
    let secret = postwire_relay::token::add(
        data.path(),
        "app",
        &["@example.com".into()],
        1_000_000,
        10_000,
    )
    .unwrap();
    let out = postwire()
        .args(["admin-token", "add", "ops", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(admin.starts_with("pwa_"));
    (data, secret, admin)
}

#[test]
fn a_held_message_waits_through_retries_and_a_restart_and_is_delivered_once_released() {
    let files = tempfile::tempdir().unwrap();
    let fault = files.path().join("fault");
    std::fs::write(&fault, "").unwrap();
    let server = Server::start_with(
        "storm-451",
        None,
        &["--faulty-file", fault.to_str().unwrap()],
    );
    let smtp = format!("smtp://127.0.0.1:{}?security=none&timeout=10", server.port);
    let (data, secret, admin) = setup();
    let mut relay = Relay::start(data.path(), &smtp, &[]);

    let held = submit(&relay, &secret, files.path(), "bob@example.org", "held-one");
    let (_, deferred) = wait_for("a deferral", || {
        state_of(&relay, &admin, &held).filter(|(_, r)| r == "deferred")
    });
    assert_eq!(deferred, "deferred");

    // Listed and shown by the CLI.
    let (code, list, err) = queue(
        &relay,
        &admin,
        &["list", "--recipient", "BOB@", "--state", "queued"],
    );
    assert_eq!(code, Some(0), "{err}");
    let item = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["clientId"] == held.as_str())
        .expect("listed")
        .clone();
    assert_eq!(item["token"], "app");
    assert_eq!(item["from"], "ana@example.com");
    assert_eq!(item["recipients"][0]["address"], "bob@example.org");
    assert!(item["recipients"][0]["attempts"].as_u64().unwrap() >= 1);
    assert!(
        item["recipients"][0]["lastReply"]
            .as_str()
            .unwrap()
            .contains("451"),
        "{item}"
    );
    assert!(item["recipients"][0]["nextAttempt"].is_string());
    let id = item["id"].as_str().unwrap().to_string();
    let (code, shown, err) = queue(&relay, &admin, &["show", &id]);
    assert_eq!(code, Some(0), "{err}");
    let headers = shown["headers"].as_array().unwrap();
    assert!(
        headers
            .iter()
            .any(|h| h[0] == "Subject" && h[1] == "held-one"),
        "{shown}"
    );
    assert!(
        !shown.to_string().contains("secret body text"),
        "never the body"
    );
    let history = shown["recipients"][0]["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|h| h["state"] == "deferred" && h["smtpCode"] == 451),
        "{shown}"
    );
    // The same over HTTP, and the text output of the CLI.
    let (status, v) = http(
        &relay.addr,
        "GET",
        &format!("/admin/v1/messages/{id}"),
        Some(&admin),
    );
    assert_eq!(status, 200);
    assert_eq!(v["clientId"], held.as_str());
    let out = postwire()
        .args(["queue", "list", "--relay", &relay.http()])
        .env("POSTWIRE_ADMIN_TOKEN", &admin)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));

    // Held: the upstream now accepts, other mail goes through, the held
    // message does not, even when asked to retry.
    let (code, v, err) = queue(&relay, &admin, &["hold", &id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["message"]["state"], "held");
    let next = wait_for("the in-flight attempt to end", || {
        state_of(&relay, &admin, &held).filter(|(_, r)| r == "held")
    });
    assert_eq!(next.0, "held");
    std::fs::remove_file(&fault).unwrap();
    let (code, _, err) = queue(&relay, &admin, &["retry", &id]);
    assert_eq!(code, Some(0), "{err}");
    let other = submit(
        &relay,
        &secret,
        files.path(),
        "carl@example.org",
        "other-one",
    );
    wait_for("the other message delivered", || {
        state_of(&relay, &admin, &other).filter(|(s, _)| s == "delivered")
    });
    // Past the held message's retry time (200 ms after its last attempt).
    let past = Instant::now() + Duration::from_millis(400);
    wait_for("its retry time to pass", || {
        (Instant::now() >= past).then_some(())
    });
    let other2 = submit(
        &relay,
        &secret,
        files.path(),
        "dora@example.org",
        "other-two",
    );
    wait_for("a second message delivered", || {
        state_of(&relay, &admin, &other2).filter(|(s, _)| s == "delivered")
    });
    assert_eq!(state_of(&relay, &admin, &held).unwrap().0, "held");
    assert!(!received_subjects(&server).contains(&"held-one".to_string()));

    // Still held after a restart (the hold is in the journal).
    drop(relay);
    relay = Relay::start(data.path(), &smtp, &[]);
    let after = submit(
        &relay,
        &secret,
        files.path(),
        "erin@example.org",
        "after-restart",
    );
    wait_for("a message delivered after the restart", || {
        state_of(&relay, &admin, &after).filter(|(s, _)| s == "delivered")
    });
    assert_eq!(state_of(&relay, &admin, &held).unwrap().0, "held");
    assert!(!received_subjects(&server).contains(&"held-one".to_string()));
    // Offline reading while the relay holds the lock: a read-only copy.
    let out = postwire()
        .args(["queue", "show", &id, "--json", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let (code, v, err) = parse(out);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(v["state"], "held");
    let out = postwire()
        .args(["queue", "release", &id, "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "actions are refused while a relay runs"
    );

    // Released: delivered.
    let (code, _, err) = queue(&relay, &admin, &["release", &id]);
    assert_eq!(code, Some(0), "{err}");
    wait_for("the released message delivered", || {
        state_of(&relay, &admin, &held).filter(|(s, _)| s == "delivered")
    });
    assert_eq!(
        received_subjects(&server)
            .iter()
            .filter(|s| *s == "held-one")
            .count(),
        1
    );
    // Summary.
    let (status, v) = http(&relay.addr, "GET", "/admin/v1/summary", Some(&admin));
    assert_eq!(status, 200);
    assert!(v["counts"]["delivered"].as_u64().unwrap() >= 4, "{v}");
    assert!(v["depth"]["queued"].is_u64());
    assert!(
        relay.log().contains("postwire::admin"),
        "actions are logged"
    );
    assert!(!relay.log().contains(&admin), "never the secret");
}

#[test]
fn a_cancelled_message_fails_for_its_client_and_delete_needs_final_recipients_or_force() {
    let files = tempfile::tempdir().unwrap();
    let fault = files.path().join("fault");
    std::fs::write(&fault, "").unwrap();
    let server = Server::start_with(
        "storm-451",
        None,
        &["--faulty-file", fault.to_str().unwrap()],
    );
    let smtp = format!("smtp://127.0.0.1:{}?security=none&timeout=10", server.port);
    let (data, secret, admin) = setup();
    let relay = Relay::start(data.path(), &smtp, &[]);

    // A client waits for the outcome of its message.
    let f = files.path().join("cancel-me.eml");
    std::fs::write(&f, eml("bob@example.org", "cancel-me")).unwrap();
    let waiting = postwire()
        .args(["submit", "--relay", &relay.ws(), "--wait", "--json"])
        .arg(&f)
        .env("POSTWIRE_TOKEN", &secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let item = wait_for("a deferral", || {
        let (status, v) = http(
            &relay.addr,
            "GET",
            "/admin/v1/messages?sender=ANA@",
            Some(&admin),
        );
        assert_eq!(status, 200);
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["recipients"][0]["state"] == "deferred")
            .cloned()
    });
    let id = item["id"].as_str().unwrap();
    // Not final: delete refused.
    let (status, v) = http(
        &relay.addr,
        "DELETE",
        &format!("/admin/v1/messages/{id}"),
        Some(&admin),
    );
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["code"], "conflict");
    let (status, v) = wait_for("no attempt in flight", || {
        let (status, v) = http(
            &relay.addr,
            "POST",
            &format!("/admin/v1/messages/{id}/cancel"),
            Some(&admin),
        );
        (status != 409).then_some((status, v))
    });
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["message"]["state"], "failed");
    assert_eq!(
        v["message"]["recipients"][0]["lastReply"],
        "cancelled by operator"
    );
    let out = waiting.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["messages"][0]["recipients"][0]["state"], "failed", "{v}");
    assert_eq!(
        v["messages"][0]["recipients"][0]["reason"],
        "cancelled by operator"
    );
    // Cancel again: conflict; unknown ids: 404.
    let (status, _) = http(
        &relay.addr,
        "POST",
        &format!("/admin/v1/messages/{id}/cancel"),
        Some(&admin),
    );
    assert_eq!(status, 409);
    let (status, v) = http(
        &relay.addr,
        "POST",
        "/admin/v1/messages/bm9wZQ/hold",
        Some(&admin),
    );
    assert_eq!((status, v["code"].as_str()), (404, Some("not_found")));
    // Final: deleted, then gone.
    let (code, v, err) = queue(&relay, &admin, &["delete", id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["ok"], true);
    let (status, _) = http(
        &relay.addr,
        "GET",
        &format!("/admin/v1/messages/{id}"),
        Some(&admin),
    );
    assert_eq!(status, 404);

    // A deferred message deleted with --force: cancelled first.
    let forced = submit(&relay, &secret, files.path(), "carl@example.org", "forced");
    let m = wait_for("a deferral", || {
        find(&relay, &admin, &forced).filter(|m| m["recipients"][0]["state"] == "deferred")
    });
    let fid = m["id"].as_str().unwrap().to_string();
    let (code, _, err) = queue(&relay, &admin, &["delete", &fid]);
    assert_eq!(code, Some(1), "not final: refused ({err})");
    assert!(err.contains("409"), "{err}");
    wait_for("forced delete", || {
        let (code, _, _) = queue(&relay, &admin, &["delete", &fid, "--force"]);
        (code == Some(0)).then_some(())
    });
    assert!(find(&relay, &admin, &forced).is_none());
    assert!(received_subjects(&server).is_empty());
    // The submission token is not an admin token; a wrong secret neither.
    for bad in [secret.as_str(), "pwa_wrong"] {
        let (status, v) = http(&relay.addr, "GET", "/admin/v1/messages", Some(bad));
        assert_eq!((status, v["code"].as_str()), (401, Some("unauthorized")));
    }
    let (status, _) = http(&relay.addr, "GET", "/admin/v1/summary", None);
    assert_eq!(status, 401);
    let (code, _, _) = queue(&relay, "pwa_wrong", &["list"]);
    assert_eq!(code, Some(1));
}

#[test]
fn without_an_admin_token_the_api_is_absent_and_admin_listen_serves_it_alone() {
    let server = Server::start("pipelining", None);
    let smtp = format!("smtp://127.0.0.1:{}?security=none&timeout=10", server.port);
    let data = tempfile::tempdir().unwrap();
    let secret = postwire_relay::token::add(
        data.path(),
        "app",
        &["@example.com".into()],
        1_000_000,
        10_000,
    )
    .unwrap();
    let relay = Relay::start(data.path(), &smtp, &[]);
    for path in ["/admin/v1/messages", "/admin/v1/summary"] {
        let (status, v) = http(&relay.addr, "GET", path, Some(&secret));
        assert_eq!(
            (status, v["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    drop(relay);

    // With --admin-listen, the API is there only.
    let admin = postwire_relay::admin::tokens::add(data.path(), "ops").unwrap();
    let relay = Relay::start(data.path(), &smtp, &["--admin-listen", "127.0.0.1:0"]);
    let admin_addr = relay.admin_addr.clone().expect("an admin listener");
    let (status, _) = http(&relay.addr, "GET", "/admin/v1/summary", Some(&admin));
    assert_eq!(status, 404, "not on the main listener");
    let (status, v) = http(&admin_addr, "GET", "/admin/v1/summary", Some(&admin));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["counts"]["queued"], 0);
    // Failed authentications are limited per address.
    for _ in 0..10 {
        let (status, _) = http(&admin_addr, "GET", "/admin/v1/summary", Some("pwa_guess"));
        assert_eq!(status, 401);
    }
    let (status, v) = http(&admin_addr, "GET", "/admin/v1/summary", Some(&admin));
    assert_eq!((status, v["code"].as_str()), (429, Some("rate_limited")));
    drop(relay);

    // Offline, with no relay running: actions work on the spool itself.
    let out = postwire()
        .args(["queue", "list", "--json", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let (code, v, err) = parse(out);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["messages"].as_array().unwrap().len(), 0);
}
