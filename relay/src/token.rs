//! Relay tokens: the file `<data-dir>/tokens.toml` that lists who may submit,
//! each token stored only as the SHA-256 of its secret, with the senders it
//! may use and its size and rate limits.
//!
//! A secret is `pw_` followed by 43 base64url characters (32 random bytes),
//! so a plain SHA-256 suffices: there is nothing to brute-force, and a fast
//! hash keeps authentication cheap.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Name of the token file inside the data directory.
pub const TOKENS_FILE: &str = "tokens.toml";
/// Default size limit of a token, in bytes (25 MiB).
pub const DEFAULT_MAX_SIZE: u64 = 25 << 20;
/// Default rate limit of a token, in messages per minute.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 60_000;

/// One token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// Name, used in logs and as the scope of message ids.
    pub name: String,
    /// `sha256:` and the hex digest of the secret.
    pub hash: String,
    /// Addresses (`a@example.com`) and domains (`@example.com`) the token may
    /// use as envelope sender. Empty: none.
    pub allow_from: Vec<String>,
    /// Largest message, in bytes.
    pub max_size: u64,
    /// Most messages per minute.
    pub rate_per_minute: u32,
}

impl TokenRecord {
    /// Whether the token may send with `addr` as envelope sender (exact
    /// address or its domain, both compared without case).
    pub fn may_send_as(&self, addr: &str) -> bool {
        let addr = addr.to_ascii_lowercase();
        let domain = addr.rsplit_once('@').map(|(_, d)| d);
        self.allow_from.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            match a.strip_prefix('@') {
                Some(d) => domain == Some(d),
                None => a == addr,
            }
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    token: Vec<TokenRecord>,
}

/// Errors reading or changing the token file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its position.
        message: String,
    },
    /// A token name is empty or has characters outside `[A-Za-z0-9._-]`.
    #[error("invalid token name {0:?}: use 1-64 characters of A-Z a-z 0-9 . _ -")]
    BadName(String),
    /// A token of that name exists already.
    #[error("a token named {0:?} exists already")]
    Exists(String),
    /// An `--allow-from` entry is neither an address nor `@domain`.
    #[error(
        "invalid --allow-from {0:?}: give an address (a@example.com) or a domain (@example.com)"
    )]
    BadAllowFrom(String),
    /// A stored hash is not `sha256:` and 64 hex digits.
    #[error("token {0:?} has an invalid hash in the token file")]
    BadHash(String),
    /// The system's random source failed.
    #[error("cannot generate a secret: {0}")]
    Random(String),
}

/// The tokens of a relay, indexed by the hash of their secret.
#[derive(Debug, Default, Clone)]
pub struct TokenStore {
    by_hash: HashMap<String, TokenRecord>,
}

fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn valid_allow(a: &str) -> bool {
    let (local, domain) = match a.strip_prefix('@') {
        Some(d) => ("x", d),
        None => match a.rsplit_once('@') {
            Some(p) => p,
            None => return false,
        },
    };
    !local.is_empty()
        && !domain.is_empty()
        && !a
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>".contains(c))
        && domain.contains('.')
}

fn path_of(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKENS_FILE)
}

fn read_file(path: &Path) -> Result<TokenFile, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| TokenError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
        Err(source) => Err(TokenError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl TokenStore {
    /// Loads `<data-dir>/tokens.toml`; a missing file is an empty store.
    pub fn load(data_dir: &Path) -> Result<Self, TokenError> {
        let path = path_of(data_dir);
        let file = read_file(&path)?;
        let mut by_hash = HashMap::new();
        for t in file.token {
            let hex = t.hash.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(TokenError::BadHash(t.name));
            }
            by_hash.insert(t.hash.to_ascii_lowercase(), t);
        }
        Ok(TokenStore { by_hash })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The token whose secret this is, if any.
    pub fn authenticate(&self, secret: &str) -> Option<&TokenRecord> {
        self.by_hash.get(&hash_secret(secret))
    }
}

/// Adds a token to `<data-dir>/tokens.toml` (written atomically) and
/// returns its secret, which is stored nowhere.
pub fn add(
    data_dir: &Path,
    name: &str,
    allow_from: &[String],
    max_size: u64,
    rate_per_minute: u32,
) -> Result<String, TokenError> {
    if !valid_name(name) {
        return Err(TokenError::BadName(name.to_string()));
    }
    if let Some(bad) = allow_from.iter().find(|a| !valid_allow(a)) {
        return Err(TokenError::BadAllowFrom(bad.clone()));
    }
    let path = path_of(data_dir);
    let mut file = read_file(&path)?;
    if file.token.iter().any(|t| t.name == name) {
        return Err(TokenError::Exists(name.to_string()));
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| TokenError::Random(e.to_string()))?;
    let secret = format!(
        "pw_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    file.token.push(TokenRecord {
        name: name.to_string(),
        hash: hash_secret(&secret),
        allow_from: allow_from.to_vec(),
        max_size,
        rate_per_minute,
    });
    let text = toml::to_string(&file).map_err(|e| TokenError::Syntax {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    crate::spool::disk::Disk::publish(
        &crate::spool::disk::StdDisk::default(),
        data_dir,
        TOKENS_FILE,
        text.as_bytes(),
    )
    .map_err(io)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_authenticates_by_its_secret_and_only_its_hash_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let secret = add(dir.path(), "ci", &["@example.com".into()], 1000, 10).unwrap();
        let text = std::fs::read_to_string(dir.path().join(TOKENS_FILE)).unwrap();
        assert!(!text.contains(&secret), "the secret must not be stored");
        assert!(text.contains(&hash_secret(&secret)));
        let store = TokenStore::load(dir.path()).unwrap();
        assert_eq!(
            store.authenticate(&secret).map(|t| t.name.as_str()),
            Some("ci")
        );
        assert!(store.authenticate("pw_wrong").is_none());
    }

    #[test]
    fn allowed_senders_match_whole_addresses_or_whole_domains() {
        let t = TokenRecord {
            name: "t".into(),
            hash: String::new(),
            allow_from: vec!["ana@a.example".into(), "@b.example".into()],
            max_size: 1,
            rate_per_minute: 1,
        };
        assert!(t.may_send_as("Ana@A.example"));
        assert!(t.may_send_as("x@b.example"));
        assert!(!t.may_send_as("bob@a.example"));
        assert!(!t.may_send_as("x@evilb.example"));
        assert!(!t.may_send_as("x@sub.b.example"));
    }

    #[test]
    fn a_second_token_with_the_same_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        add(dir.path(), "ci", &[], 1, 1).unwrap();
        assert!(matches!(
            add(dir.path(), "ci", &[], 1, 1),
            Err(TokenError::Exists(_))
        ));
        assert!(matches!(
            add(dir.path(), "bad name", &[], 1, 1),
            Err(TokenError::BadName(_))
        ));
        assert!(matches!(
            add(dir.path(), "x", &["nodomain".into()], 1, 1),
            Err(TokenError::BadAllowFrom(_))
        ));
    }
}
