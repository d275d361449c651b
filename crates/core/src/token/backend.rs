//! The `token` auth backend (`auth/token/`): creating tokens (directly or
//! through a role), looking them up, renewing and revoking them, listing
//! accessors, roles, and tidying. Rules follow OpenBao's token store;
//! revocation goes through the [`Core`], which also ends the tokens'
//! leases and cubbyholes.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use serde::Deserialize;
use serde_json::{json, Value};

use super::role::{self, Role, TokenType};
use super::{render, NewToken, TokenEntry, TokenStore};
use crate::node::tenant::Tenant;
use crate::node::Core;
use strongroom_sdk::framework::{
    handler, Backend, Ctx, Field, FieldType, Path, PathSet, SpecialPaths,
};
use strongroom_sdk::logical::{Auth, Data, Operation, Response};
use strongroom_sdk::{Error, Result};

/// The backend's state: the core, reached weakly (the core owns the
/// backend).
pub struct TokenBackend {
    core: Weak<Core>,
}

type S = Arc<TokenBackend>;

impl TokenBackend {
    fn core(&self) -> Result<Arc<Core>> {
        self.core.upgrade().ok_or(Error::Sealed)
    }

    /// The token store: the active node's, or on an HA standby its
    /// read-only replica (reads are answered there; a write fails at the
    /// gate and the request is forwarded).
    fn store(&self) -> Result<Arc<TokenStore>> {
        Ok(self.core()?.active_or_standby()?.tokens.clone())
    }
}

/// The calling token's entry, as authenticated by the core.
fn caller(ctx: &Ctx) -> Result<Arc<TokenEntry>> {
    ctx.extensions
        .get::<Arc<TokenEntry>>()
        .cloned()
        .ok_or(Error::PermissionDenied)
}

/// The namespace the request is in.
fn tenant(core: &Core, ctx: &Ctx) -> Result<Arc<Tenant>> {
    core.request_tenant(&ctx.extensions)
}

/// The path of the namespace a token was made in (`""`: root).
fn namespace_path(core: &Core, entry: &TokenEntry) -> Result<String> {
    if entry.namespace_id.is_empty() {
        return Ok(String::new());
    }
    Ok(core
        .active_or_standby()?
        .namespaces
        .by_id(&entry.namespace_id)
        .map(|t| t.path.to_string())
        .unwrap_or_default())
}

/// A token as lookups show it: with its namespace's path and the
/// identity policies of its entity.
fn render_entry(core: &Core, id: &str, entry: &TokenEntry) -> Result<Response> {
    let ns = namespace_path(core, entry)?;
    let identity = core
        .active_or_standby()?
        .namespaces
        .by_id(&entry.namespace_id)
        .map(|t| t.identity_policies(entry))
        .unwrap_or_default();
    Ok(Response::data(render(id, entry, &ns, &identity)))
}

/// The auth block describing `entry` (as create and renew answer).
fn auth_block(id: &str, e: &TokenEntry) -> Auth {
    let now = super::now_unix();
    Auth {
        client_token: id.to_string(),
        accessor: e.accessor.clone(),
        policies: e.policies.clone(),
        token_policies: e.policies.clone(),
        identity_policies: Vec::new(),
        metadata: e.meta.clone(),
        lease_duration: e.expires_at().map_or(0, |at| at.saturating_sub(now)),
        renewable: e.renewable,
        entity_id: e.entity_id.clone(),
        token_type: e.token_type,
        orphan: e.orphan,
        mfa_requirement: None,
        num_uses: e.num_uses.max(0) as u64,
    }
}

/// The fields of the create paths ([`create_fields`]), as `create` reads
/// them: absent strings are empty, absent durations zero.
#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateParams {
    policies: Vec<String>,
    meta: Option<HashMap<String, String>>,
    no_parent: bool,
    no_default_policy: bool,
    renewable: Option<bool>,
    ttl: u64,
    explicit_max_ttl: u64,
    period: u64,
    display_name: String,
    num_uses: i64,
    #[serde(rename = "type")]
    token_type: String,
    id: String,
    entity_alias: String,
}

