//! `postwire dkim keygen DOMAIN --selector S`: writes a new DKIM private key
//! (mode 0600) where the relay and `postwire send --dkim-dir` look for it,
//! `DIR/DOMAIN/SELECTOR.key`, and prints the DNS TXT record to publish. The
//! key itself is never printed.

use std::path::PathBuf;

use clap::Subcommand;

use super::CliError;
use crate::dkim::{self, Algorithm, SigningKey, key};

/// DKIM keys.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: DkimCommand,
}

/// The `dkim` subcommands.
#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Generate a key for DOMAIN and print the DNS record to publish.
    Keygen(KeygenArgs),
    /// Print the DNS record of an existing key.
    Record(RecordArgs),
}

/// Arguments of `postwire dkim keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// The signing domain (the domain of the From addresses).
    pub domain: String,
    /// The selector: the DNS record goes at SELECTOR._domainkey.DOMAIN.
    #[arg(long, short)]
    pub selector: String,
    /// Key type: rsa (understood everywhere) or ed25519 (RFC 8463).
    #[arg(long, short, value_enum, default_value = "rsa")]
    pub algorithm: Algorithm,
    /// RSA key size in bits (2048 to 4096).
    #[arg(long, default_value_t = 2048)]
    pub bits: usize,
    /// The relay's data directory: the key goes into DATA_DIR/dkim.
    #[arg(
        long,
        env = "POSTWIRE_DATA_DIR",
        value_name = "DIR",
        conflicts_with = "dkim_dir"
    )]
    pub data_dir: Option<PathBuf>,
    /// The key directory itself (as `postwire send --dkim-dir`); wins over --data-dir.
    #[arg(long, env = "POSTWIRE_DKIM_DIR", value_name = "DIR")]
    pub dkim_dir: Option<PathBuf>,
    /// Replace an existing key of this selector.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `postwire dkim record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The signing domain.
    pub domain: String,
    /// The selector.
    #[arg(long, short)]
    pub selector: String,
    /// The relay's data directory.
    #[arg(
        long,
        env = "POSTWIRE_DATA_DIR",
        value_name = "DIR",
        conflicts_with = "dkim_dir"
    )]
    pub data_dir: Option<PathBuf>,
    /// The key directory itself; wins over --data-dir.
    #[arg(long, env = "POSTWIRE_DKIM_DIR", value_name = "DIR")]
    pub dkim_dir: Option<PathBuf>,
}

fn key_dir(data_dir: Option<PathBuf>, dkim_dir: Option<PathBuf>) -> Result<PathBuf, CliError> {
    match (dkim_dir, data_dir) {
        (Some(d), _) => Ok(d),
        (None, Some(d)) => Ok(d.join("dkim")),
        (None, None) => Err(
            "where should the key go? give --data-dir DIR (the relay's) or --dkim-dir DIR".into(),
        ),
    }
}

/// Runs `postwire dkim`.
pub fn run(args: Args) -> Result<(), CliError> {
    match args.command {
        DkimCommand::Keygen(a) => keygen(a),
        DkimCommand::Record(a) => record(a),
    }
}

fn keygen(a: KeygenArgs) -> Result<(), CliError> {
    let domain = dkim::normalize_domain(&a.domain)?;
    dkim::check_selector(&a.selector)?;
    let path = dkim::key_path(&key_dir(a.data_dir, a.dkim_dir)?, &domain, &a.selector);
    if path.exists() && !a.force {
        return Err(dkim::DkimError::KeyExists(path).into());
    }
    let pem = key::generate(a.algorithm, a.bits)?;
    let parsed = SigningKey::from_pem(&pem, &path)?;
    key::write_key_file(&path, &pem, a.force)?;
    eprintln!(
        "postwire: wrote {} ({:?}); publish this record:",
        path.display(),
        parsed
    );
    print_record(&parsed, &domain, &a.selector);
    Ok(())
}

fn record(a: RecordArgs) -> Result<(), CliError> {
    let domain = dkim::normalize_domain(&a.domain)?;
    dkim::check_selector(&a.selector)?;
    let path = dkim::key_path(&key_dir(a.data_dir, a.dkim_dir)?, &domain, &a.selector);
    print_record(&SigningKey::load(&path)?, &domain, &a.selector);
    Ok(())
}

/// The zone-file line; values over 255 bytes are split into several strings.
#[allow(clippy::print_stdout)]
fn print_record(key: &SigningKey, domain: &str, selector: &str) {
    let value = key.dns_record();
    let strings: Vec<String> = value
        .as_bytes()
        .chunks(250)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    let name = format!("{selector}._domainkey.{domain}.");
    if strings.len() == 1 {
        println!("{name} IN TXT {}", strings[0]);
    } else {
        println!("{name} IN TXT ( {} )", strings.join(" "));
    }
}
