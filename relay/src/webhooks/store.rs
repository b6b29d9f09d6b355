//! The registered endpoints: `DATA_DIR/webhooks.toml` (`[[endpoint]]`
//! tables: name, url, token, allow_http, allow_private; no secrets) and one
//! signing secret per endpoint in `DATA_DIR/webhook-secrets/NAME` (mode
//! 0600, directory 0700). The secret is the HMAC key itself, so it is kept,
//! not hashed; it is printed once by `postwire webhook add` and never
//! logged or listed.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The endpoints file in the data directory.
pub const ENDPOINTS_FILE: &str = "webhooks.toml";
/// The secrets directory in the data directory.
pub const SECRETS_DIR: &str = "webhook-secrets";

/// Errors of the endpoint store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The endpoints file is not valid.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The name is not 1 to 64 of A-Z a-z 0-9 . _ - (not starting with '.').
    #[error("invalid webhook name {0:?}: use 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.'")]
    Name(String),
    /// The URL is not an http(s) URL the endpoint may use.
    #[error("invalid webhook URL {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// An endpoint with this name exists.
    #[error("a webhook named {0:?} exists already")]
    Exists(String),
    /// No endpoint with this name.
    #[error("no webhook named {0:?}")]
    Unknown(String),
    /// No random bytes for a secret.
    #[error("no randomness for a secret: {0}")]
    Random(String),
}

/// One endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Its name (metrics label, secret file name).
    pub name: String,
    /// Where events are POSTed.
    pub url: String,
    /// The token whose messages it hears of; `None`: every token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Plain `http://` is allowed.
    #[serde(default)]
    pub allow_http: bool,
    /// Loopback, private, link-local and unspecified addresses are allowed.
    #[serde(default)]
    pub allow_private: bool,
}

impl Endpoint {
    /// Hears of messages of `token`.
    pub fn hears(&self, token: &str) -> bool {
        self.token.as_deref().is_none_or(|t| t == token)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    endpoint: Vec<Endpoint>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A name is 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.'.
pub(crate) fn valid_name(name: &str) -> bool {
    // Also a file name: no leading '.', so never "." or "..".
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// Checks that `url` is an http(s) URL with a host, and https unless
/// `allow_http`.
pub fn check_url(url: &str, allow_http: bool) -> Result<url::Url, StoreError> {
    let bad = |reason: &str| StoreError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err(bad("plain http needs --allow-http for this endpoint")),
        _ => return Err(bad("only https (or http with --allow-http)")),
    }
    if parsed.host().is_none() {
        return Err(bad("no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("credentials in the URL are not allowed"));
    }
    Ok(parsed)
}

/// The endpoints of `data_dir` (none when the file does not exist).
pub fn load(data_dir: &Path) -> Result<Vec<Endpoint>, StoreError> {
    let path = data_dir.join(ENDPOINTS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&path)(e)),
    };
    let file: File = toml::from_str(&text).map_err(|e| StoreError::Syntax {
        path: path.clone(),
        message: e.to_string(),
    })?;
    for ep in &file.endpoint {
        if !valid_name(&ep.name) {
            return Err(StoreError::Name(ep.name.clone()));
        }
    }
    Ok(file.endpoint)
}

fn save(data_dir: &Path, endpoints: Vec<Endpoint>) -> Result<(), StoreError> {
    let path = data_dir.join(ENDPOINTS_FILE);
    let text = toml::to_string(&File {
        endpoint: endpoints,
    })
    .map_err(|e| StoreError::Syntax {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, text.as_bytes(), false)
}

/// Writes `path` through a temporary file, fsynced, renamed into place.
fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts.open(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn secret_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(SECRETS_DIR).join(name)
}

/// The signing secret of endpoint `name`.
pub fn secret(data_dir: &Path, name: &str) -> Result<String, StoreError> {
    if !valid_name(name) {
        return Err(StoreError::Name(name.to_string()));
    }
    let path = secret_path(data_dir, name);
    let s = std::fs::read_to_string(&path).map_err(io(&path))?;
    Ok(s.trim().to_string())
}

/// A new signing secret: `whsec_` and 43 base64url characters (32 random
/// bytes).
pub(crate) fn new_secret() -> Result<String, StoreError> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| StoreError::Random(e.to_string()))?;
    use base64::Engine as _;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    ))
}

