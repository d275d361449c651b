//! The closed-loop load generator: `connections` workers, each on its own
//! HTTP/1.1 keep-alive connection, each starting its next iteration as soon
//! as the previous one is answered, for a warm-up and then a measured window.
//!
//! An iteration is one or more requests sent in order on the worker's
//! connection; a later request may authenticate with a token taken from the
//! previous answer (wrap, then unwrap with the wrapping token). Each
//! iteration counts as one operation: its latency, from the first request to
//! the last answer, goes into an HDR histogram, and it is an error when any
//! of its requests fails (unexpected status, an answer missing what the
//! workload expects, transport failure, timeout). A failed request ends its
//! iteration; the next iteration starts afresh.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, StatusCode, Uri};
use serde_json::{json, Value};
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::client;

/// How long one request may take before it counts as an error and its
/// connection is replaced. Bounds the run even against a stuck server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest latency the histogram holds, in microseconds (one minute).
const MAX_LATENCY_US: u64 = 60_000_000;

/// Where a request's `X-Vault-Token` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFrom {
    /// The benchmark's token (root, or the `--token-policy` token).
    Bench,
    /// No token at all: the request goes to something that is not the
    /// Vault API (Gatekeeper's `/token`, which a task calls without one).
    Nowhere,
    /// The string at this JSON pointer in the previous request's answer
    /// (e.g. `/wrap_info/token`). Not allowed on an iteration's first call.
    Answer(&'static str),
}

/// A condition on the JSON answer of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// The pointer resolves to something other than `null` or `""`.
    Present(&'static str),
    /// The pointer resolves to exactly this value.
    Equals(&'static str, Value),
}

/// What counts as a successful answer. The default accepts any 2xx and
/// does not read the body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    /// The exact status wanted; `None` accepts any 2xx.
    pub status: Option<u16>,
    /// Conditions on the JSON body, all of which must hold.
    pub checks: Vec<Check>,
}

/// One request of an iteration, ready to send.
#[derive(Debug, Clone)]
pub struct PreparedCall {
    /// The method.
    pub method: Method,
    /// The URIs cycled over, iteration after iteration.
    pub uris: Vec<Uri>,
    /// The JSON bodies cycled over like the URIs (iteration `k` sends
    /// `bodies[k % len]`); empty for no body.
    pub bodies: Vec<Bytes>,
    /// Headers beside `Host`, the token and the content type.
    pub headers: HeaderMap,
    /// Where the token comes from.
    pub token: TokenFrom,
    /// What counts as success.
    pub expect: Expect,
}

/// What to send: the calls of one iteration, against one server.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server.
    pub addr: SocketAddr,
    /// The calls of one iteration, in order.
    pub calls: Vec<PreparedCall>,
    /// The benchmark's `X-Vault-Token` value.
    pub token: HeaderValue,
    /// When set, the number of single-use keys (a pool of one-time
    /// credentials): each iteration number below it runs once, and workers
    /// stop when the keys run out instead of cycling back to key 0.
    pub single_use_keys: Option<usize>,
}

impl Target {
    /// Refuses targets a worker could not run: no calls, a call without
    /// URIs, a first call that wants a token from a previous answer, or
    /// single-use keys without any key.
    fn validate(&self) -> anyhow::Result<()> {
        let Some(first) = self.calls.first() else {
            bail!("a workload needs at least one call");
        };
        if matches!(first.token, TokenFrom::Answer(_)) {
            bail!("the first call of an iteration has no previous answer to take a token from");
        }
        if self.calls.iter().any(|c| c.uris.is_empty()) {
            bail!("every call needs at least one URI");
        }
        if self.single_use_keys == Some(0) {
            bail!("a pool of single-use keys needs at least one key");
        }
        Ok(())
    }
}

/// How hard and how long to push.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Concurrent workers, one connection each.
    pub connections: usize,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Iterations (operations) that started inside the measured window and
    /// finished.
    pub requests: u64,
    /// Of those, the ones that failed.
    pub errors: u64,
    /// From the window's start to the last measured answer.
    pub elapsed: Duration,
    /// Latency of every measured iteration, in microseconds.
    pub latency_us: Histogram<u64>,
    /// A description of the first error seen, for the report.
    pub first_error: Option<String>,
    /// True when [`Target::single_use_keys`] ran out before the window
    /// ended (the rate then covers the time up to the last answer).
    pub exhausted: bool,
}

