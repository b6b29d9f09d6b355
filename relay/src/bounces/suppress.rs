//! The suppression list: recipients a token may no longer send to, because
//! they hard-bounced or complained (docs/bounces.md).
//!
//! Behind [`SuppressionStore`], so that a shared spool (PostgreSQL) can hold
//! it later. [`FileSuppressions`] keeps it in `DATA_DIR/suppressions.json`:
//! read at start, re-read when the file changed (the operator's
//! `postwire suppression remove` runs while the relay does), and rewritten
//! whole on every change (temporary file, fsync, rename, directory fsync)
//! under an exclusive lock on `DATA_DIR/suppressions.lock`, so that two
//! writers never lose each other's entries. The list is small (one entry per
//! bad address), so a rewrite per bounce is cheap.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::spool::disk::{Disk, StdDisk};

/// File name of the list in the data directory.
pub const FILE: &str = "suppressions.json";
const LOCK: &str = "suppressions.lock";

/// Why a recipient is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// A delivery status notification with a 5.x.x status.
    HardBounce,
    /// An abuse report (ARF).
    Complaint,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::HardBounce => "hard bounce",
            Reason::Complaint => "complaint",
        })
    }
}

/// One suppressed recipient of one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    /// The token whose submissions are refused.
    pub token: String,
    /// The recipient address, lower-cased.
    pub address: String,
    /// Why.
    pub reason: Reason,
    /// The report's status and diagnostic, or the feedback type.
    pub detail: String,
    /// The client id of the message the report was about.
    pub message_id: String,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
}

/// Errors of a suppression store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SuppressionError {
    /// The file could not be read, locked or written.
    #[error("suppression list {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid list.
    #[error("suppression list {path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Where suppressions are kept.
pub trait SuppressionStore: Send + Sync + 'static {
    /// The suppression of `address` for `token`, if any.
    fn get(&self, token: &str, address: &str) -> Option<Suppression>;
    /// Adds (or replaces) a suppression, durably.
    fn add(&self, s: Suppression) -> Result<(), SuppressionError>;
    /// Removes the suppressions of `address` (of one token, or of every
    /// token); returns how many were removed.
    fn remove(&self, address: &str, token: Option<&str>) -> Result<usize, SuppressionError>;
    /// Every suppression, by token then address.
    fn list(&self) -> Result<Vec<Suppression>, SuppressionError>;
}

type Entries = BTreeMap<(String, String), Suppression>;

#[derive(Default)]
struct Cache {
    entries: Entries,
    /// Modification time and length of the file when it was read.
    seen: Option<(SystemTime, u64)>,
}

/// The suppression list in a file of the data directory.
pub struct FileSuppressions {
    dir: PathBuf,
    path: PathBuf,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for FileSuppressions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSuppressions")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct FileFormat {
    suppressions: Vec<Suppression>,
}

