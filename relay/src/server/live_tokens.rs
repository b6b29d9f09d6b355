//! The relay's current token set while it runs: [`LiveTokens`] holds an
//! `Arc<TokenStore>` behind a lock; the upgrade handler and sessions read it
//! on every authentication and every `submit`, and a reload replaces it
//! whole. [`spawn`] starts the task that reloads `<data-dir>/tokens.toml`
//!
//! - on SIGHUP (unix), and
//! - when the file changes: it compares the file's metadata (modification
//!   and change time, length, inode) with what it last loaded, every
//!   [`POLL_INTERVAL`].
//!
//! A reload that fails (unreadable file, bad TOML, bad hash, two tokens of
//! one name) keeps the previous set and logs an error naming the file and
//! the problem; it is tried again when the file changes again or on SIGHUP.
//! A successful reload logs the number of tokens, never a secret or a hash.
//! A missing file is an empty set, as at start.
//!
//! [`LiveTokens::authenticate`] is the one way a connection authenticates:
//! it counts failures per client address ([`super::auth_guard`]) and logs
//! each failure with the address, never with the token text.
//!
//! With the PostgreSQL spool the set comes from the shared table instead
//! ([`LiveTokens::from_database`], `spool::pg::tokens`) and
//! `<data-dir>/tokens.toml` is not read: every [`POLL_INTERVAL`] (and on
//! SIGHUP) the task reads the table's version, and the tokens when it moved.
//! A database that does not answer keeps the previous set, logged once per
//! outage; rows that are not a valid set keep it too, logged once per
//! version. Either way a removal reaches the sessions as a file's does.
//!
//! Polling rather than inotify (the `notify` crate): one `stat` a second
//! costs nothing, needs no dependency and also sees changes on bind mounts
//! and network volumes, where inotify events do not arrive. `postwire token
//! add/remove` replace the file by rename, so a reload never sees half a
//! file; for hand edits that write in place, a change is read again after a
//! short settling pause, and a half-written file fails to parse and keeps the
//! previous set until the next change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use super::auth_guard::AuthFailures;
use crate::spool::pg::tokens::{PgTokenError, PgTokens};
use crate::token::{TOKENS_FILE, TokenError, TokenRecord, TokenStore};

/// How often the task looks at the token file's metadata.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long a change must hold still before it is read.
const SETTLE: Duration = Duration::from_millis(50);

/// What the file looked like when it was last read (or tried).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stamp {
    /// No file: an empty set.
    Missing,
    /// `stat` failed otherwise.
    Unreadable(std::io::ErrorKind),
    /// The file's metadata.
    Present {
        modified: Option<SystemTime>,
        len: u64,
        /// Inode and change time (unix); a rename always changes the inode.
        inode: u64,
        changed: (i64, i64),
    },
}

fn stamp(path: &Path) -> Stamp {
    match std::fs::metadata(path) {
        Ok(m) => {
            #[cfg(unix)]
            let (inode, changed) = {
                use std::os::unix::fs::MetadataExt as _;
                (m.ino(), (m.ctime(), m.ctime_nsec()))
            };
            #[cfg(not(unix))]
            let (inode, changed) = (0, (0, 0));
            Stamp::Present {
                modified: m.modified().ok(),
                len: m.len(),
                inode,
                changed,
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stamp::Missing,
        Err(e) => Stamp::Unreadable(e.kind()),
    }
}

/// Counters of reloads, for operators and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadStatus {
    /// Reloads that replaced the set.
    pub reloads: u64,
    /// Reloads that failed and kept the previous set.
    pub failures: u64,
    /// The error of the last reload, if it failed.
    pub last_error: Option<String>,
}

/// The shared table a relay on the PostgreSQL spool reads its tokens from.
#[derive(Debug)]
struct Shared {
    db: PgTokens,
    /// The version last read (valid or not).
    version: Mutex<i64>,
    /// Whether the database failed the last time (to log an outage once).
    failing: std::sync::atomic::AtomicBool,
}

/// The current tokens of a running relay; see the module doc.
#[derive(Debug)]
pub struct LiveTokens {
    data_dir: PathBuf,
    /// `Some`: the tokens come from the database, not from the file.
    shared: Option<Shared>,
    current: RwLock<Arc<TokenStore>>,
    /// The file as last read, and the counters.
    seen: Mutex<(Stamp, ReloadStatus)>,
    /// Failed authentications per client address.
    failures: AuthFailures,
}

/// Why [`LiveTokens::authenticate`] refused a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthRefusal {
    /// No token has this secret.
    #[error("unknown token")]
    Unknown,
    /// The client's address failed too often; it was not checked.
    #[error("too many failed authentications from this address; retry in {} s", retry_after.as_secs().max(1))]
    Locked {
        /// When the address may try again.
        retry_after: Duration,
    },
}

