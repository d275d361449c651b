//! Audit in the core: the table of audit devices (`core/audit` in the
//! barrier), each device's salt (`audit/<uuid>/salt`), the audited request
//! headers (`core/audited-headers`), the devices declared in the config
//! file, and the pipeline hook that turns each request into a request entry
//! and a response entry for the [`Broker`].
//!
//! Devices run on the active node only: they are opened at activation and
//! closed at step-down and seal. A device that cannot be opened at
//! activation stays in the broker as a failing one, so that a server whose
//! only device is broken refuses requests (fail-closed) instead of serving
//! them unaudited.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use strongroom_audit::entry::{
    Auth, EntryType, MountInfo, PolicyInfo, PolicyResults, RequestInfo, ResponseAuth, ResponseInfo,
    SecretInfo,
};
use strongroom_audit::options::CommonOptions;
use strongroom_audit::{Broker, ConfigError, Device, DeviceConfig, Entry, Salt};
use strongroom_sdk::logical::{Request, Response};
use strongroom_sdk::{Error, Result};

use crate::node::Core;
use crate::pipeline::{AuditHook, Authorization, RequestCtx};

/// The barrier key of the audit table (below the root view).
const TABLE_KEY: &str = "core/audit";
/// The barrier key of the audited request headers.
const HEADERS_KEY: &str = "core/audited-headers";

/// Paths never audited, as in OpenBao (the other seal-free paths leave
/// the pipeline before the audit stage).
const UNAUDITED: [&str; 1] = ["sys/seal"];

/// The server's audit settings, from the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditSettings {
    /// `unsafe_allow_api_audit_creation`: devices may be enabled over the
    /// API.
    pub allow_api: bool,
    /// `allow_audit_log_prefixing`: devices may set `prefix`.
    pub allow_prefix: bool,
    /// The `audit` blocks of the config file.
    pub declared: Vec<DeviceConfig>,
}

/// One row of the audit table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TableEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    local: bool,
    #[serde(default)]
    options: BTreeMap<String, String>,
    uuid: String,
    /// Declared in the config file: not changed nor disabled over the API.
    #[serde(default)]
    declared: bool,
}

impl TableEntry {
    fn config(&self) -> DeviceConfig {
        DeviceConfig {
            path: self.path.clone(),
            kind: self.kind.clone(),
            description: self.description.clone(),
            local: self.local,
            options: self.options.clone(),
        }
    }
}

/// An audited request header: its name (lowercased) and whether its value
/// is hashed.
type Headers = BTreeMap<String, bool>;

/// Audit's state in the core.
pub struct Audit {
    broker: Arc<Broker>,
    /// On an HA standby: the cluster has audit devices (the active node's
    /// table is not empty), so the standby forwards every request to the
    /// active node instead of answering reads itself unaudited.
    standby_forwards: std::sync::atomic::AtomicBool,
    settings: ArcSwap<AuditSettings>,
    headers: ArcSwap<Headers>,
    /// Serialises changes of the table (enable, disable, reconcile).
    changes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("devices", &self.broker.devices().len())
            .finish_non_exhaustive()
    }
}

/// The normal form of a device path: no leading slash, one trailing.
pub fn normalize_path(path: &str) -> String {
    format!("{}/", path.trim_matches('/'))
}

/// A sink that always fails: a device that could not be opened, kept so
/// that the broker fails closed.
struct Unopened(String);

#[async_trait::async_trait]
impl strongroom_audit::Sink for Unopened {
    async fn write(&self, _batch: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other(self.0.clone()))
    }
}

fn config_error(e: ConfigError) -> Error {
    Error::bad_request(e.to_string())
}

