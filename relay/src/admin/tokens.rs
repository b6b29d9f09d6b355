//! Admin tokens: the file `<data-dir>/admin-tokens.toml`, each token stored
//! only as the SHA-256 of its secret (as `tokens.toml` stores submission
//! tokens, see [`crate::token`]). A secret is `pwa_` and 43 base64url
//! characters (32 random bytes). [`AdminTokens::authenticate`] compares the
//! digest with every stored digest in constant time.
//!
//! The file is written atomically (temporary file, fsync, rename, directory
//! fsync); the relay reads it at each admin request, so an added or removed
//! token counts at once.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::token::{digest_of, digest_of_hash, hash_secret, same_digest, valid_name};

/// Name of the admin token file inside the data directory.
pub const ADMIN_TOKENS_FILE: &str = "admin-tokens.toml";

/// One admin token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Name, logged with every action taken with the token.
    pub name: String,
    /// `sha256:` and the hex digest of the secret.
    pub hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<AdminToken>,
}

/// Errors of the admin token file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminTokenError {
    /// The file cannot be read or written.
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
        /// What is wrong (no file contents quoted).
        message: String,
    },
    /// A token's hash is not `sha256:` and 64 hex digits.
    #[error("{path}: admin token {name:?} has a malformed hash")]
    BadHash {
        /// The file.
        path: PathBuf,
        /// The token.
        name: String,
    },
    /// The name is not 1-64 characters of A-Z a-z 0-9 . _ -.
    #[error("bad admin token name {0:?}: use 1-64 characters A-Z a-z 0-9 . _ -")]
    BadName(String),
    /// A token of that name exists.
    #[error("an admin token named {0:?} exists already")]
    Exists(String),
    /// No token of that name.
    #[error("no admin token named {0:?}")]
    Unknown(String),
    /// The system's random source failed.
    #[error("cannot generate a secret: {0}")]
    Random(String),
}

fn path_of(data_dir: &Path) -> PathBuf {
    data_dir.join(ADMIN_TOKENS_FILE)
}

fn read(data_dir: &Path) -> Result<File, AdminTokenError> {
    let path = path_of(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(File::default()),
        Err(source) => return Err(AdminTokenError::Io { path, source }),
    };
    let file: File = toml::from_str(&text).map_err(|e| AdminTokenError::Syntax {
        path: path.clone(),
        message: e.message().trim().replace('\n', "; "),
    })?;
    for t in &file.token {
        if digest_of_hash(&t.hash.to_ascii_lowercase()).is_none() {
            return Err(AdminTokenError::BadHash {
                path,
                name: t.name.clone(),
            });
        }
    }
    Ok(file)
}

fn write(data_dir: &Path, file: &File) -> Result<(), AdminTokenError> {
    let path = path_of(data_dir);
    let text = toml::to_string(file).map_err(|e| AdminTokenError::Syntax {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let io = |source| AdminTokenError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    crate::spool::disk::Disk::publish(
        &crate::spool::disk::StdDisk::default(),
        data_dir,
        ADMIN_TOKENS_FILE,
        text.as_bytes(),
    )
    .map_err(io)
}

/// Adds an admin token and returns its secret, which is stored nowhere.
pub fn add(data_dir: &Path, name: &str) -> Result<String, AdminTokenError> {
    if !valid_name(name) {
        return Err(AdminTokenError::BadName(name.to_string()));
    }
    let mut file = read(data_dir)?;
    if file.token.iter().any(|t| t.name == name) {
        return Err(AdminTokenError::Exists(name.to_string()));
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| AdminTokenError::Random(e.to_string()))?;
    let secret = format!(
        "pwa_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    file.token.push(AdminToken {
        name: name.to_string(),
        hash: hash_secret(&secret),
    });
    write(data_dir, &file)?;
    Ok(secret)
}

/// The admin tokens, in file order (empty when there is no file).
pub fn list(data_dir: &Path) -> Result<Vec<AdminToken>, AdminTokenError> {
    Ok(read(data_dir)?.token)
}

/// Removes the admin token `name`.
pub fn remove(data_dir: &Path, name: &str) -> Result<AdminToken, AdminTokenError> {
    let mut file = read(data_dir)?;
    let Some(i) = file.token.iter().position(|t| t.name == name) else {
        return Err(AdminTokenError::Unknown(name.to_string()));
    };
    let removed = file.token.remove(i);
    write(data_dir, &file)?;
    Ok(removed)
}

/// The admin tokens of a data directory, as read now.
#[derive(Debug, Default)]
pub struct AdminTokens {
    digests: Vec<([u8; 32], String)>,
}

impl AdminTokens {
    /// Reads `<data-dir>/admin-tokens.toml` (missing: no tokens).
    pub fn load(data_dir: &Path) -> Result<Self, AdminTokenError> {
        let file = read(data_dir)?;
        let digests = file
            .token
            .into_iter()
            .filter_map(|t| digest_of_hash(&t.hash.to_ascii_lowercase()).map(|d| (d, t.name)))
            .collect();
        Ok(AdminTokens { digests })
    }

    /// Whether there is no admin token (the admin API is then absent).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// The name of the admin token whose secret this is. Constant time over
    /// every token.
    pub fn authenticate(&self, secret: &str) -> Option<String> {
        let digest = digest_of(secret);
        let mut found = None;
        for (d, name) in &self.digests {
            if same_digest(d, &digest) {
                found = Some(name);
            }
        }
        found.cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_tokens_authenticate_and_removed_ones_do_not() {
        let dir = std::env::temp_dir().join(format!("pw-admin-tokens-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(AdminTokens::load(&dir).unwrap().is_empty());
        let secret = add(&dir, "ops").unwrap();
        assert!(secret.starts_with("pwa_"));
        assert!(matches!(add(&dir, "ops"), Err(AdminTokenError::Exists(_))));
        let text = std::fs::read_to_string(dir.join(ADMIN_TOKENS_FILE)).unwrap();
        assert!(!text.contains(&secret), "the secret is never stored");
        let tokens = AdminTokens::load(&dir).unwrap();
        assert_eq!(tokens.authenticate(&secret).as_deref(), Some("ops"));
        assert_eq!(tokens.authenticate("pwa_wrong"), None);
        remove(&dir, "ops").unwrap();
        assert!(AdminTokens::load(&dir).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
