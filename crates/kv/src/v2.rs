//! KV version 2: versioned secrets, with OpenBao's API and answers
//! (`config`, `data/`, `delete/`, `undelete/`, `destroy/`, `metadata/`,
//! `subkeys/`).
//!
//! Storage, in the mount's view: `kv2/config`, `kv2/meta/<path>` (a key's
//! metadata, versions included) and `kv2/ver/<path>/<n>` (one version's
//! data). Every change to a key takes that key's lock and writes its
//! metadata and data in one atomic batch, so check-and-set is exact under
//! concurrent writers: of N writers with the same `cas`, one wins.
//!
//! A KV v1 mount tuned to version 2 is upgraded on first use: each v1 key
//! becomes version 1 of the same key (one atomic batch per key, so a crash
//! resumes where it stopped), then `kv2/upgraded` marks the mount done.
//! Requests wait for the upgrade. The only v1 keys that cannot be told from
//! v2 records, `kv2/config`, `kv2/upgraded` and those under `kv2/meta/` and
//! `kv2/ver/`, are not migrated.

mod model;

use std::sync::Arc;

use std::hash::{Hash, Hasher};

use serde::Deserialize;
use serde_json::{json, Map, Value};
use strongroom_sdk::framework::{
    double_option, existence, handler, Backend, Ctx, Field, FieldType, Path,
};
use strongroom_sdk::logical::{Data, Operation, Response};
use strongroom_sdk::storage::BatchOp;
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};

use model::{now, obj, rfc3339, subkeys, Config, KeyMeta};

const CONFIG_KEY: &str = "kv2/config";
const META_PREFIX: &str = "kv2/meta/";
const VERSION_PREFIX: &str = "kv2/ver/";
const UPGRADED_KEY: &str = "kv2/upgraded";

/// How many locks the keys are striped over: a fixed number, however many
/// keys the mount holds.
const LOCK_STRIPES: usize = 1024;

/// The engine's state: the key lock stripes and the one-time upgrade.
pub struct KvV2 {
    locks: Vec<tokio::sync::Mutex<()>>,
    upgraded: tokio::sync::OnceCell<()>,
}

impl Default for KvV2 {
    fn default() -> Self {
        KvV2 {
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            upgraded: tokio::sync::OnceCell::new(),
        }
    }
}

type S = Arc<KvV2>;

impl KvV2 {
    /// Serialises changes to one key: the key's stripe (hash of the key)
    /// is locked, so keys sharing a stripe wait for each other too.
    async fn lock(&self, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        // invariant: reduced modulo the (non-zero) number of stripes.
        let stripe = (h.finish() % self.locks.len() as u64) as usize;
        self.locks[stripe].lock().await
    }

    /// Upgrades v1 data once, before the first request is answered.
    async fn ready(&self, storage: &View) -> Result<()> {
        self.upgraded
            .get_or_try_init(|| upgrade(storage))
            .await
            .map(|_| ())
    }
}

/// Turns every v1 key of the mount into version 1 of the same v2 key.
async fn upgrade(storage: &View) -> Result<()> {
    if storage.get(UPGRADED_KEY).await?.is_some() {
        return Ok(());
    }
    let config = Config::default();
    let mut stack = vec![String::new()];
    while let Some(prefix) = stack.pop() {
        for k in storage.list(&prefix).await? {
            let full = format!("{prefix}{k}");
            // What the upgrade itself writes is not v1 data (after a crash
            // the upgrade resumes and must not migrate its own records).
            if full == META_PREFIX
                || full == VERSION_PREFIX
                || full == CONFIG_KEY
                || full == UPGRADED_KEY
            {
                continue;
            }
            if k.ends_with('/') {
                stack.push(full);
                continue;
            }
            let Some(bytes) = storage.get(&full).await? else {
                continue;
            };
            let data: Value = strongroom_sdk::json::from_stored(&bytes)
                .map_err(|e| Error::internal(format!("corrupt v1 entry: {e}")))?;
            let t = now();
            let mut meta = KeyMeta::new(&rfc3339(t));
            let v = meta.add_version(&config, t);
            // OpenBao's upgrade records the first kept version.
            meta.oldest_version = v;
            storage
                .batch(vec![
                    BatchOp::Put(meta_key(&full), json_bytes(&meta)?),
                    BatchOp::Put(
                        version_key(&full, v),
                        version_bytes(entry([("data", data)]))?,
                    ),
                    BatchOp::Delete(full.clone()),
                ])
                .await?;
        }
    }
    storage.put(UPGRADED_KEY, b"1").await?;
    Ok(())
}

