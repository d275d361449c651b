//! The axum application: one handler for every method under `/v1/` that
//! reads the body within the size limit, parses the request, calls the
//! [`RequestHandler`] and renders its answer; a JSON 404 for everything else.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderValue, Method, Version};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use strongroom_sdk::logical::RequestHandler;
use strongroom_sdk::Error;

use crate::conn::BodyReadTimeout;
use crate::forward::{Decision, Forward, FORWARDED_FOR_HEADER};
use crate::parse::{parse_request, NAMESPACE_HEADER};
use crate::render::{json, render_error, render_response, text};

/// Listener options that shape how requests are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpOptions {
    /// The largest request body accepted, in bytes; larger ones are refused
    /// with 413. `u64::MAX` means unlimited.
    pub max_request_size: u64,
    /// Serve the unauthenticated `sys/generate-root/{attempt,update}`
    /// (OpenBao's `disable_unauthed_generate_root_endpoints = false`);
    /// otherwise they answer 405.
    pub unauthed_generate_root: bool,
    /// Serve the unauthenticated `sys/rekey/{init,update,verify}`
    /// (OpenBao's `disable_unauthed_rekey_endpoints = false`); otherwise
    /// they answer 405.
    pub unauthed_rekey: bool,
    /// The listener's `telemetry` block.
    pub metrics: MetricsAccess,
}

/// A listener's `telemetry { ... }` options for `/v1/sys/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsAccess {
    /// `unauthenticated_metrics_access`: `sys/metrics` needs no token.
    pub unauthenticated: bool,
    /// `disallow_metrics`: `sys/metrics` answers OpenBao's 403 here.
    pub disallow: bool,
    /// `metrics_only`: every other path answers OpenBao's 404 here.
    pub only: bool,
}

impl HttpOptions {
    /// Vault's default `max_request_size`: 32 MiB.
    pub const DEFAULT_MAX_REQUEST_SIZE: u64 = 32 * 1024 * 1024;
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_request_size: Self::DEFAULT_MAX_REQUEST_SIZE,
            unauthed_generate_root: false,
            unauthed_rekey: false,
            metrics: MetricsAccess::default(),
        }
    }
}

/// What every request handler shares.
struct AppState {
    handler: Arc<dyn RequestHandler>,
    opts: HttpOptions,
    extras: RouterExtras,
}

/// HA additions to a listener's router.
#[derive(Clone, Default)]
pub struct RouterExtras {
    /// Forwarding to the active node, on a node that may be a standby.
    pub forward: Option<Arc<dyn Forward>>,
    /// This is the cluster listener: requests come from other nodes (mutual
    /// TLS), are never forwarded again, and carry the client's address in
    /// [`FORWARDED_FOR_HEADER`].
    pub cluster: bool,
}

/// Builds the HTTP API around `handler`.
///
/// Every method on `/v1/` and `/v1/{*path}` goes to one handler that maps
/// methods itself (axum has no `LIST`). Other paths answer 404
/// `{"errors":[]}`. The client address is read from a
/// [`ConnectInfo<SocketAddr>`] request extension, which [`serve`](crate::serve)
/// inserts (as does axum's `into_make_service_with_connect_info`).
pub fn router(handler: Arc<dyn RequestHandler>, opts: HttpOptions) -> Router {
    router_with(handler, opts, RouterExtras::default())
}

/// [`router`] with HA's forwarding seam (see [`crate::Forward`]).
pub fn router_with(
    handler: Arc<dyn RequestHandler>,
    opts: HttpOptions,
    extras: RouterExtras,
) -> Router {
    let state = Arc::new(AppState {
        handler,
        opts,
        extras,
    });
    Router::new()
        .route("/v1/", any(logical))
        .route("/v1/{*path}", any(logical))
        .fallback(not_found)
        .with_state(state)
}

/// Paths outside `/v1/`: OpenBao answers unknown API paths with a JSON 404
/// and an empty error list. (Without its UI, `/` and `/ui` get Go's plain
/// text 404; a JSON one everywhere is kinder to clients.)
async fn not_found(method: Method, uri: http::Uri) -> http::Response<Body> {
    let resp = json(404, &serde_json::json!({ "errors": [] }));
    tracing::debug!(%method, path = uri.path(), status = 404, "http request");
    resp
}

