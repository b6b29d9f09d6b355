//! The PostgreSQL spool's statements: accept, claim, settle, renew, status,
//! reports, the operator's view and actions. Each write is one transaction;
//! see the module doc of [`super`] for what each promises.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use deadpool_postgres::Transaction;
use serde_json::Value;

use super::kinds::StoredKind;
use super::pipelined::Pipelined;
use super::{CHUNK_BYTES, Inner, db};
use crate::spool::{
    Accepted, Control, Controlled, Envelope, Event, EventKind, HistoryItem, Key, Lease,
    MessageView, Outcome, RcptState, RcptStatus, SpoolError, Submission,
};

/// How often an idle worker looks for due work without a wake-up.
const POLL: Duration = Duration::from_secs(1);

/// Most messages the operator's list reads.
const LIST_LIMIT: i64 = 10_000;

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn json<T: serde::Serialize>(v: &T) -> Result<Value, SpoolError> {
    serde_json::to_value(v).map_err(|e| SpoolError::Encode(e.to_string()))
}

fn state_of(v: Value) -> RcptState {
    serde_json::from_value(v).unwrap_or(RcptState::Failed {
        reason: "unreadable state in the spool database".into(),
    })
}

/// Inserts one event row per `(rcpt, kind, last)`.
async fn insert_events(
    inner: &Inner,
    tx: &Transaction<'_>,
    message_id: i64,
    key: &Key,
    events: &[(String, StoredKind, bool)],
    at_ms: u64,
) -> Result<(), SpoolError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO postwire_events (message_id, token, client_id, rcpt, kind, last, at_ms, relay)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await
        .map_err(db)?;
    for (rcpt, kind, last) in events {
        tx.execute(
            &stmt,
            &[
                &message_id,
                &key.token,
                &key.id,
                rcpt,
                &json(kind)?,
                last,
                &to_i64(at_ms),
                &inner.pg.relay_name,
            ],
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// Publishes committed events to this relay's own subscribers and wakes the
/// follower (which feeds every relay's clients).
fn publish_local(inner: &Inner, key: &Key, events: Vec<(String, StoredKind, bool)>, at_ms: u64) {
    for (rcpt, kind, last) in events {
        if let Some(kind) = kind.event() {
            let _ = inner.local.send(Event {
                key: key.clone(),
                rcpt,
                kind,
                last,
                at_ms,
            });
        }
    }
    inner.events.notify_one();
    inner.wake_others(false, true);
}

/// One statement (so one round trip, atomic without `BEGIN`): the message
/// row, its chunks, one delivery row per recipient, its `accepted` event and
/// the wake-ups. No row comes back when the key exists (a duplicate; a
/// concurrent insert of the same key waits for the other and then finds it).
const ACCEPT: &str = "
WITH m AS (
  INSERT INTO postwire_messages (token, client_id, envelope, mail_from, received_ms, size)
  VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (token, client_id) DO NOTHING RETURNING id
), c AS (
  INSERT INTO postwire_message_chunks (message_id, seq, data)
  SELECT m.id, (t.o - 1)::integer, t.data FROM m, unnest($7::bytea[]) WITH ORDINALITY AS t(data, o)
), d AS (
  INSERT INTO postwire_deliveries (message_id, idx, rcpt, state, next_attempt_ms)
  SELECT m.id, (t.o - 1)::integer, t.r, $8, postwire_now_ms()
  FROM m, unnest($9::text[]) WITH ORDINALITY AS t(r, o)
), e AS (
  INSERT INTO postwire_events (message_id, token, client_id, rcpt, kind, last, at_ms, relay)
  SELECT m.id, $1, $2, '', $10, false, $5, $11 FROM m
)
SELECT m.id FROM m";

pub(super) async fn accept(inner: &Inner, sub: Submission) -> Result<Accepted, SpoolError> {
    let not_stored = |e: tokio_postgres::Error| {
        SpoolError::NotStored(format!("database: {}", super::describe(&e)))
    };
    let c = inner
        .conn()
        .await
        .map_err(|e| SpoolError::NotStored(e.to_string()))?;
    let meta = &sub.meta;
    let chunks: Vec<&[u8]> = if sub.bytes.is_empty() {
        vec![&[][..]]
    } else {
        sub.bytes.chunks(CHUNK_BYTES).collect()
    };
    let stmt = c.prepare_cached(ACCEPT).await.map_err(not_stored)?;
    let row = c
        .query_opt(
            &stmt,
            &[
                &meta.key.token,
                &meta.key.id,
                &json(&meta.envelope)?,
                &meta.envelope.mail_from,
                &to_i64(meta.received_ms),
                &i64::try_from(sub.bytes.len()).unwrap_or(i64::MAX),
                &chunks,
                &json(&RcptState::Queued)?,
                &meta.envelope.rcpt_to,
                &json(&StoredKind::Accepted)?,
                &inner.pg.relay_name,
            ],
        )
        .await
        .map_err(not_stored)?;
    if row.is_none() {
        return Ok(Accepted::Duplicate);
    }
    inner.due.notify_one();
    inner.wake_others(true, true);
    Ok(Accepted::Stored)
}

pub(super) async fn status(
    inner: &Inner,
    key: &Key,
) -> Result<Option<Vec<RcptStatus>>, SpoolError> {
    let c = inner.conn().await?;
    let rows = c
        .query(
            "SELECT m.id, d.rcpt, d.state FROM postwire_messages m
             LEFT JOIN postwire_deliveries d ON d.message_id = m.id
             WHERE m.token = $1 AND m.client_id = $2 ORDER BY d.idx",
            &[&key.token, &key.id],
        )
        .await
        .map_err(db)?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .filter_map(|r| {
                let rcpt: Option<String> = r.get(1);
                let state: Option<Value> = r.get(2);
                Some(RcptStatus {
                    rcpt: rcpt?,
                    state: state_of(state?),
                })
            })
            .collect(),
    ))
}

