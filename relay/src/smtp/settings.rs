//! Client settings of the SMTP pool: where to connect, how to secure the
//! connection, how to authenticate, how many sessions to run in parallel and how
//! long to wait. Parsed from a URL such as
//! `smtp://user@host:587?security=starttls&connections=8` or built in code.
//!
//! The password is a [`Secret`]: it never appears in `Debug` output or errors.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use percent_encoding::percent_decode_str;
use url::Url;

/// How the connection to the server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Security {
    /// Plain TCP, never TLS. Credentials are only sent when
    /// [`SmtpSettings::allow_plaintext_auth`] is set.
    None,
    /// Plain TCP upgraded with STARTTLS; fails when the server does not offer it.
    StartTls,
    /// Implicit TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// STARTTLS when the server offers it, plain TCP otherwise. Credentials are
    /// never sent over the plain connection unless
    /// [`SmtpSettings::allow_plaintext_auth`] is set.
    #[default]
    Auto,
}

impl FromStr for Security {
    type Err = SettingsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "plain" => Ok(Security::None),
            "starttls" => Ok(Security::StartTls),
            "tls" | "ssl" | "implicit" => Ok(Security::Tls),
            "auto" => Ok(Security::Auto),
            _ => Err(SettingsError::Invalid {
                what: "security",
                value: s.to_owned(),
                expected: "none, starttls, tls or auto",
            }),
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::None => "none",
            Security::StartTls => "starttls",
            Security::Tls => "tls",
            Security::Auto => "auto",
        })
    }
}

/// A SASL mechanism for SMTP AUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMechanism {
    /// `AUTH PLAIN` (RFC 4616).
    Plain,
    /// `AUTH LOGIN` (obsolete, still needed by some providers).
    Login,
    /// `AUTH XOAUTH2`: the password is an OAuth 2 access token.
    Xoauth2,
}

impl FromStr for AuthMechanism {
    type Err = SettingsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(AuthMechanism::Plain),
            "LOGIN" => Ok(AuthMechanism::Login),
            "XOAUTH2" => Ok(AuthMechanism::Xoauth2),
            _ => Err(SettingsError::Invalid {
                what: "auth mechanism",
                value: s.to_owned(),
                expected: "PLAIN, LOGIN or XOAUTH2",
            }),
        }
    }
}

impl AuthMechanism {
    pub(crate) fn to_lettre(self) -> lettre::transport::smtp::authentication::Mechanism {
        use lettre::transport::smtp::authentication::Mechanism;
        match self {
            AuthMechanism::Plain => Mechanism::Plain,
            AuthMechanism::Login => Mechanism::Login,
            AuthMechanism::Xoauth2 => Mechanism::Xoauth2,
        }
    }
}

/// A password or token: printed as `***` by `Debug` and never put in an error.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password or token.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is sent to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything the pool needs to reach and use an SMTP server.
///
/// Build with [`SmtpSettings::new`] or [`SmtpSettings::from_url`], then adjust
/// the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SmtpSettings {
    /// Server host name or IP address; also the name checked in its certificate.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Connection security.
    pub security: Security,
    /// User name for AUTH; no AUTH when `None`.
    pub username: Option<String>,
    /// Password (or XOAUTH2 token) for AUTH.
    pub password: Option<Secret>,
    /// Mechanisms to try, in order of preference; empty means PLAIN then LOGIN.
    pub mechanisms: Vec<AuthMechanism>,
    /// Allows AUTH over a connection that is not encrypted. Off by default.
    pub allow_plaintext_auth: bool,
    /// Number of parallel SMTP sessions (at least 1).
    pub connections: usize,
    /// Limit for establishing the TCP connection.
    pub connect_timeout: Duration,
    /// Limit for every wait on the server: each reply, and each write of the
    /// message content (a server that stops reading stalls the write).
    pub timeout: Duration,
    /// Name sent in EHLO; the machine's host name when `None`.
    pub helo_name: Option<String>,
    /// PEM file with extra CA certificates to trust (e.g. a private CA), on top
    /// of the bundled Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// PEM file with the client certificate (chain) to present in TLS, for
    /// servers that require one; needs [`SmtpSettings::client_key`].
    pub client_cert: Option<PathBuf>,
    /// PEM file with the private key of [`SmtpSettings::client_cert`].
    pub client_key: Option<PathBuf>,
    /// Reach the server through this SOCKS5 or HTTP CONNECT proxy.
    pub proxy: Option<super::proxy::Proxy>,
}

/// Default port for `smtp://` (message submission).
pub const SUBMISSION_PORT: u16 = 587;
/// Default port for `smtps://` (submission over implicit TLS).
pub const SUBMISSIONS_PORT: u16 = 465;

impl SmtpSettings {
    /// Settings for `host` on port 587 with [`Security::Auto`], one connection,
    /// no AUTH, a 30 s connect timeout and a 60 s reply timeout.
    pub fn new(host: impl Into<String>) -> Self {
        SmtpSettings {
            host: host.into(),
            port: SUBMISSION_PORT,
            security: Security::Auto,
            username: None,
            password: None,
            mechanisms: Vec::new(),
            allow_plaintext_auth: false,
            connections: 1,
            connect_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
            helo_name: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            proxy: None,
        }
    }

