//! `postwire submit --relay wss://HOST/v1/submit FILE...` and `--bulk DIR`:
//! hands messages (spec JSON, built here, or finished `.eml` files, sent
//! byte for byte) to a running relay with [`RelayClient`], keeping its window
//! full, and prints what the relay answered per message and per recipient;
//! with `--wait`, waits for every recipient's final outcome. The token comes
//! from `--token-file` or `POSTWIRE_TOKEN` (never from an argument, which
//! other users of the machine can read). Exit status 1 when a message was
//! refused or a recipient failed (or, with `--wait`, was still not final).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressStyle};
use postwire_core::envelope::Envelope;
use serde_json::{Value, json};

use super::{CliError, Exit, io};
use crate::client::{
    ClientError, ClientEvent, ClientOptions, OutgoingMessage, RcptState, RelayClient,
};

/// Submit messages to a running postwire relay over its WebSocket protocol.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The relay's endpoint: wss://HOST/v1/submit (ws:// only to 127.0.0.1 or localhost).
    #[arg(long, value_name = "URL", env = "POSTWIRE_RELAY_URL")]
    pub relay: String,
    /// Messages: spec JSON (*.json, built here) or RFC 5322 messages (*.eml, any other name).
    #[arg(value_name = "FILE", required_unless_present = "bulk")]
    pub files: Vec<PathBuf>,
    /// Submit every *.eml and *.json file in DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "files")]
    pub bulk: Option<PathBuf>,
    /// A file holding the token's secret (default: the POSTWIRE_TOKEN variable).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Envelope sender instead of the message's Sender or From.
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// Envelope recipient instead of the message's To, Cc and Bcc; repeatable.
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,
    /// Wait until every recipient is delivered or failed (deferred ones are retried by the relay).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: stop waiting after SECS and report what is not final yet.
    #[arg(long, value_name = "SECS", requires = "wait")]
    pub wait_timeout: Option<u64>,
    /// Give up when the relay cannot be reached again for SECS after a lost connection.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub reconnect_timeout: u64,
    /// Also trust the certificates in this PEM file (a private CA) for wss://.
    #[arg(long, env = "POSTWIRE_RELAY_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What became of one file.
#[derive(Debug)]
struct Record {
    file: String,
    id: Option<String>,
    outcome: Outcome,
    rcpt_to: Vec<String>,
    states: HashMap<String, RcptState>,
    /// The relay no longer knows it: nothing more will come.
    forgotten: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Submitted, not answered yet.
    Pending,
    Accepted {
        duplicate: bool,
    },
    Rejected {
        code: String,
        message: String,
    },
    /// The file could not be read or built; it was not submitted.
    Unreadable(String),
}

impl Record {
    fn settled(&self) -> bool {
        if self.forgotten {
            return true;
        }
        match self.outcome {
            Outcome::Accepted { .. } => {
                !self.rcpt_to.is_empty()
                    && self
                        .rcpt_to
                        .iter()
                        .all(|r| self.states.get(r).is_some_and(RcptState::is_final))
            }
            Outcome::Pending => false,
            _ => true,
        }
    }
}

/// Reads the token: `--token-file`, else `POSTWIRE_TOKEN`.
fn token(args: &Args) -> Result<String, CliError> {
    let token = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("--token-file {}: {e}", path.display()))?,
        None => std::env::var("POSTWIRE_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or("no token: set POSTWIRE_TOKEN or give --token-file FILE")?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err("the token is empty".into());
    }
    Ok(token)
}

/// Reads and, for a spec, builds one file, with the envelope --from/--to ask for.
fn prepare(path: &Path, from: Option<&str>, to: &[String]) -> Result<OutgoingMessage, String> {
    let is_json = path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("json"));
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut message = if is_json {
        let text = String::from_utf8(bytes).map_err(|_| "spec JSON is not UTF-8".to_string())?;
        let spec = postwire_core::spec::from_json(&text).map_err(|e| e.to_string())?;
        OutgoingMessage::from_spec(&spec, &io::build_options(None, None))
            .map_err(|e| e.to_string())?
    } else {
        OutgoingMessage::new(bytes)
    };
    if from.is_some() || !to.is_empty() {
        let derived = match &message.envelope {
            Some(e) => Ok(e.clone()),
            None => Envelope::of_message(&message.bytes).map_err(|e| e.to_string()),
        };
        let mail_from = match from {
            Some(f) => f.to_string(),
            None => {
                derived
                    .clone()
                    .map_err(|e| format!("{e} (give --from)"))?
                    .mail_from
            }
        };
        let rcpt_to = if to.is_empty() {
            derived
                .clone()
                .map_err(|e| format!("{e} (give --to)"))?
                .rcpt_to
        } else {
            to.to_vec()
        };
        let mut envelope = Envelope::new(&mail_from, &rcpt_to).map_err(|e| e.to_string())?;
        if let Ok(d) = derived {
            envelope.dsn = d.dsn;
            envelope.require_tls = d.require_tls;
        }
        message.envelope = Some(envelope);
    }
    Ok(message)
}

