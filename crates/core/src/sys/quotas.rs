//! `sys/quotas`: the rate-limit and lease-count quotas and the quota
//! configuration, in OpenBao's shapes, and their storage in the root
//! namespace's barrier (`core/quotas/...`). The quotas in force live in
//! the active state ([`crate::node::Active::quotas`]); every change here
//! stores the definition, then loads all of them again. What a quota does
//! to a request is [`strongroom_quota`]'s and the pipeline's
//! ([`crate::pipeline::quota`]).
//!
//! Where OpenBao differs, and why:
//! - a write of `sys/quotas/config` changes only the fields it gives (the
//!   issue asks for it); OpenBao resets the others to their zero values
//!   (an empty exempt list, headers and audit off), which makes a write of
//!   one flag silently drop the default exempt paths;
//! - OpenBao 2.7 has no lease-count quotas (`sys/quotas/lease-count` is
//!   an unsupported path there); they take Vault Enterprise's shapes here.

use serde_json::{json, Map, Value};

use super::{SysState, S};
use crate::node::{Active, Core};
use strongroom_quota::{Config, LeaseCount, Quotas, RateLimit, Scope};
use strongroom_sdk::framework::{handler, Ctx, Field, FieldType, Path};
use strongroom_sdk::logical::{Data, Operation, Response};
use strongroom_sdk::{Error, Result};

/// Where the quota configuration is stored.
const CONFIG_KEY: &str = "core/quotas/config";
/// Where rate-limit quotas are stored (`<prefix><name>`).
const RATE_PREFIX: &str = "core/quotas/rate-limit/";
/// Where lease-count quotas are stored (`<prefix><name>`).
const LEASE_PREFIX: &str = "core/quotas/lease-count/";

/// Whether the root-namespace key `key` holds quota definitions (an HA
/// standby then loads them again).
pub(crate) fn is_quota_key(key: &str) -> bool {
    key.starts_with("core/quotas/")
}

/// Loads every stored quota definition and the configuration into `quotas`.
pub(crate) async fn load(core: &Core, quotas: &Quotas) -> Result<()> {
    let config: Config = core.read_json(CONFIG_KEY).await?.unwrap_or_default();
    let mut rate = Vec::new();
    for name in core.view(RATE_PREFIX).list("").await? {
        if let Some(q) = core
            .read_json::<RateLimit>(&format!("{RATE_PREFIX}{name}"))
            .await?
        {
            rate.push(q);
        }
    }
    let mut lease = Vec::new();
    for name in core.view(LEASE_PREFIX).list("").await? {
        if let Some(q) = core
            .read_json::<LeaseCount>(&format!("{LEASE_PREFIX}{name}"))
            .await?
        {
            lease.push(q);
        }
    }
    quotas.set(config, rate, lease);
    Ok(())
}

/// Stores `value` (or deletes it: `None`) under `key`, then loads the
/// quotas in force again.
async fn store<T: serde::Serialize>(
    core: &Core,
    active: &Active,
    key: &str,
    value: Option<&T>,
) -> Result<()> {
    let view = core.view("");
    match value {
        Some(v) => {
            let bytes = serde_json::to_vec(v).map_err(Error::internal)?;
            view.put(key, &bytes).await?;
        }
        None => view.delete(key).await?,
    }
    load(core, &active.quotas).await
}

/// A Go float64 as Go's JSON renders it: an integer when it is one.
fn go_float(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        // Exact: a whole number below 2^53.
        json!(f as i64)
    } else {
        json!(f)
    }
}

fn obj(v: Value) -> Data {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The quota's name from the path, checked.
fn name(ctx: &Ctx) -> Result<String> {
    let name = ctx.fields.str_or_empty("name")?;
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::bad_request("missing quota name"));
    }
    Ok(name)
}

/// A `rate` as OpenBao reads a float64 field.
fn rate(ctx: &Ctx) -> Result<f64> {
    let v = ctx.fields.raw().get("rate");
    let parsed = match v {
        None | Some(Value::Null) => Some(0.0),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(r) if r.is_finite() && r > 0.0 => Ok(r),
        Some(_) => Err(Error::bad_request("'rate' is invalid")),
        None => Err(Error::bad_request(
            "Field validation failed: error converting input for field \"rate\": '' cannot parse value as 'float64': strconv.ParseFloat: invalid syntax",
        )),
    }
}

