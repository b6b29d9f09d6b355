//! `postwire serve`: runs the relay (WebSocket submission, spool, delivery).

use crate::cli::CliError;
use crate::config::{ServeFlags, Settings};

/// Arguments of `postwire serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Every setting; see also POSTWIRE_* variables and --config.
    #[command(flatten)]
    pub flags: ServeFlags,
}

/// Starts the relay and runs it until SIGTERM or Ctrl-C.
pub fn run(args: Args) -> Result<(), CliError> {
    let settings = Settings::resolve(args.flags)?;
    init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(crate::server::ServeError::Runtime)?;
    rt.block_on(crate::server::serve(settings))?;
    Ok(())
}

/// Logs to stderr; the filter comes from POSTWIRE_LOG (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POSTWIRE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
