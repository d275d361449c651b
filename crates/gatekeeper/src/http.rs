//! Gatekeeper's HTTP API (the original's, see the seed): `POST /token`,
//! `GET /status` and `GET /`, `GET /metrics`, `POST /unseal`, `POST /seal`,
//! `POST /policies/reload`. Builds the axum router and decides the
//! caller's address (peer, `X-Forwarded-For` from trusted proxies, or
//! from a Gatekeeper peer forwarding a request) and whether a caller may
//! use the admin endpoints. With `--peers`, a sealed instance forwards
//! `/token` and `/policies/reload` fans out ([`crate::peers`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ipnet::IpNet;
use serde_json::{json, Value};

use crate::peers::{Peers, PROXY_HEADER};
use crate::service::{canonical_ip, Gatekeeper, TokenError, UnsealFailure};
use crate::unseal::UnsealMethod;
use crate::vault::Token;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The service.
    pub gk: Arc<Gatekeeper>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// The version shown by `/status`.
    pub version: String,
    /// The peers, with `--peers`.
    pub peers: Option<Arc<Peers>>,
}

/// The router. The caller's address comes from the
/// `ConnectInfo<SocketAddr>` request extension (set by the listener).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(status))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/token", post(token))
        .route("/unseal", post(unseal))
        .route("/seal", post(seal))
        .route("/policies/reload", post(reload))
        .with_state(state)
}

/// The standard body: `{"unsealed", "message"}` or `{"unsealed", "error"}`.
fn standard(gk: &Gatekeeper, status: StatusCode, message: Result<String, String>) -> Response {
    let body = match message {
        Ok(m) => json!({ "unsealed": gk.is_unsealed(), "message": m }),
        Err(e) => json!({ "unsealed": gk.is_unsealed(), "error": e }),
    };
    (status, Json(body)).into_response()
}

fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The caller: the peer, or, when the peer is a trusted proxy, the
/// right-most `X-Forwarded-For` address that is not a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = canonical_ip(peer?);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().parse::<IpAddr>().map(canonical_ip))
        .collect::<Result<_, _>>()
        // A malformed header from a trusted proxy: believe only the peer.
        .unwrap_or_default();
    let mut client = peer;
    for ip in forwarded.into_iter().rev() {
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// The caller of a request: with `--peers`, a request marked with
/// [`PROXY_HEADER`] that comes from a peer address is believed about the
/// caller (the right-most `X-Forwarded-For` address); otherwise
/// [`client_ip`].
pub fn caller_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
    peers: Option<&Peers>,
) -> Option<IpAddr> {
    if let (Some(ip), Some(peers)) = (peer, peers) {
        if headers.contains_key(PROXY_HEADER) && peers.is_peer_addr(ip) {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back();
            if let Some(client) = forwarded {
                return Some(canonical_ip(client));
            }
        }
    }
    client_ip(peer, headers, trusted)
}

fn peer_of(parts: &axum::http::Extensions) -> Option<IpAddr> {
    parts
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

/// Formats whole seconds as Go's `time.Duration` prints them (`1h40m0s`,
/// `5m0s`, `30s`), the `ttl` format of the original's `/token`.
pub fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

async fn status(State(st): State<AppState>) -> Response {
    let gk = &st.gk;
    let [requests, successful, denied, failed] = gk.stats.snapshot();
    let unsealed = gk.is_unsealed();
    let mut body = json!({
        "id": gk.id,
        "stats": {
            "requests": requests,
            "successful": successful,
            "denied": denied,
            "failed": failed,
        },
        "uptime": go_duration(gk.uptime().as_secs()),
        "unsealed": unsealed,
        "started": humantime::format_rfc3339_seconds(gk.started).to_string(),
        "ok": true,
        "version": st.version,
    });
    if let Some(peers) = &st.peers {
        body["peers"] = json!(*peers.list());
    }
    let code = if unsealed {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Prometheus text of the token counters, the unsealed gauge and the
/// per-scheduler latency histograms (`strongroom-telemetry`'s exporter).
async fn metrics(State(st): State<AppState>) -> Response {
    let gk = &st.gk;
    let text = gk.stats.render(gk.is_unsealed());
    (
        [(
            header::CONTENT_TYPE,
            strongroom_telemetry::PROMETHEUS_CONTENT_TYPE,
        )],
        text,
    )
        .into_response()
}

/// Reads an optional string field; a non-string value is an error.
fn opt_str<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("'{key}' must be a string")),
    }
}

