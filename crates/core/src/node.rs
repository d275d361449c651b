//! The [`Core`]: the server's state machine. It owns the barrier and the
//! seal (initialise, unseal with Shamir shares, seal), the mount tables and
//! the router built from them, the token store, and the request path every
//! call takes: sealed check, token, authorisation, routing, existence check,
//! backend.

use std::sync::{Arc, Weak};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::expiration::{Due, LeaseStore, Schedule};
use crate::mount::{normalize_mount_path, overlaps, MountConfig, MountEntry, SystemTtls, Table};
use crate::router::{Route, RouteTable};
use crate::token::{now_unix, TokenEntry, TokenStore};
use crate::{cubbyhole, sys, token};
use strongroom_barrier::shamir;
use strongroom_barrier::{Barrier, BarrierError};
use strongroom_policy::store::PolicyStore;
use strongroom_sdk::framework::{BackendRequest, LogicalBackend, MountContext};
use strongroom_sdk::logical::{Operation, Request, RequestHandler, Response};
use strongroom_sdk::registry::{FactoryInput, Registry};
use strongroom_sdk::storage::View;
use strongroom_sdk::storage::{Backend as Physical, BatchOp};
use strongroom_sdk::{Error, Result};

/// The physical key of the plaintext seal configuration.
pub const SEAL_CONFIG_KEY: &str = "core/seal-config";
const CLUSTER_KEY: &str = "core/cluster-info";

/// Paths answered whatever the seal state, without a token.
const SEAL_FREE_PATHS: [&str; 5] = [
    "sys/init",
    "sys/seal-status",
    "sys/unseal",
    "sys/health",
    "sys/leader",
];

/// Server-wide settings the core needs.
#[derive(Debug, Clone, Default)]
pub struct CoreConfig {
    /// System lease TTLs.
    pub ttls: SystemTtls,
    /// Configured cluster name; generated when absent.
    pub cluster_name: Option<String>,
    /// The storage type shown by seal-status (`inmem`, `redb`).
    pub storage_type: String,
    /// The advertised API address.
    pub api_addr: Option<String>,
}

/// The plaintext seal configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealConfig {
    /// Always `shamir` for now.
    #[serde(rename = "type")]
    pub kind: String,
    /// Number of key shares.
    pub secret_shares: usize,
    /// Shares needed to unseal.
    pub secret_threshold: usize,
}

/// Cluster identity, generated at first unseal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// Cluster name.
    pub name: String,
    /// Cluster id (uuid).
    pub id: String,
}

/// What `initialize` hands back once: the key shares and the root token.
pub struct InitOutput {
    /// The unseal key shares (the key itself when there is one share).
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// The initial root token.
    pub root_token: Zeroizing<String>,
}

/// Parameters of `initialize`.
#[derive(Debug, Clone)]
pub struct InitParams {
    /// Number of key shares.
    pub secret_shares: usize,
    /// Shares needed to unseal.
    pub secret_threshold: usize,
    /// Fixed root token id (dev mode), else generated.
    pub root_token_id: Option<String>,
    /// Dev mode: the root token is made as `auth/token/create` makes
    /// tokens (OpenBao's dev server does so), not as `sys/init` does.
    pub dev: bool,
}

#[derive(Default)]
struct UnsealProgress {
    shares: Vec<Zeroizing<Vec<u8>>>,
    nonce: String,
}

