//! The cluster link's TLS: mutual TLS between the nodes of one cluster.
//!
//! Every node presents the same certificate, signed by the cluster's own
//! CA (both kept in the barrier, see `strongroom_core::node::ha`), and
//! accepts only peers presenting a certificate that CA signed. Clients
//! connect to the name [`CLUSTER_SERVER_NAME`] whatever the address, so
//! nodes can be reached by IP.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

/// The DNS name in the cluster certificate, and the name nodes dial.
pub const CLUSTER_SERVER_NAME: &str = "strongroom-cluster";

/// Why the cluster's TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterTlsError {
    /// A PEM block did not parse.
    #[error("cluster TLS: invalid PEM: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    /// rustls refused the material.
    #[error("cluster TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("cluster TLS: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Both ends of the cluster link's TLS.
pub struct ClusterTlsConfig {
    /// The cluster listener's: requires a client certificate from the CA.
    pub server: Arc<rustls::ServerConfig>,
    /// A forwarding node's: presents the certificate, trusts only the CA.
    pub client: rustls::ClientConfig,
}

/// Builds both configurations from the CA certificate, the node
/// certificate and its PKCS#8 key (all PEM).
pub fn cluster_tls(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<ClusterTlsConfig, ClusterTlsError> {
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca?)?;
    }
    let roots = Arc::new(roots);
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes())?);
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    Ok(ClusterTlsConfig {
        server: Arc::new(server),
        client,
    })
}
