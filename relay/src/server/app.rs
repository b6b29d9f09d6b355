//! The axum application: routes (`/v1/submit`, `/healthz`, `/readyz`, `/metrics`), the
//! checks made before a WebSocket upgrade (Origin allow-list, Bearer token,
//! failed authentications of the client's address), and [`AppError`], which
//! tells the client little and logs the rest.
//!
//! The client's address and the connection's pre-authentication gate come
//! from axum's `ConnectInfo<ConnInfo>` (set by [`super::serve`]); a router
//! served without it (tests) counts no failures and has no byte budget.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};

use super::conn_guard::{AuthGate, ConnInfo};
use super::live_tokens::AuthRefusal;
use super::protocol::PROTOCOL;
use super::session::{self, SessionContext, WsIn, WsOut};
use crate::token::TokenRecord;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    /// What each session gets.
    pub session: SessionContext,
    /// Origins allowed to open a WebSocket (`*` allows all). Requests without
    /// an Origin header (non-browser clients) and same-origin requests are
    /// always allowed.
    pub allowed_origins: Arc<Vec<String>>,
    /// Largest WebSocket message, in bytes.
    pub max_frame: usize,
    /// What the relay delivers to, for `/healthz`.
    pub upstream: Arc<String>,
    /// Whether the relay should get traffic, for `/readyz`.
    pub readiness: Arc<super::readiness::Readiness>,
}

/// Errors answered over HTTP, before a WebSocket exists.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The Origin header is not on the allow-list.
    #[error("origin {0:?} is not allowed")]
    ForbiddenOrigin(String),
    /// The Authorization header names no known token.
    #[error("unknown bearer token")]
    Unauthorized,
    /// The Authorization header is not `Bearer <token>`.
    #[error("malformed Authorization header")]
    BadAuthorization,
    /// The client's address failed to authenticate too often; it may try
    /// again after the time given (HTTP 429 with `Retry-After`).
    #[error("too many failed authentications from this address; retry in {} s", .0.as_secs().max(1))]
    TooManyFailures(Duration),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            AppError::ForbiddenOrigin(_) => (StatusCode::FORBIDDEN, "forbidden_origin"),
            AppError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::BadAuthorization => (StatusCode::BAD_REQUEST, "bad_authorization"),
            AppError::TooManyFailures(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        };
        tracing::info!(status = status.as_u16(), error = %self, "refused a request");
        let body = serde_json::json!({ "code": code, "message": self.to_string() });
        let mut response = (status, Json(body)).into_response();
        if let AppError::TooManyFailures(wait) = self {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// The router of the relay.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/submit", get(submit))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> Result<(), AppError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(AppError::ForbiddenOrigin(
        origin.chars().take(200).collect(),
    ))
}

fn bearer(
    headers: &HeaderMap,
    state: &AppState,
    peer: Option<IpAddr>,
) -> Result<Option<TokenRecord>, AppError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| AppError::BadAuthorization)?;
    let secret = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .ok_or(AppError::BadAuthorization)?;
    match state.session.tokens.authenticate(secret.trim(), peer) {
        Ok(t) => Ok(Some(t)),
        Err(AuthRefusal::Unknown) => Err(AppError::Unauthorized),
        Err(AuthRefusal::Locked { retry_after }) => Err(AppError::TooManyFailures(retry_after)),
    }
}

async fn submit(State(state): State<AppState>, request: Request) -> Result<Response, AppError> {
    let (mut parts, _body) = request.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let conn = parts
        .extensions
        .get::<ConnectInfo<ConnInfo>>()
        .map(|c| c.0.clone());
    let peer = conn.as_ref().map(|c| c.addr.ip());
    let gate = conn.map(|c| c.gate);
    let headers = &parts.headers;
    origin_allowed(headers, &state.allowed_origins)?;
    // A locked address learns nothing more, whichever way it authenticates.
    if let Some(ip) = peer
        && let Err(wait) = state.session.tokens.may_try(ip)
    {
        return Err(AppError::TooManyFailures(wait));
    }
    let pre_auth = bearer(headers, &state, peer)?;
    if let (Some(_), Some(g)) = (&pre_auth, &gate) {
        g.open();
    }
    let ctx = state.session.clone();
    Ok(ws
        .protocols([PROTOCOL])
        .max_message_size(state.max_frame)
        .max_frame_size(state.max_frame)
        .on_upgrade(move |socket| serve_socket(ctx, peer, gate, pre_auth, socket)))
}

