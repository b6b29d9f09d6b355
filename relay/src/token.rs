//! Relay tokens: the file `<data-dir>/tokens.toml` that lists who may submit,
//! each token stored only as the SHA-256 of its secret, with the senders it
//! may use and its size and rate limits.
//!
//! A secret is `pw_` followed by 43 base64url characters (32 random bytes),
//! so a plain SHA-256 suffices: there is nothing to brute-force, and a fast
//! hash keeps authentication cheap.
//!
//! [`TokenStore::authenticate`] compares the secret's SHA-256 digest with
//! every stored digest in constant time (an xor-fold over all 32 bytes, no
//! early exit, every token visited), so the time an answer takes says
//! nothing about how close a guess was nor which token it resembled.
//!
//! [`add`] and [`remove`] write the file atomically (temporary file, fsync,
//! rename, directory fsync), so a running relay that reloads it
//! (`server::live_tokens`) sees either the old or the new file, never half
//! of one. [`remove`] edits the document in place (toml_edit): comments and
//! the other tokens stay exactly as they were. [`list`] and
//! [`TokenSummary`] show tokens without their secrets (never stored) and
//! with only a short prefix of their hashes.

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
    #[error("{path}: token {name:?} has an invalid hash (expected sha256: and 64 hex digits)")]
    BadHash {
        /// The file.
        path: PathBuf,
        /// The token's name.
        name: String,
    },
    /// The system's random source failed.
    #[error("cannot generate a secret: {0}")]
    Random(String),
    /// No token of that name exists.
    #[error("no token named {0:?}")]
    Unknown(String),
    /// Two tokens in the file have the same name.
    #[error("{path}: two tokens are named {name:?}; names must be unique")]
    DuplicateName {
        /// The file.
        path: PathBuf,
        /// The name used twice.
        name: String,
    },
}

/// The tokens of a relay, indexed by the hash of their secret.
#[derive(Debug, Default, Clone)]
pub struct TokenStore {
    by_hash: HashMap<String, TokenRecord>,
    /// Name to hash (names are unique).
    by_name: HashMap<String, String>,
    /// Every token's digest and its key in `by_hash`, scanned in full by
    /// [`TokenStore::authenticate`].
    digests: Vec<([u8; 32], String)>,
}

