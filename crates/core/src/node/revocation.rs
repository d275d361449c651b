//! Revocation: a token with its whole tree (children first, each with its
//! leases and cubbyhole), a token alone (its children become orphans), a
//! secret lease (the backend that issued it undoes it), everything under a
//! prefix, tidying, and what the reaper revokes when it is due.

use super::tenant::Tenant;
use super::{Active, Core};
use crate::expiration::Due;
use crate::token::now_unix;
use strongroom_sdk::framework::BackendRequest;
use strongroom_sdk::logical::{Operation, Request};
use strongroom_sdk::storage::{BatchOp, View};
use strongroom_sdk::Result;

impl Core {
    /// Revokes a token and everything below it: children first, each with
    /// its leases and cubbyhole.
    pub async fn revoke_token_tree(&self, hash: &str) -> Result<()> {
        let unsealed = self.active()?;
        for h in unsealed.tokens.tree_postorder(hash).await? {
            self.revoke_one_token(&unsealed, &h).await?;
        }
        Ok(())
    }

    /// Revokes a token but not its children, which become orphans.
    pub async fn revoke_token_orphan(&self, hash: &str) -> Result<()> {
        let unsealed = self.active()?;
        unsealed.tokens.orphan_children(hash).await?;
        self.revoke_one_token(&unsealed, hash).await
    }

    async fn revoke_one_token(&self, unsealed: &Active, hash: &str) -> Result<()> {
        for lease in unsealed.leases.of_token(hash) {
            self.revoke_lease(unsealed, &lease, false).await?;
        }
        if let Some(entry) = unsealed.tokens.get_any(hash).await? {
            // The cubbyhole is in the token's namespace (gone with it when
            // the namespace was deleted).
            if let Some(tenant) = unsealed.namespaces.by_id(&entry.namespace_id) {
                if !entry.cubbyhole_id.is_empty() {
                    clear_view(
                        &tenant
                            .cubbyhole
                            .sub_view(&format!("{}/", entry.cubbyhole_id)),
                    )
                    .await?;
                }
            }
        }
        unsealed.tokens.delete(hash).await
    }

    /// Revokes a secret lease: the backend that issued it undoes it, then
    /// the lease is forgotten. With `force`, a backend error is logged and
    /// the lease forgotten anyway (`sys/leases/revoke-force`).
    pub async fn revoke_lease(&self, unsealed: &Active, lease_id: &str, force: bool) -> Result<()> {
        let Some(lease) = unsealed.leases.get(lease_id) else {
            return Ok(());
        };
        let tenant = unsealed.namespaces.by_id(&lease.namespace_id);
        let routes = tenant.map(|t| t.routes.load_full());
        if let Some((route, rel)) = routes.as_ref().and_then(|r| r.lookup(&lease.path)) {
            let mut request = Request::new(Operation::Delete, rel);
            request.data = lease.internal.clone();
            let outcome = route
                .backend
                .revoke_secret(BackendRequest::new(
                    request,
                    route.storage.clone(),
                    route.mount.load_full(),
                ))
                .await;
            if let Err(e) = outcome {
                if !force {
                    return Err(e);
                }
                tracing::warn!(lease_id, error = %e, "forced revocation: backend failed, lease dropped");
            }
        }
        unsealed.leases.remove(lease_id).await
    }

    /// Revokes every lease (tokens included) of a namespace below the path
    /// `prefix` (relative to the namespace, matched by whole segments:
    /// `auth/token/create` does not reach `auth/token/create-orphan`).
    pub async fn revoke_prefix(&self, tenant: &Tenant, prefix: &str, force: bool) -> Result<()> {
        let unsealed = self.active()?;
        let prefix = match prefix.trim_start_matches('/') {
            p if p.is_empty() || p.ends_with('/') => p.to_string(),
            p => format!("{p}/"),
        };
        let prefix = prefix.as_str();
        let ns = tenant.store_id();
        for id in unsealed.leases.of_namespace(ns) {
            if id.starts_with(prefix) {
                self.revoke_lease(&unsealed, &id, force).await?;
            }
        }
        let matching = unsealed
            .tokens
            .entries_matching(|e| e.namespace_id == ns && e.lease_id().starts_with(prefix))
            .await?;
        for entry in matching {
            self.revoke_token_tree(&entry.id_hash).await?;
        }
        Ok(())
    }

    /// `auth/token/tidy` and `sys/leases/tidy`: revokes tokens whose parent
    /// is gone and leases whose token is gone.
    pub async fn tidy_tokens(&self) -> Result<()> {
        let unsealed = self.active()?;
        for hash in unsealed.tokens.tidy_candidates().await? {
            self.revoke_token_tree(&hash).await?;
        }
        for id in unsealed.leases.ids() {
            if let Some(l) = unsealed.leases.get(&id) {
                if !l.token_hash.is_empty()
                    && unsealed.tokens.get_any(&l.token_hash).await?.is_none()
                {
                    self.revoke_lease(&unsealed, &id, false).await?;
                }
            }
        }
        Ok(())
    }

    /// Revokes whatever is due now; what fails is retried a little later.
    pub(crate) async fn reap_due(&self, unsealed: &Active) {
        for due in unsealed.schedule.take_due(now_unix()) {
            let outcome = match &due {
                Due::Token(hash) => self.revoke_token_tree(hash).await,
                Due::Lease(id) => self.revoke_lease(unsealed, id, false).await,
            };
            if let Err(e) = outcome {
                tracing::warn!(error = %e, "expiry: revocation failed, retrying in 30s");
                unsealed.schedule.set(due, now_unix() + 30);
            }
        }
    }
}

/// Deletes everything stored in `view`, folder by folder.
pub async fn clear_view(view: &View) -> Result<()> {
    let mut stack = vec![String::new()];
    while let Some(prefix) = stack.pop() {
        let keys = view.list(&prefix).await?;
        let mut deletes = Vec::new();
        for k in keys {
            let full = format!("{prefix}{k}");
            if k.ends_with('/') {
                stack.push(full);
            } else {
                deletes.push(BatchOp::Delete(full));
            }
        }
        if !deletes.is_empty() {
            view.batch(deletes).await?;
        }
    }
    Ok(())
}