/// The fields of a `/token` request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The task id the scheduler knows the caller by (never empty).
    pub task_id: String,
    /// The scheduler to ask, when the caller names one.
    pub scheduler: Option<String>,
    /// The AppRole asked for, when the caller names one.
    pub role: Option<String>,
}

/// Parses a `/token` request body (a JSON object with a non-empty string
/// `task_id` and optional string `scheduler` and `role`); the error is
/// the one-line message of the 400.
pub fn parse_token_request(bytes: &[u8]) -> Result<TokenRequest, String> {
    let body: Value = match serde_json::from_slice(bytes) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Err("JSON body could not be decoded: not an object".into()),
        Err(e) => return Err(format!("JSON body could not be decoded: {e}")),
    };
    let task_id = opt_str(&body, "task_id")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "'task_id' is required".to_string())?;
    Ok(TokenRequest {
        task_id: task_id.to_owned(),
        scheduler: opt_str(&body, "scheduler")?.map(str::to_owned),
        role: opt_str(&body, "role")?.map(str::to_owned),
    })
}

async fn token(State(st): State<AppState>, req: axum::extract::Request) -> Response {
    let gk = &st.gk;
    let (parts, body) = req.into_parts();
    let bad = |msg: String| {
        gk.stats
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        gk.stats
            .denied
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        standard(gk, StatusCode::BAD_REQUEST, Err(msg))
    };
    let bytes = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(b) => b,
        Err(e) => return bad(format!("The request body could not be read: {e}")),
    };
    let TokenRequest {
        task_id,
        scheduler,
        role,
    } = match parse_token_request(&bytes) {
        Ok(f) => f,
        Err(e) => return bad(e),
    };
    let client = caller_ip(
        peer_of(&parts.extensions),
        &parts.headers,
        &st.trusted_proxies,
        st.peers.as_deref(),
    );
    // Sealed: an unsealed peer serves it, unless a peer sent it here.
    if let Some(peers) = &st.peers {
        if !gk.is_unsealed() && !parts.headers.contains_key(PROXY_HEADER) {
            if let Some(r) = peers.forward_token(&bytes, client).await {
                return (
                    status_code(r.status),
                    [(header::CONTENT_TYPE, "application/json")],
                    r.body,
                )
                    .into_response();
            }
        }
    }
    match gk
        .request_token(scheduler.as_deref(), &task_id, role.as_deref(), client)
        .await
    {
        Ok(grant) => (
            StatusCode::OK,
            Json(json!({
                "unsealed": true,
                "token": grant.token.expose(),
                "ttl": go_duration(grant.ttl.as_secs()),
                "vault_addr": gk.vault.addr(),
                "accessor": grant.accessor,
            })),
        )
            .into_response(),
        Err(e) => token_error(gk, &e),
    }
}

fn token_error(gk: &Gatekeeper, e: &TokenError) -> Response {
    standard(gk, status_code(e.status()), Err(e.to_string()))
}

/// The token presented for an admin call: `X-Vault-Token` or
/// `Authorization: Bearer`.
fn presented_token(headers: &HeaderMap) -> Option<Token> {
    if let Some(t) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        if !t.is_empty() {
            return Some(Token::new(t));
        }
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty())
        .then(|| Token::new(rest.trim()))
}

