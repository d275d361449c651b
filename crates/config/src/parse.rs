//! The walk from a parsed document (`serde_json::Value`) to [`ServerConfig`].
//!
//! Owns the syntax front ends (HCL and JSON to `Value`), the shape rules for
//! labelled blocks, the lenient scalar readers Vault uses (booleans, integers,
//! durations), and the per-block key checks.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};
use strongroom_sdk::duration::duration_from_json;

use crate::error::one_line;
use crate::{
    AuditDeviceConfig, ConfigError, Format, ListenerConfig, ListenerTelemetry, LogFormat, LogLevel,
    MigrationConfig, PostgresqlConfig, ServerConfig, StorageConfig, TelemetryConfig, TlsFiles,
    DEFAULT_HTTP_IDLE_TIMEOUT, DEFAULT_HTTP_READ_HEADER_TIMEOUT, DEFAULT_HTTP_READ_TIMEOUT,
    DEFAULT_LEASE_TTL, DEFAULT_LISTENER_ADDRESS, DEFAULT_MAX_REQUEST_SIZE, DEFAULT_PG_HA_TABLE,
    DEFAULT_PG_MAX_PARALLEL, DEFAULT_PG_TABLE, UNLIMITED_REQUEST_SIZE,
};

/// The context name of top-level keys in error messages.
const TOP: &str = "config file";

const TOP_KEYS: &[&str] = &[
    "storage",
    "backend",
    "listener",
    "api_addr",
    "cluster_addr",
    "cluster_name",
    "default_lease_ttl",
    "max_lease_ttl",
    "log_level",
    "log_format",
    "disable_mlock",
    "ui",
    "cache_size",
    "disable_cache",
    "audit",
    "unsafe_allow_api_audit_creation",
    "allow_audit_log_prefixing",
    "telemetry",
];

/// The keys of the `telemetry` stanza.
const TELEMETRY_KEYS: &[&str] = &[
    "prometheus_retention_time",
    "disable_hostname",
    "metrics_prefix",
    "usage_gauge_period",
    "maximum_gauge_cardinality",
];

/// The keys of a listener's `telemetry` block.
const LISTENER_TELEMETRY_KEYS: &[&str] = &[
    "unauthenticated_metrics_access",
    "disallow_metrics",
    "metrics_only",
];

/// The keys of an `audit` block.
const AUDIT_KEYS: &[&str] = &["description", "local", "options"];

const TCP_KEYS: &[&str] = &[
    "address",
    "cluster_address",
    "tls_disable",
    "tls_cert_file",
    "tls_key_file",
    "max_request_size",
    "http_idle_timeout",
    "http_read_header_timeout",
    "http_read_timeout",
    "http_write_timeout",
    "max_connections",
    "disable_unauthed_generate_root_endpoints",
    "disable_unauthed_rekey_endpoints",
    "telemetry",
];

/// Parses HCL text into the HCL-JSON-spec shape (HCL1 leniency, bounded
/// nesting and a large-stack parse come from [`strongroom_sdk::lenient_hcl`]).
pub(crate) fn hcl_to_value(text: &str) -> Result<Value, ConfigError> {
    let body = strongroom_sdk::lenient_hcl::parse_body(text)
        .map_err(|e| hcl_syntax(e.line, e.column, &e.message))?;
    hcl::from_body::<Value>(body).map_err(|e| hcl_syntax(None, None, &e.to_string()))
}

fn hcl_syntax(line: Option<usize>, column: Option<usize>, message: &str) -> ConfigError {
    ConfigError::Syntax {
        format: Format::Hcl,
        line,
        column,
        message: one_line(message),
    }
}

/// Parses JSON text.
pub(crate) fn json_to_value(text: &str) -> Result<Value, ConfigError> {
    serde_json::from_str(text).map_err(|e| ConfigError::Syntax {
        format: Format::Json,
        line: Some(e.line()).filter(|l| *l > 0),
        column: Some(e.column()).filter(|c| *c > 0),
        message: one_line(&strip_position(&e.to_string())),
    })
}

