//! `postwire tnef`: TNEF (winmail.dat) from the command line.
//!
//! - `postwire tnef decode winmail.dat [--out DIR]` prints the message's
//!   attributes, MAPI properties, recipients and attachments as JSON; with
//!   `--out` it also writes each attachment and each body (body.txt,
//!   body.html, body.rtf) into DIR and lists them under `files`. A damaged
//!   file is read leniently: what could be read is printed, each fault is a
//!   warning on stderr (and under `warnings`); `--strict` refuses it instead.
//! - `postwire tnef encode SPEC.json -o winmail.dat` writes the winmail.dat
//!   that `postwire build` attaches for that spec with `"tnef": true`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use postwire_core::tnef::{self, TnefMessage};

use super::{CliError, io};

/// Decode or encode TNEF (winmail.dat).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The `postwire tnef` actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Print a winmail.dat as JSON; with --out, also extract its attachments and bodies.
    Decode {
        /// The winmail.dat; `-` reads stdin.
        input: PathBuf,
        /// Write the attachments and bodies into this directory (created if needed).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Refuse a damaged file (exit non-zero) instead of reading what can be read.
        #[arg(long)]
        strict: bool,
    },
    /// Write the winmail.dat of a spec (what `build` attaches with "tnef": true).
    Encode {
        /// The spec as JSON; `-` reads stdin.
        spec: PathBuf,
        /// Where to write the winmail.dat; `-` writes stdout.
        #[arg(short, long, value_name = "winmail.dat")]
        output: PathBuf,
        /// Unix seconds used as the date when the spec has no `date` (default: now).
        #[arg(long, value_name = "UNIX_SECONDS")]
        now: Option<i64>,
        /// Seed for the message id (the correlator) when the spec has none.
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// Runs `postwire tnef`.
pub fn run(args: Args) -> Result<(), CliError> {
    match args.action {
        Action::Decode { input, out, strict } => decode(&input, out.as_deref(), strict),
        Action::Encode {
            spec,
            output,
            now,
            seed,
        } => {
            let spec_value = io::read_spec(&spec)?;
            let bytes = tnef::spec::encode_spec(&spec_value, &io::build_options(now, seed))
                .map_err(|e| format!("{}: {e}", spec.display()))?;
            io::write_output(Some(&output), &bytes)
        }
    }
}

fn decode(input: &Path, out: Option<&Path>, strict: bool) -> Result<(), CliError> {
    let data = io::read_input(input)?;
    let tnef::Decoded { message, warnings } =
        tnef::decode_with(&data, tnef::DecodeOptions { strict })
            .map_err(|e| format!("{}: {e}", input.display()))?;
    for w in &warnings {
        eprintln!("postwire: warning: {}: {w}", input.display());
    }
    let files = match out {
        Some(dir) => Some(extract(&message, dir)?),
        None => None,
    };
    let json = Output {
        message: &message,
        files,
        warnings,
    };
    let mut text = serde_json::to_string_pretty(&json)?;
    text.push('\n');
    io::write_output(None, text.as_bytes())
}

/// What `decode` prints: the message, then the files written.
#[derive(serde::Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    message: &'a TnefMessage,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<Written>>,
    /// What a lenient reading left out, one line per fault (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// One file written by `decode --out`.
#[derive(serde::Serialize)]
struct Written {
    /// "attachment", "embedded", "text", "html" or "rtf".
    kind: &'static str,
    /// Index in `attachments`, for attachments.
    #[serde(skip_serializing_if = "Option::is_none")]
    attachment: Option<usize>,
    /// The path written.
    path: PathBuf,
    /// Bytes written.
    size: usize,
}

fn extract(m: &TnefMessage, dir: &Path) -> Result<Vec<Written>, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut used = HashSet::new();
    let mut written = Vec::new();
    let mut save = |kind, attachment, name: &str, bytes: &[u8]| -> Result<(), CliError> {
        let path = dir.join(unique(&safe_name(name), &mut used));
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(Written {
            kind,
            attachment,
            path,
            size: bytes.len(),
        });
        Ok(())
    };
    if let Some(t) = &m.text {
        save("text", None, "body.txt", t.as_bytes())?;
    }
    if let Some(h) = &m.html {
        save("html", None, "body.html", h.as_bytes())?;
    }
    if let Some(r) = &m.rtf {
        save("rtf", None, "body.rtf", r)?;
    }
    for (i, a) in m.attachments.iter().enumerate() {
        match &a.embedded {
            Some(inner) => {
                let name = format!("{}.tnef", a.filename().unwrap_or("embedded"));
                save("embedded", Some(i), &name, &tnef::encode(inner)?)?;
            }
            None => save(
                "attachment",
                Some(i),
                a.filename().unwrap_or(&format!("attachment-{i}")),
                &a.data,
            )?,
        }
    }
    Ok(written)
}

/// A file name that stays inside the output directory: the last path
/// component, no leading dots, no control characters.
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base
        .chars()
        .map(|c| if c.is_control() || c == ':' { '_' } else { c })
        .collect();
    let clean = clean.trim_start_matches('.').trim();
    if clean.is_empty() {
        "attachment".into()
    } else {
        clean.into()
    }
}

/// `name`, or `name (2)`, `name (3)`... when already used.
fn unique(name: &str, used: &mut HashSet<String>) -> String {
    let mut candidate = name.to_owned();
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        candidate = format!("{stem} ({n}){ext}");
        n += 1;
    }
    candidate
}
