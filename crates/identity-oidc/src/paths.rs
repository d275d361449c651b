//! The `oidc/*` paths and their handlers, with OpenBao's defaults, checks
//! and messages (asked of `bao server -dev` 2.7.2).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use strongroom_policy::template::{Mode, RenderInput, Template};
use strongroom_sdk::framework::{existence, handler, is_generic_name, Ctx, Field, FieldType, Path};
use strongroom_sdk::identity::IdentityFacts;
use strongroom_sdk::logical::{Data, Operation, Response};
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};

use crate::keys::{self, SigningKey, ALGORITHMS};
use crate::{get_json, put_json, Config, HasOidc};

const CONFIG: &str = "oidc_tokens/config";
const NAMED_KEYS: &str = "oidc_tokens/named_keys/";
const PUBLIC_KEYS: &str = "oidc_tokens/public_keys/";
const ROLES: &str = "oidc_tokens/roles/";
const DEFAULT_KEY: &str = "default";
const DAY: u64 = 86_400;

/// Claims a role template may not set.
const RESERVED_CLAIMS: [&str; 10] = [
    "iat",
    "aud",
    "exp",
    "iss",
    "sub",
    "namespace",
    "nonce",
    "auth_time",
    "at_hash",
    "c_hash",
];

/// One key id of a named key, with its expiry once rotated out.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RingEntry {
    key_id: String,
    /// Unix seconds; `None` while the key signs or is next.
    #[serde(default)]
    expire_at: Option<i64>,
}

/// A named key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NamedKey {
    algorithm: String,
    verification_ttl: u64,
    rotation_period: u64,
    #[serde(default)]
    key_ring: Vec<RingEntry>,
    #[serde(default)]
    signing_key: Option<SigningKey>,
    #[serde(default)]
    next_signing_key: Option<SigningKey>,
    /// Unix seconds.
    next_rotation: i64,
    #[serde(default)]
    allowed_client_ids: Vec<String>,
}

