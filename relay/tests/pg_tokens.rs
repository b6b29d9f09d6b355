//! Tokens and rate limits shared through the PostgreSQL spool (issue #14,
//! item 4), with a real PostgreSQL (pg_support) and the real `postwire`
//! binary (`$POSTWIRE_BIN`, else cargo's): `postwire token add|list|remove
//! --spool URL` on the shared table (the hash stored, never the secret);
//! two `postwire serve --spool` relays (pickup delivery) that both take a
//! token added once, ignore their own tokens.toml, and both refuse a removed
//! token within seconds, an open session of it closed as revoked; a rate
//! limit of N per minute that holds across both relays; and a relay that
//! keeps its tokens while the database is away (one error logged) and
//! follows the table again when it is back.

mod pg_support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use pg_support::PgServer;
use postwire_relay::client::{ClientOptions, OutgoingMessage, RelayClient};

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

/// `postwire token ARGS --spool URL`.
fn token(pg: &PgServer, url: &str, args: &[&str]) -> Output {
    postwire(pg)
        .arg("token")
        .args(args)
        .args(["--spool", url])
        .output()
        .expect("run postwire token")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `token add NAME` that must succeed; the secret it printed.
fn add(pg: &PgServer, url: &str, name: &str, more: &[&str]) -> String {
    let mut args = vec!["add", name, "--allow-from", "@example.com"];
    args.extend_from_slice(more);
    let out = token(pg, url, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret = text(&out.stdout).trim().to_string();
    assert!(
        secret.starts_with("pw_") && secret.len() == 46,
        "{secret:?}"
    );
    secret
}

/// A running `postwire serve --spool URL`; killed on drop. Its stderr is collected.
struct Relay {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
    _data: tempfile::TempDir,
}

impl Relay {
    /// Starts a relay on the database `url` with a fresh data directory;
    /// `prepare` may put files into it first.
    fn start(pg: &PgServer, url: &str, prepare: impl FnOnce(&Path)) -> Relay {
        let data = tempfile::tempdir().expect("test setup");
        prepare(data.path());
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
            .env("POSTWIRE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start postwire serve");
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
            .recv_timeout(Duration::from_secs(90))
            .unwrap_or_else(|_| {
                panic!(
                    "the relay did not start: {}",
                    log.lock().expect("test setup")
                )
            });
        Relay {
            child,
            addr,
            log,
            _data: data,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/v1/submit", self.addr)
    }

    fn log(&self) -> String {
        self.log.lock().expect("test setup").clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn eml(n: usize) -> Vec<u8> {
    format!(
        "From: Ana <ana@example.com>\r\nTo: bob@example.org\r\nSubject: test {n}\r\n\
         Message-ID: <{n}.tokens@example.com>\r\n\r\nbody {n}\r\n"
    )
    .into_bytes()
}

async fn connect(relay: &Relay, secret: &str) -> Result<RelayClient, String> {
    RelayClient::connect(&relay.url(), ClientOptions::new(secret).reconnect(false))
        .await
        .map_err(|e| e.code().to_string())
}

/// Connects with `secret` and submits one message; the error's code if refused.
async fn submit_once(relay: &Relay, secret: &str, n: usize) -> Result<(), String> {
    let client = connect(relay, secret).await?;
    let r = client
        .submit(OutgoingMessage::new(eml(n)).id(format!("m{n}")))
        .await;
    client.close().await;
    r.map(|_| ()).map_err(|e| e.code().to_string())
}

/// Waits (at most 20 s) until the relay has logged that it reloaded its
/// tokens and has `n` of them (polling its log, not authenticating: failed
/// authentications would lock the test's address out).
async fn reloaded_to(relay: &Relay, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let line = format!("tokens={n} ");
    loop {
        let log = relay.log();
        if log
            .lines()
            .any(|l| l.contains("tokens reloaded") && l.contains(&line))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no reload to {n} tokens within 20 s\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn token_add_list_remove_work_on_the_shared_table_and_store_only_the_hash() {
    let pg = PgServer::shared();
    let url = pg.create_database("tokens_cli");

    let out = token(pg, &url, &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("no tokens in the database postgres://postwire@127.0.0.1"));

    let secret = add(pg, &url, "app", &["--rate", "7", "--max-size", "1000"]);
    let again = token(pg, &url, &["add", "app"]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("a token named \"app\" exists already"),
        "{}",
        text(&again.stderr)
    );
    let bad = token(pg, &url, &["add", "no spaces"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("invalid token name"),
        "{}",
        text(&bad.stderr)
    );

    // The password from a file works as well as from the environment.
    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, format!("{}\n", pg.password())).unwrap();
    let out = postwire(pg)
        .env_remove("POSTWIRE_SPOOL_PASSWORD")
        .args(["token", "add", "other", "--allow-from", "ops@example.com"])
        .env("POSTWIRE_SPOOL_URL", &url)
        .env("POSTWIRE_SPOOL_PASSWORD_FILE", &pw_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let other = text(&out.stdout).trim().to_string();

    let out = token(pg, &url, &["list"]);
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("app ")
            && lines[0].contains("rate=7/min")
            && lines[0].contains("max-size=1000"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("other ") && lines[1].contains("ops@example.com"),
        "{lines:?}"
    );
    let out = token(pg, &url, &["list", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["name"], "app");
    assert_eq!(json[0]["ratePerMinute"], 7);
    let prefix = json[0]["hashPrefix"]
        .as_str()
        .unwrap()
        .trim_end_matches('\u{2026}')
        .to_string();

    // The row is the record tokens.toml would hold: the hash, not the secret.
    let rows = pg.psql(
        "tokens_cli",
        "SELECT record::text FROM postwire_tokens ORDER BY name",
    );
    assert!(!rows.contains(&secret) && !rows.contains(&other), "{rows}");
    assert!(rows.contains(&format!("\"hash\": \"{prefix}")), "{rows}");
    assert!(
        rows.contains("\"allow_from\": [\"@example.com\"]"),
        "{rows}"
    );

    // A wrong password: refused, and not echoed.
    let out = postwire(pg)
        .env("POSTWIRE_SPOOL_PASSWORD", "not-the-password")
        .args(["token", "list", "--spool", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        !text(&out.stderr).contains("not-the-password"),
        "{}",
        text(&out.stderr)
    );

    let out = token(pg, &url, &["remove", "app"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("token \"app\" removed from the database"),
        "{}",
        text(&out.stderr)
    );
    let out = token(pg, &url, &["remove", "app"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no token named \"app\""),
        "{}",
        text(&out.stderr)
    );
    let out = token(pg, &url, &["list"]);
    assert!(
        text(&out.stdout).starts_with("other "),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_share_one_token_table_and_a_removal_reaches_both() {
    let pg = PgServer::shared();
    let url = pg.create_database("tokens_two");
    let secret = add(pg, &url, "app", &[]);
    // Relay A has a tokens.toml of its own: ignored, with a warning.
    let mut local = String::new();
    let a = Relay::start(pg, &url, |dir| {
        local = postwire_relay::token::add(dir, "local", &["@example.com".into()], 1 << 20, 100)
            .unwrap();
    });
    let b = Relay::start(pg, &url, |_| {});
    assert!(a.log().contains("ignoring the token file"), "{}", a.log());
    assert!(!b.log().contains("ignoring the token file"), "{}", b.log());
    assert_eq!(
        connect(&a, &local).await.err().as_deref(),
        Some("unauthorized")
    );

    submit_once(&a, &secret, 1).await.expect("relay A accepts");
    submit_once(&b, &secret, 2).await.expect("relay B accepts");

    // A token added while they run is taken by both.
    let late = add(pg, &url, "late", &[]);
    for (i, relay) in [&a, &b].into_iter().enumerate() {
        reloaded_to(relay, 2).await;
        submit_once(relay, &late, 10 + i)
            .await
            .expect("the new token is taken");
    }

    // A session of "app" stays open on A while the token is removed.
    let held = connect(&a, &secret).await.expect("connect");
    let out = token(pg, &url, &["remove", "app"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for relay in [&a, &b] {
        reloaded_to(relay, 1).await;
        assert_eq!(
            connect(relay, &secret).await.err().as_deref(),
            Some("unauthorized")
        );
    }
    let err = held
        .submit(OutgoingMessage::new(eml(4)).id("m4"))
        .await
        .expect_err("revoked");
    assert_eq!(err.code(), "unauthorized", "{err}");
    assert!(err.to_string().contains("revoked"), "{err}");
    held.close().await;
    // The other token is untouched, and no log has a secret.
    submit_once(&b, &late, 5).await.expect("still accepted");
    for relay in [&a, &b] {
        let log = relay.log();
        assert!(log.contains("tokens reloaded"), "{log}");
        assert!(!log.contains(&secret) && !log.contains(&late) && !log.contains(pg.password()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_relays() {
    const RATE: usize = 4;
    const EXTRA: usize = 3;
    let pg = PgServer::shared();
    let url = pg.create_database("tokens_rate");
    let secret = add(pg, &url, "app", &["--rate", &RATE.to_string()]);
    let a = Relay::start(pg, &url, |_| {});
    let b = Relay::start(pg, &url, |_| {});
    let clients = [
        connect(&a, &secret).await.expect("connect A"),
        connect(&b, &secret).await.expect("connect B"),
    ];
    // The budget is per minute of the database's clock: start well inside one.
    let deadline = Instant::now() + Duration::from_secs(70);
    while pg
        .psql("tokens_rate", "SELECT postwire_now_ms() % 60000")
        .parse::<u64>()
        .unwrap()
        > 50_000
    {
        assert!(
            Instant::now() < deadline,
            "the database's clock stands still"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut accepted, mut limited) = (0, 0);
    for n in 0..RATE + EXTRA {
        match clients[n % 2]
            .submit(OutgoingMessage::new(eml(n)).id(format!("r{n}")))
            .await
        {
            Ok(_) => accepted += 1,
            Err(e) if e.code() == "rate_limited" => {
                assert!(e.to_string().contains("retry in"), "{e}");
                limited += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((accepted, limited), (RATE, EXTRA));
    let [c1, c2] = clients;
    c1.close().await;
    c2.close().await;
    // Counted in the database: every accepted one, and the refusals until
    // each relay saw the minute's budget spent (later ones it refuses
    // without asking).
    let counted: usize = pg
        .psql(
            "tokens_rate",
            "SELECT sum(count) FROM postwire_rate WHERE token = 'app'",
        )
        .parse()
        .unwrap();
    assert!((RATE + 1..=RATE + EXTRA).contains(&counted), "{counted}");
}

/// Waits (at most 30 s) until the relay's log has `needle`; its log.
async fn logged(relay: &Relay, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = relay.log();
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not logged within 30 s\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_keeps_its_tokens_while_the_database_is_away_and_follows_it_again_after() {
    // A server of its own: this test stops it.
    let pg = PgServer::start();
    let url = pg.create_database("tokens_away");
    let secret = add(&pg, &url, "app", &[]);
    let relay = Relay::start(&pg, &url, |_| {});

    pg.stop();
    logged(&relay, "cannot reload the tokens; keeping the previous set").await;
    // Authentication needs no database: the token still opens a session.
    let client = connect(&relay, &secret).await.expect("the kept token");
    client.close().await;
    pg.start_again();
    let log = logged(&relay, "the token database answers again").await;
    assert_eq!(
        log.matches("cannot reload the tokens").count(),
        1,
        "one error per outage\n{log}"
    );

    // Followed again: a removal made now reaches it.
    let out = token(&pg, &url, &["remove", "app"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    reloaded_to(&relay, 0).await;
    assert_eq!(
        connect(&relay, &secret).await.err().as_deref(),
        Some("unauthorized")
    );
}
