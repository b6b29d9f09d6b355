//! `postwire queue list|show|retry|hold|release|cancel|delete`: the relay's
//! queue, through the admin API of a running relay (`--relay URL` with an
//! admin token from `--admin-token-file` or `POSTWIRE_ADMIN_TOKEN`), or
//! offline from its data directory (`--data-dir`).
//!
//! Offline, the spool's exclusive lock decides: when no relay holds it, the
//! spool is opened (and recovered) here, and every action works; when a
//! relay runs, `list` and `show` read a copy of the journal and segments
//! (taken now, read-only for the live spool) and actions are refused: use
//! `--relay`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::admin::api::CANCEL_REASON;
use crate::admin::view::{self, Filter};
use crate::cli::{CliError, Exit};
use crate::spool::{Control, Controlled, FsSpool, Spool, SpoolError, SpoolOptions};

/// Arguments of `postwire queue`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
    /// A running relay's base URL (`https://HOST:PORT`, or `http://` to a
    /// loopback address), whose admin API is used (wins over --data-dir).
    #[arg(long, global = true, value_name = "URL")]
    pub relay: Option<String>,
    /// File holding an admin secret (`postwire admin-token add`); or set
    /// POSTWIRE_ADMIN_TOKEN.
    #[arg(long, global = true, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// A PEM CA file to trust for the relay's certificate (besides the webpki roots).
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Work on the data directory itself (read-only while a relay runs).
    #[arg(long, global = true, env = "POSTWIRE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the API's JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Queue subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List messages, newest first.
    List {
        /// Only messages of this submission token.
        #[arg(long)]
        token: Option<String>,
        /// Envelope sender contains this (no case).
        #[arg(long)]
        sender: Option<String>,
        /// A recipient contains this (no case).
        #[arg(long)]
        recipient: Option<String>,
        /// queued, held, delivered, failed or partial.
        #[arg(long)]
        state: Option<String>,
        /// Accepted at or after (RFC 3339 or ms since the epoch).
        #[arg(long)]
        since: Option<String>,
        /// Accepted before (RFC 3339 or ms since the epoch).
        #[arg(long)]
        until: Option<String>,
        /// Most messages (default 100).
        #[arg(long)]
        limit: Option<usize>,
        /// The `next` cursor of a previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one message: recipients, history, header fields.
    Show {
        /// The message id (from `list`).
        id: String,
    },
    /// Try every recipient not final now.
    Retry {
        /// The message id.
        id: String,
    },
    /// Hold a message: not delivered until released (survives restarts).
    Hold {
        /// The message id.
        id: String,
    },
    /// Release a held message (due now).
    Release {
        /// The message id.
        id: String,
    },
    /// Fail every recipient not final ("cancelled by operator").
    Cancel {
        /// The message id.
        id: String,
    },
    /// Delete a message whose recipients are all final (or cancel it first with --force).
    Delete {
        /// The message id.
        id: String,
        /// Cancel the message first if some recipient is not final.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `postwire queue ...`.
pub fn run(args: Args) -> Result<(), CliError> {
    let answer = super::smtp_args::runtime()?.block_on(answer(&args))?;
    print(&args, &answer)
}

async fn answer(args: &Args) -> Result<Value, CliError> {
    match (&args.relay, &args.data_dir) {
        (Some(url), _) => remote(args, url).await,
        (None, Some(dir)) => local(args, dir).await,
        (None, None) => Err(
            "give --relay URL (with --admin-token-file or POSTWIRE_ADMIN_TOKEN) or --data-dir DIR"
                .into(),
        ),
    }
}

fn print(args: &Args, v: &Value) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(v)?)?;
        return Ok(());
    }
    let line = |m: &Value| {
        let rcpts: Vec<String> = m["recipients"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        format!(
                            "{}={}",
                            r["address"].as_str().unwrap_or(""),
                            r["state"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "{}\t{}\t{}\t{}/{}\t{}\t{}",
            m["id"].as_str().unwrap_or(""),
            m["state"].as_str().unwrap_or(""),
            m["acceptedAt"].as_str().unwrap_or(""),
            m["token"].as_str().unwrap_or(""),
            m["clientId"].as_str().unwrap_or(""),
            m["from"].as_str().unwrap_or(""),
            rcpts.join(" ")
        )
    };
    if let Some(list) = v["messages"].as_array() {
        for m in list {
            writeln!(out, "{}", line(m))?;
        }
        if let Some(next) = v["next"].as_str() {
            writeln!(out, "more: --cursor {next}")?;
        }
        return Ok(());
    }
    let m = if v.get("ok").is_some() {
        &v["message"]
    } else {
        v
    };
    writeln!(out, "{}", line(m))?;
    writeln!(out, "size {} bytes", m["size"])?;
    for r in m["recipients"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  {} {} attempts={} next={} reply={}",
            r["address"].as_str().unwrap_or(""),
            r["state"].as_str().unwrap_or(""),
            r["attempts"],
            r["nextAttempt"].as_str().unwrap_or("-"),
            r["lastReply"].as_str().unwrap_or("-")
        )?;
        for h in r["history"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "    {} {} {}",
                h["at"].as_str().unwrap_or(""),
                h["state"].as_str().unwrap_or(""),
                h["reply"].as_str().unwrap_or("")
            )?;
        }
    }
    for h in m["headers"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  | {}: {}",
            h[0].as_str().unwrap_or(""),
            h[1].as_str().unwrap_or("")
        )?;
    }
    Ok(())
}