/// A role as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Role {
    token_ttl: u64,
    key: String,
    #[serde(default)]
    template: String,
    client_id: String,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn secs(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn data(v: Value) -> Response {
    match v {
        Value::Object(m) => Response::data(m),
        _ => Response::empty(),
    }
}

/// The `name` capture, refused (404) unless a generic name as OpenBao's
/// route regex demands.
fn name(c: &Ctx) -> Result<String> {
    let n = c.fields.str_or_empty("name")?;
    if !is_generic_name(&n) {
        return Err(Error::UnsupportedPath);
    }
    Ok(n)
}

fn name_field(what: &'static str) -> Field {
    Field::new("name", FieldType::String, what)
}

/// The `oidc/*` paths, relative to the identity mount, over any state
/// that holds an [`crate::Oidc`].
pub fn paths<S: HasOidc>() -> Vec<Path<S>> {
    vec![
        Path::new("oidc/config/?")
            .fields(vec![Field::new("issuer", FieldType::String, "Issuer URL to be used in the iss claim of the token. If not set, OpenBao's app_addr will be used.")])
            .op(Operation::Read, handler(read_config), "Read the OIDC configuration.")
            .op(Operation::Update, handler(write_config), "Update the OIDC configuration.")
            .help("OIDC configuration", "Update OIDC configuration in the identity backend"),
        Path::new("oidc/key/{name}")
            .fields(vec![
                name_field("Name of the key"),
                Field::new("rotation_period", FieldType::DurationSecond, "How often to generate a new keypair.").default(json!("24h")),
                Field::new("verification_ttl", FieldType::DurationSecond, "Controls how long the public portion of a key will be available for verification after being rotated.").default(json!("24h")),
                Field::new("algorithm", FieldType::String, "Signing algorithm to use. This will default to RS256.").default(json!("RS256")),
                Field::new("allowed_client_ids", FieldType::CommaStringSlice, "Comma separated string or array of role client ids allowed to use this key for signing. If empty no roles are allowed. If \"*\" all roles are allowed."),
            ])
            .exists(existence(key_exists))
            .op(Operation::Create, handler(write_key), "Create a named key.")
            .op(Operation::Update, handler(write_key), "Update a named key.")
            .op(Operation::Read, handler(read_key), "Read a named key.")
            .op(Operation::Delete, handler(delete_key), "Delete a named key.")
            .help("CRUD operations for OIDC keys.", "Create, Read, Update, and Delete OIDC named keys."),
        Path::new("oidc/key/{name}/rotate/?")
            .fields(vec![
                name_field("Name of the key"),
                Field::new("verification_ttl", FieldType::DurationSecond, "Controls how long the public portion of a key will be available for verification after being rotated. Setting verification_ttl here will override the verification_ttl set on the key."),
            ])
            .op(Operation::Update, handler(rotate_key), "Rotate a named key.")
            .help("Rotate a named OIDC key.", "Manually rotate a named OIDC key. Rotating a named key will cause a new underlying signing key to be generated. The public portion of the underlying rotated signing key will continue to live for the verification_ttl duration."),
        Path::new("oidc/key/?")
            .op(Operation::List, handler(list_keys), "List the named keys.")
            .help("List OIDC keys", "List all named OIDC keys"),
        Path::new("oidc/.well-known/openid-configuration/?")
            .op(Operation::Read, handler(discovery), "Read the OpenID discovery document.")
            .help("Query OIDC configurations", "Query this path to retrieve the configured OIDC Issuer and Keys endpoints, response types, subject types, and signing algorithms used by the OIDC backend."),
        Path::new("oidc/.well-known/keys/?")
            .op(Operation::Read, handler(jwks), "Read the public keys.")
            .help("Retrieve public keys", "Query this path to retrieve the public portion of keys used to sign OIDC tokens. Clients can use this to validate the authenticity of the OIDC token claims."),
        Path::new("oidc/token/{name}")
            .fields(vec![name_field("Name of the role")])
            .op(Operation::Read, handler(token), "Generate an OIDC token.")
            .help("Generate an OIDC token", "Generate an OIDC token against a configured role. The OpenBao token used to call this path must have a corresponding entity."),
        Path::new("oidc/role/{name}")
            .fields(vec![
                name_field("Name of the role"),
                Field::new("key", FieldType::String, "The OIDC key to use for generating tokens. The specified key must already exist."),
                Field::new("template", FieldType::String, "The template string to use for generating tokens. This may be in string-ified JSON or base64 format."),
                Field::new("ttl", FieldType::DurationSecond, "TTL of the tokens generated against the role.").default(json!("24h")),
                Field::new("client_id", FieldType::String, "Optional client_id"),
            ])
            .exists(existence(role_exists))
            .op(Operation::Create, handler(write_role), "Create a role.")
            .op(Operation::Update, handler(write_role), "Update a role.")
            .op(Operation::Read, handler(read_role), "Read a role.")
            .op(Operation::Delete, handler(delete_role), "Delete a role.")
            .help("CRUD operations on OIDC Roles", "Create, Read, Update, and Delete OIDC Roles. OIDC tokens are generated against roles which can be configured to determine how OIDC tokens are generated."),
        Path::new("oidc/role/?")
            .op(Operation::List, handler(list_roles), "List the roles.")
            .help("List configured OIDC roles", "List all configured OIDC roles in the identity backend."),
        Path::new("oidc/introspect/?")
            .fields(vec![
                Field::new("token", FieldType::String, "Token to verify"),
                Field::new("client_id", FieldType::String, "Optional client_id to verify"),
            ])
            .op(Operation::Update, handler(introspect), "Verify an OIDC token.")
            .help("Verify the authenticity of an OIDC token", "Use this path to verify the authenticity of an OIDC token and whether the associated entity is active and enabled."),
    ]
}

// ---- config ----

async fn read_config<S: HasOidc>(_s: Arc<S>, c: Ctx) -> Result<Response> {
    let cfg: Config = get_json(&c.storage, CONFIG).await?.unwrap_or_default();
    Ok(data(json!({"issuer": cfg.issuer})))
}

/// Only a scheme (http or https), a host and an optional port.
fn valid_issuer(issuer: &str) -> bool {
    let Some((scheme, rest)) = issuer.split_once("://") else {
        return false;
    };
    (scheme == "http" || scheme == "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@'])
}

async fn write_config<S: HasOidc>(_s: Arc<S>, c: Ctx) -> Result<Response> {
    let Some(issuer) = c.fields.get_str("issuer")? else {
        return Ok(Response::empty());
    };
    let mut resp = Response::empty();
    if !issuer.is_empty() {
        if !valid_issuer(&issuer) {
            return Err(Error::bad_request("invalid issuer, which must include only a scheme, host, and optional port (e.g. https://example.com:8200)"));
        }
        resp = resp.with_warning("If \"issuer\" is set explicitly, all tokens must be validated against that address, including those issued by secondary clusters. Setting issuer to \"\" will restore the default behavior of using the cluster's api_addr as the issuer.");
    }
    put_json(&c.storage, CONFIG, &Config { issuer }).await?;
    Ok(resp)
}

/// `<issuer or api_addr>/v1/<namespace path>identity/oidc`.
async fn effective_issuer<S: HasOidc>(s: &S, c: &Ctx) -> Result<String> {
    let cfg: Config = get_json(&c.storage, CONFIG).await?.unwrap_or_default();
    let host = &s.oidc().host;
    let base = if cfg.issuer.is_empty() {
        host.api_addr()
    } else {
        cfg.issuer
    };
    Ok(format!("{base}/v1/{}identity/oidc", host.namespace(c).path))
}

// ---- keys ----

async fn load_key(view: &View, name: &str) -> Result<Option<NamedKey>> {
    get_json(view, &format!("{NAMED_KEYS}{name}")).await
}

async fn store_key(view: &View, name: &str, key: &NamedKey) -> Result<()> {
    put_json(view, &format!("{NAMED_KEYS}{name}"), key).await
}

/// A fresh key pair, its public half saved, its id on the ring.
async fn new_signing_key(view: &View, key: &mut NamedKey) -> Result<SigningKey> {
    let alg = key.algorithm.clone();
    let k = tokio::task::spawn_blocking(move || keys::generate(&alg))
        .await
        .map_err(crate::internal)??;
    put_json(view, &format!("{PUBLIC_KEYS}{}", k.kid), &k.public_jwk()?).await?;
    key.key_ring.push(RingEntry {
        key_id: k.kid.clone(),
        expire_at: None,
    });
    Ok(k)
}

/// Creates the `default` key OpenBao has in every namespace (RS256, any
/// client id) unless it exists. The identity backend calls it from its
/// initialize hook (an active node); the handlers that need the key also
/// make it on first use.
pub async fn ensure_default_key(view: &View) -> Result<()> {
    if load_key(view, DEFAULT_KEY).await?.is_some() {
        return Ok(());
    }
    let mut key = NamedKey {
        algorithm: "RS256".into(),
        verification_ttl: DAY,
        rotation_period: DAY,
        key_ring: Vec::new(),
        signing_key: None,
        next_signing_key: None,
        next_rotation: now() + secs(DAY),
        allowed_client_ids: vec!["*".into()],
    };
    key.signing_key = Some(new_signing_key(view, &mut key).await?);
    key.next_signing_key = Some(new_signing_key(view, &mut key).await?);
    store_key(view, DEFAULT_KEY, &key).await
}

async fn key_exists<S: HasOidc>(_s: Arc<S>, c: Ctx) -> Result<bool> {
    let n = name(&c)?;
    if n == DEFAULT_KEY {
        ensure_default_key(&c.storage).await?;
    }
    Ok(load_key(&c.storage, &n).await?.is_some())
}

async fn roles(view: &View) -> Result<BTreeMap<String, Role>> {
    let mut out = BTreeMap::new();
    for n in view.list(ROLES).await? {
        if n.ends_with('/') {
            continue;
        }
        if let Some(r) = get_json::<Role>(view, &format!("{ROLES}{n}")).await? {
            out.insert(n, r);
        }
    }
    Ok(out)
}

async fn write_key<S: HasOidc>(s: Arc<S>, c: Ctx) -> Result<Response> {
    let n = name(&c)?;
    let _g = s.oidc().lock.lock().await;
    let view = &c.storage;
    if n == DEFAULT_KEY {
        ensure_default_key(view).await?;
    }
    let existing = load_key(view, &n).await?;
    let creating = existing.is_none();
    let mut key = existing.unwrap_or(NamedKey {
        algorithm: String::new(),
        verification_ttl: 0,
        rotation_period: 0,
        key_ring: Vec::new(),
        signing_key: None,
        next_signing_key: None,
        next_rotation: 0,
        allowed_client_ids: Vec::new(),
    });
    let pick = |given: Option<std::time::Duration>, current: u64| -> u64 {
        match given {
            Some(d) => d.as_secs(),
            None if creating => DAY,
            None => current,
        }
    };
    key.rotation_period = pick(
        c.fields
            .get_duration("rotation_period")?
            .filter(|_| c.fields.is_set("rotation_period")),
        key.rotation_period,
    );
    if key.rotation_period < 60 {
        return Err(Error::bad_request(
            "rotation_period must be at least one minute",
        ));
    }
    key.verification_ttl = pick(
        c.fields
            .get_duration("verification_ttl")?
            .filter(|_| c.fields.is_set("verification_ttl")),
        key.verification_ttl,
    );
    if key.verification_ttl > key.rotation_period.saturating_mul(10) {
        return Err(Error::bad_request(
            "verification_ttl cannot be longer than 10x rotation_period",
        ));
    }
    if !creating
        && roles(view)
            .await?
            .values()
            .any(|r| r.key == n && r.token_ttl > key.verification_ttl)
    {
        return Err(Error::bad_request(format!(
            "unable to update key {n:?} because it is currently referenced by one or more roles with a token ttl greater than {} seconds",
            key.verification_ttl
        )));
    }
    if c.fields.is_set("allowed_client_ids") {
        key.allowed_client_ids = c
            .fields
            .get_strings("allowed_client_ids")?
            .unwrap_or_default();
    }
    let previous = key.algorithm.clone();
    if c.fields.is_set("algorithm") || creating {
        key.algorithm = c
            .fields
            .get_str("algorithm")?
            .unwrap_or_else(|| "RS256".into());
    }
    if !ALGORITHMS.contains(&key.algorithm.as_str()) {
        return Err(Error::bad_request(format!(
            "unknown signing algorithm {:?}",
            key.algorithm
        )));
    }
    let next = now().saturating_add(secs(key.rotation_period));
    if key.next_rotation == 0 || next < key.next_rotation {
        key.next_rotation = next;
    }
    if key.algorithm != previous {
        key.signing_key = Some(new_signing_key(view, &mut key).await?);
        key.next_signing_key = Some(new_signing_key(view, &mut key).await?);
    }
    store_key(view, &n, &key).await?;
    Ok(Response::empty())
}

async fn read_key<S: HasOidc>(_s: Arc<S>, c: Ctx) -> Result<Response> {
    let n = name(&c)?;
    if n == DEFAULT_KEY {
        ensure_default_key(&c.storage).await?;
    }
    let key = load_key(&c.storage, &n)
        .await?
        .ok_or(Error::NotFound(None))?;
    Ok(data(json!({
        "rotation_period": key.rotation_period,
        "verification_ttl": key.verification_ttl,
        "algorithm": key.algorithm,
        "allowed_client_ids": key.allowed_client_ids,
    })))
}

async fn delete_key<S: HasOidc>(s: Arc<S>, c: Ctx) -> Result<Response> {
    let n = name(&c)?;
    if n == DEFAULT_KEY {
        return Err(Error::bad_request(format!(
            "deletion of key {DEFAULT_KEY:?} not allowed"
        )));
    }
    {
        let _g = s.oidc().lock.lock().await;
        let users: Vec<String> = roles(&c.storage)
            .await?
            .into_iter()
            .filter(|(_, r)| r.key == n)
            .map(|(name, _)| name)
            .collect();
        if !users.is_empty() {
            return Err(Error::bad_request(format!(
                "unable to delete key {n:?} because it is currently referenced by these roles: {}",
                users.join(", ")
            )));
        }
        c.storage.delete(&format!("{NAMED_KEYS}{n}")).await?;
    }
    expire_public_keys(&*s, &c.storage).await?;
    Ok(Response::empty())
}

async fn list_keys<S: HasOidc>(_s: Arc<S>, c: Ctx) -> Result<Response> {
    ensure_default_key(&c.storage).await?;
    strongroom_sdk::framework::list_entries(&c.storage, NAMED_KEYS).await
}

/// Moves `key` to its next signing key; the old one stays verifiable for
/// `verification_ttl` seconds.
async fn rotate(view: &View, key: &mut NamedKey, verification_ttl: u64) -> Result<()> {
    let t = now();
    if let Some(current) = &key.signing_key {
        if let Some(e) = key.key_ring.iter_mut().find(|e| e.key_id == current.kid) {
            e.expire_at = Some(t.saturating_add(secs(verification_ttl)));
        }
    }
    let next = match key.next_signing_key.take() {
        Some(k) => k,
        None => new_signing_key(view, key).await?,
    };
    key.signing_key = Some(next);
    key.next_rotation = t.saturating_add(secs(key.rotation_period));
    key.next_signing_key = Some(new_signing_key(view, key).await?);
    Ok(())
}

async fn rotate_key<S: HasOidc>(s: Arc<S>, c: Ctx) -> Result<Response> {
    let n = name(&c)?;
    let _g = s.oidc().lock.lock().await;
    if n == DEFAULT_KEY {
        ensure_default_key(&c.storage).await?;
    }
    let Some(mut key) = load_key(&c.storage, &n).await? else {
        return Err(Error::bad_request(format!("no named key found at {n:?}")));
    };
    let ttl = match c.fields.get_duration("verification_ttl")? {
        Some(d) if c.fields.is_set("verification_ttl") => d.as_secs(),
        _ => key.verification_ttl,
    };
    rotate(&c.storage, &mut key, ttl).await?;
    store_key(&c.storage, &n, &key).await?;
    Ok(Response::empty())
}

/// Drops expired ids from every key ring, and the public keys no ring
/// holds any more.
async fn expire_public_keys<S: HasOidc>(s: &S, view: &View) -> Result<()> {
    let _g = s.oidc().lock.lock().await;
    expire_public_keys_locked(view).await
}

async fn expire_public_keys_locked(view: &View) -> Result<()> {
    let t = now();
    let mut used = BTreeSet::new();
    for n in view.list(NAMED_KEYS).await? {
        let Some(mut key) = load_key(view, &n).await? else {
            continue;
        };
        let before = key.key_ring.len();
        key.key_ring.retain(|e| e.expire_at.is_none_or(|x| x >= t));
        if key.key_ring.len() != before {
            store_key(view, &n, &key).await?;
        }
        used.extend(key.key_ring.into_iter().map(|e| e.key_id));
    }
    for kid in view.list(PUBLIC_KEYS).await? {
        if !used.contains(&kid) {
            view.delete(&format!("{PUBLIC_KEYS}{kid}")).await?;
        }
    }
    Ok(())
}

/// The periodic work of the identity backend's OIDC part: rotates keys
/// whose period ended, then drops public keys past their verification
/// TTL. The identity backend calls it from its periodic hook with its
/// storage.
pub async fn periodic<S: HasOidc>(state: &S, view: &View) -> Result<()> {
    let _g = state.oidc().lock.lock().await;
    let t = now();
    for n in view.list(NAMED_KEYS).await? {
        let Some(mut key) = load_key(view, &n).await? else {
            continue;
        };
        if t >= key.next_rotation {
            let ttl = key.verification_ttl;
            rotate(view, &mut key, ttl).await?;
            store_key(view, &n, &key).await?;
        }
    }
    expire_public_keys_locked(view).await
}

// ---- discovery ----

async fn discovery<S: HasOidc>(s: Arc<S>, c: Ctx) -> Result<Response> {
    let issuer = effective_issuer(&*s, &c).await?;
    Ok(Response::raw(
        200,
        json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/keys"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ALGORITHMS,
        }),
    ))
}

