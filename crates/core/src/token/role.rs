//! Token roles (`auth/token/roles`): named templates that `create/:role`
//! issues tokens from. This module owns the role record, its storage in the
//! token mount's own view under `roles/`, the `roles/?` and
//! `roles/{role_name}` paths (list, read, create/update, delete) and the
//! pure policy rules a role imposes on the tokens created against it.
//!
//! Behaviour follows OpenBao (`bao server -dev`, v2.x): field names, merge
//! on update, the deprecated `period` / `explicit_max_ttl` / `bound_cidrs`
//! aliases, validation messages and the exact keys of a read.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::barrier::View;
use crate::framework::{existence, handler, Ctx, Field, FieldType, Path};
use crate::logical::{Operation, Response};
use crate::{Error, Result};

/// Prefix of role entries in the token mount's storage.
const ROLES_PREFIX: &str = "roles/";

/// What a role says about the type of the tokens created against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenType {
    /// Always a service token.
    Service,
    /// Always a batch token.
    Batch,
    /// The request's `type`, else a service token (the default).
    #[default]
    DefaultService,
    /// The request's `type`, else a batch token.
    DefaultBatch,
}

impl TokenType {
    /// The name OpenBao uses (`service`, `batch`, `default-service`,
    /// `default-batch`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Service => "service",
            TokenType::Batch => "batch",
            TokenType::DefaultService => "default-service",
            TokenType::DefaultBatch => "default-batch",
        }
    }

    /// Parses a role's `token_type`. OpenBao refuses `default` here (it is
    /// valid only on `auth/token/create`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "service" => Some(TokenType::Service),
            "batch" => Some(TokenType::Batch),
            "default-service" => Some(TokenType::DefaultService),
            "default-batch" => Some(TokenType::DefaultBatch),
            _ => None,
        }
    }

    /// The token type a create request gets under this role, given the
    /// request's own `type` (possibly empty): `service`/`batch` roles force
    /// theirs; `default-*` roles keep the request's value and fill in their
    /// default when it is empty. The caller validates the result.
    pub fn for_request(self, requested: &str) -> &str {
        match self {
            TokenType::Service => "service",
            TokenType::Batch => "batch",
            TokenType::DefaultService if requested.is_empty() => "service",
            TokenType::DefaultBatch if requested.is_empty() => "batch",
            TokenType::DefaultService | TokenType::DefaultBatch => requested,
        }
    }
}

/// An address or CIDR block a role binds its tokens to, as given (host bits
/// kept: `10.1.2.3/8` stays so). A single-host block prints as the bare
/// address, the way OpenBao echoes `1.2.3.4/32` as `1.2.3.4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BoundCidr {
    addr: IpAddr,
    prefix: u8,
}

impl BoundCidr {
    /// Parses `addr` or `addr/len` (IPv4 or IPv6).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || {
            format!("error parsing address {s:?}: Unable to convert {s:?} to an IPv4 or IPv6 address, or a UNIX Socket")
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(BoundCidr { addr, prefix })
    }

    /// Whether `ip` lies in the block (an IPv4-mapped IPv6 client address
    /// matches an IPv4 block).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `width` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, width: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix.min(width));
    (a >> shift) == (b >> shift)
}

impl fmt::Display for BoundCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

impl TryFrom<String> for BoundCidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        BoundCidr::parse(&s)
    }
}

impl From<BoundCidr> for String {
    fn from(c: BoundCidr) -> String {
        c.to_string()
    }
}

/// A token role as stored under `roles/<name>` in the token mount's view.
///
/// The deprecated `period`, `explicit_max_ttl` and `bound_cidrs` are kept
/// beside their `token_` successors only so that a read echoes what was
/// written, as OpenBao does; the accessors return the effective values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Role {
    name: String,
    allowed_policies: Vec<String>,
    disallowed_policies: Vec<String>,
    allowed_policies_glob: Vec<String>,
    disallowed_policies_glob: Vec<String>,
    orphan: bool,
    renewable: bool,
    path_suffix: String,
    allowed_entity_aliases: Option<Vec<String>>,
    token_bound_cidrs: Vec<BoundCidr>,
    bound_cidrs: Vec<BoundCidr>,
    token_explicit_max_ttl: u64,
    explicit_max_ttl: u64,
    token_period: u64,
    period: u64,
    token_no_default_policy: bool,
    token_type: TokenType,
    token_num_uses: u64,
}