/// serde_json appends " at line L column C"; the error carries those apart.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The document's top-level object of keys and blocks.
fn top_level(doc: Value) -> Result<Map<String, Value>, ConfigError> {
    match doc {
        Value::Object(top) => Ok(top),
        _ => Err(ConfigError::Syntax {
            format: Format::Json,
            line: None,
            column: None,
            message: "the document must be an object of keys and blocks".to_string(),
        }),
    }
}

/// Builds the configuration from the parsed document, checking every key.
pub(crate) fn server_config(doc: Value) -> Result<ServerConfig, ConfigError> {
    let mut top = top_level(doc)?;
    check_keys(&top, TOP_KEYS, TOP)?;

    let mut storage_blocks = Vec::new();
    for key in ["storage", "backend"] {
        if let Some(v) = top.remove(key) {
            storage_blocks.extend(labelled_blocks(key, v)?);
        }
    }
    let storage = match storage_blocks.len() {
        0 => return Err(ConfigError::NoStorage),
        1 => {
            let (kind, body) = storage_blocks.remove(0);
            storage("storage", kind, body)?
        }
        _ => {
            return Err(ConfigError::MultipleStorage {
                kinds: storage_blocks.into_iter().map(|(k, _)| k).collect(),
            })
        }
    };

    let mut listeners = Vec::new();
    if let Some(v) = top.remove("listener") {
        for (index, (kind, body)) in labelled_blocks("listener", v)?.into_iter().enumerate() {
            listeners.push(listener(index, kind, body)?);
        }
    }

    let api_addr = opt_string(&mut top, "api_addr", TOP)?.filter(|s| !s.is_empty());
    let cluster_addr = opt_string(&mut top, "cluster_addr", TOP)?.filter(|s| !s.is_empty());
    let cluster_name = opt_string(&mut top, "cluster_name", TOP)?.filter(|s| !s.is_empty());
    let default_lease_ttl = opt_duration(&mut top, "default_lease_ttl")?;
    let max_lease_ttl = opt_duration(&mut top, "max_lease_ttl")?;
    let log_level = match opt_string(&mut top, "log_level", TOP)? {
        None => None,
        Some(name) => Some(
            LogLevel::parse(&name).ok_or_else(|| ConfigError::InvalidValue {
                key: "log_level".to_string(),
                context: TOP.to_string(),
                reason: format!(
                    "unknown log level {name:?} (expected trace, debug, info, warn or error)"
                ),
            })?,
        ),
    };
    let log_format = match opt_string(&mut top, "log_format", TOP)? {
        None => None,
        Some(name) => Some(LogFormat::parse(&name).ok_or_else(|| {
            invalid(
                "log_format",
                TOP,
                &format!("unknown log format {name:?} (expected standard or json)"),
            )
        })?),
    };
    let disable_mlock = opt_bool(&mut top, "disable_mlock", TOP)?.unwrap_or(false);
    let ui = opt_bool(&mut top, "ui", TOP)?.unwrap_or(false);
    let cache_size = opt_count(
        &mut top,
        "cache_size",
        TOP,
        "expected a non-negative integer (entries)",
    )?;
    let disable_cache = opt_bool(&mut top, "disable_cache", TOP)?.unwrap_or(false);
    let mut audit = Vec::new();
    if let Some(v) = top.remove("audit") {
        for (kind, body) in labelled_blocks("audit", v)? {
            for (path, body) in labelled_blocks("audit", Value::Object(body))? {
                audit.push(audit_device(kind.clone(), path, body)?);
            }
        }
    }
    let unsafe_allow_api_audit_creation =
        opt_bool(&mut top, "unsafe_allow_api_audit_creation", TOP)?.unwrap_or(false);
    let allow_audit_log_prefixing =
        opt_bool(&mut top, "allow_audit_log_prefixing", TOP)?.unwrap_or(false);

    let telemetry = match top.remove("telemetry") {
        None => TelemetryConfig::default(),
        Some(v) => telemetry_stanza(single_block("telemetry", v)?)?,
    };

    let effective_default = default_lease_ttl.unwrap_or(DEFAULT_LEASE_TTL);
    let effective_max = max_lease_ttl.unwrap_or(DEFAULT_LEASE_TTL);
    if effective_default > effective_max {
        return Err(ConfigError::LeaseTtl {
            default_secs: effective_default.as_secs(),
            max_secs: effective_max.as_secs(),
        });
    }

    Ok(ServerConfig {
        storage,
        listeners,
        api_addr,
        cluster_addr,
        cluster_name,
        default_lease_ttl,
        max_lease_ttl,
        log_level,
        log_format,
        disable_mlock,
        ui,
        cache_size,
        disable_cache,
        audit,
        unsafe_allow_api_audit_creation,
        allow_audit_log_prefixing,
        telemetry,
    })
}

