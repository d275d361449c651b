//! Listeners: loading a TLS certificate and key, and the accept loop that
//! serves each connection over HTTP/1.1 or HTTP/2, in TLS when configured,
//! until a graceful shutdown.

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
use zeroize::Zeroizing;

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful shutdown waits for open connections to finish
/// their requests before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

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

/// Serves `app` on `listener` until `shutdown` completes.
///
/// Each connection runs in its own task, speaking HTTP/1.1 or HTTP/2
/// (negotiated by ALPN under TLS, by preface otherwise), with `TCP_NODELAY`
/// and the client address as a [`ConnectInfo<SocketAddr>`] extension. A
/// failed handshake or a broken connection is logged at debug and never
/// stops the loop. On shutdown the listener is closed, open connections
/// finish their in-flight requests (for at most [`SHUTDOWN_GRACE`]), and
/// the function returns.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
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
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, %peer, "setting TCP_NODELAY failed");
        }
        let app = app.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(serve_connection(stream, peer, acceptor, app, watcher));
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

/// Runs the TLS handshake when configured, then serves the connection.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    app: Router,
    watcher: Watcher,
) {
    match acceptor {
        None => serve_io(stream, peer, app, watcher).await,
        Some(acceptor) => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_io(tls, peer, app, watcher).await,
                Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

/// Serves HTTP/1.1 or HTTP/2 on an established stream.
async fn serve_io<I>(io: I, peer: SocketAddr, app: Router, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), req)
        });
    let mut builder = Builder::new(TokioExecutor::new());
    // With a timer, hyper bounds how long a client may take to send its
    // request headers (slowloris).
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}
