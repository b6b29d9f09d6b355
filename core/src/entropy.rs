//! Deterministic identifiers from an injected seed: MIME boundaries and
//! message ids. core never reads OS randomness; the caller passes a seed
//! (from `crypto.getRandomValues` in JavaScript, from the OS natively), so
//! the same seed gives the same bytes everywhere.

/// A splitmix64 stream: tiny, fast, well distributed; not cryptographic, and
/// it need not be: boundaries and ids only have to be unique, not secret.
#[derive(Debug, Clone)]
pub struct IdSource {
    state: u64,
}

impl IdSource {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        IdSource { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A MIME boundary that cannot occur in base64 or quoted-printable text.
    pub fn boundary(&mut self) -> String {
        format!(
            "=_pw_{:016x}{:08x}",
            self.next_u64(),
            self.next_u64() as u32
        )
    }

    /// A message id `<hex.hex@domain>` (with brackets).
    pub fn message_id(&mut self, domain: &str) -> String {
        let domain = if domain.is_empty() {
            "postwire.invalid"
        } else {
            domain
        };
        format!(
            "<{:016x}.{:016x}@{domain}>",
            self.next_u64(),
            self.next_u64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ids_other_seed_other_ids() {
        let (mut a, mut b, mut c) = (IdSource::new(7), IdSource::new(7), IdSource::new(8));
        assert_eq!(a.boundary(), b.boundary());
        assert_ne!(a.boundary(), c.boundary());
        assert!(a.message_id("example.com").ends_with("@example.com>"));
    }
}
