//! The inbound server over real sockets, driven by a raw client: never a
//! relay, size and line limits, command order, pipelining, STARTTLS refused
//! with commands behind it, and the `451` when a report cannot be recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::*;

/// A message as the mailbox got it: sender, recipients, bytes.
type Got = (String, Vec<String>, Vec<u8>);

#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<Got>>,
    fail: bool,
}

impl Mailbox for Recorder {
    fn accepts(&self, rcpt: &str) -> bool {
        rcpt.to_ascii_lowercase().ends_with("@b.example")
    }
    fn deliver(
        &self,
        mail_from: String,
        rcpts: Vec<String>,
        bytes: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), String>> {
        let fail = self.fail;
        if !fail {
            self.got.lock().unwrap().push((mail_from, rcpts, bytes));
        }
        Box::pin(async move {
            if fail {
                Err("disk full".into())
            } else {
                Ok(())
            }
        })
    }
}

struct Client {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    /// The next complete reply (all its lines), or "" at the end of the connection.
    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.r.read_line(&mut line))
                .await
                .expect("a reply in time")
                .unwrap();
            if n == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }
    async fn send(&mut self, text: &str) {
        self.w.write_all(text.as_bytes()).await.unwrap();
    }
    async fn cmd(&mut self, text: &str) -> String {
        self.send(&format!("{text}\r\n")).await;
        self.reply().await
    }
}

async fn start(mailbox: Arc<Recorder>, max_size: usize) -> (Client, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = Config::new("b.example");
    cfg.max_size = max_size;
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(serve(listener, Arc::new(cfg), mailbox, stop_rx));
    let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut c = Client {
        r: BufReader::new(r),
        w,
    };
    assert!(c.reply().await.starts_with("220 b.example"));
    (c, stop)
}

#[tokio::test]
async fn mail_for_the_bounce_domain_is_taken_and_nothing_else_is_relayed() {
    let rec = Arc::new(Recorder::default());
    let (mut c, _stop) = start(Arc::clone(&rec), 1000).await;
    assert_eq!(
        c.cmd("MAIL FROM:<>").await,
        "503 5.5.1 send EHLO or HELO first\r\n"
    );
    let ehlo = c.cmd("EHLO mx.example.org").await;
    assert!(
        ehlo.contains("250-SIZE 1000\r\n") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    assert!(c.cmd("RCPT TO:<a@b.example>").await.starts_with("503"));
    assert!(c.cmd("MAIL FROM:<>").await.starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<x@elsewhere.example>")
            .await
            .starts_with("550 5.7.1")
    );
    assert!(
        c.cmd("RCPT TO:<x@b.example.evil>")
            .await
            .starts_with("550 5.7.1")
    );
    assert!(
        c.cmd("DATA").await.starts_with("554"),
        "no valid recipient yet"
    );
    assert!(
        c.cmd("RCPT TO:<Bounces+1@B.Example>")
            .await
            .starts_with("250")
    );
    // Pipelined: DATA and the text in one write, answered in order.
    c.send("DATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\nNOOP\r\n")
        .await;
    assert!(c.reply().await.starts_with("354"));
    assert_eq!(c.reply().await, "250 2.0.0 ok\r\n");
    assert_eq!(c.reply().await, "250 2.0.0 ok\r\n");
    {
        let got = rec.got.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "");
        assert_eq!(got[0].1, ["Bounces+1@B.Example"]);
        assert_eq!(got[0].2, b"Subject: x\r\n\r\n.dot\r\n", "dot-unstuffed");
    }
    assert!(c.cmd("QUIT").await.starts_with("221"));
    assert_eq!(c.reply().await, "", "closed after QUIT");
}

#[tokio::test]
async fn oversized_messages_and_lines_are_refused_and_the_session_goes_on() {
    let rec = Arc::new(Recorder::default());
    let (mut c, _stop) = start(Arc::clone(&rec), 1024).await;
    c.cmd("EHLO x").await;
    assert!(
        c.cmd("MAIL FROM:<a@x.org> SIZE=5000")
            .await
            .starts_with("552")
    );
    assert!(
        c.cmd("MAIL FROM:<a@x.org> SIZE=10")
            .await
            .starts_with("250")
    );
    c.cmd("RCPT TO:<r@b.example>").await;
    c.cmd("DATA").await;
    let big = "y".repeat(100);
    for _ in 0..20 {
        c.send(&format!("{big}\r\n")).await;
    }
    assert!(c.cmd(".").await.starts_with("552 5.3.4"));
    assert!(rec.got.lock().unwrap().is_empty());
    let long = format!("NOOP {}", "z".repeat(5000));
    assert!(c.cmd(&long).await.starts_with("500 5.5.6"));
    assert!(c.cmd("NOOP").await.starts_with("250"), "still usable");
    assert!(
        c.cmd("STARTTLS").await.starts_with("502"),
        "no certificate: no TLS"
    );
    for _ in 0..8 {
        assert!(c.cmd("BOGUS").await.starts_with("500"));
    }
    assert!(c.cmd("BOGUS").await.starts_with("421"), "too many errors");
    assert_eq!(c.reply().await, "");
}

