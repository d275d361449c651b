//! The Gatekeeper service: its seal state (token and policies), the token
//! request decision, unsealing with renewal, and the counters. HTTP lives
//! in [`crate::http`]; this module knows nothing of requests and headers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use strongroom_gatekeeper_scheduler::{Scheduler, SchedulerError, Task};
use tokio::task::JoinHandle;

use crate::policy::{self, Policies, PolicyError};
use crate::statsd::Statsd;
use crate::unseal::{renew_after, retry_delay, UnsealConfig, UnsealError, UnsealMethod};
use crate::usage::{Acquire, UsageStore};
use crate::vault::{Token, VaultClient, VaultError};

/// The settings the service runs with (from the flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// Scheduler used when a request names none.
    pub default_scheduler: String,
    /// How long after its start a task may ask.
    pub task_grace: Duration,
    /// Check the caller against the task's addresses.
    pub host_check: bool,
    /// Policies match the image rather than the task name.
    pub use_image_name: bool,
    /// KV path of the policies.
    pub policy_path: String,
    /// KV version there.
    pub kv_version: u8,
    /// AppRole mount used for tasks' logins.
    pub approle_mount: String,
    /// TTL of the wrapping tokens.
    pub wrap_ttl: Duration,
    /// Where unseal methods log in.
    pub unseal: UnsealConfig,
    /// Path checked for the admin capability.
    pub admin_path: String,
    /// Admin endpoints open to anyone.
    pub admin_open: bool,
}

/// A token handed to a task.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The wrapping token.
    pub token: Token,
    /// Its accessor, to revoke it.
    pub accessor: String,
    /// Its TTL.
    pub ttl: Duration,
}

/// Why a token request was not served; [`TokenError::status`] is the
/// HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Malformed request, unknown scheduler (400).
    #[error("{0}")]
    BadRequest(String),
    /// Gatekeeper is sealed (503).
    #[error("Unable to provide token: Gatekeeper is sealed.")]
    Sealed,
    /// The scheduler could not be reached, failed, or answered something
    /// that is not its API's answer (502, still unsealed: 503 means sealed
    /// and nothing else).
    #[error("The scheduler could not be asked about this task: {0}")]
    SchedulerUnavailable(String),
    /// The scheduler did not answer in time (504, still unsealed).
    #[error("The scheduler did not answer in time: {0}")]
    SchedulerTimedOut(String),
    /// The scheduler does not know the task (401).
    #[error("{0}")]
    UnknownTask(String),
    /// The caller is not where the task runs (401).
    #[error("The service's remote address requesting this token does not match the host of the service running this task.")]
    HostMismatch,
    /// The task is older than the grace period (403).
    #[error("This task has been running too long to request a token.")]
    TooOld,
    /// No policy matches the task (403; the original answered 500).
    #[error("Your task doesn't match any configured policy.")]
    NoPolicy,
    /// The requested role is not allowed (403).
    #[error("Your task does not have permission to use this role.")]
    RoleNotAllowed,
    /// The role does not exist at the AppRole mount (403).
    #[error("The role requested does not exist.")]
    NoSuchRole,
    /// The task has had its tokens (429).
    #[error("Maximum number of tokens given to this task.")]
    LimitReached,
    /// The Vault-API server or the usage store failed (500).
    #[error("{0}")]
    Internal(String),
}

impl TokenError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            TokenError::BadRequest(_) => 400,
            TokenError::UnknownTask(_) | TokenError::HostMismatch => 401,
            TokenError::TooOld
            | TokenError::NoPolicy
            | TokenError::RoleNotAllowed
            | TokenError::NoSuchRole => 403,
            TokenError::LimitReached => 429,
            TokenError::Internal(_) => 500,
            TokenError::SchedulerUnavailable(_) => 502,
            TokenError::SchedulerTimedOut(_) => 504,
            TokenError::Sealed => 503,
        }
    }

    /// Whether it counts as denied (the caller's fault) rather than failed.
    pub fn is_denial(&self) -> bool {
        matches!(self.status(), 400 | 401 | 403 | 429)
    }
}

