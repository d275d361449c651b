//! The bench's stand-in for Google, for the `gcp-login-*` workloads: one
//! service account (`bench@bench-project.iam.gserviceaccount.com`) with one
//! RSA key, the service-account key JSON Strongroom is configured with, the
//! login JWTs the bench signs with that key, and a fake Google API over
//! HTTPS (an rcgen CA and a `127.0.0.1` certificate) on a loopback port,
//! inside the bench process.
//!
//! The fake serves what Strongroom's GCP method calls (see the contract):
//! the OAuth2 token endpoint ([`TOKEN_PATH`], which checks the JWT-bearer
//! assertion's signature and claims and hands out one access token), and
//! the IAM service-account and key endpoints, which want that access token
//! (compared in constant time). The key endpoint serves the account's
//! certificate for key id [`CACHED_KID`] and for every key id
//! `cold-<digits>` ([`cold_kid`]), so that each cold login names a key
//! Strongroom has not cached yet while still verifying.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

use crate::kube::{self, json_response, Signer};

/// The project of the bench's service account.
pub const PROJECT: &str = "bench-project";
/// The bench's service account: the one logging in, and the one whose key
/// Strongroom holds as its credentials.
pub const EMAIL: &str = "bench@bench-project.iam.gserviceaccount.com";
/// The account's unique id (21 digits, as Google's).
pub const UNIQUE_ID: &str = "104217836519203847561";
/// The key id of the credentials' private key (`private_key_id`).
pub const CREDENTIALS_KID: &str = "bench-credentials-key";
/// The key id of the one JWT every `gcp-login-cached` login presents.
pub const CACHED_KID: &str = "bench-login-key";
/// The path of the OAuth2 token endpoint (the credentials' `token_uri`).
pub const TOKEN_PATH: &str = "/token";
/// The scope Strongroom asks for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The bench role's `max_jwt_exp`: the largest the method allows (1 h),
/// so JWTs signed when the bench starts stay valid through a full run of
/// every workload.
pub const MAX_JWT_EXP_SECS: u64 = 3600;

/// How long a login JWT is valid: just under the role's `max_jwt_exp`.
pub const JWT_LIFETIME: Duration = Duration::from_secs(MAX_JWT_EXP_SECS - 60);

/// The IAM path prefix of the service-account endpoints.
const ACCOUNTS_PREFIX: &str = "/v1/projects/-/serviceAccounts/";

/// The key id of the `n`-th cold JWT; the fake knows every such id.
pub fn cold_kid(n: usize) -> String {
    format!("cold-{n}")
}

/// Whether the fake serves a key under `kid`.
fn known_kid(kid: &str) -> bool {
    kid == CACHED_KID
        || kid
            .strip_prefix("cold-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Seconds since the Unix epoch.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The claims of a login JWT for role `role`, issued now and expiring after
/// [`JWT_LIFETIME`] (what `gcloud iam service-accounts sign-jwt` makes for
/// Vault's `vault/<role>` audience).
pub fn login_claims(role: &str) -> Value {
    let now = now_secs();
    json!({
        "iss": EMAIL,
        "sub": EMAIL,
        "aud": format!("vault/{role}"),
        "iat": now,
        "exp": now + JWT_LIFETIME.as_secs(),
    })
}

/// The bench's service account: its RSA key and that key's self-signed
/// X.509 certificate (what IAM serves as `publicKeyData`).
pub struct Account {
    signer: Signer,
    cert_pem: String,
}

impl Account {
    /// A fresh key and its certificate.
    pub fn generate() -> anyhow::Result<Account> {
        let signer = Signer::generate()?;
        let der = signer.pkcs8_der()?;
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_slice()),
            &rcgen::PKCS_RSA_SHA256,
        )?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, EMAIL);
        let cert = params.self_signed(&key)?;
        Ok(Account {
            signer,
            cert_pem: cert.pem(),
        })
    }

    /// The PEM certificate of the account's key.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Signs a login JWT for `role` under key id `kid`.
    pub fn login_jwt(&self, kid: &str, role: &str) -> anyhow::Result<Zeroizing<String>> {
        self.signer.sign_with_kid(kid, &login_claims(role))
    }

    /// The service-account key JSON (as `gcloud iam service-accounts keys
    /// create` writes it) with `token_uri`; it holds the private key.
    pub fn credentials_json(&self, token_uri: &str) -> anyhow::Result<Zeroizing<String>> {
        let der = self.signer.pkcs8_der()?;
        let private_key = Zeroizing::new(kube::pem("PRIVATE KEY", &der));
        let public = json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": CREDENTIALS_KID,
            "client_email": EMAIL,
            "client_id": UNIQUE_ID,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
        })
        .to_string();
        // The private key goes straight into a zeroizing buffer, sized so
        // that it never reallocates (leaving copies behind). A PEM is
        // base64 and newlines: only the newlines need escaping in JSON.
        let mut out = Zeroizing::new(String::with_capacity(
            public.len() + 2 * private_key.len() + 32,
        ));
        out.push_str(public.trim_end_matches('}'));
        out.push_str(r#","private_key":""#);
        for c in private_key.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push_str("\"}");
        Ok(out)
    }

    /// Signs `count` login JWTs for `role` with key ids `cold-0` ...,
    /// spread over the CPUs this process may use (RSA signing is ~1 ms).
    pub fn cold_jwts(&self, role: &str, count: usize) -> anyhow::Result<Vec<Zeroizing<String>>> {
        let threads = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
            .clamp(1, count.max(1));
        let chunk = count.div_ceil(threads).max(1);
        let parts: Vec<anyhow::Result<Vec<Zeroizing<String>>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..count)
                .step_by(chunk)
                .map(|start| {
                    scope.spawn(move || {
                        (start..count.min(start + chunk))
                            .map(|n| self.login_jwt(&cold_kid(n), role))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a JWT signing thread panicked")))
                })
                .collect()
        });
        let mut all = Vec::with_capacity(count);
        for part in parts {
            all.extend(part?);
        }
        Ok(all)
    }
}