/// The public keys of every key a role references (expired ones gone).
async fn public_jwks<S: HasOidc>(s: &S, view: &View) -> Result<Vec<Value>> {
    expire_public_keys(s, view).await?;
    let mut ids = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for role in roles(view).await?.into_values() {
        if !seen.insert(role.key.clone()) {
            continue;
        }
        if let Some(key) = load_key(view, &role.key).await? {
            ids.extend(key.key_ring.into_iter().map(|e| e.key_id));
        }
    }
    let mut out = Vec::new();
    for kid in ids {
        if let Some(jwk) = get_json::<Value>(view, &format!("{PUBLIC_KEYS}{kid}")).await? {
            out.push(jwk);
        }
    }
    Ok(out)
}

async fn jwks<S: HasOidc>(s: Arc<S>, c: Ctx) -> Result<Response> {
    let keys = public_jwks(&*s, &c.storage).await?;
    Ok(Response::raw(200, json!({ "keys": keys })))
}

// ---- roles ----

async fn get_role(view: &View, name: &str) -> Result<Option<Role>> {
    get_json(view, &format!("{ROLES}{name}")).await
}

async fn role_exists<S: HasOidc>(_s: Arc<S>, c: Ctx) -> Result<bool> {
    Ok(get_role(&c.storage, &name(&c)?).await?.is_some())
}

