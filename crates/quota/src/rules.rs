//! Quota definitions, the quota configuration, and which quota applies to
//! a request (OpenBao's precedence).

use serde::{Deserialize, Serialize};

/// OpenBao's default `rate_limit_exempt_paths`.
pub const DEFAULT_EXEMPT_PATHS: [&str; 7] = [
    "sys/generate-recovery-token/attempt",
    "sys/generate-recovery-token/update",
    "sys/generate-root/attempt",
    "sys/generate-root/update",
    "sys/health",
    "sys/seal-status",
    "sys/unseal",
];

/// `sys/quotas/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Paths (prefixes, relative to the request's namespace) no rate-limit
    /// quota applies to.
    pub rate_limit_exempt_paths: Vec<String>,
    /// Whether refused requests are audited.
    pub enable_rate_limit_audit_logging: bool,
    /// Whether answers carry the `X-RateLimit-*` headers.
    pub enable_rate_limit_response_headers: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rate_limit_exempt_paths: DEFAULT_EXEMPT_PATHS.iter().map(|p| p.to_string()).collect(),
            enable_rate_limit_audit_logging: false,
            enable_rate_limit_response_headers: false,
        }
    }
}

impl Config {
    /// Whether `path` (relative to its namespace) is exempt: an exempt path
    /// is a prefix of it, on segment boundaries or ending in `/`.
    pub fn is_exempt(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        self.rate_limit_exempt_paths.iter().any(|p| {
            let p = p.trim_start_matches('/');
            !p.is_empty()
                && path.strip_prefix(p).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with('/') || p.ends_with('/')
                })
        })
    }
}

/// Where a quota applies, resolved from its `path` when it is written:
/// the namespace (`ns1/`, `""` for root), the mount relative to it
/// (`secret/`, `""` for a namespace-wide quota) and the path below the
/// mount (`""` for a mount-wide quota).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The namespace's path from the root, with its trailing slash.
    pub namespace: String,
    /// The mount's path relative to the namespace.
    pub mount: String,
    /// The path below the mount, matched as a prefix.
    pub rest: String,
}

/// A rate-limit quota (`sys/quotas/rate-limit/:name`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Its name.
    pub name: String,
    /// The path as given (`""`, `ns1/`, `secret/`, `ns1/secret/foo`).
    pub path: String,
    /// The path, resolved.
    #[serde(default)]
    pub scope: Scope,
    /// Requests allowed per interval.
    pub rate: f64,
    /// The interval, in seconds (at least 1).
    pub interval: u64,
    /// How long a client that was refused stays refused, in seconds (0:
    /// only until the interval ends).
    pub block_interval: u64,
    /// Whether the quota also applies to the child namespaces.
    pub inheritable: bool,
    /// The login role the quota is for (`""`: any).
    #[serde(default)]
    pub role: String,
}

impl RateLimit {
    /// The tokens of a full bucket: the rate, rounded down, at least 1 (a
    /// rate between 0 and 1 still lets one request through per interval).
    pub fn tokens(&self) -> u64 {
        if self.rate.is_finite() && self.rate >= 1.0 {
            // A float to integer `as` saturates: no overflow.
            self.rate.floor() as u64
        } else {
            1
        }
    }
}

/// A lease-count quota (`sys/quotas/lease-count/:name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseCount {
    /// Its name.
    pub name: String,
    /// The path as given.
    pub path: String,
    /// The path, resolved.
    #[serde(default)]
    pub scope: Scope,
    /// The most leases (and tokens) that may exist under the path.
    pub max_leases: u64,
    /// Whether the quota also applies to the child namespaces.
    pub inheritable: bool,
    /// The login role the quota is for (`""`: any).
    #[serde(default)]
    pub role: String,
}

/// What [`select`] needs of a quota.
pub trait Quota {
    /// Where it applies.
    fn scope(&self) -> &Scope;
    /// Its role (`""`: any).
    fn role(&self) -> &str;
    /// Whether child namespaces inherit it.
    fn inheritable(&self) -> bool;
}

