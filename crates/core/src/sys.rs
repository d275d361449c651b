//! The system backend (`sys/`): seal and initialisation, health and leader
//! status, the barrier's key, and the mount tables. The seal-related paths
//! are answered even while sealed (the core dispatches them directly).

use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::mount::{MountConfig, Table};
use crate::node::tenant::Tenant;
use crate::node::{Core, InitParams, Tune};
use strongroom_sdk::framework::{
    handler, parse_go_bool, weak_string, Backend, Ctx, Field, FieldType, Path, PathSet,
    SpecialPaths,
};
use strongroom_sdk::logical::{Data, Operation, Response};
use strongroom_sdk::{duration, Error, Result};

mod audit;
mod leases;
mod namespaces;
mod operators;
pub(crate) mod quotas;
mod remount;
mod telemetry;
mod wrapping;

/// The system backend's state: a handle back to the core, and the mount
/// moves made since start (`sys/remount/status/:id`).
pub struct SysState {
    core: Weak<Core>,
    migrations: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
}

impl SysState {
    pub(crate) fn core(&self) -> Result<Arc<Core>> {
        self.core
            .upgrade()
            .ok_or_else(|| Error::internal("core is shutting down"))
    }
}

type S = Arc<SysState>;

fn obj(v: Value) -> Data {
    match v {
        Value::Object(m) => m,
        _ => Data::new(),
    }
}

/// A response with `data` also copied to the top level, as Vault's legacy
/// `sys/` endpoints answer.
fn legacy(data: Data) -> Response {
    Response {
        top_level: Some(data.clone()),
        data: Some(data),
        ..Default::default()
    }
}

async fn seal_status_body(core: &Core) -> Result<Value> {
    let config = core.seal_config().await?;
    let initialized = core.is_initialized().await?;
    let (progress, nonce) = core.unseal_progress().await;
    let (t, n) = config
        .as_ref()
        .map(|c| (c.secret_threshold, c.secret_shares))
        .unwrap_or((0, 0));
    let mut body = json!({
        "type": "shamir",
        "initialized": initialized,
        "sealed": core.is_sealed(),
        "t": t,
        "n": n,
        "progress": progress,
        "nonce": nonce,
        "version": env!("CARGO_PKG_VERSION"),
        "commit_date": "",
        "migration": false,
        "recovery_seal": false,
        "storage_type": core.config().storage_type,
    });
    if let Ok(u) = core.active() {
        body["cluster_name"] = json!(u.cluster.name);
        body["cluster_id"] = json!(u.cluster.id);
    }
    Ok(body)
}

async fn seal_status(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    Ok(Response::raw(200, seal_status_body(&core).await?))
}

async fn init_read(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    Ok(Response::raw(
        200,
        json!({"initialized": core.is_initialized().await?}),
    ))
}

async fn init_write(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let f = &ctx.fields;
    let pgp_keys = f.get_strings("pgp_keys")?.unwrap_or_default();
    let root_token_pgp_key = f.str_or_empty("root_token_pgp_key")?;
    let shares = f.get_int("secret_shares")?.unwrap_or(0);
    let threshold = f.get_int("secret_threshold")?.unwrap_or(0);
    let out = core
        .initialize(InitParams {
            secret_shares: usize::try_from(shares).unwrap_or(0),
            secret_threshold: usize::try_from(threshold).unwrap_or(0),
            root_token_id: None,
            dev: false,
            pgp_keys,
            root_token_pgp_key: Some(root_token_pgp_key).filter(|k| !k.is_empty()),
        })
        .await?;
    let engine = base64::engine::general_purpose::STANDARD;
    let keys: Vec<String> = out.keys.iter().map(hex::encode).collect();
    let keys_b64: Vec<String> = out.keys.iter().map(|k| engine.encode(k)).collect();
    Ok(Response::raw(
        200,
        json!({
            "keys": keys,
            "keys_base64": keys_b64,
            "root_token": out.root_token.as_str(),
        }),
    ))
}

/// Decodes an unseal key given as hex or base64, as Vault accepts both
/// (`sys/unseal`'s `key`); the length is checked by the caller.
pub fn decode_key(key: &str) -> Result<Zeroizing<Vec<u8>>> {
    if let Ok(k) = hex::decode(key) {
        return Ok(Zeroizing::new(k));
    }
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .map(Zeroizing::new)
        .map_err(|_| Error::bad_request("'key' must be a valid hex or base64 string"))
}

/// The parameters of `sys/unseal`.
#[derive(Deserialize)]
struct UnsealParams {
    reset: Option<bool>,
    /// One key share, hex or base64; empty when not given.
    #[serde(default)]
    key: String,
}

async fn unseal(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let UnsealParams { reset, key } = ctx.decode()?;
    if reset.unwrap_or(false) {
        if !core.is_sealed() {
            return Err(Error::bad_request("vault is unsealed"));
        }
        core.reset_unseal().await;
        return Ok(Response::raw(200, seal_status_body(&core).await?));
    }
    if key.is_empty() {
        return Err(Error::bad_request(
            "'key' must be specified in request body as JSON, or 'reset' set to true",
        ));
    }
    let key = decode_key(&key)?;
    // OpenBao checks the initialisation before the key's length.
    if !core.is_initialized().await? {
        return Err(Error::bad_request("Vault is not initialized"));
    }
    // Shares are 33 bytes (32-byte key and its x coordinate); a single-share
    // key is the 32-byte key itself.
    if key.len() > 33 {
        return Err(Error::bad_request(
            "invalid key: key is longer than maximum 33 bytes",
        ));
    }
    if key.len() < 16 {
        return Err(Error::bad_request(
            "invalid key: key is shorter than minimum 16 bytes",
        ));
    }
    core.submit_unseal_key(key).await?;
    Ok(Response::raw(200, seal_status_body(&core).await?))
}

async fn seal(s: S, _ctx: Ctx) -> Result<Response> {
    s.core()?.seal().await;
    Ok(Response::empty())
}

/// The query parameters of `sys/health`, as given: the handler checks
/// each as OpenBao does (`haunhealthycode` is declared but not used).
#[derive(Deserialize)]
struct HealthParams {
    standbyok: Option<String>,
    perfstandbyok: Option<String>,
    activecode: Option<String>,
    standbycode: Option<String>,
    drsecondarycode: Option<String>,
    performancestandbycode: Option<String>,
    removedcode: Option<String>,
    sealedcode: Option<String>,
    uninitcode: Option<String>,
}

