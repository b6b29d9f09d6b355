//! `postwire reply REQUEST.eml --accept|--decline|--tentative --as ADDRESS`:
//! an attendee's iTIP REPLY to a meeting request, as a message (.eml) ready
//! to send to the organizer.

use std::path::PathBuf;

use postwire_core::ical::{PartStat, mime};

use super::{CliError, io};

/// Answer a meeting request: build the REPLY message (.eml) to its organizer.
#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("answer").required(true).args(["accept", "decline", "tentative"])),
    after_help = "Example:\n  postwire reply invite.eml --accept --as bob@example.com -o reply.eml"
)]
pub struct Args {
    /// The received meeting request (.eml); `-` reads stdin.
    #[arg(value_name = "REQUEST.eml")]
    pub request: PathBuf,
    /// Accept (PARTSTAT=ACCEPTED).
    #[arg(long)]
    pub accept: bool,
    /// Decline (PARTSTAT=DECLINED).
    #[arg(long)]
    pub decline: bool,
    /// Accept tentatively (PARTSTAT=TENTATIVE).
    #[arg(long)]
    pub tentative: bool,
    /// The attendee who answers, as listed in the request (`addr` or `Name <addr>`).
    #[arg(long = "as", value_name = "ADDRESS")]
    pub attendee: String,
    /// Where to write the message; `-` or none writes stdout.
    #[arg(short, long, value_name = "OUT.eml")]
    pub output: Option<PathBuf>,
    /// Unix seconds for Date and DTSTAMP (default: now).
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<i64>,
    /// Seed for the message id and MIME boundaries (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Runs `postwire reply`.
pub fn run(args: Args) -> Result<(), CliError> {
    let name = args.request.display().to_string();
    let partstat = if args.accept {
        PartStat::Accepted
    } else if args.decline {
        PartStat::Declined
    } else {
        PartStat::Tentative
    };
    let bytes = io::read_input(&args.request)?;
    let parsed =
        postwire_core::parse::parse_with_warnings(&bytes).map_err(|e| format!("{name}: {e}"))?;
    for w in &parsed.warnings {
        eprintln!("postwire: warning: {name}: {w}");
    }
    let reply = mime::reply_message(&parsed.spec, &args.attendee, partstat)
        .map_err(|e| format!("{name}: {e}"))?;
    let out = postwire_core::build(&reply, &io::build_options(args.now, args.seed))
        .map_err(|e| format!("{name}: reply: {e}"))?;
    io::write_output(args.output.as_deref(), &out)
}
