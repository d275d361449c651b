//! The recorder the binaries install: a fan-out of
//! `metrics-exporter-prometheus`'s recorder (Prometheus text) and
//! [`IntervalSink`], this module's in-memory sink answering OpenBao's JSON
//! shape for the last finished interval (10 s, as OpenBao's in-memory sink).
//! A process collector (`metrics-process`: memory, threads, open file
//! descriptors, CPU time) is sampled at every upkeep.
//!
//! Recording is lock-free: the sink's counters and histograms are atomics
//! (count, sum, min, max, sum of squares); only the upkeep, every interval,
//! and rendering take the sink's snapshot lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metrics::{
    CounterFn, GaugeFn, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::layers::FanoutBuilder;
use metrics_util::registry::{Registry, Storage};
use metrics_util::MetricKindMask;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

/// OpenBao's in-memory sink interval.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// The `telemetry` stanza's settings the recorder uses.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `metrics_prefix` (default `vault`).
    pub prefix: String,
    /// `prometheus_retention_time`: series not updated for this long leave
    /// the Prometheus answer (OpenBao's default 24 h).
    pub prometheus_retention: Duration,
    /// `disable_hostname`: when false, process gauges carry a `host` label.
    pub disable_hostname: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prefix: crate::DEFAULT_PREFIX.to_string(),
            prometheus_retention: Duration::from_secs(24 * 3600),
            disable_hostname: true,
        }
    }
}

/// Running statistics of one counter or histogram, lock-free.
///
/// Recorded values are never negative (times, increments), and the bits
/// of non-negative `f64`s order as the numbers do: the minimum and the
/// maximum are one `fetch_min` / `fetch_max` each, with no retry loop.
#[derive(Debug)]
pub struct Stats {
    count: AtomicU64,
    sum: AtomicU64,
    sum_sq: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

/// The minimum's bits before any value (larger than any number's).
const NO_MIN: u64 = u64::MAX;

impl Default for Stats {
    fn default() -> Self {
        Stats {
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            sum_sq: AtomicU64::new(0),
            min: AtomicU64::new(NO_MIN),
            max: AtomicU64::new(0),
        }
    }
}

/// Adds `v` to the f64 stored in `a`.
fn add_f64(a: &AtomicU64, v: f64) {
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
        Some((f64::from_bits(b) + v).to_bits())
    });
}

impl Stats {
    /// Records one value (a negative one counts as 0).
    pub fn record(&self, v: f64) {
        let v = if v > 0.0 { v } else { 0.0 };
        self.count.fetch_add(1, Ordering::Relaxed);
        add_f64(&self.sum, v);
        add_f64(&self.sum_sq, v * v);
        self.min.fetch_min(v.to_bits(), Ordering::Relaxed);
        self.max.fetch_max(v.to_bits(), Ordering::Relaxed);
    }

    /// Takes the values recorded so far and starts over.
    fn take(&self) -> Summary {
        let min = self.min.swap(NO_MIN, Ordering::Relaxed);
        Summary {
            count: self.count.swap(0, Ordering::Relaxed),
            sum: f64::from_bits(self.sum.swap(0, Ordering::Relaxed)),
            sum_sq: f64::from_bits(self.sum_sq.swap(0, Ordering::Relaxed)),
            min: if min == NO_MIN {
                0.0
            } else {
                f64::from_bits(min)
            },
            max: f64::from_bits(self.max.swap(0, Ordering::Relaxed)),
        }
    }
}

/// One interval's values of a counter or histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// How many values.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The sum of their squares.
    pub sum_sq: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Summary {
    /// OpenBao's aggregate object (`Count`, `Rate`, `Sum`, `Min`, `Max`,
    /// `Mean`, `Stddev`) for an interval of `secs` seconds.
    fn to_json(self, name: &str, labels: Value, secs: f64) -> Value {
        let n = self.count as f64;
        let mean = if self.count > 0 { self.sum / n } else { 0.0 };
        let stddev = if self.count > 1 {
            ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0))
                .max(0.0)
                .sqrt()
        } else {
            0.0
        };
        json!({
            "Name": name,
            "Count": self.count,
            "Rate": self.sum / secs,
            "Sum": self.sum,
            "Min": self.min,
            "Max": self.max,
            "Mean": mean,
            "Stddev": stddev,
            "Labels": labels,
        })
    }
}

/// A counter of the sink: each increment is one value (go-metrics counts
/// increments in `Count` and adds them in `Sum`).
#[derive(Debug, Clone, Default)]
pub struct SinkCounter(Arc<Stats>);

impl CounterFn for SinkCounter {
    fn increment(&self, value: u64) {
        self.0.record(value as f64);
    }

    fn absolute(&self, value: u64) {
        self.0.record(value as f64);
    }
}

