//! Where the ECS scheduler's AWS credentials and region come from, in the
//! AWS SDKs' order: static keys (flags or `AWS_ACCESS_KEY_ID`/
//! `AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`), the ECS container
//! credentials endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or
//! `_FULL_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), or the
//! EC2 instance metadata service (IMDSv2 with a session token, IMDSv1 when
//! the service gives none). Temporary credentials are kept until
//! [`REFRESH_BEFORE`] their expiry and fetched again then; the metadata
//! service also gives the region and the instance's private IPv4 (where
//! the ECS agent listens). Secrets live in `Zeroizing` buffers and in
//! [`Credentials`] (whose `Debug` redacts them), and are never logged.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use reqwest::header::HeaderValue;
use reqwest::Url;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::common::{self, nullable};
use crate::{SchedulerArgs, SchedulerError, Secret};

/// How long before their expiry temporary credentials are fetched again
/// (the metadata services hand out new ones at least this early).
pub(crate) const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// The ECS container credentials endpoint a relative URI is relative to.
const CONTAINER_HOST: &str = "http://169.254.170.2";

/// How long an IMDSv2 session token asked for here lives (seconds).
const IMDS_TOKEN_TTL: &str = "60";

/// The EC2 instance metadata service.
#[derive(Debug, Clone)]
pub(crate) struct Imds {
    base: Url,
}

impl Imds {
    /// The service at `addr` (`http://169.254.169.254` in EC2).
    pub(crate) fn new(addr: &str) -> Result<Self, SchedulerError> {
        let base = http_url(addr).map_err(|why| {
            SchedulerError::Unavailable(format!("ecs: the EC2 metadata address {addr:?}: {why}"))
        })?;
        Ok(Imds { base })
    }

    /// An IMDSv2 session token, or `None` when the service gives none
    /// (IMDSv1 only, or no service at all: the GET that follows says so).
    async fn session(&self, client: &reqwest::Client) -> Option<Secret> {
        let url = self.base.join("latest/api/token").ok()?;
        let request = client
            .put(url)
            .header("X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL);
        match common::send("ecs: EC2 metadata token", request).await {
            Ok(answer) if answer.status.is_success() => {
                let body = Zeroizing::new(answer.body);
                let token = std::str::from_utf8(&body).ok()?.trim();
                (!token.is_empty()).then(|| Secret::new(token))
            }
            Ok(answer) => {
                tracing::debug!(status = %answer.status, "ecs: no IMDSv2 token, trying IMDSv1");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "ecs: no IMDSv2 token, trying IMDSv1");
                None
            }
        }
    }

    /// GETs `latest/<path>` with a fresh session token when the service
    /// gives one; the body, kept in a buffer wiped on drop.
    pub(crate) async fn get(
        &self,
        client: &reqwest::Client,
        path: &str,
    ) -> Result<Zeroizing<String>, SchedulerError> {
        let session = self.session(client).await;
        self.get_with(client, path, session.as_ref()).await
    }

    async fn get_with(
        &self,
        client: &reqwest::Client,
        path: &str,
        session: Option<&Secret>,
    ) -> Result<Zeroizing<String>, SchedulerError> {
        let what = "ecs: EC2 metadata";
        let url = self
            .base
            .join(&format!("latest/{path}"))
            .map_err(|e| SchedulerError::Unavailable(format!("{what} {path}: {e}")))?;
        let mut request = client.get(url);
        if let Some(token) = session {
            request = request.header("X-aws-ec2-metadata-token", sensitive(token.expose())?);
        }
        let answer = common::send(what, request).await?;
        let body = Zeroizing::new(answer.body);
        if !answer.status.is_success() {
            return Err(SchedulerError::Unavailable(format!(
                "{what} {path}: answered HTTP {}",
                answer.status
            )));
        }
        let text = std::str::from_utf8(&body)
            .map_err(|_| SchedulerError::BadAnswer(format!("{what} {path}: not UTF-8")))?;
        Ok(Zeroizing::new(text.trim().to_owned()))
    }

