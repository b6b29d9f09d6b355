//! Delivery and abuse reports: bytes of a received report -> [`Report`].
//!
//! This module owns the reading of RFC 3464 delivery status notifications
//! (`multipart/report; report-type=delivery-status` with a
//! `message/delivery-status` part, or RFC 6533's `message/global-delivery-status`),
//! of RFC 5965 abuse reports (ARF: `report-type=feedback-report` with a
//! `message/feedback-report` part), and of the common bounces that carry no
//! standard part (Postfix and Exim texts, the `X-Failed-Recipients` header,
//! Exchange / Office 365 and Gmail texts), in `heuristic.rs`.
//!
//! Lenient: anything with a header block gives a [`Report`] (kind
//! [`ReportKind::Unknown`] when nothing in it is a report), and what was
//! missing, malformed or guessed is said in [`Report::warnings`]; a report
//! read from free text has [`Report::heuristic`] set. Only input that is not
//! a message at all is an error ([`ReportError`]). The MIME structure is
//! split by `parse/tree.rs`, the same splitter as [`crate::parse()`]; no
//! length read from the input sizes an allocation.

mod fields;
mod heuristic;

use serde::{Deserialize, Serialize};

use crate::parse::{lenient_base64, mime_tree, quoted_printable, tree::Entity};
use fields::Group;

/// Why bytes could not be read as a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The input is empty (or only white space).
    #[error("empty input: not a message")]
    Empty,
    /// No header block was found: the input is not an RFC 5322 message.
    #[error("not an RFC 5322 message: no header fields found")]
    NotAMessage,
}

/// What kind of report a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ReportKind {
    /// A delivery status notification (RFC 3464) or a bounce text read as one.
    Delivery,
    /// An abuse / feedback report (RFC 5965 ARF).
    Feedback,
    /// No report was found in the message.
    Unknown,
}

/// The Action field of a recipient (RFC 3464 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Action {
    /// Delivery failed; no further attempts.
    Failed,
    /// Delivery has not succeeded yet; the MTA keeps trying.
    Delayed,
    /// Delivered to the recipient's mailbox.
    Delivered,
    /// Relayed to a system that sends no DSNs.
    Relayed,
    /// Delivered and forwarded to several further recipients.
    Expanded,
}

impl Action {
    fn from_field(value: &str) -> Option<Action> {
        // `failed (bad address)`: comments after the keyword are allowed.
        let word = value
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()?;
        Some(match word.to_ascii_lowercase().as_str() {
            "failed" => Action::Failed,
            "delayed" => Action::Delayed,
            "delivered" => Action::Delivered,
            "relayed" => Action::Relayed,
            "expanded" => Action::Expanded,
            _ => return None,
        })
    }
}

/// What happened to one recipient (RFC 3464 2.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientStatus {
    /// Final-Recipient, without its address type (`rfc822;`).
    pub final_recipient: Option<String>,
    /// Original-Recipient (the address as the sender gave it), without its type.
    pub original_recipient: Option<String>,
    /// Action.
    pub action: Option<Action>,
    /// Status: the enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: Option<String>,
    /// Diagnostic-Code without its type (`smtp;`): the remote server's answer.
    pub diagnostic_code: Option<String>,
    /// Remote-MTA without its type (`dns;`).
    pub remote_mta: Option<String>,
    /// Last-Attempt-Date, as written.
    pub last_attempt_date: Option<String>,
}

impl RecipientStatus {
    /// A failure that will not go away: `failed`, or a `5.x.x` status.
    pub fn is_permanent(&self) -> bool {
        self.action == Some(Action::Failed)
            || self.status.as_deref().is_some_and(|s| s.starts_with('5'))
    }

    /// A failure that may go away: `delayed`, or a `4.x.x` status.
    pub fn is_transient(&self) -> bool {
        !self.is_permanent()
            && (self.action == Some(Action::Delayed)
                || self.status.as_deref().is_some_and(|s| s.starts_with('4')))
    }
}

