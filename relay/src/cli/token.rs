//! `postwire token add NAME --data-dir DIR [--allow-from ADDRESS|@DOMAIN]...`:
//! creates a relay token, prints its secret once, stores only its hash.
//! `postwire token list --data-dir DIR [--json]`: shows the tokens (never a
//! secret, only a prefix of each hash). `postwire token remove NAME --data-dir
//! DIR`: removes one; a running relay drops it within a second or on SIGHUP.
//!
//! With `--spool postgres://...` (or `POSTWIRE_SPOOL_URL`, password from
//! `POSTWIRE_SPOOL_PASSWORD` or `--spool-password-file`) instead of
//! `--data-dir`, the same commands work on the token table shared by every
//! relay on that database (`spool::pg::tokens`), after applying the
//! migrations; the output is the same.

use std::io::Write as _;
use std::path::PathBuf;

use crate::cli::CliError;
use crate::cli::store_args::{Location, StoreArgs};
use crate::spool::pg::tokens::PgTokens;
use crate::token::{self, DEFAULT_MAX_SIZE, DEFAULT_RATE_PER_MINUTE, TokenRecord, TokenSummary};

/// The store, opened.
enum Opened {
    File(PathBuf),
    Database(PgTokens, tokio::runtime::Runtime),
}

/// Opens the tokens of `store`.
fn open(store: StoreArgs) -> Result<Opened, CliError> {
    match store.locate()? {
        Location::Database(url) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let db = rt.block_on(PgTokens::connect(&url))?;
            Ok(Opened::Database(db, rt))
        }
        Location::Dir(dir) => Ok(Opened::File(dir)),
    }
}

impl Opened {
    /// Where the tokens are, for messages.
    fn describe(&self) -> String {
        match self {
            Opened::File(dir) => dir.join(token::TOKENS_FILE).display().to_string(),
            Opened::Database(db, _) => format!("the database {}", db.origin()),
        }
    }

    fn add(
        &self,
        name: &str,
        allow_from: &[String],
        max_size: u64,
        rate: u32,
    ) -> Result<String, CliError> {
        Ok(match self {
            Opened::File(dir) => token::add(dir, name, allow_from, max_size, rate)?,
            Opened::Database(db, rt) => rt.block_on(db.add(name, allow_from, max_size, rate))?,
        })
    }

    fn list(&self) -> Result<Vec<TokenRecord>, CliError> {
        Ok(match self {
            Opened::File(dir) => token::list(dir)?,
            Opened::Database(db, rt) => rt.block_on(db.list())?,
        })
    }

    fn remove(&self, name: &str) -> Result<TokenRecord, CliError> {
        Ok(match self {
            Opened::File(dir) => token::remove(dir, name)?,
            Opened::Database(db, rt) => rt.block_on(db.remove(name))?,
        })
    }
}

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
        /// Where the tokens are.
        #[command(flatten)]
        store: StoreArgs,
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
        /// Where the tokens are.
        #[command(flatten)]
        store: StoreArgs,
        /// Print a JSON array of {name, allowFrom, maxSize, ratePerMinute, hashPrefix}.
        #[arg(long)]
        json: bool,
    },
    /// Remove a token; a running relay refuses it from then on.
    Remove {
        /// Name of the token.
        name: String,
        /// Where the tokens are.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs `postwire token ...`.
pub fn run(args: Args) -> Result<(), CliError> {
    match args.action {
        Action::Add {
            name,
            store,
            allow_from,
            max_size,
            rate,
        } => {
            let store = open(store)?;
            if allow_from.is_empty() {
                eprintln!(
                    "postwire: warning: no --allow-from: this token cannot send until one is added"
                );
            }
            let secret = store.add(&name, &allow_from, max_size, rate)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{secret}")?;
            eprintln!(
                "postwire: token {name:?} added to {}; the secret above is shown only once",
                store.describe()
            );
            Ok(())
        }
        Action::List { store, json } => {
            let store = open(store)?;
            let summaries: Vec<TokenSummary> =
                store.list()?.iter().map(TokenSummary::from).collect();
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&summaries)?)?;
            } else {
                for s in &summaries {
                    writeln!(out, "{s}")?;
                }
            }
            if summaries.is_empty() {
                eprintln!("postwire: no tokens in {}", store.describe());
            }
            Ok(())
        }
        Action::Remove { name, store } => {
            let store = open(store)?;
            store.remove(&name)?;
            let reach = match store {
                Opened::File(_) => "a running relay refuses it within a second",
                Opened::Database(..) => "every relay on it refuses it within a second or two",
            };
            eprintln!(
                "postwire: token {name:?} removed from {}; {reach}",
                store.describe()
            );
            Ok(())
        }
    }
}
