//! Roles: `role/` (list), `role/:name` (create, update, read, delete),
//! `role/:name/role-id`, and the per-property endpoints
//! (`role/:name/policies`, `.../token-ttl`, ...). Every change takes the
//! role write lock and lands in one atomic batch, so the role id index
//! (role ids are unique across roles) never disagrees with the roles.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use strongroom_sdk::framework::{Ctx, FieldData, Path};
use strongroom_sdk::logical::{Data, Response};
use strongroom_sdk::login::parse_bound_cidrs;
use strongroom_sdk::login::Legacy;
use strongroom_sdk::storage::BatchOp;
use strongroom_sdk::{Error, Result};

use crate::model::{nullable_list, parse_blocks, RoleEntry, RoleIdEntry};
use crate::state::get;
use crate::state::{
    delete_secret_ops, put_op, read_role_id, AppRole, ROLE_ID_PREFIX, SECRET_PREFIX,
};

type S = Arc<AppRole>;

/// The role name of a `role/:role_name...` request.
#[derive(Deserialize)]
pub(crate) struct RolePath {
    role_name: String,
}

/// The validated, lowercased role name of the request path.
pub fn name_of(s: &AppRole, ctx: &Ctx) -> Result<String> {
    let RolePath { role_name } = ctx.decode()?;
    s.roles.name(&role_name)
}

/// `LIST role`.
pub async fn list_roles(s: S, ctx: Ctx) -> Result<Response> {
    s.roles.list(&ctx.storage).await
}

/// Existence check of `role/:name`: creates and updates differ only in
/// `local_secret_ids`, decided again under the lock.
pub async fn role_exists(s: S, ctx: Ctx) -> Result<bool> {
    let name = name_of(&s, &ctx)?;
    s.roles.exists(&ctx.storage, &name).await
}

/// `GET role/:name`.
pub async fn read(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let role = s
        .roles
        .read(&ctx.storage, &name)
        .await?
        .ok_or(Error::NotFound(None))?;
    Ok(Response::data(role.render()))
}

fn non_negative(v: i64, msg: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::bad_request(msg))
}

/// `role_id` of a role write (or of `role/:name/role-id`).
#[derive(Deserialize)]
pub(crate) struct RoleIdParam {
    role_id: Option<String>,
}

/// The first secret id parameters of a role write.
#[derive(Deserialize)]
pub(crate) struct BindWrite {
    bind_secret_id: Option<bool>,
    secret_id_bound_cidrs: Option<Vec<String>>,
}

/// The deprecated `bound_cidr_list`, read only without
/// `secret_id_bound_cidrs`.
#[derive(Deserialize)]
pub(crate) struct OldCidrs {
    bound_cidr_list: Option<Vec<String>>,
}

/// `secret_id_num_uses` (checked before the later fields are read).
#[derive(Deserialize)]
pub(crate) struct NumUsesWrite {
    secret_id_num_uses: Option<i64>,
}

/// The last secret id parameters of a role write.
#[derive(Deserialize)]
pub(crate) struct SecretTtlWrite {
    /// Seconds.
    secret_id_ttl: Option<u64>,
    local_secret_ids: Option<bool>,
}

/// Applies the secret id parameters of a role write, reading and checking
/// them in OpenBao's order.
fn apply_secret_fields(role: &mut RoleEntry, f: &FieldData, creating: bool) -> Result<()> {
    let w: BindWrite = f.decode()?;
    if let Some(b) = w.bind_secret_id {
        role.bind_secret_id = b;
    }
    let cidrs = match w.secret_id_bound_cidrs {
        Some(c) => Some(c),
        None => f.decode::<OldCidrs>()?.bound_cidr_list,
    };
    if let Some(c) = cidrs {
        parse_blocks(&c, "CIDR blocks")?;
        role.secret_id_bound_cidrs = Some(c);
    }
    if let Some(n) = f.decode::<NumUsesWrite>()?.secret_id_num_uses {
        role.secret_id_num_uses = non_negative(n, "secret_id_num_uses cannot be negative")?;
    }
    let w: SecretTtlWrite = f.decode()?;
    if let Some(secs) = w.secret_id_ttl {
        role.secret_id_ttl = secs;
    }
    if let Some(b) = w.local_secret_ids {
        if !creating {
            return Err(Error::bad_request(
                "local_secret_ids can only be modified during role creation",
            ));
        }
        role.local_secret_ids = b;
    }
    Ok(())
}

