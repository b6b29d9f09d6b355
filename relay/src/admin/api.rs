//! The admin API's routes (`/admin/v1/...`) and their authentication:
//! `Authorization: Bearer <admin secret>` checked in constant time against
//! `admin-tokens.toml`, read at each request; failed authentications count
//! per client address as for submission tokens ([`AuthFailures`]). With no
//! admin token at all, every admin route answers 404 as if absent. Every
//! action is logged under the target `postwire::admin` with the admin
//! token's name (never a secret).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::tokens::AdminTokens;
use super::view::{self, Filter};
use crate::server::auth_guard::AuthFailures;
use crate::server::conn_guard::ConnInfo;
use crate::spool::{Control, Controlled, Key, MessageView, RcptState, Spool};

/// The reason a cancelled recipient fails with.
pub const CANCEL_REASON: &str = "cancelled by operator";

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The spool.
    pub spool: Arc<dyn Spool>,
    /// Where `admin-tokens.toml` is.
    pub data_dir: PathBuf,
    /// Failed authentications per address.
    pub failures: Arc<AuthFailures>,
}

/// An admin answer that is not a success.
#[derive(Debug)]
enum Refusal {
    NotFound,
    Unauthorized,
    Limited(std::time::Duration),
    Conflict(String),
    BadRequest(String),
    Internal(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            Refusal::NotFound => (StatusCode::NOT_FOUND, json!({"code": "not_found"})),
            Refusal::Unauthorized => (StatusCode::UNAUTHORIZED, json!({"code": "unauthorized"})),
            Refusal::Limited(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"code": "rate_limited", "message": format!("too many failed authentications; retry in {} s", wait.as_secs().max(1))}),
            ),
            Refusal::Conflict(m) => (
                StatusCode::CONFLICT,
                json!({"code": "conflict", "message": m}),
            ),
            Refusal::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                json!({"code": "bad_request", "message": m}),
            ),
            Refusal::Internal(m) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"code": "internal", "message": m}),
            ),
        };
        let mut r = (status, Json(body)).into_response();
        if let Refusal::Limited(wait) = self
            && let Ok(v) = header::HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

/// The admin routes, under `/admin/v1`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/v1/messages", get(list))
        .route("/admin/v1/messages/{id}", get(show).delete(remove))
        .route("/admin/v1/messages/{id}/retry", post(retry))
        .route("/admin/v1/messages/{id}/hold", post(hold))
        .route("/admin/v1/messages/{id}/release", post(release))
        .route("/admin/v1/messages/{id}/cancel", post(cancel))
        .route("/admin/v1/summary", get(summary))
        .route(
            "/admin/v1/{*rest}",
            get(not_found).post(not_found).delete(not_found),
        )
        .route("/admin/{*rest}", get(not_found))
        .with_state(state)
}

async fn not_found() -> Response {
    Refusal::NotFound.into_response()
}

/// Checks the bearer admin secret; the admin token's name.
fn authenticate(
    state: &AdminState,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Result<String, Refusal> {
    let tokens = AdminTokens::load(&state.data_dir).map_err(|e| {
        tracing::error!(target: "postwire::admin", error = %e, "cannot read the admin tokens");
        Refusal::Internal("cannot read the admin tokens".into())
    })?;
    if tokens.is_empty() {
        return Err(Refusal::NotFound);
    }
    let now = Instant::now();
    if let Some(ip) = peer {
        state.failures.check(ip, now).map_err(Refusal::Limited)?;
    }
    let secret = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match secret.and_then(|s| tokens.authenticate(s)) {
        Some(name) => Ok(name),
        None => {
            if let Some(ip) = peer {
                state.failures.record(ip, now);
            }
            tracing::warn!(target: "postwire::admin", peer = ?peer, "admin request refused: unknown admin token");
            Err(Refusal::Unauthorized)
        }
    }
}

/// The client's address, when the server was given one (not in tests that
/// serve the router bare).
struct Peer(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<ConnInfo>>()
                .map(|c| c.0.addr.ip()),
        ))
    }
}

fn peer_of(conn: Peer) -> Option<IpAddr> {
    conn.0
}

async fn list(
    State(state): State<AdminState>,
    conn: Peer,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Result<Response, Refusal> {
    let admin = authenticate(&state, &headers, peer_of(conn))?;
    let all = state.spool.messages().await.map_err(internal)?;
    let (views, next) = view::page(all, &filter).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    tracing::info!(target: "postwire::admin", admin = %admin, count = views.len(), "listed messages");
    let messages: Vec<_> = views.iter().map(view::summary).collect();
    Ok(Json(json!({"messages": messages, "next": next})).into_response())
}

/// A spool error as a 500 (logged; the operator sees its text).
fn internal(e: crate::spool::SpoolError) -> Refusal {
    tracing::error!(target: "postwire::admin", error = %e, "spool error");
    Refusal::Internal(e.to_string())
}

async fn lookup(state: &AdminState, id: &str) -> Result<(Key, MessageView), Refusal> {
    let key = view::decode_id(id).ok_or(Refusal::NotFound)?;
    let v = state
        .spool
        .message(&key)
        .await
        .map_err(internal)?
        .ok_or(Refusal::NotFound)?;
    Ok((key, v))
}

async fn detail(state: &AdminState, key: &Key, v: &MessageView) -> serde_json::Value {
    let bytes = match state.spool.message_bytes(key).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(target: "postwire::admin", error = %e, "cannot read a message's headers");
            None
        }
    };
    view::detail(v, bytes.as_deref())
}

