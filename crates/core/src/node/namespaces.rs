//! Namespace lifecycle: creating a namespace (its entry, its default mount
//! tables and `default` policy, then its serving state), changing its
//! metadata, locking and unlocking its API, and deleting it.
//!
//! Creation and deletion are serialised by one lock (`namespace_changes`),
//! held only for the bookkeeping, never across a revocation or a request:
//! nothing a namespace's requests wait for is held while it is being torn
//! down, which is where OpenBao has deadlocked (its issues 2166, 2226,
//! 2625).
//!
//! Deleting is asynchronous, as in OpenBao: the namespace is marked
//! *tainted* (its requests are refused from then on) and a task revokes its
//! leases (each through the backend that issued it) and tokens, has its
//! backends clean up, forgets it and deletes its whole storage prefix and
//! then its entry. A deletion interrupted by a restart resumes at the next
//! activation (the entry is still tainted).

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::digest;
use subtle::ConstantTimeEq;

use super::activation::NAMESPACES_PREFIX;
use super::mounts::default_tables;
use super::revocation::clear_view;
use super::tenant::Tenant;
use super::{json_bytes, Active, Core};
use crate::namespace::{self, NamespaceEntry};
use crate::token::random_base62;
use strongroom_policy::store::PolicyStore;
use strongroom_sdk::storage::BatchOp;
use strongroom_sdk::{Error, Result};

/// What deleting a namespace answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// No namespace at that path.
    Absent,
    /// Marked for deletion; its data goes in the background.
    InProgress,
}

/// The hex SHA-256 of an unlock key, as stored.
fn key_hash(key: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, key.as_bytes()).as_ref())
}

impl Core {
    /// Creates the namespace `name` (one segment, parsed by
    /// [`namespace::parse_name`]) below `parent`, or replaces the custom
    /// metadata of the one that exists there. Returns its entry.
    pub async fn put_namespace(
        &self,
        parent: &Tenant,
        name: &str,
        custom_metadata: BTreeMap<String, String>,
    ) -> Result<NamespaceEntry> {
        let active = self.active()?;
        let _changes = active.namespace_changes.lock().await;
        let path = format!("{}{name}", parent.path);
        if let Some(existing) = active.namespaces.by_path(&path) {
            let mut entry = (*existing.entry()).clone();
            if entry.tainted {
                return Err(Error::bad_request(
                    "namespace with that name exists and is currently tainted",
                ));
            }
            entry.custom_metadata = custom_metadata;
            self.store_namespace(&existing, entry).await
        } else {
            self.create_namespace(&active, parent, path, custom_metadata)
                .await
        }
    }

    /// Writes a changed entry and publishes it.
    async fn store_namespace(
        &self,
        tenant: &Tenant,
        entry: NamespaceEntry,
    ) -> Result<NamespaceEntry> {
        self.view("")
            .put(
                &format!("{NAMESPACES_PREFIX}{}", entry.uuid),
                &json_bytes(&entry)?,
            )
            .await?;
        tenant.set_entry(entry.clone());
        Ok(entry)
    }