/// Runs `postwire submit`.
pub fn run(args: Args) -> Result<(), CliError> {
    let files = match &args.bulk {
        Some(dir) => super::send::bulk_files(dir)?,
        None => args.files.clone(),
    };
    if files.is_empty() {
        return Err("nothing to submit".into());
    }
    let token = token(&args)?;
    super::smtp_args::runtime()?.block_on(submit(&args, files, token))
}

fn bar(len: usize, show: bool, what: &str) -> Option<ProgressBar> {
    (show && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(len as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(what.to_string());
        bar
    })
}

async fn submit(args: &Args, files: Vec<PathBuf>, token: String) -> Result<(), CliError> {
    let mut options =
        ClientOptions::new(token).give_up_after(Duration::from_secs(args.reconnect_timeout));
    if let Some(ca) = &args.ca_file {
        options = options.ca_file(ca);
    }
    let mut client = RelayClient::connect(&args.relay, options).await?;
    let mut events = client.take_events().ok_or("no event stream")?;
    let token_name = client.ready().token.clone();
    let limit = client.ready().window.max(1) * 2;
    let show = !args.quiet;

    let mut records: Vec<Record> = Vec::with_capacity(files.len());
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut pending = FuturesUnordered::new();
    let mut stopped: Option<String> = None;
    let progress = bar(files.len(), show, "submitting");
    let mut files = files.into_iter();
    let mut exhausted = false;
    loop {
        while !exhausted && pending.len() < limit {
            let Some(path) = files.next() else {
                exhausted = true;
                break;
            };
            let file = path.display().to_string();
            match prepare(&path, args.from.as_deref(), &args.to) {
                Ok(message) => {
                    let ticket = client.submit(message);
                    let id = ticket.id().to_string();
                    let i = records.len();
                    by_id.insert(id.clone(), i);
                    records.push(Record {
                        file,
                        id: Some(id),
                        outcome: Outcome::Pending,
                        rcpt_to: Vec::new(),
                        states: HashMap::new(),
                        forgotten: false,
                    });
                    pending.push(async move { (i, ticket.await) });
                }
                Err(e) => {
                    records.push(Record {
                        file,
                        id: None,
                        outcome: Outcome::Unreadable(e),
                        rcpt_to: Vec::new(),
                        states: HashMap::new(),
                        forgotten: false,
                    });
                    if let Some(b) = &progress {
                        b.inc(1);
                    }
                }
            }
        }
        if exhausted && pending.is_empty() {
            break;
        }
        tokio::select! {
            Some((i, answer)) = pending.next() => {
                let r = &mut records[i];
                match answer {
                    Ok(a) => {
                        r.outcome = Outcome::Accepted { duplicate: a.duplicate };
                        if r.rcpt_to.is_empty() {
                            r.rcpt_to = a.rcpt_to;
                        }
                    }
                    Err(ClientError::Rejected { code, message, .. }) => {
                        r.outcome = Outcome::Rejected { code, message };
                    }
                    Err(e) => {
                        r.outcome = Outcome::Rejected { code: e.code().to_string(), message: e.to_string() };
                    }
                }
                if let Some(b) = &progress {
                    b.inc(1);
                }
            }
            Some(event) = events.recv() => {
                if let Some(reason) = apply(&mut records, &by_id, event) {
                    stopped = Some(reason);
                }
            }
        }
    }
    if let Some(b) = &progress {
        b.finish_and_clear();
    }

    let mut timed_out = false;
    if args.wait && stopped.is_none() {
        let deadline = args
            .wait_timeout
            .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
        let unsettled = |records: &[Record]| records.iter().filter(|r| !r.settled()).count();
        let waiting = bar(unsettled(&records), show, "waiting for final outcomes");
        let total = unsettled(&records);
        while unsettled(&records) > 0 {
            let event = match deadline {
                Some(d) => match tokio::time::timeout_at(d, events.recv()).await {
                    Ok(e) => e,
                    Err(_) => {
                        timed_out = true;
                        break;
                    }
                },
                None => events.recv().await,
            };
            let Some(event) = event else { break };
            if let Some(reason) = apply(&mut records, &by_id, event) {
                stopped = Some(reason);
                break;
            }
            if let Some(b) = &waiting {
                b.set_position((total - unsettled(&records)) as u64);
            }
        }
        if let Some(b) = &waiting {
            b.finish_and_clear();
        }
    }
    // Events that came while the last answers were read.
    while let Ok(event) = events.try_recv() {
        apply(&mut records, &by_id, event);
    }
    drop(events);
    client.close().await;
    report(args, &token_name, &records, stopped.as_deref(), timed_out)
}