/// The status code given as the health parameter `name`, or `default`.
fn code_param(given: Option<&str>, name: &str, default: u16) -> Result<u16> {
    match given {
        None => Ok(default),
        Some(v) => v
            .parse::<u16>()
            .ok()
            .filter(|c| (100..600).contains(c))
            .ok_or_else(|| {
                Error::bad_request(format!("unable to parse {name} value: invalid code"))
            }),
    }
}

/// `sys/health`. A bad query parameter is a 400 with an empty `errors`
/// list, exactly as OpenBao answers it.
async fn health(s: S, ctx: Ctx) -> Result<Response> {
    match health_status(s, ctx).await {
        Err(Error::BadRequest(_)) => Ok(Response::raw(400, json!({ "errors": [] }))),
        other => other,
    }
}

async fn health_status(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let p: HealthParams = ctx.decode()?;
    // Every code parameter is validated, also those that do not apply to a
    // single-node server (standby, performance standby, DR secondary).
    for (given, name, default) in [
        (&p.standbycode, "standbycode", 429),
        (&p.drsecondarycode, "drsecondarycode", 472),
        (&p.performancestandbycode, "performancestandbycode", 473),
        (&p.removedcode, "removedcode", 530),
    ] {
        code_param(given.as_deref(), name, default)?;
    }
    for (given, name) in [
        (&p.standbyok, "standbyok"),
        (&p.perfstandbyok, "perfstandbyok"),
    ] {
        if let Some(v) = given {
            if !v.is_empty() && parse_go_bool(v).is_none() {
                return Err(Error::bad_request(format!(
                    "bad value for {name} parameter"
                )));
            }
        }
    }
    let initialized = core.is_initialized().await?;
    let sealed = core.is_sealed();
    let standby = core.state() == crate::node::NodeState::Standby;
    let standby_ok = p
        .standbyok
        .as_deref()
        .is_some_and(|v| parse_go_bool(v) == Some(true));
    let status = if !initialized {
        code_param(p.uninitcode.as_deref(), "uninitcode", 501)?
    } else if sealed {
        code_param(p.sealedcode.as_deref(), "sealedcode", 503)?
    } else if standby && !standby_ok {
        code_param(p.standbycode.as_deref(), "standbycode", 429)?
    } else {
        code_param(p.activecode.as_deref(), "activecode", 200)?
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // As OpenBao: a sealed node reports unknown replication modes; an
    // unsealed node of an HA cluster, active or standby, "primary".
    let (performance, dr) = if sealed {
        ("unknown", "unknown")
    } else if core.ha().is_some() {
        ("primary", "disabled")
    } else {
        ("disabled", "disabled")
    };
    let mut body = json!({
        "initialized": initialized,
        "sealed": sealed,
        "standby": sealed || standby,
        "replication_performance_mode": performance,
        "replication_dr_mode": dr,
        "server_time_utc": now,
        "version": env!("CARGO_PKG_VERSION"),
    });
    let cluster = match core.active() {
        Ok(u) => Some(u.cluster.clone()),
        // An unsealed standby knows the cluster from storage.
        Err(_) if standby => core.stored_cluster_info().await.ok().flatten(),
        Err(_) => None,
    };
    if let Some(c) = cluster {
        body["cluster_name"] = json!(c.name);
        body["cluster_id"] = json!(c.id);
    }
    Ok(Response::raw(status, body))
}

async fn leader(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let Some(ha) = core.ha() else {
        // High availability is not configured: one node, always active.
        return Ok(Response::raw(200, json!({"ha_enabled": false})));
    };
    if core.is_sealed() {
        // OpenBao: a sealed node cannot say who leads.
        return Err(Error::Sealed);
    }
    let leader = ha.leader();
    let active_time = leader
        .active_time
        .map(|t| humantime::format_rfc3339_nanos(t).to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    Ok(Response::raw(
        200,
        json!({
            "ha_enabled": true,
            "is_self": leader.is_self,
            "active_time": active_time,
            "leader_address": leader.leader_address,
            "leader_cluster_address": leader.leader_cluster_address,
        }),
    ))
}

/// `sys/ha-status`: the active node and the standbys that reported to it.
async fn ha_status(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    // A single node lists itself, as OpenBao does.
    let nodes: Vec<Value> = core
        .ha()
        .map(|ha| ha.nodes())
        .unwrap_or_else(|| vec![core.single_node()])
        .into_iter()
        .map(|n| {
            json!({
                "hostname": n.hostname,
                "api_address": n.api_address,
                "cluster_address": n.cluster_address,
                "active_node": n.active_node,
                "last_echo": n.last_echo.map(|t| humantime::format_rfc3339_nanos(t).to_string()),
                "version": n.version,
            })
        })
        .collect();
    Ok(legacy(obj(json!({ "nodes": nodes }))))
}

/// `sys/step-down` (sudo): the active node gives up the lock. A single
/// node without HA has nothing to hand over and stays active, as OpenBao.
async fn step_down(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    if let Some(ha) = core.ha() {
        ha.step_down();
    }
    Ok(Response::empty())
}

async fn key_status(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let status = core.barrier().key_status().ok_or(Error::Sealed)?;
    Ok(legacy(obj(json!({
        "term": status.term,
        "install_time": humantime::format_rfc3339_nanos(status.install_time).to_string(),
        "encryptions": status.encryptions,
    }))))
}

async fn rotate(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let term = core.barrier().rotate().await?;
    tracing::info!(term, "core: installed new encryption key");
    Ok(Response::empty())
}

async fn rotate_root(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    core.barrier().rotate_root().await?;
    tracing::info!("core: installed a new root key");
    Ok(Response::empty())
}

fn table_listing(entries: &[crate::mount::MountEntry]) -> Data {
    entries
        .iter()
        .map(|e| (e.path.clone(), e.to_api()))
        .collect()
}

async fn list_table(s: S, ctx: &Ctx, table: Table) -> Result<Response> {
    let core = s.core()?;
    let tenant = core.request_tenant(&ctx.extensions)?;
    let entries = core.mount_table(&tenant, table).await?;
    Ok(legacy(table_listing(&entries)))
}

async fn mounts_list(s: S, ctx: Ctx) -> Result<Response> {
    list_table(s, &ctx, Table::Mounts).await
}

async fn auth_list(s: S, ctx: Ctx) -> Result<Response> {
    list_table(s, &ctx, Table::Auth).await
}

fn table_of(ctx: &Ctx) -> Table {
    if ctx.request.path.starts_with("auth") {
        Table::Auth
    } else {
        Table::Mounts
    }
}

/// The mount path of a `mounts/:path`, `auth/:path`, tune or
/// `internal/ui/mounts/:path` request, as given.
#[derive(Deserialize)]
struct MountPath {
    #[serde(default)]
    path: String,
}

/// The normalised mount path of the request.
fn mount_path(ctx: &Ctx) -> Result<String> {
    crate::mount::normalize_mount_path(&ctx.decode::<MountPath>()?.path)
}

async fn mount_read(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let table = table_of(&ctx);
    let path = mount_path(&ctx)?;
    let entry = core
        .mount_table(&*core.request_tenant(&ctx.extensions)?, table)
        .await?
        .into_iter()
        .find(|e| e.path == path)
        .ok_or_else(|| match table {
            Table::Mounts => Error::bad_request(format!("No secret engine mount at {path}")),
            Table::Auth => Error::bad_request(format!("No auth engine at auth/{path}")),
        })?;
    Ok(legacy(obj(entry.to_api())))
}

/// Reads a string list that Vault accepts as an array or a comma string.
fn string_list(v: &Value, name: &str) -> Result<Vec<String>> {
    match v {
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect()),
        Value::Array(a) => a
            .iter()
            .map(|i| {
                weak_string(i)
                    .ok_or_else(|| Error::bad_request(format!("{name} must be a list of strings")))
            })
            .collect(),
        // Go's weak decoding: a lone scalar is a list of one, an empty map
        // an empty list.
        Value::Number(_) | Value::Bool(_) => Ok(weak_string(v).into_iter().collect()),
        Value::Object(m) if m.is_empty() => Ok(Vec::new()),
        Value::Null => Ok(Vec::new()),
        _ => Err(Error::bad_request(format!(
            "{name} must be a list of strings"
        ))),
    }
}

fn ttl_value(v: &Value, name: &str) -> Result<u64> {
    if let Value::String(s) = v {
        if s.is_empty() || s == "system" {
            return Ok(0);
        }
    }
    duration::duration_from_json(v)
        .map(|d| d.as_secs())
        .map_err(|_| Error::bad_request(format!("unable to parse {name}: invalid duration")))
}

/// Options are string-valued in Vault (`{"version": "2"}`).
fn options_value(v: &Value) -> Result<Option<Map<String, Value>>> {
    if v.is_null() {
        return Ok(None);
    }
    // OpenBao's `options` is a `TypeKVPairs` field: an object, or
    // `key=value` strings.
    let pairs = strongroom_sdk::framework::kv_pairs("options", v)?;
    Ok(Some(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    ))
}

/// OpenBao's 400 for a mount `config` whose values do not decode.
fn bad_mount_config() -> Error {
    Error::bad_request("unable to convert given mount config information")
}

fn tune_from(config: &Map<String, Value>) -> Result<Tune> {
    let mut t = Tune::default();
    for (k, v) in config {
        match k.as_str() {
            "default_lease_ttl" => t.default_lease_ttl = Some(ttl_value(v, k)?),
            "max_lease_ttl" => t.max_lease_ttl = Some(ttl_value(v, k)?),
            "description" => {
                t.description = Some(
                    weak_string(v)
                        .ok_or_else(|| Error::bad_request("description must be a string"))?,
                )
            }
            "listing_visibility" => {
                t.listing_visibility = Some(
                    v.as_str()
                        .ok_or_else(|| Error::bad_request("listing_visibility must be a string"))?
                        .to_string(),
                )
            }
            "token_type" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| Error::bad_request("token_type must be a string"))?;
                if !matches!(
                    s,
                    "default-service" | "default-batch" | "service" | "batch" | "default"
                ) {
                    return Err(Error::bad_request(format!("invalid token type {s:?}")));
                }
                t.token_type = Some(s.to_string());
            }
            "passthrough_request_headers" => {
                t.passthrough_request_headers = Some(string_list(v, k)?)
            }
            "allowed_response_headers" => t.allowed_response_headers = Some(string_list(v, k)?),
            "audit_non_hmac_request_keys" => {
                t.audit_non_hmac_request_keys = Some(string_list(v, k)?)
            }
            "audit_non_hmac_response_keys" => {
                t.audit_non_hmac_response_keys = Some(string_list(v, k)?)
            }
            "options" => t.options = options_value(v)?,
            "force_no_cache" | "plugin_version" | "user_lockout_config" => {}
            _ => {}
        }
    }
    Ok(t)
}