/// 26 random base62 characters, as OpenBao's generated client ids.
fn random_client_id() -> Result<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(26);
    while out.len() < 26 {
        let mut buf = [0u8; 32];
        aws_lc_rs::rand::fill(&mut buf).map_err(crate::internal)?;
        // 248 = 4 * 62: rejecting above it keeps the draw uniform.
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == 26 {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*b % 62)]));
        }
    }
    Ok(out)
}

/// The template as given, or decoded when it is valid base64.
fn decode_template(t: String) -> String {
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD.decode(&t) {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or(t),
        Err(_) => t,
    }
}

/// Renders a role template for `facts` into claims (reserved ones
/// dropped).
fn render_claims(
    template: &str,
    facts: Option<&IdentityFacts>,
) -> std::result::Result<Map<String, Value>, String> {
    if template.is_empty() {
        return Ok(Map::new());
    }
    let rendered = match Template::parse(template).map_err(|e| e.to_string())? {
        None => template.to_string(),
        Some(t) => t
            .render(&RenderInput {
                identity: facts,
                mode: Mode::Json,
                blocked: &[],
                now: now(),
            })
            .map_err(|e| e.to_string())?,
    };
    let parsed: Map<String, Value> = strongroom_sdk::json::from_slice(rendered.as_bytes())
        .map_err(|e| format!("error parsing template JSON: {e}"))?;
    Ok(parsed)
}

