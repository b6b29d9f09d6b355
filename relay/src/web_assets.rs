//! The composer page (web/, issue 8): serves the built files of `web/dist` at
//! `/`, and the operator view (`admin.html`, issue 17) at `/admin`, either from a directory chosen at start-up (`--web-dir` /
//! `POSTWIRE_WEB_DIR`, handy while working on the page) or, without one, from
//! the copy embedded in the binary at compile time, so that `postwire serve`
//! brings the page up with nothing else installed.
//!
//! `scripts/build-web.sh` builds `web/dist` before the binary is compiled.
//! When `web/dist` did not exist at compile time the embedded copy is a short
//! page that says how to build it, never an empty answer.
//!
//! This is our own small handler rather than tower-http's `ServeDir`: the page
//! needs one path check, a dozen content types and a few security headers,
//! which is less than the dependency would bring in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Environment variable naming a directory to serve the page from instead of
/// the embedded copy (the `serve` command's `--web-dir` flag reads it).
pub const WEB_DIR_ENV: &str = "POSTWIRE_WEB_DIR";

/// The page shown when the binary was compiled before `web/dist` was built.
pub const NOT_BUILT_HTML: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>postwire composer: not built</title></head><body>\
<h1>The composer page was not built into this binary</h1>\
<p>Build the binary with the page: <code>scripts/build-release.sh</code> \
(or <code>scripts/build-web.sh</code>, then <code>cargo build -p postwire-relay</code>).</p>\
<p>Or serve a built copy from a directory: <code>postwire serve --web-dir web/dist</code> \
(or <code>POSTWIRE_WEB_DIR=web/dist</code>).</p></body></html>\n";

/// Content-Security-Policy of the page: its own scripts and WebAssembly, the
/// relay's WebSocket (`connect-src 'self'`, which covers `ws:`/`wss:` to the
/// page's own host in CSP 3; no other host, so nothing can be sent elsewhere), inline styles and `data:`/`blob:` images for message
/// previews (which run in a sandboxed frame without scripts), nothing remote.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
frame-src 'self' blob: data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

#[derive(rust_embed::Embed)]
#[folder = "../web/dist"]
#[allow_missing = true]
struct Embedded;

/// Where the files come from.
#[derive(Debug)]
enum Source {
    /// A directory on disk, read on every request.
    Dir(PathBuf),
    /// The copy compiled into the binary.
    Embedded,
}

/// Why a file of the page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum WebAssetError {
    /// The request path has an empty, `.` or `..` segment, a backslash or a NUL.
    #[error("bad path {0:?}")]
    BadPath(String),
    /// No such file in the page.
    #[error("no such file: {0}")]
    NotFound(String),
    /// The directory given with `--web-dir` could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// The error of the read.
        source: std::io::Error,
    },
}

impl IntoResponse for WebAssetError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebAssetError::BadPath(_) => StatusCode::BAD_REQUEST,
            WebAssetError::NotFound(_) => StatusCode::NOT_FOUND,
            WebAssetError::Io { .. } => {
                tracing::warn!(error = %self, "composer page file unreadable");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let text = match &self {
            WebAssetError::Io { .. } => "cannot read the file".to_string(),
            other => other.to_string(),
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response()
    }
}

/// The router that serves the composer page at `/` and the operator view at
/// `/admin` (mount it with
/// `Router::merge`; its catch-all route yields to the relay's own routes).
/// `dir`: serve from this directory (e.g. `web/dist`); `None`: serve the copy
/// embedded at compile time.
pub fn router(dir: Option<PathBuf>) -> Router {
    let source = Arc::new(match dir {
        Some(d) => Source::Dir(d),
        None => Source::Embedded,
    });
    Router::new()
        .route("/", get(index))
        .route("/admin", get(admin_index))
        .route("/{*path}", get(file))
        .with_state(source)
}

/// Whether the embedded copy is the built page (false: the "not built" note).
pub fn embedded_page_built() -> bool {
    Embedded::get("index.html").is_some()
}

/// One line for the start-up log: where the page is served from.
pub fn describe(dir: Option<&Path>) -> String {
    match dir {
        Some(d) => format!("composer page served from {}", d.display()),
        None if embedded_page_built() => "composer page embedded in the binary".to_string(),
        None => "composer page not built into this binary (run scripts/build-web.sh); / shows how"
            .to_string(),
    }
}

async fn index(State(source): State<Arc<Source>>) -> Result<Response, WebAssetError> {
    serve(&source, "index.html").await
}

async fn admin_index(State(source): State<Arc<Source>>) -> Result<Response, WebAssetError> {
    serve(&source, "admin.html").await
}

async fn file(
    State(source): State<Arc<Source>>,
    UrlPath(path): UrlPath<String>,
) -> Result<Response, WebAssetError> {
    serve(&source, &path).await
}

/// Checks a request path: relative segments only, nothing that climbs out.
fn check_path(path: &str) -> Result<(), WebAssetError> {
    let ok = !path.is_empty()
        && !path.contains(['\\', '\0'])
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if ok {
        Ok(())
    } else {
        Err(WebAssetError::BadPath(path.chars().take(200).collect()))
    }
}

