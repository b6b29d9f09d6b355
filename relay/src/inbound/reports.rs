//! The [`Mailbox`] of the bounce domain: every message to it is a report,
//! handed to the [`Correlator`]; what matches nothing is logged, counted
//! (`postwire_reports_unmatched_total`) and still answered `250`.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::Mailbox;
use crate::bounces::correlate::{Correlator, Received};
use crate::server::metrics::Metrics;

/// Reports to the bounce domain -> the correlation.
#[derive(Debug)]
pub struct ReportMailbox {
    correlator: Correlator,
    metrics: Arc<Metrics>,
}

impl ReportMailbox {
    /// Hands reports to `correlator`, counting into `metrics`.
    pub fn new(correlator: Correlator, metrics: Arc<Metrics>) -> Self {
        ReportMailbox {
            correlator,
            metrics,
        }
    }
}

impl Mailbox for ReportMailbox {
    fn accepts(&self, rcpt: &str) -> bool {
        self.correlator.verp.is_ours(rcpt)
    }

    fn deliver(
        &self,
        mail_from: String,
        rcpts: Vec<String>,
        bytes: Vec<u8>,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match self
                .correlator
                .receive(&rcpts, &bytes, crate::spool::now_ms())
                .await
            {
                Ok(Received::Matched { key, rcpts }) => {
                    for (rcpt, state) in &rcpts {
                        let what = match state {
                            crate::spool::RcptState::Complained { .. } => "complaint",
                            _ => "bounce",
                        };
                        tracing::info!(token = %key.token, id = %key.id, rcpt = %rcpt, what, "report recorded");
                    }
                    Ok(())
                }
                Ok(Received::Unmatched(why)) => {
                    self.metrics.inc(&self.metrics.reports_unmatched);
                    tracing::info!(from = %mail_from, to = ?rcpts, size = bytes.len(), why = %why, "a report matched no sent message");
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        })
    }
}
