//! Stage 8, post-processing: what the core adds to a backend's answer. A
//! login's [`TokenIssue`](strongroom_sdk::logical::TokenIssue) becomes a
//! token and the `auth` block; a leased secret is registered with the
//! expiration manager (bounded by the mount's TTLs); the answer is wrapped
//! when the client asked for it.

use strongroom_sdk::logical::Response;
use strongroom_sdk::{Error, Result};

use super::{quota, RequestCtx, Stage};
use crate::mount::Table;
use crate::node::{Active, Core};

/// Post-processes the backend's answer.
pub async fn process(
    core: &Core,
    active: &Active,
    ctx: &mut RequestCtx,
    mut resp: Response,
) -> Result<Response> {
    let outcome = async {
        let leases =
            resp.issue.is_some() || resp.lease.as_ref().is_some_and(|l| l.internal.is_some());
        if leases && active.quotas.any_lease_counts() {
            let ns = ctx.tenant()?.store_id().to_string();
            // Boxed, as the other heavy steps: a lease-count quota is rare.
            Box::pin(quota::check_lease_count(active, ctx, |prefix| async move {
                let tokens = active
                    .tokens
                    .entries_matching(|e| e.namespace_id == ns && e.path.starts_with(&prefix))
                    .await?
                    .len();
                Ok(active.leases.count_under(&ns, &prefix)
                    + u64::try_from(tokens).unwrap_or(u64::MAX))
            }))
            .await?;
        }
        let Some(routed) = ctx.routed.as_ref() else {
            return Err(Error::internal("an answered request has no route"));
        };
        if let Some(issue) = resp.issue.take() {
            if routed.route.table != Table::Auth {
                return Err(Error::internal("a secrets engine asked for a login token"));
            }
            let entry = routed.route.entry.load();
            // The heavy steps are boxed: their futures would otherwise
            // make every request's pipeline future kilobytes larger.
            let tenant = ctx.tenant()?.clone();
            resp.auth = Some(
                Box::pin(core.issue_login_token(
                    active,
                    tenant.store_id(),
                    &tenant.path,
                    &entry,
                    &ctx.path,
                    issue,
                    ctx.remote_addr,
                ))
                .await?,
            );
        }
        if let Some(lease) = resp.lease.as_mut() {
            if let Some(internal) = lease.internal.take() {
                let ttl = match lease.lease_duration {
                    0 => routed.mount.default_lease_ttl.as_secs(),
                    t => t,
                };
                let entry = Box::pin(active.leases.register(
                    ctx.tenant()?.store_id(),
                    &ctx.path,
                    ctx.token.as_ref().map_or("", |t| t.id_hash.as_str()),
                    internal,
                    ttl,
                    routed.mount.max_lease_ttl.as_secs(),
                    lease.renewable,
                ))
                .await?;
                lease.lease_id = entry.lease_id.clone();
                lease.lease_duration = entry.ttl;
            }
        }
        if let Some(ttl) = ctx.wrap_ttl {
            if resp.raw.is_none() && (resp.data.is_some() || resp.auth.is_some()) {
                let ttl = ttl.as_secs().max(1);
                let mount_type = routed.route.entry.load().kind.clone();
                resp = Box::pin(core.wrap_response(
                    active,
                    ctx.tenant()?.store_id(),
                    &resp,
                    ttl,
                    &ctx.path,
                    &ctx.id,
                    &mount_type,
                ))
                .await?;
            }
        }
        Ok(resp)
    }
    .await;
    ctx.lap(Stage::PostProcess);
    outcome
}
