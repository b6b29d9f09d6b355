//! `postwire build SPEC.json [-o OUT.eml]`: a message spec to RFC 5322 bytes.

use std::path::PathBuf;

use super::{CliError, io};

/// Build a message (.eml) from a spec (JSON).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  postwire build spec.json -o out.eml\n  echo '{\"from\":\"a@example.com\",\"to\":[\"b@example.com\"],\"text\":\"hi\"}' | postwire build -"
)]
pub struct Args {
    /// The spec as JSON; `-` reads stdin.
    pub spec: PathBuf,
    /// Where to write the message; `-` or none writes stdout.
    #[arg(short, long, value_name = "OUT.eml")]
    pub output: Option<PathBuf>,
    /// Unix seconds used for Date when the spec has no `date` (default: now).
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<i64>,
    /// Seed for the message id and MIME boundaries (default: random); fix it for reproducible bytes.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Runs `postwire build`.
pub fn run(args: Args) -> Result<(), CliError> {
    let spec = io::read_spec(&args.spec)?;
    let bytes = postwire_core::build(&spec, &io::build_options(args.now, args.seed))
        .map_err(|e| format!("{}: {e}", args.spec.display()))?;
    io::write_output(args.output.as_deref(), &bytes)
}