    async fn create_namespace(
        &self,
        active: &Active,
        parent: &Tenant,
        path: String,
        custom_metadata: BTreeMap<String, String>,
    ) -> Result<NamespaceEntry> {
        // A secrets engine of the parent at this path would be shadowed.
        let name = &path[parent.path.len()..];
        if let Some((route, _)) = parent.routes.load().lookup(name) {
            return Err(Error::bad_request(format!(
                "new namespace conflicts with existing mount: {}",
                route.prefix
            )));
        }
        let id = loop {
            let id = random_base62(namespace::ID_LEN);
            if active.namespaces.by_id(&id).is_none() {
                break id;
            }
        };
        let entry = NamespaceEntry {
            id,
            uuid: uuid::Uuid::new_v4().to_string(),
            path,
            custom_metadata,
            tainted: false,
            unlock_key_hash: None,
        };
        let prefix = entry.storage_prefix();
        // The entry and the namespace's tables in one write: a namespace
        // is never half made.
        let tables = default_tables(false);
        let mut ops = Self::table_ops(&prefix, &tables)?;
        ops.push(BatchOp::Put(
            format!("{NAMESPACES_PREFIX}{}", entry.uuid),
            json_bytes(&entry)?,
        ));
        self.view("").batch(ops).await?;
        // Writes the namespace's own `default` policy.
        let policies =
            Arc::new(PolicyStore::open(self.view(&format!("{prefix}sys/policy/"))).await?);
        let cell = Arc::new(arc_swap::ArcSwap::from_pointee(
            crate::router::RouteTable::new(Vec::new()),
        ));
        let identity = self.identity_store(&prefix, &entry.id, &tables, &cell)?;
        let routes = self.build_routes(&prefix, &tables, &identity)?;
        let cubbyhole = routes
            .routes()
            .iter()
            .find(|r| r.prefix == "cubbyhole/")
            .map(|r| r.storage.clone())
            .ok_or_else(|| Error::internal("no cubbyhole mount"))?;
        for route in routes.routes() {
            route.backend.initialize(&route.mounted()).await?;
        }
        cell.store(Arc::new(routes));
        let tenant = Arc::new(Tenant::new(
            entry.clone(),
            cell,
            tables,
            policies,
            cubbyhole,
            identity,
        ));
        active.namespaces.insert(tenant);
        tracing::info!(namespace = %entry.path, "namespace created");
        Ok(entry)
    }

