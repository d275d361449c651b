//! The bench's stand-in for a Kubernetes cluster, for the `k8s-login-*`
//! workloads: an RSA key playing the API server's service-account signing
//! key, one legacy service-account JWT signed with it at startup, and a
//! fake API server answering TokenReviews over HTTPS (an rcgen CA and a
//! `127.0.0.1` certificate) on a loopback port, inside the bench process.
//!
//! The fake server authenticates exactly the bench JWT (compared in
//! constant time), as `system:serviceaccount:bench:bench`; any other token
//! is answered `authenticated: false`. It does not check the caller's
//! bearer token: with no reviewer JWT configured, OpenBao sends the
//! client's own JWT there.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

/// The namespace of the bench's service account.
pub const NAMESPACE: &str = "bench";
/// The name of the bench's service account.
pub const SERVICE_ACCOUNT: &str = "bench";
/// The uid Kubernetes would have given the bench's service account.
pub const SERVICE_ACCOUNT_UID: &str = "6f3c1a52-bench-4e8b-9d0a-000000000001";
/// The path TokenReviews are posted to.
pub const TOKEN_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// PEM-armours DER bytes under `label`, 64 base64 characters a line.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 is ASCII, so every 64-byte chunk is a char boundary.
    for start in (0..b64.len()).step_by(64) {
        out.push_str(&b64[start..b64.len().min(start + 64)]);
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The API server's service-account signing key (RSA 2048, RS256); the
/// fake Google's service-account key too.
pub struct Signer {
    pair: KeyPair,
}

impl Signer {
    /// A fresh key.
    pub fn generate() -> anyhow::Result<Self> {
        Ok(Signer {
            pair: KeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| anyhow!("generating the RSA service-account key"))?,
        })
    }

    /// The public key as a PEM `PUBLIC KEY`, as `pem_keys` takes it.
    pub fn public_pem(&self) -> anyhow::Result<String> {
        let der = AsDer::<PublicKeyX509Der>::as_der(self.pair.public_key())
            .map_err(|_| anyhow!("encoding the RSA public key"))?;
        Ok(pem("PUBLIC KEY", der.as_ref()))
    }

    /// The private key as PKCS#8 DER, in a zeroizing buffer.
    pub fn pkcs8_der(&self) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let der = AsDer::<Pkcs8V1Der>::as_der(&self.pair)
            .map_err(|_| anyhow!("encoding the RSA private key"))?;
        Ok(Zeroizing::new(der.as_ref().to_vec()))
    }

    /// Signs `claims` as an RS256 JWT with key id `bench`.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<Zeroizing<String>> {
        self.sign_with_kid("bench", claims)
    }

    /// Signs `claims` as an RS256 JWT whose header names key id `kid`.
    pub fn sign_with_kid(&self, kid: &str, claims: &Value) -> anyhow::Result<Zeroizing<String>> {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!(
            "{}.{}",
            part(&json!({"alg": "RS256", "kid": kid, "typ": "JWT"})),
            part(claims)
        );
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| anyhow!("signing the service-account JWT"))?;
        Ok(Zeroizing::new(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(sig)
        )))
    }
}

/// The claims Kubernetes puts in a legacy (secret-based, non-expiring)
/// service-account token for the bench's service account.
pub fn legacy_claims() -> Value {
    json!({
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": NAMESPACE,
        "kubernetes.io/serviceaccount/secret.name": format!("{SERVICE_ACCOUNT}-token-x7k2p"),
        "kubernetes.io/serviceaccount/service-account.name": SERVICE_ACCOUNT,
        "kubernetes.io/serviceaccount/service-account.uid": SERVICE_ACCOUNT_UID,
        "sub": format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"),
    })
}

/// What the fake API server shares between its connections.
struct Shared {
    /// The one token it authenticates.
    jwt: Zeroizing<String>,
    /// TokenReviews answered so far.
    reviews: AtomicU64,
}

/// A fake Kubernetes API server answering TokenReviews over HTTPS; stops
/// (with its connections) when dropped.
pub struct FakeKube {
    url: String,
    ca_pem: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeKube {
    /// Starts a server on a loopback port that authenticates `jwt`.
    pub async fn start(jwt: Zeroizing<String>) -> anyhow::Result<FakeKube> {
        let (ca_pem, tls) = tls_config("strongroom-bench fake kubernetes CA")
            .context("making the fake Kubernetes TLS config")?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .context("binding the fake Kubernetes API server")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            jwt,
            reviews: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(tls),
            Arc::clone(&shared),
        ));
        Ok(FakeKube {
            url: format!("https://127.0.0.1:{port}"),
            ca_pem,
            shared,
            task,
        })
    }

    /// The server's URL, `https://127.0.0.1:<port>` (`kubernetes_host`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The PEM CA certificate that issued the server's certificate
    /// (`kubernetes_ca_cert`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// How many TokenReviews the server has answered.
    pub fn reviews(&self) -> u64 {
        self.shared.reviews.load(Ordering::Relaxed)
    }
}

/// A CA named `ca_name`, and a server config presenting a
/// `127.0.0.1`/`localhost` certificate issued by it; returns the CA's PEM
/// and the config.
pub(crate) fn tls_config(ca_name: &str) -> anyhow::Result<(String, Arc<rustls::ServerConfig>)> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca = ca_params.self_signed(&ca_key)?;
    let leaf_key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?
        .signed_by(&leaf_key, &ca, &ca_key)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    Ok((ca.pem(), Arc::new(config)))
}

/// What an in-process fake server does with one request.
pub(crate) trait Answer: Send + Sync + 'static {
    /// The answer to `req`.
    fn answer(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> impl std::future::Future<Output = Response<Full<Bytes>>> + Send;
}

