//! Secret ids: generation (`role/:name/secret-id`), custom ones
//! (`custom-secret-id`), listing by accessor, lookup and destruction by
//! secret id or accessor, and `tidy/secret-id`.
//!
//! A secret id is stored only as its HMAC under the mount's salt; its
//! accessor is indexed (also by HMAC) so that accessor lookups never need
//! nor reveal the secret id. Each secret id's record and accessor change
//! together in one atomic batch, under that secret id's lock.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use strongroom_sdk::framework::{Ctx, Mounted};
use strongroom_sdk::logical::{Data, Response};
use strongroom_sdk::storage::BatchOp;
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::model::{
    check_subset, now_ns, parse_blocks, parse_metadata, AccessorEntry, RoleEntry, SecretIdEntry,
};
use crate::role::name_of;
use crate::state::{
    delete_secret_ops, put_op, read_accessor, read_secret, secret_key, AppRole, ACCESSOR_PREFIX,
    SECRET_PREFIX,
};

type S = Arc<AppRole>;

fn no_such_role(name: &str) -> String {
    format!("role {name:?} does not exist")
}

/// The role of a secret id endpoint; a missing one is a bad request.
async fn existing_role(s: &AppRole, ctx: &Ctx, name: &str) -> Result<RoleEntry> {
    s.roles
        .read(&ctx.storage, name)
        .await?
        .ok_or_else(|| Error::bad_request(no_such_role(name)))
}

/// The `secret_id` of a request.
#[derive(Deserialize)]
pub(crate) struct SecretIdParam {
    secret_id: Option<String>,
}

/// The `secret_id_accessor` of a request.
#[derive(Deserialize)]
pub(crate) struct AccessorParam {
    secret_id_accessor: Option<String>,
}

/// A required string parameter, held in a zeroizing buffer.
fn required(value: Option<String>, field: &str) -> Result<Zeroizing<String>> {
    value
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new)
        .ok_or_else(|| Error::bad_request(format!("missing {field}")))
}

/// The parameters of a secret id creation, in the order they are read
/// and checked.
#[derive(Deserialize)]
pub(crate) struct MetadataParam {
    metadata: Option<String>,
}

/// `cidr_list` (checked against the role before the next is read).
#[derive(Deserialize)]
pub(crate) struct CidrListParam {
    cidr_list: Option<Vec<String>>,
}

/// `token_bound_cidrs` (checked before the limits are read).
#[derive(Deserialize)]
pub(crate) struct TokenCidrsParam {
    token_bound_cidrs: Option<Vec<String>>,
}

/// `num_uses` (checked before `ttl` is read).
#[derive(Deserialize)]
pub(crate) struct NumUsesParam {
    num_uses: Option<i64>,
}

/// `ttl`, in seconds.
#[derive(Deserialize)]
pub(crate) struct TtlParam {
    ttl: Option<u64>,
}

/// `POST role/:name/secret-id`: a new random secret id.
pub async fn generate(s: S, ctx: Ctx) -> Result<Response> {
    create(s, ctx, false).await
}

/// `POST role/:name/custom-secret-id`: registers the given secret id.
pub async fn custom(s: S, ctx: Ctx) -> Result<Response> {
    create(s, ctx, true).await
}

/// The secret id parameters of a creation, checked against the role.
struct Limits {
    num_uses: u64,
    ttl: u64,
    cidr_list: Vec<String>,
    token_bound_cidrs: Vec<String>,
    metadata: serde_json::Map<String, Value>,
}

