//! `postwire send FILE...` and `postwire send --bulk DIR`: sends spec JSON
//! (`.json`, built with core) or finished messages (`.eml` and anything else,
//! sent byte for byte) over SMTP or into a pickup directory. The envelope
//! comes from the message (Sender/From, To+Cc+Bcc) unless `--from`/`--to` say
//! otherwise. `--bulk` spreads a folder over the connections with a progress
//! bar and prints a summary. With `--dkim-dir DIR` each message is
//! DKIM-signed with the keys of its From domain (`DIR/DOMAIN/SELECTOR.key`)
//! as it is prepared; a message whose domain has no key goes unsigned.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use indicatif::{ProgressBar, ProgressStyle};
use postwire_core::{build::build, spec::from_json};

use crate::delivery::{BulkProgress, Content, Outgoing};
use crate::smtp::Envelope;

use super::{
    CliError,
    envelope_args::{self, EnvelopeArgs, ResultError},
    io,
    smtp_args::{AnyResult, Delivery, SmtpArgs, runtime},
};

/// Send messages (spec JSON or .eml files) over SMTP or into a pickup directory.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Messages to send: spec JSON (*.json) or RFC 5322 messages (*.eml, any other name).
    #[arg(value_name = "FILE", required_unless_present = "bulk")]
    pub files: Vec<PathBuf>,
    /// Send every *.eml and *.json file in DIR, spread over the connections.
    #[arg(long, value_name = "DIR", conflicts_with = "files")]
    pub bulk: Option<PathBuf>,
    /// Envelope sender (MAIL FROM) instead of the message's Sender or From.
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// Envelope recipient (RCPT TO) instead of the message's To, Cc and Bcc; repeatable.
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// DSN, REQUIRETLS and JSON output.
    #[command(flatten)]
    pub envelope: EnvelopeArgs,
    /// DKIM-sign with the keys in DIR (DIR/DOMAIN/SELECTOR.key, as `postwire
    /// dkim keygen --dkim-dir DIR` writes them; a relay's is DATA_DIR/dkim).
    /// Signed messages are held in memory until sent.
    #[arg(long, env = "POSTWIRE_DKIM_DIR", value_name = "DIR")]
    pub dkim_dir: Option<PathBuf>,
    /// Where to deliver.
    #[command(flatten)]
    pub smtp: SmtpArgs,
}

/// A message ready to go, or why it is not.
struct Prepared {
    path: PathBuf,
    message: Result<Outgoing, String>,
}

/// Runs `postwire send`.
pub fn run(args: Args) -> Result<(), CliError> {
    let files = match &args.bulk {
        Some(dir) => bulk_files(dir)?,
        None => args.files.clone(),
    };
    if files.is_empty() {
        return Err("nothing to send".into());
    }
    args.envelope.validate()?;
    let destination = args.smtp.destination()?;
    let signer = args.dkim_dir.as_ref().map(crate::dkim::Signer::with_dir);
    let prepared: Vec<Prepared> = files
        .into_iter()
        .map(|path| Prepared {
            message: prepare(&path, args.from.as_deref(), &args.to, &args.envelope)
                .and_then(|m| sign(m, signer.as_ref(), &path)),
            path,
        })
        .collect();
    if let Some(s) = &signer {
        let stats = s.stats();
        let unsigned = stats.unsigned.load(std::sync::atomic::Ordering::Relaxed);
        if unsigned > 0 {
            eprintln!(
                "postwire: {unsigned} message(s) have no DKIM key for their From domain in {} and go unsigned",
                s.dir().map(|d| d.display().to_string()).unwrap_or_default()
            );
        }
    }

    runtime()?.block_on(async {
        let delivery = Delivery::open(destination).await?;
        let start = Instant::now();
        let ready: Vec<Outgoing> = prepared
            .iter()
            .filter_map(|p| p.message.as_ref().ok().cloned())
            .collect();
        let mut progress = Progress::new(
            ready.len(),
            args.bulk.is_some() && !args.quiet && !args.envelope.json,
        );
        let results = delivery.send_bulk(ready, |p| progress.update(p)).await;
        progress.finish();
        let elapsed = start.elapsed();
        let connections = delivery.connections();
        delivery.close().await;
        summarize(
            &prepared,
            results,
            args.bulk.is_some(),
            args.envelope.json,
            elapsed.as_secs_f64(),
            connections,
        )
    })
}