/// What the fake Google shares between its connections.
struct Shared {
    /// `token_uri`, the audience a token-endpoint assertion must name.
    token_uri: String,
    /// The account's public key (SPKI DER), which signs the assertions.
    public_key: Vec<u8>,
    /// The one access token the token endpoint hands out.
    access_token: Zeroizing<String>,
    /// The service-account answer.
    account: Bytes,
    /// The account's certificate as IAM's `publicKeyData`.
    public_key_data: String,
    /// Access tokens granted.
    grants: AtomicU64,
    /// Service-account lookups answered 200.
    lookups: AtomicU64,
    /// Key fetches answered 200.
    key_fetches: AtomicU64,
}

/// How many of each call the fake Google has answered with success.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// OAuth2 access tokens granted.
    pub grants: u64,
    /// IAM service-account lookups.
    pub lookups: u64,
    /// IAM key fetches (each one a login that missed the key cache).
    pub key_fetches: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, before: Counts) -> Counts {
        Counts {
            grants: self.grants - before.grants,
            lookups: self.lookups - before.lookups,
            key_fetches: self.key_fetches - before.key_fetches,
        }
    }
}

/// A fake Google API (OAuth2 token and IAM endpoints) over HTTPS; stops
/// (with its connections) when dropped.
pub struct FakeGoogle {
    url: String,
    ca_pem: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGoogle {
    /// Starts a server on a loopback port speaking for `account`.
    pub async fn start(account: &Account) -> anyhow::Result<FakeGoogle> {
        let (ca_pem, tls) = kube::tls_config("strongroom-bench fake google CA")
            .context("making the fake Google TLS config")?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .context("binding the fake Google API server")?;
        let url = format!("https://127.0.0.1:{}", listener.local_addr()?.port());
        // The SPKI DER of the account's key, which signs the assertions.
        let public_key = {
            let pem = account.signer.public_pem()?;
            let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            STANDARD.decode(b64)?
        };
        let mut token_bytes = Zeroizing::new([0u8; 24]);
        aws_lc_rs::rand::fill(token_bytes.as_mut())
            .map_err(|_| anyhow!("drawing the fake access token"))?;
        let account_json = json!({
            "name": format!("projects/{PROJECT}/serviceAccounts/{EMAIL}"),
            "projectId": PROJECT,
            "uniqueId": UNIQUE_ID,
            "email": EMAIL,
            "displayName": "strongroom bench",
            "oauth2ClientId": UNIQUE_ID,
            "disabled": false,
        });
        let shared = Arc::new(Shared {
            token_uri: format!("{url}{TOKEN_PATH}"),
            public_key,
            access_token: Zeroizing::new(format!(
                "ya29.bench-{}",
                URL_SAFE_NO_PAD.encode(token_bytes.as_ref())
            )),
            account: Bytes::from(account_json.to_string()),
            public_key_data: STANDARD.encode(account.cert_pem()),
            grants: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
            key_fetches: AtomicU64::new(0),
        });
        let task = tokio::spawn(kube::accept_loop(
            listener,
            TlsAcceptor::from(tls),
            Arc::clone(&shared),
        ));
        Ok(FakeGoogle {
            url,
            ca_pem,
            shared,
            task,
        })
    }

    /// The server's URL, `https://127.0.0.1:<port>`: the `custom_endpoint`
    /// of both `api` and `iam`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The credentials' `token_uri`: [`TOKEN_PATH`] on this server.
    pub fn token_uri(&self) -> &str {
        &self.shared.token_uri
    }

    /// The PEM CA certificate that issued the server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// What the server has answered so far.
    pub fn counts(&self) -> Counts {
        Counts {
            grants: self.shared.grants.load(Ordering::Relaxed),
            lookups: self.shared.lookups.load(Ordering::Relaxed),
            key_fetches: self.shared.key_fetches.load(Ordering::Relaxed),
        }
    }
}

impl kube::Answer for Shared {
    async fn answer(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        respond(&self, req).await
    }
}

/// Google's error shape.
fn google_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let name = match status {
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        _ => "INVALID_ARGUMENT",
    };
    json_response(
        status,
        &json!({"error": {"code": status.as_u16(), "message": message, "status": name}}),
    )
}

