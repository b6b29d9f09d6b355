//! The PostgreSQL spool's background work, one set per relay: following
//! `postwire_events` into the relay's broadcast of every event, the
//! `LISTEN` connection that wakes the follower and the delivery workers,
//! and housekeeping (the shared queue depth, retention).
//!
//! # Following with a sequence that commits out of order
//!
//! `seq` values are handed out when rows are inserted, not when they
//! commit: a transaction holding seq 7 may commit after one holding seq 8.
//! The follower therefore keeps a cursor below which every row was seen,
//! and the set of rows seen above it; each round it reads the rows after
//! the highest seen, and the missing numbers between the cursor and it
//! (rows that may still commit), publishes rows not seen yet, and moves
//! the cursor over a gap only once the gap is [`GAP_WAIT`] old (a
//! rolled-back insert, or a database crash, leaves a gap for ever). Every
//! committed event is published once, however the commits interleave; a
//! gap neither holds back the rows after it nor makes them read again.

use std::collections::BTreeSet;
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::kinds::StoredKind;
use super::{Inner, db};
use crate::spool::{Event, Key, SpoolError};

/// How often the follower reads the table without a notification.
const POLL: Duration = Duration::from_secs(1);
/// How long a gap in `seq` may be an insert still committing.
const GAP_WAIT: Duration = Duration::from_secs(30);
/// Most rows read per round.
const BATCH: i64 = 2000;
/// Most missing numbers (gaps) looked up again per round.
const MISSING: usize = 2000;
/// How often housekeeping runs.
const HOUSEKEEPING: Duration = Duration::from_secs(30);

/// The cursor to start from: events from now on.
pub(super) async fn start_cursor(inner: &Inner) -> Result<i64, SpoolError> {
    let c = inner.conn().await?;
    let row = c
        .query_one("SELECT coalesce(max(seq), 0) FROM postwire_events", &[])
        .await
        .map_err(db)?;
    Ok(row.get(0))
}

/// Reads new events and publishes them to the relay's `all` broadcast.
pub(super) async fn follow(inner: Weak<Inner>, mut cursor: i64) {
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    let mut gap_since: Option<Instant> = None;
    let mut failing = false;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let full = match round(&strong, &mut cursor, &mut seen, &mut gap_since).await {
            Ok(full) => {
                failing = false;
                full
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read events from the spool database; retrying");
                }
                failing = true;
                false
            }
        };
        if full {
            continue;
        }
        // (The tasks are aborted when the spool is dropped.)
        tokio::select! {
            () = strong.events.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One read; `true` when the batch was full (read again at once).
async fn round(
    inner: &Inner,
    cursor: &mut i64,
    seen: &mut BTreeSet<i64>,
    gap_since: &mut Option<Instant>,
) -> Result<bool, SpoolError> {
    // After the highest row seen; plus, while there are gaps, the numbers
    // missing below it (reading from the cursor would return the rows seen
    // above a gap again, and never more than a batch of them).
    let high = seen.last().copied().unwrap_or(*cursor).max(*cursor);
    let missing: Vec<i64> = (*cursor + 1..high)
        .filter(|s| !seen.contains(s))
        .take(MISSING)
        .collect();
    let c = inner.conn().await?;
    let mut rows = c
        .query(
            "SELECT seq, token, client_id, rcpt, kind, last FROM postwire_events
             WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&high, &BATCH],
        )
        .await
        .map_err(db)?;
    let full = i64::try_from(rows.len()).unwrap_or(0) == BATCH;
    if !missing.is_empty() {
        let late = c
            .query(
                "SELECT seq, token, client_id, rcpt, kind, last FROM postwire_events
                 WHERE seq = ANY($1) ORDER BY seq",
                &[&missing],
            )
            .await
            .map_err(db)?;
        rows.splice(0..0, late);
    }
    drop(c);
    for r in rows {
        let seq: i64 = r.get(0);
        if !seen.insert(seq) {
            continue;
        }
        let Ok(kind) = serde_json::from_value::<StoredKind>(r.get(4)) else {
            continue;
        };
        let Some(kind) = kind.event() else { continue };
        let _ = inner.all.send(Event {
            key: Key {
                token: r.get(1),
                id: r.get(2),
            },
            rcpt: r.get(3),
            kind,
            last: r.get(5),
        });
    }
    // Move the cursor over what is contiguous, and over gaps old enough.
    while let Some(&first) = seen.first() {
        if first == *cursor + 1 {
            seen.pop_first();
            *cursor = first;
            *gap_since = None;
            continue;
        }
        let since = *gap_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= GAP_WAIT {
            *cursor = first - 1;
            *gap_since = None;
            continue;
        }
        break;
    }
    Ok(full)
}