/// The role of `create/{role_name}`.
#[derive(Deserialize)]
struct RoleNameParam {
    role_name: String,
}

/// The token a lookup, renew or revoke names (empty when absent).
#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenParam {
    token: String,
}

/// The accessor a lookup, renew or revoke by accessor names (empty when
/// absent).
#[derive(Deserialize, Default)]
#[serde(default)]
struct AccessorParam {
    accessor: String,
}

/// A renewal's requested extension, in seconds (zero when absent).
#[derive(Deserialize, Default)]
#[serde(default)]
struct IncrementParam {
    increment: u64,
}

/// `create`, `create-orphan` and `create/:role`: OpenBao's rules for
/// parents, policies, types and TTLs.
async fn create(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let store = s.store()?;
    let f: CreateParams = ctx.decode()?;
    let parent = caller(&ctx)?;
    if parent.is_batch() {
        return Err(Error::bad_request("batch tokens cannot create more tokens"));
    }
    let role_name = if ctx.request.path.starts_with("create/") {
        ctx.decode::<RoleNameParam>()?.role_name
    } else {
        String::new()
    };
    let role = if role_name.is_empty() {
        None
    } else {
        Some(
            role::load(&ctx.storage, &role_name)
                .await?
                .ok_or_else(|| Error::bad_request(format!("unknown role {role_name}")))?,
        )
    };
    // As OpenBao: an entity alias needs a role that allows it.
    if role.is_none() && !f.entity_alias.is_empty() {
        return Err(Error::bad_request(
            "'entity_alias' is only allowed in combination with token role",
        ));
    }
    let active = core.active()?;
    let here = tenant(&core, &ctx)?;
    // The token's entity: the one of the role's `entity_alias` on this
    // token mount (found or made, as a login's), else the parent's.
    let entity_id = match &role {
        Some(r) if !f.entity_alias.is_empty() => {
            let allowed = r.allowed_entity_aliases().unwrap_or(&[]);
            if !allowed
                .iter()
                .any(|g| strongroom_sdk::glob::glob_match(g, &f.entity_alias))
            {
                return Err(Error::bad_request("invalid 'entity_alias' value"));
            }
            let alias = strongroom_sdk::identity::LoginAlias {
                name: f.entity_alias.clone(),
                metadata: Default::default(),
            };
            let entity = here.identity.login(&ctx.mount.accessor, &alias).await?;
            if entity.disabled {
                return Err(Error::PermissionDenied);
            }
            entity.id.clone()
        }
        _ => parent.entity_id.clone(),
    };
    // The parent's own namespace: its policies decide, on the path from
    // there (the pipeline checked that this namespace is within it).
    let home = active
        .namespaces
        .by_id(&parent.namespace_id)
        .ok_or(Error::PermissionDenied)?;
    let full_path = format!(
        "{}{}{}",
        &here.path[home.path.len().min(here.path.len())..],
        ctx.mount.path,
        ctx.request.path
    );
    let sudo = parent.is_root() || {
        let acl = home
            .policies
            .acl_for(&home.token_policies(&parent)?, || {
                home.identity_facts(&parent.entity_id)
            })
            .await?;
        acl.capabilities(&full_path).iter().any(|c| c == "sudo")
    };
    // A token made in a namespace below its parent's is an administrator's
    // doing (OpenBao's rules): it takes the requested policies only.
    let from_parent_namespace = here.id != home.id;
    if from_parent_namespace {
        if !sudo {
            return Err(Error::bad_request(
                "root or sudo privileges required to directly generate a token in a child namespace",
            ));
        }
        if f.policies
            .iter()
            .any(|p| p.trim().eq_ignore_ascii_case("root"))
        {
            return Err(Error::bad_request(
                "root tokens may not be created from a parent namespace",
            ));
        }
    }
    let mut warnings = Vec::new();

    // Orphans: the create-orphan path, a role that says so, or no_parent
    // with root or sudo.
    let no_parent = f.no_parent;
    let orphan = ctx.request.path == "create-orphan"
        || role.as_ref().is_some_and(Role::orphan)
        || (no_parent && sudo);
    if no_parent && !orphan {
        return Err(Error::bad_request(
            "root or sudo privileges required to create orphan token",
        ));
    }

    // Type: the request's, within what the role allows.
    let requested_type = match f.token_type.as_str() {
        "default" => String::new(),
        t => t.to_string(),
    };
    let chosen = role.as_ref().map_or(requested_type.as_str(), |r| {
        role::type_for_request(r.token_type(), &requested_type)
    });
    let batch = match (chosen, TokenType::parse(chosen)) {
        ("", _) | (_, Some(TokenType::Service)) => false,
        (_, Some(TokenType::Batch)) => true,
        (t, _) => {
            return Err(Error::bad_request(format!(
                "invalid 'token_type' value {t:?}"
            )))
        }
    };

    let mut num_uses = f.num_uses;
    if num_uses < 0 {
        return Err(Error::bad_request("number of uses cannot be negative"));
    }
    if let Some(r) = &role {
        let limit = i64::try_from(r.token_num_uses()).unwrap_or(i64::MAX);
        if limit > 0 && (num_uses == 0 || num_uses > limit) {
            num_uses = limit;
        }
    }

    let id = f.id;
    let id = if id.is_empty() {
        None
    } else {
        if !sudo {
            return Err(Error::bad_request(
                "root or sudo privileges required to specify token id",
            ));
        }
        if id.starts_with("s.") || id.starts_with("b.") {
            return Err(Error::bad_request(format!(
                "custom token ID cannot have the '{}' prefix",
                &id[..2]
            )));
        }
        if id.contains('.') {
            return Err(Error::bad_request(
                "custom token ID cannot have a '.' in the value",
            ));
        }
        warnings.push(
            "Supplying a custom ID for the token: it is stored by salted HMAC-SHA256 as any other, but its strength is only that of the ID chosen.".to_string(),
        );
        Some(id)
    };

    // Policies.
    let requested: Vec<String> = f
        .policies
        .into_iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    let no_default = f.no_default_policy;
    let governed = match &role {
        Some(r) => r.resolve_policies_with_parent(&requested, &parent.policies, no_default)?,
        None => None,
    };
    let mut policies = match governed {
        Some(p) => p,
        None if from_parent_namespace => {
            let mut policies = requested.clone();
            if !no_default {
                policies.push("default".into());
            }
            policies
        }
        None => {
            let mut policies: Vec<String> = if requested.is_empty() {
                parent
                    .policies
                    .iter()
                    .filter(|p| p.as_str() != "default")
                    .cloned()
                    .collect()
            } else {
                requested.clone()
            };
            if !sudo {
                if let Some(extra) = policies
                    .iter()
                    .find(|p| p.as_str() != "default" && !parent.policies.contains(p))
                {
                    return Err(Error::bad_request(format!(
                        "child policies must be subset of parent: {extra:?} is not"
                    )));
                }
            }
            if !no_default && !policies.iter().any(|p| p == "root") {
                policies.push("default".into());
            }
            policies
        }
    };
    if policies.iter().any(|p| p == "root") && !parent.is_root() {
        return Err(Error::bad_request(
            "root tokens may not be created without parent token being root",
        ));
    }
    policies.sort();
    policies.dedup();
    let is_root = policies.iter().any(|p| p == "root");
    for p in &policies {
        if p != "root" && p != "default" && !here.policies.exists(p).await? {
            warnings.push(format!("Policy {p:?} does not exist"));
        }
    }

    // TTLs.
    let mut explicit_max_ttl = f.explicit_max_ttl;
    let mut period = f.period;
    if let Some(r) = &role {
        let role_max = r.token_explicit_max_ttl().as_secs();
        if role_max > 0 {
            explicit_max_ttl = match explicit_max_ttl {
                0 => role_max,
                e => e.min(role_max),
            };
        }
        if !r.token_period().is_zero() {
            period = r.token_period().as_secs();
        }
    }
    if period > 0 && !sudo && role.as_ref().is_none_or(|r| r.token_period().is_zero()) {
        return Err(Error::bad_request(
            "root or sudo privileges required to create periodic token",
        ));
    }
    let ttl = super::initial_ttl(
        f.ttl,
        period,
        explicit_max_ttl,
        ctx.mount.default_lease_ttl.as_secs(),
        ctx.mount.max_lease_ttl.as_secs(),
        is_root,
    );
    // A token that never expires has nothing to renew.
    let renewable =
        ttl > 0 && f.renewable.unwrap_or(true) && role.as_ref().is_none_or(Role::renewable);

    if batch {
        // OpenBao's order: the settings a batch token cannot have, then root.
        let unsupported = if explicit_max_ttl != 0 {
            Some("explicit_max_ttl")
        } else if num_uses != 0 {
            Some("num_uses")
        } else if period > 0 {
            Some("period")
        } else {
            None
        };
        if let Some(field) = unsupported {
            return Err(Error::bad_request(format!(
                "batch tokens cannot have {field:?} set"
            )));
        }
        if is_root {
            return Err(Error::bad_request("batch tokens cannot be root tokens"));
        }
        if id.is_some() {
            return Err(Error::bad_request("batch tokens cannot have a custom ID"));
        }
    }

    let display_name = match f.display_name.trim() {
        "" => "token".to_string(),
        // OpenBao turns spaces into dashes.
        name => format!("token-{}", name.replace(char::is_whitespace, "-")),
    };
    let meta = f
        .meta
        .map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    let path = match &role {
        Some(r) if !r.path_suffix().is_empty() => {
            format!("auth/token/create/{role_name}/{}", r.path_suffix())
        }
        Some(_) => format!("auth/token/create/{role_name}"),
        None => format!("auth/token/{}", ctx.request.path),
    };
    let (id, entry) = store
        .create(NewToken {
            policies,
            meta,
            display_name,
            ttl,
            explicit_max_ttl,
            period,
            renewable: renewable && !batch,
            parent: (!orphan).then(|| parent.id_hash.clone()),
            path,
            num_uses,
            role: role_name,
            bound_cidrs: role
                .as_ref()
                .map(|r| r.bound_cidrs().to_vec())
                .unwrap_or_default(),
            batch,
            id,
            max_ttl: 0,
            namespace_id: here.store_id().to_string(),
            entity_id,
        })
        .await?;
    let mut auth = auth_block(&id, &entry);
    auth.identity_policies = here.identity_policies(&entry);
    auth.lease_duration = entry.ttl;
    // A batch child of a service token is tied to its parent but is not
    // shown as an orphan.
    Ok(Response {
        auth: Some(auth),
        warnings,
        ..Default::default()
    })
}

