//! The webhook metrics in `/metrics`: per endpoint (label `endpoint`)
//! delivered, failed attempts, given up, queue depth and last HTTP status;
//! and events that could not be queued or were missed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Per-endpoint counters for `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct EndpointStats {
    pub(super) delivered: u64,
    pub(super) failed_attempts: u64,
    pub(super) given_up: u64,
    pub(super) pending: u64,
    /// Last HTTP status; 0 after a connection error; `None` before any attempt.
    pub(super) last_status: Option<u16>,
}

/// The webhook metrics.
#[derive(Debug, Default)]
pub struct Stats {
    endpoints: Mutex<BTreeMap<String, EndpointStats>>,
    /// Events that could not be written to the outbox.
    pub(super) queue_errors: AtomicU64,
    /// Events missed because the listener fell behind the spool.
    pub(super) missed: AtomicU64,
}

impl Stats {
    pub(super) fn with(&self, endpoint: &str, f: impl FnOnce(&mut EndpointStats)) {
        let mut m = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry(endpoint.to_string()).or_default());
    }

    /// Appends the Prometheus text of the webhook metrics to `out`.
    pub fn render(&self, out: &mut String) {
        let m = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        type Get = fn(&EndpointStats) -> Option<u64>;
        let series: [(&str, &str, &str, Get); 5] = [
            (
                "postwire_webhook_delivered_total",
                "counter",
                "Webhook events delivered (2xx).",
                |s| Some(s.delivered),
            ),
            (
                "postwire_webhook_failed_attempts_total",
                "counter",
                "Webhook attempts that failed (non-2xx or no answer).",
                |s| Some(s.failed_attempts),
            ),
            (
                "postwire_webhook_given_up_total",
                "counter",
                "Webhook events given up after the retention window.",
                |s| Some(s.given_up),
            ),
            (
                "postwire_webhook_queue_depth",
                "gauge",
                "Webhook events waiting in the outbox.",
                |s| Some(s.pending),
            ),
            (
                "postwire_webhook_last_status",
                "gauge",
                "HTTP status of the last attempt (0: no answer).",
                |s| s.last_status.map(u64::from),
            ),
        ];
        for (name, kind, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (ep, s) in m.iter() {
                if let Some(v) = get(s) {
                    let _ = writeln!(out, "{name}{{endpoint=\"{ep}\"}} {v}");
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP postwire_webhook_queue_errors_total Webhook events that could not be written to the outbox.\n\
             # TYPE postwire_webhook_queue_errors_total counter\npostwire_webhook_queue_errors_total {}\n\
             # HELP postwire_webhook_missed_total Spool events the webhook listener fell behind on.\n\
             # TYPE postwire_webhook_missed_total counter\npostwire_webhook_missed_total {}",
            self.queue_errors.load(Ordering::Relaxed),
            self.missed.load(Ordering::Relaxed)
        );
    }
}
