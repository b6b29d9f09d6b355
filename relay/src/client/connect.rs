//! Opening one `postwire.v1` connection: checking the URL (`wss://`, or
//! `ws://` to a loopback address only), TCP, TLS verified against the
//! webpki roots (plus a private CA file when given), the WebSocket upgrade
//! with `Authorization: Bearer` and the subprotocol, and waiting for the
//! relay's `ready` frame.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use super::frames::Incoming;
use super::{ClientError, Ready};
use crate::server::protocol::PROTOCOL;

/// Any byte stream the WebSocket runs over (plain TCP or TLS).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open WebSocket to the relay.
pub(crate) type Ws = WebSocketStream<Box<dyn Io>>;

/// Where to connect, checked once.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) url: url::Url,
    host: String,
    port: u16,
    tls: bool,
}

/// Whether `host` names this machine (`localhost`, 127.0.0.0/8, `::1`).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Target {
    /// Parses and checks a relay URL: `wss://` anywhere, `ws://` only to
    /// a loopback address unless `plaintext_anywhere`.
    pub(crate) fn parse(url: &str, plaintext_anywhere: bool) -> Result<Target, ClientError> {
        let parsed = url::Url::parse(url).map_err(|e| ClientError::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let tls = match parsed.scheme() {
            "wss" => true,
            "ws" => false,
            other => {
                return Err(ClientError::InvalidUrl {
                    url: url.to_string(),
                    reason: format!("scheme {other:?}: expected wss:// (or ws:// to 127.0.0.1)"),
                });
            }
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ClientError::InvalidUrl {
                url: url.to_string(),
                reason: "no host".into(),
            })?
            .to_string();
        if !tls && !plaintext_anywhere && !is_loopback(&host) {
            return Err(ClientError::Plaintext { host });
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ClientError::InvalidUrl {
                url: parsed.host_str().unwrap_or_default().to_string(),
                reason: "credentials in the URL: pass the token separately".into(),
            });
        }
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        Ok(Target {
            url: parsed,
            host,
            port,
            tls,
        })
    }
}

/// The TLS configuration: the webpki roots, plus the certificates of
/// `ca_file` (a private CA) when given. Verification is never off.
pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let bad = |reason: String| ClientError::CaFile {
            path: path.to_owned(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(bad("no CERTIFICATE block found".into()));
        }
        for der in certs {
            roots.add(der).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens a connection and waits for `ready`, all within `limit`.
pub(crate) async fn open(
    target: &Target,
    token: &str,
    tls: &Arc<rustls::ClientConfig>,
    limit: Duration,
) -> Result<(Ws, Ready), ClientError> {
    match tokio::time::timeout(limit, open_inner(target, token, tls)).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Connect {
            url: target.url.to_string(),
            reason: format!("no ready frame within {} s", limit.as_secs()),
        }),
    }
}

async fn open_inner(
    target: &Target,
    token: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<(Ws, Ready), ClientError> {
    let failed = |reason: String| ClientError::Connect {
        url: target.url.to_string(),
        reason,
    };
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((host, target.port))
        .await
        .map_err(|e| failed(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if target.tls {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| failed(format!("{host:?} is not a DNS name or IP address")))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| failed(format!("TLS: {e}")))?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| failed(e.to_string()))?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        tungstenite::http::HeaderValue::from_static(PROTOCOL),
    );
    let bearer =
        tungstenite::http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            ClientError::Unauthorized("the token has characters a header cannot carry".into())
        })?;
    headers.insert("Authorization", bearer);
    let (mut ws, _) = tokio_tungstenite::client_async(request, io)
        .await
        .map_err(|e| match e {
            tungstenite::Error::Http(response) => {
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                match response.status().as_u16() {
                    401 | 400 => ClientError::Unauthorized(body),
                    status => failed(format!("HTTP {status} {body}")),
                }
            }
            other => failed(other.to_string()),
        })?;
    let ws_box: &mut Ws = &mut ws;
    loop {
        let Some(msg) = ws_box.next().await else {
            return Err(failed(
                "the relay closed the connection before ready".into(),
            ));
        };
        let msg = msg.map_err(|e| failed(e.to_string()))?;
        let Message::Text(text) = msg else { continue };
        match Incoming::parse(&text) {
            Some(Incoming::Ready(ready)) => return Ok((ws, ready)),
            Some(Incoming::Error { code, message }) => {
                return Err(ClientError::from_relay(code, message));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ws_is_only_for_this_machine() {
        assert!(Target::parse("ws://127.0.0.1:8080/v1/submit", false).is_ok());
        assert!(Target::parse("ws://localhost:8080/v1/submit", false).is_ok());
        assert!(Target::parse("ws://[::1]:8080/v1/submit", false).is_ok());
        assert!(matches!(
            Target::parse("ws://relay.example/v1/submit", false),
            Err(ClientError::Plaintext { .. })
        ));
        assert!(Target::parse("ws://relay.example/v1/submit", true).is_ok());
        assert!(Target::parse("wss://relay.example/v1/submit", false).is_ok());
        assert!(matches!(
            Target::parse("https://relay.example/v1/submit", false),
            Err(ClientError::InvalidUrl { .. })
        ));
        assert!(matches!(
            Target::parse("wss://u:p@relay.example/v1/submit", false),
            Err(ClientError::InvalidUrl { .. })
        ));
    }
}
