//! [`HookedSpool`]: the relay's spool with the `accepted` webhook event
//! added, written to the outbox before the client is answered.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, json};
use tokio::sync::broadcast;

use super::dispatch::Webhooks;
use crate::spool::{
    Accepted, Control, Controlled, Depth, Event, Key, Lease, MessageView, Outcome, RcptState,
    RcptStatus, Spool, SpoolError, Submission,
};

/// A [`Spool`] that queues an `accepted` webhook event for each message it
/// stores, before the client hears `accepted`.
pub struct HookedSpool {
    inner: Arc<dyn Spool>,
    hooks: Arc<Webhooks>,
}

impl HookedSpool {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Spool>, hooks: Arc<Webhooks>) -> Self {
        HookedSpool { inner, hooks }
    }
}

impl Spool for HookedSpool {
    fn accept(&self, sub: Submission) -> BoxFuture<'_, Result<Accepted, SpoolError>> {
        Box::pin(async move {
            let meta = sub.meta.clone();
            let r = self.inner.accept(sub).await;
            if let Ok(Accepted::Stored) = r {
                let mut m = Map::new();
                m.insert("mailFrom".into(), json!(meta.envelope.mail_from));
                m.insert("recipients".into(), json!(meta.envelope.rcpt_to));
                m.insert("receivedAt".into(), json!(meta.received_ms));
                self.hooks.enqueue("accepted", &meta.key, m).await;
            }
            r
        })
    }
    fn status<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<Vec<RcptStatus>>, SpoolError>> {
        self.inner.status(key)
    }
    fn next(&self) -> BoxFuture<'_, Option<Lease>> {
        self.inner.next()
    }
    fn settle(
        &self,
        lease: Lease,
        outcomes: Vec<(String, Outcome)>,
    ) -> BoxFuture<'_, Result<(), SpoolError>> {
        self.inner.settle(lease, outcomes)
    }
    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.subscribe()
    }
    fn depth(&self) -> Depth {
        self.inner.depth()
    }
    fn usable(&self) -> Result<(), String> {
        self.inner.usable()
    }
    fn close(&self) {
        self.inner.close();
    }
    fn find<'a>(
        &'a self,
        matches: &'a (dyn Fn(&Key) -> bool + Send + Sync),
    ) -> BoxFuture<'a, Result<Option<Key>, SpoolError>> {
        self.inner.find(matches)
    }
    fn renew<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<bool, SpoolError>> {
        self.inner.renew(lease)
    }
    fn renew_every(&self) -> Option<std::time::Duration> {
        self.inner.renew_every()
    }
    fn subscribe_all(&self) -> broadcast::Receiver<Event> {
        self.inner.subscribe_all()
    }
    fn report(
        &self,
        key: Key,
        rcpt: String,
        state: RcptState,
    ) -> BoxFuture<'_, Result<bool, SpoolError>> {
        self.inner.report(key, rcpt, state)
    }
    fn messages(&self) -> BoxFuture<'_, Result<Vec<MessageView>, SpoolError>> {
        self.inner.messages()
    }
    fn message<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<MessageView>, SpoolError>> {
        self.inner.message(key)
    }
    fn message_bytes<'a>(
        &'a self,
        key: &'a Key,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SpoolError>> {
        self.inner.message_bytes(key)
    }
    fn control(&self, key: Key, action: Control) -> BoxFuture<'_, Result<Controlled, SpoolError>> {
        self.inner.control(key, action)
    }
    fn events_since(&self, since_ms: u64) -> BoxFuture<'_, Result<Option<Vec<Event>>, SpoolError>> {
        self.inner.events_since(since_ms)
    }
}