/// The fields of an abuse report (RFC 5965 3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    /// Feedback-Type: `abuse`, `fraud`, `virus`, `not-spam`, `other`...
    pub feedback_type: Option<String>,
    /// User-Agent of the reporting software.
    pub user_agent: Option<String>,
    /// Version of the format (1).
    pub version: Option<String>,
    /// Original-Mail-From: the envelope sender of the reported message.
    pub original_mail_from: Option<String>,
    /// Original-Rcpt-To: its envelope recipients.
    pub original_rcpt_to: Vec<String>,
    /// Arrival-Date, as written.
    pub arrival_date: Option<String>,
    /// Source-IP: where the reported message came from.
    pub source_ip: Option<String>,
    /// Reported-Domain.
    pub reported_domain: Vec<String>,
}

/// A delivery or abuse report, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// What kind of report this is.
    pub kind: ReportKind,
    /// Reporting-MTA (DSN), without its type.
    pub reporting_mta: Option<String>,
    /// Original-Envelope-Id (DSN): the ENVID the sender gave.
    pub original_envelope_id: Option<String>,
    /// Arrival-Date (DSN), as written.
    pub arrival_date: Option<String>,
    /// One entry per recipient reported on (DSN, or a bounce text).
    pub recipients: Vec<RecipientStatus>,
    /// The abuse report's fields (kind `feedback`).
    pub feedback: Option<Feedback>,
    /// The Message-ID of the message reported on, when it came back.
    pub original_message_id: Option<String>,
    /// The header fields of the message reported on, when they came back.
    pub original_headers: Vec<(String, String)>,
    /// The recipients were read from free text, not from a standard part.
    pub heuristic: bool,
    /// What was missing, malformed or guessed.
    pub warnings: Vec<String>,
}

impl Report {
    fn new(kind: ReportKind) -> Report {
        Report {
            kind,
            reporting_mta: None,
            original_envelope_id: None,
            arrival_date: None,
            recipients: Vec::new(),
            feedback: None,
            original_message_id: None,
            original_headers: Vec::new(),
            heuristic: false,
            warnings: Vec::new(),
        }
    }
}

/// Reads a received message as a delivery or abuse report. Lenient (see the
/// module documentation): an error only when `bytes` is not a message.
///
/// ```
/// use postwire_core::report::{parse_report, ReportKind};
/// let dsn = b"From: MAILER-DAEMON@mx.example\r\nX-Failed-Recipients: bob@example.org\r\n\r\nsorry\r\n";
/// let report = parse_report(dsn)?;
/// assert_eq!(report.kind, ReportKind::Delivery);
/// assert_eq!(report.recipients[0].final_recipient.as_deref(), Some("bob@example.org"));
/// assert!(report.heuristic);
/// # Ok::<(), postwire_core::report::ReportError>(())
/// ```
pub fn parse_report(bytes: &[u8]) -> Result<Report, ReportError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ReportError::Empty);
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let root = mime_tree(bytes);
    if root.head.headers.is_empty() {
        return Err(ReportError::NotAMessage);
    }
    let mut leaves = Vec::new();
    let mut report_type = None;
    collect(&root, &mut leaves, &mut report_type);

    let status_part = leaves
        .iter()
        .find(|(ct, _)| ct == "message/delivery-status" || ct == "message/global-delivery-status");
    let feedback_part = leaves
        .iter()
        .find(|(ct, _)| ct == "message/feedback-report");
    let mut report = if let Some((_, entity)) = status_part {
        delivery(&decoded_text(bytes, entity))
    } else if let Some((_, entity)) = feedback_part {
        feedback(&decoded_text(bytes, entity))
    } else {
        let texts: Vec<String> = leaves
            .iter()
            .filter(|(ct, _)| ct == "text/plain" || ct == "text/html")
            .map(|(_, e)| decoded_text(bytes, e))
            .collect();
        let top = fields::header_block(&String::from_utf8_lossy(bytes));
        heuristic::read(&top, &texts)
    };
    match (report.kind, report_type.as_deref()) {
        (_, None) if report.kind != ReportKind::Unknown && !report.heuristic => {
            report
                .warnings
                .push("the report part is not inside a multipart/report".into());
        }
        (ReportKind::Delivery, Some(t)) if !report.heuristic && t != "delivery-status" => {
            report
                .warnings
                .push(format!("report-type={t} but a delivery-status part"));
        }
        (ReportKind::Feedback, Some(t)) if t != "feedback-report" => {
            report
                .warnings
                .push(format!("report-type={t} but a feedback-report part"));
        }
        (ReportKind::Unknown, Some(t)) => {
            report
                .warnings
                .push(format!("multipart/report with report-type={t} is not read"));
        }
        _ => {}
    }
    if let Some((_, entity)) = leaves.iter().find(|(ct, _)| {
        matches!(
            ct.as_str(),
            "message/rfc822"
                | "message/global"
                | "text/rfc822-headers"
                | "message/rfc822-headers"
                | "message/global-headers"
        )
    }) {
        original(&mut report, &decoded_text(bytes, entity));
    } else if report.heuristic {
        // Postfix, Exim and Exchange texts quote the original's headers inline.
        let joined: String = leaves
            .iter()
            .filter(|(ct, _)| ct == "text/plain")
            .map(|(_, e)| decoded_text(bytes, e))
            .collect();
        if let Some(id) = heuristic::inline_message_id(&joined) {
            report.original_message_id = Some(id);
        }
    }
    Ok(report)
}

