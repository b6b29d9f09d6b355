//! Settles: each attempt's outcomes written under its lease's fence, the
//! attempts of several workers in one transaction.
//!
//! One settle transaction runs at a time per relay. An attempt settled
//! while one runs is queued, and the next transaction writes every attempt
//! then queued: the database runs two round trips and one commit (one WAL
//! flush) for the group instead of for each. Each attempt still gets its own
//! answer: an attempt whose lease lapsed (`LeaseLost`) or whose message is
//! gone (`UnknownLease`) changes nothing and does not hold back the others.
//!
//! The transaction: `BEGIN`, the message rows locked in id order (so two
//! relays' groups never deadlock), and, in a statement of its own so that
//! its snapshot follows the locks, the read of which recipients each lease
//! still holds; then the write of every state, attempt count, end of
//! message and event, and `COMMIT`. Two attempts on one message (a
//! recipient that fell due again while another was in transfer) go into
//! successive transactions, so that the second sees the first's outcome
//! when it decides whether the message is done.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::group;
use super::kinds::StoredKind;
use super::ops::{json, publish_local, to_i64, to_u64};
use super::pipelined::Pipelined;
use super::{Inner, db};
use crate::spool::{EventKind, Key, Lease, Outcome, RcptState, SpoolError};

/// Settle transactions of one relay at once.
pub(super) const GROUPS: usize = 2;

/// One attempt waiting for its settle.
pub(super) struct Attempt {
    key: Key,
    fence: i64,
    /// How many recipients the lease took.
    rcpts: usize,
    outcomes: HashMap<String, Outcome>,
    reply: oneshot::Sender<Result<(), SpoolError>>,
}

/// Records the outcomes of `lease`'s attempt (see the module doc).
pub(super) async fn settle(
    inner: &Inner,
    lease: &Lease,
    outcomes: Vec<(String, Outcome)>,
) -> Result<(), SpoolError> {
    let (reply, answer) = oneshot::channel();
    group::lock(&inner.settles).push(Attempt {
        key: lease.key.clone(),
        fence: to_i64(lease.fence),
        rcpts: lease.envelope.rcpt_to.len(),
        outcomes: outcomes.into_iter().collect(),
        reply,
    });
    // Each round writes everything queued, group by group.
    let round = || async {
        let mut group = std::mem::take(&mut *group::lock(&inner.settles));
        if group.is_empty() {
            return false;
        }
        while !group.is_empty() {
            group = settle_group(inner, group).await;
        }
        true
    };
    group::lead(&inner.settling, answer, round, || {
        Err(SpoolError::Database(
            "the settle was abandoned before it committed".into(),
        ))
    })
    .await
}

/// Settles `group` in one transaction and answers each attempt; gives back
/// the attempts on a message already in this group (for the next one).
async fn settle_group(inner: &Inner, group: Vec<Attempt>) -> Vec<Attempt> {
    let mut seen = HashSet::new();
    let (now, later): (Vec<Attempt>, Vec<Attempt>) = group
        .into_iter()
        .partition(|a| seen.insert((a.key.token.clone(), a.key.id.clone())));
    let conn = match inner.conn().await {
        Ok(c) => c,
        Err(e) => {
            for a in now {
                let _ = a.reply.send(Err(again(&e)));
            }
            return later;
        }
    };
    let mut tx = Pipelined::new(conn);
    match write(inner, &mut tx, &now).await {
        Ok(results) => {
            for (a, r) in now.into_iter().zip(results) {
                let r = r.map(|w| {
                    publish_local(inner, &a.key, w.events, w.now);
                    if !w.done {
                        inner.due.notify_one();
                        inner.wake_others(true, false);
                    }
                });
                let _ = a.reply.send(r);
            }
        }
        Err(e) if now.len() > 1 => {
            // One attempt the database refuses must not hold back the
            // others (nor be retried with them for ever): each alone.
            tx.rollback().await;
            drop(tx);
            tracing::warn!(error = %e, attempts = now.len(),
                "a group of settles failed; trying each alone");
            for a in now {
                let rest = Box::pin(settle_group(inner, vec![a])).await;
                debug_assert!(rest.is_empty());
            }
        }
        Err(e) => {
            tx.rollback().await;
            for a in now {
                let _ = a.reply.send(Err(again(&e)));
            }
        }
    }
    later
}

/// The same failure for each attempt of a group.
fn again(e: &SpoolError) -> SpoolError {
    SpoolError::Database(e.to_string())
}

/// What one attempt's settle wrote.
struct Written {
    events: Vec<(String, StoredKind, bool)>,
    now: u64,
    done: bool,
}

/// Locks the group's message rows in id order, for the transaction.
const LOCK: &str = "
SELECT m.id FROM postwire_messages m
JOIN unnest($1::text[], $2::text[]) AS v(token, client_id)
  ON m.token = v.token AND m.client_id = v.client_id
ORDER BY m.id FOR UPDATE OF m";

