//! The pickup directory: delivery into a folder instead of over SMTP, for a
//! relay with no upstream configured and for tests. Each message becomes two
//! files with the same unique stem:
//!
//! - `STEM.json`: the envelope, `{"mailFrom": "...", "rcptTo": ["..."]}`;
//! - `STEM.eml`: the message bytes, unchanged.
//!
//! Both are written atomically and durably: into a hidden temporary file
//! (`.STEM.eml.tmp`), fsync, rename, then fsync of the directory. The `.json`
//! is written first, so a `.eml` that is visible always has its envelope:
//! readers take `*.eml` files only and ignore dot-files.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use postwire_core::envelope::Envelope;

use crate::delivery::{
    BulkProgress, Content, DeliveryReport, Failure, Outgoing, RecipientStatus, SmtpReply, Transport,
};

/// The result of one message written into the pickup directory.
pub type PickupResult = Result<DeliveryReport, PickupError>;

/// Why a message could not be written into the pickup directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PickupError {
    /// The directory does not exist and could not be created, or is not a directory.
    #[error("pickup directory {dir}: {source}")]
    Directory {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Writing, syncing or renaming a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The message file to copy could not be read.
    #[error("cannot read message file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// A message written into the pickup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickedUp {
    /// The `.eml` file.
    pub message: PathBuf,
    /// The `.json` envelope file.
    pub envelope: PathBuf,
    /// Bytes of the message.
    pub bytes: u64,
}