/// Checks the caller may use an admin endpoint: a token with `update` (or
/// `root`) on the admin path, asked of the Vault-API server.
async fn authorize_admin(st: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let gk = &st.gk;
    if gk.config.admin_open {
        return Ok(());
    }
    let Some(token) = presented_token(headers) else {
        return Err(standard(
            gk,
            StatusCode::UNAUTHORIZED,
            Err(
                "This endpoint needs a Vault token (X-Vault-Token or Authorization: Bearer)."
                    .into(),
            ),
        ));
    };
    match gk
        .vault
        .capabilities_self(&token, &gk.config.admin_path)
        .await
    {
        Ok(caps) if caps.iter().any(|c| c == "update" || c == "root") => Ok(()),
        Ok(_) => Err(standard(
            gk,
            StatusCode::FORBIDDEN,
            Err(format!(
                "The token lacks 'update' on '{}'.",
                gk.config.admin_path
            )),
        )),
        Err(e) if matches!(e.status(), Some(400 | 401 | 403)) => Err(standard(
            gk,
            StatusCode::FORBIDDEN,
            Err("The token was refused by the Vault-API server.".into()),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "admin check failed");
            // 502, not 503: 503 means "sealed" and nothing else.
            Err(standard(
                gk,
                StatusCode::BAD_GATEWAY,
                Err(format!("The admin credential could not be checked: {e}")),
            ))
        }
    }
}

async fn seal(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize_admin(&st, &headers).await {
        return r;
    }
    st.gk.seal();
    standard(&st.gk, StatusCode::OK, Ok("Gatekeeper sealed.".into()))
}

