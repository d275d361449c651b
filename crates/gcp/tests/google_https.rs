//! The Google client against a small HTTPS stand-in for Google (a test CA
//! trusted through `extra_root_pem`): the OAuth2 assertion flow and its
//! cached token, the IAM service-account and key lookups, the public
//! certificates, and the mapping of Google's refusals (400) and failures
//! (502).

// Test helpers panic on setup failures: that is how a test reports them.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;
use strongroom_gcp::config::{ConfigEntry, CustomEndpoint};
use strongroom_gcp::google::Google;
use strongroom_gcp::state::http_client;
use zeroize::Zeroizing;

struct Fake {
    token_calls: AtomicUsize,
    cert_pem: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn rsa_private_pem() -> String {
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der: aws_lc_rs::encoding::Pkcs8V1Der = kp.as_der().unwrap();
    pem("PRIVATE KEY", der.as_ref())
}

fn google_error(code: u16, status: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        Json(json!({"error": {"code": code, "message": "fake says no", "status": status}})),
    )
        .into_response()
}

async fn token(State(f): State<Arc<Fake>>, body: String) -> Response {
    f.token_calls.fetch_add(1, Ordering::SeqCst);
    if !body.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
        || !body.contains("assertion=")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    Json(json!({"access_token": "ya29.fake", "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

fn authed(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer ya29.fake")
}

async fn account(headers: HeaderMap, Path(sa): Path<String>) -> Response {
    if !authed(&headers) {
        return google_error(401, "UNAUTHENTICATED");
    }
    match sa.as_str() {
        "a@p1.iam.gserviceaccount.com" | "111111111111111111111" => Json(json!({
            "name": "projects/p1/serviceAccounts/a@p1.iam.gserviceaccount.com",
            "projectId": "p1", "uniqueId": "111111111111111111111",
            "email": "a@p1.iam.gserviceaccount.com", "displayName": "a",
            "oauth2ClientId": "111111111111111111111", "disabled": false
        }))
        .into_response(),
        "forbidden@p1.iam.gserviceaccount.com" => google_error(403, "PERMISSION_DENIED"),
        "broken@p1.iam.gserviceaccount.com" => {
            (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
        }
        "garbage@p1.iam.gserviceaccount.com" => (StatusCode::OK, "<html>").into_response(),
        _ => google_error(404, "NOT_FOUND"),
    }
}

async fn key(
    State(f): State<Arc<Fake>>,
    headers: HeaderMap,
    Path((_sa, kid)): Path<(String, String)>,
) -> Response {
    if !authed(&headers) {
        return google_error(401, "UNAUTHENTICATED");
    }
    if kid != "k1" {
        return google_error(404, "NOT_FOUND");
    }
    Json(json!({
        "name": "projects/p1/serviceAccounts/a@p1.iam.gserviceaccount.com/keys/k1",
        "validAfterTime": "2020-01-01T00:00:00Z", "validBeforeTime": "2099-01-01T00:00:00Z",
        "keyAlgorithm": "KEY_ALG_RSA_2048", "keyOrigin": "GOOGLE_PROVIDED", "keyType": "USER_MANAGED",
        "publicKeyData": base64::engine::general_purpose::STANDARD.encode(&f.cert_pem),
    }))
    .into_response()
}

async fn certs(State(f): State<Arc<Fake>>, Path(sa): Path<String>) -> Response {
    if sa != "a@p1.iam.gserviceaccount.com" {
        return google_error(404, "NOT_FOUND");
    }
    (
        [("cache-control", "public, max-age=120")],
        Json(json!({"k2": f.cert_pem})),
    )
        .into_response()
}

struct Server {
    url: String,
    ca_pem: String,
    fake: Arc<Fake>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "fake google CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, keyf) = (dir.path().join("s.crt"), dir.path().join("s.key"));
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&keyf, leaf_key.serialize_pem()).unwrap();
    let tls = strongroom_http::load_tls(&cert, &keyf).unwrap();

    // The service account's RSA key, as an X.509 certificate.
    let sa_key = KeyPair::from_pem(&rsa_private_pem()).unwrap();
    let sa_cert = CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&sa_key)
        .unwrap();
    let fake = Arc::new(Fake {
        token_calls: AtomicUsize::new(0),
        cert_pem: sa_cert.pem(),
    });
    let app = Router::new()
        .route("/token", post(token))
        .route("/v1/projects/-/serviceAccounts/{sa}", get(account))
        .route("/v1/projects/-/serviceAccounts/{sa}/keys/{kid}", get(key))
        .route("/service_accounts/v1/metadata/x509/{sa}", get(certs))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(strongroom_http::serve(listener, Some(tls), app, async {
        let _ = rx.await;
    }));
    Server {
        url: format!("https://127.0.0.1:{port}"),
        ca_pem: ca.pem(),
        fake,
        _stop: tx,
        _dir: dir,
    }
}

fn config(s: &Server) -> ConfigEntry {
    let creds = json!({
        "type": "service_account", "project_id": "p1", "private_key_id": "vault-key",
        "private_key": rsa_private_pem(), "client_email": "vault@p1.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": format!("{}/token", s.url),
    });
    ConfigEntry {
        credentials: Zeroizing::new(creds.to_string()),
        custom_endpoint: CustomEndpoint {
            api: Some(s.url.clone()),
            iam: Some(format!("{}/", s.url)),
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn lookups_work_through_the_trusted_test_ca() {
    let s = start().await;
    let google = Google::new(http_client(Some(&s.ca_pem)).unwrap(), &config(&s)).unwrap();
    let now = SystemTime::now();

    let sa = google
        .service_account("111111111111111111111", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sa.email, "a@p1.iam.gserviceaccount.com");
    assert_eq!(sa.project_id, "p1");
    assert!(google
        .service_account("nobody@p1.iam.gserviceaccount.com", now)
        .await
        .unwrap()
        .is_none());

    let k = google
        .iam_key("a@p1.iam.gserviceaccount.com", "k1", now)
        .await
        .unwrap()
        .unwrap();
    assert!(k.valid_before.unwrap() > now + Duration::from_secs(86400));
    assert!(google
        .iam_key("a@p1.iam.gserviceaccount.com", "unknown", now)
        .await
        .unwrap()
        .is_none());

    let c = google.certs("a@p1.iam.gserviceaccount.com").await.unwrap();
    assert_eq!(c.keys.len(), 1);
    assert_eq!(c.keys[0].0, "k2");
    assert_eq!(c.max_age, Some(Duration::from_secs(120)));
    assert!(google.certs("nobody@x").await.unwrap().keys.is_empty());

    // One OAuth2 exchange served every authenticated call.
    assert_eq!(s.fake.token_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn google_refusals_are_400_and_failures_502() {
    let s = start().await;
    let google = Google::new(http_client(Some(&s.ca_pem)).unwrap(), &config(&s)).unwrap();
    let now = SystemTime::now();
    let err = |r: strongroom_sdk::Result<_>| match r {
        Err(e) => e,
        Ok(_) => panic!("expected an error"),
    };
    let e = err(google
        .service_account("forbidden@p1.iam.gserviceaccount.com", now)
        .await);
    assert_eq!(e.status(), 400);
    assert!(e.to_string().contains("403"), "{e}");
    let e = err(google
        .service_account("broken@p1.iam.gserviceaccount.com", now)
        .await);
    assert_eq!(e.status(), 502);
    let e = err(google
        .service_account("garbage@p1.iam.gserviceaccount.com", now)
        .await);
    assert_eq!(e.status(), 502);
    assert!(
        !e.to_string().contains("ya29"),
        "the access token leaked: {e}"
    );
}

#[tokio::test]
async fn the_test_ca_is_trusted_only_when_given() {
    let s = start().await;
    let without = Google::new(http_client(None).unwrap(), &config(&s)).unwrap();
    let e = match without.certs("a@p1.iam.gserviceaccount.com").await {
        Err(e) => e,
        Ok(_) => panic!("an unknown CA must not be trusted"),
    };
    assert_eq!(e.status(), 502);
    let err = http_client(Some("not a pem")).expect_err("not a PEM is refused");
    assert_eq!(err.status(), 500);
    assert!(
        err.to_string().contains("no PEM certificate found"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_google_is_502() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let cfg = ConfigEntry {
        credentials: Zeroizing::new(String::new()),
        custom_endpoint: CustomEndpoint {
            api: Some(format!("https://127.0.0.1:{port}")),
            ..Default::default()
        },
    };
    let google = Google::new(http_client(None).unwrap(), &cfg).unwrap();
    let e = match google.certs("a@p1.iam.gserviceaccount.com").await {
        Err(e) => e,
        Ok(_) => panic!("nothing listens there"),
    };
    assert_eq!(e.status(), 502);
    assert!(e.to_string().contains("public certificate endpoint"), "{e}");
}