/// The leaf entities with their lower-case content types, depth first, and
/// the report-type of the first multipart/report.
fn collect<'e, 'x>(
    entity: &'e Entity<'x>,
    leaves: &mut Vec<(String, &'e Entity<'x>)>,
    report_type: &mut Option<String>,
) {
    let mut stack = vec![entity];
    while let Some(e) = stack.pop() {
        let ct = content_type(e);
        if ct == "multipart/report" && report_type.is_none() {
            *report_type = Some(
                mail_parser::MimeHeaders::content_type(&e.head)
                    .and_then(|c| c.attribute("report-type"))
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase(),
            );
        }
        if e.multipart {
            stack.extend(e.children.iter().rev());
        } else {
            leaves.push((ct, e));
        }
    }
}

fn content_type(e: &Entity<'_>) -> String {
    match mail_parser::MimeHeaders::content_type(&e.head) {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => "text/plain".into(),
    }
}

/// The entity's body after transfer decoding, as text (invalid UTF-8 replaced).
fn decoded_text(input: &[u8], e: &Entity<'_>) -> String {
    let body = input.get(e.body.clone()).unwrap_or_default();
    let cte = mail_parser::MimeHeaders::content_transfer_encoding(&e.head)
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let decoded = match cte.as_str() {
        "base64" => lenient_base64(body).0,
        "quoted-printable" => quoted_printable(body),
        _ => body.to_vec(),
    };
    String::from_utf8_lossy(&decoded).into_owned()
}

fn owned(value: Option<&str>) -> Option<String> {
    value.map(str::to_string).filter(|v| !v.is_empty())
}

/// The body of a message/delivery-status part.
fn delivery(text: &str) -> Report {
    let mut report = Report::new(ReportKind::Delivery);
    let (groups, skipped) = fields::groups(text);
    if skipped > 0 {
        report.warnings.push(format!(
            "delivery-status: {skipped} line(s) that are not fields skipped"
        ));
    }
    let mut groups = groups.into_iter().peekable();
    let per_message = groups.next_if(|g| g.get("Final-Recipient").is_none());
    match &per_message {
        Some(g) => {
            report.reporting_mta = g.get("Reporting-MTA").map(fields::untyped);
            report.original_envelope_id = owned(g.get("Original-Envelope-Id"));
            report.arrival_date = owned(g.get("Arrival-Date"));
            if report.reporting_mta.is_none() {
                report
                    .warnings
                    .push("delivery-status: no Reporting-MTA".into());
            }
        }
        None => report
            .warnings
            .push("delivery-status: no per-message fields (Reporting-MTA)".into()),
    }
    for (n, g) in groups.enumerate() {
        report
            .recipients
            .push(recipient(n + 1, &g, &mut report.warnings));
    }
    if report.recipients.is_empty() {
        report
            .warnings
            .push("delivery-status: no recipient fields".into());
    }
    report
}