/// Answers one request: the token endpoint, the IAM endpoints, 404
/// elsewhere.
async fn respond(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = percent_decode(req.uri().path());
    if req.method() == Method::POST && path == TOKEN_PATH {
        let body = match req.into_body().collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => Bytes::new(),
        };
        return token_answer(shared, &body);
    }
    let rest = match path.strip_prefix(ACCOUNTS_PREFIX) {
        Some(rest) if req.method() == Method::GET => rest,
        _ => return google_error(StatusCode::NOT_FOUND, "not found"),
    };
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if !bool::from(bearer.ct_eq(shared.access_token.as_bytes())) {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials.",
        );
    }
    let (id, key) = match rest.split_once("/keys/") {
        Some((id, kid)) => (id, Some(kid)),
        None => (rest, None),
    };
    if id != EMAIL && id != UNIQUE_ID {
        return google_error(
            StatusCode::NOT_FOUND,
            &format!("Unknown service account {id}"),
        );
    }
    match key {
        None => {
            shared.lookups.fetch_add(1, Ordering::Relaxed);
            let mut resp = Response::new(Full::new(shared.account.clone()));
            resp.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            resp
        }
        Some(kid) => {
            let query = req.uri().query().unwrap_or_default();
            if !query
                .split('&')
                .any(|p| p == "publicKeyType=TYPE_X509_PEM_FILE")
            {
                return google_error(
                    StatusCode::BAD_REQUEST,
                    "publicKeyType=TYPE_X509_PEM_FILE is wanted",
                );
            }
            if !known_kid(kid) {
                return google_error(StatusCode::NOT_FOUND, &format!("Unknown key {kid}"));
            }
            shared.key_fetches.fetch_add(1, Ordering::Relaxed);
            json_response(
                StatusCode::OK,
                &json!({
                    "name": format!("projects/{PROJECT}/serviceAccounts/{EMAIL}/keys/{kid}"),
                    "validAfterTime": "2020-01-01T00:00:00Z",
                    "validBeforeTime": "9999-12-31T23:59:59Z",
                    "keyAlgorithm": "KEY_ALG_RSA_2048",
                    "keyOrigin": "GOOGLE_PROVIDED",
                    "keyType": "USER_MANAGED",
                    "publicKeyData": shared.public_key_data,
                }),
            )
        }
    }
}