pub(super) async fn next(inner: &Inner) -> Option<Lease> {
    let mut failing = false;
    loop {
        let due = inner.due.notified();
        tokio::pin!(due);
        due.as_mut().enable();
        if inner.closed.load(Ordering::SeqCst) {
            return None;
        }
        match claim(inner).await {
            Ok(Some(lease)) => {
                // One idle worker is woken per wake-up (not all of them, who
                // would all query for one message); a worker that found
                // work passes the wake-up on, since more may be due.
                inner.due.notify_one();
                return Some(lease);
            }
            Ok(None) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot claim work from the spool database; retrying");
                }
                failing = true;
            }
        }
        tokio::select! {
            () = &mut due => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One statement (one round trip; the message row is locked only while it
/// runs): finds a due message no other relay is claiming (`SKIP LOCKED` on
/// the message row, so two relays never split one message), takes a fresh
/// fence from the sequence, leases every due recipient of it, and reads the
/// bytes.
const CLAIM: &str = "
WITH m AS (
  SELECT m.id, m.token, m.client_id, m.envelope, m.received_ms, m.attempts, m.size
  FROM postwire_deliveries d JOIN postwire_messages m ON m.id = d.message_id
  WHERE NOT d.final AND d.next_attempt_ms <= postwire_now_ms()
    AND (d.lease_expires_ms IS NULL OR d.lease_expires_ms < postwire_now_ms())
    AND NOT m.held
  ORDER BY d.next_attempt_ms LIMIT 1
  FOR UPDATE OF m SKIP LOCKED
), t AS (
  SELECT nextval('postwire_lease_tokens') AS fence FROM m
), u AS (
  UPDATE postwire_deliveries d
  SET lease_owner = $1, lease_expires_ms = postwire_now_ms() + $2, lease_token = t.fence
  FROM m, t
  WHERE d.message_id = m.id AND NOT d.final AND d.next_attempt_ms <= postwire_now_ms()
    AND (d.lease_expires_ms IS NULL OR d.lease_expires_ms < postwire_now_ms())
  RETURNING d.idx, d.rcpt
)
SELECT m.id, m.token, m.client_id, m.envelope, m.received_ms, m.attempts, m.size, t.fence,
       (SELECT array_agg(u.rcpt ORDER BY u.idx) FROM u),
       (SELECT array_agg(c.data ORDER BY c.seq) FROM postwire_message_chunks c WHERE c.message_id = m.id)
FROM m, t";

/// How often [`claim`] tries again at once when the message it locked had
/// been claimed by another worker meanwhile.
const CLAIM_TRIES: usize = 16;

/// Claims the recipients of one due message for this relay.
///
/// The statement's snapshot may predate another worker's claim of the same
/// message that committed just before our lock was granted (a claim does
/// not change the message row, so PostgreSQL does not re-check it); the
/// `UPDATE` then takes no recipient. That is contention, not an empty
/// queue: look again at once rather than sleeping until the next poll.
async fn claim(inner: &Inner) -> Result<Option<Lease>, SpoolError> {
    let c = inner.conn().await?;
    for _ in 0..CLAIM_TRIES {
        match claim_once(inner, &c).await? {
            Claimed::Lease(lease) => return Ok(Some(*lease)),
            Claimed::Nothing => return Ok(None),
            Claimed::Again => {}
        }
    }
    Ok(None)
}

/// What one try of [`claim`] found.
enum Claimed {
    Lease(Box<Lease>),
    /// Nothing is due.
    Nothing,
    /// Contention, or an incomplete copy was failed: look again.
    Again,
}

async fn claim_once(inner: &Inner, c: &deadpool_postgres::Object) -> Result<Claimed, SpoolError> {
    let lease_ms = to_i64(u64::try_from(inner.pg.lease.as_millis()).unwrap_or(u64::MAX));
    let stmt = c.prepare_cached(CLAIM).await.map_err(db)?;
    let Some(m) = c
        .query_opt(&stmt, &[&inner.pg.relay_name, &lease_ms])
        .await
        .map_err(db)?
    else {
        return Ok(Claimed::Nothing);
    };
    let key = Key {
        token: m.get(1),
        id: m.get(2),
    };
    let Some(rcpt_to) = m.get::<_, Option<Vec<String>>>(8) else {
        return Ok(Claimed::Again);
    };
    let envelope: Envelope = serde_json::from_value(m.get(3))
        .map_err(|e| SpoolError::Database(format!("unreadable envelope of {key:?}: {e}")))?;
    let received_ms = to_u64(m.get(4));
    let attempts = u32::try_from(m.get::<_, i32>(5)).unwrap_or(0);
    let size: i64 = m.get(6);
    let fence: i64 = m.get(7);
    let chunks: Vec<Vec<u8>> = m.get::<_, Option<Vec<Vec<u8>>>>(9).unwrap_or_default();
    let bytes = chunks.concat();
    inner.in_flight.fetch_add(1, Ordering::SeqCst);
    let complete = i64::try_from(bytes.len()).ok() == Some(size);
    let lease = Lease {
        key,
        envelope: Envelope {
            rcpt_to,
            ..envelope
        },
        bytes,
        attempts,
        received_ms,
        fence: u64::try_from(fence).unwrap_or(0),
    };
    if !complete {
        // Never send a damaged copy: fail the message loudly, as the file
        // spool does with one it cannot read, and look for other work.
        let key = &lease.key;
        tracing::error!(id = %key.id, token = %key.token, size, found = lease.bytes.len(),
            "the spooled copy is incomplete in the database; reporting it failed");
        let reason = format!(
            "the spooled copy is incomplete in the database ({} of {size} bytes)",
            lease.bytes.len()
        );
        let outcomes = lease
            .envelope
            .rcpt_to
            .iter()
            .map(|r| (r.clone(), Outcome::Permanent(reason.clone())))
            .collect();
        let settled = settle(inner, &lease, outcomes).await;
        inner.in_flight.fetch_sub(1, Ordering::SeqCst);
        settled?;
        return Ok(Claimed::Again);
    }
    Ok(Claimed::Lease(Box::new(lease)))
}

/// The chunks of message `id`, joined (empty when there are none: a final
/// message has none left; callers compare the length with its size).
async fn read_bytes(c: &tokio_postgres::Client, id: i64) -> Result<Vec<u8>, SpoolError> {
    let rows = c
        .query(
            "SELECT data FROM postwire_message_chunks WHERE message_id = $1 ORDER BY seq",
            &[&id],
        )
        .await
        .map_err(db)?;
    let mut out = Vec::new();
    for r in rows {
        out.extend_from_slice(r.get::<_, &[u8]>(0));
    }
    Ok(out)
}

pub(super) async fn renew(inner: &Inner, lease: &Lease) -> Result<bool, SpoolError> {
    let c = inner.conn().await?;
    let lease_ms = to_i64(u64::try_from(inner.pg.lease.as_millis()).unwrap_or(u64::MAX));
    let n = c
        .execute(
            "UPDATE postwire_deliveries SET lease_expires_ms = postwire_now_ms() + $2
             WHERE lease_token = $1 AND NOT final",
            &[&to_i64(lease.fence), &lease_ms],
        )
        .await
        .map_err(db)?;
    Ok(n > 0)
}

/// The second statement of a settle: the recipients' new states, the
/// message's attempt count (and, when `$6`, its end: final time, bytes
/// deleted), the events and the wake-up, in one round trip.
const SETTLE: &str = "
WITH u AS (
  UPDATE postwire_deliveries d
  SET state = v.state, final = v.fin, attempts = d.attempts + 1, next_attempt_ms = v.next,
      lease_owner = NULL, lease_expires_ms = NULL, lease_token = NULL
  FROM unnest($2::integer[], $3::jsonb[], $4::boolean[], $5::bigint[]) AS v(idx, state, fin, next)
  WHERE d.message_id = $1 AND d.idx = v.idx
  RETURNING d.idx
), mm AS (
  UPDATE postwire_messages
  SET attempts = attempts + 1, final_ms = CASE WHEN $6 THEN $7 ELSE final_ms END,
      held = held AND NOT $6
  WHERE id = $1
), ch AS (
  DELETE FROM postwire_message_chunks WHERE message_id = $1 AND $6
), e AS (
  INSERT INTO postwire_events (message_id, token, client_id, rcpt, kind, last, at_ms, relay)
  SELECT $1, $8, $9, v.rcpt, v.kind, v.last, $7, $10
  FROM unnest($11::text[], $12::jsonb[], $13::boolean[]) WITH ORDINALITY AS v(rcpt, kind, last, o)
  ORDER BY v.o
)
SELECT (SELECT count(*) FROM u)";

/// The settle's locking read (prepared once per connection): the message
/// row locked until the commit, keeping claims, cancels and other settles
/// of this message out; the recipients this lease still holds; how many
/// other recipients are open.
const SETTLE_READ: &str = "
SELECT m.id, m.received_ms, m.attempts, postwire_now_ms(),
  array(SELECT d.idx FROM postwire_deliveries d
        WHERE d.message_id = m.id AND d.lease_token = $3 AND NOT d.final ORDER BY d.idx),
  array(SELECT d.rcpt FROM postwire_deliveries d
        WHERE d.message_id = m.id AND d.lease_token = $3 AND NOT d.final ORDER BY d.idx),
  (SELECT count(*) FROM postwire_deliveries d
   WHERE d.message_id = m.id AND NOT d.final AND d.lease_token IS DISTINCT FROM $3)
FROM postwire_messages m WHERE m.token = $1 AND m.client_id = $2 FOR UPDATE";

pub(super) async fn settle(
    inner: &Inner,
    lease: &Lease,
    outcomes: Vec<(String, Outcome)>,
) -> Result<(), SpoolError> {
    let mut tx = Pipelined::new(inner.conn().await?);
    match settle_in(inner, &mut tx, lease, outcomes).await {
        Ok((events, now, done)) => {
            publish_local(inner, &lease.key, events, now);
            if !done {
                inner.due.notify_one();
                inner.wake_others(true, false);
            }
            Ok(())
        }
        Err(e) => {
            tx.rollback().await;
            Err(e)
        }
    }
}

/// The settle's transaction in two round trips: `BEGIN` with the locking
/// read, then the write with `COMMIT`. The events written, the database's
/// time, and whether the message is now done.
#[allow(clippy::type_complexity)]
async fn settle_in(
    inner: &Inner,
    tx: &mut Pipelined,
    lease: &Lease,
    outcomes: Vec<(String, Outcome)>,
) -> Result<(Vec<(String, StoredKind, bool)>, u64, bool), SpoolError> {
    let read = tx.client().prepare_cached(SETTLE_READ).await.map_err(db)?;
    let stmt = tx.client().prepare_cached(SETTLE).await.map_err(db)?;
    // The message row lock keeps claims, cancels and other settles of this
    // message out until the commit.
    let fence = to_i64(lease.fence);
    let read_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&lease.key.token, &lease.key.id, &fence];
    // Open from before `BEGIN` is sent: cancelled in flight, the connection
    // is closed rather than pooled.
    tx.begun();
    let c = tx.client();
    let (begun, m) = tokio::join!(c.batch_execute("BEGIN"), c.query_opt(&read, &read_params));
    begun.map_err(db)?;
    let Some(m) = m.map_err(db)? else {
        return Err(SpoolError::UnknownLease(lease.key.clone()));
    };
    let id: i64 = m.get(0);
    let received_ms = to_u64(m.get(1));
    let attempts = u32::try_from(m.get::<_, i32>(2)).unwrap_or(0) + 1;
    let now = to_u64(m.get(3));
    let idxs: Vec<i32> = m.get(4);
    let rcpts: Vec<String> = m.get(5);
    let others_open: i64 = m.get(6);
    // Fencing: the rows must still carry this lease's token.
    if idxs.len() != lease.envelope.rcpt_to.len() {
        return Err(SpoolError::LeaseLost(lease.key.clone()));
    }
    let age = Duration::from_millis(now.saturating_sub(received_ms));
    let retry_at = now + u64::try_from(inner.backoff(attempts).as_millis()).unwrap_or(u64::MAX);
    let mut by_rcpt: HashMap<String, Outcome> = outcomes.into_iter().collect();
    let (mut states, mut finals, mut nexts) = (Vec::new(), Vec::new(), Vec::new());
    let mut events = Vec::new();
    for rcpt in &rcpts {
        let outcome = by_rcpt.remove(rcpt).unwrap_or_else(|| {
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
        let final_ = state.is_final();
        nexts.push((!final_).then(|| to_i64(retry_at)));
        finals.push(final_);
        if let Some(kind) = EventKind::of_state(&state, retry_at) {
            events.push((rcpt.clone(), StoredKind::of(&kind), false));
        }
        states.push(json(&state)?);
    }
    let done = others_open == 0 && finals.iter().all(|f| *f);
    if done && let Some(last) = events.last_mut() {
        last.2 = true;
    }
    let ev_rcpts: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    let ev_kinds: Vec<Value> = events
        .iter()
        .map(|e| json(&e.1))
        .collect::<Result<_, _>>()?;
    let ev_last: Vec<bool> = events.iter().map(|e| e.2).collect();
    let now_i = to_i64(now);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 13] = [
        &id,
        &idxs,
        &states,
        &finals,
        &nexts,
        &done,
        &now_i,
        &lease.key.token,
        &lease.key.id,
        &inner.pg.relay_name,
        &ev_rcpts,
        &ev_kinds,
        &ev_last,
    ];
    // The write and the COMMIT in one round trip: under the message row
    // lock taken by the read, the rows the read found fenced are the rows
    // written (a failed write makes the COMMIT a rollback).
    let c = tx.client();
    let (row, committed) = tokio::join!(c.query_one(&stmt, &params), c.batch_execute("COMMIT"));
    tx.ended();
    let row = row.map_err(db)?;
    committed.map_err(db)?;
    let updated: i64 = row.get(0);
    if usize::try_from(updated).ok() != Some(idxs.len()) {
        tracing::error!(id = %lease.key.id, updated, expected = idxs.len(),
            "a settle wrote other rows than its read found; the spool's locking is broken");
    }
    Ok((events, now, done))
}

/// When every recipient of message `id` is final: marks it (no longer held:
/// nothing is left to hold, as in the file spool), deletes its bytes, and
/// answers `true`.
async fn finish_if_final(tx: &Transaction<'_>, id: i64, now: u64) -> Result<bool, SpoolError> {
    let open: i64 = tx
        .query_one(
            "SELECT count(*) FROM postwire_deliveries WHERE message_id = $1 AND NOT final",
            &[&id],
        )
        .await
        .map_err(db)?
        .get(0);
    if open > 0 {
        return Ok(false);
    }
    tx.execute(
        "UPDATE postwire_messages SET final_ms = $2, held = false WHERE id = $1 AND final_ms IS NULL",
        &[&id, &to_i64(now)],
    )
    .await
    .map_err(db)?;
    tx.execute(
        "DELETE FROM postwire_message_chunks WHERE message_id = $1",
        &[&id],
    )
    .await
    .map_err(db)?;
    Ok(true)
}

pub(super) async fn report(
    inner: &Inner,
    key: Key,
    rcpt: String,
    mut state: RcptState,
) -> Result<bool, SpoolError> {
    if !state.is_report() {
        return Ok(false);
    }
    let mut c = inner.conn().await?;
    let tx = c.transaction().await.map_err(db)?;
    let Some(row) = tx
        .query_opt(
            "SELECT d.message_id, d.idx, d.state, postwire_now_ms() FROM postwire_messages m
             JOIN postwire_deliveries d ON d.message_id = m.id
             WHERE m.token = $1 AND m.client_id = $2 AND d.rcpt = $3
             ORDER BY d.idx LIMIT 1 FOR UPDATE OF d",
            &[&key.token, &key.id, &rcpt],
        )
        .await
        .map_err(db)?
    else {
        return Ok(false);
    };
    let id: i64 = row.get(0);
    let idx: i32 = row.get(1);
    let now = to_u64(row.get(3));
    let before = state_of(row.get(2));
    if !matches!(before, RcptState::Delivered { .. }) && !before.is_report() {
        return Ok(false);
    }
    match &mut state {
        RcptState::Bounced { at_ms, .. } | RcptState::Complained { at_ms, .. } if *at_ms == 0 => {
            *at_ms = now;
        }
        _ => {}
    }
    tx.execute(
        "UPDATE postwire_deliveries SET state = $3, final = true WHERE message_id = $1 AND idx = $2",
        &[&id, &idx, &json(&state)?],
    )
    .await
    .map_err(db)?;
    let mut events = Vec::new();
    if let Some(kind) = EventKind::of_state(&state, 0) {
        events.push((rcpt, StoredKind::of(&kind), false));
    }
    insert_events(inner, &tx, id, &key, &events, now).await?;
    tx.commit().await.map_err(db)?;
    publish_local(inner, &key, events, now);
    Ok(true)
}

pub(super) async fn find(
    inner: &Inner,
    matches: &(dyn Fn(&Key) -> bool + Send + Sync),
) -> Result<Option<Key>, SpoolError> {
    let c = inner.conn().await?;
    let rows = c
        .query(
            "SELECT token, client_id FROM postwire_messages ORDER BY id DESC",
            &[],
        )
        .await
        .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|r| Key {
            token: r.get(0),
            id: r.get(1),
        })
        .find(|k| matches(k)))
}

