//! Accepts: each submission stored with its idempotency key, recipients and
//! first event, the submissions of many clients in one statement.
//!
//! Up to [`GROUPS`] accept statements run at once per relay. A submission
//! that arrives while they all run is queued, and the next statement stores
//! every submission then queued (up to [`GROUP_BYTES`] of message bytes):
//! one statement, one transaction and one WAL flush for the group instead
//! of one each. Each submission is answered for itself (`Stored`, or
//! `Duplicate` when its key was already there), and only after the
//! statement has committed. The statement runs in a task of its own, so a
//! client that goes away while it runs does not cancel the others' accepts.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::group;
use super::kinds::StoredKind;
use super::ops::{json, to_i64};
use super::{CHUNK_BYTES, Inner};
use crate::spool::{Accepted, RcptState, SpoolError, Submission};

/// Accept statements of one relay at once.
pub(super) const GROUPS: usize = 2;

/// Most message bytes one statement carries (a larger message goes alone).
const GROUP_BYTES: usize = 8 << 20;

/// One submission waiting for its statement.
pub(super) struct Pending {
    sub: Submission,
    reply: oneshot::Sender<Result<Accepted, SpoolError>>,
}

/// Stores `sub` (see the module doc).
pub(super) async fn accept(inner: &Arc<Inner>, sub: Submission) -> Result<Accepted, SpoolError> {
    let (reply, answer) = oneshot::channel();
    group::lock(&inner.accepts).push(Pending { sub, reply });
    // Each round stores the oldest queued submissions, in a task of its own.
    let round = || async {
        let group = take_group(inner);
        if group.is_empty() {
            return false;
        }
        let inner = Arc::clone(inner);
        let _ = tokio::spawn(async move { store_group(&inner, group).await }).await;
        true
    };
    group::lead(&inner.accepting, answer, round, || {
        Err(SpoolError::NotStored(
            "the accept was abandoned before its statement ended".into(),
        ))
    })
    .await
}

/// The next group from the queue, in arrival order: up to [`GROUP_BYTES`],
/// and one submission per key (a second one with the same key waits for
/// the next group, so that it is answered `Duplicate`).
fn take_group(inner: &Inner) -> Vec<Pending> {
    let mut queue = group::lock(&inner.accepts);
    let mut keys = HashSet::new();
    let mut bytes = 0usize;
    let mut group = Vec::new();
    let mut rest = Vec::new();
    for p in queue.drain(..) {
        let fits = group.is_empty() || bytes + p.sub.bytes.len() <= GROUP_BYTES;
        if fits && keys.insert(p.sub.meta.key.clone()) {
            bytes += p.sub.bytes.len();
            group.push(p);
        } else {
            rest.push(p);
        }
    }
    *queue = rest;
    group
}

/// One statement (so one round trip, atomic without `BEGIN`) for the group,
/// each submission's row addressed by its position `o` (from 1): the message
/// rows (those whose key is new; inserted in key order, so that two
/// statements holding one key each and waiting for the other's cannot
/// happen: a deadlock), their chunks, one delivery row per
/// recipient, their `accepted` events; the positions stored come back.
const ACCEPT: &str = "
WITH v AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $5::bigint[], $6::bigint[])
    WITH ORDINALITY AS v(token, client_id, envelope, mail_from, received_ms, size, o)
), m AS (
  INSERT INTO postwire_messages (token, client_id, envelope, mail_from, received_ms, size)
  SELECT token, client_id, envelope, mail_from, received_ms, size FROM v ORDER BY token, client_id
  ON CONFLICT (token, client_id) DO NOTHING RETURNING id, token, client_id
), mo AS (
  SELECT m.id, v.o, v.token, v.client_id, v.received_ms
  FROM m JOIN v ON v.token = m.token AND v.client_id = m.client_id
), c AS (
  INSERT INTO postwire_message_chunks (message_id, seq, data)
  SELECT mo.id, t.seq, t.data
  FROM unnest($7::bigint[], $8::integer[], $9::bytea[]) AS t(o, seq, data) JOIN mo ON mo.o = t.o
), d AS (
  INSERT INTO postwire_deliveries (message_id, idx, rcpt, state, next_attempt_ms)
  SELECT mo.id, t.idx, t.rcpt, $10, postwire_now_ms()
  FROM unnest($11::bigint[], $12::integer[], $13::text[]) AS t(o, idx, rcpt) JOIN mo ON mo.o = t.o
), e AS (
  INSERT INTO postwire_events (message_id, token, client_id, rcpt, kind, last, at_ms, relay)
  SELECT mo.id, mo.token, mo.client_id, '', $14, false, mo.received_ms, $15 FROM mo ORDER BY mo.o
)
SELECT o FROM mo";

