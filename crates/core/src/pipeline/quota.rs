//! Stage 2b, quota: the rate-limit quotas, enforced before
//! authentication (after the namespace is known and the mount looked up,
//! so that namespace, mount and path quotas can match). The most specific
//! quota that matches takes a token from the client address's bucket
//! (see [`strongroom_quota`]); an empty bucket is OpenBao's 429
//! `request path "<p>": rate limit quota exceeded`, counted in
//! `vault.quota.rate_limit.violation`. With
//! `enable_rate_limit_response_headers`, every answer carries the bucket's
//! `X-RateLimit-*` headers and a refusal `Retry-After`.
//!
//! Lease-count quotas are checked here too, by the post-processing stage
//! ([`check_lease_count`]) before a lease or a login token is created.

use std::time::Instant;

use strongroom_quota::{RateOutcome, Target};
use strongroom_sdk::framework::BackendRequest;
use strongroom_sdk::{Error, Result};

use super::{route, RequestCtx};
use crate::node::Active;

/// Applies the rate-limit quota matching the request; a refusal is the
/// error to answer (with the headers when enabled). A login to an auth
/// mount that has role quotas has its role resolved first (the method's
/// [`resolve_role`](strongroom_sdk::framework::LogicalBackend::resolve_role)),
/// and kept for the lease-count check.
pub async fn check(active: &Active, ctx: &mut RequestCtx) -> Result<()> {
    let quotas = &active.quotas;
    if !quotas.any_rate_limits() && !quotas.any_lease_counts() {
        return Ok(());
    }
    // Boxed: while no quota exists the request path's future does not
    // carry this one's state (every request's future is moved into the
    // heap whole).
    Box::pin(apply(active, ctx)).await
}

/// [`check`] once some quota exists.
async fn apply(active: &Active, ctx: &mut RequestCtx) -> Result<()> {
    let quotas = &active.quotas;
    let namespace = ctx.tenant()?.path.to_string();
    let mount = route::lookup(ctx)
        .map(|(route, _)| route.prefix.clone())
        .unwrap_or_default();
    if mount.starts_with("auth/") && quotas.role_quota_on(&namespace, &mount) {
        ctx.login_role = resolve_role(ctx).await?;
    }
    if !quotas.any_rate_limits() {
        return Ok(());
    }
    let snapshot = quotas.snapshot();
    let target = Target {
        namespace: &namespace,
        mount: &mount,
        path: &ctx.path,
        role: ctx.login_role.as_deref(),
    };
    let outcome = quotas.check_rate(&target, ctx.remote_addr, Instant::now());
    let RateOutcome::Limited { name, decision } = outcome else {
        return Ok(());
    };
    let headers: Vec<(String, String)> = if snapshot.config.enable_rate_limit_response_headers {
        decision
            .headers()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    } else {
        Vec::new()
    };
    if decision.allowed {
        ctx.quota_headers = headers;
        return Ok(());
    }
    strongroom_telemetry::quota_violation(&name);
    ctx.rate_limited = true;
    ctx.audit_rate_limited = snapshot.config.enable_rate_limit_audit_logging;
    Err(Error::TooManyRequests(format!(
        "request path {:?}: rate limit quota exceeded",
        ctx.path
    ))
    .with_headers(headers))
}

/// Asks the request's auth method which role the login names.
async fn resolve_role(ctx: &RequestCtx) -> Result<Option<String>> {
    let Some(routed) = ctx.routed.as_ref() else {
        return Ok(None);
    };
    let mut request = ctx.request()?.clone();
    request.path = routed.relative.clone();
    let breq = BackendRequest::new(request, routed.route.storage.clone(), routed.mount.clone());
    routed.route.backend.resolve_role(&breq).await
}

/// Refuses to create one more lease or login token at the request's path
/// when a lease-count quota applies and its count is reached: OpenBao's
/// (Vault's) 429 `lease count quota exceeded`. `existing` counts the
/// leases and tokens under the quota's path in the request's namespace.
pub async fn check_lease_count<F, Fut>(active: &Active, ctx: &RequestCtx, existing: F) -> Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<u64>>,
{
    if !active.quotas.any_lease_counts() {
        return Ok(());
    }
    let tenant = ctx.tenant()?;
    let mount = ctx
        .routed
        .as_ref()
        .map(|r| r.route.prefix.clone())
        .unwrap_or_default();
    let target = Target {
        namespace: &tenant.path,
        mount: &mount,
        path: &ctx.path,
        role: ctx.login_role.as_deref(),
    };
    let Some(quota) = active.quotas.lease_quota(&target) else {
        return Ok(());
    };
    // The quota's own prefix in the request's namespace; an inherited
    // namespace quota counts the whole namespace.
    let prefix = if quota.scope.namespace == *tenant.path {
        format!("{}{}", quota.scope.mount, quota.scope.rest)
    } else {
        String::new()
    };
    if existing(prefix).await? >= quota.max_leases {
        return Err(Error::TooManyRequests(format!(
            "request path {:?}: lease count quota exceeded",
            ctx.path
        )));
    }
    Ok(())
}
