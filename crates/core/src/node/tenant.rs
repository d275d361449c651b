//! The serving state of each namespace (a [`Tenant`]) and the registry
//! that finds them ([`Namespaces`]).
//!
//! A tenant holds what is private to a namespace: its mount tables and the
//! routes built from them (its own `sys/`, `cubbyhole/` and `auth/token/`
//! among them), its policy store and its cubbyhole storage, all under the
//! namespace's barrier prefix (`namespaces/<uuid>/`; the root namespace's
//! is the barrier's root, where it always was). Tokens and leases are kept
//! by the node-wide stores, which place each one's storage under its
//! namespace's prefix (see [`crate::namespace::Places`]).
//!
//! The registry resolves a request's namespace from its header and path
//! with one map lookup per path segment, stopping at the first segment that
//! is not a namespace; when no namespace but root exists it answers root
//! without any lookup, so the root namespace pays nothing for the feature.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use dashmap::DashMap;

use super::mounts::Tables;
use crate::namespace::{NamespaceEntry, Places};
use crate::router::RouteTable;
use strongroom_identity::IdentityStore;
use strongroom_policy::store::PolicyStore;
use strongroom_sdk::storage::View;

/// A namespace's serving state.
pub struct Tenant {
    /// The namespace's entry (swapped whole by metadata, lock and taint
    /// changes).
    entry: ArcSwap<NamespaceEntry>,
    /// Its id (immutable; also in `entry`).
    pub id: Arc<str>,
    /// Its path, `""` for root (immutable; also in `entry`).
    pub path: Arc<str>,
    /// The barrier prefix of its storage (`""` for root).
    pub prefix: String,
    /// Its routes, longest prefix first, relative to the namespace
    /// (shared with the identity store, which finds auth mounts in it).
    pub(crate) routes: Arc<ArcSwap<RouteTable>>,
    /// Its mount tables (the lock serialises changes to them).
    pub(crate) tables: tokio::sync::Mutex<Tables>,
    /// Its ACL policies.
    pub policies: Arc<PolicyStore>,
    /// Its cubbyhole engine's storage (one folder per token).
    pub cubbyhole: View,
    /// Its identity store (entities, aliases, groups), in memory.
    pub identity: Arc<IdentityStore>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("path", &self.path)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// A tenant over its loaded parts.
    pub(crate) fn new(
        entry: NamespaceEntry,
        routes: Arc<ArcSwap<RouteTable>>,
        tables: Tables,
        policies: Arc<PolicyStore>,
        cubbyhole: View,
        identity: Arc<IdentityStore>,
    ) -> Tenant {
        Tenant {
            id: entry.id.as_str().into(),
            path: entry.path.as_str().into(),
            prefix: entry.storage_prefix(),
            entry: ArcSwap::from_pointee(entry),
            routes,
            tables: tokio::sync::Mutex::new(tables),
            policies,
            cubbyhole,
            identity,
        }
    }

    /// The namespace's entry as it is now.
    pub fn entry(&self) -> Arc<NamespaceEntry> {
        self.entry.load_full()
    }

    /// Replaces the entry (same id, uuid and path).
    pub(crate) fn set_entry(&self, entry: NamespaceEntry) {
        self.entry.store(Arc::new(entry));
    }

    /// What policy and token templates see of the entity `entity_id` of
    /// this namespace (from memory; `None`: no such entity).
    pub fn identity_facts(
        &self,
        entity_id: &str,
    ) -> Option<strongroom_sdk::identity::IdentityFacts> {
        if entity_id.is_empty() {
            return None;
        }
        self.identity.facts(entity_id)
    }

    /// Whether this is the root namespace.
    pub fn is_root(&self) -> bool {
        self.path.is_empty()
    }

    /// The namespace id as token and lease entries record it: `""` for
    /// root (whose ids carry no suffix), else the id.
    pub fn store_id(&self) -> &str {
        if self.is_root() {
            ""
        } else {
            &self.id
        }
    }

    /// The full path of `relative`, a path inside this namespace.
    pub fn full_path(&self, relative: &str) -> String {
        format!("{}{relative}", self.path)
    }

    /// Whether this namespace is `other` or below it.
    pub fn is_within(&self, other: &Tenant) -> bool {
        self.path.starts_with(&*other.path)
    }
}

/// Every namespace's tenant, by path and by id.
pub struct Namespaces {
    root: Arc<Tenant>,
    by_path: DashMap<Arc<str>, Arc<Tenant>>,
    by_id: DashMap<Arc<str>, Arc<Tenant>>,
    by_uuid: DashMap<String, Arc<Tenant>>,
    /// Namespaces other than root (0: resolution is free).
    count: AtomicUsize,
}

