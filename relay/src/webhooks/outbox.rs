//! The file spool's durable queue of webhook deliveries (the PostgreSQL
//! spool's is a table: [`super::pg`]). [`Outbox`] is the storage contract;
//! [`DirOutbox`] keeps one small JSON file per pending delivery in
//! a directory beside the spool (`DATA_DIR/webhooks/outbox`), written to a
//! temporary file, fsynced, renamed, and the directory fsynced before
//! [`Outbox::push`] returns: an event counts as queued only then.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of the outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// A file operation failed (the entry was not stored or updated).
    #[error("webhook outbox I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An entry could not be encoded.
    #[error("cannot encode a webhook outbox entry: {0}")]
    Encode(String),
}

/// One pending delivery of one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Unique id (also the event id the endpoint sees, with the endpoint).
    pub id: String,
    /// The endpoint's name.
    pub endpoint: String,
    /// The event kind (`accepted`, `delivered`, ...).
    pub kind: String,
    /// The JSON body, exactly as it is signed and sent.
    pub body: String,
    /// When the event was queued, ms since the Unix epoch.
    pub created_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Next attempt, ms since the Unix epoch.
    pub next_ms: u64,
}

/// Where pending deliveries are kept.
pub trait Outbox: Send + Sync + 'static {
    /// Stores entries durably; returns once they would survive a crash.
    fn push(&self, entries: &[Entry]) -> Result<(), OutboxError>;
    /// Replaces a stored entry (attempts and next attempt time).
    fn update(&self, entry: &Entry) -> Result<(), OutboxError>;
    /// Forgets an entry (delivered or given up).
    fn remove(&self, id: &str) -> Result<(), OutboxError>;
    /// Every stored entry (at start).
    fn load(&self) -> Result<Vec<Entry>, OutboxError>;
}

/// An [`Outbox`] in a directory, one file per entry.
#[derive(Debug)]
pub struct DirOutbox {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl DirOutbox {
    /// Opens (creating) the outbox in `dir`; leftover temporary files of an
    /// interrupted write are removed.
    pub fn open(dir: &Path) -> Result<Self, OutboxError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for e in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
            if e.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(DirOutbox {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        // Ids are made by the dispatcher from digits, letters, '-', '.', '_'.
        self.dir.join(format!("{id}.json"))
    }

    fn write(&self, entry: &Entry) -> Result<(), OutboxError> {
        let path = self.path(&entry.id);
        let tmp = self.dir.join(format!("{}.tmp", entry.id));
        let bytes = serde_json::to_vec(entry).map_err(|e| OutboxError::Encode(e.to_string()))?;
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), OutboxError> {
        let d = std::fs::File::open(&self.dir).map_err(io(&self.dir))?;
        d.sync_all().map_err(io(&self.dir))
    }
}

impl Outbox for DirOutbox {
    fn push(&self, entries: &[Entry]) -> Result<(), OutboxError> {
        if entries.is_empty() {
            return Ok(());
        }
        for e in entries {
            self.write(e)?;
        }
        self.sync_dir()
    }

    fn update(&self, entry: &Entry) -> Result<(), OutboxError> {
        self.write(entry)?;
        self.sync_dir()
    }

    fn remove(&self, id: &str) -> Result<(), OutboxError> {
        let path = self.path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn load(&self) -> Result<Vec<Entry>, OutboxError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)
            .map_err(io(&self.dir))?
            .flatten()
        {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            match serde_json::from_slice::<Entry>(&bytes) {
                Ok(entry) => out.push(entry),
                Err(err) => {
                    tracing::warn!(path = %path.display(), error = %err,
                        "unreadable webhook outbox entry; skipped");
                }
            }
        }
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.into(),
            endpoint: "crm".into(),
            kind: "delivered".into(),
            body: "{}".into(),
            created_ms: 1,
            attempts: 0,
            next_ms: 1,
        }
    }

    #[test]
    fn entries_survive_a_reopen_until_removed() {
        let dir = tempfile::tempdir().expect("test setup");
        let ob = DirOutbox::open(dir.path()).expect("open");
        ob.push(&[entry("1-a"), entry("2-b")]).expect("push");
        let mut e = entry("1-a");
        e.attempts = 3;
        ob.update(&e).expect("update");
        std::fs::write(dir.path().join("3-c.tmp"), b"half").expect("test setup");
        drop(ob);
        let ob = DirOutbox::open(dir.path()).expect("reopen");
        let all = ob.load().expect("load");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].attempts, 3);
        ob.remove("1-a").expect("remove");
        ob.remove("1-a").expect("removing twice is fine");
        assert_eq!(ob.load().expect("load").len(), 1);
        assert!(!dir.path().join("3-c.tmp").exists());
    }
}
