//! Emulators of the scheduler APIs the schedulers call, as real HTTP
//! servers on 127.0.0.1: [`MesosEmulator`] (two masters' `/master/state`),
//! [`KubernetesEmulator`] (`/api/v1/pods`), [`NomadEmulator`]
//! (`/v1/allocation/<id>`, `/v1/node/<id>`) and [`EcsEmulator`] (the
//! SigV4-checked `DescribeTasks`, the ECS agent's `/v1/metadata`, the EC2
//! metadata and container credentials endpoints). Each starts with `start()`,
//! exposes `url`, can be switched into a failure [`Mode`], counts the
//! requests per path, and shuts down when dropped.

mod ecs;
mod kubernetes;
mod mesos;
mod nomad;

pub use ecs::{
    EcsEmulator, EmulatedEcsTask, DESCRIBE_PATH as ECS_DESCRIBE_PATH, ECS_ACCESS_KEY_ID,
    ECS_ACCOUNT, ECS_CLUSTER, ECS_CONTAINER_CREDENTIALS_PATH, ECS_INSTANCE_ROLE, ECS_REGION,
    ECS_SECRET_ACCESS_KEY,
};
pub use kubernetes::{EmulatedPod, KubernetesEmulator, DEFAULT_TOKEN as KUBERNETES_TOKEN};
pub use mesos::{EmulatedMesosTask, MesosEmulator};
pub use nomad::{EmulatedAllocation, EmulatedNode, EmulatedNomadTask, NomadEmulator};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How an emulated server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Answers as the real API does.
    #[default]
    Normal,
    /// Accepts connections and closes them at once: unreachable.
    Down,
    /// Answers every request with HTTP 500.
    ServerError,
    /// Answers every request with 200 and a body that is not JSON.
    Garbage,
    /// Accepts connections and never answers on them: a scheduler that
    /// hangs (the caller's timeout fires).
    Stall,
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not
/// hide the emulator's state from the others).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The mode and request counters of one server.
#[derive(Debug, Default)]
pub(crate) struct Control {
    mode: Mutex<Mode>,
    counts: Mutex<HashMap<String, u64>>,
}

impl Control {
    pub(crate) fn mode(&self) -> Mode {
        *lock(&self.mode)
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        *lock(&self.mode) = mode;
    }

    /// Counts a request and answers it here if the mode says so.
    pub(crate) fn enter(&self, path: &str) -> Option<Response> {
        *lock(&self.counts).entry(path.to_owned()).or_default() += 1;
        match self.mode() {
            Mode::Normal | Mode::Down | Mode::Stall => None,
            Mode::ServerError => Some(
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "emulated internal error\n",
                )
                    .into_response(),
            ),
            Mode::Garbage => Some(
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    "<html>this is {not JSON",
                )
                    .into_response(),
            ),
        }
    }

    pub(crate) fn requests(&self, path: &str) -> u64 {
        lock(&self.counts).get(path).copied().unwrap_or(0)
    }

    pub(crate) fn total(&self) -> u64 {
        lock(&self.counts).values().sum()
    }
}

/// A listener that drops every connection while its server is down, and
/// holds every connection unanswered while it stalls.
struct Listener {
    inner: TcpListener,
    control: Arc<Control>,
    /// Connections accepted in [`Mode::Stall`]: kept open, never read.
    stalled: Vec<TcpStream>,
}

impl axum::serve::Listener for Listener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            match self.control.mode() {
                Mode::Down => drop(stream),
                Mode::Stall => self.stalled.push(stream),
                _ => return (stream, addr),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A [`Listener`] that also makes TLS handshakes.
struct TlsListener {
    inner: Listener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            let handshake = self.acceptor.accept(stream);
            match tokio::time::timeout(std::time::Duration::from_secs(10), handshake).await {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => tracing::debug!(error = %e, "emulator: TLS handshake failed"),
                Err(_) => tracing::debug!("emulator: TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.inner.local_addr()
    }
}

/// A fresh CA and a server config presenting a `127.0.0.1`/`localhost`
/// certificate it issued: the CA's PEM and the config.
///
/// # Panics
/// If rcgen or rustls cannot make a certificate (they always can for
/// these fixed, valid parameters).
pub(crate) fn tls_config() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    #[allow(clippy::expect_used)] // Invariant: fixed, valid parameters.
    let made = (|| -> Result<_, Box<dyn std::error::Error>> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "scheduler emulator CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let leaf_key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
            .signed_by(&leaf_key, &ca, &ca_key)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)?;
        Ok((ca.pem(), Arc::new(config)))
    })()
    .expect("making the emulator's TLS certificate");
    made
}

/// A running emulated server; aborted when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
    https: bool,
}

impl Server {
    /// Serves `router` on a fresh 127.0.0.1 port. Every answer says
    /// `Connection: close`, so a server switched to [`Mode::Down`] is
    /// unreachable from the next request on.
    ///
    /// # Panics
    /// If no port can be bound on 127.0.0.1 (a broken test machine).
    pub(crate) async fn start(
        router: Router,
        control: Arc<Control>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Server {
        #[allow(clippy::expect_used)] // Invariant: tests need a loopback port.
        let inner = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding an emulator port on 127.0.0.1");
        #[allow(clippy::expect_used)] // Invariant: a bound listener has an address.
        let addr = inner.local_addr().expect("the emulator's address");
        let router = router.layer(axum::middleware::map_response(
            |mut response: Response| async move {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                response
            },
        ));
        let listener = Listener {
            inner,
            control,
            stalled: Vec::new(),
        };
        let https = tls.is_some();
        let task = match tls {
            None => tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::warn!(error = %e, "emulator stopped");
                }
            }),
            Some(config) => {
                let listener = TlsListener {
                    inner: listener,
                    acceptor: tokio_rustls::TlsAcceptor::from(config),
                };
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, router).await {
                        tracing::warn!(error = %e, "emulator stopped");
                    }
                })
            }
        };
        Server { addr, task, https }
    }

    pub(crate) fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A JSON answer with a status.
pub(crate) fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, axum::Json(value)).into_response()
}