impl std::fmt::Debug for Namespaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespaces")
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Namespaces {
    /// A registry with the root namespace only.
    pub(crate) fn new(root: Arc<Tenant>) -> Namespaces {
        Namespaces {
            root,
            by_path: DashMap::new(),
            by_id: DashMap::new(),
            by_uuid: DashMap::new(),
            count: AtomicUsize::new(0),
        }
    }

    /// The root namespace.
    pub fn root(&self) -> &Arc<Tenant> {
        &self.root
    }

    /// Adds (or replaces) a namespace's tenant.
    pub(crate) fn insert(&self, tenant: Arc<Tenant>) {
        if self
            .by_path
            .insert(tenant.path.clone(), tenant.clone())
            .is_none()
        {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        self.by_uuid
            .insert(tenant.entry().uuid.clone(), tenant.clone());
        self.by_id.insert(tenant.id.clone(), tenant);
    }

    /// Removes a namespace's tenant.
    pub(crate) fn remove(&self, tenant: &Tenant) {
        if self.by_path.remove(&*tenant.path).is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
        self.by_id.remove(&*tenant.id);
        self.by_uuid.remove(&tenant.entry().uuid);
    }

    /// The namespace with uuid `uuid` (not root).
    pub fn by_uuid(&self, uuid: &str) -> Option<Arc<Tenant>> {
        self.by_uuid.get(uuid).map(|t| t.clone())
    }

    /// The namespace whose storage holds the barrier key `key` (root for
    /// keys outside every namespace's prefix).
    pub fn of_key(&self, key: &str) -> Arc<Tenant> {
        key.strip_prefix("namespaces/")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(uuid, _)| self.by_uuid.get(uuid).map(|t| t.clone()))
            .unwrap_or_else(|| self.root.clone())
    }

    /// How many namespaces exist besides root.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether only the root namespace exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The namespace at `path` (`""` is root).
    pub fn by_path(&self, path: &str) -> Option<Arc<Tenant>> {
        if path.is_empty() {
            return Some(self.root.clone());
        }
        self.by_path.get(path).map(|t| t.clone())
    }

    /// The namespace with id `id` (`root` or `""` is root).
    pub fn by_id(&self, id: &str) -> Option<Arc<Tenant>> {
        if id.is_empty() || id == crate::namespace::ROOT_ID {
            return Some(self.root.clone());
        }
        self.by_id.get(id).map(|t| t.clone())
    }

    /// Every namespace but root, in path order.
    pub fn all(&self) -> Vec<Arc<Tenant>> {
        let mut all: Vec<Arc<Tenant>> = self.by_path.iter().map(|t| t.clone()).collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all
    }

    /// Whether the namespace at `path` has children.
    pub fn has_children(&self, path: &str) -> bool {
        self.by_path
            .iter()
            .any(|t| t.path.len() > path.len() && t.path.starts_with(path))
    }

    /// The namespace a request is in, and its path relative to it: the
    /// longest existing namespace prefix of `header` (canonical, `""` for
    /// root) joined with `path`. `None` when the header names no
    /// namespace (OpenBao's 404 "namespace not found").
    pub fn resolve<'p>(&self, header: &str, path: &'p str) -> Option<(Arc<Tenant>, Resolved<'p>)> {
        if self.is_empty() {
            return header
                .is_empty()
                .then(|| (self.root.clone(), Resolved::Borrowed(path)));
        }
        if header.is_empty() {
            let (tenant, used) = self.longest(path);
            return Some((tenant, Resolved::Borrowed(&path[used..])));
        }
        let full = format!("{header}{path}");
        let (tenant, used) = self.longest(&full);
        if used < header.len() {
            return None;
        }
        Some((tenant, Resolved::Owned(full[used..].to_string())))
    }

    /// The deepest namespace whose path prefixes `full`, and its length.
    fn longest(&self, full: &str) -> (Arc<Tenant>, usize) {
        let mut found = (self.root.clone(), 0);
        let mut at = 0;
        while let Some(i) = full[at..].find('/') {
            let end = at + i + 1;
            match self.by_path.get(&full[..end]) {
                Some(t) => found = (t.clone(), end),
                // A namespace's parent always exists: no deeper one can.
                None => break,
            }
            at = end;
        }
        found
    }

    /// The namespace whose lock keeps `tenant` locked (itself or its
    /// closest locked ancestor), if any.
    pub fn locking(&self, tenant: &Tenant) -> Option<Arc<Tenant>> {
        if tenant.is_root() {
            return None;
        }
        let mut path: &str = &tenant.path;
        while !path.is_empty() {
            if let Some(t) = self.by_path.get(path) {
                if t.entry.load().locked() {
                    return Some(t.clone());
                }
            }
            path = crate::namespace::parent_of(path).unwrap_or("");
        }
        None
    }
}