    /// The instance's region (`placement/region`).
    pub(crate) async fn region(&self, client: &reqwest::Client) -> Result<String, SchedulerError> {
        let region = self.get(client, "meta-data/placement/region").await?;
        check_region(&region).map(str::to_owned)
    }

    /// The instance's private IPv4 address (`local-ipv4`), where the ECS
    /// agent's introspection API listens.
    pub(crate) async fn local_ip(
        &self,
        client: &reqwest::Client,
    ) -> Result<IpAddr, SchedulerError> {
        let ip = self.get(client, "meta-data/local-ipv4").await?;
        ip.parse().map_err(|_| {
            SchedulerError::BadAnswer(format!(
                "ecs: EC2 metadata local-ipv4 {:?} is not an address",
                ip.as_str()
            ))
        })
    }

    /// The credentials of the instance's IAM role.
    async fn role_credentials(
        &self,
        client: &reqwest::Client,
    ) -> Result<Credentials, SchedulerError> {
        let session = self.session(client).await;
        let roles = self
            .get_with(
                client,
                "meta-data/iam/security-credentials/",
                session.as_ref(),
            )
            .await?;
        let role = roles.lines().map(str::trim).find(|r| !r.is_empty());
        let Some(role) = role.filter(|r| r.bytes().all(is_role_char)) else {
            return Err(SchedulerError::Unavailable(
                "ecs: the EC2 instance has no usable IAM role".to_owned(),
            ));
        };
        let path = format!("meta-data/iam/security-credentials/{role}");
        let body = self.get_with(client, &path, session.as_ref()).await?;
        read_credentials(body.as_bytes(), "instance")
    }
}

/// Whether `b` may appear in an IAM role name (it goes into a URL path).
fn is_role_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b)
}

/// A region name as AWS spells them (`us-east-1`): it goes into a host name.
pub(crate) fn check_region(region: &str) -> Result<&str, SchedulerError> {
    let ok = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(region)
    } else {
        Err(SchedulerError::Unavailable(format!(
            "ecs: {region:?} is not an AWS region"
        )))
    }
}

