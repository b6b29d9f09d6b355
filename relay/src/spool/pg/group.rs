//! The protocol that grouped writes share ([`super::accept`],
//! [`super::settle`]), and [`lock`], which every mutex of the spool's
//! in-memory state uses.
//!
//! A caller queues its item with a reply channel and waits for one of a few
//! permits. Holding one, it runs rounds, each of which writes the oldest
//! queued items as one group and answers each of them, until its own answer
//! is in or nothing is left queued; then it gives the permit back and waits
//! for its answer (a round of another caller may be writing it). Every
//! queued item is so written by some caller: the one that queued it does
//! not leave before its answer is in.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::{Semaphore, oneshot};

/// `m` locked; a panic elsewhere while it was held does not make it
/// unusable (every change under these locks is one step: a push, a drain,
/// an insert or a decrement).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `round` under a permit of `permits` until `answer` holds this
/// caller's answer or a round finds nothing queued (it returns `false`),
/// then waits for the answer. `abandoned` is the answer when the round that
/// held this caller's item was dropped before answering it.
pub(super) async fn lead<R, F: Future<Output = bool>>(
    permits: &Semaphore,
    mut answer: oneshot::Receiver<R>,
    mut round: impl FnMut() -> F,
    abandoned: impl FnOnce() -> R,
) -> R {
    let permit = permits.acquire().await.ok();
    loop {
        if let Ok(r) = answer.try_recv() {
            return r;
        }
        if !round().await {
            break;
        }
    }
    drop(permit);
    answer.await.unwrap_or_else(|_| abandoned())
}
