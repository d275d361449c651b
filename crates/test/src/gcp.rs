//! Test support for the GCP auth method: a Google API emulator. One real
//! HTTPS server (a test CA and a `127.0.0.1`/`localhost` certificate made
//! with rcgen), also reachable over plain HTTP, serves every Google
//! endpoint Strongroom calls on one base URL: the OAuth2 token endpoint
//! (`POST /token`), the IAM service-account and key endpoints
//! (`/v1/projects/-/serviceAccounts/...`), the public certificate endpoint
//! (`/service_accounts/v1/metadata/x509/<email>`) and the GCE metadata
//! token endpoint. It holds service accounts and their RSA keys, issues
//! access tokens only for assertions signed with keys it made, refuses IAM
//! calls without a valid bearer, records every request, and can be told to
//! fail per endpoint. It also signs login JWTs.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

/// The project of the emulator's own (Strongroom's) service account.
pub const ADMIN_PROJECT: &str = "emu-admin";
/// The OAuth2 scope Strongroom must ask for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

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

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// RFC 3339 (UTC, seconds) of a Unix time.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn b64url_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The decoded header and claims of a compact JWS (no verification).
pub fn decode_jwt(jwt: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        jwt.split('.')
            .nth(i)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|p| serde_json::from_slice(&p).ok())
            .unwrap_or(Value::Null)
    };
    (part(0), part(1))
}

/// An RSA-2048 key: signs RS256 JWTs and has a self-signed X.509
/// certificate, as Google's service-account keys do.
pub struct RsaKey {
    pair: aws_lc_rs::rsa::KeyPair,
    /// The certificate (PEM) of the public key.
    pub cert_pem: String,
}

impl RsaKey {
    /// A fresh key with a certificate naming `subject`.
    pub fn generate(subject: &str) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<Pkcs8V1Der>::as_der(&pair).unwrap();
        let rc_key = rcgen::KeyPair::from_pem_and_sign_algo(
            &pem("PRIVATE KEY", pkcs8.as_ref()),
            &rcgen::PKCS_RSA_SHA256,
        )
        .unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, subject);
        let cert = params.self_signed(&rc_key).unwrap();
        RsaKey {
            pair,
            cert_pem: cert.pem(),
        }
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn private_pem(&self) -> String {
        let der = AsDer::<Pkcs8V1Der>::as_der(&self.pair).unwrap();
        pem("PRIVATE KEY", der.as_ref())
    }

    /// Signs `claims` as an RS256 JWT with header `kid`.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        self.sign_header(&json!({"alg": "RS256", "kid": kid, "typ": "JWT"}), claims)
    }

    /// Signs `claims` with RS256 under an arbitrary `header`.
    pub fn sign_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64url_json(header), b64url_json(claims));
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Whether `jwt` carries a valid RS256 signature of this key.
    pub fn verifies(&self, jwt: &str) -> bool {
        let Some((input, sig)) = jwt.rsplit_once('.') else {
            return false;
        };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            self.pair.public_key().as_ref(),
        )
        .verify(input.as_bytes(), &sig)
        .is_ok()
    }
}

/// A service account the emulator knows.
#[derive(Debug, Clone)]
pub struct Account {
    /// `<name>@<project>.iam.gserviceaccount.com`.
    pub email: String,
    /// 21 digits.
    pub unique_id: String,
    /// The project it lives in.
    pub project: String,
}

struct AccountState {
    account: Account,
    disabled: bool,
    /// User-managed keys: served by the IAM key endpoint, usable for OAuth2.
    keys: HashMap<String, Arc<RsaKey>>,
    /// Google-managed (`signJwt`) keys: served only by the certificate
    /// endpoint.
    system_keys: HashMap<String, Arc<RsaKey>>,
}

/// The endpoints of the emulator, for failure modes and request records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /token` (OAuth2).
    Token,
    /// `GET /v1/projects/-/serviceAccounts/<id>` (IAM).
    ServiceAccount,
    /// `GET /v1/projects/-/serviceAccounts/<id>/keys/<kid>` (IAM).
    Key,
    /// `GET /service_accounts/v1/metadata/x509/<email>`.
    Certs,
    /// The GCE metadata server's default service-account token.
    Metadata,
}

/// How an endpoint misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Answers this status with Google's error shape.
    Status(u16),
    /// Answers 200 with a body that is not JSON.
    Garbage,
    /// Never answers (until the emulator is dropped).
    Hang,
}