/// Why `/unseal` failed.
#[derive(Debug, thiserror::Error)]
pub enum UnsealFailure {
    /// The credential was refused.
    #[error("Unseal failed with the '{0}' method: {1}")]
    Login(&'static str, UnsealError),
    /// The token works but the policies could not be loaded.
    #[error("Unsealed with the '{0}' method, but the policies could not be loaded, so Gatekeeper stays sealed: {1}")]
    Policies(&'static str, PolicyError),
}

/// The latency buckets of the token request histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A counter of `/status` and `/metrics` that, with StatsD configured,
/// also sends each increment (`<prefix>.<name>:<n>|c`). Its methods
/// mirror `AtomicU64`'s.
#[derive(Debug)]
pub struct Counter {
    value: AtomicU64,
    name: &'static str,
    statsd: Option<Arc<Statsd>>,
    prometheus: metrics::Counter,
}

impl Counter {
    /// A counter sent to StatsD as `name`, and to `/metrics` as `prometheus`.
    fn new(name: &'static str, prometheus: metrics::Counter) -> Self {
        Counter {
            value: AtomicU64::new(0),
            name,
            statsd: None,
            prometheus,
        }
    }

    /// Adds `n`, reports it to StatsD, and answers the previous value.
    pub fn fetch_add(&self, n: u64, order: Ordering) -> u64 {
        let previous = self.value.fetch_add(n, order);
        self.prometheus.increment(n);
        if let Some(s) = &self.statsd {
            s.count(self.name, n);
        }
        previous
    }

    /// The current value.
    pub fn load(&self, order: Ordering) -> u64 {
        self.value.load(order)
    }
}

/// The counters of `/status` and `/metrics` (and StatsD).
#[derive(Debug)]
pub struct Stats {
    /// Token requests (StatsD `requests`).
    pub requests: Counter,
    /// Requests answered with a token (StatsD `success`).
    pub successful: Counter,
    /// Requests refused by policy: 400, 401, 403, 429 (StatsD `denied`).
    pub denied: Counter,
    /// Requests Gatekeeper could not serve: sealed, server errors
    /// (StatsD `failed`).
    pub failed: Counter,
    /// The `/metrics` registry (`strongroom-telemetry`'s Prometheus exporter).
    registry: strongroom_telemetry::exporter::LocalRegistry,
    /// `gatekeeper_unsealed`, set when `/metrics` is rendered.
    unsealed: metrics::Gauge,
    /// The latency histograms, by scheduler.
    latency: dashmap::DashMap<String, metrics::Histogram>,
}

/// The token request latency histogram's name.
const LATENCY: &str = "gatekeeper_token_request_duration_seconds";

impl Default for Stats {
    fn default() -> Self {
        let registry =
            strongroom_telemetry::exporter::LocalRegistry::new(&[(LATENCY, &LATENCY_BUCKETS)]);
        let counter = |statsd: &'static str, name: &str, help: &str| {
            Counter::new(
                statsd,
                registry.counter(&format!("gatekeeper_token_{name}_total"), help, &[]),
            )
        };
        Stats {
            requests: counter("requests", "requests", "Token requests received."),
            successful: counter(
                "success",
                "successful",
                "Token requests answered with a token.",
            ),
            denied: counter("denied", "denied", "Token requests refused by policy."),
            failed: counter(
                "failed",
                "failed",
                "Token requests that could not be served.",
            ),
            unsealed: registry.gauge(
                "gatekeeper_unsealed",
                "Whether Gatekeeper is unsealed.",
                &[],
            ),
            registry,
            latency: dashmap::DashMap::new(),
        }
    }
}

impl Stats {
    /// Sends every counter increment to `statsd` from now on.
    pub fn set_statsd(&mut self, statsd: Arc<Statsd>) {
        for c in [
            &mut self.requests,
            &mut self.successful,
            &mut self.denied,
            &mut self.failed,
        ] {
            c.statsd = Some(statsd.clone());
        }
    }

    /// The four counters.
    pub fn snapshot(&self) -> [u64; 4] {
        [
            self.requests.load(Ordering::Relaxed),
            self.successful.load(Ordering::Relaxed),
            self.denied.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        ]
    }

    /// The Prometheus text of `/metrics`, with `unsealed` as the gauge.
    pub fn render(&self, unsealed: bool) -> String {
        self.unsealed.set(f64::from(u8::from(unsealed)));
        self.registry.render()
    }

