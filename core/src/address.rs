//! Mailboxes: one address with an optional display name, as the message spec
//! writes it (`Name <local@domain>` or `local@domain`).
//!
//! The parser here is ours because it is small and strict: the spec carries one
//! mailbox per string, and a bad one must fail with a reason a person can act
//! on, which a lenient header parser (mail-parser) does not give. Domains are
//! normalised to lower-case A-labels (`idn`: lower-casing and RFC 3492
//! Punycode, ours and not the `idna` crate, whose UTS #46 tables cost ~116 KB
//! gzipped in the npm package; see that module), so an internationalised
//! domain goes out in the ASCII form every SMTP server takes.
//!
//! Local parts may be UTF-8 (RFC 6531 section 3.3: `atext` and `qtext`
//! extended with any non-ASCII character); such a mailbox is written into
//! headers as UTF-8 (RFC 6532) and needs a server that offers SMTPUTF8.
//! The local part is kept as written: no case folding, no normalisation.

mod idn;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Characters allowed unquoted in an atom: RFC 5322 `atext` plus, per
/// RFC 6531, any non-ASCII character that is not a control or white space.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
}

/// Characters that force a display name into a quoted string.
fn is_special(c: char) -> bool {
    "()<>[]:;@\\,.\"".contains(c)
}

/// Why a mailbox string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The string is empty or only white space.
    #[error("empty address")]
    Empty,
    /// CR, LF or another control character appears (header injection).
    #[error("control character (CR, LF or similar) in address {0:?}")]
    ControlCharacter(String),
    /// A `<` without its `>`, or text after the `>`.
    #[error("malformed angle brackets in address {0:?}")]
    Brackets(String),
    /// A display name's quoted string is not closed.
    #[error("unterminated quoted display name in {0:?}")]
    UnterminatedQuote(String),
    /// No `@` between a local part and a domain.
    #[error("missing '@' in address {0:?}")]
    MissingAt(String),
    /// The part before the `@` is empty or has characters RFC 5321 forbids.
    #[error("invalid local part {local:?} in address {input:?}")]
    LocalPart {
        /// The whole address as given.
        input: String,
        /// The offending local part.
        local: String,
    },
    /// No longer returned: UTF-8 local parts are accepted (RFC 6531). Kept
    /// so that code matching on it still compiles.
    #[error("non-ASCII local part {0:?} needs SMTPUTF8, which is not supported")]
    NonAsciiLocalPart(String),
    /// The domain is empty, or not a valid (internationalised) host name or address literal.
    #[error("invalid domain {domain:?} in address {input:?}")]
    Domain {
        /// The whole address as given.
        input: String,
        /// The offending domain.
        domain: String,
    },
}

/// One mailbox: an address and an optional display name.
///
/// In JSON it is one string, `"Ana Núñez <ana@example.com>"` or
/// `"ana@example.com"`; parsing normalises the domain to lower-case ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    /// The display name, if any, as plain Unicode text (no quotes, no encoding).
    pub name: Option<String>,
    /// The address, `local@domain`, domain in lower-case A-label form.
    pub email: String,
}

impl Mailbox {
    /// Builds a mailbox from an address and an optional name, validating the address.
    pub fn new(name: Option<&str>, email: &str) -> Result<Self, AddressError> {
        let email = normalise_addr_spec(email)?;
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| {
                if n.chars().any(char::is_control) {
                    Err(AddressError::ControlCharacter(n.to_string()))
                } else {
                    Ok(n.to_string())
                }
            })
            .transpose()?;
        Ok(Mailbox { name, email })
    }

    /// Parses `Name <addr>`, `"Quoted, Name" <addr>`, `<addr>` or `addr`.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.chars().any(char::is_control) {
            return Err(AddressError::ControlCharacter(input.to_string()));
        }
        let Some(open) = find_unquoted(s, '<')? else {
            if s.contains('>') {
                return Err(AddressError::Brackets(input.to_string()));
            }
            return Mailbox::new(None, s);
        };
        let rest = &s[open + 1..];
        let close = rest
            .find('>')
            .ok_or_else(|| AddressError::Brackets(input.to_string()))?;
        if !rest[close + 1..].trim().is_empty() || rest[..close].contains('<') {
            return Err(AddressError::Brackets(input.to_string()));
        }
        let name = unquote_name(s[..open].trim(), input)?;
        Mailbox::new(name.as_deref(), rest[..close].trim())
    }

    /// The domain part of the address.
    pub fn domain(&self) -> &str {
        self.email.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// Byte index of the first `needle` outside a quoted string.
fn find_unquoted(s: &str, needle: char) -> Result<Option<usize>, AddressError> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && c == needle {
            return Ok(Some(i));
        }
    }
    if quoted {
        return Err(AddressError::UnterminatedQuote(s.to_string()));
    }
    Ok(None)
}

