//! `postwire token add NAME --data-dir DIR [--allow-from ADDRESS|@DOMAIN]...`:
//! creates a relay token, prints its secret once, stores only its hash.
//! `postwire token list --data-dir DIR [--json]`: shows the tokens (never a
//! secret, only a prefix of each hash). `postwire token remove NAME --data-dir
//! DIR`: removes one; a running relay drops it within a second or on SIGHUP.

use std::io::Write as _;
use std::path::PathBuf;

use crate::cli::CliError;
use crate::token::{self, DEFAULT_MAX_SIZE, DEFAULT_RATE_PER_MINUTE, TokenSummary};

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
    /// List the tokens: name, allowed senders, limits, a prefix of the hash.
    List {
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
        /// Print a JSON array of {name, allowFrom, maxSize, ratePerMinute, hashPrefix}.
        #[arg(long)]
        json: bool,
    },
    /// Remove a token; a running relay refuses it from then on.
    Remove {
        /// Name of the token.
        name: String,
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
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
        Action::List { data_dir, json } => {
            let summaries: Vec<TokenSummary> = token::list(&data_dir)?
                .iter()
                .map(TokenSummary::from)
                .collect();
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&summaries)?)?;
            } else {
                for s in &summaries {
                    writeln!(out, "{s}")?;
                }
            }
            if summaries.is_empty() {
                eprintln!(
                    "postwire: no tokens in {}",
                    data_dir.join(token::TOKENS_FILE).display()
                );
            }
            Ok(())
        }
        Action::Remove { name, data_dir } => {
            token::remove(&data_dir, &name)?;
            eprintln!(
                "postwire: token {name:?} removed from {}; a running relay refuses it within a second",
                data_dir.join(token::TOKENS_FILE).display()
            );
            Ok(())
        }
    }
}
