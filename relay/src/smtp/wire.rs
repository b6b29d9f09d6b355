//! The byte stream under lettre's SMTP connection: a TCP socket we opened
//! ourselves (with TCP_NODELAY, which lettre's own transports never set, so the
//! small end-of-data write would wait for the peer's delayed ACK), optionally
//! wrapped in TLS, plus an abort switch.
//!
//! TLS is always ours, implicit or after STARTTLS: for STARTTLS the plain
//! stream hands its socket back through a [`Reclaim`] slot when lettre drops
//! it (we swap in a [`Wire::detached`] one), and the TLS stream made from it
//! replaces it. So one rustls configuration (roots, CA file, client
//! certificate) serves both modes, and the TLS version and certificate chain
//! of the session are known ([`Wire::tls_info`]).
//!
//! The abort switch exists because lettre always ends the DATA phase with
//! `CRLF . CRLF` once the content iterator is exhausted: when reading a message
//! file fails halfway, the iterator trips the switch and every later read or
//! write of the stream fails, so the server never sees the end-of-data marker
//! and drops the truncated message instead of delivering it.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::client::TlsStream;

/// Trips the stream's abort switch from outside the connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct AbortSwitch(Arc<AtomicBool>);

impl AbortSwitch {
    /// Makes every further read and write of the stream fail.
    pub(crate) fn trip(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_tripped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Where a plain stream leaves its socket when dropped, for STARTTLS.
pub(crate) type Reclaim = Arc<Mutex<Option<TcpStream>>>;

#[derive(Debug)]
enum Inner {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Its socket went on to become a TLS stream.
    Detached,
}

/// The TLS parameters of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub(crate) version: String,
    /// The negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub(crate) cipher_suite: String,
    /// The server's certificate chain (DER), its own certificate first.
    pub(crate) chain: Vec<Vec<u8>>,
}

/// A TCP or TLS stream with an [`AbortSwitch`].
#[derive(Debug)]
pub(crate) struct Wire {
    inner: Inner,
    peer: SocketAddr,
    abort: AbortSwitch,
    reclaim: Option<Reclaim>,
}

impl Wire {
    #[cfg(test)]
    pub(crate) fn plain(tcp: TcpStream, peer: SocketAddr, abort: AbortSwitch) -> Self {
        Wire {
            inner: Inner::Plain(tcp),
            peer,
            abort,
            reclaim: None,
        }
    }

    /// A plain stream that gives its socket to `reclaim` when dropped.
    pub(crate) fn plain_reclaimable(
        tcp: TcpStream,
        peer: SocketAddr,
        abort: AbortSwitch,
        reclaim: Reclaim,
    ) -> Self {
        Wire {
            inner: Inner::Plain(tcp),
            peer,
            abort,
            reclaim: Some(reclaim),
        }
    }

    /// A stream without a socket: every read and write fails.
    pub(crate) fn detached(peer: SocketAddr, abort: AbortSwitch) -> Self {
        Wire {
            inner: Inner::Detached,
            peer,
            abort,
            reclaim: None,
        }
    }

    pub(crate) fn tls(tls: TlsStream<TcpStream>, peer: SocketAddr, abort: AbortSwitch) -> Self {
        Wire {
            inner: Inner::Tls(Box::new(tls)),
            peer,
            abort,
            reclaim: None,
        }
    }

    /// The TLS parameters, when this is a TLS stream.
    pub(crate) fn tls_info(&self) -> Option<TlsInfo> {
        let Inner::Tls(tls) = &self.inner else {
            return None;
        };
        let conn = tls.get_ref().1;
        Some(TlsInfo {
            version: match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
                Some(v) => format!("{v:?}"),
                None => "unknown".into(),
            },
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_default(),
            chain: conn
                .peer_certificates()
                .map(|c| c.iter().map(|d| d.to_vec()).collect())
                .unwrap_or_default(),
        })
    }

    fn detached_error() -> io::Error {
        io::Error::new(io::ErrorKind::NotConnected, "stream handed over to TLS")
    }

    fn aborted() -> io::Error {
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "transaction aborted: the message source failed",
        )
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.abort.is_tripped() {
            return Poll::Ready(Err(Self::aborted()));
        }
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Inner::Detached => Poll::Ready(Err(Self::detached_error())),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.abort.is_tripped() {
            return Poll::Ready(Err(Self::aborted()));
        }
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Inner::Detached => Poll::Ready(Err(Self::detached_error())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.abort.is_tripped() {
            return Poll::Ready(Err(Self::aborted()));
        }
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Inner::Detached => Poll::Ready(Err(Self::detached_error())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Inner::Detached => Poll::Ready(Ok(())),
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        if let Some(slot) = self.reclaim.take()
            && let Inner::Plain(tcp) = std::mem::replace(&mut self.inner, Inner::Detached)
            && let Ok(mut slot) = slot.lock()
        {
            *slot = Some(tcp);
        }
    }
}

impl AsyncTokioStream for Wire {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_tripped_switch_fails_every_read_and_write() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let abort = AbortSwitch::default();
        let mut wire = Wire::plain(client, addr, abort.clone());
        wire.write_all(b"before\r\n").await.unwrap();
        let mut buf = [0u8; 8];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"before\r\n");
        abort.trip();
        let err = wire.write_all(b"\r\n.\r\n").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        assert!(wire.flush().await.is_err());
        assert!(wire.read(&mut buf).await.is_err());
    }
}
