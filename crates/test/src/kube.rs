//! Test support for the Kubernetes auth method: a fake Kubernetes API
//! server answering TokenReviews over real HTTPS (a test CA and a
//! `127.0.0.1`/`localhost` certificate made with rcgen), and the signing
//! of service-account JWTs (RS256 and ES256) with the claims Kubernetes
//! puts in legacy and projected tokens. Used by the in-process tests and
//! meant for the differential tests against OpenBao.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

/// PEM-armours DER bytes under `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn b64url_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// An RSA key that signs service-account JWTs, as the API server's
/// `--service-account-signing-key-file` does.
pub struct RsaSigner {
    pair: aws_lc_rs::rsa::KeyPair,
}

impl RsaSigner {
    /// A fresh 2048-bit key.
    pub fn generate() -> Self {
        RsaSigner {
            pair: aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
        }
    }

    /// The public key as a PEM `PUBLIC KEY` (what `pem_keys` takes).
    pub fn public_pem(&self) -> String {
        let der =
            AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(self.pair.public_key()).unwrap();
        pem("PUBLIC KEY", der.as_ref())
    }

    /// Signs `claims` as an RS256 JWT.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with("RS256", claims)
    }

    /// Signs `claims` with `alg` (RS256, RS384 or RS512).
    pub fn sign_with(&self, alg: &str, claims: &Value) -> String {
        let padding: &'static dyn signature::RsaEncoding = match alg {
            "RS256" => &signature::RSA_PKCS1_SHA256,
            "RS384" => &signature::RSA_PKCS1_SHA384,
            "RS512" => &signature::RSA_PKCS1_SHA512,
            other => panic!("unsupported alg {other}"),
        };
        let input = format!(
            "{}.{}",
            b64url_json(&json!({"alg": alg, "kid": "test", "typ": "JWT"})),
            b64url_json(claims)
        );
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Whether `jwt` carries a valid RS256/384/512 signature of this key.
    pub fn verifies(&self, jwt: &str) -> bool {
        let Some((input, sig)) = jwt.rsplit_once('.') else {
            return false;
        };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        let alg = input
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
            .and_then(|h| h["alg"].as_str().map(String::from))
            .unwrap_or_default();
        let params: &'static signature::RsaParameters = match alg.as_str() {
            "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
            "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
            "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
            _ => return false,
        };
        signature::UnparsedPublicKey::new(params, self.pair.public_key().as_ref())
            .verify(input.as_bytes(), &sig)
            .is_ok()
    }
}

/// A P-256 key signing ES256 JWTs.
pub struct EcSigner {
    pair: EcdsaKeyPair,
}

