//! The `postwire` command line: one file per subcommand, each with its clap
//! `Args` and a `run` function. This module only dispatches and turns errors
//! into a message on stderr and a non-zero exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod admin_token;
pub mod build;
pub mod dkim;
pub mod envelope_args;
pub mod forward;
pub mod ics;
pub mod io;
pub mod parse;
pub mod queue;
pub mod reply;
pub mod report;
pub mod send;
pub mod serve;
pub mod smtp;
pub mod smtp_args;
pub mod store_args;
pub mod submit;
pub mod suppression;
pub mod tnef;
pub mod token;
pub mod webhook;

/// Top-level arguments of the `postwire` command.
#[derive(Debug, Parser)]
#[command(
    name = "postwire",
    version,
    about = "Compose, parse and send email; run the postwire relay."
)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand of `postwire`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a message (.eml) from a spec (JSON).
    Build(build::Args),
    /// Parse a message (.eml) and print its spec as JSON.
    Parse(parse::Args),
    /// Run the relay: WebSocket submission, durable spool, delivery.
    Serve(Box<serve::Args>),
    /// Manage the relay's tokens.
    Token(token::Args),
    /// Send messages (spec JSON or .eml) over SMTP or into a pickup directory.
    Send(send::Args),
    /// Submit messages to a running relay (wss://HOST/v1/submit), optionally waiting for delivery.
    Submit(submit::Args),
    /// Forward a saved message unchanged to new recipients.
    Forward(forward::Args),
    /// SMTP tools: `postwire smtp check URL`.
    Smtp(smtp::Args),
    /// Write a spec's appointment as .ics, or read an .ics file as JSON.
    Ics(ics::Args),
    /// Answer a meeting request (.eml): build the iTIP REPLY message.
    Reply(reply::Args),
    /// Decode or encode TNEF (winmail.dat).
    Tnef(tnef::Args),
    /// DKIM keys: generate one and print its DNS record.
    Dkim(dkim::Args),
    /// Delivery and abuse reports: `postwire report parse FILE`.
    Report(report::Args),
    /// Recipients refused after a hard bounce or a complaint: list, remove.
    Suppression(suppression::Args),
    /// The relay's webhook endpoints: add, list, remove, test.
    Webhook(webhook::Args),
    /// Admin tokens for the admin API and `postwire queue`: add, list, remove.
    AdminToken(admin_token::Args),
    /// The relay's queue: list, show, retry, hold, release, cancel, delete.
    Queue(queue::Args),
}

/// An error of any subcommand, printed as `postwire: <message>`.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// An error that asks for a particular exit status (e.g. `smtp check`,
/// whose status names the failed step).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    /// The exit status.
    pub code: u8,
    /// What to print after `postwire: `.
    pub message: String,
}

impl Exit {
    /// An error with exit status `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Exit {
            code,
            message: message.into(),
        }
    }
}

/// Parses the command line, runs the subcommand and maps its result to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("postwire: {err}");
            match err.downcast_ref::<Exit>() {
                Some(exit) => ExitCode::from(exit.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Build(args) => build::run(args),
        Command::Parse(args) => parse::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Token(args) => token::run(args),
        Command::Send(args) => send::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Forward(args) => forward::run(args),
        Command::Smtp(args) => smtp::run(args),
        Command::Ics(args) => ics::run(args),
        Command::Reply(args) => reply::run(args),
        Command::Tnef(args) => tnef::run(args),
        Command::Dkim(args) => dkim::run(args),
        Command::Report(args) => report::run(args),
        Command::Suppression(args) => suppression::run(args),
        Command::Webhook(args) => webhook::run(args),
        Command::AdminToken(args) => admin_token::run(args),
        Command::Queue(args) => queue::run(args),
    }
}
