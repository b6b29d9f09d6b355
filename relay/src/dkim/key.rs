//! DKIM private keys: reading PEM files (PKCS#8 `PRIVATE KEY`, or PKCS#1
//! `RSA PRIVATE KEY` as `openssl genrsa` writes), generating new ones, and
//! the public half as the DNS TXT record to publish.
//!
//! Key material never leaves this module in readable form: [`SigningKey`]'s
//! `Debug` shows the algorithm and size only, and every error names the file,
//! never its content.
//!
//! Generation: Ed25519 with ring (`Ed25519KeyPair::generate_pkcs8`); RSA with
//! `openssl genpkey`, because ring signs with RSA but cannot generate RSA keys,
//! and the `rsa` crate would add a big-integer stack (num-bigint-dig and
//! friends) to the relay for a command an operator runs once per rotation.

use std::{
    fmt,
    path::{Path, PathBuf},
    process::Command,
};

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use ring::{
    rand::SystemRandom,
    signature::{self, Ed25519KeyPair, KeyPair, RsaKeyPair},
};

use super::DkimError;

/// Smallest RSA key the relay signs with (RFC 8301 asks for 1024 at least;
/// large providers expect 2048).
pub const MIN_RSA_BITS: usize = 2048;

/// A signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Algorithm {
    /// rsa-sha256 (RFC 6376), understood by every verifier.
    Rsa,
    /// ed25519-sha256 (RFC 8463): short keys and signatures, not yet checked
    /// by every receiver (sign with both to be safe).
    Ed25519,
}

impl Algorithm {
    /// The `a=` tag value.
    pub fn tag(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa-sha256",
            Algorithm::Ed25519 => "ed25519-sha256",
        }
    }

    /// The `k=` value of the DNS record.
    pub fn key_type(self) -> &'static str {
        match self {
            Algorithm::Rsa => "rsa",
            Algorithm::Ed25519 => "ed25519",
        }
    }
}

/// A private key ready to sign.
pub enum SigningKey {
    /// An RSA key of at least [`MIN_RSA_BITS`].
    Rsa(RsaKeyPair),
    /// An Ed25519 key.
    Ed25519(Ed25519KeyPair),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningKey::Rsa(k) => {
                write!(f, "SigningKey(rsa, {} bits)", k.public().modulus_len() * 8)
            }
            SigningKey::Ed25519(_) => f.write_str("SigningKey(ed25519)"),
        }
    }
}

impl SigningKey {
    /// Reads a PEM key file.
    pub fn load(path: &Path) -> Result<Self, DkimError> {
        let text = std::fs::read(path).map_err(|source| DkimError::KeyRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(&text, path)
    }

    /// Parses PEM text; `path` only names the source in errors.
    pub fn from_pem(pem: &[u8], path: &Path) -> Result<Self, DkimError> {
        let bad = |reason: &str| DkimError::KeyFormat {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let text = std::str::from_utf8(pem).map_err(|_| bad("not a PEM file"))?;
        let (label, der) = pem_block(text).ok_or_else(|| bad("no PEM block"))?;
        let der = B64
            .decode(der)
            .map_err(|_| bad("the PEM block is not valid base64"))?;
        let key = match label {
            "PRIVATE KEY" => {
                if let Ok(k) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
                    SigningKey::Ed25519(k)
                } else {
                    SigningKey::Rsa(RsaKeyPair::from_pkcs8(&der).map_err(|e| {
                        bad(&format!(
                            "neither an Ed25519 nor a usable RSA PKCS#8 key ({e}; RSA keys must have 2048 to 4096 bits)"
                        ))
                    })?)
                }
            }
            "RSA PRIVATE KEY" => SigningKey::Rsa(RsaKeyPair::from_der(&der).map_err(|e| {
                bad(&format!(
                    "not a usable RSA key ({e}; RSA keys must have 2048 to 4096 bits)"
                ))
            })?),
            "ENCRYPTED PRIVATE KEY" => {
                return Err(bad(
                    "encrypted keys are not supported: store it unencrypted, mode 0600",
                ));
            }
            other => return Err(bad(&format!("unexpected PEM label {other:?}"))),
        };
        if let SigningKey::Rsa(k) = &key {
            let bits = k.public().modulus_len() * 8;
            if bits < MIN_RSA_BITS {
                return Err(DkimError::KeyTooSmall {
                    path: path.to_path_buf(),
                    bits,
                });
            }
        }
        Ok(key)
    }

    /// The algorithm of the key.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Rsa(_) => Algorithm::Rsa,
            SigningKey::Ed25519(_) => Algorithm::Ed25519,
        }
    }

    /// Signs the canonical header data (RFC 6376 3.7). RSA hashes `data`
    /// with SHA-256 inside PKCS#1 v1.5; Ed25519 signs its SHA-256 digest
    /// (RFC 8463 section 3).
    pub(crate) fn sign(&self, data: &[u8]) -> Result<Vec<u8>, DkimError> {
        match self {
            SigningKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    data,
                    &mut sig,
                )
                .map_err(|_| DkimError::Sign)?;
                Ok(sig)
            }
            SigningKey::Ed25519(k) => {
                let digest = ring::digest::digest(&ring::digest::SHA256, data);
                Ok(k.sign(digest.as_ref()).as_ref().to_vec())
            }
        }
    }

    /// The `p=` value: the SubjectPublicKeyInfo of an RSA key, the bare 32
    /// bytes of an Ed25519 key (RFC 8463 section 4), base64.
    pub fn public_key_base64(&self) -> String {
        match self {
            SigningKey::Rsa(k) => B64.encode(rsa_spki(k.public().as_ref())),
            SigningKey::Ed25519(k) => B64.encode(k.public_key().as_ref()),
        }
    }

    /// The TXT record's value: `v=DKIM1; k=...; p=...`.
    pub fn dns_record(&self) -> String {
        format!(
            "v=DKIM1; k={}; p={}",
            self.algorithm().key_type(),
            self.public_key_base64()
        )
    }
}

