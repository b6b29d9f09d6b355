//! Readiness for `/readyz`: whether this relay should be sent traffic. Not
//! ready while the spool recovers (the listener is bound before recovery
//! and answers 503 until it ends), nor while the SMTP upstream is judged
//! unreachable. A pickup directory is always ready.
//!
//! How the upstream is judged: by the last thing the relay learnt of it.
//! Each delivery attempt tells ([`ObservedDeliver`]): an answer from the
//! server (any reply code, even a refusal) means reachable; a connection
//! error (refused, timeout, TLS, lost connection, no reply) means
//! unreachable. When `/readyz` is asked and that judgment is older than
//! [`FRESH`] (or there is none yet), a probe runs the steps of `postwire
//! smtp check` (connect, TLS, EHLO, AUTH, NOOP, QUIT) on one connection;
//! a failure at any step means unreachable. The first `/readyz` waits up to
//! [`FIRST_PROBE_WAIT`] for that probe; later ones answer at once from the
//! last judgment while a stale one is refreshed in the background. A busy
//! relay therefore never probes, and an idle one probes only as often as
//! it is asked, at most once per [`FRESH`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::smtp::SmtpSettings;
use crate::spool::deliver::Deliver;
use crate::spool::{Lease, Outcome};

/// How long a judgment of the upstream is used before a probe refreshes it.
pub const FRESH: Duration = Duration::from_secs(30);

/// How long the first `/readyz` waits for the first probe.
pub const FIRST_PROBE_WAIT: Duration = Duration::from_secs(3);

/// The most a probe may take.
const PROBE_LIMIT: Duration = Duration::from_secs(20);

/// What the relay last learnt of its upstream.
#[derive(Debug, Clone)]
struct Judgment {
    reachable: bool,
    at: Instant,
    /// Where it came from (`delivery` or `probe`) and, when unreachable, why.
    source: &'static str,
    detail: String,
}

/// The relay's readiness, shared by the server and the delivery side.
#[derive(Debug)]
pub struct Readiness {
    recovering: AtomicBool,
    /// `None`: a pickup directory, always reachable.
    upstream: Option<SmtpSettings>,
    last: Mutex<Option<Judgment>>,
    probing: AtomicBool,
    probed: tokio::sync::Notify,
}

/// The answer of `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Whether the relay should get traffic.
    pub ready: bool,
    /// `recovering`, `ok`, `unreachable` or `unknown`.
    pub upstream: &'static str,
    /// Why it is not ready (empty when ready).
    pub reason: String,
    /// Seconds since the upstream was last judged (none for a pickup directory).
    pub checked_secs_ago: Option<u64>,
}

impl Readiness {
    /// Readiness of a relay delivering over SMTP with `settings`, or into a
    /// pickup directory (`None`); recovering until [`Readiness::recovered`].
    pub fn new(upstream: Option<SmtpSettings>) -> Arc<Self> {
        Arc::new(Readiness {
            recovering: AtomicBool::new(true),
            upstream,
            last: Mutex::new(None),
            probing: AtomicBool::new(false),
            probed: tokio::sync::Notify::new(),
        })
    }

    /// The spool's recovery is over.
    pub fn recovered(&self) {
        self.recovering.store(false, Ordering::SeqCst);
    }

    /// Records what a delivery attempt or a probe found.
    fn judge(&self, reachable: bool, source: &'static str, detail: String) {
        if let Ok(mut last) = self.last.lock() {
            let changed = last.as_ref().is_none_or(|j| j.reachable != reachable);
            if changed {
                if reachable {
                    tracing::info!(source, "the upstream is reachable");
                } else {
                    tracing::warn!(source, reason = %detail, "the upstream is unreachable: /readyz says 503");
                }
            }
            *last = Some(Judgment {
                reachable,
                at: Instant::now(),
                source,
                detail,
            });
        }
    }

    fn last(&self) -> Option<Judgment> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    /// Starts a probe unless one is running.
    fn probe(self: &Arc<Self>) {
        let Some(settings) = self.upstream.clone() else {
            return;
        };
        if self.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let result =
                tokio::time::timeout(PROBE_LIMIT, crate::smtp::check::check(settings)).await;
            match result {
                Ok(Ok(_)) => this.judge(true, "probe", String::new()),
                Ok(Err(e)) => this.judge(false, "probe", e.to_string()),
                Err(_) => this.judge(
                    false,
                    "probe",
                    format!("no answer within {} s", PROBE_LIMIT.as_secs()),
                ),
            }
            this.probing.store(false, Ordering::SeqCst);
            this.probed.notify_waiters();
        });
    }

    /// Whether the relay is ready now, probing the upstream when its
    /// judgment is missing or stale (see the module documentation).
    pub async fn check(self: &Arc<Self>) -> Report {
        if self.recovering.load(Ordering::SeqCst) {
            return Report {
                ready: false,
                upstream: "recovering",
                reason: "the spool is being recovered".into(),
                checked_secs_ago: None,
            };
        }
        if self.upstream.is_none() {
            return Report {
                ready: true,
                upstream: "ok",
                reason: String::new(),
                checked_secs_ago: None,
            };
        }
        let mut last = self.last();
        if last.as_ref().is_none_or(|j| j.at.elapsed() >= FRESH) {
            let waiting = self.probed.notified();
            self.probe();
            if last.is_none() {
                let _ = tokio::time::timeout(FIRST_PROBE_WAIT, waiting).await;
                last = self.last();
            }
        }
        match last {
            None => Report {
                ready: false,
                upstream: "unknown",
                reason: "the upstream is being checked".into(),
                checked_secs_ago: None,
            },
            Some(j) => Report {
                ready: j.reachable,
                upstream: if j.reachable { "ok" } else { "unreachable" },
                reason: if j.reachable {
                    String::new()
                } else {
                    format!("{} failed: {}", j.source, j.detail)
                },
                checked_secs_ago: Some(j.at.elapsed().as_secs()),
            },
        }
    }
}