/// The `/v1/` handler.
async fn logical(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
) -> http::Response<Body> {
    let (parts, body) = req.into_parts();
    let peer_addr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let peer = peer_addr.map(|a| a.ip());
    // A request forwarded by a standby names its client's address only.
    let remote_port = peer_addr
        .filter(|_| !state.extras.cluster)
        .map(|a| a.port());
    let remote = if state.extras.cluster {
        parts
            .headers
            .get(FORWARDED_FOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .or(peer)
    } else {
        peer
    };

    let mut resp = if head_size(&parts) > crate::serve::MAX_HEADER_BYTES {
        // hyper's read buffer bounds the head only roughly; this is Go's
        // exact limit on the request line and header bytes.
        json(
            431,
            &serde_json::json!({ "errors": ["request header fields too large"] }),
        )
    } else {
        match answer(&state, &parts, body, remote, remote_port).await {
            Ok(resp) => resp,
            Err(err) => {
                if err.status() >= 500 {
                    tracing::warn!(error = %err, path = parts.uri.path(), "request failed");
                }
                render_error(&err)
            }
        }
    };
    let unread_body = matches!(
        resp.status(),
        http::StatusCode::PAYLOAD_TOO_LARGE
            | http::StatusCode::REQUEST_TIMEOUT
            | http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    if unread_body && parts.version < Version::HTTP_2 {
        // The rest of the body was never read: the connection cannot be
        // reused for another request.
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(ns) = parts.headers.get(NAMESPACE_HEADER) {
        // OpenBao echoes the namespace it was asked for.
        resp.headers_mut().insert(NAMESPACE_HEADER, ns.clone());
    }
    tracing::debug!(
        method = %parts.method,
        path = parts.uri.path(),
        status = resp.status().as_u16(),
        "http request"
    );
    resp
}

/// The size of a request head as Go's `MaxHeaderBytes` counts it: the
/// request line and every header line.
fn head_size(parts: &http::request::Parts) -> usize {
    let line = parts.method.as_str().len()
        + parts.uri.path_and_query().map_or(1, |p| p.as_str().len())
        + 11;
    parts.headers.iter().fold(line, |n, (name, value)| {
        n.saturating_add(name.as_str().len() + value.len() + 4)
    })
}

/// Reads, parses and answers one request.
async fn answer(
    state: &AppState,
    parts: &http::request::Parts,
    body: Body,
    remote: Option<std::net::IpAddr>,
    remote_port: Option<u16>,
) -> Result<http::Response<Body>, Error> {
    // In a namespace, the core answers these paths (its 400: they are the
    // root namespace's only), as OpenBao resolves the namespace first.
    let in_namespace = parts
        .headers
        .get(NAMESPACE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('/'))
        .is_some_and(|v| !v.is_empty() && v != "root");
    if !in_namespace && refused_unauthed(&state.opts, parts.uri.path()) {
        return Err(Error::UnsupportedOperation);
    }
    let is_metrics = parts.uri.path().trim_end_matches('/') == "/v1/sys/metrics";
    let access = state.opts.metrics;
    if access.only && !is_metrics {
        return Ok(text(
            404,
            "text/plain; charset=utf-8",
            "this listener only serves the metrics endpoint\n".into(),
        ));
    }
    if is_metrics && access.disallow {
        return Ok(text(
            403,
            "text/plain; charset=utf-8",
            "metrics endpoint is disabled for this listener\n".into(),
        ));
    }
    if is_metrics && access.unauthenticated && !in_namespace && parts.method == Method::GET {
        let format = metrics_format(parts);
        return state
            .handler
            .metrics(&format)
            .map(|r| render_response(&r, ""));
    }
    let max = state.opts.max_request_size;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(Error::PayloadTooLarge);
    }
    let body = if matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
        match read_body(body, max).await {
            Ok(body) => body,
            Err(BodyFailure::TimedOut) => {
                // The client did not send its body within the listener's
                // `http_read_timeout` (a slow-body client).
                return Ok(json(
                    408,
                    &serde_json::json!({ "errors": [BodyReadTimeout.to_string()] }),
                ));
            }
            Err(BodyFailure::Refused(e)) => return Err(e),
        }
    } else {
        Bytes::new()
    };
    let mut fallback = None;
    if let (Some(forward), false) = (&state.extras.forward, state.extras.cluster) {
        match forward.decide(parts) {
            Decision::Local => {}
            Decision::TryLocal { redirect } => fallback = Some((forward, redirect)),
            Decision::Forward => return forward.forward(parts, body, remote).await,
            Decision::Redirect(location) => return Ok(redirect_to(&location)),
        }
    }
    let mut req = parse_request(&parts.method, &parts.uri, &parts.headers, &body, remote)?;
    req.remote_port = remote_port;
    if is_metrics && !req.data.contains_key("format") && wants_openmetrics(parts) {
        req.data.insert("format".into(), "prometheus".into());
    }
    if state.handler.wants_headers() {
        req.headers = Some(parts.headers.clone());
    }
    let request_id = req.id.clone();
    match state.handler.handle_request(req).await {
        Ok(response) => Ok(render_response(&response, &request_id)),
        // A standby could not answer it itself (it would write, or needs
        // what only the active node has): the active node does.
        Err(Error::Standby) if fallback.is_some() => match fallback {
            Some((_, Some(location))) => Ok(redirect_to(&location)),
            Some((forward, None)) => forward.forward(parts, body, remote).await,
            None => Err(Error::Standby),
        },
        Err(e) => Err(e),
    }
}

/// Whether the client asked for Prometheus text by its `Accept` header
/// (`application/openmetrics-text`, as Prometheus scrapers send it).
fn wants_openmetrics(parts: &http::request::Parts) -> bool {
    parts
        .headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

/// The `sys/metrics` format asked for: `?format=`, else `prometheus` when
/// the `Accept` header asks for OpenMetrics text, else JSON (`""`).
fn metrics_format(parts: &http::request::Parts) -> String {
    let from_query = parts.uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == "format")
            .map(|(_, v)| v.to_string())
    });
    match from_query {
        Some(f) => f,
        None if wants_openmetrics(parts) => "prometheus".into(),
        None => String::new(),
    }
}

