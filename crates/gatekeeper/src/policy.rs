//! Gatekeeper policies: which AppRoles a task may get and how many tokens,
//! in the original's v1 JSON format, and their loading from KV.
//!
//! ```json
//! { "mesos:marathon:api": { "roles": ["api"], "num_uses": 1 },
//!   "mesos:marathon:*":   { "roles": ["marathon"], "num_uses": 1 },
//!   "mesos:web:*":        { "roles": ["web"], "num_uses": 2, "regexp": "\\d+\\.site" },
//!   "*":                  { "roles": ["default"], "num_uses": 1 } }
//! ```
//!
//! A task named `<scheduler>:<group>:<name>` (or `<scheduler>:<name>`)
//! matches `*`, every key equal to its name, and every key ending in `*`
//! whose prefix its name starts with (and, with `regexp`, whose expression
//! matches right after that prefix). All matches are merged: their roles
//! most specific (longest key) first, `num_uses` from the most specific.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::vault::{Token, VaultClient, VaultError};

/// One policy entry as written in JSON.
/// Unknown fields are ignored, as the original (Go JSON) did.
#[derive(Debug, Clone, Deserialize)]
struct RawPolicy {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    regexp: Option<String>,
    num_uses: i64,
}

/// A compiled entry.
#[derive(Debug, Clone)]
struct Entry {
    /// The key without its trailing `*`.
    key: String,
    roles: Vec<String>,
    num_uses: u32,
    /// Set for prefix keys (`...*`) and keys with a `regexp`.
    regexp: Option<Regex>,
    /// Whether the key ended in `*`.
    prefix: bool,
}

/// What a task is allowed: the merge of every matching entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Allowed AppRoles, the most specific entry's first; the first is the
    /// default. `{{name}}` stands for the task's name.
    pub roles: Vec<String>,
    /// Tokens a task may get (from the most specific entry).
    pub num_uses: u32,
}

/// Why policies were refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The JSON is not the policy format (where, what).
    #[error("invalid policy JSON{}: {detail}", .source_path.as_deref().map(|p| format!(" at {p}")).unwrap_or_default())]
    Json {
        /// The KV path it came from.
        source_path: Option<String>,
        /// What is wrong.
        detail: String,
    },
    /// A key or entry breaks a rule.
    #[error("invalid policy key {0:?}: {1}")]
    Key(String, String),
    /// A secret below the policy path is malformed.
    #[error("{path}: {error}")]
    In {
        /// The secret's KV path.
        path: String,
        /// What is wrong with it.
        error: Box<PolicyError>,
    },
    /// Nothing is stored at the policy path.
    #[error("no policies found at {0}")]
    Empty(String),
    /// Reading KV failed.
    #[error("reading policies: {0}")]
    Vault(#[from] VaultError),
    /// The folder tree is deeper or larger than Gatekeeper walks.
    #[error("policy folder tree at {0} is too large (more than {MAX_ENTRIES} keys or {MAX_DEPTH} levels)")]
    TooLarge(String),
}

/// The loaded policies.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    catch_all: Option<Entry>,
    entries: BTreeMap<String, Entry>,
}

impl Policies {
    /// Parses the JSON object `{"<key>": {...}}`.
    pub fn from_json(json: &[u8]) -> Result<Self, PolicyError> {
        let map: Map<String, Value> =
            serde_json::from_slice(json).map_err(|e| PolicyError::Json {
                source_path: None,
                detail: e.to_string(),
            })?;
        Self::from_map(map, None)
    }

    /// Builds policies from a JSON object (one KV secret's data, or the
    /// merge of several). `source` names where it came from, for messages.
    pub fn from_map(map: Map<String, Value>, source: Option<&str>) -> Result<Self, PolicyError> {
        let mut out = Policies::default();
        for (key, value) in map {
            let raw: RawPolicy = serde_json::from_value(value).map_err(|e| PolicyError::Json {
                source_path: source.map(String::from),
                detail: format!("{key:?}: {e}"),
            })?;
            let entry = compile(&key, raw)?;
            if key == "*" {
                out.catch_all = Some(entry);
            } else {
                // `a*` and `a` are distinct keys: keep both.
                let slot = if entry.prefix {
                    format!("{}*", entry.key)
                } else {
                    entry.key.clone()
                };
                out.entries.insert(slot, entry);
            }
        }
        Ok(out)
    }

    /// How many keys are loaded.
    pub fn len(&self) -> usize {
        self.entries.len() + usize::from(self.catch_all.is_some())
    }