async fn lookup_self(s: S, ctx: Ctx) -> Result<Response> {
    let entry = caller(&ctx)?;
    let id = ctx
        .request
        .client_token
        .as_ref()
        .map(|t| t.0.clone())
        .unwrap_or_default();
    render_entry(&*s.core()?, &id, &entry)
}

async fn lookup(s: S, ctx: Ctx) -> Result<Response> {
    let TokenParam { token } = ctx.decode()?;
    if token.is_empty() {
        return lookup_self(s, ctx).await;
    }
    match s.store()?.lookup(&token).await? {
        Some(entry) => render_entry(&*s.core()?, &token, &entry),
        None => Err(Error::Forbidden("bad token".into())),
    }
}

async fn by_accessor(store: &TokenStore, ctx: &Ctx) -> Result<Arc<TokenEntry>> {
    let AccessorParam { accessor } = ctx.decode()?;
    if accessor.is_empty() {
        return Err(Error::bad_request("missing accessor"));
    }
    store
        .lookup_accessor(&accessor)
        .await?
        .ok_or_else(|| Error::bad_request("invalid accessor"))
}

async fn lookup_accessor(s: S, ctx: Ctx) -> Result<Response> {
    let store = s.store()?;
    let entry = by_accessor(&store, &ctx).await?;
    render_entry(&*s.core()?, "", &entry)
}

