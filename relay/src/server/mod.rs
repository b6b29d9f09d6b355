//! The relay server: the axum application with the `postwire.v1` WebSocket
//! endpoint, `/healthz`, `/readyz` and `/metrics`, and [`serve`], which wires the spool,
//! the delivery runner, the token reloader ([`live_tokens`]) and the HTTP
//! listener together and shuts them down in
//! order on SIGTERM or Ctrl-C: stop accepting connections, let sessions
//! answer what they have received, let delivery attempts in flight finish,
//! leave the rest spooled.

pub mod access;
pub mod answer_first;
pub mod app;
pub mod auth_guard;
pub mod conn_guard;
pub mod events;
pub mod limits;
pub mod live_tokens;
pub mod metrics;
pub mod protocol;
pub mod readiness;
pub mod senders;
pub mod session;
#[cfg(test)]
mod tests;
pub mod tls;
#[cfg(test)]
mod token_reload_tests;
pub mod upstream;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::sync::watch;

use crate::config::Settings;
use crate::spool::deliver::Deliver;
use crate::spool::{FsSpool, Spool, SpoolError, SpoolOptions};
use crate::token::TokenError;

/// Errors that stop the relay from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The spool could not be opened or recovered.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The token file could not be read.
    #[error(transparent)]
    Tokens(#[from] TokenError),
    /// The tokens of the shared database could not be read.
    #[error(transparent)]
    SharedTokens(#[from] crate::spool::pg::tokens::PgTokenError),
    /// The upstream could not be set up.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The listen address could not be bound or served.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The VERP secret or the suppression list could not be opened.
    #[error("bounces: {0}")]
    Bounces(String),
    /// The webhook outbox could not be opened.
    #[error(transparent)]
    Webhooks(#[from] crate::webhooks::outbox::OutboxError),
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Runs the relay until SIGTERM or Ctrl-C.
pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    // With --spool the tokens are the database's, read once it is open.
    let file_tokens = match &settings.spool {
        None => Some(Arc::new(live_tokens::LiveTokens::load(&settings.data_dir)?)),
        Some(_) => None,
    };
    // The listener is bound before the spool's recovery, which may take a
    // while: meanwhile `/readyz` answers 503 `recovering` (readiness).
    let readiness = readiness::Readiness::new(match &settings.upstream {
        crate::cli::smtp_args::Destination::Smtp(s) => Some(s.clone()),
        crate::cli::smtp_args::Destination::Pickup(_) => None,
    });
    let tls = match &settings.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let listen_error = |source| ServeError::Listen {
        addr: settings.listen.clone(),
        source,
    };
    let std_listener = std::net::TcpListener::bind(&settings.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(listen_error)?;
    let recovering = recovering_server(&std_listener, tls.clone(), Arc::clone(&readiness))
        .map_err(listen_error)?;
    let spool_options = SpoolOptions {
        retry_initial: settings.retry_initial,
        retry_max: settings.retry_max,
        max_age: settings.max_age,
        ..SpoolOptions::default()
    };
    let mut shared_pool = None;
    let spool: Arc<dyn Spool> = match &settings.spool {
        None => Arc::new(FsSpool::open(
            &settings.data_dir.join("spool"),
            spool_options,
        )?),
        Some(url) => {
            let pg = crate::spool::pg::PgSpool::open(
                url.clone(),
                spool_options,
                crate::spool::pg::PgOptions {
                    lease: settings.spool_lease,
                    ..crate::spool::pg::PgOptions::default()
                },
            )
            .await?;
            shared_pool = Some((pg.pool(), url, pg.relay_name().to_string()));
            Arc::new(pg)
        }
    };
    // Tokens and rate limits: the database's when the spool is there
    // (shared by every relay), else tokens.toml and this process's buckets.
    let (tokens, rate_limits) = match shared_pool.clone() {
        None => (
            file_tokens.map_or_else(
                || live_tokens::LiveTokens::load(&settings.data_dir).map(Arc::new),
                Ok,
            )?,
            limits::RateLimits::default(),
        ),
        Some((pool, url, _)) => (
            Arc::new(
                live_tokens::LiveTokens::from_database(
                    crate::spool::pg::tokens::PgTokens::new(pool.clone(), url),
                    &settings.data_dir,
                )
                .await?,
            ),
            limits::RateLimits::shared(crate::spool::pg::rate::PgRate::new(pool)),
        ),
    };
    if tokens.current().is_empty() {
        tracing::warn!(data_dir = %settings.data_dir.display(),
            "no tokens: every submission will be refused; add one with `postwire token add NAME --data-dir DIR --allow-from ADDRESS` (with --spool URL instead of --data-dir when the spool is in PostgreSQL)");
    }
    readiness.recovered();
    let metrics = Arc::new(metrics::Metrics::default());
    let suppressions: Arc<dyn crate::bounces::suppress::SuppressionStore> = Arc::new(
        crate::bounces::suppress::FileSuppressions::open(&settings.data_dir)
            .map_err(|e| ServeError::Bounces(e.to_string()))?,
    );
    let verp = match &settings.bounce_domain {
        Some(domain) => Some((
            Arc::new(
                crate::bounces::verp::Verp::open(&settings.data_dir, domain)
                    .map_err(|e| ServeError::Bounces(e.to_string()))?,
            ),
            Arc::new(crate::bounces::deliver::MessageIds::default()),
        )),
        None => None,
    };
    // Webhooks (crate::webhooks): subscribed before the runner starts; the
    // wrapper adds the `accepted` event. On the PostgreSQL spool the outbox
    // is the database's (written with the events) and every relay delivers
    // from it; on the file spool it is this relay's own directory.
    let (webhooks, accept_hook): (RunningWebhooks, Arc<dyn crate::webhooks::AcceptHook>) =
        match shared_pool {
            Some((pool, url, relay_name)) => {
                if settings
                    .data_dir
                    .join(crate::webhooks::store::ENDPOINTS_FILE)
                    .exists()
                {
                    tracing::warn!(data_dir = %settings.data_dir.display(),
                        "webhooks.toml is not read with --spool: the endpoints are in the database (add them with `postwire webhook add NAME --url URL --spool URL`)");
                }
                let shared = crate::webhooks::SharedWebhooks::start(
                    crate::webhooks::pg::PgWebhooks::new(pool, url),
                    &relay_name,
                    settings.webhooks,
                    settings.spool_lease,
                    spool.subscribe(),
                );
                let _ = metrics.webhooks.set(shared.stats());
                (RunningWebhooks::Shared(Arc::clone(&shared)), shared)
            }
            None => {
                let own = crate::webhooks::Webhooks::start(
                    &settings.data_dir,
                    settings.webhooks,
                    spool.subscribe(),
                )?;
                let _ = metrics.webhooks.set(own.stats());
                // What a crash kept from the outbox, read again from the spool's record.
                own.catch_up(Arc::clone(&spool)).await;
                (RunningWebhooks::Own(Arc::clone(&own)), own)
            }
        };
    let spool: Arc<dyn Spool> = Arc::new(crate::webhooks::HookedSpool::new(spool, accept_hook));
    let deliver: Arc<dyn Deliver> = Arc::new(readiness::ObservedDeliver::new(
        upstream::with_verp(&settings, Arc::clone(&metrics.dkim), verp.clone())?,
        Arc::clone(&readiness),
    ));
    let counter = tokio::spawn(metrics_from_events(spool.subscribe(), Arc::clone(&metrics)));
    let metrics_handle = Arc::clone(&metrics);
    let runner = crate::spool::runner::start(
        Arc::clone(&spool),
        Arc::clone(&deliver),
        Arc::clone(&metrics),
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = app::AppState {
        session: session::SessionContext {
            spool: Arc::clone(&spool),
            tokens: Arc::clone(&tokens),
            limits: Arc::new(rate_limits),
            metrics,
            events: events::EventRouter::start(Arc::clone(&spool), Arc::clone(&metrics_handle)),
            window: settings.window,
            suppressions: Some(Arc::clone(&suppressions)),
            auth_timeout: Duration::from_secs(10),
            shutdown: shutdown_rx,
        },
        allowed_origins: Arc::new(settings.allow_origin.clone()),
        max_frame: usize::try_from(settings.max_message_size)
            .unwrap_or(usize::MAX)
            .saturating_add(64 << 10),
        upstream: Arc::new(deliver.describe()),
        readiness,
    };
    // Tokens reload on SIGHUP and when tokens.toml changes (live_tokens). In
    // place before the "listening" line, so a SIGHUP from then on never ends
    // the process.
    let token_reloader = live_tokens::spawn(tokens, live_tokens::POLL_INTERVAL);
    let inbound = match (&settings.inbound_smtp, &verp) {
        (Some(addr), Some((verp, ids))) => Some(
            start_inbound(
                &settings,
                addr,
                crate::bounces::correlate::Correlator {
                    spool: Arc::clone(&spool),
                    verp: Arc::clone(verp),
                    ids: Arc::clone(ids),
                    suppressions: Arc::clone(&suppressions),
                },
                Arc::clone(&metrics_handle),
                state.session.shutdown.clone(),
            )
            .await?,
        ),
        _ => None,
    };
    recovering.stop().await;
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(listen_error)?;
    let local = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: settings.listen.clone(),
        source,
    })?;
    // The admin API (crate::admin): on the main listener, or alone on
    // --admin-listen; absent (404) while no admin token exists.
    let admin = crate::admin::api::router(crate::admin::api::AdminState {
        spool: Arc::clone(&state.session.spool),
        data_dir: settings.data_dir.clone(),
        failures: Arc::new(auth_guard::AuthFailures::default()),
    });
    let admin_task = match &settings.admin_listen {
        Some(addr) => Some(start_admin(addr, admin.clone(), state.session.shutdown.clone()).await?),
        None => None,
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    tracing::info!(listen = %local, tls = tls.is_some(), data_dir = %settings.data_dir.display(), upstream = %deliver.describe(),
        connections = deliver.concurrency(), "postwire relay started");
    // Printed for scripts that start the relay on port 0.
    eprintln!(
        "postwire relay listening on {local}, delivering to {} (endpoint {scheme}://{local}/v1/submit)",
        deliver.describe()
    );

    // The composer page at / (web_assets; --web-dir / POSTWIRE_WEB_DIR serves it from a directory).
    let web_dir = settings.web_dir.clone();
    tracing::info!("{}", crate::web_assets::describe(web_dir.as_deref()));
    let mut app = app::router(state);
    if admin_task.is_none() {
        app = app.merge(admin);
    }
    let app = app.merge(crate::web_assets::router(web_dir));
    let grace = settings.shutdown_grace;
    // Slowloris and pre-auth floods: a deadline on every request head and a
    // byte budget before authentication (conn_guard).
    let head_timeout = conn_guard::from_env();
    let stop = async move {
        shutdown_signal().await;
        tracing::info!("shutting down: no new connections; finishing what is in flight");
        let _ = shutdown_tx.send(true);
    };
    let served = match tls {
        Some(config) => {
            let listener =
                tls::TlsListener::new(listener, config).map_err(|source| ServeError::Listen {
                    addr: settings.listen.clone(),
                    source,
                })?;
            let listener = conn_guard::Guarded::new(listener, head_timeout);
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<conn_guard::ConnInfo>(),
            )
            .with_graceful_shutdown(stop)
            .await
        }
        None => {
            // Frames are small and answered one by one: without TCP_NODELAY an
            // `accepted` frame can wait behind Nagle for the client's delayed
            // ACK (40 ms on Linux), which was the whole p99 accept latency.
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
            });
            let listener = conn_guard::Guarded::new(listener, head_timeout);
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<conn_guard::ConnInfo>(),
            )
            .with_graceful_shutdown(stop)
            .await
        }
    };
    served.map_err(|source| ServeError::Listen {
        addr: settings.listen.clone(),
        source,
    })?;
    // Upgraded WebSockets outlive the HTTP server: wait for the sessions to
    // answer what they received and close.
    let sessions_done = tokio::time::timeout(grace, async {
        while metrics_handle
            .sessions
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if sessions_done.is_err() {
        tracing::warn!("sessions still open at the end of the grace period");
    }
    spool.close();
    let mut runner = runner;
    let drained =
        tokio::time::timeout(grace, async { while runner.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "delivery attempts still running at the end of the grace period; they stay spooled"
        );
    }
    counter.abort();
    token_reloader.abort();
    if let Some(inbound) = inbound {
        inbound.abort();
    }
    if let Some(admin) = admin_task {
        admin.abort();
    }
    // Every event the spool published is in the webhook outbox (file
    // spool); the claims this relay holds are handed back (PostgreSQL).
    match webhooks {
        RunningWebhooks::Own(w) => w.stop().await,
        RunningWebhooks::Shared(w) => w.stop().await,
    }
    let depth = spool.depth();
    tracing::info!(
        queued = depth.queued,
        "stopped; queued messages stay in the spool"
    );
    Ok(())
}

/// Serves [`app::recovering_router`] on a clone of the listener until
/// [`RecoveringServer::stop`].
fn recovering_server(
    listener: &std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    readiness: Arc<readiness::Readiness>,
) -> std::io::Result<RecoveringServer> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = tokio::net::TcpListener::from_std(listener.try_clone()?)?;
    let app = app::recovering_router(readiness);
    let until = async move {
        let _ = stopped.await;
    };
    let task = match tls {
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config)?;
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(until)
                    .await;
            })
        }
        None => tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(until)
                .await;
        }),
    };
    Ok(RecoveringServer { stop, task })
}

