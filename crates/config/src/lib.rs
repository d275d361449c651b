//! Strongroom's server configuration: Vault's config file format, in HCL or
//! JSON, parsed into types that cannot hold an invalid configuration.
//!
//! The crate owns the config types ([`ServerConfig`], [`StorageConfig`],
//! [`ListenerConfig`], [`PostgresqlConfig`], [`TlsFiles`], [`LogLevel`]), the entry points
//! [`parse_str`] and [`load`], the storage migration's config
//! ([`MigrationConfig`], [`parse_migration_str`], [`load_migration`]), and
//! the error type [`ConfigError`]. The text is
//! first parsed into a `serde_json::Value` (hcl-rs follows the HCL JSON
//! specification, so both syntaxes meet in one shape) and then walked by
//! small explicit code that checks every key; unknown keys are errors.
//!
//! ```
//! use strongroom_config::{parse_str, Format, StorageConfig};
//!
//! let config = parse_str(
//!     r#"
//!     storage "redb" { path = "/var/lib/strongroom/data.redb" }
//!     listener "tcp" { address = "0.0.0.0:8200"  tls_disable = true }
//!     "#,
//!     Format::Hcl,
//! )
//! .unwrap();
//! assert!(matches!(config.storage, StorageConfig::Redb { .. }));
//! assert_eq!(config.listeners[0].address, "0.0.0.0:8200");
//! ```
#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod error;
mod parse;

pub use error::ConfigError;

/// The listener address used when a `listener "tcp"` block gives none.
pub const DEFAULT_LISTENER_ADDRESS: &str = "127.0.0.1:8200";

/// The request body limit used when `max_request_size` is unset or 0 (32 MiB).
pub const DEFAULT_MAX_REQUEST_SIZE: u64 = 32 * 1024 * 1024;

/// The `max_request_size` that stands for "unlimited" (Vault: a negative value).
pub const UNLIMITED_REQUEST_SIZE: u64 = u64::MAX;

/// `http_idle_timeout` when unset: OpenBao's 5 minutes.
pub const DEFAULT_HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// `http_read_header_timeout` when unset: OpenBao's 10 seconds.
pub const DEFAULT_HTTP_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// `http_read_timeout` when unset: OpenBao's 30 seconds.
pub const DEFAULT_HTTP_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The lease TTL Vault uses for `default_lease_ttl` and `max_lease_ttl` when
/// they are unset or 0: 768h (32 days).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(768 * 3600);

/// A validated server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The physical storage (exactly one `storage` block).
    pub storage: StorageConfig,
    /// The `listener "tcp"` blocks, in file order (possibly none).
    pub listeners: Vec<ListenerConfig>,
    /// `api_addr`: the URL clients are redirected to. An empty string is unset.
    pub api_addr: Option<String>,
    /// `cluster_addr`: the `https://host:port` URL other nodes reach this
    /// node's cluster listener at (forwarding from standbys). Unset: the
    /// first listener's `cluster_address`. An empty string is unset.
    pub cluster_addr: Option<String>,
    /// `cluster_name`. An empty string is unset.
    pub cluster_name: Option<String>,
    /// `default_lease_ttl`; `None` when unset or 0 (Vault: use 768h).
    pub default_lease_ttl: Option<Duration>,
    /// `max_lease_ttl`; `None` when unset or 0 (Vault: use 768h).
    pub max_lease_ttl: Option<Duration>,
    /// `log_level`, if set.
    pub log_level: Option<LogLevel>,
    /// `log_format`, if set.
    pub log_format: Option<LogFormat>,
    /// `disable_mlock` (accepted for compatibility; default false).
    pub disable_mlock: bool,
    /// `ui`: serve the web UI (default false).
    pub ui: bool,
    /// `cache_size`: entries of the physical read cache (OpenBao's key);
    /// `None` when unset or 0 (use the default, 131,072).
    pub cache_size: Option<usize>,
    /// `disable_cache`: no physical read cache (default false).
    pub disable_cache: bool,
    /// The `audit "<type>" "<path>"` blocks, in file order.
    pub audit: Vec<AuditDeviceConfig>,
    /// `unsafe_allow_api_audit_creation`: audit devices may be enabled
    /// over the API (default false).
    pub unsafe_allow_api_audit_creation: bool,
    /// `allow_audit_log_prefixing`: audit devices may set `prefix`
    /// (default false).
    pub allow_audit_log_prefixing: bool,
    /// The `telemetry { ... }` stanza (defaults when absent).
    pub telemetry: TelemetryConfig,
}

