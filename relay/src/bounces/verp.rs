//! The VERP return path: `bounces+<message tag>.<recipient tag>@BOUNCE_DOMAIN`.
//!
//! A report sent back to that address names the message and the recipient
//! it is about, whatever the remote MTA puts (or forgets to put) in the
//! report. The message tag is 16 hex digits of HMAC-SHA256 over the message's
//! key (token name, client id), the recipient tag 8 hex digits over the key
//! and the recipient: the secret (32 random bytes, `DATA_DIR/bounces/verp.key`,
//! created on first use, mode 0600) keeps anyone who sees one return path
//! from making the address of another recipient. The local part is 33
//! characters, well under the 64 of RFC 5321.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ring::hmac;

use crate::spool::Key;

/// Local part prefix of every return path.
pub const PREFIX: &str = "bounces";
/// Hex digits of the message tag.
const MSG_TAG: usize = 16;
/// Hex digits of the recipient tag.
const RCPT_TAG: usize = 8;

/// Why the VERP secret could not be read or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerpError {
    /// The secret file could not be read or written.
    #[error("VERP secret {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The secret file does not hold 64 hex digits.
    #[error("VERP secret {0}: not 64 hex digits")]
    Malformed(PathBuf),
    /// The bounce domain is not a domain name.
    #[error("bounce domain {0:?} is not a domain name")]
    Domain(String),
}

/// The two tags a return path carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags {
    /// Names the message.
    pub message: String,
    /// Names the recipient within the message.
    pub rcpt: String,
}

/// Makes and reads return paths for one bounce domain.
pub struct Verp {
    key: hmac::Key,
    domain: String,
}

impl std::fmt::Debug for Verp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Verp")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8], digits: usize) -> String {
    bytes
        .iter()
        .flat_map(|b| [b >> 4, b & 15])
        .take(digits)
        .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
        .collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `d` looks like a domain name (letters, digits, `-`, dots).
fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl Verp {
    /// Return paths at `domain` with the secret of `data_dir` (made on first use).
    pub fn open(data_dir: &Path, domain: &str) -> Result<Self, VerpError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if !valid_domain(&domain) {
            return Err(VerpError::Domain(domain));
        }
        let dir = data_dir.join("bounces");
        let path = dir.join("verp.key");
        let io = |source| VerpError::Io {
            path: path.clone(),
            source,
        };
        let secret = match std::fs::read_to_string(&path) {
            Ok(text) => unhex(&text)
                .filter(|b| b.len() == 32)
                .ok_or_else(|| VerpError::Malformed(path.clone()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&dir).map_err(io)?;
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| io(std::io::Error::other(e)))?;
                write_secret(&dir, &path, &hex(&secret, 64)).map_err(io)?;
                secret.to_vec()
            }
            Err(e) => return Err(io(e)),
        };
        Ok(Self::with_secret(&secret, &domain))
    }

    /// Return paths at `domain` with a given secret (for tests).
    pub fn with_secret(secret: &[u8], domain: &str) -> Self {
        Verp {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            domain: domain.to_ascii_lowercase(),
        }
    }

    /// The bounce domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The tag of a message.
    pub fn message_tag(&self, key: &Key) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in [b"m".as_slice(), key.token.as_bytes(), key.id.as_bytes()] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part);
        }
        hex(ctx.sign().as_ref(), MSG_TAG)
    }

    /// The tag of a recipient of a message (case-insensitive in the address).
    pub fn rcpt_tag(&self, key: &Key, rcpt: &str) -> String {
        let rcpt = rcpt.to_lowercase();
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in [
            b"r".as_slice(),
            key.token.as_bytes(),
            key.id.as_bytes(),
            rcpt.as_bytes(),
        ] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part);
        }
        hex(ctx.sign().as_ref(), RCPT_TAG)
    }

    /// The return path for one recipient of a message.
    pub fn address(&self, key: &Key, rcpt: &str) -> String {
        format!(
            "{PREFIX}+{}.{}@{}",
            self.message_tag(key),
            self.rcpt_tag(key, rcpt),
            self.domain
        )
    }

    /// Whether `addr` is at the bounce domain (any local part).
    pub fn is_ours(&self, addr: &str) -> bool {
        addr.rsplit_once('@')
            .is_some_and(|(_, d)| d.trim_end_matches('.').eq_ignore_ascii_case(&self.domain))
    }

    /// The tags of a return path of ours; `None` for any other address.
    pub fn parse(&self, addr: &str) -> Option<Tags> {
        let addr = addr.trim().trim_start_matches('<').trim_end_matches('>');
        if !self.is_ours(addr) {
            return None;
        }
        let (local, _) = addr.rsplit_once('@')?;
        let local = local.to_ascii_lowercase();
        let rest = local.strip_prefix(PREFIX)?.strip_prefix('+')?;
        let (m, r) = rest.split_once('.')?;
        let is_hex = |s: &str, n| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        (is_hex(m, MSG_TAG) && is_hex(r, RCPT_TAG)).then(|| Tags {
            message: m.to_string(),
            rcpt: r.to_string(),
        })
    }
}

/// Writes the secret: temporary file (0600), fsync, rename, directory fsync.
fn write_secret(dir: &Path, path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("key.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> Key {
        Key {
            token: "app".into(),
            id: id.into(),
        }
    }

    #[test]
    fn a_return_path_names_its_message_and_recipient_and_nothing_else() {
        let v = Verp::with_secret(b"k", "Bounces.Example.COM");
        let a = v.address(&key("m1"), "Bob@Example.org");
        assert!(
            a.starts_with("bounces+") && a.ends_with("@bounces.example.com"),
            "{a}"
        );
        assert!(a.split('@').next().unwrap().len() <= 64);
        let tags = v.parse(&a.to_uppercase()).expect("ours, in any case");
        assert_eq!(tags.message, v.message_tag(&key("m1")));
        assert_eq!(tags.rcpt, v.rcpt_tag(&key("m1"), "bob@example.org"));
        assert_ne!(tags.message, v.message_tag(&key("m2")));
        assert_ne!(v.address(&key("m1"), "carl@example.org"), a);
        assert!(v.parse("bounces+00.11@other.example").is_none());
        assert!(v.parse("postmaster@bounces.example.com").is_none());
        assert!(v.is_ours("postmaster@bounces.example.com"));
        let other = Verp::with_secret(b"another secret", "bounces.example.com");
        assert_ne!(other.address(&key("m1"), "bob@example.org"), a, "keyed");
    }

    #[test]
    fn the_secret_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = Verp::open(dir.path(), "b.example").unwrap();
        let b = Verp::open(dir.path(), "b.example").unwrap();
        assert_eq!(
            a.address(&key("x"), "r@y.org"),
            b.address(&key("x"), "r@y.org")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("bounces/verp.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(Verp::open(dir.path(), "not a domain").is_err());
    }
}