/// Records an event; returns the reason when the client stopped.
fn apply(
    records: &mut [Record],
    by_id: &HashMap<String, usize>,
    event: ClientEvent,
) -> Option<String> {
    let mut set = |id: &str, rcpt: String, state: RcptState| {
        if let Some(r) = by_id.get(id).and_then(|&i| records.get_mut(i)) {
            if r.states.get(&rcpt).is_some_and(RcptState::is_final) {
                return;
            }
            if !r.rcpt_to.contains(&rcpt) {
                r.rcpt_to.push(rcpt.clone());
            }
            r.states.insert(rcpt, state);
        }
    };
    match event {
        ClientEvent::Delivered { id, rcpt, response } => {
            set(&id, rcpt, RcptState::Delivered { response });
        }
        ClientEvent::Deferred {
            id,
            rcpt,
            reason,
            attempts,
            ..
        } => set(&id, rcpt, RcptState::Deferred { reason, attempts }),
        ClientEvent::Failed { id, rcpt, reason } => set(&id, rcpt, RcptState::Failed { reason }),
        ClientEvent::Settled { id, recipients } => {
            if let Some(r) = by_id.get(&id).and_then(|&i| records.get_mut(i)) {
                r.rcpt_to = recipients.iter().map(|s| s.rcpt.clone()).collect();
                r.states = recipients.into_iter().map(|s| (s.rcpt, s.state)).collect();
            }
        }
        ClientEvent::Forgotten { id } => {
            if let Some(r) = by_id.get(&id).and_then(|&i| records.get_mut(i)) {
                r.forgotten = true;
            }
        }
        ClientEvent::Stopped { reason, .. } => return Some(reason),
        _ => {}
    }
    None
}

fn state_json(rcpt: &str, state: Option<&RcptState>) -> Value {
    match state {
        None | Some(RcptState::Queued) => json!({"rcpt": rcpt, "state": "queued"}),
        Some(RcptState::Deferred { reason, attempts }) => {
            json!({"rcpt": rcpt, "state": "deferred", "reason": reason, "attempts": attempts})
        }
        Some(RcptState::Delivered { response }) => {
            json!({"rcpt": rcpt, "state": "delivered", "response": response})
        }
        Some(RcptState::Failed { reason }) => {
            json!({"rcpt": rcpt, "state": "failed", "reason": reason})
        }
        // Reports after delivery (docs/bounces.md), as the relay's status has them.
        Some(s @ (RcptState::Bounced { .. } | RcptState::Complained { .. })) => {
            let mut v = serde_json::to_value(s).unwrap_or_else(|_| json!({}));
            v["rcpt"] = json!(rcpt);
            v
        }
    }
}

fn state_text(state: Option<&RcptState>) -> String {
    match state {
        None | Some(RcptState::Queued) => "queued".into(),
        Some(RcptState::Deferred { reason, attempts }) => {
            format!("deferred after {attempts} attempt(s): {reason}")
        }
        Some(RcptState::Delivered { response }) => format!("delivered: {response}"),
        Some(RcptState::Failed { reason }) => format!("failed: {reason}"),
        Some(RcptState::Bounced {
            bounce,
            status,
            diagnostic,
            ..
        }) => format!(
            "delivered, then bounced ({bounce:?}, {status}{})",
            diagnostic
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ),
        Some(RcptState::Complained { feedback_type, .. }) => format!(
            "delivered, then complained ({})",
            feedback_type.as_deref().unwrap_or("abuse")
        ),
    }
}