/// One request the emulator received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// The request path.
    pub path: String,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The request body (form or empty).
    pub body: String,
}

struct EmuState {
    /// The HTTPS and HTTP base URLs (an assertion's `aud` is either + /token).
    bases: Mutex<Vec<String>>,
    accounts: Mutex<HashMap<String, AccountState>>,
    /// unique id -> email.
    ids: Mutex<HashMap<String, String>>,
    /// access token -> expiry (Unix seconds).
    tokens: Mutex<HashMap<String, u64>>,
    revoked_tokens: Mutex<HashSet<String>>,
    failures: Mutex<HashMap<Endpoint, Failure>>,
    seen: Mutex<Vec<Seen>>,
    counter: AtomicU64,
    stop: tokio::sync::watch::Sender<bool>,
}

/// The Google API emulator.
pub struct Emulator {
    /// `https://127.0.0.1:<port>`: every Google API on one base URL.
    pub url: String,
    /// `http://127.0.0.1:<port>`: the same, over plain HTTP (also the GCE
    /// metadata host).
    pub http_url: String,
    /// The PEM CA that issued the HTTPS certificate.
    pub ca_pem: String,
    /// A file holding [`Emulator::ca_pem`] (for `SSL_CERT_FILE`).
    pub ca_file: PathBuf,
    /// Strongroom's own service account (the credentials' client).
    pub admin: Account,
    admin_kid: String,
    state: Arc<EmuState>,
    _dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.state.stop.send(true);
    }
}

