//! The mount's configuration (`config`): the service-account key the
//! method uses to call Google (empty: application default credentials) and
//! the `custom_endpoint` base URLs. Owns the stored record, the parsing of
//! the key JSON into [`Credentials`] (whose private key lives in a
//! zeroizing buffer and never prints), the parsing of [`CustomEndpoint`],
//! and the `config` handlers (the read never shows the private key).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_sdk::framework::{double_option, Ctx};
use strongroom_sdk::logical::Response;
use strongroom_sdk::{Error, Result};
use zeroize::Zeroizing;

use crate::state::{Gcp, CONFIG_KEY};

/// Google's OAuth2 token endpoint, used when the key names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The default base of Google's general APIs (public certificates).
pub const DEFAULT_API: &str = "https://www.googleapis.com";
/// The default base of the IAM API.
pub const DEFAULT_IAM: &str = "https://iam.googleapis.com";
/// The default base of the Cloud Resource Manager API.
pub const DEFAULT_CRM: &str = "https://cloudresourcemanager.googleapis.com";
/// The default base of the Compute API.
pub const DEFAULT_COMPUTE: &str = "https://compute.googleapis.com";

/// A service-account key, parsed from its JSON file.
#[derive(Clone)]
pub struct Credentials {
    /// The service account's email (`iss` of the OAuth2 assertion).
    pub client_email: String,
    /// The service account's OAuth2 client id.
    pub client_id: String,
    /// The key's id (the assertion's `kid`).
    pub private_key_id: String,
    /// The PEM private key. Never logged.
    pub private_key: Zeroizing<String>,
    /// The project the key belongs to.
    pub project_id: String,
    /// Where OAuth2 tokens are obtained.
    pub token_uri: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_email", &self.client_email)
            .field("client_id", &self.client_id)
            .field("private_key_id", &self.private_key_id)
            .field("private_key", &"<redacted>")
            .field("project_id", &self.project_id)
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

impl Credentials {
    /// Parses the JSON of a service-account key: an object with at least
    /// `client_email` and a PEM RSA `private_key`. The error names what is
    /// wrong, never the key.
    pub fn parse(json: &str) -> Result<Credentials> {
        let raw: RawCredentials = serde_json::from_str(json).map_err(|e| {
            if e.is_data() {
                Error::bad_request("credentials must be a JSON object whose fields are strings")
            } else {
                Error::bad_request("credentials are not valid JSON")
            }
        })?;
        let text = |v: Option<String>| v.unwrap_or_default();
        let client_email = text(raw.client_email);
        if client_email.trim().is_empty() {
            return Err(Error::bad_request(
                "credentials are missing \"client_email\"",
            ));
        }
        let private_key = raw.private_key.unwrap_or_default();
        if private_key.trim().is_empty() {
            return Err(Error::bad_request(
                "credentials are missing \"private_key\"",
            ));
        }
        if jsonwebtoken::EncodingKey::from_rsa_pem(private_key.as_bytes()).is_err() {
            return Err(Error::bad_request(
                "credentials \"private_key\" is not a PEM RSA private key",
            ));
        }
        let token_uri = match text(raw.token_uri) {
            t if t.trim().is_empty() => DEFAULT_TOKEN_URI.to_string(),
            t => {
                parse_base(&t).ok_or_else(|| {
                    Error::bad_request("credentials \"token_uri\" is not an http(s) URL")
                })?;
                t
            }
        };
        Ok(Credentials {
            client_email,
            client_id: text(raw.client_id),
            private_key_id: text(raw.private_key_id),
            private_key,
            project_id: text(raw.project_id),
            token_uri,
        })
    }
}

/// The fields of a key JSON this method reads (others are ignored).
#[derive(Deserialize)]
struct RawCredentials {
    client_email: Option<String>,
    client_id: Option<String>,
    private_key_id: Option<String>,
    #[serde(default, with = "zeroizing_opt")]
    private_key: Option<Zeroizing<String>>,
    project_id: Option<String>,
    token_uri: Option<String>,
}

mod zeroizing_opt {
    //! Serde for an optional `Zeroizing<String>`.
    use serde::{Deserialize, Deserializer};
    use zeroize::Zeroizing;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Zeroizing<String>>, D::Error> {
        Option::<String>::deserialize(d).map(|o| o.map(Zeroizing::new))
    }
}

/// The `custom_endpoint` base URLs; `None` means Google's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomEndpoint {
    /// Base of the general APIs (public certificates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// Base of the IAM API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam: Option<String>,
    /// Base of the Cloud Resource Manager API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crm: Option<String>,
    /// Base of the Compute API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute: Option<String>,
}

