//! The mount tables (`core/mounts`, `core/auth`) and the routes built from
//! them: mounting (the backend is built by its factory and initialised
//! before it serves), unmounting (it cleans up, its storage is deleted) and
//! tuning (the mount's context is swapped in place; only new options
//! rebuild the backend).

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::tenant::Tenant;
use super::{json_bytes, Core};
use crate::cubbyhole;
use crate::mount::{normalize_mount_path, overlaps, MountConfig, MountEntry, Table};
use crate::node::revocation::clear_view;
use crate::router::{Route, RouteTable};
use strongroom_identity::IdentityStore;
use strongroom_sdk::framework::{LogicalBackend, MountContext};
use strongroom_sdk::registry::FactoryInput;
use strongroom_sdk::storage::BatchOp;
use strongroom_sdk::{Error, Result};

/// The two mount tables, as persisted.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Tables {
    pub(crate) mounts: Vec<MountEntry>,
    pub(crate) auth: Vec<MountEntry>,
}

impl Tables {
    pub(crate) fn table_mut(&mut self, t: Table) -> &mut Vec<MountEntry> {
        match t {
            Table::Mounts => &mut self.mounts,
            Table::Auth => &mut self.auth,
        }
    }
}

/// Changes to a mount's tunables; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct Tune {
    /// New default lease TTL (seconds; 0 = system default).
    pub default_lease_ttl: Option<u64>,
    /// New max lease TTL (seconds; 0 = system max).
    pub max_lease_ttl: Option<u64>,
    /// New description.
    pub description: Option<String>,
    /// New options, merged into the existing ones.
    pub options: Option<Map<String, Value>>,
    /// New listing visibility.
    pub listing_visibility: Option<String>,
    /// New passthrough request headers.
    pub passthrough_request_headers: Option<Vec<String>>,
    /// New allowed response headers.
    pub allowed_response_headers: Option<Vec<String>>,
    /// New audit non-HMAC request keys.
    pub audit_non_hmac_request_keys: Option<Vec<String>>,
    /// New audit non-HMAC response keys.
    pub audit_non_hmac_response_keys: Option<Vec<String>>,
    /// New token type (auth mounts).
    pub token_type: Option<String>,
}

/// The `cubbyhole/` mount every namespace has (`ns_cubbyhole` outside
/// root, as OpenBao names it).
pub(crate) fn cubbyhole_entry(root: bool) -> MountEntry {
    let mut e = MountEntry::new(
        Table::Mounts,
        "cubbyhole/",
        if root { "cubbyhole" } else { "ns_cubbyhole" },
        "per-token private secret storage",
    );
    e.local = true;
    e
}

/// The tables a namespace starts with: `sys/`, `cubbyhole/`, `identity/`
/// and `auth/token/` (types `ns_system`, `ns_cubbyhole`, `ns_identity`,
/// `ns_token` outside the root namespace, as OpenBao shows them).
pub(crate) fn default_tables(root: bool) -> Tables {
    let ns = |kind: &str| {
        if root {
            kind.to_string()
        } else {
            format!("ns_{kind}")
        }
    };
    Tables {
        mounts: vec![
            {
                let mut sys = MountEntry::new(
                    Table::Mounts,
                    "sys/",
                    &ns("system"),
                    "system endpoints used for control, policy and debugging",
                );
                sys.config.passthrough_request_headers = vec!["Accept".into()];
                // As in OpenBao, the system mount's storage is listed as seal-wrapped.
                sys.seal_wrap = true;
                sys
            },
            cubbyhole_entry(root),
            super::identity::identity_entry(root),
        ],
        auth: vec![{
            let mut t = MountEntry::new(
                Table::Auth,
                "token/",
                &ns("token"),
                "token based credentials",
            );
            // OpenBao shows `default-service` at the root, `default` in a
            // namespace (both issue service tokens unless asked otherwise).
            t.config.token_type = Some(if root { "default-service" } else { "default" }.into());
            t
        }],
    }
}