impl Emulator {
    /// Starts the emulator (HTTPS and HTTP listeners) with an admin
    /// account holding one user-managed key.
    pub async fn start() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "google emulator CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("google.crt");
        let key_file = dir.path().join("google.key");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&cert, leaf.pem()).unwrap();
        std::fs::write(&key_file, leaf_key.serialize_pem()).unwrap();
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let tls = strongroom_http::load_tls(&cert, &key_file).unwrap();

        let (stop, _) = tokio::sync::watch::channel(false);
        let state = Arc::new(EmuState {
            bases: Mutex::new(Vec::new()),
            accounts: Mutex::new(HashMap::new()),
            ids: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            revoked_tokens: Mutex::new(HashSet::new()),
            failures: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            counter: AtomicU64::new(1),
            stop,
        });
        let app = Router::new()
            .route("/token", post(token))
            .route(
                "/v1/projects/{project}/serviceAccounts/{account}",
                get(service_account),
            )
            .route(
                "/v1/projects/{project}/serviceAccounts/{account}/keys/{kid}",
                get(key),
            )
            .route("/service_accounts/v1/metadata/x509/{email}", get(certs))
            .route(
                "/computeMetadata/v1/instance/service-accounts/default/token",
                get(metadata_token),
            )
            .with_state(state.clone());
        let mut urls = Vec::new();
        for tls in [Some(tls), None] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let scheme = if tls.is_some() { "https" } else { "http" };
            urls.push(format!("{scheme}://127.0.0.1:{port}"));
            let mut rx = state.stop.subscribe();
            tokio::spawn(strongroom_http::serve(
                listener,
                tls,
                app.clone(),
                async move {
                    let _ = rx.wait_for(|s| *s).await;
                },
            ));
        }
        *state.bases.lock().unwrap() = urls.clone();
        let mut emu = Emulator {
            url: urls[0].clone(),
            http_url: urls[1].clone(),
            ca_pem: ca.pem(),
            ca_file,
            admin: Account {
                email: String::new(),
                unique_id: String::new(),
                project: String::new(),
            },
            admin_kid: String::new(),
            state,
            _dir: dir,
        };
        emu.admin = emu.add_account("strongroom", ADMIN_PROJECT);
        emu.admin_kid = emu.add_key(&emu.admin.email.clone());
        emu
    }

    fn next(&self) -> u64 {
        self.state.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// Creates the service account `<name>@<project>.iam.gserviceaccount.com`
    /// with a fresh 21-digit unique id and no keys.
    pub fn add_account(&self, name: &str, project: &str) -> Account {
        let n = self.next();
        let account = Account {
            email: format!("{name}@{project}.iam.gserviceaccount.com"),
            unique_id: format!("{}", 104_729_000_000_000_000_000u128 + u128::from(n) * 7919),
            project: project.to_string(),
        };
        self.state
            .ids
            .lock()
            .unwrap()
            .insert(account.unique_id.clone(), account.email.clone());
        self.state.accounts.lock().unwrap().insert(
            account.email.clone(),
            AccountState {
                account: account.clone(),
                disabled: false,
                keys: HashMap::new(),
                system_keys: HashMap::new(),
            },
        );
        account
    }

    /// Adds a user-managed key (IAM key endpoint) to `email`; returns its kid.
    pub fn add_key(&self, email: &str) -> String {
        let kid = format!("{:040x}", u128::from(self.next()) * 0x9e37_79b9_7f4a_7c15);
        let key = Arc::new(RsaKey::generate(email));
        let mut accounts = self.state.accounts.lock().unwrap();
        accounts
            .get_mut(email)
            .expect("known account")
            .keys
            .insert(kid.clone(), key);
        kid
    }

    /// Adds a Google-managed (`signJwt`) key to `email`, served only by
    /// the public certificate endpoint; returns its kid.
    pub fn add_system_key(&self, email: &str) -> String {
        let kid = format!("{:040x}", u128::from(self.next()) * 0x517c_c1b7_2722_0a95);
        let key = Arc::new(RsaKey::generate(email));
        let mut accounts = self.state.accounts.lock().unwrap();
        accounts
            .get_mut(email)
            .expect("known account")
            .system_keys
            .insert(kid.clone(), key);
        kid
    }

    /// The key `kid` of `email` (user-managed or system).
    pub fn key(&self, email: &str, kid: &str) -> Arc<RsaKey> {
        let accounts = self.state.accounts.lock().unwrap();
        let a = accounts.get(email).expect("known account");
        a.keys
            .get(kid)
            .or_else(|| a.system_keys.get(kid))
            .expect("known kid")
            .clone()
    }

    /// Disables (or re-enables) a service account.
    pub fn set_disabled(&self, email: &str, disabled: bool) {
        self.state
            .accounts
            .lock()
            .unwrap()
            .get_mut(email)
            .expect("known account")
            .disabled = disabled;
    }

    /// Deletes a service account (IAM then answers 404).
    pub fn remove_account(&self, email: &str) {
        self.state.accounts.lock().unwrap().remove(email);
    }

    /// Signs a login JWT for `email` with its key `kid`:
    /// `{"sub": email, "aud": aud, "exp": exp, "iat": now}`.
    pub fn sign_login(&self, email: &str, kid: &str, aud: &str, exp: u64) -> String {
        self.sign_claims(
            email,
            kid,
            &json!({"sub": email, "aud": aud, "exp": exp, "iat": now()}),
        )
    }

    /// Signs arbitrary `claims` with `email`'s key `kid`.
    pub fn sign_claims(&self, email: &str, kid: &str, claims: &Value) -> String {
        self.key(email, kid).sign(kid, claims)
    }

    /// The service-account key JSON of the admin account (what
    /// `credentials` takes), its `token_uri` on `base` (use
    /// [`Emulator::url`] or [`Emulator::http_url`]).
    pub fn credentials_json_at(&self, base: &str) -> String {
        let key = self.key(&self.admin.email, &self.admin_kid);
        json!({
            "type": "service_account",
            "project_id": self.admin.project,
            "private_key_id": self.admin_kid,
            "private_key": key.private_pem(),
            "client_email": self.admin.email,
            "client_id": self.admin.unique_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": format!("{base}/token"),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": format!("{base}/service_accounts/v1/metadata/x509/{}", self.admin.email),
        })
        .to_string()
    }

    /// [`Emulator::credentials_json_at`] over HTTPS.
    pub fn credentials_json(&self) -> String {
        self.credentials_json_at(&self.url)
    }

    /// The admin key's id (`private_key_id` of the credentials).
    pub fn admin_kid(&self) -> &str {
        &self.admin_kid
    }

    /// `custom_endpoint` pointing every API at `base`.
    pub fn custom_endpoint_at(&self, base: &str) -> Value {
        json!({"api": base, "iam": base, "crm": base, "compute": base})
    }

    /// [`Emulator::custom_endpoint_at`] over HTTPS.
    pub fn custom_endpoint(&self) -> Value {
        self.custom_endpoint_at(&self.url)
    }

    /// `host:port` of the plain-HTTP listener (for `GCE_METADATA_HOST`).
    pub fn metadata_host(&self) -> String {
        self.http_url.trim_start_matches("http://").to_string()
    }

    /// Makes `endpoint` fail as `failure` (`None`: answer normally again).
    pub fn set_failure(&self, endpoint: Endpoint, failure: Option<Failure>) {
        let mut f = self.state.failures.lock().unwrap();
        match failure {
            Some(failure) => f.insert(endpoint, failure),
            None => f.remove(&endpoint),
        };
    }

    /// Invalidates every access token issued so far (IAM answers 401).
    pub fn revoke_access_tokens(&self) {
        let tokens: Vec<String> = self.state.tokens.lock().unwrap().keys().cloned().collect();
        self.state.revoked_tokens.lock().unwrap().extend(tokens);
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// How many requests `endpoint` received.
    pub fn count(&self, endpoint: Endpoint) -> usize {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.endpoint == endpoint)
            .count()
    }

    /// How many access tokens were issued.
    pub fn issued_tokens(&self) -> usize {
        self.state.tokens.lock().unwrap().len()
    }
}