pub(crate) fn digest_of(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether two digests are equal, in time independent of where they differ.
pub(crate) fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box: the optimiser may not turn the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// The 32 bytes of a validated `sha256:` + 64 hex digits hash.
pub(crate) fn digest_of_hash(hash: &str) -> Option<[u8; 32]> {
    let hex = hash.strip_prefix("sha256:")?.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

pub(crate) fn hash_secret(secret: &str) -> String {
    let digest = digest_of(secret);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub(crate) fn valid_name(name: &str) -> bool {
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

/// A TOML error as `line L, column C: message`, without the source line
/// that `toml`'s own rendering quotes (it could show a hash in a log).
fn syntax_error(path: &Path, text: &str, e: &toml::de::Error) -> TokenError {
    let message = match e.span().and_then(|span| text.get(..span.start)) {
        Some(before) => {
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("line {line}, column {column}: {}", one_line(e.message()))
        }
        None => one_line(e.message()),
    };
    TokenError::Syntax {
        path: path.to_path_buf(),
        message,
    }
}

/// A message on one line (a log line stays one line).
fn one_line(message: &str) -> String {
    message.trim().replace('\n', "; ")
}

/// The text of the token file; a missing file is empty.
fn read_text(path: &Path) -> Result<String, TokenError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(TokenError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn parse_file(path: &Path, text: &str) -> Result<TokenFile, TokenError> {
    toml::from_str(text).map_err(|e| syntax_error(path, text, &e))
}

fn read_file(path: &Path) -> Result<TokenFile, TokenError> {
    parse_file(path, &read_text(path)?)
}

/// Writes the token file atomically (temporary file, fsync, rename,
/// directory fsync).
fn write_text(data_dir: &Path, text: &str) -> Result<(), TokenError> {
    let io = |source| TokenError::Io {
        path: path_of(data_dir),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    crate::spool::disk::Disk::publish(
        &crate::spool::disk::StdDisk::default(),
        data_dir,
        TOKENS_FILE,
        text.as_bytes(),
    )
    .map_err(io)
}

/// Checks every record (hash shape, unique names) and normalises the hash
/// to lower case.
fn validated(path: &Path, file: TokenFile) -> Result<Vec<TokenRecord>, TokenError> {
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(file.token.len());
    for mut t in file.token {
        let hex = t.hash.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(TokenError::BadHash {
                path: path.to_path_buf(),
                name: t.name,
            });
        }
        if !names.insert(t.name.clone()) {
            return Err(TokenError::DuplicateName {
                path: path.to_path_buf(),
                name: t.name,
            });
        }
        t.hash = t.hash.to_ascii_lowercase();
        out.push(t);
    }
    Ok(out)
}

impl TokenStore {
    /// Loads `<data-dir>/tokens.toml`; a missing file is an empty store.
    pub fn load(data_dir: &Path) -> Result<Self, TokenError> {
        let path = path_of(data_dir);
        let records = validated(&path, read_file(&path)?)?;
        Ok(Self::from_valid(records))
    }

    /// A store of `records` read from elsewhere than a file (the shared
    /// database, `spool::pg::tokens`), checked as a file is: each hash
    /// `sha256:` and 64 hex digits, names unique. `origin` names the source
    /// in errors.
    pub fn from_records(origin: &Path, records: Vec<TokenRecord>) -> Result<Self, TokenError> {
        let records = validated(origin, TokenFile { token: records })?;
        Ok(Self::from_valid(records))
    }

    fn from_valid(records: Vec<TokenRecord>) -> Self {
        let mut store = TokenStore::default();
        for t in records {
            if let Some(d) = digest_of_hash(&t.hash) {
                store.digests.push((d, t.hash.clone()));
            }
            store.by_name.insert(t.name.clone(), t.hash.clone());
            store.by_hash.insert(t.hash.clone(), t);
        }
        store
    }

    /// The token of this name, if any.
    pub fn get(&self, name: &str) -> Option<&TokenRecord> {
        self.by_name.get(name).and_then(|h| self.by_hash.get(h))
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The token whose secret this is, if any. Constant-time: the secret's
    /// digest is compared with every token's digest, all 32 bytes each, and
    /// the map is looked up only with a stored hash after a match.
    pub fn authenticate(&self, secret: &str) -> Option<&TokenRecord> {
        let digest = digest_of(secret);
        let mut found: Option<&str> = None;
        for (d, hash) in &self.digests {
            if same_digest(d, &digest) {
                found = Some(hash);
            }
        }
        found.and_then(|h| self.by_hash.get(h))
    }
}

/// A new token after checking its name and senders: its secret (to show
/// once) and the record to store (the secret's hash, never the secret).
pub(crate) fn new_token(
    name: &str,
    allow_from: &[String],
    max_size: u64,
    rate_per_minute: u32,
) -> Result<(String, TokenRecord), TokenError> {
    if !valid_name(name) {
        return Err(TokenError::BadName(name.to_string()));
    }
    if let Some(bad) = allow_from.iter().find(|a| !valid_allow(a)) {
        return Err(TokenError::BadAllowFrom(bad.clone()));
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| TokenError::Random(e.to_string()))?;
    let secret = format!(
        "pw_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let record = TokenRecord {
        name: name.to_string(),
        hash: hash_secret(&secret),
        allow_from: allow_from.to_vec(),
        max_size,
        rate_per_minute,
    };
    Ok((secret, record))
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
    let (secret, record) = new_token(name, allow_from, max_size, rate_per_minute)?;
    let path = path_of(data_dir);
    let mut file = read_file(&path)?;
    if file.token.iter().any(|t| t.name == name) {
        return Err(TokenError::Exists(name.to_string()));
    }
    file.token.push(record);
    let text = toml::to_string(&file).map_err(|e| TokenError::Syntax {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_text(data_dir, &text)?;
    Ok(secret)
}

/// The tokens of `<data-dir>/tokens.toml` in file order (an empty list when
/// the file is missing), checked as the relay checks them.
pub fn list(data_dir: &Path) -> Result<Vec<TokenRecord>, TokenError> {
    let path = path_of(data_dir);
    validated(&path, read_file(&path)?)
}

/// Removes the token `name` from `<data-dir>/tokens.toml` (written
/// atomically) and returns its record. Everything else in the file,
/// comments included, stays as it was.
pub fn remove(data_dir: &Path, name: &str) -> Result<TokenRecord, TokenError> {
    let path = path_of(data_dir);
    let text = read_text(&path)?;
    let records = validated(&path, parse_file(&path, &text)?)?;
    let Some(removed) = records.into_iter().find(|t| t.name == name) else {
        return Err(TokenError::Unknown(name.to_string()));
    };
    let syntax = |message: String| TokenError::Syntax {
        path: path.clone(),
        message,
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| syntax(e.message().to_string()))?;
    let named = |t: &dyn toml_edit::TableLike| t.get("name").and_then(|v| v.as_str()) == Some(name);
    let entry = doc
        .get_mut("token")
        .ok_or_else(|| syntax("no token table".into()))?;
    if let Some(tables) = entry.as_array_of_tables_mut() {
        tables.retain(|t| !named(t));
    } else if let Some(array) = entry.as_array_mut() {
        array.retain(|v| !v.as_inline_table().is_some_and(|t| named(t)));
    } else {
        return Err(syntax(
            "`token` is neither [[token]] tables nor an array".into(),
        ));
    }
    let new_text = doc.to_string();
    // The edit must leave exactly the other tokens, as the relay will read them.
    let left = validated(&path, parse_file(&path, &new_text)?)?;
    if left.iter().any(|t| t.name == name) {
        return Err(syntax(format!("token {name:?} could not be removed")));
    }
    write_text(data_dir, &new_text)?;
    Ok(removed)
}

/// A token as `postwire token list` shows it: no secret (none is stored)
/// and only the first 8 hex digits of its hash. Serialises as
/// `{"name","allowFrom","maxSize","ratePerMinute","hashPrefix"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSummary {
    /// Name of the token.
    pub name: String,
    /// Allowed envelope senders.
    pub allow_from: Vec<String>,
    /// Largest message, in bytes.
    pub max_size: u64,
    /// Most messages per minute.
    pub rate_per_minute: u32,
    /// `sha256:` and the first 8 hex digits of the hash, then `…`.
    pub hash_prefix: String,
}

impl From<&TokenRecord> for TokenSummary {
    fn from(t: &TokenRecord) -> Self {
        let hex = t.hash.strip_prefix("sha256:").unwrap_or(&t.hash);
        let short: String = hex.chars().take(8).collect();
        TokenSummary {
            name: t.name.clone(),
            allow_from: t.allow_from.clone(),
            max_size: t.max_size,
            rate_per_minute: t.rate_per_minute,
            hash_prefix: format!("sha256:{short}\u{2026}"),
        }
    }
}

impl std::fmt::Display for TokenSummary {
    /// One line: `NAME  allow-from=A,B  max-size=N  rate=N/min  sha256:1a2b3c4d…`
    /// (`allow-from=none` when the token may use no sender).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let allow = if self.allow_from.is_empty() {
            "none".to_string()
        } else {
            self.allow_from.join(",")
        };
        write!(
            f,
            "{}  allow-from={allow}  max-size={}  rate={}/min  {}",
            self.name, self.max_size, self.rate_per_minute, self.hash_prefix
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guess_that_differs_in_one_character_or_is_a_prefix_does_not_authenticate() {
        let dir = tempfile::tempdir().unwrap();
        let secret = add(dir.path(), "ci", &[], 1, 1).unwrap();
        add(dir.path(), "other", &[], 1, 1).unwrap();
        let store = TokenStore::load(dir.path()).unwrap();
        assert_eq!(store.authenticate(&secret).unwrap().name, "ci");
        let mut near = secret.clone().into_bytes();
        let last = near.len() - 1;
        near[last] = if near[last] == b'A' { b'B' } else { b'A' };
        assert!(
            store
                .authenticate(std::str::from_utf8(&near).unwrap())
                .is_none()
        );
        assert!(store.authenticate(&secret[..secret.len() - 1]).is_none());
        assert!(store.authenticate("").is_none());
        // The stored hash itself is not a secret that authenticates.
        assert!(store.authenticate(&hash_secret(&secret)).is_none());
        let d = digest_of(&secret);
        assert!(same_digest(&d, &d));
        let mut e = d;
        e[31] ^= 1;
        assert!(!same_digest(&d, &e));
        assert_eq!(digest_of_hash(&hash_secret(&secret)), Some(d));
    }

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

    /// Three tokens in a file that also holds an operator's comments.
    fn three_tokens(dir: &Path) -> (String, String, String, String) {
        let a = add(dir, "a", &["@a.example".into()], 10, 1).unwrap();
        let b = add(dir, "b", &["@b.example".into()], 20, 2).unwrap();
        let c = add(dir, "c", &["@c.example".into()], 30, 3).unwrap();
        let path = dir.join(TOKENS_FILE);
        let text = format!(
            "# relay tokens, see docs/relay.md\n{}",
            std::fs::read_to_string(&path)
                .unwrap()
                .replace("name = \"c\"", "name = \"c\" # the CI job")
        );
        std::fs::write(&path, &text).unwrap();
        (text, a, b, c)
    }

    #[test]
    fn remove_takes_out_only_that_token_and_leaves_the_rest_of_the_file_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let (before, a, b, c) = three_tokens(dir.path());
        let removed = remove(dir.path(), "b").unwrap();
        assert_eq!((removed.name.as_str(), removed.max_size), ("b", 20));
        let after = std::fs::read_to_string(dir.path().join(TOKENS_FILE)).unwrap();
        let start = before.find("[[token]]\nname = \"b\"").unwrap();
        let end = start + before[start + 1..].find("[[token]]").unwrap() + 1;
        let expected = format!("{}{}", &before[..start], &before[end..]);
        assert_eq!(after, expected);
        assert!(after.contains("# relay tokens, see docs/relay.md"));
        assert!(after.contains("# the CI job"));

        let store = TokenStore::load(dir.path()).unwrap();
        assert_eq!(store.len(), 2);
        assert!(store.authenticate(&b).is_none());
        assert!(store.get("b").is_none());
        assert_eq!(store.authenticate(&a).map(|t| t.max_size), Some(10));
        assert_eq!(store.authenticate(&c).map(|t| t.rate_per_minute), Some(3));
        assert_eq!(
            store.get("c").map(|t| t.allow_from.clone()),
            Some(vec!["@c.example".to_string()])
        );
    }

    #[test]
    fn removing_an_unknown_name_is_an_error_and_the_file_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let (before, ..) = three_tokens(dir.path());
        let err = remove(dir.path(), "nope").unwrap_err();
        assert!(
            matches!(&err, TokenError::Unknown(n) if n == "nope"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "no token named \"nope\"");
        let after = std::fs::read_to_string(dir.path().join(TOKENS_FILE)).unwrap();
        assert_eq!(after, before);
        // A name is matched whole, never as a prefix.
        assert!(matches!(
            remove(dir.path(), ""),
            Err(TokenError::Unknown(_))
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            remove(empty.path(), "a"),
            Err(TokenError::Unknown(_))
        ));
    }

    #[test]
    fn removing_every_token_leaves_a_valid_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        three_tokens(dir.path());
        for n in ["c", "a", "b"] {
            remove(dir.path(), n).unwrap();
        }
        assert!(TokenStore::load(dir.path()).unwrap().is_empty());
        assert!(list(dir.path()).unwrap().is_empty());
        let secret = add(dir.path(), "again", &["@x.example".into()], 1, 1).unwrap();
        assert!(
            TokenStore::load(dir.path())
                .unwrap()
                .authenticate(&secret)
                .is_some()
        );
    }

    #[test]
    fn remove_also_edits_tokens_written_as_an_inline_array() {
        let dir = tempfile::tempdir().unwrap();
        let h = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let text = format!(
            "token = [\n  {{ name = \"x\", hash = \"{}\", allow_from = [], max_size = 1, rate_per_minute = 1 }},\n  {{ name = \"y\", hash = \"{}\", allow_from = [], max_size = 2, rate_per_minute = 2 }},\n]\n",
            h('a'),
            h('b')
        );
        std::fs::write(dir.path().join(TOKENS_FILE), text).unwrap();
        remove(dir.path(), "x").unwrap();
        let left = list(dir.path()).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!((left[0].name.as_str(), left[0].max_size), ("y", 2));
    }

    #[test]
    fn list_shows_each_token_in_file_order_with_a_hash_prefix_and_never_the_whole_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, b, _) = three_tokens(dir.path());
        add(dir.path(), "nobody", &[], 5, 6).unwrap();
        let records = list(dir.path()).unwrap();
        let names: Vec<_> = records.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "nobody"]);
        let full = hash_secret(&b);
        let summary = TokenSummary::from(&records[1]);
        assert_eq!(summary.hash_prefix, format!("{}\u{2026}", &full[..15]));
        assert_eq!(
            summary.to_string(),
            format!(
                "b  allow-from=@b.example  max-size=20  rate=2/min  {}",
                summary.hash_prefix
            )
        );
        assert_eq!(
            TokenSummary::from(&records[3]).to_string(),
            format!(
                "nobody  allow-from=none  max-size=5  rate=6/min  {}",
                TokenSummary::from(&records[3]).hash_prefix
            )
        );
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "b",
                "allowFrom": ["@b.example"],
                "maxSize": 20,
                "ratePerMinute": 2,
                "hashPrefix": summary.hash_prefix,
            })
        );
        for r in &records {
            let line = TokenSummary::from(r).to_string();
            let json = serde_json::to_string(&TokenSummary::from(r)).unwrap();
            assert!(!line.contains(&r.hash) && !json.contains(&r.hash));
            assert!(!line.contains(&r.hash[7..40]));
        }
    }

    #[test]
    fn a_file_with_two_tokens_of_one_name_or_a_bad_hash_is_refused_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let h = format!("sha256:{}", "a".repeat(64));
        let rec = |name: &str, hash: &str| {
            format!(
                "[[token]]\nname = \"{name}\"\nhash = \"{hash}\"\nallow_from = []\nmax_size = 1\nrate_per_minute = 1\n\n"
            )
        };
        let path = dir.path().join(TOKENS_FILE);
        std::fs::write(
            &path,
            format!(
                "{}{}",
                rec("x", &h),
                rec("x", &format!("sha256:{}", "b".repeat(64)))
            ),
        )
        .unwrap();
        assert!(
            matches!(TokenStore::load(dir.path()), Err(TokenError::DuplicateName { name, .. }) if name == "x")
        );
        std::fs::write(&path, rec("x", "sha256:abc")).unwrap();
        assert!(
            matches!(TokenStore::load(dir.path()), Err(TokenError::BadHash { name, .. }) if name == "x")
        );
        assert!(matches!(list(dir.path()), Err(TokenError::BadHash { .. })));
    }

    #[test]
    fn a_syntax_error_names_file_line_and_column_without_quoting_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret_looking = "sha256:0123456789abcdef";
        std::fs::write(
            dir.path().join(TOKENS_FILE),
            format!("[[token]]\nname = \"x\"\nhash = \"{secret_looking}\n"),
        )
        .unwrap();
        let err = TokenStore::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(&dir.path().join(TOKENS_FILE).display().to_string()),
            "{err}"
        );
        assert!(err.contains("line 3, column"), "{err}");
        assert!(!err.contains(secret_looking), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
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
