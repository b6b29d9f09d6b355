//! `postwire parse IN.eml`: RFC 5322 bytes to the spec as JSON on stdout
//! (attachment content base64); what could not be kept is reported on stderr.

use std::path::PathBuf;

use super::{CliError, io};

/// Parse a message (.eml) and print its spec as JSON.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The message; `-` reads stdin.
    pub message: PathBuf,
    /// Write the JSON here instead of stdout.
    #[arg(short, long, value_name = "OUT.json")]
    pub output: Option<PathBuf>,
    /// Exit non-zero when the parser had to skip or repair anything.
    #[arg(long)]
    pub strict: bool,
}

/// Runs `postwire parse`.
pub fn run(args: Args) -> Result<(), CliError> {
    let bytes = io::read_input(&args.message)?;
    let parsed = postwire_core::parse::parse_with_warnings(&bytes)
        .map_err(|e| format!("{}: {e}", args.message.display()))?;
    for w in &parsed.warnings {
        eprintln!("postwire: warning: {}: {w}", args.message.display());
    }
    if args.strict && !parsed.warnings.is_empty() {
        return Err(format!(
            "{}: {} warning(s) in strict mode",
            args.message.display(),
            parsed.warnings.len()
        )
        .into());
    }
    let mut json = postwire_core::spec::to_json(&parsed.spec);
    json.push('\n');
    io::write_output(args.output.as_deref(), json.as_bytes())
}