/// An unlabelled block (`telemetry { ... }`): an object, or the one-element
/// array HCL may make of it.
fn single_block(key: &str, value: Value) -> Result<Map<String, Value>, ConfigError> {
    let not_a_block = || ConfigError::NotABlock {
        key: key.to_string(),
    };
    match value {
        Value::Object(m) => Ok(m),
        Value::Array(mut items) if items.len() == 1 => match items.pop() {
            Some(Value::Object(m)) => Ok(m),
            _ => Err(not_a_block()),
        },
        _ => Err(not_a_block()),
    }
}

/// The top-level `telemetry` stanza.
fn telemetry_stanza(mut body: Map<String, Value>) -> Result<TelemetryConfig, ConfigError> {
    const CONTEXT: &str = "telemetry";
    check_keys(&body, TELEMETRY_KEYS, CONTEXT)?;
    let mut t = TelemetryConfig::default();
    if let Some(v) = body.remove("prometheus_retention_time") {
        let d = duration_from_json(&v)
            .map_err(|e| invalid("prometheus_retention_time", CONTEXT, &e.to_string()))?;
        if !d.is_zero() {
            t.prometheus_retention_time = d;
        }
    }
    if let Some(b) = opt_bool(&mut body, "disable_hostname", CONTEXT)? {
        t.disable_hostname = b;
    }
    if let Some(p) = opt_string(&mut body, "metrics_prefix", CONTEXT)? {
        let valid = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid {
            return Err(invalid(
                "metrics_prefix",
                CONTEXT,
                "expected letters, digits, '_' or '.'",
            ));
        }
        t.metrics_prefix = p;
    }
    match body.remove("usage_gauge_period") {
        None => {}
        Some(Value::String(s)) if s == "none" => t.usage_gauge_period = None,
        Some(v) => {
            let d = duration_from_json(&v).map_err(|e| {
                invalid("usage_gauge_period", CONTEXT, &format!("{e} (or \"none\")"))
            })?;
            if !d.is_zero() {
                t.usage_gauge_period = Some(d);
            }
        }
    }
    if let Some(n) = opt_count(
        &mut body,
        "maximum_gauge_cardinality",
        CONTEXT,
        "expected a positive integer",
    )? {
        t.maximum_gauge_cardinality = n;
    }
    Ok(t)
}

/// A listener's `telemetry` block.
fn listener_telemetry(
    body: &mut Map<String, Value>,
    context: &str,
) -> Result<ListenerTelemetry, ConfigError> {
    let Some(v) = body.remove("telemetry") else {
        return Ok(ListenerTelemetry::default());
    };
    let mut block = single_block("telemetry", v)?;
    let context = format!("{context} telemetry");
    check_keys(&block, LISTENER_TELEMETRY_KEYS, &context)?;
    Ok(ListenerTelemetry {
        unauthenticated_metrics_access: opt_bool(
            &mut block,
            "unauthenticated_metrics_access",
            &context,
        )?
        .unwrap_or(false),
        disallow_metrics: opt_bool(&mut block, "disallow_metrics", &context)?.unwrap_or(false),
        metrics_only: opt_bool(&mut block, "metrics_only", &context)?.unwrap_or(false),
    })
}