fn meta_key(path: &str) -> String {
    format!("{META_PREFIX}{path}")
}

fn version_key(path: &str, version: u64) -> String {
    format!("{VERSION_PREFIX}{path}/{version}")
}

/// An object of `pairs`, moved in: `json!` would copy each value through
/// serde, recursing on the stack, and a client's value may be deep.
fn entry<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A version entry as stored: its data may be a client's deep value.
fn version_bytes(entry: Value) -> Result<Vec<u8>> {
    strongroom_sdk::json::value_to_vec(&entry).map_err(Error::internal)
}

fn json_bytes<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(Error::internal)
}

async fn read_config(storage: &View) -> Result<Config> {
    match storage.get(CONFIG_KEY).await? {
        None => Ok(Config::default()),
        Some(b) => strongroom_sdk::json::from_stored(&b)
            .map_err(|e| Error::internal(format!("corrupt kv config: {e}"))),
    }
}

async fn read_meta(storage: &View, path: &str) -> Result<Option<KeyMeta>> {
    match storage.get(&meta_key(path)).await? {
        None => Ok(None),
        Some(b) => strongroom_sdk::json::from_stored(&b)
            .map(Some)
            .map_err(|e| Error::internal(format!("corrupt kv metadata: {e}"))),
    }
}

/// The `path` capture of a request.
#[derive(Deserialize)]
struct PathParam {
    #[serde(default)]
    path: String,
}

/// The `version` of a read.
#[derive(Deserialize)]
struct VersionParam {
    version: Option<i64>,
}

/// The settings `config` and `metadata/<key>` writes share.
#[derive(Deserialize)]
struct Settings {
    max_versions: Option<i64>,
    cas_required: Option<bool>,
    /// Seconds.
    delete_version_after: Option<u64>,
    metadata_cas_required: Option<bool>,
}

/// The `data` of a data write or patch, as given (`Some(None)`: null).
#[derive(Deserialize)]
struct DataParam {
    #[serde(default, deserialize_with = "double_option::deserialize")]
    data: Option<Option<Value>>,
}

/// The `custom_metadata` of a metadata write, as given (`Some(None)`:
/// null).
#[derive(Deserialize)]
struct CustomMetadataParam {
    #[serde(default, deserialize_with = "double_option::deserialize")]
    custom_metadata: Option<Option<Value>>,
}

/// The `options` of a data write.
#[derive(Deserialize)]
struct OptionsParam {
    options: Option<Map<String, Value>>,
}

/// The `versions` of a delete, undelete or destroy.
#[derive(Deserialize)]
struct VersionsParam {
    versions: Option<Vec<String>>,
}

/// The `metadata_cas` of a metadata write.
#[derive(Deserialize)]
struct MetadataCasParam {
    metadata_cas: Option<i64>,
}

/// The `depth` of a subkeys read.
#[derive(Deserialize)]
struct DepthParam {
    depth: Option<i64>,
}

/// The key a request names (`data/<key>` etc.); empty keys and folders
/// have nothing to read.
fn key_of(ctx: &Ctx) -> Result<String> {
    let PathParam { path } = ctx.decode()?;
    if path.is_empty() || path.ends_with('/') {
        return Err(Error::NotFound(None));
    }
    Ok(path)
}

/// A 404 that still carries `data` (OpenBao's answer for a deleted or
/// destroyed version).
fn not_found_with(data: Data) -> Response {
    let mut r = Response::data(data);
    r.status = Some(404);
    r
}

/// A 404 without a body (OpenBao's answer to a PATCH of a missing key).
fn bare_not_found() -> Response {
    Response {
        status: Some(404),
        ..Default::default()
    }
}

/// The requested version (`version`, 0 or absent: the current one).
fn version_param(ctx: &Ctx) -> Result<u64> {
    // OpenBao reads the current version for 0 and for negative numbers.
    Ok(ctx
        .decode::<VersionParam>()?
        .version
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0))
}

