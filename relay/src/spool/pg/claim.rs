//! Claims: how a relay's idle workers take due messages from the shared
//! tables, several messages per statement.
//!
//! One claim statement runs at a time per relay. A worker that asks for work
//! while it runs waits for it, and the next statement claims for every
//! worker then waiting (up to [`CLAIM_BATCH`]): under load the workers that
//! finish a transfer during one claim's round trip are served by the next
//! one, so the database runs one statement and one commit for a group
//! instead of one each. Nothing is claimed for a worker that is not waiting,
//! so a claimed lease waits for a worker only while the statement's result
//! is handed out; leases still unclaimed by a worker when the spool closes
//! are released at once (otherwise they would wait for their expiry).
//!
//! Each claimed message gets its own fence from the sequence (see the
//! module doc of [`super`]), so a group is only a way of asking: every lease
//! in it is settled, renewed and fenced on its own.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::ops::{to_i64, to_u64};
use super::{Inner, db};
use super::{group, settle};
use crate::spool::{Envelope, Key, Lease, SpoolError};

/// How often an idle worker looks for due work without a wake-up.
const POLL: Duration = Duration::from_secs(1);

/// Most messages one claim statement takes.
pub(super) const CLAIM_BATCH: usize = 16;

/// The claim statement for each group size 1, 2, 4, … [`CLAIM_BATCH`]: the
/// `LIMIT` is written into it, not a parameter. With `LIMIT $n` PostgreSQL's
/// generic plan for the prepared statement (the relay plans each statement
/// once: [`super::connect::SESSION_SETUP`]) cannot know the limit is small, and joins the whole message table by
/// hash instead of following the due-index (measured: the claim's mean
/// time went from 0.14 ms to 0.6 ms, and rose with the table).
fn claim_sql(want: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        std::iter::successors(Some(1usize), |n| (*n < CLAIM_BATCH).then_some(n * 2))
            .map(|n| CLAIM.replace("LIMIT $3", &format!("LIMIT {n}")))
            .collect()
    });
    // The largest size not above `want`.
    let i = usize::try_from(want.max(1).ilog2()).unwrap_or(0);
    all[i.min(all.len() - 1)].as_str()
}

/// How often [`claim`] tries again at once when every message it locked
/// had been claimed by another worker meanwhile.
const CLAIM_TRIES: usize = 16;

/// Counts a worker as waiting in [`next`] for as long as it is there
/// (also when its future is dropped).
struct Waiting<'a>(&'a Inner);

