//! One `postwire.v1` session, written over a generic [`Sink`] and [`Stream`]
//! of [`WsIn`]/[`WsOut`] so that tests drive it with channels and the axum
//! handler with a real WebSocket.
//!
//! Tasks: the reader (this function) parses frames and submits; a writer
//! task owns the sink; an event task forwards delivery events of the ids this
//! session submitted or asked about. When the reader ends, the others end.
//!
//! A session keeps the token record it authenticated with and looks it up
//! again by name in the current set ([`LiveTokens`]) at every `submit`: gone
//! or with another hash, the session answers what it already received and
//! closes with `unauthorized` "the token was revoked"; with other limits or
//! senders, later submissions use the new record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::FusedStream;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc, watch};

use super::access;
use super::answer_first::AnswerFirst;
use super::conn_guard::AuthGate;
use super::events::EventRouter;
use super::limits::RateLimits;
use super::live_tokens::{AuthRefusal, LiveTokens};
use super::metrics::Metrics;
use super::protocol::{ClientFrame, Code, PROTOCOL, ServerFrame};
use super::validate::{self, Refusal};
use crate::spool::{Accepted, Envelope, EventKind, Key, MessageMeta, Spool, Submission};
use crate::token::TokenRecord;

/// A frame from the client, transport-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsIn {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// The client closed the connection.
    Close,
}

/// A frame to the client, transport-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsOut {
    /// A text frame.
    Text(String),
    /// A close frame with code and reason.
    Close(u16, String),
}

/// Everything a session shares with the rest of the relay.
#[derive(Clone)]
pub struct SessionContext {
    /// Where messages go.
    pub spool: Arc<dyn Spool>,
    /// Who may submit, reloaded while the relay runs.
    pub tokens: Arc<LiveTokens>,
    /// Per-token rate limits.
    pub limits: Arc<RateLimits>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Delivers each delivery event to the sessions watching its message.
    pub events: Arc<EventRouter>,
    /// Most unanswered submissions per connection.
    pub window: usize,
    /// Recipients each token may no longer send to (hard bounces,
    /// complaints); `None`: nothing is suppressed.
    pub suppressions: Option<Arc<dyn crate::bounces::suppress::SuppressionStore>>,
    /// How long to wait for the `auth` frame.
    pub auth_timeout: Duration,
    /// Becomes `true` when the relay shuts down.
    pub shutdown: watch::Receiver<bool>,
}

fn text(frame: &ServerFrame) -> WsOut {
    // Serialising these plain structs cannot fail; fall back to a fixed frame anyway.
    WsOut::Text(serde_json::to_string(frame).unwrap_or_else(|_| {
        r#"{"type":"error","code":"protocol","message":"internal encoding error"}"#.to_string()
    }))
}

fn reject(id: &str, r: Refusal) -> ServerFrame {
    ServerFrame::Rejected {
        id: id.to_string(),
        code: r.code,
        message: r.message,
    }
}

/// A `submit` frame waiting for its binary frame.
struct PendingSubmit {
    id: String,
    envelope: Option<Envelope>,
    size: u64,
    refusal: Option<Refusal>,
    /// The refusal was sent when the submit came; the binary frame, if the
    /// client sends it, is dropped unanswered.
    answered: bool,
}

/// Runs a session to its end. `pre_auth` is the token of an
/// `Authorization: Bearer` header, already checked.
pub async fn run<Si, St, E>(
    ctx: SessionContext,
    pre_auth: Option<TokenRecord>,
    sink: Si,
    stream: St,
) where
    Si: Sink<WsOut> + Send + Unpin + 'static,
    St: Stream<Item = Result<WsIn, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    run_from(ctx, None, None, pre_auth, sink, stream).await;
}