/// Reads the views of the messages `filter` (an SQL condition on `m`) selects.
async fn views(
    c: &tokio_postgres::Client,
    filter: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<(i64, MessageView)>, SpoolError> {
    let sql = format!(
        "SELECT m.id, m.token, m.client_id, m.mail_from, m.received_ms, m.size, m.held, m.attempts,
                (SELECT min(d.next_attempt_ms) FROM postwire_deliveries d WHERE d.message_id = m.id AND NOT d.final),
                (SELECT bool_or(d.lease_expires_ms > postwire_now_ms()) FROM postwire_deliveries d WHERE d.message_id = m.id AND NOT d.final),
                (SELECT json_agg(json_build_array(d.rcpt, d.state) ORDER BY d.idx) FROM postwire_deliveries d WHERE d.message_id = m.id),
                m.final_ms
         FROM postwire_messages m WHERE NOT m.deleted AND {filter}"
    );
    let rows = c.query(&sql, params).await.map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let rcpts: Vec<RcptStatus> = r
                .get::<_, Option<Value>>(10)
                .and_then(|v| serde_json::from_value::<Vec<(String, Value)>>(v).ok())
                .unwrap_or_default()
                .into_iter()
                .map(|(rcpt, state)| RcptStatus {
                    rcpt,
                    state: state_of(state),
                })
                .collect();
            let held: bool = r.get(6);
            let in_flight = r.get::<_, Option<bool>>(9).unwrap_or(false);
            let final_ms: Option<i64> = r.get(11);
            let view = MessageView {
                key: Key {
                    token: r.get(1),
                    id: r.get(2),
                },
                mail_from: r.get(3),
                received_ms: to_u64(r.get(4)),
                size: if final_ms.is_some() {
                    0
                } else {
                    to_u64(r.get(5))
                },
                held,
                in_flight,
                attempts: u32::try_from(r.get::<_, i32>(7)).unwrap_or(0),
                next_attempt_ms: if held || in_flight {
                    None
                } else {
                    r.get::<_, Option<i64>>(8).map(to_u64)
                },
                rcpts,
                history: Vec::new(),
            };
            (r.get(0), view)
        })
        .collect())
}

