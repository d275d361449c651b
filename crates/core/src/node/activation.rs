//! Activation: the step from Standby to Active, and back.
//!
//! Activating opens the write gate, then loads what an active node serves
//! from: the mount tables (building each mount's backend and calling its
//! `initialize` hook), the policies, the token store and the leases with
//! their expiry timetable. It then starts the two background tasks of an
//! active node: the reaper (revokes tokens and leases on time) and the
//! backends' `periodic` ticks. Stepping down undoes it in reverse: the
//! state is unpublished, the gate closes, the tasks stop and every backend
//! cleans up.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::mounts::{cubbyhole_entry, Tables};
use super::tenant::{Namespaces, Tenant};
use super::{json_bytes, Core, DEFAULT_PERIODIC_INTERVAL};
use crate::expiration::{LeaseStore, Schedule};
use crate::mount::{MountEntry, Table};
use crate::namespace::{NamespaceEntry, Places};
use crate::router::RouteTable;
use crate::token::{now_unix, TokenStore};
use strongroom_policy::store::PolicyStore;
use strongroom_sdk::{Error, Result};

const CLUSTER_KEY: &str = "core/cluster-info";

/// Where namespace entries are stored (`<prefix><uuid>`), in the root
/// namespace's storage.
pub const NAMESPACES_PREFIX: &str = "core/namespaces/";

/// Cluster identity, generated at first activation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// Cluster name.
    pub name: String,
    /// Cluster id (uuid).
    pub id: String,
}

/// The state that exists only while the node is active.
pub struct Active {
    /// Every namespace's serving state (mounts, policies, cubbyhole).
    pub namespaces: Arc<Namespaces>,
    /// The token store (every namespace's tokens).
    pub tokens: Arc<TokenStore>,
    /// Secret leases (every namespace's).
    pub leases: Arc<LeaseStore>,
    /// The timetable of token and lease expiry.
    pub schedule: Arc<Schedule>,
    /// Serialises namespace creation and deletion.
    pub(crate) namespace_changes: tokio::sync::Mutex<()>,
    /// The uuids of the namespaces whose removal is running.
    pub(crate) deleting: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Cluster identity.
    pub cluster: ClusterInfo,
    /// The quotas in force and the rate-limit buckets (definitions in the
    /// root barrier, see `sys/quotas`).
    pub quotas: Arc<strongroom_quota::Quotas>,
    /// The reaper and the periodic ticker; aborted at step-down.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Active {
    /// The root namespace's state.
    pub fn root(&self) -> &Arc<Tenant> {
        self.namespaces.root()
    }

    /// The namespace whose storage holds the barrier key `key`.
    pub fn tenant_of_key(&self, key: &str) -> Arc<Tenant> {
        self.namespaces.of_key(key)
    }

    /// Every namespace's state, root first.
    pub fn tenants(&self) -> Vec<Arc<Tenant>> {
        let mut all = vec![self.root().clone()];
        all.extend(self.namespaces.all());
        all
    }

    /// Stops the background tasks and has every backend clean up (the
    /// state is unpublished already).
    pub(crate) async fn stop(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        for tenant in self.tenants() {
            for route in tenant.routes.load().routes() {
                route.backend.cleanup().await;
            }
        }
    }
}

impl Core {
    /// Activates an unsealed standby node (Standby → Active). Active
    /// already: nothing to do.
    pub async fn activate(&self) -> Result<()> {
        let _admin = self.admin.lock().await;
        if self.active.load().is_some() {
            return Ok(());
        }
        if self.is_sealed() {
            return Err(Error::Sealed);
        }
        self.activate_locked().await.map(|_| ())
    }

    /// Steps down (Active → Standby): the node keeps its keys but stops
    /// serving and writing. Not active: nothing to do.
    pub async fn step_down(&self) {
        let _admin = self.admin.lock().await;
        self.step_down_locked().await;
    }