/// A non-negative duration field in whole seconds.
fn seconds(ctx: &Ctx, field: &str) -> Result<u64> {
    if let Some(Value::Number(n)) = ctx.fields.raw().get(field) {
        if n.as_i64().is_some_and(|i| i < 0) {
            return Err(Error::bad_request(format!(
                "Field validation failed: error converting input for field \"{field}\": cannot provide negative value '{n}'"
            )));
        }
    }
    if let Some(Value::String(s)) = ctx.fields.raw().get(field) {
        if let Some(rest) = s.trim().strip_prefix('-') {
            let shown = rest.trim_end_matches('s');
            return Err(Error::bad_request(format!(
                "Field validation failed: error converting input for field \"{field}\": cannot provide negative value '-{shown}'"
            )));
        }
    }
    Ok(ctx
        .fields
        .get_duration(field)?
        .unwrap_or_default()
        .as_secs())
}

/// Resolves a quota's `path` (from the root namespace): its namespace, the
/// mount below it and the rest, and the path as stored (`secret` becomes
/// `secret/`). An unknown mount is OpenBao's 400.
fn resolve(active: &Active, path: &str, role: &str) -> Result<(String, Scope)> {
    let path = path.trim_start_matches('/');
    let (tenant, relative) = active
        .namespaces
        .resolve("", path)
        .ok_or_else(|| Error::bad_request(format!("invalid mount path {path:?}")))?;
    let relative = relative.as_str().to_string();
    let ns = tenant.path.to_string();
    if relative.is_empty() {
        if !role.is_empty() {
            return Err(Error::bad_request(format!(
                "Mount path {path:?} does not support use with role-based quotas"
            )));
        }
        return Ok((
            ns.clone(),
            Scope {
                namespace: ns,
                ..Scope::default()
            },
        ));
    }
    let routes = tenant.routes.load();
    let (mount, rest) = match routes.lookup(&relative) {
        Some((route, rest)) => (route.prefix.to_string(), rest.to_string()),
        None => return Err(Error::bad_request(format!("invalid mount path {path:?}"))),
    };
    if !role.is_empty() && (!mount.starts_with("auth/") || mount == "auth/token/") {
        return Err(Error::bad_request(format!(
            "Mount path {:?} does not support use with role-based quotas",
            format!("{ns}{mount}")
        )));
    }
    Ok((
        format!("{ns}{mount}{rest}"),
        Scope {
            namespace: ns,
            mount,
            rest,
        },
    ))
}

/// A quota of another name with the same path and role: OpenBao's 400.
fn similar<'a>(
    mut others: impl Iterator<Item = (&'a str, &'a str, &'a str)>,
    name: &str,
    path: &str,
    role: &str,
) -> Result<()> {
    match others.find(|(n, p, r)| *n != name && *p == path && *r == role) {
        Some((n, _, _)) => Err(Error::bad_request(format!(
            "quota rule with similar properties exists under the name {n:?}"
        ))),
        None => Ok(()),
    }
}

fn render_rate(q: &RateLimit) -> Data {
    obj(json!({
        "block_interval": q.block_interval,
        "inheritable": q.inheritable,
        "interval": q.interval,
        "name": q.name,
        "path": q.path,
        "rate": go_float(q.rate),
        "role": q.role,
        "type": "rate-limit",
    }))
}

fn render_lease(q: &LeaseCount) -> Data {
    obj(json!({
        "inheritable": q.inheritable,
        "max_leases": q.max_leases,
        "name": q.name,
        "path": q.path,
        "role": q.role,
        "type": "lease-count",
    }))
}

/// The quotas' names, sorted (OpenBao lists them in no fixed order).
fn names<'a>(all: impl Iterator<Item = &'a str>) -> Result<Response> {
    let mut keys: Vec<String> = all.map(str::to_string).collect();
    keys.sort();
    Response::keys(keys)
}

async fn rate_list(s: S, _ctx: Ctx) -> Result<Response> {
    let active = s.core()?.active_or_standby()?;
    let snapshot = active.quotas.snapshot();
    names(snapshot.rate_limits.iter().map(|(_, q)| q.name.as_str()))
}