/// A URL on which nothing listens (Google unreachable).
pub async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("https://127.0.0.1:{port}")
}

fn google_error(code: u16, status: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        axum::Json(json!({"error": {"code": code, "message": message, "status": status}})),
    )
        .into_response()
}

fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// Records the request, then applies the endpoint's failure mode, if any.
async fn record(
    state: &EmuState,
    endpoint: Endpoint,
    path: String,
    headers: &HeaderMap,
    body: String,
) -> Option<Response> {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    state.seen.lock().unwrap().push(Seen {
        endpoint,
        path,
        authorization,
        body,
    });
    let failure = state.failures.lock().unwrap().get(&endpoint).cloned();
    match failure? {
        Failure::Status(code) => Some(google_error(
            code,
            status_name(code),
            "The emulator was told to fail.",
        )),
        Failure::Garbage => Some(
            (
                StatusCode::OK,
                [("content-type", "text/html")],
                "<html><body>definitely not JSON</body></html>",
            )
                .into_response(),
        ),
        Failure::Hang => {
            let mut rx = state.stop.subscribe();
            let _ = rx.wait_for(|s| *s).await;
            Some(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

/// The bearer check of the IAM endpoints: an issued, unexpired, unrevoked
/// access token.
fn authorized(state: &EmuState, headers: &HeaderMap) -> bool {
    let Some(bearer) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    if state.revoked_tokens.lock().unwrap().contains(bearer) {
        return false;
    }
    state
        .tokens
        .lock()
        .unwrap()
        .get(bearer)
        .is_some_and(|exp| *exp > now())
}

fn issue_token(state: &EmuState) -> Response {
    let n = state.counter.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 24];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let token = format!("ya29.emu{n}-{}", URL_SAFE_NO_PAD.encode(bytes));
    state
        .tokens
        .lock()
        .unwrap()
        .insert(token.clone(), now() + 3599);
    axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

fn invalid_grant(description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_grant", "error_description": description})),
    )
        .into_response()
}

async fn token(State(state): State<Arc<EmuState>>, headers: HeaderMap, body: String) -> Response {
    if let Some(r) = record(
        &state,
        Endpoint::Token,
        "/token".into(),
        &headers,
        body.clone(),
    )
    .await
    {
        return r;
    }
    let form: HashMap<String, String> = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type",
                              "error_description": "Invalid grant_type: "})),
        )
            .into_response();
    }
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let (header, claims) = decode_jwt(&assertion);
    if header["alg"] != "RS256" {
        return invalid_grant("Invalid JWT: alg must be RS256.");
    }
    let iss = claims["iss"].as_str().unwrap_or_default();
    let kid = header["kid"].as_str().unwrap_or_default();
    let key = {
        let accounts = state.accounts.lock().unwrap();
        match accounts.get(iss) {
            Some(a) if !a.disabled => a.keys.get(kid).cloned(),
            _ => None,
        }
    };
    let Some(key) = key else {
        return invalid_grant("Invalid JWT Signature.");
    };
    if !key.verifies(&assertion) {
        return invalid_grant("Invalid JWT Signature.");
    }
    let auds: Vec<String> = state
        .bases
        .lock()
        .unwrap()
        .iter()
        .map(|b| format!("{b}/token"))
        .collect();
    if !claims["aud"]
        .as_str()
        .is_some_and(|a| auds.iter().any(|x| x == a))
    {
        return invalid_grant("Invalid JWT: Failed audience check.");
    }
    if !claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|x| x == SCOPE))
    {
        return invalid_grant("Invalid OAuth scope or ID token audience provided.");
    }
    let (iat, exp) = (claims["iat"].as_u64(), claims["exp"].as_u64());
    match (iat, exp) {
        (Some(iat), Some(exp)) if exp > now() && exp <= iat + 3600 && iat <= now() + 60 => {}
        _ => {
            return invalid_grant(
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
            )
        }
    }
    issue_token(&state)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Finds an account by email or unique id.
