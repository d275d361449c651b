//! Strongroom's telemetry: OpenBao's metric names, emitted through the
//! [`metrics`] facade, and (feature `exporter`) the recorder that serves
//! them as `sys/metrics` answers, in OpenBao's JSON and in Prometheus text.
//!
//! Why `metrics` + `metrics-exporter-prometheus`: the facade is a global
//! recorder behind a trait object, so the core and the backends depend on
//! a few macros only (no exporter, no registry of their own), a registered
//! handle is a lock-free atomic update, and the binaries (the server,
//! Gatekeeper) choose the recorder. The exporter renders the Prometheus
//! text format itself (no hand-written exposition) and keeps histograms as
//! summaries with OpenBao's quantiles (0.5, 0.9, 0.99). The JSON view
//! (OpenBao's in-memory sink shape) is a second recorder of this crate in
//! a fan-out with the exporter ([`exporter`]).
//!
//! Everything here is cheap when no recorder is installed (the facade's
//! no-op recorder), which is what the core's unit tests run with.
//!
//! Names are given without OpenBao's service prefix; [`name`] adds the
//! configured `metrics_prefix` (default `vault`).

#![forbid(unsafe_code)]

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

#[cfg(feature = "exporter")]
pub mod exporter;

/// The service prefix of every metric name (`metrics_prefix`); set once by
/// the exporter before any metric is registered.
static PREFIX: OnceLock<String> = OnceLock::new();

/// OpenBao's default service name, the prefix of every metric.
pub const DEFAULT_PREFIX: &str = "vault";

/// Sets the metric prefix (`telemetry { metrics_prefix }`). Only the first
/// call counts: names registered before it keep the default.
pub fn set_prefix(prefix: &str) {
    let _ = PREFIX.set(prefix.to_string());
}

/// The metric prefix in force.
pub fn prefix() -> &'static str {
    PREFIX.get().map(String::as_str).unwrap_or(DEFAULT_PREFIX)
}

/// `suffix` with the prefix: `core.handle_request` → `vault.core.handle_request`.
pub fn name(suffix: &str) -> String {
    format!("{}.{suffix}", prefix())
}

/// Milliseconds, as OpenBao's timers record them.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The handles of the fixed-name metrics, registered once (after the
/// recorder is installed: the binaries install it before building the core).
struct Fixed {
    handle_request: Histogram,
    handle_login_request: Histogram,
    check_token: Histogram,
    in_flight: Gauge,
    audit_log_request: Histogram,
    audit_log_request_failure: Counter,
    audit_log_response: Histogram,
    audit_log_response_failure: Counter,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| Fixed {
        handle_request: metrics::histogram!(name("core.handle_request")),
        handle_login_request: metrics::histogram!(name("core.handle_login_request")),
        check_token: metrics::histogram!(name("core.check_token")),
        in_flight: metrics::gauge!(name("core.in_flight_requests")),
        audit_log_request: metrics::histogram!(name("audit.log_request")),
        audit_log_request_failure: metrics::counter!(name("audit.log_request_failure")),
        audit_log_response: metrics::histogram!(name("audit.log_response")),
        audit_log_response_failure: metrics::counter!(name("audit.log_response_failure")),
    })
}

/// The mount path as OpenBao writes it in `vault.route.<op>.<mount>`:
/// slashes become dashes (`auth/token/` → `auth-token-`).
pub fn mount_label(mount: &str) -> String {
    mount.replace('/', "-")
}

/// A request finished after `elapsed`: `vault.core.handle_request` (or
/// `handle_login_request` for logins) and, when a mount served it (the
/// mount path and the backend's time), `vault.route.<op>.<mount>`; times
/// in milliseconds, as OpenBao's timers.
pub fn request_handled(
    operation: &str,
    routed: Option<(&str, Duration)>,
    login: bool,
    elapsed: Duration,
) {
    let f = fixed();
    if login {
        f.handle_login_request.record(ms(elapsed));
    } else {
        f.handle_request.record(ms(elapsed));
    }
    if let Some((mount, backend)) = routed {
        metrics::histogram!(format!(
            "{}.route.{operation}.{}",
            prefix(),
            mount_label(mount)
        ))
        .record(ms(backend));
    }
}

/// The token of a request was checked (`vault.core.check_token`).
pub fn check_token(elapsed: Duration) {
    fixed().check_token.record(ms(elapsed));
}

/// The number of requests in flight (`vault.core.in_flight_requests`).
pub fn in_flight_requests(n: usize) {
    fixed().in_flight.set(n as f64);
}

/// An audit request entry was logged (`vault.audit.log_request`), or failed
/// (`vault.audit.log_request_failure`).
pub fn audit_log_request(elapsed: Duration, ok: bool) {
    let f = fixed();
    f.audit_log_request.record(ms(elapsed));
    f.audit_log_request_failure
        .increment(if ok { 0 } else { 1 });
}

/// An audit response entry was logged (`vault.audit.log_response`), or
/// failed (`vault.audit.log_response_failure`).
pub fn audit_log_response(elapsed: Duration, ok: bool) {
    let f = fixed();
    f.audit_log_response.record(ms(elapsed));
    f.audit_log_response_failure
        .increment(if ok { 0 } else { 1 });
}