async fn write_role<S: HasOidc>(s: Arc<S>, c: Ctx) -> Result<Response> {
    let n = name(&c)?;
    let _g = s.oidc().lock.lock().await;
    let view = &c.storage;
    let mut role = get_role(view, &n).await?.unwrap_or(Role {
        token_ttl: DAY,
        key: String::new(),
        template: String::new(),
        client_id: String::new(),
    });
    let creating = role.key.is_empty();
    if let Some(k) = c.fields.get_str("key")? {
        role.key = k;
    }
    if role.key.is_empty() {
        return Err(Error::bad_request("the key parameter is required"));
    }
    if role.key == DEFAULT_KEY {
        ensure_default_key(view).await?;
    }
    if let Some(t) = c.fields.get_str("template")? {
        role.template = t;
    }
    role.template = decode_template(std::mem::take(&mut role.template));
    if !role.template.is_empty() {
        // Checked with an empty entity, as OpenBao does.
        let empty = IdentityFacts::default();
        let claims = render_claims(&role.template, Some(&empty)).map_err(|e| {
            if e.starts_with("error parsing template JSON") {
                Error::bad_request(e)
            } else {
                Error::bad_request(format!("error parsing template: {e}"))
            }
        })?;
        if let Some(k) = claims
            .keys()
            .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
        {
            return Err(Error::bad_request(format!(
                "top level key {k:?} not allowed. Restricted keys: {}",
                RESERVED_CLAIMS.join(", ")
            )));
        }
    }
    if c.fields.is_set("ttl") || creating {
        role.token_ttl = c.fields.get_duration("ttl")?.map_or(DAY, |d| d.as_secs());
    }
    let Some(key) = load_key(view, &role.key).await? else {
        return Err(Error::bad_request(format!(
            "cannot find key {:?}",
            role.key
        )));
    };
    if role.token_ttl > key.verification_ttl {
        return Err(Error::bad_request("a role's token ttl cannot be longer than the verification_ttl of the key it references"));
    }
    if let Some(id) = c.fields.get_str("client_id")? {
        role.client_id = id;
    }
    if role.client_id.is_empty() {
        role.client_id = random_client_id()?;
    }
    put_json(view, &format!("{ROLES}{n}"), &role).await?;
    Ok(Response::empty())
}