impl Outcome {
    /// Finished iterations (operations) per second over the measured window.
    pub fn requests_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// The latency at `quantile` (0.5 for p50), in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs the closed loop against `target` and merges the workers' results.
/// Returns after `warmup + duration` plus at most one [`REQUEST_TIMEOUT`]
/// per call of an iteration.
pub async fn run(target: Target, shape: Shape) -> anyhow::Result<Outcome> {
    target.validate()?;
    let target = Arc::new(target);
    let start = Instant::now();
    let window_start = start + shape.warmup;
    let window_end = window_start + shape.duration;
    let workers = shape.connections.max(1);
    let mut handles = Vec::with_capacity(workers);
    for id in 0..workers {
        let target = Arc::clone(&target);
        handles.push(tokio::spawn(worker(
            target,
            id,
            workers,
            window_start,
            window_end,
        )));
    }
    let mut total = Outcome {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency_us: new_histogram()?,
        first_error: None,
        exhausted: false,
    };
    let mut last_answer = window_start;
    for handle in handles {
        let part = handle.await.context("load worker panicked")??;
        total.requests += part.requests;
        total.errors += part.errors;
        total.latency_us.add(&part.latency_us)?;
        if total.first_error.is_none() {
            total.first_error = part.first_error;
        }
        total.exhausted |= part.exhausted;
        last_answer = last_answer.max(part.last_answer);
    }
    total.elapsed = last_answer.saturating_duration_since(window_start);
    Ok(total)
}

/// One worker's share.
struct Part {
    requests: u64,
    errors: u64,
    latency_us: Histogram<u64>,
    first_error: Option<String>,
    last_answer: Instant,
    exhausted: bool,
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?)
}

/// One closed-loop worker. Worker `id` of `stride` runs iteration (key)
/// `id`, then `id + stride`, ... so that workers spread over the keys.
async fn worker(
    target: Arc<Target>,
    id: usize,
    stride: usize,
    window_start: Instant,
    window_end: Instant,
) -> anyhow::Result<Part> {
    let mut part = Part {
        requests: 0,
        errors: 0,
        latency_us: new_histogram()?,
        first_error: None,
        last_answer: window_start,
        exhausted: false,
    };
    let mut sender = None;
    let mut next = id;
    loop {
        let sent = Instant::now();
        if sent >= window_end {
            break;
        }
        let measured = sent >= window_start;
        let key = next;
        if target.single_use_keys.is_some_and(|limit| key >= limit) {
            part.exhausted = true;
            break;
        }
        next += stride;
        let result = iteration(&target, &mut sender, key).await;
        if let Err(Failure::Connect(err)) = result {
            // The server refuses connections: nothing more to learn.
            part.errors += 1;
            part.requests += 1;
            part.first_error.get_or_insert(err);
            break;
        }
        let answered = Instant::now();
        if measured {
            part.requests += 1;
            let micros = u64::try_from((answered - sent).as_micros()).unwrap_or(u64::MAX);
            part.latency_us.saturating_record(micros.max(1));
            part.last_answer = answered;
            if let Err(Failure::Request(error)) = result {
                part.errors += 1;
                part.first_error.get_or_insert(error);
            }
        }
    }
    Ok(part)
}

/// Why an iteration failed.
#[derive(Debug)]
enum Failure {
    /// No connection could be opened: the worker stops.
    Connect(String),
    /// A request failed; the next iteration goes on.
    Request(String),
}

