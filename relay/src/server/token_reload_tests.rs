//! Live token reload against a real server: the axum application on a
//! 127.0.0.1 port, the token reloader that `serve` runs (polling the data
//! directory, or SIGHUP), and a WebSocket client (tokio-tungstenite).
//! Tokens are added, removed, changed and broken in `tokens.toml` while the
//! server runs; nothing is restarted. Timing is never asserted: each check
//! that waits for a reload retries until a 10 s deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use super::app::{self, AppState};
use super::live_tokens;
use super::protocol::{Code, ServerFrame};
use super::session::REVOKED;
use super::tests::{MSG, Relay, relay_with};
use crate::spool::Key;
use crate::token::{self, TOKENS_FILE};

/// How often the reloader looks at the file in these tests.
const POLL: Duration = Duration::from_millis(50);
/// How long a reload may take to show.
const DEADLINE: Duration = Duration::from_secs(10);

struct Server {
    relay: Relay,
    addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The relay of `tests.rs` (token "app", senders `@example.com`, 1000
/// bytes) behind a real HTTP server, with its token reloader.
async fn server(poll: Duration) -> Server {
    let relay = relay_with(1000);
    let state = AppState {
        session: relay.ctx.clone(),
        allowed_origins: Arc::new(Vec::new()),
        max_frame: 1 << 20,
        upstream: Arc::new("pickup".into()),
        readiness: super::readiness::Readiness::new(None),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = tokio::spawn(async move {
        axum::serve(listener, app::router(state)).await.unwrap();
    });
    let reloader = live_tokens::spawn(Arc::clone(&relay.ctx.tokens), poll);
    Server {
        relay,
        addr,
        tasks: vec![http, reloader],
    }
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// Opens `/v1/submit`, with `Authorization: Bearer` when given; a refused
/// upgrade gives its HTTP status.
async fn open(addr: SocketAddr, bearer: Option<&str>) -> Result<Ws, u16> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("ws://{addr}/v1/submit")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("postwire.v1"),
    );
    if let Some(secret) = bearer {
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {secret}")).unwrap(),
        );
    }
    match tokio_tungstenite::client_async(req, tcp).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// What the client sees next.
#[derive(Debug, PartialEq)]
enum Seen {
    Frame(ServerFrame),
    Close(u16, String),
    End,
}

async fn next(ws: &mut Ws) -> Seen {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time");
        return match item {
            Some(Ok(Message::Text(t))) => Seen::Frame(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(Some(c)))) => Seen::Close(c.code.into(), c.reason.to_string()),
            Some(Ok(Message::Close(None))) => Seen::Close(1005, String::new()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("read error: {e}"),
            None => Seen::End,
        };
    }
}

/// The next frame that is not a delivery event.
async fn answer(ws: &mut Ws) -> Seen {
    loop {
        match next(ws).await {
            Seen::Frame(
                ServerFrame::Delivered { .. }
                | ServerFrame::Deferred { .. }
                | ServerFrame::Failed { .. },
            ) => continue,
            other => return other,
        }
    }
}

async fn submit(ws: &mut Ws, id: &str, from: &str) {
    // The header's From is the envelope's: the token must cover both.
    let msg = String::from_utf8_lossy(MSG).replace("ana@example.com", from);
    let head = json!({"type": "submit", "id": id,
        "envelope": {"mailFrom": from, "rcptTo": ["bob@x.org"]}, "size": msg.len()});
    ws.send(Message::Text(head.to_string().into()))
        .await
        .unwrap();
    ws.send(Message::Binary(msg.into_bytes().into()))
        .await
        .unwrap();
}

/// Submits one message and returns the relay's answer.
async fn try_send(ws: &mut Ws, id: &str, from: &str) -> Seen {
    submit(ws, id, from).await;
    answer(ws).await
}

fn accepted(id: &str) -> Seen {
    Seen::Frame(ServerFrame::Accepted {
        id: id.into(),
        duplicate: false,
        rcpt_to: vec!["bob@x.org".into()],
    })
}

fn ready_token(seen: &Seen) -> Option<&str> {
    match seen {
        Seen::Frame(ServerFrame::Ready { token, .. }) => Some(token),
        _ => None,
    }
}

/// A session authenticated by `Authorization: Bearer`, or the HTTP status
/// of the refusal.
async fn by_bearer(addr: SocketAddr, secret: &str, name: &str) -> Result<Ws, u16> {
    let mut ws = open(addr, Some(secret)).await?;
    let first = next(&mut ws).await;
    assert_eq!(ready_token(&first), Some(name), "{first:?}");
    Ok(ws)
}

/// A session authenticated by an `auth` frame, or the error frame and the
/// close that refused it.
async fn by_auth_frame(addr: SocketAddr, secret: &str, name: &str) -> Result<Ws, (Seen, Seen)> {
    let mut ws = open(addr, None).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "auth", "token": secret}).to_string().into(),
    ))
    .await
    .unwrap();
    let first = next(&mut ws).await;
    if ready_token(&first) == Some(name) {
        return Ok(ws);
    }
    Err((first, next(&mut ws).await))
}

