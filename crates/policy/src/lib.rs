//! ACL policies: parsing OpenBao's policy language (HCL or JSON) into
//! [`Policy`] values, and compiling sets of them into an [`Acl`] that answers
//! "may this request touch this path?".
//!
//! The module owns the policy model ([`Policy`], [`PathRules`],
//! [`Capabilities`]), its parse errors ([`PolicyError`]), the compiled
//! [`Acl`] with its [`Decision`]s, and the built-in `default` and `root`
//! policies, and the [`store`] that keeps named policies behind the
//! barrier, and the identity [`template`]s a path may hold
//! (`{{identity.entity.id}}`), rendered per entity when an ACL is
//! compiled for one ([`Acl::compile`], [`store::PolicyStore::acl_for`]).
//! It does not look tokens up: callers hand it parsed policies and
//! a request's path, operation and data.
//!
//! OpenBao 2.7.2 is the behavioural reference; the tests record what a real
//! `bao` server answered for each rule implemented here.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use strongroom_sdk::duration::duration_from_json;

mod acl;
mod builtin;
pub mod store;
pub mod template;

pub use acl::{Acl, Decision};
pub use builtin::{default_policy, root_policy, DEFAULT_POLICY, DEFAULT_POLICY_TEXT};

/// The reserved name of the policy that allows everything.
pub const ROOT_POLICY: &str = "root";

/// Why a policy text was refused. Each message is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy name is empty.
    #[error("policy name cannot be empty")]
    EmptyName,
    /// The text is not valid HCL or JSON, or not shaped like a policy.
    #[error("failed to parse policy: {0}")]
    Syntax(String),
    /// A key that policies do not have, at the top level (`path` is `None`)
    /// or inside a path block.
    #[error("failed to parse policy: {}invalid key {key:?}", path_prefix(.path))]
    InvalidKey {
        /// The path block, when the key is inside one.
        path: Option<String>,
        /// The offending key.
        key: String,
    },
    /// A key OpenBao knows but Strongroom does not enforce (refused rather
    /// than silently ignored, since ignoring it could widen access).
    #[error("failed to parse policy: path {path:?}: {key:?} is not supported")]
    Unsupported {
        /// The path block.
        path: String,
        /// The key.
        key: String,
    },
    /// A value has the wrong type (a string where a list is expected, ...).
    #[error("failed to parse policy: path {path:?}: {message}")]
    InvalidValue {
        /// The path block.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// An unknown entry in `capabilities`.
    #[error("failed to parse policy: path {path:?}: invalid capability {capability:?}")]
    InvalidCapability {
        /// The path block.
        path: String,
        /// The unknown capability.
        capability: String,
    },
    /// An unknown legacy `policy = "..."` value.
    #[error("failed to parse policy: path {path:?}: invalid policy {policy:?}")]
    InvalidLegacyPolicy {
        /// The path block.
        path: String,
        /// The unknown value.
        policy: String,
    },
    /// `min_wrapping_ttl` or `max_wrapping_ttl` is not a duration.
    #[error(
        "failed to parse policy: path {path:?}: error parsing {field}: invalid duration {value:?}"
    )]
    InvalidDuration {
        /// The path block.
        path: String,
        /// `min_wrapping_ttl` or `max_wrapping_ttl`.
        field: &'static str,
        /// The value as written.
        value: String,
    },
    /// `max_wrapping_ttl` is below `min_wrapping_ttl`.
    #[error("failed to parse policy: path {path:?}: max_wrapping_ttl cannot be less than min_wrapping_ttl")]
    WrappingTtlOrder {
        /// The path block.
        path: String,
    },
    /// A path's identity template is malformed (`{{` without `}}`).
    #[error(
        "failed to parse policy: path {path:?}: failed to validate policy templating: {error}"
    )]
    Template {
        /// The path block.
        path: String,
        /// What is wrong.
        error: template::TemplateError,
    },
    /// The pattern uses `+*`, which OpenBao forbids.
    #[error("failed to parse policy: path {path:?}: invalid use of wildcards ('+*' is forbidden)")]
    InvalidWildcard {
        /// The path block.
        path: String,
    },
}