pub(super) async fn messages(inner: &Inner) -> Result<Vec<MessageView>, SpoolError> {
    let c = inner.conn().await?;
    let filter = format!(
        "m.id IN (SELECT id FROM postwire_messages WHERE NOT deleted ORDER BY id DESC LIMIT {LIST_LIMIT})"
    );
    Ok(views(&c, &filter, &[])
        .await?
        .into_iter()
        .map(|(_, v)| v)
        .collect())
}

pub(super) async fn message(inner: &Inner, key: &Key) -> Result<Option<MessageView>, SpoolError> {
    let c = inner.conn().await?;
    let Some((id, mut view)) = views(
        &c,
        "m.token = $1 AND m.client_id = $2",
        &[&key.token, &key.id],
    )
    .await?
    .into_iter()
    .next() else {
        return Ok(None);
    };
    let rows = c
        .query(
            "SELECT rcpt, kind, at_ms FROM postwire_events WHERE message_id = $1 ORDER BY seq",
            &[&id],
        )
        .await
        .map_err(db)?;
    for r in rows {
        let Ok(kind) = serde_json::from_value::<StoredKind>(r.get(1)) else {
            continue;
        };
        let at_ms = to_u64(r.get(2));
        let rcpt: String = r.get(0);
        if kind == StoredKind::Accepted {
            for rs in &view.rcpts {
                view.history.push(HistoryItem {
                    rcpt: rs.rcpt.clone(),
                    at_ms,
                    state: RcptState::Queued,
                });
            }
            continue;
        }
        let mut state = kind.state();
        if let RcptState::Bounced { at_ms: a, .. } | RcptState::Complained { at_ms: a, .. } =
            &mut state
        {
            *a = at_ms;
        }
        view.history.push(HistoryItem { rcpt, at_ms, state });
    }
    Ok(Some(view))
}