/// Renews `entry` (shown with `id`) by the request's `increment`.
async fn renew_entry(
    ctx: &Ctx,
    store: &TokenStore,
    id: &str,
    entry: &TokenEntry,
) -> Result<Response> {
    if entry.is_batch() {
        return Err(Error::bad_request("batch tokens cannot be renewed"));
    }
    let IncrementParam { increment } = ctx.decode()?;
    let (renewed, warning) = store
        .renew(&entry.id_hash, increment, ctx.mount.max_lease_ttl.as_secs())
        .await?;
    Ok(Response {
        auth: Some(auth_block(id, &renewed)),
        warnings: warning.into_iter().collect(),
        ..Default::default()
    })
}

async fn renew(s: S, ctx: Ctx) -> Result<Response> {
    let store = s.store()?;
    let TokenParam { token } = ctx.decode()?;
    if token.is_empty() {
        return Err(Error::bad_request("missing token ID"));
    }
    let entry = store
        .lookup(&token)
        .await?
        .ok_or_else(|| Error::bad_request("token not found"))?;
    renew_entry(&ctx, &store, &token, &entry).await
}

async fn renew_self(s: S, ctx: Ctx) -> Result<Response> {
    let store = s.store()?;
    let entry = caller(&ctx)?;
    let id = ctx
        .request
        .client_token
        .as_ref()
        .map(|t| t.0.clone())
        .unwrap_or_default();
    renew_entry(&ctx, &store, &id, &entry).await
}

