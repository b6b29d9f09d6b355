//! Rate limits across relays: the submissions of each token counted per
//! minute of the database's clock in `postwire_rate`, one upsert per
//! submission, so every relay on the database takes from one budget.
//!
//! The window is fixed: at most `rate_per_minute` submissions of a token are
//! counted within each whole minute (`postwire_now_ms() / 60000`); one
//! refused waits until the next minute. (The relay on its own refills a token
//! bucket continuously; a fixed window can let up to twice the rate through
//! around a minute's boundary, and needs nothing but one counter row.)
//!
//! `postwire_rate` is `UNLOGGED` (migration 2): counting does not wait for a
//! WAL flush, and a database crash only forgets the current counts.
//! A token's rows of past minutes are deleted when its next minute begins.
//!
//! A relay takes its share in blocks: one round trip counts a block of
//! [`block_for`] submissions (1 for a limit under 128 a minute, at most 64)
//! and is granted what of it was still within the minute's budget; the
//! rest of the grant is spent locally within the same minute, and once the
//! budget is spent the relay refuses locally until the minute ends (a flood
//! of refused submissions does not reach the database). The limit still
//! holds across relays; what a relay has not spent when the minute ends is
//! lost (at most one block per relay per minute is under-admitted).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

/// Submissions one round trip takes from a token's budget of `per_minute`.
pub fn block_for(per_minute: u32) -> u32 {
    (per_minute / 64).clamp(1, 64)
}

/// What is left of a block taken earlier in the current minute.
#[derive(Debug, Clone, Copy)]
struct Held {
    left: u32,
    /// The minute's budget is spent: refused here until `until`.
    exhausted: bool,
    /// The end of the minute the block was counted in (this relay's clock).
    until: Instant,
}

/// The counter could not be reached or updated.
#[derive(Debug, thiserror::Error)]
#[error("shared rate counter: {0}")]
pub struct RateError(String);

/// The per-minute counters of one database.
#[derive(Clone)]
pub struct PgRate {
    pool: Pool,
    held: std::sync::Arc<Mutex<HashMap<String, Held>>>,
}

impl std::fmt::Debug for PgRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgRate")
    }
}

impl PgRate {
    /// The counters behind `pool` (migrated).
    pub fn new(pool: Pool) -> Self {
        PgRate {
            pool,
            held: std::sync::Arc::default(),
        }
    }

    /// Answers from what this relay holds of `token`'s current minute: one
    /// of a block taken earlier, or a refusal when the minute's budget is
    /// spent; `None`: ask the database.
    fn answer_from_held(&self, token: &str) -> Option<Result<(), Duration>> {
        let now = Instant::now();
        let mut held = super::group::lock(&self.held);
        let h = held.get_mut(token)?;
        if now >= h.until {
            held.remove(token);
            return None;
        }
        if h.left > 0 {
            h.left -= 1;
            return Some(Ok(()));
        }
        h.exhausted.then(|| Err(h.until - now))
    }

    /// Counts one submission of `token` in the current minute. `Ok(Ok)`: it
    /// is within `per_minute`; `Ok(Err(wait))`: over it, `wait` is the time
    /// to the next minute.
    pub async fn take(
        &self,
        token: &str,
        per_minute: u32,
    ) -> Result<Result<(), Duration>, RateError> {
        if let Some(answer) = self.answer_from_held(token) {
            return Ok(answer);
        }
        let limit = i64::from(per_minute.max(1));
        let block = block_for(per_minute);
        let err = |e: &dyn std::fmt::Display| RateError(e.to_string());
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| err(&super::describe_pool(&e)))?;
        // Counts a whole block (the counter may pass the limit: what is
        // counted past it is refused, here or at the other relays).
        let count_block = client
            .prepare_cached(
                "INSERT INTO postwire_rate AS r (token, minute, count)
                 VALUES ($1, postwire_now_ms() / 60000, $2)
                 ON CONFLICT (token, minute) DO UPDATE
                   SET count = least(r.count + $2, 2000000000)
                 RETURNING r.count, r.minute, postwire_now_ms()",
            )
            .await
            .map_err(|e| err(&super::describe(&e)))?;
        let block_i32 = i32::try_from(block).unwrap_or(1);
        let row = client
            .query_one(&count_block, &[&token, &block_i32])
            .await
            .map_err(|e| err(&super::describe(&e)))?;
        let (count, minute, now): (i32, i64, i64) = (row.get(0), row.get(1), row.get(2));
        let before = i64::from(count) - i64::from(block);
        let granted = (limit - before).clamp(0, i64::from(block));
        let to_minute_end = Duration::from_millis(
            ((minute + 1) * 60_000 - now)
                .clamp(1, 60_000)
                .unsigned_abs(),
        );
        super::group::lock(&self.held).insert(
            token.to_string(),
            Held {
                left: u32::try_from(granted - 1).unwrap_or(0),
                exhausted: granted < i64::from(block),
                until: Instant::now() + to_minute_end,
            },
        );
        if before <= 0 {
            // The token's first block of this minute: its older rows go.
            client
                .execute(
                    "DELETE FROM postwire_rate WHERE token = $1 AND minute < $2",
                    &[&token, &minute],
                )
                .await
                .map_err(|e| err(&super::describe(&e)))?;
        }
        if granted > 0 {
            Ok(Ok(()))
        } else {
            Ok(Err(to_minute_end))
        }
    }
}
