//! The `identity/` mount every namespace has, and the namespace's
//! [`IdentityStore`] behind it: made (and loaded from the mount's storage)
//! with the namespace's routes, which it reads to name the auth mount of
//! an alias by accessor.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::mounts::Tables;
use super::Core;
use crate::mount::{MountEntry, Table};
use crate::router::RouteTable;
use strongroom_identity::{IdentityStore, MountInfo, MountLookup};
use strongroom_sdk::{Error, Result};

/// The `identity/` mount of a namespace (`ns_identity` outside root, as
/// OpenBao shows it).
pub(crate) fn identity_entry(root: bool) -> MountEntry {
    let mut e = MountEntry::new(
        Table::Mounts,
        "identity/",
        if root { "identity" } else { "ns_identity" },
        "identity store",
    );
    e.config.passthrough_request_headers = vec!["Authorization".into()];
    e
}

/// Whether `kind` is the identity mount's type.
pub(crate) fn is_identity(kind: &str) -> bool {
    matches!(kind, "identity" | "ns_identity")
}

/// The auth mounts of a namespace, read from its live routes. Held
/// weakly: the routes hold the identity backend, which holds the store,
/// which holds this (a strong reference would be a cycle that keeps the
/// storage open after the tenant is gone).
struct TenantMounts {
    routes: std::sync::Weak<ArcSwap<RouteTable>>,
}

impl MountLookup for TenantMounts {
    fn by_accessor(&self, accessor: &str) -> Option<MountInfo> {
        let routes = self.routes.upgrade()?;
        let routes = routes.load();
        routes.routes().iter().find_map(|r| {
            let e = r.entry.load();
            (e.table == Table::Auth && e.accessor == accessor).then(|| MountInfo {
                path: r.prefix.clone(),
                kind: e.kind.strip_prefix("ns_").unwrap_or(&e.kind).to_string(),
            })
        })
    }
}

impl Core {
    /// The identity store of the namespace `namespace_id` (`""`: root)
    /// whose storage is under `prefix`, over its `identity/` mount's
    /// storage, finding auth mounts in `routes`. Empty: the caller loads it.
    pub(crate) fn identity_store(
        &self,
        prefix: &str,
        namespace_id: &str,
        tables: &Tables,
        routes: &Arc<ArcSwap<RouteTable>>,
    ) -> Result<Arc<IdentityStore>> {
        let entry = tables
            .mounts
            .iter()
            .find(|m| is_identity(&m.kind))
            .ok_or_else(|| Error::internal("no identity mount"))?;
        let view = self.view(&format!("{prefix}{}", entry.storage_prefix()));
        Ok(IdentityStore::new(
            view,
            namespace_id,
            Arc::new(TenantMounts {
                routes: Arc::downgrade(routes),
            }),
        ))
    }
}