/// The `telemetry` stanza, as OpenBao has it (the keys Strongroom uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `prometheus_retention_time`: how long a series not updated stays in
    /// the Prometheus answer (default 24h). Unlike OpenBao, 0 does not
    /// turn Prometheus off (OpenBao 2.7 serves it without the stanza).
    pub prometheus_retention_time: Duration,
    /// `disable_hostname`: no `host` label on metrics (default false).
    pub disable_hostname: bool,
    /// `metrics_prefix`: the first part of every metric name (default
    /// `vault`, so that OpenBao dashboards work).
    pub metrics_prefix: String,
    /// `usage_gauge_period`: how often the usage gauges (token and lease
    /// counts) are computed (default 10m); `none` turns them off (`None`).
    pub usage_gauge_period: Option<Duration>,
    /// `maximum_gauge_cardinality`: the most label sets a usage gauge gets
    /// (default 500).
    pub maximum_gauge_cardinality: usize,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            prometheus_retention_time: Duration::from_secs(24 * 3600),
            disable_hostname: false,
            metrics_prefix: "vault".to_string(),
            usage_gauge_period: Some(Duration::from_secs(600)),
            maximum_gauge_cardinality: 500,
        }
    }
}

/// A listener's `telemetry { ... }` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenerTelemetry {
    /// `unauthenticated_metrics_access`: `sys/metrics` needs no token.
    pub unauthenticated_metrics_access: bool,
    /// `disallow_metrics`: this listener refuses `sys/metrics` (403).
    pub disallow_metrics: bool,
    /// `metrics_only`: this listener serves `sys/metrics` only (404
    /// elsewhere).
    pub metrics_only: bool,
}

/// An audit device declared in the config file (OpenBao 2.x):
///
/// ```hcl
/// audit "file" "to-file" {
///   description = "every request"
///   options {
///     file_path = "/var/log/strongroom/audit.log"
///   }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDeviceConfig {
    /// The device type (`file`, `socket`, `syslog`, `http`).
    pub kind: String,
    /// Its path (`to-file`).
    pub path: String,
    /// `description`.
    pub description: String,
    /// `local`.
    pub local: bool,
    /// `options`, every value as text (as the API keeps them).
    pub options: std::collections::BTreeMap<String, String>,
}

impl ServerConfig {
    /// The default lease TTL in force: `default_lease_ttl` or 768h.
    pub fn effective_default_lease_ttl(&self) -> Duration {
        self.default_lease_ttl.unwrap_or(DEFAULT_LEASE_TTL)
    }

    /// The maximum lease TTL in force: `max_lease_ttl` or 768h.
    pub fn effective_max_lease_ttl(&self) -> Duration {
        self.max_lease_ttl.unwrap_or(DEFAULT_LEASE_TTL)
    }
}

/// A `strongroom operator migrate` configuration (OpenBao's `operator
/// migrate` file): where to copy the storage from and to. Both are written
/// as a server's `storage` block, under the names `storage_source` and
/// `storage_destination`:
///
/// ```
/// use strongroom_config::{parse_migration_str, Format, StorageConfig};
///
/// let config = parse_migration_str(
///     r#"
///     storage_source "redb" { path = "/var/lib/strongroom/data.redb" }
///     storage_destination "postgresql" { connection_url = "postgres://db/strongroom" }
///     "#,
///     Format::Hcl,
/// )
/// .unwrap();
/// assert!(matches!(config.source, StorageConfig::Redb { .. }));
/// assert!(matches!(config.destination, StorageConfig::Postgresql(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationConfig {
    /// `storage_source`: the storage copied from (exactly one block).
    pub source: StorageConfig,
    /// `storage_destination`: the storage copied into (exactly one block).
    pub destination: StorageConfig,
}