/// Turns the text before `<` into a plain name: quotes removed, escapes resolved.
fn unquote_name(raw: &str, input: &str) -> Result<Option<String>, AddressError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(raw.len());
    let mut quoted = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => match chars.next() {
                Some(e) => out.push(e),
                None => return Err(AddressError::UnterminatedQuote(input.to_string())),
            },
            _ => out.push(c),
        }
    }
    if quoted {
        return Err(AddressError::UnterminatedQuote(input.to_string()));
    }
    let out = out.trim().to_string();
    Ok((!out.is_empty()).then_some(out))
}

/// Validates `local@domain` and returns it with the domain normalised.
fn normalise_addr_spec(addr: &str) -> Result<String, AddressError> {
    let addr = addr.trim();
    if addr.is_empty() {
        return Err(AddressError::Empty);
    }
    if addr.chars().any(|c| c.is_control()) {
        return Err(AddressError::ControlCharacter(addr.to_string()));
    }
    let (local, domain) = addr
        .rsplit_once('@')
        .ok_or_else(|| AddressError::MissingAt(addr.to_string()))?;
    validate_local(local, addr)?;
    let domain = normalise_domain(domain, addr)?;
    Ok(format!("{local}@{domain}"))
}

fn validate_local(local: &str, input: &str) -> Result<(), AddressError> {
    let bad = || AddressError::LocalPart {
        input: input.to_string(),
        local: local.to_string(),
    };
    if local.is_empty() || local.len() > 64 {
        return Err(bad());
    }
    if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        // quoted-string local part: printable characters, backslash escapes.
        let inner = &local[1..local.len() - 1];
        let mut escaped = false;
        for c in inner.chars() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                return Err(bad());
            }
        }
        return if escaped { Err(bad()) } else { Ok(()) };
    }
    // dot-atom: atoms of atext separated by single dots.
    if local
        .split('.')
        .any(|atom| atom.is_empty() || !atom.chars().all(is_atext))
    {
        return Err(bad());
    }
    Ok(())
}

fn normalise_domain(domain: &str, input: &str) -> Result<String, AddressError> {
    let bad = || AddressError::Domain {
        input: input.to_string(),
        domain: domain.to_string(),
    };
    if domain.starts_with('[') {
        // address literal: [192.0.2.1] or [IPv6:...]
        let inner = domain
            .strip_prefix('[')
            .and_then(|d| d.strip_suffix(']'))
            .ok_or_else(bad)?;
        let ok = match inner.strip_prefix("IPv6:") {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => inner.parse::<std::net::Ipv4Addr>().is_ok(),
        };
        return if ok {
            Ok(domain.to_string())
        } else {
            Err(bad())
        };
    }
    if domain.is_empty() {
        return Err(bad());
    }
    let ascii = idn::domain_to_ascii(domain).ok_or_else(bad)?;
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if ascii.len() > 253 || !ascii.split('.').all(valid_label) {
        return Err(bad());
    }
    Ok(ascii)
}

impl fmt::Display for Mailbox {
    /// Writes the RFC 5322 form, quoting the name when it has specials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => f.write_str(&self.email),
            Some(name) => {
                if name.chars().any(is_special) {
                    f.write_str("\"")?;
                    for c in name.chars() {
                        if c == '"' || c == '\\' {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    write!(f, "\" <{}>", self.email)
                } else {
                    write!(f, "{name} <{}>", self.email)
                }
            }
        }
    }
}

