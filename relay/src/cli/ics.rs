//! `postwire ics SPEC.json`: the appointment of a spec (or a bare
//! appointment) as an .ics file; `postwire ics parse FILE.ics`: an .ics file
//! as the appointment JSON (the spec's `calendar` field).

use std::path::PathBuf;

use postwire_core::ical::{self, Appointment};

use super::{CliError, io};

/// Write the iCalendar (.ics) text of a spec's `calendar`, or read an .ics file as JSON.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  postwire ics spec.json -o invite.ics\n  postwire ics parse invite.ics\n  postwire ics parse --all calendar.ics"
)]
pub struct Args {
    /// `parse`: read an .ics file instead.
    #[command(subcommand)]
    pub command: Option<IcsCommand>,
    /// A message spec with `calendar`, or a bare appointment (JSON); `-` reads stdin.
    #[arg(required = true, value_name = "SPEC.json")]
    pub spec: Option<PathBuf>,
    /// Where to write the .ics; `-` or none writes stdout.
    #[arg(short, long, value_name = "OUT.ics")]
    pub output: Option<PathBuf>,
    /// Unix seconds used for DTSTAMP when the appointment has no `dtstamp` (default: now).
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<i64>,
}

/// The subcommands of `postwire ics`.
#[derive(Debug, clap::Subcommand)]
pub enum IcsCommand {
    /// Read an .ics file and print the appointment as JSON.
    Parse(ParseArgs),
}

/// Arguments of `postwire ics parse`.
#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// The .ics file; `-` reads stdin.
    #[arg(value_name = "FILE.ics")]
    pub file: PathBuf,
    /// Print every event (`{method, prodid, events, skipped}`) instead of the first one.
    #[arg(long)]
    pub all: bool,
    /// Write the JSON here instead of stdout.
    #[arg(short, long, value_name = "OUT.json")]
    pub output: Option<PathBuf>,
}

/// Runs `postwire ics`.
pub fn run(args: Args) -> Result<(), CliError> {
    if let Some(IcsCommand::Parse(p)) = args.command {
        return parse(p);
    }
    let path = args.spec.ok_or("a SPEC.json is required")?;
    let appt = read_appointment(&path)?;
    let now = io::build_options(args.now, Some(0)).now;
    let ics = ical::to_ics(&appt, now).map_err(|e| format!("{}: {e}", path.display()))?;
    io::write_output(args.output.as_deref(), ics.as_bytes())
}

/// A spec's `calendar`, or the file itself when it is a bare appointment (has `uid`, no `calendar`).
fn read_appointment(path: &std::path::Path) -> Result<Appointment, CliError> {
    let bytes = io::read_input(path)?;
    let text =
        String::from_utf8(bytes).map_err(|e| format!("{}: not UTF-8 JSON: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let bare = value.get("uid").is_some() && value.get("calendar").is_none();
    if bare {
        return serde_json::from_str(&text)
            .map_err(|e| format!("{}: appointment: {e}", path.display()).into());
    }
    let spec =
        postwire_core::spec::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    spec.calendar
        .ok_or_else(|| format!("{}: the spec has no `calendar`", path.display()).into())
}

fn parse(args: ParseArgs) -> Result<(), CliError> {
    let name = args.file.display().to_string();
    let bytes = io::read_input(&args.file)?;
    let cal = ical::parse_calendar(&bytes).map_err(|e| format!("{name}: {e}"))?;
    for skipped in &cal.skipped {
        eprintln!("postwire: warning: {name}: {skipped} is not an event; skipped");
    }
    let mut json = if args.all {
        serde_json::to_string_pretty(&cal)?
    } else {
        if cal.events.len() > 1 {
            eprintln!(
                "postwire: warning: {name}: {} more event(s) not shown; use --all",
                cal.events.len() - 1
            );
        }
        let first = cal
            .events
            .first()
            .ok_or_else(|| format!("{name}: {}", ical::IcalError::NoEvent))?;
        serde_json::to_string_pretty(first)?
    };
    json.push('\n');
    io::write_output(args.output.as_deref(), json.as_bytes())
}
