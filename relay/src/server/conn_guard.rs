//! Guards on each HTTP connection, below hyper:
//!
//! - **A deadline on each request head** (slowloris): a connection must
//!   deliver a complete head (up to the blank line) within [`HEAD_TIMEOUT`]
//!   of being accepted, and each later head on a kept-alive connection within
//!   [`HEAD_TIMEOUT`] of the last response byte written; otherwise its reads
//!   fail with `TimedOut` and hyper closes it. Once the relay has answered
//!   `101 Switching Protocols` the connection is a WebSocket and no deadline
//!   applies (the session has its own: the `auth` frame's).
//! - **A byte budget before authentication**: after the upgrade, a
//!   WebSocket may read at most [`PRE_AUTH_BUDGET`] bytes until its session
//!   has authenticated ([`AuthGate::open`]); beyond that its reads fail and
//!   the connection ends. An `auth` frame is a hundred bytes, so a stranger
//!   cannot make the relay buffer a message-sized frame (up to
//!   `--max-message-size`) per connection before showing a token.
//!
//! Why here: `axum::serve` installs no timer in hyper, so hyper's own
//! `header_read_timeout` never fires (tokio-rs/axum#2741), and the WebSocket
//! frame limit is fixed at the upgrade, before the `auth` frame; wrapping the
//! listener's connections keeps `axum::serve` and its graceful shutdown.
//! Each connection's [`AuthGate`] reaches the handlers through axum's
//! `ConnectInfo<`[`ConnInfo`]`>`.
//!
//! [`HEAD_TIMEOUT_ENV`] (`POSTWIRE_HEAD_TIMEOUT`, e.g. `10s`, `500ms`)
//! changes the deadline.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Bytes a WebSocket may send before its session has authenticated.
pub const PRE_AUTH_BUDGET: u64 = 64 << 10;

/// Whether a connection's session has authenticated; shared by the
/// connection (which limits what it reads until then) and the handlers.
#[derive(Debug, Default)]
pub struct AuthGate(AtomicBool);

impl AuthGate {
    /// Lifts the pre-authentication byte budget: the session authenticated.
    pub fn open(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`AuthGate::open`] was called.
    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Default time allowed for one request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Environment variable that overrides [`HEAD_TIMEOUT`].
pub const HEAD_TIMEOUT_ENV: &str = "POSTWIRE_HEAD_TIMEOUT";

/// The deadline from the environment, else [`HEAD_TIMEOUT`] (a bad value is
/// logged and ignored).
pub fn from_env() -> Duration {
    match std::env::var(HEAD_TIMEOUT_ENV) {
        Ok(v) => match crate::config::parse_duration("POSTWIRE_HEAD_TIMEOUT", &v) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                tracing::warn!(value = %v, "{HEAD_TIMEOUT_ENV}: not a duration; using {}s", HEAD_TIMEOUT.as_secs());
                HEAD_TIMEOUT
            }
        },
        Err(_) => HEAD_TIMEOUT,
    }
}

/// A connection as the handlers see it (axum's `ConnectInfo`).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub addr: std::net::SocketAddr,
    /// The connection's pre-authentication gate.
    pub gate: Arc<AuthGate>,
}

impl<L> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Guarded<L>>>
    for ConnInfo
where
    L: Listener<Addr = std::net::SocketAddr>,
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, Guarded<L>>) -> Self {
        ConnInfo {
            addr: *stream.remote_addr(),
            gate: Arc::clone(&stream.io().gate),
        }
    }
}

/// A listener whose connections are guarded; see the module doc.
#[derive(Debug)]
pub struct Guarded<L> {
    inner: L,
    timeout: Duration,
}

impl<L> Guarded<L> {
    /// Wraps `inner`; every head must arrive within `timeout`.
    pub fn new(inner: L, timeout: Duration) -> Self {
        Guarded { inner, timeout }
    }
}