async fn rate_read(s: S, ctx: Ctx) -> Result<Response> {
    let active = s.core()?.active_or_standby()?;
    let name = name(&ctx)?;
    let snapshot = active.quotas.snapshot();
    match snapshot.rate_limits.iter().find(|(_, q)| q.name == name) {
        Some((_, q)) => Ok(Response::data(render_rate(q))),
        None => Err(Error::NotFound(None)),
    }
}

async fn rate_write(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let active = core.active()?;
    let name = name(&ctx)?;
    let rate = rate(&ctx)?;
    let interval = seconds(&ctx, "interval")?.max(1);
    let block_interval = seconds(&ctx, "block_interval")?;
    let role = ctx.fields.str_or_empty("role")?;
    let given = ctx.fields.str_or_empty("path")?;
    let (path, scope) = resolve(&active, &given, &role)?;
    let inheritable = ctx
        .fields
        .get_bool("inheritable")?
        .unwrap_or(path.is_empty());
    let snapshot = active.quotas.snapshot();
    similar(
        snapshot
            .rate_limits
            .iter()
            .map(|(_, q)| (q.name.as_str(), q.path.as_str(), q.role.as_str())),
        &name,
        &path,
        &role,
    )?;
    let quota = RateLimit {
        name: name.clone(),
        path,
        scope,
        rate,
        interval,
        block_interval,
        inheritable,
        role,
    };
    store(
        &core,
        &active,
        &format!("{RATE_PREFIX}{name}"),
        Some(&quota),
    )
    .await?;
    Ok(Response::empty())
}

async fn rate_delete(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let active = core.active()?;
    let name = name(&ctx)?;
    store::<RateLimit>(&core, &active, &format!("{RATE_PREFIX}{name}"), None).await?;
    Ok(Response::empty())
}

async fn lease_list(s: S, _ctx: Ctx) -> Result<Response> {
    let active = s.core()?.active_or_standby()?;
    let snapshot = active.quotas.snapshot();
    names(snapshot.lease_counts.iter().map(|q| q.name.as_str()))
}

async fn lease_read(s: S, ctx: Ctx) -> Result<Response> {
    let active = s.core()?.active_or_standby()?;
    let name = name(&ctx)?;
    let snapshot = active.quotas.snapshot();
    match snapshot.lease_counts.iter().find(|q| q.name == name) {
        Some(q) => Ok(Response::data(render_lease(q))),
        None => Err(Error::NotFound(None)),
    }
}

async fn lease_write(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let active = core.active()?;
    let name = name(&ctx)?;
    let max_leases = match ctx.fields.get_int("max_leases")? {
        Some(m) if m > 0 => m.unsigned_abs(),
        _ => return Err(Error::bad_request("'max_leases' is invalid")),
    };
    let role = ctx.fields.str_or_empty("role")?;
    let given = ctx.fields.str_or_empty("path")?;
    let (path, scope) = resolve(&active, &given, &role)?;
    let inheritable = ctx
        .fields
        .get_bool("inheritable")?
        .unwrap_or(path.is_empty());
    let snapshot = active.quotas.snapshot();
    similar(
        snapshot
            .lease_counts
            .iter()
            .map(|q| (q.name.as_str(), q.path.as_str(), q.role.as_str())),
        &name,
        &path,
        &role,
    )?;
    let quota = LeaseCount {
        name: name.clone(),
        path,
        scope,
        max_leases,
        inheritable,
        role,
    };
    store(
        &core,
        &active,
        &format!("{LEASE_PREFIX}{name}"),
        Some(&quota),
    )
    .await?;
    Ok(Response::empty())
}

async fn lease_delete(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let active = core.active()?;
    let name = name(&ctx)?;
    store::<LeaseCount>(&core, &active, &format!("{LEASE_PREFIX}{name}"), None).await?;
    Ok(Response::empty())
}

async fn config_read(s: S, _ctx: Ctx) -> Result<Response> {
    let active = s.core()?.active_or_standby()?;
    let c = active.quotas.snapshot().config.clone();
    Ok(Response::data(obj(json!({
        "enable_rate_limit_audit_logging": c.enable_rate_limit_audit_logging,
        "enable_rate_limit_response_headers": c.enable_rate_limit_response_headers,
        "rate_limit_exempt_paths": c.rate_limit_exempt_paths,
    }))))
}

