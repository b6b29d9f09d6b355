//! `postwire admin-token add NAME --data-dir DIR`: creates an admin token
//! (for the admin API and `postwire queue --relay`), prints its secret once,
//! stores only its hash in `DATA_DIR/admin-tokens.toml`.
//! `postwire admin-token list|remove NAME --data-dir DIR`.

use std::io::Write as _;
use std::path::PathBuf;

use crate::admin::tokens::{self, ADMIN_TOKENS_FILE};
use crate::cli::CliError;

/// Arguments of `postwire admin-token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// Admin token subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Create an admin token; its secret is printed once on stdout.
    Add {
        /// Name of the token (A-Z a-z 0-9 . _ -), logged with every action.
        name: String,
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// List the admin tokens (names and a prefix of each hash).
    List {
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
        /// Print a JSON array of {name, hashPrefix}.
        #[arg(long)]
        json: bool,
    },
    /// Remove an admin token; the relay refuses it from the next request on.
    Remove {
        /// Name of the token.
        name: String,
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
    },
}

/// Runs `postwire admin-token ...`.
pub fn run(args: Args) -> Result<(), CliError> {
    match args.action {
        Action::Add { name, data_dir } => {
            let secret = tokens::add(&data_dir, &name)?;
            writeln!(std::io::stdout().lock(), "{secret}")?;
            eprintln!(
                "postwire: admin token {name:?} added to {}; the secret above is shown only once",
                data_dir.join(ADMIN_TOKENS_FILE).display()
            );
            Ok(())
        }
        Action::List { data_dir, json } => {
            let list = tokens::list(&data_dir)?;
            let prefix = |h: &str| {
                h.trim_start_matches("sha256:")
                    .chars()
                    .take(8)
                    .collect::<String>()
            };
            let mut out = std::io::stdout().lock();
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|t| serde_json::json!({"name": t.name, "hashPrefix": prefix(&t.hash)}))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for t in &list {
                    writeln!(out, "{}\tsha256:{}…", t.name, prefix(&t.hash))?;
                }
            }
            if list.is_empty() {
                eprintln!(
                    "postwire: no admin tokens in {} (the admin API is off)",
                    data_dir.join(ADMIN_TOKENS_FILE).display()
                );
            }
            Ok(())
        }
        Action::Remove { name, data_dir } => {
            tokens::remove(&data_dir, &name)?;
            eprintln!(
                "postwire: admin token {name:?} removed from {}",
                data_dir.join(ADMIN_TOKENS_FILE).display()
            );
            Ok(())
        }
    }
}
