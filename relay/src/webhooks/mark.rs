//! How far the webhook outbox has caught up with the spool's events:
//! `DATA_DIR/webhooks/watermark`, one small JSON object `{"ms": W,
//! "clean": bool}`.
//!
//! - `clean: true` (written at a graceful stop, after the spool stopped
//!   and every event it published was in the outbox): every event with
//!   [`crate::spool::Event::at_ms`] below `W` is in the outbox.
//! - `clean: false` (written about once a second while running): every
//!   event *published* before `W` is in the outbox. An event is recorded
//!   (its `at_ms`) a little before it is published (the journal's fsync),
//!   so after a crash the relay reads again from `W - SLACK`.
//!
//! At start the dispatcher asks the spool for the events since then
//! ([`crate::spool::Spool::events_since`]) and queues those the outbox
//! lacks; event ids are derived from the event itself, so one already in
//! the outbox is not queued twice, and one already sent goes out again
//! under the same id (at least once; endpoints deduplicate by id).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How much earlier than an unclean watermark the catch-up starts: more
/// than the time between an event's record and its publication.
pub const SLACK: Duration = Duration::from_secs(30);

/// The file, relative to the data directory.
pub const FILE: &str = "webhooks/watermark";

/// A saved watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Milliseconds since the Unix epoch.
    pub ms: u64,
    /// Written at a graceful stop (exact) rather than while running.
    pub clean: bool,
}

impl Mark {
    /// The `at_ms` from which events must be read again.
    pub fn replay_from(&self) -> u64 {
        if self.clean {
            self.ms
        } else {
            self.ms
                .saturating_sub(u64::try_from(SLACK.as_millis()).unwrap_or(u64::MAX))
        }
    }
}

/// The watermark file of `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Reads the saved watermark; `None` when there is none (a new data
/// directory, or one from before watermarks) or it cannot be read (logged).
pub fn load(data_dir: &Path) -> Option<Mark> {
    let path = path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the webhook watermark");
            return None;
        }
    };
    match serde_json::from_str(&text) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the webhook watermark is damaged; ignored");
            None
        }
    }
}

/// Saves `mark`: written to a temporary file, fsynced, renamed over the old
/// one (a crash leaves the old or the new one, both valid lower bounds).
pub fn save(data_dir: &Path, mark: Mark) -> std::io::Result<()> {
    let path = path(data_dir);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(
        serde_json::to_string(&mark)
            .map_err(std::io::Error::other)?
            .as_bytes(),
    )?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_marks_load_and_an_unclean_one_reads_again_from_earlier() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None);
        let m = Mark {
            ms: 100_000,
            clean: false,
        };
        save(dir.path(), m).unwrap();
        assert_eq!(load(dir.path()), Some(m));
        assert_eq!(m.replay_from(), 70_000);
        let c = Mark {
            ms: 100_000,
            clean: true,
        };
        save(dir.path(), c).unwrap();
        assert_eq!(load(dir.path()).map(|m| m.replay_from()), Some(100_000));
        std::fs::write(path(dir.path()), b"{").unwrap();
        assert_eq!(load(dir.path()), None);
    }
}
