//! A small client of the Vault HTTP API (Strongroom or OpenBao): exactly
//! the calls Gatekeeper makes. It owns the TLS and timeout settings of the
//! connection to the Vault-API server ([`VaultTls`]: CA file or CA
//! directory, client certificate, skip-verify) and the [`Token`] type that
//! keeps tokens out of logs and wipes them from memory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

/// A Vault token, secret id or wrapping token. `Debug` is redacted and the
/// memory is wiped on drop; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Token(Zeroizing::new(value.into()))
    }

    /// The secret value, to put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why a call to the Vault-API server failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The server could not be reached or timed out.
    #[error("the Vault-API server is unreachable: {0}")]
    Transport(String),
    /// The server answered with an error status.
    #[error("the Vault-API server answered {status}: {}", errors.join("; "))]
    Status {
        /// The HTTP status.
        status: u16,
        /// The `errors` list of the body.
        errors: Vec<String>,
    },
    /// The server answered 2xx with a body that is not what the call expects.
    #[error("unexpected answer from the Vault-API server: {0}")]
    BadAnswer(String),
    /// The client could not be set up (CA file, TLS).
    #[error("Vault client setup: {0}")]
    Setup(String),
}

impl VaultError {
    /// The HTTP status of an error answer, if it was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn transport(e: reqwest::Error) -> VaultError {
    // reqwest's message carries the URL, never headers, so no token leaks.
    VaultError::Transport(e.without_url().to_string())
}

/// A token issued by a login or unwrap.
#[derive(Debug, Clone)]
pub struct AuthToken {
    /// The token.
    pub token: Token,
    /// Its accessor.
    pub accessor: String,
    /// Its TTL (zero: does not expire).
    pub ttl: Duration,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// Its policies.
    pub policies: Vec<String>,
}

/// A response-wrapping token (`wrap_info`).
#[derive(Debug, Clone)]
pub struct Wrapped {
    /// The single-use wrapping token.
    pub token: Token,
    /// The wrapping token's accessor (to revoke it).
    pub accessor: String,
    /// How long the wrapping token lives.
    pub ttl: Duration,
}

/// The outcome of a check-and-set write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// Written.
    Written,
    /// The entry's version was not the one given.
    Conflict,
}

/// A KV entry as read.
#[derive(Debug, Clone)]
pub struct KvEntry {
    /// The secret's data.
    pub data: Map<String, Value>,
    /// The KV v2 version (0 on KV v1).
    pub version: u64,
}

/// How the connection to the Vault-API server is secured: the flags
/// `--vault-cacert`, `--vault-capath`, `--vault-client-cert`,
/// `--vault-client-key` and `--vault-skip-verify`. Peers are called with
/// the same settings, as the original shared one transport for both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultTls {
    /// A PEM bundle of CA certificates. Takes precedence over `capath`.
    pub cacert: Option<PathBuf>,
    /// A directory of PEM CA files, searched recursively.
    pub capath: Option<PathBuf>,
    /// A PEM client certificate (chain) to present.
    pub client_cert: Option<PathBuf>,
    /// The unencrypted PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Do not verify the server's certificate.
    pub skip_verify: bool,
}

fn setup(msg: String) -> VaultError {
    VaultError::Setup(msg)
}

/// The certificates of one PEM file, each checked to parse as a trust
/// anchor; a file without one is an error.
fn ca_file_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, VaultError> {
    let pem = std::fs::read(path).map_err(|e| setup(format!("reading {}: {e}", path.display())))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            setup(format!(
                "{}: not a PEM certificate file: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(setup(format!(
            "{}: no PEM certificate in the file",
            path.display()
        )));
    }
    let mut check = rustls::RootCertStore::empty();
    for cert in &certs {
        check
            .add(cert.clone())
            .map_err(|e| setup(format!("{}: unusable CA certificate: {e}", path.display())))?;
    }
    Ok(certs)
}

/// Every file below `dir` (recursively, in name order; symbolic links to
/// files are read, to directories not followed), as the original's CA
/// path: each must hold PEM certificates.
fn ca_dir_certs(dir: &Path) -> Result<Vec<CertificateDer<'static>>, VaultError> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| setup(format!("reading the CA directory {}: {e}", dir.display())))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| setup(format!("reading the CA directory {}: {e}", dir.display())))?;
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| setup(format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            out.extend(ca_dir_certs(&path)?);
        } else if meta.is_symlink() && path.is_dir() {
            // Not followed: a link back up would loop.
            continue;
        } else {
            out.extend(ca_file_certs(&path)?);
        }
    }
    Ok(out)
}