/// A partial write keeps the fields it does not give (see the module doc).
async fn config_write(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let active = core.active()?;
    let mut c = active.quotas.snapshot().config.clone();
    match ctx.fields.raw().get("rate_limit_exempt_paths") {
        None => {}
        // OpenBao's string-slice field: a lone string is a list of one.
        Some(Value::String(p)) => c.rate_limit_exempt_paths = vec![p.clone()],
        Some(Value::Null) => c.rate_limit_exempt_paths = Vec::new(),
        Some(_) => {
            c.rate_limit_exempt_paths = ctx
                .fields
                .get_strings("rate_limit_exempt_paths")?
                .unwrap_or_default()
        }
    }
    if let Some(b) = ctx.fields.get_bool("enable_rate_limit_audit_logging")? {
        c.enable_rate_limit_audit_logging = b;
    }
    if let Some(b) = ctx.fields.get_bool("enable_rate_limit_response_headers")? {
        c.enable_rate_limit_response_headers = b;
    }
    store(&core, &active, CONFIG_KEY, Some(&c)).await?;
    Ok(Response::empty())
}

fn common_fields() -> Vec<Field> {
    vec![
        Field::new("name", FieldType::String, "The quota's name."),
        Field::new(
            "path",
            FieldType::String,
            "Where the quota applies: empty (global), a namespace (ns1/), a mount (secret/) or a path below a mount (secret/foo).",
        ),
        Field::new("inheritable", FieldType::Bool, "Whether child namespaces inherit the quota."),
        Field::new("role", FieldType::String, "The login role of the auth mount the quota is for."),
    ]
}

/// The `sys/quotas` paths.
pub(super) fn paths() -> Vec<Path<SysState>> {
    let mut rate_fields = common_fields();
    rate_fields.extend([
        Field::new(
            "rate",
            FieldType::String,
            "Requests allowed per interval (a positive number).",
        ),
        // Durations, read by `seconds` (declared as strings so that a
        // negative one gets OpenBao's message rather than the framework's).
        Field::new(
            "interval",
            FieldType::String,
            "The interval of the rate (default 1s).",
        ),
        Field::new(
            "block_interval",
            FieldType::String,
            "How long a client that went over the rate is refused.",
        ),
    ]);
    let mut lease_fields = common_fields();
    lease_fields.push(Field::new(
        "max_leases",
        FieldType::Int,
        "The most leases and tokens that may exist under the path.",
    ));
    vec![
        Path::new("quotas/config")
            .fields(vec![
                Field::new(
                    "rate_limit_exempt_paths",
                    FieldType::CommaStringSlice,
                    "Paths no rate-limit quota applies to.",
                ),
                Field::new("enable_rate_limit_audit_logging", FieldType::Bool, "Audit requests refused by a rate-limit quota."),
                Field::new("enable_rate_limit_response_headers", FieldType::Bool, "Send the X-RateLimit-* headers."),
            ])
            .op(Operation::Read, handler(config_read), "Read the quota configuration.")
            .op(Operation::Update, handler(config_write), "Change the quota configuration (only the fields given).")
            .help("Quota configuration.", "The paths exempt from rate limits, and whether refusals are audited and rate-limit headers sent."),
        Path::new("quotas/rate-limit/?")
            .op(Operation::List, handler(rate_list), "List the rate-limit quotas.")
            .help("List rate-limit quotas.", "The names of the rate-limit quotas."),
        Path::new("quotas/rate-limit/{name}")
            .fields(rate_fields)
            .op(Operation::Read, handler(rate_read), "Read a rate-limit quota.")
            .op(Operation::Update, handler(rate_write), "Create or replace a rate-limit quota.")
            .op(Operation::Delete, handler(rate_delete), "Delete a rate-limit quota.")
            .help("Manage a rate-limit quota.", "A token bucket per client address: rate requests per interval, enforced before authentication."),
        Path::new("quotas/lease-count/?")
            .op(Operation::List, handler(lease_list), "List the lease-count quotas.")
            .help("List lease-count quotas.", "The names of the lease-count quotas."),
        Path::new("quotas/lease-count/{name}")
            .fields(lease_fields)
            .op(Operation::Read, handler(lease_read), "Read a lease-count quota.")
            .op(Operation::Update, handler(lease_write), "Create or replace a lease-count quota.")
            .op(Operation::Delete, handler(lease_delete), "Delete a lease-count quota.")
            .help("Manage a lease-count quota.", "The most leases and tokens that may exist under a path."),
    ]
}