/// `max_versions` as OpenBao keeps it: a 32-bit unsigned number, so a
/// negative value wraps around (-1 is 4294967295, in effect no limit).
fn max_versions(m: i64) -> u64 {
    u64::from(m as u32)
}

async fn config_read(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    Ok(Response::data(read_config(&ctx.storage).await?.render()))
}

async fn config_write(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let _guard = s.lock("").await;
    let mut config = read_config(&ctx.storage).await?;
    let w: Settings = ctx.decode()?;
    if let Some(m) = w.max_versions {
        config.max_versions = max_versions(m);
    }
    if let Some(c) = w.cas_required {
        config.cas_required = c;
    }
    if let Some(secs) = w.delete_version_after {
        config.delete_version_after = secs;
    }
    if let Some(c) = w.metadata_cas_required {
        config.metadata_cas_required = c;
    }
    ctx.storage.put(CONFIG_KEY, &json_bytes(&config)?).await?;
    Ok(Response::empty())
}

/// `data/<key>` read: the version asked (or current), OpenBao's 404 with
/// metadata for a deleted or destroyed one.
async fn data_read(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let key = key_of(&ctx)?;
    let asked = version_param(&ctx)?;
    let meta = read_meta(&ctx.storage, &key)
        .await?
        .ok_or(Error::NotFound(None))?;
    let version = if asked == 0 {
        meta.current_version
    } else {
        asked
    };
    let vm = meta.versions.get(&version).ok_or(Error::NotFound(None))?;
    let block = meta.version_block(version, vm);
    if !vm.readable(now()) {
        return Ok(not_found_with(obj(
            json!({"data": null, "metadata": block}),
        )));
    }
    let stored = ctx
        .storage
        .get(&version_key(&key, version))
        .await?
        .ok_or(Error::NotFound(None))?;
    let mut stored: Value = strongroom_sdk::json::from_stored(&stored)
        .map_err(|e| Error::internal(format!("corrupt kv version: {e}")))?;
    let data = stored
        .get_mut("data")
        .map(Value::take)
        .unwrap_or(Value::Null);
    Ok(Response::data(obj(entry([
        ("data", data),
        ("metadata", block),
    ]))))
}

/// The `options.cas` of a write, checked against the key's current
/// version and the mount's and key's `cas_required`.
fn check_cas(ctx: &Ctx, config: &Config, meta: Option<&KeyMeta>) -> Result<()> {
    let options = ctx.decode::<OptionsParam>()?.options.unwrap_or_default();
    let cas = match options.get("cas") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            // An integer (as OpenBao's `ParseInt`): a fraction, an exponent
            // or a number outside i64 is refused, never clamped.
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| Error::bad_request("error parsing check-and-set parameter"))?,
        ),
    };
    let required = config.cas_required || meta.is_some_and(|m| m.cas_required);
    match cas {
        None if required => Err(Error::bad_request(
            "check-and-set parameter required for this call",
        )),
        None => Ok(()),
        Some(c) if u64::try_from(c).ok() != Some(meta.map_or(0, |m| m.current_version)) => Err(
            Error::bad_request("check-and-set parameter did not match the current version"),
        ),
        Some(_) => Ok(()),
    }
}

/// Stores `data` as the next version of `key` (the caller holds the key's
/// lock and checked cas), trimming old versions, in one batch.
async fn put_version(
    storage: &View,
    key: &str,
    config: &Config,
    meta: Option<KeyMeta>,
    data: Value,
) -> Result<Response> {
    let t = now();
    let mut meta = meta.unwrap_or_else(|| KeyMeta::new(&rfc3339(t)));
    let version = meta.add_version(config, t);
    let mut ops = vec![BatchOp::Put(
        version_key(key, version),
        version_bytes(entry([("data", data)]))?,
    )];
    for dropped in meta.trim(config) {
        ops.push(BatchOp::Delete(version_key(key, dropped)));
    }
    let block = meta.version_block(version, &meta.versions[&version]);
    ops.push(BatchOp::Put(meta_key(key), json_bytes(&meta)?));
    storage.batch(ops).await?;
    Ok(Response::data(obj(block)))
}

