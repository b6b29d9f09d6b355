//! `postwire webhook add|list|remove|test`: the relay's webhook endpoints
//! (crate::webhooks, docs/webhooks.md). `add` prints the endpoint's signing
//! secret once on stdout; `list` never shows a secret; `test` sends a
//! signed sample event and prints the endpoint's HTTP status.
//!
//! With `--spool postgres://...` (or `POSTWIRE_SPOOL_URL`, password from
//! `POSTWIRE_SPOOL_PASSWORD` or `--spool-password-file`) instead of
//! `--data-dir`, the same commands work on the endpoints shared by every
//! relay on that database (`webhooks::pg`), after applying the migrations;
//! the output is the same.

use std::io::Write as _;
use std::path::PathBuf;

use crate::cli::store_args::{Location, StoreArgs};
use crate::cli::{CliError, Exit};
use crate::webhooks::pg::PgWebhooks;
use crate::webhooks::store::{self, Endpoint};

/// The store, opened, with the runtime its database calls run on.
enum Opened {
    File(PathBuf, tokio::runtime::Runtime),
    Database(PgWebhooks, tokio::runtime::Runtime),
}

/// Opens the endpoints of `store`.
fn open(store: StoreArgs) -> Result<Opened, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match store.locate()? {
        Location::Database(url) => {
            let db = rt.block_on(PgWebhooks::connect(&url))?;
            Ok(Opened::Database(db, rt))
        }
        Location::Dir(dir) => Ok(Opened::File(dir, rt)),
    }
}

impl Opened {
    /// Where the endpoints are, for messages.
    fn describe(&self) -> String {
        match self {
            Opened::File(dir, _) => dir.join(store::ENDPOINTS_FILE).display().to_string(),
            Opened::Database(db, _) => format!("the database {}", db.origin()),
        }
    }

    fn add(&self, endpoint: Endpoint) -> Result<String, CliError> {
        Ok(match self {
            Opened::File(dir, _) => store::add(dir, endpoint)?,
            Opened::Database(db, rt) => rt.block_on(db.add(endpoint))?,
        })
    }

    fn list(&self) -> Result<Vec<Endpoint>, CliError> {
        Ok(match self {
            Opened::File(dir, _) => store::load(dir)?,
            Opened::Database(db, rt) => rt.block_on(db.list())?,
        })
    }

    fn remove(&self, name: &str) -> Result<(), CliError> {
        match self {
            Opened::File(dir, _) => store::remove(dir, name).map(|_| ())?,
            Opened::Database(db, rt) => rt.block_on(db.remove(name))?,
        }
        Ok(())
    }

    /// Sends the sample event; the HTTP status.
    fn test(&self, name: &str) -> Result<u16, String> {
        match self {
            Opened::File(dir, rt) => rt.block_on(crate::webhooks::dispatch::send_test(dir, name)),
            Opened::Database(db, rt) => rt.block_on(async {
                let (ep, secret) = db.get(name).await.map_err(|e| e.to_string())?;
                crate::webhooks::dispatch::send_sample(&ep, &secret).await
            }),
        }
    }
}

/// Arguments of `postwire webhook`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// Webhook subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Register an endpoint; its signing secret is printed once on stdout.
    Add {
        /// Name of the endpoint (A-Z a-z 0-9 . _ -).
        name: String,
        /// Where events are POSTed (https, or http with --allow-http).
        #[arg(long)]
        url: String,
        /// Only events of this token's messages [default: every token].
        #[arg(long)]
        token: Option<String>,
        /// Allow a plain http:// URL.
        #[arg(long)]
        allow_http: bool,
        /// Allow loopback, private, link-local and unspecified addresses.
        #[arg(long)]
        allow_private: bool,
        /// Where the endpoints are.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the endpoints (never their secrets).
    List {
        /// Where the endpoints are.
        #[command(flatten)]
        store: StoreArgs,
        /// Print a JSON array of {name, url, token, allowHttp, allowPrivate}.
        #[arg(long)]
        json: bool,
    },
    /// Remove an endpoint and its secret.
    Remove {
        /// Name of the endpoint.
        name: String,
        /// Where the endpoints are.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Send a signed sample event (`"type": "test"`) and print the HTTP status.
    Test {
        /// Name of the endpoint.
        name: String,
        /// Where the endpoints are.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs `postwire webhook ...`.
pub fn run(args: Args) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match args.action {
        Action::Add {
            name,
            url,
            token,
            allow_http,
            allow_private,
            store,
        } => {
            let opened = open(store)?;
            let secret = opened.add(Endpoint {
                name: name.clone(),
                url,
                token,
                allow_http,
                allow_private,
            })?;
            writeln!(out, "{secret}")?;
            eprintln!(
                "postwire: webhook {name:?} added to {}; the signing secret above is shown only once \
                 (a running relay uses it from its next event)",
                opened.describe()
            );
            Ok(())
        }
        Action::List { store, json } => {
            let opened = open(store)?;
            let all = opened.list()?;
            if json {
                let v: Vec<serde_json::Value> = all
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "name": e.name, "url": e.url, "token": e.token,
                            "allowHttp": e.allow_http, "allowPrivate": e.allow_private,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for e in &all {
                    let mut flags = String::new();
                    if e.allow_http {
                        flags.push_str(" allow-http");
                    }
                    if e.allow_private {
                        flags.push_str(" allow-private");
                    }
                    writeln!(
                        out,
                        "{}\t{}\ttoken={}{flags}",
                        e.name,
                        e.url,
                        e.token.as_deref().unwrap_or("*")
                    )?;
                }
                if all.is_empty() {
                    eprintln!("postwire: no webhooks in {}", opened.describe());
                }
            }
            Ok(())
        }
        Action::Remove { name, store } => {
            open(store)?.remove(&name)?;
            eprintln!("postwire: webhook {name:?} removed");
            Ok(())
        }
        Action::Test { name, store } => match open(store)?.test(&name) {
            Ok(status) => {
                writeln!(out, "{status}")?;
                if (200..300).contains(&status) {
                    Ok(())
                } else {
                    Err(Box::new(Exit::new(
                        1,
                        format!("webhook {name:?} answered HTTP {status}"),
                    )))
                }
            }
            Err(e) => Err(Box::new(Exit::new(2, format!("webhook {name:?}: {e}")))),
        },
    }
}