/// A gauge of the sink: the last value set (f64 bits).
#[derive(Debug, Clone, Default)]
pub struct SinkGauge(Arc<AtomicU64>);

impl GaugeFn for SinkGauge {
    fn increment(&self, value: f64) {
        add_f64(&self.0, value);
    }

    fn decrement(&self, value: f64) {
        add_f64(&self.0, -value);
    }

    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// A histogram (timer) of the sink.
#[derive(Debug, Clone, Default)]
pub struct SinkHistogram(Arc<Stats>);

impl HistogramFn for SinkHistogram {
    fn record(&self, value: f64) {
        self.0.record(value);
    }
}

/// The sink's storage: every metric is a set of atomics.
#[derive(Debug, Default)]
pub struct SinkStorage;

impl Storage<Key> for SinkStorage {
    type Counter = Arc<SinkCounter>;
    type Gauge = Arc<SinkGauge>;
    type Histogram = Arc<SinkHistogram>;

    fn counter(&self, _: &Key) -> Self::Counter {
        Arc::default()
    }

    fn gauge(&self, _: &Key) -> Self::Gauge {
        Arc::default()
    }

    fn histogram(&self, _: &Key) -> Self::Histogram {
        Arc::default()
    }
}

/// The last finished interval, as OpenBao's JSON.
#[derive(Debug, Clone)]
struct Snapshot {
    start: SystemTime,
    counters: Vec<Value>,
    samples: Vec<Value>,
}

/// OpenBao's in-memory sink: the values of the last finished interval.
pub struct IntervalSink {
    registry: Registry<Key, SinkStorage>,
    last: Mutex<Option<Snapshot>>,
    current_start: Mutex<SystemTime>,
}

impl std::fmt::Debug for IntervalSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalSink").finish_non_exhaustive()
    }
}

impl Default for IntervalSink {
    fn default() -> Self {
        IntervalSink {
            registry: Registry::new(SinkStorage),
            last: Mutex::new(None),
            current_start: Mutex::new(SystemTime::now()),
        }
    }
}

fn labels_json(key: &Key) -> Value {
    let mut m = Map::new();
    for l in key.labels() {
        m.insert(l.key().to_string(), Value::String(l.value().to_string()));
    }
    Value::Object(m)
}

/// An integral value as a JSON integer (as go-metrics' float32 values
/// print), others as floats.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// go-metrics' timestamp format (`2006-01-02 15:04:05 -0700 MST`), in UTC.
fn timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Truncated to the interval, as go-metrics' interval starts are.
    let secs = secs - secs % INTERVAL.as_secs();
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000 UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl IntervalSink {
    /// Ends the current interval: its counters and histograms become the
    /// last finished interval and start over.
    pub fn rotate(&self) {
        let now = SystemTime::now();
        let start = std::mem::replace(&mut *self.current_start.lock(), now);
        let secs = now
            .duration_since(start)
            .unwrap_or(INTERVAL)
            .as_secs_f64()
            .max(1.0);
        let mut counters = Vec::new();
        self.registry.visit_counters(|key, c| {
            let s = c.0.take();
            if s.count > 0 {
                counters.push((
                    key.name().to_string(),
                    s.to_json(key.name(), labels_json(key), secs),
                ));
            }
        });
        let mut samples = Vec::new();
        self.registry.visit_histograms(|key, h| {
            let s = h.0.take();
            if s.count > 0 {
                samples.push((
                    key.name().to_string(),
                    s.to_json(key.name(), labels_json(key), secs),
                ));
            }
        });
        counters.sort_by(|a, b| a.0.cmp(&b.0));
        samples.sort_by(|a, b| a.0.cmp(&b.0));
        *self.last.lock() = Some(Snapshot {
            start,
            counters: counters.into_iter().map(|(_, v)| v).collect(),
            samples: samples.into_iter().map(|(_, v)| v).collect(),
        });
    }

    /// OpenBao's JSON: the gauges now, the counters and samples of the last
    /// finished interval (empty before the first one ends).
    pub fn json(&self) -> Value {
        let mut gauges: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        self.registry.visit_gauges(|key, g| {
            gauges
                .entry(key.name().to_string())
                .or_default()
                .push(json!({
                    "Name": key.name(),
                    "Value": number(f64::from_bits(g.0.load(Ordering::Relaxed))),
                    "Labels": labels_json(key),
                }));
        });
        let last = self.last.lock().clone();
        let (start, counters, samples) = match last {
            Some(s) => (s.start, s.counters, s.samples),
            None => (*self.current_start.lock(), Vec::new(), Vec::new()),
        };
        json!({
            "Timestamp": timestamp(start),
            "Gauges": gauges.into_values().flatten().collect::<Vec<_>>(),
            "Points": [],
            "Counters": counters,
            "Samples": samples,
        })
    }
}