/// The physical storage backend, one variant per `storage "<type>"` label.
///
/// To add a backend, add a variant here and one arm in the storage dispatch of the parser
/// (`parse::storage`), which checks that block's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// `storage "inmem" {}`: memory only, lost at exit (tests, dev mode).
    Inmem,
    /// `storage "redb" { path = "..." }`: the embedded default.
    Redb {
        /// The database file (`path`, required).
        path: PathBuf,
    },
    /// `storage "postgresql" { connection_url = "..." ... }`: OpenBao's
    /// PostgreSQL stanza, with high availability (`ha_enabled`).
    Postgresql(PostgresqlConfig),
}

/// The `storage "postgresql"` block (OpenBao's keys, plus `tls_ca_file`
/// and the lock timings). Its `Debug` output leaves out `connection_url`,
/// which may hold a password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresqlConfig {
    /// `connection_url`: a `postgres://` URL or libpq `key=value` words
    /// (may hold a password: never log it). Overridden by
    /// `BAO_PG_CONNECTION_URL` / `VAULT_PG_CONNECTION_URL`, see
    /// [`PostgresqlConfig::with_env_overrides`].
    pub connection_url: String,
    /// `table` (default `openbao_kv_store`).
    pub table: String,
    /// `ha_enabled` (default false).
    pub ha_enabled: bool,
    /// `ha_table` (default `openbao_ha_locks`).
    pub ha_table: String,
    /// `max_parallel`: the most connections at once (default 128).
    pub max_parallel: usize,
    /// `skip_create_table` (default false).
    pub skip_create_table: bool,
    /// `tls_ca_file`: CA certificates (PEM) to verify PostgreSQL with.
    pub tls_ca_file: Option<PathBuf>,
    /// `lock_ttl`; `None`: the storage's default (3 s).
    pub lock_ttl: Option<Duration>,
    /// `lock_renew_interval`; `None`: the default (1 s).
    pub lock_renew_interval: Option<Duration>,
    /// `lock_retry_interval`; `None`: the default (500 ms).
    pub lock_retry_interval: Option<Duration>,
}

/// OpenBao's default data table.
pub const DEFAULT_PG_TABLE: &str = "openbao_kv_store";
/// OpenBao's default lock table.
pub const DEFAULT_PG_HA_TABLE: &str = "openbao_ha_locks";
/// OpenBao's default `max_parallel`.
pub const DEFAULT_PG_MAX_PARALLEL: usize = 128;
/// The environment variables that override `connection_url`, first wins.
pub const PG_CONNECTION_URL_ENV: [&str; 2] = ["BAO_PG_CONNECTION_URL", "VAULT_PG_CONNECTION_URL"];

impl fmt::Debug for PostgresqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresqlConfig")
            .field("connection_url", &"<redacted>")
            .field("table", &self.table)
            .field("ha_enabled", &self.ha_enabled)
            .field("ha_table", &self.ha_table)
            .field("max_parallel", &self.max_parallel)
            .field("skip_create_table", &self.skip_create_table)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("lock_ttl", &self.lock_ttl)
            .field("lock_renew_interval", &self.lock_renew_interval)
            .field("lock_retry_interval", &self.lock_retry_interval)
            .finish()
    }
}

impl PostgresqlConfig {
    /// Applies OpenBao's environment override: the first non-empty of
    /// [`PG_CONNECTION_URL_ENV`] (as `lookup` finds it, e.g.
    /// `|k| std::env::var(k).ok()`) replaces `connection_url`.
    pub fn with_env_overrides(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        if let Some(url) = PG_CONNECTION_URL_ENV
            .iter()
            .find_map(|k| lookup(k).filter(|v| !v.is_empty()))
        {
            self.connection_url = url;
        }
        self
    }
}

impl StorageConfig {
    /// The block label this storage is configured with (`"inmem"`, `"redb"`).
    pub fn kind(&self) -> &'static str {
        match self {
            StorageConfig::Inmem => "inmem",
            StorageConfig::Redb { .. } => "redb",
            StorageConfig::Postgresql(_) => "postgresql",
        }
    }
}

