//! A blocking face for the pool, for programs without an async runtime: it
//! owns a small tokio runtime and waits on each call.

use std::{path::Path, sync::Arc};

use postwire_core::envelope::Envelope;

use super::{
    error::SmtpError,
    pool::{BulkProgress, DeliveryResult, Outgoing, SmtpPool},
    settings::SmtpSettings,
};

/// [`SmtpPool`] with blocking methods. Do not use inside an async runtime.
#[derive(Debug)]
pub struct BlockingSmtpPool {
    runtime: tokio::runtime::Runtime,
    pool: SmtpPool,
}

impl BlockingSmtpPool {
    /// Starts a runtime and connects as [`SmtpPool::connect`] does.
    pub fn connect(settings: SmtpSettings) -> Result<Self, SmtpError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| SmtpError::Connect {
                server: format!("{}:{}", settings.host, settings.port),
                source,
            })?;
        let pool = runtime.block_on(SmtpPool::connect(settings))?;
        Ok(BlockingSmtpPool { runtime, pool })
    }

    /// See [`SmtpPool::send`].
    pub fn send(&self, envelope: &Envelope, message: impl Into<Arc<[u8]>>) -> DeliveryResult {
        self.runtime.block_on(self.pool.send(envelope, message))
    }

    /// See [`SmtpPool::send_spec`].
    pub fn send_spec(
        &self,
        spec: &postwire_core::spec::MessageSpec,
        options: &postwire_core::build::BuildOptions,
    ) -> DeliveryResult {
        self.runtime.block_on(self.pool.send_spec(spec, options))
    }

    /// See [`SmtpPool::send_bulk`].
    pub fn send_bulk(
        &self,
        messages: impl IntoIterator<Item = Outgoing>,
        progress: impl FnMut(&BulkProgress),
    ) -> Vec<DeliveryResult> {
        self.runtime
            .block_on(self.pool.send_bulk(messages, progress))
    }

    /// See [`SmtpPool::forward`].
    pub fn forward<S: AsRef<str>>(
        &self,
        from: &str,
        recipients: &[S],
        message: impl Into<Arc<[u8]>>,
    ) -> DeliveryResult {
        self.runtime
            .block_on(self.pool.forward(from, recipients, message))
    }

    /// See [`SmtpPool::forward_file`].
    pub fn forward_file<S: AsRef<str>>(
        &self,
        path: impl AsRef<Path>,
        from: &str,
        recipients: &[S],
    ) -> DeliveryResult {
        self.runtime
            .block_on(self.pool.forward_file(path, from, recipients))
    }

    /// Says QUIT on every connection and stops the runtime.
    pub fn close(self) {
        let BlockingSmtpPool { runtime, pool } = self;
        runtime.block_on(pool.close());
    }
}