impl Recorder for IntervalSink {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.registry.get_or_create_counter(key, Arc::clone))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.registry.get_or_create_gauge(key, Arc::clone))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.registry.get_or_create_histogram(key, Arc::clone))
    }
}

/// A recorder shared by the fan-out and the telemetry handle.
struct Shared(Arc<IntervalSink>);

impl Recorder for Shared {
    fn describe_counter(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_counter(k, u, d)
    }
    fn describe_gauge(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_gauge(k, u, d)
    }
    fn describe_histogram(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_histogram(k, u, d)
    }
    fn register_counter(&self, key: &Key, m: &Metadata<'_>) -> metrics::Counter {
        self.0.register_counter(key, m)
    }
    fn register_gauge(&self, key: &Key, m: &Metadata<'_>) -> metrics::Gauge {
        self.0.register_gauge(key, m)
    }
    fn register_histogram(&self, key: &Key, m: &Metadata<'_>) -> metrics::Histogram {
        self.0.register_histogram(key, m)
    }
}

/// The installed telemetry: renders `sys/metrics` and runs the upkeep.
#[derive(Clone)]
pub struct Telemetry {
    prometheus: PrometheusHandle,
    sink: Arc<IntervalSink>,
    process: Arc<metrics_process::Collector>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

/// Why the recorder could not be installed.
#[derive(Debug)]
pub struct InstallError(pub String);

impl std::fmt::Display for InstallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "installing the metrics recorder: {}", self.0)
    }
}

impl std::error::Error for InstallError {}

impl Telemetry {
    /// Builds the recorders without installing them (tests install them
    /// locally with [`metrics::with_local_recorder`]).
    pub fn build(settings: &Settings) -> (Telemetry, impl Recorder + 'static) {
        crate::set_prefix(&settings.prefix);
        let builder = PrometheusBuilder::new().idle_timeout(
            MetricKindMask::COUNTER | MetricKindMask::HISTOGRAM,
            Some(settings.prometheus_retention),
        );
        // OpenBao's Prometheus summaries carry these quantiles; the list is
        // constant and non-empty, so the builder cannot refuse it (it would
        // keep its defaults otherwise).
        let mut builder = match builder.set_quantiles(&[0.5, 0.9, 0.99]) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        if !settings.disable_hostname {
            if let Ok(host) = hostname() {
                builder = builder.add_global_label("host", host);
            }
        }
        let recorder = builder.build_recorder();
        let prometheus = recorder.handle();
        let sink = Arc::new(IntervalSink::default());
        let fanout = FanoutBuilder::default()
            .add_recorder(recorder)
            .add_recorder(Shared(sink.clone()))
            .build();
        let process = Arc::new(metrics_process::Collector::default());
        (
            Telemetry {
                prometheus,
                sink,
                process,
            },
            fanout,
        )
    }

    /// Builds and installs the global recorder (once per process).
    pub fn install(settings: &Settings) -> Result<Telemetry, InstallError> {
        let (telemetry, recorder) = Telemetry::build(settings);
        metrics::set_global_recorder(recorder).map_err(|e| InstallError(e.to_string()))?;
        telemetry.process.describe();
        telemetry.process.collect();
        Ok(telemetry)
    }

    /// The periodic work: the process is sampled, the interval rotates and
    /// the Prometheus summaries drop old values. The binaries call it every
    /// [`INTERVAL`].
    pub fn upkeep(&self) {
        // Handles kept by their users are registered again within one
        // interval, so none outlives the exporter's idle timeout.
        crate::next_epoch();
        self.process.collect();
        self.sink.rotate();
        self.prometheus.run_upkeep();
    }

    /// Runs [`Telemetry::upkeep`] and then `also` every [`INTERVAL`] on a
    /// thread of its own (off the runtime's workers) until the process
    /// ends; every [`DRAIN_EVERY`] in between, the Prometheus histograms'
    /// recorded values are folded into their summaries, so that the
    /// values waiting for it stay few under load.
    pub fn spawn_upkeep(&self, also: impl Fn() + Send + 'static) -> std::io::Result<()> {
        let this = self.clone();
        let ticks = (INTERVAL.as_millis() / DRAIN_EVERY.as_millis()).max(1);
        std::thread::Builder::new()
            .name("telemetry-upkeep".into())
            .spawn(move || {
                let mut tick = 0u128;
                loop {
                    std::thread::sleep(DRAIN_EVERY);
                    tick += 1;
                    if tick.is_multiple_of(ticks) {
                        also();
                        this.upkeep();
                    } else {
                        this.prometheus.run_upkeep();
                    }
                }
            })
            .map(|_| ())
    }
}

/// How often the Prometheus histograms are drained between intervals.
pub const DRAIN_EVERY: Duration = Duration::from_secs(1);