/// Stores `group` and answers each submission. When the database refuses
/// the group's statement (not a lost connection), each submission is tried
/// alone, so that one the database cannot take (a text it refuses, say)
/// fails by itself and not the others of its group.
async fn store_group(inner: &Inner, group: Vec<Pending>) {
    if group.len() > 1 {
        match store(inner, &group).await {
            Ok(stored) => answer(inner, group, Ok(stored)),
            Err(Refused::Statement(e)) => {
                tracing::warn!(error = %e, submissions = group.len(),
                    "the database refused a group of accepts; trying each alone");
                for p in group {
                    let r = store(inner, std::slice::from_ref(&p)).await;
                    answer(inner, vec![p], r);
                }
            }
            Err(e) => answer(inner, group, Err(e)),
        }
    } else {
        let r = store(inner, &group).await;
        answer(inner, group, r);
    }
}

/// Why a group was not stored.
enum Refused {
    /// No connection, or it broke.
    Connection(String),
    /// The database refused the statement.
    Statement(String),
}

impl Refused {
    fn text(self) -> String {
        match self {
            Refused::Connection(e) | Refused::Statement(e) => e,
        }
    }
}

/// Answers each submission of `group` from the result of its statement.
fn answer(inner: &Inner, group: Vec<Pending>, result: Result<Vec<bool>, Refused>) {
    match result {
        Ok(stored) => {
            let any = stored.iter().any(|s| *s);
            for (p, s) in group.into_iter().zip(stored) {
                let _ = p.reply.send(Ok(if s {
                    Accepted::Stored
                } else {
                    Accepted::Duplicate
                }));
            }
            if any {
                inner.due.notify_one();
                inner.wake_others(true, true);
            }
        }
        Err(e) => {
            let e = e.text();
            for p in group {
                let _ = p.reply.send(Err(SpoolError::NotStored(e.clone())));
            }
        }
    }
}

/// Runs [`ACCEPT`] for `group`: per submission, whether it was stored (its
/// key was new). `Err` says why nothing was stored.
async fn store(inner: &Inner, group: &[Pending]) -> Result<Vec<bool>, Refused> {
    let c = inner
        .conn()
        .await
        .map_err(|e| Refused::Connection(e.to_string()))?;
    let mut tokens = Vec::with_capacity(group.len());
    let mut ids = Vec::with_capacity(group.len());
    let mut envelopes = Vec::with_capacity(group.len());
    let mut froms = Vec::with_capacity(group.len());
    let mut received = Vec::with_capacity(group.len());
    let mut sizes = Vec::with_capacity(group.len());
    let (mut c_o, mut c_seq, mut c_data) = (Vec::new(), Vec::new(), Vec::<&[u8]>::new());
    let (mut d_o, mut d_idx, mut d_rcpt) = (Vec::new(), Vec::new(), Vec::<&str>::new());
    for (o, p) in (1i64..).zip(group) {
        let meta = &p.sub.meta;
        tokens.push(meta.key.token.as_str());
        ids.push(meta.key.id.as_str());
        envelopes.push(json(&meta.envelope).map_err(|e| Refused::Statement(e.to_string()))?);
        froms.push(meta.envelope.mail_from.as_str());
        received.push(to_i64(meta.received_ms));
        sizes.push(i64::try_from(p.sub.bytes.len()).unwrap_or(i64::MAX));
        // An empty message still has its one (empty) chunk.
        let chunks: Vec<&[u8]> = if p.sub.bytes.is_empty() {
            vec![&[][..]]
        } else {
            p.sub.bytes.chunks(CHUNK_BYTES).collect()
        };
        for (seq, chunk) in (0i32..).zip(chunks) {
            c_o.push(o);
            c_seq.push(seq);
            c_data.push(chunk);
        }
        for (idx, rcpt) in (0i32..).zip(&meta.envelope.rcpt_to) {
            d_o.push(o);
            d_idx.push(idx);
            d_rcpt.push(rcpt.as_str());
        }
    }
    let queued = json(&RcptState::Queued).map_err(|e| Refused::Statement(e.to_string()))?;
    let accepted = json(&StoredKind::Accepted).map_err(|e| Refused::Statement(e.to_string()))?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 15] = [
        &tokens,
        &ids,
        &envelopes,
        &froms,
        &received,
        &sizes,
        &c_o,
        &c_seq,
        &c_data,
        &queued,
        &d_o,
        &d_idx,
        &d_rcpt,
        &accepted,
        &inner.pg.relay_name,
    ];
    let database = |e: tokio_postgres::Error| {
        let text = format!("database: {}", super::describe(&e));
        if e.as_db_error().is_some() {
            Refused::Statement(text)
        } else {
            Refused::Connection(text)
        }
    };
    let stmt = c.prepare_cached(ACCEPT).await.map_err(database)?;
    let rows = c.query(&stmt, &params).await.map_err(database)?;
    let mut stored = vec![false; group.len()];
    for r in rows {
        let o: i64 = r.get(0);
        if let Some(s) = usize::try_from(o - 1).ok().and_then(|i| stored.get_mut(i)) {
            *s = true;
        }
    }
    Ok(stored)
}
