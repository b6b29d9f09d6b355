//! Keeps a session's delivery events of a submission behind the answer to
//! that submission: a client hears `accepted` (or `rejected`) for an id
//! before any `delivered`, `deferred` or `failed` of the same id.
//!
//! The answer is sent by the task that stored the message, the events by
//! the session's event task; a fast upstream (the pickup directory) can
//! publish the delivery before the storing task gets to send `accepted`.
//! Without this gate such an event reached the client first, and a client
//! that waits for `accepted` and then for the delivery events never saw it.
//!
//! A session [`AnswerFirst::expect`]s an id before it starts watching its
//! events; the events of an expected id are held until
//! [`AnswerFirst::answer`] has sent the answer, then sent in their order.
//! Both go through one lock, so nothing overtakes.

use std::collections::HashMap;

use tokio::sync::{Mutex, mpsc};

use super::session::WsOut;

/// The client's side of the connection is gone.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the connection is closed")]
pub struct Closed;

/// Submissions still waiting for their answer: how many, and the events
/// held for them.
#[derive(Default)]
struct Unanswered {
    count: usize,
    held: Vec<WsOut>,
}

/// The session's way out for answers and delivery events.
#[derive(Debug)]
pub struct AnswerFirst {
    out: mpsc::Sender<WsOut>,
    unanswered: Mutex<HashMap<String, Unanswered>>,
}

impl std::fmt::Debug for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unanswered")
            .field("count", &self.count)
            .field("held", &self.held.len())
            .finish()
    }
}

impl AnswerFirst {
    /// Sends to `out`.
    pub fn new(out: mpsc::Sender<WsOut>) -> Self {
        AnswerFirst {
            out,
            unanswered: Mutex::new(HashMap::new()),
        }
    }

    /// A submission of `id` is on its way to the spool: its events wait for
    /// its answer. Called before the session watches `id`.
    pub async fn expect(&self, id: &str) {
        self.unanswered
            .lock()
            .await
            .entry(id.to_string())
            .or_default()
            .count += 1;
    }

    /// Sends the answer to a submission of `id`, then the events held for it.
    pub async fn answer(&self, id: &str, frame: WsOut) -> Result<(), Closed> {
        let mut unanswered = self.unanswered.lock().await;
        self.out.send(frame).await.map_err(|_| Closed)?;
        let held = match unanswered.get_mut(id) {
            Some(u) => {
                u.count = u.count.saturating_sub(1);
                let held = std::mem::take(&mut u.held);
                if u.count == 0 {
                    unanswered.remove(id);
                }
                held
            }
            None => Vec::new(),
        };
        for ev in held {
            self.out.send(ev).await.map_err(|_| Closed)?;
        }
        Ok(())
    }

    /// Sends a delivery event of `id`, or holds it while a submission of
    /// `id` is unanswered.
    pub async fn event(&self, id: &str, frame: WsOut) -> Result<(), Closed> {
        let mut unanswered = self.unanswered.lock().await;
        if let Some(u) = unanswered.get_mut(id) {
            u.held.push(frame);
            return Ok(());
        }
        self.out.send(frame).await.map_err(|_| Closed)
    }

    /// Resolves when the client's side is gone.
    pub async fn closed(&self) {
        self.out.closed().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> WsOut {
        WsOut::Text(s.to_string())
    }

    fn drain(rx: &mut mpsc::Receiver<WsOut>) -> Vec<WsOut> {
        let mut got = Vec::new();
        while let Ok(f) = rx.try_recv() {
            got.push(f);
        }
        got
    }

    #[tokio::test]
    async fn an_event_before_the_answer_is_sent_after_it() {
        let (tx, mut rx) = mpsc::channel(16);
        let gate = AnswerFirst::new(tx);
        gate.expect("m1").await;
        gate.event("m1", t("delivered m1")).await.unwrap();
        gate.event("m2", t("delivered m2")).await.unwrap();
        assert_eq!(
            drain(&mut rx),
            vec![t("delivered m2")],
            "only the unexpected id passes"
        );
        gate.answer("m1", t("accepted m1")).await.unwrap();
        gate.event("m1", t("bounced m1")).await.unwrap();
        assert_eq!(
            drain(&mut rx),
            vec![t("accepted m1"), t("delivered m1"), t("bounced m1")]
        );
        assert!(gate.unanswered.lock().await.is_empty(), "nothing kept");
    }

    #[tokio::test]
    async fn events_wait_for_every_unanswered_submission_of_their_id() {
        let (tx, mut rx) = mpsc::channel(16);
        let gate = AnswerFirst::new(tx);
        // The same id submitted twice before either answer (a duplicate).
        gate.expect("m1").await;
        gate.expect("m1").await;
        gate.event("m1", t("delivered")).await.unwrap();
        gate.answer("m1", t("accepted")).await.unwrap();
        gate.event("m1", t("failed")).await.unwrap();
        gate.answer("m1", t("accepted duplicate")).await.unwrap();
        assert_eq!(
            drain(&mut rx),
            vec![
                t("accepted"),
                t("delivered"),
                t("accepted duplicate"),
                t("failed")
            ]
        );
        assert!(gate.unanswered.lock().await.is_empty(), "nothing kept");
    }

    #[tokio::test]
    async fn a_closed_connection_is_an_error_not_a_hang() {
        let (tx, rx) = mpsc::channel(1);
        let gate = AnswerFirst::new(tx);
        drop(rx);
        gate.expect("m1").await;
        assert_eq!(gate.answer("m1", t("accepted")).await, Err(Closed));
        assert_eq!(gate.event("m2", t("delivered")).await, Err(Closed));
    }
}
