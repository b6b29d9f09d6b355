//! DKIM signing (RFC 6376, RFC 8463) of messages right before they leave,
//! per sender domain.
//!
//! | piece | file |
//! | --- | --- |
//! | header/body split and `simple`/`relaxed` canonicalization | [`canon`] |
//! | PEM keys, key generation, the DNS record | [`key`] |
//! | the relay's signing deliverer | [`deliver`] |
//!
//! **Where it runs.** [`Signer::sign`] takes finished message bytes and gives
//! them back with one `DKIM-Signature` field per key of the domain of the
//! (first) `From` address prepended. The relay calls it in its deliverer
//! ([`deliver::SigningDeliver`]) each time a message is handed to the
//! upstream, so a key rotation applies to mail already queued; `postwire send`
//! calls it as each file is prepared. A message whose domain has no key goes
//! out unsigned, and the log and the counters ([`Stats`]) say so.
//!
//! **Keys.** `DIR/DOMAIN/SELECTOR.key` (PEM; PKCS#8 RSA or Ed25519, or PKCS#1
//! RSA), where DIR is `DATA_DIR/dkim` for the relay or `--dkim-dir` for
//! `postwire send`; or explicit `[[dkim.key]]` entries in the relay's TOML,
//! which replace the directory's keys for their domain. Every key found for a
//! domain signs (an RSA and an Ed25519 signature side by side is the usual
//! way to offer Ed25519 while not every receiver checks it). Files are
//! re-read when their modification time or size changes. Keys never reach a
//! log, an error or `Debug` output.
//!
//! **Defaults.** `c=relaxed/relaxed`, no `l=`; `h=` oversigns From, Subject,
//! To and Date (each is named once more than it occurs, so that a copy added
//! later breaks the signature) and signs Cc, Reply-To, Message-ID,
//! MIME-Version, Content-Type, Content-Transfer-Encoding, In-Reply-To,
//! References and List-Unsubscribe(-Post) where present.
//!
//! **Why our own code, not mail-auth.** mail-auth 0.13 signs only with one of
//! its crypto features, and its `ring` feature also turns on its DNS resolver
//! (hickory-resolver with DNSSEC and rustls-platform-verifier); its required
//! dependencies add flate2, similar, a second mail-builder (1.x beside our
//! 2.x) and mail-parser features. Many crates to compile on a small machine
//! (we did not count them) for what a signer needs: two canonicalizations, a
//! SHA-256 and a signature, about 1,000 lines with their docs over `ring`,
//! which the relay already links (rustls). Verification is not ours to do;
//! the tests check our signatures with an independent verifier (dkimpy).

pub mod canon;
pub mod deliver;
pub mod key;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use serde::Deserialize;

pub use canon::Canonicalization;
pub use key::{Algorithm, SigningKey};

/// Errors of DKIM signing and key handling. None of them carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DkimError {
    /// A key file could not be read.
    #[error("DKIM key {path}: {source}")]
    KeyRead {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A key file is not a usable private key.
    #[error("DKIM key {path}: {reason}")]
    KeyFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An RSA key is too short to sign with.
    #[error(
        "DKIM key {path}: RSA key of {bits} bits; at least {} are needed",
        key::MIN_RSA_BITS
    )]
    KeyTooSmall {
        /// The file.
        path: PathBuf,
        /// Its size.
        bits: usize,
    },
    /// A domain's key directory could not be listed.
    #[error("DKIM key directory {path}: {source}")]
    KeyDirectory {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A key file could not be written.
    #[error("cannot write DKIM key {path}: {source}")]
    KeyWrite {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `keygen` would overwrite a key.
    #[error("{0} exists; pick a new selector (or --force to replace the key)")]
    KeyExists(PathBuf),
    /// Key generation failed.
    #[error("DKIM key generation: {0}")]
    Keygen(String),
    /// A domain name cannot be used for DKIM.
    #[error("{0:?} is not a domain name")]
    InvalidDomain(String),
    /// A selector is not made of DNS labels.
    #[error("{0:?} is not a DKIM selector (letters, digits, '-', '_' and dots)")]
    InvalidSelector(String),
    /// The header list lacks From, which RFC 6376 requires.
    #[error("the signed header list must include From")]
    NoFromInHeaderList,
    /// `canonicalization` is not `simple` or `relaxed`, or a pair of them.
    #[error(
        "{0:?} is not a DKIM canonicalization (relaxed/relaxed, simple/simple, relaxed/simple, simple/relaxed)"
    )]
    InvalidCanonicalization(String),
    /// The crypto library refused to sign.
    #[error("the DKIM signature could not be computed")]
    Sign,
}