impl Default for Role {
    fn default() -> Self {
        Role {
            name: String::new(),
            allowed_policies: Vec::new(),
            disallowed_policies: Vec::new(),
            allowed_policies_glob: Vec::new(),
            disallowed_policies_glob: Vec::new(),
            orphan: false,
            renewable: true,
            path_suffix: String::new(),
            allowed_entity_aliases: None,
            token_bound_cidrs: Vec::new(),
            bound_cidrs: Vec::new(),
            token_explicit_max_ttl: 0,
            explicit_max_ttl: 0,
            token_period: 0,
            period: 0,
            token_no_default_policy: false,
            token_type: TokenType::default(),
            token_num_uses: 0,
        }
    }
}

/// Whether `name` is a role name OpenBao routes (`\w(([\w-.]+)?\w)?`,
/// ASCII): other names answer 404 "unsupported path".
fn valid_role_name(name: &str) -> bool {
    let b = name.as_bytes();
    let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            word(first) && word(last) && b.iter().all(|c| word(c) || *c == b'-' || *c == b'.')
        }
        _ => false,
    }
}

/// Whether `s` contains a match of OpenBao's unanchored path-suffix rule
/// `\w[\w-.]+\w`: two word characters at least two apart with only word
/// characters, `-` and `.` between them.
fn path_suffix_ok(s: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    s.as_bytes()
        .split(|c| !(word(*c) || *c == b'-' || *c == b'.'))
        .any(|run| {
            let first = run.iter().position(|c| word(*c));
            let last = run.iter().rposition(|c| word(*c));
            matches!((first, last), (Some(f), Some(l)) if l >= f + 2)
        })
}

/// OpenBao's policy-list cleanup: trimmed, lowercased, empties dropped,
/// `default` appended when `add_default`, deduplicated and sorted; a list
/// naming `root` collapses to `["root"]` (and gets no `default`).
pub fn sanitize_policies(policies: &[String], add_default: bool) -> Vec<String> {
    let mut out: Vec<String> = policies
        .iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if out.iter().any(|p| p == "root") {
        return vec!["root".to_string()];
    }
    if add_default {
        out.push("default".to_string());
    }
    out.sort();
    out.dedup();
    out
}

/// Trimmed, lowercased, deduplicated and sorted, empties dropped.
fn dedup_lower(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = items
        .iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Glob matching as OpenBao's policy and alias globs do it: `*` matches any
/// run of characters (including none); everything else is literal.
pub fn glob_match(pattern: &str, subject: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return pattern == subject;
    };
    let rest: Vec<&str> = parts.collect();
    let Some((last, middle)) = rest.split_last() else {
        return pattern == subject;
    };
    let Some(mut tail) = subject.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match tail.find(part) {
            Some(i) => tail = &tail[i + part.len()..],
            None => return false,
        }
    }
    tail.ends_with(last)
}

fn any_glob(patterns: &[String], item: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, item))
}

