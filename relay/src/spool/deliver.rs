//! The delivery side of the spool: the [`Deliver`] trait that an upstream
//! (the SMTP pool, a pickup directory) implements, and [`PickupDeliver`], the
//! embedded default that writes each message into a directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{Lease, Outcome};

/// Something that can take a leased message and say, per recipient, what
/// became of it.
pub trait Deliver: Send + Sync + 'static {
    /// Delivers `lease.bytes` to `lease.envelope.rcpt_to`. Returns one
    /// outcome per recipient; a recipient missing from the answer counts as
    /// a transient failure.
    fn deliver<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Vec<(String, Outcome)>>;

    /// How many deliveries may run at once (the number of upstream connections).
    fn concurrency(&self) -> usize;

    /// A one-line description for the start-up log (never with a password).
    fn describe(&self) -> String;
}

impl<D: Deliver + ?Sized> Deliver for Arc<D> {
    fn deliver<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Vec<(String, Outcome)>> {
        (**self).deliver(lease)
    }
    fn concurrency(&self) -> usize {
        (**self).concurrency()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Delivers into a pickup directory: one `<token>-<id>.eml` file per message,
/// written to a temporary name, fsynced and renamed, so that a reader of the
/// directory never sees half a message.
#[derive(Debug, Clone)]
pub struct PickupDeliver {
    dir: PathBuf,
}

impl PickupDeliver {
    /// Creates the directory if needed.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(PickupDeliver {
            dir: dir.to_path_buf(),
        })
    }

    /// The file name a message gets: token and id with every character
    /// outside `[A-Za-z0-9._-]` replaced by `_`.
    pub fn file_name(lease: &Lease) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "._-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!("{}-{}.eml", clean(&lease.key.token), clean(&lease.key.id))
    }

    fn write(&self, lease: &Lease) -> std::io::Result<PathBuf> {
        use std::io::Write;
        let name = Self::file_name(lease);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(&name);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&lease.bytes)?;
        f.sync_data()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(path)
    }
}

impl Deliver for PickupDeliver {
    fn deliver<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Vec<(String, Outcome)>> {
        Box::pin(async move {
            let this = self.clone();
            let lease_c = lease.clone();
            let result = tokio::task::spawn_blocking(move || this.write(&lease_c)).await;
            let outcome = match result {
                Ok(Ok(path)) => Outcome::Delivered(format!("written to {}", path.display())),
                Ok(Err(e)) => {
                    Outcome::Transient(format!("cannot write to the pickup directory: {e}"))
                }
                Err(e) => Outcome::Transient(format!("pickup writer stopped: {e}")),
            };
            lease
                .envelope
                .rcpt_to
                .iter()
                .map(|r| (r.clone(), outcome.clone()))
                .collect()
        })
    }

    fn concurrency(&self) -> usize {
        2
    }

    fn describe(&self) -> String {
        format!("pickup directory {}", self.dir.display())
    }
}
