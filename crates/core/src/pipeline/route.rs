//! Stage 4, route: the longest mounted prefix picks the backend (see
//! [`crate::router`]). The backend's own request is made here, once: the
//! path relative to the mount, the data moved from the wire request, the
//! mount's storage and a snapshot of its context, and the caller's token
//! entry for the core's built-in backends. The context keeps the original
//! path; nothing rewrites the backend's request behind its back.

use std::sync::Arc;

use strongroom_sdk::framework::BackendRequest;
use strongroom_sdk::logical::Request;
use strongroom_sdk::{Error, Result};

use super::{RequestCtx, Routed};
use crate::router::Route;

/// The mount serving the request's path and the relative path (looked up
/// once per request; authentication asks first, for the special paths).
pub fn lookup(ctx: &mut RequestCtx) -> Option<(&Arc<Route>, &str)> {
    if !ctx.looked_up {
        ctx.looked_up = true;
        let routes = ctx.tenant.as_ref()?.routes.load();
        ctx.routed = routes.lookup(&ctx.path).map(|(route, rel)| Routed {
            route: route.clone(),
            relative: rel.to_string(),
            mount: route.mount.load_full(),
        });
    }
    ctx.routed.as_ref().map(|r| (&r.route, r.relative.as_str()))
}

/// Routes the request and makes the backend's request. No mount: the
/// request stays unrouted (authorisation decides between 403 and 404).
pub fn route(ctx: &mut RequestCtx) -> Result<()> {
    if lookup(ctx).is_none() {
        return Ok(());
    }
    let Some(routed) = ctx.routed.as_ref() else {
        return Ok(());
    };
    let wire = ctx
        .request
        .take()
        .ok_or_else(|| Error::internal("the request was already routed"))?;
    let request = Request {
        path: routed.relative.clone(),
        ..wire
    };
    let mut breq = BackendRequest::new(request, routed.route.storage.clone(), routed.mount.clone());
    if routed.route.builtin_caller {
        if let Some(token) = &ctx.token {
            breq.extensions.insert(token.clone());
        }
        if let Some(tenant) = &ctx.tenant {
            breq.extensions.insert(tenant.clone());
        }
    }
    if routed.route.table == crate::mount::Table::Mounts && routed.route.prefix == "identity/" {
        // The identity backend (its OIDC tokens) is told who calls and
        // from which namespace; the mount cannot move, so its prefix names it.
        let (namespace_id, namespace_path) = match &ctx.tenant {
            Some(t) if !t.is_root() => (t.id.to_string(), t.path.to_string()),
            _ => ("root".to_string(), String::new()),
        };
        breq.extensions.insert(strongroom_sdk::identity::Caller {
            entity_id: ctx
                .token
                .as_ref()
                .map(|t| t.entity_id.clone())
                .unwrap_or_default(),
            namespace_id,
            namespace_path,
        });
    }
    ctx.backend_request = Some(breq);
    Ok(())
}