/// The ops that move `role` to `new_id` in the role id index, after
/// checking no other role holds it.
async fn role_id_ops(
    s: &AppRole,
    ctx: &Ctx,
    role: &RoleEntry,
    new_id: &str,
) -> Result<Vec<BatchOp>> {
    let new_hmac = s.hmac(&ctx.storage, "role_id", new_id).await?;
    if let Some(holder) = read_role_id(&ctx.storage, &new_hmac).await? {
        if holder.name != role.name {
            return Err(Error::bad_request("role_id already in use"));
        }
    }
    let mut ops = Vec::new();
    if !role.role_id.is_empty() && role.role_id != new_id {
        let old = s.hmac(&ctx.storage, "role_id", &role.role_id).await?;
        ops.push(BatchOp::Delete(format!("{ROLE_ID_PREFIX}{old}")));
    }
    ops.push(put_op(
        format!("{ROLE_ID_PREFIX}{new_hmac}"),
        &RoleIdEntry {
            name: role.name.clone(),
        },
    )?);
    Ok(ops)
}

/// `POST role/:name`: creates the role or updates the given parameters.
pub async fn write(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let _guard = s.roles.lock(&name).await;
    let existing = s.roles.read(&ctx.storage, &name).await?;
    let creating = existing.is_none();
    let mut role = existing.unwrap_or_else(|| RoleEntry {
        name: name.clone(),
        ..Default::default()
    });
    let f = &ctx.fields;
    let given_id = f.decode::<RoleIdParam>()?.role_id;
    if given_id.as_deref() == Some("") {
        return Err(Error::bad_request(
            "invalid role_id supplied, or failed to generate a role_id",
        ));
    }
    let new_id = match given_id {
        Some(id) => Some(id),
        None if creating => Some(uuid::Uuid::new_v4().to_string()),
        None => None,
    };
    apply_secret_fields(&mut role, f, creating)?;
    let warnings = role.params.apply(f, Legacy::APPROLE)?;
    role.check_constraints()?;
    let mut ops = Vec::new();
    if let Some(id) = new_id {
        ops.extend(role_id_ops(&s, &ctx, &role, &id).await?);
        role.role_id = id;
    }
    ops.push(s.roles.put_op(&name, &role)?);
    ctx.storage.batch(ops).await?;
    let mut resp = Response::empty();
    resp.warnings = warnings;
    Ok(resp)
}

/// `DELETE role/:name`: removes the role, its role id and its secret ids.
pub async fn delete(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let _guard = s.roles.lock(&name).await;
    let Some(role) = s.roles.read(&ctx.storage, &name).await? else {
        return Ok(Response::empty());
    };
    let role_hash = s.role_hash(&ctx.storage, &name).await?;
    let mut ops = Vec::new();
    let folder = format!("{SECRET_PREFIX}{role_hash}/");
    for secret_hmac in ctx.storage.list(&folder).await? {
        let entry: Option<crate::model::SecretIdEntry> =
            get(&ctx.storage, &format!("{folder}{secret_hmac}")).await?;
        match entry {
            Some(e) => {
                let acc = s.hmac(&ctx.storage, "accessor", &e.accessor).await?;
                ops.extend(delete_secret_ops(&role_hash, &secret_hmac, &acc));
            }
            None => ops.push(BatchOp::Delete(format!("{folder}{secret_hmac}"))),
        }
    }
    if !role.role_id.is_empty() {
        let rid = s.hmac(&ctx.storage, "role_id", &role.role_id).await?;
        ops.push(BatchOp::Delete(format!("{ROLE_ID_PREFIX}{rid}")));
    }
    ops.push(s.roles.delete_op(&name));
    ctx.storage.batch(ops).await?;
    Ok(Response::empty())
}