fn path_prefix(path: &Option<String>) -> String {
    match path {
        Some(p) => format!("path {p:?}: "),
        None => String::new(),
    }
}

/// A set of capabilities, as a small bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u16);

impl Capabilities {
    /// No capability at all.
    pub const NONE: Capabilities = Capabilities(0);
    /// `create`: write a path that does not exist.
    pub const CREATE: Capabilities = Capabilities(1);
    /// `read`.
    pub const READ: Capabilities = Capabilities(1 << 1);
    /// `update`.
    pub const UPDATE: Capabilities = Capabilities(1 << 2);
    /// `patch`.
    pub const PATCH: Capabilities = Capabilities(1 << 3);
    /// `delete`.
    pub const DELETE: Capabilities = Capabilities(1 << 4);
    /// `list`.
    pub const LIST: Capabilities = Capabilities(1 << 5);
    /// `scan` (OpenBao's recursive listing).
    pub const SCAN: Capabilities = Capabilities(1 << 6);
    /// `sudo`: root-protected paths.
    pub const SUDO: Capabilities = Capabilities(1 << 7);
    /// `deny`: overrides every other capability.
    pub const DENY: Capabilities = Capabilities(1 << 8);

    /// Names and bits, sorted by name (the order `sys/capabilities` uses).
    const NAMES: [(&'static str, Capabilities); 9] = [
        ("create", Capabilities::CREATE),
        ("delete", Capabilities::DELETE),
        ("deny", Capabilities::DENY),
        ("list", Capabilities::LIST),
        ("patch", Capabilities::PATCH),
        ("read", Capabilities::READ),
        ("scan", Capabilities::SCAN),
        ("sudo", Capabilities::SUDO),
        ("update", Capabilities::UPDATE),
    ];

    /// The capability with this name (case-sensitive, as OpenBao).
    pub fn from_name(name: &str) -> Option<Capabilities> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
    }

    /// True when every capability of `other` is in `self`.
    pub fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of both sets.
    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// The names in the set, sorted.
    pub fn names(self) -> Vec<String> {
        Self::NAMES
            .iter()
            .filter(|(_, c)| self.contains(*c))
            .map(|(n, _)| (*n).to_string())
            .collect()
    }
}

impl std::ops::BitOr for Capabilities {
    type Output = Capabilities;
    fn bitor(self, rhs: Capabilities) -> Capabilities {
        self.union(rhs)
    }
}

/// Allowed or denied parameters: lowercased key to values, where an empty
/// list means "any value".
pub type ParameterMap = BTreeMap<String, Vec<Value>>;

/// The rules of one `path "..." { ... }` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathRules {
    /// The pattern as written, without a leading `/`.
    pub path: String,
    /// The granted capabilities (legacy `policy = ...` already mapped in).
    pub capabilities: Capabilities,
    /// `allowed_parameters`.
    pub allowed_parameters: ParameterMap,
    /// `denied_parameters`.
    pub denied_parameters: ParameterMap,
    /// `required_parameters`, lowercased.
    pub required_parameters: Vec<String>,
    /// `min_wrapping_ttl`.
    pub min_wrapping_ttl: Option<Duration>,
    /// `max_wrapping_ttl`.
    pub max_wrapping_ttl: Option<Duration>,
    /// The parsed identity template when the pattern holds one
    /// (`{{...}}`): the rule then applies only once rendered for an
    /// entity, and is dropped when the template does not resolve.
    pub template: Option<Arc<template::Template>>,
}

/// A parsed ACL policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The lowercased name.
    pub name: String,
    /// The text it was parsed from, kept verbatim for `sys/policies/acl` reads.
    pub raw: String,
    /// The path blocks in the order written (repeats are kept; the [`Acl`]
    /// merges them).
    pub paths: Vec<PathRules>,
    /// Whether a value substituted into a templated path may hold `/`
    /// (OpenBao's `allow_slashes_in_identity_templates`, default false).
    pub allow_slashes_in_identity_templates: bool,
    /// Whether a substituted value may hold `*` or `+` (OpenBao's
    /// `allow_wildcards_in_identity_templates`, default false).
    pub allow_wildcards_in_identity_templates: bool,
}

