//! The whole way through the relay: a client submits over the WebSocket
//! (`postwire serve`, started here with an SMTP upstream), the relay spools
//! the message and delivers it to the test SMTP server (aiosmtpd with the
//! extensions), which records the MAIL/RCPT parameters it received.

mod smtp_support;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use smtp_support::{PASSWORD, Server, USER, pki};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next text frame, as JSON.
async fn next_text(ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) -> Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dsn_request_and_a_utf8_recipient_go_through_the_relay_to_the_upstream() {
    let pki = pki();
    let server = Server::start_with("secure", Some(&pki), &["--extensions"]);
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
            "smtp://{}@localhost:{}?security=starttls&timeout=10",
            USER.replace('@', "%40"),
            server.port
        ))
        .env("POSTWIRE_SMTP_PASSWORD", PASSWORD)
        .env("POSTWIRE_SMTP_CA_FILE", &pki.ca)
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
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the relay did not say where it listens");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(',').next().unwrap_or_default().to_string();
        }
    };

    let mut request = format!("ws://{addr}/v1/submit")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {secret}").parse().unwrap());
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "postwire.v1".parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("WebSocket");
    let ready = next_text(&mut ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");

    let bytes =
        b"From: ana@example.com\r\nTo: Jos\xc3\xa9@ejemplo.es\r\nSubject: dsn\r\n\r\nhola\r\n";
    let dsn = json!({"notify": ["failure", "delay"], "ret": "hdrs", "envid": "x"});
    let submit = json!({"type": "submit", "id": "m1", "size": bytes.len(),
        "envelope": {"mailFrom": "ana@example.com", "rcptTo": ["José@ejemplo.es"], "dsn": dsn}});
    ws.send(Message::Text(submit.to_string().into()))
        .await
        .unwrap();
    ws.send(Message::Binary(bytes.to_vec().into()))
        .await
        .unwrap();
    let mut frames = Vec::new();
    loop {
        let v = next_text(&mut ws).await;
        let kind = v["type"].as_str().unwrap_or_default().to_string();
        frames.push(v);
        if kind == "delivered" || kind == "failed" || kind == "rejected" {
            break;
        }
    }
    assert_eq!(frames[0]["type"], "accepted", "{frames:?}");
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "delivered", "{frames:?}");
    assert_eq!(last["rcpt"], "José@ejemplo.es");

    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["rcptTo"], json!(["José@ejemplo.es"]));
    assert_eq!(
        got[0].0["mailParams"],
        json!(["BODY=8BITMIME", "SMTPUTF8", "RET=HDRS", "ENVID=x"])
    );
    assert_eq!(got[0].0["rcptParams"], json!([["NOTIFY=FAILURE,DELAY"]]));
    assert_eq!(got[0].1, bytes);
    drop(relay);
}
