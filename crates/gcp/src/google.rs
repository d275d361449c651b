//! The Google client: how the method authenticates to Google (an OAuth2
//! access token obtained with a JWT assertion signed by the configured
//! key, or application default credentials: the key file named by
//! `GOOGLE_APPLICATION_CREDENTIALS`, else the GCE metadata server), the
//! cached access token, and the three lookups a login needs (IAM service
//! account, IAM key, public certificates). Owns the mapping of Google's
//! answers onto errors: Google refusing (4xx) is a 400 naming the API and
//! status; Google failing (unreachable, timeout, 5xx, a body that is not
//! the expected JSON) is a 502 naming the API. Tokens, keys and JWTs never
//! appear in messages or logs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{json, Value};
use strongroom_sdk::{Error, Result};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::config::{ConfigEntry, Credentials, CustomEndpoint};
use crate::keys::{key_from_pem, max_age, parse_rfc3339};

/// The OAuth2 scope asked for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The assertion grant type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// An access token is renewed this long before it expires.
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// The environment variable naming the ADC key file.
pub const ADC_ENV: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// The environment variable overriding the metadata server's host.
pub const METADATA_HOST_ENV: &str = "GCE_METADATA_HOST";
/// The metadata server's default host.
pub const METADATA_HOST: &str = "metadata.google.internal";
/// The longest a Google error message is quoted.
const MAX_QUOTE: usize = 200;

/// How the method obtains access tokens.
enum TokenSource {
    /// A service-account key: a signed JWT assertion at its `token_uri`.
    Key {
        creds: Box<Credentials>,
        key: EncodingKey,
    },
    /// The GCE metadata server at this host.
    Metadata { host: String },
}

/// A cached access token.
struct AccessToken {
    value: Zeroizing<String>,
    refresh_at: SystemTime,
}

/// A service account as IAM describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Its email.
    pub email: String,
    /// Its numeric unique id.
    pub unique_id: String,
    /// The project it belongs to.
    pub project_id: String,
    /// Whether it is disabled.
    pub disabled: bool,
}

/// A key IAM knows, ready to verify.
pub struct FetchedKey {
    /// The verification key.
    pub key: DecodingKey,
    /// IAM's `validBeforeTime`, when given.
    pub valid_before: Option<SystemTime>,
}

/// The public certificates of a service account.
pub struct CertSet {
    /// (kid, key) for every certificate that parsed.
    pub keys: Vec<(String, DecodingKey)>,
    /// How long the answer may be cached (its `max-age`, at most 1 h).
    pub max_age: Option<Duration>,
}

/// The per-configuration Google client.
pub struct Google {
    http: reqwest::Client,
    endpoints: CustomEndpoint,
    source: TokenSource,
    token: Mutex<Option<AccessToken>>,
}

impl Google {
    /// Builds the client of `config` over the shared HTTP client, resolving
    /// application default credentials when no key is configured.
    pub fn new(http: reqwest::Client, config: &ConfigEntry) -> Result<Google> {
        let creds = match config.credentials()? {
            Some(c) => Some(c),
            None => adc_file()?,
        };
        let source = match creds {
            Some(creds) => {
                let key =
                    EncodingKey::from_rsa_pem(creds.private_key.as_bytes()).map_err(|_| {
                        Error::bad_request(
                            "credentials \"private_key\" is not a PEM RSA private key",
                        )
                    })?;
                TokenSource::Key {
                    creds: Box::new(creds),
                    key,
                }
            }
            None => TokenSource::Metadata {
                host: std::env::var(METADATA_HOST_ENV)
                    .ok()
                    .filter(|h| !h.trim().is_empty())
                    .unwrap_or_else(|| METADATA_HOST.to_string()),
            },
        };
        Ok(Google {
            http,
            endpoints: config.custom_endpoint.clone(),
            source,
            token: Mutex::new(None),
        })
    }

