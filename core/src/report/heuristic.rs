//! Bounces without a message/delivery-status part: the failed recipients,
//! and a status and diagnostic where the text gives them, read from the
//! shapes real MTAs send (EmailEngine's `bounce-detect.js` catalogues them):
//! - the `X-Failed-Recipients` header (Exim, Gmail, Office 365);
//! - Postfix: `<addr>: host mx[1.2.3.4] said: 550 5.1.1 ...`, continued on
//!   indented lines;
//! - Exim: after `The following address(es) failed:`, an indented address,
//!   then a more indented diagnostic;
//! - Gmail: `Your message wasn't delivered to ADDR because...` or
//!   `Delivery to the following recipient failed permanently:`, the
//!   diagnostic after `The response from the remote server was:`;
//! - Exchange / Office 365: `Delivery has failed to these recipients or groups:`
//!   and `Remote Server returned '550 5.1.1 ...'` after the address.
//!
//! Every report read here has `heuristic` set and a warning that says so.

use super::{Action, RecipientStatus, Report, ReportKind, fields::Group};

/// Markers after which a bounce text quotes the original message.
const ORIGINAL_MARKERS: &[&str] = &[
    "this is a copy of the message",
    "below this line is a copy of the message",
    "original message headers:",
    "----- original message -----",
    "undelivered message",
];

/// Words of the subjects bounces have.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "delivery status",
    "failure notice",
    "returned mail",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "not delivered",
    "delayed",
];

/// Whether the message comes from a mail system rather than a person: a
/// daemon's From, a null Return-Path, Auto-Submitted, or a bounce's subject.
fn from_mail_system(top: &Group) -> bool {
    let from = top.get("From").unwrap_or("").to_ascii_lowercase();
    let subject = top.get("Subject").unwrap_or("").to_ascii_lowercase();
    [
        "mailer-daemon",
        "postmaster",
        "mail delivery",
        "microsoftexchange",
    ]
    .iter()
    .any(|w| from.contains(w))
        || top.get("Return-Path").is_some_and(|r| r.trim() == "<>")
        || top
            .get("Auto-Submitted")
            .is_some_and(|a| !a.trim().eq_ignore_ascii_case("no"))
        || BOUNCE_SUBJECTS.iter().any(|w| subject.contains(w))
}

/// Reads the top-level header block and the message's text parts.
pub(super) fn read(top: &Group, texts: &[String]) -> Report {
    let mut report = Report::new(ReportKind::Unknown);
    let mut found = Found::default();
    let mut shapes: Vec<&str> = Vec::new();
    let text: String = texts.join("\n").replace("\r\n", "\n");
    let body = before_original(&text);
    let lines: Vec<&str> = body.lines().collect();

    let from_system = from_mail_system(top);
    let mut ignored = Vec::new();
    for (shape, list) in [
        ("Postfix", postfix(&lines)),
        ("Exim", exim(&lines)),
        ("Gmail", gmail(&lines)),
        ("Exchange", exchange(&lines)),
    ] {
        if list.is_empty() {
            continue;
        }
        // A person's message that quotes a bounce is not a bounce.
        if !from_system {
            ignored.push(shape);
            continue;
        }
        shapes.push(shape);
        for r in list {
            found.merge(r);
        }
    }
    if !ignored.is_empty() {
        report.warnings.push(format!(
            "bounce-like text ({}) in a message that does not come from a mail system: not read as a bounce",
            ignored.join(", ")
        ));
    }
    let failed_header: Vec<String> = top
        .all("X-Failed-Recipients")
        .flat_map(|v| v.split(','))
        .filter_map(address_in)
        .collect();
    if !failed_header.is_empty() {
        shapes.push("X-Failed-Recipients");
    }
    for addr in failed_header {
        found.merge(RecipientStatus {
            final_recipient: Some(addr),
            action: Some(Action::Failed),
            ..RecipientStatus::default()
        });
    }
    if found.list.is_empty() {
        let subject = top.get("Subject").unwrap_or("").to_ascii_lowercase();
        let bouncy = BOUNCE_SUBJECTS.iter().any(|w| subject.contains(w));
        if !ignored.is_empty() {
            return report;
        }
        report.warnings.push(if bouncy {
            "the subject says bounce, but no failed recipient was found in the text".into()
        } else {
            "no delivery-status or feedback-report part, and no known bounce text".into()
        });
        return report;
    }
    let delayed = {
        let lower = body.to_ascii_lowercase();
        [
            "has been delayed",
            "not yet been delivered",
            "warning only",
            "will continue trying",
            "will retry",
            "delivery delayed",
        ]
        .iter()
        .any(|w| lower.contains(w))
    };
    let single_status = (found.list.len() == 1)
        .then(|| first_status_code(body))
        .flatten();
    for r in &mut found.list {
        if r.status.is_none() {
            r.status = r
                .diagnostic_code
                .as_deref()
                .and_then(first_status_code)
                .or_else(|| single_status.clone());
        }
        // The text says whether the MTA gave up; a 4.x.x status in a bounce
        // is a temporary failure that outlived the queue (RFC 3464 2.3.3).
        r.action = match r.status.as_deref().and_then(|s| s.chars().next()) {
            Some('2') => Some(Action::Delivered),
            _ if delayed => Some(Action::Delayed),
            _ => Some(Action::Failed),
        };
    }
    report.kind = ReportKind::Delivery;
    report.heuristic = true;
    report.recipients = found.list;
    report.warnings.push(format!(
        "no message/delivery-status part: recipients read from a non-standard bounce (heuristic: {})",
        shapes.join(", ")
    ));
    report
}