pub(super) async fn message_bytes(inner: &Inner, key: &Key) -> Result<Option<Vec<u8>>, SpoolError> {
    let c = inner.conn().await?;
    let Some(row) = c
        .query_opt(
            "SELECT id, size FROM postwire_messages
             WHERE token = $1 AND client_id = $2 AND NOT deleted AND final_ms IS NULL",
            &[&key.token, &key.id],
        )
        .await
        .map_err(db)?
    else {
        return Ok(None);
    };
    let bytes = read_bytes(&c, row.get(0)).await?;
    // Shorter: it became final (its chunks deleted) since the first read.
    let size: i64 = row.get(1);
    Ok((i64::try_from(bytes.len()).ok() == Some(size)).then_some(bytes))
}

pub(super) async fn control(
    inner: &Inner,
    key: Key,
    action: Control,
) -> Result<Controlled, SpoolError> {
    let mut c = inner.conn().await?;
    let tx = c.transaction().await.map_err(db)?;
    let Some(m) = tx
        .query_opt(
            "SELECT id, held, final_ms IS NOT NULL, postwire_now_ms() FROM postwire_messages
             WHERE token = $1 AND client_id = $2 AND NOT deleted FOR UPDATE",
            &[&key.token, &key.id],
        )
        .await
        .map_err(db)?
    else {
        return Ok(Controlled::NotFound);
    };
    let id: i64 = m.get(0);
    let held: bool = m.get(1);
    let final_: bool = m.get(2);
    let now = to_u64(m.get(3));
    let conflict = |s: &str| Ok(Controlled::Conflict(s.to_string()));
    match action {
        Control::Retry => {
            if final_ {
                return conflict("every recipient is final: nothing to retry");
            }
            tx.execute(
                "UPDATE postwire_deliveries SET next_attempt_ms = postwire_now_ms()
                 WHERE message_id = $1 AND NOT final AND lease_token IS NULL",
                &[&id],
            )
            .await
            .map_err(db)?;
        }
        Control::Hold | Control::Release => {
            if final_ {
                return conflict("every recipient is final");
            }
            let hold = action == Control::Hold;
            if hold == held {
                return Ok(Controlled::Done);
            }
            tx.execute(
                "UPDATE postwire_messages SET held = $2 WHERE id = $1",
                &[&id, &hold],
            )
            .await
            .map_err(db)?;
            if !hold {
                tx.execute(
                    "UPDATE postwire_deliveries SET next_attempt_ms = postwire_now_ms()
                     WHERE message_id = $1 AND NOT final AND lease_token IS NULL",
                    &[&id],
                )
                .await
                .map_err(db)?;
            }
        }
        Control::Cancel(reason) => {
            if final_ {
                return conflict("every recipient is final: nothing to cancel");
            }
            let leased: bool = tx
                .query_one(
                    "SELECT coalesce(bool_or(lease_expires_ms > postwire_now_ms()), false)
                     FROM postwire_deliveries WHERE message_id = $1 AND NOT final",
                    &[&id],
                )
                .await
                .map_err(db)?
                .get(0);
            if leased {
                return conflict(
                    "a delivery attempt is in flight; hold the message and cancel it once the attempt has finished",
                );
            }
            let state = RcptState::Failed {
                reason: reason.clone(),
            };
            let rows = tx
                .query(
                    "UPDATE postwire_deliveries
                     SET state = $2, final = true, next_attempt_ms = NULL,
                         lease_owner = NULL, lease_expires_ms = NULL, lease_token = NULL
                     WHERE message_id = $1 AND NOT final RETURNING rcpt, idx",
                    &[&id, &json(&state)?],
                )
                .await
                .map_err(db)?;
            let mut rows: Vec<(i32, String)> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
            rows.sort();
            let mut events: Vec<(String, StoredKind, bool)> = rows
                .into_iter()
                .map(|(_, rcpt)| {
                    (
                        rcpt,
                        StoredKind::Failed {
                            reason: reason.clone(),
                        },
                        false,
                    )
                })
                .collect();
            finish_if_final(&tx, id, now).await?;
            if let Some(last) = events.last_mut() {
                last.2 = true;
            }
            insert_events(inner, &tx, id, &key, &events, now).await?;
            tx.commit().await.map_err(db)?;
            publish_local(inner, &key, events, now);
            return Ok(Controlled::Done);
        }
        Control::Delete => {
            if !final_ {
                return conflict("some recipients are not final: cancel the message first");
            }
            tx.execute(
                "UPDATE postwire_messages SET deleted = true WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(db)?;
        }
    }
    tx.commit().await.map_err(db)?;
    inner.due.notify_one();
    inner.wake_others(true, false);
    Ok(Controlled::Done)
}