async fn read_role<S: HasOidc>(_s: Arc<S>, c: Ctx) -> Result<Response> {
    let role = get_role(&c.storage, &name(&c)?)
        .await?
        .ok_or(Error::NotFound(None))?;
    Ok(data(json!({
        "client_id": role.client_id,
        "key": role.key,
        "template": role.template,
        "ttl": role.token_ttl,
    })))
}

async fn delete_role<S: HasOidc>(_s: Arc<S>, c: Ctx) -> Result<Response> {
    c.storage.delete(&format!("{ROLES}{}", name(&c)?)).await?;
    Ok(Response::empty())
}

async fn list_roles<S: HasOidc>(_s: Arc<S>, c: Ctx) -> Result<Response> {
    strongroom_sdk::framework::list_entries(&c.storage, ROLES).await
}

// ---- tokens ----

async fn token<S: HasOidc>(s: Arc<S>, c: Ctx) -> Result<Response> {
    let role_name = name(&c)?;
    let view = &c.storage;
    let Some(role) = get_role(view, &role_name).await? else {
        return Err(Error::bad_request(format!("role {role_name:?} not found")));
    };
    let Some(key) = load_key(view, &role.key).await? else {
        return Err(Error::bad_request(format!("key {:?} not found", role.key)));
    };
    if !key
        .allowed_client_ids
        .iter()
        .any(|id| id == "*" || *id == role.client_id)
    {
        return Err(Error::bad_request(format!(
            "the key {:?} does not list the client ID of the role {role_name:?} as an allowed client ID",
            role.key
        )));
    }
    let host = &s.oidc().host;
    let Some(entity_id) = host.caller_entity_id(&c).filter(|e| !e.is_empty()) else {
        return Err(Error::bad_request(
            "no entity associated with the request's token",
        ));
    };
    let issuer = effective_issuer(&*s, &c).await?;
    let mut resp = Response::empty();
    let mut ttl = role.token_ttl;
    if ttl > key.verification_ttl {
        ttl = key.verification_ttl;
        resp = resp.with_warning(format!(
            "a role's token ttl cannot be longer than the verification_ttl of the key it references, setting token ttl to {ttl}"
        ));
    }
    let entity = host
        .entity(&c, &entity_id)
        .ok_or_else(|| Error::internal(format!("error loading entity ID {entity_id:?}")))?;
    let t = now();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer));
    claims.insert("namespace".into(), json!(host.namespace(&c).id));
    claims.insert("sub".into(), json!(entity_id));
    claims.insert("aud".into(), json!(role.client_id));
    claims.insert("exp".into(), json!(t.saturating_add(secs(ttl))));
    claims.insert("iat".into(), json!(t));
    // As OpenBao: a template that fails at issue time only loses its
    // claims; the basic token is still issued.
    match render_claims(&role.template, Some(&entity.facts)) {
        Ok(extra) => {
            for (k, v) in extra {
                if !RESERVED_CLAIMS.contains(&k.as_str()) {
                    claims.insert(k, v);
                }
            }
        }
        Err(e) => {
            tracing::warn!(role = %role_name, error = %e, "error populating OIDC token template")
        }
    }
    let signer = key.signing_key.ok_or_else(|| {
        Error::internal(
            "error signing OIDC token: signing key is nil; rotate the key and try again",
        )
    })?;
    let jwt = tokio::task::spawn_blocking(move || signer.sign(&Value::Object(claims)))
        .await
        .map_err(crate::internal)??;
    let mut out = Data::new();
    out.insert("token".into(), json!(jwt));
    out.insert("client_id".into(), json!(role.client_id));
    out.insert("ttl".into(), json!(role.token_ttl));
    resp.data = Some(out);
    Ok(resp)
}