impl Core {
    /// Writes a namespace's two tables (under its prefix) in one batch.
    pub(crate) async fn persist_tables(&self, prefix: &str, tables: &Tables) -> Result<()> {
        self.view("")
            .batch(Self::table_ops(prefix, tables)?)
            .await?;
        Ok(())
    }

    /// The batch that writes a namespace's two tables.
    pub(crate) fn table_ops(prefix: &str, tables: &Tables) -> Result<Vec<BatchOp>> {
        Ok(vec![
            BatchOp::Put(
                format!("{prefix}{}", Table::Mounts.storage_key()),
                json_bytes(&tables.mounts)?,
            ),
            BatchOp::Put(
                format!("{prefix}{}", Table::Auth.storage_key()),
                json_bytes(&tables.auth)?,
            ),
        ])
    }

    fn mount_context(&self, entry: &MountEntry) -> Arc<MountContext> {
        let (default_lease_ttl, max_lease_ttl) = entry.effective_ttls(&self.config.ttls);
        Arc::new(MountContext {
            path: entry.route_path(),
            accessor: entry.accessor.clone(),
            kind: entry.kind.clone(),
            default_lease_ttl,
            max_lease_ttl,
            options: entry.options.clone().unwrap_or_default(),
        })
    }

    /// Builds the route of `entry`, a mount of the namespace whose
    /// storage is under `prefix` and whose identity store is `identity`.
    pub(crate) fn build_route(
        &self,
        prefix: &str,
        entry: &MountEntry,
        identity: &Arc<IdentityStore>,
    ) -> Result<Arc<Route>> {
        let storage = self.view(&format!("{prefix}{}", entry.storage_prefix()));
        let mount = self.mount_context(entry);
        // The core's own token store and cubbyhole read the caller's token
        // entry from the request's extensions; no other backend can name it.
        // The system backend is told the request's namespace the same way.
        let builtin_caller = matches!(
            (entry.table, entry.kind.as_str()),
            (Table::Auth, "token" | "ns_token")
                | (
                    Table::Mounts,
                    "cubbyhole" | "ns_cubbyhole" | "system" | "ns_system"
                )
        );
        let backend: Arc<dyn LogicalBackend> = match (entry.table, entry.kind.as_str()) {
            (Table::Mounts, "system" | "ns_system") => self.sys.clone(),
            (Table::Auth, "token" | "ns_token") => self.token.clone(),
            (Table::Mounts, "cubbyhole" | "ns_cubbyhole") => Arc::new(cubbyhole::backend()),
            (Table::Mounts, "identity" | "ns_identity") => Arc::new(strongroom_identity::backend(
                identity.clone(),
                self.config.api_addr.as_deref().unwrap_or_default(),
            )),
            (table, kind) => {
                let factory = match table {
                    Table::Mounts => self.registry.secrets_factory(kind),
                    Table::Auth => self.registry.auth_factory(kind),
                };
                let factory = factory.ok_or_else(|| {
                    Error::bad_request(format!("plugin not found in the catalog: {kind}"))
                })?;
                factory(FactoryInput {
                    mount: mount.clone(),
                    storage: storage.clone(),
                })?
            }
        };
        Ok(Arc::new(Route {
            prefix: entry.route_path(),
            table: entry.table,
            entry: ArcSwap::from_pointee(entry.clone()),
            backend,
            storage,
            mount: ArcSwap::new(mount),
            builtin_caller,
            timers: strongroom_telemetry::RouteTimers::new(&entry.route_path()),
        }))
    }

    pub(crate) fn build_routes(
        &self,
        prefix: &str,
        tables: &Tables,
        identity: &Arc<IdentityStore>,
    ) -> Result<RouteTable> {
        let mut routes = Vec::new();
        for entry in tables.mounts.iter().chain(tables.auth.iter()) {
            routes.push(self.build_route(prefix, entry, identity)?);
        }
        Ok(RouteTable::new(routes))
    }

