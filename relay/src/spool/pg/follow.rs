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
//! and the set of rows seen above it; it reads the rows above the cursor it
//! has not seen yet, publishes them, and moves the cursor over what is
//! contiguous. A gap may be for ever (a rolled-back insert; the jump of
//! up to 32 values a sequence makes after a crash restart), so the
//! follower moves over a gap once no transaction can fill it any more:
//! every transaction that writes an event has its transaction id before it
//! takes a `seq` (each locks or changes a row first), so a transaction
//! holding a missing `seq` had its id when the read that found the gap
//! began: below the next id to be handed out then. (Not below that read's
//! snapshot `xmax`: `xmax` is one past the newest *completed* transaction,
//! and a running one may hold an id at or above it, one that took its id
//! after the writer of a row the read saw, and its `seq` before. The next
//! id is `xmax + age(xmax)`: `age` counts up to the next id.) Once a later
//! read's snapshot `xmin` has passed that next id, all of them have ended,
//! and that read shows every row they committed. (After [`GAP_WAIT`] a gap is moved
//! over whatever, should a long transaction of another application hold
//! `xmin` back.) Every committed event is published once, however the
//! commits interleave.

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
/// How often housekeeping runs.
const HOUSEKEEPING: Duration = Duration::from_secs(30);

/// How far below the newest event the follower starts, so that an event
/// whose transaction was still committing when the relay started (its
/// `seq` below the newest) is not missed.
const START_WINDOW: i64 = 1000;

/// Where the follower starts: events from now on. The cursor goes
/// [`START_WINDOW`] below the newest event, with the rows already there
/// counted as seen (not published): the missing ones are gaps like any
/// other, published if their transaction commits.
pub(super) struct Start {
    cursor: i64,
    seen: BTreeSet<i64>,
}

/// See [`Start`].
pub(super) async fn start_cursor(inner: &Inner) -> Result<Start, SpoolError> {
    let c = inner.conn().await?;
    let max: i64 = c
        .query_one("SELECT coalesce(max(seq), 0) FROM postwire_events", &[])
        .await
        .map_err(db)?
        .get(0);
    let cursor = max.saturating_sub(START_WINDOW).max(0);
    let seen = c
        .query(
            "SELECT seq FROM postwire_events WHERE seq > $1 AND seq <= $2",
            &[&cursor, &max],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Start { cursor, seen })
}

/// The gaps below the rows seen, waiting to be filled: since when, the next
/// transaction id at the read that found them, and the highest `seq` seen
/// then (every gap below it was already there).
#[derive(Debug, Clone, Copy)]
struct Gap {
    since: Instant,
    next_xid: i64,
    below: i64,
}