impl LiveTokens {
    /// Loads `<data-dir>/tokens.toml` (a missing file is an empty set).
    pub fn load(data_dir: &Path) -> Result<Self, TokenError> {
        let path = data_dir.join(TOKENS_FILE);
        let before = stamp(&path);
        let store = TokenStore::load(data_dir)?;
        Ok(LiveTokens {
            data_dir: data_dir.to_path_buf(),
            shared: None,
            current: RwLock::new(Arc::new(store)),
            seen: Mutex::new((before, ReloadStatus::default())),
            failures: AuthFailures::default(),
        })
    }

    /// Loads the tokens of the shared table (relays on the PostgreSQL
    /// spool); `<data-dir>/tokens.toml` is not read, and a warning says so
    /// when it exists.
    pub async fn from_database(db: PgTokens, data_dir: &Path) -> Result<Self, PgTokenError> {
        let file = data_dir.join(TOKENS_FILE);
        if file.exists() {
            tracing::warn!(file = %file.display(), database = %db.origin(),
                "ignoring the token file: with --spool the tokens are those of the database (`postwire token add NAME --spool URL`)");
        }
        let snapshot = db.load().await?;
        let store = snapshot.tokens?;
        tracing::info!(database = %db.origin(), tokens = store.len(), "tokens loaded from the database");
        Ok(LiveTokens {
            data_dir: data_dir.to_path_buf(),
            shared: Some(Shared {
                db,
                version: Mutex::new(snapshot.version),
                failing: std::sync::atomic::AtomicBool::new(false),
            }),
            current: RwLock::new(Arc::new(store)),
            seen: Mutex::new((Stamp::Missing, ReloadStatus::default())),
            failures: AuthFailures::default(),
        })
    }

    /// The token whose secret this is, checked in constant time
    /// ([`TokenStore::authenticate`]). With the client's address `peer`,
    /// failures are counted per address and a locked address is refused
    /// without a check; each failure is logged with the address, never with
    /// the secret.
    pub fn authenticate(
        &self,
        secret: &str,
        peer: Option<std::net::IpAddr>,
    ) -> Result<TokenRecord, AuthRefusal> {
        let now = std::time::Instant::now();
        if let Some(ip) = peer
            && let Err(retry_after) = self.failures.check(ip, now)
        {
            tracing::info!(peer = %ip, retry_after_secs = retry_after.as_secs(),
                "refused an authentication: too many failures from this address");
            return Err(AuthRefusal::Locked { retry_after });
        }
        if let Some(t) = self.current().authenticate(secret) {
            return Ok(t.clone());
        }
        match peer {
            Some(ip) => {
                let failures = self.failures.record(ip, now);
                tracing::warn!(peer = %ip, failures, "failed authentication: unknown token");
                if failures == super::auth_guard::MAX_FAILURES {
                    tracing::warn!(peer = %ip, window_secs = super::auth_guard::WINDOW.as_secs(),
                        "too many failed authentications: refusing this address for the rest of the window");
                }
            }
            None => tracing::warn!("failed authentication: unknown token"),
        }
        Err(AuthRefusal::Unknown)
    }

    /// Whether `peer` may try to authenticate now (`Err`: retry after).
    pub fn may_try(&self, peer: std::net::IpAddr) -> Result<(), Duration> {
        self.failures.check(peer, std::time::Instant::now())
    }

    /// The token file.
    pub fn path(&self) -> PathBuf {
        self.data_dir.join(TOKENS_FILE)
    }

    /// The current set; hold it only briefly (a reload replaces it).
    pub fn current(&self) -> Arc<TokenStore> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The reload counters.
    pub fn status(&self) -> ReloadStatus {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone()
    }

    /// Reads the file again and, if it is valid, makes it the current set
    /// and returns its number of tokens; otherwise keeps the previous set.
    /// Either way the outcome is logged; `why` says what triggered it.
    /// A relay on the database reads no file: its set is reloaded by
    /// [`spawn`]'s task, and this returns the current number of tokens.
    pub fn reload(&self, why: &str) -> Result<usize, TokenError> {
        if self.shared.is_some() {
            return Ok(self.current().len());
        }
        let path = self.path();
        // Taken before reading: a change during the read is seen next time.
        let before = stamp(&path);
        let loaded = TokenStore::load(&self.data_dir);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.0 = before;
        match loaded {
            Ok(store) => {
                let n = store.len();
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(store);
                seen.1.reloads += 1;
                seen.1.last_error = None;
                tracing::info!(file = %path.display(), tokens = n, trigger = why, "tokens reloaded");
                if n == 0 {
                    tracing::warn!(file = %path.display(), "no tokens: every submission will be refused");
                }
                Ok(n)
            }
            Err(e) => {
                seen.1.failures += 1;
                seen.1.last_error = Some(e.to_string());
                let kept = self.current().len();
                tracing::error!(file = %path.display(), error = %e, trigger = why, kept,
                    "cannot reload the tokens; keeping the previous set");
                Err(e)
            }
        }
    }

