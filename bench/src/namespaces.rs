//! The namespace scale scenario (issue 19, `--namespace-scale`). On a
//! fresh dev server of each side, with the root token:
//!
//! 1. a closed-loop read of a KV v2 secret in the root namespace, before
//!    any namespace exists (`root-empty`);
//! 2. `count` namespaces `ns0`, `ns1`, ... made by a few concurrent
//!    clients, each one operation of two requests: `POST
//!    sys/namespaces/ns<k>`, then `POST sys/mounts/kv` (KV v2) with
//!    `X-Vault-Namespace: ns<k>`; then one secret written in each;
//! 3. `LIST sys/namespaces`, which must name them all, several times;
//! 4. a chain of nested namespaces `l1/l2/.../l<depth>` (each made with
//!    its parent in the header), with the same mount and secret in the
//!    deepest;
//! 5. closed-loop reads of the secret: in the root namespace again
//!    (`root`), in the deepest namespace through the header
//!    (`deep-header`) and through the path prefix (`deep-prefix`), and
//!    across all `count` namespaces in turn through the prefix
//!    (`spread-prefix`).
//!
//! Each namespace read's latency is set against the root read's on the
//! same server (the issue's bar: at most 1.2 times), besides the usual
//! Strongroom/OpenBao ratios. This module owns the scenario's requests,
//! its measurements and its tables. A side that fails (a server without
//! namespaces) is reported with the failing request and the server's
//! answer, and the other side still runs.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::client;
use crate::load::{self, Check, Expect, PreparedCall, TokenFrom};
use crate::servers::{Server, Side, Storage};
use crate::workloads::small_secret;

/// The header naming the namespace of a request.
const NAMESPACE_HEADER: &str = "x-vault-namespace";
/// The KV v2 mount in every namespace (and in the root namespace).
const MOUNT: &str = "kv";
/// The secret written in every namespace and read by the reads, below the
/// namespace.
const SECRET: &str = "kv/data/bench-read";
/// The prefix of the flat namespaces' names: `ns0`, `ns1`, ...
const FLAT_PREFIX: &str = "ns";
/// The prefix of the chain's levels: `l1`, `l1/l2`, ...
const CHAIN_PREFIX: &str = "l";
/// How many measured `LIST sys/namespaces` (after one unmeasured).
pub const LIST_ROUNDS: usize = 20;
/// Print the creation progress every this many namespaces.
const PROGRESS_EVERY: usize = 1000;
/// How long a secret write into a fresh KV v2 mount is retried while the
/// mount readies itself (OpenBao may answer 400 for a moment).
const WRITE_PATIENCE: Duration = Duration::from_secs(30);
/// The pause between those retries.
const RETRY_INTERVAL: Duration = Duration::from_millis(100);
/// The issue's bar: a namespace read at most this many times the root
/// read's latency.
pub const BAR: f64 = 1.2;
/// Largest latency the histograms hold, in microseconds (one minute).
const MAX_LATENCY_US: u64 = 60_000_000;

/// What to run: sizes from the command line, and the closed-loop shape of
/// the reads.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Flat namespaces to create, each with a KV v2 mount and a secret.
    pub count: usize,
    /// Levels of the nested chain.
    pub depth: usize,
    /// Concurrent clients (one connection each) in the creation phases.
    pub clients: usize,
    /// Connections, warm-up and window of each read.
    pub shape: load::Shape,
}

impl Plan {
    /// Refuses sizes the scenario cannot run with.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.count == 0 {
            bail!("--namespace-count must be at least 1");
        }
        if self.depth == 0 {
            bail!("--namespace-depth must be at least 1");
        }
        if self.clients == 0 {
            bail!("--namespace-clients must be at least 1");
        }
        Ok(())
    }
}

/// A closed-loop read of the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadKind {
    /// The root namespace's secret before any namespace exists.
    RootEmpty,
    /// The root namespace's secret once every namespace exists.
    Root,
    /// The deepest namespace's secret, named by `X-Vault-Namespace`.
    DeepHeader,
    /// The deepest namespace's secret, named by the path prefix.
    DeepPrefix,
    /// Every flat namespace's secret in turn, named by the path prefix.
    SpreadPrefix,
}

impl ReadKind {
    /// Every read, in the order they run (and the table's).
    pub const ALL: [ReadKind; 5] = [
        ReadKind::RootEmpty,
        ReadKind::Root,
        ReadKind::DeepHeader,
        ReadKind::DeepPrefix,
        ReadKind::SpreadPrefix,
    ];

    /// The name in the table.
    pub fn name(self) -> &'static str {
        match self {
            ReadKind::RootEmpty => "root-empty",
            ReadKind::Root => "root",
            ReadKind::DeepHeader => "deep-header",
            ReadKind::DeepPrefix => "deep-prefix",
            ReadKind::SpreadPrefix => "spread-prefix",
        }
    }

    /// The read its latency is set against: the root read for a namespace
    /// read, the root read on the empty server for the root read.
    fn baseline(self) -> Option<ReadKind> {
        match self {
            ReadKind::RootEmpty => None,
            ReadKind::Root => Some(ReadKind::RootEmpty),
            _ => Some(ReadKind::Root),
        }
    }

    /// Whether the issue's bar applies (a read inside a namespace).
    fn in_namespace(self) -> bool {
        !matches!(self, ReadKind::RootEmpty | ReadKind::Root)
    }
}

