//! The PostgreSQL spool's statements: accept, claim, settle, renew, status,
//! reports, the operator's view and actions. Each write is one transaction;
//! see the module doc of [`super`] for what each promises.

use deadpool_postgres::Transaction;
use serde_json::Value;

use super::kinds::StoredKind;
use super::{Inner, db};
use crate::spool::{
    Control, Controlled, Event, EventKind, HistoryItem, Key, Lease, MessageView, RcptState,
    RcptStatus, SpoolError,
};

/// Most messages the operator's list reads.
const LIST_LIMIT: i64 = 10_000;

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// `v` as a `jsonb` value. PostgreSQL's `jsonb` refuses the NUL character,
/// which an upstream's reply or a bounce can carry: it is stored as U+FFFD,
/// so that such a text cannot keep an outcome from being recorded.
pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<Value, SpoolError> {
    let mut v = serde_json::to_value(v).map_err(|e| SpoolError::Encode(e.to_string()))?;
    without_nul(&mut v);
    Ok(v)
}

fn without_nul(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{FFFD}"),
        Value::Array(items) => items.iter_mut().for_each(without_nul),
        Value::Object(map) => map.values_mut().for_each(without_nul),
        _ => {}
    }
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
pub(super) fn publish_local(
    inner: &Inner,
    key: &Key,
    events: Vec<(String, StoredKind, bool)>,
    at_ms: u64,
) {
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
            // Found by the message's key (an index), then the fence.
            "UPDATE postwire_deliveries SET lease_expires_ms = postwire_now_ms() + $2
             WHERE message_id = (SELECT id FROM postwire_messages WHERE token = $3 AND client_id = $4)
               AND lease_token = $1 AND NOT final",
            &[&to_i64(lease.fence), &lease_ms, &lease.key.token, &lease.key.id],
        )
        .await
        .map_err(db)?;
    Ok(n > 0)
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
