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

use super::Spool;
use super::deliver::Deliver;
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
                let outcomes = deliver.deliver(&lease).await;
                metrics.delivery_latency.observe(started.elapsed());
                let key = lease.key.clone();
                let spool = Arc::clone(&spool);
                settling.spawn(async move {
                    if let Err(e) = spool.settle(lease, outcomes).await {
                        tracing::error!(worker, id = %key.id, token = %key.token, error = %e,
                            "cannot settle a delivery attempt; it will be retried");
                    }
                });
                while settling.try_join_next().is_some() {}
            }
            while settling.join_next().await.is_some() {}
        });
    }
    set
}