    /// One look at the shared table: reads the tokens when its version
    /// moved (or always, when `force`), and makes them the current set if
    /// they are valid.
    async fn poll_database(&self, shared: &Shared, why: &str, force: bool) {
        let known = *shared
            .version
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let snapshot = match shared.db.version().await {
            Ok(v) if v == known && !force => Ok(None),
            Ok(_) => shared.db.load().await.map(Some),
            Err(e) => Err(e),
        };
        let snapshot = match snapshot {
            Ok(s) => {
                if shared
                    .failing
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::info!(database = %shared.db.origin(), "the token database answers again");
                }
                match s {
                    Some(s) => s,
                    None => return,
                }
            }
            Err(e) => {
                if !shared
                    .failing
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    self.failed(&e.to_string(), why);
                }
                return;
            }
        };
        *shared
            .version
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = snapshot.version;
        match snapshot.tokens {
            Ok(store) => {
                let n = store.len();
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(store);
                let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                seen.1.reloads += 1;
                seen.1.last_error = None;
                tracing::info!(database = %shared.db.origin(), tokens = n, trigger = why, "tokens reloaded");
                if n == 0 {
                    tracing::warn!(database = %shared.db.origin(), "no tokens: every submission will be refused");
                }
            }
            Err(e) => self.failed(&e.to_string(), why),
        }
    }

    /// Counts and logs a failed reload from the database.
    fn failed(&self, error: &str, why: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.1.failures += 1;
        seen.1.last_error = Some(error.to_string());
        drop(seen);
        let kept = self.current().len();
        tracing::error!(error = %error, trigger = why, kept,
            "cannot reload the tokens; keeping the previous set");
    }

    /// Whether the file differs from what was last read.
    fn changed(&self) -> Option<Stamp> {
        let now = stamp(&self.path());
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        (seen.0 != now).then_some(now)
    }

    /// One poll: reloads when the file changed and then held still for
    /// [`SETTLE`].
    async fn poll(&self) {
        let Some(first) = self.changed() else {
            return;
        };
        tokio::time::sleep(SETTLE).await;
        if stamp(&self.path()) == first {
            // The outcome is logged inside.
            let _ = self.reload("file change");
        }
    }
}

/// Starts the task that reloads `live` on SIGHUP and when its file (or the
/// shared table's version) changes, looked at every `poll`. Call it inside a tokio runtime; the SIGHUP
/// handler is in place when this returns, so a SIGHUP sent afterwards never
/// ends the process. Abort the task to stop it.
pub fn spawn(live: Arc<LiveTokens>, poll: Duration) -> tokio::task::JoinHandle<()> {
    #[cfg(unix)]
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; tokens reload only when their file changes");
            None
        }
    };
    tokio::spawn(async move {
        // The set was just loaded: the first look is one period away.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = tick.tick() => match &live.shared {
                    Some(shared) => live.poll_database(shared, "database change", false).await,
                    None => live.poll().await,
                },
                got = hangup => match got {
                    Some(()) => match &live.shared {
                        Some(shared) => live.poll_database(shared, "SIGHUP", true).await,
                        // The outcome is logged inside.
                        None => { let _ = live.reload("SIGHUP"); }
                    },
                    None => {
                        #[cfg(unix)]
                        { hup = None; }
                    }
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token;

    #[test]
    fn a_failed_reload_keeps_the_previous_set_and_says_which_file_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let secret = token::add(dir.path(), "app", &["@example.com".into()], 1, 1).unwrap();
        let live = LiveTokens::load(dir.path()).unwrap();
        std::fs::write(live.path(), "[[token]]\nname = \"app\"\nhash = 42\n").unwrap();
        let err = live.reload("test").unwrap_err().to_string();
        assert!(err.contains(&live.path().display().to_string()), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(live.current().authenticate(&secret).is_some());
        let status = live.status();
        assert_eq!((status.reloads, status.failures), (0, 1));
        assert_eq!(status.last_error, Some(err));

        std::fs::remove_file(live.path()).unwrap();
        assert_eq!(
            live.reload("test").unwrap(),
            0,
            "a missing file is an empty set"
        );
        assert!(live.current().authenticate(&secret).is_none());
        assert_eq!(live.status().last_error, None);
    }

    #[test]
    fn a_change_is_noticed_once_and_an_untouched_file_is_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        token::add(dir.path(), "a", &[], 1, 1).unwrap();
        let live = LiveTokens::load(dir.path()).unwrap();
        assert!(live.changed().is_none());
        token::add(dir.path(), "b", &[], 1, 1).unwrap();
        assert!(live.changed().is_some());
        assert_eq!(live.reload("test").unwrap(), 2);
        assert!(live.changed().is_none());
        // A failed read is not retried until the file changes again.
        std::fs::write(live.path(), "not toml").unwrap();
        assert!(live.changed().is_some());
        assert!(live.reload("test").is_err());
        assert!(live.changed().is_none());
    }
}