/// One `listener "tcp"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// `address`, host:port to bind (default [`DEFAULT_LISTENER_ADDRESS`]).
    /// Not resolved here: hostnames such as `localhost:8200` are allowed.
    pub address: String,
    /// `cluster_address`: where the cluster listener (mutual TLS,
    /// forwarding from standbys) binds; default: `address` with the port
    /// plus one. Only used with HA storage.
    pub cluster_address: Option<String>,
    /// The certificate and key, or `None` when `tls_disable` is true.
    pub tls: Option<TlsFiles>,
    /// `max_request_size` in bytes. Unset or 0 gives
    /// [`DEFAULT_MAX_REQUEST_SIZE`]; a negative value (Vault's "no limit")
    /// gives [`UNLIMITED_REQUEST_SIZE`] (`u64::MAX`).
    pub max_request_size: u64,
    /// `http_idle_timeout`: how long a kept-alive connection may sit idle
    /// (default [`DEFAULT_HTTP_IDLE_TIMEOUT`]); `None` when set to 0 (never).
    pub http_idle_timeout: Option<Duration>,
    /// `http_read_header_timeout`: how long a client may take to send a
    /// request head (default [`DEFAULT_HTTP_READ_HEADER_TIMEOUT`]); `None`
    /// when set to 0.
    pub http_read_header_timeout: Option<Duration>,
    /// `http_read_timeout`: how long a client may take to send a request
    /// body (default [`DEFAULT_HTTP_READ_TIMEOUT`]); `None` when set to 0.
    pub http_read_timeout: Option<Duration>,
    /// `http_write_timeout`: how long a write to a client may stall
    /// (default 0: `None`, no limit, as in OpenBao).
    pub http_write_timeout: Option<Duration>,
    /// `max_connections`: the most connections this listener serves at
    /// once. `None` (unset or 0) derives it from the file-descriptor limit.
    pub max_connections: Option<usize>,
    /// `disable_unauthed_generate_root_endpoints` (default true, as in
    /// OpenBao 2.x): when false the listener serves the unauthenticated
    /// `sys/generate-root/{attempt,update}`.
    pub disable_unauthed_generate_root_endpoints: bool,
    /// `disable_unauthed_rekey_endpoints` (default true, as in OpenBao 2.x):
    /// when false the listener serves the unauthenticated
    /// `sys/rekey/{init,update,verify}`.
    pub disable_unauthed_rekey_endpoints: bool,
    /// The listener's `telemetry { ... }` block.
    pub telemetry: ListenerTelemetry,
}

impl Default for ListenerConfig {
    /// A plain-HTTP listener on [`DEFAULT_LISTENER_ADDRESS`] with the default
    /// body limit (what dev mode uses).
    fn default() -> Self {
        ListenerConfig {
            address: DEFAULT_LISTENER_ADDRESS.to_string(),
            cluster_address: None,
            tls: None,
            max_request_size: DEFAULT_MAX_REQUEST_SIZE,
            http_idle_timeout: Some(DEFAULT_HTTP_IDLE_TIMEOUT),
            http_read_header_timeout: Some(DEFAULT_HTTP_READ_HEADER_TIMEOUT),
            http_read_timeout: Some(DEFAULT_HTTP_READ_TIMEOUT),
            http_write_timeout: None,
            max_connections: None,
            disable_unauthed_generate_root_endpoints: true,
            disable_unauthed_rekey_endpoints: true,
            telemetry: ListenerTelemetry::default(),
        }
    }
}

/// The TLS certificate chain and private key of a listener (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `tls_cert_file`: the certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// `tls_key_file`: the private key.
    pub key_file: PathBuf,
}

/// `log_format`: how log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogFormat {
    /// Human-readable lines (OpenBao's `standard`, the default).
    #[default]
    Standard,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Parses a format name as OpenBao does (`standard` or `json`, any
    /// case; empty is `standard`).
    pub fn parse(name: &str) -> Option<LogFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "standard" => Some(LogFormat::Standard),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// `log_level`: trace, debug, info, warn (or warning), error; any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation (Vault's default).
    Info,
    /// Something is off but the server carries on.
    Warn,
    /// Failures only.
    Error,
}