    /// Parses `smtp://[user[:password]@]host[:port][?query]` or `smtps://...`.
    ///
    /// `smtp://` defaults to port 587 and `security=auto`; `smtps://` to port 465
    /// and implicit TLS. Query parameters: `security` (none|starttls|tls|auto),
    /// `connections`, `auth` (comma-separated PLAIN,LOGIN,XOAUTH2), `timeout` and
    /// `connect_timeout` (seconds), `helo`, `ca_file`, `client_cert`, `client_key`,
    /// `proxy` (a percent-encoded `socks5://` or `http://` URL), `allow_plaintext_auth`
    /// (true|false). User and password are percent-decoded. Unknown parameters
    /// are an error, so a typo never goes unnoticed.
    pub fn from_url(input: &str) -> Result<Self, SettingsError> {
        let url = Url::parse(input).map_err(|e| SettingsError::Url {
            reason: e.to_string(),
        })?;
        let (implicit_tls, default_port) = match url.scheme() {
            "smtp" => (false, SUBMISSION_PORT),
            "smtps" => (true, SUBMISSIONS_PORT),
            other => {
                return Err(SettingsError::Invalid {
                    what: "URL scheme",
                    value: other.to_owned(),
                    expected: "smtp or smtps",
                });
            }
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(SettingsError::Missing { what: "host" }),
        };
        if host.is_empty() {
            return Err(SettingsError::Missing { what: "host" });
        }
        if !matches!(url.path(), "" | "/") {
            return Err(SettingsError::Invalid {
                what: "URL path",
                value: url.path().to_owned(),
                expected: "nothing after host:port except ?parameters",
            });
        }
        let mut settings = SmtpSettings::new(host);
        settings.port = url.port().unwrap_or(default_port);
        if implicit_tls {
            settings.security = Security::Tls;
        }
        if !url.username().is_empty() {
            settings.username = Some(decode(url.username(), "user name")?);
        }
        if let Some(password) = url.password() {
            settings.password = Some(Secret::new(decode(password, "password")?));
        }
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "security" | "tls" => {
                    let security: Security = value.parse()?;
                    if implicit_tls && security != Security::Tls {
                        return Err(SettingsError::Invalid {
                            what: "security",
                            value: value.into_owned(),
                            expected: "tls (or nothing) with smtps://",
                        });
                    }
                    settings.security = security;
                }
                "connections" => settings.connections = parse_connections(&value)?,
                "auth" | "mechanisms" => settings.mechanisms = parse_mechanisms(&value)?,
                "timeout" => settings.timeout = parse_seconds(&value, "timeout")?,
                "connect_timeout" => {
                    settings.connect_timeout = parse_seconds(&value, "connect_timeout")?
                }
                "helo" | "helo_name" => settings.helo_name = Some(value.into_owned()),
                "ca_file" => settings.ca_file = Some(PathBuf::from(value.as_ref())),
                "client_cert" => settings.client_cert = Some(PathBuf::from(value.as_ref())),
                "client_key" => settings.client_key = Some(PathBuf::from(value.as_ref())),
                "proxy" => settings.proxy = Some(value.parse()?),
                "allow_plaintext_auth" => {
                    settings.allow_plaintext_auth = parse_bool(&value, "allow_plaintext_auth")?
                }
                _ => {
                    return Err(SettingsError::Invalid {
                        what: "URL parameter",
                        value: key.into_owned(),
                        expected: "security, connections, auth, timeout, connect_timeout, helo, \
                                   ca_file, client_cert, client_key, proxy or allow_plaintext_auth",
                    });
                }
            }
        }
        Ok(settings)
    }

    /// Checks the settings that can be checked without connecting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.host.is_empty() {
            return Err(SettingsError::Missing { what: "host" });
        }
        if self.connections == 0 {
            return Err(SettingsError::Invalid {
                what: "connections",
                value: "0".into(),
                expected: "a number from 1 to 1000",
            });
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(SettingsError::Missing {
                what: "user name (a password was given without one)",
            });
        }
        if self.username.is_some() && self.password.is_none() {
            return Err(SettingsError::Missing {
                what: "password for the SMTP user",
            });
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(SettingsError::Missing {
                what: "client certificate and key (give both client_cert and client_key)",
            });
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(SettingsError::Invalid {
                what: "timeout",
                value: "0".into(),
                expected: "a positive number of seconds",
            });
        }
        Ok(())
    }
}

/// Parses a number of connections (1 to 1000).
pub fn parse_connections(value: &str) -> Result<usize, SettingsError> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(SettingsError::Invalid {
            what: "connections",
            value: value.to_owned(),
            expected: "a number from 1 to 1000",
        }),
    }
}

