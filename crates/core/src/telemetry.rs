//! The core's telemetry: the pipeline's metrics observer
//! ([`MetricsObserver`]), the requests in flight (`sys/in-flight-req`,
//! `vault.core.in_flight_requests`), the gauges a binary samples
//! ([`Core::sample_gauges`], [`Core::sample_usage_gauges`]) and the
//! `sys/metrics` renderer the binary installs ([`Core::set_metrics`]).
//! Metrics go through `strongroom-telemetry`'s facade functions: the core
//! never depends on an exporter.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use strongroom_telemetry::Instant;

use serde_json::{json, Value};

use dashmap::DashMap;
use strongroom_sdk::logical::{Data, Operation, Request, Response};
use strongroom_sdk::{Error, Result};
use strongroom_telemetry::{Format, Render, PROMETHEUS_CONTENT_TYPE};

use crate::node::Core;
use crate::pipeline::{Observer, RequestCtx, Stage, StageSet};

/// The pipeline observer that records OpenBao's request metrics:
/// `vault.core.handle_request` / `handle_login_request` (the whole
/// pipeline), `vault.route.<op>.<mount>` (the backend's time),
/// `vault.core.check_token` (the authentication stage). A few histogram
/// records per request; no lock.
#[derive(Debug, Default, Clone, Copy)]
pub struct MetricsObserver;

impl Observer for MetricsObserver {
    fn stages(&self, audited: bool) -> StageSet {
        let read = Stage::Authenticate.bit().with(Stage::Backend.bit());
        if audited {
            read.with(Stage::AuditRequest.bit())
                .with(Stage::AuditResponse.bit())
        } else {
            read
        }
    }

    fn request_finished(&self, ctx: &RequestCtx, _status: u16) {
        let total: Duration = ctx.timings.iter().sum();
        let login = ctx.unauthenticated && ctx.path.starts_with("auth/");
        strongroom_telemetry::request_handled(login, total);
        if let Some(routed) = ctx.routed.as_ref() {
            routed.route.timers.record(
                operation_index(ctx.operation),
                ctx.operation.as_str(),
                ctx.timing(Stage::Backend),
            );
        }
        if ctx.has_token {
            strongroom_telemetry::check_token(ctx.timing(Stage::Authenticate));
        }
    }
}

/// A distinct index below 8 per operation (for [`RouteTimers`](
/// strongroom_telemetry::RouteTimers)).
fn operation_index(op: Operation) -> usize {
    match op {
        Operation::Read => 0,
        Operation::Create => 1,
        Operation::Update => 2,
        Operation::Patch => 3,
        Operation::Delete => 4,
        Operation::List => 5,
        Operation::Scan => 6,
        Operation::Help => 7,
    }
}

/// One request in flight, as `sys/in-flight-req` lists it.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// The request id.
    pub id: String,
    /// When it entered the pipeline (a monotonic instant; the wall-clock
    /// time is worked out when listed, not read on every request).
    pub started: Instant,
    /// The client's address.
    pub remote_addr: Option<IpAddr>,
    /// The client's port.
    pub remote_port: Option<u16>,
    /// The request path (below `/v1/`).
    pub path: String,
    /// The HTTP method the operation came from.
    pub method: &'static str,
}

impl InFlight {
    /// When the request arrived, in wall-clock time.
    pub fn start_time(&self) -> SystemTime {
        SystemTime::now()
            .checked_sub(self.started.elapsed())
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// The requests being answered. Each request takes a number from a
/// counter and is kept under it in a sharded map: registering costs one
/// insert into one shard (no string hashing, no global lock), and the
/// request id is only a value.
#[derive(Debug, Default)]
pub struct InFlightRequests {
    map: DashMap<u64, InFlight, foldhash::fast::FixedState>,
    next: AtomicU64,
}

/// Removes its request from the in-flight list when dropped.
#[derive(Debug)]
pub struct InFlightGuard<'a> {
    owner: &'a InFlightRequests,
    key: u64,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if let Some((_, entry)) = self.owner.map.remove(&self.key) {
            recycle(entry.id, entry.path);
        }
    }
}

