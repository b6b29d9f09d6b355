//! The senders a message names in its header: every address of every
//! `From`, `Sender`, `Resent-From` and `Resent-Sender` field, which a
//! token's allowed senders must cover as they cover the envelope's
//! `MAIL FROM` (see docs/relay.md, "Attacker's tour"). `Reply-To` is not a
//! sender (it only says where answers go) and is not checked.
//!
//! Read to over-find rather than miss: the header section ends at the first
//! empty line (LF or CRLF line ends, as receiving servers read them), and
//! within it a line break is CRLF, LF or a bare CR, so a field hidden behind
//! a bare CR, which some software takes for a line end, is found too. Names
//! compare without case and with blanks before the colon. Each value is
//! read by mail-parser (encoded words, groups, comments); an entry without
//! an address, or a field with none, cannot be checked and is refused.

use mail_parser::{Address, MessageParser};

/// Most sender fields a header may have (a real one has one to four); more
/// is refused rather than parsed.
pub const MAX_SENDER_FIELDS: usize = 64;

/// The fields whose addresses are senders.
pub const SENDER_FIELDS: [&str; 4] = ["From", "Sender", "Resent-From", "Resent-Sender"];

/// A sender field that cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {field} header {problem}")]
pub struct SenderFieldError {
    /// The field, as in [`SENDER_FIELDS`].
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// The end of the header section: the offset of the empty line's break.
fn header_end(bytes: &[u8]) -> usize {
    let mut i = 0;
    while let Some(p) = bytes[i..].iter().position(|&b| b == b'\n') {
        let at = i + p + 1;
        match bytes.get(at..) {
            Some([b'\n', ..]) | Some([b'\r', b'\n', ..]) => return at,
            _ => i = at,
        }
    }
    bytes.len()
}

/// The fields of the header section, unfolded: (name, value) as bytes.
fn fields(head: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    let mut out: Vec<(&[u8], Vec<u8>)> = Vec::new();
    for line in head.split(|&b| b == b'\n' || b == b'\r') {
        if line.is_empty() {
            continue;
        }
        if matches!(line[0], b' ' | b'\t') {
            if let Some((_, v)) = out.last_mut() {
                v.push(b' ');
                v.extend_from_slice(line);
            }
            continue;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            out.push((&line[..colon], line[colon + 1..].to_vec()));
        }
    }
    out
}

/// Every sender address of the message's header, with the field that names
/// it, in order.
pub fn header_senders(bytes: &[u8]) -> Result<Vec<(&'static str, String)>, SenderFieldError> {
    let head = &bytes[..header_end(bytes)];
    let mut out = Vec::new();
    let mut seen = 0;
    for (name, value) in fields(head) {
        let name = name.trim_ascii_end();
        let Some(field) = SENDER_FIELDS
            .iter()
            .copied()
            .find(|f| name.eq_ignore_ascii_case(f.as_bytes()))
        else {
            continue;
        };
        seen += 1;
        if seen > MAX_SENDER_FIELDS {
            return Err(SenderFieldError {
                field,
                problem: "appears too many times",
            });
        }
        let mut one = b"From:".to_vec();
        one.extend_from_slice(&value);
        one.extend_from_slice(b"\r\n\r\n");
        let parsed = MessageParser::new()
            .with_address_headers()
            .parse_headers(&one);
        let addrs: Vec<_> = match parsed.as_ref().and_then(|m| m.from()) {
            Some(Address::List(list)) => list.iter().collect(),
            Some(Address::Group(groups)) => {
                groups.iter().flat_map(|g| g.addresses.iter()).collect()
            }
            None => Vec::new(),
        };
        if addrs.is_empty() {
            return Err(SenderFieldError {
                field,
                problem: "has no address",
            });
        }
        for a in addrs {
            match a.address.as_deref().map(str::trim) {
                Some(addr) if !addr.is_empty() => out.push((field, addr.to_string())),
                _ => {
                    return Err(SenderFieldError {
                        field,
                        problem: "has an entry without an address",
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn senders(m: &str) -> Vec<(&'static str, String)> {
        header_senders(m.as_bytes()).unwrap()
    }

    #[test]
    fn every_sender_field_and_every_address_in_it_is_found() {
        let m = "From: Ana <ana@example.com>, bob@example.com\r\nSender: =?utf-8?q?S?= <s@example.com>\r\n\
                 Reply-To: r@other.org\r\nresent-from : rf@x.org\r\nResent-Sender:\r\n (c) <rs@y.org>\r\n\r\nFrom: body@z.org\r\n";
        assert_eq!(
            senders(m),
            vec![
                ("From", "ana@example.com".into()),
                ("From", "bob@example.com".into()),
                ("Sender", "s@example.com".into()),
                ("Resent-From", "rf@x.org".into()),
                ("Resent-Sender", "rs@y.org".into()),
            ]
        );
    }

    #[test]
    fn a_field_behind_a_bare_cr_or_a_bare_lf_is_found_and_lf_ends_the_header() {
        assert_eq!(
            senders("Subject: x\rFrom: evil@x.org\r\n\r\n"),
            vec![("From", "evil@x.org".into())]
        );
        assert_eq!(
            senders("Subject: x\nFrom: evil@x.org\n\nFrom: body@z.org\n"),
            vec![("From", "evil@x.org".into())]
        );
        assert!(senders("Subject: x\r\n\r\nFrom: body@z.org\r\n").is_empty());
    }

    #[test]
    fn a_display_name_that_looks_like_an_address_is_not_the_address() {
        assert_eq!(
            senders("From: \"ceo@bank.example\" <me@example.com>\r\n\r\n"),
            vec![("From", "me@example.com".into())]
        );
        assert_eq!(
            senders("From: me@example.com <evil@bank.example>\r\n\r\n"),
            vec![("From", "evil@bank.example".into())]
        );
    }

    #[test]
    fn a_header_of_many_sender_fields_is_refused_unparsed() {
        let m = "Sender: s@example.com\r\n".repeat(MAX_SENDER_FIELDS + 1) + "\r\n";
        assert_eq!(
            header_senders(m.as_bytes()).unwrap_err().problem,
            "appears too many times"
        );
    }

    #[test]
    fn a_sender_field_without_an_address_is_refused() {
        for m in [
            "From: \r\n\r\n",
            "From: Just A Name\r\n\r\n",
            "Sender: group:;\r\n\r\n",
        ] {
            assert!(header_senders(m.as_bytes()).is_err(), "{m:?}");
        }
    }
}