impl Quota for RateLimit {
    fn scope(&self) -> &Scope {
        &self.scope
    }
    fn role(&self) -> &str {
        &self.role
    }
    fn inheritable(&self) -> bool {
        self.inheritable
    }
}

impl Quota for LeaseCount {
    fn scope(&self) -> &Scope {
        &self.scope
    }
    fn role(&self) -> &str {
        &self.role
    }
    fn inheritable(&self) -> bool {
        self.inheritable
    }
}

/// The request a quota is looked up for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The request's namespace (`""` for root, else `ns1/`).
    pub namespace: &'a str,
    /// The mount serving the request, relative to the namespace (`""`: none).
    pub mount: &'a str,
    /// The request path relative to the namespace.
    pub path: &'a str,
    /// The login role, when known.
    pub role: Option<&'a str>,
}

/// How specific a matching quota is: its level, then a tie-breaker (the
/// longer path wins). `None` when the quota does not apply.
fn rank<Q: Quota>(q: &Q, t: &Target<'_>) -> Option<(u8, usize)> {
    let s = q.scope();
    if !q.role().is_empty() {
        // A role quota: the login role on its mount.
        let applies = s.namespace == t.namespace
            && s.mount == t.mount
            && !t.mount.is_empty()
            && t.role == Some(q.role());
        return applies.then_some((5, 0));
    }
    if !s.mount.is_empty() {
        if s.namespace != t.namespace || s.mount != t.mount {
            return None;
        }
        if s.rest.is_empty() {
            return Some((3, 0));
        }
        let below = t.path.strip_prefix(t.mount)?;
        return below.starts_with(&s.rest).then_some((4, s.rest.len()));
    }
    if s.namespace.is_empty() {
        // Global: the root namespace, and the others when inheritable.
        return (t.namespace.is_empty() || q.inheritable()).then_some((1, 0));
    }
    if s.namespace == t.namespace {
        return Some((2, s.namespace.len()));
    }
    (q.inheritable() && t.namespace.starts_with(&s.namespace)).then_some((2, s.namespace.len()))
}