/// The client certificate chain and key, as one PEM for reqwest, after
/// checking that both parse and that the key is the certificate's.
fn client_identity(cert: &Path, key: &Path) -> Result<reqwest::Identity, VaultError> {
    let cert_pem = Zeroizing::new(
        std::fs::read(cert).map_err(|e| setup(format!("reading {}: {e}", cert.display())))?,
    );
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            setup(format!(
                "{}: not a PEM certificate file: {e}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(setup(format!(
            "{}: no PEM certificate in the client certificate file",
            cert.display()
        )));
    }
    let key_pem = Zeroizing::new(
        std::fs::read(key).map_err(|e| setup(format!("reading {}: {e}", key.display())))?,
    );
    let der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        setup(format!(
            "{}: no usable unencrypted PEM private key: {e}",
            key.display()
        ))
    })?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der)
        .map_err(|e| setup(format!("{}: unsupported private key: {e}", key.display())))?;
    rustls::sign::CertifiedKey::new(chain, signing)
        .keys_match()
        .map_err(|e| {
            setup(format!(
                "{} does not belong to {}: {e}",
                key.display(),
                cert.display()
            ))
        })?;
    let mut both = Zeroizing::new(Vec::with_capacity(cert_pem.len() + key_pem.len() + 1));
    both.extend_from_slice(&cert_pem);
    both.push(b'\n');
    both.extend_from_slice(&key_pem);
    reqwest::Identity::from_pem(&both)
        .map_err(|e| setup(format!("client certificate {}: {e}", cert.display())))
}

impl VaultTls {
    /// The CA certificates to trust instead of the built-in roots, if
    /// any: `cacert`, else every file of `capath`.
    pub fn ca_certificates(&self) -> Result<Option<Vec<CertificateDer<'static>>>, VaultError> {
        match (&self.cacert, &self.capath) {
            (Some(file), _) => ca_file_certs(file).map(Some),
            (None, Some(dir)) => {
                let certs = ca_dir_certs(dir)?;
                if certs.is_empty() {
                    return Err(setup(format!(
                        "no CA certificate found in the CA directory {}",
                        dir.display()
                    )));
                }
                Ok(Some(certs))
            }
            (None, None) => Ok(None),
        }
    }

    /// Applies the settings to a reqwest client builder (rustls). With a
    /// CA, only that CA is trusted (as the original and the Vault CLI);
    /// with a client certificate, it is presented. Any bad file is an
    /// error naming it.
    pub fn apply(
        &self,
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, VaultError> {
        let mut builder = builder
            .use_rustls_tls()
            .danger_accept_invalid_certs(self.skip_verify);
        if let Some(certs) = self.ca_certificates()? {
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                let cert = reqwest::Certificate::from_der(&cert)
                    .map_err(|e| setup(format!("CA certificate: {e}")))?;
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                builder = builder.identity(client_identity(cert, key)?);
            }
            (None, None) => {}
            _ => {
                return Err(setup(
                    "--vault-client-cert and --vault-client-key must be given together".into(),
                ))
            }
        }
        Ok(builder)
    }
}

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct VaultClient {
    http: reqwest::Client,
    addr: String,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("addr", &self.addr)
            .finish()
    }
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn secs_field(v: &Value, key: &str) -> Duration {
    Duration::from_secs(v.get(key).and_then(Value::as_u64).unwrap_or(0))
}