    /// The entries of a namespace's mount table.
    pub async fn mount_table(&self, tenant: &Tenant, table: Table) -> Result<Vec<MountEntry>> {
        let tables = tenant.tables.lock().await;
        Ok(match table {
            Table::Mounts => tables.mounts.clone(),
            Table::Auth => tables.auth.clone(),
        })
    }

    /// Another node wrote the storage key `key` (a barrier key): the mount
    /// whose storage holds it drops what it cached, through its backend's
    /// `invalidate` hook, with the key relative to the mount. Keys outside
    /// every mount are ignored. Returns whether a mount was told.
    pub fn invalidate(&self, key: &str) -> bool {
        let Ok(active) = self.active() else {
            return false;
        };
        let tenant = active.tenant_of_key(key);
        let routes = tenant.routes.load();
        let owner = routes
            .routes()
            .iter()
            .filter_map(|r| key.strip_prefix(r.storage.prefix()).map(|rel| (r, rel)))
            .max_by_key(|(r, _)| r.storage.prefix().len());
        match owner {
            Some((route, rel)) => {
                route.backend.invalidate(rel);
                true
            }
            None => false,
        }
    }

    /// The entry of the mount serving `path` (a path inside the mount
    /// works) in a namespace.
    pub fn mount_for_path(&self, tenant: &Tenant, path: &str) -> Result<Option<MountEntry>> {
        let routes = tenant.routes.load();
        Ok(routes
            .lookup(path)
            .map(|(r, _)| MountEntry::clone(&r.entry.load())))
    }

    /// The OpenAPI document of every mounted backend, generated from the
    /// same path declarations that answer requests and `?help=1`.
    pub fn openapi(&self, tenant: &Tenant) -> Result<Value> {
        let routes = tenant.routes.load();
        let mut paths = Map::new();
        let mut ordered: Vec<&Arc<Route>> = routes.routes().iter().collect();
        ordered.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        for r in ordered {
            paths.extend(r.backend.openapi_paths(&r.prefix));
        }
        Ok(strongroom_sdk::framework::openapi_document(paths))
    }

    /// The effective (default, max) TTL of an entry.
    pub fn effective_ttls(&self, entry: &MountEntry) -> (u64, u64) {
        let (d, m) = entry.effective_ttls(&self.config.ttls);
        (d.as_secs(), m.as_secs())
    }

    /// Mounts a backend of type `kind` at `path` in a namespace's `table`.
    #[allow(clippy::too_many_arguments)] // The fields of `sys/mounts/:path`.
    pub async fn mount(
        &self,
        tenant: &Tenant,
        table: Table,
        path: &str,
        kind: &str,
        description: &str,
        config: MountConfig,
        options: Option<Map<String, Value>>,
    ) -> Result<()> {
        let path = normalize_mount_path(path)?;
        let active = self.active()?;
        let unsealed = tenant;
        let mut tables = unsealed.tables.lock().await;
        let reserved: &[&str] = match table {
            Table::Mounts => &["sys/", "auth/", "cubbyhole/", "identity/"],
            Table::Auth => &[],
        };
        if reserved.iter().any(|r| path.starts_with(r)) {
            return Err(Error::bad_request(format!("cannot mount {path:?}")));
        }
        if table == Table::Auth && kind == "token" {
            return Err(Error::bad_request(
                "token credential backend cannot be instantiated",
            ));
        }
        if let Some(existing) = tables
            .table_mut(table)
            .iter()
            .find(|e| overlaps(&e.path, &path))
        {
            return Err(Error::bad_request(format!(
                "path is already in use at {}",
                existing.route_path()
            )));
        }
        // `kv-v2` is OpenBao's shorthand for a version 2 `kv` mount, and is
        // shown as such.
        let mut options = options;
        let kind = match (table, kind) {
            (Table::Mounts, "kv-v2") => {
                options
                    .get_or_insert_with(Map::new)
                    .insert("version".into(), Value::from("2"));
                "kv"
            }
            (_, k) => k,
        };
        let mut entry = MountEntry::new(table, &path, kind, description);
        entry.config = config;
        // Vault shows the KV family's options as an object even when none
        // were given.
        entry.options = match (options, kind) {
            (None, "kv" | "generic") => Some(Map::new()),
            (o, _) => o,
        };
        // A secrets engine may not shadow a child namespace (OpenBao:
        // the namespace is resolved first, the mount would be unreachable).
        if table == Table::Mounts {
            let first = path.split('/').next().unwrap_or_default();
            if active
                .namespaces
                .by_path(&format!("{}{first}/", unsealed.path))
                .is_some_and(|t| !t.is_root())
            {
                return Err(Error::bad_request(format!(
                    "cannot mount {path:?}: a namespace exists at this path"
                )));
            }
        }
        // Build first: a factory that refuses the options refuses the mount.
        let route = self.build_route(&unsealed.prefix, &entry, &unsealed.identity)?;
        route.backend.initialize(&route.mounted()).await?;
        let mut next = tables.clone();
        next.table_mut(table).push(entry);
        self.persist_tables(&unsealed.prefix, &next).await?;
        *tables = next;
        let mut routes: Vec<Arc<Route>> = unsealed.routes.load().routes().to_vec();
        routes.push(route);
        unsealed.routes.store(Arc::new(RouteTable::new(routes)));
        Ok(())
    }