/// One `audit "<type>" "<path>" { ... }` block.
fn audit_device(
    kind: String,
    path: String,
    mut body: Map<String, Value>,
) -> Result<AuditDeviceConfig, ConfigError> {
    let context = format!("audit \"{kind}\" \"{path}\"");
    check_keys(&body, AUDIT_KEYS, &context)?;
    if path.trim_matches('/').is_empty() {
        return Err(invalid("audit", &context, "the device needs a path label"));
    }
    let description = opt_string(&mut body, "description", &context)?.unwrap_or_default();
    let local = opt_bool(&mut body, "local", &context)?.unwrap_or(false);
    let mut options = std::collections::BTreeMap::new();
    match body.remove("options") {
        None => {}
        // HCL gives a block as an object, or a list of one object.
        Some(Value::Object(m)) => collect_options(&mut options, m, &context)?,
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::Object(m) => collect_options(&mut options, m, &context)?,
                    _ => return Err(invalid("options", &context, "expected a block")),
                }
            }
        }
        Some(_) => return Err(invalid("options", &context, "expected a block")),
    }
    Ok(AuditDeviceConfig {
        kind,
        path,
        description,
        local,
        options,
    })
}

/// Audit options as text: strings as they are, numbers and booleans
/// written out (OpenBao keeps options as strings).
fn collect_options(
    out: &mut std::collections::BTreeMap<String, String>,
    options: Map<String, Value>,
    context: &str,
) -> Result<(), ConfigError> {
    for (k, v) in options {
        let text = match v {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => return Err(invalid(&k, context, "expected a string, number or boolean")),
        };
        out.insert(k, text);
    }
    Ok(())
}

/// The top-level keys of a migration config: OpenBao's `operator migrate`
/// file (`cluster_addr` only matters to OpenBao's raft destination; it is
/// accepted and ignored so that OpenBao's files load).
const MIGRATION_KEYS: &[&str] = &["storage_source", "storage_destination", "cluster_addr"];

/// Builds a migration config (`strongroom operator migrate`) from the parsed
/// document: exactly one `storage_source` and one `storage_destination`
/// block, each checked as a server's `storage` block; other keys refused.
pub(crate) fn migration_config(doc: Value) -> Result<MigrationConfig, ConfigError> {
    let mut top = top_level(doc)?;
    check_keys(&top, MIGRATION_KEYS, "migration config file")?;
    let mut one = |stanza: &str| -> Result<StorageConfig, ConfigError> {
        let mut blocks = match top.remove(stanza) {
            Some(v) => labelled_blocks(stanza, v)?,
            None => Vec::new(),
        };
        if blocks.len() != 1 {
            return Err(ConfigError::MigrationStanza {
                stanza: stanza.to_string(),
                found: blocks.len(),
            });
        }
        let (kind, body) = blocks.remove(0);
        storage(stanza, kind, body)
    };
    let source = one("storage_source")?;
    let destination = one("storage_destination")?;
    opt_string(&mut top, "cluster_addr", "migration config file")?;
    Ok(MigrationConfig {
        source,
        destination,
    })
}

/// Dispatches a storage block (`stanza` is `storage`, or a migration's
/// `storage_source`/`storage_destination`) on its label. New backends get
/// an arm here.
fn storage(
    stanza: &str,
    kind: String,
    mut body: Map<String, Value>,
) -> Result<StorageConfig, ConfigError> {
    let context = format!("{stanza} {kind:?}");
    match kind.as_str() {
        "inmem" => {
            check_keys(&body, &[], &context)?;
            Ok(StorageConfig::Inmem)
        }
        "redb" => {
            check_keys(&body, &["path"], &context)?;
            let path = opt_string(&mut body, "path", &context)?
                .filter(|p| !p.is_empty())
                .ok_or_else(|| ConfigError::MissingKey {
                    key: "path".to_string(),
                    context: context.clone(),
                    hint: "the database file, e.g. path = \"/var/lib/strongroom/data.redb\""
                        .to_string(),
                })?;
            Ok(StorageConfig::Redb {
                path: PathBuf::from(path),
            })
        }
        "postgresql" => postgresql(body, &context).map(StorageConfig::Postgresql),
        _ => Err(ConfigError::UnknownStorage { kind }),
    }
}

