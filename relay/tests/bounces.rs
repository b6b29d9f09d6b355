//! Bounces back to the sender, the whole way (docs/bounces.md): a client
//! submits over the WebSocket to `postwire serve` with a bounce domain and an
//! inbound SMTP port; the relay delivers to the test SMTP server (which
//! answers 250) with a VERP return path per recipient; then an RFC 3464 DSN
//! and an RFC 5965 complaint are sent to the inbound port by Python's
//! smtplib (an independent SMTP client) to the return paths the test server
//! saw. The client sees `delivered` then `bounced` / `complained`, the
//! bounced recipient is refused (`suppressed`) on the next submission, and
//! `postwire suppression remove` lifts it.

mod smtp_support;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use smtp_support::{Server, python};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const BOUNCE_DOMAIN: &str = "bounces.example.com";

async fn next_text(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("JSON frame");
        }
    }
}

/// Reads frames until one of each type in `want` arrived (delivery events
/// may come before `accepted`); any other type is a failure.
async fn expect(ws: &mut Ws, want: &[&str]) -> Vec<Value> {
    let mut left: Vec<&str> = want.to_vec();
    let mut got = Vec::new();
    while !left.is_empty() {
        let v = next_text(ws).await;
        let t = v["type"].as_str().unwrap_or_default().to_string();
        let Some(i) = left.iter().position(|w| *w == t) else {
            panic!("unexpected frame {v}, waiting for {left:?}");
        };
        left.remove(i);
        got.push(v);
    }
    got
}

async fn submit(ws: &mut Ws, id: &str, rcpts: &[&str]) {
    let bytes = format!(
        "From: ana@example.com\r\nTo: {}\r\nSubject: {id}\r\nMessage-ID: <{id}@example.com>\r\n\r\nhola\r\n",
        rcpts.join(", ")
    );
    let submit = json!({"type": "submit", "id": id, "size": bytes.len(),
        "envelope": {"mailFrom": "ana@example.com", "rcptTo": rcpts}});
    ws.send(Message::Text(submit.to_string().into()))
        .await
        .expect("send a frame");
    ws.send(Message::Binary(bytes.into_bytes().into()))
        .await
        .expect("send a frame");
}

/// An RFC 3464 DSN as an MTA makes it: multipart/report with a text part,
/// message/delivery-status and the original headers.
fn dsn(rcpt: &str, message_id: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n\
         To: <ignored@{BOUNCE_DOMAIN}>\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\
         \r\n\
         --B1\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         I'm sorry to have to inform you that your message could not be delivered.\r\n\
         --B1\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.org\r\n\
         Arrival-Date: Sat, 5 Dec 2026 02:00:00 +0000\r\n\
         \r\n\
         Final-Recipient: rfc822; {rcpt}\r\n\
         Original-Recipient: rfc822; {rcpt}\r\n\
         Action: failed\r\n\
         Status: 5.1.1\r\n\
         Remote-MTA: dns; mx.example.org\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: user unknown\r\n\
         \r\n\
         --B1\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         From: ana@example.com\r\n\
         Message-ID: <{message_id}>\r\n\
         Subject: m1\r\n\
         --B1--\r\n"
    )
}

/// An RFC 5965 abuse report.
fn arf(rcpt: &str) -> String {
    format!(
        "From: abuse@mailbox.example.net\r\n\
         To: <ignored@{BOUNCE_DOMAIN}>\r\n\
         Subject: complaint\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F1\"\r\n\
         \r\n\
         --F1\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         This is an abuse report.\r\n\
         --F1\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: test/1.0\r\n\
         Version: 1\r\n\
         Original-Rcpt-To: <{rcpt}>\r\n\
         \r\n\
         --F1\r\n\
         Content-Type: message/rfc822\r\n\
         \r\n\
         From: ana@example.com\r\n\
         Subject: m1\r\n\
         \r\n\
         hola\r\n\
         --F1--\r\n"
    )
}