/// The filter of `list`, or `None` for another subcommand.
fn filter(a: &Action) -> Option<Filter> {
    match a {
        Action::List {
            token,
            sender,
            recipient,
            state,
            since,
            until,
            limit,
            cursor,
        } => Some(Filter {
            token: token.clone(),
            sender: sender.clone(),
            recipient: recipient.clone(),
            state: state.clone(),
            since: since.clone(),
            until: until.clone(),
            limit: *limit,
            cursor: cursor.clone(),
        }),
        _ => None,
    }
}

// ----- remote: the admin API over HTTP(S) -----

fn admin_secret(args: &Args) -> Result<String, CliError> {
    if let Some(f) = &args.admin_token_file {
        let s = std::fs::read_to_string(f)
            .map_err(|e| format!("cannot read the admin token file {}: {e}", f.display()))?;
        return Ok(s.trim().to_string());
    }
    match std::env::var("POSTWIRE_ADMIN_TOKEN") {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => Err(
            "--relay needs an admin secret: --admin-token-file FILE or POSTWIRE_ADMIN_TOKEN".into(),
        ),
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn remote(args: &Args, base: &str) -> Result<Value, CliError> {
    let url = url::Url::parse(base).map_err(|e| format!("bad --relay URL {base:?}: {e}"))?;
    let secret = admin_secret(args)?;
    let (method, path) = match &args.action {
        a @ Action::List { .. } => {
            let f = filter(a).unwrap_or_default();
            let mut q = Vec::new();
            for (k, v) in [
                ("token", f.token),
                ("sender", f.sender),
                ("recipient", f.recipient),
                ("state", f.state),
                ("since", f.since),
                ("until", f.until),
                ("limit", f.limit.map(|l| l.to_string())),
                ("cursor", f.cursor),
            ] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", enc(&v)));
                }
            }
            ("GET", format!("/admin/v1/messages?{}", q.join("&")))
        }
        Action::Show { id } => ("GET", format!("/admin/v1/messages/{}", enc(id))),
        Action::Retry { id } => ("POST", format!("/admin/v1/messages/{}/retry", enc(id))),
        Action::Hold { id } => ("POST", format!("/admin/v1/messages/{}/hold", enc(id))),
        Action::Release { id } => ("POST", format!("/admin/v1/messages/{}/release", enc(id))),
        Action::Cancel { id } => ("POST", format!("/admin/v1/messages/{}/cancel", enc(id))),
        Action::Delete { id, force } => (
            "DELETE",
            format!(
                "/admin/v1/messages/{}{}",
                enc(id),
                if *force { "?force=true" } else { "" }
            ),
        ),
    };
    let (status, body) = http(&url, args.ca_file.as_deref(), method, &path, &secret).await?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|_| format!("the relay answered {status} with a body that is not JSON"))?;
    if status == 200 {
        return Ok(v);
    }
    let code = v["code"].as_str().unwrap_or("error");
    let message = v["message"].as_str().unwrap_or("");
    let text = match (status, code) {
        (404, _) => "not found (no such message, or the relay has no admin token: `postwire admin-token add`)".to_string(),
        (401, _) => "unauthorized: the admin secret is not known to the relay".to_string(),
        _ => format!("the relay answered {status} {code}: {message}"),
    };
    Err(Box::new(Exit::new(if status == 404 { 4 } else { 1 }, text)))
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One HTTP/1.1 request (`Connection: close`); the status and body.
async fn http(
    url: &url::Url,
    ca_file: Option<&Path>,
    method: &str,
    path: &str,
    secret: &str,
) -> Result<(u16, Vec<u8>), CliError> {
    let host = url
        .host_str()
        .ok_or("the --relay URL has no host")?
        .to_string();
    let tls = match url.scheme() {
        "https" => true,
        "http" if is_loopback(&host) => false,
        "http" => return Err("plain http:// only to a loopback address: the admin secret would cross the network in clear; use https://".into()),
        other => return Err(format!("--relay must be http(s)://, not {other}://").into()),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let tcp =
        tokio::net::TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {secret}\r\nAccept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        url.host_str().unwrap_or("")
    );
    let mut raw = Vec::new();
    if tls {
        let config = crate::client::connect::tls_config(ca_file)?;
        let name = rustls::pki_types::ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        )
        .map_err(|e| format!("bad host name {host:?}: {e}"))?;
        let mut s = tokio_rustls::TlsConnector::from(Arc::clone(&config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
        s.write_all(request.as_bytes()).await?;
        // A server that closes without close_notify still sent its answer.
        if let Err(e) = s.read_to_end(&mut raw).await
            && raw.is_empty()
        {
            return Err(e.into());
        }
    } else {
        let mut s = tcp;
        s.write_all(request.as_bytes()).await?;
        s.read_to_end(&mut raw).await?;
    }
    parse_response(&raw).ok_or_else(|| "the relay's answer is not HTTP".into())
}

fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = &raw[end + 4..];
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if !chunked {
        return Some((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let nl = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..nl]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[nl + 2..];
        if size == 0 {
            return Some((status, out));
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

// ----- local: the data directory -----

async fn local(args: &Args, dir: &Path) -> Result<Value, CliError> {
    let spool_dir = dir.join("spool");
    if !spool_dir.is_dir() {
        return Err(format!("{} holds no spool", spool_dir.display()).into());
    }
    let mut _copy = None;
    let spool = match FsSpool::open(&spool_dir, SpoolOptions::default()) {
        Ok(s) => s,
        Err(SpoolError::Locked(_)) => {
            if !matches!(args.action, Action::List { .. } | Action::Show { .. }) {
                return Err(Box::new(Exit::new(
                    3,
                    format!(
                        "a running relay holds the spool's lock in {}: actions go through it (--relay URL with an admin token)",
                        spool_dir.display()
                    ),
                )));
            }
            eprintln!(
                "postwire: a running relay holds the spool's lock; reading a copy taken now (read-only)"
            );
            let copy = snapshot(&spool_dir)?;
            // No disk reserve in the temporary copy.
            let opts = SpoolOptions {
                reserve_bytes: 0,
                ..SpoolOptions::default()
            };
            let s = FsSpool::open(copy.path(), opts)?;
            _copy = Some(copy);
            s
        }
        Err(e) => return Err(e.into()),
    };
    let spool: Arc<dyn Spool> = Arc::new(spool);
    let result = local_answer(&spool, &args.action).await;
    spool.close();
    result
}

fn not_found() -> CliError {
    Box::new(Exit::new(4, "no such message"))
}

async fn local_lookup(
    spool: &Arc<dyn Spool>,
    id: &str,
) -> Result<(crate::spool::Key, crate::spool::MessageView), CliError> {
    let key = view::decode_id(id).ok_or_else(not_found)?;
    let v = spool.message(&key).await?.ok_or_else(not_found)?;
    Ok((key, v))
}

async fn local_detail(spool: &Arc<dyn Spool>, key: &crate::spool::Key) -> Result<Value, CliError> {
    let v = spool.message(key).await?.ok_or_else(not_found)?;
    let bytes = spool.message_bytes(key).await?;
    Ok(view::detail(&v, bytes.as_deref()))
}

async fn local_answer(spool: &Arc<dyn Spool>, action: &Action) -> Result<Value, CliError> {
    let (id, controls) = match action {
        a @ Action::List { .. } => {
            let (views, next) =
                view::page(spool.messages().await?, &filter(a).unwrap_or_default())?;
            let messages: Vec<Value> = views.iter().map(view::summary).collect();
            return Ok(json!({"messages": messages, "next": next}));
        }
        Action::Show { id } => {
            let (key, _) = local_lookup(spool, id).await?;
            return local_detail(spool, &key).await;
        }
        Action::Retry { id } => (id, vec![Control::Retry]),
        Action::Hold { id } => (id, vec![Control::Hold]),
        Action::Release { id } => (id, vec![Control::Release]),
        Action::Cancel { id } => (id, vec![Control::Cancel(CANCEL_REASON.into())]),
        Action::Delete { id, force } => {
            let (_, v) = local_lookup(spool, id).await?;
            let mut c = Vec::new();
            if *force && v.rcpts.iter().any(|r| !r.state.is_final()) {
                c.push(Control::Cancel(CANCEL_REASON.into()));
            }
            c.push(Control::Delete);
            (id, c)
        }
    };
    let (key, _) = local_lookup(spool, id).await?;
    for c in controls {
        match spool.control(key.clone(), c).await? {
            Controlled::Done => {}
            Controlled::NotFound => return Err(not_found()),
            Controlled::Conflict(m) => {
                return Err(Box::new(Exit::new(5, format!("conflict: {m}"))));
            }
            Controlled::Unsupported => return Err("this spool does not support actions".into()),
        }
    }
    tracing::info!(target: "postwire::admin", admin = "offline", token = %key.token, id = %key.id, "offline queue action done");
    let message = match spool.message(&key).await? {
        Some(_) => local_detail(spool, &key).await?,
        None => Value::Null,
    };
    Ok(json!({"ok": true, "message": message}))
}

/// A temporary copy of a live spool's journal (first) and segments, for
/// reading while a relay holds the lock. Removed when dropped.
struct Snapshot(PathBuf);

impl Snapshot {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn snapshot(spool_dir: &Path) -> Result<Snapshot, CliError> {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).map_err(|e| e.to_string())?;
    let name = format!(
        "postwire-queue-{}",
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let dst = Snapshot(std::env::temp_dir().join(name));
    std::fs::create_dir_all(dst.0.join("batches"))?;
    // The journal before the segments: a segment removed meanwhile was
    // final, and the journal copied first says so.
    match std::fs::copy(spool_dir.join("journal.log"), dst.0.join("journal.log")) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    for entry in std::fs::read_dir(spool_dir.join("batches"))? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_string_lossy().ends_with(".batch") {
            continue;
        }
        match std::fs::copy(entry.path(), dst.0.join("batches").join(&name)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(dst)
}