    /// Activation with the admin lock held.
    pub(crate) async fn activate_locked(&self) -> Result<Arc<Active>> {
        self.gate.set_writable(true);
        if self.config.ha_enabled {
            // Take over the keyring and its count from the previous
            // active node.
            if let Err(e) = self.barrier.resume_counting().await {
                self.gate.set_writable(false);
                return Err(e.into());
            }
        }
        match self.load_active().await {
            Ok(active) => Ok(active),
            Err(e) => {
                self.gate.set_writable(false);
                Err(e)
            }
        }
    }

    /// Step-down with the admin lock held.
    pub(crate) async fn step_down_locked(&self) {
        self.audit.deactivate();
        let Some(active) = self.active.swap(None) else {
            self.gate.set_writable(false);
            return;
        };
        self.gate.set_writable(false);
        active.stop().await;
        tracing::info!("core: stepped down");
    }

    /// The cluster's identity as stored (an HA standby's view; `None`
    /// before the first activation).
    pub async fn stored_cluster_info(&self) -> Result<Option<ClusterInfo>> {
        self.read_json(CLUSTER_KEY).await
    }

    pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>> {
        match self.view("").get(key).await? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::internal(format!("corrupt {key}: {e}"))),
        }
    }

    /// Builds the serving state from storage. For an HA standby
    /// (`standby`) nothing is written: the storage must have been activated
    /// once by some node (else [`Error::Standby`]), tokens are a read-only
    /// replica, and the backends' `initialize` hooks do not run (they are
    /// the active node's).
    async fn build_state(&self, standby: bool) -> Result<Arc<Active>> {
        let schedule = Arc::new(Schedule::default());
        let cluster = match self.read_json::<ClusterInfo>(CLUSTER_KEY).await? {
            Some(c) => c,
            None if standby => return Err(Error::Standby),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                let c = ClusterInfo {
                    name: self
                        .config
                        .cluster_name
                        .clone()
                        .unwrap_or_else(|| format!("vault-cluster-{}", &id[..8])),
                    id,
                };
                self.view("").put(CLUSTER_KEY, &json_bytes(&c)?).await?;
                c
            }
        };
        let root = self.load_tenant(NamespaceEntry::root(), standby).await?;
        let namespaces = Arc::new(Namespaces::new(Arc::new(root)));
        // Parents before children (a child's path is longer).
        let mut entries = self.stored_namespaces().await?;
        entries.sort_by_key(|e| e.path.len());
        for entry in entries {
            let tenant = self.load_tenant(entry, standby).await?;
            namespaces.insert(Arc::new(tenant));
        }
        let places: Arc<dyn Places> = namespaces.clone();
        // Tokens open without loading: the index is built in the
        // background (see `crate::token`), so activation does not wait
        // for it whatever the number of stored tokens.
        let tokens = Arc::new(if standby {
            TokenStore::open_replica(self.view("sys/token/"), places.clone()).await?
        } else {
            TokenStore::open(self.view("sys/token/"), schedule.clone(), places.clone()).await?
        });
        let leases =
            Arc::new(LeaseStore::open(self.view("sys/expire/"), schedule.clone(), places).await?);
        if !standby {
            for tenant in std::iter::once(namespaces.root().clone()).chain(namespaces.all()) {
                for route in tenant.routes.load().routes() {
                    route.backend.initialize(&route.mounted()).await?;
                }
            }
        }
        let quotas = Arc::new(strongroom_quota::Quotas::default());
        crate::sys::quotas::load(self, &quotas).await?;
        Ok(Arc::new(Active {
            quotas,
            namespaces,
            tokens,
            leases,
            schedule,
            namespace_changes: tokio::sync::Mutex::new(()),
            deleting: std::sync::Mutex::new(std::collections::HashSet::new()),
            cluster,
            tasks: std::sync::Mutex::new(Vec::new()),
        }))
    }

    /// Every stored namespace entry (`core/namespaces/<uuid>`).
    pub(crate) async fn stored_namespaces(&self) -> Result<Vec<NamespaceEntry>> {
        let view = self.view(NAMESPACES_PREFIX);
        let mut out = Vec::new();
        for uuid in view.list("").await? {
            if let Some(entry) = self
                .read_json(&format!("{NAMESPACES_PREFIX}{uuid}"))
                .await?
            {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Loads a namespace's serving state from its storage: its mount
    /// tables and routes, its policies, its cubbyhole. The root
    /// namespace's tables written before the cubbyhole existed gain it.
    pub(crate) async fn load_tenant(&self, entry: NamespaceEntry, standby: bool) -> Result<Tenant> {
        let prefix = entry.storage_prefix();
        let mut mounts: Vec<MountEntry> = self
            .read_json(&format!("{prefix}{}", Table::Mounts.storage_key()))
            .await?
            .unwrap_or_default();
        let auth: Vec<MountEntry> = self
            .read_json(&format!("{prefix}{}", Table::Auth.storage_key()))
            .await?
            .unwrap_or_default();
        if !mounts
            .iter()
            .any(|m| matches!(m.kind.as_str(), "cubbyhole" | "ns_cubbyhole"))
        {
            if standby {
                return Err(Error::Standby);
            }
            // Storage written before the cubbyhole existed gains it here.
            mounts.push(cubbyhole_entry(entry.is_root()));
            self.persist_tables(
                &prefix,
                &Tables {
                    mounts: mounts.clone(),
                    auth: auth.clone(),
                },
            )
            .await?;
        }
        let policy_view = self.view(&format!("{prefix}sys/policy/"));
        let policies = Arc::new(if standby {
            PolicyStore::open_read_only(policy_view).await?
        } else {
            PolicyStore::open(policy_view).await?
        });
        let cubbyhole = mounts
            .iter()
            .find(|m| matches!(m.kind.as_str(), "cubbyhole" | "ns_cubbyhole"))
            .map(|m| self.view(&format!("{prefix}{}", m.storage_prefix())))
            .ok_or_else(|| Error::internal("no cubbyhole mount"))?;
        if !mounts.iter().any(|m| super::identity::is_identity(&m.kind)) {
            // Storage written before the identity store existed gains its
            // mount (a standby shows it until the active node writes it).
            mounts.push(super::identity::identity_entry(entry.is_root()));
            if !standby {
                self.persist_tables(
                    &prefix,
                    &Tables {
                        mounts: mounts.clone(),
                        auth: auth.clone(),
                    },
                )
                .await?;
            }
        }
        let tables = Tables { mounts, auth };
        let cell = Arc::new(arc_swap::ArcSwap::from_pointee(RouteTable::new(Vec::new())));
        let identity = self.identity_store(&prefix, &entry.id, &tables, &cell)?;
        let routes = self.build_routes(&prefix, &tables, &identity)?;
        cell.store(Arc::new(routes));
        identity.load().await?;
        Ok(Tenant::new(
            entry, cell, tables, policies, cubbyhole, identity,
        ))
    }

    /// An HA standby loads (again) the read-only state it serves reads
    /// from (see [`Core::serving_standby`]); the HA coordinator calls this
    /// once unsealed, and when the active node changed the mount tables.
    pub async fn load_standby(&self) -> Result<()> {
        // Serialised with init, unseal, activation and sealing: the node
        // is unsealed and not active (nor activating, nor initialising,
        // which opens the write gate) for the whole load.
        let _admin = self.admin.lock().await;
        if self.is_sealed() || self.active.load().is_some() || self.gate.is_writable() {
            return Ok(());
        }
        let state = self.build_state(true).await?;
        self.audit.load_standby(self).await?;
        self.standby.store(Some(state));
        Ok(())
    }

    /// The active state, or on an HA standby its read-only state (for
    /// handlers that only read; writes through it fail at the gate).
    pub(crate) fn active_or_standby(&self) -> Result<Arc<Active>> {
        match self.active() {
            Err(Error::Standby) => self.standby.load_full().ok_or(Error::Standby),
            other => other,
        }
    }

    /// Whether this standby has its read-only state loaded.
    pub fn has_standby_state(&self) -> bool {
        self.standby.load().is_some()
    }

    /// Forgets the standby's read-only state (reads are forwarded until
    /// it is loaded again).
    pub fn drop_standby(&self) {
        self.standby.store(None);
    }

    /// Another node (the active one) changed the storage key `key`: the
    /// standby's read-only state drops what it cached of it. Mount tables
    /// reload the whole state; the keyring is read again.
    pub async fn invalidate_standby(&self, key: &str) -> Result<()> {
        let Some(state) = self.standby.load_full() else {
            return Ok(());
        };
        let tenant = state.tenant_of_key(key);
        let rel = &key[tenant.prefix.len()..];
        // A namespace created, changed or deleted: that namespace only (a
        // full reload per change would make bulk creation quadratic on
        // standbys).
        if tenant.is_root() {
            if let Some(uuid) = key.strip_prefix(NAMESPACES_PREFIX) {
                return self.reload_standby_namespace(&state, uuid).await;
            }
        }
        // A mount table: the root namespace's reloads the state (its
        // mounts are what the rest hangs on), another's that namespace.
        if rel == Table::Mounts.storage_key() || rel == Table::Auth.storage_key() {
            if tenant.is_root() {
                return self.load_standby().await;
            }
            return match self.load_tenant((*tenant.entry()).clone(), true).await {
                Ok(reloaded) => {
                    state.namespaces.insert(Arc::new(reloaded));
                    Ok(())
                }
                // Its tables go with its deletion; its entry's change
                // removes it.
                Err(_) if tenant.entry().tainted => Ok(()),
                Err(_) => self.load_standby().await,
            };
        }
        if tenant.is_root() && crate::sys::quotas::is_quota_key(key) {
            return crate::sys::quotas::load(self, &state.quotas).await;
        }
        if key == crate::audit::Audit::table_key() {
            return self.audit.load_standby(self).await;
        }
        if key == strongroom_barrier::KEYRING_PATH {
            self.barrier.reload_keyring().await?;
            return Ok(());
        }
        if let Some(name) = rel.strip_prefix("sys/policy/") {
            tenant.policies.invalidate(name);
            return Ok(());
        }
        if let Some(rest) = rel.strip_prefix("sys/token/") {
            state.tokens.invalidate(rest).await;
            return Ok(());
        }
        let routes = tenant.routes.load();
        let owner = routes
            .routes()
            .iter()
            .filter_map(|r| key.strip_prefix(r.storage.prefix()).map(|rel| (r, rel)))
            .max_by_key(|(r, _)| r.storage.prefix().len());
        if let Some((route, rel)) = owner {
            // The identity store reloads the record before the next
            // request authorises with it.
            if super::identity::is_identity(&route.entry.load().kind) {
                return tenant.identity.reload_key(rel).await;
            }
            route.backend.invalidate(rel);
        }
        Ok(())
    }

    /// A standby's view of the namespace stored at `core/namespaces/<uuid>`
    /// follows the active node's change: created, changed (metadata, lock,
    /// deletion mark) or removed. Anything unexpected reloads the state.
    async fn reload_standby_namespace(&self, state: &Active, uuid: &str) -> Result<()> {
        let stored: Option<NamespaceEntry> = self
            .read_json(&format!("{NAMESPACES_PREFIX}{uuid}"))
            .await?;
        let current = state.namespaces.by_uuid(uuid);
        match (stored, current) {
            (None, Some(tenant)) => state.namespaces.remove(&tenant),
            (None, None) => {}
            (Some(entry), Some(tenant)) if entry.path == *tenant.path => tenant.set_entry(entry),
            (Some(entry), _) => match self.load_tenant(entry, true).await {
                Ok(tenant) => state.namespaces.insert(Arc::new(tenant)),
                Err(_) => return self.load_standby().await,
            },
        }
        Ok(())
    }

    /// Builds the active state from storage and publishes it: mount
    /// tables, tokens and leases (with their expiry timetable), then starts
    /// the reaper and the periodic ticker.
    async fn load_active(&self) -> Result<Arc<Active>> {
        let active = self.build_state(false).await?;
        // Devices before the state is published: no request is served
        // unaudited.
        self.audit.activate(self).await?;
        self.standby.store(None);
        self.active.store(Some(active.clone()));
        // A crash during a tree revocation can leave children whose parent
        // is gone: once the index is complete, finish the job.
        let indexing = active.tokens.start_background();
        let core = self.weak.clone();
        let orphans = tokio::spawn(async move {
            let Ok(Ok(dangling)) = indexing.await else {
                return;
            };
            let Some(core) = core.upgrade() else {
                return;
            };
            for hash in dangling {
                if let Err(e) = core.revoke_token_tree(&hash).await {
                    tracing::warn!(error = %e, "revoking a token whose parent is gone failed");
                }
            }
        });
        let reaper = tokio::spawn(reap(
            self.weak.clone(),
            Arc::downgrade(&active),
            active.schedule.clone(),
        ));
        let interval = self
            .config
            .periodic_interval
            .unwrap_or(DEFAULT_PERIODIC_INTERVAL);
        let ticker = tokio::spawn(tick(Arc::downgrade(&active), interval));
        // Deletions a restart interrupted resume.
        for tenant in active.namespaces.all() {
            if tenant.entry().tainted {
                self.spawn_deletion(&active, tenant);
            }
        }
        if let Ok(mut tasks) = active.tasks.lock() {
            tasks.push(orphans);
            tasks.push(reaper);
            tasks.push(ticker);
        }
        tracing::info!("core: active");
        Ok(active)
    }

    /// Runs every mount's `periodic` hook once (what the ticker does each
    /// interval); errors are logged, one mount's failure does not stop the
    /// others.
    pub async fn run_periodic(&self) -> Result<()> {
        run_periodic(&*self.active()?).await;
        Ok(())
    }
}

async fn run_periodic(active: &Active) {
    for tenant in active.tenants() {
        let routes = tenant.routes.load_full();
        for route in routes.routes() {
            if let Err(e) = route.backend.periodic(&route.mounted()).await {
                tracing::warn!(
                    namespace = %tenant.path,
                    mount = %route.prefix,
                    error = %e,
                    "periodic hook failed"
                );
            }
        }
    }
}

/// The periodic ticker: runs the backends' `periodic` hooks every
/// `interval` while the node is active. It holds the state weakly and is
/// aborted at step-down.
async fn tick(active: Weak<Active>, interval: Duration) {
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick of an interval is immediate: skip it, activation just
    // happened.
    timer.tick().await;
    loop {
        timer.tick().await;
        let Some(active) = active.upgrade() else {
            return;
        };
        run_periodic(&active).await;
    }
}

/// The reaper: sleeps until the earliest deadline of the timetable (or
/// until it gets an earlier one) and revokes what is due. It holds the core
/// weakly and is aborted at step-down.
async fn reap(core: Weak<Core>, active: Weak<Active>, schedule: Arc<Schedule>) {
    loop {
        {
            let (Some(core), Some(active)) = (core.upgrade(), active.upgrade()) else {
                return;
            };
            core.reap_due(&active).await;
        }
        let wait = match schedule.next() {
            Some(at) => at.saturating_sub(now_unix()),
            None => 3600,
        };
        if wait == 0 {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
            _ = schedule.changed() => {}
        }
    }
}