/// Retries `check` until it holds; the reloader runs on its own.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < DEADLINE,
            "not within {DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Replaces the token file by rename, as an editor or a deploy tool does.
fn replace_file(dir: &Path, text: &str) {
    let tmp = dir.join("tokens.toml.edit");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(TOKENS_FILE)).unwrap();
}

fn read_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(TOKENS_FILE)).unwrap()
}

fn unauthorized(message: &str) -> (Seen, Seen) {
    (
        Seen::Frame(ServerFrame::Error {
            code: Code::Unauthorized,
            message: message.into(),
        }),
        Seen::Close(4401, message.into()),
    )
}

async fn spooled(s: &Server, id: &str) -> bool {
    s.relay
        .ctx
        .spool
        .status(&Key {
            token: "app".into(),
            id: id.into(),
        })
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_token_removed_while_the_relay_runs_is_refused_at_the_next_connection_by_bearer_and_by_auth_frame()
 {
    let s = server(POLL).await;
    let (addr, secret) = (s.addr, s.relay.secret.clone());
    let other = token::add(
        s.relay.dir.path(),
        "other",
        &["@example.com".into()],
        1000,
        60,
    )
    .unwrap();
    eventually("the added token is accepted", || {
        let other = other.clone();
        async move { by_bearer(addr, &other, "other").await.is_ok() }
    })
    .await;
    assert!(by_bearer(addr, &secret, "app").await.is_ok());
    assert!(by_auth_frame(addr, &secret, "app").await.is_ok());

    token::remove(s.relay.dir.path(), "app").unwrap();
    eventually("the removed token is refused at the upgrade", || {
        let secret = secret.clone();
        async move { matches!(by_bearer(addr, &secret, "app").await, Err(401)) }
    })
    .await;
    match by_auth_frame(addr, &secret, "app").await {
        Err(refusal) => assert_eq!(refusal, unauthorized("unknown token")),
        Ok(_) => panic!("a removed token opened a session by auth frame"),
    }
    // The other token is untouched.
    let mut ws = by_bearer(addr, &other, "other").await.unwrap();
    assert_eq!(
        try_send(&mut ws, "o1", "ana@example.com").await,
        accepted("o1")
    );
    assert!(by_auth_frame(addr, &other, "other").await.is_ok());
}

#[tokio::test]
async fn an_open_session_whose_token_is_removed_is_closed_as_revoked_at_its_next_submit() {
    let s = server(POLL).await;
    let (addr, secret) = (s.addr, s.relay.secret.clone());
    let mut bearer = by_bearer(addr, &secret, "app").await.unwrap();
    let mut framed = by_auth_frame(addr, &secret, "app").await.unwrap();
    assert_eq!(
        try_send(&mut bearer, "b1", "ana@example.com").await,
        accepted("b1")
    );
    assert_eq!(
        try_send(&mut framed, "f1", "ana@example.com").await,
        accepted("f1")
    );

    token::remove(s.relay.dir.path(), "app").unwrap();
    eventually("the relay has dropped the token", || {
        let secret = secret.clone();
        async move { by_bearer(addr, &secret, "app").await.is_err() }
    })
    .await;

    for (ws, id) in [(&mut bearer, "b2"), (&mut framed, "f2")] {
        submit(ws, id, "ana@example.com").await;
        assert_eq!(
            (answer(ws).await, next(ws).await),
            unauthorized(REVOKED),
            "{id}"
        );
        assert!(!spooled(&s, id).await, "{id} must not be accepted");
    }
    assert!(spooled(&s, "b1").await && spooled(&s, "f1").await);
}

#[tokio::test]
async fn a_token_whose_secret_is_replaced_revokes_the_sessions_of_the_old_secret() {
    let s = server(POLL).await;
    let (addr, secret) = (s.addr, s.relay.secret.clone());
    let mut ws = by_auth_frame(addr, &secret, "app").await.unwrap();
    token::remove(s.relay.dir.path(), "app").unwrap();
    let new_secret = token::add(
        s.relay.dir.path(),
        "app",
        &["@example.com".into()],
        1000,
        60,
    )
    .unwrap();
    eventually("the new secret is accepted", || {
        let new_secret = new_secret.clone();
        async move { by_bearer(addr, &new_secret, "app").await.is_ok() }
    })
    .await;
    submit(&mut ws, "old", "ana@example.com").await;
    assert_eq!(
        (answer(&mut ws).await, next(&mut ws).await),
        unauthorized(REVOKED)
    );
    assert!(!spooled(&s, "old").await);
}

#[tokio::test]
async fn new_limits_and_senders_of_a_token_apply_to_an_open_session_at_its_next_submission() {
    let s = server(POLL).await;
    let dir = s.relay.dir.path();
    let mut ws = by_auth_frame(s.addr, &s.relay.secret, "app").await.unwrap();
    let original = read_file(dir);
    assert!(original.contains("max_size = 1000\n"), "{original}");

    replace_file(
        dir,
        &original.replace("max_size = 1000\n", "max_size = 20\n"),
    );
    let tokens = Arc::clone(&s.relay.ctx.tokens);
    eventually("the smaller size limit is loaded", || {
        let tokens = Arc::clone(&tokens);
        async move { tokens.current().get("app").map(|t| t.max_size) == Some(20) }
    })
    .await;
    match try_send(&mut ws, "big", "ana@example.com").await {
        Seen::Frame(ServerFrame::Rejected { id, code, .. }) => {
            assert_eq!((id.as_str(), code), ("big", Code::TooLarge));
        }
        other => panic!("expected too_large, got {other:?}"),
    }

    replace_file(
        dir,
        &original.replace("\"@example.com\"", "\"@other.example\""),
    );
    eventually("the new senders are loaded", || {
        let tokens = Arc::clone(&tokens);
        async move {
            tokens.current().get("app").map(|t| t.allow_from.clone())
                == Some(vec!["@other.example".to_string()])
        }
    })
    .await;
    match try_send(&mut ws, "old-sender", "ana@example.com").await {
        Seen::Frame(ServerFrame::Rejected { id, code, .. }) => {
            assert_eq!((id.as_str(), code), ("old-sender", Code::SenderNotAllowed));
        }
        other => panic!("expected sender_not_allowed, got {other:?}"),
    }
    assert_eq!(
        try_send(&mut ws, "new-sender", "ana@other.example").await,
        accepted("new-sender")
    );
}

#[tokio::test]
async fn a_token_added_while_the_relay_runs_works_without_a_restart() {
    let s = server(POLL).await;
    let addr = s.addr;
    let late = token::add(
        s.relay.dir.path(),
        "late",
        &["@example.com".into()],
        1000,
        60,
    )
    .unwrap();
    eventually("the added token opens a session by bearer", || {
        let late = late.clone();
        async move { by_bearer(addr, &late, "late").await.is_ok() }
    })
    .await;
    let mut ws = by_auth_frame(addr, &late, "late").await.unwrap();
    assert_eq!(
        try_send(&mut ws, "l1", "ana@example.com").await,
        accepted("l1")
    );
    assert!(
        s.relay
            .ctx
            .spool
            .status(&Key {
                token: "late".into(),
                id: "l1".into()
            })
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_broken_token_file_written_while_the_relay_runs_leaves_the_old_tokens_working() {
    let s = server(POLL).await;
    let (addr, secret, dir) = (s.addr, s.relay.secret.clone(), s.relay.dir.path());
    let tokens = Arc::clone(&s.relay.ctx.tokens);
    let mut open_session = by_auth_frame(addr, &secret, "app").await.unwrap();
    let original = read_file(dir);

    let broken = [
        (
            "bad TOML",
            "[[token]]\nname = \"app\"\nhash = \n".to_string(),
            "line 3",
        ),
        (
            "bad hash",
            original.replace("hash = \"sha256:", "hash = \"sha256:zz"),
            "invalid hash",
        ),
    ];
    let reloads = tokens.status().reloads;
    for (n, (what, text, problem)) in broken.iter().enumerate() {
        replace_file(dir, text);
        eventually(&format!("the {what} reload fails"), || {
            let tokens = Arc::clone(&tokens);
            async move {
                tokens
                    .status()
                    .last_error
                    .is_some_and(|e| e.contains(problem))
            }
        })
        .await;
        let status = tokens.status();
        let error = status.last_error.unwrap_or_default();
        assert!(
            error.contains(&dir.join(TOKENS_FILE).display().to_string()),
            "{what}: the error names the file: {error}"
        );
        assert_eq!(status.reloads, reloads, "{what}: nothing was replaced");
        assert_eq!(tokens.current().len(), 1, "{what}");
        assert!(by_bearer(addr, &secret, "app").await.is_ok(), "{what}");
        assert!(by_auth_frame(addr, &secret, "app").await.is_ok(), "{what}");
        let id = format!("after-{n}");
        assert_eq!(
            try_send(&mut open_session, &id, "ana@example.com").await,
            accepted(&id),
            "{what}"
        );
    }

    // Repaired without the token: now it goes.
    let repaired = original.replace("name = \"app\"", "name = \"renamed\"");
    replace_file(dir, &repaired);
    eventually("the repaired file is loaded", || {
        let tokens = Arc::clone(&tokens);
        async move { tokens.current().get("renamed").is_some() }
    })
    .await;
    assert!(by_bearer(addr, &secret, "renamed").await.is_ok());
    submit(&mut open_session, "after-rename", "ana@example.com").await;
    assert_eq!(
        (
            answer(&mut open_session).await,
            next(&mut open_session).await
        ),
        unauthorized(REVOKED),
        "a renamed token is another token"
    );
}
