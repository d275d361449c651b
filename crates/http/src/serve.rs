//! Listeners: loading a TLS certificate and key, and the accept loop that
//! serves each connection over HTTP/1.1 or HTTP/2, in TLS when configured,
//! until a graceful shutdown, under the connection limits of
//! [`crate::conn`].
//!
//! # Panics
//!
//! Strongroom is built with the default `panic = "unwind"`, and a panic in
//! a request handler is contained to that request: every listener wraps
//! the application in tower-http's `CatchPanicLayer`, which turns a panic
//! into a 500 `{"errors":["internal error"]}` (the panic message is logged
//! at error level, never sent to the client) while other requests and
//! connections go on. A panic cannot leave state half-written: every
//! storage write is one atomic batch (`Backend::batch`: a `put` or
//! `delete` is a batch of one, and a change spanning several keys is
//! issued as one batch, committed in one transaction by redb), so a panic
//! before the commit writes nothing and one after it leaves a complete
//! write. In-memory state is behind locks
//! that are either held only across code that does not panic, or
//! recovered from poisoning. Handlers must still answer bad input with a
//! 4xx rather than panic; catching is the safety net.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower_http::catch_panic::CatchPanicLayer;
use zeroize::Zeroizing;

use crate::conn::{supervise, ConnLimits, ConnState, TrackedBody, TrackedIo, Tracker};

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful shutdown waits for open connections to finish
/// their requests before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The most header lines an HTTP/1.1 request may carry. Go's `net/http`
/// (OpenBao) counts no lines, only bytes ([`MAX_HEADER_BYTES`]); hyper's
/// default of 100 refused ordinary clients behind proxies that add many.
/// Ten thousand lines fit in the byte limit with room to spare, and the
/// parser's scratch space for them is allocated per request, uninitialised.
pub const MAX_HEADERS: usize = 10_000;

/// The most bytes a request head may take: Go's `DefaultMaxHeaderBytes`
/// (1 MiB) plus the 4 KiB of slack Go's server allows. Larger heads get 431
/// (HTTP/1.1) or a stream reset (HTTP/2).
pub const MAX_HEADER_BYTES: usize = (1 << 20) + 4096;

/// Why a listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A certificate or key file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{}: no PEM certificate found", .0.display())]
    NoCertificate(PathBuf),
    /// The key file holds no PEM private key.
    #[error("{}: no PEM private key (PKCS#8, PKCS#1 or SEC1) found", .0.display())]
    NoPrivateKey(PathBuf),
    /// A PEM file could not be parsed.
    #[error("{}: invalid PEM: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// The parse failure.
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the certificate chain and key (e.g. they do not match).
    #[error("TLS configuration with {} and {}: {source}", cert.display(), key.display())]
    Tls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls objected to.
        source: rustls::Error,
    },
}

/// Loads a PEM certificate chain (leaf first) and PEM private key into a
/// rustls server configuration using the aws-lc-rs provider, offering ALPN
/// `h2` and `http/1.1`.
pub fn load_tls(cert_file: &Path, key_file: &Path) -> Result<Arc<rustls::ServerConfig>, HttpError> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|source| HttpError::Read {
                path: path.to_path_buf(),
                source,
            })
    };
    let cert_pem = read(cert_file)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|source| HttpError::Pem {
            path: cert_file.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(HttpError::NoCertificate(cert_file.to_path_buf()));
    }

    let key_pem = read(key_file)?;
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(HttpError::NoPrivateKey(key_file.to_path_buf()))
        }
        Err(source) => {
            return Err(HttpError::Pem {
                path: key_file.to_path_buf(),
                source,
            })
        }
    };

    let tls_err = |source| HttpError::Tls {
        cert: cert_file.to_path_buf(),
        key: key_file.to_path_buf(),
        source,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` on `listener` until `shutdown` completes, with the default
/// [`ConnLimits`] (OpenBao's timeouts, a cap derived from the
/// file-descriptor limit). See [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, tls, app, ConnLimits::default(), shutdown).await
}

/// Serves `app` on `listener` under `limits` until `shutdown` completes.
///
/// Each connection runs in its own task, speaking HTTP/1.1 or HTTP/2
/// (negotiated by ALPN under TLS, by preface otherwise), with `TCP_NODELAY`
/// and the client address as a [`ConnectInfo<SocketAddr>`] extension. A
/// failed handshake or a broken connection is logged at debug and never
/// stops the loop. Connections are admitted, timed out and evicted as
/// [`crate::conn`] describes; a panicking handler answers 500 (see the
/// module documentation). On shutdown the listener is closed, open
/// connections finish their in-flight requests (for at most
/// [`SHUTDOWN_GRACE`]), and the function returns.
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(CatchPanicLayer::custom(panic_response));
    let acceptor = tls.map(TlsAcceptor::from);
    let tracker = Tracker::new(limits);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Per-connection failures (ECONNABORTED) and resource
                    // exhaustion (EMFILE) are transient: back off briefly
                    // rather than spin or give up.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // At the cap this evicts a stalled connection, or waits for a
        // request to finish; no further connection is accepted meanwhile.
        let state = tokio::select! {
            () = &mut shutdown => break,
            state = tracker.admit() => state,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, %peer, "setting TCP_NODELAY failed");
        }
        let app = app.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(serve_connection(
            stream, peer, acceptor, app, watcher, state,
        ));
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("graceful shutdown timed out; dropping open connections");
    }
    Ok(())
}

/// The answer to a request whose handler panicked: a 500 with a generic
/// message. The panic message goes to the log only.
fn panic_response(
    payload: Box<dyn std::any::Any + Send + 'static>,
) -> http::Response<axum::body::Body> {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a request handler panicked; answered 500");
    crate::render::json(500, &serde_json::json!({ "errors": ["internal error"] }))
}

/// Runs the TLS handshake when configured, then serves the connection.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    app: Router,
    watcher: Watcher,
    state: Arc<ConnState>,
) {
    let io = TrackedIo::new(stream, Arc::clone(&state));
    let conn_state = Arc::clone(&state);
    let work = async move {
        match acceptor {
            None => serve_io(io, peer, app, watcher, conn_state).await,
            Some(acceptor) => {
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                    Ok(Ok(tls)) => serve_io(tls, peer, app, watcher, conn_state).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    };
    if supervise(state, work).await.is_none() {
        tracing::debug!(%peer, "connection closed: timed out or evicted at the cap");
    }
}

/// Serves HTTP/1.1 or HTTP/2 on an established stream.
async fn serve_io<I>(io: I, peer: SocketAddr, app: Router, watcher: Watcher, state: Arc<ConnState>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let track = state.start_request();
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        let body = axum::body::Body::new(TrackedBody::new(body, Arc::clone(&track)));
        let answer =
            tower::ServiceExt::oneshot(app.clone(), http::Request::from_parts(parts, body));
        async move {
            let resp = answer.await;
            drop(track);
            resp
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    // Header, idle and body timeouts are the connection supervisor's
    // (crate::conn): hyper's own header timer would also run while a
    // kept-alive connection is idle, so it is off.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}
