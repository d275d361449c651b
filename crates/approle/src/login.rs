//! `POST login`: checks a role id (and, when the role binds one, a secret
//! id) and the client address, uses up one use of the secret id, and asks
//! the core for a token with the role's token parameters.
//!
//! The use count is exact under concurrency: the secret id's lock is held
//! from the read to the atomic write that decrements or deletes it, so of
//! N parallel logins with a secret id good for k uses, k succeed. So is the
//! lockout of a role id after failed logins ([`strongroom_sdk::lockout`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value};
use strongroom_sdk::framework::Ctx;
use strongroom_sdk::lockout::{Locked, Verdict};
use strongroom_sdk::logical::Response;
use strongroom_sdk::storage::BarrierError;
use strongroom_sdk::{Error, Result};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::model::{ip_allowed, now_ns, RoleEntry};
use crate::state::{delete_secret_ops, put_op, read_role_id, read_secret, secret_key, AppRole};
use strongroom_sdk::framework::BackendRequest;

type S = Arc<AppRole>;

/// The `role_id` of a login.
#[derive(Deserialize)]
pub(crate) struct RoleIdParam {
    role_id: Option<String>,
}

/// The `secret_id` of a login (read only when the role binds one).
#[derive(Deserialize)]
pub(crate) struct SecretIdParam {
    secret_id: Option<String>,
}

/// The answer to bad credentials.
const INVALID: &str = "invalid role or secret ID";

fn invalid() -> Error {
    Error::bad_request(INVALID)
}

/// Why a login failed.
enum Failure {
    /// An unknown secret id for an existing role id: OpenBao's
    /// `ErrInvalidCredentials`, the one failure the lockout counts.
    BadSecret,
    /// Anything else, answered as it is.
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

impl From<BarrierError> for Failure {
    fn from(e: BarrierError) -> Self {
        Failure::Other(e.into())
    }
}

/// The answer to a locked-out role id.
fn locked_out() -> Error {
    Error::Forbidden("permission denied".into())
}

fn client_ip(ctx: &Ctx) -> Result<IpAddr> {
    ctx.request
        .remote_addr
        .ok_or_else(|| Error::bad_request("failed to get connection information"))
}

fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// What a successful secret id check contributes to the token.
#[derive(Default)]
struct FromSecret {
    metadata: Map<String, Value>,
    token_bound_cidrs: Vec<String>,
}

/// Checks the secret id and uses it up once, under its lock.
async fn use_secret_id(
    s: &AppRole,
    ctx: &Ctx,
    role: &RoleEntry,
) -> std::result::Result<FromSecret, Failure> {
    let secret_id = ctx
        .decode::<SecretIdParam>()?
        .secret_id
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new)
        .ok_or_else(|| Error::bad_request("missing secret_id"))?;
    let role_hash = s.role_hash(&ctx.storage, &role.name).await?;
    let secret_hmac = s.hmac(&ctx.storage, "secret", &secret_id).await?;
    let _lock = s.lock_secret(&secret_hmac).await;
    let mut entry = read_secret(&ctx.storage, &role_hash, &secret_hmac)
        .await?
        .ok_or(Failure::BadSecret)?;
    if !ct_eq(&entry.hmac, &secret_hmac) {
        return Err(Failure::BadSecret);
    }
    let accessor_hmac = s.hmac(&ctx.storage, "accessor", &entry.accessor).await?;
    let now = now_ns();
    if entry.expired(now) {
        ctx.storage
            .batch(delete_secret_ops(&role_hash, &secret_hmac, &accessor_hmac))
            .await?;
        return Err(Failure::BadSecret);
    }
    if !entry.cidr_list.is_empty() {
        let ip = client_ip(ctx)?;
        if !ip_allowed(&entry.cidr_list, ip) {
            return Err(Error::bad_request(format!(
                "source address {:?} unauthorized through CIDR restrictions on the secret ID",
                ip.to_string()
            ))
            .into());
        }
    }
    match entry.num_uses {
        0 => {}
        1 => {
            ctx.storage
                .batch(delete_secret_ops(&role_hash, &secret_hmac, &accessor_hmac))
                .await?;
        }
        n => {
            entry.num_uses = n - 1;
            entry.updated_ns = now;
            ctx.storage
                .batch(vec![put_op(secret_key(&role_hash, &secret_hmac), &entry)?])
                .await?;
        }
    }
    Ok(FromSecret {
        metadata: entry.metadata,
        token_bound_cidrs: entry.token_bound_cidrs,
    })
}

