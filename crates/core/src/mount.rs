//! Mount tables: which backend serves which path. Two tables, secrets
//! engines (`core/mounts`) and auth methods (`core/auth`), persisted behind
//! the barrier and restored on unseal; the entries' API rendering.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Which table an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// Secrets engines, routed at their path.
    Mounts,
    /// Auth methods, routed at `auth/` + their path.
    Auth,
}

impl Table {
    /// The barrier key the table is persisted under.
    pub fn storage_key(self) -> &'static str {
        match self {
            Table::Mounts => "core/mounts",
            Table::Auth => "core/auth",
        }
    }

    /// The prefix of the mounts' private storage.
    pub fn storage_prefix(self) -> &'static str {
        match self {
            Table::Mounts => "logical/",
            Table::Auth => "auth/",
        }
    }

    /// The prefix of the routed path (`""` or `"auth/"`).
    pub fn route_prefix(self) -> &'static str {
        match self {
            Table::Mounts => "",
            Table::Auth => "auth/",
        }
    }
}

/// Tunable settings of a mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MountConfig {
    /// Default lease TTL in seconds; 0 means the system default.
    #[serde(default)]
    pub default_lease_ttl: u64,
    /// Maximum lease TTL in seconds; 0 means the system maximum.
    #[serde(default)]
    pub max_lease_ttl: u64,
    /// Whether caching is disabled for this mount.
    #[serde(default)]
    pub force_no_cache: bool,
    /// `unauth` to list the mount in the unauthenticated UI listing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub listing_visibility: String,
    /// Request headers passed through to the backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passthrough_request_headers: Vec<String>,
    /// Response headers the backend may set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_response_headers: Vec<String>,
    /// Request keys audit devices do not HMAC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_non_hmac_request_keys: Vec<String>,
    /// Response keys audit devices do not HMAC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_non_hmac_response_keys: Vec<String>,
    /// Token type issued by an auth mount (`default-service`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
}

impl MountConfig {
    /// The settings shown only when set (header lists, listing visibility,
    /// token type), as `sys/mounts` and the tune endpoints render them.
    pub fn optional_fields(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, list) in [
            (
                "passthrough_request_headers",
                &self.passthrough_request_headers,
            ),
            ("allowed_response_headers", &self.allowed_response_headers),
            (
                "audit_non_hmac_request_keys",
                &self.audit_non_hmac_request_keys,
            ),
            (
                "audit_non_hmac_response_keys",
                &self.audit_non_hmac_response_keys,
            ),
        ] {
            if !list.is_empty() {
                out.insert(key.into(), json!(list));
            }
        }
        if !self.listing_visibility.is_empty() {
            out.insert("listing_visibility".into(), json!(self.listing_visibility));
        }
        if let Some(t) = &self.token_type {
            out.insert("token_type".into(), json!(t));
        }
        out
    }
}

/// One mounted backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountEntry {
    /// The table it is in.
    pub table: Table,
    /// Path with trailing slash, relative to its table (`kv/`, `approle/`).
    pub path: String,
    /// Backend type (`kv`, `token`, `system`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Identifier of the mount's storage.
    pub uuid: String,
    /// Accessor, e.g. `kv_1a2b3c4d`.
    pub accessor: String,
    /// Tunables.
    #[serde(default)]
    pub config: MountConfig,
    /// Backend options (e.g. `version`), string-valued as in Vault.
    #[serde(default)]
    pub options: Option<Map<String, Value>>,
    /// Not replicated (kept for API compatibility).
    #[serde(default)]
    pub local: bool,
    /// Seal wrapping (kept for API compatibility).
    #[serde(default)]
    pub seal_wrap: bool,
    /// Access to external entropy (kept for API compatibility).
    #[serde(default)]
    pub external_entropy_access: bool,
}

