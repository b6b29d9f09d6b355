//! `postwire forward MSG.eml --from A --to B [--to C]`: sends a saved message
//! byte for byte to new recipients through a new envelope, streaming it from
//! disk (memory does not grow with the file).

use std::path::PathBuf;

use crate::smtp::{Content, Envelope};

use super::{
    CliError,
    envelope_args::{self, EnvelopeArgs},
    smtp_args::{Delivery, SmtpArgs, runtime},
};

/// Forward a saved message, unchanged, to new recipients.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The message file (RFC 5322, e.g. .eml); sent exactly as it is.
    #[arg(value_name = "MSG")]
    pub message: PathBuf,
    /// Envelope sender (MAIL FROM).
    #[arg(long, value_name = "ADDR")]
    pub from: String,
    /// Envelope recipient (RCPT TO); repeat for more.
    #[arg(long, value_name = "ADDR", required = true)]
    pub to: Vec<String>,
    /// DSN, REQUIRETLS and JSON output.
    #[command(flatten)]
    pub envelope: EnvelopeArgs,
    /// Where to deliver.
    #[command(flatten)]
    pub smtp: SmtpArgs,
}

/// Runs `postwire forward`.
pub fn run(args: Args) -> Result<(), CliError> {
    let mut envelope = Envelope::new(&args.from, &args.to)?;
    args.envelope.apply(&mut envelope)?;
    let meta =
        std::fs::metadata(&args.message).map_err(|e| format!("{}: {e}", args.message.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", args.message.display()).into());
    }
    let destination = args.smtp.destination()?;
    runtime()?.block_on(async {
        let delivery = Delivery::open(destination).await?;
        let result = delivery
            .deliver(envelope, Content::File(args.message.clone()))
            .await;
        delivery.close().await;
        if args.envelope.json {
            let file = args.message.display().to_string();
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&envelope_args::result_json(
                        &file,
                        envelope_args::as_result(&result)
                    ))
                    .unwrap_or_default()
                );
            }
        }
        let report = result.map_err(|e| e.to_string())?;
        let refused: Vec<_> = report.rejected().collect();
        for w in &report.warnings {
            eprintln!("postwire: {}: warning: {w}", args.message.display());
        }
        #[allow(clippy::print_stdout)]
        if !args.envelope.json {
            println!(
                "{}: forwarded {} bytes to {} of {} recipient(s): {}",
                args.message.display(),
                report.bytes,
                report.accepted().count(),
                report.recipients.len(),
                report.reply
            );
            for line in envelope_args::report_lines(&report) {
                println!("{line}");
            }
        }
        for r in &refused {
            eprintln!("postwire: {}: refused: {}", r.recipient, r.reply);
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(format!("{} recipient(s) refused", refused.len()).into())
        }
    })
}
