//! A received report -> the message and recipient it is about -> a
//! `bounced` or `complained` state recorded with the message's status, and
//! a suppression when it was a hard bounce or a complaint.
//!
//! Matching, in order: an envelope recipient of the report that is one of
//! our VERP return paths (the message tag finds the message among those the
//! spool knows, the recipient tag the recipient); otherwise the original
//! Message-ID in the report (a message delivered since the relay started),
//! with the recipient named in the report. A report that matches nothing is
//! logged and counted ([`Received::Unmatched`]); it is never an error to the
//! sending MTA.

use std::sync::Arc;

use postwire_core::report::{Action, RecipientStatus, Report, ReportKind, parse_report};

use super::deliver::MessageIds;
use super::suppress::{Reason, Suppression, SuppressionStore};
use super::verp::Verp;
use crate::spool::{BounceKind, Key, RcptState, Spool, SpoolError};

/// What became of a received report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// Recorded for these recipients of this message.
    Matched {
        /// The message.
        key: Key,
        /// The recipients and their new states.
        rcpts: Vec<(String, RcptState)>,
    },
    /// Nothing in it names a message the relay knows, or it reports no
    /// failure (a `delivered` or `relayed` DSN).
    Unmatched(String),
}

/// Errors that make the inbound server ask the sender to try again (4xx):
/// a report that matched could not be recorded durably.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CorrelateError {
    /// The spool could not record the report.
    #[error("cannot record the report: {0}")]
    Spool(#[from] SpoolError),
    /// The suppression list could not be written.
    #[error("cannot record the suppression: {0}")]
    Suppression(#[from] super::suppress::SuppressionError),
}

/// Everything the correlation needs.
pub struct Correlator {
    /// The messages.
    pub spool: Arc<dyn Spool>,
    /// The return paths.
    pub verp: Arc<Verp>,
    /// Message-IDs of recent deliveries.
    pub ids: Arc<MessageIds>,
    /// The suppression list.
    pub suppressions: Arc<dyn SuppressionStore>,
}

impl std::fmt::Debug for Correlator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Correlator")
            .field("verp", &self.verp)
            .finish_non_exhaustive()
    }
}

fn same_address(a: &str, b: &str) -> bool {
    let clean = |s: &str| {
        s.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_lowercase()
    };
    clean(a) == clean(b)
}

/// The state a report gives a recipient; `None` when it reports no failure.
fn state_of(report: &Report, status: Option<&RecipientStatus>, now: u64) -> Option<RcptState> {
    if report.kind == ReportKind::Feedback {
        return Some(RcptState::Complained {
            feedback_type: report
                .feedback
                .as_ref()
                .and_then(|f| f.feedback_type.clone()),
            at_ms: now,
        });
    }
    let r = status?;
    if matches!(
        r.action,
        Some(Action::Delivered | Action::Relayed | Action::Expanded)
    ) {
        return None;
    }
    let bounce = if r.is_permanent() {
        BounceKind::Hard
    } else if r.is_transient() {
        BounceKind::Soft
    } else {
        return None;
    };
    let status = r.status.clone().unwrap_or_else(|| match bounce {
        BounceKind::Hard => "5.0.0".into(),
        BounceKind::Soft => "4.0.0".into(),
    });
    Some(RcptState::Bounced {
        bounce,
        status,
        diagnostic: r.diagnostic_code.clone(),
        at_ms: now,
    })
}

/// The report's entry for `rcpt`, else its only entry.
fn entry_for<'a>(report: &'a Report, rcpt: &str) -> Option<&'a RecipientStatus> {
    report
        .recipients
        .iter()
        .find(|r| {
            r.final_recipient
                .as_deref()
                .is_some_and(|a| same_address(a, rcpt))
                || r.original_recipient
                    .as_deref()
                    .is_some_and(|a| same_address(a, rcpt))
        })
        .or(match report.recipients.as_slice() {
            [only] => Some(only),
            _ => None,
        })
}

impl Correlator {
    /// The message and recipient a VERP return path names.
    async fn by_verp(
        &self,
        envelope_rcpts: &[String],
    ) -> Result<Option<(Key, String)>, SpoolError> {
        for addr in envelope_rcpts {
            let Some(tags) = self.verp.parse(addr) else {
                continue;
            };
            // Delivered since the start: remembered; otherwise a search of
            // the messages the spool knows.
            let key = match self.ids.by_tag(&tags.message) {
                Some(k) => k,
                None => {
                    let verp = &self.verp;
                    let wanted = tags.message.clone();
                    let matches = move |k: &Key| verp.message_tag(k) == wanted;
                    match self.spool.find(&matches).await? {
                        Some(k) => k,
                        None => return Ok(None),
                    }
                }
            };
            let Some(rcpts) = self.spool.status(&key).await? else {
                return Ok(None);
            };
            let rcpt = rcpts
                .into_iter()
                .map(|r| r.rcpt)
                .find(|r| self.verp.rcpt_tag(&key, r) == tags.rcpt);
            return Ok(rcpt.map(|r| (key, r)));
        }
        Ok(None)
    }

