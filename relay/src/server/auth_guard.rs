//! Failed authentications per client address: after [`MAX_FAILURES`]
//! unknown tokens from one address within [`WINDOW`], every further attempt
//! from it is refused unchecked until the window that began with its first
//! failure has passed, so a guesser gets at most [`MAX_FAILURES`] guesses a
//! window per address (an IPv6 client per /64, the block one subscriber
//! usually holds).
//!
//! Both ways of authenticating count (the `Authorization: Bearer` header at
//! the upgrade and the `auth` frame), and both are refused while locked: at
//! the upgrade with HTTP 429 and `Retry-After`, in an `auth` frame with an
//! `error` frame of code `rate_limited`. A success does not clear the count.
//!
//! Memory is bounded: at most [`MAX_TRACKED`] addresses are remembered;
//! when full, expired entries are dropped first, then the oldest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failed authentications allowed per address and window.
pub const MAX_FAILURES: u32 = 10;
/// Length of the window that starts with an address's first failure.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most addresses remembered at once.
pub const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    since: Instant,
}

/// The failure counts of client addresses; see the module doc.
#[derive(Debug)]
pub struct AuthFailures {
    limit: u32,
    window: Duration,
    by_addr: Mutex<HashMap<IpAddr, Entry>>,
}

impl Default for AuthFailures {
    fn default() -> Self {
        AuthFailures::new(MAX_FAILURES, WINDOW)
    }
}

/// The address failures are counted under: IPv4 as is (also when written as
/// an IPv4-mapped IPv6 address), IPv6 by its /64 prefix.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
    }
}

impl AuthFailures {
    /// At most `limit` failures per address within `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        AuthFailures {
            limit: limit.max(1),
            window,
            by_addr: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while `ip` has used up its failures: refuse without
    /// checking, and say to retry after `wait`.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let map = self.by_addr.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(&key(ip)) {
            Some(e) if e.failures >= self.limit => {
                let end = e.since + self.window;
                if now < end { Err(end - now) } else { Ok(()) }
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of `ip`; returns its failures in the current window.
    pub fn record(&self, ip: IpAddr, now: Instant) -> u32 {
        let mut map = self.by_addr.lock().unwrap_or_else(PoisonError::into_inner);
        let k = key(ip);
        if !map.contains_key(&k) && map.len() >= MAX_TRACKED {
            let window = self.window;
            map.retain(|_, e| now.saturating_duration_since(e.since) < window);
            if map.len() >= MAX_TRACKED
                && let Some(oldest) = map.iter().min_by_key(|(_, e)| e.since).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let e = map.entry(k).or_insert(Entry {
            failures: 0,
            since: now,
        });
        if now.saturating_duration_since(e.since) >= self.window {
            *e = Entry {
                failures: 0,
                since: now,
            };
        }
        e.failures = e.failures.saturating_add(1);
        e.failures
    }

    /// Number of addresses remembered.
    pub fn tracked(&self) -> usize {
        self.by_addr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_locked_after_its_failures_until_the_window_ends() {
        let g = AuthFailures::new(3, Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for n in 1..=3 {
            assert!(g.check(a, t0).is_ok());
            assert_eq!(g.record(a, t0), n);
        }
        let wait = g.check(a, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(g.check(b, t0).is_ok(), "counted per address");
        assert!(g.check(a, t0 + Duration::from_secs(60)).is_ok());
        assert_eq!(g.record(a, t0 + Duration::from_secs(60)), 1, "a new window");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let g = AuthFailures::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        g.record("2001:db8:1:2::1".parse().unwrap(), t0);
        g.record("2001:db8:1:2:ffff::9".parse().unwrap(), t0);
        assert!(g.check("2001:db8:1:2::77".parse().unwrap(), t0).is_err());
        assert!(g.check("2001:db8:1:3::1".parse().unwrap(), t0).is_ok());
        g.record("::ffff:192.0.2.7".parse().unwrap(), t0);
        g.record("192.0.2.7".parse().unwrap(), t0);
        assert!(g.check("192.0.2.7".parse().unwrap(), t0).is_err());
    }

    #[test]
    fn the_table_stays_bounded_under_many_addresses() {
        let g = AuthFailures::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 100) {
            g.record(
                IpAddr::V4(i.into()),
                t0 + Duration::from_millis(u64::from(i % 7)),
            );
        }
        assert!(g.tracked() <= MAX_TRACKED);
    }
}