impl Audit {
    /// Audit with `settings`, no device open yet.
    pub fn new(settings: AuditSettings) -> Audit {
        Audit {
            broker: Arc::new(Broker::new()),
            standby_forwards: std::sync::atomic::AtomicBool::new(false),
            settings: ArcSwap::from_pointee(settings),
            headers: ArcSwap::from_pointee(Headers::new()),
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// The broker the pipeline logs to.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Opens a device from its row and salt; a device that cannot be
    /// opened becomes a failing one (logged, naming the device only).
    fn open(&self, row: &TableEntry, salt: Salt) -> Arc<Device> {
        let allow_prefix = self.settings.load().allow_prefix;
        match Device::open(row.config(), Salt::from_bytes(salt.bytes()), allow_prefix) {
            Ok(d) => Arc::new(d),
            Err(e) => {
                tracing::error!(device = %row.path, error = %e, "audit: the device cannot be opened; requests fail until one device works");
                let options = CommonOptions::parse(&row.options, true).unwrap_or_default();
                Arc::new(Device::with_sink(
                    row.config(),
                    options,
                    salt,
                    Arc::new(Unopened(e.to_string())),
                ))
            }
        }
    }

    async fn read_table(core: &Core) -> Result<Vec<TableEntry>> {
        Ok(core.read_json(TABLE_KEY).await?.unwrap_or_default())
    }

    async fn write_table(core: &Core, table: &[TableEntry]) -> Result<()> {
        let bytes = serde_json::to_vec(table).map_err(Error::internal)?;
        core.view("").put(TABLE_KEY, &bytes).await?;
        Ok(())
    }

    async fn salt(core: &Core, uuid: &str, create: bool) -> Result<Salt> {
        let view = core.view("audit/");
        let key = format!("{uuid}/salt");
        if let Some(bytes) = view.get(&key).await? {
            return Ok(Salt::from_bytes(&bytes));
        }
        if !create {
            return Err(Error::internal(format!("audit device {uuid} has no salt")));
        }
        let salt = Salt::generate().map_err(|_| Error::internal("no randomness for a salt"))?;
        view.put(&key, salt.bytes()).await?;
        Ok(salt)
    }

    /// Activation: reconciles the declared devices with the table, opens
    /// every device, loads the audited headers.
    pub(crate) async fn activate(&self, core: &Core) -> Result<()> {
        let _changes = self.changes.lock().await;
        let table = self.reconcile(core, Self::read_table(core).await?).await?;
        let headers: Headers = core.read_json(HEADERS_KEY).await?.unwrap_or_default();
        self.headers.store(Arc::new(headers));
        self.open_all(core, &table, &[]).await?;
        Ok(())
    }

    /// Puts the devices of `table` in the broker: a device of `running`
    /// with the same configuration is kept as it is (its writer, its
    /// chain), the others are opened.
    async fn open_all(
        &self,
        core: &Core,
        table: &[TableEntry],
        running: &[Arc<Device>],
    ) -> Result<Vec<Arc<Device>>> {
        let mut devices = Vec::with_capacity(table.len());
        let mut kept = Vec::new();
        for row in table {
            let config = row.config();
            if let Some(d) = running.iter().find(|d| *d.config() == config) {
                devices.push(d.clone());
                kept.push(d.clone());
                continue;
            }
            let salt = Self::salt(core, &row.uuid, true).await?;
            devices.push(self.open(row, salt));
        }
        if !devices.is_empty() {
            tracing::info!(devices = devices.len(), "audit: devices enabled");
        }
        self.broker.set(devices);
        Ok(kept)
    }

    /// An HA standby reads the audit table (read-only): with devices in
    /// it, the standby forwards every request to the active node, where
    /// they are audited.
    pub(crate) async fn load_standby(&self, core: &Core) -> Result<()> {
        let table = Self::read_table(core).await?;
        let declared = !self.settings.load().declared.is_empty();
        self.standby_forwards.store(
            !table.is_empty() || declared,
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(())
    }

    /// Whether an HA standby must forward reads it could answer itself
    /// (see [`Audit::load_standby`]).
    pub fn standby_forwards(&self) -> bool {
        self.standby_forwards
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The storage key of the audit table (a standby reloads on a change).
    pub(crate) fn table_key() -> &'static str {
        TABLE_KEY
    }

    /// Step-down and seal: every device closes.
    pub(crate) fn deactivate(&self) {
        self.broker.set(Vec::new());
    }

    /// Makes the table agree with the declared devices, as OpenBao does: a
    /// declared device missing from the table is added (with a new salt), a
    /// declared one no longer declared is removed; a declaration that
    /// changed, or that names a path a device enabled over the API holds,
    /// is refused (OpenBao's messages). Writes the table when it changed.
    async fn reconcile(&self, core: &Core, mut table: Vec<TableEntry>) -> Result<Vec<TableEntry>> {
        let settings = self.settings.load_full();
        let before = table.clone();
        let mut seen = std::collections::BTreeSet::new();
        for d in &settings.declared {
            let path = normalize_path(&d.path);
            if path == "/" {
                return Err(Error::bad_request("audit config is missing a path"));
            }
            if !seen.insert(path.clone()) {
                return Err(Error::bad_request(format!(
                    "two audit devices with same path ({path}) exist in config"
                )));
            }
            if d.options.contains_key("prefix") && !settings.allow_prefix {
                return Err(Error::bad_request("audit log prefixing is not allowed"));
            }
            let want = |uuid: String| TableEntry {
                path: path.clone(),
                kind: d.kind.clone(),
                description: d.description.clone(),
                local: d.local,
                options: d.options.clone(),
                uuid,
                declared: true,
            };
            match table.iter().find(|r| r.path == path) {
                Some(row) if !row.declared => {
                    return Err(Error::bad_request(format!(
                        "audit device in configuration (path: {path}) was already created by API; \
                         remove the API audit device before attempting to create a duplicate \
                         configuration-based version"
                    )))
                }
                Some(row) if *row != want(row.uuid.clone()) => {
                    return Err(Error::bad_request(format!(
                        "failed to validate audit device config {path}: modifications to audit \
                         devices are not allowed"
                    )))
                }
                Some(_) => {}
                None => table.push(want(uuid::Uuid::new_v4().to_string())),
            }
        }
        table.retain(|row| !row.declared || seen.contains(&row.path));
        table.sort_by(|a, b| a.path.cmp(&b.path));
        if table != before {
            for gone in before
                .iter()
                .filter(|r| !table.iter().any(|t| t.uuid == r.uuid))
            {
                tracing::info!(device = %gone.path, "audit: a declared device was removed from the config file");
                let _ = core
                    .view("audit/")
                    .delete(&format!("{}/salt", gone.uuid))
                    .await;
            }
            Self::write_table(core, &table).await?;
        }
        Ok(table)
    }

    /// SIGHUP: new settings from the config file; the declared devices are
    /// reconciled and every device reopens its destination.
    pub async fn reload(&self, core: &Core, settings: AuditSettings) -> Result<()> {
        let previous = self.settings.swap(Arc::new(settings));
        if core.active().is_err() {
            return Ok(());
        }
        let _changes = self.changes.lock().await;
        let table = Self::read_table(core).await?;
        let reconciled = match self.reconcile(core, table).await {
            Ok(t) => t,
            Err(e) => {
                // A refused declaration changes nothing: the devices in
                // force, and the settings they came from, stay.
                self.settings.store(previous);
                return Err(e);
            }
        };
        // Devices whose configuration did not change keep running (and
        // their chains go on into the reopened file); new ones open fresh.
        let running = self.broker.devices();
        let kept = self.open_all(core, &reconciled, &running).await?;
        for d in kept {
            if let Err(e) = d.reopen().await {
                tracing::error!(error = %e, "audit: reopening a device failed");
            }
        }
        Ok(())
    }

    /// `GET sys/audit`: every device by path.
    pub async fn list(&self, core: &Core) -> Result<Map<String, Value>> {
        let table = Self::read_table(core).await?;
        Ok(table
            .into_iter()
            .map(|r| {
                (
                    r.path.clone(),
                    json!({
                        "type": r.kind,
                        "description": r.description,
                        "local": r.local,
                        "options": r.options,
                        "path": r.path,
                    }),
                )
            })
            .collect())
    }

    /// `PUT sys/audit/:path`: enables a device after a test write (unless
    /// `skip_test`), with a new salt.
    pub async fn enable(&self, core: &Core, config: DeviceConfig, skip_test: bool) -> Result<()> {
        if !self.settings.load().allow_api {
            return Err(Error::bad_request(
                "cannot enable audit device via API; use declarative, config-based audit device \
                 management instead or set unsafe_allow_api_audit_creation = true in the server's \
                 configuration",
            ));
        }
        let path = normalize_path(&config.path);
        if path == "/" {
            return Err(Error::bad_request("path is required"));
        }
        let _changes = self.changes.lock().await;
        let mut table = Self::read_table(core).await?;
        if table.iter().any(|r| r.path == path) {
            return Err(Error::bad_request("path already in use"));
        }
        let config = DeviceConfig {
            path: path.clone(),
            ..config
        };
        let salt = Salt::generate().map_err(|_| Error::internal("no randomness for a salt"))?;
        let device = Device::open(
            config.clone(),
            Salt::from_bytes(salt.bytes()),
            self.settings.load().allow_prefix,
        )
        .map_err(config_error)?;
        if !skip_test {
            let test = test_entry();
            device.log(&test, &[], &[]).await.map_err(|e| {
                Error::bad_request(format!("audit backend failed test message: {e}"))
            })?;
        }
        let uuid = uuid::Uuid::new_v4().to_string();
        core.view("audit/")
            .put(&format!("{uuid}/salt"), salt.bytes())
            .await?;
        table.push(TableEntry {
            path,
            kind: config.kind,
            description: config.description,
            local: config.local,
            options: config.options,
            uuid,
            declared: false,
        });
        table.sort_by(|a, b| a.path.cmp(&b.path));
        Self::write_table(core, &table).await?;
        let mut devices: Vec<Arc<Device>> = self.broker.devices().iter().cloned().collect();
        devices.push(Arc::new(device));
        devices.sort_by(|a, b| a.config().path.cmp(&b.config().path));
        self.broker.set(devices);
        Ok(())
    }

    /// `DELETE sys/audit/:path`: disables a device and forgets its salt.
    /// A device that is not there is not an error (OpenBao answers 204).
    pub async fn disable(&self, core: &Core, path: &str) -> Result<()> {
        let path = normalize_path(path);
        let _changes = self.changes.lock().await;
        let mut table = Self::read_table(core).await?;
        let Some(row) = table.iter().find(|r| r.path == path).cloned() else {
            return Ok(());
        };
        if row.declared {
            return Err(Error::bad_request(
                "cannot disable configuration-managed audit device",
            ));
        }
        table.retain(|r| r.path != path);
        Self::write_table(core, &table).await?;
        let _ = core
            .view("audit/")
            .delete(&format!("{}/salt", row.uuid))
            .await;
        let devices: Vec<Arc<Device>> = self
            .broker
            .devices()
            .iter()
            .filter(|d| d.config().path != path)
            .cloned()
            .collect();
        self.broker.set(devices);
        Ok(())
    }

    /// `sys/audit-hash/:path`: the input hashed with the device's salt.
    pub fn hash(&self, path: &str, input: &str) -> Result<String> {
        let path = normalize_path(path);
        let device = self
            .broker
            .device(&path)
            .ok_or_else(|| Error::bad_request(format!("unknown audit backend {path:?}")))?;
        Ok(device.hash(input.as_bytes()))
    }

    /// The audited request headers.
    pub fn headers(&self) -> Arc<Headers> {
        self.headers.load_full()
    }

    /// Adds or changes an audited request header.
    pub async fn set_header(&self, core: &Core, name: &str, hmac: bool) -> Result<()> {
        let _changes = self.changes.lock().await;
        let mut headers = (*self.headers.load_full()).clone();
        headers.insert(name.to_ascii_lowercase(), hmac);
        Self::store_headers(core, &headers).await?;
        self.headers.store(Arc::new(headers));
        Ok(())
    }

    /// Removes an audited request header.
    pub async fn remove_header(&self, core: &Core, name: &str) -> Result<()> {
        let _changes = self.changes.lock().await;
        let mut headers = (*self.headers.load_full()).clone();
        headers.remove(&name.to_ascii_lowercase());
        Self::store_headers(core, &headers).await?;
        self.headers.store(Arc::new(headers));
        Ok(())
    }

    async fn store_headers(core: &Core, headers: &Headers) -> Result<()> {
        let bytes = serde_json::to_vec(headers).map_err(Error::internal)?;
        core.view("").put(HEADERS_KEY, &bytes).await?;
        Ok(())
    }
}

/// The entry of an enable's test write (OpenBao's `sys/audit/test`).
fn test_entry() -> Entry {
    Entry {
        time: now(),
        kind: EntryType::Request,
        auth: Auth {
            token_type: "default".into(),
            ..Auth::default()
        },
        request: RequestInfo {
            id: uuid::Uuid::new_v4().to_string(),
            operation: "update".into(),
            path: "sys/audit/test".into(),
            ..RequestInfo::default()
        },
        response: None,
        error: String::new(),
    }
}

fn now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

fn rfc3339_secs(unix: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
        .to_string()
}

/// The pipeline's audit hook: builds the entries and hands them to the
/// broker.
pub struct CoreAuditHook {
    audit: Arc<Audit>,
    /// To look up a wrapping token an unwrap names in its header (the
    /// pipeline leaves that request unauthenticated; OpenBao's entry shows
    /// the wrapping token's `auth`).
    core: std::sync::Weak<Core>,
}

impl CoreAuditHook {
    /// The hook of `audit` in `core`.
    pub fn new(audit: Arc<Audit>, core: std::sync::Weak<Core>) -> CoreAuditHook {
        CoreAuditHook { audit, core }
    }

    /// The token entry of the wrapping token an unwrap, lookup or rewrap
    /// names in its header, if it is one.
    async fn wrapping_entry(
        &self,
        ctx: &RequestCtx,
        token: &str,
    ) -> Option<Arc<crate::token::TokenEntry>> {
        if ctx.token.is_some()
            || token.is_empty()
            || !matches!(
                ctx.path.trim_end_matches('/'),
                "sys/wrapping/unwrap" | "sys/wrapping/lookup" | "sys/wrapping/rewrap"
            )
        {
            return None;
        }
        let active = self.core.upgrade()?.active().ok()?;
        let entry = active.tokens.lookup(token).await.ok()??;
        entry.is_wrapping().then_some(entry)
    }
}

/// The audited headers of `request`, marked for hashing where asked.
fn audited_headers(request: Option<&Request>, wanted: &Headers) -> Option<Map<String, Value>> {
    let headers = request?.headers.as_ref()?;
    let mut out = Map::new();
    for (name, hmac) in wanted {
        let values: Vec<Value> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| Value::String(v.to_string()))
            .collect();
        if values.is_empty() {
            continue;
        }
        let v = Value::Array(values);
        out.insert(name.clone(), if *hmac { json!({ "hmac": v }) } else { v });
    }
    (!out.is_empty()).then_some(out)
}

/// The `auth` block of a request's entries; `entry` is the caller's token
/// (`ctx.token`, or an unwrap's wrapping token).
fn auth_of(ctx: &RequestCtx, entry: Option<&crate::token::TokenEntry>, token: &str) -> Auth {
    let Some(t) = entry else {
        // No valid token: OpenBao shows only the token type here (the
        // token sent, if any, is in `request.client_token`), and the
        // verdict for a path that needs none (logins).
        return Auth {
            token_type: "default".into(),
            policy_results: (ctx.unauthenticated && ctx.routed.is_some()).then(|| PolicyResults {
                allowed: true,
                granting_policies: Vec::new(),
            }),
            ..Auth::default()
        };
    };
    // The policies are the token's namespace's.
    let policy_ns = if t.namespace_id.is_empty() {
        "root".to_string()
    } else {
        t.namespace_id.clone()
    };
    let policy_results = match &ctx.authorization {
        Some(Authorization::Root) => Some(PolicyResults {
            allowed: true,
            granting_policies: vec![PolicyInfo {
                name: "root".into(),
                namespace_id: policy_ns.clone(),
                kind: "acl".into(),
            }],
        }),
        Some(Authorization::Acl(d)) => Some(PolicyResults {
            allowed: d.allowed,
            granting_policies: d
                .granting_policies
                .iter()
                .map(|name| PolicyInfo {
                    name: name.clone(),
                    namespace_id: policy_ns.clone(),
                    kind: "acl".into(),
                })
                .collect(),
        }),
        Some(Authorization::Wrapping) => Some(PolicyResults {
            allowed: true,
            granting_policies: vec![PolicyInfo {
                name: "response-wrapping".into(),
                namespace_id: policy_ns.clone(),
                kind: "acl".into(),
            }],
        }),
        _ => None,
    };
    // OpenBao's entries name a root token's caller `root`, whatever the
    // token's display name.
    let display_name = if t.policies.iter().any(|p| p == "root") {
        "root".to_string()
    } else {
        t.display_name.clone()
    };
    let policy_results = policy_results.or_else(|| {
        t.is_wrapping().then(|| PolicyResults {
            allowed: true,
            granting_policies: vec![PolicyInfo {
                name: "response-wrapping".into(),
                namespace_id: policy_ns.clone(),
                kind: "acl".into(),
            }],
        })
    });
    Auth {
        client_token: token.to_string(),
        accessor: t.accessor.clone(),
        display_name,
        policies: t.policies.clone(),
        token_policies: t.policies.clone(),
        policy_results,
        metadata: t.meta.clone().filter(|m| !m.is_empty()),
        entity_id: String::new(),
        token_type: t.token_type.as_str().to_string(),
        token_ttl: t.ttl,
        token_issue_time: rfc3339_secs(t.creation_time),
        remaining_uses: t.num_uses,
    }
}

/// The running version and class of the request's mount (OpenBao reports
/// the system backend as class `secret` too).
fn version_of(ctx: &RequestCtx) -> (String, String) {
    match ctx.routed.as_ref() {
        None => (String::new(), String::new()),
        Some(r) => (
            format!("v{}+builtin.strongroom", env!("CARGO_PKG_VERSION")),
            if r.mount.path.starts_with("auth/") {
                "auth"
            } else {
                "secret"
            }
            .to_string(),
        ),
    }
}

fn mount_of(ctx: &RequestCtx) -> MountInfo {
    ctx.routed
        .as_ref()
        .map(|r| MountInfo {
            mount_point: r.mount.path.clone(),
            mount_type: r.mount.kind.clone(),
            mount_accessor: r.mount.accessor.clone(),
        })
        .unwrap_or_default()
}

/// The mount's non-HMAC keys (request, response).
fn non_hmac_keys(ctx: &RequestCtx) -> (Vec<String>, Vec<String>) {
    ctx.routed
        .as_ref()
        .map(|r| {
            let entry = r.route.entry.load();
            (
                entry.config.audit_non_hmac_request_keys.clone(),
                entry.config.audit_non_hmac_response_keys.clone(),
            )
        })
        .unwrap_or_default()
}

/// The display name OpenBao's entries give a login's new token: the auth
/// method's mount path without `auth/` (`approle`, `ldap-corp`).
fn login_display_name(ctx: &RequestCtx) -> String {
    ctx.routed
        .as_ref()
        .map(|r| {
            r.mount
                .path
                .trim_start_matches("auth/")
                .trim_end_matches('/')
                .replace('/', "-")
        })
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl AuditHook for CoreAuditHook {
    fn is_enabled(&self) -> bool {
        self.audit.broker.is_enabled()
    }

    async fn log_request(&self, ctx: &mut RequestCtx, error: Option<&Error>) -> Result<()> {
        if UNAUDITED.contains(&ctx.path.trim_end_matches('/')) {
            return Ok(());
        }
        let request = ctx.wire_request();
        let token = request
            .and_then(|r| r.client_token.as_ref())
            .map(|t| t.0.clone())
            .unwrap_or_default();
        let data = ctx.data();
        let headers = audited_headers(request, &self.audit.headers.load());
        let remote_port = request.and_then(|r| r.remote_port).unwrap_or(0);
        let wrapping = self.wrapping_entry(ctx, &token).await;
        let caller = ctx.token.as_deref().or(wrapping.as_deref());
        let auth = auth_of(ctx, caller, &token);
        let (mount_running_version, mount_class) = version_of(ctx);
        let mut mount = mount_of(ctx);
        if ctx.operation == strongroom_sdk::logical::Operation::Read {
            // OpenBao's request entries of reads carry no mount accessor.
            mount.mount_accessor = String::new();
        }
        let info = RequestInfo {
            id: ctx.id.clone(),
            operation: ctx.operation.as_str().to_string(),
            mount,
            mount_running_version,
            mount_class,
            client_token: token,
            client_token_accessor: caller.map(|t| t.accessor.clone()).unwrap_or_default(),
            namespace: match &ctx.tenant {
                Some(t) if !t.is_root() => strongroom_audit::entry::NamespaceInfo {
                    id: t.id.to_string(),
                    path: t.path.to_string(),
                },
                _ => Default::default(),
            },
            path: ctx.path.clone(),
            data: (!data.is_empty()).then(|| strongroom_sdk::json::clone_map(data)),
            remote_address: ctx.remote_addr.map(|a| a.to_string()).unwrap_or_default(),
            remote_port,
            wrap_ttl: ctx.wrap_ttl.map(|d| d.as_secs()).unwrap_or(0),
            headers,
        };
        let entry = Entry {
            time: now(),
            kind: EntryType::Request,
            auth,
            request: info,
            response: None,
            error: error.map(|e| e.to_string()).unwrap_or_default(),
        };
        let (req_keys, resp_keys) = non_hmac_keys(ctx);
        let logged = self.audit.broker.log(&entry, &req_keys, &resp_keys).await;
        ctx.audit_entry = Some(Box::new(entry));
        logged.map_err(|e| {
            tracing::error!(error = %e, path = %ctx.path, "audit: the request is refused: no device recorded it");
            Error::internal(e.to_string())
        })
    }

    async fn log_response(&self, ctx: &mut RequestCtx, outcome: &Result<Response>) -> Result<()> {
        if UNAUDITED.contains(&ctx.path.trim_end_matches('/')) {
            return Ok(());
        }
        let Some(mut entry) = ctx.audit_entry.take() else {
            return Ok(());
        };
        entry.time = now();
        entry.kind = EntryType::Response;
        // The response entry's request part names the mount's accessor
        // unless the request was refused before its backend (OpenBao).
        if outcome.is_ok() {
            entry.request.mount.mount_accessor = mount_of(ctx).mount_accessor;
        }
        let (mount_running_plugin_version, mount_class) = version_of(ctx);
        let mut response = ResponseInfo {
            mount: mount_of(ctx),
            mount_running_plugin_version,
            mount_class,
            ..ResponseInfo::default()
        };
        match outcome {
            Ok(resp) => {
                if let Some(a) = &resp.auth {
                    let display_name = login_display_name(ctx);
                    response.auth = Some(ResponseAuth {
                        client_token: a.client_token.clone(),
                        accessor: a.accessor.clone(),
                        display_name: display_name.clone(),
                        policies: a.policies.clone(),
                        token_policies: a.token_policies.clone(),
                        metadata: a.metadata.clone().filter(|m| !m.is_empty()),
                        token_type: a.token_type.as_str().to_string(),
                        token_ttl: a.lease_duration,
                    });
                    if entry.auth.client_token.is_empty() {
                        // A login: the entry's `auth` is the new token's,
                        // as OpenBao writes it.
                        entry.auth = Auth {
                            client_token: a.client_token.clone(),
                            accessor: a.accessor.clone(),
                            display_name,
                            policies: a.policies.clone(),
                            token_policies: a.token_policies.clone(),
                            policy_results: None,
                            metadata: a.metadata.clone().filter(|m| !m.is_empty()),
                            entity_id: String::new(),
                            token_type: a.token_type.as_str().to_string(),
                            token_ttl: a.lease_duration,
                            token_issue_time: String::new(),
                            remaining_uses: 0,
                        };
                    }
                }
                if let Some(l) = &resp.lease {
                    if !l.lease_id.is_empty() {
                        response.secret = Some(SecretInfo {
                            lease_id: l.lease_id.clone(),
                        });
                    }
                }
                if let Some(w) = &resp.wrap_info {
                    response.wrap_info = Some(w.clone());
                } else if let Some(d) = &resp.data {
                    response.data = Some(strongroom_sdk::json::clone_map(d));
                } else if let Some(raw) = &resp.raw {
                    // An unwrap answers the wrapped envelope as it was: its
                    // `data` is what OpenBao records.
                    let body = match &raw.body {
                        Value::Object(m) if m.contains_key("request_id") => m.get("data"),
                        other => Some(other),
                    };
                    if let Some(Value::Object(m)) = body {
                        response.data = Some(strongroom_sdk::json::clone_map(m));
                    }
                }
                response.warnings = resp.warnings.clone();
                entry.error = String::new();
            }
            Err(e) => {
                // A refused request's response names no mount accessor.
                response.mount.mount_accessor = String::new();
                // OpenBao's response entries carry the error as its
                // multierror prints one.
                entry.error = format!("1 error occurred:\n\t* {e}\n\n");
                // OpenBao also puts the error in the response data (hashed
                // like any data).
                response.data = Some(
                    [("error".to_string(), Value::String(e.to_string()))]
                        .into_iter()
                        .collect(),
                );
            }
        }
        entry.response = Some(response);
        let (req_keys, resp_keys) = non_hmac_keys(ctx);
        self.audit
            .broker
            .log(&entry, &req_keys, &resp_keys)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, path = %ctx.path, "audit: the answer is withheld: no device recorded it");
                Error::internal(e.to_string())
            })
    }
}