#[derive(Debug, Default)]
struct Totals {
    messages: usize,
    accepted: usize,
    duplicate: usize,
    rejected: usize,
    queued: usize,
    deferred: usize,
    delivered: usize,
    failed: usize,
}

#[allow(clippy::print_stdout)]
fn report(
    args: &Args,
    token: &str,
    records: &[Record],
    stopped: Option<&str>,
    timed_out: bool,
) -> Result<(), CliError> {
    let bulk = args.bulk.is_some();
    let mut t = Totals {
        messages: records.len(),
        ..Totals::default()
    };
    let mut messages = Vec::new();
    for r in records {
        let (state, error) = match &r.outcome {
            Outcome::Accepted { duplicate: false } => ("accepted", None),
            Outcome::Accepted { duplicate: true } => ("duplicate", None),
            Outcome::Rejected { code, message } => {
                ("rejected", Some((code.as_str(), message.as_str())))
            }
            Outcome::Unreadable(e) => ("error", Some(("bad_input", e.as_str()))),
            Outcome::Pending => ("pending", None),
        };
        match &r.outcome {
            Outcome::Accepted { duplicate } => {
                t.accepted += 1;
                t.duplicate += usize::from(*duplicate);
            }
            _ => t.rejected += 1,
        }
        let mut recipients = Vec::new();
        let mut lines = Vec::new();
        for rcpt in &r.rcpt_to {
            let s = r.states.get(rcpt);
            match s {
                None | Some(RcptState::Queued) => t.queued += 1,
                Some(RcptState::Deferred { .. }) => t.deferred += 1,
                // A bounce or complaint comes after delivery: counted delivered.
                Some(
                    RcptState::Delivered { .. }
                    | RcptState::Bounced { .. }
                    | RcptState::Complained { .. },
                ) => t.delivered += 1,
                Some(RcptState::Failed { .. }) => t.failed += 1,
            }
            recipients.push(state_json(rcpt, s));
            let problem = !matches!(s, Some(RcptState::Delivered { .. }))
                && (args.wait
                    || matches!(
                        s,
                        Some(RcptState::Failed { .. } | RcptState::Deferred { .. })
                    ));
            if !bulk || problem {
                lines.push(format!("  {rcpt}: {}", state_text(s)));
            }
        }
        if args.json {
            let mut m =
                json!({"file": r.file, "id": r.id, "state": state, "recipients": recipients});
            if let Some((code, message)) = error {
                m["code"] = json!(code);
                m["message"] = json!(message);
            }
            if r.forgotten {
                m["forgotten"] = json!(true);
            }
            messages.push(m);
        } else {
            match error {
                Some((code, message)) => println!("{}: {state} ({code}): {message}", r.file),
                None if !bulk || !lines.is_empty() => {
                    println!("{}: {state} (id {})", r.file, r.id.as_deref().unwrap_or(""));
                }
                None => {}
            }
            for line in lines {
                println!("{line}");
            }
        }
    }
    if args.json {
        let out = json!({
            "relay": args.relay,
            "token": token,
            "waited": args.wait,
            "complete": !timed_out && stopped.is_none(),
            "messages": messages,
            "totals": {
                "messages": t.messages, "accepted": t.accepted, "duplicate": t.duplicate,
                "rejected": t.rejected, "queued": t.queued, "deferred": t.deferred,
                "delivered": t.delivered, "failed": t.failed,
            },
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if bulk || t.messages > 1 {
        println!(
            "{} message(s): {} accepted ({} duplicate), {} rejected; recipients: {} delivered, {} failed, {} deferred, {} queued",
            t.messages,
            t.accepted,
            t.duplicate,
            t.rejected,
            t.delivered,
            t.failed,
            t.deferred,
            t.queued
        );
    }
    if let Some(reason) = stopped {
        return Err(Exit::new(1, format!("the client stopped: {reason}")).into());
    }
    if t.rejected > 0 || t.failed > 0 {
        return Err(Exit::new(
            1,
            format!(
                "{} message(s) rejected, {} recipient(s) failed",
                t.rejected, t.failed
            ),
        )
        .into());
    }
    if args.wait && (t.deferred > 0 || t.queued > 0) {
        return Err(Exit::new(
            1,
            format!(
                "{} recipient(s) not final when waiting ended ({} deferred, {} queued)",
                t.deferred + t.queued,
                t.deferred,
                t.queued
            ),
        )
        .into());
    }
    Ok(())
}
