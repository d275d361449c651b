//! Stage 2, namespace: which namespace the request is in, and its path
//! relative to it. The `X-Vault-Namespace` header is joined with the
//! request path and the longest existing namespace prefix wins, so
//! `ns1/ns2/` + `secret/foo`, `ns1/` + `ns2/secret/foo` and no header +
//! `ns1/ns2/secret/foo` are the same request (seed 004). A header naming no
//! namespace is a 404 `namespace not found`.
//!
//! Outside the root namespace the stage also refuses, as OpenBao does:
//! everything but `sys/namespaces/api-lock/unlock` while the namespace or
//! one of its ancestors is locked (503); the node-wide `sys/` endpoints
//! (400); a namespace being deleted (404). OpenBao's message for a
//! node-wide endpoint depends on how the namespace was named: with the
//! header alone, the endpoints its HTTP layer serves itself (seal, unseal,
//! health, ...) answer "operation unavailable in namespaces"; otherwise,
//! and for the others, its logical router answers "operation only
//! available in root namespace".

use strongroom_sdk::{Error, Result};

use super::RequestCtx;
use crate::namespace;
use crate::node::Active;

/// `sys/` endpoints that exist only for the whole node, and that OpenBao
/// answers in its HTTP layer: "operation unavailable in namespaces".
const UNAVAILABLE: [&str; 14] = [
    "seal",
    "unseal",
    "init",
    "rekey",
    "rekey-recovery-key",
    "generate-root",
    "generate-recovery-token",
    "step-down",
    "health",
    "metrics",
    "raw",
    "storage",
    "pprof",
    "in-flight-req",
];

/// `sys/` endpoints of the root namespace only, that OpenBao answers in
/// its logical router: "operation only available in root namespace".
const ROOT_ONLY: [&str; 20] = [
    "audit-hash",
    "audit",
    "config/auditing",
    "config/cors",
    "config/reload",
    "config/state",
    "config/ui",
    "host-info",
    "internal/counters",
    "internal/inspect/router",
    "loggers",
    "mfa/method",
    "monitor",
    "quotas/config",
    "quotas/lease-count",
    "quotas/rate-limit",
    "replication",
    "sealwrap/rewrap",
    "sync/config",
    "quotas",
];

/// The barrier's own endpoints: a namespace has no barrier of its own.
const NOT_SEALABLE: [&str; 3] = ["key-status", "rotate", "rotate/config"];

/// Whether `path` is `prefix` or below it, on segment boundaries.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Resolves the request's namespace (see the module doc).
pub fn resolve(active: &Active, ctx: &mut RequestCtx) -> Result<()> {
    let header = ctx
        .request()?
        .namespace
        .as_deref()
        .map(namespace::from_header)
        .unwrap_or_default();
    let (tenant, relative) = active
        .namespaces
        .resolve(&header, &ctx.path)
        .ok_or_else(not_found)?;
    if tenant.is_root() {
        // The path is unchanged: a header naming a namespace never
        // resolves to root.
        ctx.tenant = Some(tenant);
        return Ok(());
    }
    let relative = relative.as_str().to_string();
    // Part of the namespace came from the request path (not the header).
    let from_path = tenant.path.len() > header.len();
    if tenant.entry().tainted {
        return Err(not_found());
    }
    if let Some(locking) = active.namespaces.locking(&tenant) {
        if relative.trim_end_matches('/') != "sys/namespaces/api-lock/unlock" {
            return Err(Error::Unavailable(format!(
                "API access to this namespace has been locked by an administrator - {:?} must be unlocked to gain access.",
                &*locking.path
            )));
        }
    }
    if let Some(sys) = relative.strip_prefix("sys/") {
        let sys = sys.trim_end_matches('/');
        let unavailable = UNAVAILABLE.iter().any(|p| under(sys, p));
        if unavailable && !from_path {
            return Err(Error::bad_request("operation unavailable in namespaces"));
        }
        if unavailable || ROOT_ONLY.iter().any(|p| under(sys, p)) {
            return Err(Error::bad_request(
                "operation only available in root namespace",
            ));
        }
        if NOT_SEALABLE.contains(&sys) {
            return Err(Error::bad_request("namespace is not sealable"));
        }
    }
    ctx.path = relative;
    ctx.tenant = Some(tenant);
    ctx.namespace_in_path = from_path;
    Ok(())
}

fn not_found() -> Error {
    Error::NotFound(Some("namespace not found".into()))
}

#[cfg(test)]
mod tests {
    use super::under;

    #[test]
    fn sys_paths_match_on_segments() {
        assert!(under("audit", "audit"));
        assert!(under("audit/file", "audit"));
        assert!(!under("audit-hash/x", "audit"));
        assert!(under("rekey/init", "rekey"));
        assert!(!under("rekeyx", "rekey"));
    }
}
