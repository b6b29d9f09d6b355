//! Settings of `postwire serve`, from three layers: command-line flags, then
//! `POSTWIRE_*` environment variables (clap reads both), then a TOML file
//! (`--config FILE` / `POSTWIRE_CONFIG`), then defaults. The first layer that
//! sets a value wins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::smtp_args::{Destination, SmtpArgs};

/// Flags of `postwire serve`; each also reads a `POSTWIRE_*` variable.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeFlags {
    /// Address to listen on [default: 127.0.0.1:8025].
    #[arg(long, env = "POSTWIRE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory for the spool, the tokens and the pickup directory.
    #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The upstream: --smtp URL and its settings (as `postwire send`). Without
    /// --smtp, messages go into DATA_DIR/pickup (or --pickup-dir).
    #[command(flatten)]
    pub upstream: SmtpArgs,
    /// Browser origin allowed to connect (repeatable, `*` for any; env: comma-separated).
    #[arg(
        long,
        env = "POSTWIRE_ALLOW_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allow_origin: Vec<String>,
    /// Most unanswered submissions per connection [default: 64].
    #[arg(long, env = "POSTWIRE_WINDOW", value_name = "N")]
    pub window: Option<usize>,
    /// Largest message the relay takes from any token, in bytes [default: 26214400].
    #[arg(long, env = "POSTWIRE_MAX_MESSAGE_SIZE", value_name = "BYTES")]
    pub max_message_size: Option<u64>,
    /// First retry delay after a transient failure, e.g. 30s [default: 30s].
    #[arg(long, env = "POSTWIRE_RETRY_INITIAL", value_name = "DURATION")]
    pub retry_initial: Option<String>,
    /// Longest delay between retries [default: 30m].
    #[arg(long, env = "POSTWIRE_RETRY_MAX", value_name = "DURATION")]
    pub retry_max: Option<String>,
    /// Give up on a message still deferred this long after acceptance [default: 2d].
    #[arg(long, env = "POSTWIRE_MAX_AGE", value_name = "DURATION")]
    pub max_age: Option<String>,
    /// How long shutdown waits for sessions and deliveries in flight [default: 30s].
    #[arg(long, env = "POSTWIRE_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
    /// Serve TLS with this PEM certificate chain (with --tls-key); otherwise plain
    /// HTTP, for a relay behind a TLS-terminating proxy.
    #[arg(
        long,
        env = "POSTWIRE_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "POSTWIRE_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Serve the composer page from this directory (a `vite build` output)
    /// instead of the copy embedded in the binary.
    #[arg(long, env = "POSTWIRE_WEB_DIR", value_name = "DIR")]
    pub web_dir: Option<PathBuf>,
    /// DKIM key directory (DIR/DOMAIN/SELECTOR.key) [default: DATA_DIR/dkim];
    /// the rest of the DKIM settings are in the TOML's `[dkim]` table.
    #[arg(long, env = "POSTWIRE_DKIM_DIR", value_name = "DIR")]
    pub dkim_dir: Option<PathBuf>,
    /// Send with a VERP return path at this domain,
    /// `bounces+<message>.<recipient>@DOMAIN`, so that reports find their
    /// message (docs/bounces.md); without it the envelope sender is kept.
    #[arg(long, env = "POSTWIRE_BOUNCE_DOMAIN", value_name = "DOMAIN")]
    pub bounce_domain: Option<String>,
    /// Listen for reports (DSN, ARF) by SMTP on this address, for the bounce
    /// domain only (needs --bounce-domain).
    #[arg(long, env = "POSTWIRE_INBOUND_SMTP", value_name = "ADDR")]
    pub inbound_smtp: Option<String>,
    /// Largest report the inbound SMTP port takes, in bytes [default: 10485760].
    #[arg(long, env = "POSTWIRE_INBOUND_MAX_SIZE", value_name = "BYTES")]
    pub inbound_max_size: Option<u64>,
    /// First webhook retry delay [default: 5s].
    #[arg(long, env = "POSTWIRE_WEBHOOK_RETRY_INITIAL", value_name = "DURATION")]
    pub webhook_retry_initial: Option<String>,
    /// Longest delay between webhook retries [default: 10m].
    #[arg(long, env = "POSTWIRE_WEBHOOK_RETRY_MAX", value_name = "DURATION")]
    pub webhook_retry_max: Option<String>,
    /// Give up on a webhook event not delivered this long after it was queued [default: 3d].
    #[arg(long, env = "POSTWIRE_WEBHOOK_RETENTION", value_name = "DURATION")]
    pub webhook_retention: Option<String>,
    /// Serve the admin API (`/admin/v1`, when an admin token exists) only on
    /// this address instead of the main listener.
    #[arg(long, env = "POSTWIRE_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Keep the spool in PostgreSQL, shared by every relay given the same
    /// URL (`postgres://USER@HOST:PORT/DB?sslmode=...`; docs/scale-out.md)
    /// instead of DATA_DIR/spool. The password: POSTWIRE_SPOOL_PASSWORD or
    /// --spool-password-file.
    #[arg(long, env = "POSTWIRE_SPOOL_URL", value_name = "URL")]
    pub spool: Option<String>,
    /// File holding the spool database's password (trailing newline ignored).
    #[arg(long, env = "POSTWIRE_SPOOL_PASSWORD_FILE", value_name = "FILE")]
    pub spool_password_file: Option<PathBuf>,
    /// How long a delivery attempt is this relay's before another relay may
    /// take it over (PostgreSQL spool) [default: 60s].
    #[arg(long, env = "POSTWIRE_SPOOL_LEASE", value_name = "DURATION")]
    pub spool_lease: Option<String>,
    /// TOML file with any of the settings above (snake_case keys).
    #[arg(long, env = "POSTWIRE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The spool URL from `url` (a flag or variable) with its password from