impl std::str::FromStr for Mailbox {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mailbox::parse(s)
    }
}

impl Serialize for Mailbox {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mailbox {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Mailbox::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Mailbox {
        match Mailbox::parse(s) {
            Ok(m) => m,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(
            ok("bob@example.com"),
            Mailbox {
                name: None,
                email: "bob@example.com".into()
            }
        );
        assert_eq!(ok("<bob@example.com>").name, None);
        let m = ok("Ana Núñez <ana@Example.COM>");
        assert_eq!(m.name.as_deref(), Some("Ana Núñez"));
        assert_eq!(m.email, "ana@example.com");
        let q = ok(r#""Carl \"C\", Jr." <carl@example.org>"#);
        assert_eq!(q.name.as_deref(), Some(r#"Carl "C", Jr."#));
    }

    #[test]
    fn display_quotes_specials_and_round_trips() {
        for s in [
            "bob@example.com",
            "Ana Núñez <ana@example.com>",
            r#""Smith, John" <j@x.org>"#,
            r#""a \"b\" \\ c" <q@x.org>"#,
        ] {
            let m = ok(s);
            assert_eq!(ok(&m.to_string()), m, "{s}");
        }
        assert_eq!(
            ok(r#""Smith, John" <j@x.org>"#).to_string(),
            r#""Smith, John" <j@x.org>"#
        );
    }

    #[test]
    fn internationalised_domains_become_a_labels() {
        assert_eq!(ok("x@bücher.example").email, "x@xn--bcher-kva.example");
    }

    #[test]
    fn rejects_bad_addresses_with_reasons() {
        assert_eq!(Mailbox::parse(""), Err(AddressError::Empty));
        assert!(matches!(
            Mailbox::parse("bob"),
            Err(AddressError::MissingAt(_))
        ));
        assert!(matches!(
            Mailbox::parse("a\r\nBcc: x@y.z"),
            Err(AddressError::ControlCharacter(_))
        ));
        assert!(matches!(
            Mailbox::parse("Bob <bob@example.com"),
            Err(AddressError::Brackets(_))
        ));
        assert!(matches!(
            Mailbox::parse("a..b@example.com"),
            Err(AddressError::LocalPart { .. })
        ));
        assert!(matches!(
            Mailbox::parse("a@-x.com"),
            Err(AddressError::Domain { .. })
        ));
        assert!(matches!(
            Mailbox::parse("a@"),
            Err(AddressError::Domain { .. })
        ));
        assert!(matches!(
            Mailbox::parse("jo sé@example.com"),
            Err(AddressError::LocalPart { .. })
        ));
        assert!(matches!(
            Mailbox::parse("jo\u{a0}sé@example.com"),
            Err(AddressError::LocalPart { .. })
        ));
        assert!(matches!(
            Mailbox::parse(&format!("{}@example.com", "é".repeat(33))),
            Err(AddressError::LocalPart { .. })
        ));
        assert!(matches!(
            Mailbox::parse("\"Bob <bob@x.com>"),
            Err(AddressError::UnterminatedQuote(_))
        ));
    }

    #[test]
    fn utf8_local_parts_are_kept_as_written_with_an_a_label_domain() {
        let m = ok("José Núñez <José@ejemplo.es>");
        assert_eq!(m.email, "José@ejemplo.es");
        assert_eq!(ok("用户@例子.广告").email, "用户@xn--fsqu00a.xn--4rr70v");
        assert_eq!(ok(&m.to_string()), m);
        assert_eq!(ok("\"jo sé\"@x.org").email, "\"jo sé\"@x.org");
    }

    #[test]
    fn address_literals_are_accepted() {
        assert_eq!(ok("root@[127.0.0.1]").email, "root@[127.0.0.1]");
        assert!(Mailbox::parse("root@[999.0.0.1]").is_err());
    }
}
