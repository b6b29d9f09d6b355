//! Disk access of the filesystem spool, behind a small trait so that tests can
//! inject failures (a disk that refuses to sync must never lead to an
//! `accepted`). [`StdDisk`] is the real thing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The file operations the spool needs, each one durable where it says so.
pub trait Disk: Send + Sync + 'static {
    /// Writes `bytes` to `dir/name` atomically and durably: a temporary file
    /// `dir/name.tmp` is written and fsynced, renamed to `dir/name`, and `dir`
    /// is fsynced.
    fn publish(&self, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()>;

    /// Appends `bytes` to the file at `path` (created if missing) and fsyncs it.
    fn append_sync(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;

    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Reads `len` bytes at `offset` of a file.
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>>;

    /// Cuts a file to `len` bytes and fsyncs it.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;

    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Renames a file and fsyncs the target's directory.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// The paths of the entries of a directory, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
}

/// The real disk.
#[derive(Debug, Default)]
pub struct StdDisk {
    journal: std::sync::Mutex<Option<(PathBuf, File)>>,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Disk for StdDisk {
    fn publish(&self, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = dir.join(format!("{name}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        drop(f);
        fs::rename(&tmp, dir.join(name))?;
        sync_dir(dir)
    }

    fn append_sync(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        // Keeps the journal open between appends: opening per append costs
        // more than the write itself.
        let mut guard = self
            .journal
            .lock()
            .map_err(|_| io::Error::other("journal lock poisoned"))?;
        let reopen = !matches!(&*guard, Some((p, _)) if p == path);
        if reopen {
            let f = OpenOptions::new().create(true).append(true).open(path)?;
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
            *guard = Some((path.to_path_buf(), f));
        }
        let Some((_, f)) = guard.as_mut() else {
            return Err(io::Error::other("journal not open"));
        };
        f.write_all(bytes)?;
        f.sync_data()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut f = File::open(path)?;
        let file_len = f.metadata()?.len();
        if offset.saturating_add(len as u64) > file_len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{len} bytes at {offset} are beyond the end of the file ({file_len} bytes)"
                ),
            ));
        }
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        // Drop a cached handle: its position would be past the new end.
        if let Ok(mut g) = self.journal.lock() {
            *g = None;
        }
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if let Ok(mut g) = self.journal.lock() {
            *g = None;
        }
        fs::rename(from, to)?;
        match to.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            out.push(entry?.path());
        }
        out.sort();
        Ok(out)
    }
}