#[tokio::test]
async fn a_report_that_cannot_be_recorded_is_deferred_not_lost() {
    let rec = Arc::new(Recorder {
        fail: true,
        ..Recorder::default()
    });
    let (mut c, _stop) = start(rec, 1024).await;
    c.cmd("HELO x").await;
    c.cmd("MAIL FROM:<>").await;
    c.cmd("RCPT TO:<r@b.example>").await;
    c.cmd("DATA").await;
    c.send("Subject: x\r\n\r\nbody\r\n").await;
    assert!(c.cmd(".").await.starts_with("451 4.3.0"));
}

#[tokio::test]
async fn starttls_with_commands_pipelined_behind_it_closes_the_connection() {
    let pem = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, pem.cert.pem()).unwrap();
    std::fs::write(&key, pem.signing_key.serialize_pem()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut cfg = Config::new("b.example");
    cfg.tls = Some(crate::server::tls::server_config(&cert, &key).unwrap());
    let (_stop, stop_rx) = watch::channel(false);
    tokio::spawn(serve(
        listener,
        Arc::new(cfg),
        Arc::new(Recorder::default()),
        stop_rx,
    ));
    let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut c = Client {
        r: BufReader::new(r),
        w,
    };
    c.reply().await;
    assert!(c.cmd("EHLO x").await.contains("STARTTLS"));
    c.send("STARTTLS\r\nMAIL FROM:<>\r\n").await;
    assert!(c.reply().await.starts_with("554 5.5.1"));
    assert_eq!(c.reply().await, "");

    // Without commands behind it: a TLS session that no longer offers STARTTLS.
    let mut tcp = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let mut line = String::new();
    tcp.read_line(&mut line).await.unwrap();
    tcp.get_mut()
        .write_all(b"EHLO x\r\nSTARTTLS\r\n")
        .await
        .unwrap();
    loop {
        line.clear();
        tcp.read_line(&mut line).await.unwrap();
        if line.starts_with("220") {
            break;
        }
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pem.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp.into_inner(),
        )
        .await
        .expect("TLS handshake after STARTTLS");
    let (r, mut w) = tokio::io::split(tls);
    let mut r = BufReader::new(r);
    w.write_all(b"EHLO x\r\n").await.unwrap();
    let mut ehlo = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        ehlo.push_str(&line);
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    }
    assert!(
        ehlo.starts_with("250-b.example") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
}

/// Commands, fragments and garbage, shuffled by a fixed generator: whatever
/// a client sends, a session answers and ends when the client goes, never
/// panics, and hands over only complete messages.
#[tokio::test]
async fn arbitrary_input_never_panics_and_the_session_ends_with_the_client() {
    let pieces: &[&[u8]] = &[
        b"EHLO x\r\n",
        b"HELO \r\n",
        b"MAIL FROM:<>\r\n",
        b"MAIL FROM:<a@b> SIZE=99999999999999999999\r\n",
        b"RCPT TO:<r@b.example>\r\n",
        b"RCPT TO:<r@evil.example>\r\n",
        b"RCPT TO:<\x00\xff>\r\n",
        b"DATA\r\n",
        b".\r\n",
        b"..\r\n",
        b"Subject: x\r\n",
        b"\r\n",
        b"RSET\r\n",
        b"STARTTLS\r\n",
        b"NOOP\n",
        b"\xc3\x28\xa0\xa1\r\n",
        b"QUIT\r\n",
        b"MAIL",
        b"\n",
        b"\r",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let mut input = Vec::new();
        for _ in 0..(next() % 40) {
            let n = next();
            if n % 7 == 0 {
                input.extend((0..(n % 300)).map(|i| (n >> (i % 56)) as u8));
            } else {
                input.extend_from_slice(pieces[(n as usize) % pieces.len()]);
            }
        }
        let (client, server) = tokio::io::duplex(1 << 16);
        let (mut cr, mut cw) = tokio::io::split(client);
        let drain = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut cr, &mut sink).await;
        });
        cw.write_all(&input).await.unwrap();
        cw.shutdown().await.unwrap();
        let mut cfg = Config::new("b.example");
        cfg.max_size = 512;
        let rec = Recorder::default();
        let mut conn = BufReader::new(server);
        let end = tokio::time::timeout(
            Duration::from_secs(10),
            session::run(&mut conn, &cfg, &rec, false, "fuzz"),
        )
        .await
        .expect("the session ends when the client has gone");
        assert!(end.is_ok(), "{end:?}");
        drop(conn);
        drain.await.unwrap();
        for (_, rcpts, bytes) in rec.got.lock().unwrap().iter() {
            assert!(!rcpts.is_empty() && rcpts.iter().all(|r| rec.accepts(r)));
            assert!(bytes.len() <= 512);
        }
    }
}