fn limits(ctx: &Ctx, role: &RoleEntry) -> Result<Limits> {
    let metadata = parse_metadata(&ctx.decode::<MetadataParam>()?.metadata.unwrap_or_default())?;
    let cidr_list = ctx.decode::<CidrListParam>()?.cidr_list.unwrap_or_default();
    parse_blocks(&cidr_list, "CIDR blocks")?;
    check_subset(role.secret_cidrs(), &cidr_list, "CIDR blocks")?;
    let token_bound_cidrs = ctx
        .decode::<TokenCidrsParam>()?
        .token_bound_cidrs
        .unwrap_or_default();
    parse_blocks(&token_bound_cidrs, "token CIDR blocks")?;
    check_subset(
        role.params.bound_cidrs(),
        &token_bound_cidrs,
        "token CIDR blocks",
    )?;
    let num_uses = match ctx.decode::<NumUsesParam>()?.num_uses {
        None => role.secret_id_num_uses,
        Some(n) => {
            let n =
                u64::try_from(n).map_err(|_| Error::bad_request("num_uses cannot be negative"))?;
            if role.secret_id_num_uses > 0 && (n == 0 || n > role.secret_id_num_uses) {
                return Err(Error::bad_request(
                    "num_uses cannot be higher than the role's secret_id_num_uses",
                ));
            }
            n
        }
    };
    let ttl = match ctx.decode::<TtlParam>()?.ttl {
        None => role.secret_id_ttl,
        Some(t) => {
            if role.secret_id_ttl > 0 && (t == 0 || t > role.secret_id_ttl) {
                return Err(Error::bad_request(
                    "ttl cannot be longer than the role's secret_id_ttl",
                ));
            }
            t
        }
    };
    Ok(Limits {
        num_uses,
        ttl,
        cidr_list,
        token_bound_cidrs,
        metadata,
    })
}

async fn create(s: S, ctx: Ctx, custom: bool) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let _roles = s.roles.lock_shared(&name).await;
    let role = s
        .roles
        .read(&ctx.storage, &name)
        .await?
        .ok_or_else(|| Error::NotFound(Some(no_such_role(&name))))?;
    if !role.bind_secret_id {
        return Err(Error::bad_request("bind_secret_id is not set on the role"));
    }
    let secret_id = if custom {
        required(ctx.decode::<SecretIdParam>()?.secret_id, "secret_id")?
    } else {
        Zeroizing::new(uuid::Uuid::new_v4().to_string())
    };
    let l = limits(&ctx, &role)?;
    let role_hash = s.role_hash(&ctx.storage, &name).await?;
    let secret_hmac = s.hmac(&ctx.storage, "secret", &secret_id).await?;
    let _lock = s.lock_secret(&secret_hmac).await;
    if read_secret(&ctx.storage, &role_hash, &secret_hmac)
        .await?
        .is_some()
    {
        return Err(Error::bad_request(
            "failed to store secret_id: SecretID is already registered",
        ));
    }
    let accessor = uuid::Uuid::new_v4().to_string();
    let accessor_hmac = s.hmac(&ctx.storage, "accessor", &accessor).await?;
    let now = now_ns();
    let entry = SecretIdEntry {
        hmac: secret_hmac.clone(),
        accessor: accessor.clone(),
        num_uses: l.num_uses,
        ttl: l.ttl,
        cidr_list: l.cidr_list,
        token_bound_cidrs: l.token_bound_cidrs,
        metadata: l.metadata,
        created_ns: now,
        updated_ns: now,
        expires_ns: if l.ttl == 0 {
            0
        } else {
            now.saturating_add(l.ttl.saturating_mul(1_000_000_000))
        },
    };
    ctx.storage
        .batch(vec![
            put_op(secret_key(&role_hash, &secret_hmac), &entry)?,
            put_op(
                format!("{ACCESSOR_PREFIX}{accessor_hmac}"),
                &AccessorEntry {
                    role_hash,
                    secret_hmac,
                },
            )?,
        ])
        .await?;
    let mut d = Data::new();
    d.insert("secret_id".into(), secret_id.as_str().into());
    d.insert("secret_id_accessor".into(), accessor.into());
    d.insert("secret_id_num_uses".into(), entry.num_uses.into());
    d.insert("secret_id_ttl".into(), entry.ttl.into());
    Ok(Response::data(d))
}

/// `LIST role/:name/secret-id`: the accessors of the role's secret ids.
pub async fn list(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let _roles = s.roles.lock_shared(&name).await;
    existing_role(&s, &ctx, &name).await?;
    let role_hash = s.role_hash(&ctx.storage, &name).await?;
    let mut keys = Vec::new();
    for secret_hmac in ctx
        .storage
        .list(&format!("{SECRET_PREFIX}{role_hash}/"))
        .await?
    {
        if let Some(e) = read_secret(&ctx.storage, &role_hash, &secret_hmac).await? {
            keys.push(e.accessor);
        }
    }
    Response::keys(keys)
}