async fn data_write(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let key = key_of(&ctx)?;
    // `data` is a raw field: an explicit null is stored, and a JSON string
    // is not decoded as a map field would be.
    let data = match ctx.decode::<DataParam>()?.data {
        None => return Err(Error::bad_request("no data provided")),
        // OpenBao stores an explicit null as a version with null data.
        Some(None) => Value::Null,
        Some(Some(m @ Value::Object(_))) => m,
        Some(Some(_)) => {
            return Err(Error::bad_request(
                "error converting input for field \"data\": expected a JSON object",
            ))
        }
    };
    let _guard = s.lock(&key).await;
    let config = read_config(&ctx.storage).await?;
    let meta = read_meta(&ctx.storage, &key).await?;
    check_cas(&ctx, &config, meta.as_ref())?;
    put_version(&ctx.storage, &key, &config, meta, data).await
}

/// `PATCH data/<key>`: a JSON merge patch (RFC 7396) of the current
/// version, stored as a new version.
async fn data_patch(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let key = key_of(&ctx)?;
    let patch = match ctx.decode::<DataParam>()?.data {
        None | Some(None) => return Err(Error::bad_request("no data provided")),
        Some(Some(p @ Value::Object(_))) => p,
        Some(Some(_)) => {
            return Err(Error::bad_request(
                "error converting input for field \"data\": expected a JSON object",
            ))
        }
    };
    let _guard = s.lock(&key).await;
    let config = read_config(&ctx.storage).await?;
    let Some(meta) = read_meta(&ctx.storage, &key).await? else {
        return Ok(bare_not_found());
    };
    // Only a readable current version can be patched; OpenBao answers a
    // deleted or destroyed one with its metadata.
    match meta.versions.get(&meta.current_version) {
        None => return Ok(bare_not_found()),
        Some(vm) if !vm.readable(now()) => {
            return Ok(not_found_with(obj(
                meta.version_block(meta.current_version, vm)
            )))
        }
        Some(_) => {}
    }
    check_cas(&ctx, &config, Some(&meta))?;
    let stored = ctx
        .storage
        .get(&version_key(&key, meta.current_version))
        .await?
        .ok_or(Error::NotFound(None))?;
    let mut stored: Value = strongroom_sdk::json::from_stored(&stored)
        .map_err(|e| Error::internal(format!("corrupt kv version: {e}")))?;
    let mut data = stored.get_mut("data").map(Value::take).unwrap_or(json!({}));
    strongroom_sdk::json::merge_patch(&mut data, &patch);
    put_version(&ctx.storage, &key, &config, Some(meta), data).await
}

/// The `versions` of a delete/undelete/destroy request. With none,
/// OpenBao's message is capitalised for delete and undelete, not for
/// destroy: `empty` is the endpoint's message.
fn versions_param(ctx: &Ctx, empty: &str) -> Result<Vec<u64>> {
    let versions = ctx.decode::<VersionsParam>()?.versions.unwrap_or_default();
    if versions.is_empty() {
        return Err(Error::bad_request(empty));
    }
    versions
        .iter()
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| Error::bad_request(format!("invalid version {v:?}")))
        })
        .collect()
}

/// Applies `change` to the listed versions' metadata and stores it
/// (deleting the data of `destroy`ed ones).
async fn change_versions(
    s: &KvV2,
    ctx: &Ctx,
    versions: &[u64],
    change: impl Fn(&mut model::VersionMeta) -> bool,
) -> Result<Response> {
    let key = key_of(ctx)?;
    let _guard = s.lock(&key).await;
    let Some(mut meta) = read_meta(&ctx.storage, &key).await? else {
        return Ok(Response::empty());
    };
    let mut ops = Vec::new();
    for v in versions {
        if let Some(vm) = meta.versions.get_mut(v) {
            if change(vm) {
                ops.push(BatchOp::Delete(version_key(&key, *v)));
            }
        }
    }
    ops.push(BatchOp::Put(meta_key(&key), json_bytes(&meta)?));
    ctx.storage.batch(ops).await?;
    Ok(Response::empty())
}

/// `DELETE data/<key>`: soft-deletes the current version.
async fn data_delete(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let key = key_of(&ctx)?;
    let current = match read_meta(&ctx.storage, &key).await? {
        Some(m) => m.current_version,
        None => return Ok(Response::empty()),
    };
    soft_delete(&s, &ctx, &[current]).await
}

