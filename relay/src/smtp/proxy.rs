//! Reaching the SMTP server through a proxy, as corporate networks require:
//! SOCKS5 (RFC 1928, with user name and password per RFC 1929) or an HTTP
//! proxy's `CONNECT` (RFC 9110 section 9.3.6, with Basic authentication).
//! lettre has neither (lettre#595); both are a short exchange on the TCP
//! connection before SMTP starts, so they are ours.
//!
//! The server's host name goes to the proxy unresolved (SOCKS5 address type
//! "domain name"), so DNS happens where the proxy is. TLS is end to end,
//! through the tunnel, verified for the SMTP host as without a proxy.
//! The proxy password is a [`Secret`]: never printed, never in an error.

use std::{fmt, str::FromStr};

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::settings::{Secret, SettingsError};

/// The proxy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyKind {
    /// SOCKS5 (`socks5://`, or `socks5h://`: both resolve at the proxy).
    Socks5,
    /// An HTTP proxy's CONNECT (`http://`).
    HttpConnect,
}

/// A proxy to reach the server through, from `socks5://[user:pass@]host:port`
/// or `http://[user:pass@]host:port`.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The protocol.
    pub kind: ProxyKind,
    /// The proxy's host.
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// User name, for a proxy that wants authentication.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<Secret>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Proxy {
    /// `socks5://user@host:port` (never the password).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.kind {
            ProxyKind::Socks5 => "socks5",
            ProxyKind::HttpConnect => "http",
        };
        match &self.username {
            Some(u) => write!(f, "{scheme}://{u}@{}:{}", self.host, self.port),
            None => write!(f, "{scheme}://{}:{}", self.host, self.port),
        }
    }
}

impl FromStr for Proxy {
    type Err = SettingsError;

    fn from_str(input: &str) -> Result<Self, SettingsError> {
        let url = url::Url::parse(input).map_err(|_| SettingsError::Invalid {
            what: "proxy URL",
            value: redact(input),
            expected: "socks5://[user:password@]host:port or http://[user:password@]host:port",
        })?;
        let (kind, default_port) = match url.scheme() {
            "socks5" | "socks5h" => (ProxyKind::Socks5, 1080),
            "http" => (ProxyKind::HttpConnect, 8080),
            _ => {
                return Err(SettingsError::Invalid {
                    what: "proxy scheme",
                    value: url.scheme().to_owned(),
                    expected: "socks5 or http",
                });
            }
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string(),
            None => return Err(SettingsError::Missing { what: "proxy host" }),
        };
        let decode = |v: &str, what: &'static str| {
            percent_decode_str(v)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| SettingsError::Invalid {
                    what,
                    value: "***".into(),
                    expected: "percent-encoded UTF-8",
                })
        };
        let username = if url.username().is_empty() {
            None
        } else {
            Some(decode(url.username(), "proxy user")?)
        };
        let password = url
            .password()
            .map(|p| decode(p, "proxy password").map(Secret::new))
            .transpose()?;
        if kind == ProxyKind::Socks5
            && (username.as_ref().is_some_and(|u| u.len() > 255)
                || password.as_ref().is_some_and(|p| p.expose().len() > 255))
        {
            return Err(SettingsError::Invalid {
                what: "proxy credentials",
                value: "***".into(),
                expected: "a SOCKS5 user name and password of at most 255 bytes each",
            });
        }
        Ok(Proxy {
            kind,
            host,
            port: url.port().unwrap_or(default_port),
            username,
            password,
        })
    }
}

/// The URL without its password, for error messages.
fn redact(input: &str) -> String {
    match (input.find("://"), input.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &input[..s + 3], &input[at..]),
        _ => input.to_owned(),
    }
}

/// Why the proxy did not give a tunnel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy could not be reached or broke the connection.
    #[error("proxy {proxy}: {source}")]
    Io {
        /// The proxy (without password).
        proxy: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The proxy refused the credentials (or wants some and none were given).
    #[error("proxy {proxy} refused authentication: {reason}")]
    AuthFailed {
        /// The proxy (without password).
        proxy: String,
        /// What it said.
        reason: String,
    },
    /// The proxy refused to open the tunnel to the server.
    #[error("proxy {proxy} could not reach {target}: {reason}")]
    Refused {
        /// The proxy (without password).
        proxy: String,
        /// `host:port` of the SMTP server.
        target: String,
        /// What it said.
        reason: String,
    },
    /// The proxy answered something that is not its protocol.
    #[error("proxy {proxy}: unexpected answer: {reason}")]
    Protocol {
        /// The proxy (without password).
        proxy: String,
        /// What was wrong.
        reason: String,
    },
}

impl ProxyError {
    /// Only refused credentials are worth no retry.
    pub fn is_transient(&self) -> bool {
        !matches!(self, ProxyError::AuthFailed { .. })
    }
}

impl Proxy {
    /// Connects to the proxy and asks it for a tunnel to `host:port`.
    pub(crate) async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, ProxyError> {
        let name = self.to_string();
        let io = |source| ProxyError::Io {
            proxy: name.clone(),
            source,
        };
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(io)?;
        tcp.set_nodelay(true).map_err(io)?;
        match self.kind {
            ProxyKind::Socks5 => self.socks5(&mut tcp, host, port).await?,
            ProxyKind::HttpConnect => self.http_connect(&mut tcp, host, port).await?,
        }
        Ok(tcp)
    }

