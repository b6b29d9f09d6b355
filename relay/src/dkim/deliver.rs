//! The relay's signing step: [`SigningDeliver`] wraps the upstream
//! [`Deliver`] and signs each leased message just before handing it over, so
//! that the key used is the one on disk at delivery time (a rotation applies
//! to queued mail) and the spool keeps the message as it was accepted.
//!
//! A domain with a key that cannot be used (unreadable, malformed) defers
//! the message rather than sending it unsigned: the operator's DMARC policy
//! may reject unsigned mail, and the retry picks up the fixed key.
//!
//! Signing runs inline on the delivery task: a `stat` per key file, a
//! directory listing per domain, and one RSA or Ed25519 signature (about a
//! millisecond for RSA-2048 in a release build), which is small beside an
//! SMTP transaction and avoids copying the message to a blocking thread.

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
                        fence: lease.fence,
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::dkim::{Algorithm, key, key_path};
    use crate::spool::{Envelope, Key};

    /// Remembers the bytes it was given and accepts every recipient.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Vec<u8>>>);

    impl Deliver for Recorder {
        fn deliver<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Vec<(String, Outcome)>> {
            self.0.lock().unwrap().push(lease.bytes.clone());
            let out = lease
                .envelope
                .rcpt_to
                .iter()
                .map(|r| (r.clone(), Outcome::Delivered("250 ok".into())))
                .collect();
            Box::pin(async move { out })
        }
        fn concurrency(&self) -> usize {
            3
        }
        fn describe(&self) -> String {
            "recorder".into()
        }
    }

    fn lease(bytes: &[u8]) -> Lease {
        Lease {
            key: Key {
                token: "app".into(),
                id: "m1".into(),
            },
            envelope: Envelope {
                mail_from: "ana@example.com".into(),
                rcpt_to: vec!["bob@example.org".into()],
                ..Envelope::default()
            },
            bytes: bytes.to_vec(),
            attempts: 0,
            received_ms: 0,
            fence: 0,
        }
    }

    const MSG: &[u8] = b"From: ana@example.com\r\nTo: bob@example.org\r\n\r\nhi\r\n";

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_key_added_after_acceptance_signs_the_queued_message_and_the_lease_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::default());
        let signer = Arc::new(Signer::with_dir(dir.path()));
        let d = SigningDeliver::new(recorder.clone(), Arc::clone(&signer));
        assert_eq!(d.concurrency(), 3);
        let queued = lease(MSG);
        run(d.deliver(&queued));
        let pem = key::generate(Algorithm::Ed25519, 0).unwrap();
        key::write_key_file(&key_path(dir.path(), "example.com", "s1"), &pem, false).unwrap();
        let o = run(d.deliver(&queued));
        assert!(matches!(&o[..], [(r, Outcome::Delivered(_))] if r == "bob@example.org"));
        let sent = recorder.0.lock().unwrap();
        assert_eq!(sent[0], MSG, "no key yet: unsigned");
        assert!(sent[1].starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256;"));
        assert!(sent[1].ends_with(MSG));
        assert_eq!(queued.bytes, MSG, "the spool's copy stays as accepted");
        let stats = signer.stats();
        assert_eq!(stats.unsigned.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(stats.signed.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn an_unusable_key_defers_every_recipient_and_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(dir.path(), "example.com", "s1");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "not a key").unwrap();
        let recorder = Arc::new(Recorder::default());
        let d = SigningDeliver::new(recorder.clone(), Arc::new(Signer::with_dir(dir.path())));
        let o = run(d.deliver(&lease(MSG)));
        assert!(
            matches!(&o[..], [(_, Outcome::Transient(why))] if why.contains("s1.key")),
            "{o:?}"
        );
        assert!(recorder.0.lock().unwrap().is_empty());
    }
}
