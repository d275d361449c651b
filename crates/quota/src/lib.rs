//! Strongroom's quotas, as OpenBao has them: rate-limit quotas (a token
//! bucket per client address, refilled at each interval, with an optional
//! block after a refusal) and lease-count quotas (a cap on the leases and
//! tokens created under a path).
//!
//! This crate owns the pure part: the quota definitions and the quota
//! configuration ([`RateLimit`], [`LeaseCount`], [`Config`]), which quota
//! applies to a request ([`select`], OpenBao's precedence: global, then
//! namespace, then mount, then path, then role, the most specific wins),
//! and the bucket table ([`Limiter`]) whose memory stays bounded: the
//! buckets of idle clients are dropped, and a table at its capacity
//! evicts the least recently seen. The core stores the definitions and
//! calls [`Quotas::check_rate`] before authentication.

#![forbid(unsafe_code)]

mod limiter;
mod rules;

pub use limiter::{Decision, Limiter, DEFAULT_MAX_BUCKETS};
pub use rules::{
    select, Config, LeaseCount, Quota, RateLimit, Scope, Target, DEFAULT_EXEMPT_PATHS,
};

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::{Duration, Instant};

/// The definitions in force, swapped whole on every change.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// The quota configuration.
    pub config: Config,
    /// The rate-limit quotas, each with the id its buckets are keyed by.
    pub rate_limits: Vec<(u64, RateLimit)>,
    /// The lease-count quotas.
    pub lease_counts: Vec<LeaseCount>,
}

/// What the rate-limit check answers for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum RateOutcome {
    /// No rate-limit quota applies (none matches, or the path is exempt).
    Unlimited,
    /// The quota `name` applied and decided.
    Limited {
        /// The deciding quota's name.
        name: String,
        /// Its bucket's answer.
        decision: Decision,
    },
}

impl RateOutcome {
    /// Whether the request may go on.
    pub fn allowed(&self) -> bool {
        match self {
            RateOutcome::Unlimited => true,
            RateOutcome::Limited { decision, .. } => decision.allowed,
        }
    }
}

/// The quotas of a node: the definitions in force and the buckets.
#[derive(Debug)]
pub struct Quotas {
    /// Read on every request: a lock-free load.
    snapshot: ArcSwap<Snapshot>,
    /// Whether any rate-limit quota is defined: the request path's only
    /// question while none is (one atomic load).
    any_rate_limits: AtomicBool,
    /// Whether any lease-count quota is defined.
    any_lease_counts: AtomicBool,
    limiter: Limiter,
    next_id: std::sync::atomic::AtomicU64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas::new(DEFAULT_MAX_BUCKETS)
    }
}

