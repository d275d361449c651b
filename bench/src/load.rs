//! The closed-loop load generator: `connections` workers, each on its own
//! HTTP/1.1 keep-alive connection, each sending its next request as soon as
//! the previous answer is read, for a warm-up and then a measured window.
//! Every measured request's latency goes into an HDR histogram; answers other
//! than 2xx, transport failures and timeouts count as errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper::header::HeaderValue;
use hyper::{Method, Uri};
use tokio::time::Instant;

use crate::client;

/// How long one request may take before it counts as an error and its
/// connection is replaced. Bounds the run even against a stuck server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest latency the histogram holds, in microseconds (one minute).
const MAX_LATENCY_US: u64 = 60_000_000;

/// What to send: one method and body, cycling over one or more URIs.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server.
    pub addr: SocketAddr,
    /// The method of every request.
    pub method: Method,
    /// The URIs cycled over, request after request.
    pub uris: Vec<Uri>,
    /// The JSON body of every request, if any.
    pub body: Option<Bytes>,
    /// The `X-Vault-Token` value.
    pub token: HeaderValue,
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
    /// Requests that started inside the measured window and finished.
    pub requests: u64,
    /// Of those, the ones that failed (non-2xx, transport error, timeout).
    pub errors: u64,
    /// From the window's start to the last measured answer.
    pub elapsed: Duration,
    /// Latency of every measured request, in microseconds.
    pub latency_us: Histogram<u64>,
    /// A description of the first error seen, for the report.
    pub first_error: Option<String>,
}

impl Outcome {
    /// Answered requests per second over the measured window.
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
/// Returns after `warmup + duration` plus at most one [`REQUEST_TIMEOUT`].
pub async fn run(target: Target, shape: Shape) -> anyhow::Result<Outcome> {
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
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?)
}

/// One closed-loop worker. Worker `id` of `stride` sends URI `id`, then
/// `id + stride`, ... so that workers spread over the keys.
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
    };
    let mut sender = None;
    let mut next = id;
    loop {
        let sent = Instant::now();
        if sent >= window_end {
            break;
        }
        let measured = sent >= window_start;
        let conn = match sender.as_mut() {
            Some(conn) => conn,
            None => match client::connect(target.addr).await {
                Ok(conn) => sender.insert(conn),
                Err(err) => {
                    // The server refuses connections: nothing more to learn.
                    part.errors += 1;
                    part.requests += 1;
                    part.first_error.get_or_insert(format!("{err:#}"));
                    break;
                }
            },
        };
        let uri = target.uris[next % target.uris.len()].clone();
        next += stride;
        let req = client::build_request(
            target.addr,
            target.method.clone(),
            uri,
            Some(&target.token),
            target.body.clone(),
        )?;
        let exchange = async {
            conn.ready().await?;
            let resp = conn.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        let error = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok((status, _))) if status.is_success() => None,
            Ok(Ok((status, body))) => Some(format!("HTTP {status}: {}", snippet(&body))),
            Ok(Err(err)) => {
                sender = None;
                Some(format!("transport: {err}"))
            }
            Err(_) => {
                sender = None;
                Some(format!("no answer within {REQUEST_TIMEOUT:?}"))
            }
        };
        let answered = Instant::now();
        if measured {
            part.requests += 1;
            let micros = u64::try_from((answered - sent).as_micros()).unwrap_or(u64::MAX);
            part.latency_us.saturating_record(micros.max(1));
            part.last_answer = answered;
            if let Some(error) = error {
                part.errors += 1;
                part.first_error.get_or_insert(error);
            }
        }
    }
    Ok(part)
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
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper::{Request, Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use tokio::net::TcpListener;

    /// What the fake server saw: requests per path, and connections opened.
    #[derive(Default)]
    struct Seen {
        paths: HashMap<String, u64>,
        connections: u64,
        tokens_ok: bool,
    }

    /// A tiny HTTP/1.1 server: 2xx for `/v1/ok/...`, 500 for anything else.
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
                            *s.paths.entry(req.uri().path().to_string()).or_default() += 1;
                            if req
                                .headers()
                                .get(client::TOKEN_HEADER)
                                .map(|v| v.as_bytes())
                                != Some(b"tok")
                            {
                                s.tokens_ok = false;
                            }
                            let status = if req.uri().path().starts_with("/v1/ok/") {
                                StatusCode::OK
                            } else {
                                StatusCode::INTERNAL_SERVER_ERROR
                            };
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"{\"errors\":[]}")))
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

    fn target(addr: SocketAddr, paths: &[&str]) -> Target {
        Target {
            addr,
            method: Method::GET,
            uris: paths.iter().map(|p| client::v1_uri(p).unwrap()).collect(),
            body: None,
            token: client::token_header("tok").unwrap(),
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
        let out = run(target(addr, &["ok/a", "ok/b", "ok/c"]), SHAPE)
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
        let out = run(target(addr, &["ok/a", "fail"]), SHAPE).await.unwrap();
        assert!(out.errors > 0);
        assert!(out.errors < out.requests, "the 2xx half is not an error");
        let first = out.first_error.unwrap();
        assert!(first.contains("500"), "{first}");
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
        let out = run(target(addr, &["ok/a"]), shape).await.unwrap();
        assert_eq!(out.errors, out.requests);
        assert!(out.errors > 0);
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
