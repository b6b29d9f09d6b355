//! `postwire report parse FILE`: a received delivery status notification
//! (RFC 3464), abuse report (RFC 5965 ARF) or non-standard bounce, read by
//! `postwire_core::report`, printed as JSON. Warnings go to stderr too; the
//! exit status is non-zero only when the input is not a message at all, or,
//! with `--strict`, when anything needed a heuristic or a warning.

use std::path::PathBuf;

use clap::Subcommand;

use super::{CliError, io};

/// Delivery and abuse reports.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: ReportCommand,
}

/// The `report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Read a report (.eml) and print it as JSON.
    Parse(ParseArgs),
}

/// Arguments of `postwire report parse`.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// The report message; `-` reads stdin.
    pub message: PathBuf,
    /// Write the JSON here instead of stdout.
    #[arg(short, long, value_name = "OUT.json")]
    pub output: Option<PathBuf>,
    /// Exit non-zero when the report was read by a heuristic or with warnings.
    #[arg(long)]
    pub strict: bool,
}

/// Runs `postwire report`.
pub fn run(args: Args) -> Result<(), CliError> {
    match args.command {
        ReportCommand::Parse(args) => parse(args),
    }
}

fn parse(args: ParseArgs) -> Result<(), CliError> {
    let name = args.message.display();
    let bytes = io::read_input(&args.message)?;
    let report = postwire_core::report::parse_report(&bytes).map_err(|e| format!("{name}: {e}"))?;
    for w in &report.warnings {
        eprintln!("postwire: warning: {name}: {w}");
    }
    if args.strict && (report.heuristic || !report.warnings.is_empty()) {
        return Err(format!(
            "{name}: strict mode: {} warning(s){}",
            report.warnings.len(),
            if report.heuristic {
                ", recipients read by a heuristic"
            } else {
                ""
            }
        )
        .into());
    }
    let mut json = serde_json::to_string_pretty(&report)
        .map_err(|e| format!("{name}: serialising the report: {e}"))?;
    json.push('\n');
    io::write_output(args.output.as_deref(), json.as_bytes())
}