/// What a token may do in a namespace: the ACL of its policies (`None`
/// for a root token) and the namespace's path relative to the token's own
/// namespace, which prefixes every path its policies are checked on.
pub(crate) struct Scope {
    /// The token's ACL; `None`: a root token.
    pub(crate) acl: Option<Arc<strongroom_policy::Acl>>,
    /// `here`'s path from the token's namespace (`""` in it).
    pub(crate) prefix: String,
}

impl Scope {
    /// The capabilities on `path`, a path of the namespace the scope was
    /// made for.
    pub(crate) fn capabilities(&self, path: &str) -> Vec<String> {
        match &self.acl {
            None => vec!["root".to_string()],
            Some(acl) => {
                acl.capabilities(&format!("{}{}", self.prefix, path.trim_start_matches('/')))
            }
        }
    }

    /// Whether the token reaches the mount at `route_path` at all.
    pub(crate) fn has_mount_access(&self, route_path: &str) -> bool {
        match &self.acl {
            None => true,
            Some(acl) => acl.has_mount_access(&format!("{}{route_path}", self.prefix)),
        }
    }
}

impl Tenant {
    /// The policies the ACL check applies to `entry`, a token of this
    /// namespace: its own, plus the identity policies of its entity (the
    /// entity's and its groups', nested ones included), from memory. A
    /// disabled entity's token is refused (OpenBao's plain 403).
    pub(crate) fn token_policies<'e>(
        &self,
        entry: &'e crate::token::TokenEntry,
    ) -> strongroom_sdk::Result<std::borrow::Cow<'e, [String]>> {
        if entry.entity_id.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(&entry.policies));
        }
        let Some(resolved) = self.identity.resolve(&entry.entity_id) else {
            return Ok(std::borrow::Cow::Borrowed(&entry.policies));
        };
        if resolved.disabled {
            return Err(strongroom_sdk::Error::Forbidden("permission denied".into()));
        }
        if resolved.policies.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(&entry.policies));
        }
        let mut all = entry.policies.clone();
        all.extend(resolved.policies.iter().cloned());
        all.sort();
        all.dedup();
        Ok(std::borrow::Cow::Owned(all))
    }

    /// The identity policies of the token `entry` (empty without entity).
    pub fn identity_policies(&self, entry: &crate::token::TokenEntry) -> Vec<String> {
        if entry.entity_id.is_empty() {
            return Vec::new();
        }
        self.identity
            .resolve(&entry.entity_id)
            .map(|r| r.policies.clone())
            .unwrap_or_default()
    }
}

impl super::Core {
    /// The scope of the token `entry` in namespace `here`; `None` when
    /// `here` is outside the token's namespace (where it can do nothing).
    pub(crate) async fn token_scope(
        &self,
        active: &super::Active,
        entry: &crate::token::TokenEntry,
        here: &Tenant,
    ) -> strongroom_sdk::Result<Option<Scope>> {
        let Some(home) = active.namespaces.by_id(&entry.namespace_id) else {
            return Ok(None);
        };
        if !here.is_within(&home) {
            return Ok(None);
        }
        let prefix = here.path[home.path.len()..].to_string();
        let acl = if entry.is_root() {
            None
        } else {
            let policies = home.token_policies(entry)?;
            Some(
                home.policies
                    .acl_for(&policies, || home.identity_facts(&entry.entity_id))
                    .await?,
            )
        };
        Ok(Some(Scope { acl, prefix }))
    }

    /// The namespace a backend request is in, as the pipeline attached it
    /// to the core's own backends (root for requests the core makes
    /// itself, which carry none).
    pub(crate) fn request_tenant(
        &self,
        extensions: &http::Extensions,
    ) -> strongroom_sdk::Result<Arc<Tenant>> {
        match extensions.get::<Arc<Tenant>>() {
            Some(t) => Ok(t.clone()),
            None => Ok(self.active_or_standby()?.root().clone()),
        }
    }
}

/// A request path relative to its namespace: borrowed from the request
/// when no header was joined to it.
#[derive(Debug)]
pub enum Resolved<'p> {
    /// A slice of the request's path.
    Borrowed(&'p str),
    /// The header and path joined, then trimmed.
    Owned(String),
}

impl Resolved<'_> {
    /// The relative path.
    pub fn as_str(&self) -> &str {
        match self {
            Resolved::Borrowed(s) => s,
            Resolved::Owned(s) => s,
        }
    }
}

impl Places for Namespaces {
    fn prefix_of(&self, ns_id: &str) -> Option<String> {
        self.by_id(ns_id).map(|t| t.prefix.clone())
    }

    fn ids(&self) -> Vec<String> {
        self.by_id.iter().map(|t| t.id.to_string()).collect()
    }

    fn path_of(&self, ns_id: &str) -> Option<String> {
        if ns_id.is_empty() {
            return Some(String::new());
        }
        self.by_id(ns_id).map(|t| t.path.to_string())
    }

    fn only_root(&self) -> bool {
        self.is_empty()
    }
}
