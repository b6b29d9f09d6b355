//! `postwire token add NAME --data-dir DIR [--allow-from ADDRESS|@DOMAIN]...`:
//! creates a relay token, prints its secret once, stores only its hash.

use std::io::Write as _;
use std::path::PathBuf;

use crate::cli::CliError;
use crate::token::{self, DEFAULT_MAX_SIZE, DEFAULT_RATE_PER_MINUTE};

/// Arguments of `postwire token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// Token subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Create a token; its secret is printed once on stdout.
    Add {
        /// Name of the token (A-Z a-z 0-9 . _ -).
        name: String,
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
        /// Envelope sender the token may use: an address or @domain (repeatable).
        #[arg(long = "allow-from", value_name = "ADDRESS|@DOMAIN")]
        allow_from: Vec<String>,
        /// Largest message, in bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_SIZE)]
        max_size: u64,
        /// Most messages per minute.
        #[arg(long, default_value_t = DEFAULT_RATE_PER_MINUTE)]
        rate: u32,
    },
}

/// Runs `postwire token ...`.
pub fn run(args: Args) -> Result<(), CliError> {
    match args.action {
        Action::Add {
            name,
            data_dir,
            allow_from,
            max_size,
            rate,
        } => {
            if allow_from.is_empty() {
                eprintln!(
                    "postwire: warning: no --allow-from: this token cannot send until one is added"
                );
            }
            let secret = token::add(&data_dir, &name, &allow_from, max_size, rate)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{secret}")?;
            eprintln!(
                "postwire: token {name:?} added to {}; the secret above is shown only once",
                data_dir.join(token::TOKENS_FILE).display()
            );
            Ok(())
        }
    }
}
