//! The task behind a [`RelayClient`](super::RelayClient): it owns the
//! WebSocket and the client's state (messages queued, submitted and not
//! answered, accepted and not final), reads the relay's frames, and after a
//! lost connection requeues what was not answered, reconnects with a
//! doubling delay (100 ms up to the options' maximum), asks `status` for
//! the accepted messages it still tracks and resubmits the rest by id.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use postwire_core::envelope::Envelope;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::connect::{self, Target, Ws};
use super::frames::{self, Incoming};
use super::{
    Accepted, ClientError, ClientEvent, ClientOptions, OutgoingMessage, RcptState, RcptStatus,
    Ready,
};

/// What the [`RelayClient`](super::RelayClient) handle asks of the task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Submit a message.
    Submit(Box<Entry>),
    /// Finish what was queued, then close.
    Close,
}

/// A message not yet answered.
#[derive(Debug)]
pub(crate) struct Entry {
    id: String,
    bytes: Bytes,
    envelope: Option<Envelope>,
    answer: oneshot::Sender<Result<Accepted, ClientError>>,
    /// Delivery events that came before its `accepted`.
    early: Vec<Incoming>,
}

impl Entry {
    pub(crate) fn new(
        id: String,
        message: OutgoingMessage,
        answer: oneshot::Sender<Result<Accepted, ClientError>>,
    ) -> Entry {
        Entry {
            id,
            bytes: Bytes::from(message.bytes),
            envelope: message.envelope,
            answer,
            early: Vec::new(),
        }
    }

    pub(crate) fn answer(self, result: Result<Accepted, ClientError>) {
        let _ = self.answer.send(result);
    }
}

/// An accepted message whose recipients are not all final.
struct Tracked {
    rcpt_to: Vec<String>,
    states: HashMap<String, RcptState>,
}

/// Why a connected session ended.
enum SessionEnd {
    /// Everything asked was answered and the client is closing.
    Done,
    /// The connection is gone.
    Lost(ClientError),
}

pub(crate) struct Driver {
    target: Target,
    tls: Arc<rustls::ClientConfig>,
    options: ClientOptions,
    window: usize,
    max_size: u64,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
    events: mpsc::UnboundedSender<ClientEvent>,
    queue: VecDeque<Entry>,
    inflight: VecDeque<Entry>,
    tracked: HashMap<String, Tracked>,
    closing: bool,
    /// Set after a fatal error: every later submission gets it.
    dead: Option<ClientError>,
}

impl Driver {
    pub(crate) fn new(
        target: Target,
        tls: Arc<rustls::ClientConfig>,
        options: ClientOptions,
        ready: &Ready,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<ClientEvent>,
    ) -> Driver {
        Driver {
            target,
            tls,
            options,
            window: ready.window.max(1),
            max_size: ready.max_size,
            commands,
            commands_open: true,
            events,
            queue: VecDeque::new(),
            inflight: VecDeque::new(),
            tracked: HashMap::new(),
            closing: false,
            dead: None,
        }
    }

    fn emit(&self, event: ClientEvent) {
        let _ = self.events.send(event);
    }

    fn command(&mut self, command: Option<Command>) {
        match command {
            Some(Command::Submit(entry)) => match &self.dead {
                Some(err) => entry.answer(Err(err.clone())),
                None => self.queue.push_back(*entry),
            },
            Some(Command::Close) => self.closing = true,
            None => {
                self.commands_open = false;
                self.closing = true;
            }
        }
    }

    /// Closing, and nothing left to answer.
    fn finished(&self) -> bool {
        self.closing && self.queue.is_empty() && self.inflight.is_empty()
    }

    /// Fails every message not yet answered with `err`.
    fn fail_all(&mut self, err: &ClientError) {
        for e in self.inflight.drain(..).chain(self.queue.drain(..)) {
            e.answer(Err(err.clone()));
        }
    }

    /// Gives up: fails what is unanswered, stops following accepted
    /// messages, and says so.
    fn stop(&mut self, err: &ClientError) {
        self.fail_all(err);
        let untracked: Vec<String> = self.tracked.drain().map(|(id, _)| id).collect();
        self.emit(ClientEvent::Stopped {
            reason: err.to_string(),
            untracked,
        });
    }