impl crate::Render for Telemetry {
    fn json(&self) -> String {
        self.sink.json().to_string()
    }

    fn prometheus(&self) -> String {
        self.process.collect();
        self.prometheus.render()
    }
}

/// A Prometheus registry of its own (not the process-wide recorder), for a
/// service that renders its metrics itself: Gatekeeper's `/metrics`.
/// Handles are registered once and updated lock-free.
pub struct LocalRegistry {
    recorder: metrics_exporter_prometheus::PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for LocalRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRegistry").finish_non_exhaustive()
    }
}

impl LocalRegistry {
    /// A registry whose histograms named in `buckets` have those bucket
    /// bounds (the others render as summaries).
    pub fn new(buckets: &[(&str, &[f64])]) -> LocalRegistry {
        let mut builder = PrometheusBuilder::new();
        for (name, bounds) in buckets {
            let matcher = metrics_exporter_prometheus::Matcher::Full((*name).to_string());
            builder = match builder.set_buckets_for_metric(matcher, bounds) {
                Ok(b) => b,
                // Only an empty bound list is refused: keep a summary then.
                Err(_) => PrometheusBuilder::new(),
            };
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        LocalRegistry { recorder, handle }
    }

    fn key(name: &str, labels: &[(&str, &str)]) -> Key {
        let labels: Vec<metrics::Label> = labels
            .iter()
            .map(|(k, v)| metrics::Label::new(k.to_string(), v.to_string()))
            .collect();
        Key::from_parts(name.to_string(), labels)
    }

    fn metadata() -> Metadata<'static> {
        Metadata::new(module_path!(), metrics::Level::INFO, None)
    }

    /// A counter `name` with `labels`, described by `help`.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> metrics::Counter {
        self.recorder
            .describe_counter(name.to_string().into(), None, help.to_string().into());
        self.recorder
            .register_counter(&Self::key(name, labels), &Self::metadata())
    }

    /// A gauge `name` with `labels`, described by `help`.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> metrics::Gauge {
        self.recorder
            .describe_gauge(name.to_string().into(), None, help.to_string().into());
        self.recorder
            .register_gauge(&Self::key(name, labels), &Self::metadata())
    }

    /// A histogram `name` with `labels`, described by `help`.
    pub fn histogram(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> metrics::Histogram {
        self.recorder
            .describe_histogram(name.to_string().into(), None, help.to_string().into());
        self.recorder
            .register_histogram(&Self::key(name, labels), &Self::metadata())
    }

    /// The Prometheus text of everything registered.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// The machine's host name (the `host` label unless `disable_hostname`).
fn hostname() -> std::io::Result<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Render;

    #[test]
    fn stats_aggregate_as_go_metrics_does() {
        let s = Stats::default();
        for v in [1.0, 2.0, 3.0] {
            s.record(v);
        }
        let t = s.take();
        assert_eq!(t.count, 3);
        assert_eq!(t.sum, 6.0);
        assert_eq!(t.min, 1.0);
        assert_eq!(t.max, 3.0);
        let j = t.to_json("x", json!({}), 10.0);
        assert_eq!(j["Mean"], 2.0);
        assert_eq!(j["Stddev"], 1.0);
        assert_eq!(j["Rate"], 0.6);
        assert_eq!(s.take().count, 0, "taking starts a new interval");
    }

    #[test]
    fn timestamps_are_go_metrics_interval_starts() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_948_405);
        assert_eq!(timestamp(t), "2025-12-05 15:26:40 +0000 UTC");
    }

    #[test]
    fn both_formats_show_what_was_recorded() {
        let (telemetry, recorder) = Telemetry::build(&Settings::default());
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("vault.route.read.secret-").record(2.0);
            metrics::counter!("vault.token.creation", "auth_method" => "token").increment(1);
            metrics::gauge!("vault.core.active").set(1.0);
        });
        telemetry.sink.rotate();
        let j: Value = serde_json::from_str(&telemetry.json()).unwrap();
        for k in ["Timestamp", "Gauges", "Counters", "Samples", "Points"] {
            assert!(j.get(k).is_some(), "{k} missing in {j}");
        }
        assert_eq!(j["Samples"][0]["Name"], "vault.route.read.secret-");
        assert_eq!(j["Samples"][0]["Count"], 1);
        assert_eq!(j["Counters"][0]["Labels"]["auth_method"], "token");
        assert_eq!(j["Gauges"][0]["Value"], 1);

        let text = telemetry.prometheus.render();
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        let names: Vec<_> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
        assert!(names.contains(&"vault_route_read_secret_"), "{names:?}");
        assert!(names.contains(&"vault_token_creation"), "{names:?}");
        assert!(names.contains(&"vault_core_active"), "{names:?}");
    }
}
