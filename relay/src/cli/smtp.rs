//! `postwire smtp check URL`: the checks to run before going live, step by
//! step (connect, TLS with version and certificate, capabilities, AUTH with
//! the given credentials, NOOP, QUIT). The exit status names the step that
//! failed: 0 all passed, 2 settings, 10 connect, 11 TLS, 12 greeting/EHLO,
//! 13 AUTH (e.g. a wrong password), 14 NOOP, 15 QUIT.

use serde_json::json;

use crate::smtp::{AuthCheck, CheckError, CheckReport, CheckStep, TlsReport, check};

use super::{
    CliError, Exit,
    smtp_args::{Destination, SmtpArgs, runtime},
};

/// SMTP tools.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands of `postwire smtp`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Connect, show TLS and capabilities, try AUTH, NOOP and QUIT; the exit
    /// status says which step failed (10 connect, 11 TLS, 12 EHLO, 13 AUTH, 14 NOOP, 15 QUIT).
    Check(CheckArgs),
}

/// Arguments of `postwire smtp check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The server, as for --smtp: smtp://user@host:587?security=starttls or smtps://user@host.
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// How to reach the server (the password from POSTWIRE_SMTP_PASSWORD or --password-file).
    #[command(flatten)]
    pub smtp: SmtpArgs,
}

/// Runs `postwire smtp ...`.
pub fn run(args: Args) -> Result<(), CliError> {
    match args.command {
        Command::Check(a) => run_check(a),
    }
}

fn tls_lines(tls: Option<&TlsReport>) -> Vec<String> {
    match tls {
        Some(t) => vec![format!(
            "tls: {} {}, certificate sha256 {} (chain of {}), verified for {}",
            t.version, t.cipher_suite, t.certificate_sha256, t.chain_length, t.verified_for
        )],
        None => vec!["tls: none (plain connection)".into()],
    }
}

fn tls_json(tls: Option<&TlsReport>) -> serde_json::Value {
    tls.map_or(serde_json::Value::Null, |t| {
        json!({
            "version": t.version, "cipherSuite": t.cipher_suite,
            "certificateSha256": t.certificate_sha256, "chainLength": t.chain_length,
            "verifiedFor": t.verified_for,
        })
    })
}

fn caps_json(c: &crate::smtp::Capabilities) -> serde_json::Value {
    json!({
        "serverName": c.server_name, "size": c.size, "dsn": c.dsn, "smtputf8": c.smtputf8,
        "8bitmime": c.eight_bit_mime, "pipelining": c.pipelining, "chunking": c.chunking,
        "binarymime": c.binary_mime, "requiretls": c.requiretls,
        "enhancedStatusCodes": c.enhanced_status_codes, "starttls": c.starttls,
        "auth": c.auth, "lines": c.lines,
    })
}

#[allow(clippy::print_stdout)]
fn run_check(mut args: CheckArgs) -> Result<(), CliError> {
    if let Some(url) = args.url.take() {
        args.smtp.smtp = Some(url);
    }
    args.smtp.pickup_dir = None;
    let settings = match args.smtp.destination() {
        Ok(Destination::Smtp(s)) => s,
        Ok(Destination::Pickup(_)) => {
            return Err(Exit::new(2, "smtp check needs an SMTP URL").into());
        }
        Err(e) => return Err(Exit::new(2, e.to_string()).into()),
    };
    let server = format!("{}:{}", settings.host, settings.port);
    let result: Result<CheckReport, CheckError> = runtime()?.block_on(check(settings));
    match result {
        Ok(r) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "ok": true, "server": r.server, "tls": tls_json(r.tls.as_ref()),
                        "capabilities": caps_json(&r.capabilities),
                        "auth": match &r.auth {
                            AuthCheck::Accepted { user } => json!({"user": user, "ok": true}),
                            _ => serde_json::Value::Null,
                        },
                        "noop": r.noop.to_string(), "quit": r.quit.to_string(),
                    }))
                    .unwrap_or_default()
                );
                return Ok(());
            }
            println!("connect: {} ok", r.server);
            for line in tls_lines(r.tls.as_ref()) {
                println!("{line}");
            }
            println!("capabilities: {}", r.capabilities);
            match &r.auth {
                AuthCheck::Accepted { user } => println!("auth: {user:?} accepted"),
                _ => println!("auth: not tried (no user configured)"),
            }
            println!("noop: {}", r.noop);
            println!("quit: {}", r.quit);
            Ok(())
        }
        Err(e) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "ok": false, "server": server, "failedStep": e.step.to_string(),
                        "exitCode": e.step.exit_code(), "error": e.error.to_string(),
                        "reply": e.error.reply().map(|r| r.to_string()),
                        "tls": tls_json(e.tls.as_ref()),
                        "capabilities": e.capabilities.as_ref().map(caps_json),
                    }))
                    .unwrap_or_default()
                );
            } else {
                if !matches!(e.step, CheckStep::Settings | CheckStep::Connect) {
                    println!("connect: {server} ok");
                }
                if e.tls.is_some() || e.capabilities.is_some() {
                    for line in tls_lines(e.tls.as_ref()) {
                        println!("{line}");
                    }
                }
                if let Some(c) = &e.capabilities {
                    println!("capabilities: {c}");
                }
            }
            Err(Exit::new(e.step.exit_code(), e.to_string()).into())
        }
    }
}
