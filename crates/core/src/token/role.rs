//! Token roles (`auth/token/roles`): named templates that `create/:role`
//! issues tokens from. This module owns the role record, its storage in the
//! token mount's own view under `roles/`, the `roles/?` and
//! `roles/{role_name}` paths (list, read, create/update, delete) and the
//! pure policy rules a role imposes on the tokens created against it.
//!
//! Behaviour follows OpenBao (`bao server -dev`, v2.x): field names, merge
//! on update, the deprecated `period` / `explicit_max_ttl` / `bound_cidrs`
//! aliases, validation messages and the exact keys of a read.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use strongroom_sdk::cidr::BoundCidr;
use strongroom_sdk::framework::{
    double_option, existence, handler, Ctx, Field, FieldData, FieldType, Path,
};
use strongroom_sdk::glob::glob_match;
use strongroom_sdk::logical::{Operation, Response};
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};

/// Prefix of role entries in the token mount's storage.
const ROLES_PREFIX: &str = "roles/";

pub use strongroom_sdk::token_type::TokenType;

/// Parses a role's `token_type`: OpenBao refuses `default` here (it is
/// valid only on `auth/token/create`); a role's default is
/// `default-service`.
pub fn parse_role_type(s: &str) -> Option<TokenType> {
    TokenType::parse(s).filter(|t| *t != TokenType::Default)
}