    /// Unmounts `path` from `table` and deletes its storage. Unmounting a
    /// path where nothing is mounted succeeds, as in Vault.
    pub async fn unmount(&self, tenant: &Tenant, table: Table, path: &str) -> Result<()> {
        let path = normalize_mount_path(path)?;
        let unsealed = tenant;
        let mut tables = unsealed.tables.lock().await;
        match (table, path.as_str()) {
            (Table::Mounts, "sys/")
            | (Table::Mounts, "cubbyhole/")
            | (Table::Mounts, "identity/") => {
                return Err(Error::bad_request(format!("cannot unmount {path:?}")))
            }
            (Table::Auth, "token/") => {
                return Err(Error::bad_request(
                    "token credential backend cannot be disabled",
                ))
            }
            _ => {}
        }
        let Some(pos) = tables.table_mut(table).iter().position(|e| e.path == path) else {
            return Ok(());
        };
        let mut next = tables.clone();
        let entry = next.table_mut(table).remove(pos);
        self.persist_tables(&unsealed.prefix, &next).await?;
        *tables = next;
        let prefix = entry.route_path();
        let routes: Vec<Arc<Route>> = unsealed
            .routes
            .load()
            .routes()
            .iter()
            .filter(|r| r.prefix != prefix)
            .cloned()
            .collect();
        let removed: Vec<Arc<Route>> = unsealed
            .routes
            .load()
            .routes()
            .iter()
            .filter(|r| r.prefix == prefix)
            .cloned()
            .collect();
        unsealed.routes.store(Arc::new(RouteTable::new(routes)));
        for route in removed {
            route.backend.cleanup().await;
        }
        let view = self.view(&format!("{}{}", unsealed.prefix, entry.storage_prefix()));
        clear_view(&view).await?;
        Ok(())
    }

