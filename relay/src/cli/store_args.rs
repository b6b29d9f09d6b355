//! Where `postwire token` and `postwire webhook` keep what they manage: a
//! relay's data directory (`--data-dir`, its files) or the PostgreSQL
//! spool's database (`--spool URL`, or `POSTWIRE_SPOOL_URL`, with the
//! password from `POSTWIRE_SPOOL_PASSWORD` or `--spool-password-file`),
//! shared by every relay on it. The database wins when both are given.

use std::path::PathBuf;

use crate::cli::CliError;
use crate::spool::pg::SpoolUrl;

/// `--data-dir DIR` or `--spool URL`.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The relay's data directory (its tokens.toml, webhooks.toml, ...).
    #[arg(
        long,
        env = "POSTWIRE_DATA_DIR",
        value_name = "DIR",
        required_unless_present = "spool"
    )]
    pub data_dir: Option<PathBuf>,
    /// The PostgreSQL spool's URL: what every relay on it shares (wins over
    /// --data-dir).
    #[arg(long, env = "POSTWIRE_SPOOL_URL", value_name = "URL")]
    pub spool: Option<String>,
    /// File holding the spool database's password (else POSTWIRE_SPOOL_PASSWORD).
    #[arg(long, env = "POSTWIRE_SPOOL_PASSWORD_FILE", value_name = "FILE")]
    pub spool_password_file: Option<PathBuf>,
}

/// Where, resolved.
#[derive(Debug)]
pub enum Location {
    /// A data directory.
    Dir(PathBuf),
    /// The spool's database.
    Database(Box<SpoolUrl>),
}

impl StoreArgs {
    /// The database when `--spool` (or its variable) is given, else the
    /// data directory.
    pub fn locate(self) -> Result<Location, CliError> {
        if let Some(url) =
            crate::config::spool_url(self.spool.as_deref(), self.spool_password_file.as_deref())?
        {
            return Ok(Location::Database(Box::new(url)));
        }
        match self.data_dir {
            Some(dir) => Ok(Location::Dir(dir)),
            None => Err("give --data-dir DIR or --spool URL".into()),
        }
    }
}