/// One phase of concurrent operations (creating the namespaces, writing
/// their secrets).
#[derive(Debug, Clone)]
pub struct Phase {
    /// Operations done.
    pub ops: usize,
    /// From the phase's start to its last answer.
    pub elapsed: Duration,
    /// Each operation's latency in microseconds (all its requests).
    pub latency_us: Histogram<u64>,
    /// Requests sent again while a fresh mount readied itself.
    pub retries: u64,
}

impl Phase {
    /// Operations per second over the phase.
    pub fn per_sec(&self) -> f64 {
        per_sec(self.ops, self.elapsed)
    }
}

/// Everything measured on one server.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Creating the flat namespaces, each with its mount.
    pub create: Phase,
    /// Writing one secret into each.
    pub write: Phase,
    /// The measured `LIST sys/namespaces`, in microseconds.
    pub list_us: Histogram<u64>,
    /// How many namespaces the listing named.
    pub listed: usize,
    /// The server's peak RSS once every flat namespace had its secret.
    pub peak_rss_kib: Option<u64>,
    /// The reads, in [`ReadKind::ALL`] order.
    pub reads: Vec<(ReadKind, load::Outcome)>,
}

/// One side's run of the scenario.
#[derive(Debug, Clone)]
pub struct SideResult {
    /// The server's label.
    pub server: String,
    /// True for the Strongroom side, whose rows carry the ratios.
    pub is_strongroom: bool,
    /// The executable the server ran, when known.
    pub exe: Option<PathBuf>,
    /// The measurements, or why the scenario failed on this server.
    pub outcome: Result<Measured, String>,
}

/// Runs the scenario on a fresh dev server of `side`, its files under
/// `dir`. A failure of the scenario is kept in the result (the server is
/// stopped either way); only failing to start or stop the server is an
/// error.
pub async fn run(side: &Side, dir: &Path, plan: &Plan) -> anyhow::Result<SideResult> {
    plan.validate()?;
    let server = Server::start(side, Storage::Dev, dir).await?;
    let outcome = measure(&server, plan).await.map_err(|e| format!("{e:#}"));
    let exe = server.exe();
    server.stop().await?;
    Ok(SideResult {
        server: side.label.clone(),
        is_strongroom: side.is_strongroom,
        exe,
        outcome,
    })
}

/// The scenario's steps against a running server.
async fn measure(server: &Server, plan: &Plan) -> anyhow::Result<Measured> {
    let addr = server.addr();
    let root = server.root();
    // A fresh connection per stage: one left idle through a phase could
    // have been closed by the server meanwhile.
    let mut conn = Conn::new(addr, root.clone());
    for req in kv_setup(None) {
        conn.send_ok(&req)
            .await
            .context("the root namespace's kv/ mount and secret")?;
    }
    let chain = chain_path(plan.depth);
    let mut reads = Vec::new();
    reads.push(read(server, plan, &chain, ReadKind::RootEmpty).await?);

    eprintln!(
        "  creating {} namespaces with a kv/ mount each ({} clients)",
        plan.count, plan.clients
    );
    let create = phase(addr, root, plan, "created", create_ops).await?;
    eprintln!(
        "  {:<20} {:>9.0} namespaces/s  p50 {:.2} ms  p99 {:.2} ms",
        "create+mount",
        create.per_sec(),
        quantile_ms(&create.latency_us, 0.5),
        quantile_ms(&create.latency_us, 0.99),
    );
    let write = phase(addr, root, plan, "secrets written", write_ops).await?;
    eprintln!(
        "  {:<20} {:>9.0} writes/s  p50 {:.2} ms  p99 {:.2} ms  retries {}",
        "secret write",
        write.per_sec(),
        quantile_ms(&write.latency_us, 0.5),
        quantile_ms(&write.latency_us, 0.99),
        write.retries,
    );
    let peak_rss_kib = server.peak_rss_kib();

    let (list_us, listed) = list(&mut Conn::new(addr, root.clone()), plan.count).await?;
    eprintln!(
        "  {:<20} {listed} namespaces  p50 {:.2} ms  max {:.2} ms",
        "LIST sys/namespaces",
        quantile_ms(&list_us, 0.5),
        quantile_ms(&list_us, 1.0),
    );

    let mut conn = Conn::new(addr, root.clone());
    for req in chain_setup(plan.depth) {
        conn.send_ok(&req)
            .await
            .with_context(|| format!("the chain of {} nested namespaces", plan.depth))?;
    }
    for kind in [
        ReadKind::Root,
        ReadKind::DeepHeader,
        ReadKind::DeepPrefix,
        ReadKind::SpreadPrefix,
    ] {
        reads.push(read(server, plan, &chain, kind).await?);
    }
    Ok(Measured {
        create,
        write,
        list_us,
        listed,
        peak_rss_kib,
        reads,
    })
}

/// Runs read `kind` against `server` (the chain's deepest namespace at
/// `chain`) and prints its line.
async fn read(
    server: &Server,
    plan: &Plan,
    chain: &str,
    kind: ReadKind,
) -> anyhow::Result<(ReadKind, load::Outcome)> {
    let target = read_target(server.addr(), server.root(), kind, plan.count, chain)?;
    let outcome = load::run(target, plan.shape)
        .await
        .with_context(|| format!("read {}", kind.name()))?;
    eprintln!(
        "  {:<20} {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
        kind.name(),
        outcome.requests_per_sec(),
        outcome.latency_ms(0.5),
        outcome.latency_ms(0.99),
        outcome.errors
    );
    Ok((kind, outcome))
}