/// The *.eml and *.json files of a folder, sorted; says how many others it skipped.
pub(super) fn bulk_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("--bulk {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    let mut skipped = 0usize;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("--bulk {}: {e}", dir.display()))?
            .path();
        let wanted = path.is_file()
            && !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            && path
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("eml") || x.eq_ignore_ascii_case("json"));
        if wanted {
            files.push(path);
        } else {
            skipped += 1;
        }
    }
    files.sort();
    if skipped > 0 {
        eprintln!(
            "postwire: --bulk {}: skipping {skipped} entr{} that are not *.eml or *.json files",
            dir.display(),
            if skipped == 1 { "y" } else { "ies" }
        );
    }
    Ok(files)
}

/// Reads one file into a message and its envelope.
fn prepare(
    path: &Path,
    from: Option<&str>,
    to: &[String],
    requests: &EnvelopeArgs,
) -> Result<Outgoing, String> {
    let is_json = path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("json"));
    // The envelope is derived from the message only when --from/--to do not give all of it.
    let need_derived = from.is_none() || to.is_empty();
    let bytes = if is_json || need_derived {
        std::fs::read(path).map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    let mut spec_requests = None;
    let (message, derived) = if is_json {
        let text = String::from_utf8(bytes).map_err(|_| "spec JSON is not UTF-8".to_string())?;
        let spec = from_json(&text).map_err(|e| e.to_string())?;
        let message = build(&spec, &io::build_options(None, None)).map_err(|e| e.to_string())?;
        let envelope = need_derived.then(|| Envelope::of_spec(&spec).map_err(|e| e.to_string()));
        spec_requests = Some((spec.dsn.clone(), spec.require_tls));
        (message, envelope)
    } else {
        let envelope =
            need_derived.then(|| Envelope::of_message(&bytes).map_err(|e| e.to_string()));
        (Vec::new(), envelope)
    };
    let derived = || {
        derived
            .clone()
            .unwrap_or_else(|| Err("no envelope".to_string()))
    };
    let envelope = match (from, to.is_empty()) {
        (Some(from), false) => Envelope::new(from, to).map_err(|e| e.to_string())?,
        (None, false) => {
            let sender = derived()
                .map_err(|e| format!("{e} (give --from)"))?
                .mail_from;
            Envelope::new(&sender, to).map_err(|e| e.to_string())?
        }
        (Some(from), true) => {
            let rcpts = derived().map_err(|e| format!("{e} (give --to)"))?.rcpt_to;
            Envelope::new(from, &rcpts).map_err(|e| e.to_string())?
        }
        (None, true) => derived()?,
    };
    let mut envelope = envelope;
    // The spec's own requests hold whatever gave the addresses.
    if let Some((dsn, require_tls)) = spec_requests {
        if let Some(dsn) = dsn {
            dsn.validate().map_err(|e| e.to_string())?;
            envelope.dsn = Some(dsn);
        }
        envelope.require_tls |= require_tls;
    }
    requests.apply(&mut envelope).map_err(|e| e.to_string())?;
    // A finished message stays on disk until its worker sends it, so a bulk
    // folder costs memory per connection, not per message.
    let content = if is_json {
        Content::Bytes(Arc::from(message))
    } else {
        Content::File(path.to_owned())
    };
    Ok(Outgoing { envelope, content })
}

/// A message the pool answered nothing for (it was shut down).
#[derive(Debug, thiserror::Error)]
#[error("no result")]
struct NoResult;

impl crate::delivery::Failure for NoResult {
    fn is_transient(&self) -> bool {
        true
    }
}