async fn renew_accessor(s: S, ctx: Ctx) -> Result<Response> {
    let store = s.store()?;
    let entry = by_accessor(&store, &ctx).await?;
    renew_entry(&ctx, &store, "", &entry).await
}

/// Batch tokens live until they expire.
fn revocable(entry: &TokenEntry) -> Result<()> {
    if entry.is_batch() {
        return Err(Error::bad_request("batch tokens cannot be revoked"));
    }
    Ok(())
}

async fn revoke(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let TokenParam { token } = ctx.decode()?;
    if token.is_empty() {
        return Err(Error::bad_request("missing token ID"));
    }
    let Some(entry) = s.store()?.lookup(&token).await? else {
        return Ok(Response::empty());
    };
    revocable(&entry)?;
    core.revoke_token_tree(&entry.id_hash).await?;
    Ok(Response::empty())
}

async fn revoke_self(s: S, ctx: Ctx) -> Result<Response> {
    let entry = caller(&ctx)?;
    revocable(&entry)?;
    s.core()?.revoke_token_tree(&entry.id_hash).await?;
    Ok(Response::empty())
}

async fn revoke_orphan(s: S, ctx: Ctx) -> Result<Response> {
    let TokenParam { token } = ctx.decode()?;
    if token.is_empty() {
        return Err(Error::bad_request("missing token ID"));
    }
    let entry = s
        .store()?
        .lookup(&token)
        .await?
        .ok_or_else(|| Error::bad_request("token to revoke not found"))?;
    revocable(&entry)?;
    s.core()?.revoke_token_orphan(&entry.id_hash).await?;
    Ok(Response::empty())
}

async fn revoke_accessor(s: S, ctx: Ctx) -> Result<Response> {
    let AccessorParam { accessor } = ctx.decode()?;
    if accessor.is_empty() {
        return Err(Error::bad_request("missing accessor"));
    }
    match s.store()?.lookup_accessor(&accessor).await? {
        Some(entry) => {
            s.core()?.revoke_token_tree(&entry.id_hash).await?;
            Ok(Response::empty())
        }
        None => Ok(Response::empty().with_warning("No token found with this accessor")),
    }
}

async fn accessors(s: S, ctx: Ctx) -> Result<Response> {
    // The accessors of the request's namespace's tokens (theirs end with
    // its id; the root namespace's have no suffix).
    let here = tenant(&*s.core()?, &ctx)?;
    let ns = here.store_id();
    let keys: Vec<String> = s
        .store()?
        .accessors()
        .await?
        .into_iter()
        .filter(|a| crate::namespace::id_suffix(a).unwrap_or_default() == ns)
        .collect();
    let mut data = Data::new();
    data.insert("keys".into(), json!(keys));
    Ok(Response::data(data))
}

