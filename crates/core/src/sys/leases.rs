//! `sys/leases/*`: look up, renew and revoke leases. Tokens appear as
//! leases under their creation path (`auth/token/create/h<hash>`), as in
//! OpenBao; secret leases are those backends issued. The core does the
//! revoking ([`Core::revoke_lease`](crate::node::Core::revoke_lease),
//! [`Core::revoke_prefix`](crate::node::Core::revoke_prefix)).

use serde::Deserialize;
use serde_json::{json, Value};

use super::{SysState, S};
use crate::expiration::list_level;
use crate::node::Core;
use crate::token::TokenEntry;
use strongroom_sdk::framework::{handler, Ctx, Field, FieldType, Path};
use strongroom_sdk::logical::{Data, Operation, Response};
use strongroom_sdk::{Error, Result};

fn rfc3339(secs: u64) -> Value {
    if secs == 0 {
        return Value::Null;
    }
    Value::String(
        humantime::format_rfc3339_nanos(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        )
        .to_string(),
    )
}

/// The parameters of a lookup, renewal or revocation of one lease.
#[derive(Deserialize)]
struct LeaseParams {
    #[serde(default)]
    lease_id: String,
    /// The lease id in the path, used when the body gives none.
    #[serde(default)]
    url_lease_id: String,
    /// The requested extension in seconds (renewals only).
    increment: Option<u64>,
}

impl LeaseParams {
    /// The lease id: the body's, else the path's.
    fn id(self) -> Result<String> {
        let id = if self.lease_id.is_empty() {
            self.url_lease_id
        } else {
            self.lease_id
        };
        if id.is_empty() {
            return Err(Error::bad_request("lease_id must be specified"));
        }
        Ok(id)
    }
}

/// The prefix of a listing or prefix revocation.
#[derive(Deserialize)]
struct PrefixParam {
    #[serde(default)]
    prefix: String,
}

/// The token whose lease id is `id`, if any.
async fn token_of_lease(core: &Core, id: &str) -> Result<Option<std::sync::Arc<TokenEntry>>> {
    let Some((_, hash)) = id.rsplit_once("/h") else {
        return Ok(None);
    };
    let unsealed = core.active()?;
    Ok(unsealed
        .tokens
        .lookup_hash(hash)
        .await?
        .filter(|e| e.lease_id() == id))
}

async fn lookup(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let id = ctx.decode::<LeaseParams>()?.id()?;
    let now = crate::token::now_unix();
    let view = |id: &str, path: &str, issue: u64, expire: u64, renewal: u64, renewable: bool| {
        let mut d = Data::new();
        d.insert("expire_time".into(), rfc3339(expire));
        d.insert("id".into(), json!(id));
        d.insert("issue_time".into(), rfc3339(issue));
        d.insert("last_renewal".into(), rfc3339(renewal));
        d.insert("path".into(), json!(path));
        d.insert("renewable".into(), json!(renewable));
        d.insert(
            "ttl".into(),
            json!(if expire == 0 {
                0
            } else {
                expire.saturating_sub(now)
            }),
        );
        d
    };
    if let Some(l) = core.active()?.leases.get(&id) {
        return Ok(Response::data(view(
            &l.lease_id,
            &l.path,
            l.issue_time,
            l.expire_time,
            l.last_renewal,
            l.renewable,
        )));
    }
    if let Some(t) = token_of_lease(&core, &id).await? {
        return Ok(Response::data(view(
            &id,
            &t.path,
            t.creation_time,
            t.expire_time,
            t.last_renewal,
            t.renewable && t.expire_time > 0,
        )));
    }
    Err(Error::bad_request("invalid lease"))
}

async fn list(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let unsealed = core.active()?;
    let PrefixParam { prefix } = ctx.decode()?;
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix
    } else {
        format!("{prefix}/")
    };
    // The leases and tokens of the request's namespace.
    let ns = core.request_tenant(&ctx.extensions)?.store_id().to_string();
    let mut ids = unsealed.leases.of_namespace(&ns);
    ids.extend(
        unsealed
            .tokens
            .entries_matching(|e| e.namespace_id == ns)
            .await?
            .iter()
            .map(|e| e.lease_id()),
    );
    let keys = list_level(&prefix, ids.iter().map(String::as_str));
    if keys.is_empty() {
        return Err(Error::NotFound(None));
    }
    let mut d = Data::new();
    d.insert("keys".into(), json!(keys));
    Ok(Response::data(d))
}

async fn renew(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let params: LeaseParams = ctx.decode()?;
    let increment = params.increment.unwrap_or(0);
    let id = params.id()?;
    let unsealed = core.active()?;
    if unsealed.leases.get(&id).is_none() {
        if token_of_lease(&core, &id).await?.is_some() {
            return Err(Error::bad_request(
                "tokens cannot be renewed through this endpoint",
            ));
        }
        return Err(Error::bad_request("lease not found"));
    }
    let l = unsealed.leases.renew(&id, increment).await?;
    let mut resp = Response::empty();
    resp.lease = Some(strongroom_sdk::logical::Lease {
        lease_id: l.lease_id.clone(),
        lease_duration: l.expire_time.saturating_sub(crate::token::now_unix()),
        renewable: l.renewable,
        internal: None,
    });
    Ok(resp)
}