    /// An access token, from the cache or freshly obtained.
    async fn access_token(&self, now: SystemTime) -> Result<Zeroizing<String>> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref() {
            if now < t.refresh_at {
                return Ok(t.value.clone());
            }
        }
        let (api, answer) = match &self.source {
            TokenSource::Key { creds, key } => {
                let api = "OAuth2 token endpoint";
                let assertion = Zeroizing::new(assertion(creds, key, now)?);
                let form = [
                    ("grant_type", JWT_BEARER),
                    ("assertion", assertion.as_str()),
                ];
                let req = self.http.post(&creds.token_uri).form(&form);
                (api, self.call(api, req).await?)
            }
            TokenSource::Metadata { host } => {
                let api = "GCE metadata server";
                let url = format!(
                    "http://{host}/computeMetadata/v1/instance/service-accounts/default/token"
                );
                let req = self.http.get(url).header("Metadata-Flavor", "Google");
                (api, self.call(api, req).await?)
            }
        };
        let token = parse_token(&answer.body, now).ok_or_else(|| unexpected(api))?;
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }

    /// Forgets the cached access token (Google said it is no longer valid).
    async fn drop_token(&self) {
        *self.token.lock().await = None;
    }

    /// An authenticated GET of an IAM resource; `None` on 404.
    async fn iam_get(
        &self,
        api: &str,
        segments: &[&str],
        query: Option<(&str, &str)>,
        now: SystemTime,
    ) -> Result<Option<Value>> {
        let mut url = join(self.endpoints.iam_base(), segments, api)?;
        if let Some((k, v)) = query {
            url.query_pairs_mut().append_pair(k, v);
        }
        let token = self.access_token(now).await?;
        let req = self.http.get(url).bearer_auth(token.as_str());
        let answer = self.send(api, req).await?;
        match answer.status {
            404 => Ok(None),
            401 => {
                self.drop_token().await;
                Err(refused(api, &answer))
            }
            _ => {
                check(api, &answer)?;
                let v: Value = serde_json::from_slice(&answer.body).map_err(|_| unexpected(api))?;
                Ok(Some(v))
            }
        }
    }

    /// Looks up a service account by email or unique id; `None` when IAM
    /// does not know it.
    pub async fn service_account(
        &self,
        id: &str,
        now: SystemTime,
    ) -> Result<Option<ServiceAccount>> {
        let api = "IAM service account API";
        let Some(v) = self
            .iam_get(
                api,
                &["v1", "projects", "-", "serviceAccounts", id],
                None,
                now,
            )
            .await?
        else {
            return Ok(None);
        };
        parse_service_account(&v)
            .map(Some)
            .ok_or_else(|| unexpected(api))
    }

    /// Looks up key `kid` of service account `sub` in IAM; `None` when IAM
    /// does not know it.
    pub async fn iam_key(
        &self,
        sub: &str,
        kid: &str,
        now: SystemTime,
    ) -> Result<Option<FetchedKey>> {
        let api = "IAM service account key API";
        let Some(v) = self
            .iam_get(
                api,
                &["v1", "projects", "-", "serviceAccounts", sub, "keys", kid],
                Some(("publicKeyType", "TYPE_X509_PEM_FILE")),
                now,
            )
            .await?
        else {
            return Ok(None);
        };
        parse_iam_key(&v).map(Some).ok_or_else(|| unexpected(api))
    }

    /// The public certificates of service account `sub` (unauthenticated);
    /// an empty set when Google does not know the account.
    pub async fn certs(&self, sub: &str) -> Result<CertSet> {
        let api = "public certificate endpoint";
        let url = join(
            self.endpoints.api_base(),
            &["service_accounts", "v1", "metadata", "x509", sub],
            api,
        )?;
        let answer = self.send(api, self.http.get(url)).await?;
        if answer.status == 404 {
            return Ok(CertSet {
                keys: Vec::new(),
                max_age: None,
            });
        }
        check(api, &answer)?;
        let v: Value = serde_json::from_slice(&answer.body).map_err(|_| unexpected(api))?;
        let obj = v.as_object().ok_or_else(|| unexpected(api))?;
        let mut keys = Vec::new();
        for (kid, pem) in obj {
            let pem = pem.as_str().ok_or_else(|| unexpected(api))?;
            if let Some(k) = key_from_pem(pem) {
                keys.push((kid.clone(), k));
            }
        }
        Ok(CertSet {
            keys,
            max_age: answer.cache_control.as_deref().and_then(max_age),
        })
    }

    /// Sends a request and reads the answer; transport failures are 502s.
    async fn send(&self, api: &str, req: reqwest::RequestBuilder) -> Result<Answer> {
        let resp = req.send().await.map_err(|e| transport(api, &e))?;
        let status = resp.status().as_u16();
        let cache_control = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = resp.bytes().await.map_err(|e| transport(api, &e))?;
        Ok(Answer {
            status,
            cache_control,
            body: body.to_vec(),
        })
    }

    /// [`Self::send`], then [`check`].
    async fn call(&self, api: &str, req: reqwest::RequestBuilder) -> Result<Answer> {
        let answer = self.send(api, req).await?;
        check(api, &answer)?;
        Ok(answer)
    }
}