const POSTGRESQL_KEYS: &[&str] = &[
    "connection_url",
    "table",
    "ha_enabled",
    "ha_table",
    "max_parallel",
    "skip_create_table",
    "max_idle_connections",
    "tls_ca_file",
    "lock_ttl",
    "lock_renew_interval",
    "lock_retry_interval",
];

/// The `storage "postgresql"` block. `connection_url` may be empty or
/// absent here (OpenBao allows it; the environment may supply it).
fn postgresql(
    mut body: Map<String, Value>,
    context: &str,
) -> Result<PostgresqlConfig, ConfigError> {
    check_keys(&body, POSTGRESQL_KEYS, context)?;
    let name = |body: &mut Map<String, Value>, key: &str, default: &str| {
        opt_string(body, key, context).map(|v| {
            v.filter(|s| !s.is_empty())
                .unwrap_or_else(|| default.to_string())
        })
    };
    let connection_url = opt_string(&mut body, "connection_url", context)?.unwrap_or_default();
    let table = name(&mut body, "table", DEFAULT_PG_TABLE)?;
    let ha_table = name(&mut body, "ha_table", DEFAULT_PG_HA_TABLE)?;
    let ha_enabled = opt_bool(&mut body, "ha_enabled", context)?.unwrap_or(false);
    let skip_create_table = opt_bool(&mut body, "skip_create_table", context)?.unwrap_or(false);
    let max_parallel = opt_count(
        &mut body,
        "max_parallel",
        context,
        "expected a positive integer",
    )?
    .unwrap_or(DEFAULT_PG_MAX_PARALLEL);
    // OpenBao's idle-connection cap for its `database/sql` pool, accepted
    // so that its configs work unchanged. Strongroom's pool keeps the
    // connections it opened (at most `max_parallel`): closing idle ones
    // only makes the next burst pay a new backend process and a SCRAM
    // handshake each. The value is still checked.
    opt_count(
        &mut body,
        "max_idle_connections",
        context,
        "expected a non-negative integer",
    )?;
    let tls_ca_file = opt_string(&mut body, "tls_ca_file", context)?
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let mut timing = |key: &str| -> Result<Option<Duration>, ConfigError> {
        let Some(value) = body.remove(key) else {
            return Ok(None);
        };
        let d = duration_from_json(&value).map_err(|e| invalid(key, context, &e.to_string()))?;
        if d.is_zero() {
            return Err(invalid(key, context, "must be longer than zero"));
        }
        Ok(Some(d))
    };
    let lock_ttl = timing("lock_ttl")?;
    let lock_renew_interval = timing("lock_renew_interval")?;
    let lock_retry_interval = timing("lock_retry_interval")?;
    if let (Some(ttl), Some(renew)) = (lock_ttl, lock_renew_interval) {
        if renew >= ttl {
            return Err(invalid(
                "lock_renew_interval",
                context,
                "must be shorter than lock_ttl",
            ));
        }
    }
    Ok(PostgresqlConfig {
        connection_url,
        table,
        ha_enabled,
        ha_table,
        max_parallel,
        skip_create_table,
        tls_ca_file,
        lock_ttl,
        lock_renew_interval,
        lock_retry_interval,
    })
}

