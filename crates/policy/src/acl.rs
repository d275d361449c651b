//! The compiled ACL: the rules of a token's policies merged per pattern and
//! indexed so that a path check does not scan every rule.
//!
//! Exact patterns live in a hash map, `*`-suffixed prefix patterns in a byte
//! trie (the longest matching prefix is the most specific one), and the rare
//! `+` segment-wildcard patterns in a list sorted by OpenBao's priority, so
//! the first one that matches is the best of them.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::template::{Mode, RenderInput};
use super::{Capabilities, ParameterMap, PathRules, Policy};
use strongroom_sdk::identity::IdentityFacts;
use strongroom_sdk::logical::{Data, Operation};

/// The current time in Unix seconds (0 before 1970, which no clock
/// reports).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The answer to one path check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Whether the ACL is root (everything allowed).
    pub root: bool,
    /// Whether the matching rule grants `sudo` (root-protected paths).
    pub sudo: bool,
    /// The capabilities on the path, sorted, as `sys/capabilities` returns
    /// them (`["root"]` for root, `["deny"]` when nothing is granted).
    pub capabilities: Vec<String>,
    /// Why the request was refused (never contains request values).
    pub reason: Option<String>,
    /// The shortest wrapping TTL the matching rule demands (a request
    /// must then ask for wrapping).
    pub min_wrapping_ttl: Option<Duration>,
    /// The longest wrapping TTL the matching rule allows.
    pub max_wrapping_ttl: Option<Duration>,
    /// The policies whose rules for the matching pattern grant the
    /// operation (audit entries' `granting_policies`), in the token's
    /// policy order; empty when refused, and for root.
    pub granting_policies: Arc<[String]>,
}

/// No policy: shared, so that a decision without granting policies
/// allocates nothing.
fn no_policies() -> Arc<[String]> {
    static EMPTY: std::sync::OnceLock<Arc<[String]>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::from(Vec::new())).clone()
}

/// The operations [`Perms::granting`] is indexed by.
const GRANTED_OPS: [Capabilities; 6] = [
    Capabilities::READ,
    Capabilities::CREATE,
    Capabilities::UPDATE,
    Capabilities::PATCH,
    Capabilities::DELETE,
    Capabilities::LIST,
];

/// The merged permissions of one pattern.
#[derive(Debug, Clone, Default)]
struct Perms {
    caps: Capabilities,
    allowed: ParameterMap,
    denied: ParameterMap,
    required: BTreeSet<String>,
    min_wrap: Option<Duration>,
    max_wrap: Option<Duration>,
    /// Each contributing policy and what its rules for this pattern grant.
    grants: Vec<(String, Capabilities)>,
    /// For each of [`GRANTED_OPS`], the policies granting it, computed
    /// once by [`Perms::finish`].
    granting: [Option<Arc<[String]>>; 6],
}

/// Merges parameter lists as OpenBao does: values union, and an empty list
/// ("any value") absorbs the other side.
fn merge_params(into: &mut ParameterMap, from: &ParameterMap) {
    for (key, values) in from {
        match into.get_mut(key) {
            None => {
                into.insert(key.clone(), values.clone());
            }
            Some(existing) if existing.is_empty() => {}
            Some(existing) if values.is_empty() => existing.clear(),
            Some(existing) => {
                for v in values {
                    if !existing.contains(v) {
                        existing.push(v.clone());
                    }
                }
            }
        }
    }
}