async fn serve_socket(
    ctx: SessionContext,
    peer: Option<IpAddr>,
    gate: Option<Arc<AuthGate>>,
    pre_auth: Option<TokenRecord>,
    socket: WebSocket,
) {
    let (sink, stream) = socket.split();
    let sink = sink.with(|o: WsOut| async move {
        Ok::<_, axum::Error>(match o {
            WsOut::Text(t) => Message::Text(t.into()),
            WsOut::Close(code, reason) => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        })
    });
    let stream = stream.filter_map(|m| async move {
        match m {
            Ok(Message::Text(t)) => Some(Ok(WsIn::Text(t.to_string()))),
            Ok(Message::Binary(b)) => Some(Ok(WsIn::Binary(b.to_vec()))),
            Ok(Message::Close(_)) => Some(Ok(WsIn::Close)),
            Ok(Message::Ping(_) | Message::Pong(_)) => None,
            Err(e) => Some(Err(e)),
        }
    });
    session::run_from(ctx, peer, gate, pre_auth, Box::pin(sink), Box::pin(stream)).await;
}

async fn healthz(State(state): State<AppState>) -> Response {
    let depth = state.session.spool.depth();
    let body = serde_json::json!({
        "status": "ok",
        "queued": depth.queued,
        "delivering": depth.in_flight,
        "upstream": *state.upstream,
    });
    (StatusCode::OK, Json(body)).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(reason) = state.session.spool.usable() {
        let body = serde_json::json!({
            "ready": false,
            "spool": "unreachable",
            "reason": reason,
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    readyz_response(&state.readiness).await
}

/// `/readyz`: 200 when ready, 503 while the spool recovers or the upstream
/// is judged unreachable (see [`super::readiness`]), with a JSON body.
pub async fn readyz_response(readiness: &Arc<super::readiness::Readiness>) -> Response {
    let report = readiness.check().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = serde_json::json!({
        "ready": report.ready,
        "upstream": report.upstream,
    });
    if !report.reason.is_empty() {
        body["reason"] = serde_json::json!(report.reason);
    }
    if let Some(secs) = report.checked_secs_ago {
        body["checkedSecondsAgo"] = serde_json::json!(secs);
    }
    (status, Json(body)).into_response()
}

/// The application while the spool recovers: `/readyz` says 503
/// `recovering`, `/healthz` 200 (the process is alive), anything else 503.
pub fn recovering_router(readiness: Arc<super::readiness::Readiness>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "recovering" })).into_response() }),
        )
        .route(
            "/readyz",
            get(move || {
                let readiness = Arc::clone(&readiness);
                async move { readyz_response(&readiness).await }
            }),
        )
        .fallback(|| async {
            let body = serde_json::json!({
                "code": "recovering",
                "message": "the relay is recovering its spool; retry shortly",
            });
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        })
}

async fn metrics(State(state): State<AppState>) -> Response {
    let text = state
        .session
        .metrics
        .render(state.session.spool.depth(), &state.session.tokens.status());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: &str, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, origin.parse().unwrap());
        h.insert(header::HOST, host.parse().unwrap());
        h
    }

    #[test]
    fn a_foreign_origin_is_refused_and_listed_or_same_origins_pass() {
        let allowed = vec!["https://app.example".to_string()];
        assert!(origin_allowed(&headers("https://evil.example", "relay:8080"), &allowed).is_err());
        assert!(origin_allowed(&headers("https://app.example", "relay:8080"), &allowed).is_ok());
        assert!(origin_allowed(&headers("http://relay:8080", "relay:8080"), &allowed).is_ok());
        assert!(origin_allowed(&HeaderMap::new(), &allowed).is_ok());
    }
}