impl MountEntry {
    /// A new entry with fresh uuid and accessor.
    pub fn new(table: Table, path: &str, kind: &str, description: &str) -> Self {
        // A namespace's own mounts (`ns_system`, ...) are named like root's.
        let kind_name = kind.strip_prefix("ns_").unwrap_or(kind);
        let accessor_kind = match (table, kind_name) {
            (Table::Auth, k) => format!("auth_{k}"),
            (Table::Mounts, k) => k.to_string(),
        };
        let short = &uuid::Uuid::new_v4().simple().to_string()[..8];
        MountEntry {
            table,
            path: path.to_string(),
            kind: kind.to_string(),
            description: description.to_string(),
            uuid: uuid::Uuid::new_v4().to_string(),
            accessor: format!("{accessor_kind}_{short}"),
            config: MountConfig::default(),
            options: None,
            local: false,
            seal_wrap: false,
            external_entropy_access: false,
        }
    }

    /// The full routed path, e.g. `auth/approle/`.
    pub fn route_path(&self) -> String {
        format!("{}{}", self.table.route_prefix(), self.path)
    }

    /// The barrier prefix of the mount's private storage.
    pub fn storage_prefix(&self) -> String {
        if self.kind == "system" || self.kind == "ns_system" {
            return "sys/".to_string();
        }
        format!("{}{}/", self.table.storage_prefix(), self.uuid)
    }

    /// The effective TTLs given the system defaults.
    pub fn effective_ttls(&self, system: &SystemTtls) -> (Duration, Duration) {
        let max = match self.config.max_lease_ttl {
            0 => system.max,
            s => Duration::from_secs(s),
        };
        let default = match self.config.default_lease_ttl {
            0 => system.default.min(max),
            s => Duration::from_secs(s),
        };
        (default, max)
    }

    /// The entry as `sys/mounts` and `sys/auth` render it.
    pub fn to_api(&self) -> Value {
        let mut config = json!({
            "default_lease_ttl": self.config.default_lease_ttl,
            "max_lease_ttl": self.config.max_lease_ttl,
            "force_no_cache": self.config.force_no_cache,
        });
        if let Some(obj) = config.as_object_mut() {
            obj.extend(self.config.optional_fields());
        }
        let mut out = json!({
            "accessor": self.accessor,
            "config": config,
            "description": self.description,
            "external_entropy_access": self.external_entropy_access,
            "local": self.local,
            "options": self.options,
            "plugin_version": "",
            "running_plugin_version": format!("v{}+builtin.strongroom", env!("CARGO_PKG_VERSION")),
            "running_sha256": "",
            "seal_wrap": self.seal_wrap,
            "type": self.kind,
            "uuid": self.uuid,
        });
        // OpenBao reports a deprecation status for the plugins of its
        // builtin registry (not for the core's own mounts or `generic`).
        if matches!(self.kind.as_str(), "kv" | "approle" | "kubernetes") {
            out["deprecation_status"] = json!("supported");
        }
        out
    }
}

/// The server-wide lease TTLs (from `default_lease_ttl` / `max_lease_ttl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemTtls {
    /// Default lease TTL (Vault: 768h).
    pub default: Duration,
    /// Maximum lease TTL (Vault: 768h).
    pub max: Duration,
}

impl Default for SystemTtls {
    fn default() -> Self {
        let month = Duration::from_secs(768 * 3600);
        SystemTtls {
            default: month,
            max: month,
        }
    }
}

/// Normalises a user-given mount path: trims slashes, refuses empty paths and
/// `..` segments, and adds the trailing slash.
pub fn normalize_mount_path(raw: &str) -> crate::Result<String> {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Err(crate::Error::bad_request("mount path cannot be empty"));
    }
    if trimmed
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(crate::Error::bad_request(format!(
            "invalid mount path {raw:?}"
        )));
    }
    Ok(format!("{trimmed}/"))
}

/// Whether two mount paths overlap (one is a prefix of the other), which
/// Vault refuses.
pub fn overlaps(a: &str, b: &str) -> bool {
    a.starts_with(b) || b.starts_with(a)
}