/// The smaller of two optional durations, ignoring unset ones.
fn lower(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Perms {
    fn merge(&mut self, rules: &PathRules, policy: &str) {
        match self.grants.iter_mut().find(|(name, _)| name == policy) {
            Some((_, caps)) => *caps = *caps | rules.capabilities,
            None => self.grants.push((policy.to_string(), rules.capabilities)),
        }
        self.caps = self.caps | rules.capabilities;
        merge_params(&mut self.allowed, &rules.allowed_parameters);
        merge_params(&mut self.denied, &rules.denied_parameters);
        self.required
            .extend(rules.required_parameters.iter().cloned());
        self.min_wrap = lower(self.min_wrap, rules.min_wrapping_ttl);
        self.max_wrap = lower(
            self.max_wrap,
            rules.max_wrapping_ttl.filter(|d| !d.is_zero()),
        );
    }

    /// Deny overrides everything else granted for the pattern; the
    /// granting policies of each operation are listed once.
    fn finish(&mut self) {
        if self.caps.contains(Capabilities::DENY) {
            *self = Perms {
                caps: Capabilities::DENY,
                ..Default::default()
            };
            return;
        }
        for (i, op) in GRANTED_OPS.iter().enumerate() {
            let names: Vec<String> = self
                .grants
                .iter()
                .filter(|(_, caps)| caps.contains(*op))
                .map(|(name, _)| name.clone())
                .collect();
            self.granting[i] = Some(Arc::from(names));
        }
    }

    /// The policies granting `needed` (one of [`GRANTED_OPS`]).
    fn granting(&self, needed: Capabilities) -> Arc<[String]> {
        GRANTED_OPS
            .iter()
            .position(|op| *op == needed)
            .and_then(|i| self.granting[i].clone())
            .unwrap_or_else(no_policies)
    }

    fn denies(&self) -> bool {
        self.caps.is_empty() || self.caps.contains(Capabilities::DENY)
    }
}

/// What OpenBao's priority ordering looks at in a wildcard pattern.
#[derive(Debug, Clone)]
struct PatternKey {
    text: String,
    /// Byte index of the first `+` segment or of the trailing `*`.
    first_wildcard: usize,
    ends_star: bool,
    plus_segments: usize,
}

impl PatternKey {
    fn new(text: &str) -> PatternKey {
        let ends_star = text.ends_with('*');
        let body = if ends_star {
            &text[..text.len() - 1]
        } else {
            text
        };
        let mut first = if ends_star { Some(body.len()) } else { None };
        let mut plus = 0;
        let mut offset = 0;
        for seg in body.split('/') {
            if seg == "+" {
                plus += 1;
                first = Some(first.map_or(offset, |f| f.min(offset)));
            }
            offset += seg.len() + 1;
        }
        PatternKey {
            text: text.to_string(),
            first_wildcard: first.unwrap_or(text.len()),
            ends_star,
            plus_segments: plus,
        }
    }

    /// `Greater` when `self` wins over `other` (OpenBao's priority matching):
    /// later first wildcard; then not ending in `*`; then fewer `+`
    /// segments; then longer; then lexicographically larger.
    fn priority(&self, other: &PatternKey) -> Ordering {
        self.first_wildcard
            .cmp(&other.first_wildcard)
            .then((!self.ends_star).cmp(&!other.ends_star))
            .then(other.plus_segments.cmp(&self.plus_segments))
            .then(self.text.len().cmp(&other.text.len()))
            .then(self.text.cmp(&other.text))
    }
}

/// A `+` pattern, split for matching.
#[derive(Debug)]
struct SegmentRule {
    key: PatternKey,
    /// Segments of the pattern without its trailing `*`.
    segments: Vec<String>,
    /// The literal text before the first wildcard: a cheap pre-filter.
    literal_prefix: String,
    rule: usize,
}

impl SegmentRule {
    fn matches(&self, path: &str) -> bool {
        if !path.starts_with(&self.literal_prefix) {
            return false;
        }
        let n = self.segments.len();
        let seg_ok = |pat: &str, got: &str| pat == "+" || pat == got;
        if self.key.ends_star {
            // The first n-1 segments match one by one; the rest of the path
            // (slashes included) must start with the last pattern segment.
            let mut parts = path.splitn(n, '/');
            for (i, pat) in self.segments.iter().enumerate() {
                let Some(got) = parts.next() else {
                    return false;
                };
                let ok = if i + 1 == n {
                    pat == "+" || got.starts_with(pat.as_str())
                } else {
                    seg_ok(pat, got)
                };
                if !ok {
                    return false;
                }
            }
            true
        } else {
            let mut parts = path.split('/');
            for pat in &self.segments {
                match parts.next() {
                    Some(got) if seg_ok(pat, got) => {}
                    _ => return false,
                }
            }
            parts.next().is_none()
        }
    }
}

/// A byte trie node for prefix (`*`) patterns.
#[derive(Debug, Default)]
struct TrieNode {
    children: Vec<(u8, usize)>,
    rule: Option<usize>,
}

/// Which structure answered a lookup, for tests of the index itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Exact,
    Prefix,
    Segment,
}

/// How much work a lookup did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    source: Option<Source>,
    segment_patterns_tested: usize,
}

/// A token's policies compiled for path checks. Cheap to share behind an
/// `Arc`; immutable once built.
#[derive(Debug, Default)]
pub struct Acl {
    root: bool,
    /// Merged permissions; the other fields index into it.
    rules: Vec<(PatternKey, Perms)>,
    exact: HashMap<String, usize>,
    trie: Vec<TrieNode>,
    /// Sorted from highest to lowest priority.
    segment: Vec<SegmentRule>,
}

