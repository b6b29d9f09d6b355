//! Shared by the fault-injection tests (faults_upstream.rs, faults_disk.rs):
//! a real `postwire serve` process (its pid, so that its open sockets can be
//! counted in /proc), its log, its metrics, and a WebSocket client that
//! submits messages and follows each one to its final state.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

/// A running `postwire serve`; killed on drop.
pub struct Relay {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Relay {
    /// Starts the relay on `data` with the SMTP URL `smtp` (or the pickup
    /// directory when `None`), more flags `extra`, `POSTWIRE_SMTP_CA_FILE` =
    /// `ca`; returns once it listens.
    pub fn start(data: &Path, smtp: Option<&str>, extra: &[&str], ca: Option<&Path>) -> Relay {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postwire"));
        for (k, _) in std::env::vars() {
            if k.starts_with("POSTWIRE_") && k != "POSTWIRE_VENV" {
                cmd.env_remove(k);
            }
        }
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .env("POSTWIRE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(url) = smtp {
            cmd.arg("--smtp").arg(url);
        }
        if let Some(ca) = ca {
            cmd.env("POSTWIRE_SMTP_CA_FILE", ca);
        }
        let mut child = cmd.spawn().expect("start postwire serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let keep = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let addr = loop {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
                let _ = child.kill();
                panic!(
                    "the relay did not say where it listens:\n{}",
                    log.lock().unwrap().join("\n")
                );
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split(',').next().unwrap_or_default().to_string();
            }
        };
        Relay { child, addr, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The relay's open sockets (entries of /proc/PID/fd that are sockets).
    pub fn sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .filter(|l| l.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// The relay's resident memory, in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Everything the relay logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// `GET /metrics`, the body.
    pub fn metrics(&self) -> String {
        let mut s = std::net::TcpStream::connect(&self.addr).expect("connect for /metrics");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }

    /// The value of a metric without labels (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == name).then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0.0)
    }

    /// SIGKILL: no shutdown at all.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and waits for the exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// A client authenticated with `secret`.
    pub async fn client(&self, secret: &str) -> Client {
        let mut request = format!("ws://{}/v1/submit", self.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Authorization", format!("Bearer {secret}").parse().unwrap());
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "postwire.v1".parse().unwrap());
        let tcp = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(request, tcp)
            .await
            .expect("WebSocket");
        let mut c = Client { ws };
        let ready = c.next().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        c
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What became of each message, by id.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// The last frame of each message: `delivered`, `failed` or `rejected`.
    pub last: HashMap<String, Value>,
    /// Every `deferred` frame.
    pub deferred: Vec<Value>,
}

impl Outcomes {
    pub fn count(&self, kind: &str) -> usize {
        self.last.values().filter(|v| v["type"] == kind).count()
    }
}

pub struct Client {
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
}

impl Client {
    /// The next text frame, as JSON (within 30 s).
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("frame");
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).expect("JSON frame");
            }
        }
    }

    /// Sends one text frame.
    pub async fn send_json(&mut self, v: &Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    /// Sends `submit` and the message's bytes, from ana@example.com to `rcpt`.
    pub async fn submit(&mut self, id: &str, rcpt: &str, bytes: &[u8]) {
        let submit = json!({"type": "submit", "id": id, "size": bytes.len(),
            "envelope": {"mailFrom": "ana@example.com", "rcptTo": [rcpt]}});
        self.ws
            .send(Message::Text(submit.to_string().into()))
            .await
            .unwrap();
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .unwrap();
    }

    /// Submits every message (to bob@example.org) and follows each to its
    /// final state: rejected, or delivered/failed for its one recipient.
    pub async fn run(&mut self, messages: &[(String, Vec<u8>)]) -> Outcomes {
        for (id, bytes) in messages {
            self.submit(id, "bob@example.org", bytes).await;
        }
        self.follow(messages.len()).await
    }

    /// Reads frames until `n` messages are final.
    pub async fn follow(&mut self, n: usize) -> Outcomes {
        let mut out = Outcomes::default();
        while out.last.len() < n {
            let v = self.next().await;
            let id = v["id"].as_str().unwrap_or_default().to_string();
            match v["type"].as_str().unwrap_or_default() {
                "delivered" | "failed" | "rejected" => {
                    out.last.insert(id, v);
                }
                "deferred" => out.deferred.push(v),
                "accepted" => {}
                other => panic!("unexpected frame {other}: {v}"),
            }
        }
        out
    }
}

/// The Message-ID of each message a test server received, with the number of
/// copies of each.
pub fn copies(messages: &[(Value, Vec<u8>)]) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for (_, bytes) in messages {
        let text = String::from_utf8_lossy(bytes);
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .unwrap_or("?")
            .to_string();
        *n.entry(id).or_insert(0) += 1;
    }
    n
}

/// A token for ana@example.com's domain in `data`; its secret.
pub fn token(data: &Path) -> String {
    postwire_relay::token::add(data, "app", &["@example.com".into()], 10_000_000, 1_000_000)
        .unwrap()
}
