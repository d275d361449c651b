//! TLS to the Vault-API server (`--vault-capath`, `--vault-client-cert`,
//! `--vault-client-key`): a small HTTPS server under a test CA that
//! requires a client certificate, and the Vault and peer clients that
//! must trust it through a CA directory and present their certificate.
#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use strongroom_gatekeeper::peers;
use strongroom_gatekeeper::vault::{Token, VaultClient, VaultError, VaultTls};

struct Ca {
    key: KeyPair,
    cert: rcgen::Certificate,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca { key, cert }
    }

    /// A leaf for `name` with `usage`: (cert PEM, key PEM).
    fn leaf(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// An HTTPS server at 127.0.0.1 (certificate from `ca`) that completes a
/// handshake only with a client certificate issued by `ca`, answering
/// `lookup-self` for the token `s.test`.
async fn mtls_server(ca: &Ca) -> String {
    let (cert, key) = ca.leaf("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
    let certs = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    let app = axum::Router::new().route(
        "/v1/auth/token/lookup-self",
        get(|headers: HeaderMap| async move {
            if headers.get("x-vault-token").and_then(|v| v.to_str().ok()) != Some("s.test") {
                return (
                    StatusCode::FORBIDDEN,
                    axum::Json(json!({"errors": ["permission denied"]})),
                )
                    .into_response();
            }
            axum::Json(json!({"data": {
                "accessor": "acc-mtls", "ttl": 600, "renewable": true, "policies": ["default"]
            }}))
            .into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(strongroom_http::serve(
        listener,
        Some(Arc::new(config)),
        app,
        std::future::pending(),
    ));
    format!("https://{addr}")
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

struct Files {
    _dir: tempfile::TempDir,
    capath: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    root: PathBuf,
}

/// A CA directory holding an unrelated CA and, one level down, the test
/// CA; and a client certificate and key issued by the test CA.
fn files(ca: &Ca) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let capath = root.join("ca.d");
    write(
        &capath.join("a-other.pem"),
        &Ca::new("unrelated CA").cert.pem(),
    );
    write(&capath.join("nested/test-ca.pem"), &ca.cert.pem());
    let (cert, key) = ca.leaf("gatekeeper", ExtendedKeyUsagePurpose::ClientAuth);
    Files {
        cert: write(&root.join("client.pem"), &cert),
        key: write(&root.join("client-key.pem"), &key),
        capath,
        root,
        _dir: dir,
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn the_vault_client_trusts_the_ca_directory_and_presents_its_certificate() {
    let ca = Ca::new("vault test CA");
    let addr = mtls_server(&ca).await;
    let f = files(&ca);
    let tls = VaultTls {
        capath: Some(f.capath.clone()),
        client_cert: Some(f.cert.clone()),
        client_key: Some(f.key.clone()),
        ..VaultTls::default()
    };
    let client = VaultClient::with_tls(&addr, &tls, TIMEOUT).unwrap();
    let me = client.lookup_self(&Token::new("s.test")).await.unwrap();
    assert_eq!(me.accessor, "acc-mtls");
    assert_eq!(me.ttl, Duration::from_secs(600));

    // Without the client certificate the server refuses the connection.
    let no_cert = VaultTls {
        capath: Some(f.capath.clone()),
        ..VaultTls::default()
    };
    let client = VaultClient::with_tls(&addr, &no_cert, TIMEOUT).unwrap();
    let err = client.lookup_self(&Token::new("s.test")).await.unwrap_err();
    assert!(matches!(err, VaultError::Transport(_)), "{err}");

    // Without the CA directory the server's certificate is not trusted.
    let no_ca = VaultTls {
        client_cert: Some(f.cert.clone()),
        client_key: Some(f.key.clone()),
        ..VaultTls::default()
    };
    let client = VaultClient::with_tls(&addr, &no_ca, TIMEOUT).unwrap();
    let err = client.lookup_self(&Token::new("s.test")).await.unwrap_err();
    assert!(matches!(err, VaultError::Transport(_)), "{err}");

    // The CAs trusted are the directory's: one holding only another CA
    // does not verify the server.
    let other = f.root.join("other.d");
    write(&other.join("other.pem"), &Ca::new("another CA").cert.pem());
    let wrong_ca = VaultTls {
        capath: Some(other),
        ..tls.clone()
    };
    let client = VaultClient::with_tls(&addr, &wrong_ca, TIMEOUT).unwrap();
    let err = client.lookup_self(&Token::new("s.test")).await.unwrap_err();
    assert!(matches!(err, VaultError::Transport(_)), "{err}");
}

#[tokio::test]
async fn peers_are_called_with_the_same_tls_settings() {
    let ca = Ca::new("peer test CA");
    let addr = mtls_server(&ca).await;
    let f = files(&ca);
    let tls = VaultTls {
        capath: Some(f.capath.clone()),
        client_cert: Some(f.cert.clone()),
        client_key: Some(f.key.clone()),
        ..VaultTls::default()
    };
    let http = peers::http_client_tls(&tls, TIMEOUT).unwrap();
    let r = http
        .get(format!("{addr}/v1/auth/token/lookup-self"))
        .header("x-vault-token", "s.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn setup_error(tls: &VaultTls) -> String {
    match VaultClient::with_tls("https://127.0.0.1:1", tls, TIMEOUT) {
        Err(VaultError::Setup(msg)) => msg,
        Err(e) => panic!("not a setup error: {e}"),
        Ok(_) => panic!("the bad settings were accepted"),
    }
}

#[test]
fn bad_tls_files_are_clear_start_errors() {
    let ca = Ca::new("bad files CA");
    let f = files(&ca);

    // A file in the CA directory that is not PEM is named.
    let junk = write(&f.capath.join("zz-notes.txt"), "not a certificate\n");
    let msg = setup_error(&VaultTls {
        capath: Some(f.capath.clone()),
        ..VaultTls::default()
    });
    assert!(msg.contains("zz-notes.txt"), "{msg}");
    std::fs::remove_file(junk).unwrap();

    // A missing or empty CA directory.
    let msg = setup_error(&VaultTls {
        capath: Some(f.root.join("missing.d")),
        ..VaultTls::default()
    });
    assert!(msg.contains("missing.d"), "{msg}");
    std::fs::create_dir(f.root.join("empty.d")).unwrap();
    let msg = setup_error(&VaultTls {
        capath: Some(f.root.join("empty.d")),
        ..VaultTls::default()
    });
    assert!(msg.contains("no CA certificate"), "{msg}");

    // A certificate without its key, and the other way round.
    let msg = setup_error(&VaultTls {
        client_cert: Some(f.cert.clone()),
        ..VaultTls::default()
    });
    assert!(msg.contains("together"), "{msg}");
    let msg = setup_error(&VaultTls {
        client_key: Some(f.key.clone()),
        ..VaultTls::default()
    });
    assert!(msg.contains("together"), "{msg}");

    // A key that is not the certificate's.
    let (_, other_key) = ca.leaf("someone-else", ExtendedKeyUsagePurpose::ClientAuth);
    let other_key = write(&f.root.join("other-key.pem"), &other_key);
    let msg = setup_error(&VaultTls {
        client_cert: Some(f.cert.clone()),
        client_key: Some(other_key),
        ..VaultTls::default()
    });
    assert!(msg.contains("does not belong"), "{msg}");

    // A key file holding a certificate.
    let msg = setup_error(&VaultTls {
        client_cert: Some(f.cert.clone()),
        client_key: Some(f.cert.clone()),
        ..VaultTls::default()
    });
    assert!(msg.contains("private key"), "{msg}");

    // The peers' client refuses the same settings.
    let err = peers::http_client_tls(
        &VaultTls {
            client_cert: Some(f.cert.clone()),
            ..VaultTls::default()
        },
        TIMEOUT,
    )
    .err()
    .map(|e| format!("{e:#}"));
    assert!(
        err.as_deref().is_some_and(|e| e.contains("client")),
        "a client certificate without its key: {err:?}"
    );
}