/// Builds one listener; `index` is its 0-based position in the file.
fn listener(
    index: usize,
    kind: String,
    mut body: Map<String, Value>,
) -> Result<ListenerConfig, ConfigError> {
    if kind != "tcp" {
        return Err(ConfigError::UnknownListener { kind });
    }
    let context = format!("listener #{} (\"tcp\")", index + 1);
    check_keys(&body, TCP_KEYS, &context)?;

    let address = opt_string(&mut body, "address", &context)?
        .unwrap_or_else(|| DEFAULT_LISTENER_ADDRESS.to_string());
    let context = format!("listener #{} (\"tcp\", address {address:?})", index + 1);
    let cluster_address =
        opt_string(&mut body, "cluster_address", &context)?.filter(|s| !s.is_empty());

    let tls_disable = opt_bool(&mut body, "tls_disable", &context)?.unwrap_or(false);
    let cert = opt_string(&mut body, "tls_cert_file", &context)?.filter(|s| !s.is_empty());
    let key = opt_string(&mut body, "tls_key_file", &context)?.filter(|s| !s.is_empty());
    let tls = if tls_disable {
        None
    } else {
        let missing = |key: &str| ConfigError::MissingKey {
            key: key.to_string(),
            context: context.clone(),
            hint: "TLS is on unless tls_disable = true".to_string(),
        };
        let cert_file = cert.ok_or_else(|| missing("tls_cert_file"))?;
        let key_file = key.ok_or_else(|| missing("tls_key_file"))?;
        Some(TlsFiles {
            cert_file: PathBuf::from(cert_file),
            key_file: PathBuf::from(key_file),
        })
    };

    let max_request_size = match body.remove("max_request_size") {
        None => DEFAULT_MAX_REQUEST_SIZE,
        Some(v) => match integer(&v) {
            Some(0) => DEFAULT_MAX_REQUEST_SIZE,
            Some(n) if n < 0 => UNLIMITED_REQUEST_SIZE,
            Some(n) => u64::try_from(n).unwrap_or(UNLIMITED_REQUEST_SIZE),
            None => {
                return Err(ConfigError::InvalidValue {
                    key: "max_request_size".to_string(),
                    context,
                    reason: "expected an integer number of bytes (0: default, negative: no limit)"
                        .to_string(),
                })
            }
        },
    };

    let timeout = |body: &mut Map<String, Value>, key: &str, default: Option<Duration>| match body
        .remove(key)
    {
        None => Ok(default),
        Some(v) => duration_from_json(&v)
            .map(|d| Some(d).filter(|d| !d.is_zero()))
            .map_err(|e| invalid(key, &context, &format!("{e} (0 disables the timeout)"))),
    };
    let http_idle_timeout = timeout(
        &mut body,
        "http_idle_timeout",
        Some(DEFAULT_HTTP_IDLE_TIMEOUT),
    )?;
    let http_read_header_timeout = timeout(
        &mut body,
        "http_read_header_timeout",
        Some(DEFAULT_HTTP_READ_HEADER_TIMEOUT),
    )?;
    let http_read_timeout = timeout(
        &mut body,
        "http_read_timeout",
        Some(DEFAULT_HTTP_READ_TIMEOUT),
    )?;
    let http_write_timeout = timeout(&mut body, "http_write_timeout", None)?;
    let max_connections = opt_count(
        &mut body,
        "max_connections",
        &context,
        "expected a positive integer (0: derived from the file-descriptor limit)",
    )?;
    let disable_unauthed_generate_root_endpoints = opt_bool(
        &mut body,
        "disable_unauthed_generate_root_endpoints",
        &context,
    )?
    .unwrap_or(true);
    let disable_unauthed_rekey_endpoints =
        opt_bool(&mut body, "disable_unauthed_rekey_endpoints", &context)?.unwrap_or(true);
    let telemetry = listener_telemetry(&mut body, &context)?;

    Ok(ListenerConfig {
        address,
        cluster_address,
        tls,
        max_request_size,
        http_idle_timeout,
        http_read_header_timeout,
        http_read_timeout,
        http_write_timeout,
        max_connections,
        disable_unauthed_generate_root_endpoints,
        disable_unauthed_rekey_endpoints,
        telemetry,
    })
}