async fn tidy(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    // Runs in the background, as OpenBao's tidy: the answer only says it
    // started. The task holds the core weakly and stops at a seal.
    let weak = Arc::downgrade(&core);
    tokio::spawn(async move {
        if let Some(core) = weak.upgrade() {
            if let Err(e) = core.tidy_tokens().await {
                tracing::warn!(error = %e, "token tidy failed");
            }
        }
    });
    let mut resp = Response::empty().with_warning(
        "Tidy operation successfully started. Any information from the operation will be printed to Strongroom's server logs.",
    );
    resp.status = Some(202);
    Ok(resp)
}

fn create_fields() -> Vec<Field> {
    vec![
        Field::new(
            "policies",
            FieldType::CommaStringSlice,
            "Policies of the token (default: the parent's).",
        ),
        Field::new("meta", FieldType::KvPairs, "Arbitrary key=value metadata."),
        Field::new(
            "no_parent",
            FieldType::Bool,
            "Create an orphan (root or sudo only).",
        ),
        Field::new(
            "no_default_policy",
            FieldType::Bool,
            "Do not attach the default policy.",
        ),
        Field::new(
            "renewable",
            FieldType::Bool,
            "Whether the token can be renewed (default true).",
        ),
        Field::new(
            "ttl",
            FieldType::DurationSecond,
            "Initial TTL (default: the mount's default lease TTL).",
        ),
        Field::new(
            "explicit_max_ttl",
            FieldType::DurationSecond,
            "Hard limit on the token's life.",
        ),
        Field::new(
            "period",
            FieldType::DurationSecond,
            "Make a periodic token renewed to this period (root or sudo).",
        ),
        Field::new(
            "lease",
            FieldType::String,
            "Deprecated: use ttl (checked for its type, otherwise ignored).",
        ),
        Field::new("display_name", FieldType::String, "Name shown in lookups."),
        Field::new("num_uses", FieldType::Int, "Maximum uses (0: unlimited)."),
        Field::new("type", FieldType::String, "service or batch."),
        Field::new("id", FieldType::String, "A custom id (root or sudo only)."),
        Field::new(
            "entity_alias",
            FieldType::String,
            "Not supported: entities arrive with identity.",
        ),
    ]
}

fn token_field() -> Vec<Field> {
    vec![Field::new("token", FieldType::String, "The token.")]
}

fn accessor_field() -> Vec<Field> {
    vec![Field::new(
        "accessor",
        FieldType::String,
        "Accessor of the token.",
    )]
}

fn increment_field() -> Field {
    Field::new(
        "increment",
        FieldType::DurationSecond,
        "The requested TTL extension (default: the token's TTL).",
    )
}

