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

use std::time::Duration;

use deadpool_postgres::Pool;

/// The counter could not be reached or updated.
#[derive(Debug, thiserror::Error)]
#[error("shared rate counter: {0}")]
pub struct RateError(String);

/// The per-minute counters of one database.
#[derive(Clone)]
pub struct PgRate {
    pool: Pool,
}

impl std::fmt::Debug for PgRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgRate")
    }
}

impl PgRate {
    /// The counters behind `pool` (migrated).
    pub fn new(pool: Pool) -> Self {
        PgRate { pool }
    }

    /// Counts one submission of `token` in the current minute. `Ok(Ok)`: it
    /// is within `per_minute`; `Ok(Err(wait))`: over it, `wait` is the time
    /// to the next minute.
    pub async fn take(
        &self,
        token: &str,
        per_minute: u32,
    ) -> Result<Result<(), Duration>, RateError> {
        let err = |e: &dyn std::fmt::Display| RateError(e.to_string());
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| err(&super::describe_pool(&e)))?;
        let count_one = client
            .prepare_cached(
                "INSERT INTO postwire_rate AS r (token, minute, count)
                 VALUES ($1, postwire_now_ms() / 60000, 1)
                 ON CONFLICT (token, minute) DO UPDATE SET count = r.count + 1
                 RETURNING r.count, r.minute, postwire_now_ms()",
            )
            .await
            .map_err(|e| err(&super::describe(&e)))?;
        let row = client
            .query_one(&count_one, &[&token])
            .await
            .map_err(|e| err(&super::describe(&e)))?;
        let (count, minute, now): (i32, i64, i64) = (row.get(0), row.get(1), row.get(2));
        if count == 1 {
            // The token's first submission of this minute: its older rows go.
            client
                .execute(
                    "DELETE FROM postwire_rate WHERE token = $1 AND minute < $2",
                    &[&token, &minute],
                )
                .await
                .map_err(|e| err(&super::describe(&e)))?;
        }
        if i64::from(count) <= i64::from(per_minute.max(1)) {
            Ok(Ok(()))
        } else {
            let wait = ((minute + 1) * 60_000 - now).clamp(1, 60_000);
            Ok(Err(Duration::from_millis(wait.unsigned_abs())))
        }
    }
}