/// An `http(s)` URL with a host and a path ending in `/`, so that
/// relative paths join below it.
pub(crate) fn http_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text.trim()).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("not an http(s) URL".to_owned());
    }
    if url.cannot_be_a_base() {
        return Err("cannot be a base URL".to_owned());
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A header value marked sensitive (kept out of reqwest's `Debug`).
fn sensitive(value: &str) -> Result<HeaderValue, SchedulerError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        SchedulerError::Unavailable(
            "ecs: a credential holds characters a header cannot carry".to_owned(),
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// The authorization token sent to a full container credentials URI.
#[derive(Debug, Clone)]
enum AuthToken {
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    Value(Secret),
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, read at each fetch (it is
    /// rotated).
    File(PathBuf),
}

/// One of the places credentials come from.
#[derive(Debug)]
enum Source {
    /// Keys given by flags or the environment.
    Static(Credentials),
    /// The ECS (or EKS pod identity) container credentials endpoint.
    Container { url: Url, token: Option<AuthToken> },
    /// The EC2 instance's role, from the metadata service.
    Instance,
}

/// The ECS scheduler's credentials: fixed, or fetched and kept until
/// shortly before they expire.
#[derive(Debug)]
pub(crate) struct Provider {
    source: Source,
    imds: Imds,
    current: RwLock<Option<Credentials>>,
    refresh: tokio::sync::Mutex<()>,
}

impl Provider {
    /// Picks the source from the flags (nothing is contacted): static keys
    /// when given, then a container credentials URI, then the instance.
    pub(crate) fn from_args(args: &SchedulerArgs, imds: Imds) -> Result<Self, SchedulerError> {
        let bad = |why: &str| SchedulerError::Unavailable(format!("ecs: {why}"));
        let key = args
            .aws_access_key_id
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let secret = args
            .aws_secret_access_key
            .as_ref()
            .filter(|s| !s.expose().is_empty());
        let source = match (key, secret) {
            (Some(key), Some(secret)) => {
                let token = args
                    .aws_session_token
                    .as_ref()
                    .filter(|t| !t.expose().is_empty())
                    .map(|t| t.expose().to_owned());
                Source::Static(Credentials::new(
                    key,
                    secret.expose().to_owned(),
                    token,
                    None,
                    "flags",
                ))
            }
            (Some(_), None) => {
                return Err(bad(
                    "aws-access-key-id is set but aws-secret-access-key is not",
                ))
            }
            (None, Some(_)) => {
                return Err(bad(
                    "aws-secret-access-key is set but aws-access-key-id is not",
                ))
            }
            (None, None) => container_source(args)?.unwrap_or(Source::Instance),
        };
        Ok(Provider {
            source,
            imds,
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    /// Where the credentials come from, for messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self.source {
            Source::Static(_) => "static keys",
            Source::Container { .. } => "the container credentials endpoint",
            Source::Instance => "the EC2 instance role",
        }
    }

    /// Credentials valid for at least [`REFRESH_BEFORE`], fetched when the
    /// kept ones are missing or about to expire. When a fetch fails while
    /// the kept ones are still valid, those are used.
    pub(crate) async fn get(
        &self,
        client: &reqwest::Client,
    ) -> Result<Credentials, SchedulerError> {
        if let Source::Static(credentials) = &self.source {
            return Ok(credentials.clone());
        }
        let now = SystemTime::now();
        if let Some(fresh) = self.kept().filter(|c| !needs_refresh(c, now)) {
            return Ok(fresh);
        }
        // One fetch at a time; the others wait and take its result.
        let _guard = self.refresh.lock().await;
        let now = SystemTime::now();
        let kept = self.kept();
        if let Some(fresh) = kept.clone().filter(|c| !needs_refresh(c, now)) {
            return Ok(fresh);
        }
        match self.fetch(client).await {
            Ok(credentials) => {
                tracing::debug!(
                    source = self.describe(),
                    expiry = ?credentials.expiry().map(humantime::format_rfc3339_seconds),
                    "ecs: fetched AWS credentials"
                );
                *self.current.write().unwrap_or_else(|e| e.into_inner()) =
                    Some(credentials.clone());
                Ok(credentials)
            }
            Err(e) => match kept.filter(|c| c.expiry().is_none_or(|at| at > now)) {
                Some(still_valid) => {
                    tracing::warn!(error = %e, "ecs: could not refresh the AWS credentials; using the current ones until they expire");
                    Ok(still_valid)
                }
                None => Err(e),
            },
        }
    }

    /// Forgets fetched credentials (after the ECS API refused them), so
    /// that the next request fetches new ones.
    pub(crate) fn forget(&self) {
        if !matches!(self.source, Source::Static(_)) {
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    fn kept(&self) -> Option<Credentials> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn fetch(&self, client: &reqwest::Client) -> Result<Credentials, SchedulerError> {
        match &self.source {
            Source::Static(credentials) => Ok(credentials.clone()),
            Source::Instance => self.imds.role_credentials(client).await,
            Source::Container { url, token } => {
                let what = "ecs: container credentials";
                let mut request = client.get(url.clone());
                match token {
                    Some(AuthToken::Value(token)) => {
                        request = request.header("Authorization", sensitive(token.expose())?);
                    }
                    Some(AuthToken::File(path)) => {
                        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                            SchedulerError::Unavailable(format!(
                                "{what}: reading the token file {}: {e}",
                                path.display()
                            ))
                        })?);
                        request = request.header("Authorization", sensitive(text.trim())?);
                    }
                    None => {}
                }
                let answer = common::send(what, request).await?;
                let body = Zeroizing::new(answer.body);
                if !answer.status.is_success() {
                    return Err(SchedulerError::Unavailable(format!(
                        "{what}: answered HTTP {}",
                        answer.status
                    )));
                }
                read_credentials(&body, "container")
            }
        }
    }
}

/// Whether `credentials` expire within [`REFRESH_BEFORE`] of `now`.
fn needs_refresh(credentials: &Credentials, now: SystemTime) -> bool {
    credentials
        .expiry()
        .is_some_and(|at| at <= now + REFRESH_BEFORE)
}

/// The container credentials source the flags name, if any.
fn container_source(args: &SchedulerArgs) -> Result<Option<Source>, SchedulerError> {
    let bad = |why: String| SchedulerError::Unavailable(format!("ecs: {why}"));
    let relative = args
        .aws_container_credentials_relative_uri
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let full = args
        .aws_container_credentials_full_uri
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let url = match (relative, full) {
        (Some(relative), _) => {
            if !relative.starts_with('/') {
                return Err(bad(format!(
                    "the container credentials relative URI {relative:?} does not start with /"
                )));
            }
            let url = Url::parse(&format!("{CONTAINER_HOST}{relative}"))
                .map_err(|e| bad(format!("the container credentials URI: {e}")))?;
            return Ok(Some(Source::Container { url, token: None }));
        }
        (None, Some(full)) => Url::parse(full)
            .map_err(|e| bad(format!("the container credentials URI {full:?}: {e}")))?,
        (None, None) => return Ok(None),
    };
    // As the AWS SDKs: plain HTTP only to this host or the ECS/EKS
    // credential addresses, so the authorization token stays local.
    let host = url.host_str().unwrap_or_default();
    let local = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| {
                ip.is_loopback()
                    || ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"]
                        .iter()
                        .any(|known| known.parse() == Ok(ip))
            });
    let allowed = match url.scheme() {
        "https" => url.host().is_some(),
        "http" => local,
        _ => false,
    };
    if !allowed {
        return Err(bad(format!(
            "the container credentials URI {url} must be https, or http to a loopback or the ECS/EKS credentials address"
        )));
    }
    let token = match (
        args.aws_container_authorization_token
            .as_ref()
            .filter(|t| !t.expose().is_empty()),
        args.aws_container_authorization_token_file.as_ref(),
    ) {
        (Some(token), _) => Some(AuthToken::Value(token.clone())),
        (None, Some(file)) => Some(AuthToken::File(file.clone())),
        (None, None) => None,
    };
    Ok(Some(Source::Container { url, token }))
}

/// The credentials document of the metadata and container endpoints.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsDocument {
    #[serde(default, deserialize_with = "nullable")]
    code: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    access_key_id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    secret_access_key: Option<Zeroizing<String>>,
    #[serde(default, deserialize_with = "nullable")]
    token: Option<Zeroizing<String>>,
    #[serde(default, deserialize_with = "nullable")]
    expiration: Option<String>,
}

/// Reads a credentials document (`AccessKeyId`, `SecretAccessKey`,
/// `Token`, `Expiration`, and from the metadata service `Code`). Public
/// so that the fuzz targets reach the parser.
pub fn read_credentials(body: &[u8], source: &'static str) -> Result<Credentials, SchedulerError> {
    let what = "ecs: AWS credentials";
    let doc: CredentialsDocument = common::decode(what, body)?;
    if let Some(code) = doc.code.as_deref().filter(|c| *c != "Success") {
        return Err(SchedulerError::Unavailable(format!(
            "{what}: the metadata service answered {code:?}"
        )));
    }
    let key = doc
        .access_key_id
        .filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic()));
    let secret = doc.secret_access_key.filter(|s| !s.is_empty());
    let (Some(key), Some(secret)) = (key, secret) else {
        return Err(SchedulerError::BadAnswer(format!(
            "{what}: no valid AccessKeyId and SecretAccessKey"
        )));
    };
    let expiry = match doc.expiration.as_deref() {
        Some(text) => Some(common::parse_rfc3339(text).ok_or_else(|| {
            SchedulerError::BadAnswer(format!("{what}: Expiration {text:?} is not a time"))
        })?),
        None => None,
    };
    let token = doc.token.filter(|t| !t.is_empty());
    Ok(Credentials::new(
        key,
        secret.as_str().to_owned(),
        token.map(|t| t.as_str().to_owned()),
        expiry,
        source,
    ))
}