/// The state that exists only while unsealed.
pub struct Unsealed {
    routes: ArcSwap<RouteTable>,
    tables: tokio::sync::Mutex<Tables>,
    /// The token store.
    pub tokens: Arc<TokenStore>,
    /// The ACL policy store.
    pub policies: Arc<PolicyStore>,
    /// Secret leases.
    pub leases: Arc<LeaseStore>,
    /// The timetable of token and lease expiry.
    pub schedule: Arc<Schedule>,
    /// The cubbyhole engine's storage (one folder per token).
    pub cubbyhole: View,
    /// Cluster identity.
    pub cluster: ClusterInfo,
    reaper: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Tables {
    mounts: Vec<MountEntry>,
    auth: Vec<MountEntry>,
}

impl Tables {
    fn table_mut(&mut self, t: Table) -> &mut Vec<MountEntry> {
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

/// The server core.
pub struct Core {
    physical: Arc<dyn Physical>,
    barrier: Arc<Barrier>,
    config: CoreConfig,
    registry: Registry,
    unsealed: ArcSwapOption<Unsealed>,
    progress: tokio::sync::Mutex<UnsealProgress>,
    admin: tokio::sync::Mutex<()>,
    sys: Arc<dyn LogicalBackend>,
    token: Arc<dyn LogicalBackend>,
    sys_view: View,
    sys_mount: Arc<MountContext>,
    weak: Weak<Core>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

fn json_bytes<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(Error::internal)
}

impl Core {
    /// A core over `physical` storage; sealed (and maybe uninitialised).
    pub fn new(physical: Arc<dyn Physical>, config: CoreConfig, registry: Registry) -> Arc<Core> {
        let barrier = Arc::new(Barrier::new(physical.clone()));
        let sys_view = barrier.view("sys/");
        Arc::new_cyclic(|weak: &Weak<Core>| Core {
            physical,
            barrier,
            config,
            registry,
            unsealed: ArcSwapOption::empty(),
            progress: tokio::sync::Mutex::new(UnsealProgress::default()),
            admin: tokio::sync::Mutex::new(()),
            sys: Arc::new(sys::backend(weak.clone())),
            token: Arc::new(token::backend::backend(weak.clone())),
            weak: weak.clone(),
            sys_view,
            sys_mount: Arc::new(MountContext {
                path: "sys/".into(),
                kind: "system".into(),
                ..Default::default()
            }),
        })
    }

    /// The server settings.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// The barrier (for key status and rotation).
    pub fn barrier(&self) -> &Arc<Barrier> {
        &self.barrier
    }

    /// Whether the core is sealed.
    pub fn is_sealed(&self) -> bool {
        self.unsealed.load().is_none()
    }

    /// The unsealed state, or `Error::Sealed`.
    pub fn unsealed(&self) -> Result<Arc<Unsealed>> {
        self.unsealed.load_full().ok_or(Error::Sealed)
    }

    /// Whether the barrier has been initialised.
    pub async fn is_initialized(&self) -> Result<bool> {
        // An unsealed core is initialised: skip the storage read (this is
        // on the path of every health check).
        if !self.is_sealed() {
            return Ok(true);
        }
        Ok(self.barrier.initialized().await?)
    }

    /// The stored seal configuration.
    pub async fn seal_config(&self) -> Result<Option<SealConfig>> {
        match self.physical.get(SEAL_CONFIG_KEY).await? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::internal(format!("corrupt seal configuration: {e}"))),
        }
    }

    /// Unseal progress: (shares given, nonce).
    pub async fn unseal_progress(&self) -> (usize, String) {
        let p = self.progress.lock().await;
        (p.shares.len(), p.nonce.clone())
    }

    /// Initialises the server: generates the unseal key and its shares, the
    /// root key and keyring, the default mounts and a root token. Leaves the
    /// core sealed, as OpenBao does.
    pub async fn initialize(&self, params: InitParams) -> Result<InitOutput> {
        let (shares, threshold) = (params.secret_shares, params.secret_threshold);
        if shares == 0 || shares > 255 {
            return Err(Error::bad_request(
                "invalid seal configuration: secret shares must be between 1 and 255",
            ));
        }
        if threshold > shares {
            return Err(Error::bad_request(
                "invalid seal configuration: threshold cannot be larger than shares",
            ));
        }
        if shares > 1 && threshold < 2 {
            return Err(Error::bad_request(
                "invalid seal configuration: threshold must be greater than one for multiple shares",
            ));
        }
        if threshold == 0 {
            return Err(Error::bad_request(
                "invalid seal configuration: threshold must be at least one",
            ));
        }
        let _admin = self.admin.lock().await;
        if self.barrier.initialized().await? {
            return Err(Error::bad_request("Vault is already initialized"));
        }
        let unseal_key = Barrier::generate_key();
        let keys = if shares == 1 {
            vec![unseal_key.clone()]
        } else {
            shamir::split(&unseal_key, shares, threshold)
                .map_err(|e| Error::internal(format!("splitting the unseal key: {e}")))?
        };
        self.barrier.initialize(&unseal_key).await?;
        let seal = SealConfig {
            kind: "shamir".into(),
            secret_shares: shares,
            secret_threshold: threshold,
        };
        self.physical
            .put(SEAL_CONFIG_KEY, json_bytes(&seal)?)
            .await?;
        self.barrier.unseal(&unseal_key).await?;
        let tables = Tables {
            mounts: vec![
                {
                    let mut sys = MountEntry::new(
                        Table::Mounts,
                        "sys/",
                        "system",
                        "system endpoints used for control, policy and debugging",
                    );
                    sys.config.passthrough_request_headers = vec!["Accept".into()];
                    sys
                },
                cubbyhole_entry(),
            ],
            auth: vec![{
                let mut t =
                    MountEntry::new(Table::Auth, "token/", "token", "token based credentials");
                t.config.token_type = Some("default-service".into());
                t
            }],
        };
        self.persist_tables(&tables).await?;
        let unsealed = self.load_unsealed().await?;
        let root = unsealed
            .tokens
            .create_root(params.root_token_id.as_deref(), params.dev)
            .await?;
        self.seal_locked().await;
        Ok(InitOutput {
            keys,
            root_token: Zeroizing::new(root),
        })
    }

