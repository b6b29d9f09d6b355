//! How the relay reaches its PostgreSQL: the spool URL (`--spool
//! postgres://USER@HOST:PORT/DB?sslmode=...`), the password kept apart from
//! it, TLS with the same rules as the SMTP side, and the connection pool.
//!
//! - The password comes from `POSTWIRE_SPOOL_PASSWORD` or a file
//!   (`--spool-password-file`), or from the URL itself; it is never logged:
//!   [`SpoolUrl`]'s `Display` shows the URL without it.
//! - `sslmode` takes libpq's words. `disable` is plain; `prefer` (the
//!   default) and `require` use TLS when the server offers it (`require`
//!   refuses a server that does not). `verify-ca` and `verify-full` are read
//!   as `require`: **whenever TLS is used the certificate is verified**
//!   against the web PKI roots plus `sslrootcert=FILE` (PEM) when given,
//!   for the host name of the URL, as the SMTP side does. There is no mode
//!   that skips verification.
//! - tokio-postgres has no TLS of its own; [`RustlsConnect`] adapts
//!   tokio-rustls (already the relay's TLS) to its `MakeTlsConnect`, which
//!   is a few lines rather than one more crate (tokio-postgres-rustls).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// Errors of the connection settings.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse or names an option we do not know.
    #[error("bad spool URL {url}: {reason}")]
    BadUrl {
        /// The URL, without its password.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The password file could not be read.
    #[error("cannot read the spool password file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `sslrootcert` file could not be read or holds no certificate.
    #[error("cannot use sslrootcert {path}: {reason}")]
    RootCert {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The pool could not be built.
    #[error("cannot set up the database pool: {0}")]
    Pool(String),
}

/// A parsed spool URL, with the password kept out of its `Display`.
#[derive(Clone)]
pub struct SpoolUrl {
    config: tokio_postgres::Config,
    root_cert: Option<PathBuf>,
    shown: String,
}

impl std::fmt::Debug for SpoolUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for SpoolUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Whether `s` names a PostgreSQL spool rather than a directory.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// Run on every pooled connection when it is opened.
///
/// `plan_cache_mode = force_generic_plan`: each prepared statement is
/// planned once for any parameters, and planned again only when its tables'
/// statistics change (the relay analyzes them as they grow: see
/// `follow::statistics`). By default PostgreSQL plans the first five
/// executions for their parameters and then keeps planning every execution
/// whenever the generic plan looks dearer; for the spool's statements (CTEs
/// over `unnest` of array parameters) that planning cost more CPU than
/// their execution. Measured in bench/relay (10,000 messages, one relay):
/// PostgreSQL's CPU per message 517 -> 452 us at the full window, 630 ->
/// 580 us at 1 in flight.
pub const SESSION_SETUP: &str = "SET plan_cache_mode = force_generic_plan";

impl SpoolUrl {
    /// Parses `url`; `password` (from the environment or a file) wins over
    /// one in the URL.
    pub fn parse(url: &str, password: Option<String>) -> Result<Self, ConnectError> {
        let mut u = url::Url::parse(url).map_err(|e| ConnectError::BadUrl {
            url: redact(url),
            reason: e.to_string(),
        })?;
        let url_password = u.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        });
        let _ = u.set_password(None);
        let shown = u.to_string();
        let bad = |reason: String| ConnectError::BadUrl {
            url: shown.clone(),
            reason,
        };
        // Our words that tokio-postgres does not know are taken out here.
        let mut root_cert = None;
        let mut kept: Vec<(String, String)> = Vec::new();
        for (k, v) in u.query_pairs() {
            match k.as_ref() {
                "sslrootcert" => root_cert = Some(PathBuf::from(v.as_ref())),
                "sslmode" => {
                    let mode = match v.as_ref() {
                        "disable" | "prefer" | "require" => v.to_string(),
                        "verify-ca" | "verify-full" => "require".to_string(),
                        "allow" => "prefer".to_string(),
                        other => {
                            return Err(bad(format!(
                                "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                            )));
                        }
                    };
                    kept.push(("sslmode".into(), mode));
                }
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        if kept.is_empty() {
            u.set_query(None);
        } else {
            u.query_pairs_mut().clear().extend_pairs(kept.iter());
        }
        let mut config: tokio_postgres::Config = u
            .as_str()
            .parse()
            .map_err(|e: tokio_postgres::Error| bad(e.to_string()))?;
        if let Some(p) = password.or(url_password) {
            config.password(p);
        }
        if config.get_application_name().is_none() {
            config.application_name("postwire");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        Ok(SpoolUrl {
            config,
            root_cert,
            shown,
        })
    }

    /// The driver's settings.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The TLS connector for this URL (used only when `sslmode` is not
    /// `disable`).
    pub fn tls(&self) -> Result<RustlsConnect, ConnectError> {
        RustlsConnect::new(self.root_cert.as_deref())
    }

    /// A pool of at most `size` connections, each set up with
    /// [`SESSION_SETUP`].
    pub fn pool(&self, size: usize) -> Result<deadpool_postgres::Pool, ConnectError> {
        let mgr_config = deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        };
        let manager = if self.config.get_ssl_mode() == SslMode::Disable {
            deadpool_postgres::Manager::from_config(
                self.config.clone(),
                tokio_postgres::NoTls,
                mgr_config,
            )
        } else {
            deadpool_postgres::Manager::from_config(self.config.clone(), self.tls()?, mgr_config)
        };
        deadpool_postgres::Pool::builder(manager)
            .post_create(deadpool_postgres::Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .batch_execute(SESSION_SETUP)
                        .await
                        .map_err(deadpool_postgres::HookError::Backend)
                })
            }))
            .max_size(size.max(2))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| ConnectError::Pool(e.to_string()))
    }

    /// One connection outside the pool (LISTEN needs its own), with the
    /// task that drives it.
    pub async fn connect_one(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            futures_util::stream::BoxStream<
                'static,
                Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>,
            >,
        ),
        Box<dyn std::error::Error + Send + Sync>,
    > {
        use futures_util::StreamExt;
        if self.config.get_ssl_mode() == SslMode::Disable {
            let (client, mut conn) = self.config.connect(tokio_postgres::NoTls).await?;
            let stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx)).boxed();
            Ok((client, stream))
        } else {
            let (client, mut conn) = self.config.connect(self.tls()?).await?;
            let stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx)).boxed();
            Ok((client, stream))
        }
    }
}