/// A read answer.
struct Answer {
    status: u16,
    cache_control: Option<String>,
    body: Vec<u8>,
}

/// Reads the key file named by `GOOGLE_APPLICATION_CREDENTIALS`, if set.
fn adc_file() -> Result<Option<Credentials>> {
    let Some(path) = std::env::var_os(ADC_ENV).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
        Error::internal(format!(
            "unable to read application default credentials from {}: {e}",
            std::path::Path::new(&path).display()
        ))
    })?);
    Credentials::parse(&text)
        .map(Some)
        .map_err(|e| Error::internal(format!("invalid application default credentials: {e}")))
}

/// The signed OAuth2 assertion of `creds` at `now`.
pub fn assertion(creds: &Credentials, key: &EncodingKey, now: SystemTime) -> Result<String> {
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::internal("system clock is before 1970"))?
        .as_secs();
    let mut header = Header::new(Algorithm::RS256);
    if !creds.private_key_id.is_empty() {
        header.kid = Some(creds.private_key_id.clone());
    }
    let claims = json!({
        "iss": creds.client_email,
        "scope": SCOPE,
        "aud": creds.token_uri,
        "iat": iat,
        "exp": iat + 3600,
    });
    jsonwebtoken::encode(&header, &claims, key)
        .map_err(|_| Error::internal("unable to sign the OAuth2 assertion"))
}

/// Reads a token answer (`access_token`, `expires_in`).
fn parse_token(body: &[u8], now: SystemTime) -> Option<AccessToken> {
    let v: Zeroizing<Vec<u8>> = Zeroizing::new(body.to_vec());
    let parsed: Value = serde_json::from_slice(&v).ok()?;
    let token = parsed.get("access_token")?.as_str()?;
    if token.is_empty() {
        return None;
    }
    let expires_in = parsed
        .get("expires_in")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Some(AccessToken {
        value: Zeroizing::new(token.to_string()),
        refresh_at: now + Duration::from_secs(expires_in).saturating_sub(TOKEN_REFRESH_MARGIN),
    })
}

/// Reads IAM's service-account object.
pub fn parse_service_account(v: &Value) -> Option<ServiceAccount> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let email = s("email")?;
    let unique_id = s("uniqueId")?;
    let project_id = s("projectId")?;
    if email.is_empty() || unique_id.is_empty() {
        return None;
    }
    Some(ServiceAccount {
        email,
        unique_id,
        project_id,
        disabled: v.get("disabled").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// Reads IAM's key object: the base64 PEM certificate and its expiry.
pub fn parse_iam_key(v: &Value) -> Option<FetchedKey> {
    let data = v.get("publicKeyData")?.as_str()?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    let pem = String::from_utf8(pem).ok()?;
    let key = key_from_pem(&pem)?;
    let valid_before = v
        .get("validBeforeTime")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339);
    Some(FetchedKey { key, valid_before })
}

/// `base` with `segments` appended (each percent-encoded).
fn join(base: &str, segments: &[&str], api: &str) -> Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(base)
        .map_err(|_| Error::internal(format!("invalid base URL for the Google {api}")))?;
    {
        let mut segs = url
            .path_segments_mut()
            .map_err(|_| Error::internal(format!("invalid base URL for the Google {api}")))?;
        segs.pop_if_empty();
        segs.extend(segments);
    }
    Ok(url)
}