async fn serve(source: &Source, path: &str) -> Result<Response, WebAssetError> {
    check_path(path)?;
    let bytes: Vec<u8> = match source {
        Source::Embedded => match Embedded::get(path) {
            Some(f) => f.data.into_owned(),
            None if path == "index.html" || path == "admin.html" => {
                NOT_BUILT_HTML.as_bytes().to_vec()
            }
            None => return Err(WebAssetError::NotFound(path.to_string())),
        },
        Source::Dir(dir) => {
            let full = dir.join(path);
            match tokio::fs::read(&full).await {
                Ok(b) => b,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
                    ) =>
                {
                    return Err(WebAssetError::NotFound(path.to_string()));
                }
                Err(source) => return Err(WebAssetError::Io { path: full, source }),
            }
        }
    };
    let content_type = content_type(path);
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if content_type.starts_with("text/html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    Ok(resp)
}

/// The content type of a file of the page, by its extension.
fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Starts the router on a free local port and returns its address.
    async fn start(router: Router) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    }

    /// One raw HTTP/1.1 GET: (status, lower-cased head, body).
    async fn get_raw(addr: std::net::SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: relay.test\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read");
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of head");
        let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
        let status = head[9..12].parse().expect("status");
        (status, head, buf[split + 4..].to_vec())
    }

    fn page_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("index.html"),
            "<!doctype html><title>t</title>",
        )
        .expect("w");
        std::fs::create_dir(dir.path().join("assets")).expect("mkdir");
        std::fs::write(
            dir.path().join("admin.html"),
            "<!doctype html><title>admin</title>",
        )
        .expect("w");
        std::fs::write(dir.path().join("assets/index.js"), "console.log(1)").expect("w");
        std::fs::write(dir.path().join("assets/p.wasm"), b"\0asm\x01\0\0\0").expect("w");
        dir
    }

    #[tokio::test]
    async fn a_directory_is_served_with_content_types_and_a_csp_on_the_page() {
        let dir = page_dir();
        let addr = start(router(Some(dir.path().to_path_buf()))).await;
        let (status, head, body) = get_raw(addr, "/").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-type: text/html; charset=utf-8"),
            "{head}"
        );
        assert!(
            head.contains("content-security-policy: default-src 'self'"),
            "{head}"
        );
        assert_eq!(body, b"<!doctype html><title>t</title>");
        let (status, head, body) = get_raw(addr, "/assets/index.js").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: text/javascript"), "{head}");
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert_eq!(body, b"console.log(1)");
        let (_, head, _) = get_raw(addr, "/assets/p.wasm").await;
        assert!(head.contains("content-type: application/wasm"), "{head}");
        // The operator view at /admin, under the same CSP.
        let (status, head, body) = get_raw(addr, "/admin").await;
        assert_eq!(status, 200);
        assert!(
            head.contains("content-security-policy: default-src 'self'"),
            "{head}"
        );
        assert_eq!(body, b"<!doctype html><title>admin</title>");
    }

    #[tokio::test]
    async fn paths_that_climb_out_are_refused_and_missing_files_are_404() {
        let dir = page_dir();
        std::fs::write(
            dir.path()
                .parent()
                .expect("parent")
                .join("postwire-secret.txt"),
            "x",
        )
        .expect("w");
        let addr = start(router(Some(dir.path().to_path_buf()))).await;
        for p in [
            "/..%2fpostwire-secret.txt",
            "/assets/..%2F..%2Fpostwire-secret.txt",
            "/a%5c..%5cb",
            "/a//b",
        ] {
            let (status, _, body) = get_raw(addr, p).await;
            assert_eq!(status, 400, "{p}: {}", String::from_utf8_lossy(&body));
            assert!(
                String::from_utf8_lossy(&body).starts_with("bad path"),
                "{p}"
            );
        }
        let (status, _, body) = get_raw(addr, "/assets/nope.js").await;
        assert_eq!(status, 404);
        assert_eq!(body, b"no such file: assets/nope.js");
        let (status, _, _) = get_raw(addr, "/assets").await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn the_embedded_copy_serves_the_built_page_or_says_how_to_build_it() {
        let addr = start(router(None)).await;
        let (status, head, body) = get_raw(addr, "/").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: text/html"), "{head}");
        match Embedded::get("index.html") {
            Some(f) => {
                assert_eq!(body, f.data.as_ref());
                assert!(embedded_page_built());
            }
            None => {
                assert_eq!(body, NOT_BUILT_HTML.as_bytes());
                assert!(describe(None).contains("scripts/build-web.sh"));
            }
        }
        let (status, _, _) = get_raw(addr, "/no-such-asset.js").await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn the_page_yields_to_other_routes_when_merged() {
        let other = Router::new().route("/healthz", get(|| async { "ok" }));
        let addr = start(other.merge(router(None))).await;
        let (status, _, body) = get_raw(addr, "/healthz").await;
        assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
    }
}