/// `POSTWIRE_SPOOL_PASSWORD` or `password_file`; `None` without a URL.
pub fn spool_url(
    url: Option<&str>,
    password_file: Option<&Path>,
) -> Result<Option<crate::spool::pg::SpoolUrl>, ConfigError> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if !crate::spool::pg::is_postgres_url(url) {
        return Err(ConfigError::Spool(
            "the spool URL must start with postgres:// or postgresql://".into(),
        ));
    }
    let password = match (std::env::var("POSTWIRE_SPOOL_PASSWORD"), password_file) {
        (Ok(p), _) if !p.is_empty() => Some(p),
        (_, Some(file)) => Some(
            crate::spool::pg::connect::read_password_file(file)
                .map_err(|e| ConfigError::Spool(e.to_string()))?,
        ),
        _ => None,
    };
    crate::spool::pg::SpoolUrl::parse(url, password)
        .map(Some)
        .map_err(|e| ConfigError::Spool(e.to_string()))
}

/// The TOML file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    smtp: Option<String>,
    #[serde(default)]
    allow_origin: Vec<String>,
    window: Option<usize>,
    max_message_size: Option<u64>,
    retry_initial: Option<String>,
    retry_max: Option<String>,
    max_age: Option<String>,
    shutdown_grace: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    web_dir: Option<PathBuf>,
    #[serde(default)]
    dkim: crate::dkim::DkimConfig,
    bounce_domain: Option<String>,
    inbound_smtp: Option<String>,
    inbound_max_size: Option<u64>,
    webhook_retry_initial: Option<String>,
    webhook_retry_max: Option<String>,
    webhook_retention: Option<String>,
    admin_listen: Option<String>,
    spool: Option<String>,
    spool_password_file: Option<PathBuf>,
    spool_lease: Option<String>,
}