async fn show(
    State(state): State<AdminState>,
    conn: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let admin = authenticate(&state, &headers, peer_of(conn))?;
    let (key, v) = lookup(&state, &id).await?;
    tracing::info!(target: "postwire::admin", admin = %admin, token = %key.token, id = %key.id, "showed a message");
    Ok(Json(detail(&state, &key, &v).await).into_response())
}

async fn act(
    state: AdminState,
    conn: Peer,
    headers: HeaderMap,
    id: String,
    actions: Vec<Control>,
    what: &'static str,
) -> Result<Response, Refusal> {
    let admin = authenticate(&state, &headers, peer_of(conn))?;
    let (key, _) = lookup(&state, &id).await?;
    for action in actions {
        let answer = state.spool.control(key.clone(), action).await.map_err(|e| {
            tracing::error!(target: "postwire::admin", admin = %admin, token = %key.token, id = %key.id, action = what, error = %e, "admin action failed");
            Refusal::Internal(e.to_string())
        })?;
        match answer {
            Controlled::Done => {}
            Controlled::NotFound => return Err(Refusal::NotFound),
            Controlled::Conflict(m) => {
                tracing::info!(target: "postwire::admin", admin = %admin, token = %key.token, id = %key.id, action = what, refused = %m, "admin action refused");
                return Err(Refusal::Conflict(m));
            }
            Controlled::Unsupported => {
                return Err(Refusal::Conflict(
                    "this spool does not support admin actions".into(),
                ));
            }
        }
    }
    tracing::info!(target: "postwire::admin", admin = %admin, token = %key.token, id = %key.id, action = what, "admin action done");
    let message = match state.spool.message(&key).await.map_err(internal)? {
        Some(v) => detail(&state, &key, &v).await,
        None => json!(null),
    };
    Ok(Json(json!({"ok": true, "message": message})).into_response())
}

async fn retry(
    State(state): State<AdminState>,
    conn: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    act(state, conn, headers, id, vec![Control::Retry], "retry").await
}

async fn hold(
    State(state): State<AdminState>,
    conn: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    act(state, conn, headers, id, vec![Control::Hold], "hold").await
}

async fn release(
    State(state): State<AdminState>,
    conn: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    act(state, conn, headers, id, vec![Control::Release], "release").await
}

async fn cancel(
    State(state): State<AdminState>,
    conn: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    act(
        state,
        conn,
        headers,
        id,
        vec![Control::Cancel(CANCEL_REASON.into())],
        "cancel",
    )
    .await
}

/// `?force=true` on delete.
#[derive(Debug, Default, serde::Deserialize)]
struct Force {
    #[serde(default)]
    force: Option<String>,
}

async fn remove(
    State(state): State<AdminState>,
    conn: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(force): Query<Force>,
) -> Result<Response, Refusal> {
    let force = matches!(force.force.as_deref(), Some("true" | "1" | "yes"));
    let mut actions = Vec::new();
    if force {
        // Cancel first when some recipient is not final (a final message
        // would refuse the cancel).
        if let Some(key) = view::decode_id(&id)
            && let Ok(Some(v)) = state.spool.message(&key).await
            && v.rcpts.iter().any(|r| !r.state.is_final())
        {
            actions.push(Control::Cancel(CANCEL_REASON.into()));
        }
    }
    actions.push(Control::Delete);
    act(
        state,
        conn,
        headers,
        id,
        actions,
        if force { "delete --force" } else { "delete" },
    )
    .await
}

async fn summary(
    State(state): State<AdminState>,
    conn: Peer,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let admin = authenticate(&state, &headers, peer_of(conn))?;
    let d = state.spool.depth();
    let (mut queued, mut held, mut deferred, mut delivered, mut failed) = (0, 0, 0, 0, 0);
    for v in state.spool.messages().await.map_err(internal)? {
        match view::message_state(&v) {
            "held" => held += 1,
            "delivered" => delivered += 1,
            "failed" | "partial" => failed += 1,
            _ => {
                if v.rcpts
                    .iter()
                    .any(|r| matches!(r.state, RcptState::Deferred { .. }))
                {
                    deferred += 1;
                } else {
                    queued += 1;
                }
            }
        }
    }
    tracing::info!(target: "postwire::admin", admin = %admin, "read the summary");
    Ok(Json(json!({
        "depth": {"queued": d.queued, "inFlight": d.in_flight, "damaged": d.damaged},
        "counts": {"queued": queued, "held": held, "deferred": deferred, "delivered": delivered, "failed": failed},
    }))
    .into_response())
}
