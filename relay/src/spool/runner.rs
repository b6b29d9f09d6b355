//! The delivery runner: N workers that lease due messages from a [`Spool`],
//! hand them to a [`Deliver`] and settle the outcome. A worker does not wait
//! for the outcome's fsync before taking the next message (the message stays
//! leased until its outcome is recorded, so nothing is sent twice for it).
//! Shutdown: once the spool is closed, workers finish the attempt in hand,
//! wait for their outcomes to be recorded, and stop; everything not attempted
//! stays spooled.

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use super::deliver::Deliver;
use super::{Lease, Outcome, Spool};
use crate::server::metrics::Metrics;

/// Starts `deliver.concurrency()` workers; the returned set ends when the
/// spool is closed and every attempt in flight has been settled.
pub fn start(
    spool: Arc<dyn Spool>,
    deliver: Arc<dyn Deliver>,
    metrics: Arc<Metrics>,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for worker in 0..deliver.concurrency().max(1) {
        let spool = Arc::clone(&spool);
        let deliver = Arc::clone(&deliver);
        let metrics = Arc::clone(&metrics);
        set.spawn(async move {
            let mut settling = JoinSet::new();
            while let Some(lease) = spool.next().await {
                let started = Instant::now();
                let outcomes = deliver_renewing(spool.as_ref(), deliver.as_ref(), &lease).await;
                metrics.delivery_latency.observe(started.elapsed());
                let key = lease.key.clone();
                let spool = Arc::clone(&spool);
                settling.spawn(async move {
                    match spool.settle(lease, outcomes).await {
                        Ok(()) => {}
                        Err(e @ super::SpoolError::LeaseLost(_)) => {
                            tracing::warn!(worker, id = %key.id, token = %key.token, error = %e,
                                "lease lost: this attempt's outcome was refused");
                        }
                        Err(e) => {
                            tracing::error!(worker, id = %key.id, token = %key.token, error = %e,
                                "cannot settle a delivery attempt; it will be retried");
                        }
                    }
                });
                // At most one outcome awaiting its fsync per worker: a crash
                // then re-sends at most the message on the wire and that one.
                while settling.len() > 1 {
                    settling.join_next().await;
                }
            }
            while settling.join_next().await.is_some() {}
        });
    }
    set
}

/// Delivers `lease`, renewing it every [`Spool::renew_every`] while the
/// transfer runs (a shared spool's lease expires so that another relay can
/// take over from a dead one; a live one keeps it).
async fn deliver_renewing(
    spool: &dyn Spool,
    deliver: &dyn Deliver,
    lease: &Lease,
) -> Vec<(String, Outcome)> {
    let Some(every) = spool.renew_every() else {
        return deliver.deliver(lease).await;
    };
    let transfer = deliver.deliver(lease);
    tokio::pin!(transfer);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut lost = false;
    loop {
        tokio::select! {
            outcomes = &mut transfer => return outcomes,
            _ = tick.tick(), if !lost => match spool.renew(lease).await {
                Ok(true) => {}
                Ok(false) => {
                    lost = true;
                    tracing::warn!(id = %lease.key.id, token = %lease.key.token,
                        "lease lost during a transfer (another relay may send this message too); its outcome will be refused");
                }
                Err(e) => tracing::warn!(id = %lease.key.id, error = %e, "cannot renew a lease"),
            },
        }
    }
}