/// Keeps a `LISTEN` connection: `postwire_events` wakes the follower,
/// `postwire_due` the delivery workers. Reconnects by itself.
pub(super) async fn listen(inner: Weak<Inner>) {
    let mut failing = false;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let url = strong.url.clone();
        drop(strong);
        match url.connect_one().await {
            Ok((client, mut stream)) => {
                let weak = inner.clone();
                let driver = tokio::spawn(async move {
                    while let Some(m) = stream.next().await {
                        let Ok(tokio_postgres::AsyncMessage::Notification(n)) = m else {
                            if m.is_err() {
                                return;
                            }
                            continue;
                        };
                        let Some(inner) = weak.upgrade() else { return };
                        match n.channel() {
                            "postwire_events" => inner.events.notify_one(),
                            "postwire_due" => inner.due.notify_waiters(),
                            _ => {}
                        }
                    }
                });
                if client
                    .batch_execute("LISTEN postwire_events; LISTEN postwire_due")
                    .await
                    .is_ok()
                {
                    if failing {
                        tracing::info!("spool database notifications restored");
                    }
                    failing = false;
                    // Whatever happened while we were not listening.
                    if let Some(inner) = inner.upgrade() {
                        inner.events.notify_one();
                        inner.due.notify_waiters();
                    }
                }
                let _ = driver.await;
                drop(client);
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "no notification connection to the spool database; polling meanwhile");
                }
                failing = true;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The shared queue depth every few seconds; retention every
/// [`HOUSEKEEPING`]. Every relay runs it; each statement is safe run by
/// many at once (a row another relay deleted first is simply not there).
pub(super) async fn housekeeping(inner: Weak<Inner>) {
    let mut last_retention: Option<Instant> = None;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        // Also the judgment of `/readyz` (Spool::usable).
        match depth(&strong).await {
            Ok(()) => strong.reachable.store(true, Ordering::Relaxed),
            Err(e) => {
                strong.reachable.store(false, Ordering::Relaxed);
                tracing::debug!(error = %e, "cannot read the shared queue depth");
            }
        }
        if last_retention.is_none_or(|t| t.elapsed() >= HOUSEKEEPING) {
            last_retention = Some(Instant::now());
            if let Err(e) = retention(&strong).await {
                tracing::warn!(error = %e, "spool housekeeping failed; trying again later");
            }
        }
        drop(strong);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn depth(inner: &Inner) -> Result<(), SpoolError> {
    let c = inner.conn().await?;
    let n: i64 = c
        .query_one(
            "SELECT count(DISTINCT message_id) FROM postwire_deliveries WHERE NOT final",
            &[],
        )
        .await
        .map_err(db)?
        .get(0);
    inner
        .shared_queued
        .store(usize::try_from(n).unwrap_or(0), Ordering::Relaxed);
    Ok(())
}

/// Forgets messages (and so their keys) and events past retention, in
/// batches; a rate-limit window a few minutes old.
async fn retention(inner: &Inner) -> Result<(), SpoolError> {
    let c = inner.conn().await?;
    let retain = i64::try_from(inner.opts.retain.as_millis()).unwrap_or(i64::MAX);
    loop {
        let n = c
            .execute(
                "DELETE FROM postwire_messages WHERE id IN (
                   SELECT id FROM postwire_messages
                   WHERE final_ms IS NOT NULL AND final_ms < postwire_now_ms() - $1
                   LIMIT 1000 FOR UPDATE SKIP LOCKED)",
                &[&retain],
            )
            .await
            .map_err(db)?;
        if n < 1000 {
            break;
        }
    }
    loop {
        let n = c
            .execute(
                "DELETE FROM postwire_events WHERE seq IN (
                   SELECT e.seq FROM postwire_events e
                   WHERE e.at_ms < postwire_now_ms() - $1
                     AND NOT EXISTS (SELECT 1 FROM postwire_messages m WHERE m.id = e.message_id)
                   LIMIT 5000 FOR UPDATE SKIP LOCKED)",
                &[&retain],
            )
            .await
            .map_err(db)?;
        if n < 5000 {
            break;
        }
    }
    c.execute(
        "DELETE FROM postwire_rate WHERE minute < postwire_now_ms() / 60000 - 5",
        &[],
    )
    .await
    .map_err(db)?;
    Ok(())
}