/// The resolved settings of the relay.
#[derive(Debug)]
pub struct Settings {
    /// Listen address.
    pub listen: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Where messages go: an SMTP server (settings hold the password: never
    /// log them) or a pickup directory.
    pub upstream: Destination,
    /// Allowed browser origins.
    pub allow_origin: Vec<String>,
    /// Per-connection window.
    pub window: usize,
    /// Global message size cap.
    pub max_message_size: u64,
    /// First retry delay.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Maximum age of a deferred message.
    pub max_age: Duration,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
    /// TLS certificate chain and key files, if the relay serves TLS itself.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Directory to serve the composer page from; `None`: the embedded copy.
    pub web_dir: Option<PathBuf>,
    /// DKIM signing (the `[dkim]` table); keys default to `DATA_DIR/dkim`.
    pub dkim: crate::dkim::DkimConfig,
    /// The domain of the VERP return path; `None`: the envelope sender is kept.
    pub bounce_domain: Option<String>,
    /// Where the inbound SMTP server for reports listens, if anywhere.
    pub inbound_smtp: Option<String>,
    /// Largest report taken by the inbound SMTP server.
    pub inbound_max_size: u64,
    /// Webhook retries and retention (endpoints: `postwire webhook add`).
    pub webhooks: crate::webhooks::Options,
    /// Where the admin API is served alone; `None`: on the main listener.
    pub admin_listen: Option<String>,
    /// The shared PostgreSQL spool; `None`: the file spool in DATA_DIR/spool.
    pub spool: Option<crate::spool::pg::SpoolUrl>,
    /// Lease time of the PostgreSQL spool.
    pub spool_lease: Duration,
}

/// Errors in the settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML file is invalid.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        message: String,
    },
    /// The spool URL or its password is unusable.
    #[error("spool: {0}")]
    Spool(String),
    /// No data directory was given.
    #[error("no data directory: give --data-dir, POSTWIRE_DATA_DIR or data_dir in the config file")]
    NoDataDir,
    /// A duration is not a number with a unit.
    #[error("{setting}: {value:?} is not a duration (e.g. 500ms, 30s, 5m, 2h, 2d)")]
    Duration {
        /// The setting.
        setting: &'static str,
        /// The value given.
        value: String,
    },
    /// Only one of the TLS certificate and key is given.
    #[error("TLS needs both tls_cert and tls_key")]
    TlsPair,
    /// The upstream settings are invalid.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The inbound SMTP port needs a bounce domain.
    #[error("inbound_smtp needs bounce_domain: the port only takes mail for the bounce domain")]
    InboundWithoutDomain,
    /// A number is out of range.
    #[error("{setting} must be {what}")]
    Range {
        /// The setting.
        setting: &'static str,
        /// The allowed range.
        what: &'static str,
    },
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `2d`, or a plain number of seconds.
pub fn parse_duration(setting: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let err = || ConfigError::Duration {
        setting,
        value: value.to_string(),
    };
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| err())?;
    let ms = match unit.trim() {
        "ms" => n,
        "" | "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        "d" => n.saturating_mul(86_400_000),
        _ => return Err(err()),
    };
    Ok(Duration::from_millis(ms))
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl Settings {
    /// Resolves the layers.
    pub fn resolve(flags: ServeFlags) -> Result<Self, ConfigError> {
        let file = match &flags.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let dur = |setting, flag: Option<String>, file: Option<String>, default: &str| {
            parse_duration(setting, flag.or(file).as_deref().unwrap_or(default))
        };
        let window = flags.window.or(file.window).unwrap_or(64);
        if !(1..=4096).contains(&window) {
            return Err(ConfigError::Range {
                setting: "window",
                what: "between 1 and 4096",
            });
        }
        let max_message_size = flags
            .max_message_size
            .or(file.max_message_size)
            .unwrap_or(25 << 20);
        if !(1..=(1 << 30)).contains(&max_message_size) {
            return Err(ConfigError::Range {
                setting: "max_message_size",
                what: "between 1 byte and 1 GiB",
            });
        }
        let data_dir = flags
            .data_dir
            .or(file.data_dir)
            .ok_or(ConfigError::NoDataDir)?;
        let mut upstream_args = flags.upstream;
        if upstream_args.smtp.is_none() {
            upstream_args.smtp = file.smtp.filter(|s| !s.is_empty());
        }
        let upstream = if upstream_args.smtp.is_none() && upstream_args.pickup_dir.is_none() {
            Destination::Pickup(data_dir.join("pickup"))
        } else {
            upstream_args
                .destination()
                .map_err(|e| ConfigError::Upstream(e.to_string()))?
        };
        let tls = match (
            flags.tls_cert.or(file.tls_cert),
            flags.tls_key.or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err(ConfigError::TlsPair),
        };
        let bounce_domain = flags
            .bounce_domain
            .or(file.bounce_domain)
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty());
        let inbound_smtp = flags
            .inbound_smtp
            .or(file.inbound_smtp)
            .filter(|a| !a.trim().is_empty());
        if inbound_smtp.is_some() && bounce_domain.is_none() {
            return Err(ConfigError::InboundWithoutDomain);
        }
        let inbound_max_size = flags
            .inbound_max_size
            .or(file.inbound_max_size)
            .unwrap_or(10 << 20);
        if !(1024..=(1 << 30)).contains(&inbound_max_size) {
            return Err(ConfigError::Range {
                setting: "inbound_max_size",
                what: "between 1 KiB and 1 GiB",
            });
        }
        let mut dkim = file.dkim;
        if let Some(dir) = flags.dkim_dir {
            dkim.dir = Some(dir);
        }
        let webhooks = crate::webhooks::Options {
            retry_initial: dur(
                "webhook_retry_initial",
                flags.webhook_retry_initial,
                file.webhook_retry_initial,
                "5s",
            )?,
            retry_max: dur(
                "webhook_retry_max",
                flags.webhook_retry_max,
                file.webhook_retry_max,
                "10m",
            )?,
            retention: dur(
                "webhook_retention",
                flags.webhook_retention,
                file.webhook_retention,
                "3d",
            )?,
            ..crate::webhooks::Options::default()
        };
        Ok(Settings {
            admin_listen: flags.admin_listen.or(file.admin_listen),
            webhooks,
            dkim,
            bounce_domain,
            inbound_smtp,
            inbound_max_size,
            tls,
            web_dir: flags.web_dir.or(file.web_dir),
            listen: flags
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:8025".into()),
            data_dir,
            upstream,
            allow_origin: if flags.allow_origin.is_empty() {
                file.allow_origin
            } else {
                flags.allow_origin
            },
            window,
            max_message_size,
            retry_initial: dur(
                "retry_initial",
                flags.retry_initial,
                file.retry_initial,
                "30s",
            )?,
            retry_max: dur("retry_max", flags.retry_max, file.retry_max, "30m")?,
            max_age: dur("max_age", flags.max_age, file.max_age, "2d")?,
            shutdown_grace: dur(
                "shutdown_grace",
                flags.shutdown_grace,
                file.shutdown_grace,
                "30s",
            )?,
            spool: spool_url(
                flags.spool.or(file.spool).as_deref(),
                flags
                    .spool_password_file
                    .or(file.spool_password_file)
                    .as_deref(),
            )?,
            spool_lease: {
                let d = dur("spool_lease", flags.spool_lease, file.spool_lease, "60s")?;
                if d < Duration::from_secs(1) {
                    return Err(ConfigError::Range {
                        setting: "spool_lease",
                        what: "at least 1s",
                    });
                }
                d
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(
            parse_duration("x", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_duration("x", "30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("x", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("x", "2d").unwrap(),
            Duration::from_secs(172_800)
        );
        assert!(parse_duration("x", "5 weeks").is_err());
        assert!(parse_duration("x", "").is_err());
    }

    fn no_flags() -> ServeFlags {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            f: ServeFlags,
        }
        T::parse_from(["t"]).f
    }

    #[test]
    fn without_smtp_the_relay_delivers_into_the_pickup_directory_of_its_data_dir() {
        let s = Settings::resolve(ServeFlags {
            data_dir: Some("/srv/pw".into()),
            ..no_flags()
        })
        .unwrap();
        assert!(
            matches!(s.upstream, Destination::Pickup(ref d) if d == Path::new("/srv/pw/pickup"))
        );
    }

    #[test]
    fn the_dkim_table_sets_signing_and_keys_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/pw\"\n[dkim]\nbody_length = true\ncanonicalization = \"simple/relaxed\"\n\
             [[dkim.key]]\ndomain = \"Example.ORG\"\nselector = \"s1\"\npath = \"/run/k.pem\"\n",
        )
        .unwrap();
        let s = Settings::resolve(ServeFlags {
            config: Some(path.clone()),
            ..no_flags()
        })
        .unwrap();
        assert!(s.dkim.body_length);
        assert_eq!(s.dkim.keys[0].selector, "s1");
        assert_eq!(s.dkim.oversign, ["from", "subject", "to", "date"]);
        assert!(crate::dkim::Signer::new(&s.dkim, None).is_ok());
        std::fs::write(&path, "data_dir = \"/srv/pw\"\n[dkim]\nkeys = 1\n").unwrap();
        let e = Settings::resolve(ServeFlags {
            config: Some(path),
            ..no_flags()
        })
        .unwrap_err();
        assert!(e.to_string().contains("keys"), "{e}");
    }

    #[test]
    fn the_inbound_port_needs_a_bounce_domain_which_also_comes_from_the_file() {
        let e = Settings::resolve(ServeFlags {
            data_dir: Some("/srv/pw".into()),
            inbound_smtp: Some("127.0.0.1:2525".into()),
            ..no_flags()
        })
        .unwrap_err();
        assert!(matches!(e, ConfigError::InboundWithoutDomain), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/pw\"\nbounce_domain = \"b.example.com\"\ninbound_smtp = \"127.0.0.1:2525\"\n",
        )
        .unwrap();
        let s = Settings::resolve(ServeFlags {
            config: Some(path),
            ..no_flags()
        })
        .unwrap();
        assert_eq!(s.bounce_domain.as_deref(), Some("b.example.com"));
        assert_eq!(s.inbound_smtp.as_deref(), Some("127.0.0.1:2525"));
        assert_eq!(s.inbound_max_size, 10 << 20);
    }

    #[test]
    fn webhook_retries_come_from_flags_or_the_file_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/pw\"\nwebhook_retry_max = \"1m\"\nwebhook_retention = \"1d\"\n",
        )
        .unwrap();
        let s = Settings::resolve(ServeFlags {
            config: Some(path),
            webhook_retention: Some("2h".into()),
            ..no_flags()
        })
        .unwrap();
        assert_eq!(s.webhooks.retry_initial, Duration::from_secs(5));
        assert_eq!(s.webhooks.retry_max, Duration::from_secs(60));
        assert_eq!(s.webhooks.retention, Duration::from_secs(7200));
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/pw\"\nwindow = 8\nmax_age = \"1h\"\n",
        )
        .unwrap();
        let flags = ServeFlags {
            config: Some(path.clone()),
            window: Some(16),
            ..no_flags()
        };
        let s = Settings::resolve(flags).unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.data_dir, PathBuf::from("/srv/pw"));
        assert_eq!(s.window, 16);
        assert_eq!(s.max_age, Duration::from_secs(3600));
        assert_eq!(s.retry_initial, Duration::from_secs(30));
        std::fs::write(&path, "listen = 1\n").unwrap();
        let e = Settings::resolve(ServeFlags {
            config: Some(path),
            ..no_flags()
        })
        .unwrap_err();
        assert!(e.to_string().contains("relay.toml"), "{e}");
    }
}