async fn introspect<S: HasOidc>(s: Arc<S>, c: Ctx) -> Result<Response> {
    let answer = |err: Option<String>| {
        let body = match err {
            None => json!({"active": true}),
            Some(e) => json!({"active": false, "error": e}),
        };
        Ok(Response::raw(200, body))
    };
    let raw = c.fields.str_or_empty("token")?;
    let client_id = c.fields.str_or_empty("client_id")?;
    let parsed = match keys::parse(&raw) {
        Ok(p) => p,
        Err(e) => return answer(Some(format!("error parsing token: {e}"))),
    };
    let jwks = public_jwks(&*s, &c.storage).await?;
    if !jwks.iter().any(|k| keys::verify(&parsed, k)) {
        return answer(Some("unable to validate the token signature".into()));
    }
    let issuer = effective_issuer(&*s, &c).await?;
    let claims = &parsed.claims;
    let fail = |what: &str| {
        Some(format!(
            "error validating claims: go-jose/go-jose/jwt: validation failed, {what}"
        ))
    };
    // go-jose's default leeway: one minute.
    let t = now();
    if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
        return answer(fail("invalid issuer claim (iss)"));
    }
    if !client_id.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == client_id,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client_id.as_str())),
            _ => false,
        };
        if !ok {
            return answer(fail("invalid audience claim (aud)"));
        }
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
        if t > exp.saturating_add(60) {
            return answer(fail("token is expired (exp)"));
        }
    }
    if let Some(iat) = claims.get("iat").and_then(Value::as_i64) {
        if iat > t.saturating_add(60) {
            return answer(fail("token issued in the future (iat)"));
        }
    }
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
    match s.oidc().host.entity(&c, sub) {
        None => answer(Some("entity was not found".into())),
        Some(e) if e.disabled => answer(Some("entity is disabled".into())),
        Some(_) => answer(None),
    }
}