    fn observe(&self, scheduler: &str, elapsed: Duration) {
        if let Some(h) = self.latency.get(scheduler) {
            h.record(elapsed.as_secs_f64());
            return;
        }
        let h = self.registry.histogram(
            LATENCY,
            "Token request latency per scheduler.",
            &[("scheduler", scheduler)],
        );
        h.record(elapsed.as_secs_f64());
        self.latency.insert(scheduler.to_string(), h);
    }
}

/// What an unsealed Gatekeeper holds.
#[derive(Debug)]
pub struct Unsealed {
    /// Gatekeeper's own token.
    pub token: Arc<Token>,
    /// The loaded policies.
    pub policies: Arc<Policies>,
    /// Which unseal this is (renewal tasks of an older one stop).
    pub generation: u64,
}

/// The service.
pub struct Gatekeeper {
    /// Settings.
    pub config: Config,
    /// The Vault-API client.
    pub vault: VaultClient,
    schedulers: HashMap<String, Arc<dyn Scheduler>>,
    usage: Arc<dyn UsageStore>,
    state: Arc<ArcSwapOption<Unsealed>>,
    generation: AtomicU64,
    renewal: Mutex<Option<JoinHandle<()>>>,
    /// Counters.
    pub stats: Stats,
    /// This instance's id (peers tell each other apart by it).
    pub id: String,
    /// When it started.
    pub started: SystemTime,
    started_at: Instant,
}

impl std::fmt::Debug for Gatekeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatekeeper")
            .field("id", &self.id)
            .field("unsealed", &self.is_unsealed())
            .finish_non_exhaustive()
    }
}

/// A shared handle to the seal state, for the `vault` usage store.
pub type SealState = Arc<ArcSwapOption<Unsealed>>;

/// A new, sealed seal state.
pub fn new_seal_state() -> SealState {
    Arc::new(ArcSwapOption::empty())
}