async fn soft_delete(s: &KvV2, ctx: &Ctx, versions: &[u64]) -> Result<Response> {
    let stamp = rfc3339(now());
    change_versions(s, ctx, versions, |vm| {
        if !vm.destroyed && !model::deleted_at(&vm.deletion_time, now()) {
            vm.deletion_time = stamp.clone();
        }
        false
    })
    .await
}

async fn delete_versions(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let versions = versions_param(&ctx, "No version number provided")?;
    soft_delete(&s, &ctx, &versions).await
}

async fn undelete_versions(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let versions = versions_param(&ctx, "No version number provided")?;
    change_versions(&s, &ctx, &versions, |vm| {
        if !vm.destroyed {
            vm.deletion_time.clear();
        }
        false
    })
    .await
}

async fn destroy_versions(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let versions = versions_param(&ctx, "no version number provided")?;
    change_versions(&s, &ctx, &versions, |vm| {
        let newly = !vm.destroyed;
        vm.destroyed = true;
        newly
    })
    .await
}

async fn metadata_read(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let key = key_of(&ctx)?;
    let meta = read_meta(&ctx.storage, &key)
        .await?
        .ok_or(Error::NotFound(None))?;
    Ok(Response::data(meta.render()))
}

async fn metadata_list(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let PathParam { path: prefix } = ctx.decode()?;
    let keys = ctx.storage.list(&meta_key(&prefix)).await?;
    if keys.is_empty() {
        return Err(Error::NotFound(None));
    }
    let mut data = Data::new();
    data.insert("keys".into(), Value::from(keys));
    Ok(Response::data(data))
}

/// The custom metadata of a request, validated as OpenBao does: strings
/// only.
fn custom_metadata(value: &Value) -> Result<Option<std::collections::BTreeMap<String, String>>> {
    match value {
        Value::Null => Ok(None),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(Error::bad_request(format!(
                    "custom_metadata values must be strings: {k:?} is not"
                ))),
            })
            .collect::<Result<_>>()
            .map(Some),
        _ => Err(Error::bad_request("custom_metadata must be an object")),
    }
}

/// OpenBao's metadata check-and-set: `metadata_cas` must equal the key's
/// `current_metadata_version` (0 for a new key), and is required when the
/// mount or the key says so.
fn check_metadata_cas(ctx: &Ctx, config: &Config, meta: Option<&KeyMeta>) -> Result<()> {
    let cas = ctx.decode::<MetadataCasParam>()?.metadata_cas;
    let required = config.metadata_cas_required || meta.is_some_and(|m| m.metadata_cas_required);
    match (cas, meta) {
        (None, _) if required => Err(Error::bad_request(
            "metadata check-and-set parameter required for this call",
        )),
        (None, _) => Ok(()),
        (Some(0), None) => Ok(()),
        (Some(_), None) => Err(Error::bad_request(
            "metadata_cas must be 0 when creating new metadata",
        )),
        (Some(c), Some(m)) if u64::try_from(c).ok() != Some(m.current_metadata_version) => {
            Err(Error::bad_request(
                "metadata check-and-set parameter does not match the current version",
            ))
        }
        (Some(_), Some(_)) => Ok(()),
    }
}

/// Applies the metadata fields of the request to `meta`. With `merge`
/// (PATCH), custom metadata is merged and a null value removes a key.
fn apply_metadata(ctx: &Ctx, meta: &mut KeyMeta, merge: bool) -> Result<()> {
    let w: Settings = ctx.decode()?;
    if let Some(m) = w.max_versions {
        meta.max_versions = max_versions(m);
    }
    if let Some(c) = w.cas_required {
        meta.cas_required = c;
    }
    if let Some(secs) = w.delete_version_after {
        meta.delete_version_after = secs;
    }
    if let Some(c) = w.metadata_cas_required {
        meta.metadata_cas_required = c;
    }
    // A raw field: a PATCH merges it, and null values inside remove keys.
    if let Some(v) = ctx.decode::<CustomMetadataParam>()?.custom_metadata {
        let v = &v.unwrap_or(Value::Null);
        if merge {
            let mut current =
                serde_json::to_value(&meta.custom_metadata).map_err(Error::internal)?;
            if current.is_null() {
                current = json!({});
            }
            strongroom_sdk::json::merge_patch(&mut current, v);
            meta.custom_metadata = custom_metadata(&current)?;
        } else {
            meta.custom_metadata = custom_metadata(v)?;
        }
    }
    Ok(())
}