/// The server of the recovery phase.
struct RecoveringServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RecoveringServer {
    /// Stops accepting and lets the requests it has finish (for a moment at
    /// most), so that every connection from now on reaches the relay itself.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

/// Binds `--admin-listen` and serves the admin API there until shutdown.
async fn start_admin(
    addr: &str,
    admin: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    let listen_err = |source| ServeError::Listen {
        addr: addr.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(listen_err)?;
    let local = listener.local_addr().map_err(listen_err)?;
    tracing::info!(target: "postwire::admin", listen = %local, "admin API listening");
    // Printed for scripts and tests that start the relay on port 0.
    eprintln!("postwire admin API listening on {local}");
    Ok(tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        let listener = conn_guard::Guarded::new(listener, conn_guard::from_env());
        if let Err(e) = axum::serve(
            listener,
            admin.into_make_service_with_connect_info::<conn_guard::ConnInfo>(),
        )
        .with_graceful_shutdown(stop)
        .await
        {
            tracing::error!(target: "postwire::admin", error = %e, "the admin listener stopped");
        }
    }))
}

/// Binds the inbound SMTP port for reports and serves it until shutdown.
async fn start_inbound(
    settings: &Settings,
    addr: &str,
    correlator: crate::bounces::correlate::Correlator,
    metrics: Arc<metrics::Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    let listen_err = |source| ServeError::Listen {
        addr: addr.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(listen_err)?;
    let local = listener.local_addr().map_err(listen_err)?;
    let domain = correlator.verp.domain().to_string();
    let mut cfg = crate::inbound::Config::new(&domain);
    cfg.max_size = usize::try_from(settings.inbound_max_size).unwrap_or(usize::MAX);
    cfg.tls = match &settings.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    tracing::info!(listen = %local, domain = %domain, starttls = cfg.tls.is_some(),
        "inbound SMTP for reports started");
    // Printed for scripts and tests that start the relay on port 0.
    eprintln!("postwire inbound SMTP listening on {local} for {domain}");
    let mailbox = Arc::new(crate::inbound::reports::ReportMailbox::new(
        correlator, metrics,
    ));
    Ok(tokio::spawn(crate::inbound::serve(
        listener,
        Arc::new(cfg),
        mailbox,
        shutdown,
    )))
}

/// Counts delivered, deferred and failed recipients from the spool's events.
async fn metrics_from_events(
    mut events: tokio::sync::broadcast::Receiver<crate::spool::Event>,
    metrics: Arc<metrics::Metrics>,
) {
    use crate::spool::EventKind;
    loop {
        match events.recv().await {
            Ok(ev) => match ev.kind {
                EventKind::Delivered { .. } => metrics.inc(&metrics.delivered),
                EventKind::Deferred { .. } => metrics.inc(&metrics.deferred),
                EventKind::Failed { .. } => metrics.inc(&metrics.failed),
                EventKind::Bounced { .. } => metrics.inc(&metrics.bounced),
                EventKind::Complained { .. } => metrics.inc(&metrics.complained),
            },
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "metrics missed delivery events");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// The webhook dispatcher a relay runs: its own outbox (file spool) or the
/// database's (PostgreSQL spool).
enum RunningWebhooks {
    Own(Arc<crate::webhooks::Webhooks>),
    Shared(Arc<crate::webhooks::SharedWebhooks>),
}