/// A block's label and body.
type LabelledBlock = (String, Map<String, Value>);

/// Flattens `key "label" { body }` blocks in either shape hcl-rs or a JSON
/// author may produce: `{label: body}`, `{label: [body, ...]}`, or an array
/// of such objects. Returns `(label, body)` pairs in document order.
fn labelled_blocks(key: &str, value: Value) -> Result<Vec<LabelledBlock>, ConfigError> {
    let not_a_block = || ConfigError::NotABlock {
        key: key.to_string(),
    };
    let mut out = Vec::new();
    let mut push_labelled = |labelled: Map<String, Value>| -> Result<(), ConfigError> {
        for (label, body) in labelled {
            match body {
                Value::Object(b) => out.push((label, b)),
                Value::Array(bodies) => {
                    for body in bodies {
                        match body {
                            Value::Object(b) => out.push((label.clone(), b)),
                            _ => return Err(not_a_block()),
                        }
                    }
                }
                _ => return Err(not_a_block()),
            }
        }
        Ok(())
    };
    match value {
        Value::Object(labelled) => push_labelled(labelled)?,
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(labelled) => push_labelled(labelled)?,
                    _ => return Err(not_a_block()),
                }
            }
        }
        _ => return Err(not_a_block()),
    }
    Ok(out)
}

/// Fails on the first key of `map` that is not in `allowed`.
fn check_keys(
    map: &Map<String, Value>,
    allowed: &[&str],
    context: &str,
) -> Result<(), ConfigError> {
    let unknown: Vec<String> = map
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .cloned()
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ConfigError::UnknownKey {
        keys: unknown,
        context: context.to_string(),
    })
}

fn invalid(key: &str, context: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        context: context.to_string(),
        reason: reason.to_string(),
    }
}

fn opt_string(
    map: &mut Map<String, Value>,
    key: &str,
    context: &str,
) -> Result<Option<String>, ConfigError> {
    match map.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(key, context, "expected a string")),
    }
}

/// Vault's lenient booleans: `true`/`false`, `1`/`0`, and the strings Go's
/// `strconv.ParseBool` takes (`"true"`, `"1"`, `"t"`, `"TRUE"`, ...).
fn opt_bool(
    map: &mut Map<String, Value>,
    key: &str,
    context: &str,
) -> Result<Option<bool>, ConfigError> {
    let Some(value) = map.remove(key) else {
        return Ok(None);
    };
    let parsed = match &value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed
        .map(Some)
        .ok_or_else(|| invalid(key, context, "expected a boolean (true/false, 1/0)"))
}

/// A duration (string like `"768h"`, or integer seconds). 0 means unset, as
/// in Vault.
fn opt_duration(map: &mut Map<String, Value>, key: &str) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = map.remove(key) else {
        return Ok(None);
    };
    let d = duration_from_json(&value).map_err(|e| invalid(key, TOP, &e.to_string()))?;
    Ok(Some(d).filter(|d| !d.is_zero()))
}

/// A count (an integer, see [`integer`]): `None` when absent or 0 (the
/// default applies), an error with `expected` when negative or not an
/// integer. Counts beyond `usize` saturate.
fn opt_count(
    map: &mut Map<String, Value>,
    key: &str,
    context: &str,
    expected: &str,
) -> Result<Option<usize>, ConfigError> {
    match map.remove(key).map(|v| integer(&v)) {
        None | Some(Some(0)) => Ok(None),
        Some(Some(n)) if n > 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        Some(_) => Err(invalid(key, context, expected)),
    }
}

/// An integer given as a JSON/HCL number (integral floats included) or a
/// decimal string, as Vault's `parseutil.ParseInt` takes it.
fn integer(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Some(i128::from(u))
            } else {
                let f = n.as_f64()?;
                // Integral and within i64 range: the cast is exact.
                (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e18).then_some(f as i128)
            }
        }
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    }
}