/// The `token` auth backend.
pub fn backend(core: Weak<Core>) -> Backend<TokenBackend> {
    let mut paths = vec![
        Path::new("create")
            .fields(create_fields())
            .decodes::<CreateParams>()
            .op(Operation::Update, handler(create), "Create a token as a child of the calling token.")
            .help("The token create path is used to create new tokens.", "Creates a token whose parent is the calling token, with the given policies (a subset of the parent's unless the parent is root), TTLs, use limit and metadata."),
        Path::new("create-orphan")
            .fields(create_fields())
            .decodes::<CreateParams>()
            .op(Operation::Update, handler(create), "Create a token without a parent.")
            .help("The token create path is used to create new orphan tokens.", "Creates a token with no parent: it survives the revocation of the calling token."),
        Path::new("create/{role_name}")
            .fields({
                let mut f = create_fields();
                f.push(Field::new("role_name", FieldType::String, "The token role to create the token with."));
                f
            })
            .decodes::<CreateParams>()
            .decodes::<RoleNameParam>()
            .op(Operation::Update, handler(create), "Create a token through a role.")
            .help("This token create path is used to create new tokens adhering to the given role.", "The role decides the allowed policies, orphan status, period, type and path suffix of the token."),
        Path::new("lookup-self")
            .fields(token_field())
            .op(Operation::Read, handler(lookup_self), "Look up the calling token.")
            .op(Operation::Update, handler(lookup_self), "Look up the calling token.")
            .help("Look up the calling token's properties.", "Returns the properties of the token that authenticates the request."),
        Path::new("lookup")
            .fields(token_field())
            .decodes::<TokenParam>()
            .op(Operation::Read, handler(lookup), "Look up a token.")
            .op(Operation::Update, handler(lookup), "Look up a token.")
            .help("Look up a token's properties.", "Returns the properties of the given token, or of the calling token when none is given."),
        Path::new("lookup-accessor")
            .fields(accessor_field())
            .decodes::<AccessorParam>()
            .op(Operation::Update, handler(lookup_accessor), "Look up a token by its accessor.")
            .help("Look up a token's properties by its accessor.", "Returns the properties of the token with the given accessor; the token id itself is not shown."),
        Path::new("renew")
            .fields(vec![Field::new("token", FieldType::String, "The token to renew."), increment_field()])
            .decodes::<TokenParam>()
            .decodes::<IncrementParam>()
            .op(Operation::Update, handler(renew), "Renew a token.")
            .help("Renew a token.", "Extends the token's TTL by the increment, within its explicit max TTL and the mount's max TTL counted from its creation. Periodic tokens renew to their period."),
        Path::new("renew-self")
            .fields(vec![Field::new("token", FieldType::String, "Unused."), increment_field()])
            .decodes::<IncrementParam>()
            .op(Operation::Update, handler(renew_self), "Renew the calling token.")
            .help("Renew the calling token.", "Extends the calling token's TTL by the increment, within its limits."),
        Path::new("renew-accessor")
            .fields(vec![Field::new("accessor", FieldType::String, "Accessor of the token to renew."), increment_field()])
            .decodes::<AccessorParam>()
            .decodes::<IncrementParam>()
            .op(Operation::Update, handler(renew_accessor), "Renew a token by its accessor.")
            .help("Renew a token by its accessor.", "Extends the TTL of the token with the given accessor."),
        Path::new("revoke")
            .fields(token_field())
            .decodes::<TokenParam>()
            .op(Operation::Update, handler(revoke), "Revoke a token and its children.")
            .help("Revoke a token and all its children.", "Revokes the token, every token created under it, and their leases and cubbyholes."),
        Path::new("revoke-self")
            .op(Operation::Update, handler(revoke_self), "Revoke the calling token and its children.")
            .help("Revoke the calling token and all its children.", "Revokes the calling token, every token created under it, and their leases."),
        Path::new("revoke-orphan")
            .fields(token_field())
            .decodes::<TokenParam>()
            .op(Operation::Update, handler(revoke_orphan), "Revoke a token, leaving its children as orphans.")
            .help("Revoke a token but not its children.", "Revokes the token and its leases; its children become orphans. Requires sudo."),
        Path::new("revoke-accessor")
            .fields(accessor_field())
            .decodes::<AccessorParam>()
            .op(Operation::Update, handler(revoke_accessor), "Revoke a token by its accessor.")
            .help("Revoke a token and its children by the token's accessor.", "Revokes the token with the given accessor and everything under it."),
        Path::new("accessors/?")
            .op(Operation::List, handler(accessors), "List token accessors.")
            .help("List token accessors.", "Lists the accessors of every live service token. Requires sudo."),
        Path::new("tidy")
            .op(Operation::Update, handler(tidy), "Clean up token storage.")
            .help("Performs tidying tasks for the token store.", "Revokes tokens whose parent no longer exists and leases whose token no longer exists. Runs in the background."),
    ];
    paths.extend(role::paths());
    Backend::new(
        Arc::new(TokenBackend { core }),
        paths,
        "The token credential backend is always enabled and builds in some core\nfunctionality like tokens and accessors.",
    )
    .special_paths(SpecialPaths {
        unauthenticated: PathSet::default(),
        root: PathSet::new(&["revoke-orphan", "accessors", "accessors/"]),
    })
}