/// Runs one iteration (key number `key`): every call in order on the
/// worker's connection, each fed the token its predecessor answered with
/// when it asks for one. A transport failure or timeout drops the
/// connection, so the next request opens a fresh one.
async fn iteration(
    target: &Target,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    key: usize,
) -> Result<(), Failure> {
    // The token carried from one answer to the next call, wiped on drop.
    let mut carried: Option<HeaderValue> = None;
    for (i, call) in target.calls.iter().enumerate() {
        let uri = call.uris[key % call.uris.len()].clone();
        let label = format!("{} {}", call.method, uri.path());
        let fail = |what: String| Failure::Request(format!("{label}: {what}"));
        let token =
            match call.token {
                TokenFrom::Bench => Some(target.token.clone()),
                TokenFrom::Nowhere => None,
                TokenFrom::Answer(pointer) => Some(carried.take().ok_or_else(|| {
                    fail(format!("no token at {pointer} in the previous answer"))
                })?),
            };
        let conn = match sender {
            Some(conn) => conn,
            None => sender.insert(
                client::connect(target.addr)
                    .await
                    .map_err(|err| Failure::Connect(format!("{err:#}")))?,
            ),
        };
        let req = client::build_request(
            target.addr,
            call.method.clone(),
            uri,
            token.as_ref(),
            (!call.bodies.is_empty()).then(|| call.bodies[key % call.bodies.len()].clone()),
            &call.headers,
        )
        .map_err(|err| fail(format!("{err:#}")))?;
        let exchange = async {
            conn.ready().await?;
            let resp = conn.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        let (status, body) = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(err)) => {
                *sender = None;
                return Err(fail(format!("transport: {err}")));
            }
            Err(_) => {
                *sender = None;
                return Err(fail(format!("no answer within {REQUEST_TIMEOUT:?}")));
            }
        };
        let wanted = match target.calls.get(i + 1).map(|c| c.token) {
            Some(TokenFrom::Answer(pointer)) => Some(pointer),
            _ => None,
        };
        let answer = judge(&call.expect, wanted.is_some(), status, &body).map_err(fail)?;
        if let (Some(pointer), Some(answer)) = (wanted, answer) {
            carried = token_at(&answer, pointer);
        }
    }
    Ok(())
}

/// Checks an answer against `expect`. Returns the parsed body when there
/// were checks or `keep_body` asks for it. Error texts name what was
/// missing, never a value from a successful answer (it may be a secret).
fn judge(
    expect: &Expect,
    keep_body: bool,
    status: StatusCode,
    body: &[u8],
) -> Result<Option<Value>, String> {
    let status_ok = match expect.status {
        Some(code) => status.as_u16() == code,
        None => status.is_success(),
    };
    if !status_ok {
        if status.is_success() {
            let want = expect.status.unwrap_or_default();
            return Err(format!("HTTP {status}, expected {want}"));
        }
        return Err(format!("HTTP {status}: {}", snippet(body)));
    }
    if expect.checks.is_empty() && !keep_body {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| format!("HTTP {status} with a body that is not JSON"))?;
    for check in &expect.checks {
        match check {
            Check::Present(pointer) => {
                let found = value.pointer(pointer);
                if matches!(found, None | Some(Value::Null)) || found == Some(&json!("")) {
                    return Err(format!("HTTP {status} without {pointer}"));
                }
            }
            Check::Equals(pointer, want) => {
                if value.pointer(pointer) != Some(want) {
                    return Err(format!("HTTP {status} but {pointer} is not {want}"));
                }
            }
        }
    }
    Ok(Some(value))
}

/// The string at `pointer` as a sensitive header value, if there is one.
fn token_at(answer: &Value, pointer: &str) -> Option<HeaderValue> {
    let token = Zeroizing::new(answer.pointer(pointer)?.as_str()?.to_string());
    client::token_header(&token).ok()
}