    /// Applies `tune` to the mount at `path` in `table`.
    pub async fn tune(&self, tenant: &Tenant, table: Table, path: &str, tune: Tune) -> Result<()> {
        let path = normalize_mount_path(path)?;
        let unsealed = tenant;
        let mut tables = unsealed.tables.lock().await;
        let mut next = tables.clone();
        let entry = next
            .table_mut(table)
            .iter_mut()
            .find(|e| e.path == path)
            .ok_or_else(|| {
                // OpenBao's message, naming an auth mount by its full path.
                let full = match table {
                    Table::Auth => format!("auth/{path}"),
                    Table::Mounts => path.clone(),
                };
                Error::bad_request(format!(
                    "tune of path {full:?} failed: no mount entry found"
                ))
            })?;
        let c = &mut entry.config;
        if let Some(v) = tune.default_lease_ttl {
            c.default_lease_ttl = v;
        }
        if let Some(v) = tune.max_lease_ttl {
            c.max_lease_ttl = v;
        }
        // As OpenBao: only two explicit TTLs are checked against each
        // other. A mount TTL above the system's is stored as given and
        // replaces the system value for the mount (OpenBao's system view
        // does the same), and a default above the system maximum with an
        // unset mount maximum is stored too.
        if c.default_lease_ttl != 0 && c.max_lease_ttl != 0 && c.max_lease_ttl < c.default_lease_ttl
        {
            return Err(Error::bad_request(format!(
                "backend max lease TTL of {} would be less than backend default lease TTL of {}",
                c.max_lease_ttl, c.default_lease_ttl
            )));
        }
        if let Some(v) = tune.listing_visibility {
            if !matches!(v.as_str(), "" | "unauth" | "hidden") {
                return Err(Error::bad_request(format!(
                    "invalid listing_visibility {v:?}"
                )));
            }
            c.listing_visibility = v;
        }
        for (slot, value) in [
            (
                &mut c.passthrough_request_headers,
                tune.passthrough_request_headers,
            ),
            (
                &mut c.allowed_response_headers,
                tune.allowed_response_headers,
            ),
            (
                &mut c.audit_non_hmac_request_keys,
                tune.audit_non_hmac_request_keys,
            ),
            (
                &mut c.audit_non_hmac_response_keys,
                tune.audit_non_hmac_response_keys,
            ),
        ] {
            if let Some(v) = value {
                *slot = v;
            }
        }
        if let Some(t) = tune.token_type {
            if table != Table::Auth {
                return Err(Error::bad_request(
                    "'token_type' can only be modified on auth mounts",
                ));
            }
            c.token_type = Some(t);
        }
        if let Some(d) = tune.description {
            entry.description = d;
        }
        if let Some(opts) = tune.options {
            let merged = entry.options.get_or_insert_with(Map::new);
            for (k, v) in opts {
                merged.insert(k, v);
            }
        }
        let entry = entry.clone();
        let routes = unsealed.routes.load_full();
        let current = routes
            .routes()
            .iter()
            .find(|r| r.prefix == entry.route_path())
            .cloned()
            .ok_or_else(|| Error::internal("a mounted entry has no route"))?;
        let options_changed = current.entry.load().options != entry.options;
        if options_changed {
            // New options may change what the backend is (KV's version):
            // rebuild it, as OpenBao reloads a backend on an options change.
            let route = self.build_route(&unsealed.prefix, &entry, &unsealed.identity)?;
            route.backend.initialize(&route.mounted()).await?;
            self.persist_tables(&unsealed.prefix, &next).await?;
            *tables = next;
            let swapped: Vec<Arc<Route>> = routes
                .routes()
                .iter()
                .map(|r| {
                    if r.prefix == route.prefix {
                        route.clone()
                    } else {
                        r.clone()
                    }
                })
                .collect();
            unsealed.routes.store(Arc::new(RouteTable::new(swapped)));
            current.backend.cleanup().await;
        } else {
            // Everything else is the mount's context: swap it in place and
            // keep the backend, its memory and in-flight requests intact.
            self.persist_tables(&unsealed.prefix, &next).await?;
            *tables = next;
            current.mount.store(self.mount_context(&entry));
            current.entry.store(Arc::new(entry));
        }
        Ok(())
    }