/// One request of the scenario's setup or creation phases, as data.
#[derive(Debug, Clone, PartialEq)]
struct Req {
    method: Method,
    /// The logical path below `/v1/`.
    path: String,
    /// The `X-Vault-Namespace` value, if any.
    namespace: Option<String>,
    body: Option<Value>,
    /// How long an answer other than 2xx is retried before it fails.
    patience: Duration,
}

impl Req {
    /// A `POST` of `body` to `path` in `namespace`, not retried.
    fn post(path: impl Into<String>, namespace: Option<&str>, body: Option<Value>) -> Req {
        Req {
            method: Method::POST,
            path: path.into(),
            namespace: namespace.map(str::to_string),
            body,
            patience: Duration::ZERO,
        }
    }

    /// The request as the error messages name it.
    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!(
                "{} /v1/{} (X-Vault-Namespace: {ns})",
                self.method, self.path
            ),
            None => format!("{} /v1/{}", self.method, self.path),
        }
    }
}

/// The name of flat namespace `k`.
fn flat_name(k: usize) -> String {
    format!("{FLAT_PREFIX}{k}")
}

/// The path of the chain's deepest namespace: `l1/l2/.../l<depth>`.
fn chain_path(depth: usize) -> String {
    (1..=depth)
        .map(|i| format!("{CHAIN_PREFIX}{i}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// The KV v2 mount and its secret in `namespace` (the root namespace when
/// `None`).
fn kv_setup(namespace: Option<&str>) -> Vec<Req> {
    vec![
        Req::post(
            format!("sys/mounts/{MOUNT}"),
            namespace,
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        ),
        secret_write(namespace),
    ]
}

/// The secret written into `namespace`'s mount, retried while the fresh
/// mount readies itself.
fn secret_write(namespace: Option<&str>) -> Req {
    Req {
        patience: WRITE_PATIENCE,
        ..Req::post(SECRET, namespace, Some(json!({ "data": small_secret() })))
    }
}

/// Creating flat namespace `k` and its mount: one timed operation.
fn create_ops(k: usize) -> Vec<Req> {
    let name = flat_name(k);
    vec![
        Req::post(format!("sys/namespaces/{name}"), None, None),
        Req::post(
            format!("sys/mounts/{MOUNT}"),
            Some(&name),
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        ),
    ]
}

/// Writing flat namespace `k`'s secret: one timed operation.
fn write_ops(k: usize) -> Vec<Req> {
    vec![secret_write(Some(&flat_name(k)))]
}

/// The chain `l1/.../l<depth>`: each level created with its parent in the
/// header, then the mount and secret in the deepest.
fn chain_setup(depth: usize) -> Vec<Req> {
    let mut reqs = Vec::new();
    let mut parent: Option<String> = None;
    for i in 1..=depth {
        let name = format!("{CHAIN_PREFIX}{i}");
        reqs.push(Req::post(
            format!("sys/namespaces/{name}"),
            parent.as_deref(),
            None,
        ));
        parent = Some(match parent {
            Some(p) => format!("{p}/{name}"),
            None => name,
        });
    }
    reqs.extend(kv_setup(parent.as_deref()));
    reqs
}

/// The closed-loop target of read `kind`: a GET of the secret that must
/// answer 200 with the seeded username.
fn read_target(
    addr: SocketAddr,
    token: &HeaderValue,
    kind: ReadKind,
    count: usize,
    chain: &str,
) -> anyhow::Result<load::Target> {
    let mut headers = HeaderMap::new();
    let paths: Vec<String> = match kind {
        ReadKind::RootEmpty | ReadKind::Root => vec![SECRET.to_string()],
        ReadKind::DeepHeader => {
            headers.insert(
                HeaderName::from_static(NAMESPACE_HEADER),
                HeaderValue::from_str(chain).context("the chain's path as a header")?,
            );
            vec![SECRET.to_string()]
        }
        ReadKind::DeepPrefix => vec![format!("{chain}/{SECRET}")],
        ReadKind::SpreadPrefix => (0..count)
            .map(|k| format!("{}/{SECRET}", flat_name(k)))
            .collect(),
    };
    let username = small_secret()["username"].clone();
    Ok(load::Target {
        addr,
        calls: vec![PreparedCall {
            method: Method::GET,
            uris: paths
                .iter()
                .map(|p| client::v1_uri(p))
                .collect::<anyhow::Result<_>>()?,
            bodies: vec![],
            headers,
            token: TokenFrom::Bench,
            expect: Expect {
                status: Some(200),
                checks: vec![Check::Equals("/data/data/username", username)],
            },
        }],
        token: token.clone(),
        single_use_keys: None,
    })
}

/// Runs `ops(k)` for every `k` below `plan.count` on `plan.clients`
/// concurrent connections, timing each operation. The first failure stops
/// every client and is the phase's error.
async fn phase(
    addr: SocketAddr,
    token: &HeaderValue,
    plan: &Plan,
    what: &'static str,
    ops: fn(usize) -> Vec<Req>,
) -> anyhow::Result<Phase> {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let count = plan.count;
    let mut handles = Vec::new();
    for _ in 0..plan.clients.min(count) {
        let (next, done, stop) = (Arc::clone(&next), Arc::clone(&done), Arc::clone(&stop));
        let mut conn = Conn::new(addr, token.clone());
        handles.push(tokio::spawn(async move {
            let mut latency_us = new_histogram()?;
            let mut retries = 0;
            let mut last = start;
            while !stop.load(Ordering::Relaxed) {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= count {
                    break;
                }
                let sent = Instant::now();
                for req in ops(k) {
                    match conn.send_ok(&req).await {
                        Ok((_, r)) => retries += r,
                        Err(err) => {
                            stop.store(true, Ordering::Relaxed);
                            return Err(err);
                        }
                    }
                }
                last = Instant::now();
                latency_us.saturating_record(micros(last - sent));
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if finished % PROGRESS_EVERY == 0 {
                    eprintln!(
                        "    {finished}/{count} {what} ({:.1} s)",
                        start.elapsed().as_secs_f64()
                    );
                }
            }
            Ok::<_, anyhow::Error>((latency_us, retries, last))
        }));
    }
    let mut total = Phase {
        ops: 0,
        elapsed: Duration::ZERO,
        latency_us: new_histogram()?,
        retries: 0,
    };
    let mut first_error = None;
    let mut last_answer = start;
    for handle in handles {
        match handle.await.context("a client task panicked")? {
            Ok((latency_us, retries, last)) => {
                total.latency_us.add(&latency_us)?;
                total.retries += retries;
                last_answer = last_answer.max(last);
            }
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    if let Some(err) = first_error {
        return Err(err.context(format!(
            "after {} of {count} {what}",
            done.load(Ordering::Relaxed)
        )));
    }
    total.ops = done.load(Ordering::Relaxed);
    total.elapsed = last_answer - start;
    Ok(total)
}

/// `LIST sys/namespaces` once unmeasured, then [`LIST_ROUNDS`] times
/// measured; every answer must name exactly the `count` flat namespaces.
/// Returns the latencies and the count listed.
async fn list(conn: &mut Conn, count: usize) -> anyhow::Result<(Histogram<u64>, usize)> {
    let req = Req {
        method: Method::from_bytes(b"LIST").context("the LIST method")?,
        path: "sys/namespaces".into(),
        namespace: None,
        body: None,
        patience: Duration::ZERO,
    };
    let mut latency_us = new_histogram()?;
    let mut listed = 0;
    for round in 0..=LIST_ROUNDS {
        let sent = Instant::now();
        let body = conn.send_ok(&req).await?.0;
        let elapsed = sent.elapsed();
        if round > 0 {
            latency_us.saturating_record(micros(elapsed));
        }
        listed = check_listing(&body, count).with_context(|| req.describe())?;
    }
    Ok((latency_us, listed))
}

/// The number of namespaces a `LIST sys/namespaces` answer names, when it
/// names exactly `ns0/` ... `ns<count-1>/`.
fn check_listing(body: &[u8], count: usize) -> anyhow::Result<usize> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| anyhow!("the answer is not JSON"))?;
    let keys = value
        .pointer("/data/keys")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("the answer has no data.keys list"))?;
    if keys.len() != count {
        bail!("the answer names {} namespaces, not {count}", keys.len());
    }
    for k in [0, count / 2, count - 1] {
        let want = format!("{}/", flat_name(k));
        if !keys.iter().any(|key| key.as_str() == Some(want.as_str())) {
            bail!("the answer's keys lack {want:?}");
        }
    }
    Ok(keys.len())
}

/// One keep-alive connection of the scenario's setup and creation phases,
/// opened again after a transport failure.
struct Conn {
    addr: SocketAddr,
    token: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(addr: SocketAddr, token: HeaderValue) -> Conn {
        Conn {
            addr,
            token,
            sender: None,
        }
    }

    /// Sends `req` once and returns the status and body; a transport
    /// failure or timeout drops the connection.
    async fn send(&mut self, req: &Req) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut extra = HeaderMap::new();
        if let Some(ns) = &req.namespace {
            extra.insert(
                HeaderName::from_static(NAMESPACE_HEADER),
                HeaderValue::from_str(ns).with_context(|| format!("namespace {ns:?}"))?,
            );
        }
        let request = client::build_request(
            self.addr,
            req.method.clone(),
            client::v1_uri(&req.path)?,
            Some(&self.token),
            req.body.as_ref().map(|b| Bytes::from(b.to_string())),
            &extra,
        )?;
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => self.sender.insert(client::connect(self.addr).await?),
        };
        let exchange = async {
            sender.ready().await?;
            let resp = sender.send_request(request).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        match tokio::time::timeout(load::REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => {
                self.sender = None;
                Err(anyhow!("{}: transport: {err}", req.describe()))
            }
            Err(_) => {
                self.sender = None;
                Err(anyhow!(
                    "{}: no answer within {:?}",
                    req.describe(),
                    load::REQUEST_TIMEOUT
                ))
            }
        }
    }

    /// Sends `req` until it answers 2xx, again every [`RETRY_INTERVAL`]
    /// within its patience; returns the body and the number of retries.
    /// An answer other than 2xx past the patience is an error naming the
    /// request, the status and the server's `errors`.
    async fn send_ok(&mut self, req: &Req) -> anyhow::Result<(Bytes, u64)> {
        let deadline = Instant::now() + req.patience;
        let mut retries = 0;
        loop {
            let (status, body) = self.send(req).await?;
            if status.is_success() {
                return Ok((body, retries));
            }
            if Instant::now() + RETRY_INTERVAL > deadline {
                bail!("{}", refusal(req, status, &body));
            }
            retries += 1;
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
    }
}

/// The error for a request the server refused: the request, the status,
/// and the `errors` list (or the start of a body that is not one).
fn refusal(req: &Req, status: StatusCode, body: &[u8]) -> String {
    let detail = match serde_json::from_slice::<Value>(body) {
        Ok(value) => match value.get("errors") {
            Some(errors) => errors.to_string(),
            None => value.to_string().chars().take(160).collect(),
        },
        Err(_) => String::from_utf8_lossy(body).chars().take(160).collect(),
    };
    format!("{} answered {status}: {detail}", req.describe())
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?)
}

/// A duration in whole microseconds, at least one (the histogram's floor).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// The latency at `q` of a microsecond histogram, in milliseconds.
fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// `ops` per second over `elapsed` (0 when no time passed).
fn per_sec(ops: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        ops as f64 / secs
    } else {
        0.0
    }
}

