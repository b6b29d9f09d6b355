//! The relay's signing step: [`SigningDeliver`] wraps the upstream
//! [`Deliver`] and signs each leased message just before handing it over, so
//! that the key used is the one on disk at delivery time (a rotation applies
//! to queued mail) and the spool keeps the message as it was accepted.
//!
//! A domain with a key that cannot be used (unreadable, malformed) defers
//! the message rather than sending it unsigned: the operator's DMARC policy
//! may reject unsigned mail, and the retry picks up the fixed key.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::Signer;
use crate::spool::{Lease, Outcome, deliver::Deliver};

/// A [`Deliver`] that DKIM-signs before delivering.
pub struct SigningDeliver {
    inner: Arc<dyn Deliver>,
    signer: Arc<Signer>,
}

impl std::fmt::Debug for SigningDeliver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningDeliver")
            .field("inner", &self.inner.describe())
            .field("signer", &self.signer)
            .finish()
    }
}

impl SigningDeliver {
    /// Signs with `signer`, then delivers through `inner`.
    pub fn new(inner: Arc<dyn Deliver>, signer: Arc<Signer>) -> Self {
        SigningDeliver { inner, signer }
    }
}

impl Deliver for SigningDeliver {
    fn deliver<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Vec<(String, Outcome)>> {
        Box::pin(async move {
            let id = format!("{}/{}", lease.key.token, lease.key.id);
            match self.signer.apply(&lease.bytes, &id) {
                Ok(None) => self.inner.deliver(lease).await,
                Ok(Some(signed)) => {
                    let signed = Lease {
                        key: lease.key.clone(),
                        envelope: lease.envelope.clone(),
                        bytes: signed,
                        attempts: lease.attempts,
                        received_ms: lease.received_ms,
                    };
                    self.inner.deliver(&signed).await
                }
                Err(e) => {
                    let why = format!("not sent: {e}");
                    lease
                        .envelope
                        .rcpt_to
                        .iter()
                        .map(|r| (r.clone(), Outcome::Transient(why.clone())))
                        .collect()
                }
            }
        })
    }

    fn concurrency(&self) -> usize {
        self.inner.concurrency()
    }

    fn describe(&self) -> String {
        match self.signer.dir() {
            Some(dir) => format!("{} (DKIM keys in {})", self.inner.describe(), dir.display()),
            None => format!("{} (DKIM keys from the config)", self.inner.describe()),
        }
    }
}