/// Sends `message` to the inbound port with Python's smtplib from the null
/// sender to `to`; first checks that a recipient outside the bounce domain
/// is refused with 550. Prints the codes it got.
fn send_report(port: u16, to: &str, message: &str, dir: &Path) -> String {
    let file = dir.join("report.eml");
    std::fs::write(&file, message).expect("write the report");
    let script = r#"
import smtplib, sys
port, to, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, timeout=20)
code, _ = s.ehlo("mx.example.org")
print("ehlo", code)
s.mail("")
code, _ = s.rcpt("someone@elsewhere.example")
print("foreign", code)
s.rset()
refused = s.sendmail("", [to], open(path, "rb").read())
print("sent", refused)
s.quit()
"#;
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(port.to_string())
        .arg(to)
        .arg(&file)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "smtplib failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn postwire(args: &[&str], data: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_postwire"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run postwire");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dsn_to_the_inbound_port_reaches_the_client_as_bounced_and_suppresses_the_recipient() {
    let server = Server::start("pipelining", None);
    let data = tempfile::tempdir().unwrap();
    let secret =
        postwire_relay::token::add(data.path(), "app", &["@example.com".into()], 100_000, 1000)
            .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postwire"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POSTWIRE_") && k != "POSTWIRE_VENV" {
            cmd.env_remove(k);
        }
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .arg("--smtp")
        .arg(format!(
            "smtp://127.0.0.1:{}?security=none&timeout=10",
            server.port
        ))
        .args([
            "--bounce-domain",
            BOUNCE_DOMAIN,
            "--inbound-smtp",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start postwire serve");
    let stderr = child.stderr.take().expect("stderr");
    let relay = Relay(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut addr, mut inbound) = (None, None);
    while addr.is_none() || inbound.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the relay did not say where it listens");
        if let Some(rest) = line.split("inbound SMTP listening on ").nth(1) {
            inbound = rest.split(' ').next().map(str::to_string);
        } else if let Some(rest) = line.split("relay listening on ").nth(1) {
            addr = rest.split(',').next().map(str::to_string);
        }
    }
    let (addr, inbound) = (addr.unwrap(), inbound.unwrap());
    let inbound_port: u16 = inbound.rsplit(':').next().unwrap().parse().unwrap();

    let mut request = format!("ws://{addr}/v1/submit")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {secret}").parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("WebSocket");
    assert_eq!(next_text(&mut ws).await["type"], "ready");

    // 1. Delivered to both recipients, each with its own return path.
    submit(&mut ws, "m1", &["bob@example.org", "carl@example.org"]).await;
    expect(&mut ws, &["accepted", "delivered", "delivered"]).await;
    let got = server.messages();
    assert_eq!(got.len(), 2, "one transaction per recipient");
    let return_path = |rcpt: &str| {
        got.iter()
            .find(|(j, _)| j["rcptTo"] == json!([rcpt]))
            .map(|(j, _)| j["mailFrom"].as_str().unwrap().to_string())
            .expect("the recipient's transaction")
    };
    let (bob_path, carl_path) = (
        return_path("bob@example.org"),
        return_path("carl@example.org"),
    );
    assert!(
        bob_path.starts_with("bounces+") && bob_path.ends_with(&format!("@{BOUNCE_DOMAIN}")),
        "{bob_path}"
    );
    assert_ne!(bob_path, carl_path);

    // 2. A DSN for bob: `bounced` (hard), and relaying is refused.
    let out = send_report(
        inbound_port,
        &bob_path,
        &dsn("bob@example.org", "m1@example.com"),
        data.path(),
    );
    assert!(out.contains("ehlo 250"), "{out}");
    assert!(out.contains("foreign 550"), "never a relay: {out}");
    assert!(out.contains("sent {}"), "{out}");
    let v = next_text(&mut ws).await;
    assert_eq!(v["type"], "bounced", "{v}");
    assert_eq!(v["id"], "m1");
    assert_eq!(v["rcpt"], "bob@example.org");
    assert_eq!(v["bounce"], "hard");
    assert_eq!(v["status"], "5.1.1");
    assert!(
        v["diagnostic"].as_str().unwrap().contains("user unknown"),
        "{v}"
    );

    // 3. A complaint for carl: `complained`.
    send_report(
        inbound_port,
        &carl_path,
        &arf("carl@example.org"),
        data.path(),
    );
    let v = next_text(&mut ws).await;
    assert_eq!(v["type"], "complained", "{v}");
    assert_eq!(v["rcpt"], "carl@example.org");
    assert_eq!(v["feedbackType"], "abuse");

    // 4. A report that matches nothing is still taken (250) and counted.
    let out = send_report(
        inbound_port,
        &format!("bounces+0123456789abcdef.01234567@{BOUNCE_DOMAIN}"),
        &dsn("nobody@example.org", "unknown@example.com"),
        data.path(),
    );
    assert!(out.contains("sent {}"), "{out}");

    // 5. The status keeps the reports.
    ws.send(Message::Text(
        json!({"type": "status", "id": "m1"}).to_string().into(),
    ))
    .await
    .unwrap();
    let v = next_text(&mut ws).await;
    assert_eq!(v["type"], "status", "{v}");
    let states: Vec<(String, String)> = v["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rcpt"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        states.contains(&("bob@example.org".into(), "bounced".into())),
        "{v}"
    );
    assert!(
        states.contains(&("carl@example.org".into(), "complained".into())),
        "{v}"
    );

    // 6. The next submission to bob is refused; to someone else it goes.
    submit(&mut ws, "m2", &["Bob@example.org"]).await;
    let v = next_text(&mut ws).await;
    assert_eq!(v["type"], "rejected", "{v}");
    assert_eq!(v["code"], "suppressed");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.contains("hard bounce") && message.contains("5.1.1"),
        "{message}"
    );
    submit(&mut ws, "m3", &["dora@example.org"]).await;
    expect(&mut ws, &["accepted", "delivered"]).await;

    // 7. The operator lists and lifts the suppression; bob can be sent to again.
    let (ok, listed) = postwire(&["suppression", "list", "--json"], data.path());
    assert!(ok, "{listed}");
    let list: Value = serde_json::from_str(&listed).expect("JSON list");
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[0]["address"], "bob@example.org");
    assert_eq!(list[0]["reason"], "hardBounce");
    assert_eq!(list[1]["reason"], "complaint");
    let (ok, out) = postwire(
        &["suppression", "remove", "bob@example.org", "--token", "app"],
        data.path(),
    );
    assert!(ok, "{out}");
    submit(&mut ws, "m4", &["bob@example.org"]).await;
    expect(&mut ws, &["accepted", "delivered"]).await;

    // 8. Counted for /metrics.
    let metrics = get_metrics(&addr).await;
    assert!(metrics.contains("postwire_bounced_total 1"), "{metrics}");
    assert!(metrics.contains("postwire_complained_total 1"), "{metrics}");
    assert!(
        metrics.contains("postwire_reports_unmatched_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("postwire_suppressed_total 1"), "{metrics}");
    drop(relay);
}

/// GET /metrics over a plain TCP connection.
async fn get_metrics(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("send the request");
    let mut body = String::new();
    tcp.read_to_string(&mut body)
        .await
        .expect("read the answer");
    body
}
