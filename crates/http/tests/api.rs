//! In-process tests of the HTTP API: the router is called with
//! `tower::ServiceExt::oneshot` and a fake `RequestHandler`.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{Request as HttpRequest, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use strongroom_http::{router, HttpOptions};
use strongroom_sdk::logical::{Auth, Lease, Request, RequestHandler, Response, WrapInfo};
use strongroom_sdk::storage::StorageError;
use strongroom_sdk::Error;
use tower::ServiceExt;

/// What the fake answers.
enum Mode {
    /// Echo the parsed request as data.
    Echo,
    /// Answer with this response.
    Respond(Box<Response>),
    /// Fail with the error this builds.
    Fail(fn() -> Error),
}

/// A fake core that records how often it was called.
struct Fake {
    mode: Mode,
    calls: AtomicUsize,
    last: Mutex<Option<Request>>,
}

impl Fake {
    fn new(mode: Mode) -> Arc<Self> {
        Arc::new(Fake {
            mode,
            calls: AtomicUsize::new(0),
            last: Mutex::new(None),
        })
    }
}

#[async_trait::async_trait]
impl RequestHandler for Fake {
    async fn handle_request(&self, req: Request) -> strongroom_sdk::Result<Response> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap() = Some(req.clone());
        match &self.mode {
            Mode::Echo => {
                let echo = json!({
                    "operation": req.operation.as_str(),
                    "path": req.path,
                    "data": req.data,
                    "token": req.client_token.as_ref().map(|t| t.0.clone()),
                    "wrap_ttl": req.wrap_ttl.map(|d| d.as_secs()),
                    "remote": req.remote_addr.map(|a| a.to_string()),
                    "namespace": req.namespace,
                });
                let Value::Object(map) = echo else {
                    unreachable!()
                };
                Ok(Response::data(map))
            }
            Mode::Respond(r) => Ok((**r).clone()),
            Mode::Fail(make) => Err(make()),
        }
    }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

