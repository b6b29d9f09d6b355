//! Per-token rate limits: a token bucket per token name, shared by every
//! connection of that token, refilled continuously at `rate_per_minute`.
//!
//! With the PostgreSQL spool ([`RateLimits::shared`]) the budget is shared
//! by every relay on the database instead: [`RateLimits::acquire`] counts in
//! `postwire_rate` (`spool::pg::rate`, a fixed window per minute). When the
//! database does not answer, it falls back to this relay's own bucket (each
//! relay then allows the whole rate; logged once per outage) rather than
//! refusing every submission: the accept that follows needs the database
//! anyway, and a limit is not worth losing mail over.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::spool::pg::rate::PgRate;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every token.
#[derive(Debug, Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<String, Bucket>>,
    /// The counters shared by every relay, if any.
    shared: Option<PgRate>,
    /// Whether the last shared count failed (to log an outage once).
    failing: AtomicBool,
}

impl RateLimits {
    /// Limits counted in the database, shared by every relay on it.
    pub fn shared(rate: PgRate) -> Self {
        RateLimits {
            shared: Some(rate),
            ..RateLimits::default()
        }
    }

    /// Takes one message of `token`'s budget: the shared one if there is one
    /// and the database answers, else this relay's bucket ([`Self::take`]).
    /// `Err` says how long until one is available.
    pub async fn acquire(
        &self,
        token: &str,
        per_minute: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        if let Some(rate) = &self.shared {
            match rate.take(token, per_minute).await {
                Ok(answer) => {
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("rate limits are counted across relays again");
                    }
                    return answer;
                }
                Err(e) => {
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e,
                            "cannot count against the shared rate limits; this relay counts alone until the database answers");
                    }
                }
            }
        }
        self.take(token, per_minute, now)
    }

    /// Takes one message from `token`'s bucket (capacity and refill:
    /// `per_minute`). `Err` says how long until one is available.
    pub fn take(&self, token: &str, per_minute: u32, now: Instant) -> Result<(), Duration> {
        let cap = f64::from(per_minute.max(1));
        let per_sec = cap / 60.0;
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(token.to_string()).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_sec).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / per_sec))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_capacity_then_refills_over_time() {
        let r = RateLimits::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(r.take("a", 3, t0).is_ok());
        }
        let wait = r.take("a", 3, t0).unwrap_err();
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(r.take("b", 3, t0).is_ok(), "buckets are per token");
        assert!(r.take("a", 3, t0 + Duration::from_secs(20)).is_ok());
    }
}
