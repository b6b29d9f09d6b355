//! `postwire suppression list --data-dir DIR [--json]`: the recipients each
//! token may no longer send to (hard bounces, complaints).
//! `postwire suppression remove ADDRESS --data-dir DIR [--token NAME]`: lifts
//! a suppression (of one token, or of all); a running relay sees the change
//! at the next submission.

use std::io::Write as _;
use std::path::PathBuf;

use crate::bounces::suppress::{FileSuppressions, SuppressionStore};
use crate::cli::{CliError, Exit};

/// Arguments of `postwire suppression`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// Suppression subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List the suppressed recipients: token, address, reason, date, detail.
    List {
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
        /// Print a JSON array of {token, address, reason, detail, messageId, at}.
        #[arg(long)]
        json: bool,
    },
    /// Let a token (or every token) send to an address again.
    Remove {
        /// The recipient address.
        address: String,
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
        /// Only for this token [default: every token].
        #[arg(long, value_name = "NAME")]
        token: Option<String>,
    },
}

/// Runs `postwire suppression ...`.
pub fn run(args: Args) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match args.action {
        Action::List { data_dir, json } => {
            let list = FileSuppressions::open(&data_dir)?.list()?;
            if json {
                let items: Vec<serde_json::Value> = list
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "token": s.token,
                            "address": s.address,
                            "reason": s.reason,
                            "detail": s.detail,
                            "messageId": s.message_id,
                            "at": crate::bounces::rfc3339(s.at_ms),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&items)?)?;
            } else if list.is_empty() {
                writeln!(out, "no suppressed recipients")?;
            } else {
                for s in &list {
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}",
                        s.token,
                        s.address,
                        s.reason,
                        crate::bounces::rfc3339(s.at_ms),
                        s.detail
                    )?;
                }
            }
        }
        Action::Remove {
            address,
            data_dir,
            token,
        } => {
            let n = FileSuppressions::open(&data_dir)?.remove(&address, token.as_deref())?;
            if n == 0 {
                return Err(Box::new(Exit::new(
                    1,
                    format!(
                        "{address} is not suppressed{}",
                        token.map(|t| format!(" for token {t}")).unwrap_or_default()
                    ),
                )));
            }
            writeln!(
                out,
                "removed {n} suppression{} of {address}",
                if n == 1 { "" } else { "s" }
            )?;
        }
    }
    Ok(())
}