/// The start of an error body, for the report (error bodies are
/// `{"errors": [...]}` and carry no secrets).
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(160) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderName;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;
    use tokio::net::TcpListener;

    /// What the fake server saw.
    #[derive(Default)]
    struct Seen {
        /// Requests per path.
        paths: HashMap<String, u64>,
        /// Connections opened.
        connections: u64,
        /// False once a request outside `/v1/unwrap` lacked token `tok`.
        tokens_ok: bool,
        /// Wrapping tokens issued and not yet unwrapped.
        live_wraps: HashSet<String>,
        /// Wrapping tokens issued so far.
        wraps_issued: u64,
        /// Requests that carried no token header at all.
        tokenless: u64,
    }

    /// The fake server's answer to one request: status and JSON body.
    fn answer(seen: &mut Seen, path: &str, headers: &HeaderMap) -> (StatusCode, Value) {
        if headers.get(client::TOKEN_HEADER).is_none() {
            seen.tokenless += 1;
        }
        let token = headers
            .get(client::TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if path != "/v1/unwrap" && token != "tok" {
            seen.tokens_ok = false;
        }
        let bad = |msg: &str| (StatusCode::BAD_REQUEST, json!({"errors": [msg]}));
        match path {
            p if p.starts_with("/v1/ok/") => (StatusCode::OK, json!({"errors": []})),
            "/v1/empty" => (StatusCode::NO_CONTENT, Value::Null),
            // Like sys/wrapping/wrap: needs the TTL header, issues a token.
            "/v1/wrap" => {
                if headers.get("x-vault-wrap-ttl").map(|v| v.as_bytes()) != Some(b"5m") {
                    return bad("missing wrap ttl");
                }
                seen.wraps_issued += 1;
                let wrapped = format!("wrapped-{}", seen.wraps_issued);
                seen.live_wraps.insert(wrapped.clone());
                (StatusCode::OK, json!({"wrap_info": {"token": wrapped}}))
            }
            // Like sys/wrapping/unwrap: each wrapping token works once.
            "/v1/unwrap" => {
                if seen.live_wraps.remove(&token) {
                    (StatusCode::OK, json!({"data": {"secret": "value"}}))
                } else {
                    bad("wrapping token is not valid or does not exist")
                }
            }
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"errors": ["boom"]}),
            ),
        }
    }

    /// A tiny HTTP/1.1 server answering as [`answer`] says.
    async fn fake_server() -> (SocketAddr, Arc<Mutex<Seen>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen {
            tokens_ok: true,
            ..Seen::default()
        }));
        let shared = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                shared.lock().unwrap().connections += 1;
                let seen = Arc::clone(&shared);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            let mut s = seen.lock().unwrap();
                            let path = req.uri().path().to_string();
                            *s.paths.entry(path.clone()).or_default() += 1;
                            let (status, body) = answer(&mut s, &path, req.headers());
                            let body = if body.is_null() {
                                Bytes::new()
                            } else {
                                Bytes::from(body.to_string())
                            };
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(body))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (addr, seen)
    }

    /// A GET of `paths` in turn with the bench token, any 2xx accepted.
    fn get(paths: &[&str]) -> PreparedCall {
        PreparedCall {
            method: Method::GET,
            uris: paths.iter().map(|p| client::v1_uri(p).unwrap()).collect(),
            bodies: vec![],
            headers: HeaderMap::new(),
            token: TokenFrom::Bench,
            expect: Expect::default(),
        }
    }

    /// The wrap call: POST with the TTL header, a 200 with a token wanted.
    fn wrap_call() -> PreparedCall {
        PreparedCall {
            method: Method::POST,
            bodies: vec![Bytes::from_static(br#"{"secret":"value"}"#)],
            headers: HeaderMap::from_iter([(
                HeaderName::from_static("x-vault-wrap-ttl"),
                HeaderValue::from_static("5m"),
            )]),
            expect: Expect {
                status: Some(200),
                checks: vec![Check::Present("/wrap_info/token")],
            },
            ..get(&["wrap"])
        }
    }

    /// The unwrap call, authenticated by the previous answer's token.
    fn unwrap_call(want: Value) -> PreparedCall {
        PreparedCall {
            method: Method::POST,
            token: TokenFrom::Answer("/wrap_info/token"),
            expect: Expect {
                status: Some(200),
                checks: vec![Check::Equals("/data/secret", want)],
            },
            ..get(&["unwrap"])
        }
    }

    fn target(addr: SocketAddr, calls: Vec<PreparedCall>) -> Target {
        Target {
            addr,
            calls,
            token: client::token_header("tok").unwrap(),
            single_use_keys: None,
        }
    }

    const SHAPE: Shape = Shape {
        connections: 4,
        warmup: Duration::from_millis(20),
        duration: Duration::from_millis(200),
    };

    #[tokio::test]
    async fn keeps_one_connection_per_worker_and_cycles_keys() {
        let (addr, seen) = fake_server().await;
        let out = run(target(addr, vec![get(&["ok/a", "ok/b", "ok/c"])]), SHAPE)
            .await
            .unwrap();
        assert!(out.requests > 0);
        assert_eq!(out.errors, 0);
        assert!(out.first_error.is_none());
        assert_eq!(out.latency_us.len(), out.requests);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.connections, 4, "keep-alive: one connection per worker");
        assert!(seen.tokens_ok, "every request carries the token");
        for key in ["/v1/ok/a", "/v1/ok/b", "/v1/ok/c"] {
            assert!(
                seen.paths.get(key).copied().unwrap_or(0) > 0,
                "{key} never hit"
            );
        }
    }

    #[tokio::test]
    async fn non_2xx_answers_are_counted_as_errors() {
        let (addr, _) = fake_server().await;
        let out = run(target(addr, vec![get(&["ok/a", "fail"])]), SHAPE)
            .await
            .unwrap();
        assert!(out.errors > 0);
        assert!(out.errors < out.requests, "the 2xx half is not an error");
        let first = out.first_error.unwrap();
        assert!(
            first.contains("500") && first.contains("/v1/fail"),
            "{first}"
        );
    }

    #[tokio::test]
    async fn refused_connections_end_the_run_as_errors() {
        // Bind then drop, so the port is (almost certainly) closed.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let shape = Shape {
            warmup: Duration::ZERO,
            ..SHAPE
        };
        let out = run(target(addr, vec![get(&["ok/a"])]), shape)
            .await
            .unwrap();
        assert_eq!(out.errors, out.requests);
        assert!(out.errors > 0);
    }

    #[tokio::test]
    async fn two_step_iterations_feed_the_wrapping_token_to_the_unwrap() {
        let (addr, seen) = fake_server().await;
        let calls = vec![wrap_call(), unwrap_call(json!("value"))];
        let out = run(target(addr, calls), SHAPE).await.unwrap();
        // The fake refuses a reused or unknown wrapping token and a wrap
        // without the TTL header, so no error means each unwrap got the
        // token its own wrap answered with.
        assert_eq!(out.errors, 0, "{:?}", out.first_error);
        assert!(out.requests > 0);
        assert_eq!(out.latency_us.len(), out.requests, "one sample per pair");
        let seen = seen.lock().unwrap();
        assert!(seen.tokens_ok, "the wrap carries the bench token");
        let wraps = seen.paths["/v1/wrap"];
        assert_eq!(wraps, seen.paths["/v1/unwrap"], "every wrap is unwrapped");
        assert!(seen.live_wraps.is_empty());
        // Warm-up iterations are not counted, so a pair is one operation.
        assert!(out.requests <= wraps, "{} ops, {wraps} wraps", out.requests);
    }

    #[tokio::test]
    async fn a_failed_first_step_is_one_error_and_skips_the_second() {
        let (addr, seen) = fake_server().await;
        let mut wrap = wrap_call();
        wrap.headers.clear();
        let out = run(target(addr, vec![wrap, unwrap_call(json!("value"))]), SHAPE)
            .await
            .unwrap();
        assert!(out.requests > 0);
        assert_eq!(out.errors, out.requests);
        let first = out.first_error.unwrap();
        assert!(
            first.contains("POST /v1/wrap") && first.contains("400") && first.contains("wrap ttl"),
            "{first}"
        );
        assert!(!seen.lock().unwrap().paths.contains_key("/v1/unwrap"));
    }

    #[tokio::test]
    async fn unmet_expectations_are_errors_that_do_not_echo_the_answer() {
        let (addr, _) = fake_server().await;
        // The secret is "value"; the workload wants "other".
        let calls = vec![wrap_call(), unwrap_call(json!("other"))];
        let out = run(target(addr, calls), SHAPE).await.unwrap();
        assert!(out.requests > 0);
        assert_eq!(out.errors, out.requests);
        let first = out.first_error.unwrap();
        assert!(first.contains("/data/secret is not \"other\""), "{first}");
        assert!(!first.contains("\"value\""), "{first}");

        // A 2xx without the wanted field, and a 204 where 200 is wanted.
        let mut want_token = get(&["ok/a"]);
        want_token.expect.checks = vec![Check::Present("/wrap_info/token")];
        let out = run(target(addr, vec![want_token]), SHAPE).await.unwrap();
        assert_eq!(out.errors, out.requests);
        let first = out.first_error.unwrap();
        assert!(first.contains("without /wrap_info/token"), "{first}");
        let mut want_200 = get(&["empty"]);
        want_200.expect.status = Some(200);
        let out = run(target(addr, vec![want_200]), SHAPE).await.unwrap();
        assert_eq!(out.errors, out.requests);
        assert!(out.first_error.unwrap().contains("expected 200"));
        // Without an expectation, the 204 is a success.
        let out = run(target(addr, vec![get(&["empty"])]), SHAPE)
            .await
            .unwrap();
        assert_eq!(out.errors, 0);
    }

    #[tokio::test]
    async fn single_use_keys_each_run_once_and_the_run_stops_when_they_run_out() {
        let (addr, seen) = fake_server().await;
        let paths: Vec<String> = (0..10).map(|n| format!("ok/{n}")).collect();
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let target = Target {
            single_use_keys: Some(paths.len()),
            ..target(addr, vec![get(&paths)])
        };
        // A window far longer than ten requests take: the pool ends it.
        let shape = Shape {
            warmup: Duration::ZERO,
            duration: Duration::from_secs(60),
            ..SHAPE
        };
        let out = run(target, shape).await.unwrap();
        assert!(out.exhausted);
        assert_eq!((out.requests, out.errors), (10, 0));
        assert!(out.elapsed < shape.duration);
        {
            let seen = seen.lock().unwrap();
            for path in paths {
                assert_eq!(seen.paths.get(&format!("/v1/{path}")), Some(&1), "{path}");
            }
        }

        // Cycling keys never run out.
        let (addr, _) = fake_server().await;
        let out = run(target_cycling(addr), SHAPE).await.unwrap();
        assert!(!out.exhausted);
    }

    #[tokio::test]
    async fn calls_that_take_no_token_send_none() {
        let (addr, seen) = fake_server().await;
        let tokenless = PreparedCall {
            token: TokenFrom::Nowhere,
            ..get(&["ok/gatekeeper"])
        };
        let out = run(target(addr, vec![tokenless]), SHAPE).await.unwrap();
        assert!(out.requests > 0);
        assert_eq!(out.errors, 0);
        let seen = seen.lock().unwrap();
        let sent = seen.paths["/v1/ok/gatekeeper"];
        assert_eq!(seen.tokenless, sent, "no request carried a token");
    }

    /// A target cycling over two keys.
    fn target_cycling(addr: SocketAddr) -> Target {
        target(addr, vec![get(&["ok/a", "ok/b"])])
    }

    #[tokio::test]
    async fn targets_a_worker_cannot_run_are_refused() {
        let (addr, seen) = fake_server().await;
        let err = run(target(addr, vec![]), SHAPE)
            .await
            .err()
            .map(|e| format!("{e:#}"));
        assert_eq!(err.as_deref(), Some("a workload needs at least one call"));
        let orphan = unwrap_call(json!("value"));
        let err = run(target(addr, vec![orphan]), SHAPE).await.unwrap_err();
        assert!(err.to_string().contains("first call"), "{err}");
        let no_keys = Target {
            single_use_keys: Some(0),
            ..target(addr, vec![get(&["ok/a"])])
        };
        let err = run(no_keys, SHAPE).await.unwrap_err();
        assert!(err.to_string().contains("at least one key"), "{err}");
        assert_eq!(seen.lock().unwrap().connections, 0, "nothing was sent");
    }

    #[test]
    fn quantiles_and_rate_come_from_the_histogram() {
        let mut latency_us = new_histogram().unwrap();
        for us in [1000, 1000, 1000, 9000] {
            latency_us.record(us).unwrap();
        }
        let out = Outcome {
            requests: 4,
            errors: 0,
            elapsed: Duration::from_secs(2),
            latency_us,
            first_error: None,
            exhausted: false,
        };
        assert_eq!(out.requests_per_sec(), 2.0);
        assert!((out.latency_ms(0.5) - 1.0).abs() < 0.01);
        assert!((out.latency_ms(0.99) - 9.0).abs() < 0.01);
    }

    #[test]
    fn snippets_are_bounded() {
        assert_eq!(snippet(b"  {\"errors\":[]}\n"), "{\"errors\":[]}");
        assert!(snippet(&[b'x'; 1000]).len() < 200);
    }
}
