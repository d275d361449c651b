//! The mount's configuration (`config`): where the Kubernetes API server is,
//! which CA to trust, the optional `pem_keys` for local JWT verification,
//! the reviewer JWT and the issuer rules. Owns the stored record, its
//! validation on write, and its rendering on read (which never shows the
//! reviewer JWT, only whether one is set).

use std::sync::Arc;

use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_sdk::framework::Ctx;
use strongroom_sdk::logical::Response;
use strongroom_sdk::{Error, Result};
use zeroize::Zeroizing;

use crate::state::{Kubernetes, CONFIG_KEY};

/// Where a pod finds its CA certificate (read when none is configured and
/// `disable_local_ca_jwt` is false, as OpenBao does).
pub const LOCAL_CA_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
/// Where a pod finds its own service-account token (used as the reviewer
/// JWT when none is configured and `disable_local_ca_jwt` is false).
pub const LOCAL_JWT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// The issuer of legacy service-account tokens, the default expected `iss`.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// The configuration as stored under `config`.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigEntry {
    /// The API server, as given (URL or host:port).
    pub kubernetes_host: String,
    /// PEM CA certificate(s) trusted for the API server.
    pub kubernetes_ca_cert: String,
    /// PEM public keys or certificates that verify JWTs locally.
    pub pem_keys: Vec<String>,
    /// The JWT used to call the TokenReview API (empty: the client's own).
    pub token_reviewer_jwt: String,
    /// The expected `iss` claim (empty: [`LEGACY_ISSUER`]).
    pub issuer: String,
    /// Skip the `iss` check (OpenBao's default: true).
    pub disable_iss_validation: bool,
    /// Do not fall back to the pod's local CA certificate and JWT.
    pub disable_local_ca_jwt: bool,
}

impl std::fmt::Debug for ConfigEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigEntry")
            .field("kubernetes_host", &self.kubernetes_host)
            .field("pem_keys", &self.pem_keys.len())
            .field(
                "token_reviewer_jwt_set",
                &!self.token_reviewer_jwt.is_empty(),
            )
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl ConfigEntry {
    /// The config as `GET config` shows it.
    pub fn render(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert(
            "disable_iss_validation".into(),
            self.disable_iss_validation.into(),
        );
        d.insert(
            "disable_local_ca_jwt".into(),
            self.disable_local_ca_jwt.into(),
        );
        d.insert("issuer".into(), self.issuer.clone().into());
        d.insert(
            "kubernetes_ca_cert".into(),
            self.kubernetes_ca_cert.clone().into(),
        );
        d.insert(
            "kubernetes_host".into(),
            self.kubernetes_host.clone().into(),
        );
        d.insert("pem_keys".into(), self.pem_keys.clone().into());
        d.insert(
            "token_reviewer_jwt_set".into(),
            (!self.token_reviewer_jwt.is_empty()).into(),
        );
        d
    }

    /// The base URL of the API server: `kubernetes_host` with `https://`
    /// added when it is a bare host or host:port.
    pub fn base_url(&self) -> Result<reqwest::Url> {
        base_url(&self.kubernetes_host)
    }
}

/// Parses `kubernetes_host` (a URL, or host[:port] meaning https).
pub fn base_url(host: &str) -> Result<reqwest::Url> {
    let host = host.trim();
    if host.is_empty() {
        return Err(Error::bad_request("no host provided"));
    }
    let full = if host.contains("://") {
        host.to_string()
    } else {
        format!("https://{host}")
    };
    let url = reqwest::Url::parse(&full)
        .map_err(|e| Error::bad_request(format!("invalid kubernetes_host {host:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::bad_request(format!(
            "invalid kubernetes_host {host:?}: want an http(s) URL or host:port"
        )));
    }
    Ok(url)
}

/// The public keys of `pem_keys` (certificates give their key), each usable
/// for RSA or EC signatures; refuses a list holding no valid key.
pub fn parse_pem_keys(pems: &[String]) -> Result<Vec<DecodingKey>> {
    let mut keys = Vec::new();
    for pem in pems {
        let bytes = pem.as_bytes();
        if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
            keys.push(k);
        } else if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
            keys.push(k);
        } else {
            return Err(Error::bad_request(
                "data does not contain any valid public keys",
            ));
        }
    }
    Ok(keys)
}