/// `a / b` to two decimals, blank when `b` is zero.
fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        String::new()
    }
}

/// Whether any side failed the scenario, as an error naming them all.
pub fn failures(results: &[SideResult]) -> anyhow::Result<()> {
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.outcome
                .as_ref()
                .err()
                .map(|e| format!("{}: {e}", r.server))
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "the namespace scale scenario failed on {}",
            failed.join("; ")
        )
    }
}

/// Renders the scenario as Markdown: the creation and listing table, the
/// read table, and notes (failed sides, read errors, what ran, then
/// `extra_notes`, e.g. that one side is a stand-in).
pub fn render(plan: &Plan, results: &[SideResult], extra_notes: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Namespace scale (issue 19): {} namespaces `{FLAT_PREFIX}<k>` made by {} clients on \
         one connection each; one operation is `POST sys/namespaces/{FLAT_PREFIX}<k>` then \
         `POST sys/mounts/{MOUNT}` (KV v2) with `X-Vault-Namespace: {FLAT_PREFIX}<k>`; then \
         one secret written in each; `LIST sys/namespaces` {LIST_ROUNDS} times after one \
         unmeasured. Dev mode, root token.\n",
        plan.count, plan.clients
    );
    out.push_str(
        "| server | namespaces | created/s | create+mount p50 ms | create+mount p99 ms \
         | write p50 ms | write p99 ms | LIST p50 ms | LIST max ms | peak RSS MiB \
         | created/s x | create p99 ratio | LIST p50 ratio |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let bao = results
        .iter()
        .find(|r| !r.is_strongroom)
        .and_then(|r| r.outcome.as_ref().ok());
    for result in ordered(results) {
        let m = match &result.outcome {
            Ok(m) => m,
            Err(_) => {
                let _ = writeln!(
                    out,
                    "| {} | failed (see below) | | | | | | | | | | | |",
                    result.server
                );
                continue;
            }
        };
        let ratios = match (result.is_strongroom, bao) {
            (true, Some(b)) => [
                ratio(m.create.per_sec(), b.create.per_sec()),
                ratio(
                    quantile_ms(&m.create.latency_us, 0.99),
                    quantile_ms(&b.create.latency_us, 0.99),
                ),
                ratio(quantile_ms(&m.list_us, 0.5), quantile_ms(&b.list_us, 0.5)),
            ],
            _ => Default::default(),
        };
        let speed = if ratios[0].is_empty() {
            String::new()
        } else {
            format!("{}x", ratios[0])
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} |",
            result.server,
            m.listed,
            m.create.per_sec(),
            quantile_ms(&m.create.latency_us, 0.5),
            quantile_ms(&m.create.latency_us, 0.99),
            quantile_ms(&m.write.latency_us, 0.5),
            quantile_ms(&m.write.latency_us, 0.99),
            quantile_ms(&m.list_us, 0.5),
            quantile_ms(&m.list_us, 1.0),
            m.peak_rss_kib
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or_else(|| "?".into()),
            speed,
            ratios[1],
            ratios[2],
        );
    }

    let _ = writeln!(
        out,
        "\nNamespace reads: GET of a KV v2 secret, {} connections, {} s warm-up, {} s measured \
         per read; `vs root` is the read's latency over the root read's on the same server \
         (the issue's bar for a namespace read: at most {BAR}).\n",
        plan.shape.connections,
        plan.shape.warmup.as_secs_f64(),
        plan.shape.duration.as_secs_f64(),
    );
    out.push_str(
        "| read | server | req/s | p50 ms | p99 ms | errors | p50 vs root | p99 vs root \
         | req/s x | p99 ratio |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut warnings = Vec::new();
    for kind in ReadKind::ALL {
        for result in ordered(results) {
            let Ok(m) = &result.outcome else { continue };
            let Some(read) = find_read(m, kind) else {
                continue;
            };
            let (p50_vs, p99_vs) = match kind.baseline().and_then(|b| find_read(m, b)) {
                Some(base) if read.errors > 0 || base.errors > 0 => ("n/a".into(), "n/a".into()),
                Some(base) => (
                    vs_root(kind, read.latency_ms(0.5), base.latency_ms(0.5)),
                    vs_root(kind, read.latency_ms(0.99), base.latency_ms(0.99)),
                ),
                None => Default::default(),
            };
            let peer = bao.and_then(|b| find_read(b, kind));
            let (speed, p99) = match (result.is_strongroom, peer) {
                (true, Some(p)) if read.errors > 0 || p.errors > 0 => ("n/a".into(), "n/a".into()),
                (true, Some(p)) => (
                    match ratio(read.requests_per_sec(), p.requests_per_sec()) {
                        r if r.is_empty() => r,
                        r => format!("{r}x"),
                    },
                    ratio(read.latency_ms(0.99), p.latency_ms(0.99)),
                ),
                _ => (String::new(), String::new()),
            };
            let errors = if read.errors == 0 {
                "0".to_string()
            } else {
                warnings.push(format!(
                    "- WARNING {} / {}: {} of {} reads failed; first: {}",
                    kind.name(),
                    result.server,
                    read.errors,
                    read.requests,
                    read.first_error
                        .as_deref()
                        .unwrap_or("?")
                        .replace('\n', " "),
                ));
                format!("**{} (!)**", read.errors)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {errors} | {p50_vs} | {p99_vs} | {speed} | {p99} |",
                kind.name(),
                result.server,
                read.requests_per_sec(),
                read.latency_ms(0.5),
                read.latency_ms(0.99),
            );
        }
    }

    out.push('\n');
    for result in results {
        if let Err(err) = &result.outcome {
            let _ = writeln!(
                out,
                "- FAILED {}: {}; no namespace rows for it.",
                result.server,
                err.replace('\n', " ")
            );
        }
    }
    for warning in warnings {
        let _ = writeln!(out, "{warning}");
    }
    for result in results {
        if let Ok(m) = &result.outcome {
            if m.write.retries > 0 {
                let _ = writeln!(
                    out,
                    "- {}: {} secret writes were sent again while a fresh mount readied \
                     itself (every {} ms; their latency includes the wait).",
                    result.server,
                    m.write.retries,
                    RETRY_INTERVAL.as_millis()
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "- Reads: `root-empty` reads `{SECRET}` in the root namespace before any namespace \
         exists (its `vs root` cell is blank; the `root` row's is root over root-empty); \
         `root` the same once all namespaces exist; `deep-header` the secret of the deepest \
         of {} nested namespaces `{}` with `X-Vault-Namespace`; `deep-prefix` the same \
         through the path prefix (`/v1/{}/{SECRET}`); `spread-prefix` each of the {} \
         namespaces' secrets in turn through the prefix. Every read must answer 200 with the \
         seeded secret. Peak RSS is the server's once every namespace holds its secret.",
        plan.depth,
        chain_path(plan.depth),
        chain_path(plan.depth),
        plan.count,
    );
    for result in results {
        if let Some(exe) = &result.exe {
            let _ = writeln!(out, "- {} ran {}", result.server, exe.display());
        }
    }
    for note in extra_notes {
        let _ = writeln!(out, "- {note}");
    }
    out
}

/// A read's cell against its baseline: the ratio, flagged when a
/// namespace read is over the bar.
fn vs_root(kind: ReadKind, value: f64, base: f64) -> String {
    let cell = ratio(value, base);
    if kind.in_namespace() && base > 0.0 && value / base > BAR {
        format!("**{cell} (> {BAR})**")
    } else {
        cell
    }
}

/// The outcome of read `kind` in `m`.
fn find_read(m: &Measured, kind: ReadKind) -> Option<&load::Outcome> {
    m.reads.iter().find(|(k, _)| *k == kind).map(|(_, o)| o)
}

/// Strongroom first, so its row (with the ratios) comes before OpenBao's.
fn ordered(results: &[SideResult]) -> Vec<&SideResult> {
    let mut sorted: Vec<&SideResult> = results.iter().collect();
    sorted.sort_by_key(|r| !r.is_strongroom);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use std::sync::Mutex;
    use tokio::net::TcpListener;

    #[test]
    fn creation_is_a_namespace_then_its_mount_in_it() {
        let ops = create_ops(42);
        assert_eq!(
            ops.iter()
                .map(|r| (r.path.as_str(), r.namespace.as_deref()))
                .collect::<Vec<_>>(),
            [
                ("sys/namespaces/ns42", None),
                ("sys/mounts/kv", Some("ns42")),
            ]
        );
        assert!(ops.iter().all(|r| r.method == Method::POST));
        assert_eq!(
            ops[1].body,
            Some(json!({"type": "kv", "options": {"version": "2"}}))
        );
        assert_eq!(ops[0].patience, Duration::ZERO, "a create is not retried");
        let [write] = write_ops(7).try_into().unwrap();
        assert_eq!(
            (write.path.as_str(), write.namespace.as_deref()),
            ("kv/data/bench-read", Some("ns7"))
        );
        assert_eq!(write.body, Some(json!({ "data": small_secret() })));
        assert_eq!(write.patience, WRITE_PATIENCE);
    }

    #[test]
    fn the_chain_nests_each_level_in_its_parent_and_mounts_in_the_deepest() {
        let reqs = chain_setup(3);
        let shape: Vec<_> = reqs
            .iter()
            .map(|r| (r.path.as_str(), r.namespace.as_deref()))
            .collect();
        assert_eq!(
            shape,
            [
                ("sys/namespaces/l1", None),
                ("sys/namespaces/l2", Some("l1")),
                ("sys/namespaces/l3", Some("l1/l2")),
                ("sys/mounts/kv", Some("l1/l2/l3")),
                ("kv/data/bench-read", Some("l1/l2/l3")),
            ]
        );
        assert_eq!(chain_path(8), "l1/l2/l3/l4/l5/l6/l7/l8");
    }

    #[test]
    fn reads_name_the_namespace_by_header_or_prefix_and_want_the_seeded_secret() {
        let addr: SocketAddr = "127.0.0.1:8200".parse().unwrap();
        let token = client::token_header("tok").unwrap();
        let chain = chain_path(2);
        let target = |kind| read_target(addr, &token, kind, 3, &chain).unwrap();
        let uris = |t: &load::Target| {
            t.calls[0]
                .uris
                .iter()
                .map(|u| u.path().to_string())
                .collect::<Vec<_>>()
        };
        let root = target(ReadKind::Root);
        assert_eq!(uris(&root), ["/v1/kv/data/bench-read"]);
        assert!(root.calls[0].headers.is_empty());
        assert_eq!(
            root.calls[0].expect.checks,
            [Check::Equals("/data/data/username", json!("bench-user"))]
        );
        let header = target(ReadKind::DeepHeader);
        assert_eq!(uris(&header), ["/v1/kv/data/bench-read"]);
        assert_eq!(header.calls[0].headers["X-Vault-Namespace"], "l1/l2");
        let prefix = target(ReadKind::DeepPrefix);
        assert_eq!(uris(&prefix), ["/v1/l1/l2/kv/data/bench-read"]);
        assert!(prefix.calls[0].headers.is_empty());
        assert_eq!(
            uris(&target(ReadKind::SpreadPrefix)),
            [
                "/v1/ns0/kv/data/bench-read",
                "/v1/ns1/kv/data/bench-read",
                "/v1/ns2/kv/data/bench-read"
            ]
        );
    }

    #[test]
    fn a_listing_must_name_exactly_the_flat_namespaces() {
        let answer = |n: usize| {
            let keys: Vec<String> = (0..n).map(|k| format!("ns{k}/")).collect();
            serde_json::to_vec(&json!({"data": {"keys": keys}})).unwrap()
        };
        assert_eq!(check_listing(&answer(5), 5).unwrap(), 5);
        let short = check_listing(&answer(4), 5).unwrap_err().to_string();
        assert_eq!(short, "the answer names 4 namespaces, not 5");
        let errors = check_listing(br#"{"errors":["unsupported path"]}"#, 5).unwrap_err();
        assert_eq!(errors.to_string(), "the answer has no data.keys list");
        let renamed = serde_json::to_vec(&json!({"data": {"keys": ["a/", "b/"]}})).unwrap();
        let err = check_listing(&renamed, 2).unwrap_err().to_string();
        assert_eq!(err, "the answer's keys lack \"ns0/\"");
    }

    #[test]
    fn plans_without_namespaces_levels_or_clients_are_refused() {
        let plan = |count, depth, clients| Plan {
            count,
            depth,
            clients,
            shape: shape(),
        };
        assert!(plan(1, 1, 1).validate().is_ok());
        let msg = |p: Plan| p.validate().unwrap_err().to_string();
        assert_eq!(msg(plan(0, 8, 8)), "--namespace-count must be at least 1");
        assert_eq!(msg(plan(10, 0, 8)), "--namespace-depth must be at least 1");
        assert_eq!(
            msg(plan(10, 8, 0)),
            "--namespace-clients must be at least 1"
        );
    }

    fn shape() -> load::Shape {
        load::Shape {
            connections: 4,
            warmup: Duration::from_millis(20),
            duration: Duration::from_millis(200),
        }
    }

    /// What the fake server saw: (method, path, namespace header).
    type Log = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

    /// A tiny server that accepts every request, or answers 404
    /// `unsupported path` to `sys/namespaces/*` when `refuse` (as a server
    /// without namespaces does).
    async fn fake_server(refuse: bool) -> (SocketAddr, Log) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Log = Arc::default();
        let shared = Arc::clone(&log);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let log = Arc::clone(&shared);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let log = Arc::clone(&log);
                        async move {
                            let path = req.uri().path().to_string();
                            let ns = req
                                .headers()
                                .get(NAMESPACE_HEADER)
                                .map(|v| v.to_str().unwrap().to_string());
                            log.lock()
                                .unwrap()
                                .push((req.method().to_string(), path.clone(), ns));
                            let (status, body) =
                                if refuse && path.starts_with("/v1/sys/namespaces/") {
                                    (StatusCode::NOT_FOUND, r#"{"errors":["unsupported path"]}"#)
                                } else {
                                    (StatusCode::NO_CONTENT, "")
                                };
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (addr, log)
    }

    #[tokio::test]
    async fn the_creation_phase_makes_every_namespace_and_mount_once() {
        let (addr, log) = fake_server(false).await;
        let token = client::token_header("tok").unwrap();
        let plan = Plan {
            count: 50,
            depth: 1,
            clients: 4,
            shape: shape(),
        };
        let phase = phase(addr, &token, &plan, "created", create_ops)
            .await
            .unwrap();
        assert_eq!(phase.ops, 50);
        assert_eq!(phase.latency_us.len(), 50, "one sample per namespace");
        assert_eq!(phase.retries, 0);
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 100);
        for k in 0..50 {
            let name = format!("ns{k}");
            let create = ("POST".into(), format!("/v1/sys/namespaces/{name}"), None);
            let mount = ("POST".into(), "/v1/sys/mounts/kv".into(), Some(name));
            let at = |want| log.iter().position(|seen| *seen == want);
            let (create, mount) = (at(create).unwrap(), at(mount).unwrap());
            assert!(create < mount, "ns{k}: the mount follows the create");
        }
    }

    #[tokio::test]
    async fn a_server_without_namespaces_fails_the_phase_with_its_answer() {
        let (addr, log) = fake_server(true).await;
        let token = client::token_header("tok").unwrap();
        let plan = Plan {
            count: 1000,
            depth: 1,
            clients: 8,
            shape: shape(),
        };
        let err = phase(addr, &token, &plan, "created", create_ops)
            .await
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.starts_with("after 0 of 1000 created: POST /v1/sys/namespaces/ns"));
        assert!(
            text.ends_with(r#"answered 404 Not Found: ["unsupported path"]"#),
            "{text}"
        );
        // The clients stop at the first refusal: at most one create each.
        let log = log.lock().unwrap();
        assert!(log.len() <= 8, "{} requests after the refusal", log.len());
        assert!(log.iter().all(|(_, path, _)| !path.contains("mounts")));
    }

    fn histogram(values_us: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram().unwrap();
        for &v in values_us {
            h.record(v).unwrap();
        }
        h
    }

    fn read(p50_us: u64, requests: u64) -> load::Outcome {
        load::Outcome {
            requests,
            errors: 0,
            elapsed: Duration::from_secs(1),
            latency_us: histogram(&[p50_us; 99]),
            first_error: None,
            exhausted: false,
        }
    }

    /// A side whose root read takes 1 ms and whose deep reads take
    /// `deep_us`.
    fn measured(deep_us: u64, rate: usize) -> Measured {
        let phase = |rate: usize| Phase {
            ops: rate,
            elapsed: Duration::from_secs(1),
            latency_us: histogram(&[2000; 10]),
            retries: 0,
        };
        Measured {
            create: phase(rate),
            write: phase(rate),
            list_us: histogram(&[1500; 20]),
            listed: 10_000,
            peak_rss_kib: Some(200 * 1024),
            reads: vec![
                (ReadKind::RootEmpty, read(1000, 1000)),
                (ReadKind::Root, read(1000, 1000)),
                (ReadKind::DeepHeader, read(deep_us, 900)),
                (ReadKind::DeepPrefix, read(deep_us, 900)),
                (ReadKind::SpreadPrefix, read(1100, 900)),
            ],
        }
    }

    fn plan() -> Plan {
        Plan {
            count: 10_000,
            depth: 8,
            clients: 8,
            shape: shape(),
        }
    }

    fn table_lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| l.starts_with("| ")).collect()
    }

    #[test]
    fn namespace_reads_are_set_against_the_root_read_and_flagged_over_the_bar() {
        let results = [
            SideResult {
                server: "openbao".into(),
                is_strongroom: false,
                exe: None,
                outcome: Ok(measured(1500, 1000)),
            },
            SideResult {
                server: "strongroom".into(),
                is_strongroom: true,
                exe: Some("/bin/strongroom".into()),
                outcome: Ok(measured(1100, 3000)),
            },
        ];
        let text = render(&plan(), &results, &[]);
        let lines = table_lines(&text);
        assert_eq!(
            lines[1],
            "| strongroom | 10000 | 3000 | 2.00 | 2.00 | 2.00 | 2.00 | 1.50 | 1.50 | 200.0 \
             | 3.00x | 1.00 | 1.00 |"
        );
        assert!(lines[2].starts_with("| openbao | 10000 | 1000 |"), "{text}");
        let row = |read: &str, server: &str| {
            *lines
                .iter()
                .find(|l| l.starts_with(&format!("| {read} | {server} |")))
                .unwrap()
        };
        assert_eq!(
            row("root-empty", "strongroom"),
            "| root-empty | strongroom | 1000 | 1.00 | 1.00 | 0 |  |  | 1.00x | 1.00 |"
        );
        assert_eq!(
            row("root", "strongroom"),
            "| root | strongroom | 1000 | 1.00 | 1.00 | 0 | 1.00 | 1.00 | 1.00x | 1.00 |"
        );
        assert_eq!(
            row("deep-header", "strongroom"),
            "| deep-header | strongroom | 900 | 1.10 | 1.10 | 0 | 1.10 | 1.10 | 1.00x | 0.73 |"
        );
        assert_eq!(
            row("deep-prefix", "openbao"),
            "| deep-prefix | openbao | 900 | 1.50 | 1.50 | 0 | **1.50 (> 1.2)** \
             | **1.50 (> 1.2)** |  |  |"
        );
        assert!(text.contains("- strongroom ran /bin/strongroom"));
        assert!(!text.contains("FAILED"));
        failures(&results).unwrap();
    }

    #[test]
    fn a_failed_side_is_reported_with_its_error_and_no_ratios() {
        let error = "after 0 of 10000 created: POST /v1/sys/namespaces/ns0 answered 404 \
                     Not Found: [\"unsupported path\"]";
        let results = [
            SideResult {
                server: "strongroom".into(),
                is_strongroom: true,
                exe: None,
                outcome: Err(error.into()),
            },
            SideResult {
                server: "openbao".into(),
                is_strongroom: false,
                exe: None,
                outcome: Ok(measured(1000, 1000)),
            },
        ];
        let text = render(&plan(), &results, &[]);
        let lines = table_lines(&text);
        assert_eq!(
            lines[1],
            "| strongroom | failed (see below) | | | | | | | | | | | |"
        );
        assert!(lines[2].ends_with("| 200.0 |  |  |  |"), "{text}");
        assert!(!lines.iter().any(|l| l.contains("| strongroom | 1000 |")));
        assert!(text.contains(&format!(
            "- FAILED strongroom: {error}; no namespace rows for it."
        )));
        let err = failures(&results).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("the namespace scale scenario failed on strongroom: {error}")
        );
    }

    #[test]
    fn refusals_name_the_request_status_and_errors() {
        let req = Req::post("sys/mounts/kv", Some("ns1"), None);
        assert_eq!(
            refusal(
                &req,
                StatusCode::NOT_FOUND,
                br#"{"errors":["namespace not found"]}"#
            ),
            "POST /v1/sys/mounts/kv (X-Vault-Namespace: ns1) answered 404 Not Found: \
             [\"namespace not found\"]"
        );
        assert_eq!(
            refusal(&req, StatusCode::BAD_GATEWAY, b"<html>"),
            "POST /v1/sys/mounts/kv (X-Vault-Namespace: ns1) answered 502 Bad Gateway: <html>"
        );
    }
}
