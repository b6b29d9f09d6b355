//! Forwarding: a received or saved message goes, byte for byte unchanged, to
//! new recipients through a new envelope. `forward_file` streams the file
//! during DATA, so a 200 MB message costs a 64 KiB buffer, not 200 MB.

use std::{path::Path, sync::Arc};

use postwire_core::envelope::Envelope;

use super::{content::Content, error::SmtpError, pool::DeliveryResult, pool::SmtpPool};

impl SmtpPool {
    /// Sends `message` unchanged from `from` to `recipients` (bare or
    /// `Name <addr>` addresses; the message's own headers are not consulted).
    pub async fn forward<S: AsRef<str>>(
        &self,
        from: &str,
        recipients: &[S],
        message: impl Into<Arc<[u8]>>,
    ) -> DeliveryResult {
        let envelope = Envelope::new(from, recipients)?;
        self.send_content(envelope, Content::Bytes(message.into()))
            .await
    }

    /// Like [`SmtpPool::forward`] for a message file (`.eml`), read while it is
    /// sent: memory does not grow with the file. If the file cannot be read to
    /// the end, the session is aborted before the end-of-data marker, so the
    /// server discards the partial message.
    pub async fn forward_file<S: AsRef<str>>(
        &self,
        path: impl AsRef<Path>,
        from: &str,
        recipients: &[S],
    ) -> DeliveryResult {
        let envelope = Envelope::new(from, recipients)?;
        let path = path.as_ref();
        // Fail before connecting when the file is not there at all.
        std::fs::metadata(path).map_err(|source| SmtpError::MessageFile {
            path: path.to_owned(),
            source,
        })?;
        self.send_content(envelope, Content::File(path.to_owned()))
            .await
    }
}
