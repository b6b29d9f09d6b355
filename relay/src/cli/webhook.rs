//! `postwire webhook add|list|remove|test`: the relay's webhook endpoints
//! (crate::webhooks, docs/webhooks.md). `add` prints the endpoint's signing
//! secret once on stdout; `list` never shows a secret; `test` sends a
//! signed sample event and prints the endpoint's HTTP status.

use std::io::Write as _;
use std::path::PathBuf;

use crate::cli::{CliError, Exit};
use crate::webhooks::store::{self, Endpoint};

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
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// List the endpoints (never their secrets).
    List {
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
        /// Print a JSON array of {name, url, token, allowHttp, allowPrivate}.
        #[arg(long)]
        json: bool,
    },
    /// Remove an endpoint and its secret.
    Remove {
        /// Name of the endpoint.
        name: String,
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Send a signed sample event (`"type": "test"`) and print the HTTP status.
    Test {
        /// Name of the endpoint.
        name: String,
        /// The relay's data directory.
        #[arg(long, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
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
            data_dir,
        } => {
            let secret = store::add(
                &data_dir,
                Endpoint {
                    name: name.clone(),
                    url,
                    token,
                    allow_http,
                    allow_private,
                },
            )?;
            writeln!(out, "{secret}")?;
            eprintln!(
                "postwire: webhook {name:?} added to {}; the signing secret above is shown only once \
                 (a running relay uses it from its next event)",
                data_dir.join(store::ENDPOINTS_FILE).display()
            );
            Ok(())
        }
        Action::List { data_dir, json } => {
            let all = store::load(&data_dir)?;
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
                    eprintln!("postwire: no webhooks in {}", data_dir.display());
                }
            }
            Ok(())
        }
        Action::Remove { name, data_dir } => {
            store::remove(&data_dir, &name)?;
            eprintln!("postwire: webhook {name:?} removed");
            Ok(())
        }
        Action::Test { name, data_dir } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            match rt.block_on(crate::webhooks::dispatch::send_test(&data_dir, &name)) {
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
            }
        }
    }
}