/// The token endpoint's answer to a form `body`: the access token when the
/// assertion is a JWT-bearer grant signed by the account's key for this
/// endpoint; `400 invalid_grant` otherwise.
fn token_answer(shared: &Shared, body: &[u8]) -> Response<Full<Bytes>> {
    let refuse = |why: &str| {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_grant", "error_description": why}),
        )
    };
    let form = String::from_utf8_lossy(body);
    let field = |name: &str| {
        form.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(&v.replace('+', " ")))
    };
    if field("grant_type").as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return refuse("unsupported grant_type");
    }
    let Some(assertion) = field("assertion").map(Zeroizing::new) else {
        return refuse("no assertion");
    };
    let Some((input, sig)) = assertion.rsplit_once('.') else {
        return refuse("assertion is not a JWT");
    };
    let verified = URL_SAFE_NO_PAD.decode(sig).is_ok_and(|sig| {
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &shared.public_key)
            .verify(input.as_bytes(), &sig)
            .is_ok()
    });
    if !verified {
        return refuse("Invalid JWT Signature.");
    }
    let decode = |part: Option<&str>| -> Value {
        part.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null)
    };
    let mut parts = input.split('.');
    let header = decode(parts.next());
    let claims = decode(parts.next());
    if header["alg"] != "RS256" || header["kid"] != CREDENTIALS_KID {
        return refuse("assertion header is not RS256 with the credentials' key id");
    }
    let exp_ok = claims["exp"]
        .as_u64()
        .is_some_and(|exp| exp + 60 >= now_secs());
    if claims["iss"] != EMAIL
        || claims["aud"] != shared.token_uri.as_str()
        || claims["scope"].as_str().is_none_or(|s| !s.contains(SCOPE))
        || !exp_ok
    {
        return refuse("assertion claims are not the credentials' grant for this endpoint");
    }
    shared.grants.fetch_add(1, Ordering::Relaxed);
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": shared.access_token.as_str(),
            "expires_in": 3599,
            "token_type": "Bearer",
        }),
    )
}