impl<'a> Waiting<'a> {
    fn enter(inner: &'a Inner) -> Self {
        inner.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(inner)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The next due message for one of this relay's workers, or `None` once the
/// spool is closed.
pub(super) async fn next(inner: &Inner) -> Option<Lease> {
    let _waiting = Waiting::enter(inner);
    let mut failing = false;
    loop {
        let due = inner.due.notified();
        tokio::pin!(due);
        due.as_mut().enable();
        if inner.closed.load(Ordering::SeqCst) {
            release_claimed(inner).await;
            return None;
        }
        if let Some(lease) = take_claimed(inner) {
            return Some(lease);
        }
        let empty_before = inner.claims_empty.load(Ordering::SeqCst);
        let guard = inner.claiming.lock().await;
        // The statement this worker waited for may have claimed for it.
        if let Some(lease) = take_claimed(inner) {
            return Some(lease);
        }
        // It found nothing due: wait for a wake-up rather than asking again.
        let found_empty = inner.claims_empty.load(Ordering::SeqCst) != empty_before;
        if !found_empty && !inner.closed.load(Ordering::SeqCst) {
            let want = inner.waiting.load(Ordering::SeqCst).clamp(1, CLAIM_BATCH);
            match claim(inner, want).await {
                Ok(mut leases) if !leases.is_empty() => {
                    let mine = leases.swap_remove(0);
                    group::lock(&inner.claimed).extend(leases);
                    drop(guard);
                    // One idle worker is woken per wake-up (not all of them,
                    // who would all query for one message); a worker that
                    // found work passes the wake-up on, since more may be
                    // due (or waiting in `claimed`).
                    inner.due.notify_one();
                    return Some(mine);
                }
                Ok(_) => {
                    inner.claims_empty.fetch_add(1, Ordering::SeqCst);
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot claim work from the spool database; retrying");
                    }
                    failing = true;
                }
            }
        }
        drop(guard);
        tokio::select! {
            () = &mut due => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// A lease claimed by another worker's statement for this one; passes the
/// wake-up on while more are left.
fn take_claimed(inner: &Inner) -> Option<Lease> {
    let mut claimed = group::lock(&inner.claimed);
    let lease = claimed.pop()?;
    if !claimed.is_empty() {
        inner.due.notify_one();
    }
    Some(lease)
}

/// Gives back the leases claimed for workers that did not take them (the
/// spool closed): their recipients are due again at once, for any relay.
/// If the database cannot be reached they expire with their lease.
async fn release_claimed(inner: &Inner) {
    let leases: Vec<Lease> = std::mem::take(&mut *group::lock(&inner.claimed));
    if leases.is_empty() {
        return;
    }
    let fences: Vec<i64> = leases.iter().map(|l| to_i64(l.fence)).collect();
    inner.in_flight.fetch_sub(leases.len(), Ordering::SeqCst);
    let released = async {
        let c = inner.conn().await?;
        c.execute(
            "UPDATE postwire_deliveries
             SET lease_owner = NULL, lease_expires_ms = NULL, lease_token = NULL
             WHERE lease_token = ANY($1) AND NOT final",
            &[&fences],
        )
        .await
        .map_err(db)
    };
    match released.await {
        Ok(n) => tracing::info!(
            messages = leases.len(),
            recipients = n,
            "released leases no worker took"
        ),
        Err(e) => tracing::warn!(error = %e, messages = leases.len(),
            "cannot release unused leases; they expire with their lease"),
    }
}

/// One statement (one round trip; the message rows are locked only while
/// it runs): finds up to `$3` due messages no other relay is claiming (`SKIP
/// LOCKED` on the message row, so two relays never split one message), takes
/// a fresh fence from the sequence for each, leases every due recipient of
/// each, and reads their bytes. A message with several due recipients can
/// come up more than once among the first `$3` rows; it is claimed once.
/// `$3` is replaced by a number ([`claim_sql`]).
const CLAIM: &str = "
WITH m AS (
  SELECT m.id, m.token, m.client_id, m.envelope, m.received_ms, m.attempts, m.size
  FROM postwire_deliveries d JOIN postwire_messages m ON m.id = d.message_id
  WHERE NOT d.final AND d.next_attempt_ms <= postwire_now_ms()
    AND (d.lease_expires_ms IS NULL OR d.lease_expires_ms < postwire_now_ms())
    AND NOT m.held
  ORDER BY d.next_attempt_ms LIMIT $3
  FOR UPDATE OF m SKIP LOCKED
), t AS (
  SELECT x.*, nextval('postwire_lease_tokens') AS fence
  FROM (SELECT DISTINCT ON (id) * FROM m) x
), u AS (
  UPDATE postwire_deliveries d
  SET lease_owner = $1, lease_expires_ms = postwire_now_ms() + $2, lease_token = t.fence
  FROM t
  WHERE d.message_id = t.id AND NOT d.final AND d.next_attempt_ms <= postwire_now_ms()
    AND (d.lease_expires_ms IS NULL OR d.lease_expires_ms < postwire_now_ms())
  RETURNING d.message_id, d.idx, d.rcpt
)
SELECT t.id, t.token, t.client_id, t.envelope, t.received_ms, t.attempts, t.size, t.fence,
       (SELECT array_agg(u.rcpt ORDER BY u.idx) FROM u WHERE u.message_id = t.id),
       (SELECT array_agg(c.data ORDER BY c.seq) FROM postwire_message_chunks c WHERE c.message_id = t.id)
FROM t";

/// Claims the recipients of up to `want` due messages for this relay (a
/// power of two at most: the largest not above `want`).
///
/// The statement's snapshot may predate another worker's claim of a
/// message that committed just before our lock was granted (a claim does
/// not change the message row, so PostgreSQL does not re-check it); the
/// `UPDATE` then takes no recipient of it. When that leaves nothing, it is
/// contention, not an empty queue: look again at once rather than sleeping
/// until the next poll.
async fn claim(inner: &Inner, want: usize) -> Result<Vec<Lease>, SpoolError> {
    let c = inner.conn().await?;
    for _ in 0..CLAIM_TRIES {
        match claim_once(inner, &c, want).await? {
            Claimed::Leases(leases) => return Ok(leases),
            Claimed::Nothing => return Ok(Vec::new()),
            Claimed::Again => {}
        }
    }
    Ok(Vec::new())
}

/// What one try of [`claim`] found.
enum Claimed {
    Leases(Vec<Lease>),
    /// Nothing is due.
    Nothing,
    /// Contention, or a damaged copy was failed: look again.
    Again,
}

async fn claim_once(
    inner: &Inner,
    c: &deadpool_postgres::Object,
    want: usize,
) -> Result<Claimed, SpoolError> {
    let lease_ms = to_i64(u64::try_from(inner.pg.lease.as_millis()).unwrap_or(u64::MAX));
    let stmt = c.prepare_cached(claim_sql(want)).await.map_err(db)?;
    let rows = c
        .query(&stmt, &[&inner.pg.relay_name, &lease_ms])
        .await
        .map_err(db)?;
    if rows.is_empty() {
        return Ok(Claimed::Nothing);
    }
    let mut leases = Vec::with_capacity(rows.len());
    for m in rows {
        let key = Key {
            token: m.get(1),
            id: m.get(2),
        };
        // Taken by another worker just before our lock was granted.
        let Some(rcpt_to) = m.get::<_, Option<Vec<String>>>(8) else {
            continue;
        };
        let fence: i64 = m.get(7);
        let envelope = serde_json::from_value::<Envelope>(m.get(3));
        let size: i64 = m.get(6);
        let chunks: Vec<Vec<u8>> = m.get::<_, Option<Vec<Vec<u8>>>>(9).unwrap_or_default();
        let bytes = chunks.concat();
        inner.in_flight.fetch_add(1, Ordering::SeqCst);
        let found = bytes.len();
        let mut lease = Lease {
            key,
            envelope: Envelope {
                rcpt_to,
                ..Envelope::default()
            },
            bytes,
            attempts: u32::try_from(m.get::<_, i32>(5)).unwrap_or(0),
            received_ms: to_u64(m.get(4)),
            fence: u64::try_from(fence).unwrap_or(0),
        };
        // Never send a damaged copy: fail the message loudly, as the file
        // spool does with one it cannot read, and look for other work.
        match envelope {
            Err(e) => {
                let why = format!("the spooled envelope is unreadable in the database: {e}");
                fail_damaged(inner, lease, why).await?;
            }
            Ok(_) if i64::try_from(found).ok() != Some(size) => {
                let why = format!(
                    "the spooled copy is incomplete in the database ({found} of {size} bytes)"
                );
                fail_damaged(inner, lease, why).await?;
            }
            Ok(envelope) => {
                lease.envelope = Envelope {
                    rcpt_to: std::mem::take(&mut lease.envelope.rcpt_to),
                    ..envelope
                };
                leases.push(lease);
            }
        }
    }
    Ok(if leases.is_empty() {
        Claimed::Again
    } else {
        Claimed::Leases(leases)
    })
}

/// Fails every recipient of a damaged message (`why`), under its lease.
async fn fail_damaged(inner: &Inner, lease: Lease, why: String) -> Result<(), SpoolError> {
    let key = &lease.key;
    tracing::error!(id = %key.id, token = %key.token, reason = %why,
        "a spooled message is damaged in the database; reporting it failed");
    let outcomes = lease.fail_all(&why);
    let settled = settle::settle(inner, &lease, outcomes).await;
    inner.in_flight.fetch_sub(1, Ordering::SeqCst);
    settled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_statements_carry_the_largest_power_of_two_not_above_want() {
        for (want, limit) in [
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 2),
            (7, 4),
            (8, 8),
            (15, 8),
            (16, 16),
            (99, 16),
        ] {
            let sql = claim_sql(want);
            assert!(
                sql.contains(&format!("LIMIT {limit}\n")),
                "want {want}: {sql}"
            );
            assert!(!sql.contains("$3"));
        }
    }
}
