//! `POST login`: checks a role id (and, when the role binds one, a secret
//! id) and the client address, uses up one use of the secret id, and asks
//! the core for a token with the role's token parameters.
//!
//! The use count is exact under concurrency: the secret id's lock is held
//! from the read to the atomic write that decrements or deletes it, so of
//! N parallel logins with a secret id good for k uses, k succeed.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};
use strongroom_sdk::framework::Ctx;
use strongroom_sdk::logical::Response;
use strongroom_sdk::{Error, Result};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::model::{ip_allowed, now_ns, RoleEntry};
use crate::state::{delete_secret_ops, put_op, read_role_id, read_secret, secret_key, AppRole};

type S = Arc<AppRole>;

/// The `role_id` of a login.
#[derive(Deserialize)]
struct RoleIdParam {
    role_id: Option<String>,
}

/// The `secret_id` of a login (read only when the role binds one).
#[derive(Deserialize)]
struct SecretIdParam {
    secret_id: Option<String>,
}

/// The answer to bad credentials.
const INVALID: &str = "invalid role or secret ID";

fn invalid() -> Error {
    Error::bad_request(INVALID)
}

/// OpenBao's user lockout defaults: after this many failed logins for one
/// role id within [`LOCKOUT_COUNTER_RESET`], the role id is refused for
/// [`LOCKOUT_DURATION`], even with the right secret id.
const LOCKOUT_THRESHOLD: u32 = 5;
/// How long a locked-out role id stays locked.
const LOCKOUT_DURATION: Duration = Duration::from_secs(15 * 60);
/// How long failures are remembered without a new one.
const LOCKOUT_COUNTER_RESET: Duration = Duration::from_secs(15 * 60);

/// Failed logins of one role id (kept in memory, per node, as OpenBao).
#[derive(Debug, Clone, Copy)]
pub struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Whether the role id (by HMAC) is locked out now.
fn locked_out(s: &AppRole, key: &str) -> bool {
    let now = Instant::now();
    let mut map = s.failures.lock().unwrap_or_else(|p| p.into_inner());
    match map.get(key).copied() {
        Some(f) if f.locked_until.is_some_and(|t| t > now) => true,
        Some(f)
            if f.locked_until.is_some() || now.duration_since(f.last) > LOCKOUT_COUNTER_RESET =>
        {
            map.remove(key);
            false
        }
        _ => false,
    }
}

/// Counts a failed login; the threshold locks the role id out.
fn record_failure(s: &AppRole, key: &str) {
    let now = Instant::now();
    let mut map = s.failures.lock().unwrap_or_else(|p| p.into_inner());
    let f = map.entry(key.to_string()).or_insert(Failures {
        count: 0,
        last: now,
        locked_until: None,
    });
    f.count += 1;
    f.last = now;
    if f.count >= LOCKOUT_THRESHOLD {
        f.locked_until = Some(now + LOCKOUT_DURATION);
    }
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
async fn use_secret_id(s: &AppRole, ctx: &Ctx, role: &RoleEntry) -> Result<FromSecret> {
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
        .ok_or_else(invalid)?;
    if !ct_eq(&entry.hmac, &secret_hmac) {
        return Err(invalid());
    }
    let accessor_hmac = s.hmac(&ctx.storage, "accessor", &entry.accessor).await?;
    let now = now_ns();
    if entry.expired(now) {
        ctx.storage
            .batch(delete_secret_ops(&role_hash, &secret_hmac, &accessor_hmac))
            .await?;
        return Err(invalid());
    }
    if !entry.cidr_list.is_empty() {
        let ip = client_ip(ctx)?;
        if !ip_allowed(&entry.cidr_list, ip) {
            return Err(Error::bad_request(format!(
                "source address {:?} unauthorized through CIDR restrictions on the secret ID",
                ip.to_string()
            )));
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

/// `POST login`, with OpenBao's lockout of a role id after repeated
/// failures (a locked-out role id gets 403 whatever its secret id).
pub async fn login(s: S, ctx: Ctx) -> Result<Response> {
    let role_id = ctx
        .decode::<RoleIdParam>()?
        .role_id
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new)
        .ok_or_else(|| Error::bad_request("missing role_id"))?;
    let rid_hmac = s.hmac(&ctx.storage, "role_id", &role_id).await?;
    if locked_out(&s, &rid_hmac) {
        return Err(Error::Forbidden("permission denied".into()));
    }
    let outcome = check_login(&s, &ctx, &role_id, &rid_hmac).await;
    match &outcome {
        Err(Error::BadRequest(m)) if m == INVALID => record_failure(&s, &rid_hmac),
        Ok(_) => {
            let mut map = s.failures.lock().unwrap_or_else(|p| p.into_inner());
            map.remove(&rid_hmac);
        }
        Err(_) => {}
    }
    outcome
}

/// The checks of a login and the token it asks for.
async fn check_login(s: &AppRole, ctx: &Ctx, role_id: &str, rid_hmac: &str) -> Result<Response> {
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
        return Err(invalid());
    }
    if !role.secret_cidrs().is_empty() {
        let ip = client_ip(ctx)?;
        if !ip_allowed(role.secret_cidrs(), ip) {
            return Err(Error::bad_request(format!(
                "source address {:?} unauthorized by CIDR restrictions on the role",
                ip.to_string()
            )));
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
    Ok(Response {
        issue: Some(issue),
        ..Default::default()
    })
}