/// The first PEM block: its label and its base64 body (line breaks removed).
fn pem_block(text: &str) -> Option<(&str, String)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    let body = &rest[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    Some((label, b64))
}

/// DER: SubjectPublicKeyInfo { rsaEncryption, BIT STRING { RSAPublicKey } }.
fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    const ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x00];
    bits.extend_from_slice(rsa_public_key);
    let mut inner = ALGORITHM.to_vec();
    der_tlv(0x03, &bits, &mut inner);
    let mut out = Vec::new();
    der_tlv(0x30, &inner, &mut out);
    out
}

fn der_tlv(tag: u8, value: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    let n = value.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
}

/// A new private key as PEM (PKCS#8). RSA keys come from `openssl genpkey`.
pub fn generate(algorithm: Algorithm, rsa_bits: usize) -> Result<Vec<u8>, DkimError> {
    match algorithm {
        Algorithm::Ed25519 => {
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| DkimError::Keygen("no randomness for Ed25519".into()))?;
            Ok(to_pem("PRIVATE KEY", doc.as_ref()).into_bytes())
        }
        Algorithm::Rsa => {
            if !(MIN_RSA_BITS..=4096).contains(&rsa_bits) {
                return Err(DkimError::Keygen(format!(
                    "RSA keys must have {MIN_RSA_BITS} to 4096 bits, not {rsa_bits}"
                )));
            }
            let out = Command::new("openssl")
                .args(["genpkey", "-algorithm", "RSA", "-pkeyopt"])
                .arg(format!("rsa_keygen_bits:{rsa_bits}"))
                .output()
                .map_err(|e| {
                    DkimError::Keygen(format!(
                        "cannot run openssl (needed for RSA keys; or use --algorithm ed25519): {e}"
                    ))
                })?;
            if !out.status.success() {
                return Err(DkimError::Keygen(format!(
                    "openssl genpkey failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(out.stdout)
        }
    }
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes a new key file with mode 0600, never over an existing file unless
/// `overwrite`; creates the parent directories (mode 0700).
pub fn write_key_file(path: &Path, pem: &[u8], overwrite: bool) -> Result<(), DkimError> {
    use std::io::Write;
    let io = |source| DkimError::KeyWrite {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(parent).map_err(io)?;
    }
    // Written beside and renamed, so a half-written key is never read.
    let tmp: PathBuf = path.with_extension("key.tmp");
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(&tmp).map_err(io)?;
    f.write_all(pem).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    if !overwrite && path.exists() {
        let _ = std::fs::remove_file(&tmp);
        return Err(DkimError::KeyExists(path.to_path_buf()));
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ed25519_key_round_trips_through_pem_and_hides_itself_in_debug() {
        let pem = generate(Algorithm::Ed25519, 0).unwrap();
        let key = SigningKey::from_pem(&pem, Path::new("k")).unwrap();
        assert_eq!(key.algorithm(), Algorithm::Ed25519);
        assert_eq!(format!("{key:?}"), "SigningKey(ed25519)");
        assert!(key.dns_record().starts_with("v=DKIM1; k=ed25519; p="));
        assert_eq!(B64.decode(key.public_key_base64()).unwrap().len(), 32);
    }

    #[test]
    fn garbage_and_encrypted_keys_are_refused_by_name_not_content() {
        let e = SigningKey::from_pem(b"secret stuff", Path::new("/k/x.key")).unwrap_err();
        assert!(matches!(e, DkimError::KeyFormat { .. }));
        assert!(!e.to_string().contains("secret"), "{e}");
        let enc =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = SigningKey::from_pem(enc, Path::new("/k/x.key")).unwrap_err();
        assert!(e.to_string().contains("encrypted"), "{e}");
    }

    #[test]
    fn der_lengths_use_the_long_form_above_127_bytes() {
        let mut out = Vec::new();
        der_tlv(0x04, &[0; 300], &mut out);
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
