//! The message content of a transaction and how it goes over the wire: from
//! memory, or streamed from a file in 64 KiB chunks so that memory does not
//! grow with the message (lettre's own `send` wants the whole message as one
//! slice). lettre's `message_iter` dot-stuffs across chunk borders and writes
//! the end-of-data marker; we hold back a final CRLF so that the server
//! receives exactly the bytes of the message.
//!
//! A watchdog turns a server that stops reading or answering into a timeout:
//! the content may take as long as it needs as long as every chunk is written,
//! and the final reply, within the configured timeout.

use std::{
    io::Read,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use lettre::transport::smtp::{client::AsyncSmtpConnection, response::Response};
use tokio::runtime::{Handle, RuntimeFlavor};

use super::{
    error::{SmtpError, Stage},
    reply,
    wire::AbortSwitch,
};

/// Size of the chunks handed to the connection.
const CHUNK: usize = 64 * 1024;

/// Files up to this size are read whole instead of streamed.
const SMALL_FILE: u64 = 1024 * 1024;

pub(super) use crate::delivery::Content;

impl Content {
    /// Sends the content after a positive `DATA` reply; returns the final reply
    /// and the number of content bytes read.
    pub(crate) async fn send(
        &self,
        conn: &mut AsyncSmtpConnection,
        abort: &AbortSwitch,
        limit: Duration,
    ) -> Result<(Response, u64), SmtpError> {
        let progress = Arc::new(Progress::new());
        match self {
            Content::Bytes(bytes) => {
                let body = strip_final_crlf(bytes);
                let chunks = Tracked {
                    inner: body.chunks(CHUNK),
                    progress: progress.clone(),
                };
                let response = watch(conn.message_iter(chunks), &progress, limit).await?;
                Ok((response, bytes.len() as u64))
            }
            Content::File(path) => {
                // A small file is read whole and sent like bytes. The read is
                // synchronous: a page-cache read of at most 1 MiB costs less
                // than handing it to a blocking thread.
                let read_error = |source| SmtpError::MessageFile {
                    path: path.clone(),
                    source,
                };
                let len = std::fs::metadata(path).map_err(read_error)?.len();
                if len <= SMALL_FILE {
                    let bytes = std::fs::read(path).map_err(read_error)?;
                    let chunks = Tracked {
                        inner: strip_final_crlf(&bytes).chunks(CHUNK),
                        progress: progress.clone(),
                    };
                    let response = watch(conn.message_iter(chunks), &progress, limit).await?;
                    return Ok((response, bytes.len() as u64));
                }
                let file = std::fs::File::open(path).map_err(|source| SmtpError::MessageFile {
                    path: path.clone(),
                    source,
                })?;
                let failure = Arc::new(Mutex::new(None));
                let total = Arc::new(AtomicU64::new(0));
                let chunks = Tracked {
                    inner: FileChunks {
                        file,
                        expected: Some(len),
                        carry: Vec::new(),
                        abort: abort.clone(),
                        failure: failure.clone(),
                        total: total.clone(),
                        finished: false,
                    },
                    progress: progress.clone(),
                };
                let send = watch(conn.message_iter(chunks), &progress, limit);
                // Reading the file blocks: on a multi-threaded runtime, tell it so.
                let result = if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
                    tokio::task::block_in_place(|| Handle::current().block_on(send))
                } else {
                    send.await
                };
                let read_error = failure.lock().ok().and_then(|mut f| f.take());
                if let Some(source) = read_error {
                    return Err(SmtpError::MessageFile {
                        path: path.clone(),
                        source,
                    });
                }
                Ok((result?, total.load(Ordering::SeqCst)))
            }
        }
    }
}

/// The message without its final CRLF, which the end-of-data marker supplies.
fn strip_final_crlf(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\r\n").unwrap_or(bytes)
}

/// When the content last made progress, and whether it has all been handed over.
struct Progress {
    start: Instant,
    last_ms: AtomicU64,
    done: AtomicBool,
}

impl Progress {
    fn new() -> Self {
        Progress {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            done: AtomicBool::new(false),
        }
    }

    fn tick(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::SeqCst);
    }

    fn stalled_for(&self) -> Duration {
        let now = self.start.elapsed();
        now.saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::SeqCst)))
    }

    fn stage(&self) -> Stage {
        if self.done.load(Ordering::SeqCst) {
            Stage::EndOfData
        } else {
            Stage::Content
        }
    }
}

/// Marks progress each time the connection asks for the next chunk (the
/// previous one has been written).
struct Tracked<I> {
    inner: I,
    progress: Arc<Progress>,
}

impl<I: Iterator> Iterator for Tracked<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        self.progress.tick();
        let item = self.inner.next();
        if item.is_none() {
            self.progress.done.store(true, Ordering::SeqCst);
        }
        item
    }
}

/// Runs the content future until it ends or stops making progress for `limit`.
async fn watch(
    send: impl Future<Output = Result<Response, lettre::transport::smtp::Error>>,
    progress: &Progress,
    limit: Duration,
) -> Result<Response, SmtpError> {
    let period = (limit / 4).max(Duration::from_millis(10));
    let watchdog = async {
        loop {
            tokio::time::sleep(period).await;
            if progress.stalled_for() > limit {
                return progress.stage();
            }
        }
    };
    tokio::select! {
        result = send => result.map_err(|e| match reply::from_lettre_error(&e) {
            Some(reply) => SmtpError::Rejected { stage: Stage::EndOfData, reply },
            None => SmtpError::from_lettre(progress.stage(), "", e),
        }),
        stage = watchdog => Err(SmtpError::Timeout { stage, after: limit }),
    }
}

