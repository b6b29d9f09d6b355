//! The delivery side of the spool: the [`Deliver`] trait the runner calls,
//! and [`TransportDeliver`], which adapts any [`Transport`] of the SMTP module
//! (the SMTP pool, the pickup directory) by turning its result (a
//! [`DeliveryReport`] or a [`Failure`]) into one [`Outcome`] per recipient.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{Lease, Outcome};
use crate::delivery::{DeliveryReport, Failure, Transport};
use postwire_core::envelope::Envelope;

/// Something that can take a leased message and say, per recipient, what
/// became of it.
pub trait Deliver: Send + Sync + 'static {
    /// Delivers `lease.bytes` to `lease.envelope.rcpt_to`. Returns one
    /// outcome per recipient; a recipient missing from the answer counts as
    /// a transient failure.
    fn deliver<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Vec<(String, Outcome)>>;

    /// How many deliveries may run at once (the number of upstream connections).
    fn concurrency(&self) -> usize;

    /// A one-line description for the start-up log (never with a password).
    fn describe(&self) -> String;
}

/// A [`Transport`] as a [`Deliver`].
#[derive(Debug)]
pub struct TransportDeliver<T> {
    transport: T,
    concurrency: usize,
    description: String,
}

impl<T: Transport + 'static> TransportDeliver<T> {
    /// Wraps `transport`, allowing `concurrency` deliveries at once.
    pub fn new(transport: T, concurrency: usize, description: impl Into<String>) -> Self {
        TransportDeliver {
            transport,
            concurrency: concurrency.max(1),
            description: description.into(),
        }
    }
}

/// One outcome per recipient of `envelope` from a transport's result.
pub fn outcomes<E: Failure>(
    envelope: &Envelope,
    result: Result<DeliveryReport, E>,
) -> Vec<(String, Outcome)> {
    match result {
        Ok(report) => report
            .recipients
            .iter()
            .map(|r| {
                let outcome = if r.is_accepted() {
                    Outcome::Delivered(report.reply.to_string())
                } else if r.reply.is_transient() {
                    Outcome::Transient(r.reply.to_string())
                } else {
                    Outcome::Permanent(r.reply.to_string())
                };
                (r.recipient.clone(), outcome)
            })
            .collect(),
        Err(e) if !e.refused_recipients().is_empty() => e
            .refused_recipients()
            .iter()
            .map(|r| {
                let o = if r.reply.is_transient() {
                    Outcome::Transient(r.reply.to_string())
                } else {
                    Outcome::Permanent(r.reply.to_string())
                };
                (r.recipient.clone(), o)
            })
            .collect(),
        Err(e) => {
            let text = e.to_string();
            let transient = e.is_transient();
            envelope
                .rcpt_to
                .iter()
                .map(|r| {
                    let o = if transient {
                        Outcome::Transient(text.clone())
                    } else {
                        Outcome::Permanent(text.clone())
                    };
                    (r.clone(), o)
                })
                .collect()
        }
    }
}

impl<T: Transport + 'static> Deliver for TransportDeliver<T> {
    fn deliver<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Vec<(String, Outcome)>> {
        Box::pin(async move {
            let envelope = Envelope {
                mail_from: lease.envelope.mail_from.clone(),
                rcpt_to: lease.envelope.rcpt_to.clone(),
                dsn: lease.envelope.dsn.clone(),
                require_tls: lease.envelope.require_tls,
            };
            let bytes: Arc<[u8]> = Arc::from(lease.bytes.as_slice());
            let result = self.transport.send_bytes(envelope.clone(), bytes).await;
            outcomes(&envelope, result)
        })
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{RecipientStatus, SmtpReply};
    use crate::smtp::SmtpError;

    fn env() -> Envelope {
        Envelope {
            mail_from: "a@x.org".into(),
            rcpt_to: vec!["ok@y.org".into(), "later@y.org".into(), "no@y.org".into()],
            ..Envelope::default()
        }
    }

    #[test]
    fn a_report_gives_each_recipient_its_own_outcome() {
        let rs = |r: &str, code| RecipientStatus {
            recipient: r.into(),
            reply: SmtpReply::new(code, "x"),
        };
        let report = DeliveryReport {
            recipients: vec![
                rs("ok@y.org", 250),
                rs("later@y.org", 451),
                rs("no@y.org", 550),
            ],
            reply: SmtpReply::new(250, "2.0.0 queued"),
            bytes: 10,
            warnings: Vec::new(),
        };
        let o = outcomes::<SmtpError>(&env(), Ok(report));
        assert!(
            matches!(&o[0], (r, Outcome::Delivered(t)) if r == "ok@y.org" && t.contains("queued"))
        );
        assert!(matches!(&o[1], (r, Outcome::Transient(_)) if r == "later@y.org"));
        assert!(matches!(&o[2], (r, Outcome::Permanent(_)) if r == "no@y.org"));
    }

    #[test]
    fn a_connection_error_defers_every_recipient() {
        let o = outcomes(&env(), Err(SmtpError::PoolClosed));
        assert_eq!(o.len(), 3);
        assert!(o.iter().all(|(_, o)| matches!(o, Outcome::Transient(_))));
    }
}