    fn requeue_inflight(&mut self) {
        while let Some(e) = self.inflight.pop_back() {
            self.queue.push_front(e);
        }
    }

    fn on_ready(&mut self, ready: Ready) {
        self.window = ready.window.max(1);
        self.max_size = ready.max_size;
        self.emit(ClientEvent::Ready(ready));
    }

    /// Submits from the queue while the window has room.
    async fn pump(&mut self, ws: &mut Ws) -> Result<(), ClientError> {
        let mut sent = false;
        while self.inflight.len() < self.window {
            let Some(e) = self.queue.pop_front() else {
                break;
            };
            if e.bytes.len() as u64 > self.max_size {
                let (id, message) = (
                    e.id.clone(),
                    format!(
                        "message of {} bytes exceeds the relay's limit of {}",
                        e.bytes.len(),
                        self.max_size
                    ),
                );
                self.emit(ClientEvent::Rejected {
                    id: id.clone(),
                    code: "too_large".into(),
                    message: message.clone(),
                });
                e.answer(Err(ClientError::Rejected {
                    id,
                    code: "too_large".into(),
                    message,
                }));
                continue;
            }
            let submit = frames::submit(&e.id, e.bytes.len(), e.envelope.as_ref());
            let bytes = e.bytes.clone();
            self.inflight.push_back(e);
            ws.feed(Message::Text(submit.into())).await.map_err(lost)?;
            ws.feed(Message::Binary(bytes)).await.map_err(lost)?;
            sent = true;
        }
        if sent {
            ws.flush().await.map_err(lost)?;
        }
        Ok(())
    }