async fn call_with(app: axum::Router, req: HttpRequest<Body>) -> Answer {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

async fn call(
    fake: &Arc<Fake>,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut b = HttpRequest::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let app = router(fake.clone(), HttpOptions::default());
    call_with(app, b.body(Body::from(body.to_string())).unwrap()).await
}

async fn echo(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Value {
    let fake = Fake::new(Mode::Echo);
    let a = call(&fake, method, uri, headers, body).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    a.json()["data"].clone()
}

#[tokio::test]
async fn each_method_maps_to_its_operation() {
    for (method, op) in [
        ("GET", "read"),
        ("LIST", "list"),
        ("POST", "update"),
        ("PUT", "update"),
        ("PATCH", "patch"),
        ("DELETE", "delete"),
    ] {
        let d = echo(
            method,
            "/v1/secret/foo",
            &[("content-type", "application/merge-patch+json")],
            "",
        )
        .await;
        assert_eq!(d["operation"], op, "{method}");
    }
    // A PATCH that is not a merge patch is refused before the core sees it.
    let fake = Fake::new(Mode::Echo);
    let json_type = [("content-type", "application/json")];
    let a = call(&fake, "PATCH", "/v1/secret/foo", &json_type, "{}").await;
    assert_eq!(a.status.as_u16(), 415);
}

#[tokio::test]
async fn list_method_and_list_query_are_the_same_request() {
    let via_method = echo("LIST", "/v1/secret/dir?x=1", &[], "").await;
    let via_query = echo("GET", "/v1/secret/dir?list=true&x=1", &[], "").await;
    assert_eq!(via_method, via_query);
    assert_eq!(via_method["operation"], "list");
    assert_eq!(via_method["path"], "secret/dir/");
    assert_eq!(via_method["data"], json!({"x": "1"}));
}

#[tokio::test]
async fn help_query_asks_for_help() {
    let d = echo("GET", "/v1/sys/mounts?help=1", &[], "").await;
    assert_eq!(d["operation"], "help");
    assert_eq!(d["path"], "sys/mounts");
}

#[tokio::test]
async fn token_from_either_header() {
    let d = echo("GET", "/v1/x", &[("X-Vault-Token", "s.one")], "").await;
    assert_eq!(d["token"], "s.one");
    let d = echo("GET", "/v1/x", &[("Authorization", "Bearer s.two")], "").await;
    assert_eq!(d["token"], "s.two");
    let d = echo("GET", "/v1/x", &[], "").await;
    assert_eq!(d["token"], Value::Null);
}

#[tokio::test]
async fn wrap_ttl_header_is_parsed_or_refused() {
    let d = echo("GET", "/v1/x", &[("X-Vault-Wrap-TTL", "5m")], "").await;
    assert_eq!(d["wrap_ttl"], 300);
    let fake = Fake::new(Mode::Echo);
    let a = call(&fake, "GET", "/v1/x", &[("X-Vault-Wrap-TTL", "soon")], "").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json()["errors"][0]
        .as_str()
        .unwrap()
        .contains("X-Vault-Wrap-TTL"));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn namespace_header_reaches_the_core_and_is_echoed() {
    for ns in ["root", "/", "root/", "team-a", "ns1/ns2/"] {
        let fake = Fake::new(Mode::Echo);
        let a = call(&fake, "GET", "/v1/x", &[("X-Vault-Namespace", ns)], "").await;
        assert_eq!(a.status, StatusCode::OK, "{ns}");
        // The core resolves it (an unknown namespace is its 404).
        assert_eq!(a.json()["data"]["namespace"], json!(ns));
        // OpenBao echoes the namespace header back.
        assert_eq!(a.headers["x-vault-namespace"], ns);
    }
    let fake = Fake::new(Mode::Echo);
    let a = call(&fake, "GET", "/v1/x", &[], "").await;
    assert_eq!(a.json()["data"]["namespace"], Value::Null);
    assert!(a.headers.get("x-vault-namespace").is_none());
}

#[tokio::test]
async fn bad_json_bodies_are_400() {
    for body in ["{not json", "[1,2,3]", "\"text\"", "17"] {
        let fake = Fake::new(Mode::Echo);
        let a = call(&fake, "POST", "/v1/secret/x", &[], body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        let msg = a.json()["errors"][0].as_str().unwrap().to_string();
        assert!(msg.starts_with("failed to decode JSON input"), "{msg}");
        assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
    }
    let d = echo("PUT", "/v1/secret/x", &[], r#"{"k":"v","n":2}"#).await;
    assert_eq!(d["data"], json!({"k": "v", "n": 2}));
    let d = echo("POST", "/v1/secret/x", &[], "").await;
    assert_eq!(d["data"], json!({}));
}

#[tokio::test]
async fn unsupported_methods_are_405() {
    for method in ["TRACE", "OPTIONS", "HEAD"] {
        let fake = Fake::new(Mode::Echo);
        let a = call(&fake, method, "/v1/secret/x", &[], "").await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
    }
}

fn small_limit(fake: &Arc<Fake>) -> axum::Router {
    router(
        fake.clone(),
        HttpOptions {
            max_request_size: 16,
            ..HttpOptions::default()
        },
    )
}

#[tokio::test]
async fn oversized_body_with_content_length_is_413() {
    let fake = Fake::new(Mode::Echo);
    let body = format!(r#"{{"a":"{}"}}"#, "x".repeat(64));
    let req = HttpRequest::post("/v1/secret/x")
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap();
    let a = call_with(small_limit(&fake), req).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        a.json(),
        json!({"errors": ["http: request body too large"]})
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn content_length_is_refused_before_the_body_is_read() {
    // A body that would fail if it were polled: the limit must be enforced
    // on the declared length alone.
    let fake = Fake::new(Mode::Echo);
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("body was read"))
    });
    let req = HttpRequest::put("/v1/secret/x")
        .header("content-length", "1000000")
        .body(Body::from_stream(stream))
        .unwrap();
    let a = call_with(small_limit(&fake), req).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn oversized_chunked_body_is_413() {
    let fake = Fake::new(Mode::Echo);
    // Streamed in chunks with no Content-Length, as `Transfer-Encoding:
    // chunked` arrives.
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..10)
        .map(|i| {
            Ok(Bytes::from(if i == 0 {
                "{\"a\":\"".to_string()
            } else {
                "xxxxxxxx".to_string()
            }))
        })
        .collect();
    let req = HttpRequest::post("/v1/secret/x")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    assert!(req.headers().get("content-length").is_none());
    let a = call_with(small_limit(&fake), req).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        a.json(),
        json!({"errors": ["http: request body too large"]})
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);

    // Under the limit the same path works.
    let req = HttpRequest::post("/v1/secret/x")
        .body(Body::from_stream(futures::stream::iter(vec![
            Ok::<_, std::io::Error>(Bytes::from("{\"a\":")),
            Ok(Bytes::from("1}")),
        ])))
        .unwrap();
    let a = call_with(small_limit(&fake), req).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["data"]["data"], json!({"a": 1}));
}

#[tokio::test]
async fn empty_response_is_204_without_body() {
    let fake = Fake::new(Mode::Respond(Box::new(Response::empty())));
    let a = call(&fake, "DELETE", "/v1/secret/x", &[], "").await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(a.body.is_empty());
    assert!(a.headers.get("content-type").is_none());
    assert_eq!(a.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn envelope_has_every_field() {
    let mut data = serde_json::Map::new();
    data.insert("k".into(), json!("v"));
    let fake = Fake::new(Mode::Respond(Box::new(Response::data(data))));
    let a = call(&fake, "GET", "/v1/secret/x", &[], "").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/json");
    assert_eq!(a.headers["cache-control"], "no-store");
    let body = a.json();
    let id = fake.last.lock().unwrap().as_ref().unwrap().id.clone();
    assert_eq!(
        body,
        json!({
            "request_id": id,
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": {"k": "v"},
            "wrap_info": null,
            "warnings": null,
            "auth": null,
        })
    );
    // Request ids are fresh v4 uuids.
    assert_eq!(uuid_version(&id), Some('4'));
}

fn uuid_version(id: &str) -> Option<char> {
    let parts: Vec<&str> = id.split('-').collect();
    (parts.len() == 5 && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]))
        .then(|| parts[2].chars().next())?
}

#[tokio::test]
async fn envelope_renders_auth_lease_wrap_and_status() {
    let response = Response {
        auth: Some(Auth {
            client_token: "s.new".into(),
            policies: vec!["default".into()],
            ..Default::default()
        }),
        lease: Some(Lease {
            lease_id: "secret/x/abc".into(),
            lease_duration: 60,
            renewable: true,
            internal: None,
        }),
        wrap_info: Some(WrapInfo {
            token: "s.wrap".into(),
            accessor: "acc".into(),
            ttl: 30,
            creation_time: "2024-01-01T00:00:00Z".into(),
            creation_path: "secret/x".into(),
            wrapped_accessor: String::new(),
        }),
        status: Some(404),
        ..Default::default()
    }
    .with_warning("careful");
    let fake = Fake::new(Mode::Respond(Box::new(response)));
    let a = call(&fake, "GET", "/v1/secret/x", &[], "").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let b = a.json();
    assert_eq!(b["lease_id"], "secret/x/abc");
    assert_eq!(b["lease_duration"], 60);
    assert_eq!(b["renewable"], true);
    assert_eq!(b["auth"]["client_token"], "s.new");
    assert_eq!(b["wrap_info"]["token"], "s.wrap");
    assert_eq!(b["warnings"], json!(["careful"]));
}

#[tokio::test]
async fn raw_responses_pass_through() {
    let body = json!({"initialized": true, "sealed": false, "standby": true});
    let fake = Fake::new(Mode::Respond(Box::new(Response::raw(429, body.clone()))));
    let a = call(&fake, "GET", "/v1/sys/health", &[], "").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.json(), body);
    assert_eq!(a.headers["content-type"], "application/json");
    assert_eq!(a.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn errors_render_status_and_body() {
    type Case = (fn() -> Error, u16, Value);
    let cases: [Case; 13] = [
        (
            || Error::bad_request("missing field"),
            400,
            json!(["missing field"]),
        ),
        (
            || Error::PermissionDenied,
            403,
            json!(["1 error occurred:\n\t* permission denied\n\n"]),
        ),
        (|| Error::NotFound(None), 404, json!([])),
        (
            || Error::NotFound(Some("no such key".into())),
            404,
            json!(["no such key"]),
        ),
        (|| Error::UnsupportedPath, 404, json!(["unsupported path"])),
        (
            || Error::UnsupportedOperation,
            405,
            json!(["unsupported operation"]),
        ),
        (
            || Error::PayloadTooLarge,
            413,
            json!(["http: request body too large"]),
        ),
        (
            || Error::TooManyRequests("slow down".into()),
            429,
            json!(["slow down"]),
        ),
        (|| Error::Sealed, 503, json!(["Vault is sealed"])),
        (
            || Error::NotInitialized,
            503,
            json!(["Vault is not initialized"]),
        ),
        (
            || Error::Upstream("bad gateway".into()),
            502,
            json!(["bad gateway"]),
        ),
        // Storage details stay in the server's log.
        (
            || Error::Storage(StorageError::Closed),
            500,
            json!(["internal error"]),
        ),
        (
            || Error::Storage(StorageError::InvalidKey("sys/policy/\0".into())),
            400,
            json!(["invalid request path"]),
        ),
    ];
    for (make, status, errors) in cases {
        let fake = Fake::new(Mode::Fail(make));
        let a = call(&fake, "GET", "/v1/x", &[], "").await;
        assert_eq!(a.status.as_u16(), status, "{errors}");
        assert_eq!(a.json(), json!({ "errors": errors }));
        assert_eq!(a.headers["content-type"], "application/json");
        assert_eq!(a.headers["cache-control"], "no-store");
    }
    let fake = Fake::new(Mode::Fail(|| Error::internal("broken invariant")));
    let a = call(&fake, "GET", "/v1/x", &[], "").await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.json(), json!({"errors": ["broken invariant"]}));
}

#[tokio::test]
async fn paths_outside_v1_are_json_404() {
    for uri in ["/", "/v2/x", "/ui", "/ui/", "/v1", "/v10/x"] {
        let fake = Fake::new(Mode::Echo);
        let a = call(&fake, "GET", uri, &[], "").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(a.json(), json!({"errors": []}));
        assert_eq!(a.headers["cache-control"], "no-store");
        assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
    }
    // `/v1/` itself is a logical request for the empty path.
    let d = echo("GET", "/v1/", &[], "").await;
    assert_eq!(d["path"], "");
}

#[tokio::test]
async fn remote_address_comes_from_connect_info() {
    let fake = Fake::new(Mode::Echo);
    let mut req = HttpRequest::get("/v1/x").body(Body::empty()).unwrap();
    let addr: SocketAddr = "192.0.2.7:4321".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    let a = call_with(router(fake.clone(), HttpOptions::default()), req).await;
    assert_eq!(a.json()["data"]["remote"], "192.0.2.7");
}