/// Reads the `auth` block of a login or unwrap answer.
fn auth_of(body: &Value) -> Result<AuthToken, VaultError> {
    let auth = body
        .get("auth")
        .filter(|a| a.is_object())
        .ok_or_else(|| VaultError::BadAnswer("no auth block in the answer".into()))?;
    let token = str_field(auth, "client_token");
    if token.is_empty() {
        return Err(VaultError::BadAnswer(
            "no client_token in the answer".into(),
        ));
    }
    Ok(AuthToken {
        token: Token::new(token),
        accessor: str_field(auth, "accessor"),
        ttl: secs_field(auth, "lease_duration"),
        renewable: auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        policies: auth
            .get("policies")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Turns KV v2's `<mount>/data/<path>` into `<mount>/metadata/<path>` for
/// listing, as the original did (the first `/data/` or a trailing `/data`).
pub fn kv2_metadata_path(path: &str) -> String {
    if let Some(i) = path.find("/data/") {
        format!("{}/metadata/{}", &path[..i], &path[i + 6..])
    } else if let Some(stripped) = path.strip_suffix("/data") {
        format!("{stripped}/metadata")
    } else {
        path.to_string()
    }
}

impl VaultClient {
    /// A client of the server at `addr`, verifying its certificate with
    /// `cacert` when given (or not at all with `skip_verify`), each call
    /// bounded by `timeout`.
    pub fn new(
        addr: &str,
        cacert: Option<&Path>,
        skip_verify: bool,
        timeout: Duration,
    ) -> Result<Self, VaultError> {
        let tls = VaultTls {
            cacert: cacert.map(Path::to_path_buf),
            skip_verify,
            ..VaultTls::default()
        };
        Self::with_tls(addr, &tls, timeout)
    }

    /// A client of the server at `addr` with the TLS settings `tls`
    /// (CA file or directory, client certificate), each call bounded by
    /// `timeout`. A bad file is an error naming it.
    pub fn with_tls(addr: &str, tls: &VaultTls, timeout: Duration) -> Result<Self, VaultError> {
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)));
        let http = tls
            .apply(builder)?
            .build()
            .map_err(|e| VaultError::Setup(e.to_string()))?;
        let mut addr = addr.trim().to_string();
        if !addr.ends_with('/') {
            addr.push('/');
        }
        Ok(VaultClient { http, addr })
    }

    /// The server's address, ending in `/` (what `/token` answers as
    /// `vault_addr`, so that `vault_addr + "v1/..."` works as before).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// One call: `path` is below `/v1/`. Answers the JSON body (`Null` for
    /// an empty 2xx body), or the error.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&Token>,
        body: Option<&Value>,
        wrap_ttl: Option<Duration>,
    ) -> Result<Value, VaultError> {
        let url = format!("{}v1/{}", self.addr, path.trim_start_matches('/'));
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t.expose());
        }
        if let Some(ttl) = wrap_ttl {
            req = req.header("X-Vault-Wrap-TTL", ttl.as_secs().max(1).to_string());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok(value);
        }
        let errors = value
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Err(VaultError::Status {
            status: status.as_u16(),
            errors,
        })
    }

    /// `auth/<mount>/role/<role>/role-id`; `None` when the role does not exist.
    pub async fn role_id(
        &self,
        token: &Token,
        mount: &str,
        role: &str,
    ) -> Result<Option<Token>, VaultError> {
        let path = format!("auth/{}/role/{}/role-id", mount.trim_matches('/'), role);
        match self.call(Method::GET, &path, Some(token), None, None).await {
            Ok(v) => {
                let id = v
                    .pointer("/data/role_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| VaultError::BadAnswer("no role_id".into()))?;
                Ok(Some(Token::new(id)))
            }
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a secret id for `role` (`auth/<mount>/role/<role>/secret-id`).
    pub async fn create_secret_id(
        &self,
        token: &Token,
        mount: &str,
        role: &str,
    ) -> Result<Token, VaultError> {
        let path = format!("auth/{}/role/{}/secret-id", mount.trim_matches('/'), role);
        // One use: the secret id exists only for the login that follows, so
        // a copy that leaked (or a login that failed) cannot mint more
        // tokens. Any role limit is at least 1, so this is always accepted.
        let body = json!({ "num_uses": 1 });
        let v = self
            .call(Method::POST, &path, Some(token), Some(&body), None)
            .await?;
        let id = v
            .pointer("/data/secret_id")
            .and_then(Value::as_str)
            .ok_or_else(|| VaultError::BadAnswer("no secret_id".into()))?;
        Ok(Token::new(id))
    }

    /// Logs in at `auth/<mount>/login` with a role id and secret id.
    pub async fn approle_login(
        &self,
        mount: &str,
        role_id: &Token,
        secret_id: Option<&Token>,
    ) -> Result<AuthToken, VaultError> {
        let body = approle_body(role_id, secret_id);
        let path = format!("auth/{}/login", mount.trim_matches('/'));
        let v = self
            .call(Method::POST, &path, None, Some(&body), None)
            .await?;
        auth_of(&v)
    }

    /// Logs in with AppRole asking for the answer wrapped for `wrap_ttl`:
    /// answers the wrapping token, never the token itself.
    pub async fn approle_login_wrapped(
        &self,
        mount: &str,
        role_id: &Token,
        secret_id: &Token,
        wrap_ttl: Duration,
    ) -> Result<Wrapped, VaultError> {
        let body = approle_body(role_id, Some(secret_id));
        let path = format!("auth/{}/login", mount.trim_matches('/'));
        let v = self
            .call(Method::POST, &path, None, Some(&body), Some(wrap_ttl))
            .await?;
        let info = v
            .get("wrap_info")
            .filter(|w| w.is_object())
            .ok_or_else(|| VaultError::BadAnswer("the login answer was not wrapped".into()))?;
        let token = str_field(info, "token");
        if token.is_empty() {
            return Err(VaultError::BadAnswer("no wrapping token".into()));
        }
        Ok(Wrapped {
            token: Token::new(token),
            accessor: str_field(info, "accessor"),
            ttl: secs_field(info, "ttl"),
        })
    }

    /// Any login answering an `auth` block (`auth/<mount>/login`).
    pub async fn login(&self, path: &str, body: &Value) -> Result<AuthToken, VaultError> {
        let v = self
            .call(Method::POST, path, None, Some(body), None)
            .await?;
        auth_of(&v)
    }

    /// `sys/wrapping/unwrap` of a wrapped token.
    pub async fn unwrap(&self, wrapping: &Token) -> Result<AuthToken, VaultError> {
        let v = self
            .call(
                Method::POST,
                "sys/wrapping/unwrap",
                Some(wrapping),
                Some(&json!({})),
                None,
            )
            .await?;
        auth_of(&v)
    }

    /// `auth/token/lookup-self`: the token's remaining TTL and whether it
    /// can be renewed.
    pub async fn lookup_self(&self, token: &Token) -> Result<AuthToken, VaultError> {
        let v = self
            .call(
                Method::GET,
                "auth/token/lookup-self",
                Some(token),
                None,
                None,
            )
            .await?;
        let data = v
            .get("data")
            .filter(|d| d.is_object())
            .ok_or_else(|| VaultError::BadAnswer("no data in lookup-self".into()))?;
        Ok(AuthToken {
            token: token.clone(),
            accessor: str_field(data, "accessor"),
            ttl: secs_field(data, "ttl"),
            renewable: data
                .get("renewable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            policies: data
                .get("policies")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// `auth/token/renew-self`: answers the new TTL.
    pub async fn renew_self(&self, token: &Token) -> Result<Duration, VaultError> {
        let v = self
            .call(
                Method::POST,
                "auth/token/renew-self",
                Some(token),
                Some(&json!({})),
                None,
            )
            .await?;
        Ok(auth_of(&v)?.ttl)
    }

    /// Reads a KV secret; `None` when nothing is stored there. On KV v2
    /// `path` is the `data/` path.
    pub async fn kv_read(
        &self,
        token: &Token,
        path: &str,
        kv_version: u8,
    ) -> Result<Option<KvEntry>, VaultError> {
        let v = match self.call(Method::GET, path, Some(token), None, None).await {
            Ok(v) => v,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let (data, version) = if kv_version == 2 {
            let data = v.pointer("/data/data");
            // A deleted KV v2 version answers data: null.
            if data.is_none_or(Value::is_null) {
                return Ok(None);
            }
            let version = v
                .pointer("/data/metadata/version")
                .and_then(Value::as_u64)
                .ok_or_else(|| {
                    VaultError::BadAnswer(format!("{path} has no KV v2 version: is it KV v1?"))
                })?;
            (data.cloned(), version)
        } else {
            (v.get("data").cloned(), 0)
        };
        match data {
            Some(Value::Object(data)) => Ok(Some(KvEntry { data, version })),
            _ => Err(VaultError::BadAnswer(format!(
                "{path}: data is not an object"
            ))),
        }
    }

    /// Writes `body` at `path` as given (a POST, as `vault write` does):
    /// for a KV v1 path the body is the secret; for a KV v2 `data/` path
    /// it is `{"data": ...}`.
    pub async fn write(&self, token: &Token, path: &str, body: &Value) -> Result<(), VaultError> {
        self.call(Method::POST, path, Some(token), Some(body), None)
            .await
            .map(|_| ())
    }

    /// Lists the keys below a KV folder (folders end in `/`); empty when
    /// there is none. On KV v2 `path` is the `data/` path.
    pub async fn kv_list(
        &self,
        token: &Token,
        path: &str,
        kv_version: u8,
    ) -> Result<Vec<String>, VaultError> {
        let list_path = if kv_version == 2 {
            kv2_metadata_path(path)
        } else {
            path.to_string()
        };
        let list_path = format!("{}/", list_path.trim_end_matches('/'));
        let method = Method::from_bytes(b"LIST").map_err(|e| VaultError::Setup(e.to_string()))?;
        match self.call(method, &list_path, Some(token), None, None).await {
            Ok(v) => Ok(v
                .pointer("/data/keys")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()),
            Err(e) if e.status() == Some(404) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Writes a KV v2 secret if its current version is `cas` (0: only if it
    /// does not exist).
    pub async fn kv2_write_cas(
        &self,
        token: &Token,
        path: &str,
        data: &Map<String, Value>,
        cas: u64,
    ) -> Result<CasOutcome, VaultError> {
        let body = json!({ "data": data, "options": { "cas": cas } });
        match self
            .call(Method::POST, path, Some(token), Some(&body), None)
            .await
        {
            Ok(_) => Ok(CasOutcome::Written),
            Err(VaultError::Status { status, errors })
                if status == StatusCode::BAD_REQUEST.as_u16()
                    && errors.iter().any(|e| e.contains("check-and-set")) =>
            {
                Ok(CasOutcome::Conflict)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a KV v2 secret with all its versions and metadata (`path`
    /// is the `data/` path). Nothing there is not an error.
    pub async fn kv2_delete_all(&self, token: &Token, path: &str) -> Result<(), VaultError> {
        let meta = kv2_metadata_path(path);
        match self
            .call(Method::DELETE, &meta, Some(token), None, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `sys/capabilities-self` of `token` on `path`.
    pub async fn capabilities_self(
        &self,
        token: &Token,
        path: &str,
    ) -> Result<Vec<String>, VaultError> {
        let body = json!({ "paths": [path] });
        let v = self
            .call(
                Method::POST,
                "sys/capabilities-self",
                Some(token),
                Some(&body),
                None,
            )
            .await?;
        let caps = v
            .pointer("/data")
            .and_then(|d| d.get(path))
            .or_else(|| v.get(path))
            .or_else(|| v.pointer("/data/capabilities"))
            .and_then(Value::as_array)
            .ok_or_else(|| VaultError::BadAnswer("no capabilities in the answer".into()))?;
        Ok(caps
            .iter()
            .filter_map(|c| c.as_str().map(String::from))
            .collect())
    }
}

fn approle_body(role_id: &Token, secret_id: Option<&Token>) -> Value {
    let mut body = json!({ "role_id": role_id.expose() });
    if let Some(s) = secret_id {
        body["secret_id"] = Value::String(s.expose().to_string());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv2_list_paths_use_metadata() {
        assert_eq!(
            kv2_metadata_path("secret/data/gatekeeper"),
            "secret/metadata/gatekeeper"
        );
        assert_eq!(
            kv2_metadata_path("secret/data/gatekeeper/a/data/b"),
            "secret/metadata/gatekeeper/a/data/b"
        );
        assert_eq!(kv2_metadata_path("secret/data"), "secret/metadata");
    }

    #[test]
    fn tokens_are_redacted_in_debug() {
        let t = Token::new("s.verysecret");
        assert!(!format!("{t:?}").contains("verysecret"));
        let w = Wrapped {
            token: t,
            accessor: "acc".into(),
            ttl: Duration::from_secs(1),
        };
        assert!(!format!("{w:?}").contains("verysecret"));
    }

    #[test]
    fn auth_blocks_parse() {
        let body = json!({"auth": {"client_token": "s.x", "accessor": "a", "lease_duration": 60,
            "renewable": true, "policies": ["default", "p"]}});
        let a = auth_of(&body).unwrap();
        assert_eq!(a.token.expose(), "s.x");
        assert_eq!(a.ttl, Duration::from_secs(60));
        assert!(a.renewable);
        assert_eq!(a.policies, ["default", "p"]);
        assert!(matches!(
            auth_of(&json!({"auth": null})),
            Err(VaultError::BadAnswer(m)) if m == "no auth block in the answer"
        ));
        assert!(matches!(
            auth_of(&json!({"auth": {"client_token": ""}})),
            Err(VaultError::BadAnswer(m)) if m == "no client_token in the answer"
        ));
    }
}