/// The text before the quoted original message.
fn before_original(text: &str) -> &str {
    let lower = text.to_ascii_lowercase();
    let cut = ORIGINAL_MARKERS
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
        .map(|at| lower[..at].rfind('\n').map_or(0, |nl| nl + 1))
        .unwrap_or(text.len());
    text.get(..cut).unwrap_or(text)
}

/// The Message-ID quoted in a bounce text after its original-message marker.
pub(super) fn inline_message_id(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start = ORIGINAL_MARKERS
        .iter()
        .filter_map(|m| lower.find(m))
        .min()?;
    text.get(start..)?.lines().find_map(|line| {
        let (name, value) = line.trim_start().split_once(':')?;
        (name.eq_ignore_ascii_case("message-id") && !value.trim().is_empty())
            .then(|| value.trim().to_string())
    })
}

/// The recipients found so far, one per address (case-insensitive), in
/// the order first met; indexed so that a long list merges in linear time.
#[derive(Default)]
struct Found {
    list: Vec<RecipientStatus>,
    index: std::collections::HashMap<String, usize>,
}

impl Found {
    fn merge(&mut self, r: RecipientStatus) {
        let key = r
            .final_recipient
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        match self.index.get(&key).and_then(|&at| self.list.get_mut(at)) {
            Some(f) => {
                if f.diagnostic_code.is_none() {
                    f.diagnostic_code = r.diagnostic_code;
                }
                if f.action.is_none() {
                    f.action = r.action;
                }
            }
            None => {
                self.index.insert(key, self.list.len());
                self.list.push(r);
            }
        }
    }
}

fn failed(addr: String, diagnostic: Option<String>) -> RecipientStatus {
    RecipientStatus {
        final_recipient: Some(addr),
        diagnostic_code: diagnostic.filter(|d| !d.is_empty()),
        ..RecipientStatus::default()
    }
}

/// Lines indented under line `i`, joined.
fn continuation(lines: &[&str], i: usize, first: &str) -> String {
    let mut text = first.trim().to_string();
    for line in lines.iter().skip(i + 1) {
        if !line.starts_with([' ', '\t']) || line.trim().is_empty() {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(line.trim());
    }
    text
}

/// The lines after line `i` indented deeper than `indent`, joined.
fn deeper(lines: &[&str], i: usize, indent: usize) -> String {
    lines
        .iter()
        .skip(i + 1)
        .take_while(|l| !l.trim().is_empty() && l.len() - l.trim_start().len() > indent)
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `<addr>: diagnostic` at the start of a line (Postfix's bounce(8) text).
fn postfix(lines: &[&str]) -> Vec<RecipientStatus> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix('<') else {
            continue;
        };
        let Some((addr, after)) = rest.split_once(">:") else {
            continue;
        };
        if !addr.contains('@') || addr.contains(char::is_whitespace) {
            continue;
        }
        out.push(failed(
            addr.to_string(),
            Some(continuation(lines, i, after)),
        ));
    }
    out
}

/// After `following address(es) failed:`: indented addresses, each with a
/// more indented diagnostic (Exim).
fn exim(lines: &[&str]) -> Vec<RecipientStatus> {
    let mut out = Vec::new();
    // The line that opens the list ends with a colon: `The following
    // address(es) failed:`, `The address to which the message has not yet
    // been delivered is:` (a delay warning).
    let Some(start) = lines.iter().position(|l| {
        let l = l.trim_end().to_ascii_lowercase();
        l.ends_with(':')
            && (l.contains("address(es) failed")
                || l.contains("addresses failed")
                || l.contains("address failed")
                || l.contains("not yet been delivered"))
    }) else {
        return out;
    };
    let mut current: Option<(String, String, usize)> = None;
    for line in lines.iter().skip(start + 1) {
        if line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            break;
        }
        let is_new = match &current {
            None => true,
            Some((_, _, first_indent)) => indent <= *first_indent,
        };
        if is_new && let Some(addr) = address_in(line.trim().trim_end_matches(':')) {
            if let Some((a, d, _)) = current.take() {
                out.push(failed(a, Some(d)));
            }
            current = Some((addr, String::new(), indent));
            continue;
        }
        if let Some((_, diag, _)) = &mut current {
            if !diag.is_empty() {
                diag.push(' ');
            }
            diag.push_str(line.trim());
        }
    }
    if let Some((a, d, _)) = current {
        out.push(failed(a, Some(d)));
    }
    out
}