/// The parameters of `POST mounts/:path` and `POST auth/:path` the handler
/// reads through their fields (`options` is checked from the raw body).
#[derive(Deserialize)]
struct MountWrite {
    #[serde(default)]
    path: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    description: String,
    config: Option<Map<String, Value>>,
}

async fn mount_write(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let table = table_of(&ctx);
    let MountWrite {
        path,
        mut kind,
        description,
        config: raw_config,
    } = ctx.decode()?;
    if kind.is_empty() {
        return Err(Error::bad_request(
            "backend type must be specified as a string",
        ));
    }
    let mut options = options_value(ctx.request.data.get("options").unwrap_or(&Value::Null))?;
    // `kv-v2` is Vault's alias for `kv` with version 2.
    if kind == "kv-v2" {
        kind = "kv".into();
        options
            .get_or_insert_with(Map::new)
            .insert("version".into(), Value::from("2"));
    }
    // OpenBao stores an auth method enabled without options with `{}`.
    if table == Table::Auth && options.is_none() {
        options = Some(Map::new());
    }
    let raw_config = raw_config.unwrap_or_default();
    let tune = tune_from(&raw_config)?;
    let mut config = MountConfig {
        default_lease_ttl: tune.default_lease_ttl.unwrap_or(0),
        max_lease_ttl: tune.max_lease_ttl.unwrap_or(0),
        force_no_cache: match raw_config.get("force_no_cache") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => parse_go_bool(s).ok_or_else(bad_mount_config)?,
            // OpenBao's answer when the config does not decode.
            Some(_) => return Err(bad_mount_config()),
        },
        listing_visibility: tune.listing_visibility.unwrap_or_default(),
        passthrough_request_headers: tune.passthrough_request_headers.unwrap_or_default(),
        allowed_response_headers: tune.allowed_response_headers.unwrap_or_default(),
        audit_non_hmac_request_keys: tune.audit_non_hmac_request_keys.unwrap_or_default(),
        audit_non_hmac_response_keys: tune.audit_non_hmac_response_keys.unwrap_or_default(),
        token_type: tune.token_type,
    };
    if table == Table::Auth && config.token_type.is_none() {
        config.token_type = Some("default-service".into());
    }
    let max = if config.max_lease_ttl == 0 {
        core.config().ttls.max.as_secs()
    } else {
        config.max_lease_ttl
    };
    if config.default_lease_ttl > max {
        return Err(Error::bad_request(
            "backend max lease TTL cannot be less than default lease TTL",
        ));
    }
    let tenant = core.request_tenant(&ctx.extensions)?;
    core.mount(&tenant, table, &path, &kind, &description, config, options)
        .await?;
    Ok(Response::empty())
}