/// `GET role/:name/role-id`.
pub async fn read_role_id_ep(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let role = s
        .roles
        .read(&ctx.storage, &name)
        .await?
        .ok_or(Error::NotFound(None))?;
    let mut d = Data::new();
    d.insert("role_id".into(), role.role_id.into());
    Ok(Response::data(d))
}

/// `POST role/:name/role-id`: sets a custom role id.
pub async fn write_role_id(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let _guard = s.roles.lock(&name).await;
    let Some(mut role) = s.roles.read(&ctx.storage, &name).await? else {
        return Err(Error::UnsupportedPath);
    };
    let id = ctx
        .decode::<RoleIdParam>()?
        .role_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::bad_request("missing role_id"))?;
    let mut ops = role_id_ops(&s, &ctx, &role, &id).await?;
    role.role_id = id;
    ops.push(s.roles.put_op(&name, &role)?);
    ctx.storage.batch(ops).await?;
    Ok(Response::empty())
}

/// Declares a struct decoding one optional parameter of a property
/// endpoint.
macro_rules! param {
    ($(#[$doc:meta])* $name:ident { $field:ident: $ty:ty }) => {
        $(#[$doc])*
        #[derive(Deserialize)]
        struct $name {
            $field: Option<$ty>,
        }
    };
}

param!(/// `token_policies`.
    TokenPoliciesParam { token_policies: Vec<String> });
param!(/// The older `policies`, read only without `token_policies`.
    PoliciesParam { policies: Vec<String> });
param!(/// `secret_id_ttl`, in seconds.
    SecretIdTtlParam { secret_id_ttl: u64 });
param!(/// `token_ttl`, in seconds.
    TokenTtlParam { token_ttl: u64 });
param!(/// `token_max_ttl`, in seconds.
    TokenMaxTtlParam { token_max_ttl: u64 });
param!(/// `bind_secret_id`.
    BindSecretIdParam { bind_secret_id: bool });
param!(/// `secret_id_bound_cidrs`.
    SecretIdBoundCidrsParam { secret_id_bound_cidrs: Vec<String> });
param!(/// `token_bound_cidrs`.
    TokenBoundCidrsParam { token_bound_cidrs: Vec<String> });
param!(/// `token_period`, in seconds.
    TokenPeriodParam { token_period: u64 });
param!(/// The older `period`, in seconds, read only without `token_period`.
    PeriodParam { period: u64 });
param!(/// `token_num_uses`.
    TokenNumUsesParam { token_num_uses: i64 });

/// One of the per-property endpoints of a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prop {
    /// `policies` (`token_policies`, or the older `policies`).
    Policies,
    /// `secret-id-num-uses`.
    SecretIdNumUses,
    /// `secret-id-ttl`.
    SecretIdTtl,
    /// `token-ttl`.
    TokenTtl,
    /// `token-max-ttl`.
    TokenMaxTtl,
    /// `bind-secret-id`.
    BindSecretId,
    /// `secret-id-bound-cidrs`.
    SecretIdBoundCidrs,
    /// `token-bound-cidrs`.
    TokenBoundCidrs,
    /// `period` (`token_period`, or the older `period`).
    Period,
    /// `token-num-uses`.
    TokenNumUses,
    /// `local-secret-ids` (read only).
    LocalSecretIds,
    /// `bound-cidr-list` (deprecated name of `secret-id-bound-cidrs`).
    BoundCidrList,
}

impl Prop {
    /// Every property endpoint with its path suffix.
    pub const ALL: [(Prop, &'static str); 12] = [
        (Prop::Policies, "policies"),
        (Prop::SecretIdNumUses, "secret-id-num-uses"),
        (Prop::SecretIdTtl, "secret-id-ttl"),
        (Prop::TokenTtl, "token-ttl"),
        (Prop::TokenMaxTtl, "token-max-ttl"),
        (Prop::BindSecretId, "bind-secret-id"),
        (Prop::SecretIdBoundCidrs, "secret-id-bound-cidrs"),
        (Prop::TokenBoundCidrs, "token-bound-cidrs"),
        (Prop::Period, "period"),
        (Prop::TokenNumUses, "token-num-uses"),
        (Prop::LocalSecretIds, "local-secret-ids"),
        (Prop::BoundCidrList, "bound-cidr-list"),
    ];

    /// The body parameters the endpoint takes.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Prop::Policies => &["token_policies", "policies"],
            Prop::SecretIdNumUses => &["secret_id_num_uses"],
            Prop::SecretIdTtl => &["secret_id_ttl"],
            Prop::TokenTtl => &["token_ttl"],
            Prop::TokenMaxTtl => &["token_max_ttl"],
            Prop::BindSecretId => &["bind_secret_id"],
            Prop::SecretIdBoundCidrs => &["secret_id_bound_cidrs"],
            Prop::TokenBoundCidrs => &["token_bound_cidrs"],
            Prop::Period => &["token_period", "period"],
            Prop::TokenNumUses => &["token_num_uses"],
            Prop::LocalSecretIds => &["local_secret_ids"],
            Prop::BoundCidrList => &["bound_cidr_list"],
        }
    }

    /// Declares on the property's path the structs its handlers decode:
    /// the role name, and the property's parameters (see
    /// [`Path::decodes`](strongroom_sdk::framework::Path::decodes)).
    pub fn decodes<S>(self, path: Path<S>) -> Path<S> {
        let path = path.decodes::<RolePath>();
        match self {
            Prop::Policies => path
                .decodes::<TokenPoliciesParam>()
                .decodes::<PoliciesParam>(),
            Prop::SecretIdNumUses => path.decodes::<NumUsesWrite>(),
            Prop::SecretIdTtl => path.decodes::<SecretIdTtlParam>(),
            Prop::TokenTtl => path.decodes::<TokenTtlParam>(),
            Prop::TokenMaxTtl => path.decodes::<TokenMaxTtlParam>(),
            Prop::BindSecretId => path.decodes::<BindSecretIdParam>(),
            Prop::SecretIdBoundCidrs => path.decodes::<SecretIdBoundCidrsParam>(),
            Prop::TokenBoundCidrs => path.decodes::<TokenBoundCidrsParam>(),
            Prop::Period => path.decodes::<TokenPeriodParam>().decodes::<PeriodParam>(),
            Prop::TokenNumUses => path.decodes::<TokenNumUsesParam>(),
            Prop::LocalSecretIds => path,
            Prop::BoundCidrList => path.decodes::<OldCidrs>(),
        }
    }

    fn render(self, role: &RoleEntry) -> Map<String, Value> {
        let mut d = Map::new();
        match self {
            Prop::Policies => {
                if role.params.legacy_policies == Some(true) {
                    d.insert("policies".into(), role.params.token_policies.clone().into());
                }
                d.insert(
                    "token_policies".into(),
                    role.params.token_policies.clone().into(),
                );
            }
            Prop::SecretIdNumUses => {
                d.insert("secret_id_num_uses".into(), role.secret_id_num_uses.into());
            }
            Prop::SecretIdTtl => {
                d.insert("secret_id_ttl".into(), role.secret_id_ttl.into());
            }
            Prop::TokenTtl => {
                d.insert("token_ttl".into(), role.params.token_ttl.into());
            }
            Prop::TokenMaxTtl => {
                d.insert("token_max_ttl".into(), role.params.token_max_ttl.into());
            }
            Prop::BindSecretId => {
                d.insert("bind_secret_id".into(), role.bind_secret_id.into());
            }
            Prop::SecretIdBoundCidrs => {
                d.insert(
                    "secret_id_bound_cidrs".into(),
                    nullable_list(role.secret_cidrs()),
                );
            }
            Prop::TokenBoundCidrs => {
                let v = role
                    .params
                    .token_bound_cidrs
                    .clone()
                    .map_or(Value::Null, Value::from);
                d.insert("token_bound_cidrs".into(), v);
            }
            Prop::Period => {
                if role.params.legacy_period == Some(true) && role.params.token_period > 0 {
                    d.insert("period".into(), role.params.token_period.into());
                }
                d.insert("token_period".into(), role.params.token_period.into());
            }
            Prop::TokenNumUses => {
                d.insert("token_num_uses".into(), role.params.token_num_uses.into());
            }
            Prop::LocalSecretIds => {
                d.insert("local_secret_ids".into(), role.local_secret_ids.into());
            }
            Prop::BoundCidrList => {
                // OpenBao moves the deprecated list into
                // secret_id_bound_cidrs, so this always reads as null.
                d.insert("bound_cidr_list".into(), Value::Null);
            }
        }
        d
    }

    fn apply(self, role: &mut RoleEntry, f: &FieldData) -> Result<()> {
        let missing = |name: &str| Error::bad_request(format!("missing {name}"));
        match self {
            Prop::Policies => {
                if let Some(p) = f.decode::<TokenPoliciesParam>()?.token_policies {
                    role.params.legacy_policies =
                        Some(role.params.legacy_policies == Some(true) && !p.is_empty());
                    role.params.token_policies = p;
                } else if let Some(p) = f.decode::<PoliciesParam>()?.policies {
                    role.params.legacy_policies = Some(!p.is_empty());
                    role.params.token_policies = p;
                } else {
                    return Err(missing("token_policies"));
                }
            }
            Prop::SecretIdNumUses => {
                let n = f
                    .decode::<NumUsesWrite>()?
                    .secret_id_num_uses
                    .ok_or_else(|| missing("secret_id_num_uses"))?;
                role.secret_id_num_uses = non_negative(n, "secret_id_num_uses cannot be negative")?;
            }
            Prop::SecretIdTtl => {
                role.secret_id_ttl = f
                    .decode::<SecretIdTtlParam>()?
                    .secret_id_ttl
                    .ok_or_else(|| missing("secret_id_ttl"))?;
            }
            Prop::TokenTtl => {
                let secs = f
                    .decode::<TokenTtlParam>()?
                    .token_ttl
                    .ok_or_else(|| missing("token_ttl"))?;
                if role.params.token_max_ttl > 0 && secs > role.params.token_max_ttl {
                    return Err(Error::bad_request(
                        "token_ttl should not be greater than token_max_ttl",
                    ));
                }
                role.params.token_ttl = secs;
            }
            Prop::TokenMaxTtl => {
                let secs = f
                    .decode::<TokenMaxTtlParam>()?
                    .token_max_ttl
                    .ok_or_else(|| missing("token_max_ttl"))?;
                if secs > 0 && role.params.token_ttl > secs {
                    return Err(Error::bad_request(
                        "token_max_ttl should be greater than or equal to token_ttl",
                    ));
                }
                role.params.token_max_ttl = secs;
            }
            Prop::BindSecretId => {
                role.bind_secret_id = f
                    .decode::<BindSecretIdParam>()?
                    .bind_secret_id
                    .ok_or_else(|| missing("bind_secret_id"))?;
            }
            Prop::SecretIdBoundCidrs | Prop::BoundCidrList => {
                let cidrs = match self {
                    Prop::SecretIdBoundCidrs => {
                        f.decode::<SecretIdBoundCidrsParam>()?.secret_id_bound_cidrs
                    }
                    _ => f.decode::<OldCidrs>()?.bound_cidr_list,
                };
                if let Some(c) = cidrs {
                    parse_blocks(&c, "CIDR blocks")?;
                    role.secret_id_bound_cidrs = Some(c);
                }
            }
            Prop::TokenBoundCidrs => {
                if let Some(c) = f.decode::<TokenBoundCidrsParam>()?.token_bound_cidrs {
                    let c = parse_bound_cidrs(&c).map_err(|e| {
                        Error::bad_request(format!("failed to parse token_bound_cidrs: {e}"))
                    })?;
                    role.params.token_bound_cidrs = Some(c);
                }
            }
            Prop::Period => {
                if let Some(secs) = f.decode::<TokenPeriodParam>()?.token_period {
                    role.params.legacy_period =
                        Some(role.params.legacy_period == Some(true) && secs != 0);
                    role.params.token_period = secs;
                } else if let Some(secs) = f.decode::<PeriodParam>()?.period {
                    role.params.legacy_period = Some(secs != 0);
                    role.params.token_period = secs;
                } else {
                    return Err(missing("period"));
                }
            }
            Prop::TokenNumUses => {
                let n = f
                    .decode::<TokenNumUsesParam>()?
                    .token_num_uses
                    .ok_or_else(|| missing("token_num_uses"))?;
                role.params.token_num_uses =
                    non_negative(n, "'token_num_uses' cannot be negative")?;
            }
            Prop::LocalSecretIds => return Err(Error::UnsupportedOperation),
        }
        Ok(())
    }

    fn reset(self, role: &mut RoleEntry) {
        let default = RoleEntry::default();
        match self {
            Prop::Policies => {
                role.params.token_policies.clear();
                role.params.legacy_policies = Some(false);
            }
            Prop::SecretIdNumUses => role.secret_id_num_uses = 0,
            Prop::SecretIdTtl => role.secret_id_ttl = 0,
            Prop::TokenTtl => role.params.token_ttl = 0,
            Prop::TokenMaxTtl => role.params.token_max_ttl = 0,
            Prop::BindSecretId => role.bind_secret_id = default.bind_secret_id,
            Prop::SecretIdBoundCidrs => role.secret_id_bound_cidrs = None,
            Prop::TokenBoundCidrs => role.params.token_bound_cidrs = None,
            Prop::Period => {
                role.params.token_period = 0;
                role.params.legacy_period = Some(false);
            }
            Prop::TokenNumUses => role.params.token_num_uses = 0,
            Prop::LocalSecretIds | Prop::BoundCidrList => {}
        }
    }
}

