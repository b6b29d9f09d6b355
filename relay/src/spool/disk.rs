//! Disk access of the filesystem spool, behind a small trait so that tests can
//! inject failures (a disk that refuses to sync must never lead to an
//! `accepted`). [`StdDisk`] is the real thing.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The file operations the spool needs, each one durable where it says so.
pub trait Disk: Send + Sync + 'static {
    /// Writes `bytes` to `dir/name` atomically and durably: a temporary file
    /// `dir/name.tmp` is written and fsynced, renamed to `dir/name`, and `dir`
    /// is fsynced.
    fn publish(&self, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()>;

    /// Appends `bytes` to the file at `path` and makes them durable with one
    /// `fdatasync`. A file that does not exist yet is created and its
    /// directory fsynced before the first append, so that a durable append
    /// is never to a file whose name could vanish. Appends to different files
    /// may run in parallel; appends to one file come from one thread.
    fn append_sync(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;

    /// Forgets any handle kept open for appending to `path` (after an append
    /// failed, or when a file is finished). The file itself stays.
    fn close(&self, path: &Path);

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

/// The real disk. Keeps the files being appended to open between appends:
/// opening per append costs more than the write itself.
#[derive(Debug, Default)]
pub struct StdDisk {
    open: Mutex<HashMap<PathBuf, Arc<File>>>,
}

impl StdDisk {
    fn handles(&self) -> MutexGuard<'_, HashMap<PathBuf, Arc<File>>> {
        // The map only caches handles; a panic elsewhere cannot leave it torn.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget(&self, path: &Path) {
        self.handles().remove(path);
    }

    /// The open handle of `path`, opening (and creating) it if needed.
    fn append_handle(&self, path: &Path) -> io::Result<Arc<File>> {
        if let Some(f) = self.handles().get(path) {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(OpenOptions::new().create(true).append(true).open(path)?);
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        self.handles().insert(path.to_path_buf(), Arc::clone(&f));
        Ok(f)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Disk for StdDisk {
    fn publish(&self, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
        // A handle on the file being replaced would append to the old inode.
        self.forget(&dir.join(name));
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
        // The lock is held only to find the handle, never across the sync:
        // writers of different files sync in parallel.
        let f = self.append_handle(path)?;
        let result = (&*f).write_all(bytes).and_then(|()| f.sync_data());
        if result.is_err() {
            // After a failed write or sync the file's state is unknown: the
            // caller abandons it, and so does the cache.
            self.forget(path);
        }
        result
    }

    fn close(&self, path: &Path) {
        self.forget(path);
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
        // A cached handle would go on appending after bytes cut away.
        self.forget(path);
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.forget(path);
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.forget(from);
        self.forget(to);
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