    async fn socks5(&self, tcp: &mut TcpStream, host: &str, port: u16) -> Result<(), ProxyError> {
        let name = self.to_string();
        let io = |source| ProxyError::Io {
            proxy: name.clone(),
            source,
        };
        let protocol = |reason: String| ProxyError::Protocol {
            proxy: name.clone(),
            reason,
        };
        let auth = self.username.is_some();
        let greeting: &[u8] = if auth { &[5, 2, 0, 2] } else { &[5, 1, 0] };
        tcp.write_all(greeting).await.map_err(io)?;
        let mut choice = [0u8; 2];
        tcp.read_exact(&mut choice).await.map_err(io)?;
        match choice {
            [5, 0] => {}
            [5, 2] if auth => {
                let user = self.username.as_deref().unwrap_or_default().as_bytes();
                let pass = self.password.as_ref().map_or("", Secret::expose).as_bytes();
                let mut msg = vec![1, u8::try_from(user.len()).unwrap_or(u8::MAX)];
                msg.extend_from_slice(user);
                msg.push(u8::try_from(pass.len()).unwrap_or(u8::MAX));
                msg.extend_from_slice(pass);
                tcp.write_all(&msg).await.map_err(io)?;
                let mut status = [0u8; 2];
                tcp.read_exact(&mut status).await.map_err(io)?;
                if status[1] != 0 {
                    return Err(ProxyError::AuthFailed {
                        proxy: name.clone(),
                        reason: format!("user name/password refused (status {})", status[1]),
                    });
                }
            }
            [5, 0xff] | [5, 2] => {
                return Err(ProxyError::AuthFailed {
                    proxy: name.clone(),
                    reason: if auth {
                        "no acceptable authentication method".into()
                    } else {
                        "the proxy wants a user name and password".into()
                    },
                });
            }
            other => return Err(protocol(format!("SOCKS5 method reply {other:?}"))),
        }
        let host_bytes = host.as_bytes();
        let len = u8::try_from(host_bytes.len())
            .map_err(|_| protocol("host name longer than 255 bytes".into()))?;
        let mut req = vec![5, 1, 0, 3, len];
        req.extend_from_slice(host_bytes);
        req.extend_from_slice(&port.to_be_bytes());
        tcp.write_all(&req).await.map_err(io)?;
        let mut head = [0u8; 4];
        tcp.read_exact(&mut head).await.map_err(io)?;
        if head[0] != 5 {
            return Err(protocol(format!("SOCKS version {} in the reply", head[0])));
        }
        if head[1] != 0 {
            let reason = match head[1] {
                1 => "general failure",
                2 => "connection not allowed by ruleset",
                3 => "network unreachable",
                4 => "host unreachable",
                5 => "connection refused",
                6 => "TTL expired",
                7 => "command not supported",
                8 => "address type not supported",
                _ => "unknown error",
            };
            return Err(ProxyError::Refused {
                proxy: name.clone(),
                target: format!("{host}:{port}"),
                reason: format!("{reason} (SOCKS5 reply {})", head[1]),
            });
        }
        // The bound address: skip it.
        let skip = match head[3] {
            1 => 4,
            4 => 16,
            3 => {
                let mut l = [0u8; 1];
                tcp.read_exact(&mut l).await.map_err(io)?;
                usize::from(l[0])
            }
            t => return Err(protocol(format!("SOCKS5 address type {t}"))),
        };
        let mut rest = vec![0u8; skip + 2];
        tcp.read_exact(&mut rest).await.map_err(io)?;
        Ok(())
    }

    async fn http_connect(
        &self,
        tcp: &mut TcpStream,
        host: &str,
        port: u16,
    ) -> Result<(), ProxyError> {
        let name = self.to_string();
        let io = |source| ProxyError::Io {
            proxy: name.clone(),
            source,
        };
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(user) = &self.username {
            let pass = self.password.as_ref().map_or("", Secret::expose);
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
        }
        req.push_str("\r\n");
        tcp.write_all(req.as_bytes()).await.map_err(io)?;
        // Read the response head byte by byte: what follows it is the SMTP
        // server's greeting, which must stay in the socket.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 16 * 1024 {
                return Err(ProxyError::Protocol {
                    proxy: name.clone(),
                    reason: "response head longer than 16 KiB".into(),
                });
            }
            let mut b = [0u8; 1];
            tcp.read_exact(&mut b).await.map_err(io)?;
            head.push(b[0]);
        }
        let text = String::from_utf8_lossy(&head);
        let status_line = text.lines().next().unwrap_or_default().to_owned();
        let code = status_line
            .split_ascii_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok());
        match code {
            Some(200..=299) if status_line.starts_with("HTTP/1.") => Ok(()),
            Some(407) => Err(ProxyError::AuthFailed {
                proxy: name.clone(),
                reason: status_line,
            }),
            Some(_) => Err(ProxyError::Refused {
                proxy: name.clone(),
                target: authority,
                reason: status_line,
            }),
            None => Err(ProxyError::Protocol {
                proxy: name.clone(),
                reason: format!("not an HTTP status line: {status_line:?}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_parse_and_never_show_the_password() {
        let p: Proxy = "socks5://u%40x:p%20w@proxy.example:1081".parse().unwrap();
        assert_eq!(p.kind, ProxyKind::Socks5);
        assert_eq!((p.host.as_str(), p.port), ("proxy.example", 1081));
        assert_eq!(p.username.as_deref(), Some("u@x"));
        assert_eq!(p.password.as_ref().map(Secret::expose), Some("p w"));
        assert!(!format!("{p:?} {p}").contains("p w"));
        let h: Proxy = "http://[::1]".parse().unwrap();
        assert_eq!(
            (h.kind, h.host.as_str(), h.port),
            (ProxyKind::HttpConnect, "::1", 8080)
        );
        let err = "ftp://x".parse::<Proxy>().unwrap_err().to_string();
        assert!(err.contains("proxy scheme"), "{err}");
        let err = "socks5://u:secret@"
            .parse::<Proxy>()
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