impl Answer for Shared {
    async fn answer(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        answer(&self, req).await
    }
}

/// A JSON response with `status`.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Accepts TLS connections until aborted, answering their requests with
/// `shared`; each connection is served in a task of a set this loop owns,
/// so aborting the loop ends them too.
pub(crate) async fn accept_loop<S: Answer>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<S>,
) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let _ = stream.set_nodelay(true);
            // A failed handshake or connection only ends that connection;
            // the login that needed it fails and is counted by the load.
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, hyper::Error>(shared.answer(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// Answers one request: a TokenReview at [`TOKEN_REVIEW_PATH`], 404
/// elsewhere.
async fn answer(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let respond = |status: StatusCode, body: Value| json_response(status, &body);
    if req.method() != hyper::Method::POST || req.uri().path() != TOKEN_REVIEW_PATH {
        return respond(
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404}),
        );
    }
    let body = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.reviews.fetch_add(1, Ordering::Relaxed);
    respond(StatusCode::CREATED, review_answer(&shared.jwt, &review))
}

/// The TokenReview answered for `review`: authenticated as the bench's
/// service account when its `spec.token` is `jwt`, not otherwise.
fn review_answer(jwt: &str, review: &Value) -> Value {
    let token = review
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let status = if bool::from(token.as_bytes().ct_eq(jwt.as_bytes())) {
        json!({
            "authenticated": true,
            "user": {
                "username": format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"),
                "uid": SERVICE_ACCOUNT_UID,
                "groups": [
                    "system:serviceaccounts",
                    format!("system:serviceaccounts:{NAMESPACE}"),
                    "system:authenticated",
                ],
            },
            "audiences": ["https://kubernetes.default.svc.cluster.local"],
        })
    } else {
        json!({
            "authenticated": false,
            "user": {},
            "error": "[invalid bearer token, token could not be validated]",
        })
    };
    json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": review.get("spec").cloned().unwrap_or(json!({})),
        "status": status,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
    use rustls::pki_types::ServerName;

    /// Sends `req` (its `Host` set here) to the server at `url`
    /// (`https://127.0.0.1:<port>`) over HTTPS, trusting only `ca_pem`;
    /// returns the status and the body.
    pub(crate) async fn send_tls(
        url: &str,
        ca_pem: &str,
        mut req: Request<Full<Bytes>>,
    ) -> (StatusCode, Bytes) {
        let mut roots = rustls::RootCertStore::empty();
        for cert in pem_certs(ca_pem) {
            roots.add(cert).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let addr: SocketAddr = url.strip_prefix("https://").unwrap().parse().unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        req.headers_mut()
            .insert(hyper::header::HOST, addr.to_string().parse().unwrap());
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, bytes)
    }

    /// Posts a TokenReview of `token` to `kube` over HTTPS, trusting only
    /// the server's CA; returns the status and the answer.
    async fn review(kube: &FakeKube, token: &str) -> (StatusCode, Value) {
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        });
        let req = Request::post(TOKEN_REVIEW_PATH)
            .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let (status, bytes) = send_tls(kube.url(), kube.ca_pem(), req).await;
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// The DER certificates of a PEM bundle.
    fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[tokio::test]
    async fn token_reviews_authenticate_exactly_the_bench_jwt_over_trusted_tls() {
        let signer = Signer::generate().unwrap();
        let jwt = signer.sign(&legacy_claims()).unwrap();
        let kube = FakeKube::start(jwt.clone()).await.unwrap();
        assert!(kube.url().starts_with("https://127.0.0.1:"));

        let (status, answer) = review(&kube, &jwt).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(answer["kind"], "TokenReview");
        assert_eq!(answer["status"]["authenticated"], true);
        assert_eq!(
            answer["status"]["user"]["username"],
            "system:serviceaccount:bench:bench"
        );
        assert_eq!(answer["status"]["user"]["uid"], SERVICE_ACCOUNT_UID);
        assert!(answer["status"]["user"]["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("system:serviceaccounts:bench")));

        // Another token signed by the same key is still not the bench's.
        let other = signer
            .sign(&json!({"sub": "system:serviceaccount:bench:other"}))
            .unwrap();
        let (status, answer) = review(&kube, &other).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(answer["status"]["authenticated"], false);
        assert_eq!(answer["status"]["user"], json!({}));
        assert_eq!(kube.reviews(), 2);
    }

    #[test]
    fn the_jwt_is_rs256_over_legacy_claims_and_verifies_with_the_pem_key() {
        let signer = Signer::generate().unwrap();
        let jwt = signer.sign(&legacy_claims()).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
        };
        assert_eq!(decode(parts[0])["alg"], "RS256");
        let claims = decode(parts[1]);
        assert_eq!(claims["iss"], "kubernetes/serviceaccount");
        assert_eq!(claims["kubernetes.io/serviceaccount/namespace"], "bench");
        assert_eq!(
            claims["kubernetes.io/serviceaccount/service-account.name"],
            "bench"
        );
        assert_eq!(claims["sub"], "system:serviceaccount:bench:bench");
        assert!(claims.get("exp").is_none(), "legacy tokens do not expire");

        // The PEM handed to pem_keys is the key that signed it.
        let pem = signer.public_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let spki = STANDARD.decode(b64).unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &spki);
        assert!(key.verify(input.as_bytes(), &sig).is_ok());
        let mut tampered = sig.clone();
        tampered[0] ^= 1;
        assert_eq!(
            key.verify(input.as_bytes(), &tampered),
            Err(aws_lc_rs::error::Unspecified)
        );
    }
}