async fn reload(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize_admin(&st, &headers).await {
        return r;
    }
    let n = match st.gk.reload_policies().await {
        Ok(n) => n,
        Err(e) => return token_error(&st.gk, &e),
    };
    let message = format!("Policies reloaded. {n} total policies.");
    // A reload a peer sent here is not sent on.
    let Some(peers) = st
        .peers
        .as_ref()
        .filter(|_| !headers.contains_key(PROXY_HEADER))
    else {
        return standard(&st.gk, StatusCode::OK, Ok(message));
    };
    let fan = peers.forward_reload(&headers).await;
    let body = json!({
        "unsealed": st.gk.is_unsealed(),
        "message": format!(
            "{message} Reloaded on {} of {} unsealed peers.",
            fan.reached, fan.asked
        ),
        "peers_reloaded": fan.reached,
        "peers_asked": fan.asked,
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// Parses an `/unseal` body into a method; `Err(None)` for an unknown
/// method name, `Err(Some(message))` for a missing or mistyped field.
pub fn unseal_method(body: &Value) -> Result<UnsealMethod, Option<String>> {
    let s = |k: &str| opt_str(body, k).map_err(Some);
    let secret = |k: &str| -> Result<Option<Token>, Option<String>> {
        Ok(s(k)?.filter(|v| !v.is_empty()).map(Token::new))
    };
    let method = s("method")?.unwrap_or_default();
    match method {
        "token" | "token-wrapped" => {
            let token = secret("token")?.ok_or_else(|| Some("'token' is required".into()))?;
            Ok(if method == "token" {
                UnsealMethod::Token(token)
            } else {
                UnsealMethod::TokenWrapped(token)
            })
        }
        "approle" => Ok(UnsealMethod::AppRole {
            role_id: secret("role_id")?.ok_or_else(|| Some("'role_id' is required".into()))?,
            secret_id: secret("secret_id")?,
        }),
        "aws" | "aws-ec2" => Ok(UnsealMethod::AwsEc2 {
            role: s("aws_role")?.filter(|r| !r.is_empty()).map(String::from),
            nonce: secret("aws_nonce")?,
        }),
        // The original's body field for the GitHub personal token.
        "github" => Ok(UnsealMethod::GitHub(
            secret("personal_token")?
                .ok_or_else(|| Some("'personal_token' is required".to_string()))?,
        )),
        _ => Err(None),
    }
}

async fn unseal(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let gk = &st.gk;
    // Replacing the token of an unsealed Gatekeeper is an admin act;
    // unsealing a sealed one only needs the credential itself.
    if gk.is_unsealed() {
        if let Err(r) = authorize_admin(&st, &headers).await {
            return r;
        }
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return standard(
                gk,
                StatusCode::BAD_REQUEST,
                Err("JSON body could not be decoded: not an object".into()),
            )
        }
        Err(e) => {
            return standard(
                gk,
                StatusCode::BAD_REQUEST,
                Err(format!("JSON body could not be decoded: {e}")),
            )
        }
    };
    let method = match unseal_method(&body) {
        Ok(m) => m,
        Err(Some(msg)) => return standard(gk, StatusCode::BAD_REQUEST, Err(msg)),
        Err(None) => {
            let name = body.get("method").and_then(Value::as_str).unwrap_or("");
            return standard(
                gk,
                StatusCode::UNPROCESSABLE_ENTITY,
                Err(format!("Cannot unseal with unknown method: '{name}'")),
            );
        }
    };
    match gk.unseal(&method).await {
        Ok(n) => standard(
            gk,
            StatusCode::OK,
            Ok(format!(
                "Unseal successful with the '{}' method. {n} total policies.",
                method.name()
            )),
        ),
        Err(e @ UnsealFailure::Login(..)) | Err(e @ UnsealFailure::Policies(..)) => {
            standard(gk, StatusCode::UNAUTHORIZED, Err(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(6000), "1h40m0s");
        assert_eq!(go_duration(300), "5m0s");
        assert_eq!(go_duration(30), "30s");
        assert_eq!(go_duration(0), "0s");
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.1.1.1".parse().unwrap());
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // From a trusted proxy: the right-most untrusted hop.
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("203.0.113.9"));
        // From anyone else the header is ignored.
        assert_eq!(
            client_ip(ip("198.51.100.2"), &h, &trusted),
            ip("198.51.100.2")
        );
        // Without the header, the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &HeaderMap::new(), &trusted),
            ip("10.0.0.5")
        );
        // IPv4-mapped peers compare as IPv4.
        assert_eq!(
            client_ip(ip("::ffff:198.51.100.2"), &HeaderMap::new(), &[]),
            ip("198.51.100.2")
        );
        // Garbage from a trusted proxy: the peer.
        let mut g = HeaderMap::new();
        g.insert("x-forwarded-for", "nonsense".parse().unwrap());
        assert_eq!(client_ip(ip("10.0.0.5"), &g, &trusted), ip("10.0.0.5"));
    }

    #[test]
    fn admin_tokens_from_either_header() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer s.abc".parse().unwrap());
        assert_eq!(presented_token(&h).unwrap().expose(), "s.abc");
        h.insert("x-vault-token", "s.def".parse().unwrap());
        assert_eq!(presented_token(&h).unwrap().expose(), "s.def");
        let mut basic = HeaderMap::new();
        basic.insert(header::AUTHORIZATION, "Basic eDp5".parse().unwrap());
        assert!(presented_token(&basic).is_none());
    }

    #[test]
    fn unseal_bodies() {
        assert!(matches!(
            unseal_method(&json!({"method": "token", "token": "s.x"})),
            Ok(UnsealMethod::Token(_))
        ));
        assert!(matches!(
            unseal_method(&json!({"method": "approle", "role_id": "r"})),
            Ok(UnsealMethod::AppRole {
                secret_id: None,
                ..
            })
        ));
        assert!(matches!(
            unseal_method(&json!({"method": "aws", "aws_role": "gk"})),
            Ok(UnsealMethod::AwsEc2 { .. })
        ));
        assert!(matches!(
            unseal_method(&json!({"method": "github", "personal_token": "ghp"})),
            Ok(UnsealMethod::GitHub(_))
        ));
        assert_eq!(
            unseal_method(&json!({"method": "github"})).err(),
            Some(Some("'personal_token' is required".to_string()))
        );
        assert!(matches!(
            unseal_method(&json!({"method": "kerberos"})),
            Err(None)
        ));
        assert!(matches!(
            unseal_method(&json!({"method": "token"})),
            Err(Some(_))
        ));
        assert!(matches!(unseal_method(&json!({"method": 5})), Err(Some(_))));
    }
}