impl Acl {
    /// Compiles the policies for a caller without an entity: identity
    /// templates that need one do not resolve and their rules are dropped
    /// (see [`Acl::compile`]).
    pub fn new(policies: &[Arc<Policy>]) -> Acl {
        Acl::compile(policies, None, unix_now())
    }

    /// Compiles the policies for the caller's identity. Rules for the same
    /// pattern merge (capabilities union, `deny` overrides, parameter
    /// lists union with `[]` meaning any value, the lowest wrapping TTL
    /// bounds). A policy named `root` makes the ACL root. A templated
    /// pattern (`{{identity.entity.id}}`) is rendered with `identity`; when
    /// it does not resolve (no entity, a missing key, an unknown accessor,
    /// a substituted value holding `/`, `*` or `+` the policy does not
    /// allow) its rule is dropped: it matches nothing and never becomes a
    /// wildcard. `now` (Unix seconds) feeds `{{time.now}}`.
    pub fn compile(policies: &[Arc<Policy>], identity: Option<&IdentityFacts>, now: i64) -> Acl {
        let mut acl = Acl {
            trie: vec![TrieNode::default()],
            ..Default::default()
        };
        if policies.iter().any(|p| p.is_root()) {
            acl.root = true;
            return acl;
        }
        // Each rule with its final pattern: borrowed, or rendered.
        let mut patterns: Vec<(Cow<'_, str>, &PathRules, &str)> = Vec::new();
        for policy in policies {
            for rules in &policy.paths {
                let pattern = match &rules.template {
                    None => Cow::Borrowed(rules.path.as_str()),
                    Some(t) => {
                        let input = RenderInput {
                            identity,
                            mode: Mode::Acl,
                            blocked: policy.blocked_substitutions(),
                            now,
                        };
                        match t.render(&input) {
                            // OpenBao's parse rules apply to the result.
                            Ok(p) if !p.contains("+*") => {
                                Cow::Owned(p.strip_prefix('/').map(str::to_string).unwrap_or(p))
                            }
                            _ => continue,
                        }
                    }
                };
                patterns.push((pattern, rules, policy.name.as_str()));
            }
        }
        let mut by_pattern: HashMap<&str, usize> = HashMap::new();
        for (pattern, rules, policy) in &patterns {
            let idx = *by_pattern.entry(pattern).or_insert_with(|| {
                acl.rules.push((PatternKey::new(pattern), Perms::default()));
                acl.rules.len() - 1
            });
            acl.rules[idx].1.merge(rules, policy);
        }
        for idx in 0..acl.rules.len() {
            acl.rules[idx].1.finish();
            let key = acl.rules[idx].0.clone();
            if key.plus_segments > 0 {
                let body = key.text.strip_suffix('*').unwrap_or(&key.text);
                acl.segment.push(SegmentRule {
                    segments: body.split('/').map(str::to_string).collect(),
                    literal_prefix: key.text[..key.first_wildcard].to_string(),
                    key,
                    rule: idx,
                });
            } else if let Some(prefix) = key.text.strip_suffix('*') {
                acl.trie_insert(prefix.as_bytes(), idx);
            } else {
                acl.exact.insert(key.text, idx);
            }
        }
        acl.segment.sort_by(|a, b| b.key.priority(&a.key));
        acl
    }

    fn trie_insert(&mut self, prefix: &[u8], rule: usize) {
        let mut node = 0;
        for &b in prefix {
            let found = self.trie[node]
                .children
                .iter()
                .find(|(c, _)| *c == b)
                .map(|(_, n)| *n);
            node = match found {
                Some(next) => next,
                None => {
                    self.trie.push(TrieNode::default());
                    let next = self.trie.len() - 1;
                    self.trie[node].children.push((b, next));
                    next
                }
            };
        }
        self.trie[node].rule = Some(rule);
    }

    /// The longest `*` prefix pattern matching `path`.
    fn trie_lookup(&self, path: &str) -> Option<usize> {
        let mut node = 0;
        let mut best = self.trie.first().and_then(|n| n.rule);
        for &b in path.as_bytes() {
            let next = self
                .trie
                .get(node)
                .and_then(|n| n.children.iter().find(|(c, _)| *c == b))
                .map(|(_, n)| *n);
            match next {
                Some(n) => {
                    node = n;
                    if let Some(r) = self.trie.get(n).and_then(|n| n.rule) {
                        best = Some(r);
                    }
                }
                None => break,
            }
        }
        best
    }

    /// The winning rule for `path`, and how it was found. For a LIST
    /// (`list`), an exact rule for the path without its trailing `/` wins
    /// before any pattern, as in OpenBao: `path "kv/dir" { read }` decides
    /// `LIST kv/dir/` even when `kv/dir/*` grants `list`.
    fn lookup(&self, path: &str, list: bool) -> (Option<usize>, Probe) {
        let mut probe = Probe {
            source: None,
            segment_patterns_tested: 0,
        };
        if let Some(&idx) = self.exact.get(path) {
            probe.source = Some(Source::Exact);
            return (Some(idx), probe);
        }
        if let Some(trimmed) = path.strip_suffix('/').filter(|_| list) {
            if let Some(&idx) = self.exact.get(trimmed) {
                probe.source = Some(Source::Exact);
                return (Some(idx), probe);
            }
        }
        let prefix = self.trie_lookup(path);
        for seg in &self.segment {
            if let Some(p) = prefix {
                // Sorted by priority: once a pattern cannot beat the prefix
                // match, no later one can.
                if seg.key.priority(&self.rules[p].0) != Ordering::Greater {
                    break;
                }
            }
            probe.segment_patterns_tested += 1;
            if seg.matches(path) {
                probe.source = Some(Source::Segment);
                return (Some(seg.rule), probe);
            }
        }
        if prefix.is_some() {
            probe.source = Some(Source::Prefix);
        }
        (prefix, probe)
    }

    fn perms(&self, path: &str, list: bool) -> Option<&Perms> {
        let path = path.strip_prefix('/').unwrap_or(path);
        self.lookup(path, list)
            .0
            .and_then(|i| self.rules.get(i))
            .map(|(_, p)| p)
    }

    /// True when the ACL was built with the `root` policy.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The capabilities on `path`, sorted, as `sys/capabilities` answers:
    /// `["root"]` for root, `["deny"]` when no rule grants anything. The
    /// rule is looked up as for a LIST (OpenBao does the same), so a
    /// trailing `/` falls back to the exact rule without it.
    pub fn capabilities(&self, path: &str) -> Vec<String> {
        if self.root {
            return vec!["root".to_string()];
        }
        match self.perms(path, true) {
            Some(p) if !p.denies() => p.caps.names(),
            _ => vec!["deny".to_string()],
        }
    }

    /// Whether the ACL lets the token reach the mount at `mount_path` (with
    /// its trailing `/`, `auth/` included for auth mounts) at all, as
    /// OpenBao's `hasMountAccess` decides for `sys/internal/ui/mounts`: the
    /// mount path itself is not denied; or some exact or `*` rule at or
    /// under it grants a capability; or a `*` rule covers it (OpenBao then
    /// answers yes whatever that rule grants, when the ACL has no `+`
    /// rules); or a `+` rule's leading segments match the mount's segments
    /// and grant something.
    pub fn has_mount_access(&self, mount_path: &str) -> bool {
        if self.root {
            return true;
        }
        let path = mount_path.strip_prefix('/').unwrap_or(mount_path);
        if !self.capabilities(path).iter().any(|c| c == "deny") {
            return true;
        }
        // Exact and prefix rules at or below the mount.
        let below = self.rules.iter().any(|(key, perms)| {
            key.plus_segments == 0
                && key
                    .text
                    .strip_suffix('*')
                    .unwrap_or(&key.text)
                    .starts_with(path)
                && !perms.denies()
        });
        if below {
            return true;
        }
        // OpenBao's bare-mount check of non-exact rules: without `+`
        // rules, any `*` rule covering the mount path counts.
        if self.segment.is_empty() {
            return self.trie_lookup(path).is_some();
        }
        let mount: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        self.segment.iter().any(|seg| {
            let n = seg.segments.len();
            n >= mount.len()
                && mount.iter().enumerate().all(|(i, got)| {
                    let pat = seg.segments[i].as_str();
                    pat == "+"
                        || pat == *got
                        || (seg.key.ends_star && i + 1 == n && got.starts_with(pat))
                })
                && !self.rules[seg.rule].1.denies()
        })
    }

    /// The `(min, max)` wrapping TTLs the matching rule imposes on `path`.
    pub fn wrapping_ttl_bounds(&self, path: &str) -> (Option<Duration>, Option<Duration>) {
        if self.root {
            return (None, None);
        }
        self.perms(path, false)
            .map(|p| (p.min_wrap, p.max_wrap))
            .unwrap_or((None, None))
    }

    /// Decides whether `op` on `path` with request `data` is allowed. Only
    /// the most specific matching rule counts. Parameter constraints apply
    /// to read, create, update and patch (as OpenBao: query parameters of a
    /// read are checked too); `Help` needs any capability but `deny`.
    pub fn check(&self, path: &str, op: Operation, data: &Data) -> Decision {
        if self.root {
            return Decision {
                allowed: true,
                root: true,
                sudo: true,
                capabilities: vec!["root".to_string()],
                reason: None,
                min_wrapping_ttl: None,
                max_wrapping_ttl: None,
                granting_policies: no_policies(),
            };
        }
        let refuse = |caps: Vec<String>, sudo: bool, reason: String| Decision {
            allowed: false,
            root: false,
            sudo,
            capabilities: caps,
            reason: Some(reason),
            min_wrapping_ttl: None,
            max_wrapping_ttl: None,
            granting_policies: no_policies(),
        };
        let perms = match self.perms(path, matches!(op, Operation::List | Operation::Scan)) {
            Some(p) if !p.denies() => p,
            Some(_) => {
                return refuse(
                    vec!["deny".to_string()],
                    false,
                    "a policy denies this path".into(),
                )
            }
            None => {
                return refuse(
                    vec!["deny".to_string()],
                    false,
                    "no policy grants access to this path".into(),
                )
            }
        };
        let caps = perms.caps.names();
        let sudo = perms.caps.contains(Capabilities::SUDO);
        let needed = match op {
            Operation::Read => Capabilities::READ,
            Operation::Create => Capabilities::CREATE,
            Operation::Update => Capabilities::UPDATE,
            Operation::Patch => Capabilities::PATCH,
            Operation::Delete => Capabilities::DELETE,
            Operation::List => Capabilities::LIST,
            Operation::Scan => Capabilities::SCAN,
            Operation::Help => Capabilities::NONE,
        };
        if !perms.caps.contains(needed) {
            let reason = format!("no {} capability on this path", op.as_str());
            return refuse(caps, sudo, reason);
        }
        if matches!(
            op,
            Operation::Read | Operation::Create | Operation::Update | Operation::Patch
        ) {
            if let Err(reason) = check_parameters(perms, data) {
                return refuse(caps, sudo, reason);
            }
        }
        Decision {
            allowed: true,
            root: false,
            sudo,
            capabilities: caps,
            reason: None,
            min_wrapping_ttl: perms.min_wrap,
            max_wrapping_ttl: perms.max_wrap,
            granting_policies: perms.granting(needed),
        }
    }
}

/// OpenBao's value globs: a leading and/or trailing `*` matches any suffix,
/// prefix or infix; anything else (and a lone `*`) compares literally.
fn glob_match(pattern: &str, value: &str) -> bool {
    if pattern.len() < 2 {
        return pattern == value;
    }
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), Some(_)) => value.contains(&rest[..rest.len() - 1]),
        (Some(suffix), None) => value.ends_with(suffix),
        (None, Some(prefix)) => value.starts_with(prefix),
        (None, None) => pattern == value,
    }
}