/// The DER certificates of a PEM bundle; refuses one with none.
pub fn parse_ca(pem: &str) -> Result<Vec<Vec<u8>>> {
    let mut reader = std::io::BufReader::new(pem.as_bytes());
    let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut reader)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::bad_request(format!("invalid kubernetes_ca_cert: {e}")))?;
    if certs.is_empty() {
        return Err(Error::bad_request(
            "invalid kubernetes_ca_cert: no PEM certificate found",
        ));
    }
    Ok(certs)
}

/// Checks that a PEM bundle holds certificates the TLS client accepts.
/// (the client is built and dropped: TLS parses the certificates then).
pub fn check_ca(pem: &str) -> Result<()> {
    let invalid =
        |e: reqwest::Error| Error::bad_request(format!("invalid kubernetes_ca_cert: {e}"));
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false);
    for der in parse_ca(pem)? {
        builder =
            builder.add_root_certificate(reqwest::Certificate::from_der(&der).map_err(invalid)?);
    }
    builder.build().map(drop).map_err(invalid)
}

/// Reads a pod-local file, with Go's wording when it is missing.
pub fn read_local(path: &str) -> Result<Zeroizing<String>> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::bad_request(format!("open {path}: no such file or directory"))
            }
            _ => Error::bad_request(format!("open {path}: {e}")),
        })
}

/// `GET config`.
pub async fn read(s: Arc<Kubernetes>, ctx: Ctx) -> Result<Response> {
    let cfg = s.load_entry(&ctx.storage).await?;
    match cfg {
        Some(c) => Ok(Response::data(c.render())),
        None => Err(Error::NotFound(None)),
    }
}

/// The host of a `config` write.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Host {
    kubernetes_host: String,
}

/// The other fields of a `config` write (absent strings and lists empty).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ConfigWrite {
    kubernetes_ca_cert: String,
    pem_keys: Vec<String>,
    token_reviewer_jwt: String,
    issuer: String,
    disable_iss_validation: Option<bool>,
    disable_local_ca_jwt: bool,
}

/// `POST config`: validates and replaces the whole configuration, and
/// drops the cached client so the next login uses the new one.
pub async fn write(s: Arc<Kubernetes>, ctx: Ctx) -> Result<Response> {
    // The host is checked before the other fields are read, as OpenBao does.
    let Host { kubernetes_host } = ctx.decode()?;
    base_url(&kubernetes_host)?;
    let w: ConfigWrite = ctx.decode()?;
    let mut cfg = ConfigEntry {
        kubernetes_host,
        kubernetes_ca_cert: w.kubernetes_ca_cert,
        pem_keys: w.pem_keys,
        token_reviewer_jwt: w.token_reviewer_jwt,
        issuer: w.issuer,
        disable_iss_validation: w.disable_iss_validation.unwrap_or(true),
        disable_local_ca_jwt: w.disable_local_ca_jwt,
    };
    cfg.pem_keys.retain(|k| !k.trim().is_empty());
    if cfg.kubernetes_ca_cert.trim().is_empty() {
        if cfg.disable_local_ca_jwt {
            return Err(Error::bad_request(
                "kubernetes_ca_cert must be given when disable_local_ca_jwt is true",
            ));
        }
        // Running in a pod: the CA is read from the pod's files at login.
        parse_ca(&read_local(LOCAL_CA_PATH)?)?;
    }
    // A CA that does not parse is stored as given, as OpenBao does (tools
    // write placeholders); the answer warns, and logins fail naming it.
    let warning = match cfg.kubernetes_ca_cert.trim().is_empty() {
        true => None,
        false => check_ca(&cfg.kubernetes_ca_cert).err().map(|e| {
            format!(
                "kubernetes_ca_cert was stored but does not parse ({}); logins fail until it is a PEM certificate",
                e.messages().join("; ")
            )
        }),
    };
    parse_pem_keys(&cfg.pem_keys)?;
    let _guard = s.config_lock.lock().await;
    ctx.storage.put_json(CONFIG_KEY, &cfg).await?;
    s.invalidate();
    Ok(match warning {
        Some(w) => Response::empty().with_warning(w),
        None => Response::empty(),
    })
}