thread_local! {
    /// Strings of finished requests' entries, kept for the next ones: a
    /// request registers without allocating once a worker is warm.
    static SPARE: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many spare strings a thread keeps.
const SPARE_MAX: usize = 64;

/// A copy of `s` in a spare string when one is at hand.
fn copy_of(s: &str) -> String {
    let mut out = SPARE
        .try_with(|spare| spare.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default();
    out.clear();
    out.push_str(s);
    out
}

/// Keeps `a` and `b` as spare strings (up to [`SPARE_MAX`] per thread).
fn recycle(a: String, b: String) {
    let _ = SPARE.try_with(|spare| {
        let mut spare = spare.borrow_mut();
        for s in [a, b] {
            if spare.len() < SPARE_MAX && s.capacity() <= 256 {
                spare.push(s);
            }
        }
    });
}

/// The HTTP method a logical operation came from (as OpenBao lists it).
pub fn method_of(op: Operation) -> &'static str {
    match op {
        Operation::Read | Operation::Help => "GET",
        Operation::List => "LIST",
        Operation::Scan => "SCAN",
        Operation::Create | Operation::Update => "PUT",
        Operation::Delete => "DELETE",
        Operation::Patch => "PATCH",
    }
}

impl InFlightRequests {
    /// Registers a request (its id and path copied) until the guard is
    /// dropped.
    pub fn enter_request(&self, req: &Request, started: Instant) -> InFlightGuard<'_> {
        self.enter(InFlight {
            id: copy_of(&req.id),
            started,
            remote_addr: req.remote_addr,
            remote_port: req.remote_port,
            path: copy_of(&req.path),
            method: method_of(req.operation),
        })
    }

    /// Registers a request until the guard is dropped.
    pub fn enter(&self, entry: InFlight) -> InFlightGuard<'_> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.map.insert(key, entry);
        InFlightGuard { owner: self, key }
    }

    /// How many requests are in flight.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every request in flight.
    pub fn snapshot(&self) -> Vec<InFlight> {
        self.map.iter().map(|e| e.value().clone()).collect()
    }
}

impl Core {
    /// Installs `observer` in the pipeline, keeping the audit hook.
    pub fn set_observer(&self, observer: Arc<dyn Observer>) {
        let hooks = self.pipeline_hooks();
        self.set_pipeline_hooks(crate::node::PipelineHooks {
            audit: hooks.audit.clone(),
            observer,
        });
    }

    /// Installs what renders `sys/metrics` (the binary's recorder), once.
    pub fn set_metrics(&self, render: Arc<dyn Render>) {
        let _ = self.metrics_render().set(render);
    }

    /// `sys/metrics` in `format` (`""`/`json`, `prometheus`): OpenBao's
    /// plain-text 400 for an unknown format.
    pub fn metrics_response(&self, format: &str) -> Result<Response> {
        let Some(format) = Format::parse(format) else {
            return Ok(Response::raw_text(
                400,
                "text/plain",
                format!("metric response format \"{format}\" unknown"),
            ));
        };
        let Some(render) = self.metrics_render().get() else {
            return Err(Error::bad_request("metrics are not enabled"));
        };
        // The state gauges are current in every answer, not only after
        // the next upkeep.
        self.sample_gauges();
        Ok(match format {
            Format::Json => Response::raw_text(200, "application/json", render.json()),
            Format::Prometheus => {
                Response::raw_text(200, PROMETHEUS_CONTENT_TYPE, render.prometheus())
            }
        })
    }

    /// The gauges sampled every few seconds (the binary's upkeep):
    /// `vault.core.active`, `vault.core.unsealed`,
    /// `vault.core.in_flight_requests`, `vault.expire.num_leases`.
    pub fn sample_gauges(&self) {
        let unsealed = !self.is_sealed();
        let active = self.active().ok();
        strongroom_telemetry::gauge("core.unsealed", &[], f64::from(u8::from(unsealed)));
        strongroom_telemetry::gauge("core.active", &[], f64::from(u8::from(active.is_some())));
        strongroom_telemetry::in_flight_requests(self.in_flight().len());
        if let Some(active) = active {
            strongroom_telemetry::gauge("expire.num_leases", &[], active.leases.count() as f64);
        }
    }

