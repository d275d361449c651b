//! One-off HTTP/1.1 calls for setup: readiness polls, init, unseal, mounts,
//! seeding secrets. Each call opens its own connection and is bounded by a
//! timeout; nothing here is measured.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// The header Vault and OpenBao read the client token from.
pub const TOKEN_HEADER: &str = "x-vault-token";

/// How long one setup call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a keep-alive HTTP/1.1 connection to `addr` and drives it in the
/// background; the returned sender issues requests on it.
pub async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection's own error, if any, reaches the caller through the
        // next `send_request`, so it is not reported twice here.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Builds a request for `path` (below `/v1/`) with the headers every call
/// needs: `Host`, the token when given, and a JSON content type with a body;
/// then `extra` (e.g. `X-Vault-Wrap-TTL`).
pub fn build_request(
    addr: SocketAddr,
    method: Method,
    uri: hyper::Uri,
    token: Option<&HeaderValue>,
    body: Option<Bytes>,
    extra: &HeaderMap,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(HOST, addr.to_string());
    for (name, value) in extra {
        builder = builder.header(name, value);
    }
    if let Some(token) = token {
        builder = builder.header(TOKEN_HEADER, token.clone());
    }
    let body = match body {
        Some(bytes) => {
            builder = builder.header(CONTENT_TYPE, "application/json");
            bytes
        }
        None => Bytes::new(),
    };
    Ok(builder.body(Full::new(body))?)
}

/// The URI of a logical path: `kv1/foo` becomes `/v1/kv1/foo`.
pub fn v1_uri(path: &str) -> anyhow::Result<hyper::Uri> {
    format!("/v1/{}", path.trim_start_matches('/'))
        .parse()
        .with_context(|| format!("invalid request path {path:?}"))
}

/// Sends one request on a fresh connection and returns the status and the
/// body parsed as JSON (`Value::Null` when the body is empty or not JSON).
pub async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&HeaderValue>,
    body: Option<&Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    call_uri(addr, method, v1_uri(path)?, token, body).await
}

/// Like [`call`], for any URI rather than a path below `/v1/` (e.g.
/// Gatekeeper's `/status`).
pub async fn call_uri(
    addr: SocketAddr,
    method: Method,
    uri: hyper::Uri,
    token: Option<&HeaderValue>,
    body: Option<&Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let body = body.map(|b| Bytes::from(b.to_string()));
    let path = uri.path().to_string();
    let req = build_request(addr, method.clone(), uri, token, body, &HeaderMap::new())?;
    let exchange = async {
        let mut sender = connect(addr).await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((status, parse_json(&bytes)))
    };
    tokio::time::timeout(CALL_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("{method} {path}: no answer within {CALL_TIMEOUT:?}"))?
}

/// Like [`call`], but an answer other than 2xx is an error that names the
/// request and carries the server's `errors` list.
pub async fn call_ok(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&HeaderValue>,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let (status, value) = call(addr, method.clone(), path, token, body).await?;
    if !status.is_success() {
        return Err(anyhow!(
            "{method} /v1/{path} answered {status}: {}",
            value.get("errors").unwrap_or(&Value::Null)
        ));
    }
    Ok(value)
}

/// Parses a response body as JSON, mapping empty or non-JSON bodies to null.
fn parse_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// A token as a header value, marked sensitive so hyper never prints it.
pub fn token_header(token: &str) -> anyhow::Result<HeaderValue> {
    let mut value = HeaderValue::from_str(token).context("token is not a valid header value")?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_uri_prefixes_the_api_version_once() {
        assert_eq!(v1_uri("kv1/a").unwrap().path(), "/v1/kv1/a");
        assert_eq!(v1_uri("/sys/health").unwrap().path(), "/v1/sys/health");
    }

    #[test]
    fn request_carries_host_token_extra_headers_and_json_type_only_with_a_body() {
        let addr: SocketAddr = "127.0.0.1:8200".parse().unwrap();
        let token = token_header("s.secret").unwrap();
        let req = build_request(
            addr,
            Method::PUT,
            v1_uri("kv1/a").unwrap(),
            Some(&token),
            Some(Bytes::from_static(b"{}")),
            &HeaderMap::from_iter([(
                hyper::header::HeaderName::from_static("x-vault-wrap-ttl"),
                HeaderValue::from_static("5m"),
            )]),
        )
        .unwrap();
        assert_eq!(req.headers()[HOST], "127.0.0.1:8200");
        assert_eq!(req.headers()[TOKEN_HEADER], "s.secret");
        assert!(req.headers()[TOKEN_HEADER].is_sensitive());
        assert_eq!(req.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(req.headers()["X-Vault-Wrap-TTL"], "5m");

        let get = build_request(
            addr,
            Method::GET,
            v1_uri("sys/health").unwrap(),
            None,
            None,
            &HeaderMap::new(),
        )
        .unwrap();
        assert!(get.headers().get(CONTENT_TYPE).is_none());
        assert!(get.headers().get(TOKEN_HEADER).is_none());
    }

    #[test]
    fn non_json_bodies_parse_as_null() {
        assert_eq!(parse_json(b""), Value::Null);
        assert_eq!(parse_json(b"<html>"), Value::Null);
        assert_eq!(parse_json(br#"{"a":1}"#)["a"], 1);
    }
}