/// Whether `s` is a role name Gatekeeper will put in a path.
fn valid_role(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// Folds IPv4-mapped IPv6 addresses to IPv4 so that both forms compare.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl Gatekeeper {
    /// A sealed Gatekeeper. `schedulers` must not be empty; the config's
    /// default scheduler must be one of them. `state` is the seal state the
    /// usage store reads its token from ([`new_seal_state`]).
    pub fn new(
        config: Config,
        vault: VaultClient,
        schedulers: Vec<Arc<dyn Scheduler>>,
        usage: Arc<dyn UsageStore>,
        state: SealState,
    ) -> Self {
        Gatekeeper {
            config,
            vault,
            schedulers: schedulers
                .into_iter()
                .map(|s| (s.name().to_string(), s))
                .collect(),
            usage,
            state,
            generation: AtomicU64::new(0),
            renewal: Mutex::new(None),
            stats: Stats::default(),
            id: uuid::Uuid::new_v4().to_string(),
            started: SystemTime::now(),
            started_at: Instant::now(),
        }
    }

    /// Sends the request counters to StatsD as they are counted
    /// (`--metrics-statsd`; the gauges are [`crate::statsd::spawn_gauges`]).
    pub fn with_statsd(mut self, statsd: Arc<Statsd>) -> Self {
        self.stats.set_statsd(statsd);
        self
    }

    /// How long it has run.
    pub fn uptime(&self) -> Duration {
        self.started_at.elapsed()
    }

    /// Whether it holds a token.
    pub fn is_unsealed(&self) -> bool {
        self.state.load().is_some()
    }

    /// The current token, when unsealed.
    pub fn token(&self) -> Option<Arc<Token>> {
        self.state.load().as_ref().map(|s| s.token.clone())
    }

    /// Forgets the token and the policies and stops renewing.
    pub fn seal(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.state.store(None);
        if let Some(h) = self.lock_renewal().take() {
            h.abort();
        }
        tracing::info!("Gatekeeper sealed");
    }

    fn lock_renewal(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.renewal.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Unseals with `method`: logs in, loads the policies, and only when
    /// both succeed replaces the state (a failed attempt changes nothing),
    /// then renews the token in the background. Answers the number of
    /// policy keys loaded.
    pub async fn unseal(self: &Arc<Self>, method: &UnsealMethod) -> Result<usize, UnsealFailure> {
        let name = method.name();
        tracing::info!(method = name, "attempting to unseal");
        let auth = method
            .login(&self.vault, &self.config.unseal)
            .await
            .map_err(|e| {
                tracing::warn!(method = name, error = %e, "unseal failed");
                UnsealFailure::Login(name, e)
            })?;
        let policies = policy::load(
            &self.vault,
            &auth.token,
            &self.config.policy_path,
            self.config.kv_version,
        )
        .await
        .map_err(|e| {
            tracing::warn!(method = name, error = %e, "policies could not be loaded; staying as before");
            UnsealFailure::Policies(name, e)
        })?;
        let count = policies.len();
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let token = Arc::new(auth.token);
        self.state.store(Some(Arc::new(Unsealed {
            token: token.clone(),
            policies: Arc::new(policies),
            generation,
        })));
        let handle = if auth.ttl.is_zero() {
            None
        } else {
            let me = Arc::downgrade(self);
            Some(tokio::spawn(renew_loop(
                me,
                generation,
                auth.ttl,
                auth.renewable,
            )))
        };
        if let Some(old) = std::mem::replace(&mut *self.lock_renewal(), handle) {
            old.abort();
        }
        tracing::info!(method = name, policies = count, "unsealed");
        Ok(count)
    }

    /// Reloads the policies; on failure the loaded ones stay.
    pub async fn reload_policies(&self) -> Result<usize, TokenError> {
        let current = self.state.load_full().ok_or(TokenError::Sealed)?;
        let policies = policy::load(
            &self.vault,
            &current.token,
            &self.config.policy_path,
            self.config.kv_version,
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "policy reload refused; the previous policies stay");
            let message = format!("The policies were not reloaded, the previous ones stay: {e}");
            // Policies that do not parse are bad input to the reload (400,
            // naming the secret); a Vault-API server that cannot be read
            // is a server-side failure (500).
            match e {
                PolicyError::Vault(_) => TokenError::Internal(message),
                _ => TokenError::BadRequest(message),
            }
        })?;
        let count = policies.len();
        let policies = Arc::new(policies);
        // Only replace the state this reload read with (a seal or a new
        // unseal in between wins).
        self.state.rcu(|cur| match cur {
            Some(c) if c.generation == current.generation => Some(Arc::new(Unsealed {
                token: c.token.clone(),
                policies: policies.clone(),
                generation: c.generation,
            })),
            other => other.clone(),
        });
        tracing::info!(policies = count, "policies reloaded");
        Ok(count)
    }

    /// Seals if the state is still unseal number `generation`.
    fn seal_if(&self, generation: u64) -> bool {
        if self
            .generation
            .compare_exchange(
                generation,
                generation + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_err()
        {
            return false;
        }
        self.state.store(None);
        true
    }

    /// Serves one token request. `client` is the caller's address (after
    /// trusted proxies).
    pub async fn request_token(
        &self,
        scheduler: Option<&str>,
        task_id: &str,
        role: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<Grant, TokenError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let scheduler = scheduler
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.config.default_scheduler)
            .to_string();
        let result = self
            .decide(&scheduler, task_id, role.filter(|r| !r.is_empty()), client)
            .await;
        let counter = match &result {
            Ok(_) => &self.stats.successful,
            Err(e) if e.is_denial() => &self.stats.denied,
            Err(_) => &self.stats.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if self.schedulers.contains_key(&scheduler) {
            self.stats.observe(&scheduler, started.elapsed());
        }
        match &result {
            Ok(g) => {
                tracing::info!(%scheduler, task_id, accessor = %g.accessor, "token delivered")
            }
            Err(e) => {
                tracing::info!(%scheduler, task_id, status = e.status(), reason = %e, "token refused")
            }
        }
        result
    }

    async fn decide(
        &self,
        scheduler_name: &str,
        task_id: &str,
        requested_role: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<Grant, TokenError> {
        let state = self.state.load_full().ok_or(TokenError::Sealed)?;
        let scheduler = self.schedulers.get(scheduler_name).ok_or_else(|| {
            TokenError::BadRequest(format!(
                "Provided scheduler '{scheduler_name}' is not configured."
            ))
        })?;
        let task = scheduler.lookup(task_id).await.map_err(|e| match e {
            SchedulerError::NotFound(_) => TokenError::UnknownTask(e.to_string()),
            SchedulerError::TimedOut(why) => TokenError::SchedulerTimedOut(why),
            SchedulerError::Unavailable(why) => TokenError::SchedulerUnavailable(why),
            SchedulerError::BadAnswer(why) => {
                TokenError::SchedulerUnavailable(format!("it answered garbage: {why}"))
            }
        })?;
        // A start in the future (clock skew) counts as just started.
        let age = SystemTime::now()
            .duration_since(task.started)
            .unwrap_or(Duration::ZERO);
        if age >= self.config.task_grace {
            return Err(TokenError::TooOld);
        }
        if self.config.host_check {
            let ok = client.is_some_and(|c| {
                let c = canonical_ip(c);
                task.addresses.iter().any(|a| canonical_ip(*a) == c)
            });
            if !ok {
                return Err(TokenError::HostMismatch);
            }
        }
        let policy_name = self.policy_name(scheduler_name, &task);
        let policy = state
            .policies
            .get(&policy_name)
            .filter(|p| !p.roles.is_empty())
            .ok_or(TokenError::NoPolicy)?;
        let chosen = match requested_role {
            None => policy.roles[0].clone(),
            Some(r) if policy.roles.iter().any(|p| p == r) => r.to_string(),
            Some(r) if r == task.name && policy.roles.iter().any(|p| p == "{{name}}") => {
                r.to_string()
            }
            Some(_) => return Err(TokenError::RoleNotAllowed),
        };
        let role = if chosen == "{{name}}" {
            task.name.clone()
        } else {
            chosen
        };
        if !valid_role(&role) {
            return Err(TokenError::NoSuchRole);
        }

        // Count the use only now that the task is entitled to a token, and
        // atomically, before any token exists.
        let key = format!("{scheduler_name}:{}", task.id);
        let ttl = self.config.task_grace + Duration::from_secs(60);
        match self.usage.acquire(&key, policy.num_uses, ttl).await {
            Ok(Acquire::Granted) => {}
            Ok(Acquire::LimitReached) => return Err(TokenError::LimitReached),
            Err(e) => return Err(TokenError::Internal(e.to_string())),
        }
        match self.login(&state.token, &role).await {
            Ok(grant) => Ok(grant),
            Err(e) => {
                // No wrapping token exists: the task never got this use.
                if let Err(release) = self.usage.release(&key).await {
                    tracing::warn!(key = %key, error = %release, "could not give a use back");
                }
                Err(e)
            }
        }
    }

    fn policy_name(&self, scheduler: &str, task: &Task) -> String {
        match (&task.image, &task.group) {
            (Some(image), _) if self.config.use_image_name && !image.is_empty() => {
                format!("{scheduler}:{image}")
            }
            (_, Some(group)) if !group.is_empty() => {
                format!("{scheduler}:{group}:{}", task.name)
            }
            _ => format!("{scheduler}:{}", task.name),
        }
    }

    async fn login(&self, token: &Token, role: &str) -> Result<Grant, TokenError> {
        let mount = &self.config.approle_mount;
        let vault_err = |what: &str, e: VaultError| {
            tracing::warn!(role, error = %e, "{what} failed");
            TokenError::Internal(format!("{what} failed: {e}"))
        };
        let role_id = self
            .vault
            .role_id(token, mount, role)
            .await
            .map_err(|e| vault_err("reading the role id", e))?
            .ok_or(TokenError::NoSuchRole)?;
        let secret_id = self
            .vault
            .create_secret_id(token, mount, role)
            .await
            .map_err(|e| vault_err("creating a secret id", e))?;
        let wrapped = self
            .vault
            .approle_login_wrapped(mount, &role_id, &secret_id, self.config.wrap_ttl)
            .await
            .map_err(|e| vault_err("the AppRole login", e))?;
        Ok(Grant {
            token: wrapped.token,
            accessor: wrapped.accessor,
            ttl: wrapped.ttl,
        })
    }
}

/// Renews Gatekeeper's token before it expires; retries failures with
/// backoff until the token runs out, then seals (and says so).
async fn renew_loop(
    gk: std::sync::Weak<Gatekeeper>,
    generation: u64,
    ttl: Duration,
    renewable: bool,
) {
    let mut expires = Instant::now() + ttl;
    let mut ttl = ttl;
    loop {
        if !renewable {
            tokio::time::sleep_until(expires.into()).await;
            if let Some(g) = gk.upgrade() {
                if g.seal_if(generation) {
                    tracing::error!("Gatekeeper's token expired and cannot be renewed: sealed");
                }
            }
            return;
        }
        tokio::time::sleep(renew_after(ttl)).await;
        let mut attempt = 0;
        loop {
            let Some(g) = gk.upgrade() else { return };
            let Some(token) = g
                .state
                .load()
                .as_ref()
                .filter(|s| s.generation == generation)
                .map(|s| s.token.clone())
            else {
                return;
            };
            match g.vault.renew_self(&token).await {
                Ok(new_ttl) => {
                    ttl = new_ttl.max(Duration::from_secs(1));
                    expires = Instant::now() + ttl;
                    tracing::debug!(ttl_secs = ttl.as_secs(), "Gatekeeper's token renewed");
                    break;
                }
                Err(e) => {
                    let delay = retry_delay(attempt);
                    attempt += 1;
                    if Instant::now() + delay >= expires {
                        if g.seal_if(generation) {
                            tracing::error!(error = %e, attempts = attempt,
                                "Gatekeeper's token could not be renewed before it expired: sealed");
                        }
                        return;
                    }
                    tracing::warn!(error = %e, attempt, retry_in_secs = delay.as_secs(),
                        "renewing Gatekeeper's token failed; retrying");
                    drop(g);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}