impl LogLevel {
    /// Parses a level name as Vault does (case-insensitive; `warning` is `warn`).
    pub fn parse(name: &str) -> Option<LogLevel> {
        match name.trim().to_ascii_lowercase().as_str() {
            "trace" => Some(LogLevel::Trace),
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warn),
            "error" => Some(LogLevel::Error),
            _ => None,
        }
    }

    /// The lowercase name, which is also a valid `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The syntax of a config text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// HashiCorp Configuration Language (the usual `.hcl` file).
    Hcl,
    /// JSON in the nested shape Vault documents.
    Json,
}

impl Format {
    /// Picks the format [`load`] uses: JSON when the file name ends in
    /// `.json` (any case) or the text starts with `{`, HCL otherwise.
    pub fn detect(path: &Path, text: &str) -> Format {
        let json_ext = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
        if json_ext || strip_bom(text).trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Hcl
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Hcl => "HCL",
            Format::Json => "JSON",
        })
    }
}

/// Parses and validates a config text in the given syntax.
///
/// Never panics, whatever the input. Errors do not name a file; [`load`]
/// wraps them with the file's path.
pub fn parse_str(text: &str, format: Format) -> Result<ServerConfig, ConfigError> {
    let text = strip_bom(text);
    let value = match format {
        Format::Hcl => parse::hcl_to_value(text)?,
        Format::Json => parse::json_to_value(text)?,
    };
    parse::server_config(value)
}

/// As [`parse_str`], for `server -dev -config`: a file without a `storage`
/// block is accepted (dev mode always stores in memory), as OpenBao's dev
/// server accepts one.
pub fn parse_dev_str(text: &str, format: Format) -> Result<ServerConfig, ConfigError> {
    let text = strip_bom(text);
    let value = match format {
        Format::Hcl => parse::hcl_to_value(text)?,
        Format::Json => parse::json_to_value(text)?,
    };
    let value = match value {
        serde_json::Value::Object(mut top)
            if !top.contains_key("storage") && !top.contains_key("backend") =>
        {
            top.insert("storage".into(), serde_json::json!({ "inmem": {} }));
            serde_json::Value::Object(top)
        }
        other => other,
    };
    parse::server_config(value)
}

/// Reads the config file of `server -dev -config` (see [`parse_dev_str`]).
pub fn load_dev(path: &Path) -> Result<ServerConfig, ConfigError> {
    load_with(path, parse_dev_str)
}

/// Parses and validates a migration config text in the given syntax (see
/// [`MigrationConfig`]). Never panics, whatever the input.
pub fn parse_migration_str(text: &str, format: Format) -> Result<MigrationConfig, ConfigError> {
    let text = strip_bom(text);
    let value = match format {
        Format::Hcl => parse::hcl_to_value(text)?,
        Format::Json => parse::json_to_value(text)?,
    };
    parse::migration_config(value)
}

/// Reads, parses and validates the migration config file at `path`, as
/// [`load`] does a server's.
pub fn load_migration(path: &Path) -> Result<MigrationConfig, ConfigError> {
    load_with(path, parse_migration_str)
}

/// Reads, parses and validates the config file at `path`, choosing the syntax
/// with [`Format::detect`].
///
/// Every error's message is one line naming the file.
pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
    load_with(path, parse_str)
}

/// Reads the file at `path` and parses it with `parse`, every error
/// wrapped to name the file.
fn load_with<T>(
    path: &Path,
    parse: fn(&str, Format) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let bytes = std::fs::read(path).map_err(|cause| ConfigError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    let in_file = |e: ConfigError| ConfigError::InFile {
        path: path.to_path_buf(),
        problem: Box::new(e),
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        in_file(ConfigError::Syntax {
            format: Format::detect(path, ""),
            line: None,
            column: None,
            message: format!(
                "the file is not valid UTF-8 (at byte {})",
                e.utf8_error().valid_up_to()
            ),
        })
    })?;
    parse(&text, Format::detect(path, &text)).map_err(in_file)
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}