/// How to sign; the `[dkim]` table of the relay's TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimConfig {
    /// Key directory (`DIR/DOMAIN/SELECTOR.key`); the relay's default is
    /// `DATA_DIR/dkim`.
    pub dir: Option<PathBuf>,
    /// Keys by path, replacing the directory's keys for their domain.
    #[serde(rename = "key")]
    pub keys: Vec<KeyEntry>,
    /// Header fields signed where present.
    pub headers: Vec<String>,
    /// Header fields oversigned: named once more than they occur.
    pub oversign: Vec<String>,
    /// `relaxed/relaxed` (default), `simple/simple`, `relaxed/simple`, `simple/relaxed`.
    pub canonicalization: String,
    /// Add `l=` (the signed body length). Off: `l=` lets anyone append to the body.
    pub body_length: bool,
}

impl Default for DkimConfig {
    fn default() -> Self {
        DkimConfig {
            dir: None,
            keys: Vec::new(),
            headers: [
                "cc",
                "reply-to",
                "message-id",
                "mime-version",
                "content-type",
                "content-transfer-encoding",
                "in-reply-to",
                "references",
                "list-unsubscribe",
                "list-unsubscribe-post",
            ]
            .map(String::from)
            .to_vec(),
            oversign: ["from", "subject", "to", "date"].map(String::from).to_vec(),
            canonicalization: "relaxed/relaxed".into(),
            body_length: false,
        }
    }
}

/// A key given by path in the TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The signing domain (`d=`).
    pub domain: String,
    /// The selector (`s=`).
    pub selector: String,
    /// The PEM file.
    pub path: PathBuf,
}

/// Counters of what the signer did, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages signed.
    pub signed: AtomicU64,
    /// Messages sent unsigned: no key for their domain, or no From domain.
    pub unsigned: AtomicU64,
    /// Messages whose domain has a key that could not be used.
    pub failed: AtomicU64,
}

/// Why a message was not signed (it goes out as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsigned {
    /// The message has no From address with a domain.
    NoFromDomain,
    /// No key for the From domain.
    NoKey {
        /// The domain (lower case, A-labels).
        domain: String,
    },
}

/// The result of [`Signer::sign`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Signed {
    /// The message with its DKIM-Signature fields prepended.
    Yes {
        /// The signed message.
        message: Vec<u8>,
        /// The domain signed for.
        domain: String,
        /// The selectors used, in the order of the fields.
        selectors: Vec<String>,
    },
    /// Not signed, and why.
    No(Unsigned),
}

type Cached = (SystemTime, u64, Arc<SigningKey>);

/// Signs messages with the keys of their From domain.
#[derive(Debug)]
pub struct Signer {
    dir: Option<PathBuf>,
    explicit: HashMap<String, Vec<(String, PathBuf)>>,
    headers: Vec<String>,
    oversign: Vec<String>,
    header_c: Canonicalization,
    body_c: Canonicalization,
    body_length: bool,
    cache: Mutex<HashMap<PathBuf, Cached>>,
    clock: fn() -> u64,
    stats: Arc<Stats>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Lower case, A-labels, and only what a DNS name and a file name both allow.
pub fn normalize_domain(domain: &str) -> Result<String, DkimError> {
    let bad = || DkimError::InvalidDomain(domain.to_string());
    let d = domain.trim().trim_end_matches('.');
    let ascii = match url::Host::parse(d).map_err(|_| bad())? {
        url::Host::Domain(s) => s.to_ascii_lowercase(),
        _ => return Err(bad()),
    };
    let ok = !ascii.is_empty()
        && !ascii.starts_with('.')
        && !ascii.contains("..")
        && ascii
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok { Ok(ascii) } else { Err(bad()) }
}

/// Checks a selector: dot-separated labels of letters, digits, '-' and '_'.
pub fn check_selector(selector: &str) -> Result<(), DkimError> {
    let ok = !selector.is_empty()
        && selector.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(DkimError::InvalidSelector(selector.to_string()))
    }
}