/// A [`Deliver`] that tells [`Readiness`] what each attempt found of the upstream.
pub struct ObservedDeliver {
    inner: Arc<dyn Deliver>,
    readiness: Arc<Readiness>,
}

impl ObservedDeliver {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Deliver>, readiness: Arc<Readiness>) -> Self {
        ObservedDeliver { inner, readiness }
    }
}

/// Whether the outcomes of one attempt show an upstream that answered:
/// `Some(true)` when any outcome carries a server's reply (or is a
/// delivery), `Some(false)` when all are transient without one (a
/// connection error), `None` when there is nothing to judge.
fn reached(outcomes: &[(String, Outcome)]) -> Option<(bool, String)> {
    let mut unreached = None;
    for (_, o) in outcomes {
        match o {
            Outcome::Delivered(_) => return Some((true, String::new())),
            Outcome::Permanent(text) | Outcome::Transient(text) => {
                if super::protocol::reply_codes(text).0.is_some() {
                    return Some((true, String::new()));
                }
                if matches!(o, Outcome::Transient(_)) {
                    unreached = Some(text.clone());
                } else {
                    // A permanent local refusal (REQUIRETLS, SMTPUTF8) after a session.
                    return Some((true, String::new()));
                }
            }
        }
    }
    unreached.map(|t| (false, t))
}

impl Deliver for ObservedDeliver {
    fn deliver<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Vec<(String, Outcome)>> {
        Box::pin(async move {
            let outcomes = self.inner.deliver(lease).await;
            if self.readiness.upstream.is_some()
                && let Some((reachable, detail)) = reached(&outcomes)
            {
                self.readiness.judge(reachable, "delivery", detail);
            }
            outcomes
        })
    }

    fn concurrency(&self) -> usize {
        self.inner.concurrency()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(o: Outcome) -> Vec<(String, Outcome)> {
        vec![("b@example.org".into(), o)]
    }

    #[test]
    fn an_answer_means_reachable_and_a_connection_error_unreachable() {
        assert_eq!(
            reached(&out(Outcome::Delivered("250 ok".into()))),
            Some((true, String::new()))
        );
        assert_eq!(
            reached(&out(Outcome::Transient("451 4.3.0 later".into()))),
            Some((true, String::new()))
        );
        assert_eq!(
            reached(&out(Outcome::Permanent("550 5.1.1 no".into()))),
            Some((true, String::new()))
        );
        assert_eq!(
            reached(&out(Outcome::Transient("connection refused".into()))),
            Some((false, "connection refused".into()))
        );
        assert_eq!(reached(&[]), None);
    }

    #[tokio::test]
    async fn recovering_is_not_ready_and_a_pickup_directory_is_ready_after() {
        let r = Readiness::new(None);
        let report = r.check().await;
        assert!(!report.ready);
        assert_eq!(report.upstream, "recovering");
        r.recovered();
        assert!(r.check().await.ready);
    }

    #[tokio::test]
    async fn an_smtp_upstream_judged_unreachable_by_a_delivery_is_not_ready() {
        let r = Readiness::new(Some(SmtpSettings::new("127.0.0.1")));
        r.recovered();
        r.judge(false, "delivery", "connection refused".into());
        let report = r.check().await;
        assert!(!report.ready, "{report:?}");
        assert_eq!(report.upstream, "unreachable");
        assert!(report.reason.contains("connection refused"), "{report:?}");
        r.judge(true, "delivery", String::new());
        assert!(r.check().await.ready);
    }

    #[tokio::test]
    async fn while_recovering_the_listener_answers_readyz_and_submit_with_503_and_healthz_with_200()
    {
        let r = Readiness::new(None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = super::super::app::recovering_router(Arc::clone(&r));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let status = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            tcp.write_all(req.as_bytes()).await.unwrap();
            let mut text = String::new();
            tcp.read_to_string(&mut text).await.unwrap();
            text.split(' ').nth(1).unwrap_or_default().to_string()
        };
        assert_eq!(status("/readyz").await, "503");
        assert_eq!(status("/v1/submit").await, "503");
        assert_eq!(status("/healthz").await, "200");
        r.recovered();
        assert_eq!(status("/readyz").await, "200");
        server.abort();
    }
}