    /// Dev mode: initialise with one share, unseal, and mount `secret/` as
    /// KV version 2, as OpenBao does.
    pub async fn init_dev(&self, root_token_id: Option<String>) -> Result<InitOutput> {
        let out = self
            .initialize(InitParams {
                secret_shares: 1,
                secret_threshold: 1,
                root_token_id,
                dev: true,
            })
            .await?;
        self.submit_unseal_key(out.keys[0].clone()).await?;
        let mut options = Map::new();
        options.insert("version".into(), Value::from("2"));
        self.mount(
            Table::Mounts,
            "secret",
            "kv",
            "key/value secret storage",
            MountConfig::default(),
            Some(options),
        )
        .await?;
        Ok(out)
    }

    /// Adds one unseal key share; unseals when the threshold is reached.
    /// A wrong key (the root key does not decrypt) resets the progress.
    pub async fn submit_unseal_key(&self, key: Zeroizing<Vec<u8>>) -> Result<()> {
        let config = self
            .seal_config()
            .await?
            .ok_or_else(|| Error::bad_request("Vault is not initialized"))?;
        let mut progress = self.progress.lock().await;
        if !self.is_sealed() {
            return Ok(());
        }
        if progress
            .shares
            .iter()
            .any(|s| bool::from(s.as_slice().ct_eq(key.as_slice())))
        {
            return Ok(());
        }
        if progress.shares.is_empty() {
            progress.nonce = uuid::Uuid::new_v4().to_string();
        }
        progress.shares.push(key);
        if progress.shares.len() < config.secret_threshold {
            return Ok(());
        }
        let shares = std::mem::take(&mut progress.shares);
        progress.nonce.clear();
        let unseal_key = if config.secret_threshold == 1 {
            shares[0].clone()
        } else {
            let parts: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
            shamir::combine(&parts).map_err(|e| {
                Error::bad_request(format!("invalid key: failed to compute combined key: {e}"))
            })?
        };
        let _admin = self.admin.lock().await;
        match self.barrier.unseal(&unseal_key).await {
            Ok(()) => {}
            Err(BarrierError::InvalidKey) => {
                return Err(Error::bad_request(
                    "Error unsealing: cipher: message authentication failed",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = self.load_unsealed().await {
            self.barrier.seal();
            return Err(e);
        }
        tracing::info!("core: vault is unsealed");
        Ok(())
    }

    /// Forgets the unseal progress.
    pub async fn reset_unseal(&self) {
        let mut p = self.progress.lock().await;
        p.shares.clear();
        p.nonce.clear();
    }

    /// Seals: drops every key and the unsealed state.
    pub async fn seal(&self) {
        let _admin = self.admin.lock().await;
        self.seal_locked().await;
        tracing::info!("core: vault is sealed");
    }

    async fn seal_locked(&self) {
        if let Some(u) = self.unsealed.swap(None) {
            if let Some(reaper) = u.reaper.lock().ok().and_then(|mut r| r.take()) {
                reaper.abort();
            }
        }
        self.barrier.seal();
        self.reset_unseal().await;
    }

    async fn read_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.barrier.get(key).await? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::internal(format!("corrupt {key}: {e}"))),
        }
    }

    async fn persist_tables(&self, tables: &Tables) -> Result<()> {
        self.barrier
            .batch(vec![
                BatchOp::Put(
                    Table::Mounts.storage_key().into(),
                    json_bytes(&tables.mounts)?,
                ),
                BatchOp::Put(Table::Auth.storage_key().into(), json_bytes(&tables.auth)?),
            ])
            .await?;
        Ok(())
    }

    /// Builds the unsealed state from storage and publishes it: mount
    /// tables, tokens and leases (with their expiry timetable), then starts
    /// the reaper that revokes them on time.
    async fn load_unsealed(&self) -> Result<Arc<Unsealed>> {
        let schedule = Arc::new(Schedule::default());
        let tokens =
            Arc::new(TokenStore::open(self.barrier.view("sys/token/"), schedule.clone()).await?);
        let leases =
            Arc::new(LeaseStore::open(self.barrier.view("sys/expire/"), schedule.clone()).await?);
        let policies = Arc::new(PolicyStore::open(self.barrier.view("sys/policy/")).await?);
        let mut mounts: Vec<MountEntry> = self
            .read_json(Table::Mounts.storage_key())
            .await?
            .unwrap_or_default();
        let auth: Vec<MountEntry> = self
            .read_json(Table::Auth.storage_key())
            .await?
            .unwrap_or_default();
        if !mounts.iter().any(|m| m.kind == "cubbyhole") {
            // Storage written before the cubbyhole existed gains it here.
            mounts.push(cubbyhole_entry());
            self.persist_tables(&Tables {
                mounts: mounts.clone(),
                auth: auth.clone(),
            })
            .await?;
        }
        let cluster = match self.read_json::<ClusterInfo>(CLUSTER_KEY).await? {
            Some(c) => c,
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
                self.barrier.put(CLUSTER_KEY, &json_bytes(&c)?).await?;
                c
            }
        };
        let cubbyhole = mounts
            .iter()
            .find(|m| m.kind == "cubbyhole")
            .map(|m| self.barrier.view(&m.storage_prefix()))
            .ok_or_else(|| Error::internal("no cubbyhole mount"))?;
        let tables = Tables { mounts, auth };
        let routes = self.build_routes(&tables)?;
        let unsealed = Arc::new(Unsealed {
            routes: ArcSwap::from_pointee(routes),
            tables: tokio::sync::Mutex::new(tables),
            tokens,
            policies,
            leases,
            schedule,
            cubbyhole,
            cluster,
            reaper: std::sync::Mutex::new(None),
        });
        self.unsealed.store(Some(unsealed.clone()));
        // Tokens are indexed in the background. A crash during a tree
        // revocation can leave children whose parent is gone: once the
        // index is complete, finish the job.
        let indexing = unsealed.tokens.start_background();
        let core = self.weak.clone();
        tokio::spawn(async move {
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
            Arc::downgrade(&unsealed),
            unsealed.schedule.clone(),
        ));
        if let Ok(mut slot) = unsealed.reaper.lock() {
            *slot = Some(reaper);
        }
        Ok(unsealed)
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

    fn build_route(&self, entry: &MountEntry) -> Result<Arc<Route>> {
        let storage = self.barrier.view(&entry.storage_prefix());
        let mount = self.mount_context(entry);
        let backend: Arc<dyn LogicalBackend> = match (entry.table, entry.kind.as_str()) {
            (Table::Mounts, "system") => self.sys.clone(),
            (Table::Auth, "token") => self.token.clone(),
            (Table::Mounts, "cubbyhole") => Arc::new(cubbyhole::backend()),
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
            entry: entry.clone(),
            backend,
            storage,
            mount,
        }))
    }