/// After [`LOCK`], with a snapshot that sees every claim committed before
/// the locks were granted: per attempt (`o`, from 1), its message, the
/// recipients its lease still holds, and how many other recipients are open.
const READ: &str = "
SELECT v.o, m.id, m.received_ms, m.attempts, postwire_now_ms(),
  array(SELECT d.idx FROM postwire_deliveries d
        WHERE d.message_id = m.id AND d.lease_token = v.fence AND NOT d.final ORDER BY d.idx),
  array(SELECT d.rcpt FROM postwire_deliveries d
        WHERE d.message_id = m.id AND d.lease_token = v.fence AND NOT d.final ORDER BY d.idx),
  (SELECT count(*) FROM postwire_deliveries d
   WHERE d.message_id = m.id AND NOT d.final AND d.lease_token IS DISTINCT FROM v.fence)
FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS v(token, client_id, fence, o)
JOIN postwire_messages m ON m.token = v.token AND m.client_id = v.client_id";

/// Every recipient's new state; every message's attempt count (and, for
/// the done ones, their end: final time, bytes deleted); the events, in
/// order.
const WRITE: &str = "
WITH u AS (
  UPDATE postwire_deliveries d
  SET state = v.state, final = v.fin, attempts = d.attempts + 1, next_attempt_ms = v.next,
      lease_owner = NULL, lease_expires_ms = NULL, lease_token = NULL
  FROM unnest($1::bigint[], $2::integer[], $3::jsonb[], $4::boolean[], $5::bigint[])
       AS v(id, idx, state, fin, next)
  WHERE d.message_id = v.id AND d.idx = v.idx
  RETURNING d.idx
), mm AS (
  UPDATE postwire_messages m
  SET attempts = m.attempts + 1, final_ms = CASE WHEN v.done THEN $8 ELSE m.final_ms END,
      held = m.held AND NOT v.done
  FROM unnest($6::bigint[], $7::boolean[]) AS v(id, done)
  WHERE m.id = v.id
), ch AS (
  DELETE FROM postwire_message_chunks
  WHERE message_id = ANY(array(SELECT v.id FROM unnest($6::bigint[], $7::boolean[]) AS v(id, done) WHERE v.done))
), e AS (
  INSERT INTO postwire_events (message_id, token, client_id, rcpt, kind, last, at_ms, relay)
  SELECT v.id, v.token, v.client_id, v.rcpt, v.kind, v.last, $8, $9
  FROM unnest($10::bigint[], $11::text[], $12::text[], $13::text[], $14::jsonb[], $15::boolean[])
       WITH ORDINALITY AS v(id, token, client_id, rcpt, kind, last, o)
  ORDER BY v.o
)
SELECT (SELECT count(*) FROM u)";

/// The columns of [`WRITE`], filled attempt by attempt.
#[derive(Default)]
struct Columns {
    d_id: Vec<i64>,
    d_idx: Vec<i32>,
    d_state: Vec<Value>,
    d_final: Vec<bool>,
    d_next: Vec<Option<i64>>,
    m_id: Vec<i64>,
    m_done: Vec<bool>,
    e_id: Vec<i64>,
    e_token: Vec<String>,
    e_client: Vec<String>,
    e_rcpt: Vec<String>,
    e_kind: Vec<Value>,
    e_last: Vec<bool>,
}