/// The 502 of a call that did not get an answer.
fn transport(api: &str, e: &reqwest::Error) -> Error {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    tracing::warn!(api, "Google call {what}");
    Error::Upstream(format!("error calling the Google {api}: {what}"))
}

/// The 502 of a 2xx answer that is not the expected JSON.
fn unexpected(api: &str) -> Error {
    tracing::warn!(api, "Google answered with an unexpected body");
    Error::Upstream(format!("the Google {api} answered with an unexpected body"))
}

/// The 400 of a 4xx answer, naming the API, the status and Google's
/// message (which names no secret of ours).
fn refused(api: &str, answer: &Answer) -> Error {
    let msg = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|v| {
            let m = v
                .pointer("/error/message")
                .or_else(|| v.get("error_description"))
                .or_else(|| v.get("error"))?;
            m.as_str().map(String::from)
        })
        .map(|m| {
            let m: String = m.chars().take(MAX_QUOTE).collect();
            format!(": {m}")
        })
        .unwrap_or_default();
    tracing::debug!(api, status = answer.status, "Google refused a call");
    Error::bad_request(format!(
        "the Google {api} refused the request (HTTP {}){msg}",
        answer.status
    ))
}

/// Maps a non-2xx answer onto its error (4xx: 400, else 502).
fn check(api: &str, answer: &Answer) -> Result<()> {
    match answer.status {
        200..=299 => Ok(()),
        400..=499 => Err(refused(api, answer)),
        status => {
            tracing::warn!(api, status, "Google failed");
            Err(Error::Upstream(format!(
                "the Google {api} failed (HTTP {status})"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            cache_control: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn google_refusals_are_400_and_failures_502() {
        let a = answer(
            403,
            r#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#,
        );
        let e = check("IAM service account API", &a).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("IAM service account API"));
        assert!(e.to_string().contains("403"));
        assert!(e.to_string().contains("denied"));
        let e = check("IAM service account API", &answer(503, "oops")).unwrap_err();
        assert_eq!(e.status(), 502);
        assert!(check("x", &answer(200, "{}")).is_ok());
        assert_eq!(unexpected("x").status(), 502);
    }

    #[test]
    fn token_answers_are_cached_until_a_minute_before_expiry() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let t = parse_token(
            br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.value.as_str(), "ya29.x");
        assert_eq!(t.refresh_at, now + Duration::from_secs(3539));
        assert!(parse_token(b"not json", now).is_none());
        assert!(parse_token(br#"{"expires_in":5}"#, now).is_none());
    }

    #[test]
    fn service_accounts_parse() {
        let sa = parse_service_account(&json!({
            "name": "projects/p/serviceAccounts/a@p.iam.gserviceaccount.com",
            "projectId": "p", "uniqueId": "123456789012345678901",
            "email": "a@p.iam.gserviceaccount.com", "disabled": true
        }))
        .unwrap();
        assert_eq!(sa.project_id, "p");
        assert_eq!(sa.unique_id, "123456789012345678901");
        assert!(sa.disabled);
        assert!(parse_service_account(&json!({"email": "a"})).is_none());
    }

    #[test]
    fn urls_encode_segments_and_keep_base_path() {
        let u = join("https://h:8443/iam/", &["v1", "a@b", "k/../x"], "x").unwrap();
        assert_eq!(u.as_str(), "https://h:8443/iam/v1/a@b/k%2F..%2Fx");
    }
}
