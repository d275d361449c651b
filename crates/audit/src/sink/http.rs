//! The `http` device: each line is POSTed to a URL as a request of its own
//! (OpenBao's `http` audit device and its receiver contract: one entry per
//! request, the body being the JSON line with its newline, no
//! `Content-Type`). Any status outside 2xx is a failure.
//!
//! Options:
//! - `uri` (required): an `http://` or `https://` URL.
//! - `headers`: a JSON object of header name to a list of values
//!   (`{"Authorization": ["Bearer ..."]}`); a header with no value is left
//!   out.
//!
//! As in OpenBao (its `parseutil.ParsePath`), `uri` and each header value may
//! instead be `env://NAME` (the environment variable, which must be set) or
//! `file://PATH` (the file's contents; Strongroom drops a trailing newline,
//! which no header value may hold). A device enabled over the API can use
//! them too: that is what `unsafe_allow_api_audit_creation` allows.
//!
//! Timeout: OpenBao's device has none of its own; every Strongroom device's
//! writes are bounded by `write_timeout` (default 2 s): requests still in
//! flight then are cancelled. Connecting is bounded by it too.
//!
//! Redirects are not followed (OpenBao's Go client follows them): a 3xx is
//! a failure, and the headers never go to another host.
//!
//! The lines of a batch are sent concurrently (at most [`CONCURRENCY`] at
//! once) and must all succeed. With `hash_chain` they go one after another,
//! so that the receiver gets them in the chain's order. SIGHUP drops the
//! pooled connections. Error messages never hold the URL (it may carry a
//! secret).

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;

use super::Sink;
use crate::options::{CommonOptions, ConfigError};

/// The most requests of one batch in flight at once.
pub const CONCURRENCY: usize = 32;

/// The most of a receiver's answer read (to keep the connection) before it
/// is dropped.
const MAX_ANSWER: usize = 64 * 1024;

/// An `http` device's sink.
pub struct HttpSink {
    uri: Url,
    headers: HeaderMap,
    /// Send a batch's lines one after another (`hash_chain`).
    in_order: bool,
    /// Bounds connecting; `None` for a zero `write_timeout`.
    timeout: Option<Duration>,
    /// Replaced on SIGHUP (a new connection pool).
    client: Mutex<reqwest::Client>,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL and the header values may hold credentials.
        f.debug_struct("HttpSink")
            .field("in_order", &self.in_order)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Resolves `env://NAME` and `file://PATH`; anything else is kept as is.
fn resolve(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if let Some(name) = trimmed.strip_prefix("env://") {
        return std::env::var_os(name)
            .map(|v| v.to_string_lossy().into_owned())
            .ok_or_else(|| format!("environment variable {name} unset"));
    }
    if let Some(path) = trimmed.strip_prefix("file://") {
        return std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| format!("error reading file at {trimmed}: {e}"));
    }
    Ok(value.to_string())
}

/// A client that follows no redirect, connecting within `timeout`. The
/// device bounds each write (every request of the batch) by the same
/// timeout, cancelling what is still in flight.
fn client(timeout: Option<Duration>) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("strongroom-audit/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = timeout {
        builder = builder.connect_timeout(t);
    }
    builder.build()
}

