//! The `cubbyhole/` secrets engine: private storage per token. Each service
//! token has a random cubbyhole id; the engine stores the token's secrets
//! under `<cubbyhole id>/` in the mount's storage, so no token can see
//! another's, and the core destroys the whole folder when the token is
//! revoked. Response wrapping keeps wrapped responses in the wrapping
//! token's cubbyhole.
//!
//! It lives in the core, not in its own crate like other engines, because
//! it is part of the token lifecycle: always mounted, never removable, and
//! emptied by revocation.

use std::sync::Arc;

use crate::token::TokenEntry;
use strongroom_sdk::framework::{existence, handler, Backend, Ctx, Path};
use strongroom_sdk::logical::{Data, Operation, Response};
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};

/// The engine's (empty) state.
#[derive(Debug, Default)]
pub struct Cubbyhole;

type S = Arc<Cubbyhole>;

/// The storage of the calling token's cubbyhole.
fn own(ctx: &Ctx) -> Result<View> {
    let entry = ctx
        .extensions
        .get::<Arc<TokenEntry>>()
        .ok_or(Error::PermissionDenied)?;
    if entry.is_batch() || entry.cubbyhole_id.is_empty() {
        return Err(Error::bad_request(
            "cubbyhole operations are only supported by 'service' type tokens",
        ));
    }
    Ok(ctx.storage.sub_view(&format!("{}/", entry.cubbyhole_id)))
}

fn key(ctx: &Ctx) -> Result<String> {
    let path = ctx.request.path.trim_start_matches('/');
    if path.is_empty() || path.ends_with('/') {
        return Err(Error::bad_request("missing path"));
    }
    Ok(path.to_string())
}

async fn read(_s: S, ctx: Ctx) -> Result<Response> {
    let view = own(&ctx)?;
    match view.get(&key(&ctx)?).await? {
        None => Err(Error::NotFound(None)),
        Some(bytes) => {
            let data: Data = strongroom_sdk::json::from_stored(&bytes)
                .map_err(|e| Error::internal(format!("corrupt cubbyhole entry: {e}")))?;
            Ok(Response::data(data))
        }
    }
}

async fn write(_s: S, ctx: Ctx) -> Result<Response> {
    let view = own(&ctx)?;
    let key = key(&ctx)?;
    if ctx.request.data.is_empty() {
        return Err(Error::bad_request("missing data fields"));
    }
    let bytes = strongroom_sdk::json::map_to_vec(&ctx.request.data).map_err(Error::internal)?;
    view.put(&key, &bytes).await?;
    Ok(Response::empty())
}

async fn delete(_s: S, ctx: Ctx) -> Result<Response> {
    let view = own(&ctx)?;
    view.delete(&key(&ctx)?).await?;
    Ok(Response::empty())
}

async fn list(_s: S, ctx: Ctx) -> Result<Response> {
    let view = own(&ctx)?;
    let prefix = ctx.request.path.trim_start_matches('/');
    Response::keys(view.list(prefix).await?)
}

async fn exists(_s: S, ctx: Ctx) -> Result<bool> {
    let view = own(&ctx)?;
    Ok(view.get(&key(&ctx)?).await?.is_some())
}

/// The cubbyhole engine.
pub fn backend() -> Backend<Cubbyhole> {
    Backend::new(
        Arc::new(Cubbyhole),
        vec![Path::new("{path*}")
            .arbitrary_input()
            .op(Operation::Read, handler(read), "Read a secret from the calling token's cubbyhole.")
            .op(Operation::Create, handler(write), "Store a secret in the calling token's cubbyhole.")
            .op(Operation::Update, handler(write), "Store a secret in the calling token's cubbyhole.")
            .op(Operation::Delete, handler(delete), "Delete a secret from the calling token's cubbyhole.")
            .op(Operation::List, handler(list), "List the secrets in the calling token's cubbyhole.")
            .exists(existence(exists))
            .help(
                "Pass-through secret storage to a token-specific cubbyhole in the storage backend, allowing you to read/write arbitrary data into secret storage.",
                "The cubbyhole backend reads and writes arbitrary secrets to the backend. The secrets are encrypted/decrypted by Strongroom: they are never stored unencrypted, and only the token that wrote them can read them. They are destroyed with the token.",
            )],
        "The cubbyhole backend reads and writes arbitrary secrets to a storage\nspace private to the calling token, destroyed when the token is revoked.",
    )
}