/// Reads a file in chunks, holding back its last two bytes so that a final
/// CRLF can be dropped. On a read error it records the error and trips the
/// abort switch, so the truncated message is never terminated and delivered.
struct FileChunks<R> {
    file: R,
    /// The file's size when sending began; reaching the end elsewhere means
    /// it changed underneath us and is treated like a read error.
    expected: Option<u64>,
    carry: Vec<u8>,
    abort: AbortSwitch,
    failure: Arc<Mutex<Option<std::io::Error>>>,
    total: Arc<AtomicU64>,
    finished: bool,
}

impl<R: Read> FileChunks<R> {
    fn fail(&mut self, error: std::io::Error) {
        self.finished = true;
        self.abort.trip();
        if let Ok(mut slot) = self.failure.lock() {
            *slot = Some(error);
        }
    }
}

impl<R: Read> Iterator for FileChunks<R> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        while !self.finished {
            let mut data = std::mem::take(&mut self.carry);
            let start = data.len();
            data.resize(start + CHUNK, 0);
            let read = match data.get_mut(start..) {
                Some(buf) => self.file.read(buf),
                None => Ok(0),
            };
            match read {
                Ok(0) => {
                    let total = self.total.load(Ordering::SeqCst);
                    if let Some(expected) = self.expected.filter(|&e| e != total) {
                        self.fail(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!(
                                "the file changed while it was sent: {expected} bytes \
                                 expected, {total} read"
                            ),
                        ));
                        return None;
                    }
                    self.finished = true;
                    data.truncate(start);
                    return (!data.is_empty() && data != b"\r\n").then_some(data);
                }
                Ok(n) => {
                    self.total.fetch_add(n as u64, Ordering::SeqCst);
                    data.truncate(start + n);
                    let keep = data.len().min(2);
                    self.carry = data.split_off(data.len() - keep);
                    if !data.is_empty() {
                        return Some(data);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    data.truncate(start);
                    self.carry = data;
                }
                Err(e) => self.fail(e),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn chunks_of(bytes: &[u8]) -> Vec<u8> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        std::io::Seek::rewind(&mut file).unwrap();
        let it = FileChunks {
            file,
            expected: None,
            carry: Vec::new(),
            abort: AbortSwitch::default(),
            failure: Arc::default(),
            total: Arc::default(),
            finished: false,
        };
        it.flatten().collect()
    }

    /// Gives `ok` bytes of 'a', then fails.
    struct Failing {
        ok: usize,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.ok == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.ok);
            buf[..n].fill(b'a');
            self.ok -= n;
            Ok(n)
        }
    }

    fn chunks_with(file: impl Read, expected: Option<u64>) -> (usize, AbortSwitch, Option<String>) {
        let abort = AbortSwitch::default();
        let failure = Arc::new(Mutex::new(None));
        let it = FileChunks {
            file,
            expected,
            carry: Vec::new(),
            abort: abort.clone(),
            failure: failure.clone(),
            total: Arc::default(),
            finished: false,
        };
        let n = it.map(|c| c.len()).sum();
        let err = failure
            .lock()
            .unwrap()
            .take()
            .map(|e: std::io::Error| e.to_string());
        (n, abort, err)
    }

    #[test]
    fn a_read_error_mid_file_trips_the_abort_switch() {
        let (sent, abort, err) = chunks_with(Failing { ok: 200_000 }, Some(1_000_000));
        assert!(sent < 200_000);
        assert!(abort.is_tripped());
        assert_eq!(err.as_deref(), Some("disk on fire"));
    }

    #[test]
    fn a_file_that_shrank_while_sending_trips_the_abort_switch() {
        let (_, abort, err) = chunks_with(&[b'x'; 100_000][..], Some(150_000));
        assert!(abort.is_tripped());
        assert!(err.unwrap().contains("150000 bytes expected, 100000 read"));
        let (sent, abort, err) = chunks_with(&[b'x'; 100_000][..], Some(100_000));
        assert_eq!((sent, abort.is_tripped(), err), (100_000, false, None));
    }

    #[test]
    fn file_chunks_drop_exactly_one_final_crlf() {
        assert_eq!(chunks_of(b"a\r\nb\r\n"), b"a\r\nb");
        assert_eq!(chunks_of(b"a\r\nb"), b"a\r\nb");
        assert_eq!(chunks_of(b"\r\n"), b"");
        assert_eq!(chunks_of(b"x"), b"x");
        assert_eq!(chunks_of(b""), b"");
        let big: Vec<u8> = (0..(3 * CHUNK + 5))
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let mut with_crlf = big.clone();
        with_crlf.extend_from_slice(b"\r\n");
        assert_eq!(chunks_of(&with_crlf), big);
        assert_eq!(strip_final_crlf(b"a\r\n\r\n"), b"a\r\n");
    }
}