/// True when `value` is in `list` (an empty list holds every value).
/// Strings compare with globs; other values by JSON equality, type
/// included (`1` is not `"1"`, `true` is not `"true"`, as on OpenBao).
fn value_in(value: &Value, list: &[Value]) -> bool {
    list.is_empty()
        || list.iter().any(|entry| match (entry, value) {
            (Value::String(p), Value::String(v)) => glob_match(p, v),
            (e, v) => e == v,
        })
}

fn check_parameters(perms: &Perms, data: &Data) -> Result<(), String> {
    if !perms.denied.is_empty() {
        let deny_all = perms.denied.contains_key("*");
        for (key, value) in data {
            let lowered = key.to_lowercase();
            let denied = deny_all
                || perms
                    .denied
                    .get(&lowered)
                    .is_some_and(|list| value_in(value, list));
            if denied {
                return Err(format!("parameter {key:?} is denied"));
            }
        }
    }
    if !perms.allowed.is_empty() {
        let any_key = perms.allowed.contains_key("*");
        for (key, value) in data {
            let ok = match perms.allowed.get(&key.to_lowercase()) {
                Some(list) => value_in(value, list),
                None => any_key,
            };
            if !ok {
                return Err(format!("parameter {key:?} is not allowed"));
            }
        }
    }
    for required in &perms.required {
        if !data.keys().any(|k| k.to_lowercase() == *required) {
            return Err(format!("missing required parameter {required:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
