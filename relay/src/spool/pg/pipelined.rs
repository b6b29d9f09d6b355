//! A transaction whose `BEGIN` travels with its first statement and whose
//! `COMMIT` travels with its last (tokio-postgres pipelines requests polled
//! together), so that a read-then-write transaction costs two round trips
//! instead of four. `tokio_postgres::Transaction` cannot do this: it waits
//! for `BEGIN` before anything else is sent.
//!
//! If the owner stops before the transaction ended (an error path that did
//! not roll back, or a cancelled future), the connection is taken out of the
//! pool and closed on drop, so PostgreSQL rolls the transaction back and no
//! later user of the pool inherits it.

use deadpool_postgres::Object;

/// A pooled connection with a transaction that may be open.
pub(super) struct Pipelined {
    conn: Option<Object>,
    open: bool,
}

impl Pipelined {
    /// Wraps `conn` (no transaction yet).
    pub(super) fn new(conn: Object) -> Self {
        Pipelined {
            conn: Some(conn),
            open: false,
        }
    }

    /// The connection.
    pub(super) fn client(&self) -> &Object {
        // `conn` is `None` only inside `drop`.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// `BEGIN` is about to be sent: from now on the transaction counts as
    /// open (a `ROLLBACK` without one is only a warning from the server).
    pub(super) fn begun(&mut self) {
        self.open = true;
    }

    /// `COMMIT` (or `ROLLBACK`) has been answered, whatever the answer: the
    /// server ended the transaction, or the connection is broken (and the
    /// pool drops it).
    pub(super) fn ended(&mut self) {
        self.open = false;
    }

    /// Rolls back an open transaction (an error path).
    pub(super) async fn rollback(&mut self) {
        if self.open && self.client().batch_execute("ROLLBACK").await.is_ok() {
            self.open = false;
        }
    }
}

impl Drop for Pipelined {
    fn drop(&mut self) {
        if self.open
            && let Some(conn) = self.conn.take()
        {
            // Closed, not returned to the pool: the server rolls back.
            drop(Object::take(conn));
        }
    }
}