async fn revoke(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let id = ctx.decode::<LeaseParams>()?.id()?;
    if let Some(t) = token_of_lease(&core, &id).await? {
        core.revoke_token_tree(&t.id_hash).await?;
    } else {
        let unsealed = core.active()?;
        core.revoke_lease(&unsealed, &id, false).await?;
    }
    Ok(Response::empty())
}

async fn revoke_prefix(s: S, ctx: Ctx) -> Result<Response> {
    let PrefixParam { prefix } = ctx.decode()?;
    let core = s.core()?;
    let tenant = core.request_tenant(&ctx.extensions)?;
    core.revoke_prefix(&tenant, &prefix, false).await?;
    Ok(Response::empty())
}

async fn revoke_force(s: S, ctx: Ctx) -> Result<Response> {
    let PrefixParam { prefix } = ctx.decode()?;
    let core = s.core()?;
    let tenant = core.request_tenant(&ctx.extensions)?;
    core.revoke_prefix(&tenant, &prefix, true).await?;
    Ok(Response::empty())
}

async fn tidy(s: S, _ctx: Ctx) -> Result<Response> {
    let weak = std::sync::Arc::downgrade(&s.core()?);
    tokio::spawn(async move {
        if let Some(core) = weak.upgrade() {
            if let Err(e) = core.tidy_tokens().await {
                tracing::warn!(error = %e, "lease tidy failed");
            }
        }
    });
    let mut resp = Response::empty().with_warning(
        "Tidy operation successfully started. Any information from the operation will be printed to Strongroom's server logs.",
    );
    resp.status = Some(202);
    Ok(resp)
}

fn id_fields() -> Vec<Field> {
    vec![
        Field::new("lease_id", FieldType::String, "The lease identifier."),
        Field::new(
            "url_lease_id",
            FieldType::String,
            "The lease identifier, in the path.",
        ),
        Field::new(
            "increment",
            FieldType::DurationSecond,
            "The requested extension (renew only).",
        ),
        Field::new(
            "sync",
            FieldType::Bool,
            "Accepted for compatibility: revocation is always synchronous.",
        ),
    ]
}

fn prefix_fields() -> Vec<Field> {
    vec![
        Field::new("prefix", FieldType::String, "The lease id prefix."),
        Field::new(
            "sync",
            FieldType::Bool,
            "Accepted for compatibility: revocation is always synchronous.",
        ),
    ]
}

/// The `sys/leases/*` paths.
pub(super) fn paths() -> Vec<Path<SysState>> {
    vec![
        Path::new("leases/lookup")
            .fields(id_fields())
            .decodes::<LeaseParams>()
            .op(Operation::Update, handler(lookup), "Retrieve lease metadata.")
            .help("View or list lease metadata.", "Returns the issue time, expiry, TTL and renewability of a lease."),
        Path::new("leases/lookup/{prefix*}")
            .fields(vec![Field::new("prefix", FieldType::String, "The lease id prefix to list.")])
            .decodes::<PrefixParam>()
            .op(Operation::List, handler(list), "Returns a list of lease ids.")
            .help("View or list lease metadata.", "Lists the lease ids one level below the prefix, as storage listings do."),
        Path::new("leases/renew")
            .fields(id_fields())
            .decodes::<LeaseParams>()
            .op(Operation::Update, handler(renew), "Renews a lease, requesting to extend the lease.")
            .help("Renew a lease of a secret.", "Extends a secret lease by the increment, within its max TTL. Tokens are renewed through auth/token/renew."),
        Path::new("leases/renew/{url_lease_id+}")
            .fields(id_fields())
            .decodes::<LeaseParams>()
            .op(Operation::Update, handler(renew), "Renews a lease, requesting to extend the lease.")
            .help("Renew a lease of a secret.", "Extends a secret lease by the increment, within its max TTL."),
        Path::new("leases/revoke")
            .fields(id_fields())
            .decodes::<LeaseParams>()
            .op(Operation::Update, handler(revoke), "Revokes a lease immediately.")
            .help("Revoke a lease.", "Revokes the lease (a token lease revokes the token and its children). Unknown leases are not an error."),
        Path::new("leases/revoke/{url_lease_id+}")
            .fields(id_fields())
            .decodes::<LeaseParams>()
            .op(Operation::Update, handler(revoke), "Revokes a lease immediately.")
            .help("Revoke a lease.", "Revokes the lease named in the path."),
        Path::new("leases/revoke-prefix/{prefix+}")
            .fields(prefix_fields())
            .decodes::<PrefixParam>()
            .op(Operation::Update, handler(revoke_prefix), "Revokes all secrets (via a lease ID prefix) or tokens (via the tokens' path property) generated under a given prefix immediately.")
            .help("Revoke all leases under a prefix.", "Revokes every lease, tokens included, whose id starts with the prefix. Requires sudo."),
        Path::new("leases/revoke-force/{prefix+}")
            .fields(prefix_fields())
            .decodes::<PrefixParam>()
            .op(Operation::Update, handler(revoke_force), "Revokes all secrets or tokens generated under a given prefix immediately, ignoring backend errors.")
            .help("Revoke all leases under a prefix, ignoring backend errors.", "Like revoke-prefix, but a backend that fails to revoke a secret does not stop the lease from being dropped. Requires sudo."),
        Path::new("leases/tidy")
            .op(Operation::Update, handler(tidy), "Cleans up the dangling storage entries for leases.")
            .help("Clean up leases.", "Revokes leases whose token is gone and tokens whose parent is gone. Runs in the background."),
    ]
}
