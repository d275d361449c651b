//! Turning a logical [`Response`] or an [`Error`] into HTTP, exactly as
//! Vault/OpenBao render them: the standard envelope, bare (`raw`) bodies,
//! 204 for empty answers and `{"errors": [...]}` for failures.

use axum::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde_json::Value;
use strongroom_sdk::logical::Response;
use strongroom_sdk::Error;

/// Renders a handler's answer to request `request_id`.
pub fn render_response(response: &Response, request_id: &str) -> http::Response<Body> {
    with_headers(render_body(response, request_id), &response.headers)
}

/// Adds `extra` headers (a quota's `X-RateLimit-*`) to `resp`; a name or
/// value HTTP cannot carry is skipped.
fn with_headers(
    mut resp: http::Response<Body>,
    extra: &[(String, String)],
) -> http::Response<Body> {
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

/// The answer's status and body.
fn render_body(response: &Response, request_id: &str) -> http::Response<Body> {
    if let Some(raw) = &response.raw {
        if let (Some(content_type), Value::String(body)) = (raw.content_type, &raw.body) {
            return text(raw.status, content_type, body.clone());
        }
        return json(raw.status, &raw.body);
    }
    if response.is_empty() {
        return empty(StatusCode::NO_CONTENT);
    }
    // A status with nothing else is answered without a body (OpenBao's
    // KV v2 answers a PATCH of a missing key so).
    if let Some(status) = response.status {
        let bare = Response {
            status: None,
            ..response.clone()
        };
        if bare.is_empty() {
            return match StatusCode::from_u16(status) {
                Ok(status) => empty(status),
                Err(_) => render_error(&Error::internal("invalid response status")),
            };
        }
    }
    // Serialised from the response's own parts: no copy of the data.
    match serde_json::to_vec(&response.envelope_ref(request_id)) {
        Ok(bytes) => json_bytes(response.status.unwrap_or(200), bytes),
        Err(e) => render_error(&Error::internal(format!("rendering the response: {e}"))),
    }
}

/// Renders an error: its status and `{"errors": [...]}`.
pub fn render_error(error: &Error) -> http::Response<Body> {
    with_headers(json(error.status(), &error.body()), error.headers())
}

/// A JSON response with Vault's headers. An out-of-range status (a backend
/// bug) becomes a 500 rather than a panic.
pub fn json(status: u16, body: &Value) -> http::Response<Body> {
    // Serialising a `Value` cannot fail: its map keys are always strings.
    let bytes = strongroom_sdk::json::value_to_vec(body).unwrap_or_default();
    json_bytes(status, bytes)
}

/// A response with an already serialised JSON body and Vault's headers.
fn json_bytes(status: u16, bytes: Vec<u8>) -> http::Response<Body> {
    let Ok(status) = StatusCode::from_u16(status) else {
        tracing::warn!(status, "handler answered with an invalid HTTP status");
        return render_error(&Error::internal("invalid response status"));
    };
    let mut resp = http::Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A non-JSON body (Prometheus text, OpenBao's plain-text refusals) with
/// Vault's `Cache-Control`.
pub fn text(status: u16, content_type: &'static str, body: String) -> http::Response<Body> {
    let Ok(status) = StatusCode::from_u16(status) else {
        return render_error(&Error::internal("invalid response status"));
    };
    let mut resp = http::Response::new(Body::from(body));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `status` with no body and no content type.
fn empty(status: StatusCode) -> http::Response<Body> {
    let mut resp = http::Response::new(Body::empty());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