    /// The usage gauges (`usage_gauge_period`), as OpenBao emits them:
    /// `vault.token.count` per namespace and `vault.token.count.by_policy`,
    /// `by_auth` and `by_ttl` (service tokens; batch tokens are not
    /// stored). A gauge with more label sets than `max_cardinality` keeps
    /// the largest values (OpenBao's `maximum_gauge_cardinality`).
    pub async fn sample_usage_gauges(&self, max_cardinality: usize) {
        use crate::namespace::Places;
        use std::collections::HashMap;
        let Ok(active) = self.active() else { return };
        type Series = HashMap<Vec<(&'static str, String)>, f64>;
        let (mut count, mut by_policy, mut by_auth, mut by_ttl) =
            (Series::new(), Series::new(), Series::new(), Series::new());
        let mut paths: HashMap<String, String> = HashMap::new();
        let scan = active
            .tokens
            .entries_matching(|e| {
                let ns_path = paths
                    .entry(e.namespace_id.clone())
                    .or_insert_with(|| {
                        active
                            .namespaces
                            .path_of(&e.namespace_id)
                            .unwrap_or_default()
                    })
                    .clone();
                let ns = crate::namespace::metric_label(&ns_path).to_string();
                let path = e.path.strip_prefix(ns_path.as_str()).unwrap_or(&e.path);
                let mut parts = path.splitn(3, '/');
                let auth = match (parts.next(), parts.next()) {
                    (Some("auth"), Some(m)) if !m.is_empty() => m,
                    _ => "token",
                };
                let ttl = strongroom_telemetry::ttl_bucket(Duration::from_secs(e.ttl));
                *count.entry(vec![("namespace", ns.clone())]).or_default() += 1.0;
                for p in &e.policies {
                    *by_policy
                        .entry(vec![("namespace", ns.clone()), ("policy", p.clone())])
                        .or_default() += 1.0;
                }
                *by_auth
                    .entry(vec![
                        ("namespace", ns.clone()),
                        ("auth_method", auth.to_string()),
                    ])
                    .or_default() += 1.0;
                *by_ttl
                    .entry(vec![("namespace", ns), ("creation_ttl", ttl.to_string())])
                    .or_default() += 1.0;
                false
            })
            .await;
        if let Err(e) = scan {
            tracing::warn!(error = %e, "telemetry: counting tokens for the usage gauges failed");
            return;
        }
        if count.is_empty() {
            count.insert(vec![("namespace", "root".to_string())], 0.0);
        }
        for (name, series) in [
            ("token.count", count),
            ("token.count.by_policy", by_policy),
            ("token.count.by_auth", by_auth),
            ("token.count.by_ttl", by_ttl),
        ] {
            let mut series: Vec<_> = series.into_iter().collect();
            if series.len() > max_cardinality {
                series.sort_by(|a, b| b.1.total_cmp(&a.1));
                series.truncate(max_cardinality);
            }
            for (labels, value) in series {
                strongroom_telemetry::gauge(name, &labels, value);
            }
        }
    }
}

/// Reads a `/proc` file ("" when unreadable: not Linux, or hidden).
fn proc_file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `key: value` lines of a `/proc` file, values as numbers (kB → bytes).
fn meminfo_bytes(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// `sys/host-info`'s data, in OpenBao's shape (gopsutil's field names):
/// `cpu`, `cpu_times`, `disk`, `host`, `memory` and `timestamp`, read from
/// `/proc` and `statvfs`.
pub fn host_info() -> Data {
    let cpuinfo = proc_file("/proc/cpuinfo");
    let mut cpus = Vec::new();
    for block in cpuinfo.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let field = |k: &str| {
            block
                .lines()
                .find_map(|l| {
                    let (name, v) = l.split_once(':')?;
                    (name.trim() == k).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        cpus.push(json!({
            "cpu": field("processor").parse::<u64>().unwrap_or(0),
            "vendorId": field("vendor_id"),
            "family": field("cpu family"),
            "model": field("model"),
            "stepping": field("stepping").parse::<u64>().unwrap_or(0),
            "physicalId": field("physical id"),
            "coreId": field("core id"),
            "cores": 1,
            "modelName": field("model name"),
            "mhz": field("cpu MHz").parse::<f64>().unwrap_or(0.0),
            "cacheSize": field("cache size").split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0),
            "flags": field("flags").split_whitespace().collect::<Vec<_>>(),
            "microcode": field("microcode"),
        }));
    }
    // Clock ticks per second: 100 on every Linux architecture Strongroom
    // builds for (USER_HZ).
    let tick = 100.0;
    let mut cpu_times = Vec::new();
    for line in proc_file("/proc/stat").lines() {
        let mut it = line.split_whitespace();
        let Some(name) = it.next() else { continue };
        if name != "cpu" {
            continue;
        }
        let v: Vec<f64> = it.map(|x| x.parse::<f64>().unwrap_or(0.0) / tick).collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
        cpu_times.push(json!({
            "cpu": "cpu-total",
            "user": at(0), "nice": at(1), "system": at(2), "idle": at(3),
            "iowait": at(4), "irq": at(5), "softirq": at(6), "steal": at(7),
            "guest": at(8), "guestNice": at(9),
        }));
    }
    let mem = proc_file("/proc/meminfo");
    let total = meminfo_bytes(&mem, "MemTotal");
    let available = meminfo_bytes(&mem, "MemAvailable");
    let free = meminfo_bytes(&mem, "MemFree");
    let used = total.saturating_sub(available);
    let pct = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    };
    let mut disk = Vec::new();
    if let Ok(st) = rustix::fs::statvfs("/") {
        let total = st.f_blocks * st.f_frsize;
        let free = st.f_bavail * st.f_frsize;
        let used = (st.f_blocks - st.f_bfree) * st.f_frsize;
        disk.push(json!({
            "path": "/",
            "fstype": "",
            "total": total,
            "free": free,
            "used": used,
            "usedPercent": pct(used, used + free),
            "inodesTotal": st.f_files,
            "inodesUsed": st.f_files.saturating_sub(st.f_ffree),
            "inodesFree": st.f_ffree,
            "inodesUsedPercent": pct(st.f_files.saturating_sub(st.f_ffree), st.f_files),
        }));
    }
    let uptime = proc_file("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count()
        })
        .unwrap_or(0);
    let host = json!({
        "hostname": proc_file("/proc/sys/kernel/hostname").trim(),
        "uptime": uptime,
        "bootTime": now.saturating_sub(uptime),
        "procs": procs,
        "os": std::env::consts::OS,
        "platform": "",
        "platformFamily": "",
        "platformVersion": "",
        "kernelVersion": proc_file("/proc/sys/kernel/osrelease").trim(),
        "kernelArch": std::env::consts::ARCH,
        "virtualizationSystem": "",
        "virtualizationRole": "",
        "hostid": proc_file("/proc/sys/kernel/random/boot_id").trim(),
    });
    let mut memory = json!({
        "total": total,
        "available": available,
        "used": used,
        "usedPercent": pct(used, total),
        "free": free,
        "laundry": 0,
        "wired": 0,
    });
    // gopsutil's names for the other /proc/meminfo lines (kB → bytes;
    // the huge page counts are counts).
    for (name, key) in [
        ("active", "Active"),
        ("buffers", "Buffers"),
        ("cached", "Cached"),
        ("commitlimit", "CommitLimit"),
        ("committedas", "Committed_AS"),
        ("dirty", "Dirty"),
        ("highfree", "HighFree"),
        ("hightotal", "HighTotal"),
        ("hugepagesize", "Hugepagesize"),
        ("inactive", "Inactive"),
        ("lowfree", "LowFree"),
        ("lowtotal", "LowTotal"),
        ("mapped", "Mapped"),
        ("pagetables", "PageTables"),
        ("shared", "Shmem"),
        ("slab", "Slab"),
        ("sreclaimable", "SReclaimable"),
        ("sunreclaim", "SUnreclaim"),
        ("swapcached", "SwapCached"),
        ("swapfree", "SwapFree"),
        ("swaptotal", "SwapTotal"),
        ("vmallocchunk", "VmallocChunk"),
        ("vmalloctotal", "VmallocTotal"),
        ("vmallocused", "VmallocUsed"),
        ("writeback", "Writeback"),
        ("writebacktmp", "WritebackTmp"),
    ] {
        memory[name] = json!(meminfo_bytes(&mem, key));
    }
    for (name, key) in [
        ("hugepagesfree", "HugePages_Free"),
        ("hugepagestotal", "HugePages_Total"),
    ] {
        memory[name] = json!(meminfo_bytes(&mem, key) / 1024);
    }
    let mut data = Data::new();
    data.insert("cpu".into(), Value::Array(cpus));
    data.insert("cpu_times".into(), Value::Array(cpu_times));
    data.insert("disk".into(), Value::Array(disk));
    data.insert("host".into(), host);
    data.insert("memory".into(), memory);
    data.insert(
        "timestamp".into(),
        Value::String(humantime::format_rfc3339_nanos(SystemTime::now()).to_string()),
    );
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_requests_leave_when_answered() {
        let list = InFlightRequests::default();
        let mut req = Request::new(Operation::List, "secret/x");
        req.id = "req-1".into();
        {
            let _guard = list.enter_request(&req, Instant::now());
            assert_eq!(list.len(), 1);
            let snapshot = list.snapshot();
            assert_eq!(snapshot[0].id, "req-1");
            assert_eq!(snapshot[0].path, "secret/x");
            assert_eq!(snapshot[0].method, "LIST");
            assert!(snapshot[0].start_time() <= SystemTime::now());
        }
        assert!(list.is_empty());
        assert!(list.snapshot().is_empty());
    }

    #[test]
    fn host_info_has_openbaos_sections() {
        let data = host_info();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["cpu", "cpu_times", "disk", "host", "memory", "timestamp"]
        );
        assert!(data["memory"]["total"].as_u64().is_some());
        assert!(data["host"]["hostname"].is_string());
    }
}