    /// Applies an RFC 7396 merge patch to a namespace's custom metadata
    /// (`None`: clear it).
    pub async fn patch_namespace(
        &self,
        parent: &Tenant,
        name: &str,
        patch: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<NamespaceEntry> {
        let active = self.active()?;
        let _changes = active.namespace_changes.lock().await;
        let tenant = active
            .namespaces
            .by_path(&format!("{}{name}", parent.path))
            // OpenBao's status for this one is a 400.
            .ok_or_else(|| Error::bad_request("namespace not found"))?;
        let mut entry = (*tenant.entry()).clone();
        if entry.tainted {
            return Err(Error::bad_request(
                "namespace with that name exists and is currently tainted",
            ));
        }
        match patch {
            None => entry.custom_metadata.clear(),
            Some(patch) => {
                for (k, v) in patch {
                    match v {
                        serde_json::Value::Null => {
                            entry.custom_metadata.remove(&k);
                        }
                        serde_json::Value::String(s) => {
                            entry.custom_metadata.insert(k, s);
                        }
                        other => {
                            return Err(Error::bad_request(format!(
                                "metadata patch can only have string or null values, got {}",
                                json_kind(&other)
                            )))
                        }
                    }
                }
            }
        }
        self.store_namespace(&tenant, entry).await
    }

    /// Locks the API of the namespace at `path` below `parent` (`""`:
    /// `parent` itself); returns the key that unlocks it.
    pub async fn lock_namespace(&self, parent: &Tenant, path: &str) -> Result<String> {
        let active = self.active()?;
        let _changes = active.namespace_changes.lock().await;
        let target = self.lock_target(&active, parent, path)?;
        if let Some(locking) = active.namespaces.locking(&target) {
            return Err(Error::bad_request(if locking.path == target.path {
                format!(
                    "cannot lock namespace {:?}: is already locked",
                    &*target.path
                )
            } else {
                format!(
                    "cannot lock namespace {:?}: ancestor namespace {:?} is already locked",
                    &*target.path, &*locking.path
                )
            }));
        }
        let key = random_base62(24);
        let mut entry = (*target.entry()).clone();
        entry.unlock_key_hash = Some(key_hash(&key));
        self.store_namespace(&target, entry).await?;
        Ok(key)
    }

    /// Unlocks the namespace at `path` below `parent` with its unlock key,
    /// or without one (`None`) for a caller with sudo on the path.
    pub async fn unlock_namespace(
        &self,
        parent: &Tenant,
        path: &str,
        key: Option<&str>,
    ) -> Result<()> {
        let active = self.active()?;
        let _changes = active.namespace_changes.lock().await;
        let target = self.lock_target(&active, parent, path)?;
        let entry = target.entry();
        let Some(hash) = entry.unlock_key_hash.as_deref() else {
            return Err(Error::bad_request(format!(
                "namespace {:?} is not locked",
                &*target.path
            )));
        };
        if let Some(locking) = active.namespaces.locking(&target) {
            if locking.path != target.path {
                return Err(Error::bad_request(format!(
                    "cannot unlock {:?} with namespace {:?} being locked",
                    &*target.path, &*locking.path
                )));
            }
        }
        if let Some(key) = key {
            let given = key_hash(key);
            if !bool::from(given.as_bytes().ct_eq(hash.as_bytes())) {
                return Err(Error::bad_request("incorrect unlock key"));
            }
        }
        let mut entry = (*entry).clone();
        entry.unlock_key_hash = None;
        self.store_namespace(&target, entry).await?;
        Ok(())
    }

    fn lock_target(&self, active: &Active, parent: &Tenant, path: &str) -> Result<Arc<Tenant>> {
        let full = format!("{}{}", parent.path, namespace::canonicalize(path));
        let target = active
            .namespaces
            .by_path(&full)
            .ok_or_else(|| Error::bad_request("requested namespace does not exist"))?;
        if target.is_root() {
            return Err(Error::bad_request(
                "root namespace cannot be locked/unlocked",
            ));
        }
        Ok(target)
    }

    /// Deletes the namespace `name` below `parent`: refused while it has
    /// children; otherwise it is tainted now and removed in the background
    /// (see the module doc).
    pub async fn delete_namespace(&self, parent: &Tenant, name: &str) -> Result<Deletion> {
        let active = self.active()?;
        let target = {
            let _changes = active.namespace_changes.lock().await;
            let Some(target) = active.namespaces.by_path(&format!("{}{name}", parent.path)) else {
                return Ok(Deletion::Absent);
            };
            if active.namespaces.has_children(&target.path) {
                return Err(Error::Conflict(
                    "unable to delete namespace containing child namespaces".into(),
                ));
            }
            let mut entry = (*target.entry()).clone();
            if !entry.tainted {
                entry.tainted = true;
                self.store_namespace(&target, entry).await?;
            }
            target
        };
        // A deletion that failed is tried again; one that runs is left be.
        self.spawn_deletion(&active, target);
        Ok(Deletion::InProgress)
    }

    /// Starts the background removal of a tainted namespace, unless it is
    /// running already.
    pub(crate) fn spawn_deletion(&self, active: &Active, target: Arc<Tenant>) {
        let uuid = target.entry().uuid.clone();
        match active.deleting.lock() {
            Ok(mut running) => {
                if !running.insert(uuid.clone()) {
                    return;
                }
            }
            Err(_) => return,
        }
        let core = self.weak.clone();
        tokio::spawn(async move {
            let Some(core) = core.upgrade() else {
                return;
            };
            let outcome = core.remove_namespace(&target).await;
            if let Err(e) = &outcome {
                // Still tainted: another DELETE, or the next activation,
                // tries again.
                tracing::warn!(namespace = %target.path, error = %e, "namespace deletion failed");
            }
            if let Ok(active) = core.active() {
                if let Ok(mut running) = active.deleting.lock() {
                    running.remove(&uuid);
                }
            }
        });
    }

    /// Removes a tainted namespace: its leases and tokens are revoked, its
    /// backends clean up, then it is forgotten and its storage deleted.
    async fn remove_namespace(&self, target: &Arc<Tenant>) -> Result<()> {
        let active = self.active()?;
        let ns = target.store_id().to_string();
        for lease in active.leases.of_namespace(&ns) {
            self.revoke_lease(&active, &lease, true).await?;
        }
        for hash in active.tokens.of_namespace(&ns).await? {
            self.revoke_token_tree(&hash).await?;
        }
        {
            let _changes = active.namespace_changes.lock().await;
            active.namespaces.remove(target);
        }
        for route in target.routes.load().routes() {
            route.backend.cleanup().await;
        }
        clear_view(&self.view(&target.prefix)).await?;
        let uuid = target.entry().uuid.clone();
        self.view("")
            .delete(&format!("{NAMESPACES_PREFIX}{uuid}"))
            .await?;
        tracing::info!(namespace = %target.path, "namespace deleted");
        Ok(())
    }
}

/// The JSON type name of a value, as OpenBao's message names Go's types.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "float64",
        serde_json::Value::Array(_) => "[]interface {}",
        serde_json::Value::Object(_) => "map[string]interface {}",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Null => "<nil>",
    }
}
