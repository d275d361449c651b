//! Stage 5, authorise: first the existence check that turns an update into
//! a create (so a policy may allow creating without allowing overwriting),
//! then the ACL of the token's policies on the final operation (OpenBao's
//! order). `sudo` paths also need the sudo capability; the matching rule's
//! wrapping TTL bounds apply to the requested wrap TTL; response-wrapping
//! tokens may only unwrap, look up and rewrap. Deny by default. A path no
//! mount serves is a 404, once the token may reach it.
//!
//! A token's policies are its own plus its entity's identity policies
//! (the entity's and its groups', see `Tenant::token_policies`), taken
//! from memory; a disabled entity's token is refused. The policies are its
//! namespace's, and their paths are relative to
//! that namespace: the ACL is checked on the request's path from the
//! token's namespace (`ns2/secret/foo` for a token of `ns1/` in
//! `ns1/ns2/`). A request outside the token's namespace (in a parent or a
//! sibling) is denied, whatever the policies.

use strongroom_sdk::logical::Operation;
use strongroom_sdk::{Error, Result};

use super::{Authorization, RequestCtx};
use crate::node::Active;

/// Authorises the request (see the module doc).
pub async fn authorize(active: &Active, ctx: &mut RequestCtx) -> Result<()> {
    let Some(routed) = ctx.routed.as_ref() else {
        if ctx.token.is_some() {
            check_acl(active, ctx).await?;
        }
        return Err(Error::NotFound(Some(format!(
            "no handler for route {:?}. route entry not found.",
            ctx.path
        ))));
    };
    if ctx.operation == Operation::Update && ctx.token.is_some() {
        if let Some(breq) = ctx.backend_request.as_mut() {
            if let Some(false) = routed.route.backend.exists(breq).await? {
                breq.request.operation = Operation::Create;
                ctx.operation = Operation::Create;
            }
        }
    }
    if ctx.token.is_some() {
        check_acl(active, ctx).await?;
    } else {
        ctx.authorization = Some(Authorization::Unauthenticated);
    }
    Ok(())
}

/// The ACL check of the request's token on its full path.
async fn check_acl(active: &Active, ctx: &mut RequestCtx) -> Result<()> {
    let Some(entry) = ctx.token.clone() else {
        return Err(Error::PermissionDenied);
    };
    if entry.is_wrapping() {
        return match ctx.path.as_str() {
            "sys/wrapping/unwrap" | "sys/wrapping/lookup" | "sys/wrapping/rewrap" => {
                ctx.authorization = Some(Authorization::Wrapping);
                Ok(())
            }
            _ => Err(Error::PermissionDenied),
        };
    }
    // The token's namespace: root, or one the token's id names.
    let foreign = if entry.namespace_id.is_empty() {
        None
    } else {
        Some(
            active
                .namespaces
                .by_id(&entry.namespace_id)
                .ok_or(Error::PermissionDenied)?,
        )
    };
    let home: &crate::node::tenant::Tenant = foreign.as_deref().unwrap_or(active.root());
    let tenant = ctx.tenant()?;
    if !tenant.is_within(home) {
        return Err(Error::PermissionDenied);
    }
    let in_root = tenant.is_root();
    if entry.is_root() {
        ctx.authorization = Some(Authorization::Root);
        return Ok(());
    }
    // The token's own policies and its entity's (a disabled entity's
    // token is refused), from memory; the entity's facts render templated
    // policies, and are gathered only when the set has templates.
    let policies = home.token_policies(&entry)?;
    let acl = home
        .policies
        .acl_for(&policies, || home.identity_facts(&entry.entity_id))
        .await?;
    let full;
    let relative: &str = if in_root {
        &ctx.path
    } else {
        full = ctx.full_path();
        &full[home.path.len()..]
    };
    let decision = acl.check(relative, ctx.operation, ctx.data());
    if !decision.allowed || (ctx.sudo && !decision.sudo) {
        return Err(Error::PermissionDenied);
    }
    if let Some(min) = decision.min_wrapping_ttl {
        if ctx.wrap_ttl.is_none_or(|t| t < min) {
            return Err(Error::PermissionDenied);
        }
    }
    if let (Some(max), Some(t)) = (decision.max_wrapping_ttl, ctx.wrap_ttl) {
        if t > max {
            return Err(Error::PermissionDenied);
        }
    }
    ctx.authorization = Some(Authorization::Acl(decision));
    Ok(())
}