impl Policy {
    /// Parses a policy in HCL, or in JSON when the text starts with `{`.
    /// The name is lowercased, as OpenBao does.
    pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
        let name = name.trim().to_lowercase();
        if name.is_empty() {
            return Err(PolicyError::EmptyName);
        }
        let blocks = if text.trim_start().starts_with('{') {
            json_blocks(text)?
        } else {
            hcl_blocks(text)?
        };
        let paths = blocks
            .into_iter()
            .map(|(path, attrs)| path_rules(&path, &attrs))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            name,
            raw: text.to_string(),
            paths,
            allow_slashes_in_identity_templates: false,
            allow_wildcards_in_identity_templates: false,
        })
    }

    /// A policy with a name and no rules.
    pub fn empty(name: &str) -> Policy {
        Policy {
            name: name.to_lowercase(),
            raw: String::new(),
            paths: Vec::new(),
            allow_slashes_in_identity_templates: false,
            allow_wildcards_in_identity_templates: false,
        }
    }

    /// True when a path holds an identity template: the policy's ACL then
    /// depends on the entity.
    pub fn is_templated(&self) -> bool {
        self.paths.iter().any(|p| p.template.is_some())
    }

    /// True when a template reads the clock (`{{time.now}}`): the policy's
    /// ACL then changes with time and is never cached.
    pub fn reads_time(&self) -> bool {
        self.paths
            .iter()
            .any(|p| p.template.as_ref().is_some_and(|t| t.reads_time()))
    }

    /// The substrings a value substituted into this policy's paths may not
    /// hold (`/`, `*`, `+` unless allowed).
    pub fn blocked_substitutions(&self) -> &'static [&'static str] {
        use template::ACL_BLOCKED;
        match (
            self.allow_slashes_in_identity_templates,
            self.allow_wildcards_in_identity_templates,
        ) {
            (false, false) => &ACL_BLOCKED,
            (false, true) => &ACL_BLOCKED[..1],
            (true, false) => &ACL_BLOCKED[1..],
            (true, true) => &[],
        }
    }

    /// True for the reserved `root` policy.
    pub fn is_root(&self) -> bool {
        self.name == ROOT_POLICY
    }
}

/// One path block before interpretation: its label and its attributes.
type RawBlock = (String, Map<String, Value>);

fn syntax(msg: impl std::fmt::Display) -> PolicyError {
    // Parser messages may span lines (source snippets); keep one line.
    let one_line = msg
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    PolicyError::Syntax(one_line)
}

/// Whether `expr` is a literal value (as HCL1, OpenBao's policy language,
/// only knows): no arithmetic, conditionals, calls or comprehensions.
/// Evaluating those is not only meaningless in a policy but unsafe:
/// hcl-rs's evaluation of `2/0` trips a debug assertion on the infinite
/// result (found by the `policy` fuzz target).
fn is_literal(expr: &hcl::Expression) -> bool {
    use hcl::Expression as E;
    match expr {
        E::Null | E::Bool(_) | E::Number(_) | E::String(_) => true,
        // A template is a literal only without interpolations or
        // directives: evaluating `"${1/0}"` is the same hazard as `1/0`.
        E::TemplateExpr(t) => {
            let text = match &**t {
                hcl::TemplateExpr::QuotedString(s) => s.as_str(),
                hcl::TemplateExpr::Heredoc(h) => h.template.as_str(),
            };
            !text.contains("${") && !text.contains("%{")
        }
        E::Array(items) => items.iter().all(is_literal),
        E::Object(obj) => obj.values().all(is_literal),
        E::Parenthesis(inner) => is_literal(inner),
        // Variables and traversals would fail with an empty context, but a
        // traversal evaluates its index expressions first (`2[1/0]`, found
        // by the fuzz target): refused before evaluation.
        E::Variable(_) | E::Traversal(_) => false,
        E::FuncCall(_) | E::Conditional(_) | E::Operation(_) | E::ForExpr(_) => false,
        // hcl-rs's enum is non-exhaustive: anything new is refused.
        _ => false,
    }
}