/// The role hash and secret HMAC a `secret_id` parameter names.
async fn locate_by_secret(s: &AppRole, ctx: &Ctx) -> Result<(String, String)> {
    let name = name_of(s, ctx)?;
    let secret_id = required(ctx.decode::<SecretIdParam>()?.secret_id, "secret_id")?;
    existing_role(s, ctx, &name).await?;
    let role_hash = s.role_hash(&ctx.storage, &name).await?;
    let secret_hmac = s.hmac(&ctx.storage, "secret", &secret_id).await?;
    Ok((role_hash, secret_hmac))
}

/// `POST role/:name/secret-id/lookup`: 204 when the role has no such id.
pub async fn lookup(s: S, ctx: Ctx) -> Result<Response> {
    let _roles = s.roles.lock_all_shared().await;
    let (role_hash, secret_hmac) = locate_by_secret(&s, &ctx).await?;
    match read_secret(&ctx.storage, &role_hash, &secret_hmac).await? {
        Some(e) => Ok(Response::data(e.render())),
        None => Ok(Response::empty()),
    }
}

/// `POST role/:name/secret-id/destroy`: 204 whether or not it existed.
pub async fn destroy(s: S, ctx: Ctx) -> Result<Response> {
    let _roles = s.roles.lock_all_shared().await;
    let (role_hash, secret_hmac) = locate_by_secret(&s, &ctx).await?;
    let _lock = s.lock_secret(&secret_hmac).await;
    if let Some(e) = read_secret(&ctx.storage, &role_hash, &secret_hmac).await? {
        let acc = s.hmac(&ctx.storage, "accessor", &e.accessor).await?;
        ctx.storage
            .batch(delete_secret_ops(&role_hash, &secret_hmac, &acc))
            .await?;
    }
    Ok(Response::empty())
}

/// What an accessor parameter resolves to.
enum ByAccessor {
    /// No accessor entry.
    Unknown(String),
    /// The accessor belongs to another role.
    OtherRole,
    /// Found: role hash, secret HMAC, accessor HMAC.
    Found(String, String, String),
}

async fn locate_by_accessor(s: &AppRole, ctx: &Ctx) -> Result<ByAccessor> {
    let name = name_of(s, ctx)?;
    let accessor = required(
        ctx.decode::<AccessorParam>()?.secret_id_accessor,
        "secret_id_accessor",
    )?;
    existing_role(s, ctx, &name).await?;
    let role_hash = s.role_hash(&ctx.storage, &name).await?;
    let acc_hmac = s.hmac(&ctx.storage, "accessor", &accessor).await?;
    let Some(entry) = read_accessor(&ctx.storage, &acc_hmac).await? else {
        return Ok(ByAccessor::Unknown(format!(
            "failed to find accessor entry for secret_id_accessor: {:?}",
            accessor.as_str()
        )));
    };
    if !bool::from(entry.role_hash.as_bytes().ct_eq(role_hash.as_bytes())) {
        return Ok(ByAccessor::OtherRole);
    }
    Ok(ByAccessor::Found(role_hash, entry.secret_hmac, acc_hmac))
}

/// `POST role/:name/secret-id-accessor/lookup`.
pub async fn accessor_lookup(s: S, ctx: Ctx) -> Result<Response> {
    let _roles = s.roles.lock_all_shared().await;
    match locate_by_accessor(&s, &ctx).await? {
        ByAccessor::Unknown(msg) => {
            let mut d = Data::new();
            d.insert("error".into(), msg.into());
            let mut resp = Response::data(d);
            resp.status = Some(404);
            Ok(resp)
        }
        ByAccessor::OtherRole => Ok(Response::empty()),
        ByAccessor::Found(role_hash, secret_hmac, _) => {
            match read_secret(&ctx.storage, &role_hash, &secret_hmac).await? {
                Some(e) => Ok(Response::data(e.render())),
                None => Ok(Response::empty()),
            }
        }
    }
}