/// Checks an endpoint before it is stored: its name and its URL.
pub(crate) fn check(endpoint: &Endpoint) -> Result<(), StoreError> {
    if !valid_name(&endpoint.name) {
        return Err(StoreError::Name(endpoint.name.clone()));
    }
    check_url(&endpoint.url, endpoint.allow_http).map(|_| ())
}

/// Registers an endpoint and returns its new secret (`whsec_` and 43
/// base64url characters).
pub fn add(data_dir: &Path, endpoint: Endpoint) -> Result<String, StoreError> {
    check(&endpoint)?;
    let mut all = load(data_dir)?;
    if all.iter().any(|e| e.name == endpoint.name) {
        return Err(StoreError::Exists(endpoint.name));
    }
    let secret = new_secret()?;
    let dir = data_dir.join(SECRETS_DIR);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
    }
    write_atomic(
        &secret_path(data_dir, &endpoint.name),
        format!("{secret}\n").as_bytes(),
        true,
    )?;
    all.push(endpoint);
    save(data_dir, all)?;
    Ok(secret)
}

/// Removes endpoint `name` and its secret (its undelivered events are
/// dropped by the relay when it next tries them).
pub fn remove(data_dir: &Path, name: &str) -> Result<Endpoint, StoreError> {
    let mut all = load(data_dir)?;
    let Some(i) = all.iter().position(|e| e.name == name) else {
        return Err(StoreError::Unknown(name.to_string()));
    };
    let gone = all.remove(i);
    save(data_dir, all)?;
    let path = secret_path(data_dir, name);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&path)(e)),
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(name: &str, url: &str) -> Endpoint {
        Endpoint {
            name: name.into(),
            url: url.into(),
            token: Some("app".into()),
            allow_http: false,
            allow_private: false,
        }
    }

    #[test]
    fn an_endpoint_is_added_listed_and_removed_with_a_private_secret() {
        let dir = tempfile::tempdir().expect("test setup");
        let shown = add(dir.path(), ep("crm", "https://hooks.example/pw")).expect("added");
        assert!(shown.starts_with("whsec_") && shown.len() == 6 + 43);
        assert_eq!(secret(dir.path(), "crm").expect("kept"), shown);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(SECRETS_DIR).join("crm"))
                .expect("secret file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let listed = std::fs::read_to_string(dir.path().join(ENDPOINTS_FILE)).expect("file");
        assert!(!listed.contains(&shown), "no secret in webhooks.toml");
        assert!(matches!(
            add(dir.path(), ep("crm", "https://x.example")),
            Err(StoreError::Exists(_))
        ));
        assert_eq!(load(dir.path()).expect("load").len(), 1);
        remove(dir.path(), "crm").expect("removed");
        assert!(load(dir.path()).expect("load").is_empty());
        assert!(secret(dir.path(), "crm").is_err());
    }

    #[test]
    fn plain_http_and_other_schemes_need_a_reason() {
        assert!(check_url("https://a.example/x", false).is_ok());
        assert!(check_url("http://a.example/x", false).is_err());
        assert!(check_url("http://a.example/x", true).is_ok());
        assert!(check_url("ftp://a.example/x", true).is_err());
        assert!(check_url("https://u:p@a.example/x", false).is_err());
        assert!(matches!(
            add(
                tempfile::tempdir().expect("test setup").path(),
                ep("../x", "https://a.example")
            ),
            Err(StoreError::Name(_))
        ));
        assert!(!valid_name("..") && !valid_name(".x") && valid_name("crm.eu-1"));
    }
}