/// Go's `%q` rendering of a string list (`["a" "b"]`), used verbatim in
/// OpenBao's error messages.
fn go_quoted(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

impl Role {
    /// The role's name (case-sensitive, as written).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether tokens created against the role have no parent.
    pub fn orphan(&self) -> bool {
        self.orphan
    }

    /// Whether such tokens may be renewed (a request cannot turn it on).
    pub fn renewable(&self) -> bool {
        self.renewable
    }

    /// Appended to the token's path (`auth/token/create/<role>/<suffix>`)
    /// when not empty.
    pub fn path_suffix(&self) -> &str {
        &self.path_suffix
    }

    /// The renewal period of created tokens (zero: not periodic).
    pub fn token_period(&self) -> Duration {
        Duration::from_secs(self.token_period)
    }

    /// The explicit maximum TTL of created tokens (zero: none).
    pub fn token_explicit_max_ttl(&self) -> Duration {
        Duration::from_secs(self.token_explicit_max_ttl)
    }

    /// What the role says about the token type.
    pub fn token_type(&self) -> TokenType {
        self.token_type
    }

    /// The use limit of created tokens (0: unlimited). OpenBao applies it
    /// as: a request without `num_uses` gets it, a request asking for more
    /// (or unlimited) is lowered to it.
    pub fn token_num_uses(&self) -> u64 {
        self.token_num_uses
    }

    /// Whether `default` is left out of roles' policy sets (see
    /// [`Role::resolve_policies`]).
    pub fn token_no_default_policy(&self) -> bool {
        self.token_no_default_policy
    }

    /// The blocks created tokens are bound to (empty: unbound).
    pub fn bound_cidrs(&self) -> &[BoundCidr] {
        &self.token_bound_cidrs
    }

    /// The entity aliases `entity_alias` may name (globs), if set.
    pub fn allowed_entity_aliases(&self) -> Option<&[String]> {
        self.allowed_entity_aliases.as_deref()
    }

    /// The allowed policies (sanitised).
    pub fn allowed_policies(&self) -> &[String] {
        &self.allowed_policies
    }

    /// The disallowed policies (lowercased, sorted).
    pub fn disallowed_policies(&self) -> &[String] {
        &self.disallowed_policies
    }

    /// Whether the role's policy lists decide a token's policies. When it
    /// does not (no allowed/disallowed list or glob), OpenBao creates the
    /// token with the plain `create` rules: requested policies must be a
    /// subset of the parent's unless the caller has sudo, and the role's
    /// `token_no_default_policy` is ignored (verified against bao 2.x).
    pub fn governs_policies(&self) -> bool {
        !(self.allowed_policies.is_empty()
            && self.disallowed_policies.is_empty()
            && self.allowed_policies_glob.is_empty()
            && self.disallowed_policies_glob.is_empty())
    }

    /// The policies of a token created against this role, by OpenBao's
    /// rules for a role that [governs policies](Role::governs_policies).
    /// There is **no parent-subset check** on this path: a role with
    /// allowed or disallowed lists may grant policies its caller lacks
    /// (verified: a `p1` token creates a `p2` token through a role with
    /// `allowed_policies_glob = "p*"`).
    ///
    /// - `default` is added unless the request says `no_default_policy`,
    ///   the role says `token_no_default_policy`, or `default` is in (or
    ///   glob-matches) the disallowed lists;
    /// - with allowed policies or globs: an empty request gets the allowed
    ///   policies; otherwise every requested policy must be allowed, match
    ///   an allowed glob, or be the added `default`, else 400
    ///   `token policies ([..]) must be subset of the role's allowed
    ///   policies ([..]) or glob policies ([..])`;
    /// - any resulting policy in the disallowed list or matching a
    ///   disallowed glob is a 400 `token policy "x" is disallowed by this
    ///   role`;
    /// - the result is sorted and deduplicated; `no_default_policy` on the
    ///   request finally removes `default`.
    ///
    /// For a role with only disallowed lists and a request naming no
    /// policies, OpenBao starts from the parent's policies: use
    /// [`Role::resolve_policies_with_parent`], which handles that and the
    /// non-governing case. The caller still refuses `root` without a root
    /// parent and non-assignable policies, as for any create.
    pub fn resolve_policies(
        &self,
        requested: &[String],
        no_default_policy_requested: bool,
    ) -> Result<Vec<String>> {
        self.resolve(requested, None, no_default_policy_requested)
    }

    /// [`Role::resolve_policies`] with the parent token's policies at hand:
    /// `None` when the role does not govern policies (the plain create
    /// rules apply, parent-subset check included), else the role's answer.
    pub fn resolve_policies_with_parent(
        &self,
        requested: &[String],
        parent_policies: &[String],
        no_default_policy_requested: bool,
    ) -> Result<Option<Vec<String>>> {
        if !self.governs_policies() {
            return Ok(None);
        }
        self.resolve(
            requested,
            Some(parent_policies),
            no_default_policy_requested,
        )
        .map(Some)
    }

    fn resolve(
        &self,
        requested: &[String],
        parent: Option<&[String]>,
        no_default_policy_requested: bool,
    ) -> Result<Vec<String>> {
        let add_default = !no_default_policy_requested
            && !self.token_no_default_policy
            && !self.disallowed_policies.iter().any(|p| p == "default")
            && !any_glob(&self.disallowed_policies_glob, "default");
        let mut policies = if requested.is_empty() {
            Vec::new()
        } else {
            sanitize_policies(requested, add_default)
        };
        if !self.allowed_policies.is_empty() || !self.allowed_policies_glob.is_empty() {
            let allowed = sanitize_policies(&self.allowed_policies, add_default);
            if policies.is_empty() {
                policies = allowed;
            } else {
                let globs = sanitize_policies(&self.allowed_policies_glob, false);
                let outside = policies
                    .iter()
                    .any(|p| !allowed.contains(p) && !any_glob(&globs, p));
                if outside {
                    return Err(Error::bad_request(format!(
                        "token policies ({}) must be subset of the role's allowed policies ({}) or glob policies ({})",
                        go_quoted(&policies),
                        go_quoted(&allowed),
                        go_quoted(&globs)
                    )));
                }
            }
        } else if policies.is_empty() {
            if let Some(parent) = parent {
                policies = sanitize_policies(parent, add_default);
            }
        }
        if let Some(p) = policies.iter().find(|p| {
            self.disallowed_policies.contains(p) || any_glob(&self.disallowed_policies_glob, p)
        }) {
            return Err(Error::bad_request(format!(
                "token policy {p:?} is disallowed by this role"
            )));
        }
        let mut out = sanitize_policies(&policies, false);
        if no_default_policy_requested {
            out.retain(|p| p != "default");
        }
        Ok(out)
    }

    /// The role as a read answers it: exactly OpenBao's keys, with
    /// `bound_cidrs`, `token_bound_cidrs` and `token_num_uses` only when set.
    pub fn to_data(&self) -> Map<String, Value> {
        let cidrs = |c: &[BoundCidr]| -> Vec<String> { c.iter().map(|c| c.to_string()).collect() };
        let mut m = Map::new();
        m.insert(
            "allowed_entity_aliases".into(),
            json!(self.allowed_entity_aliases),
        );
        m.insert("allowed_policies".into(), json!(self.allowed_policies));
        m.insert(
            "allowed_policies_glob".into(),
            json!(self.allowed_policies_glob),
        );
        if !self.bound_cidrs.is_empty() {
            m.insert("bound_cidrs".into(), json!(cidrs(&self.bound_cidrs)));
        }
        m.insert(
            "disallowed_policies".into(),
            json!(self.disallowed_policies),
        );
        m.insert(
            "disallowed_policies_glob".into(),
            json!(self.disallowed_policies_glob),
        );
        m.insert("explicit_max_ttl".into(), json!(self.explicit_max_ttl));
        m.insert("name".into(), json!(self.name));
        m.insert("orphan".into(), json!(self.orphan));
        m.insert("path_suffix".into(), json!(self.path_suffix));
        m.insert("period".into(), json!(self.period));
        m.insert("renewable".into(), json!(self.renewable));
        if !self.token_bound_cidrs.is_empty() {
            m.insert(
                "token_bound_cidrs".into(),
                json!(cidrs(&self.token_bound_cidrs)),
            );
        }
        m.insert(
            "token_explicit_max_ttl".into(),
            json!(self.token_explicit_max_ttl),
        );
        m.insert(
            "token_no_default_policy".into(),
            json!(self.token_no_default_policy),
        );
        if self.token_num_uses > 0 {
            m.insert("token_num_uses".into(), json!(self.token_num_uses));
        }
        m.insert("token_period".into(), json!(self.token_period));
        m.insert("token_type".into(), json!(self.token_type.as_str()));
        m
    }
}

/// Loads role `name` from the token mount's storage (`roles/<name>`).
/// A name OpenBao would not route cannot exist: `Ok(None)`.
pub async fn load(storage: &View, name: &str) -> Result<Option<Role>> {
    if !valid_role_name(name) {
        return Ok(None);
    }
    Ok(storage
        .get_json::<Role>(&format!("{ROLES_PREFIX}{name}"))
        .await?)
}

/// The role names in the token mount's storage, sorted.
pub async fn list(storage: &View) -> Result<Vec<String>> {
    Ok(storage.list(ROLES_PREFIX).await?)
}

/// Whether the request gives `name` a value (null counts as not given).
fn given(ctx: &Ctx, name: &str) -> bool {
    ctx.fields.raw().get(name).is_some_and(|v| !v.is_null())
}

fn secs(ctx: &Ctx, name: &str) -> Result<Option<u64>> {
    if !given(ctx, name) {
        return Ok(None);
    }
    Ok(ctx.fields.get_duration(name)?.map(|d| d.as_secs()))
}

fn strings(ctx: &Ctx, name: &str) -> Result<Option<Vec<String>>> {
    if !given(ctx, name) {
        return Ok(None);
    }
    ctx.fields.get_strings(name)
}

fn parse_cidrs(items: &[String], context: &str) -> Result<Vec<BoundCidr>> {
    items
        .iter()
        .map(|s| BoundCidr::parse(s).map_err(|e| Error::bad_request(format!("{context}: {e}"))))
        .collect()
}

fn role_name(ctx: &Ctx) -> Result<String> {
    let name = ctx.fields.str_or_empty("role_name")?;
    if !valid_role_name(&name) {
        return Err(Error::UnsupportedPath);
    }
    Ok(name)
}

/// Applies a write's fields to `role` (the stored role, or a default one
/// for a create), in OpenBao's order of validation. Returns the warnings.
fn apply(role: &mut Role, ctx: &Ctx) -> Result<Vec<String>> {
    let f = &ctx.fields;
    let mut warnings = Vec::new();
    if given(ctx, "orphan") {
        role.orphan = f.get_bool("orphan")?.unwrap_or(false);
    }
    if given(ctx, "renewable") {
        role.renewable = f.get_bool("renewable")?.unwrap_or(true);
    }
    if given(ctx, "path_suffix") {
        let suffix = f.str_or_empty("path_suffix")?;
        if !suffix.is_empty() && !path_suffix_ok(&suffix) {
            return Err(Error::bad_request(
                "given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w",
            ));
        }
        role.path_suffix = suffix;
    }
    if role.path_suffix.contains("..") {
        return Err(Error::bad_request(
            "error registering path suffix: path cannot contain parent references",
        ));
    }
    if let Some(v) = strings(ctx, "allowed_policies")? {
        role.allowed_policies = sanitize_policies(&v, false);
    }
    if let Some(v) = strings(ctx, "disallowed_policies")? {
        role.disallowed_policies = dedup_lower(&v);
    }
    if let Some(v) = strings(ctx, "allowed_policies_glob")? {
        role.allowed_policies_glob = sanitize_policies(&v, false);
    }
    if let Some(v) = strings(ctx, "disallowed_policies_glob")? {
        role.disallowed_policies_glob = dedup_lower(&v);
    }

    // A null token_type is refused rather than ignored, as in OpenBao.
    let token_type = match f.raw().get("token_type") {
        None => None,
        Some(Value::Null) => return Err(Error::bad_request("Invalid 'token_type' value: null")),
        Some(_) => Some(f.str_or_empty("token_type")?),
    };

    // The token_ fields (OpenBao's shared token parameters).
    let token_cidrs = match strings(ctx, "token_bound_cidrs")? {
        Some(v) => Some(parse_cidrs(&v, "error parsing role fields")?),
        None => None,
    };
    let token_emt = secs(ctx, "token_explicit_max_ttl")?;
    let token_period = secs(ctx, "token_period")?;
    if given(ctx, "token_no_default_policy") {
        role.token_no_default_policy = f.get_bool("token_no_default_policy")?.unwrap_or(false);
    }
    let num_uses = match given(ctx, "token_num_uses") {
        true => match f.get_int("token_num_uses")?.unwrap_or(0) {
            n if n < 0 => {
                return Err(Error::bad_request(
                    "error parsing role fields: 'token_num_uses' cannot be negative",
                ))
            }
            n => Some(n.unsigned_abs()),
        },
        false => None,
    };
    if let Some(t) = token_type {
        role.token_type = TokenType::parse(&t)
            .ok_or_else(|| Error::bad_request(format!("invalid 'token_type' value {t:?}")))?;
    }

    // The deprecated aliases: a token_ field wins (with a warning if both
    // are given) and clears the alias; an alias alone sets both.
    let both = |new: &str, old: &str| {
        format!("Both '{new}' and deprecated '{old}' value supplied, ignoring the deprecated value")
    };
    match token_period {
        Some(p) => {
            if given(ctx, "period") {
                warnings.push(both("token_period", "period"));
            }
            role.token_period = p;
            role.period = 0;
        }
        None => {
            if let Some(p) = secs(ctx, "period")? {
                role.period = p;
                role.token_period = p;
            }
        }
    }
    match token_cidrs {
        Some(c) => {
            if given(ctx, "bound_cidrs") {
                warnings.push(both("token_bound_cidrs", "bound_cidrs"));
            }
            role.token_bound_cidrs = c;
            role.bound_cidrs = Vec::new();
        }
        None => {
            if let Some(v) = strings(ctx, "bound_cidrs")? {
                let c = parse_cidrs(&v, "error parsing bound_cidrs")?;
                role.bound_cidrs = c.clone();
                role.token_bound_cidrs = c;
            }
        }
    }
    let final_emt = match token_emt {
        Some(t) => {
            if given(ctx, "explicit_max_ttl") {
                warnings.push(both("token_explicit_max_ttl", "explicit_max_ttl"));
            }
            role.token_explicit_max_ttl = t;
            role.explicit_max_ttl = 0;
            t
        }
        None => {
            if let Some(t) = secs(ctx, "explicit_max_ttl")? {
                role.explicit_max_ttl = t;
                role.token_explicit_max_ttl = t;
            }
            role.explicit_max_ttl
        }
    };
    let max = ctx.mount.max_lease_ttl.as_secs();
    if final_emt != 0 && max != 0 && final_emt > max {
        warnings.push(format!(
            "Given explicit max TTL of {final_emt} is greater than system/mount allowed value of {max} seconds; until this is fixed attempting to create tokens against this role will result in an error"
        ));
    }
    if let Some(n) = num_uses {
        role.token_num_uses = n;
    }

    if role.token_type == TokenType::Batch {
        let refuse = |what: &str| {
            Err(Error::bad_request(format!(
                "'token_type' cannot be 'batch' when role is set to generate {what}"
            )))
        };
        if !role.orphan {
            return refuse("non-orphan tokens");
        }
        if role.period != 0 || role.token_period != 0 {
            return refuse("periodic tokens");
        }
        if role.renewable {
            return refuse("renewable tokens");
        }
        if role.explicit_max_ttl != 0 || role.token_explicit_max_ttl != 0 {
            return refuse("tokens with an explicit max TTL");
        }
    }

    if let Some(v) = strings(ctx, "allowed_entity_aliases")? {
        role.allowed_entity_aliases = Some(dedup_lower(&v));
    }
    Ok(warnings)
}

async fn write_role(ctx: Ctx) -> Result<Response> {
    let name = role_name(&ctx)?;
    let mut role = load(&ctx.storage, &name).await?.unwrap_or_else(|| Role {
        name: name.clone(),
        ..Role::default()
    });
    let warnings = apply(&mut role, &ctx)?;
    ctx.storage
        .put_json(&format!("{ROLES_PREFIX}{name}"), &role)
        .await?;
    Ok(Response {
        warnings,
        ..Response::empty()
    })
}

async fn read_role(ctx: Ctx) -> Result<Response> {
    let name = role_name(&ctx)?;
    match load(&ctx.storage, &name).await? {
        Some(role) => Ok(Response::data(role.to_data())),
        None => Err(Error::NotFound(None)),
    }
}

async fn delete_role(ctx: Ctx) -> Result<Response> {
    let name = role_name(&ctx)?;
    ctx.storage.delete(&format!("{ROLES_PREFIX}{name}")).await?;
    Ok(Response::empty())
}

async fn list_roles(ctx: Ctx) -> Result<Response> {
    let keys = list(&ctx.storage).await?;
    if keys.is_empty() {
        return Err(Error::NotFound(None));
    }
    let mut data = Map::new();
    data.insert("keys".into(), json!(keys));
    Ok(Response::data(data))
}

async fn role_exists(ctx: Ctx) -> Result<bool> {
    let name = role_name(&ctx)?;
    Ok(load(&ctx.storage, &name).await?.is_some())
}

fn role_fields() -> Vec<Field> {
    use FieldType::{Bool, CommaStringSlice, DurationSecond, Int};
    vec![
        Field::new("role_name", FieldType::String, "Name of the role."),
        Field::new("allowed_policies", CommaStringSlice, "Policies tokens of this role may have, instead of a subset of the calling token's; the default when a request names none."),
        Field::new("disallowed_policies", CommaStringSlice, "Policies tokens of this role may not have."),
        Field::new("allowed_policies_glob", CommaStringSlice, "Globs of policy names tokens of this role may have."),
        Field::new("disallowed_policies_glob", CommaStringSlice, "Globs of policy names tokens of this role may not have."),
        Field::new("orphan", Bool, "Whether tokens of this role have no parent."),
        Field::new("renewable", Bool, "Whether tokens of this role can be renewed.").default(json!(true)),
        Field::new("path_suffix", FieldType::String, "Appended to the tokens' path, for revoke-prefix; must match \\w[\\w-.]+\\w."),
        Field::new("allowed_entity_aliases", CommaStringSlice, "Entity aliases (globs allowed) tokens of this role may be created for."),
        Field::new("token_bound_cidrs", CommaStringSlice, "Addresses or CIDR blocks the tokens can be used from."),
        Field::new("token_explicit_max_ttl", DurationSecond, "Hard limit on the tokens' life, beyond any renewal."),
        Field::new("token_no_default_policy", Bool, "Do not add the default policy to the tokens."),
        Field::new("token_period", DurationSecond, "Make the tokens periodic, renewed to this period."),
        Field::new("token_type", FieldType::String, "service, batch, default-service or default-batch.").default(json!("default-service")),
        Field::new("token_num_uses", Int, "Maximum uses of each token (0: unlimited)."),
        Field::new("period", DurationSecond, "Deprecated: use token_period."),
        Field::new("explicit_max_ttl", DurationSecond, "Deprecated: use token_explicit_max_ttl."),
        Field::new("bound_cidrs", CommaStringSlice, "Deprecated: use token_bound_cidrs."),
    ]
}

/// The role paths of the token backend: `roles/?` (list) and
/// `roles/{role_name}` (read, create/update with an existence check,
/// delete). Handlers use only the mount's storage, never the store.
pub fn paths() -> Vec<Path<super::backend::TokenBackend>> {
    paths_for()
}

fn paths_for<S: Send + Sync + 'static>() -> Vec<Path<S>> {
    vec![
        Path::new("roles/?")
            .op(
                Operation::List,
                handler(|_: Arc<S>, ctx| list_roles(ctx)),
                "List the token roles.",
            )
            .help(
                "This endpoint lists configured roles.",
                "Lists the names of the token roles, which auth/token/create/<role> creates tokens against.",
            ),
        Path::new("roles/{role_name}")
            .fields(role_fields())
            .op(Operation::Read, handler(|_: Arc<S>, ctx| read_role(ctx)), "Read a token role.")
            .op(Operation::Create, handler(|_: Arc<S>, ctx| write_role(ctx)), "Create a token role.")
            .op(Operation::Update, handler(|_: Arc<S>, ctx| write_role(ctx)), "Create or update a token role.")
            .op(Operation::Delete, handler(|_: Arc<S>, ctx| delete_role(ctx)), "Delete a token role.")
            .exists(existence(|_: Arc<S>, ctx| role_exists(ctx)))
            .help(
                "This endpoint allows creating, reading, and deleting roles.",
                "A token role fixes properties of the tokens created with auth/token/create/<role>: the policies they may or may not have, whether they are orphans, renewable or periodic, their type, use limit, explicit max TTL and bound CIDRs. Writing an existing role changes only the fields given.",
            ),
    ]
}

#[cfg(test)]
mod tests {}