/// [`run`] for a client at `peer`, whose failed `auth` frames count against
/// its address ([`super::auth_guard`]); `gate` is opened once the session
/// has authenticated ([`super::conn_guard`]).
pub async fn run_from<Si, St, E>(
    ctx: SessionContext,
    peer: Option<std::net::IpAddr>,
    gate: Option<Arc<AuthGate>>,
    pre_auth: Option<TokenRecord>,
    sink: Si,
    mut stream: St,
) where
    Si: Sink<WsOut> + Send + Unpin + 'static,
    St: Stream<Item = Result<WsIn, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let (out, mut out_rx) = mpsc::channel::<WsOut>(ctx.window.saturating_mul(4).max(64));
    let writer = tokio::spawn(async move {
        let mut sink = sink;
        while let Some(frame) = out_rx.recv().await {
            let closing = matches!(frame, WsOut::Close(..));
            if sink.send(frame).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    ctx.metrics.inc(&ctx.metrics.sessions);
    // Notes whether the client already closed (Close frame, error or end of
    // stream), so that the closing handshake below waits only when it did not.
    let client_done = std::sync::atomic::AtomicBool::new(false);
    let mut stream = (&mut stream)
        .inspect(|item| {
            if matches!(item, Ok(WsIn::Close) | Err(_)) {
                client_done.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .fuse();
    let _ = session(&ctx, peer, gate, pre_auth, &out, &mut stream).await;
    ctx.metrics
        .sessions
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    drop(out);
    let _ = writer.await;
    // Closing handshake (RFC 6455 7.1.1): read and discard what the client
    // still sends until its Close or the end of the stream, for a short while,
    // so that unread frames do not turn our Close into a TCP reset (which the
    // client would see as code 1006 instead of ours).
    if client_done.load(std::sync::atomic::Ordering::Relaxed) || stream.is_terminated() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_DRAIN, async {
        while let Some(item) = stream.next().await {
            if matches!(item, Ok(WsIn::Close) | Err(_)) {
                break;
            }
        }
    })
    .await;
}

/// How long a closing session waits for the client's Close frame.
const CLOSE_DRAIN: Duration = Duration::from_millis(500);

async fn fatal(out: &mpsc::Sender<WsOut>, code: Code, message: impl Into<String>) {
    let message = message.into();
    let _ = out
        .send(text(&ServerFrame::Error {
            code,
            message: message.clone(),
        }))
        .await;
    // A close reason is at most 123 bytes; cut on a character boundary.
    let mut cut = message.len().min(120);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let reason = message[..cut].to_string();
    let _ = out.send(WsOut::Close(code.close_code(), reason)).await;
}

async fn authenticate<St, E>(
    ctx: &SessionContext,
    peer: Option<std::net::IpAddr>,
    stream: &mut St,
    out: &mpsc::Sender<WsOut>,
) -> Option<TokenRecord>
where
    St: Stream<Item = Result<WsIn, E>> + Unpin,
{
    let first = match tokio::time::timeout(ctx.auth_timeout, stream.next()).await {
        Err(_) => {
            fatal(out, Code::Timeout, "no auth frame within the time allowed").await;
            return None;
        }
        Ok(f) => f,
    };
    let Some(Ok(WsIn::Text(t))) = first else {
        fatal(
            out,
            Code::AuthRequired,
            "the first frame must be an auth frame",
        )
        .await;
        return None;
    };
    match serde_json::from_str::<ClientFrame>(&t) {
        // Logged inside, with the address and never the token.
        Ok(ClientFrame::Auth { token }) => match ctx.tokens.authenticate(&token, peer) {
            Ok(t) => Some(t),
            Err(AuthRefusal::Unknown) => {
                fatal(out, Code::Unauthorized, "unknown token").await;
                None
            }
            Err(e @ AuthRefusal::Locked { .. }) => {
                fatal(out, Code::RateLimited, e.to_string()).await;
                None
            }
        },
        _ => {
            fatal(
                out,
                Code::AuthRequired,
                "the first frame must be an auth frame",
            )
            .await;
            None
        }
    }
}

/// Forwards the events routed to this session until it ends, each after
/// the answer to its submission ([`AnswerFirst`]).
fn spawn_events(
    mut events: mpsc::Receiver<crate::spool::Event>,
    out: Arc<AnswerFirst>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                ev = events.recv() => ev,
                () = out.closed() => break,
            };
            let Some(ev) = ev else { break };
            let key_id = ev.key.id.clone();
            let id = ev.key.id;
            let frame = match ev.kind {
                EventKind::Delivered { response } => {
                    let (smtp_code, enhanced_code) = super::protocol::reply_codes(&response);
                    ServerFrame::Delivered {
                        id,
                        rcpt: ev.rcpt,
                        response,
                        smtp_code,
                        enhanced_code,
                    }
                }
                EventKind::Deferred {
                    reason,
                    attempts,
                    retry_at_ms,
                } => {
                    let (smtp_code, enhanced_code) = super::protocol::reply_codes(&reason);
                    ServerFrame::Deferred {
                        id,
                        rcpt: ev.rcpt,
                        reason,
                        attempts,
                        retry_at: retry_at_ms,
                        smtp_code,
                        enhanced_code,
                    }
                }
                EventKind::Failed { reason } => {
                    let (smtp_code, enhanced_code) = super::protocol::reply_codes(&reason);
                    ServerFrame::Failed {
                        id,
                        rcpt: ev.rcpt,
                        reason,
                        smtp_code,
                        enhanced_code,
                    }
                }
                EventKind::Bounced {
                    bounce,
                    status,
                    diagnostic,
                } => ServerFrame::Bounced {
                    id,
                    rcpt: ev.rcpt,
                    bounce,
                    status,
                    diagnostic,
                },
                EventKind::Complained { feedback_type } => ServerFrame::Complained {
                    id,
                    rcpt: ev.rcpt,
                    feedback_type,
                },
            };
            if out.event(&key_id, text(&frame)).await.is_err() {
                break;
            }
        }
    })
}

