//! Options of `postwire send` and `postwire forward` that go into the
//! envelope rather than the message: delivery status notifications (RFC 3461:
//! `--notify`, `--ret`, `--envid`, `--orcpt`) and `--require-tls` (RFC 8689);
//! and how results are shown: one line per recipient with its reply code,
//! enhanced status code and text, or `--json`.

use postwire_core::envelope::{Dsn, DsnRecipient, Envelope, Notify, Ret};
use serde_json::{Value, json};

use crate::delivery::{DeliveryReport, RecipientStatus, SmtpReply};

use super::{CliError, smtp_args::AnyResult};

/// Envelope requests for every message sent.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EnvelopeArgs {
    /// Ask for delivery status notifications (DSN): `never`, or a
    /// comma-separated list of `success`, `failure`, `delay`. Overrides the
    /// spec's `dsn.notify`.
    #[arg(long, value_name = "WHEN")]
    pub notify: Option<String>,
    /// What a failure notification returns: `full` message or `hdrs` (headers only).
    #[arg(long, value_name = "full|hdrs")]
    pub ret: Option<String>,
    /// Envelope id quoted back in notifications (printable ASCII, up to 100 characters).
    #[arg(long, value_name = "ID")]
    pub envid: Option<String>,
    /// Send each recipient's address as its original recipient (DSN ORCPT).
    #[arg(long)]
    pub orcpt: bool,
    /// Ask for REQUIRETLS (RFC 8689): only over TLS, and refused by a server
    /// that does not offer it.
    #[arg(long)]
    pub require_tls: bool,
    /// Print the results as JSON on stdout (code, enhanced status and text per recipient).
    #[arg(long)]
    pub json: bool,
}

impl EnvelopeArgs {
    /// Whether any DSN option was given.
    fn any_dsn(&self) -> bool {
        self.notify.is_some() || self.ret.is_some() || self.envid.is_some() || self.orcpt
    }

    /// Checks the options once, before anything is read or sent.
    pub fn validate(&self) -> Result<(), CliError> {
        let mut probe = Envelope::default();
        self.apply(&mut probe)
    }

    /// Puts the options into `envelope`, over what the message's spec asked for.
    pub fn apply(&self, envelope: &mut Envelope) -> Result<(), CliError> {
        if self.require_tls {
            envelope.require_tls = true;
        }
        if !self.any_dsn() {
            return Ok(());
        }
        let dsn = envelope.dsn.get_or_insert_with(Dsn::default);
        if let Some(n) = &self.notify {
            dsn.notify = parse_notify(n)?;
        }
        if let Some(r) = &self.ret {
            dsn.ret = Some(match r.to_ascii_lowercase().as_str() {
                "full" => Ret::Full,
                "hdrs" | "headers" => Ret::Hdrs,
                _ => return Err(format!("--ret {r:?}: expected full or hdrs").into()),
            });
        }
        if let Some(id) = &self.envid {
            dsn.envid = Some(id.clone());
        }
        if self.orcpt {
            for r in &envelope.rcpt_to {
                match dsn
                    .recipients
                    .iter_mut()
                    .find(|d| d.address.eq_ignore_ascii_case(r))
                {
                    Some(d) if d.orcpt.is_none() => d.orcpt = Some(r.clone()),
                    Some(_) => {}
                    None => dsn.recipients.push(DsnRecipient {
                        address: r.clone(),
                        notify: Vec::new(),
                        orcpt: Some(r.clone()),
                    }),
                }
            }
        }
        dsn.validate()
            .map_err(|e| format!("--notify/--ret/--envid: {e}"))?;
        Ok(())
    }
}

fn parse_notify(value: &str) -> Result<Vec<Notify>, CliError> {
    let mut out = Vec::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        out.push(match word.to_ascii_lowercase().as_str() {
            "never" => Notify::Never,
            "success" => Notify::Success,
            "failure" => Notify::Failure,
            "delay" => Notify::Delay,
            _ => {
                return Err(format!(
                    "--notify {value:?}: expected never, or a list of success, failure, delay"
                )
                .into());
            }
        });
    }
    if out.is_empty() {
        return Err("--notify: empty (give never, or success,failure,delay)".into());
    }
    Ok(out)
}

fn reply_json(reply: &SmtpReply) -> Value {
    json!({
        "code": reply.code,
        "enhanced": reply.enhanced.map(|e| e.to_string()),
        "text": reply.text,
    })
}

fn recipient_json(r: &RecipientStatus) -> Value {
    json!({
        "recipient": r.recipient,
        "accepted": r.is_accepted(),
        "code": r.reply.code,
        "enhanced": r.reply.enhanced.map(|e| e.to_string()),
        "text": r.reply.text,
    })
}

fn report_json(report: &DeliveryReport) -> Value {
    json!({
        "ok": true,
        "complete": report.is_complete(),
        "reply": reply_json(&report.reply),
        "bytes": report.bytes,
        "recipients": report.recipients.iter().map(recipient_json).collect::<Vec<_>>(),
        "warnings": report.warnings.iter().map(|w| json!({"code": w.code(), "text": w.to_string()})).collect::<Vec<_>>(),
    })
}

/// One message's result as JSON: `{"file", "ok": true, "reply", "recipients",
/// "warnings", ...}` or `{"file", "ok": false, "error", "transient", "reply"?,
/// "recipients"}`.
pub fn result_json(file: &str, result: Result<&DeliveryReport, ResultError<'_>>) -> Value {
    let mut v = match result {
        Ok(report) => report_json(report),
        Err(ResultError::Failure(e)) => json!({
            "ok": false,
            "error": e.to_string(),
            "transient": e.is_transient(),
            "reply": e.reply().map(reply_json),
            "recipients": e.refused_recipients().iter().map(recipient_json).collect::<Vec<_>>(),
        }),
        Err(ResultError::Text(text)) => json!({
            "ok": false,
            "error": text,
            "transient": false,
            "reply": null,
            "recipients": [],
        }),
    };
    if let Some(obj) = v.as_object_mut() {
        obj.insert("file".into(), Value::String(file.to_owned()));
    }
    v
}

/// Why a message has no report: a transport failure, or a problem found
/// before sending (unreadable file, bad spec).
#[derive(Debug)]
pub enum ResultError<'a> {
    /// The transport's failure.
    Failure(&'a dyn crate::delivery::Failure),
    /// Found before sending.
    Text(&'a str),
}

/// Borrows a result for [`result_json`].
pub fn as_result(result: &AnyResult) -> Result<&DeliveryReport, ResultError<'_>> {
    result
        .as_ref()
        .map_err(|e| ResultError::Failure(e.as_ref()))
}

/// The lines of a report for people: one per recipient (reply code, enhanced
/// status, text) and one per warning.
pub fn report_lines(report: &DeliveryReport) -> Vec<String> {
    let mut lines: Vec<String> = report
        .recipients
        .iter()
        .map(|r| {
            format!(
                "  {} {}: {}",
                if r.is_accepted() {
                    "accepted"
                } else {
                    "refused"
                },
                r.recipient,
                r.reply
            )
        })
        .collect();
    lines.extend(report.warnings.iter().map(|w| format!("  warning: {w}")));
    lines
}