fn lookup(state: &EmuState, id: &str) -> Option<(Account, bool)> {
    let email = if id.contains('@') {
        id.to_string()
    } else {
        state.ids.lock().unwrap().get(id)?.clone()
    };
    let accounts = state.accounts.lock().unwrap();
    accounts
        .get(&email)
        .map(|a| (a.account.clone(), a.disabled))
}

fn not_found(what: &str) -> Response {
    google_error(404, "NOT_FOUND", &format!("{what} does not exist."))
}

fn unauthenticated() -> Response {
    google_error(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token.",
    )
}

async fn service_account(
    State(state): State<Arc<EmuState>>,
    Path((project, account)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/projects/{project}/serviceAccounts/{account}");
    if let Some(r) = record(
        &state,
        Endpoint::ServiceAccount,
        path,
        &headers,
        String::new(),
    )
    .await
    {
        return r;
    }
    if !authorized(&state, &headers) {
        return unauthenticated();
    }
    let Some((a, disabled)) = lookup(&state, &account) else {
        return not_found(&format!(
            "Service account projects/{project}/serviceAccounts/{account}"
        ));
    };
    axum::Json(json!({
        "name": format!("projects/{}/serviceAccounts/{}", a.project, a.email),
        "projectId": a.project,
        "uniqueId": a.unique_id,
        "email": a.email,
        "displayName": format!("emulated {}", a.email),
        "etag": "MDEwMjE5MjA=",
        "oauth2ClientId": a.unique_id,
        "disabled": disabled,
    }))
    .into_response()
}

async fn key(
    State(state): State<Arc<EmuState>>,
    Path((project, account, kid)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/projects/{project}/serviceAccounts/{account}/keys/{kid}");
    if let Some(r) = record(&state, Endpoint::Key, path, &headers, String::new()).await {
        return r;
    }
    if !authorized(&state, &headers) {
        return unauthenticated();
    }
    let found = lookup(&state, &account).and_then(|(a, _)| {
        let accounts = state.accounts.lock().unwrap();
        accounts
            .get(&a.email)
            .and_then(|s| s.keys.get(&kid).cloned())
            .map(|k| (a, k))
    });
    let Some((a, k)) = found else {
        return not_found(&format!(
            "Key projects/{project}/serviceAccounts/{account}/keys/{kid}"
        ));
    };
    let mut answer = json!({
        "name": format!("projects/{}/serviceAccounts/{}/keys/{kid}", a.project, a.email),
        "validAfterTime": rfc3339(now() - 86_400),
        "validBeforeTime": rfc3339(now() + 10 * 365 * 86_400),
        "keyAlgorithm": "KEY_ALG_RSA_2048",
        "keyOrigin": "GOOGLE_PROVIDED",
        "keyType": "USER_MANAGED",
    });
    if query.get("publicKeyType").map(String::as_str) == Some("TYPE_X509_PEM_FILE") {
        answer["publicKeyData"] = json!(STANDARD.encode(&k.cert_pem));
    }
    axum::Json(answer).into_response()
}

async fn certs(
    State(state): State<Arc<EmuState>>,
    Path(email): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/service_accounts/v1/metadata/x509/{email}");
    if let Some(r) = record(&state, Endpoint::Certs, path, &headers, String::new()).await {
        return r;
    }
    let accounts = state.accounts.lock().unwrap();
    let Some(a) = accounts.get(&email) else {
        return not_found(&format!("Service account {email}"));
    };
    let body: serde_json::Map<String, Value> = a
        .system_keys
        .iter()
        .map(|(kid, k)| (kid.clone(), json!(k.cert_pem)))
        .collect();
    (
        StatusCode::OK,
        [("cache-control", "public, max-age=3600, must-revalidate")],
        axum::Json(Value::Object(body)),
    )
        .into_response()
}

async fn metadata_token(State(state): State<Arc<EmuState>>, headers: HeaderMap) -> Response {
    let path = "/computeMetadata/v1/instance/service-accounts/default/token".to_string();
    if let Some(r) = record(&state, Endpoint::Metadata, path, &headers, String::new()).await {
        return r;
    }
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header.",
        )
            .into_response();
    }
    issue_token(&state)
}