async fn mount_delete(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let MountPath { path } = ctx.decode()?;
    let tenant = core.request_tenant(&ctx.extensions)?;
    core.unmount(&tenant, table_of(&ctx), &path).await?;
    Ok(Response::empty())
}

async fn tune_read(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let table = table_of(&ctx);
    let path = mount_path(&ctx)?;
    let entry = core
        .mount_table(&*core.request_tenant(&ctx.extensions)?, table)
        .await?
        .into_iter()
        .find(|e| e.path == path)
        .ok_or_else(|| {
            // OpenBao names an auth mount by its full path.
            let full = match table {
                Table::Auth => format!("auth/{path}"),
                Table::Mounts => path.clone(),
            };
            Error::bad_request(format!("cannot fetch sysview for path {full:?}"))
        })?;
    let (default_ttl, max_ttl) = core.effective_ttls(&entry);
    let mut data = obj(json!({
        "description": entry.description,
        "default_lease_ttl": default_ttl,
        "max_lease_ttl": max_ttl,
        "force_no_cache": entry.config.force_no_cache,
    }));
    // As OpenBao: no `options` key when there are none.
    if let Some(o) = entry.options.as_ref().filter(|o| !o.is_empty()) {
        data.insert("options".into(), Value::Object(o.clone()));
    }
    data.extend(entry.config.optional_fields());
    Ok(legacy(data))
}