impl HttpSink {
    /// Reads the options and makes the client; sends nothing.
    ///
    /// # Errors
    /// No `uri`, one that is not an http(s) URL, `headers` that are not a
    /// JSON object of lists of valid values, an `env://` variable that is
    /// not set, a `file://` that cannot be read, a bad `write_timeout`.
    pub fn open(options: &BTreeMap<String, String>) -> Result<HttpSink, ConfigError> {
        let raw = options
            .get("uri")
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ConfigError::Invalid("uri is required".into()))?;
        let uri = resolve(raw)
            .map_err(|e| ConfigError::Invalid(format!("failed to resolve uri: {e}")))?;
        let uri = Url::parse(uri.trim())
            .map_err(|e| ConfigError::Invalid(format!("failed to parse uri: {e}")))?;
        if !matches!(uri.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid(format!(
                "failed to parse uri: unsupported protocol scheme {:?}",
                uri.scheme()
            )));
        }
        let mut headers = HeaderMap::new();
        if let Some(raw) = options.get("headers").filter(|s| !s.trim().is_empty()) {
            let decoded: BTreeMap<String, Vec<String>> = serde_json::from_str(raw)
                .map_err(|e| ConfigError::Invalid(format!("failed to parse headers: {e}")))?;
            for (name, values) in decoded {
                let bad =
                    |e: String| ConfigError::Invalid(format!("failed to parse header {name}: {e}"));
                let header =
                    HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?;
                for value in values {
                    let value = resolve(&value).map_err(&bad)?;
                    let mut value =
                        HeaderValue::from_str(&value).map_err(|e| bad(e.to_string()))?;
                    // Kept out of debug output (tokens).
                    value.set_sensitive(true);
                    headers.append(header.clone(), value);
                }
            }
        }
        // The device parses the shared options too; the prefix permission
        // is its to check.
        let common = CommonOptions::parse(options, true)?;
        let timeout = (!common.write_timeout.is_zero()).then_some(common.write_timeout);
        let client = client(timeout)
            .map_err(|e| ConfigError::Invalid(format!("unable to create http client: {e}")))?;
        Ok(HttpSink {
            uri,
            headers,
            in_order: common.hash_chain,
            timeout,
            client: Mutex::new(client),
        })
    }

    /// The client in use.
    fn client(&self) -> reqwest::Client {
        // A panic while swapping clients left a valid one in place.
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A request's failure, without its URL, with its causes.
fn request_error(e: reqwest::Error) -> io::Error {
    let kind = if e.is_timeout() {
        io::ErrorKind::TimedOut
    } else {
        io::ErrorKind::Other
    };
    let e = e.without_url();
    let mut text = format!("failed to perform request: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    io::Error::new(kind, text)
}

/// POSTs one line.
async fn post(
    client: &reqwest::Client,
    uri: &Url,
    headers: &HeaderMap,
    line: &[u8],
) -> io::Result<()> {
    let mut answer = client
        .post(uri.clone())
        .headers(headers.clone())
        .body(line.to_vec())
        .send()
        .await
        .map_err(request_error)?;
    let status = answer.status();
    // Read a short answer through so that the connection can be reused.
    let mut read = 0;
    while let Ok(Some(chunk)) = answer.chunk().await {
        read += chunk.len();
        if read > MAX_ANSWER {
            break;
        }
    }
    if !status.is_success() {
        return Err(io::Error::other(format!(
            "failed to perform request: status code not 2xx: {}",
            status.as_u16()
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Sink for HttpSink {
    async fn write(&self, batch: &[u8]) -> io::Result<()> {
        let client = self.client();
        let at_once = if self.in_order { 1 } else { CONCURRENCY };
        // Futures do nothing until polled: the stream starts them
        // `at_once` at a time.
        let requests: Vec<_> = batch
            .split_inclusive(|b| *b == b'\n')
            .map(|line| post(&client, &self.uri, &self.headers, line))
            .collect();
        let mut requests = futures::stream::iter(requests).buffer_unordered(at_once);
        while let Some(outcome) = requests.next().await {
            outcome?;
        }
        Ok(())
    }

    async fn reopen(&self) -> io::Result<()> {
        let fresh = client(self.timeout).map_err(io::Error::other)?;
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{Device, DeviceConfig, DeviceError};
    use crate::entry::{Auth, Entry, EntryType, RequestInfo};
    use crate::salt::Salt;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::StatusCode;
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::sync::Arc;
    use tokio::sync::mpsc;

    use crate::options::from_pairs as opts;

    /// A receiver: hands each request over, answers with `status`, or
    /// never answers when it is 0.
    struct Receiver {
        requests: mpsc::UnboundedSender<(axum::http::HeaderMap, Bytes)>,
        status: AtomicU16,
    }

    async fn receive(
        State(r): State<Arc<Receiver>>,
        headers: axum::http::HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let _ = r.requests.send((headers, body));
        match r.status.load(Ordering::SeqCst) {
            0 => std::future::pending().await,
            code => StatusCode::from_u16(code).unwrap(),
        }
    }

    /// Starts a receiver; returns its URL, its state and what it received.
    async fn start() -> (
        String,
        Arc<Receiver>,
        mpsc::UnboundedReceiver<(axum::http::HeaderMap, Bytes)>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(Receiver {
            requests: tx,
            status: AtomicU16::new(204),
        });
        let app = axum::Router::new()
            .route("/in", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/in", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, state, rx)
    }

    #[tokio::test]
    async fn each_line_is_one_post_with_the_headers() {
        let (url, _, mut rx) = start().await;
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "Bearer from-file\n").unwrap();
        // Any variable of this process's environment that a header can hold.
        let (var, value) = std::env::vars()
            .find(|(_, v)| !v.is_empty() && v.trim() == v && HeaderValue::from_str(v).is_ok())
            .unwrap();
        let headers = serde_json::json!({
            "X-Audit": ["a", "b"],
            "Authorization": [format!("file://{}", token.display())],
            "X-Env": [format!("env://{var}")],
            "X-None": [],
        })
        .to_string();
        let sink = HttpSink::open(&opts(&[("uri", &url), ("headers", &headers)])).unwrap();
        sink.write(b"{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n")
            .await
            .unwrap();
        let mut bodies = Vec::new();
        for _ in 0..3 {
            let (headers, body) = rx.recv().await.unwrap();
            let audit: Vec<_> = headers.get_all("x-audit").iter().collect();
            assert_eq!(audit, ["a", "b"]);
            assert_eq!(headers["authorization"], "Bearer from-file");
            assert_eq!(headers["x-env"], value.as_str());
            assert!(!headers.contains_key("x-none"));
            assert!(!headers.contains_key("content-type"));
            bodies.push(String::from_utf8(body.to_vec()).unwrap());
        }
        bodies.sort();
        assert_eq!(bodies, ["{\"n\":1}\n", "{\"n\":2}\n", "{\"n\":3}\n"]);
    }

    #[tokio::test]
    async fn a_chained_batch_arrives_in_order() {
        let (url, _, mut rx) = start().await;
        let sink = HttpSink::open(&opts(&[("uri", &url), ("hash_chain", "true")])).unwrap();
        let batch: String = (0..20).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        sink.write(batch.as_bytes()).await.unwrap();
        for i in 0..20 {
            let (_, body) = rx.recv().await.unwrap();
            assert_eq!(body, format!("{{\"n\":{i}}}\n"));
        }
    }

    #[tokio::test]
    async fn a_status_outside_2xx_fails() {
        let (url, state, _rx) = start().await;
        let sink = HttpSink::open(&opts(&[("uri", &url)])).unwrap();
        for code in [500, 302, 404] {
            state.status.store(code, Ordering::SeqCst);
            let err = sink.write(b"x\n").await.unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("failed to perform request: status code not 2xx: {code}")
            );
        }
        state.status.store(200, Ordering::SeqCst);
        sink.write(b"x\n").await.unwrap();
    }

    #[tokio::test]
    async fn a_receiver_that_is_down_fails_without_naming_the_url() {
        let port = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let sink = HttpSink::open(&opts(&[(
            "uri",
            &format!("http://127.0.0.1:{port}/secret-path?token=s3cr3t"),
        )]))
        .unwrap();
        let err = sink.write(b"x\n").await.unwrap_err().to_string();
        assert!(err.starts_with("failed to perform request: "), "{err}");
        assert!(
            !err.contains("s3cr3t") && !err.contains("secret-path"),
            "{err}"
        );
    }

    fn entry() -> Entry {
        Entry {
            time: "2026-12-05T00:00:00Z".into(),
            kind: EntryType::Request,
            auth: Auth {
                token_type: "service".into(),
                client_token: "s.secret".into(),
                ..Auth::default()
            },
            request: RequestInfo {
                id: "req-1".into(),
                operation: "read".into(),
                path: "secret/data/x".into(),
                ..RequestInfo::default()
            },
            response: None,
            error: String::new(),
        }
    }

    #[tokio::test]
    async fn a_hung_receiver_is_bounded_by_the_device_timeout() {
        let (url, state, mut rx) = start().await;
        state.status.store(0, Ordering::SeqCst);
        let device = Device::open(
            DeviceConfig {
                path: "http/".into(),
                kind: "http".into(),
                description: String::new(),
                local: false,
                options: opts(&[("uri", &url), ("write_timeout", "500ms")]),
            },
            Salt::from_bytes(b"salt"),
            false,
        )
        .unwrap();
        let outcome = device.log(&entry(), &[], &[]).await;
        assert!(
            matches!(
                &outcome,
                Err(DeviceError::Write { path, reason })
                    if path == "http/" && reason == "the write took longer than 500ms"
            ),
            "{outcome:?}"
        );
        // The request did reach the receiver, hashed.
        let (_, body) = rx.recv().await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            body.contains("\"req-1\"") && !body.contains("s.secret"),
            "{body}"
        );
    }

    #[test]
    fn refusals() {
        for (pairs, want) in [
            (&[][..], "uri is required"),
            (
                &[("uri", "env://STRONGROOM_AUDIT_HTTP_TEST_UNSET")][..],
                "failed to resolve uri: environment variable STRONGROOM_AUDIT_HTTP_TEST_UNSET unset",
            ),
            (&[("uri", "not a url")][..], "failed to parse uri: "),
            (
                &[("uri", "ftp://h/x")][..],
                "failed to parse uri: unsupported protocol scheme \"ftp\"",
            ),
            (
                &[("uri", "http://h/x"), ("headers", "notjson")][..],
                "failed to parse headers: ",
            ),
            (
                &[("uri", "http://h/x"), ("headers", r#"{"X": "one"}"#)][..],
                "failed to parse headers: ",
            ),
            (
                &[("uri", "http://h/x"), ("headers", r#"{"X": ["a\nb"]}"#)][..],
                "failed to parse header X: ",
            ),
        ] {
            let err = HttpSink::open(&opts(pairs)).unwrap_err().to_string();
            assert!(err.starts_with(want), "{pairs:?}: {err}");
        }
    }
}
