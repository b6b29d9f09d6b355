//! Per-token rate limits: a token bucket per token name, shared by every
//! connection of that token, refilled continuously at `rate_per_minute`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every token.
#[derive(Debug, Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimits {
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