/// A token was issued (`vault.token.creation`, with OpenBao's labels).
pub fn token_creation(
    auth_method: &str,
    mount_point: &str,
    creation_ttl: &str,
    namespace: &str,
    token_type: &str,
) {
    metrics::counter!(
        name("token.creation"),
        "auth_method" => auth_method.to_string(),
        "mount_point" => mount_point.to_string(),
        "creation_ttl" => creation_ttl.to_string(),
        "namespace" => namespace.to_string(),
        "token_type" => token_type.to_string()
    )
    .increment(1);
}

/// OpenBao's `creation_ttl` bucket label for a token TTL (`+Inf` for none).
pub fn ttl_bucket(ttl: Duration) -> &'static str {
    let s = ttl.as_secs();
    match s {
        0 => "+Inf",
        1..=60 => "1m",
        61..=600 => "10m",
        601..=3600 => "1h",
        3601..=14400 => "4h",
        14401..=86400 => "1d",
        86401..=172800 => "2d",
        172801..=604800 => "7d",
        604801..=2592000 => "30d",
        _ => "+Inf",
    }
}

/// The timers of one storage layer: `vault.<layer>.<op>` in milliseconds.
#[derive(Clone)]
pub struct StorageTimers {
    get: Histogram,
    put: Histogram,
    delete: Histogram,
    list: Histogram,
    batch: Histogram,
}

/// A storage operation, as the timers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageOp {
    /// A read of one key.
    Get,
    /// A write of one key.
    Put,
    /// A deletion of one key.
    Delete,
    /// A listing.
    List,
    /// An atomic batch of writes and deletions.
    Batch,
}

impl StorageTimers {
    /// The timers of `layer` (`barrier`, or a storage backend's name as
    /// OpenBao spells it: `redb`, `postgres`, `inmem`).
    pub fn new(layer: &str) -> StorageTimers {
        let h = |op: &str| metrics::histogram!(name(&format!("{layer}.{op}")));
        StorageTimers {
            get: h("get"),
            put: h("put"),
            delete: h("delete"),
            list: h("list"),
            batch: h("batch"),
        }
    }

    /// Records one operation's time.
    pub fn record(&self, op: StorageOp, elapsed: Duration) {
        let h = match op {
            StorageOp::Get => &self.get,
            StorageOp::Put => &self.put,
            StorageOp::Delete => &self.delete,
            StorageOp::List => &self.list,
            StorageOp::Batch => &self.batch,
        };
        h.record(ms(elapsed));
    }
}

/// A barrier (encrypted storage) operation: `vault.barrier.<op>`.
pub fn barrier(op: StorageOp, elapsed: Duration) {
    static BARRIER: OnceLock<StorageTimers> = OnceLock::new();
    BARRIER
        .get_or_init(|| StorageTimers::new("barrier"))
        .record(op, elapsed);
}

/// A request was refused by a rate-limit quota
/// (`vault.quota.rate_limit.violation`, labelled by the quota's name, as
/// OpenBao labels it).
pub fn quota_violation(quota: &str) {
    metrics::counter!(name("quota.rate_limit.violation"), "name" => quota.to_string()).increment(1);
}

/// Sets a gauge `suffix` (prefixed) with `labels`.
pub fn gauge(suffix: &str, labels: &[(&'static str, String)], value: f64) {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect();
    metrics::gauge!(name(suffix), labels).set(value);
}

/// Increments a counter `suffix` (prefixed) by `n`.
pub fn count(suffix: &str, n: u64) {
    metrics::counter!(name(suffix)).increment(n);
}

/// The `sys/metrics` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenBao's JSON (in-memory sink) shape.
    Json,
    /// Prometheus text exposition.
    Prometheus,
}

impl Format {
    /// The format named by `?format=` (empty: JSON); `None` for an unknown
    /// one (OpenBao answers 400).
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "" | "json" => Some(Format::Json),
            "prometheus" => Some(Format::Prometheus),
            _ => None,
        }
    }
}

/// What answers `sys/metrics`: the exporter implements it; the core holds
/// one when the binary installed it.
pub trait Render: Send + Sync + 'static {
    /// The metrics as OpenBao's JSON object.
    fn json(&self) -> String;
    /// The metrics as Prometheus text.
    fn prometheus(&self) -> String;
}

/// The content type of Prometheus text, as OpenBao sends it.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_named_as_openbao_names_them() {
        assert_eq!(Format::parse(""), Some(Format::Json));
        assert_eq!(Format::parse("prometheus"), Some(Format::Prometheus));
        assert_eq!(Format::parse("xml"), None);
    }

    #[test]
    fn mount_labels_and_ttl_buckets_follow_openbao() {
        assert_eq!(mount_label("auth/token/"), "auth-token-");
        assert_eq!(mount_label("secret/"), "secret-");
        assert_eq!(ttl_bucket(Duration::from_secs(60)), "1m");
        assert_eq!(ttl_bucket(Duration::from_secs(3600)), "1h");
        assert_eq!(ttl_bucket(Duration::from_secs(2_764_800)), "+Inf");
        assert_eq!(ttl_bucket(Duration::ZERO), "+Inf");
    }
}