/// `%XX` escapes decoded (invalid ones left as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes.get(i), bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(b'%'), Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                // Both digits are below 16, so the byte fits.
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 3;
            }
            (Some(&b), _, _) => {
                out.push(b);
                i += 1;
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::tests::send_tls;

    /// A request to `path` on the fake, with `bearer` if given.
    fn get(path: &str, bearer: Option<&str>) -> Request<Full<Bytes>> {
        let mut req = Request::get(path);
        if let Some(token) = bearer {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        req.body(Full::new(Bytes::new())).unwrap()
    }

    /// Decodes a JWT segment.
    fn segment(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    /// The assertion Strongroom signs for the token endpoint (per the
    /// contract), signed by `account`'s key, with `claims` changed.
    fn assertion(account: &Account, google: &FakeGoogle, change: &Value) -> String {
        let now = now_secs();
        let mut claims = json!({
            "iss": EMAIL,
            "scope": SCOPE,
            "aud": google.token_uri(),
            "iat": now,
            "exp": now + 3600,
        });
        for (k, v) in change.as_object().unwrap() {
            claims[k] = v.clone();
        }
        account
            .signer
            .sign_with_kid(CREDENTIALS_KID, &claims)
            .unwrap()
            .to_string()
    }

    /// Posts a JWT-bearer grant of `assertion`; the status and answer.
    async fn grant(google: &FakeGoogle, assertion: &str) -> (StatusCode, Value) {
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        );
        let req = Request::post(TOKEN_PATH)
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(Full::new(Bytes::from(form)))
            .unwrap();
        let (status, body) = send_tls(google.url(), google.ca_pem(), req).await;
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn the_fake_grants_a_token_for_the_credentials_and_serves_iam_with_it() {
        let account = Account::generate().unwrap();
        let google = FakeGoogle::start(&account).await.unwrap();
        assert_eq!(google.token_uri(), format!("{}{TOKEN_PATH}", google.url()));

        // Assertions not signed for this endpoint by the account are refused.
        let other = Account::generate().unwrap();
        let forged = other
            .signer
            .sign_with_kid(
                CREDENTIALS_KID,
                &segment(
                    assertion(&account, &google, &json!({}))
                        .split('.')
                        .nth(1)
                        .unwrap(),
                ),
            )
            .unwrap();
        for bad in [
            forged.to_string(),
            assertion(
                &account,
                &google,
                &json!({"aud": "https://oauth2.googleapis.com/token"}),
            ),
            assertion(
                &account,
                &google,
                &json!({"iss": "someone@else.iam.gserviceaccount.com"}),
            ),
            assertion(&account, &google, &json!({"exp": now_secs() - 3600})),
        ] {
            let (status, answer) = grant(&google, &bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert_eq!(answer["error"], "invalid_grant");
        }
        assert_eq!(google.counts(), Counts::default());

        let (status, answer) = grant(&google, &assertion(&account, &google, &json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["token_type"], "Bearer");
        assert_eq!(answer["expires_in"], 3599);
        let token = answer["access_token"].as_str().unwrap().to_string();

        // IAM wants that token.
        let account_path = format!("{ACCOUNTS_PREFIX}{EMAIL}");
        for bearer in [None, Some("ya29.wrong")] {
            let (status, body) =
                send_tls(google.url(), google.ca_pem(), get(&account_path, bearer)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"]["code"], 401);
        }
        // By email (escaped or not) and by unique id.
        for path in [
            account_path.clone(),
            account_path.replace('@', "%40"),
            format!("{ACCOUNTS_PREFIX}{UNIQUE_ID}"),
        ] {
            let (status, body) =
                send_tls(google.url(), google.ca_pem(), get(&path, Some(&token))).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["email"], EMAIL);
            assert_eq!(body["projectId"], PROJECT);
            assert_eq!(body["uniqueId"], UNIQUE_ID);
            assert_eq!(body["disabled"], false);
        }
        let (status, _) = send_tls(
            google.url(),
            google.ca_pem(),
            get(
                &format!("{ACCOUNTS_PREFIX}nobody@x.iam.gserviceaccount.com"),
                Some(&token),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Keys: the cached id and any cold-<n> serve the account's
        // certificate, whose key verifies the login JWTs; others are 404.
        let key_path =
            |kid: &str| format!("{account_path}/keys/{kid}?publicKeyType=TYPE_X509_PEM_FILE");
        for kid in [CACHED_KID.to_string(), cold_kid(0), cold_kid(123_456)] {
            let (status, body) = send_tls(
                google.url(),
                google.ca_pem(),
                get(&key_path(&kid), Some(&token)),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{kid}");
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert!(body["name"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/keys/{kid}")));
            let pem = STANDARD
                .decode(body["publicKeyData"].as_str().unwrap())
                .unwrap();
            assert_eq!(pem, account.cert_pem().as_bytes());
        }
        for kid in ["cold-", "cold-x", "other-key"] {
            let (status, _) = send_tls(
                google.url(),
                google.ca_pem(),
                get(&key_path(kid), Some(&token)),
            )
            .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{kid}");
        }
        assert_eq!(
            google.counts(),
            Counts {
                grants: 1,
                lookups: 3,
                key_fetches: 3
            }
        );
    }

    #[test]
    fn login_jwts_are_rs256_for_the_role_audience_and_verify_with_the_certificate() {
        let account = Account::generate().unwrap();
        let cold = account.cold_jwts("bench", 5).unwrap();
        let kids: Vec<Value> = cold
            .iter()
            .map(|jwt| segment(jwt.split('.').next().unwrap())["kid"].clone())
            .collect();
        assert_eq!(kids, ["cold-0", "cold-1", "cold-2", "cold-3", "cold-4"]);

        let jwt = account.login_jwt(CACHED_KID, "bench").unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let header = segment(parts[0]);
        assert_eq!(
            (header["alg"].as_str(), header["kid"].as_str()),
            (Some("RS256"), Some(CACHED_KID))
        );
        let claims = segment(parts[1]);
        assert_eq!(claims["sub"], EMAIL);
        assert_eq!(claims["aud"], "vault/bench");
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        assert_eq!(lifetime, JWT_LIFETIME.as_secs());
        assert!(lifetime < MAX_JWT_EXP_SECS, "within the role's max_jwt_exp");

        // The certificate's key is the signing key.
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(account.cert_pem().as_bytes())
            .unwrap();
        let spki = {
            let pem = account.signer.public_pem().unwrap();
            let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            STANDARD.decode(b64).unwrap()
        };
        assert!(
            der.windows(spki.len()).any(|w| w == spki.as_slice()),
            "the certificate carries the account's public key"
        );
        for token in std::iter::once(&jwt).chain(&cold) {
            let (input, sig) = token.rsplit_once('.').unwrap();
            let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &spki)
                .verify(input.as_bytes(), &sig)
                .unwrap();
        }
    }

    #[test]
    fn credentials_are_a_service_account_key_json_naming_the_fake() {
        let account = Account::generate().unwrap();
        let text = account
            .credentials_json("https://127.0.0.1:1/token")
            .unwrap();
        let creds: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(creds["type"], "service_account");
        assert_eq!(creds["client_email"], EMAIL);
        assert_eq!(creds["private_key_id"], CREDENTIALS_KID);
        assert_eq!(creds["token_uri"], "https://127.0.0.1:1/token");
        let key = creds["private_key"].as_str().unwrap();
        assert!(
            key.starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "{key:.40}"
        );
        // The PEM is the account's key: it loads and signs verifiably.
        let b64: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(b64).unwrap();
        assert_eq!(der, *account.signer.pkcs8_der().unwrap());
    }

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("a%40b%3Ac"), "a@b:c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
