//! Stage 3, authenticate: unless the path is unauthenticated (the serving
//! mount's login paths, as OpenBao's router answers them, or an unwrap that
//! names its wrapping token in the header), the request's token is looked
//! up, its CIDR binding checked, and one of its uses spent. A missing,
//! unknown, expired or used-up token gets OpenBao's plain 403.
//!
//! A token used outside its namespace (in a parent or a sibling) is still
//! authenticated here; authorisation denies it. Its own lookup, renewal
//! and revocation (`auth/token/*-self`) follow it home: as in OpenBao,
//! they answer in the token's namespace wherever they are sent.

use strongroom_sdk::{Error, Result};

use super::{route, RequestCtx};
use crate::node::Active;

/// Authenticates the request (see the module doc).
pub async fn authenticate(active: &Active, ctx: &mut RequestCtx) -> Result<()> {
    let (unauthenticated, sudo) = match route::lookup(ctx) {
        Some((route, rel)) => {
            let special = route.backend.special_paths();
            (
                special.unauthenticated.contains(rel),
                special.root.contains(rel),
            )
        }
        None => (false, false),
    };
    ctx.sudo = sudo;
    ctx.unauthenticated = unauthenticated || wrapping_token_in_header(ctx);
    if ctx.unauthenticated {
        return Ok(());
    }
    let req = ctx.request()?;
    let token = req.client_token.as_ref().ok_or_else(denied)?;
    if token.0.is_empty() {
        return Err(denied());
    }
    let entry = active.tokens.lookup(&token.0).await?.ok_or_else(denied)?;
    if entry.num_uses < 0 {
        return Err(denied());
    }
    if !entry.bound_cidrs.is_empty() {
        let allowed = req
            .remote_addr
            .is_some_and(|ip| entry.bound_cidrs.iter().any(|c| c.contains(ip)));
        if !allowed {
            return Err(denied());
        }
    }
    let used = active.tokens.use_token(entry).await.map_err(|e| match e {
        Error::PermissionDenied => denied(),
        e => e,
    })?;
    ctx.exhausted = used.exhausted;
    if !used.entry.namespace_id.is_empty() && is_self_path(&ctx.path) {
        if let Some(home) = active.namespaces.by_id(&used.entry.namespace_id) {
            if ctx.tenant()?.id != home.id {
                ctx.tenant = Some(home);
                ctx.looked_up = false;
                ctx.routed = None;
            }
        }
    }
    ctx.token = Some(used.entry);
    Ok(())
}

/// The token store's paths about the calling token itself.
fn is_self_path(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/'),
        "auth/token/lookup-self" | "auth/token/renew-self" | "auth/token/revoke-self"
    )
}

/// What a missing, unknown, expired or used-up token gets: OpenBao's plain
/// 403 (an ACL refusal renders differently).
fn denied() -> Error {
    Error::Forbidden("permission denied".into())
}

/// Requests to `sys/wrapping/unwrap` or `rewrap` without a `token` field
/// name the wrapping token in the header: the handler validates (and
/// spends) it itself, so that an invalid one gets OpenBao's 400 rather
/// than a 403.
fn wrapping_token_in_header(ctx: &RequestCtx) -> bool {
    matches!(
        ctx.path.trim_end_matches('/'),
        "sys/wrapping/unwrap" | "sys/wrapping/rewrap"
    ) && ctx
        .data()
        .get("token")
        .and_then(serde_json::Value::as_str)
        .is_none_or(str::is_empty)
}