async fn tune_write(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let MountPath { path } = ctx.decode()?;
    let tune = tune_from(&ctx.request.data)?;
    let table = table_of(&ctx);
    // A KV mount tuned from version 1 to 2 is upgraded: OpenBao says so.
    let version = |o: Option<&Map<String, Value>>| {
        o.and_then(|o| o.get("version"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let upgrading = match (table, version(tune.options.as_ref())) {
        (Table::Mounts, Some(new)) if new == "2" => core
            .mount_table(&*core.request_tenant(&ctx.extensions)?, table)
            .await?
            .iter()
            .find(|e| e.path.trim_end_matches('/') == path.trim_matches('/'))
            .is_some_and(|e| {
                e.kind == "kv"
                    && matches!(
                        version(e.options.as_ref()).as_deref(),
                        None | Some("" | "1")
                    )
            }),
        _ => false,
    };
    let tenant = core.request_tenant(&ctx.extensions)?;
    core.tune(&tenant, table, &path, tune).await?;
    if upgrading {
        return Ok(Response::empty().with_warning(
            "Upgrading mount from version 1 to version 2. This mount will be unavailable for a brief period and will resume service shortly.",
        ));
    }
    Ok(Response::empty())
}

/// The caller's ACL for the `sys/internal/ui/mounts*` endpoints, which
/// the pipeline does not authorize: `Ok(None)` without a token, 403 for a
/// token that does not resolve (OpenBao's `fetchACLTokenEntryAndEntity`).
/// The caller's scope in the request's namespace (`None`: no token). A
/// token from outside the namespace reaches nothing.
async fn caller_scope(
    core: &Core,
    tenant: &Tenant,
    ctx: &Ctx,
) -> Result<Option<crate::node::tenant::Scope>> {
    let Some(t) = ctx
        .request
        .client_token
        .as_ref()
        .filter(|t| !t.0.is_empty())
    else {
        return Ok(None);
    };
    let unsealed = core.active()?;
    let entry = unsealed
        .tokens
        .lookup(&t.0)
        .await?
        .ok_or(Error::PermissionDenied)?;
    Ok(Some(
        core.token_scope(&unsealed, &entry, tenant)
            .await?
            .ok_or(Error::PermissionDenied)?,
    ))
}

/// `sys/internal/ui/mounts`: the mounts the caller may see. A mount tuned
/// `listing_visibility=unauth` is listed to everyone; with a token, every
/// mount the token can reach at all (OpenBao's rule, see
/// [`strongroom_policy::Acl::has_mount_access`]) is listed in full;
/// without one, visible mounts show only type, description and options.
async fn ui_mounts(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let tenant = core.request_tenant(&ctx.extensions)?;
    let acl = caller_scope(&core, &tenant, &ctx).await?;
    let show = |e: &crate::mount::MountEntry| -> Option<Value> {
        let visible = e.config.listing_visibility == "unauth"
            || acl
                .as_ref()
                .is_some_and(|a| a.has_mount_access(&e.route_path()));
        if !visible {
            return None;
        }
        if acl.is_some() {
            return Some(e.to_api());
        }
        let api = e.to_api();
        Some(json!({
            "type": api.get("type").cloned().unwrap_or(Value::Null),
            "description": api.get("description").cloned().unwrap_or(Value::Null),
            "options": api.get("options").cloned().unwrap_or(Value::Null),
        }))
    };
    let mut secret = Data::new();
    for e in core.mount_table(&tenant, Table::Mounts).await? {
        if let Some(v) = show(&e) {
            secret.insert(e.path.clone(), v);
        }
    }
    let mut auth = Data::new();
    for e in core.mount_table(&tenant, Table::Auth).await? {
        if let Some(v) = show(&e) {
            auth.insert(e.path.clone(), v);
        }
    }
    Ok(Response::data(obj(json!({"auth": auth, "secret": secret}))))
}

/// `sys/internal/ui/mounts/<path>`: the mount serving `path`, for a token
/// that can reach that mount at all; no ACL check of this path itself (the
/// CLI's `kv` commands call it with least-privilege tokens). Unknown paths
/// and unreachable mounts answer the same 403, so mounts cannot be probed.
async fn ui_mount(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let MountPath { path } = ctx.decode()?;
    let path = path.trim_start_matches('/');
    if path.is_empty() {
        return Err(Error::bad_request("path not set"));
    }
    let denied = || {
        Error::Forbidden(format!(
            "preflight capability check returned 403, please ensure client's policies grant access to path {:?}",
            format!("{}/", path.trim_end_matches('/'))
        ))
    };
    let here = core.request_tenant(&ctx.extensions)?;
    // The path may lead into a child namespace (`ns2/kv/app` from `ns1/`).
    let active = core.active()?;
    let (tenant, relative) = active
        .namespaces
        .resolve(&here.path, path)
        .ok_or_else(denied)?;
    let acl = caller_scope(&core, &tenant, &ctx)
        .await?
        .ok_or(Error::PermissionDenied)?;
    let entry = core
        .mount_for_path(&tenant, relative.as_str())?
        .ok_or_else(denied)?;
    if !acl.has_mount_access(&entry.route_path()) {
        return Err(denied());
    }
    let mut data = obj(entry.to_api());
    // As OpenBao answers: the path within its table (`approle/`, not
    // `auth/approle/`) for a mount of the request's namespace, the full
    // path from the root (`ns1/ns2/kv/`) for one in a child namespace.
    let shown = if tenant.id == here.id {
        entry.path.clone()
    } else {
        tenant.full_path(&entry.route_path())
    };
    data.insert("path".into(), json!(shown));
    let (default_ttl, _max_ttl) = core.effective_ttls(&entry);
    if let Some(c) = data.get_mut("config").and_then(Value::as_object_mut) {
        c.insert(
            "default_lease_ttl".into(),
            json!(entry.config.default_lease_ttl.min(default_ttl)),
        );
    }
    Ok(Response::data(data))
}

/// The parameters of `sys/capabilities`, `-self` and `-accessor`.
#[derive(Deserialize)]
struct CapabilitiesParams {
    #[serde(default)]
    token: String,
    #[serde(default)]
    accessor: String,
    paths: Option<Vec<String>>,
    /// The legacy single path (the first of the list given).
    path: Option<Vec<String>>,
}

/// `sys/capabilities*`: the capabilities a token has on each path, in
/// OpenBao's shape (one key per path, and `capabilities` for the first).
async fn capabilities_of(
    core: &Core,
    tenant: &Tenant,
    token: Option<Arc<crate::token::TokenEntry>>,
    params: CapabilitiesParams,
    always_summary: bool,
) -> Result<Response> {
    let token = token.ok_or_else(|| Error::bad_request("invalid token"))?;
    let mut paths = params.paths.unwrap_or_default();
    // The legacy `path` parameter also gets a `capabilities` key.
    let legacy_path = params.path.and_then(|p| p.into_iter().next());
    if let Some(p) = &legacy_path {
        paths.insert(0, p.clone());
    }
    paths.retain(|p| !p.is_empty());
    if paths.is_empty() {
        return Err(Error::bad_request("paths must be supplied"));
    }
    let unsealed = core.active()?;
    let scope = core.token_scope(&unsealed, &token, tenant).await?;
    let caps = |path: &str| -> Vec<String> {
        match &scope {
            // Outside the token's namespace: nothing.
            None => vec!["deny".to_string()],
            Some(scope) => scope.capabilities(path),
        }
    };
    let mut data = Data::new();
    for p in &paths {
        data.insert(p.clone(), json!(caps(p)));
    }
    // OpenBao: sys/capabilities and -accessor always add `capabilities` for
    // the first path; -self only when the legacy `path` was given.
    if let Some(p) = legacy_path.as_ref().or(always_summary.then(|| &paths[0])) {
        data.insert("capabilities".into(), json!(caps(p)));
    }
    Ok(legacy(data))
}

async fn capabilities(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let params: CapabilitiesParams = ctx.decode()?;
    let entry = core.active()?.tokens.lookup(&params.token).await?;
    let tenant = core.request_tenant(&ctx.extensions)?;
    capabilities_of(&core, &tenant, entry, params, true).await
}

async fn capabilities_self(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let params: CapabilitiesParams = ctx.decode()?;
    let mut token = params.token.clone();
    if token.is_empty() {
        token = ctx
            .request
            .client_token
            .as_ref()
            .map(|t| t.0.clone())
            .unwrap_or_default();
    }
    let entry = core.active()?.tokens.lookup(&token).await?;
    let tenant = core.request_tenant(&ctx.extensions)?;
    capabilities_of(&core, &tenant, entry, params, false).await
}

async fn capabilities_accessor(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let params: CapabilitiesParams = ctx.decode()?;
    let entry = core
        .active()?
        .tokens
        .lookup_accessor(&params.accessor)
        .await?
        .ok_or_else(|| Error::bad_request("invalid accessor"))?;
    let tenant = core.request_tenant(&ctx.extensions)?;
    capabilities_of(&core, &tenant, Some(entry), params, true).await
}

fn capability_fields() -> Vec<Field> {
    vec![
        Field::new(
            "token",
            FieldType::String,
            "Token for which capabilities are being queried.",
        ),
        Field::new(
            "accessor",
            FieldType::String,
            "Accessor of the token for which capabilities are being queried.",
        ),
        Field::new("path", FieldType::CommaStringSlice, "Use 'paths' instead."),
        Field::new(
            "paths",
            FieldType::CommaStringSlice,
            "Paths on which capabilities are being queried.",
        ),
    ]
}

/// The policy name of a `policy/:name` or `policies/acl/:name` request.
#[derive(Deserialize)]
struct PolicyName {
    #[serde(default)]
    name: String,
}

/// The parameters of a policy write.
#[derive(Deserialize)]
struct PolicyWrite {
    #[serde(default)]
    name: String,
    #[serde(default)]
    policy: String,
    /// The deprecated alias of `policy` (`sys/policy` only).
    #[serde(default)]
    rules: String,
    cas: Option<i64>,
    allow_slashes_in_identity_templates: Option<bool>,
    allow_wildcards_in_identity_templates: Option<bool>,
}

/// The normalised policy name of the request.
fn policy_name(ctx: &Ctx) -> Result<String> {
    strongroom_policy::store::normalize_name(&ctx.decode::<PolicyName>()?.name)
}

fn stored_policy_data(p: &strongroom_policy::store::StoredPolicy, text_key: &str) -> Data {
    let mut d = obj(json!({
        "allow_slashes_in_identity_templates": p.allow_slashes_in_identity_templates,
        "allow_wildcards_in_identity_templates": p.allow_wildcards_in_identity_templates,
        "cas_required": p.cas_required,
        "name": p.name,
        "version": p.version,
    }));
    d.insert(text_key.into(), json!(p.policy));
    if !p.modified.is_empty() {
        d.insert("modified".into(), json!(p.modified));
    }
    d
}

/// The policy store of the request's namespace.
fn policies(s: &S, ctx: &Ctx) -> Result<Arc<strongroom_policy::store::PolicyStore>> {
    Ok(s.core()?.request_tenant(&ctx.extensions)?.policies.clone())
}

/// The policy names of the request's namespace: `root` is the root
/// namespace's only (OpenBao lists it nowhere else).
async fn policy_names(s: &S, ctx: &Ctx) -> Result<Vec<String>> {
    let tenant = s.core()?.request_tenant(&ctx.extensions)?;
    let mut names = tenant.policies.list().await?;
    if !tenant.is_root() {
        names.retain(|n| n != "root");
    }
    Ok(names)
}

async fn policy_list(s: S, ctx: Ctx) -> Result<Response> {
    let names = policy_names(&s, &ctx).await?;
    Ok(legacy(obj(json!({"keys": names, "policies": names}))))
}

async fn policies_acl_list(s: S, ctx: Ctx) -> Result<Response> {
    let names = policy_names(&s, &ctx).await?;
    Ok(Response::data(obj(json!({"keys": names}))))
}

async fn policy_read(s: S, ctx: Ctx) -> Result<Response> {
    let name = policy_name(&ctx)?;
    let p = policies(&s, &ctx)?.get(&name).await?;
    let p = p.ok_or(Error::NotFound(None))?;
    if ctx.request.path.starts_with("policies/") {
        Ok(Response::data(stored_policy_data(&p, "policy")))
    } else {
        Ok(legacy(stored_policy_data(&p, "rules")))
    }
}

async fn policy_write(s: S, ctx: Ctx) -> Result<Response> {
    let PolicyWrite {
        name,
        policy: mut text,
        rules,
        cas,
        allow_slashes_in_identity_templates,
        allow_wildcards_in_identity_templates,
    } = ctx.decode()?;
    let name = strongroom_policy::store::normalize_name(&name)?;
    let mut resp = Response::empty();
    if text.is_empty() && !ctx.request.path.starts_with("policies/") {
        text = rules;
        if !text.is_empty() {
            resp = resp.with_warning("'rules' is deprecated, please use 'policy' instead");
        }
    }
    if text.is_empty() {
        return Err(Error::bad_request(
            "'policy' parameter not supplied or empty",
        ));
    }
    let cas = match cas {
        Some(c) if c < 0 => None,
        Some(c) => Some(c as u64),
        None => None,
    };
    let options = strongroom_policy::store::TemplateOptions {
        allow_slashes: allow_slashes_in_identity_templates,
        allow_wildcards: allow_wildcards_in_identity_templates,
    };
    policies(&s, &ctx)?
        .put_with(&name, &text, cas, options)
        .await?;
    Ok(resp)
}

async fn policy_delete(s: S, ctx: Ctx) -> Result<Response> {
    let name = policy_name(&ctx)?;
    policies(&s, &ctx)?.delete(&name).await?;
    Ok(Response::empty())
}

fn policy_fields() -> Vec<Field> {
    vec![
        Field::new("name", FieldType::String, "The name of the policy."),
        Field::new(
            "policy",
            FieldType::String,
            "The rules of the policy, in HCL or JSON.",
        ),
        Field::new(
            "rules",
            FieldType::String,
            "Deprecated alias of policy (sys/policy only).",
        ),
        Field::new(
            "cas",
            FieldType::Int,
            "Write only if the current version equals this (0: only if absent).",
        ),
        Field::new(
            "allow_slashes_in_identity_templates",
            FieldType::Bool,
            "Whether a value substituted into a templated path may hold '/'.",
        ),
        Field::new(
            "allow_wildcards_in_identity_templates",
            FieldType::Bool,
            "Whether a value substituted into a templated path may hold '*' or '+'.",
        ),
    ]
}

async fn openapi(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let tenant = core.request_tenant(&ctx.extensions)?;
    Ok(Response::raw(200, core.openapi(&tenant)?))
}

fn path_field() -> Field {
    Field::new("path", FieldType::String, "The path of the mount.")
}

fn mount_fields() -> Vec<Field> {
    vec![
        path_field(),
        Field::new("type", FieldType::String, "The type of the backend."),
        Field::new(
            "description",
            FieldType::String,
            "User-friendly description.",
        ),
        Field::new(
            "config",
            FieldType::Map,
            "Configuration for this mount, such as default_lease_ttl and max_lease_ttl.",
        ),
        Field::new(
            "options",
            FieldType::KvPairs,
            "The options to pass into the backend, e.g. version for kv.",
        ),
        Field::new(
            "local",
            FieldType::Bool,
            "Mark the mount as local (not replicated).",
        ),
        Field::new(
            "seal_wrap",
            FieldType::Bool,
            "Whether to turn on seal wrapping for the mount.",
        ),
        Field::new(
            "external_entropy_access",
            FieldType::Bool,
            "Whether to give the mount access to external entropy.",
        ),
        Field::new(
            "plugin_name",
            FieldType::String,
            "Name of the plugin (deprecated, use type).",
        ),
        Field::new(
            "plugin_version",
            FieldType::String,
            "The semantic version of the plugin to use.",
        ),
    ]
}

fn tune_fields() -> Vec<Field> {
    vec![
        path_field(),
        Field::new("default_lease_ttl", FieldType::String, "The default lease TTL for this mount."),
        Field::new("max_lease_ttl", FieldType::String, "The max lease TTL for this mount."),
        Field::new("description", FieldType::String, "User-friendly description for this mount."),
        Field::new("options", FieldType::KvPairs, "The options to pass into the backend."),
        Field::new("listing_visibility", FieldType::String, "Whether to show this mount in the UI-specific listing endpoint: \"unauth\" or \"hidden\"."),
        Field::new("passthrough_request_headers", FieldType::CommaStringSlice, "Request headers passed to the backend."),
        Field::new("allowed_response_headers", FieldType::CommaStringSlice, "Response headers the backend may set."),
        Field::new("audit_non_hmac_request_keys", FieldType::CommaStringSlice, "Request keys not HMAC'd by audit devices."),
        Field::new("audit_non_hmac_response_keys", FieldType::CommaStringSlice, "Response keys not HMAC'd by audit devices."),
        Field::new("token_type", FieldType::String, "The type of token to issue (auth mounts)."),
        Field::new("force_no_cache", FieldType::Bool, "Disable caching for this mount."),
        Field::new("plugin_version", FieldType::String, "The semantic version of the plugin to use."),
    ]
}

/// The system backend bound to `core`.
pub fn backend(core: Weak<Core>) -> Backend<SysState> {
    let health_fields = [
        "standbyok",
        "perfstandbyok",
        "activecode",
        "standbycode",
        "drsecondarycode",
        "haunhealthycode",
        "performancestandbycode",
        "removedcode",
        "sealedcode",
        "uninitcode",
    ]
    .into_iter()
    .map(|n| Field::new(n, FieldType::String, "Health check query parameter."))
    .collect();
    let paths = vec![
        Path::new("init")
            .fields(vec![
                Field::new("secret_shares", FieldType::Int, "Number of key shares to split the unseal key into."),
                Field::new("secret_threshold", FieldType::Int, "Number of shares required to reconstruct the unseal key."),
                Field::new("pgp_keys", FieldType::CommaStringSlice, "Base64 binary PGP public keys, one per share, to encrypt the shares to (in order)."),
                Field::new("root_token_pgp_key", FieldType::String, "A base64 binary PGP public key to encrypt the initial root token to."),
                Field::new("stored_shares", FieldType::Int, "Unused with Shamir seals."),
                Field::new("recovery_shares", FieldType::Int, "Unused with Shamir seals."),
                Field::new("recovery_threshold", FieldType::Int, "Unused with Shamir seals."),
                Field::new("recovery_pgp_keys", FieldType::CommaStringSlice, "Unused with Shamir seals."),
            ])
            .op(Operation::Read, handler(init_read), "Returns the initialization status of Vault.")
            .op(Operation::Update, handler(init_write), "Initialize a new Vault.")
            .help("Initializes or returns the initialization status of the Vault.", "GET reports whether the server is initialized; PUT initializes it and returns the unseal key shares and the root token, once."),
        Path::new("seal-status")
            .op(Operation::Read, handler(seal_status), "Check the seal status of a Vault.")
            .help("Returns the seal status of the Vault.", "Returns whether the server is initialized and sealed, the threshold and shares, and the unseal progress."),
        Path::new("unseal")
            .fields(vec![
                Field::new("key", FieldType::String, "Specifies a single unseal key share, hex or base64."),
                Field::new("reset", FieldType::Bool, "Discard the unseal progress."),
                Field::new("migrate", FieldType::Bool, "Seal migration (not supported)."),
            ])
            .decodes::<UnsealParams>()
            .op(Operation::Update, handler(unseal), "Unseal the Vault.")
            .help("Unseals the Vault.", "Submits one unseal key share; once the threshold is reached the server unseals."),
        Path::new("seal")
            .op(Operation::Update, handler(seal), "Seal the Vault.")
            .help("Seals the Vault.", "Seals the server: all keys are dropped from memory and every request but the seal endpoints answers 503 until unsealed."),
        Path::new("health")
            .fields(health_fields)
            .decodes::<HealthParams>()
            .op(Operation::Read, handler(health), "Returns the health status of Vault.")
            .help("Checks the health of the Vault.", "Returns 200 when initialized, unsealed and active, 501 when not initialized and 503 when sealed; each code can be changed with a query parameter."),
        Path::new("leader")
            .op(Operation::Read, handler(leader), "Returns the high availability status and current leader instance of Vault.")
            .help("Check the high availability status and current leader of Vault.", "Reports whether high availability is enabled and which node is active."),
        Path::new("ha-status")
            .op(Operation::Read, handler(ha_status), "Check the HA status of a Vault cluster.")
            .help("Check the HA status of a Vault cluster.", "Lists the active node and the standbys that reported to it since it became active."),
        Path::new("step-down")
            .op(Operation::Update, handler(step_down), "Cause the node to give up active status.")
            .help("Cause the node to give up active status.", "The active node gives up the HA lock and another node takes over; this one competes again after a pause. Requires sudo."),
        Path::new("key-status")
            .op(Operation::Read, handler(key_status), "Provides information about the backend encryption key.")
            .help("Provides information about the backend encryption key.", "Returns the active key term, its install time and the number of encryptions under it."),
        Path::new("rotate")
            .op(Operation::Update, handler(rotate), "Rotates the backend encryption key used to persist data.")
            .help("Rotates the backend encryption key used to persist data.", "Adds a new key term to the keyring; new writes use it, older data stays readable."),
        Path::new("rotate/keyring")
            .op(Operation::Update, handler(rotate), "Rotates the backend encryption key used to persist data.")
            .help("Rotates the backend encryption key used to persist data.", "OpenBao 2.x's name for sys/rotate: adds a new key term to the keyring."),
        Path::new("rotate/root")
            .op(Operation::Update, handler(rotate_root), "Rotates the root key without key shares.")
            .help("Rotates the root key.", "Generates a new root key, re-encrypts the keyring under it and wraps it under the unseal key in force: the unseal key shares stay valid. Requires sudo."),
        Path::new("mounts")
            .op(Operation::Read, handler(mounts_list), "List the currently mounted backends.")
            .help("List the currently mounted backends.", "Lists every secrets engine with its type, accessor, configuration and options."),
        Path::new("mounts/{path+}/tune")
            .fields(tune_fields())
            .decodes::<MountPath>()
            .op(Operation::Read, handler(tune_read), "Read the tuning of a mount.")
            .op(Operation::Update, handler(tune_write), "Tune a mount.")
            .help("Tune backend configuration parameters for this mount.", "Reads or changes the lease TTLs, description, options and header settings of a mount."),
        Path::new("mounts/{path+}")
            .fields(mount_fields())
            .decodes::<MountPath>()
            .decodes::<MountWrite>()
            .op(Operation::Read, handler(mount_read), "Read the configuration of the secret engine at the given path.")
            .op(Operation::Update, handler(mount_write), "Enable a new secrets engine at the given path.")
            .op(Operation::Delete, handler(mount_delete), "Disable the mount point specified at the given path.")
            .help("Mount a new backend at a new path.", "POST mounts a secrets engine of the given type; DELETE unmounts it and deletes its data; GET reads its configuration."),
        Path::new("auth")
            .op(Operation::Read, handler(auth_list), "List the currently enabled credential backends.")
            .help("List the currently enabled credential backends.", "Lists every auth method with its type, accessor, configuration and options."),
        Path::new("auth/{path+}/tune")
            .fields(tune_fields())
            .decodes::<MountPath>()
            .op(Operation::Read, handler(tune_read), "Reads the given auth path's configuration.")
            .op(Operation::Update, handler(tune_write), "Tune configuration parameters for a given auth path.")
            .help("Tune the configuration parameters for an auth path.", "Reads or changes the lease TTLs, description, token type and header settings of an auth method."),
        Path::new("auth/{path+}")
            .fields(mount_fields())
            .decodes::<MountPath>()
            .decodes::<MountWrite>()
            .op(Operation::Read, handler(mount_read), "Read the configuration of the auth engine at the given path.")
            .op(Operation::Update, handler(mount_write), "Enables a new auth method.")
            .op(Operation::Delete, handler(mount_delete), "Disable the auth method at the given auth path.")
            .help("Enable a new credential backend with a name.", "POST enables an auth method of the given type; DELETE disables it and deletes its data."),
        Path::new("internal/ui/mounts")
            .op(Operation::Read, handler(ui_mounts), "Lists all enabled and visible auth and secrets mounts.")
            .help("Information about mounts returned according to their tuned visibility.", "Without a token only mounts tuned with listing_visibility=unauth are listed."),
        Path::new("internal/ui/mounts/{path+}")
            .fields(vec![path_field()])
            .decodes::<MountPath>()
            .op(Operation::Read, handler(ui_mount), "Return information about the given mount.")
            .help("Information about the mount serving a path.", "Returns the mount that serves the given path, with its type and options; the CLI's kv commands use it."),
        Path::new("capabilities")
            .fields(capability_fields())
            .decodes::<CapabilitiesParams>()
            .op(Operation::Update, handler(capabilities), "Fetches the capabilities of the given token on the given path.")
            .help("Fetches the capabilities of the given token on the given path.", "Returns, for each path, the capabilities the token's policies grant there (root for a root token, deny when nothing matches)."),
        Path::new("capabilities-self")
            .fields(capability_fields())
            .decodes::<CapabilitiesParams>()
            .op(Operation::Update, handler(capabilities_self), "Fetches the capabilities of the calling token on the given path.")
            .help("Fetches the capabilities of the calling token on the given path.", "Like sys/capabilities, for the token that makes the request."),
        Path::new("capabilities-accessor")
            .fields(capability_fields())
            .decodes::<CapabilitiesParams>()
            .op(Operation::Update, handler(capabilities_accessor), "Fetches the capabilities of the token associated with the given accessor.")
            .help("Fetches the capabilities of the token associated with the given accessor.", "Like sys/capabilities, naming the token by its accessor."),
        Path::new("policy/?")
            .op(Operation::Read, handler(policy_list), "List the configured access control policies.")
            .op(Operation::List, handler(policy_list), "List the configured access control policies.")
            .help("List the configured access control policies.", "Lists the names of all ACL policies, root and default included (legacy form of sys/policies/acl)."),
        Path::new("policy/{name}")
            .fields(policy_fields())
            .decodes::<PolicyName>()
            .decodes::<PolicyWrite>()
            .op(Operation::Read, handler(policy_read), "Retrieve the policy body for the named policy.")
            .op(Operation::Update, handler(policy_write), "Add a new or update an existing policy.")
            .op(Operation::Delete, handler(policy_delete), "Delete the policy with the given name.")
            .help("Read, write and delete access control policies.", "Legacy form of sys/policies/acl/<name>: reads answer the text as `rules`, writes accept `policy` (or the deprecated `rules`)."),
        Path::new("policies/acl/?")
            .op(Operation::List, handler(policies_acl_list), "List the configured access control policies.")
            .help("List the configured access control policies.", "Lists the names of all ACL policies, root and default included."),
        Path::new("policies/acl/{name}")
            .fields(policy_fields())
            .decodes::<PolicyName>()
            .decodes::<PolicyWrite>()
            .op(Operation::Read, handler(policy_read), "Retrieve information about the named ACL policy.")
            .op(Operation::Update, handler(policy_write), "Add a new or update an existing ACL policy.")
            .op(Operation::Delete, handler(policy_delete), "Delete the ACL policy with the given name.")
            .help("Read, write and delete ACL policies.", "Policies are written in HCL or JSON; `cas` gives check-and-set on the policy's version. The root policy cannot be changed and the default policy cannot be deleted."),
        Path::new("internal/specs/openapi")
            .op(Operation::Read, handler(openapi), "Generate an OpenAPI 3 document of all mounted paths.")
            .help("Generate an OpenAPI 3 document of all mounted paths.", "The document is generated from the declarations of every mounted backend's paths, the same ones that answer requests and ?help=1."),
    ];
    let mut paths = paths;
    paths.extend(wrapping::paths());
    paths.extend(leases::paths());
    paths.extend(namespaces::paths());
    paths.extend(quotas::paths());
    paths.extend(operators::paths());
    paths.extend(remount::paths());
    paths.extend(audit::paths());
    paths.extend(telemetry::paths());
    Backend::new(
        Arc::new(SysState {
            core,
            migrations: Default::default(),
        }),
        paths,
        "The system backend is built-in to Vault and cannot be remounted or\nunmounted. It contains the paths that are used to configure Vault itself\nas well as perform core operations.",
    )
    .special_paths(SpecialPaths {
        unauthenticated: PathSet::new(
            &[
                "init",
                "seal-status",
                "unseal",
                "health",
                "leader",
                "internal/ui/mounts",
                "internal/ui/mounts/*",
                "internal/specs/openapi",
                "wrapping/lookup",
            ]
            .iter()
            .chain(operators::UNAUTHENTICATED)
            .copied()
            .collect::<Vec<_>>(),
        ),
        root: PathSet::new(&[
            "seal",
            "step-down",
            "rotate",
            "rotate/keyring",
            "rotate/root",
            "key-status",
            "auth/*",
            "remount",
            "leases/revoke-prefix/*",
            "leases/revoke-force/*",
            "leases/lookup/*",
        ]
        .iter()
        .chain(audit::ROOT.iter())
        .copied()
        .collect::<Vec<_>>()),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Weak};

    use strongroom_sdk::framework::{BackendRequest, LogicalBackend, MountContext};
    use strongroom_sdk::logical::{Operation, Request};
    use strongroom_sdk::storage::MemoryStorage;

    /// Building the system backend runs `Backend::new`'s check of every
    /// struct its paths declare with `Path::decodes` (a struct reading a
    /// field its path does not declare panics there), and a declared
    /// struct decodes through the backend: the migration id of an unknown
    /// move is looked up, and answered with OpenBao's empty 404.
    #[tokio::test]
    async fn the_system_backend_builds_and_decodes_its_declared_structs() {
        let b = super::backend(Weak::new());
        let resp = b
            .handle(BackendRequest::new(
                Request::new(Operation::Read, "remount/status/no-such-move"),
                MemoryStorage::view("sys/"),
                Arc::new(MountContext::default()),
            ))
            .await
            .unwrap();
        let raw = resp.raw.expect("a bare 404");
        assert_eq!(raw.status, 404);
        assert_eq!(raw.body, serde_json::json!({"errors": []}));
    }
}