const BOUND_CIDR_LIST_WARNING: &str = "The \"bound_cidr_list\" field is deprecated and will be removed. Please use \"secret_id_bound_cidrs\" instead.";

/// `GET role/:name/<property>`.
pub async fn prop_read(s: S, ctx: Ctx, prop: Prop) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let role = s
        .roles
        .read(&ctx.storage, &name)
        .await?
        .ok_or(Error::NotFound(None))?;
    let resp = Response::data(prop.render(&role));
    Ok(if prop == Prop::BoundCidrList {
        resp.with_warning(BOUND_CIDR_LIST_WARNING)
    } else {
        resp
    })
}

/// `POST role/:name/<property>`.
pub async fn prop_write(s: S, ctx: Ctx, prop: Prop) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let _guard = s.roles.lock(&name).await;
    let Some(mut role) = s.roles.read(&ctx.storage, &name).await? else {
        return Err(Error::UnsupportedPath);
    };
    prop.apply(&mut role, &ctx.fields)?;
    role.check_constraints()?;
    role.params.check_batch_rules()?;
    s.roles.write(&ctx.storage, &name, &role).await?;
    Ok(Response::empty())
}

/// `DELETE role/:name/<property>`: back to the default.
pub async fn prop_delete(s: S, ctx: Ctx, prop: Prop) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let _guard = s.roles.lock(&name).await;
    let Some(mut role) = s.roles.read(&ctx.storage, &name).await? else {
        return Ok(Response::empty());
    };
    prop.reset(&mut role);
    role.check_constraints()?;
    s.roles.write(&ctx.storage, &name, &role).await?;
    Ok(Response::empty())
}