    /// Whether no key is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The merged policy for a task's policy name, `None` when no entry
    /// matches.
    pub fn get(&self, name: &str) -> Option<Policy> {
        let mut matches: Vec<&Entry> = self.catch_all.iter().collect();
        // Candidates are keys that are prefixes of the name (as the
        // original's radix-tree walk): shortest first.
        let mut candidates: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| name.starts_with(e.key.as_str()))
            .filter(|e| match (&e.regexp, e.prefix) {
                (Some(re), _) => (!e.prefix && e.key == name) || re.is_match(name),
                (None, _) => e.key == name,
            })
            .collect();
        candidates.sort_by_key(|e| (e.key.len(), !e.prefix));
        matches.extend(candidates);
        if matches.is_empty() {
            return None;
        }
        let mut roles: Vec<String> = Vec::new();
        let mut num_uses = 0;
        // Walk from the most specific: its roles first, its num_uses.
        for (i, e) in matches.iter().rev().enumerate() {
            if i == 0 {
                num_uses = e.num_uses;
            }
            for r in &e.roles {
                if !roles.contains(r) {
                    roles.push(r.clone());
                }
            }
        }
        Some(Policy { roles, num_uses })
    }
}

fn compile(key: &str, raw: RawPolicy) -> Result<Entry, PolicyError> {
    let bad = |msg: &str| PolicyError::Key(key.to_string(), msg.to_string());
    if key.is_empty() {
        return Err(bad("keys must not be empty"));
    }
    if key.ends_with(':') {
        return Err(bad("keys must not end with a ':'"));
    }
    if raw.num_uses < 1 || raw.num_uses > i64::from(u32::MAX) {
        return Err(bad("num_uses must be at least 1"));
    }
    if raw.roles.iter().any(|r| r.is_empty()) {
        return Err(bad("roles must not be empty strings"));
    }
    let prefix = key != "*" && key.ends_with('*');
    let stem = if prefix { &key[..key.len() - 1] } else { key };
    let user_re = raw.regexp.filter(|r| !r.is_empty());
    let regexp = match (prefix, user_re) {
        // The expression must match right after the literal prefix; like
        // the original it is not anchored at the end.
        (true, re) => Some(format!(
            "^{}(?:{})",
            regex::escape(stem),
            re.unwrap_or_default()
        )),
        // A regexp on an exact key: searched anywhere in the name, as the
        // original did (the key must still be a prefix of the name).
        (false, Some(re)) => Some(re),
        (false, None) => None,
    };
    let regexp = regexp
        .map(|r| {
            // The regex crate's syntax errors span lines (the pattern, a
            // caret, the reason): keep the message on one line for logs
            // and the JSON answer.
            Regex::new(&r).map_err(|e| {
                let flat = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                bad(&format!("invalid regexp: {flat}"))
            })
        })
        .transpose()?;
    Ok(Entry {
        key: stem.to_string(),
        roles: raw.roles,
        num_uses: raw.num_uses as u32,
        regexp,
        prefix,
    })
}

/// The most keys and levels [`load`] walks.
pub const MAX_ENTRIES: usize = 10_000;
/// See [`MAX_ENTRIES`].
pub const MAX_DEPTH: usize = 16;

/// Loads the policies at `path` on KV version `kv_version`: the secret at
/// `path` itself and every secret in the folders below it, walked in
/// alphabetical order and merged (a key read later replaces the same key
/// read earlier). Any malformed secret fails the whole load, so that the
/// caller keeps its previous policies.
pub async fn load(
    vault: &VaultClient,
    token: &Token,
    path: &str,
    kv_version: u8,
) -> Result<Policies, PolicyError> {
    let merged = load_merged(vault, token, path, kv_version).await?;
    Policies::from_map(merged, Some(path.trim_end_matches('/')))
}

/// The merged policy document [`load`] compiles (what `gatekeeper policy`
/// prints): every secret read, checked on its own, merged in walk order.
pub async fn load_merged(
    vault: &VaultClient,
    token: &Token,
    path: &str,
    kv_version: u8,
) -> Result<Map<String, Value>, PolicyError> {
    let root = path.trim_end_matches('/').to_string();
    let mut merged = Map::new();
    let mut found = false;
    // Depth-first, alphabetical: (path, depth, read it, list it).
    let mut stack = vec![(root.clone(), 0usize, true, true)];
    let mut seen = 0usize;
    while let Some((p, depth, read, list)) = stack.pop() {
        seen += 1;
        if seen > MAX_ENTRIES || depth > MAX_DEPTH {
            return Err(PolicyError::TooLarge(root));
        }
        if read {
            if let Some(entry) = vault.kv_read(token, &p, kv_version).await? {
                found = true;
                let doc = if kv_version == 1 {
                    let (doc, layout) = kv1_document(entry.data);
                    tracing::info!(path = %p, layout = layout.as_str(), "read KV v1 policies");
                    doc
                } else {
                    entry.data
                };
                // Validate each secret on its own so the message names it.
                Policies::from_map(doc.clone(), None).map_err(|e| PolicyError::In {
                    path: p.clone(),
                    error: Box::new(e),
                })?;
                merged.extend(doc);
            }
        }
        if list {
            let mut keys = vault.kv_list(token, &p, kv_version).await?;
            keys.sort();
            // Pushed in reverse so that they pop alphabetically.
            for k in keys.into_iter().rev() {
                let child = format!("{p}/{}", k.trim_end_matches('/'));
                let folder = k.ends_with('/');
                stack.push((child, depth + 1, !folder, folder));
            }
        }
    }
    if !found {
        return Err(PolicyError::Empty(root));
    }
    Ok(merged)
}