async fn metadata_write(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let key = key_of(&ctx)?;
    let _guard = s.lock(&key).await;
    let t = rfc3339(now());
    let existing = read_meta(&ctx.storage, &key).await?;
    check_metadata_cas(&ctx, &read_config(&ctx.storage).await?, existing.as_ref())?;
    let mut meta = existing.unwrap_or_else(|| KeyMeta::new(&t));
    apply_metadata(&ctx, &mut meta, false)?;
    meta.current_metadata_version += 1;
    meta.updated_time = t;
    ctx.storage
        .put(&meta_key(&key), &json_bytes(&meta)?)
        .await?;
    Ok(Response::empty())
}

async fn metadata_patch(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let key = key_of(&ctx)?;
    let _guard = s.lock(&key).await;
    let Some(mut meta) = read_meta(&ctx.storage, &key).await? else {
        return Ok(bare_not_found());
    };
    check_metadata_cas(&ctx, &read_config(&ctx.storage).await?, Some(&meta))?;
    apply_metadata(&ctx, &mut meta, true)?;
    meta.current_metadata_version += 1;
    meta.updated_time = rfc3339(now());
    ctx.storage
        .put(&meta_key(&key), &json_bytes(&meta)?)
        .await?;
    Ok(Response::empty())
}

/// `DELETE metadata/<key>`: the key and every version, gone.
async fn metadata_delete(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let key = key_of(&ctx)?;
    let _guard = s.lock(&key).await;
    let Some(meta) = read_meta(&ctx.storage, &key).await? else {
        return Ok(Response::empty());
    };
    let mut ops: Vec<BatchOp> = meta
        .versions
        .keys()
        .map(|v| BatchOp::Delete(version_key(&key, *v)))
        .collect();
    ops.push(BatchOp::Delete(meta_key(&key)));
    ctx.storage.batch(ops).await?;
    Ok(Response::empty())
}

async fn subkeys_read(s: S, ctx: Ctx) -> Result<Response> {
    s.ready(&ctx.storage).await?;
    let depth = match ctx.decode::<DepthParam>()?.depth {
        None => 0,
        Some(d) if d < 0 => return Err(Error::bad_request("depth must be 0 or greater")),
        Some(d) => d as u64,
    };
    let resp = data_read(s, ctx).await?;
    let data = resp.data.unwrap_or_default();
    let metadata = data.get("metadata").cloned().unwrap_or(Value::Null);
    if resp.status == Some(404) {
        return Ok(not_found_with(obj(
            json!({"subkeys": null, "metadata": metadata}),
        )));
    }
    let keys = subkeys(data.get("data").unwrap_or(&Value::Null), depth);
    Ok(Response::data(obj(entry([
        ("subkeys", keys),
        ("metadata", metadata),
    ]))))
}

async fn data_exists(s: S, ctx: Ctx) -> Result<bool> {
    s.ready(&ctx.storage).await?;
    let Ok(key) = key_of(&ctx) else {
        return Ok(false);
    };
    // Existence only: the handler that follows reads and parses the
    // metadata itself, so it is not parsed twice per write.
    Ok(ctx.storage.get(&meta_key(&key)).await?.is_some())
}

/// OpenBao's answer to a KV v1-style request on a v2 mount.
async fn v1_style(command: &str) -> Result<Response> {
    let mut r = Response::empty().with_warning(format!(
        "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the OpenBao CLI, use 'bao kv {command}' for this operation."
    ));
    r.status = Some(404);
    Ok(r)
}

fn path_field() -> Field {
    Field::new("path", FieldType::String, "Location of the secret.")
}

fn versions_field() -> Vec<Field> {
    vec![
        path_field(),
        Field::new(
            "versions",
            FieldType::CommaStringSlice,
            "The versions to act on.",
        ),
    ]
}