    fn build_routes(&self, tables: &Tables) -> Result<RouteTable> {
        let mut routes = Vec::new();
        for entry in tables.mounts.iter().chain(tables.auth.iter()) {
            routes.push(self.build_route(entry)?);
        }
        Ok(RouteTable::new(routes))
    }

    /// The entries of a mount table.
    pub async fn mount_table(&self, table: Table) -> Result<Vec<MountEntry>> {
        let unsealed = self.unsealed()?;
        let tables = unsealed.tables.lock().await;
        Ok(match table {
            Table::Mounts => tables.mounts.clone(),
            Table::Auth => tables.auth.clone(),
        })
    }

    /// The entry of the mount serving `path` (a path inside the mount works).
    pub fn mount_for_path(&self, path: &str) -> Result<Option<MountEntry>> {
        let unsealed = self.unsealed()?;
        let routes = unsealed.routes.load();
        Ok(routes.lookup(path).map(|(r, _)| r.entry.clone()))
    }

    /// The OpenAPI document of every mounted backend, generated from the
    /// same path declarations that answer requests and `?help=1`.
    pub fn openapi(&self) -> Result<Value> {
        let unsealed = self.unsealed()?;
        let routes = unsealed.routes.load();
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

    /// Mounts a backend of type `kind` at `path` in `table`.
    pub async fn mount(
        &self,
        table: Table,
        path: &str,
        kind: &str,
        description: &str,
        config: MountConfig,
        options: Option<Map<String, Value>>,
    ) -> Result<()> {
        let path = normalize_mount_path(path)?;
        let unsealed = self.unsealed()?;
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
        // Build first: a factory that refuses the options refuses the mount.
        let route = self.build_route(&entry)?;
        entry = route.entry.clone();
        let mut next = tables.clone();
        next.table_mut(table).push(entry);
        self.persist_tables(&next).await?;
        *tables = next;
        let mut routes: Vec<Arc<Route>> = unsealed.routes.load().routes().to_vec();
        routes.push(route);
        unsealed.routes.store(Arc::new(RouteTable::new(routes)));
        Ok(())
    }

    /// Unmounts `path` from `table` and deletes its storage. Unmounting a
    /// path where nothing is mounted succeeds, as in Vault.
    pub async fn unmount(&self, table: Table, path: &str) -> Result<()> {
        let path = normalize_mount_path(path)?;
        let unsealed = self.unsealed()?;
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
        self.persist_tables(&next).await?;
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
        unsealed.routes.store(Arc::new(RouteTable::new(routes)));
        let view = self.barrier.view(&entry.storage_prefix());
        clear_view(&view).await?;
        Ok(())
    }

    /// Applies `tune` to the mount at `path` in `table`.
    pub async fn tune(&self, table: Table, path: &str, tune: Tune) -> Result<()> {
        let path = normalize_mount_path(path)?;
        let unsealed = self.unsealed()?;
        let mut tables = unsealed.tables.lock().await;
        let mut next = tables.clone();
        let entry = next
            .table_mut(table)
            .iter_mut()
            .find(|e| e.path == path)
            .ok_or_else(|| Error::bad_request(format!("cannot fetch sysview for path {path:?}")))?;
        let c = &mut entry.config;
        if let Some(v) = tune.default_lease_ttl {
            c.default_lease_ttl = v;
        }
        if let Some(v) = tune.max_lease_ttl {
            c.max_lease_ttl = v;
        }
        let max = if c.max_lease_ttl == 0 {
            self.config.ttls.max.as_secs()
        } else {
            c.max_lease_ttl
        };
        if c.default_lease_ttl > max {
            return Err(Error::bad_request(
                "backend max lease TTL cannot be less than default lease TTL",
            ));
        }
        if c.max_lease_ttl > self.config.ttls.max.as_secs() {
            return Err(Error::bad_request(
                "given TTL is greater than the system max lease TTL",
            ));
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
        let route = self.build_route(&entry)?;
        self.persist_tables(&next).await?;
        *tables = next;
        let routes: Vec<Arc<Route>> = unsealed
            .routes
            .load()
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
        unsealed.routes.store(Arc::new(RouteTable::new(routes)));
        Ok(())
    }

    /// Looks up the request's token and spends one of its uses;
    /// `PermissionDenied` when missing, unknown, expired, used up, or used
    /// from outside its bound CIDRs.
    async fn authenticate(&self, unsealed: &Unsealed, req: &Request) -> Result<token::Used> {
        let token = req.client_token.as_ref().ok_or(denied())?;
        if token.0.is_empty() {
            return Err(denied());
        }
        let entry = unsealed.tokens.lookup(&token.0).await?.ok_or(denied())?;
        if entry.num_uses < 0 {
            return Err(denied());
        }
        if !entry.bound_cidrs.is_empty() {
            let allowed = req
                .remote_addr
                .is_some_and(|ip| entry.bound_cidrs.iter().any(|c| c.contains(ip)));
            if !allowed {
                return Err(denied());
            }
        }
        unsealed.tokens.use_token(entry).await.map_err(|e| match e {
            Error::PermissionDenied => denied(),
            e => e,
        })
    }

    /// Authorises `entry` for `op` on `path` with `data` through the ACL
    /// compiled from its policies (cached per policy set); `sudo` paths also
    /// need the sudo capability, and the rule's wrapping TTL bounds apply to
    /// the request's wrap TTL. Response-wrapping tokens may only unwrap,
    /// look up and rewrap. Deny by default.
    async fn authorize(
        &self,
        unsealed: &Unsealed,
        entry: &TokenEntry,
        path: &str,
        req: &Request,
        sudo: bool,
    ) -> Result<()> {
        if entry.is_wrapping() {
            return match path {
                "sys/wrapping/unwrap" | "sys/wrapping/lookup" | "sys/wrapping/rewrap" => Ok(()),
                _ => Err(Error::PermissionDenied),
            };
        }
        if entry.is_root() {
            return Ok(());
        }
        let acl = unsealed.policies.acl(&entry.policies).await?;
        let decision = acl.check(path, req.operation, &req.data);
        if !decision.allowed || (sudo && !decision.sudo) {
            return Err(Error::PermissionDenied);
        }
        if let Some(min) = decision.min_wrapping_ttl {
            if req.wrap_ttl.is_none_or(|t| t < min) {
                return Err(Error::PermissionDenied);
            }
        }
        if let (Some(max), Some(t)) = (decision.max_wrapping_ttl, req.wrap_ttl) {
            if t > max {
                return Err(Error::PermissionDenied);
            }
        }
        Ok(())
    }

    /// Revokes a token and everything below it: children first, each with
    /// its leases and cubbyhole.
    pub async fn revoke_token_tree(&self, hash: &str) -> Result<()> {
        let unsealed = self.unsealed()?;
        for h in unsealed.tokens.tree_postorder(hash).await? {
            self.revoke_one_token(&unsealed, &h).await?;
        }
        Ok(())
    }

    /// Revokes a token but not its children, which become orphans.
    pub async fn revoke_token_orphan(&self, hash: &str) -> Result<()> {
        let unsealed = self.unsealed()?;
        unsealed.tokens.orphan_children(hash).await?;
        self.revoke_one_token(&unsealed, hash).await
    }

    async fn revoke_one_token(&self, unsealed: &Unsealed, hash: &str) -> Result<()> {
        for lease in unsealed.leases.of_token(hash) {
            self.revoke_lease(unsealed, &lease, false).await?;
        }
        if let Some(entry) = unsealed.tokens.get_any(hash).await? {
            if !entry.cubbyhole_id.is_empty() {
                clear_view(
                    &unsealed
                        .cubbyhole
                        .sub_view(&format!("{}/", entry.cubbyhole_id)),
                )
                .await?;
            }
        }
        unsealed.tokens.delete(hash).await
    }

    /// Revokes a secret lease: the backend that issued it undoes it, then
    /// the lease is forgotten. With `force`, a backend error is logged and
    /// the lease forgotten anyway (`sys/leases/revoke-force`).
    pub async fn revoke_lease(
        &self,
        unsealed: &Unsealed,
        lease_id: &str,
        force: bool,
    ) -> Result<()> {
        let Some(lease) = unsealed.leases.get(lease_id) else {
            return Ok(());
        };
        let routes = unsealed.routes.load();
        if let Some((route, rel)) = routes.lookup(&lease.path) {
            let mut request = Request::new(Operation::Delete, rel);
            request.data = lease.internal.clone();
            let outcome = route
                .backend
                .revoke_secret(BackendRequest::new(
                    request,
                    route.storage.clone(),
                    route.mount.clone(),
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

    /// Revokes every lease (tokens included) below the path `prefix`
    /// (matched by whole segments: `auth/token/create` does not reach
    /// `auth/token/create-orphan`).
    pub async fn revoke_prefix(&self, prefix: &str, force: bool) -> Result<()> {
        let unsealed = self.unsealed()?;
        let prefix = match prefix.trim_start_matches('/') {
            p if p.is_empty() || p.ends_with('/') => p.to_string(),
            p => format!("{p}/"),
        };
        let prefix = prefix.as_str();
        for id in unsealed.leases.ids() {
            if id.starts_with(prefix) {
                self.revoke_lease(&unsealed, &id, force).await?;
            }
        }
        let matching = unsealed
            .tokens
            .entries_matching(|e| e.lease_id().starts_with(prefix))
            .await?;
        for entry in matching {
            self.revoke_token_tree(&entry.id_hash).await?;
        }
        Ok(())
    }

    /// `auth/token/tidy` and `sys/leases/tidy`: revokes tokens whose parent
    /// is gone and leases whose token is gone.
    pub async fn tidy_tokens(&self) -> Result<()> {
        let unsealed = self.unsealed()?;
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
    async fn reap_due(&self, unsealed: &Unsealed) {
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

    /// The rest of a request's path once its token is known: existence
    /// check, ACL, backend, then leasing and wrapping of the answer.
    async fn dispatch(
        &self,
        unsealed: &Unsealed,
        found: Option<(Arc<Route>, String)>,
        mut req: Request,
        token: Option<Arc<TokenEntry>>,
        sudo: bool,
    ) -> Result<Response> {
        let Some((route, rel)) = found else {
            if let Some(token) = &token {
                self.authorize(unsealed, token, &req.path, &req, sudo)
                    .await?;
            }
            return Err(Error::NotFound(Some(format!(
                "no handler for route {:?}. route entry not found.",
                req.path
            ))));
        };
        let full_path = std::mem::replace(&mut req.path, rel);
        let wrap_ttl = req.wrap_ttl;
        let remote = req.remote_addr;
        let request_id = req.id.clone();
        let mut breq = BackendRequest::new(req, route.storage.clone(), route.mount.clone());
        if let Some(token) = &token {
            breq.extensions.insert(token.clone());
        }
        if breq.request.operation == Operation::Update && token.is_some() {
            if let Some(false) = route.backend.exists(&breq).await? {
                breq.request.operation = Operation::Create;
            }
        }
        if let Some(token) = &token {
            self.authorize(unsealed, token, &full_path, &breq.request, sudo)
                .await?;
        }
        if breq.request.operation == Operation::Help {
            let body = route.backend.help(&route.mount, &breq.request.path)?;
            return Ok(Response::raw(200, body));
        }
        let mut resp = route.backend.handle(breq).await?;
        if let Some(issue) = resp.issue.take() {
            if route.entry.table != Table::Auth {
                return Err(Error::internal("a secrets engine asked for a login token"));
            }
            resp.auth = Some(
                self.issue_login_token(unsealed, &route.entry, &full_path, issue, remote)
                    .await?,
            );
        }
        if let Some(lease) = resp.lease.as_mut() {
            if let Some(internal) = lease.internal.take() {
                let ttl = match lease.lease_duration {
                    0 => route.mount.default_lease_ttl.as_secs(),
                    t => t,
                };
                let entry = unsealed
                    .leases
                    .register(
                        &full_path,
                        token.as_ref().map_or("", |t| t.id_hash.as_str()),
                        internal,
                        ttl,
                        route.mount.max_lease_ttl.as_secs(),
                        lease.renewable,
                    )
                    .await?;
                lease.lease_id = entry.lease_id.clone();
                lease.lease_duration = entry.ttl;
            }
        }
        if let Some(ttl) = wrap_ttl {
            if resp.raw.is_none() && (resp.data.is_some() || resp.auth.is_some()) {
                let ttl = ttl.as_secs().max(1);
                resp = self
                    .wrap_response(unsealed, &resp, ttl, &full_path, &request_id)
                    .await?;
            }
        }
        Ok(resp)
    }

    async fn dispatch_sys_direct(&self, req: Request) -> Result<Response> {
        let rel = req
            .path
            .strip_prefix("sys/")
            .unwrap_or(&req.path)
            .to_string();
        let mut request = req;
        request.path = rel;
        self.sys
            .handle(BackendRequest::new(
                request,
                self.sys_view.clone(),
                self.sys_mount.clone(),
            ))
            .await
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

fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| s == ".." || s == ".")
}

/// The reaper: sleeps until the earliest deadline of the timetable (or
/// until it gets an earlier one) and revokes what is due. It holds the core
/// weakly and is aborted at seal.
async fn reap(core: Weak<Core>, unsealed: Weak<Unsealed>, schedule: Arc<Schedule>) {
    loop {
        {
            let (Some(core), Some(unsealed)) = (core.upgrade(), unsealed.upgrade()) else {
                return;
            };
            core.reap_due(&unsealed).await;
        }
        let wait = match schedule.next() {
            Some(at) => at.saturating_sub(now_unix()),
            None => 3600,
        };
        if wait == 0 {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(wait)) => {}
            _ = schedule.changed() => {}
        }
    }
}

/// What a missing, unknown, expired or used-up token gets: OpenBao's plain
/// 403 (an ACL refusal renders differently).
fn denied() -> Error {
    Error::Forbidden("permission denied".into())
}

/// The `cubbyhole/` mount every server has.
fn cubbyhole_entry() -> MountEntry {
    let mut e = MountEntry::new(
        Table::Mounts,
        "cubbyhole/",
        "cubbyhole",
        "per-token private secret storage",
    );
    e.local = true;
    e
}

/// Requests to `sys/wrapping/unwrap` or `rewrap` without a `token` field
/// name the wrapping token in the header: the handler validates (and
/// spends) it itself, so that an invalid one gets OpenBao's 400 rather
/// than a 403.
fn wrapping_token_in_header(req: &Request) -> bool {
    matches!(
        req.path.trim_end_matches('/'),
        "sys/wrapping/unwrap" | "sys/wrapping/rewrap"
    ) && req
        .data
        .get("token")
        .and_then(serde_json::Value::as_str)
        .is_none_or(str::is_empty)
}

#[async_trait::async_trait]
impl RequestHandler for Core {
    async fn handle_request(&self, req: Request) -> Result<Response> {
        if has_dot_segment(&req.path) {
            return Err(Error::bad_request(format!(
                "invalid request path {:?}",
                req.path
            )));
        }
        let bare = req.path.trim_end_matches('/');
        if SEAL_FREE_PATHS.contains(&bare) && req.operation != Operation::Help {
            return self.dispatch_sys_direct(req).await;
        }
        let unsealed = self.unsealed.load_full().ok_or(Error::Sealed)?;
        let routes = unsealed.routes.load();
        let found = routes
            .lookup(&req.path)
            .map(|(r, rel)| (r.clone(), rel.to_string()));
        let special = found.as_ref().map(|(r, rel)| {
            let s = r.backend.special_paths();
            (s.unauthenticated.contains(rel), s.root.contains(rel))
        });
        let (unauthenticated, sudo) = special.unwrap_or((false, false));
        let unauthenticated = unauthenticated || wrapping_token_in_header(&req);
        // Token first (spending a use), then the existence check that turns
        // an update into a create, then the ACL on the final operation
        // (OpenBao's order), so that a policy may allow creating without
        // allowing overwriting.
        let used = if unauthenticated {
            None
        } else {
            Some(self.authenticate(&unsealed, &req).await?)
        };
        let token = used.as_ref().map(|u| u.entry.clone());
        let outcome = self.dispatch(&unsealed, found, req, token, sudo).await;
        // A token whose last use this was is revoked once its request is
        // answered (successfully or not).
        if let Some(used) = &used {
            if used.exhausted {
                if let Err(e) = self.revoke_token_tree(&used.entry.id_hash).await {
                    tracing::warn!(error = %e, "revoking a used-up token failed");
                }
            }
        }
        outcome
    }
}