impl Quotas {
    /// No quotas, OpenBao's default configuration, and a bucket table of
    /// at most `max_buckets` buckets.
    pub fn new(max_buckets: usize) -> Self {
        Quotas {
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            any_rate_limits: AtomicBool::new(false),
            any_lease_counts: AtomicBool::new(false),
            limiter: Limiter::new(max_buckets),
            next_id: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// The definitions in force.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Whether any rate-limit quota is defined.
    pub fn any_rate_limits(&self) -> bool {
        self.any_rate_limits.load(Ordering::Acquire)
    }

    /// Whether any lease-count quota is defined.
    pub fn any_lease_counts(&self) -> bool {
        self.any_lease_counts.load(Ordering::Acquire)
    }

    /// Replaces the definitions. A rate-limit quota whose definition is
    /// unchanged keeps its id and its buckets; a new or changed one gets a
    /// fresh id, so it starts with full buckets (as OpenBao's do); the
    /// buckets of the others are dropped.
    pub fn set(&self, config: Config, rate_limits: Vec<RateLimit>, lease_counts: Vec<LeaseCount>) {
        let old = self.snapshot();
        let rate_limits = rate_limits
            .into_iter()
            .map(|q| {
                let id = old
                    .rate_limits
                    .iter()
                    .find(|(_, o)| *o == q)
                    .map(|(id, _)| *id)
                    .unwrap_or_else(|| self.next_id.fetch_add(1, Ordering::Relaxed));
                (id, q)
            })
            .collect::<Vec<_>>();
        let keep: Vec<u64> = rate_limits.iter().map(|(id, _)| *id).collect();
        let snapshot = Arc::new(Snapshot {
            config,
            rate_limits,
            lease_counts,
        });
        let (rates, leases) = (
            !snapshot.rate_limits.is_empty(),
            !snapshot.lease_counts.is_empty(),
        );
        self.snapshot.store(snapshot);
        self.any_rate_limits.store(rates, Ordering::Release);
        self.any_lease_counts.store(leases, Ordering::Release);
        self.limiter.retain_quotas(&keep);
    }

    /// Whether a role quota (rate-limit or lease-count) is defined for the
    /// auth mount `mount` of namespace `namespace`: only then is a login's
    /// role worth resolving.
    pub fn role_quota_on(&self, namespace: &str, mount: &str) -> bool {
        let snapshot = self.snapshot.load();
        let on = |role: &str, scope: &rules::Scope| {
            !role.is_empty() && scope.namespace == namespace && scope.mount == mount
        };
        snapshot
            .rate_limits
            .iter()
            .any(|(_, q)| on(&q.role, &q.scope))
            || snapshot.lease_counts.iter().any(|q| on(&q.role, &q.scope))
    }

    /// Applies the rate-limit quota that matches `target` (if any and the
    /// path is not exempt) to `client`'s bucket, at `now`. A request with
    /// no known address shares the bucket of the unspecified address.
    pub fn check_rate(
        &self,
        target: &Target<'_>,
        client: Option<IpAddr>,
        now: Instant,
    ) -> RateOutcome {
        let snapshot = self.snapshot();
        if snapshot.rate_limits.is_empty() || snapshot.config.is_exempt(target.path) {
            return RateOutcome::Unlimited;
        }
        let Some((id, quota)) = select(snapshot.rate_limits.iter().map(|(id, q)| (id, q)), target)
        else {
            return RateOutcome::Unlimited;
        };
        let client = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let decision = self.limiter.take(
            *id,
            client,
            quota.tokens(),
            Duration::from_secs(quota.interval.max(1)),
            Duration::from_secs(quota.block_interval),
            now,
        );
        RateOutcome::Limited {
            name: quota.name.clone(),
            decision,
        }
    }

    /// The lease-count quota that applies to `target`, if any.
    pub fn lease_quota(&self, target: &Target<'_>) -> Option<LeaseCount> {
        let snapshot = self.snapshot();
        select(snapshot.lease_counts.iter().map(|q| (&(), q)), target).map(|(_, q)| q.clone())
    }

    /// Whether response headers should carry the rate-limit state.
    pub fn headers_enabled(&self) -> bool {
        self.snapshot().config.enable_rate_limit_response_headers
    }

    /// How many buckets the table holds (bounded by its capacity).
    pub fn bucket_count(&self) -> usize {
        self.limiter.len()
    }

    /// The bucket table's capacity.
    pub fn max_buckets(&self) -> usize {
        self.limiter.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rl(name: &str, path: &str, rate: f64) -> RateLimit {
        RateLimit {
            name: name.into(),
            path: path.into(),
            scope: Scope::default(),
            rate,
            interval: 10,
            block_interval: 0,
            inheritable: path.is_empty(),
            role: String::new(),
        }
    }

    fn root<'a>(path: &'a str, mount: &'a str) -> Target<'a> {
        Target {
            namespace: "",
            mount,
            path,
            role: None,
        }
    }

    #[test]
    fn exempt_paths_are_not_limited() {
        let q = Quotas::default();
        q.set(Config::default(), vec![rl("g", "", 1.0)], vec![]);
        let now = Instant::now();
        let addr = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        for _ in 0..5 {
            assert_eq!(
                q.check_rate(&root("sys/health", "sys/"), addr, now),
                RateOutcome::Unlimited
            );
        }
        assert!(q
            .check_rate(&root("secret/x", "secret/"), addr, now)
            .allowed());
        assert!(!q
            .check_rate(&root("secret/x", "secret/"), addr, now)
            .allowed());
    }

    #[test]
    fn an_unchanged_quota_keeps_its_buckets_and_a_changed_one_starts_full() {
        let q = Quotas::default();
        q.set(Config::default(), vec![rl("g", "", 1.0)], vec![]);
        let now = Instant::now();
        let addr = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(q.check_rate(&root("a", ""), addr, now).allowed());
        q.set(Config::default(), vec![rl("g", "", 1.0)], vec![]);
        assert!(!q.check_rate(&root("a", ""), addr, now).allowed());
        q.set(Config::default(), vec![rl("g", "", 2.0)], vec![]);
        assert!(q.check_rate(&root("a", ""), addr, now).allowed());
        assert_eq!(q.bucket_count(), 1);
    }
}
