//! [`HookedSpool`]: the relay's spool with the `accepted` webhook event
//! added: handed to an [`AcceptHook`] before the client is answered (the
//! file spool's dispatcher writes it to its outbox; the shared one, whose
//! outbox rows the database writes with the message, is only woken).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::broadcast;

use super::dispatch::{Webhooks, accepted_fields};
use crate::spool::{
    Accepted, Control, Controlled, Depth, Event, Key, Lease, MessageMeta, MessageView, Outcome,
    RcptState, RcptStatus, Spool, SpoolError, Submission,
};

/// Hears of each message the spool stored, before its client does.
pub trait AcceptHook: Send + Sync + 'static {
    /// `meta`'s message was stored.
    fn accepted<'a>(&'a self, meta: &'a MessageMeta) -> BoxFuture<'a, ()>;
}

impl AcceptHook for Webhooks {
    fn accepted<'a>(&'a self, meta: &'a MessageMeta) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let fields = accepted_fields(
                &meta.envelope.mail_from,
                &meta.envelope.rcpt_to,
                meta.received_ms,
            );
            self.enqueue("accepted", &meta.key, fields).await;
        })
    }
}

/// A [`Spool`] that tells an [`AcceptHook`] of each message it stores,
/// before the client hears `accepted`.
pub struct HookedSpool {
    inner: Arc<dyn Spool>,
    hooks: Arc<dyn AcceptHook>,
}

impl HookedSpool {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Spool>, hooks: Arc<dyn AcceptHook>) -> Self {
        HookedSpool { inner, hooks }
    }
}

impl Spool for HookedSpool {
    fn accept(&self, sub: Submission) -> BoxFuture<'_, Result<Accepted, SpoolError>> {
        Box::pin(async move {
            let meta = sub.meta.clone();
            let r = self.inner.accept(sub).await;
            if let Ok(Accepted::Stored) = r {
                self.hooks.accepted(&meta).await;
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
