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

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
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
/// The handles of the metrics recorded on every request.
#[derive(Clone)]
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

/// Runs `f` with the current [`Fixed`] handles.
fn with_fixed(f: impl FnOnce(&Fixed)) {
    static FIXED: Cached<Fixed> = Cached::new();
    FIXED.with(
        || Fixed {
            handle_request: metrics::histogram!(name("core.handle_request")),
            handle_login_request: metrics::histogram!(name("core.handle_login_request")),
            check_token: metrics::histogram!(name("core.check_token")),
            in_flight: metrics::gauge!(name("core.in_flight_requests")),
            audit_log_request: metrics::histogram!(name("audit.log_request")),
            audit_log_request_failure: metrics::counter!(name("audit.log_request_failure")),
            audit_log_response: metrics::histogram!(name("audit.log_response")),
            audit_log_response_failure: metrics::counter!(name("audit.log_response_failure")),
        },
        f,
    )
}

/// The clock metrics time with: `quanta`'s, which reads the CPU's
/// time-stamp counter when it is invariant (a few nanoseconds, against
/// tens for the system's monotonic clock) and falls back to the system
/// clock otherwise. A request is timed at a dozen points.
pub type Instant = quanta::Instant;

/// The handle epoch: [`Cached`] handles older than it are registered
/// again. The exporter's upkeep advances it ([`next_epoch`]).
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Advances the handle epoch, so that every [`Cached`] handle is
/// registered again on its next use. The Prometheus exporter forgets a
/// metric that stayed idle for `prometheus_retention_time`; a handle kept
/// across that would record into a metric nobody renders.
pub fn next_epoch() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// A metric handle kept by its user rather than looked up by name on
/// every record (a lookup formats the name, hashes the key and searches
/// both recorders' registries). Loading it is one lock-free `ArcSwap`
/// load and an epoch comparison; it is registered again once per
/// [`next_epoch`].
pub struct Cached<T> {
    slot: ArcSwapOption<(u64, T)>,
}

impl<T> std::fmt::Debug for Cached<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached").finish_non_exhaustive()
    }
}

impl<T> Default for Cached<T> {
    fn default() -> Self {
        Cached::new()
    }
}

impl<T> Cached<T> {
    /// An empty slot (registered on first use).
    pub const fn new() -> Self {
        Cached {
            slot: ArcSwapOption::const_empty(),
        }
    }

    /// Runs `f` with the handle, registering it with `make` first when the
    /// slot is empty or from an older epoch.
    pub fn with<R>(&self, make: impl FnOnce() -> T, f: impl FnOnce(&T) -> R) -> R {
        self.with_at(EPOCH.load(Ordering::Relaxed), make, f)
    }

    /// [`Cached::with`] at `epoch`.
    fn with_at<R>(&self, epoch: u64, make: impl FnOnce() -> T, f: impl FnOnce(&T) -> R) -> R {
        let current = self.slot.load();
        if let Some(entry) = current.as_deref() {
            if entry.0 == epoch {
                return f(&entry.1);
            }
        }
        let fresh = Arc::new((epoch, make()));
        let out = f(&fresh.1);
        self.slot.store(Some(fresh));
        out
    }
}

/// The `vault.route.<operation>.<mount>` timers of one mount, one cached
/// histogram per operation.
#[derive(Debug)]
pub struct RouteTimers {
    label: String,
    by_operation: [Cached<Histogram>; 8],
}

impl RouteTimers {
    /// The timers of the mount at `mount` (e.g. `secret/`).
    pub fn new(mount: &str) -> RouteTimers {
        RouteTimers {
            label: mount_label(mount),
            by_operation: Default::default(),
        }
    }

    /// Records the backend's time of an `operation` (its name and a
    /// distinct index below 8).
    pub fn record(&self, index: usize, operation: &str, elapsed: Duration) {
        let Some(slot) = self.by_operation.get(index) else {
            return;
        };
        slot.with(
            || metrics::histogram!(format!("{}.route.{operation}.{}", prefix(), self.label)),
            |h| h.record(ms(elapsed)),
        );
    }
}

/// The mount path as OpenBao writes it in `vault.route.<op>.<mount>`:
/// slashes become dashes (`auth/token/` → `auth-token-`).
pub fn mount_label(mount: &str) -> String {
    mount.replace('/', "-")
}

/// A request finished after `elapsed`: `vault.core.handle_request` (or
/// `handle_login_request` for logins), in milliseconds as OpenBao's
/// timers. The backend's time goes to the mount's [`RouteTimers`].
pub fn request_handled(login: bool, elapsed: Duration) {
    with_fixed(|f| {
        if login {
            f.handle_login_request.record(ms(elapsed));
        } else {
            f.handle_request.record(ms(elapsed));
        }
    });
}