/// The group's transaction in two round trips: `BEGIN` with the lock and
/// the read, then the write with `COMMIT`. Per attempt, what it wrote or
/// why it wrote nothing; `Err` when the transaction failed as a whole.
async fn write(
    inner: &Inner,
    tx: &mut Pipelined,
    group: &[Attempt],
) -> Result<Vec<Result<Written, SpoolError>>, SpoolError> {
    let lock = tx.client().prepare_cached(LOCK).await.map_err(db)?;
    let read = tx.client().prepare_cached(READ).await.map_err(db)?;
    let stmt = tx.client().prepare_cached(WRITE).await.map_err(db)?;
    let tokens: Vec<&str> = group.iter().map(|a| a.key.token.as_str()).collect();
    let ids: Vec<&str> = group.iter().map(|a| a.key.id.as_str()).collect();
    let fences: Vec<i64> = group.iter().map(|a| a.fence).collect();
    // Open from before `BEGIN` is sent: cancelled in flight, the connection
    // is closed rather than pooled.
    let lock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tokens, &ids];
    let read_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&tokens, &ids, &fences];
    tx.begun();
    let c = tx.client();
    let (begun, locked, rows) = tokio::join!(
        c.batch_execute("BEGIN"),
        c.query(&lock, &lock_params),
        c.query(&read, &read_params),
    );
    begun.map_err(db)?;
    locked.map_err(db)?;
    let rows = rows.map_err(db)?;

    let mut found: Vec<Option<tokio_postgres::Row>> = group.iter().map(|_| None).collect();
    let mut now = None;
    for row in rows {
        let o: i64 = row.get(0);
        now.get_or_insert(to_u64(row.get(4)));
        if let Some(slot) = usize::try_from(o - 1).ok().and_then(|i| found.get_mut(i)) {
            *slot = Some(row);
        }
    }
    let now = now.unwrap_or(0);
    let mut cols = Columns::default();
    let mut results = Vec::with_capacity(group.len());
    for (a, row) in group.iter().zip(found) {
        results.push(match row {
            None => Err(SpoolError::UnknownLease(a.key.clone())),
            Some(row) => attempt(inner, a, &row, now, &mut cols),
        });
    }
    let expected = cols.d_id.len();
    if cols.m_id.is_empty() {
        // Nothing to write: every lease was lost or unknown.
        let committed = c.batch_execute("COMMIT").await;
        tx.ended();
        committed.map_err(db)?;
        return Ok(results);
    }
    let now_i = to_i64(now);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 15] = [
        &cols.d_id,
        &cols.d_idx,
        &cols.d_state,
        &cols.d_final,
        &cols.d_next,
        &cols.m_id,
        &cols.m_done,
        &now_i,
        &inner.pg.relay_name,
        &cols.e_id,
        &cols.e_token,
        &cols.e_client,
        &cols.e_rcpt,
        &cols.e_kind,
        &cols.e_last,
    ];
    // The write and the COMMIT in one round trip: under the message row
    // locks, the rows the read found fenced are the rows written (a failed
    // write makes the COMMIT a rollback).
    let (row, committed) = tokio::join!(c.query_one(&stmt, &params), c.batch_execute("COMMIT"));
    tx.ended();
    let row = row.map_err(db)?;
    committed.map_err(db)?;
    let updated: i64 = row.get(0);
    if usize::try_from(updated).ok() != Some(expected) {
        tracing::error!(
            updated,
            expected,
            "a settle wrote other rows than its read found; the spool's locking is broken"
        );
    }
    Ok(results)
}

/// One attempt of the group: checks its fence against the read `row` and
/// adds its writes to `cols`.
fn attempt(
    inner: &Inner,
    a: &Attempt,
    row: &tokio_postgres::Row,
    now: u64,
    cols: &mut Columns,
) -> Result<Written, SpoolError> {
    let id: i64 = row.get(1);
    let received_ms = to_u64(row.get(2));
    let attempts = u32::try_from(row.get::<_, i32>(3)).unwrap_or(0) + 1;
    let idxs: Vec<i32> = row.get(5);
    let rcpts: Vec<String> = row.get(6);
    let others_open: i64 = row.get(7);
    // Fencing: the rows must still carry this lease's token.
    if idxs.len() != a.rcpts {
        return Err(SpoolError::LeaseLost(a.key.clone()));
    }
    let age = Duration::from_millis(now.saturating_sub(received_ms));
    let retry_at = now + u64::try_from(inner.backoff(attempts).as_millis()).unwrap_or(u64::MAX);
    let mut outcomes = a.outcomes.clone();
    let mut events = Vec::new();
    let mut states = Vec::with_capacity(idxs.len());
    for rcpt in &rcpts {
        let outcome = outcomes.remove(rcpt).unwrap_or_else(|| {
            Outcome::Transient("the upstream reported no result for this recipient".into())
        });
        let state = match outcome {
            Outcome::Delivered(response) => RcptState::Delivered { response },
            Outcome::Permanent(reason) => RcptState::Failed { reason },
            Outcome::Transient(reason) if age >= inner.opts.max_age => RcptState::Failed {
                reason: format!(
                    "gave up after {attempts} attempts over {}s: {reason}",
                    age.as_secs()
                ),
            },
            Outcome::Transient(reason) => RcptState::Deferred { reason, attempts },
        };
        if let Some(kind) = EventKind::of_state(&state, retry_at) {
            events.push((rcpt.clone(), StoredKind::of(&kind), false));
        }
        states.push((json(&state)?, state.is_final()));
    }
    let all_final = states.iter().all(|(_, f)| *f);
    let done = others_open == 0 && all_final;
    if done && let Some(last) = events.last_mut() {
        last.2 = true;
    }
    let kinds: Vec<Value> = events
        .iter()
        .map(|e| json(&e.1))
        .collect::<Result<_, _>>()?;
    // Nothing fails from here on: the columns stay aligned.
    for (idx, (state, final_)) in idxs.iter().zip(states) {
        cols.d_id.push(id);
        cols.d_idx.push(*idx);
        cols.d_state.push(state);
        cols.d_final.push(final_);
        cols.d_next.push((!final_).then(|| to_i64(retry_at)));
    }
    cols.m_id.push(id);
    cols.m_done.push(done);
    for ((rcpt, _, last), kind) in events.iter().zip(kinds) {
        cols.e_id.push(id);
        cols.e_token.push(a.key.token.clone());
        cols.e_client.push(a.key.id.clone());
        cols.e_rcpt.push(rcpt.clone());
        cols.e_kind.push(kind);
        cols.e_last.push(*last);
    }
    Ok(Written { events, now, done })
}