fn recipient(n: usize, g: &Group, warnings: &mut Vec<String>) -> RecipientStatus {
    let final_recipient = g.get("Final-Recipient").map(fields::untyped);
    if final_recipient.is_none() {
        warnings.push(format!(
            "delivery-status: recipient {n} has no Final-Recipient"
        ));
    }
    let action = match g.get("Action") {
        None => {
            warnings.push(format!("delivery-status: recipient {n} has no Action"));
            None
        }
        Some(v) => {
            let a = Action::from_field(v);
            if a.is_none() {
                warnings.push(format!(
                    "delivery-status: recipient {n}: unknown Action \"{v}\""
                ));
            }
            a
        }
    };
    // `5.0.0 (permanent failure)`: the code, without the comment; a value
    // that is no RFC 3463 code is dropped, and named in the warning.
    let status = match g.get("Status") {
        None => {
            warnings.push(format!("delivery-status: recipient {n} has no Status"));
            None
        }
        Some(v) => {
            let code = v.split_whitespace().next().unwrap_or("");
            if heuristic::is_status_code(code) {
                Some(code.to_string())
            } else {
                warnings.push(format!(
                    "delivery-status: recipient {n}: malformed Status \"{v}\" dropped"
                ));
                None
            }
        }
    };
    RecipientStatus {
        final_recipient,
        original_recipient: g.get("Original-Recipient").map(fields::untyped),
        action,
        status,
        diagnostic_code: g.get("Diagnostic-Code").map(fields::untyped),
        remote_mta: g.get("Remote-MTA").map(fields::untyped),
        last_attempt_date: owned(g.get("Last-Attempt-Date")),
    }
}

/// The body of a message/feedback-report part.
fn feedback(text: &str) -> Report {
    let mut report = Report::new(ReportKind::Feedback);
    let (groups, skipped) = fields::groups(text);
    if skipped > 0 {
        report.warnings.push(format!(
            "feedback-report: {skipped} line(s) that are not fields skipped"
        ));
    }
    // One block in the RFC; read every group as one, should a sender split it.
    let all = Group {
        fields: groups.into_iter().flat_map(|g| g.fields).collect(),
    };
    let fb = Feedback {
        feedback_type: owned(all.get("Feedback-Type")),
        user_agent: owned(all.get("User-Agent")),
        version: owned(all.get("Version")),
        original_mail_from: all.get("Original-Mail-From").map(fields::untyped),
        original_rcpt_to: all.all("Original-Rcpt-To").map(fields::untyped).collect(),
        arrival_date: owned(all.get("Arrival-Date").or_else(|| all.get("Received-Date"))),
        source_ip: owned(all.get("Source-IP")),
        reported_domain: all.all("Reported-Domain").map(str::to_string).collect(),
    };
    for (name, value) in [
        ("Feedback-Type", &fb.feedback_type),
        ("User-Agent", &fb.user_agent),
        ("Version", &fb.version),
    ] {
        if value.is_none() {
            report.warnings.push(format!("feedback-report: no {name}"));
        }
    }
    report.feedback = Some(fb);
    report
}

/// The returned original (a message or its header block).
fn original(report: &mut Report, text: &str) {
    let head = fields::header_block(text);
    report.original_message_id = owned(head.get("Message-ID"));
    report.original_headers = head.fields;
    if report.original_headers.is_empty() {
        report
            .warnings
            .push("the returned original message has no header fields".into());
    }
}