/// The token of a request was checked (`vault.core.check_token`).
pub fn check_token(elapsed: Duration) {
    with_fixed(|f| f.check_token.record(ms(elapsed)));
}

/// The number of requests in flight (`vault.core.in_flight_requests`).
pub fn in_flight_requests(n: usize) {
    with_fixed(|f| f.in_flight.set(n as f64));
}

/// An audit request entry was logged (`vault.audit.log_request`), or failed
/// (`vault.audit.log_request_failure`).
pub fn audit_log_request(elapsed: Duration, ok: bool) {
    with_fixed(|f| {
        f.audit_log_request.record(ms(elapsed));
        f.audit_log_request_failure.increment(u64::from(!ok));
    });
}

/// An audit response entry was logged (`vault.audit.log_response`), or
/// failed (`vault.audit.log_response_failure`).
pub fn audit_log_response(elapsed: Duration, ok: bool) {
    with_fixed(|f| {
        f.audit_log_response.record(ms(elapsed));
        f.audit_log_response_failure.increment(u64::from(!ok));
    });
}

/// The labels of one `vault.token.creation` series.
type CreationLabels = (String, &'static str, String, &'static str);

/// A token was issued (`vault.token.creation`, with OpenBao's labels:
/// `auth_method`, `mount_point` `auth/<mount>/`, `creation_ttl`,
/// `namespace`, `token_type`). The series' handles are kept by label
/// values, so a login does not build and look up five labels in both
/// recorders.
pub fn token_creation(
    auth_method: &str,
    creation_ttl: &'static str,
    namespace: &str,
    token_type: &'static str,
) {
    type Series = Vec<(CreationLabels, Arc<Cached<Counter>>)>;
    static SERIES: OnceLock<RwLock<HashMap<u64, Series>>> = OnceLock::new();
    let series = SERIES.get_or_init(Default::default);
    let hash = {
        let mut h = DefaultHasher::new();
        (auth_method, creation_ttl, namespace, token_type).hash(&mut h);
        h.finish()
    };
    let same = |l: &CreationLabels| {
        l.0 == auth_method && l.1 == creation_ttl && l.2 == namespace && l.3 == token_type
    };
    let found = series
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&hash)
        .and_then(|v| v.iter().find(|(l, _)| same(l)).map(|(_, c)| c.clone()));
    let cached = match found {
        Some(c) => c,
        None => {
            let mut map = series.write().unwrap_or_else(|p| p.into_inner());
            let list = map.entry(hash).or_default();
            match list.iter().find(|(l, _)| same(l)) {
                Some((_, c)) => c.clone(),
                None => {
                    let c = Arc::new(Cached::new());
                    list.push((
                        (
                            auth_method.to_string(),
                            creation_ttl,
                            namespace.to_string(),
                            token_type,
                        ),
                        c.clone(),
                    ));
                    c
                }
            }
        }
    };
    cached.with(
        || {
            metrics::counter!(
                name("token.creation"),
                "auth_method" => auth_method.to_string(),
                "mount_point" => format!("auth/{auth_method}/"),
                "creation_ttl" => creation_ttl,
                "namespace" => namespace.to_string(),
                "token_type" => token_type
            )
        },
        |c| c.increment(1),
    );
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
    layer: Arc<str>,
    timers: Arc<Cached<[Histogram; 5]>>,
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
        StorageTimers {
            layer: layer.into(),
            timers: Arc::default(),
        }
    }

    /// Records one operation's time.
    pub fn record(&self, op: StorageOp, elapsed: Duration) {
        let make = || {
            let h = |op: &str| metrics::histogram!(name(&format!("{}.{op}", self.layer)));
            [h("get"), h("put"), h("delete"), h("list"), h("batch")]
        };
        let index = match op {
            StorageOp::Get => 0,
            StorageOp::Put => 1,
            StorageOp::Delete => 2,
            StorageOp::List => 3,
            StorageOp::Batch => 4,
        };
        self.timers.with(make, |t| t[index].record(ms(elapsed)));
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
    fn a_kept_handle_is_registered_once_per_epoch() {
        let cached: Cached<u32> = Cached::new();
        let made = std::cell::Cell::new(0);
        let make = || {
            made.set(made.get() + 1);
            made.get()
        };
        assert_eq!(cached.with_at(7, make, |v| *v), 1);
        assert_eq!(cached.with_at(7, make, |v| *v), 1, "kept, not made again");
        assert_eq!(
            cached.with_at(8, make, |v| *v),
            2,
            "made again in a new epoch"
        );
        assert_eq!(cached.with_at(8, make, |v| *v), 2);
    }

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