fn metadata_fields() -> Vec<Field> {
    vec![
        path_field(),
        Field::new(
            "max_versions",
            FieldType::Int,
            "Versions kept for this key (0: the mount's setting).",
        ),
        Field::new(
            "cas_required",
            FieldType::Bool,
            "Writes to this key must carry options.cas.",
        ),
        Field::new(
            "delete_version_after",
            FieldType::DurationSecond,
            "Soft-delete versions this long after they are written.",
        ),
        Field::new(
            "custom_metadata",
            FieldType::Map,
            "Free string metadata for the key.",
        )
        .raw(),
        Field::new(
            "metadata_cas_required",
            FieldType::Bool,
            "Metadata writes to this key must carry metadata_cas.",
        ),
        Field::new(
            "metadata_cas",
            FieldType::Int,
            "The current_metadata_version this write expects (0: the key must not exist).",
        ),
    ]
}

/// The KV v2 backend.
pub fn backend() -> Backend<KvV2> {
    Backend::new(
        Arc::new(KvV2::default()),
        vec![
            Path::new("config")
                .fields(vec![
                    Field::new("max_versions", FieldType::Int, "Versions kept per key (0: 10)."),
                    Field::new("cas_required", FieldType::Bool, "Every write must carry options.cas."),
                    Field::new("delete_version_after", FieldType::DurationSecond, "Soft-delete versions this long after they are written (0: never)."),
                    Field::new("metadata_cas_required", FieldType::Bool, "Every metadata write must carry metadata_cas."),
                ])
                .decodes::<Settings>()
                .op(Operation::Read, handler(config_read), "Read the backend level settings.")
                .op(Operation::Update, handler(config_write), "Configure backend level settings that are applied to every key in the key-value store.")
                .help("Configures settings for the KV store", "This path configures backend level settings that are applied to every key in the key-value store: max_versions, cas_required and delete_version_after."),
            Path::new("data/{path*}")
                .fields(vec![
                    path_field(),
                    Field::new("version", FieldType::Int, "The version to read (0: the current one)."),
                    Field::new("data", FieldType::Map, "The contents of the data map will be stored and returned on read.").raw(),
                    Field::new("options", FieldType::Map, "Options for writing a KV entry: cas, the version the write expects to replace (0: the key must not exist)."),
                ])
                .decodes::<PathParam>()
                .decodes::<VersionParam>()
                .decodes::<DataParam>()
                .decodes::<OptionsParam>()
                .exists(existence(data_exists))
                .op(Operation::Read, handler(data_read), "Read the data at the given version (default: current).")
                .op(Operation::Create, handler(data_write), "Write a new version of the data.")
                .op(Operation::Update, handler(data_write), "Write a new version of the data.")
                .op(Operation::Patch, handler(data_patch), "Patch the current version with a JSON merge patch.")
                .op(Operation::Delete, handler(data_delete), "Soft-delete the current version.")
                .help("Write, Patch, Read, and Delete data in the Key-Value Store.", "Each write stores a new version; reads return the current or the given version; a deleted version answers 404 with its metadata; PATCH applies a JSON merge patch (Content-Type application/merge-patch+json)."),
            Path::new("delete/{path*}")
                .fields(versions_field())
                .decodes::<PathParam>()
                .decodes::<VersionsParam>()
                .op(Operation::Update, handler(delete_versions), "Soft-delete the given versions.")
                .help("Marks one or more versions as deleted in the KV store.", "Deleted versions answer 404 on read until undeleted; their data is kept."),
            Path::new("undelete/{path*}")
                .fields(versions_field())
                .decodes::<PathParam>()
                .decodes::<VersionsParam>()
                .op(Operation::Update, handler(undelete_versions), "Undelete the given versions.")
                .help("Undeletes one or more versions from the KV store.", "Clears the deletion of the given versions (destroyed versions stay destroyed)."),
            Path::new("destroy/{path*}")
                .fields(versions_field())
                .decodes::<PathParam>()
                .decodes::<VersionsParam>()
                .op(Operation::Update, handler(destroy_versions), "Permanently remove the given versions' data.")
                .help("Permanently removes one or more versions in the KV store", "The data of the given versions is deleted; their metadata is kept, marked destroyed."),
            Path::new("metadata/{path*}")
                .fields(metadata_fields())
                .decodes::<PathParam>()
                .decodes::<Settings>()
                .decodes::<CustomMetadataParam>()
                .decodes::<MetadataCasParam>()
                .op(Operation::Read, handler(metadata_read), "Read the key's metadata and its versions.")
                .op(Operation::List, handler(metadata_list), "List the keys below a path.")
                .op(Operation::Create, handler(metadata_write), "Write the key's metadata settings.")
                .op(Operation::Update, handler(metadata_write), "Write the key's metadata settings.")
                .op(Operation::Patch, handler(metadata_patch), "Patch the key's metadata settings.")
                .op(Operation::Delete, handler(metadata_delete), "Delete the key's metadata and every version.")
                .help("Allows interaction with key metadata and settings in the KV store.", "Reads, lists, writes, patches and deletes a key's metadata: max_versions, cas_required, delete_version_after, custom_metadata, and the versions with their times. Deleting the metadata deletes every version."),
            Path::new("subkeys/{path*}")
                .fields(vec![
                    path_field(),
                    Field::new("version", FieldType::Int, "The version to read (0: the current one)."),
                    Field::new("depth", FieldType::Int, "How deep to descend (0: all the way)."),
                ])
                .decodes::<PathParam>()
                .decodes::<VersionParam>()
                .decodes::<DepthParam>()
                .op(Operation::Read, handler(subkeys_read), "Read the structure of a secret, without its values.")
                .help("Read the structure of a secret entry from the Key-Value store with the values removed.", "Returns the keys of the secret with every leaf value null, down to depth levels."),
            // Anything else is a KV v1-style path: OpenBao answers 404 with
            // a warning naming the CLI command to use.
            Path::new("{path*}")
                .arbitrary_input()
                .op(Operation::Read, handler(|_: S, _| v1_style("get")), "Not a KV v2 path.")
                .op(Operation::Update, handler(|_: S, _| v1_style("put")), "Not a KV v2 path.")
                .op(Operation::Patch, handler(|_: S, _| v1_style("patch")), "Not a KV v2 path.")
                .op(Operation::Delete, handler(|_: S, _| v1_style("delete")), "Not a KV v2 path.")
                .op(Operation::List, handler(|_: S, _| v1_style("list")), "Not a KV v2 path.")
                .help("", "Not a KV v2 path: versioned secrets live under data/, metadata/, delete/, undelete/, destroy/ and subkeys/."),
        ],
        "The kv backend reads and writes arbitrary secrets to the backend,\nkeeping versions of each. The secrets are encrypted/decrypted by\nStrongroom: they are never stored unencrypted in the backend.",
    )
}