/// `url` with any password replaced, for error messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "(unparsable URL)".into(),
    }
}

/// Reads the password file (trailing newline dropped).
pub fn read_password_file(path: &Path) -> Result<String, ConnectError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConnectError::PasswordFile {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// tokio-rustls as tokio-postgres's TLS, verifying the server's certificate.
#[derive(Clone)]
pub struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
}

impl RustlsConnect {
    fn new(root_cert: Option<&Path>) -> Result<Self, ConnectError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = root_cert {
            let bad = |reason: String| ConnectError::RootCert {
                path: path.to_path_buf(),
                reason,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no certificate in the file".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| bad(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectError::Pool(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(RustlsConnect {
            config: Arc::new(config),
        })
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnectOne;
    type Error = std::io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnectOne, std::io::Error> {
        let name = ServerName::try_from(domain.to_string()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{domain:?} is not a host name TLS can verify"),
            )
        })?;
        Ok(RustlsConnectOne {
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&self.config)),
            name,
        })
    }
}

/// One TLS handshake to a named server.
pub struct RustlsConnectOne {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnectOne
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, Result<RustlsStream<S>, std::io::Error>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let s = self.connector.connect(self.name, stream).await?;
            Ok(RustlsStream(s))
        })
    }
}

/// A TLS stream to the database.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM channel binding is optional; none is offered.
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let u = SpoolUrl::parse(
            "postgres://pw:s3cret@db.example:5433/mail?sslmode=disable",
            None,
        )
        .unwrap();
        assert!(!format!("{u}").contains("s3cret"));
        assert!(!format!("{u:?}").contains("s3cret"));
        assert_eq!(u.config().get_password(), Some(&b"s3cret"[..]));
        let u = SpoolUrl::parse("postgres://pw:s3cret@db/mail", Some("other".into())).unwrap();
        assert_eq!(u.config().get_password(), Some(&b"other"[..]));
    }

    #[test]
    fn verify_modes_map_to_require_and_rootcert_is_ours() {
        let u = SpoolUrl::parse(
            "postgres://pw@db/mail?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            None,
        )
        .unwrap();
        assert_eq!(u.config().get_ssl_mode(), SslMode::Require);
        assert_eq!(u.root_cert.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert!(SpoolUrl::parse("postgres://pw@db/mail?sslmode=yes", None).is_err());
        assert!(is_postgres_url("postgresql://x/y"));
        assert!(!is_postgres_url("/var/lib/postwire"));
    }
}
