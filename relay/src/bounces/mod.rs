//! Bounces and complaints back to the sender (docs/bounces.md).
//!
//! This module owns the way a report finds its way back to the message and
//! recipient it is about, and what follows from it:
//!
//! - [`verp`]: the return path the relay sends with when a bounce domain is
//!   configured, `bounces+<message tag>.<recipient tag>@BOUNCE_DOMAIN`, one
//!   SMTP transaction per recipient; the tags are keyed hashes (HMAC-SHA256
//!   with a secret in the data directory), so nobody can forge a bounce for
//!   a recipient of someone else's message;
//! - [`deliver`]: the [`Deliver`](crate::spool::deliver::Deliver) wrapper
//!   that applies it and remembers each message's Message-ID (the fallback
//!   when a report came back to another address);
//! - [`correlate`]: a received report (parsed by core's
//!   [`postwire_core::report`]) -> the message, the recipient and the new
//!   state (`bounced` hard/soft, `complained`), recorded with the message's
//!   status in the spool and published as an event;
//! - [`suppress`]: the per-token suppression list that refuses recipients
//!   that hard-bounced or complained, behind the [`suppress::SuppressionStore`]
//!   trait (a JSON file in the data directory, rewritten atomically).
//!
//! The SMTP side that receives reports is [`crate::inbound`].

pub mod correlate;
pub mod deliver;
pub mod suppress;
pub mod verp;

/// Formats milliseconds since the Unix epoch as an RFC 3339 UTC timestamp
/// (`2026-12-05T02:04:24Z`).
pub fn rfc3339(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(0);
    let (y, m, d) = postwire_core::tnef::attributes::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_in_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_796_436_264_000), "2026-12-05T02:04:24Z");
    }
}