    async fn session(&mut self, ws: &mut Ws) -> SessionEnd {
        let ids: Vec<String> = self.tracked.keys().cloned().collect();
        for id in ids {
            if let Err(e) = ws.feed(Message::Text(frames::status(&id).into())).await {
                return SessionEnd::Lost(lost(e));
            }
        }
        if let Err(e) = ws.flush().await {
            return SessionEnd::Lost(lost(e));
        }
        if let Err(e) = self.pump(ws).await {
            return SessionEnd::Lost(e);
        }
        let mut relay_error: Option<ClientError> = None;
        loop {
            if self.finished() {
                return SessionEnd::Done;
            }
            tokio::select! {
                command = self.commands.recv(), if self.commands_open => {
                    self.command(command);
                    if let Err(e) = self.pump(ws).await {
                        return SessionEnd::Lost(e);
                    }
                }
                msg = ws.next() => {
                    let text = match msg {
                        None => {
                            return SessionEnd::Lost(relay_error.unwrap_or_else(|| {
                                ClientError::ConnectionLost("connection closed".into())
                            }));
                        }
                        Some(Err(e)) => return SessionEnd::Lost(relay_error.unwrap_or_else(|| lost(e))),
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(_)) => continue,
                    };
                    match Incoming::parse(&text) {
                        Some(Incoming::Error { code, message }) => {
                            relay_error = Some(ClientError::from_relay(code, message));
                        }
                        Some(frame) => {
                            if let Err(e) = self.frame(frame, ws).await {
                                return SessionEnd::Lost(e);
                            }
                        }
                        None => {}
                    }
                }
            }
        }
    }

    fn take_inflight(&mut self, id: &str) -> Option<Entry> {
        let at = self.inflight.iter().position(|e| e.id == id)?;
        self.inflight.remove(at)
    }

    async fn frame(&mut self, frame: Incoming, ws: &mut Ws) -> Result<(), ClientError> {
        match frame {
            Incoming::Accepted {
                id,
                duplicate,
                rcpt_to,
            } => {
                let Some(entry) = self.take_inflight(&id) else {
                    return Ok(());
                };
                let mut tracked = Tracked {
                    rcpt_to: rcpt_to.clone(),
                    states: HashMap::new(),
                };
                for early in &entry.early {
                    apply(&mut tracked, early);
                }
                self.tracked.insert(id.clone(), tracked);
                if duplicate {
                    // Its events were sent to the connection that submitted it.
                    ws.send(Message::Text(frames::status(&id).into()))
                        .await
                        .map_err(lost)?;
                }
                let accepted = Accepted {
                    id: id.clone(),
                    duplicate,
                    rcpt_to,
                };
                self.emit(ClientEvent::Accepted(accepted.clone()));
                entry.answer(Ok(accepted));
                self.check_settled(&id);
                self.pump(ws).await?;
            }
            Incoming::Rejected { id, code, message } => {
                let Some(entry) = self.take_inflight(&id) else {
                    return Ok(());
                };
                self.emit(ClientEvent::Rejected {
                    id: id.clone(),
                    code: code.clone(),
                    message: message.clone(),
                });
                entry.answer(Err(ClientError::Rejected { id, code, message }));
                self.pump(ws).await?;
            }
            Incoming::Delivered { .. } | Incoming::Deferred { .. } | Incoming::Failed { .. } => {
                let Some((id, event)) = event_of(&frame) else {
                    return Ok(());
                };
                self.emit(event);
                if let Some(t) = self.tracked.get_mut(&id) {
                    apply(t, &frame);
                    self.check_settled(&id);
                } else if let Some(e) = self.inflight.iter_mut().find(|e| e.id == id) {
                    e.early.push(frame);
                }
            }
            Incoming::Status {
                id,
                known,
                recipients,
            } => {
                if !known {
                    if self.tracked.remove(&id).is_some() {
                        self.emit(ClientEvent::Forgotten { id });
                    }
                    return Ok(());
                }
                let Some(t) = self.tracked.get_mut(&id) else {
                    return Ok(());
                };
                let mut news = Vec::new();
                for r in recipients {
                    let changed = t.states.get(&r.rcpt) != Some(&r.state);
                    if changed {
                        match &r.state {
                            RcptState::Delivered { response } => {
                                news.push(ClientEvent::Delivered {
                                    id: id.clone(),
                                    rcpt: r.rcpt.clone(),
                                    response: response.clone(),
                                })
                            }
                            RcptState::Failed { reason } => news.push(ClientEvent::Failed {
                                id: id.clone(),
                                rcpt: r.rcpt.clone(),
                                reason: reason.clone(),
                            }),
                            _ => {}
                        }
                    }
                    if t.rcpt_to.is_empty() || !t.rcpt_to.contains(&r.rcpt) {
                        t.rcpt_to.push(r.rcpt.clone());
                    }
                    if !t.states.get(&r.rcpt).is_some_and(RcptState::is_final) {
                        t.states.insert(r.rcpt, r.state);
                    }
                }
                for e in news {
                    self.emit(e);
                }
                self.check_settled(&id);
            }
            Incoming::Ready(_) | Incoming::Error { .. } => {}
        }
        Ok(())
    }

    fn check_settled(&mut self, id: &str) {
        let Some(t) = self.tracked.get(id) else {
            return;
        };
        if t.rcpt_to.is_empty()
            || !t
                .rcpt_to
                .iter()
                .all(|r| t.states.get(r).is_some_and(RcptState::is_final))
        {
            return;
        }
        let Some(t) = self.tracked.remove(id) else {
            return;
        };
        let mut states = t.states;
        let recipients = t
            .rcpt_to
            .into_iter()
            .filter_map(|rcpt| {
                let state = states.remove(&rcpt)?;
                Some(RcptStatus { rcpt, state })
            })
            .collect();
        self.emit(ClientEvent::Settled {
            id: id.to_string(),
            recipients,
        });
    }
}

fn lost(e: impl std::fmt::Display) -> ClientError {
    ClientError::ConnectionLost(e.to_string())
}

/// The event a delivery frame stands for, with its id.
fn event_of(frame: &Incoming) -> Option<(String, ClientEvent)> {
    Some(match frame.clone() {
        Incoming::Delivered {
            id, rcpt, response, ..
        } => (id.clone(), ClientEvent::Delivered { id, rcpt, response }),
        Incoming::Deferred {
            id,
            rcpt,
            reason,
            attempts,
            retry_at,
            ..
        } => (
            id.clone(),
            ClientEvent::Deferred {
                id,
                rcpt,
                reason,
                attempts,
                retry_at_ms: retry_at,
            },
        ),
        Incoming::Failed {
            id, rcpt, reason, ..
        } => (id.clone(), ClientEvent::Failed { id, rcpt, reason }),
        _ => return None,
    })
}