async fn session<St, E>(
    ctx: &SessionContext,
    peer: Option<std::net::IpAddr>,
    gate: Option<Arc<AuthGate>>,
    pre_auth: Option<TokenRecord>,
    out: &mpsc::Sender<WsOut>,
    stream: &mut St,
) -> Option<()>
where
    St: Stream<Item = Result<WsIn, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut token = match pre_auth {
        Some(t) => t,
        None => authenticate(ctx, peer, stream, out).await?,
    };
    if let Some(g) = gate {
        g.open();
    }
    // Dropped when the session ends, and with it every route to this session.
    let (watcher, events) = ctx.events.register();
    // Answers to submissions and their delivery events leave through here.
    let answers = Arc::new(AnswerFirst::new(out.clone()));
    let event_task = spawn_events(events, Arc::clone(&answers));
    let _guard = AbortOnDrop(event_task);
    out.send(text(&ServerFrame::Ready {
        protocol: PROTOCOL.to_string(),
        token: token.name.clone(),
        window: ctx.window,
        max_size: token.max_size,
    }))
    .await
    .ok()?;
    tracing::debug!(token = %token.name, "session ready");

    let window = Arc::new(Semaphore::new(ctx.window));
    let mut shutdown = ctx.shutdown.clone();
    let mut pending: Option<PendingSubmit> = None;
    // Once the shutdown sender is gone it can never say `true`: stop watching it.
    let mut watching_shutdown = true;
    let ending = loop {
        if *shutdown.borrow() {
            break End::ShuttingDown;
        }
        let frame = tokio::select! {
            biased;
            changed = shutdown.changed(), if watching_shutdown => {
                watching_shutdown = changed.is_ok();
                continue;
            }
            f = stream.next() => f,
        };
        match frame {
            None | Some(Ok(WsIn::Close)) => break End::Closed,
            Some(Err(e)) => {
                tracing::debug!(token = %token.name, error = %e, "session read error");
                break End::Closed;
            }
            Some(Ok(WsIn::Text(t))) => {
                // A submit refused on its announcement was answered at once;
                // the client may skip its binary frame and go on.
                if pending.as_ref().is_some_and(|p| p.answered) {
                    pending = None;
                }
                if let Some(p) = &pending {
                    fatal(
                        out,
                        Code::Protocol,
                        format!("expected the binary frame of submit {:?}", p.id),
                    )
                    .await;
                    break End::Closed;
                }
                match serde_json::from_str::<ClientFrame>(&t) {
                    Err(e) => {
                        fatal(out, Code::Protocol, format!("bad frame: {e}")).await;
                        break End::Closed;
                    }
                    Ok(ClientFrame::Auth { .. }) => {
                        fatal(out, Code::Protocol, "already authenticated").await;
                        break End::Closed;
                    }
                    Ok(ClientFrame::Submit { id, envelope, size }) => {
                        match recheck(ctx, &token) {
                            Recheck::Same => {}
                            Recheck::Changed(t) => {
                                tracing::debug!(token = %t.name, "the token's limits or senders changed");
                                token = t;
                            }
                            Recheck::Revoked => {
                                tracing::info!(token = %token.name, "closing a session: its token was revoked");
                                break End::Revoked;
                            }
                        }
                        let refusal = validate::id(&id)
                            .and_then(|()| validate::size(size, &token))
                            .err();
                        // Refused on what it announces (too large, a bad id):
                        // answered now, as SMTP's SIZE does, so that a client
                        // need not upload 200 MB to learn it is too large.
                        let answered = match &refusal {
                            Some(r) => {
                                ctx.metrics.inc(&ctx.metrics.rejected);
                                let rcpts = envelope.as_ref().map_or(0, |e| e.rcpt_to.len());
                                access::submission(
                                    &token.name,
                                    &id,
                                    size,
                                    rcpts,
                                    access::Outcome::Rejected(r.code),
                                );
                                if out.send(text(&reject(&id, r.clone()))).await.is_err() {
                                    break End::Closed;
                                }
                                true
                            }
                            None => false,
                        };
                        pending = Some(PendingSubmit {
                            id,
                            envelope,
                            size,
                            refusal,
                            answered,
                        });
                    }
                    Ok(ClientFrame::Status { id }) => {
                        let key = Key {
                            token: token.name.clone(),
                            id: id.clone(),
                        };
                        // Watch first: an event after the status is not missed.
                        watcher.watch(key.clone());
                        let recipients = match ctx.spool.status(&key).await {
                            Ok(r) => r,
                            Err(e) => {
                                tracing::warn!(error = %e, id = %key.id, "cannot read a message's status");
                                // The client reconnects and asks again
                                // (accepted messages are not affected).
                                fatal(out, Code::Storage, format!("status not available now: {e}"))
                                    .await;
                                break End::Closed;
                            }
                        };
                        if recipients.is_none() {
                            // Nothing will ever happen to an unknown id: no route
                            // (asking about many ids must not grow the relay's memory).
                            watcher.unwatch(&key);
                        }
                        let frame = ServerFrame::Status {
                            id,
                            known: recipients.is_some(),
                            recipients: recipients.unwrap_or_default(),
                        };
                        if out.send(text(&frame)).await.is_err() {
                            break End::Closed;
                        }
                    }
                }
            }
            Some(Ok(WsIn::Binary(bytes))) => {
                let Some(p) = pending.take() else {
                    fatal(
                        out,
                        Code::Protocol,
                        "a binary frame without a submit frame before it",
                    )
                    .await;
                    break End::Closed;
                };
                if p.answered {
                    // The bytes of a submit refused on its announcement: dropped.
                    continue;
                }
                let received = Instant::now();
                match check(ctx, &token, &p, &bytes, received).await {
                    Err(r) => {
                        ctx.metrics.inc(&ctx.metrics.rejected);
                        let rcpts = p.envelope.as_ref().map_or(0, |e| e.rcpt_to.len());
                        access::submission(
                            &token.name,
                            &p.id,
                            bytes.len() as u64,
                            rcpts,
                            access::Outcome::Rejected(r.code),
                        );
                        if out.send(text(&reject(&p.id, r))).await.is_err() {
                            break End::Closed;
                        }
                    }
                    Ok(envelope) => {
                        let Ok(permit) = Arc::clone(&window).acquire_owned().await else {
                            break End::Closed;
                        };
                        // Its events wait for its answer, then go to this session.
                        answers.expect(&p.id).await;
                        watcher.watch(Key {
                            token: token.name.clone(),
                            id: p.id.clone(),
                        });
                        let sub = Submission {
                            meta: MessageMeta {
                                key: Key {
                                    token: token.name.clone(),
                                    id: p.id.clone(),
                                },
                                envelope,
                                received_ms: crate::spool::now_ms(),
                            },
                            bytes,
                        };
                        let rcpt_to = sub.meta.envelope.rcpt_to.clone();
                        let (token_name, size) = (token.name.clone(), sub.bytes.len() as u64);
                        let spool = Arc::clone(&ctx.spool);
                        let metrics = Arc::clone(&ctx.metrics);
                        let answers = Arc::clone(&answers);
                        tokio::spawn(async move {
                            let id = p.id;
                            let answered = id.clone();
                            let frame = match spool.accept(sub).await {
                                Ok(a) => {
                                    metrics.accept_latency.observe(received.elapsed());
                                    metrics.inc(&metrics.accepted);
                                    let outcome = if a == Accepted::Duplicate {
                                        access::Outcome::Duplicate
                                    } else {
                                        access::Outcome::Accepted
                                    };
                                    access::submission(
                                        &token_name,
                                        &id,
                                        size,
                                        rcpt_to.len(),
                                        outcome,
                                    );
                                    ServerFrame::Accepted {
                                        id,
                                        duplicate: a == Accepted::Duplicate,
                                        rcpt_to,
                                    }
                                }
                                Err(e) => {
                                    tracing::error!(id = %id, error = %e, "cannot spool a message");
                                    metrics.inc(&metrics.rejected);
                                    access::submission(
                                        &token_name,
                                        &id,
                                        size,
                                        rcpt_to.len(),
                                        access::Outcome::Rejected(Code::Storage),
                                    );
                                    ServerFrame::Rejected {
                                        id,
                                        code: Code::Storage,
                                        message: "the relay could not store the message; it was not accepted".into(),
                                    }
                                }
                            };
                            let _ = answers.answer(&answered, text(&frame)).await;
                            drop(permit);
                        });
                    }
                }
            }
        }
    };
    // Let every submission in flight get its answer before the connection ends.
    let _ = window
        .acquire_many(u32::try_from(ctx.window).unwrap_or(u32::MAX))
        .await;
    match ending {
        End::Closed => {}
        End::ShuttingDown => {
            fatal(
                out,
                Code::ShuttingDown,
                "the relay is shutting down; reconnect later",
            )
            .await;
        }
        End::Revoked => fatal(out, Code::Unauthorized, REVOKED).await,
    }
    Some(())
}