impl FileSuppressions {
    /// The list of `data_dir` (an absent file is an empty list).
    pub fn open(data_dir: &Path) -> Result<Self, SuppressionError> {
        let s = FileSuppressions {
            dir: data_dir.to_path_buf(),
            path: data_dir.join(FILE),
            cache: Mutex::new(Cache::default()),
        };
        s.refresh(&mut s.cache())?;
        Ok(s)
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // Every update replaces the map whole: usable after a panic elsewhere.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn io(&self, source: std::io::Error) -> SuppressionError {
        SuppressionError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Re-reads the file if it changed since it was last read.
    fn refresh(&self, cache: &mut Cache) -> Result<(), SuppressionError> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                cache.entries.clear();
                cache.seen = None;
                return Ok(());
            }
            Err(e) => return Err(self.io(e)),
        };
        let stamp = (meta.modified().map_err(|e| self.io(e))?, meta.len());
        if cache.seen == Some(stamp) {
            return Ok(());
        }
        let bytes = std::fs::read(&self.path).map_err(|e| self.io(e))?;
        let file: FileFormat =
            serde_json::from_slice(&bytes).map_err(|e| SuppressionError::Syntax {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        cache.entries = file
            .suppressions
            .into_iter()
            .map(|s| ((s.token.clone(), s.address.clone()), s))
            .collect();
        cache.seen = Some(stamp);
        Ok(())
    }

    /// Runs `change` on the current list under the file lock and writes the result.
    fn update<T>(&self, change: impl FnOnce(&mut Entries) -> T) -> Result<T, SuppressionError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK))
            .map_err(|e| self.io(e))?;
        lock.lock().map_err(|e| self.io(e))?;
        let mut cache = self.cache();
        // Always read what is on disk now: another process may have written.
        cache.seen = None;
        self.refresh(&mut cache)?;
        let out = change(&mut cache.entries);
        let file = FileFormat {
            suppressions: cache.entries.values().cloned().collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| SuppressionError::Syntax {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        bytes.push(b'\n');
        StdDisk::default()
            .publish(&self.dir, FILE, &bytes)
            .map_err(|e| self.io(e))?;
        cache.seen = None;
        if let Err(e) = self.refresh(&mut cache) {
            tracing::warn!(error = %e, "cannot re-read the suppression list just written");
        }
        drop(cache);
        let _ = lock.unlock();
        Ok(out)
    }
}

impl SuppressionStore for FileSuppressions {
    fn get(&self, token: &str, address: &str) -> Option<Suppression> {
        let mut cache = self.cache();
        if let Err(e) = self.refresh(&mut cache) {
            // Keep the list last read rather than sending to suppressed addresses.
            tracing::warn!(error = %e, "cannot re-read the suppression list; using the copy in memory");
        }
        cache
            .entries
            .get(&(token.to_string(), address.to_lowercase()))
            .cloned()
    }

    fn add(&self, s: Suppression) -> Result<(), SuppressionError> {
        let s = Suppression {
            address: s.address.to_lowercase(),
            ..s
        };
        self.update(|entries| {
            entries.insert((s.token.clone(), s.address.clone()), s);
        })
    }

    fn remove(&self, address: &str, token: Option<&str>) -> Result<usize, SuppressionError> {
        let address = address.to_lowercase();
        self.update(|entries| {
            let before = entries.len();
            entries.retain(|(t, a), _| !(*a == address && token.is_none_or(|tok| tok == t)));
            before - entries.len()
        })
    }

    fn list(&self) -> Result<Vec<Suppression>, SuppressionError> {
        let mut cache = self.cache();
        self.refresh(&mut cache)?;
        Ok(cache.entries.values().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(token: &str, address: &str) -> Suppression {
        Suppression {
            token: token.into(),
            address: address.into(),
            reason: Reason::HardBounce,
            detail: "5.1.1".into(),
            message_id: "m1".into(),
            at_ms: 1,
        }
    }

    #[test]
    fn a_suppression_is_per_token_case_insensitive_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = FileSuppressions::open(dir.path()).unwrap();
        assert!(a.list().unwrap().is_empty());
        a.add(s("app", "Bob@Example.org")).unwrap();
        a.add(s("other", "bob@example.org")).unwrap();
        assert!(a.get("app", "bob@EXAMPLE.org").is_some());
        assert!(a.get("third", "bob@example.org").is_none());
        let b = FileSuppressions::open(dir.path()).unwrap();
        assert_eq!(b.list().unwrap().len(), 2);
        // Another process removes one: the first sees it without a restart.
        assert_eq!(b.remove("BOB@example.org", Some("app")).unwrap(), 1);
        assert!(a.get("app", "bob@example.org").is_none());
        assert!(a.get("other", "bob@example.org").is_some());
        assert_eq!(b.remove("bob@example.org", None).unwrap(), 1);
        assert!(a.list().unwrap().is_empty());
        assert!(!dir.path().join("suppressions.json.tmp").exists());
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "{").unwrap();
        let e = FileSuppressions::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("suppressions.json"), "{e}");
    }
}