/// Records a delivery frame in a tracked message; a final state stays final.
fn apply(t: &mut Tracked, frame: &Incoming) {
    let (rcpt, state) = match frame {
        Incoming::Delivered { rcpt, response, .. } => (
            rcpt,
            RcptState::Delivered {
                response: response.clone(),
            },
        ),
        Incoming::Deferred {
            rcpt,
            reason,
            attempts,
            ..
        } => (
            rcpt,
            RcptState::Deferred {
                reason: reason.clone(),
                attempts: *attempts,
            },
        ),
        Incoming::Failed { rcpt, reason, .. } => (
            rcpt,
            RcptState::Failed {
                reason: reason.clone(),
            },
        ),
        _ => return,
    };
    if t.states.get(rcpt).is_some_and(RcptState::is_final) {
        return;
    }
    if !t.rcpt_to.contains(rcpt) {
        t.rcpt_to.push(rcpt.clone());
    }
    t.states.insert(rcpt.clone(), state);
}

/// Runs the client until it is closed (or dropped) and has nothing left to answer.
pub(crate) async fn run(mut d: Driver, ws: Ws) {
    let mut connection = Some(ws);
    let mut attempt: u32 = 0;
    let mut lost_since: Option<Instant> = None;
    let mut last_reason = String::new();
    loop {
        if let Some(mut ws) = connection.take() {
            match d.session(&mut ws).await {
                SessionEnd::Done => {
                    let _ = ws.close(None).await;
                    return;
                }
                SessionEnd::Lost(err) => {
                    d.requeue_inflight();
                    if err.is_fatal() {
                        d.stop(&err);
                        d.dead = Some(err);
                    } else if !d.options.reconnect {
                        d.stop(&err);
                    } else {
                        last_reason = err.to_string();
                        lost_since = Some(Instant::now());
                    }
                }
            }
        }
        if d.finished() {
            return;
        }
        if d.dead.is_some() || (d.queue.is_empty() && (d.tracked.is_empty() || d.closing)) {
            // Nothing to reconnect for: wait for a submission (answered at
            // once by a dead client) or the end of the handle.
            if !d.commands_open {
                return;
            }
            let command = d.commands.recv().await;
            d.command(command);
            attempt = 0;
            lost_since = lost_since.map(|_| Instant::now());
            if d.queue.is_empty() {
                continue;
            }
        }
        if let (Some(limit), Some(since)) = (d.options.give_up_after, lost_since)
            && since.elapsed() >= limit
        {
            let err = ClientError::ConnectionLost(format!(
                "no connection for {} s: {last_reason}",
                limit.as_secs()
            ));
            d.stop(&err);
            lost_since = None;
            continue;
        }
        let delay = if attempt == 0 && !d.options.reconnect {
            Duration::ZERO
        } else {
            Duration::from_millis(100u64.saturating_mul(1 << attempt.min(16)))
                .min(d.options.max_reconnect_delay)
        };
        attempt = attempt.saturating_add(1);
        d.emit(ClientEvent::Reconnecting {
            reason: last_reason.clone(),
            delay,
            pending: d.queue.len(),
            tracked: d.tracked.len(),
        });
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => break,
                command = d.commands.recv(), if d.commands_open => d.command(command),
            }
        }
        match connect::open(
            &d.target,
            &d.options.token,
            &d.tls,
            d.options.connect_timeout,
        )
        .await
        {
            Ok((ws, ready)) => {
                attempt = 0;
                lost_since = None;
                d.on_ready(ready);
                connection = Some(ws);
            }
            Err(err) if err.is_fatal() => {
                d.stop(&err);
                d.dead = Some(err);
            }
            Err(err) if !d.options.reconnect => d.stop(&err),
            Err(err) => {
                last_reason = err.to_string();
                lost_since.get_or_insert_with(Instant::now);
            }
        }
    }
}