impl CustomEndpoint {
    /// Parses the `custom_endpoint` object: known keys only, each an
    /// http(s) URL (a trailing slash is dropped); empty values are unset.
    pub fn parse(map: &Map<String, Value>) -> Result<CustomEndpoint> {
        let mut out = CustomEndpoint::default();
        for (key, value) in map {
            let slot = match key.as_str() {
                "api" => &mut out.api,
                "iam" => &mut out.iam,
                "crm" => &mut out.crm,
                "compute" => &mut out.compute,
                other => {
                    return Err(Error::bad_request(format!(
                        "invalid custom_endpoint key {other:?}: want api, iam, crm or compute"
                    )))
                }
            };
            let text = match value {
                Value::String(s) => s.trim(),
                Value::Null => "",
                _ => {
                    return Err(Error::bad_request(format!(
                        "custom_endpoint {key:?} must be a string"
                    )))
                }
            };
            if text.is_empty() {
                continue;
            }
            parse_base(text).ok_or_else(|| {
                Error::bad_request(format!(
                    "custom_endpoint {key:?} is not an http(s) URL: {text:?}"
                ))
            })?;
            *slot = Some(text.trim_end_matches('/').to_string());
        }
        Ok(out)
    }

    /// The object `GET config` shows: only the keys set.
    pub fn render(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for (k, v) in [
            ("api", &self.api),
            ("iam", &self.iam),
            ("crm", &self.crm),
            ("compute", &self.compute),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.clone().into());
            }
        }
        m
    }

    /// The effective base of the general APIs.
    pub fn api_base(&self) -> &str {
        self.api.as_deref().unwrap_or(DEFAULT_API)
    }

    /// The effective base of the IAM API.
    pub fn iam_base(&self) -> &str {
        self.iam.as_deref().unwrap_or(DEFAULT_IAM)
    }
}

/// `s` as an absolute http(s) URL with a host, or `None`.
pub fn parse_base(s: &str) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(s.trim()).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some()).then_some(url)
}

/// The configuration as stored under `config`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigEntry {
    /// The service-account key JSON (empty: application default
    /// credentials). Stored behind the barrier; never shown or logged.
    #[serde(with = "zeroizing_string")]
    pub credentials: Zeroizing<String>,
    /// The custom API bases.
    pub custom_endpoint: CustomEndpoint,
}

impl std::fmt::Debug for ConfigEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigEntry")
            .field("credentials_set", &!self.credentials.is_empty())
            .field("custom_endpoint", &self.custom_endpoint)
            .finish()
    }
}

impl ConfigEntry {
    /// The parsed credentials; `None` when application default
    /// credentials are to be used.
    pub fn credentials(&self) -> Result<Option<Credentials>> {
        if self.credentials.trim().is_empty() {
            return Ok(None);
        }
        Credentials::parse(&self.credentials).map(Some)
    }

    /// The config as `GET config` shows it (never the private key).
    pub fn render(&self) -> Result<Map<String, Value>> {
        let creds = self.credentials()?;
        let get = |f: fn(&Credentials) -> &str| -> Value {
            creds.as_ref().map(f).unwrap_or_default().into()
        };
        let mut d = Map::new();
        d.insert("client_email".into(), get(|c| &c.client_email));
        d.insert("client_id".into(), get(|c| &c.client_id));
        d.insert(
            "custom_endpoint".into(),
            self.custom_endpoint.render().into(),
        );
        d.insert("private_key_id".into(), get(|c| &c.private_key_id));
        d.insert("project_id".into(), get(|c| &c.project_id));
        d.insert("token_uri".into(), get(|c| &c.token_uri));
        Ok(d)
    }
}

mod zeroizing_string {
    //! Serde for a `Zeroizing<String>` stored as a plain JSON string.
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(v: &Zeroizing<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
        String::deserialize(d).map(Zeroizing::new)
    }
}

/// `GET config`: the stored configuration, or empty fields when none is.
pub async fn read(s: Arc<Gcp>, ctx: Ctx) -> Result<Response> {
    let cfg = s.load_entry(&ctx.storage).await?.unwrap_or_default();
    Ok(Response::data(cfg.render()?))
}

/// The fields of a `config` write.
#[derive(Deserialize)]
pub(crate) struct ConfigWrite {
    credentials: Option<String>,
    #[serde(default, deserialize_with = "double_option::deserialize")]
    custom_endpoint: Option<Option<Map<String, Value>>>,
}

/// `POST config`: validates and stores the configuration (fields not
/// given keep their stored value), and drops the cached Google client
/// state so the next login uses the new one.
pub async fn write(s: Arc<Gcp>, ctx: Ctx) -> Result<Response> {
    let _guard = s.config_lock.lock().await;
    let mut cfg = s.load_entry(&ctx.storage).await?.unwrap_or_default();
    let w: ConfigWrite = ctx.decode()?;
    if let Some(c) = w.credentials.map(Zeroizing::new) {
        if !c.trim().is_empty() {
            Credentials::parse(&c)?;
        }
        cfg.credentials = c;
    }
    // Given, even as null (which clears the overrides).
    if let Some(map) = w.custom_endpoint {
        cfg.custom_endpoint = CustomEndpoint::parse(&map.unwrap_or_default())?;
    }
    ctx.storage.put_json(CONFIG_KEY, &cfg).await?;
    s.invalidate();
    Ok(Response::empty())
}