/// A pickup directory.
#[derive(Debug, Clone)]
pub struct Pickup {
    dir: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Pickup {
    /// Uses `dir`, creating it when missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, PickupError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| PickupError::Directory {
            dir: dir.clone(),
            source,
        })?;
        if !dir.is_dir() {
            return Err(PickupError::Directory {
                dir,
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(Pickup { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one message and its envelope (blocking file I/O). On failure
    /// nothing is left behind.
    pub fn write(&self, envelope: &Envelope, content: &Content) -> Result<PickedUp, PickupError> {
        let stem = self.unique_stem();
        let json = serde_json::to_vec_pretty(envelope).map_err(|e| PickupError::Write {
            path: self.dir.join(format!("{stem}.json")),
            source: io::Error::other(e),
        })?;
        // Open the source first: a missing file must leave nothing behind.
        let mut input = match content {
            Content::File(src) => Some(File::open(src).map_err(|source| PickupError::Read {
                path: src.clone(),
                source,
            })?),
            Content::Bytes(_) => None,
        };
        let envelope_path = self.write_atomic(&format!("{stem}.json"), |f| f.write_all(&json))?;
        let mut bytes = 0u64;
        let mut read_error = None;
        let written = self.write_atomic(&format!("{stem}.eml"), |f| match (content, &mut input) {
            (Content::Bytes(b), _) => {
                bytes = b.len() as u64;
                f.write_all(b)
            }
            (Content::File(_), Some(input)) => match io::copy(input, f) {
                Ok(n) => {
                    bytes = n;
                    Ok(())
                }
                Err(e) => {
                    let kind = e.kind();
                    read_error = Some(e);
                    Err(io::Error::new(kind, "reading the message failed"))
                }
            },
            (Content::File(_), None) => Err(io::Error::other("message source not open")),
        });
        let message_path = match (written, read_error, content) {
            (Ok(p), _, _) => p,
            (Err(_), Some(source), Content::File(src)) => {
                let _ = fs::remove_file(&envelope_path);
                return Err(PickupError::Read {
                    path: src.clone(),
                    source,
                });
            }
            (Err(e), _, _) => {
                let _ = fs::remove_file(&envelope_path);
                return Err(e);
            }
        };
        sync_dir(&self.dir).map_err(|source| PickupError::Write {
            path: self.dir.clone(),
            source,
        })?;
        Ok(PickedUp {
            message: message_path,
            envelope: envelope_path,
            bytes,
        })
    }

    /// Writes one message and reports it like an SMTP delivery: every
    /// recipient "accepted" with a 250 reply naming the file. Only the file's
    /// name: the relay sends this reply to its clients, who learn nothing of
    /// the server's file system (issue 18).
    pub fn deliver_blocking(&self, envelope: &Envelope, content: &Content) -> PickupResult {
        let picked = self.write(envelope, content)?;
        let name = picked
            .message
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let reply = SmtpReply::new(250, format!("2.0.0 written to pickup directory as {name}"));
        Ok(DeliveryReport {
            recipients: envelope
                .rcpt_to
                .iter()
                .map(|r| RecipientStatus {
                    recipient: r.clone(),
                    reply: reply.clone(),
                })
                .collect(),
            reply,
            bytes: picked.bytes,
            warnings: Vec::new(),
        })
    }

    /// Writes every message in order, calling `progress` after each; the same
    /// shape as [`crate::smtp::SmtpPool::send_bulk`].
    pub fn send_bulk(
        &self,
        messages: impl IntoIterator<Item = Outgoing>,
        mut progress: impl FnMut(&BulkProgress),
    ) -> Vec<PickupResult> {
        let messages: Vec<Outgoing> = messages.into_iter().collect();
        let mut state = BulkProgress {
            done: 0,
            total: messages.len(),
            delivered: 0,
            failed: 0,
        };
        messages
            .iter()
            .map(|m| {
                let r = self.deliver_blocking(&m.envelope, &m.content);
                state.done += 1;
                if r.is_ok() {
                    state.delivered += 1;
                } else {
                    state.failed += 1;
                }
                progress(&state);
                r
            })
            .collect()
    }

    fn unique_stem(&self) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{nanos:x}-{:x}-{n}", std::process::id())
    }

    /// Writes `name` through a temporary file, fsyncs it and renames it into place.
    fn write_atomic(
        &self,
        name: &str,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<PathBuf, PickupError> {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(name);
        let fail = |source| PickupError::Write {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(fail)?;
        let result = fill(&mut file).and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = result.and_then(|()| {
            if path.exists() {
                Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "target exists",
                ))
            } else {
                fs::rename(&tmp, &path)
            }
        }) {
            let _ = fs::remove_file(&tmp);
            return Err(fail(e));
        }
        Ok(path)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Every pickup failure is a local disk or file problem: worth retrying
/// (a full disk frees up; a missing source file is the caller's to fix, but
/// retrying it does no harm and drops nothing).
impl Failure for PickupError {
    fn is_transient(&self) -> bool {
        true
    }
}

impl Transport for Pickup {
    type Error = PickupError;

    async fn deliver(&self, envelope: Envelope, content: Content) -> PickupResult {
        let pickup = self.clone();
        tokio::task::spawn_blocking(move || pickup.deliver_blocking(&envelope, &content))
            .await
            .map_err(|e| PickupError::Write {
                path: self.dir.clone(),
                source: io::Error::other(e),
            })
            .and_then(|r| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn envelope() -> Envelope {
        Envelope {
            mail_from: "a@x.org".into(),
            rcpt_to: vec!["b@y.org".into(), "c@y.org".into()],
            ..Envelope::default()
        }
    }

    #[test]
    fn a_message_lands_as_eml_plus_json_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let pickup = Pickup::new(dir.path().join("out")).unwrap();
        let msg: Arc<[u8]> = Arc::from(&b"Subject: x\r\n\r\nbody\r\n"[..]);
        let report = pickup
            .deliver_blocking(&envelope(), &Content::Bytes(msg.clone()))
            .unwrap();
        assert_eq!(report.accepted().count(), 2);
        let mut names: Vec<String> = fs::read_dir(pickup.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names[0].ends_with(".eml") && names[1].ends_with(".json"));
        let eml = fs::read(pickup.dir().join(&names[0])).unwrap();
        assert_eq!(eml, &*msg);
        let env: Envelope =
            serde_json::from_slice(&fs::read(pickup.dir().join(&names[1])).unwrap()).unwrap();
        assert_eq!(env, envelope());
    }

    #[test]
    fn a_file_is_copied_and_a_missing_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("m.eml");
        fs::write(&src, b"Subject: y\r\n\r\nz\r\n").unwrap();
        let pickup = Pickup::new(dir.path().join("p")).unwrap();
        let got = pickup
            .write(&envelope(), &Content::File(src.clone()))
            .unwrap();
        assert_eq!(fs::read(&got.message).unwrap(), fs::read(&src).unwrap());
        let err = pickup
            .write(&envelope(), &Content::File(dir.path().join("missing.eml")))
            .unwrap_err();
        assert!(err.to_string().contains("missing.eml"), "{err}");
        // The failed write left no envelope behind.
        let jsons = fs::read_dir(pickup.dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count();
        assert_eq!(jsons, 1);
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"x").unwrap();
        assert!(Pickup::new(&f).is_err());
    }
}