/// The key file of `domain` and `selector` under `dir`.
pub fn key_path(dir: &Path, domain: &str, selector: &str) -> PathBuf {
    dir.join(domain).join(format!("{selector}.key"))
}

impl Signer {
    /// A signer from the configuration; `default_dir` is used when the
    /// configuration names no directory.
    pub fn new(config: &DkimConfig, default_dir: Option<PathBuf>) -> Result<Self, DkimError> {
        let lower = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        };
        let headers = lower(&config.headers);
        let oversign = lower(&config.oversign);
        if !headers.iter().chain(&oversign).any(|h| h == "from") {
            return Err(DkimError::NoFromInHeaderList);
        }
        let (header_c, body_c) = parse_canonicalization(&config.canonicalization)?;
        let mut explicit: HashMap<String, Vec<(String, PathBuf)>> = HashMap::new();
        for k in &config.keys {
            check_selector(&k.selector)?;
            explicit
                .entry(normalize_domain(&k.domain)?)
                .or_default()
                .push((k.selector.clone(), k.path.clone()));
        }
        Ok(Signer {
            dir: config.dir.clone().or(default_dir),
            explicit,
            headers,
            oversign,
            header_c,
            body_c,
            body_length: config.body_length,
            cache: Mutex::new(HashMap::new()),
            clock: unix_now,
            stats: Arc::new(Stats::default()),
        })
    }

    /// A signer over a key directory with the default settings.
    pub fn with_dir(dir: impl Into<PathBuf>) -> Self {
        Signer::new(&DkimConfig::default(), Some(dir.into()))
            .unwrap_or_else(|_| unreachable!("the default configuration is valid"))
    }

    /// Replaces the clock (seconds since the epoch) that sets `t=`.
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = clock;
        self
    }

    /// Counts into `stats` (shared with the metrics) instead of its own.
    pub fn with_stats(mut self, stats: Arc<Stats>) -> Self {
        self.stats = stats;
        self
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The key directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The selectors and paths of the keys of `domain` (normalised), sorted
    /// by selector.
    fn key_files(&self, domain: &str) -> Result<Vec<(String, PathBuf)>, DkimError> {
        if let Some(keys) = self.explicit.get(domain) {
            return Ok(keys.clone());
        }
        let Some(dir) = &self.dir else {
            return Ok(Vec::new());
        };
        let ddir = dir.join(domain);
        let entries = match std::fs::read_dir(&ddir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(DkimError::KeyDirectory { path: ddir, source }),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| DkimError::KeyDirectory {
                path: ddir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(selector) = name.to_str().and_then(|n| n.strip_suffix(".key")) else {
                continue;
            };
            if check_selector(selector).is_ok() {
                out.push((selector.to_string(), entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// A parsed key, re-read when the file changed.
    fn load(&self, path: &Path) -> Result<Arc<SigningKey>, DkimError> {
        let meta = std::fs::metadata(path).map_err(|source| DkimError::KeyRead {
            path: path.to_path_buf(),
            source,
        })?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((m, l, k)) = cache.get(path)
            && (*m, *l) == stamp
        {
            return Ok(Arc::clone(k));
        }
        let key = Arc::new(SigningKey::load(path)?);
        #[cfg(unix)]
        if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
            tracing::warn!(path = %path.display(),
                "DKIM key is readable by other users: chmod 600 it");
        }
        cache.insert(path.to_path_buf(), (stamp.0, stamp.1, Arc::clone(&key)));
        Ok(key)
    }

    /// Signs `message` with every key of its From domain.
    pub fn sign(&self, message: &[u8]) -> Result<Signed, DkimError> {
        let (fields, body) = canon::split(message);
        let Some(domain) = from_domain(&fields) else {
            return Ok(Signed::No(Unsigned::NoFromDomain));
        };
        let files = self.key_files(&domain)?;
        if files.is_empty() {
            return Ok(Signed::No(Unsigned::NoKey { domain }));
        }
        let canon_body = canon::body(self.body_c, body);
        let bh = B64.encode(ring::digest::digest(&ring::digest::SHA256, &canon_body));
        let h = self.header_list(&fields);
        let signed_headers = self.signed_header_data(&fields, &h);
        let t = (self.clock)();
        let mut fields_out = Vec::new();
        let mut selectors = Vec::new();
        for (selector, path) in files {
            let key = self.load(&path)?;
            let field = self.signature_field(
                &key,
                &domain,
                &selector,
                t,
                &h,
                &bh,
                canon_body.len(),
                &signed_headers,
            )?;
            fields_out.push(field);
            selectors.push(selector);
        }
        let mut out =
            Vec::with_capacity(message.len() + fields_out.iter().map(Vec::len).sum::<usize>());
        for f in &fields_out {
            out.extend_from_slice(f);
        }
        out.extend_from_slice(message);
        Ok(Signed::Yes {
            message: out,
            domain,
            selectors,
        })
    }

    /// Signs, logs and counts: the message to send (signed or as it was), or
    /// the error when the domain has a key that cannot be used.
    pub fn apply(&self, message: &[u8], id: &str) -> Result<Option<Vec<u8>>, DkimError> {
        match self.sign(message) {
            Ok(Signed::Yes {
                message,
                domain,
                selectors,
            }) => {
                self.stats.signed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(message = id, %domain, selectors = ?selectors, "DKIM signed");
                Ok(Some(message))
            }
            Ok(Signed::No(why)) => {
                self.stats.unsigned.fetch_add(1, Ordering::Relaxed);
                match why {
                    Unsigned::NoKey { domain } => tracing::info!(message = id, %domain,
                        "no DKIM key for the sender domain: sending unsigned"),
                    Unsigned::NoFromDomain => {
                        tracing::info!(message = id, "no From domain to sign for: sending unsigned")
                    }
                }
                Ok(None)
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(message = id, error = %e, "DKIM signing failed");
                Err(e)
            }
        }
    }

    /// The `h=` names: each present listed header once per occurrence, each
    /// oversigned header once more.
    fn header_list(&self, fields: &[canon::Field<'_>]) -> Vec<String> {
        let count = |name: &str| {
            fields
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
                .count()
        };
        let mut h = Vec::new();
        for name in &self.oversign {
            for _ in 0..=count(name) {
                h.push(name.clone());
            }
        }
        for name in &self.headers {
            if self.oversign.contains(name) || name == "dkim-signature" {
                continue;
            }
            for _ in 0..count(name) {
                h.push(name.clone());
            }
        }
        h
    }

    /// The canonical header fields named by `h`, each occurrence taken from
    /// the bottom up (RFC 6376 5.4.2); a name with no field left adds nothing.
    fn signed_header_data(&self, fields: &[canon::Field<'_>], h: &[String]) -> Vec<u8> {
        let mut used: HashMap<&str, usize> = HashMap::new();
        let mut out = Vec::new();
        for name in h {
            let n = used.entry(name.as_str()).or_insert(0);
            let found = fields
                .iter()
                .rev()
                .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
                .nth(*n);
            *n += 1;
            if let Some(f) = found {
                canon::header(self.header_c, f.raw, true, &mut out);
            }
        }
        out
    }

    /// One complete DKIM-Signature field, folded, with its CRLF.
    #[allow(clippy::too_many_arguments)]
    fn signature_field(
        &self,
        key: &SigningKey,
        domain: &str,
        selector: &str,
        t: u64,
        h: &[String],
        bh: &str,
        body_len: usize,
        signed_headers: &[u8],
    ) -> Result<Vec<u8>, DkimError> {
        let mut f = Folder::new("DKIM-Signature:");
        f.token(" v=1;");
        f.token(&format!(" a={};", key.algorithm().tag()));
        f.token(&format!(
            " c={}/{};",
            self.header_c.as_str(),
            self.body_c.as_str()
        ));
        f.token(&format!(" d={domain};"));
        f.token(&format!(" s={selector};"));
        f.token(&format!(" t={t};"));
        if self.body_length {
            f.token(&format!(" l={body_len};"));
        }
        f.token(" h=");
        for (i, name) in h.iter().enumerate() {
            let sep = if i + 1 == h.len() { ";" } else { ":" };
            f.glued(&format!("{name}{sep}"));
        }
        f.token(" bh=");
        f.chunks(bh, ";");
        f.token(" b=");
        let mut data = signed_headers.to_vec();
        canon::header(self.header_c, f.text.as_bytes(), false, &mut data);
        let b = B64.encode(key.sign(&data)?);
        f.chunks(&b, "");
        f.text.push_str("\r\n");
        Ok(f.text.into_bytes())
    }
}

/// Builds a folded header field: lines of at most 78 characters, folded at
/// the places DKIM allows white space.
struct Folder {
    text: String,
    line: usize,
}

impl Folder {
    fn new(start: &str) -> Self {
        Folder {
            text: start.to_string(),
            line: start.len(),
        }
    }

    /// Adds `s` (which starts with a space), folding before it if needed.
    fn token(&mut self, s: &str) {
        if self.line + s.len() > 76 {
            self.text.push_str("\r\n\t");
            self.line = 1;
            self.text.push_str(s.trim_start());
            self.line += s.trim_start().len();
        } else {
            self.text.push_str(s);
            self.line += s.len();
        }
    }

    /// Adds `s` right after what precedes it, folding first if needed
    /// (white space is allowed around the colons of `h=`).
    fn glued(&mut self, s: &str) {
        if self.line + s.len() > 76 {
            self.text.push_str("\r\n\t");
            self.line = 1;
        }
        self.text.push_str(s);
        self.line += s.len();
    }

    /// Adds base64 `s` then `end`, folding inside it (FWS is allowed anywhere
    /// in base64 tag values).
    fn chunks(&mut self, s: &str, end: &str) {
        let mut rest = s;
        loop {
            let room = 76usize.saturating_sub(self.line).max(1);
            if rest.len() <= room {
                self.text.push_str(rest);
                self.line += rest.len();
                break;
            }
            let (now, later) = rest.split_at(room);
            self.text.push_str(now);
            self.text.push_str("\r\n\t");
            self.line = 1;
            rest = later;
        }
        self.text.push_str(end);
        self.line += end.len();
    }
}

fn parse_canonicalization(s: &str) -> Result<(Canonicalization, Canonicalization), DkimError> {
    let one = |p: &str| match p.trim() {
        "simple" => Some(Canonicalization::Simple),
        "relaxed" => Some(Canonicalization::Relaxed),
        _ => None,
    };
    let (h, b) = s.split_once('/').unwrap_or((s, "simple"));
    match (one(h), one(b)) {
        (Some(h), Some(b)) => Ok((h, b)),
        _ => Err(DkimError::InvalidCanonicalization(s.to_string())),
    }
}

/// The domain of the first address of the first From field, normalised.
fn from_domain(fields: &[canon::Field<'_>]) -> Option<String> {
    let from = fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(b"from"))?;
    let value = from.unfolded_value();
    let addr = match value.rfind('<') {
        Some(i) => value[i + 1..]
            .split('>')
            .next()
            .unwrap_or_default()
            .to_string(),
        None => strip_comments(value.split(',').next().unwrap_or_default()),
    };
    let domain = addr.trim().rsplit_once('@')?.1.trim();
    normalize_domain(domain).ok()
}

fn strip_comments(s: &str) -> String {
    let mut depth = 0usize;
    s.chars()
        .filter(|&c| match c {
            '(' => {
                depth += 1;
                false
            }
            ')' => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
        .collect()
}

#[cfg(test)]
mod tests;