/// Reads new events and publishes them to the relay's `all` broadcast.
pub(super) async fn follow(inner: Weak<Inner>, start: Start) {
    let Start {
        mut cursor,
        mut seen,
    } = start;
    let mut gap: Option<Gap> = None;
    let mut failing = false;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let full = match round(&strong, &mut cursor, &mut seen, &mut gap).await {
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

/// The follower's read (prepared once per connection): the events above
/// the cursor not seen yet, after one row with the snapshot's `xmin` and
/// the next transaction id (see the module doc).
///
/// Written for a plan that reads only the rows above the cursor, whatever
/// the planner knows of the table (one not analyzed yet gets default
/// guesses; see [`statistics`]): the range is closed (`seq <= $1 + 2^40`,
/// never reached), which the planner takes for a narrow one and reads
/// through the primary key, where an open `seq > $1` is guessed at a third
/// of the table and read by a sequential scan of every event; and the rows
/// seen are left out by an anti-join rather than `seq <> ALL($3)`, which
/// compares every row with every seen one. Measured in bench/relay: the
/// follower's read went from 0.3-1.3 ms to 0.03 ms.
const READ: &str = "
(SELECT e.seq, e.token, e.client_id, e.rcpt, e.kind, e.last, NULL::text, NULL::text, e.at_ms
 FROM postwire_events e
 WHERE e.seq > $1 AND e.seq <= $1 + 1099511627776
   AND NOT EXISTS (SELECT FROM unnest($3::bigint[]) AS s(seq) WHERE s.seq = e.seq)
 ORDER BY e.seq LIMIT $2)
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL,
       pg_snapshot_xmin(pg_current_snapshot())::text,
       (pg_snapshot_xmax(pg_current_snapshot())::text::bigint
        + age(xid(pg_snapshot_xmax(pg_current_snapshot()))))::text, NULL
ORDER BY 1 NULLS FIRST LIMIT $2";

/// One read; `true` when the batch was full (read again at once).
async fn round(
    inner: &Inner,
    cursor: &mut i64,
    seen: &mut BTreeSet<i64>,
    gap: &mut Option<Gap>,
) -> Result<bool, SpoolError> {
    let c = inner.conn().await?;
    // The rows above the cursor not seen yet (those seen above a gap are
    // not read again, so a full batch is always new rows), and the read's
    // snapshot bounds (xid8 as text: no driver type for it).
    let seen_list: Vec<i64> = seen.iter().copied().collect();
    let read = c.prepare_cached(READ).await.map_err(db)?;
    let rows = c
        .query(&read, &[&*cursor, &(BATCH + 1), &seen_list])
        .await
        .map_err(db)?;
    drop(c);
    let xid = |r: &tokio_postgres::Row, i: usize| -> i64 {
        r.get::<_, Option<String>>(i)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    };
    // The first row is the one with the snapshot only.
    let (xmin, next_xid) = rows.first().map_or((0, 0), |r| (xid(r, 6), xid(r, 7)));
    let full = i64::try_from(rows.len()).unwrap_or(0) > BATCH;
    for r in rows {
        let Some(seq) = r.get::<_, Option<i64>>(0) else {
            continue;
        };
        if !seen.insert(seq) {
            continue;
        }
        let Ok(kind) = serde_json::from_value::<StoredKind>(r.get(4)) else {
            tracing::warn!(
                seq,
                "an event of the spool database has a kind this relay cannot read; skipped"
            );
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
            at_ms: u64::try_from(r.get::<_, Option<i64>>(8).unwrap_or(0)).unwrap_or(0),
        });
    }
    // Move the cursor over what is contiguous, and over gaps no
    // transaction can fill any more (see the module doc).
    while let Some(&first) = seen.first() {
        if first == *cursor + 1 {
            seen.pop_first();
            *cursor = first;
            continue;
        }
        match *gap {
            // Every gap below `below` was there when `g` was taken.
            Some(g) if first <= g.below => {
                if (g.next_xid > 0 && xmin >= g.next_xid) || g.since.elapsed() >= GAP_WAIT {
                    tracing::debug!(
                        from = *cursor + 1,
                        to = first - 1,
                        xmin,
                        next_xid = g.next_xid,
                        waited_ms =
                            u64::try_from(g.since.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "the event follower moves over a gap no transaction can fill"
                    );
                    *cursor = first - 1;
                    continue;
                }
                break;
            }
            _ => {
                *gap = Some(Gap {
                    since: Instant::now(),
                    next_xid,
                    below: seen.last().copied().unwrap_or(first),
                });
                break;
            }
        }
    }
    if gap.is_some_and(|g| *cursor >= g.below) {
        *gap = None;
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
                            "postwire_due" => inner.due.notify_one(),
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
                        inner.due.notify_one();
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
        if let Err(e) = statistics(&strong).await {
            tracing::debug!(error = %e, "cannot refresh the spool tables' statistics");
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

/// The spool's tables whose size swings: a queue empties and fills.
const TABLES: [&str; 5] = [
    "postwire_messages",
    "postwire_message_chunks",
    "postwire_deliveries",
    "postwire_events",
    "postwire_webhook_outbox",
];

/// Analyzes a spool table once it has changed by more than twice its size
/// at its last analysis (and by at least 1,000 rows), instead of waiting for
/// autovacuum, which looks at most once a minute and then only past 10% of
/// changes. Statements are planned from these statistics: plans made while
/// the tables were empty (a relay's first minute, or a queue that drained)
/// join by hash over sequential scans, and cost a millisecond each once
/// thousands of messages wait. `SKIP_LOCKED`: a table that autovacuum or
/// another relay is analyzing is left to them. Only tables this relay's
/// role may analyze (it owns them, as the role that migrated them) are
/// asked for; the others are left to autovacuum.
async fn statistics(inner: &Inner) -> Result<(), SpoolError> {
    let c = inner.conn().await?;
    let rows = c
        .query(
            "SELECT s.relname::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
             WHERE s.relname = ANY($1)
               AND s.n_mod_since_analyze > greatest(1000, 2 * greatest(c.reltuples, 0))
               AND pg_has_role(c.relowner, 'MEMBER')",
            &[&&TABLES[..]],
        )
        .await
        .map_err(db)?;
    for r in rows {
        let table: String = r.get(0);
        // Only names from TABLES reach here.
        if TABLES.contains(&table.as_str()) {
            c.batch_execute(&format!("ANALYZE (SKIP_LOCKED) {table}"))
                .await
                .map_err(db)?;
            tracing::debug!(table, "spool table analyzed");
        }
    }
    Ok(())
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

/// Sends the wake-ups [`Inner::wake_others`] asked for, at most one
/// `NOTIFY` per channel every [`NOTIFY_EVERY`], each in its own short
/// transaction (no WAL to flush), never inside a writing one.
pub(super) async fn notify_others(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        strong.notifier.notified().await;
        tokio::time::sleep(NOTIFY_EVERY).await;
        let due = strong.owe_due.swap(false, Ordering::Relaxed);
        let events = strong.owe_events.swap(false, Ordering::Relaxed);
        let sql = match (due, events) {
            (true, true) => {
                "SELECT pg_notify('postwire_due', ''), pg_notify('postwire_events', '')"
            }
            (true, false) => "SELECT pg_notify('postwire_due', '')",
            (false, true) => "SELECT pg_notify('postwire_events', '')",
            (false, false) => continue,
        };
        match strong.conn().await {
            Ok(c) => {
                if let Err(e) = c.batch_execute(sql).await {
                    tracing::debug!(error = %e, "cannot wake the other relays (they poll)");
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot wake the other relays (they poll)"),
        }
    }
}

/// How long wake-ups are gathered before one `NOTIFY` carries them.
const NOTIFY_EVERY: Duration = Duration::from_millis(10);