/// The role a login names, for role-based quotas (OpenBao's
/// `ResolveRoleOperation`): the name of the role whose role id the request
/// carries, `None` for an unknown or missing role id.
pub async fn resolve_role(s: &AppRole, req: &BackendRequest) -> Result<Option<String>> {
    let Some(role_id) = req
        .request
        .data
        .get("role_id")
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let rid_hmac = s.hmac(&req.storage, "role_id", role_id).await?;
    Ok(read_role_id(&req.storage, &rid_hmac).await?.map(|e| e.name))
}

/// `POST login`, with OpenBao's lockout of a role id after repeated
/// failures (a locked-out role id gets 403 whatever its secret id; see
/// [`strongroom_sdk::lockout`]).
pub async fn login(s: S, ctx: Ctx) -> Result<Response> {
    let role_id = ctx
        .decode::<RoleIdParam>()?
        .role_id
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new)
        .ok_or_else(|| Error::bad_request("missing role_id"))?;
    let rid_hmac = s.hmac(&ctx.storage, "role_id", &role_id).await?;
    let attempt = s
        .lockout
        .begin(&rid_hmac, Instant::now())
        .map_err(|Locked| locked_out())?;
    match check_login(&s, &ctx, &role_id, &rid_hmac).await {
        Ok(response) => {
            attempt.succeeded();
            Ok(response)
        }
        Err(Failure::BadSecret) => match attempt.failed(Instant::now()) {
            Verdict::Counted => Err(invalid()),
            Verdict::Locked => Err(locked_out()),
        },
        Err(Failure::Other(e)) => Err(e),
    }
}

/// The checks of a login and the token it asks for.
async fn check_login(
    s: &AppRole,
    ctx: &Ctx,
    role_id: &str,
    rid_hmac: &str,
) -> std::result::Result<Response, Failure> {
    let _roles = s.roles.lock_all_shared().await;
    let index = read_role_id(&ctx.storage, rid_hmac)
        .await?
        .ok_or_else(invalid)?;
    let role = s
        .roles
        .read(&ctx.storage, &index.name)
        .await?
        .ok_or_else(invalid)?;
    if !ct_eq(&role.role_id, role_id) {
        return Err(invalid().into());
    }
    if !role.secret_cidrs().is_empty() {
        let ip = client_ip(ctx)?;
        if !ip_allowed(role.secret_cidrs(), ip) {
            return Err(Error::bad_request(format!(
                "source address {:?} unauthorized by CIDR restrictions on the role",
                ip.to_string()
            ))
            .into());
        }
    }
    let from_secret = if role.bind_secret_id {
        use_secret_id(s, ctx, &role).await?
    } else {
        FromSecret::default()
    };
    let mut metadata: Vec<(String, Value)> = from_secret
        .metadata
        .into_iter()
        .filter(|(k, _)| k != "role_name")
        .collect();
    metadata.push(("role_name".into(), Value::from(role.name.clone())));
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    let mut issue = role.params.issue(metadata.into_iter().collect(), "");
    // A secret id's own token CIDR blocks replace the role's.
    if !from_secret.token_bound_cidrs.is_empty() {
        issue.bound_cidrs = from_secret.token_bound_cidrs;
    }
    // As OpenBao: the entity alias is the role id, with the role's name.
    issue.alias = Some(strongroom_sdk::identity::LoginAlias {
        name: role.role_id.clone(),
        metadata: [("role_name".to_string(), role.name.clone())].into(),
    });
    Ok(Response {
        issue: Some(issue),
        ..Default::default()
    })
}
