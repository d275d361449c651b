//! KV version 1: one JSON object per path, no versions. A `ttl` key in the
//! object sets the `lease_duration` readers are told (a re-read hint, not a
//! revocation), as in Vault.

use std::sync::Arc;

use strongroom_sdk::duration::duration_from_json;
use strongroom_sdk::framework::{existence, handler, Backend, Ctx, Field, FieldType, Path};
use strongroom_sdk::logical::{Data, Lease, Operation, Response};
use strongroom_sdk::{Error, Result};

/// KV v1 has no state beyond its storage view.
pub struct KvV1;

type S = Arc<KvV1>;

fn key(ctx: &Ctx) -> &str {
    &ctx.request.path
}

/// The TTL a secret carries: its `ttl` (or legacy `lease`) key, else the
/// mount's default lease TTL.
fn lease_for(ctx: &Ctx, data: &Data) -> Result<Lease> {
    let ttl = match data.get("ttl").or_else(|| data.get("lease")) {
        Some(v) => duration_from_json(v)
            .map_err(|_| Error::bad_request("failed to parse ttl for passthrough"))?,
        None => ctx.mount.default_lease_ttl,
    };
    Ok(Lease {
        lease_id: String::new(),
        lease_duration: ttl.as_secs(),
        renewable: false,
        // A refresh hint, not a lease: nothing to revoke.
        internal: None,
    })
}

async fn read(_s: S, ctx: Ctx) -> Result<Response> {
    let k = key(&ctx);
    if k.is_empty() || k.ends_with('/') {
        return Err(Error::NotFound(None));
    }
    let Some(bytes) = ctx.storage.get(k).await? else {
        return Err(Error::NotFound(None));
    };
    let data: Data = strongroom_sdk::json::from_stored(&bytes)
        .map_err(|e| Error::internal(format!("json decoding failed: {e}")))?;
    let lease = lease_for(&ctx, &data).unwrap_or_default();
    Ok(Response {
        data: Some(data),
        lease: Some(lease),
        ..Default::default()
    })
}

async fn write(_s: S, ctx: Ctx) -> Result<Response> {
    let k = key(&ctx);
    if k.is_empty() || k.ends_with('/') {
        return Err(Error::bad_request("cannot write to a path ending in '/'"));
    }
    let data = ctx.fields.raw();
    if data.is_empty() {
        return Err(Error::bad_request("missing data fields"));
    }
    // Validate the TTL hint before storing anything.
    lease_for(&ctx, data)?;
    let bytes = strongroom_sdk::json::map_to_vec(data)
        .map_err(|e| Error::internal(format!("failed to encode: {e}")))?;
    ctx.storage.put(k, &bytes).await?;
    Ok(Response::empty())
}

async fn delete(_s: S, ctx: Ctx) -> Result<Response> {
    let k = key(&ctx);
    if !k.is_empty() && !k.ends_with('/') {
        ctx.storage.delete(k).await?;
    }
    Ok(Response::empty())
}

async fn list(_s: S, ctx: Ctx) -> Result<Response> {
    let prefix = key(&ctx);
    Response::keys(ctx.storage.list(prefix).await?)
}

async fn exists(_s: S, ctx: Ctx) -> Result<bool> {
    let k = key(&ctx);
    if k.is_empty() || k.ends_with('/') {
        return Ok(false);
    }
    Ok(ctx.storage.get(k).await?.is_some())
}

/// The KV v1 backend.
pub fn backend() -> Backend<KvV1> {
    Backend::new(
        Arc::new(KvV1),
        vec![Path::new("{path*}")
            .fields(vec![Field::new(
                "path",
                FieldType::String,
                "Location of the secret.",
            )])
            .arbitrary_input()
            .exists(existence(exists))
            .op(Operation::Read, handler(read), "Retrieve the secret at the specified location.")
            .op(Operation::Create, handler(write), "Store a secret at the specified location.")
            .op(Operation::Update, handler(write), "Store a secret at the specified location.")
            .op(Operation::Delete, handler(delete), "Delete the secret at the specified location.")
            .op(Operation::List, handler(list), "List secret entries at the specified location.")
            .help(
                "Pass-through secret storage to the storage backend, allowing you to\nread/write arbitrary data into secret storage.",
                "The pass-through backend reads and writes arbitrary data into secret storage,\nencrypting it along the way.\n\nA TTL can be specified when writing with the \"ttl\" field. If given, the\nduration of leases returned by this backend will be set to this value. This\ncan be used as a hint from the writer of a secret to the consumer of a secret\nthat the consumer should re-read the value before the TTL has expired.\nHowever, any revocation must be handled by the user of this backend; the lease\nduration does not affect the provided data in any way.",
            )],
        "The kv backend reads and writes arbitrary secrets to the backend.\nThe secrets are encrypted/decrypted by Vault: they are never stored\nunencrypted in the backend and the backend never has an opportunity to\nsee the unencrypted value.",
    )
}
