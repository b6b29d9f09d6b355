//! What the server says it can do: the whole EHLO reply kept as data
//! (RFC 5321 section 4.1.1.1), not only the few extensions lettre knows.
//!
//! Our own small parser rather than `smtp-proto`: an EHLO reply is one
//! keyword per line with optional space-separated parameters, and we need the
//! handful of extensions below plus the raw lines; a dependency for that is
//! not worth its weight. Keywords compare case-insensitively; unknown ones are
//! kept in [`Capabilities::lines`].

use std::fmt;

/// The extensions announced in one EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The name the server gave on the first line of its reply.
    pub server_name: String,
    /// `SIZE` (RFC 1870): `Some(0)` when announced without a limit (or with 0),
    /// `Some(n)` for a limit of n bytes, `None` when not announced.
    pub size: Option<u64>,
    /// `DSN` (RFC 3461): delivery status notifications can be requested.
    pub dsn: bool,
    /// `SMTPUTF8` (RFC 6531): UTF-8 addresses and headers.
    pub smtputf8: bool,
    /// `8BITMIME` (RFC 6152).
    pub eight_bit_mime: bool,
    /// `PIPELINING` (RFC 2920).
    pub pipelining: bool,
    /// `CHUNKING` (RFC 3030, BDAT).
    pub chunking: bool,
    /// `BINARYMIME` (RFC 3030).
    pub binary_mime: bool,
    /// `REQUIRETLS` (RFC 8689).
    pub requiretls: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034): replies start with x.y.z.
    pub enhanced_status_codes: bool,
    /// `STARTTLS` (RFC 3207).
    pub starttls: bool,
    /// SASL mechanisms after `AUTH` (upper-case), in the server's order.
    pub auth: Vec<String>,
    /// Every extension line as sent (without the reply code), first line excluded.
    pub lines: Vec<String>,
}

impl Capabilities {
    /// Reads the lines of an EHLO reply (text after the `250` / `250-` prefix).
    /// Lenient: a malformed line is kept in `lines` and otherwise ignored.
    pub fn parse<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> Self {
        let mut caps = Capabilities::default();
        for (i, line) in lines.into_iter().enumerate() {
            let line = line.as_ref().trim();
            if i == 0 {
                caps.server_name = line
                    .split_ascii_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                continue;
            }
            caps.lines.push(line.to_string());
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "SIZE" => {
                    caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0));
                }
                "DSN" => caps.dsn = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "PIPELINING" => caps.pipelining = true,
                "CHUNKING" => caps.chunking = true,
                "BINARYMIME" => caps.binary_mime = true,
                "REQUIRETLS" => caps.requiretls = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                "STARTTLS" => caps.starttls = true,
                "AUTH" => {
                    for m in words {
                        let m = m.to_ascii_uppercase();
                        if !caps.auth.contains(&m) {
                            caps.auth.push(m);
                        }
                    }
                }
                // Old servers announce "AUTH=PLAIN LOGIN" as well.
                k if k.starts_with("AUTH=") => {
                    for m in std::iter::once(&keyword[5..]).chain(words) {
                        let m = m.to_ascii_uppercase();
                        if !m.is_empty() && !caps.auth.contains(&m) {
                            caps.auth.push(m);
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }

    /// The size limit in bytes, when the server announced one (SIZE 0 means none).
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }
}

impl fmt::Display for Capabilities {
    /// One line: `SIZE=10485760 DSN SMTPUTF8 ... AUTH=PLAIN,LOGIN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = Vec::new();
        match self.size {
            Some(0) => words.push("SIZE".into()),
            Some(n) => words.push(format!("SIZE={n}")),
            None => {}
        }
        for (on, name) in [
            (self.pipelining, "PIPELINING"),
            (self.eight_bit_mime, "8BITMIME"),
            (self.smtputf8, "SMTPUTF8"),
            (self.dsn, "DSN"),
            (self.chunking, "CHUNKING"),
            (self.binary_mime, "BINARYMIME"),
            (self.requiretls, "REQUIRETLS"),
            (self.enhanced_status_codes, "ENHANCEDSTATUSCODES"),
            (self.starttls, "STARTTLS"),
        ] {
            if on {
                words.push(name.into());
            }
        }
        if !self.auth.is_empty() {
            words.push(format!("AUTH={}", self.auth.join(",")));
        }
        f.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_extension_of_a_rich_reply_is_kept() {
        let c = Capabilities::parse([
            "mx.example.org Hello [192.0.2.1]",
            "SIZE 10485760",
            "8BITMIME",
            "pipelining",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
            "REQUIRETLS",
            "ENHANCEDSTATUSCODES",
            "AUTH PLAIN login XOAUTH2",
            "AUTH=PLAIN LOGIN",
            "X-CUSTOM 1 2",
        ]);
        assert_eq!(c.server_name, "mx.example.org");
        assert_eq!(c.size_limit(), Some(10_485_760));
        assert!(c.eight_bit_mime && c.pipelining && c.dsn && c.smtputf8);
        assert!(c.chunking && c.requiretls && c.enhanced_status_codes);
        assert!(!c.starttls && !c.binary_mime);
        assert_eq!(c.auth, ["PLAIN", "LOGIN", "XOAUTH2"]);
        assert_eq!(c.lines.last().map(String::as_str), Some("X-CUSTOM 1 2"));
        assert_eq!(
            c.to_string(),
            "SIZE=10485760 PIPELINING 8BITMIME SMTPUTF8 DSN CHUNKING REQUIRETLS \
             ENHANCEDSTATUSCODES AUTH=PLAIN,LOGIN,XOAUTH2"
        );
    }

    #[test]
    fn size_without_a_number_means_no_stated_limit() {
        let c = Capabilities::parse(["h", "SIZE"]);
        assert_eq!((c.size, c.size_limit()), (Some(0), None));
        let c = Capabilities::parse(["h", "SIZE nonsense"]);
        assert_eq!(c.size_limit(), None);
        let c = Capabilities::parse(["h"]);
        assert_eq!(c.size, None);
        assert_eq!(Capabilities::parse(Vec::<String>::new()).server_name, "");
    }
}