fn hcl_blocks(text: &str) -> Result<Vec<RawBlock>, PolicyError> {
    let body = strongroom_sdk::lenient_hcl::parse_body(text).map_err(syntax)?;
    let ctx = hcl::eval::Context::new();
    let mut out = Vec::new();
    for structure in body.into_iter() {
        match structure {
            hcl::Structure::Attribute(attr) if attr.key.as_str() == "name" => {}
            hcl::Structure::Attribute(attr) => {
                return Err(PolicyError::InvalidKey {
                    path: None,
                    key: attr.key.to_string(),
                })
            }
            hcl::Structure::Block(block) => {
                if block.identifier.as_str() != "path" {
                    return Err(PolicyError::InvalidKey {
                        path: None,
                        key: block.identifier.to_string(),
                    });
                }
                let [label] = block.labels.as_slice() else {
                    return Err(syntax("a path block takes exactly one label"));
                };
                let path = label.as_str().to_string();
                let mut attrs = Map::new();
                for inner in block.body.into_iter() {
                    match inner {
                        hcl::Structure::Attribute(attr) => {
                            if !is_literal(&attr.expr) {
                                return Err(syntax(format!(
                                    "path {path:?}: {}: only literal values are allowed (no operators, conditionals, function calls or for expressions)",
                                    attr.key
                                )));
                            }
                            let value = hcl::eval::Evaluate::evaluate(&attr.expr, &ctx)
                                .map_err(|e| syntax(format!("path {path:?}: {e}")))?;
                            let value = serde_json::to_value(value)
                                .map_err(|e| syntax(format!("path {path:?}: {e}")))?;
                            attrs.insert(attr.key.to_string(), value);
                        }
                        hcl::Structure::Block(inner) => {
                            return Err(PolicyError::InvalidKey {
                                path: Some(path),
                                key: inner.identifier.to_string(),
                            })
                        }
                    }
                }
                out.push((path, attrs));
            }
        }
    }
    Ok(out)
}

fn json_blocks(text: &str) -> Result<Vec<RawBlock>, PolicyError> {
    let value: Value = serde_json::from_str(text).map_err(syntax)?;
    let Value::Object(top) = value else {
        return Err(syntax("policy must be a JSON object"));
    };
    let mut out = Vec::new();
    for (key, value) in top {
        match key.as_str() {
            "name" => {}
            "path" => match value {
                // {"path": {"a": {...}, "b": {...}}}
                Value::Object(paths) => push_json_paths(paths, &mut out)?,
                // {"path": [{"a": {...}}, {"b": {...}}]}
                Value::Array(items) => {
                    for item in items {
                        let Value::Object(paths) = item else {
                            return Err(syntax("path entries must be objects"));
                        };
                        push_json_paths(paths, &mut out)?;
                    }
                }
                _ => return Err(syntax("path must be an object")),
            },
            _ => return Err(PolicyError::InvalidKey { path: None, key }),
        }
    }
    Ok(out)
}

fn push_json_paths(paths: Map<String, Value>, out: &mut Vec<RawBlock>) -> Result<(), PolicyError> {
    for (path, rules) in paths {
        let Value::Object(attrs) = rules else {
            return Err(PolicyError::InvalidKey {
                path: Some("path".to_string()),
                key: path,
            });
        };
        out.push((path, attrs));
    }
    Ok(())
}

fn invalid(path: &str, message: impl Into<String>) -> PolicyError {
    PolicyError::InvalidValue {
        path: path.to_string(),
        message: message.into(),
    }
}

fn string_list(path: &str, field: &str, value: &Value) -> Result<Vec<String>, PolicyError> {
    let Value::Array(items) = value else {
        return Err(invalid(path, format!("{field} must be a list of strings")));
    };
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(invalid(path, format!("{field} must be a list of strings"))),
        })
        .collect()
}

fn parameter_map(path: &str, field: &str, value: &Value) -> Result<ParameterMap, PolicyError> {
    let Value::Object(map) = value else {
        return Err(invalid(path, format!("{field} must be a map of lists")));
    };
    let mut out = ParameterMap::new();
    for (key, values) in map {
        let Value::Array(values) = values else {
            return Err(invalid(path, format!("{field} {key:?} must be a list")));
        };
        out.entry(key.to_lowercase())
            .or_default()
            .extend(values.iter().cloned());
    }
    Ok(out)
}