/// A 307 to `location`.
fn redirect_to(location: &str) -> http::Response<Body> {
    let mut resp = http::Response::new(Body::empty());
    *resp.status_mut() = http::StatusCode::TEMPORARY_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp
}

/// Why a request body could not be read.
enum BodyFailure {
    /// It did not arrive within the read timeout.
    TimedOut,
    /// Too large, or the connection broke: the error to answer with.
    Refused(Error),
}

/// Whether `path` is one of the legacy unauthenticated operator endpoints
/// this listener does not serve. OpenBao registers them only when the
/// listener enables them; otherwise they answer 405 "unsupported operation".
fn refused_unauthed(opts: &HttpOptions, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return false;
    };
    let rest = rest.trim_end_matches('/');
    let generate_root = matches!(
        rest,
        "sys/generate-root/attempt" | "sys/generate-root/update"
    );
    let rekey = matches!(
        rest,
        "sys/rekey/init"
            | "sys/rekey/update"
            | "sys/rekey/verify"
            | "sys/rekey-recovery-key/init"
            | "sys/rekey-recovery-key/update"
            | "sys/rekey-recovery-key/verify"
    );
    (generate_root && !opts.unauthed_generate_root) || (rekey && !opts.unauthed_rekey)
}

/// Reads the whole body, refusing it as soon as it grows past `max` bytes.
async fn read_body(body: Body, max: u64) -> Result<Bytes, BodyFailure> {
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyFailure::Refused(Error::PayloadTooLarge))
        }
        Err(e) if caused_by_timeout(&*e) => Err(BodyFailure::TimedOut),
        Err(e) => {
            tracing::debug!(error = %e, "failed to read request body");
            Err(BodyFailure::Refused(Error::bad_request(
                "failed to read request body",
            )))
        }
    }
}

/// Whether `e` or one of its sources is a [`BodyReadTimeout`].
fn caused_by_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyReadTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}