/// Message of the close that ends a session whose token was revoked.
pub const REVOKED: &str = "the token was revoked";

/// Why the read loop of a session ended.
enum End {
    /// The client left, or a fatal error was already sent.
    Closed,
    /// The relay is shutting down.
    ShuttingDown,
    /// The session's token was removed or its secret replaced.
    Revoked,
}

/// The session's token as the current set has it.
enum Recheck {
    /// Unchanged.
    Same,
    /// Same name and secret, other limits or senders.
    Changed(TokenRecord),
    /// Removed, or its secret (hash) replaced.
    Revoked,
}

fn recheck(ctx: &SessionContext, held: &TokenRecord) -> Recheck {
    let store = ctx.tokens.current();
    match store.get(&held.name) {
        Some(now) if now == held => Recheck::Same,
        Some(now) if now.hash == held.hash => Recheck::Changed(now.clone()),
        _ => Recheck::Revoked,
    }
}

/// Every check of a complete submission, cheapest first.
async fn check(
    ctx: &SessionContext,
    token: &TokenRecord,
    p: &PendingSubmit,
    bytes: &[u8],
    now: Instant,
) -> Result<Envelope, Refusal> {
    if let Some(r) = &p.refusal {
        return Err(r.clone());
    }
    if bytes.len() as u64 != p.size {
        return Err(Refusal {
            code: Code::SizeMismatch,
            message: format!(
                "submit announced {} bytes, the binary frame has {}",
                p.size,
                bytes.len()
            ),
        });
    }
    let envelope = validate::envelope(p.envelope.as_ref(), bytes, token)?;
    if let Some(list) = &ctx.suppressions {
        for rcpt in &envelope.rcpt_to {
            if let Some(s) = list.get(&token.name, rcpt) {
                ctx.metrics.inc(&ctx.metrics.suppressed);
                return Err(Refusal {
                    code: Code::Suppressed,
                    message: format!(
                        "recipient {rcpt} is suppressed: {} ({}) on {}; the operator can lift it with `postwire suppression remove {rcpt}`",
                        s.reason,
                        s.detail,
                        crate::bounces::rfc3339(s.at_ms)
                    ),
                });
            }
        }
    }
    ctx.limits
        .acquire(&token.name, token.rate_per_minute, now)
        .await
        .map_err(|wait| Refusal {
            code: Code::RateLimited,
            message: format!(
                "rate limit of {} messages per minute reached; retry in {} ms",
                token.rate_per_minute,
                wait.as_millis()
            ),
        })?;
    Ok(envelope)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
