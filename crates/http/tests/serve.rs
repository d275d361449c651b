//! The listener over real sockets: TLS with a certificate made for the
//! test, plain TCP, and graceful shutdown.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use std::sync::Arc;

use serde_json::{json, Value};
use strongroom_http::{load_tls, router, serve, HttpError, HttpOptions};
use strongroom_sdk::logical::{Request, RequestHandler, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Echoes the path, the client address and the number of headers; panics
/// on `panic/...` (a handler bug, as a test stand-in).
struct Echo;

#[async_trait::async_trait]
impl RequestHandler for Echo {
    async fn handle_request(&self, req: Request) -> strongroom_sdk::Result<Response> {
        if req.path.starts_with("panic/") {
            panic!("handler bug with secret-looking text s.hunter2");
        }
        let Value::Object(map) = json!({
            "path": req.path,
            "remote": req.remote_addr.map(|a| a.to_string()),
        }) else {
            unreachable!()
        };
        Ok(Response::data(map))
    }
}

/// A CA and a `localhost` leaf it signed, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
}

fn make_pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "strongroom test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), leaf.pem() + &ca.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).unwrap();
    Pki {
        dir,
        ca_pem: ca.pem(),
    }
}

/// Starts `serve` on an ephemeral port; returns its address, the shutdown
/// trigger and the server task.
async fn start(
    tls: Option<Arc<rustls::ServerConfig>>,
    opts: HttpOptions,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(Arc::new(Echo), opts);
    let task = tokio::spawn(serve(listener, tls, app, async {
        let _ = rx.await;
    }));
    (addr, tx, task)
}

#[tokio::test]
async fn tls_listener_serves_https_and_refuses_plain_http() {
    let pki = make_pki();
    let tls = load_tls(
        &pki.dir.path().join("cert.pem"),
        &pki.dir.path().join("key.pem"),
    )
    .unwrap();
    assert_eq!(
        tls.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let (addr, stop, task) = start(Some(tls), HttpOptions::default()).await;

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/v1/secret/foo", addr.port());
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["path"], "secret/foo");
    assert_eq!(body["data"]["remote"], "127.0.0.1");

    // Plain HTTP to the TLS port gets no HTTP answer...
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/v1/secret/foo", addr.port()))
        .send()
        .await;
    let err = plain.expect_err("plain HTTP must fail on a TLS port");
    assert!(err.is_request() || err.is_connect(), "{err}");
    // ...and the failed handshake did not stop the listener.
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn plain_listener_serves_http_and_shuts_down() {
    let (addr, stop, task) = start(None, HttpOptions::default()).await;
    let resp = reqwest::get(format!("http://{addr}/v1/sys/health"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = reqwest::get(format!("http://{addr}/nope")).await.unwrap();
    assert_eq!(resp.status(), 404);

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    // The listener is closed once serve has returned.
    let err = tokio::net::TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn plain_listener_speaks_http2_with_prior_knowledge() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let (addr, stop, task) = start(None, HttpOptions::default()).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<bytes::Bytes>>();
    let uri: http::Uri = format!("http://{addr}/v1/secret/h2").parse().unwrap();
    let resp = client.get(uri).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["data"]["path"], "secret/h2");

    drop(client);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413_on_the_wire() {
    let (addr, stop, task) = start(
        None,
        HttpOptions {
            max_request_size: 64,
            ..HttpOptions::default()
        },
    )
    .await;
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = String::from(
        "POST /v1/secret/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for _ in 0..20 {
        req.push_str("10\r\n0123456789abcdef\r\n");
    }
    req.push_str("0\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // The server closes the connection after a 413 (Connection: close).
    conn.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        answer.ends_with(r#"{"errors":["http: request body too large"]}"#),
        "{answer}"
    );

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[test]
fn load_tls_names_the_bad_file() {
    let pki = make_pki();
    let cert = pki.dir.path().join("cert.pem");
    let key = pki.dir.path().join("key.pem");
    let missing = pki.dir.path().join("missing.pem");

    let err = load_tls(&missing, &key).unwrap_err();
    assert!(matches!(err, HttpError::Read { .. }));
    assert!(err.to_string().contains("missing.pem"), "{err}");

    // A key file given as the certificate: no certificate in it.
    let err = load_tls(&key, &key).unwrap_err();
    assert!(matches!(err, HttpError::NoCertificate(_)), "{err}");
    assert!(err.to_string().contains("key.pem"), "{err}");

    // The certificate given as the key: no private key in it.
    let err = load_tls(&cert, &cert).unwrap_err();
    assert!(matches!(err, HttpError::NoPrivateKey(_)), "{err}");

    // A key that does not match the certificate.
    let other = pki.dir.path().join("other.pem");
    std::fs::write(&other, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let err = load_tls(&cert, &other).unwrap_err();
    assert!(matches!(err, HttpError::Tls { .. }), "{err}");
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    let (addr, stop, task) = start(None, HttpOptions::default()).await;
    let client = reqwest::Client::new();
    // A request on another connection, open across the panic.
    let other = reqwest::Client::new();
    let resp = other
        .get(format!("http://{addr}/v1/secret/before"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    for _ in 0..3 {
        let resp = client
            .put(format!("http://{addr}/v1/panic/now"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 500);
        let text = resp.text().await.unwrap();
        assert_eq!(
            text, r#"{"errors":["internal error"]}"#,
            "no panic text leaks"
        );
    }
    // The same client and the other connection are still served.
    let resp = client
        .get(format!("http://{addr}/v1/secret/after"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["path"], "secret/after");
    let resp = other
        .get(format!("http://{addr}/v1/secret/after"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Sends `head` (a request head without the final blank line) on a fresh
/// connection and returns the status line of the answer.
async fn status_of_head(addr: std::net::SocketAddr, head: &str) -> String {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(b"Connection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn thousands_of_header_lines_are_accepted_and_heads_over_1_mib_refused() {
    let (addr, stop, task) = start(None, HttpOptions::default()).await;
    let mut head = String::from("GET /v1/secret/h HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..5_000 {
        head.push_str(&format!("X-Extra-{i}: v\r\n"));
    }
    assert_eq!(status_of_head(addr, &head).await, "HTTP/1.1 200 OK");

    // More lines than MAX_HEADERS: refused, not crashed.
    let mut head = String::from("GET /v1/secret/h HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..strongroom_http::MAX_HEADERS + 10 {
        head.push_str(&format!("X-{i}: v\r\n"));
    }
    assert_eq!(
        status_of_head(addr, &head).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );

    // One header of 1 MiB plus a bit: over Go's byte limit.
    let head = format!(
        "GET /v1/secret/h HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n",
        "a".repeat(strongroom_http::MAX_HEADER_BYTES)
    );
    assert_eq!(
        status_of_head(addr, &head).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // Just under it: accepted.
    let head = format!(
        "GET /v1/secret/h HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n",
        "a".repeat(1 << 20)
    );
    assert_eq!(status_of_head(addr, &head).await, "HTTP/1.1 200 OK");

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