impl EcSigner {
    /// A fresh key.
    pub fn generate() -> Self {
        EcSigner {
            pair: EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }

    /// The public key as a PEM `PUBLIC KEY`.
    pub fn public_pem(&self) -> String {
        let der =
            AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(self.pair.public_key()).unwrap();
        pem("PUBLIC KEY", der.as_ref())
    }

    /// Signs `claims` as an ES256 JWT.
    pub fn sign(&self, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url_json(&json!({"alg": "ES256", "typ": "JWT"})),
            b64url_json(claims)
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The uid the helpers give the service account `ns`/`name`.
pub fn sa_uid(ns: &str, name: &str) -> String {
    format!("uid-{ns}-{name}")
}

/// The claims of a legacy (secret-based) service-account token.
pub fn legacy_claims(ns: &str, name: &str) -> Value {
    json!({
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": ns,
        "kubernetes.io/serviceaccount/secret.name": format!("{name}-token-abcde"),
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": sa_uid(ns, name),
        "sub": format!("system:serviceaccount:{ns}:{name}"),
    })
}

/// The claims of a projected (audience-bound, expiring) token.
pub fn projected_claims(ns: &str, name: &str, aud: &str, exp: u64) -> Value {
    json!({
        "aud": [aud],
        "exp": exp,
        "iat": exp.saturating_sub(3600),
        "nbf": exp.saturating_sub(3600),
        "iss": "https://kubernetes.default.svc.cluster.local",
        "kubernetes.io": {
            "namespace": ns,
            "pod": {"name": format!("{name}-pod"), "uid": format!("pod-{ns}-{name}")},
            "serviceaccount": {"name": name, "uid": sa_uid(ns, name)},
        },
        "sub": format!("system:serviceaccount:{ns}:{name}"),
    })
}

/// How the fake API server answers TokenReviews.
#[derive(Debug, Clone)]
pub enum Mode {
    /// As the API server does: verify the token with the signer's key.
    Review,
    /// A fixed status and body, whatever is asked.
    Fixed(u16, String),
}

/// One TokenReview the fake server received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The request body.
    pub body: Value,
}

struct FakeState {
    signer: Arc<RsaSigner>,
    mode: Mutex<Mode>,
    reviewer: Mutex<Option<String>>,
    revoked: Mutex<HashSet<String>>,
    seen: Mutex<Vec<Seen>>,
}

/// A fake Kubernetes API server serving TokenReviews over HTTPS.
pub struct FakeKube {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The PEM CA that issued the server's certificate.
    pub ca_pem: String,
    /// The key whose tokens the server authenticates.
    pub signer: Arc<RsaSigner>,
    state: Arc<FakeState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl FakeKube {
    /// Starts a server that authenticates tokens signed by `signer`.
    pub async fn start(signer: Arc<RsaSigner>) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "fake kubernetes CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("apiserver.crt");
        let key = dir.path().join("apiserver.key");
        std::fs::write(&cert, leaf.pem()).unwrap();
        std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
        let tls = strongroom_http::load_tls(&cert, &key).unwrap();

        let state = Arc::new(FakeState {
            signer: signer.clone(),
            mode: Mutex::new(Mode::Review),
            reviewer: Mutex::new(None),
            revoked: Mutex::new(HashSet::new()),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route(
                "/apis/authentication.k8s.io/v1/tokenreviews",
                post(token_review),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(strongroom_http::serve(listener, Some(tls), app, async {
            let _ = rx.await;
        }));
        FakeKube {
            url: format!("https://127.0.0.1:{port}"),
            ca_pem: ca.pem(),
            signer,
            state,
            shutdown: Some(tx),
            _dir: dir,
        }
    }

    /// Sets how the server answers.
    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Requires this bearer token on TokenReviews (else 401), as an API
    /// server does for the reviewer's credentials.
    pub fn require_reviewer(&self, jwt: &str) {
        *self.state.reviewer.lock().unwrap() = Some(jwt.to_string());
    }

    /// Makes the server answer `authenticated: false` for `jwt` (a deleted
    /// service account or secret).
    pub fn revoke(&self, jwt: &str) {
        self.state.revoked.lock().unwrap().insert(jwt.to_string());
    }

    /// The reviews received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// A URL on which nothing listens (a Kubernetes that is down).
pub async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("https://127.0.0.1:{port}")
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

async fn token_review(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    state.seen.lock().unwrap().push(Seen {
        authorization: authorization.clone(),
        body: body.clone(),
    });
    let mode = state.mode.lock().unwrap().clone();
    if let Mode::Fixed(code, text) = mode {
        return (StatusCode::from_u16(code).unwrap(), text).into_response();
    }
    let expected = state.reviewer.lock().unwrap().clone();
    let bearer = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default();
    let bearer_ok = match &expected {
        Some(want) => bearer == want,
        None => state.signer.verifies(bearer),
    };
    if !bearer_ok {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(status_body(401, "Unauthorized", "Unauthorized")),
        )
            .into_response();
    }
    let token = body["spec"]["token"].as_str().unwrap_or_default();
    let claims: Value = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|p| serde_json::from_slice(&p).ok())
        .unwrap_or(Value::Null);
    let mut status = json!({"authenticated": false, "user": {}});
    let expired = claims["exp"].as_u64().is_some_and(|exp| exp < now());
    let wanted: Vec<Value> = body["spec"]["audiences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let token_aud: Vec<Value> = match &claims["aud"] {
        Value::Array(a) => a.clone(),
        Value::String(s) => vec![json!(s)],
        _ => Vec::new(),
    };
    let aud_ok =
        wanted.is_empty() || token_aud.is_empty() || wanted.iter().any(|w| token_aud.contains(w));
    if !state.signer.verifies(token) || expired {
        status["error"] =
            json!("[invalid bearer token, square/go-jose: error in cryptographic primitive]");
    } else if state.revoked.lock().unwrap().contains(token) {
        status["error"] =
            json!("[invalid bearer token, service account token has been invalidated]");
    } else if !aud_ok {
        status["error"] = json!("[invalid bearer token, token audiences is invalid]");
    } else {
        let (ns, name, uid) = match claims.get("kubernetes.io") {
            Some(k) => (
                k["namespace"].clone(),
                k["serviceaccount"]["name"].clone(),
                k["serviceaccount"]["uid"].clone(),
            ),
            None => (
                claims["kubernetes.io/serviceaccount/namespace"].clone(),
                claims["kubernetes.io/serviceaccount/service-account.name"].clone(),
                claims["kubernetes.io/serviceaccount/service-account.uid"].clone(),
            ),
        };
        let ns = ns.as_str().unwrap_or_default();
        let name = name.as_str().unwrap_or_default();
        let mut extra = json!({});
        if let Some(pod) = claims["kubernetes.io"]["pod"].as_object() {
            extra["authentication.kubernetes.io/pod-name"] = json!([pod["name"]]);
            extra["authentication.kubernetes.io/pod-uid"] = json!([pod["uid"]]);
        }
        status = json!({
            "authenticated": true,
            "user": {
                "username": format!("system:serviceaccount:{ns}:{name}"),
                "uid": uid,
                "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"),
                           "system:authenticated"],
                "extra": extra,
            },
            "audiences": if wanted.is_empty() { json!(["https://kubernetes.default.svc.cluster.local"]) } else { json!(wanted) },
        });
    }
    let answer = json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": body["spec"],
        "status": status,
    });
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}