/// `DELETE config`: removes the configuration (logins then use
/// application default credentials).
pub async fn delete(s: Arc<Gcp>, ctx: Ctx) -> Result<Response> {
    let _guard = s.config_lock.lock().await;
    ctx.storage.delete(CONFIG_KEY).await?;
    s.invalidate();
    Ok(Response::empty())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use base64::Engine;
    use serde_json::json;

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    /// A fresh RSA key: (private PKCS#8 PEM, public SPKI PEM).
    pub(crate) fn rsa_pems() -> (String, String) {
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let private: aws_lc_rs::encoding::Pkcs8V1Der = kp.as_der().unwrap();
        let public: aws_lc_rs::encoding::PublicKeyX509Der =
            aws_lc_rs::signature::KeyPair::public_key(&kp)
                .as_der()
                .unwrap();
        (
            pem("PRIVATE KEY", private.as_ref()),
            pem("PUBLIC KEY", public.as_ref()),
        )
    }

    fn key_json(private_pem: &str) -> String {
        json!({
            "type": "service_account",
            "project_id": "p1",
            "private_key_id": "kid-1",
            "private_key": private_pem,
            "client_email": "vault@p1.iam.gserviceaccount.com",
            "client_id": "123456789012345678901",
        })
        .to_string()
    }

    #[test]
    fn credentials_parse_and_default_the_token_uri() {
        let (private, _) = rsa_pems();
        let c = Credentials::parse(&key_json(&private)).unwrap();
        assert_eq!(c.client_email, "vault@p1.iam.gserviceaccount.com");
        assert_eq!(c.private_key_id, "kid-1");
        assert_eq!(c.project_id, "p1");
        assert_eq!(c.token_uri, DEFAULT_TOKEN_URI);
        assert_eq!(c.private_key.as_str(), private);
    }

    #[test]
    fn bad_credentials_are_400_naming_the_problem() {
        let (private, _) = rsa_pems();
        let cases = [
            ("{not json".to_string(), "not valid JSON"),
            ("[1,2]".to_string(), "JSON object"),
            (json!({"private_key": private}).to_string(), "client_email"),
            (json!({"client_email": "a@b"}).to_string(), "private_key"),
            (
                json!({"client_email": "a@b", "private_key": "garbage"}).to_string(),
                "PEM RSA",
            ),
            (
                json!({"client_email": 5, "private_key": private}).to_string(),
                "strings",
            ),
            (
                json!({"client_email": "a@b", "private_key": private, "token_uri": "ftp://x"})
                    .to_string(),
                "token_uri",
            ),
        ];
        for (input, want) in cases {
            let err = Credentials::parse(&input).unwrap_err();
            assert_eq!(err.status(), 400, "{want}");
            assert!(err.to_string().contains(want), "{err} should name {want}");
            assert!(!err.to_string().contains("BEGIN"), "the key leaked: {err}");
        }
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let (private, _) = rsa_pems();
        let c = Credentials::parse(&key_json(&private)).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("vault@p1.iam.gserviceaccount.com"));
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        let entry = ConfigEntry {
            credentials: Zeroizing::new(key_json(&private)),
            custom_endpoint: CustomEndpoint::default(),
        };
        assert!(!format!("{entry:?}").contains("PRIVATE KEY"));
        let rendered = Value::Object(entry.render().unwrap()).to_string();
        assert!(!rendered.contains("PRIVATE KEY"), "{rendered}");
        assert!(rendered.contains("kid-1"));
    }

    #[test]
    fn custom_endpoints_parse_known_http_keys() {
        let m = |v: Value| v.as_object().cloned().unwrap_or_default();
        let e = CustomEndpoint::parse(&m(json!({
            "api": "https://127.0.0.1:8443/",
            "iam": "http://iam.local:9000/base",
            "crm": ""
        })))
        .unwrap();
        assert_eq!(e.api.as_deref(), Some("https://127.0.0.1:8443"));
        assert_eq!(e.iam_base(), "http://iam.local:9000/base");
        assert_eq!(e.crm, None);
        assert_eq!(e.compute, None);
        assert_eq!(
            Value::Object(e.render()),
            json!({"api": "https://127.0.0.1:8443", "iam": "http://iam.local:9000/base"})
        );
        assert_eq!(CustomEndpoint::default().api_base(), DEFAULT_API);
        for bad in [
            json!({"storage": "https://x"}),
            json!({"api": "not a url"}),
            json!({"api": "ftp://x"}),
            json!({"iam": 5}),
        ] {
            assert_eq!(
                CustomEndpoint::parse(&m(bad.clone())).unwrap_err().status(),
                400,
                "{bad}"
            );
        }
    }
}