    /// Moves the mount at `from` to `to` (both full paths, `auth/...` for
    /// auth methods) within its table, with its data (stored by the mount's
    /// uuid, so it stays where it is) and its configuration. As in OpenBao,
    /// the leases issued under the old path (for an auth method: its
    /// tokens) are revoked first, forcibly. The old path is free afterwards.
    pub async fn remount(&self, tenant: &Tenant, from: &str, to: &str) -> Result<()> {
        let split = |raw: &str| -> Result<(Table, String)> {
            let p = normalize_mount_path(raw)?;
            match p.strip_prefix("auth/") {
                Some(rest) => Ok((Table::Auth, normalize_mount_path(rest)?)),
                None => Ok((Table::Mounts, p)),
            }
        };
        let (from_table, from_path) = split(from)?;
        let (to_table, to_path) = split(to)?;
        let full = |t: Table, p: &str| match t {
            Table::Auth => format!("auth/{p}"),
            Table::Mounts => p.to_string(),
        };
        let (from_full, to_full) = (full(from_table, &from_path), full(to_table, &to_path));
        if matches!(
            from_full.as_str(),
            "sys/" | "cubbyhole/" | "identity/" | "auth/token/"
        ) || from_full == "auth/"
        {
            return Err(Error::bad_request(format!("cannot remount {from_full:?}")));
        }
        match (from_table, to_table) {
            (Table::Auth, Table::Mounts) => {
                return Err(Error::bad_request(format!(
                    "cannot remount auth mount to non-auth mount {to_full:?}"
                )))
            }
            (Table::Mounts, Table::Auth) => {
                return Err(Error::bad_request(format!(
                    "cannot remount to destination {to_full}"
                )))
            }
            _ => {}
        }
        if to_table == Table::Mounts
            && ["sys/", "auth/", "cubbyhole/", "identity/"]
                .iter()
                .any(|r| to_path.starts_with(r))
        {
            return Err(Error::bad_request(format!(
                "cannot remount to destination {to_full}"
            )));
        }
        let unsealed = tenant;
        // Check before revoking anything; the checks are repeated under the
        // same lock as the move.
        self.remount_target(unsealed, from_table, &from_path, &from_full, &to_path)
            .await?;
        let old_prefix = full(from_table, &from_path);
        self.revoke_prefix(unsealed, &old_prefix, true).await?;
        let mut tables = unsealed.tables.lock().await;
        let mut next = tables.clone();
        let pos = next
            .table_mut(from_table)
            .iter()
            .position(|e| e.path == from_path)
            .ok_or_else(|| Error::bad_request(format!("no matching mount at {from_full:?}")))?;
        if let Some(existing) = next
            .table_mut(to_table)
            .iter()
            .find(|e| e.path != from_path && overlaps(&e.path, &to_path))
        {
            return Err(Error::bad_request(format!(
                "path already in use at {:?}",
                existing.route_path()
            )));
        }
        let entry = &mut next.table_mut(from_table)[pos];
        entry.path = to_path.clone();
        let entry = entry.clone();
        let new_prefix = entry.route_path();
        let route = self.build_route(&unsealed.prefix, &entry, &unsealed.identity)?;
        route.backend.initialize(&route.mounted()).await?;
        self.persist_tables(&unsealed.prefix, &next).await?;
        *tables = next;
        let current = unsealed.routes.load_full();
        let mut removed = Vec::new();
        let mut routes: Vec<Arc<Route>> = Vec::with_capacity(current.routes().len());
        for r in current.routes() {
            if r.prefix == old_prefix {
                removed.push(r.clone());
            } else {
                routes.push(r.clone());
            }
        }
        routes.push(route);
        unsealed.routes.store(Arc::new(RouteTable::new(routes)));
        for r in removed {
            r.backend.cleanup().await;
        }
        tracing::info!(from = %old_prefix, to = %new_prefix, "core: mount moved");
        Ok(())
    }

    /// The remount checks that need the table: the source exists and the
    /// destination is free.
    async fn remount_target(
        &self,
        unsealed: &Tenant,
        table: Table,
        from_path: &str,
        from_full: &str,
        to_path: &str,
    ) -> Result<()> {
        let mut tables = unsealed.tables.lock().await;
        let entries = tables.table_mut(table);
        if !entries.iter().any(|e| e.path == from_path) {
            return Err(Error::bad_request(format!(
                "no matching mount at {from_full:?}"
            )));
        }
        if let Some(existing) = entries
            .iter()
            .find(|e| e.path != from_path && overlaps(&e.path, to_path))
        {
            return Err(Error::bad_request(format!(
                "path already in use at {:?}",
                existing.route_path()
            )));
        }
        Ok(())
    }
}