impl<L: Listener> Listener for Guarded<L> {
    type Io = GuardedIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        (GuardedIo::new(io, self.timeout), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a head; the deadline runs. `tail` holds the last bytes read
    /// (to find the blank line across reads).
    Head { tail: [u8; 3] },
    /// A head was read; waiting for the response. When it starts, the
    /// phase is `Head` again, the deadline counted from the last byte of the
    /// response written (a slow download is not cut).
    Answering,
    /// Switched to a WebSocket: no more deadline.
    Upgraded,
}

/// A guarded connection; see the module doc.
#[derive(Debug)]
pub struct GuardedIo<Io> {
    io: Io,
    timeout: Duration,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    gate: Arc<AuthGate>,
    /// Bytes read since the upgrade, counted until the gate opens.
    upgraded_bytes: u64,
}

impl<Io> GuardedIo<Io> {
    fn new(io: Io, timeout: Duration) -> Self {
        GuardedIo {
            io,
            timeout,
            phase: Phase::Head { tail: [0; 3] },
            deadline: Box::pin(tokio::time::sleep(timeout)),
            gate: Arc::default(),
            upgraded_bytes: 0,
        }
    }
}

impl<Io> GuardedIo<Io> {
    /// Notes that bytes starting with `start` were written.
    fn wrote(&mut self, start: &[u8]) {
        match self.phase {
            Phase::Upgraded => {}
            Phase::Answering
                if start.starts_with(b"HTTP/1.1 101") || start.starts_with(b"HTTP/1.0 101") =>
            {
                self.phase = Phase::Upgraded;
            }
            Phase::Answering | Phase::Head { .. } => {
                if self.phase == Phase::Answering {
                    self.phase = Phase::Head { tail: [0; 3] };
                    self.upgraded_bytes = 0;
                }
                let at = Instant::now() + self.timeout;
                self.deadline.as_mut().reset(at);
            }
        }
    }
}

/// Scans `bytes` for the end of a head (`\n\n` or `\n\r\n`), continuing
/// from `tail`; returns whether it ended and the new tail.
fn head_ends(tail: [u8; 3], bytes: &[u8]) -> (bool, [u8; 3]) {
    let mut t = tail;
    for &b in bytes {
        if b == b'\n' && (t[2] == b'\n' || (t[2] == b'\r' && t[1] == b'\n')) {
            return (true, [0; 3]);
        }
        t = [t[1], t[2], b];
    }
    (false, t)
}

impl<Io: AsyncRead + Unpin> AsyncRead for GuardedIo<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        // Bytes after a head (a WebSocket's first frames may come before
        // the 101 is written) and after the upgrade count against the budget.
        if matches!(this.phase, Phase::Upgraded | Phase::Answering) && !this.gate.is_open() {
            if let Poll::Ready(Ok(())) = &polled {
                this.upgraded_bytes += (buf.filled().len() - before) as u64;
                if this.upgraded_bytes > PRE_AUTH_BUDGET {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "too much data before authentication",
                    )));
                }
            }
            return polled;
        }
        if let Phase::Head { tail } = this.phase {
            if let Poll::Ready(Ok(())) = &polled {
                let (ended, tail) = head_ends(tail, &buf.filled()[before..]);
                this.phase = if ended {
                    Phase::Answering
                } else {
                    Phase::Head { tail }
                };
                return polled;
            }
            if polled.is_pending() && this.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request head not received in time",
                )));
            }
        }
        polled
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for GuardedIo<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_write(cx, bytes);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.wrote(bytes);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // The first slice decides the phase, as in poll_write.
        let first: Vec<u8> = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map(|b| b.iter().take(12).copied().collect())
            .unwrap_or_default();
        let this = &mut *self;
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.wrote(&first);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_ends_at_the_first_blank_line_even_across_reads() {
        assert!(head_ends([0; 3], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").0);
        assert!(head_ends([0; 3], b"GET / HTTP/1.1\nHost: x\n\n").0);
        let (ended, tail) = head_ends([0; 3], b"GET / HTTP/1.1\r\nHost: x\r\n\r");
        assert!(!ended);
        assert!(head_ends(tail, b"\n").0);
        let (ended, tail) = head_ends([0; 3], b"GET / HTTP/1.1\r\nHost: x\r");
        assert!(!ended);
        assert!(!head_ends(tail, b"\nAccept: y\r\n").0);
    }
}