/// Parses a comma-separated list of AUTH mechanisms.
pub fn parse_mechanisms(value: &str) -> Result<Vec<AuthMechanism>, SettingsError> {
    value
        .split(',')
        .filter(|m| !m.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// Parses a positive number of seconds (fractions allowed).
pub fn parse_seconds(value: &str, what: &'static str) -> Result<Duration, SettingsError> {
    match value.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(SettingsError::Invalid {
            what,
            value: value.to_owned(),
            expected: "a positive number of seconds (at most 86400)",
        }),
    }
}

fn parse_bool(value: &str, what: &'static str) -> Result<bool, SettingsError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(SettingsError::Invalid {
            what,
            value: value.to_owned(),
            expected: "true or false",
        }),
    }
}

fn decode(value: &str, what: &'static str) -> Result<String, SettingsError> {
    percent_decode_str(value)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| SettingsError::Invalid {
            what,
            value: if what == "password" {
                "***".into()
            } else {
                value.to_owned()
            },
            expected: "percent-encoded UTF-8",
        })
}

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The SMTP URL could not be parsed at all.
    #[error("invalid SMTP URL: {reason}")]
    Url {
        /// What the URL parser said.
        reason: String,
    },
    /// A value is present but not acceptable.
    #[error("invalid {what} {value:?}: expected {expected}")]
    Invalid {
        /// Which setting.
        what: &'static str,
        /// The value given (never a password).
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A required value is missing.
    #[error("missing {what}")]
    Missing {
        /// Which setting.
        what: &'static str,
    },
    /// The client certificate or its key could not be read or used.
    #[error("client certificate {path}: {reason}")]
    ClientCertificate {
        /// The certificate or key file.
        path: PathBuf,
        /// What went wrong (never the key itself).
        reason: String,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_user_security_and_connections() {
        let s = SmtpSettings::from_url("smtp://ana%40x.org@mail.example.com:2525?security=starttls&connections=8&auth=login,plain&timeout=2.5&helo=me.example")
            .unwrap();
        assert_eq!(s.host, "mail.example.com");
        assert_eq!(s.port, 2525);
        assert_eq!(s.security, Security::StartTls);
        assert_eq!(s.connections, 8);
        assert_eq!(s.username.as_deref(), Some("ana@x.org"));
        assert!(s.password.is_none());
        assert_eq!(
            s.mechanisms,
            vec![AuthMechanism::Login, AuthMechanism::Plain]
        );
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert_eq!(s.helo_name.as_deref(), Some("me.example"));
    }

    #[test]
    fn smtps_defaults_to_implicit_tls_on_465() {
        let s = SmtpSettings::from_url("smtps://u:p%20w@[::1]").unwrap();
        assert_eq!(s.security, Security::Tls);
        assert_eq!(s.port, 465);
        assert_eq!(s.host, "::1");
        assert_eq!(s.password.as_ref().map(Secret::expose), Some("p w"));
        let smtp = SmtpSettings::from_url("smtp://h").unwrap();
        assert_eq!((smtp.port, smtp.security), (587, Security::Auto));
    }

    #[test]
    fn bad_urls_name_what_is_wrong() {
        let err = |u: &str| SmtpSettings::from_url(u).unwrap_err().to_string();
        assert!(err("http://h").contains("URL scheme \"http\""));
        assert!(err("smtp://h?security=maybe").contains("invalid security \"maybe\""));
        assert!(err("smtp://h?connections=0").contains("connections"));
        assert!(err("smtp://h?conections=3").contains("URL parameter \"conections\""));
        assert!(err("smtps://h?security=none").contains("with smtps://"));
        assert!(err("smtp://h?auth=cram-md5").contains("auth mechanism"));
        assert!(err("not a url").contains("invalid SMTP URL"));
    }

    #[test]
    fn url_takes_a_client_certificate_and_a_proxy() {
        let s = SmtpSettings::from_url(
            "smtp://h?client_cert=/c.pem&client_key=/k.pem&proxy=socks5%3A%2F%2Fu%3Apw%40p%3A1080",
        )
        .unwrap();
        assert_eq!(
            s.client_cert.as_deref(),
            Some(std::path::Path::new("/c.pem"))
        );
        assert_eq!(
            s.client_key.as_deref(),
            Some(std::path::Path::new("/k.pem"))
        );
        let proxy = s.proxy.as_ref().unwrap();
        assert_eq!((proxy.host.as_str(), proxy.port), ("p", 1080));
        assert!(!format!("{s:?}").contains("pw"), "{s:?}");
        s.validate().unwrap();
        let half = SmtpSettings::from_url("smtp://h?client_cert=/c.pem").unwrap();
        assert!(
            half.validate()
                .unwrap_err()
                .to_string()
                .contains("client_key")
        );
    }

    #[test]
    fn secret_is_not_printed() {
        let s = SmtpSettings::from_url("smtp://u:hunter2@h").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn validate_wants_a_password_with_a_user() {
        let s = SmtpSettings::from_url("smtp://u@h").unwrap();
        assert!(s.validate().unwrap_err().to_string().contains("password"));
    }
}