/// DKIM-signs a prepared message when a signer is given.
fn sign(
    message: Outgoing,
    signer: Option<&crate::dkim::Signer>,
    path: &Path,
) -> Result<Outgoing, String> {
    let Some(signer) = signer else {
        return Ok(message);
    };
    let bytes: Arc<[u8]> = match &message.content {
        Content::Bytes(b) => Arc::clone(b),
        Content::File(p) => Arc::from(std::fs::read(p).map_err(|e| e.to_string())?),
    };
    let id = path.display().to_string();
    match signer.apply(&bytes, &id).map_err(|e| e.to_string())? {
        Some(signed) => Ok(Outgoing {
            envelope: message.envelope,
            content: Content::Bytes(Arc::from(signed)),
        }),
        None => Ok(message),
    }
}

/// A progress bar on a terminal, a line per tenth otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    next_line: usize,
}

impl Progress {
    fn new(total: usize, show: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (show && tty).then(|| {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            plain: show && !tty,
            next_line: total.div_ceil(10).max(1),
        }
    }

    fn update(&mut self, p: &BulkProgress) {
        if let Some(bar) = &self.bar {
            bar.set_position(p.done as u64);
            let seconds = bar.elapsed().as_secs_f64();
            let rate = if seconds > 0.0 {
                p.done as f64 / seconds
            } else {
                0.0
            };
            bar.set_message(format!("{rate:.0} msg/s, {} failed", p.failed));
        } else if self.plain && (p.done >= self.next_line || p.done == p.total) {
            eprintln!("progress: {}/{} sent, {} failed", p.done, p.total, p.failed);
            self.next_line = p.done + p.total.div_ceil(10).max(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[allow(clippy::print_stdout)]
fn summarize(
    prepared: &[Prepared],
    results: Vec<AnyResult>,
    bulk: bool,
    json: bool,
    seconds: f64,
    connections: usize,
) -> Result<(), CliError> {
    let mut results = results.into_iter();
    let (mut delivered, mut failed, mut accepted, mut refused) = (0usize, 0usize, 0usize, 0usize);
    let mut out = Vec::new();
    for p in prepared {
        let name = p.path.display();
        let own = match &p.message {
            Err(e) => Err(e.clone()),
            Ok(_) => Ok(results
                .next()
                .unwrap_or_else(|| Err(Box::new(NoResult) as crate::delivery::BoxedFailure))),
        };
        if json {
            let file = name.to_string();
            out.push(match &own {
                Ok(r) => envelope_args::result_json(&file, envelope_args::as_result(r)),
                Err(text) => envelope_args::result_json(&file, Err(ResultError::Text(text))),
            });
        }
        let result = match own {
            Err(e) => Err(e),
            Ok(Ok(report)) => Ok(report),
            Ok(Err(e)) => Err(e.to_string()),
        };
        match result {
            Ok(report) => {
                delivered += 1;
                accepted += report.accepted().count();
                for r in report.rejected() {
                    refused += 1;
                    eprintln!("postwire: {name}: {} refused: {}", r.recipient, r.reply);
                }
                for w in &report.warnings {
                    eprintln!("postwire: {name}: warning: {w}");
                }
                if !bulk && !json {
                    println!(
                        "{name}: {} ({} of {} recipient(s) accepted)",
                        report.reply,
                        report.accepted().count(),
                        report.recipients.len()
                    );
                    for line in envelope_args::report_lines(&report) {
                        println!("{line}");
                    }
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("postwire: {name}: {e}");
            }
        }
    }
    let total = prepared.len();
    if json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if bulk || total > 1 {
        let rate = if seconds > 0.0 {
            delivered as f64 / seconds
        } else {
            0.0
        };
        println!(
            "delivered {delivered} of {total} messages ({accepted} recipients accepted, \
             {refused} refused), {failed} failed, in {seconds:.2} s ({rate:.0} messages/s \
             over {connections} connection(s))"
        );
    }
    match (failed, refused) {
        (0, 0) => Ok(()),
        (0, r) => Err(format!("{r} recipient(s) refused").into()),
        (f, _) => Err(format!("{f} of {total} message(s) failed").into()),
    }
}