/// The token type a create request gets under a role of type `role`,
/// given the request's own `type` (possibly empty): `service`/`batch`
/// roles force theirs; `default-*` roles keep the request's value and fill
/// in their default when it is empty. The caller validates the result.
pub fn type_for_request(role: TokenType, requested: &str) -> &str {
    match role {
        TokenType::Service => "service",
        TokenType::Batch => "batch",
        TokenType::DefaultService if requested.is_empty() => "service",
        TokenType::DefaultBatch if requested.is_empty() => "batch",
        // A stored role never holds `default` (refused on write); it
        // behaves as the role default, `default-service`.
        TokenType::Default if requested.is_empty() => "service",
        TokenType::DefaultService | TokenType::DefaultBatch | TokenType::Default => requested,
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
    legacy_bound_cidrs: Vec<BoundCidr>,
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
            legacy_bound_cidrs: Vec::new(),
            token_explicit_max_ttl: 0,
            explicit_max_ttl: 0,
            token_period: 0,
            period: 0,
            token_no_default_policy: false,
            token_type: TokenType::DefaultService,
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
        if !self.legacy_bound_cidrs.is_empty() {
            m.insert("bound_cidrs".into(), json!(cidrs(&self.legacy_bound_cidrs)));
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

/// The name of `roles/{role_name}`.
#[derive(Deserialize)]
struct RoleNameParam {
    role_name: String,
}

/// A role write, decoded with [`FieldData::decode_given`]: a field is
/// `Some` only when the request gives it a non-null value (declared
/// defaults do not apply), so an update changes only what it gives.
#[derive(Deserialize)]
struct RoleWrite {
    orphan: Option<bool>,
    renewable: Option<bool>,
    path_suffix: Option<String>,
    allowed_policies: Option<Vec<String>>,
    disallowed_policies: Option<Vec<String>>,
    allowed_policies_glob: Option<Vec<String>>,
    disallowed_policies_glob: Option<Vec<String>>,
    /// Nullable: an explicit null is refused rather than ignored.
    #[serde(default, deserialize_with = "double_option::deserialize")]
    token_type: Option<Option<String>>,
    token_bound_cidrs: Option<Vec<String>>,
    token_explicit_max_ttl: Option<u64>,
    token_period: Option<u64>,
    token_no_default_policy: Option<bool>,
    token_num_uses: Option<i64>,
    period: Option<u64>,
    bound_cidrs: Option<Vec<String>>,
    explicit_max_ttl: Option<u64>,
    allowed_entity_aliases: Option<Vec<String>>,
}

fn parse_cidrs(items: &[String], context: &str) -> Result<Vec<BoundCidr>> {
    items
        .iter()
        .map(|s| BoundCidr::parse(s).map_err(|e| Error::bad_request(format!("{context}: {e}"))))
        .collect()
}

fn role_name(ctx: &Ctx) -> Result<String> {
    let RoleNameParam { role_name: name } = ctx.decode()?;
    if !valid_role_name(&name) {
        return Err(Error::UnsupportedPath);
    }
    Ok(name)
}

/// Applies a write's fields to `role` (the stored role, or a default one
/// for a create), in OpenBao's order of validation; `max_lease_ttl` is the
/// token mount's, for the explicit-max-TTL warning. Returns the warnings.
fn apply(role: &mut Role, f: &FieldData, max_lease_ttl: Duration) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let w: RoleWrite = f.decode_given()?;
    if let Some(orphan) = w.orphan {
        role.orphan = orphan;
    }
    if let Some(renewable) = w.renewable {
        role.renewable = renewable;
    }
    if let Some(suffix) = w.path_suffix {
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
    if let Some(v) = w.allowed_policies {
        role.allowed_policies = sanitize_policies(&v, false);
    }
    if let Some(v) = w.disallowed_policies {
        role.disallowed_policies = dedup_lower(&v);
    }
    if let Some(v) = w.allowed_policies_glob {
        role.allowed_policies_glob = sanitize_policies(&v, false);
    }
    if let Some(v) = w.disallowed_policies_glob {
        role.disallowed_policies_glob = dedup_lower(&v);
    }

    // A null token_type is refused rather than ignored, as in OpenBao.
    let token_type = match w.token_type {
        None => None,
        Some(None) => return Err(Error::bad_request("Invalid 'token_type' value: null")),
        Some(Some(t)) => Some(t),
    };

    // The token_ fields (OpenBao's shared token parameters).
    let token_cidrs = match w.token_bound_cidrs {
        Some(v) => Some(parse_cidrs(&v, "error parsing role fields")?),
        None => None,
    };
    let token_emt = w.token_explicit_max_ttl;
    let token_period = w.token_period;
    if let Some(ndp) = w.token_no_default_policy {
        role.token_no_default_policy = ndp;
    }
    let num_uses = match w.token_num_uses {
        Some(n) if n < 0 => {
            return Err(Error::bad_request(
                "error parsing role fields: 'token_num_uses' cannot be negative",
            ))
        }
        Some(n) => Some(n.unsigned_abs()),
        None => None,
    };
    if let Some(t) = token_type {
        role.token_type = parse_role_type(&t)
            .ok_or_else(|| Error::bad_request(format!("invalid 'token_type' value {t:?}")))?;
    }

    // The deprecated aliases: a token_ field wins (with a warning if both
    // are given) and clears the alias; an alias alone sets both.
    let both = |new: &str, old: &str| {
        format!("Both '{new}' and deprecated '{old}' value supplied, ignoring the deprecated value")
    };
    match token_period {
        Some(p) => {
            if w.period.is_some() {
                warnings.push(both("token_period", "period"));
            }
            role.token_period = p;
            role.period = 0;
        }
        None => {
            if let Some(p) = w.period {
                role.period = p;
                role.token_period = p;
            }
        }
    }
    match token_cidrs {
        Some(c) => {
            if w.bound_cidrs.is_some() {
                warnings.push(both("token_bound_cidrs", "bound_cidrs"));
            }
            role.token_bound_cidrs = c;
            role.legacy_bound_cidrs = Vec::new();
        }
        None => {
            if let Some(v) = w.bound_cidrs {
                let c = parse_cidrs(&v, "error parsing bound_cidrs")?;
                role.legacy_bound_cidrs = c.clone();
                role.token_bound_cidrs = c;
            }
        }
    }
    let final_emt = match token_emt {
        Some(t) => {
            if w.explicit_max_ttl.is_some() {
                warnings.push(both("token_explicit_max_ttl", "explicit_max_ttl"));
            }
            role.token_explicit_max_ttl = t;
            role.explicit_max_ttl = 0;
            t
        }
        None => {
            if let Some(t) = w.explicit_max_ttl {
                role.explicit_max_ttl = t;
                role.token_explicit_max_ttl = t;
            }
            role.explicit_max_ttl
        }
    };
    let max = max_lease_ttl.as_secs();
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

    if let Some(v) = w.allowed_entity_aliases {
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
    let warnings = apply(&mut role, &ctx.fields, ctx.mount.max_lease_ttl)?;
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
        Field::new("token_type", FieldType::String, "service, batch, default-service or default-batch.").default(json!("default-service")).nullable(),
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
            .decodes::<RoleNameParam>()
            .decodes::<RoleWrite>()
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
mod tests {
    use super::*;
    use strongroom_sdk::framework::{Backend, BackendRequest, LogicalBackend, MountContext};
    use strongroom_sdk::logical::Request;

    /// The token backend's role paths over a fresh, unsealed barrier.
    struct Harness {
        backend: Backend<()>,
        view: View,
        mount: Arc<MountContext>,
    }

    impl Harness {
        async fn new() -> Self {
            Harness {
                backend: Backend::new(Arc::new(()), paths_for::<()>(), "token"),
                view: crate::test_util::unsealed_view().await,
                mount: Arc::new(MountContext {
                    path: "auth/token/".into(),
                    kind: "token".into(),
                    max_lease_ttl: Duration::from_secs(768 * 3600),
                    default_lease_ttl: Duration::from_secs(768 * 3600),
                    ..Default::default()
                }),
            }
        }

        fn breq(&self, op: Operation, path: &str, data: Value) -> BackendRequest {
            let Value::Object(data) = data else {
                panic!("data must be an object")
            };
            BackendRequest::new(
                Request::new(op, path).with_data(data),
                self.view.clone(),
                self.mount.clone(),
            )
        }

        async fn call(&self, op: Operation, path: &str, data: Value) -> Result<Response> {
            self.backend.handle(self.breq(op, path, data)).await
        }

        /// A POST as the core routes it: create or update per the
        /// existence check.
        async fn write(&self, name: &str, data: Value) -> Result<Response> {
            let path = format!("roles/{name}");
            let exists = self
                .backend
                .exists(&self.breq(Operation::Update, &path, data.clone()))
                .await?;
            let op = if exists == Some(true) {
                Operation::Update
            } else {
                Operation::Create
            };
            self.call(op, &path, data).await
        }

        async fn read(&self, name: &str) -> Result<Value> {
            let resp = self
                .call(Operation::Read, &format!("roles/{name}"), json!({}))
                .await?;
            Ok(Value::Object(resp.data.unwrap()))
        }

        async fn write_err(&self, name: &str, data: Value) -> String {
            let err = self.write(name, data).await.unwrap_err();
            assert_eq!(err.status(), 400, "{err}");
            err.to_string()
        }
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn new_role_reads_with_openbao_defaults() {
        let h = Harness::new().await;
        assert!(h.write("r1", json!({})).await.unwrap().is_empty());
        // bao: GET auth/token/roles/r1 after an empty POST.
        assert_eq!(
            h.read("r1").await.unwrap(),
            json!({"allowed_entity_aliases": null, "allowed_policies": [],
                "allowed_policies_glob": [], "disallowed_policies": [],
                "disallowed_policies_glob": [], "explicit_max_ttl": 0, "name": "r1",
                "orphan": false, "path_suffix": "", "period": 0, "renewable": true,
                "token_explicit_max_ttl": 0, "token_no_default_policy": false,
                "token_period": 0, "token_type": "default-service"})
        );
        let role = load(&h.view, "r1").await.unwrap().unwrap();
        assert!(role.renewable() && !role.orphan());
        assert_eq!(role.token_type(), TokenType::DefaultService);
        assert!(!role.governs_policies());
    }

    #[tokio::test]
    async fn every_field_is_parsed_and_echoed() {
        let h = Harness::new().await;
        h.write(
            "r2",
            json!({"allowed_policies": "B, a ,c,a", "disallowed_policies": ["X"],
                "allowed_policies_glob": "g*", "disallowed_policies_glob": "bad*",
                "orphan": true, "renewable": false, "path_suffix": "sfx",
                "allowed_entity_aliases": "E1, e1 ,b",
                "token_bound_cidrs": "10.0.0.0/8,127.0.0.1,1.2.3.4/32",
                "token_explicit_max_ttl": "1h", "token_no_default_policy": true,
                "token_period": "30m", "token_type": "service", "token_num_uses": 3}),
        )
        .await
        .unwrap();
        assert_eq!(
            h.read("r2").await.unwrap(),
            json!({"allowed_entity_aliases": ["b", "e1"], "allowed_policies": ["a", "b", "c"],
                "allowed_policies_glob": ["g*"], "disallowed_policies": ["x"],
                "disallowed_policies_glob": ["bad*"], "explicit_max_ttl": 0, "name": "r2",
                "orphan": true, "path_suffix": "sfx", "period": 0, "renewable": false,
                "token_bound_cidrs": ["10.0.0.0/8", "127.0.0.1", "1.2.3.4"],
                "token_explicit_max_ttl": 3600, "token_no_default_policy": true,
                "token_num_uses": 3, "token_period": 1800, "token_type": "service"})
        );
        let role = load(&h.view, "r2").await.unwrap().unwrap();
        assert_eq!(role.token_period(), Duration::from_secs(1800));
        assert_eq!(role.token_explicit_max_ttl(), Duration::from_secs(3600));
        assert_eq!(role.token_num_uses(), 3);
        assert_eq!(role.path_suffix(), "sfx");
        assert_eq!(role.bound_cidrs().len(), 3);
    }

    #[tokio::test]
    async fn updates_keep_fields_not_given() {
        let h = Harness::new().await;
        h.write(
            "r",
            json!({"allowed_policies": "p1", "orphan": true, "token_num_uses": 2}),
        )
        .await
        .unwrap();
        h.write("r", json!({"renewable": false})).await.unwrap();
        let v = h.read("r").await.unwrap();
        assert_eq!(v["allowed_policies"], json!(["p1"]));
        assert_eq!(v["orphan"], json!(true));
        assert_eq!(v["token_num_uses"], json!(2));
        assert_eq!(v["renewable"], json!(false));
        // Clearing: empty list, zero uses (the key then disappears).
        h.write(
            "r",
            json!({"allowed_policies": "", "token_num_uses": 0, "allowed_entity_aliases": ""}),
        )
        .await
        .unwrap();
        let v = h.read("r").await.unwrap();
        assert_eq!(v["allowed_policies"], json!([]));
        assert_eq!(v["allowed_entity_aliases"], json!([]));
        assert!(v.get("token_num_uses").is_none());
    }

    #[tokio::test]
    async fn deprecated_aliases_set_both_and_token_fields_win() {
        let h = Harness::new().await;
        h.write(
            "r",
            json!({"period": "1h", "explicit_max_ttl": 60, "bound_cidrs": ["1.2.3.4/32"]}),
        )
        .await
        .unwrap();
        let v = h.read("r").await.unwrap();
        assert_eq!(
            (v["period"].clone(), v["token_period"].clone()),
            (json!(3600), json!(3600))
        );
        assert_eq!(v["explicit_max_ttl"], json!(60));
        assert_eq!(v["token_explicit_max_ttl"], json!(60));
        assert_eq!(v["bound_cidrs"], json!(["1.2.3.4"]));
        assert_eq!(v["token_bound_cidrs"], json!(["1.2.3.4"]));
        // A token_ field clears its alias; the others stay.
        h.write("r", json!({"token_period": 10, "token_bound_cidrs": ""}))
            .await
            .unwrap();
        let v = h.read("r").await.unwrap();
        assert_eq!(
            (v["period"].clone(), v["token_period"].clone()),
            (json!(0), json!(10))
        );
        assert!(v.get("bound_cidrs").is_none() && v.get("token_bound_cidrs").is_none());
        assert_eq!(v["explicit_max_ttl"], json!(60));
        // Both given: the alias is ignored, with OpenBao's warning.
        let resp = h
            .write(
                "r",
                json!({"token_explicit_max_ttl": 5, "explicit_max_ttl": 7}),
            )
            .await
            .unwrap();
        assert_eq!(
            resp.warnings,
            ["Both 'token_explicit_max_ttl' and deprecated 'explicit_max_ttl' value supplied, ignoring the deprecated value"]
        );
        let v = h.read("r").await.unwrap();
        assert_eq!(
            (
                v["explicit_max_ttl"].clone(),
                v["token_explicit_max_ttl"].clone()
            ),
            (json!(0), json!(5))
        );
    }

    #[tokio::test]
    async fn explicit_max_ttl_above_mount_max_warns() {
        let h = Harness::new().await;
        let resp = h
            .write("r", json!({"token_explicit_max_ttl": 3_000_000}))
            .await
            .unwrap();
        assert_eq!(
            resp.warnings,
            ["Given explicit max TTL of 3000000 is greater than system/mount allowed value of 2764800 seconds; until this is fixed attempting to create tokens against this role will result in an error"]
        );
        assert!(h
            .write("r", json!({"token_explicit_max_ttl": 2_764_800}))
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn invalid_values_are_refused_and_nothing_is_stored() {
        let h = Harness::new().await;
        let cases = [
            (json!({"token_type": "bogus"}), "invalid 'token_type' value \"bogus\""),
            (json!({"token_type": "default"}), "invalid 'token_type' value \"default\""),
            (json!({"token_type": ""}), "invalid 'token_type' value \"\""),
            (json!({"token_type": null}), "Invalid 'token_type' value: null"),
            (json!({"token_num_uses": -1}), "error parsing role fields: 'token_num_uses' cannot be negative"),
            (json!({"token_bound_cidrs": "foo"}), "error parsing role fields: error parsing address \"foo\": Unable to convert \"foo\" to an IPv4 or IPv6 address, or a UNIX Socket"),
            (json!({"bound_cidrs": "foo"}), "error parsing bound_cidrs: error parsing address \"foo\": Unable to convert \"foo\" to an IPv4 or IPv6 address, or a UNIX Socket"),
            (json!({"path_suffix": ".."}), "given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w"),
            (json!({"path_suffix": "ab"}), "given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w"),
            (json!({"path_suffix": "a..b"}), "error registering path suffix: path cannot contain parent references"),
            (json!({"path_suffix": "abc/../d"}), "error registering path suffix: path cannot contain parent references"),
            (json!({"token_type": "batch"}), "'token_type' cannot be 'batch' when role is set to generate non-orphan tokens"),
            (json!({"token_type": "batch", "orphan": true}), "'token_type' cannot be 'batch' when role is set to generate renewable tokens"),
            (json!({"token_type": "batch", "orphan": true, "renewable": false, "period": 3}), "'token_type' cannot be 'batch' when role is set to generate periodic tokens"),
            (json!({"token_type": "batch", "orphan": true, "renewable": false, "token_explicit_max_ttl": 3}), "'token_type' cannot be 'batch' when role is set to generate tokens with an explicit max TTL"),
        ];
        for (data, want) in cases {
            assert_eq!(h.write_err("bad", data.clone()).await, want, "{data}");
        }
        assert!(load(&h.view, "bad").await.unwrap().is_none());
        // Batch is fine for an orphan, non-renewable role.
        h.write(
            "b",
            json!({"token_type": "batch", "orphan": true, "renewable": false}),
        )
        .await
        .unwrap();
        assert_eq!(
            load(&h.view, "b").await.unwrap().unwrap().token_type(),
            TokenType::Batch
        );
        // ... and stays enforced on later updates.
        assert_eq!(
            h.write_err("b", json!({"renewable": true})).await,
            "'token_type' cannot be 'batch' when role is set to generate renewable tokens"
        );
    }

    #[tokio::test]
    async fn path_suffix_follows_openbaos_unanchored_rule() {
        let h = Harness::new().await;
        for ok in ["ok-x.y", "a.b", "a/bcd", "-abc-", ""] {
            h.write("r", json!({"path_suffix": ok})).await.unwrap();
            assert_eq!(h.read("r").await.unwrap()["path_suffix"], json!(ok));
        }
        for bad in ["a", "ab", "a/b", "a b", "-ab", "héé"] {
            assert!(h
                .write_err("r", json!({"path_suffix": bad}))
                .await
                .starts_with("given role path suffix"));
        }
    }

    #[tokio::test]
    async fn list_read_delete_and_names() {
        let h = Harness::new().await;
        let err = h
            .call(Operation::List, "roles/", json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(None)));
        for name in ["zeta", "UPPER", "a.b", "a"] {
            h.write(name, json!({})).await.unwrap();
        }
        let resp = h.call(Operation::List, "roles", json!({})).await.unwrap();
        assert_eq!(
            resp.data.unwrap()["keys"],
            json!(["UPPER", "a", "a.b", "zeta"])
        );
        // Names are case-sensitive.
        assert!(matches!(
            h.read("upper").await.unwrap_err(),
            Error::NotFound(None)
        ));
        // Delete answers 204, present or not.
        assert!(h
            .call(Operation::Delete, "roles/zeta", json!({}))
            .await
            .unwrap()
            .is_empty());
        assert!(h
            .call(Operation::Delete, "roles/zeta", json!({}))
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            h.read("zeta").await.unwrap_err(),
            Error::NotFound(None)
        ));
        // Names OpenBao does not route are 404 unsupported path.
        for bad in ["-a", "a-", ".."] {
            let err = h.write(bad, json!({})).await.unwrap_err();
            assert!(matches!(err, Error::UnsupportedPath), "{bad}: {err}");
        }
        assert!(load(&h.view, "..").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn existence_check_decides_create_vs_update() {
        let h = Harness::new().await;
        let probe = || h.breq(Operation::Update, "roles/r", json!({}));
        assert_eq!(h.backend.exists(&probe()).await.unwrap(), Some(false));
        h.write("r", json!({})).await.unwrap();
        assert_eq!(h.backend.exists(&probe()).await.unwrap(), Some(true));
    }

    fn role(data: Value) -> Role {
        let Value::Object(m) = data else { panic!() };
        let mut out = Role::default();
        let fields = FieldData::new(m, Default::default(), Arc::from(role_fields()));
        apply(&mut out, &fields, Duration::ZERO).unwrap();
        out
    }

    fn resolve(r: &Role, requested: &[&str], ndp: bool) -> Result<Vec<String>, String> {
        r.resolve_policies(&strs(requested), ndp)
            .map_err(|e| e.to_string())
    }

    // Every expectation below was observed on `bao server -dev` 2.x with
    // a root caller (auth/token/create/<role>).
    #[test]
    fn allowed_policies_decide_and_bound_the_request() {
        let a = role(json!({"allowed_policies": "p1"}));
        assert_eq!(resolve(&a, &[], false).unwrap(), ["default", "p1"]);
        assert_eq!(resolve(&a, &["p1"], false).unwrap(), ["default", "p1"]);
        assert_eq!(
            resolve(&a, &[" P1 ", "p1", ""], false).unwrap(),
            ["default", "p1"]
        );
        assert_eq!(resolve(&a, &["default"], false).unwrap(), ["default"]);
        assert_eq!(resolve(&a, &[], true).unwrap(), ["p1"]);
        assert_eq!(
            resolve(&a, &["p2"], false).unwrap_err(),
            r#"token policies (["default" "p2"]) must be subset of the role's allowed policies (["default" "p1"]) or glob policies ([])"#
        );
        assert_eq!(
            resolve(&a, &["root"], false).unwrap_err(),
            r#"token policies (["root"]) must be subset of the role's allowed policies (["default" "p1"]) or glob policies ([])"#
        );
        // no_default_policy on the request: an explicit "default" is no
        // longer covered by the allowed set.
        assert_eq!(
            resolve(&a, &["p1", "default"], true).unwrap_err(),
            r#"token policies (["default" "p1"]) must be subset of the role's allowed policies (["p1"]) or glob policies ([])"#
        );
    }

    #[test]
    fn allowed_globs_match_like_openbao() {
        let g = role(json!({"allowed_policies_glob": "g*"}));
        assert_eq!(resolve(&g, &[], false).unwrap(), ["default"]);
        assert_eq!(
            resolve(&g, &["g1", "gx"], false).unwrap(),
            ["default", "g1", "gx"]
        );
        assert_eq!(
            resolve(&g, &["p1"], false).unwrap_err(),
            r#"token policies (["default" "p1"]) must be subset of the role's allowed policies (["default"]) or glob policies (["g*"])"#
        );
        let m = role(json!({"allowed_policies_glob": "a*b*c"}));
        assert_eq!(
            resolve(&m, &["aXbYc"], false).unwrap(),
            ["axbyc", "default"]
        );
        for bad in ["ab", "ac", "abcX"] {
            let err = resolve(&m, &[bad], false).expect_err(bad);
            assert!(
                err.contains("must be subset of the role's allowed policies"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn disallowed_policies_and_globs_refuse() {
        let d = role(json!({"disallowed_policies": "p2"}));
        assert_eq!(
            resolve(&d, &["p1", "p2"], false).unwrap_err(),
            r#"token policy "p2" is disallowed by this role"#
        );
        assert_eq!(resolve(&d, &["p1"], false).unwrap(), ["default", "p1"]);
        let dg = role(json!({"disallowed_policies_glob": "p*"}));
        assert_eq!(
            resolve(&dg, &["g1", "p2"], false).unwrap_err(),
            r#"token policy "p2" is disallowed by this role"#
        );
        // "default" both allowed and disallowed: refused.
        let ad = role(json!({"allowed_policies": "p1,default", "disallowed_policies": "default"}));
        assert_eq!(
            resolve(&ad, &[], false).unwrap_err(),
            r#"token policy "default" is disallowed by this role"#
        );
    }

    #[test]
    fn default_policy_is_withheld_when_the_role_says_so() {
        // Disallowing "default" (by name or glob) stops it being added.
        let dd = role(json!({"allowed_policies": "p1", "disallowed_policies": "default"}));
        assert_eq!(resolve(&dd, &[], false).unwrap(), ["p1"]);
        let err = resolve(&dd, &["default"], false).expect_err("default is disallowed");
        assert!(err.contains("default"), "{err}");
        let dgd = role(json!({"allowed_policies": "p1", "disallowed_policies_glob": "def*"}));
        assert_eq!(resolve(&dgd, &[], false).unwrap(), ["p1"]);
        let nd = role(json!({"allowed_policies": "p1", "token_no_default_policy": true}));
        assert_eq!(resolve(&nd, &[], false).unwrap(), ["p1"]);
        assert_eq!(
            resolve(&nd, &["default"], false).unwrap_err(),
            r#"token policies (["default"]) must be subset of the role's allowed policies (["p1"]) or glob policies ([])"#
        );
    }

    #[test]
    fn parent_policies_matter_only_for_disallowed_only_roles() {
        let parent = strs(&["p1"]);
        // Only disallowed lists: an empty request starts from the parent,
        // and no parent-subset check applies to a named request.
        let d = role(json!({"disallowed_policies": "zzz"}));
        assert_eq!(
            d.resolve_policies_with_parent(&[], &parent, false).unwrap(),
            Some(strs(&["default", "p1"]))
        );
        assert_eq!(
            d.resolve_policies_with_parent(&strs(&["g1"]), &parent, false)
                .unwrap(),
            Some(strs(&["default", "g1"]))
        );
        // A root parent yields root alone.
        assert_eq!(
            d.resolve_policies_with_parent(&[], &strs(&["root"]), false)
                .unwrap(),
            Some(strs(&["root"]))
        );
        // Allowed lists ignore the parent.
        let gg = role(json!({"allowed_policies_glob": "p*"}));
        assert_eq!(
            gg.resolve_policies_with_parent(&strs(&["p2"]), &parent, false)
                .unwrap(),
            Some(strs(&["default", "p2"]))
        );
        // A role without lists leaves the decision to the plain rules.
        let plain = role(json!({"token_no_default_policy": true}));
        assert_eq!(
            plain
                .resolve_policies_with_parent(&[], &parent, false)
                .unwrap(),
            None
        );
    }

    #[test]
    fn sanitize_collapses_root_and_sorts() {
        assert_eq!(
            sanitize_policies(&strs(&["B", " a", "b", ""]), true),
            ["a", "b", "default"]
        );
        assert_eq!(sanitize_policies(&strs(&["root", "b"]), true), ["root"]);
        assert_eq!(sanitize_policies(&[], true), ["default"]);
        assert!(sanitize_policies(&[], false).is_empty());
    }

    #[test]
    fn glob_semantics() {
        assert!(glob_match("*", ""));
        assert!(glob_match("g*", "g"));
        assert!(glob_match("*x", "abx"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(!glob_match("a*a", "a"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn cidrs_parse_print_and_match() {
        let show = |s: &str| BoundCidr::parse(s).map(|c| c.to_string());
        assert_eq!(show("1.2.3.4/32").unwrap(), "1.2.3.4");
        assert_eq!(show(" 10.1.2.3/8").unwrap(), "10.1.2.3/8");
        assert_eq!(show("fe80::/10").unwrap(), "fe80::/10");
        assert_eq!(show("2001:db8::1/128").unwrap(), "2001:db8::1");
        for bad in [
            "foo",
            "10.0.0.0/33",
            "1.2.3.400/8",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "::1/129",
        ] {
            let err = BoundCidr::parse(bad).expect_err(bad);
            assert!(err.starts_with("error parsing address"), "{bad}: {err}");
        }
        let net = BoundCidr::parse("10.1.2.3/8").unwrap();
        assert!(net.contains("10.200.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let host = BoundCidr::parse("127.0.0.1").unwrap();
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        assert!(BoundCidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        let v6 = BoundCidr::parse("fe80::/10").unwrap();
        assert!(v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains("fec0::1".parse().unwrap()));
        // Stored as strings, read back equal.
        let json = serde_json::to_string(&vec![net, host]).unwrap();
        assert_eq!(json, r#"["10.1.2.3/8","127.0.0.1"]"#);
        assert_eq!(
            serde_json::from_str::<Vec<BoundCidr>>(&json).unwrap(),
            vec![net, host]
        );
    }

    #[test]
    fn token_type_for_request() {
        assert_eq!(type_for_request(TokenType::Service, "batch"), "service");
        assert_eq!(type_for_request(TokenType::Batch, ""), "batch");
        assert_eq!(type_for_request(TokenType::DefaultService, ""), "service");
        assert_eq!(type_for_request(TokenType::DefaultBatch, ""), "batch");
        assert_eq!(
            type_for_request(TokenType::DefaultBatch, "service"),
            "service"
        );
    }
}
