//! The relay's metrics, as Prometheus text at `/metrics`. Written by hand: a
//! few counters and two histograms do not justify a metrics framework.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::live_tokens::ReloadStatus;
use crate::spool::Depth;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{le}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Every metric of the relay.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages acknowledged with `accepted` (duplicates included).
    pub accepted: AtomicU64,
    /// Submissions answered with `rejected`.
    pub rejected: AtomicU64,
    /// Recipients delivered.
    pub delivered: AtomicU64,
    /// Recipient attempts deferred.
    pub deferred: AtomicU64,
    /// Recipients failed for good.
    pub failed: AtomicU64,
    /// WebSocket sessions open now.
    pub sessions: AtomicU64,
    /// Recipients reported bounced after delivery.
    pub bounced: AtomicU64,
    /// Recipients reported as complaints (ARF).
    pub complained: AtomicU64,
    /// Reports received on the inbound SMTP port that matched no sent message.
    pub reports_unmatched: AtomicU64,
    /// Submissions refused because a recipient is suppressed.
    pub suppressed: AtomicU64,
    /// Delivery events dropped for a session that was not reading them.
    pub events_dropped: AtomicU64,
    /// From the `submit` frame's bytes received to `accepted` sent.
    pub accept_latency: Histogram,
    /// One delivery attempt.
    pub delivery_latency: Histogram,
    /// What the DKIM signer did (shared with it).
    pub dkim: std::sync::Arc<crate::dkim::Stats>,
    /// The webhook dispatcher's per-endpoint metrics, once it runs.
    pub webhooks: std::sync::OnceLock<std::sync::Arc<crate::webhooks::stats::Stats>>,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, depth: Depth, tokens: &ReloadStatus) -> String {
        let mut out = String::new();
        let counters = [
            (
                "postwire_accepted_total",
                "Messages acknowledged as durably spooled.",
                &self.accepted,
            ),
            (
                "postwire_rejected_total",
                "Submissions refused.",
                &self.rejected,
            ),
            (
                "postwire_delivered_total",
                "Recipients delivered.",
                &self.delivered,
            ),
            (
                "postwire_deferred_total",
                "Recipient attempts deferred for a retry.",
                &self.deferred,
            ),
            (
                "postwire_failed_total",
                "Recipients failed for good.",
                &self.failed,
            ),
            (
                "postwire_bounced_total",
                "Recipients reported bounced after delivery.",
                &self.bounced,
            ),
            (
                "postwire_complained_total",
                "Recipients reported as complaints (ARF).",
                &self.complained,
            ),
            (
                "postwire_reports_unmatched_total",
                "Reports received on the inbound SMTP port that matched no sent message.",
                &self.reports_unmatched,
            ),
            (
                "postwire_suppressed_total",
                "Submissions refused because a recipient is suppressed.",
                &self.suppressed,
            ),
            (
                "postwire_events_dropped_total",
                "Delivery events dropped for sessions that were not reading them.",
                &self.events_dropped,
            ),
            (
                "postwire_dkim_signed_total",
                "Delivery attempts DKIM-signed.",
                &self.dkim.signed,
            ),
            (
                "postwire_dkim_unsigned_total",
                "Delivery attempts sent unsigned: no DKIM key for the sender domain.",
                &self.dkim.unsigned,
            ),
            (
                "postwire_dkim_failed_total",
                "Delivery attempts deferred: the sender domain's DKIM key could not be used.",
                &self.dkim.failed,
            ),
        ];
        let counters = counters
            .into_iter()
            .map(|(name, help, c)| (name, help, c.load(Ordering::Relaxed)))
            .chain([
                (
                    "postwire_token_reloads_total",
                    "Reloads of tokens.toml that replaced the token set.",
                    tokens.reloads,
                ),
                (
                    "postwire_token_reload_failures_total",
                    "Reloads of tokens.toml that failed and kept the previous set.",
                    tokens.failures,
                ),
            ]);
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        let gauges = [
            (
                "postwire_queue_depth",
                "Messages in the spool with recipients not yet final.",
                depth.queued as u64,
            ),
            (
                "postwire_delivering",
                "Messages being delivered now.",
                depth.in_flight as u64,
            ),
            (
                "postwire_spool_damaged_records",
                "Damaged spool records found at start and moved to spool/corrupt/.",
                depth.damaged as u64,
            ),
            (
                "postwire_sessions",
                "Open WebSocket sessions.",
                self.sessions.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        if let Some(shared) = depth.shared_queued {
            let name = "postwire_spool_shared_queued";
            let _ = writeln!(
                out,
                "# HELP {name} Messages with recipients not yet final over every relay sharing the spool database (the same on every relay: take the max, not the sum).\n# TYPE {name} gauge\n{name} {shared}"
            );
        }
        self.accept_latency.render(
            &mut out,
            "postwire_accept_latency_seconds",
            "From a message's bytes received to its accepted frame.",
        );
        self.delivery_latency.render(
            &mut out,
            "postwire_delivery_latency_seconds",
            "Duration of one delivery attempt.",
        );
        if let Some(webhooks) = self.webhooks.get() {
            webhooks.render(&mut out);
        }
        out
    }
}