#[cfg(test)]
mod tests {
    use strongroom_sdk::framework::{BackendRequest, LogicalBackend, MountContext};
    use strongroom_sdk::logical::Request;
    use strongroom_sdk::storage::MemoryStorage;

    use super::*;

    async fn write(b: &Backend<KvV2>, storage: &View, key: &str, cas: u64) -> Result<Response> {
        let Value::Object(data) = json!({"data": {"n": cas}, "options": {"cas": cas}}) else {
            unreachable!("a JSON object literal")
        };
        let req = Request::new(Operation::Update, format!("data/{key}")).with_data(data);
        b.handle(BackendRequest::new(
            req,
            storage.clone(),
            Arc::new(MountContext::default()),
        ))
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_check_and_set_writes_to_one_key_serialise() {
        let b = Arc::new(backend());
        let storage = MemoryStorage::view("secret/");
        // Every round, 8 writers expect the same current version: exactly
        // one wins, the others are told their cas did not match.
        for round in 0..5u64 {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (b, storage) = (b.clone(), storage.clone());
                    tokio::spawn(async move { write(&b, &storage, "k", round).await })
                })
                .collect();
            let mut won = 0;
            for t in tasks {
                match t.await.unwrap() {
                    Ok(r) => {
                        won += 1;
                        assert_eq!(r.data.unwrap()["version"], json!(round + 1));
                    }
                    Err(Error::BadRequest(m)) => assert_eq!(
                        m,
                        "check-and-set parameter did not match the current version"
                    ),
                    Err(other) => panic!("unexpected error {other}"),
                }
            }
            assert_eq!(won, 1, "round {round}");
        }
        let meta = read_meta(&storage, "k").await.unwrap().unwrap();
        assert_eq!(meta.current_version, 5);
    }

    #[tokio::test]
    async fn the_locks_do_not_grow_with_the_keys() {
        let b = backend();
        let storage = MemoryStorage::view("secret/");
        for i in 0..200 {
            write(&b, &storage, &format!("k{i}"), 0).await.unwrap();
        }
        assert_eq!(b.state().locks.len(), LOCK_STRIPES);
    }
}
