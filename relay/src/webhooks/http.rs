//! One webhook request: a minimal HTTP/1.1 POST (`Connection: close`, the
//! status line is all that is read back) over tokio, with TLS from
//! tokio-rustls and the webpki roots (verification always on). Why not an
//! HTTP client crate: reqwest is not in the tree, hyper's client feature
//! would rebuild hyper for one POST a request; this is what a webhook needs.
//!
//! Server-side request forgery: the host is resolved here and every
//! resolved address checked ([`forbidden`]): loopback, private, link-local,
//! shared (CGNAT), multicast and unspecified addresses are refused unless the
//! endpoint has `allow_private`. The connection goes to the address that was
//! checked, so a DNS answer that changes between check and connect (DNS
//! rebinding) cannot slip through. Redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::store::{Endpoint, check_url};

/// How long one request may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request got no HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// The URL is not allowed for this endpoint.
    #[error(transparent)]
    Url(#[from] super::store::StoreError),
    /// Every address of the host is one this endpoint may not reach.
    #[error(
        "refused: {host} resolves only to non-public addresses ({addrs}); allow_private is off for this endpoint"
    )]
    Private {
        /// The host.
        host: String,
        /// Its addresses.
        addrs: String,
    },
    /// The host did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// Connecting, TLS or the exchange failed.
    #[error("{0}")]
    Connection(String),
    /// No answer within [`TIMEOUT`].
    #[error("no answer within {}s", TIMEOUT.as_secs())]
    Timeout,
    /// The answer is not HTTP.
    #[error("not an HTTP response")]
    BadResponse,
}

/// An address no endpoint may reach without `allow_private`.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                // 64:ff9b::/96 (NAT64) and ::/96 (IPv4-compatible) carry an IPv4 address.
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]
                    && forbidden(IpAddr::V4(std::net::Ipv4Addr::new(
                        (s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))))
                || (s[..6] == [0; 6] && forbidden(IpAddr::V4(std::net::Ipv4Addr::new(
                        (s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))))
        }
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            .unwrap_or_else(|_| {
                // The ring provider always supports the default versions.
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            });
        Arc::new(config)
    }))
}

/// POSTs `body` to `endpoint` with the extra `headers`; the HTTP status.
pub async fn post(
    endpoint: &Endpoint,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<u16, PostError> {
    match tokio::time::timeout(TIMEOUT, post_inner(endpoint, headers, body)).await {
        Ok(r) => r,
        Err(_) => Err(PostError::Timeout),
    }
}

async fn post_inner(
    endpoint: &Endpoint,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<u16, PostError> {
    let url = check_url(&endpoint.url, endpoint.allow_http)?;
    let https = url.scheme() == "https";
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare_host.as_str(), port))
        .await
        .map_err(|e| PostError::Resolve {
            host: host.clone(),
            reason: e.to_string(),
        })?
        .collect();
    let allowed: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| endpoint.allow_private || !forbidden(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(if addrs.is_empty() {
            PostError::Resolve {
                host,
                reason: "no addresses".into(),
            }
        } else {
            PostError::Private {
                host,
                addrs: addrs
                    .iter()
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        });
    }
    let mut last_err = String::new();
    let mut tcp = None;
    for addr in &allowed {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_err = format!("cannot connect to {addr}: {e}"),
        }
    }
    let Some(tcp) = tcp else {
        return Err(PostError::Connection(last_err));
    };
    let _ = tcp.set_nodelay(true);
    let mut target = url.path().to_string();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let mut head = format!(
        "POST {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: postwire-webhooks/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    if https {
        let name = ServerName::try_from(bare_host.clone())
            .map_err(|e| PostError::Connection(format!("bad TLS name {host}: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(|e| PostError::Connection(format!("TLS with {host}: {e}")))?;
        exchange(tls, head.as_bytes(), body).await
    } else {
        exchange(tcp, head.as_bytes(), body).await
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    head: &[u8],
    body: &[u8],
) -> Result<u16, PostError> {
    let conn = |e: std::io::Error| PostError::Connection(e.to_string());
    s.write_all(head).await.map_err(conn)?;
    s.write_all(body).await.map_err(conn)?;
    s.flush().await.map_err(conn)?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 8192 {
        let n = s.read(&mut chunk).await.map_err(conn)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    status_of(&buf).ok_or(PostError::BadResponse)
}

/// The status code of an HTTP/1.x status line.
fn status_of(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_forbidden_and_public_ones_are_not() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(forbidden(a.parse().expect("ip")), "{a}");
        }
        for a in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(!forbidden(a.parse().expect("ip")), "{a}");
        }
    }

    #[test]
    fn the_status_line_is_read_and_anything_else_is_not_http() {
        assert_eq!(status_of(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_of(b"HTTP/1.0 500 x\r\n"), Some(500));
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_of(b""), None);
    }
}