fn wrapping_ttl(
    path: &str,
    field: &'static str,
    value: &Value,
) -> Result<Option<Duration>, PolicyError> {
    duration_from_json(value)
        .map(Some)
        .map_err(|_| PolicyError::InvalidDuration {
            path: path.to_string(),
            field,
            value: match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        })
}

/// The capabilities a legacy `policy = "..."` stands for (checked on bao
/// 2.7.2: read -> list, read; write -> create, delete, list, read, update;
/// sudo -> write + sudo; deny -> deny).
fn legacy_policy(path: &str, value: &Value) -> Result<Capabilities, PolicyError> {
    use Capabilities as C;
    let Value::String(s) = value else {
        return Err(invalid(path, "policy must be a string"));
    };
    let read = C::READ | C::LIST;
    let write = read | C::CREATE | C::UPDATE | C::DELETE;
    match s.as_str() {
        "deny" => Ok(C::DENY),
        "read" => Ok(read),
        "write" => Ok(write),
        "sudo" => Ok(write | C::SUDO),
        _ => Err(PolicyError::InvalidLegacyPolicy {
            path: path.to_string(),
            policy: s.clone(),
        }),
    }
}

fn path_rules(raw_path: &str, attrs: &Map<String, Value>) -> Result<PathRules, PolicyError> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path).to_string();
    if path.contains("+*") {
        return Err(PolicyError::InvalidWildcard { path });
    }
    // As OpenBao, every pattern goes through the template check: a stray
    // `}}` is refused even without `{{`.
    let template = template::Template::parse(&path)
        .map_err(|error| PolicyError::Template {
            path: raw_path.to_string(),
            error,
        })?
        .map(Arc::new);
    let mut rules = PathRules {
        path: path.clone(),
        template,
        ..Default::default()
    };
    for (key, value) in attrs {
        match key.as_str() {
            "capabilities" => {
                for name in string_list(&path, key, value)? {
                    let cap = Capabilities::from_name(&name).ok_or_else(|| {
                        PolicyError::InvalidCapability {
                            path: path.clone(),
                            capability: name.clone(),
                        }
                    })?;
                    rules.capabilities = rules.capabilities | cap;
                }
            }
            "policy" => rules.capabilities = rules.capabilities | legacy_policy(&path, value)?,
            "allowed_parameters" => rules.allowed_parameters = parameter_map(&path, key, value)?,
            "denied_parameters" => rules.denied_parameters = parameter_map(&path, key, value)?,
            "required_parameters" => {
                rules.required_parameters = string_list(&path, key, value)?
                    .into_iter()
                    .map(|k| k.to_lowercase())
                    .collect();
            }
            "min_wrapping_ttl" => {
                rules.min_wrapping_ttl = wrapping_ttl(&path, "min_wrapping_ttl", value)?
            }
            "max_wrapping_ttl" => {
                rules.max_wrapping_ttl = wrapping_ttl(&path, "max_wrapping_ttl", value)?
            }
            // Enterprise MFA in Vault; OpenBao accepts and ignores it.
            "mfa_methods" => {
                string_list(&path, key, value)?;
            }
            "control_group"
            | "expiration"
            | "pagination_limit"
            | "list_scan_response_keys_filter_path"
            | "response_keys_filter_path" => {
                return Err(PolicyError::Unsupported {
                    path,
                    key: key.clone(),
                })
            }
            _ => {
                return Err(PolicyError::InvalidKey {
                    path: Some(path),
                    key: key.clone(),
                })
            }
        }
    }
    if let (Some(min), Some(max)) = (rules.min_wrapping_ttl, rules.max_wrapping_ttl) {
        if max < min && !max.is_zero() {
            return Err(PolicyError::WrappingTtlOrder { path });
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(text: &str) -> String {
        Policy::parse("p", text).unwrap_err().to_string()
    }

    #[test]
    fn hcl1_one_line_blocks_parse_as_in_openbao() {
        let p = Policy::parse(
            "p",
            r#"path "a/*" { capabilities = ["read", "list"]  min_wrapping_ttl = "1s" }"#,
        )
        .unwrap();
        assert_eq!(p.paths.len(), 1);
        assert_eq!(p.paths[0].path, "a/*");
    }

    #[test]
    fn parses_every_path_block_field() {
        let p = Policy::parse(
            "Ops",
            r#"
            path "secret/*" {
              capabilities = ["create", "read", "update", "patch", "delete", "list", "scan", "sudo"]
              allowed_parameters = { "Key" = ["v1", "v2"], "*" = []
}
              denied_parameters = { "bad" = []
}
              required_parameters = ["A"]
              min_wrapping_ttl = "1s"
              max_wrapping_ttl = 90
            }
            path "/sys/x" {
capabilities = ["deny"]
}"#,
        )
        .unwrap();
        assert_eq!(p.name, "ops"); // bao stores E20 as e20
        assert_eq!(p.paths.len(), 2);
        let r = &p.paths[0];
        assert_eq!(r.path, "secret/*");
        assert_eq!(
            r.capabilities.names(),
            ["create", "delete", "list", "patch", "read", "scan", "sudo", "update"]
        );
        assert_eq!(r.allowed_parameters["key"], vec![json!("v1"), json!("v2")]);
        assert!(r.allowed_parameters["*"].is_empty());
        assert!(r.denied_parameters["bad"].is_empty());
        assert_eq!(r.required_parameters, ["a"]);
        assert_eq!(r.min_wrapping_ttl, Some(Duration::from_secs(1)));
        assert_eq!(r.max_wrapping_ttl, Some(Duration::from_secs(90)));
        assert_eq!(p.paths[1].path, "sys/x");
        assert_eq!(p.paths[1].capabilities, Capabilities::DENY);
        assert!(p.raw.contains("secret/*"));
    }

    #[test]
    fn legacy_policy_values_map_like_openbao() {
        // bao token capabilities on x/a: read -> "list, read";
        // write -> "create, delete, list, read, update"; deny -> "deny";
        // sudo -> "create, delete, list, read, sudo, update"
        let cases = [
            ("read", "list read"),
            ("write", "create delete list read update"),
            ("deny", "deny"),
            ("sudo", "create delete list read sudo update"),
        ];
        for (legacy, want) in cases {
            let p =
                Policy::parse("p", &format!("path \"x/*\" {{ policy = \"{legacy}\" }}")).unwrap();
            assert_eq!(p.paths[0].capabilities.names().join(" "), want, "{legacy}");
        }
        // Beside capabilities it adds up (bao: "list, read, update").
        let p = Policy::parse(
            "p",
            r#"path "a" {
capabilities = ["update"]
policy = "read"
}"#,
        )
        .unwrap();
        assert_eq!(p.paths[0].capabilities.names(), ["list", "read", "update"]);
        // bao: * failed to parse policy: path "x/*": path "x/*": invalid policy "list"
        assert_eq!(
            err(r#"path "x/*" { policy = "list" }"#),
            r#"failed to parse policy: path "x/*": invalid policy "list""#
        );
    }

    #[test]
    fn json_accepts_both_shapes() {
        // bao accepted both; j1: b/x -> "create, delete, list, read, update"
        let p = Policy::parse(
            "j",
            r#"  {"name": "j", "path": {"a": {"capabilities": ["read"], "max_wrapping_ttl": 60},
                 "b/*": {"policy": "write"}}}"#,
        )
        .unwrap();
        assert_eq!(p.paths.len(), 2);
        assert_eq!(p.paths[0].max_wrapping_ttl, Some(Duration::from_secs(60)));
        assert!(p.paths[1].capabilities.contains(Capabilities::DELETE));
        let p = Policy::parse(
            "j",
            r#"{"path": [{"a": {"capabilities": ["read"]}}, {"b/*": {"capabilities": ["list"]}}]}"#,
        )
        .unwrap();
        assert_eq!(p.paths[1].path, "b/*");
        assert_eq!(p.paths[1].capabilities, Capabilities::LIST);
    }

    #[test]
    fn repeated_blocks_and_empty_policies_parse() {
        let p = Policy::parse(
            "p",
            "path \"a\" {
capabilities = [\"read\"]\n}\npath \"a\" {
capabilities = [\"list\"]
}",
        )
        .unwrap();
        assert_eq!(p.paths.len(), 2);
        assert!(Policy::parse("p", "").unwrap().paths.is_empty());
        assert!(Policy::parse("p", "name = \"x\"\npath \"a\" {}").is_ok());
    }

    #[test]
    fn every_error_is_one_line_and_names_the_problem() {
        let cases: &[(&str, &str)] = &[
            // HCL1 has no arithmetic; hcl-rs's evaluation of a division by
            // zero tripped a debug assertion (fuzz finding).
            (
                r#"path "a" {
capabilities = ["read"]
max_wrapping_ttl = 2/0
}"#,
                r#"path "a": max_wrapping_ttl: only literal values are allowed"#,
            ),
            (
                r#"path "a" {
capabilities = [true ? "read" : "list"]
}"#,
                r#"path "a": capabilities: only literal values are allowed"#,
            ),
            // An interpolation evaluates its expression as an operation
            // would (fuzz finding, with a division by zero inside).
            (
                r#"path "a" {
capabilities = ["${1/0}"]
}"#,
                r#"path "a": capabilities: only literal values are allowed"#,
            ),
            // bao: invalid capability "reed" / "READ"
            (
                r#"path "a" {
capabilities = ["reed"]
}"#,
                r#"path "a": invalid capability "reed""#,
            ),
            (
                r#"path "a" {
capabilities = ["READ"]
}"#,
                r#"invalid capability "READ""#,
            ),
            (
                r#"path "a" {
capabilities = ["root"]
}"#,
                r#"invalid capability "root""#,
            ),
            // bao: path "a": invalid key "foo"
            (
                r#"path "a" {
capabilities = ["read"]
foo = 1
}"#,
                r#"path "a": invalid key "foo""#,
            ),
            (
                r#"foo "a" {
capabilities = ["read"]
}"#,
                r#"invalid key "foo""#,
            ),
            (
                r#"{"path": {"a": {"bogus": 1}}}"#,
                r#"path "a": invalid key "bogus""#,
            ),
            (r#"{"other": 1}"#, r#"invalid key "other""#),
            // bao: error parsing min_wrapping_ttl: time: invalid duration "bogus"
            (
                r#"path "a" {
min_wrapping_ttl = "bogus"
}"#,
                r#"error parsing min_wrapping_ttl: invalid duration "bogus""#,
            ),
            (
                r#"path "a" { max_wrapping_ttl = true }"#,
                "error parsing max_wrapping_ttl",
            ),
            // bao: max_wrapping_ttl cannot be less than min_wrapping_ttl
            (
                r#"path "a" {
min_wrapping_ttl = "10s"
max_wrapping_ttl = "5s"
}"#,
                "max_wrapping_ttl cannot be less than min_wrapping_ttl",
            ),
            // bao: invalid use of wildcards ('+*' is forbidden)
            (
                r#"path "secret/+*" {
capabilities = ["read"]
}"#,
                "('+*' is forbidden)",
            ),
            // bao: unknown slice type for a string where a list belongs
            (
                r#"path "a" {
capabilities = "read"
}"#,
                "capabilities must be a list of strings",
            ),
            (
                r#"path "a" { allowed_parameters = { "k" = "v" } }"#,
                r#"allowed_parameters "k" must be a list"#,
            ),
            (
                r#"path "a" { required_parameters = "k" }"#,
                "required_parameters must be a list of strings",
            ),
            (
                r#"path "a" { control_group = {} }"#,
                r#""control_group" is not supported"#,
            ),
            // bao: At 2:1: error parsing list, expected comma or list end
            (
                "path \"a\" {
capabilities = [\"read\"",
                "failed to parse policy: ",
            ),
            (r#"{"path": {"#, "failed to parse policy: "),
            (
                r#"path "a" "b" {
capabilities = ["read"]
}"#,
                "exactly one label",
            ),
        ];
        for (text, want) in cases {
            let msg = err(text);
            assert!(msg.starts_with("failed to parse policy: "), "{msg}");
            assert!(msg.contains(want), "{text}: {msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
        assert_eq!(Policy::parse("  ", "").unwrap_err(), PolicyError::EmptyName);
    }
}