    /// Reads a report that arrived for `envelope_rcpts` and records what it says.
    pub async fn receive(
        &self,
        envelope_rcpts: &[String],
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<Received, CorrelateError> {
        let report = match parse_report(bytes) {
            Ok(r) => r,
            Err(e) => return Ok(Received::Unmatched(format!("not a report: {e}"))),
        };
        if report.kind == ReportKind::Unknown {
            return Ok(Received::Unmatched("no report found in the message".into()));
        }
        // (key, recipient, the report's entry for it)
        let mut targets: Vec<(Key, String)> = Vec::new();
        if let Some(found) = self
            .by_verp(envelope_rcpts)
            .await
            .map_err(CorrelateError::Spool)?
        {
            targets.push(found);
        } else if let Some(key) = report
            .original_message_id
            .as_deref()
            .and_then(|id| self.ids.get(id))
        {
            let known = self
                .spool
                .status(&key)
                .await
                .map_err(CorrelateError::Spool)?
                .unwrap_or_default();
            let named: Vec<String> = match (&report.kind, &report.feedback) {
                (ReportKind::Feedback, Some(f)) if !f.original_rcpt_to.is_empty() => {
                    f.original_rcpt_to.clone()
                }
                _ => report
                    .recipients
                    .iter()
                    .filter_map(|r| r.original_recipient.clone().or(r.final_recipient.clone()))
                    .collect(),
            };
            for r in &known {
                if named.iter().any(|n| same_address(n, &r.rcpt))
                    || (named.is_empty() && known.len() == 1)
                {
                    targets.push((key.clone(), r.rcpt.clone()));
                }
            }
        }
        let Some(key) = targets.first().map(|(k, _)| k.clone()) else {
            return Ok(Received::Unmatched(
                "no VERP address or known Message-ID".into(),
            ));
        };
        let mut recorded = Vec::new();
        for (key, rcpt) in targets {
            let Some(state) = state_of(&report, entry_for(&report, &rcpt), now_ms) else {
                continue;
            };
            if !self
                .spool
                .report(key.clone(), rcpt.clone(), state.clone())
                .await?
            {
                continue;
            }
            let suppression = match &state {
                RcptState::Bounced {
                    bounce: BounceKind::Hard,
                    status,
                    diagnostic,
                    ..
                } => Some((
                    Reason::HardBounce,
                    match diagnostic {
                        Some(d) => format!("{status} ({d})"),
                        None => status.clone(),
                    },
                )),
                RcptState::Complained { feedback_type, .. } => Some((
                    Reason::Complaint,
                    feedback_type.clone().unwrap_or_else(|| "abuse".into()),
                )),
                _ => None,
            };
            if let Some((reason, detail)) = suppression {
                self.suppressions.add(Suppression {
                    token: key.token.clone(),
                    address: rcpt.clone(),
                    reason,
                    detail,
                    message_id: key.id.clone(),
                    at_ms: now_ms,
                })?;
            }
            recorded.push((rcpt, state));
        }
        if recorded.is_empty() {
            return Ok(Received::Unmatched(format!(
                "message {} matched, but the report names no failure of a delivered recipient",
                key.id
            )));
        }
        Ok(Received::Matched {
            key,
            rcpts: recorded,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bounces::suppress::FileSuppressions;
    use crate::spool::{Envelope, FsSpool, MessageMeta, Outcome, SpoolOptions, Submission, now_ms};

    fn dsn(rcpt: &str, action: &str, status: &str, message_id: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@mx.example.org\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; mx.example.org\r\n\r\n\
             Final-Recipient: rfc822; {rcpt}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n\
             --b\r\nContent-Type: text/rfc822-headers\r\n\r\n\
             Message-ID: <{message_id}>\r\n\r\n--b--\r\n"
        )
        .into_bytes()
    }

    /// A spool with message `m1` delivered to two recipients, and a correlator
    /// that remembers nothing (as after a restart) unless told.
    async fn setup(dir: &std::path::Path) -> Correlator {
        let spool = FsSpool::open(&dir.join("spool"), SpoolOptions::default()).unwrap();
        let key = Key {
            token: "app".into(),
            id: "m1".into(),
        };
        spool
            .accept(Submission {
                meta: MessageMeta {
                    key,
                    envelope: Envelope {
                        mail_from: "a@example.com".into(),
                        rcpt_to: vec!["bob@example.org".into(), "carl@example.org".into()],
                        ..Envelope::default()
                    },
                    received_ms: now_ms(),
                },
                bytes: b"Subject: x\r\n\r\nx\r\n".to_vec(),
            })
            .await
            .unwrap();
        let lease = tokio::time::timeout(Duration::from_secs(5), spool.next())
            .await
            .unwrap()
            .unwrap();
        let outcomes = lease
            .envelope
            .rcpt_to
            .iter()
            .map(|r| (r.clone(), Outcome::Delivered("250 ok".into())))
            .collect();
        spool.settle(lease, outcomes).await.unwrap();
        Correlator {
            spool: Arc::new(spool),
            verp: Arc::new(Verp::with_secret(b"k", "b.example.com")),
            ids: Arc::new(MessageIds::default()),
            suppressions: Arc::new(FileSuppressions::open(dir).unwrap()),
        }
    }

    fn key() -> Key {
        Key {
            token: "app".into(),
            id: "m1".into(),
        }
    }

    #[tokio::test]
    async fn a_verp_address_finds_its_message_in_the_spool_and_a_hard_bounce_suppresses() {
        let dir = tempfile::tempdir().unwrap();
        let c = setup(dir.path()).await;
        let to = c.verp.address(&key(), "carl@example.org");
        // The report names bob, but the return path is carl's: the address wins,
        // and the report's only entry gives the status.
        let got = c
            .receive(&[to], &dsn("bob@example.org", "failed", "5.1.1", "x@y"), 5)
            .await
            .unwrap();
        let Received::Matched { key: k, rcpts } = got else {
            panic!("{got:?}")
        };
        assert_eq!(k, key());
        assert_eq!(rcpts.len(), 1);
        assert_eq!(rcpts[0].0, "carl@example.org");
        assert!(matches!(
            &rcpts[0].1,
            RcptState::Bounced { bounce: BounceKind::Hard, status, .. } if status == "5.1.1"
        ));
        assert!(c.suppressions.get("app", "carl@example.org").is_some());
        assert!(c.suppressions.get("app", "bob@example.org").is_none());
    }

    #[tokio::test]
    async fn soft_success_foreign_and_unknown_reports_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let c = setup(dir.path()).await;
        let bob = c.verp.address(&key(), "bob@example.org");
        let soft = c
            .receive(
                std::slice::from_ref(&bob),
                &dsn("bob@example.org", "delayed", "4.4.1", "x@y"),
                5,
            )
            .await
            .unwrap();
        assert!(
            matches!(&soft, Received::Matched { rcpts, .. } if matches!(rcpts[0].1, RcptState::Bounced { bounce: BounceKind::Soft, .. })),
            "{soft:?}"
        );
        assert!(
            c.suppressions.get("app", "bob@example.org").is_none(),
            "a soft bounce does not suppress"
        );
        let success = c
            .receive(
                std::slice::from_ref(&bob),
                &dsn("bob@example.org", "delivered", "2.0.0", "x@y"),
                5,
            )
            .await
            .unwrap();
        assert!(matches!(success, Received::Unmatched(_)), "{success:?}");
        let forged = format!(
            "bounces+{}.00000000@b.example.com",
            c.verp.message_tag(&key())
        );
        let r = c
            .receive(
                &[forged],
                &dsn("bob@example.org", "failed", "5.1.1", "x@y"),
                5,
            )
            .await
            .unwrap();
        assert!(
            matches!(r, Received::Unmatched(_)),
            "a wrong recipient tag: {r:?}"
        );
        let r = c
            .receive(&["postmaster@b.example.com".into()], b"\r\n", 5)
            .await
            .unwrap();
        assert!(matches!(r, Received::Unmatched(_)), "{r:?}");
    }

    #[tokio::test]
    async fn without_a_verp_address_the_original_message_id_finds_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let c = setup(dir.path()).await;
        c.ids.insert("<m1@example.com>", &key());
        let r = c
            .receive(
                &["postmaster@b.example.com".into()],
                &dsn("Bob@Example.org", "failed", "5.2.2", "m1@example.com"),
                5,
            )
            .await
            .unwrap();
        let Received::Matched { rcpts, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(rcpts.len(), 1);
        assert_eq!(rcpts[0].0, "bob@example.org");
        let st = c.spool.status(&key()).await.unwrap().unwrap();
        assert!(matches!(st[0].state, RcptState::Bounced { .. }));
        assert!(matches!(st[1].state, RcptState::Delivered { .. }));
    }
}