/// How a KV v1 secret holds its policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kv1Layout {
    /// Under a key named `data`: `{"data": {<policies>}}`, what the
    /// original's `gatekeeper policy update` writes (it POSTs
    /// `{"data": <policy JSON>}` to the path whatever the KV version) and
    /// what it read back (`data.data`).
    Wrapped,
    /// The policies are the secret itself: `{<policies>}`.
    Bare,
}

impl Kv1Layout {
    /// The name logged for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kv1Layout::Wrapped => "wrapped in a \"data\" key (the original's layout)",
            Kv1Layout::Bare => "bare document",
        }
    }
}

/// The policy document in a KV v1 secret, decided from its shape: a secret
/// whose only key is `data`, holding an object that is not itself a
/// policy entry (no `num_uses`, no `roles`), is [`Kv1Layout::Wrapped`];
/// anything else is read as [`Kv1Layout::Bare`], where `data` would be the
/// policy of a task named `data`. The caller logs which it was, so the
/// choice is never silent.
pub fn kv1_document(mut secret: Map<String, Value>) -> (Map<String, Value>, Kv1Layout) {
    let wrapped = secret.len() == 1
        && matches!(
            secret.get("data"),
            Some(Value::Object(inner))
                if !inner.contains_key("num_uses") && !inner.contains_key("roles")
        );
    if wrapped {
        if let Some(Value::Object(inner)) = secret.remove("data") {
            return (inner, Kv1Layout::Wrapped);
        }
    }
    (secret, Kv1Layout::Bare)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kv1_secrets_are_read_in_the_originals_layout_or_bare() {
        let obj = |v: Value| v.as_object().cloned().unwrap();
        let policy = json!({"mesos:*": {"roles": ["r"], "num_uses": 1}});
        // What `gatekeeper policy update` writes on KV v1.
        let (doc, layout) = kv1_document(obj(json!({ "data": policy })));
        assert_eq!(layout, Kv1Layout::Wrapped);
        assert_eq!(Value::Object(doc), policy);
        // A bare document.
        let (doc, layout) = kv1_document(obj(policy.clone()));
        assert_eq!(layout, Kv1Layout::Bare);
        assert_eq!(Value::Object(doc), policy);
        // A task named `data` is a policy entry, not a wrapper.
        let named = json!({"data": {"roles": ["r"], "num_uses": 2}});
        let (doc, layout) = kv1_document(obj(named.clone()));
        assert_eq!((layout, Value::Object(doc)), (Kv1Layout::Bare, named));
        // `data` beside other keys: bare.
        let both =
            json!({"data": {"x": {"roles": [], "num_uses": 1}}, "*": {"roles": [], "num_uses": 1}});
        assert_eq!(kv1_document(obj(both)).1, Kv1Layout::Bare);
        // An empty wrapper holds no policies (the load then says so).
        let (doc, layout) = kv1_document(obj(json!({"data": {}})));
        assert_eq!((layout, doc.len()), (Kv1Layout::Wrapped, 0));
    }

    // The original's sample policy and its expectations, plus a few more.
    const SAMPLE: &str = r#"{
        "*": {"roles": ["wildcard"], "num_uses": 1},
        "*:invalid": {"roles": ["invalid"], "num_uses": 1},
        "mesos": {"roles": ["only_mesos"], "num_uses": 2},
        "mesos:*": {"roles": ["mesos_child"], "num_uses": 1},
        "mesos:framework": {"roles": ["mesos_framework"], "num_uses": 1},
        "mesos:framework:*": {"roles": ["mesos_framework_child"], "num_uses": 3},
        "mesos:framework:task": {"roles": ["mesos_framework_task"], "num_uses": 4},
        "mesos:framework:task2": {"roles": ["mesos_framework_task2"], "num_uses": 1},
        "mesos:framework:service/*": {"roles": ["mesos_framework_service"], "num_uses": 5},
        "mesos:marathone:*": {"roles": ["taskA"], "regexp": "\\d{4}\\w{2}\\.taskA", "num_uses": 1}
    }"#;

    fn roles(p: &Policies, name: &str) -> Vec<String> {
        p.get(name).map(|p| p.roles).unwrap_or_default()
    }

    #[test]
    fn catch_all_and_exact_keys() {
        let p = Policies::from_json(SAMPLE.as_bytes()).unwrap();
        assert_eq!(roles(&p, "foo"), ["wildcard"]);
        assert_eq!(roles(&p, "mesos"), ["only_mesos", "wildcard"]);
        assert_eq!(p.get("mesos").unwrap().num_uses, 2);
        // An exact key does not match longer names.
        assert_eq!(roles(&p, "mesos:jamp"), ["mesos_child", "wildcard"]);
    }

    #[test]
    fn most_specific_first_and_its_num_uses() {
        let p = Policies::from_json(SAMPLE.as_bytes()).unwrap();
        let got = p.get("mesos:framework:task").unwrap();
        assert_eq!(
            got.roles,
            [
                "mesos_framework_task",
                "mesos_framework_child",
                "mesos_child",
                "wildcard"
            ]
        );
        assert_eq!(got.num_uses, 4);
        let svc = p.get("mesos:framework:service/instance-1").unwrap();
        assert_eq!(
            svc.roles,
            [
                "mesos_framework_service",
                "mesos_framework_child",
                "mesos_child",
                "wildcard"
            ]
        );
        assert_eq!(svc.num_uses, 5);
        // task2 does not get task's role.
        assert!(!roles(&p, "mesos:framework:task2").contains(&"mesos_framework_task".into()));
    }

    #[test]
    fn regexp_keys_match_after_their_prefix() {
        let p = Policies::from_json(SAMPLE.as_bytes()).unwrap();
        assert_eq!(
            roles(&p, "mesos:marathone:6668wz.taskA"),
            ["taskA", "mesos_child", "wildcard"]
        );
        assert_eq!(
            roles(&p, "mesos:marathone:66wz.taskA"),
            ["mesos_child", "wildcard"]
        );
        // The prefix is literal: regex metacharacters in keys are not special.
        let p = Policies::from_json(br#"{"k8s:a.b*": {"roles": ["r"], "num_uses": 1}}"#).unwrap();
        assert_eq!(roles(&p, "k8s:a.b/x"), ["r"]);
        assert!(p.get("k8s:aXb/x").is_none());
    }

    #[test]
    fn no_match_without_catch_all() {
        let p = Policies::from_json(br#"{"mesos:*": {"roles": ["r"], "num_uses": 1}}"#).unwrap();
        assert!(p.get("kubernetes:ns/pod").is_none());
        assert_eq!(roles(&p, "mesos:x"), ["r"]);
    }

    #[test]
    fn bad_policies_are_refused() {
        for bad in [
            r#"{"mesos:": {"roles": ["r"], "num_uses": 1}}"#,
            r#"{"mesos": {"roles": ["r"], "num_uses": 0}}"#,
            r#"{"mesos": {"roles": ["r"]}}"#,
            r#"{"mesos*": {"roles": ["r"], "num_uses": 1, "regexp": "("}}"#,
            r#"{"mesos": {"roles": "r", "num_uses": 1}}"#,
            r#"{"mesos": "just a string"}"#,
            r#"["not", "an", "object"]"#,
        ] {
            assert!(
                matches!(
                    Policies::from_json(bad.as_bytes()),
                    Err(PolicyError::Json { .. } | PolicyError::Key(..))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_bad_regexp_is_refused_on_one_line() {
        // Found by the `gatekeeper` fuzz target: the regex crate's syntax
        // errors span three lines.
        let err =
            Policies::from_json(br#"{"a:*": {"roles": ["x"], "num_uses": 1, "regexp": "("}}"#)
                .unwrap_err()
                .to_string();
        assert_eq!(
            err,
            r#"invalid policy key "a:*": invalid regexp: regex parse error: ^a:(?:() ^ error: unclosed group"#
        );
    }

    #[test]
    fn a_malformed_entry_names_its_key_quoted_on_one_line() {
        // Found by the `gatekeeper` fuzz target: a key holding a newline
        // was echoed as it is.
        let err = Policies::from_json(b"{\"+\\non:api\": {\"roles\": []}}")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#"invalid policy JSON: "+\non:api": missing field `num_uses`"#
        );
    }
}