/// `POST role/:name/secret-id-accessor/destroy`.
pub async fn accessor_destroy(s: S, ctx: Ctx) -> Result<Response> {
    let _roles = s.roles.lock_all_shared().await;
    match locate_by_accessor(&s, &ctx).await? {
        ByAccessor::Unknown(msg) => Err(Error::BadRequest(msg)),
        ByAccessor::OtherRole => Err(Error::Forbidden("invalid secret id accessor".into())),
        ByAccessor::Found(role_hash, secret_hmac, acc_hmac) => {
            let _lock = s.lock_secret(&secret_hmac).await;
            ctx.storage
                .batch(delete_secret_ops(&role_hash, &secret_hmac, &acc_hmac))
                .await?;
            Ok(Response::empty())
        }
    }
}

/// `POST tidy/secret-id`: starts a background sweep and answers 202.
pub async fn tidy(s: S, ctx: Ctx) -> Result<Response> {
    if s.tidy_running.swap(true, Ordering::SeqCst) {
        return Ok(Response::empty().with_warning("Tidy operation already in progress."));
    }
    let storage = ctx.storage.clone();
    tokio::spawn(async move {
        let result = tidy_secret_ids(&s, &storage).await;
        s.tidy_running.store(false, Ordering::SeqCst);
        match result {
            Ok(removed) => tracing::info!(removed, "approle secret id tidy finished"),
            Err(e) => tracing::warn!(error = %e, "approle secret id tidy failed"),
        }
    });
    let mut resp = Response::empty().with_warning(
        "Tidy operation successfully started. Any information from the operation will be printed to Strongroom's server logs.",
    );
    resp.status = Some(202);
    Ok(resp)
}

/// The shortest time between two periodic tidies. The core calls the
/// periodic hook about once a minute; a little less than that keeps every
/// regular call while throttling bursts.
pub const PERIODIC_TIDY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(50);

/// The backend's periodic hook: the same tidy as `tidy/secret-id`, at most
/// once per [`PERIODIC_TIDY_INTERVAL`], and not while another tidy runs.
pub async fn periodic(s: S, mounted: Mounted) -> Result<()> {
    let now = tokio::time::Instant::now();
    {
        let mut last = s
            .last_periodic_tidy
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < PERIODIC_TIDY_INTERVAL) {
            return Ok(());
        }
        *last = Some(now);
    }
    if s.tidy_running.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let result = tidy_secret_ids(&s, &mounted.storage).await;
    s.tidy_running.store(false, Ordering::SeqCst);
    let removed = result?;
    if removed > 0 {
        tracing::info!(removed, "approle periodic secret id tidy finished");
    }
    Ok(())
}

/// Removes expired secret ids, secret ids of roles that no longer exist,
/// and accessor entries whose secret id is gone. Returns how many records
/// it removed.
pub async fn tidy_secret_ids(s: &AppRole, storage: &View) -> Result<usize> {
    // Roles cannot appear or vanish during the sweep.
    let _roles = s.roles.lock_all_shared().await;
    let mut live_roles = std::collections::HashSet::new();
    for name in s.roles.names(storage).await? {
        live_roles.insert(format!("{}/", s.role_hash(storage, &name).await?));
    }
    let now = now_ns();
    let mut removed = 0;
    for folder in storage.list(SECRET_PREFIX).await? {
        let role_live = live_roles.contains(&folder);
        let role_hash = folder.trim_end_matches('/');
        for secret_hmac in storage.list(&format!("{SECRET_PREFIX}{folder}")).await? {
            let _lock = s.lock_secret(&secret_hmac).await;
            let Some(e) = read_secret(storage, role_hash, &secret_hmac).await? else {
                continue;
            };
            if role_live && !e.expired(now) {
                continue;
            }
            let acc = s.hmac(storage, "accessor", &e.accessor).await?;
            storage
                .batch(delete_secret_ops(role_hash, &secret_hmac, &acc))
                .await?;
            removed += 1;
        }
    }
    for acc_hmac in storage.list(ACCESSOR_PREFIX).await? {
        let Some(entry) = read_accessor(storage, &acc_hmac).await? else {
            continue;
        };
        let _lock = s.lock_secret(&entry.secret_hmac).await;
        if read_secret(storage, &entry.role_hash, &entry.secret_hmac)
            .await?
            .is_none()
        {
            storage
                .batch(vec![BatchOp::Delete(format!(
                    "{ACCESSOR_PREFIX}{acc_hmac}"
                ))])
                .await?;
            removed += 1;
        }
    }
    Ok(removed)
}