/// The quota that applies to `target`: the most specific of those that
/// match (global, then namespace, then mount, then path, then role; a
/// nearer namespace beats an inherited ancestor's, a longer path a
/// shorter one). Ties go to the first given.
pub fn select<'q, K, Q: Quota + 'q>(
    quotas: impl IntoIterator<Item = (&'q K, &'q Q)>,
    target: &Target<'_>,
) -> Option<(&'q K, &'q Q)>
where
    K: 'q,
{
    let mut best = None;
    let mut best_rank = (0, 0);
    for (k, q) in quotas {
        if let Some(r) = rank(q, target) {
            if best.is_none() || r > best_rank {
                best = Some((k, q));
                best_rank = r;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(
        name: &str,
        ns: &str,
        mount: &str,
        rest: &str,
        role: &str,
        inheritable: bool,
    ) -> RateLimit {
        RateLimit {
            name: name.into(),
            path: format!("{ns}{mount}{rest}"),
            scope: Scope {
                namespace: ns.into(),
                mount: mount.into(),
                rest: rest.into(),
            },
            rate: 1.0,
            interval: 1,
            block_interval: 0,
            inheritable,
            role: role.into(),
        }
    }

    fn pick<'a>(qs: &'a [RateLimit], t: Target<'_>) -> Option<&'a str> {
        select(qs.iter().map(|q| (&(), q)), &t).map(|(_, q)| q.name.as_str())
    }

    fn t<'a>(
        namespace: &'a str,
        mount: &'a str,
        path: &'a str,
        role: Option<&'a str>,
    ) -> Target<'a> {
        Target {
            namespace,
            mount,
            path,
            role,
        }
    }

    #[test]
    fn the_most_specific_quota_wins() {
        let qs = vec![
            quota("global", "", "", "", "", true),
            quota("ns", "ns1/", "", "", "", false),
            quota("mount", "ns1/", "auth/approle/", "", "", false),
            quota("path", "ns1/", "auth/approle/", "login", "", false),
            quota("role", "ns1/", "auth/approle/", "", "web", false),
        ];
        let login = "auth/approle/login";
        assert_eq!(
            pick(&qs, t("ns1/", "auth/approle/", login, Some("web"))),
            Some("role")
        );
        assert_eq!(
            pick(&qs, t("ns1/", "auth/approle/", login, Some("db"))),
            Some("path")
        );
        assert_eq!(
            pick(&qs, t("ns1/", "auth/approle/", login, None)),
            Some("path")
        );
        assert_eq!(
            pick(&qs, t("ns1/", "auth/approle/", "auth/approle/role/x", None)),
            Some("mount")
        );
        assert_eq!(
            pick(&qs, t("ns1/", "secret/", "secret/x", None)),
            Some("ns")
        );
        assert_eq!(
            pick(&qs, t("", "secret/", "secret/x", None)),
            Some("global")
        );
        // The order given does not matter.
        let mut reversed = qs.clone();
        reversed.reverse();
        assert_eq!(
            pick(&reversed, t("ns1/", "auth/approle/", login, Some("web"))),
            Some("role")
        );
        assert_eq!(
            pick(&reversed, t("ns2/", "secret/", "secret/x", None)),
            Some("global")
        );
    }

    #[test]
    fn the_longest_path_quota_wins() {
        let qs = vec![
            quota("short", "", "secret/", "a", "", false),
            quota("long", "", "secret/", "a/b", "", false),
        ];
        assert_eq!(
            pick(&qs, t("", "secret/", "secret/a/b/c", None)),
            Some("long")
        );
        assert_eq!(
            pick(&qs, t("", "secret/", "secret/a/x", None)),
            Some("short")
        );
        assert_eq!(pick(&qs, t("", "secret/", "secret/x", None)), None);
    }

    #[test]
    fn inheritance_reaches_child_namespaces_only_when_asked() {
        let qs = vec![
            quota("global", "", "", "", "", false),
            quota("ns1", "ns1/", "", "", "", true),
            quota("ns2", "ns2/", "", "", "", false),
        ];
        assert_eq!(pick(&qs, t("", "", "x", None)), Some("global"));
        assert_eq!(pick(&qs, t("ns1/child/", "", "x", None)), Some("ns1"));
        assert_eq!(pick(&qs, t("ns2/child/", "", "x", None)), None);
        assert_eq!(pick(&qs, t("ns3/", "", "x", None)), None);
        // A nearer namespace beats an inherited ancestor.
        let qs = vec![
            quota("ns1", "ns1/", "", "", "", true),
            quota("child", "ns1/child/", "", "", "", false),
        ];
        assert_eq!(pick(&qs, t("ns1/child/", "", "x", None)), Some("child"));
        // A mount quota is for its own namespace only.
        let qs = vec![quota("m", "", "secret/", "", "", true)];
        assert_eq!(pick(&qs, t("ns1/", "secret/", "secret/x", None)), None);
    }

    #[test]
    fn exempt_paths_match_on_segments() {
        let c = Config::default();
        assert!(c.is_exempt("sys/health"));
        assert!(c.is_exempt("sys/seal-status"));
        assert!(!c.is_exempt("sys/healthy"));
        assert!(!c.is_exempt("secret/x"));
        let c = Config {
            rate_limit_exempt_paths: vec!["secret/".into(), "kv/a".into()],
            ..Config::default()
        };
        assert!(c.is_exempt("secret/x"));
        assert!(c.is_exempt("kv/a/b"));
        assert!(!c.is_exempt("kv/ab"));
        assert!(!c.is_exempt("sys/health"));
    }

    #[test]
    fn tokens_are_the_rate_rounded_down_and_at_least_one() {
        let mut q = quota("q", "", "", "", "", true);
        for (rate, tokens) in [
            (0.5, 1),
            (1.0, 1),
            (2.9, 2),
            (1e30, u64::MAX),
            (f64::NAN, 1),
        ] {
            q.rate = rate;
            assert_eq!(q.tokens(), tokens, "rate {rate}");
        }
    }
}