/// Gmail's bounce texts.
fn gmail(lines: &[&str]) -> Vec<RecipientStatus> {
    let mut addrs = Vec::new();
    let mut diagnostic = None;
    for (i, line) in lines.iter().enumerate() {
        let lower = line.to_ascii_lowercase();
        if let Some(at) = lower
            .find("wasn't delivered to ")
            .or_else(|| lower.find("was not delivered to "))
            && let Some(a) = line
                .get(at..)
                .and_then(|s| s.split_whitespace().nth(3))
                .and_then(address_in)
        {
            addrs.push(a);
        }
        if lower.contains("delivery to the following recipient")
            && let Some(a) = lines
                .iter()
                .skip(i + 1)
                .find(|l| !l.trim().is_empty())
                .and_then(|l| address_in(l))
        {
            addrs.push(a);
        }
        if diagnostic.is_none()
            && (lower.contains("the response from the remote server was:")
                || lower.trim() == "the response was:")
            && let Some(j) = lines.iter().skip(i + 1).position(|l| !l.trim().is_empty())
        {
            let at = i + 1 + j;
            let mut text = lines[at].trim().to_string();
            for l in lines.iter().skip(at + 1) {
                if l.trim().is_empty() {
                    break;
                }
                text.push(' ');
                text.push_str(l.trim());
            }
            diagnostic = Some(text);
        }
    }
    addrs
        .into_iter()
        .map(|a| failed(a, diagnostic.clone()))
        .collect()
}

/// Exchange / Office 365 non-delivery reports.
fn exchange(lines: &[&str]) -> Vec<RecipientStatus> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let lower = line.to_ascii_lowercase();
        if lower.contains("delivery has failed to these recipients or groups:")
            || lower.contains("following recipient(s) cannot be reached:")
        {
            // Each address, then (Exchange 2003) its diagnostic indented under it.
            let mut address_indent = None;
            for (k, l) in lines.iter().enumerate().skip(i + 1) {
                if l.trim().is_empty() {
                    if out.is_empty() {
                        continue;
                    }
                    break;
                }
                let indent = l.len() - l.trim_start().len();
                if address_indent.is_some_and(|a| indent > a) {
                    continue;
                }
                match address_in(l) {
                    Some(a) => {
                        let diagnostic = deeper(lines, k, indent);
                        address_indent = Some(indent);
                        out.push(failed(a, Some(diagnostic)));
                    }
                    None => break,
                }
            }
        }
        if let Some(at) = lower.find("remote server returned '") {
            let rest = &line[at + "remote server returned '".len()..];
            let diag = rest.trim_end().trim_end_matches('\'').to_string();
            // The address is on one of the lines just before.
            let addr = lines[..i].iter().rev().take(4).find_map(|l| address_in(l));
            if let Some(a) = addr {
                out.push(failed(a, Some(diag)));
            }
        }
    }
    out
}

/// The first e-mail address in `text` (`a@b.example`, `<a@b.example>`,
/// `mailto:a@b.example`, `'a@b.example'`).
fn address_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || "<>()[]'\",;".contains(c))
        .map(|t| t.strip_prefix("mailto:").unwrap_or(t))
        .map(|t| t.trim_end_matches(['.', ':']))
        .find(|t| {
            let Some((local, domain)) = t.rsplit_once('@') else {
                return false;
            };
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        .map(str::to_string)
}

/// `d.d.d` with a class of 2, 4 or 5 (RFC 3463).
pub(super) fn is_status_code(code: &str) -> bool {
    let parts: Vec<&str> = code.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The first enhanced status code in `text`.
fn first_status_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|t| t.trim_end_matches('.'))
        .find(|t| is_status_code(t))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_found_in_text() {
        assert_eq!(
            first_status_code("550 5.1.1 <a@b.c>: no").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            first_status_code("host 1.2.3.4 said 451 4.7.1 later").as_deref(),
            Some("4.7.1")
        );
        assert_eq!(first_status_code("version 1.2.3"), None);
    }

    #[test]
    fn addresses_are_found_in_their_wrappings() {
        assert_eq!(
            address_in("'bob@example.org' on 1/1").as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(
            address_in("x<mailto:bob@example.org>").as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(address_in("no address here"), None);
    }
}
