//! Roles: `role/:name` (create, update, read, delete) and the lists at
//! `role` and `roles`. Owns the stored role record, OpenBao's validation
//! of the bindings (`*` rules, alias source) and of the token parameters
//! (new `token_*` names and the older `ttl`, `max_ttl`, `period`,
//! `policies`), and the rendering of a role on read.

use std::sync::Arc;
use strongroom_core::token::role::glob_match;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_core::framework::{is_generic_name, list_entries, Ctx, FieldData};
use strongroom_core::logical::Response;
use strongroom_core::token::role::BoundCidr;
use strongroom_core::{Error, Result};

use crate::state::{Kubernetes, ROLE_PREFIX};

type S = Arc<Kubernetes>;

/// The alias name sources OpenBao accepts.
pub const ALIAS_SOURCES: [&str; 2] = ["serviceaccount_uid", "serviceaccount_name"];

/// A role as stored under `role/<lowercased name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleEntry {
    /// Service-account names allowed (`*`: any).
    pub bound_service_account_names: Vec<String>,
    /// Namespaces allowed (`*`: any).
    pub bound_service_account_namespaces: Vec<String>,
    /// The audience the JWT must carry (empty: not checked).
    pub audience: String,
    /// `serviceaccount_uid` or `serviceaccount_name`.
    pub alias_name_source: String,
    /// Issued tokens' TTL in seconds.
    pub token_ttl: u64,
    /// Issued tokens' max TTL in seconds.
    pub token_max_ttl: u64,
    /// Issued tokens' policies.
    pub token_policies: Vec<String>,
    /// Issued tokens' bound CIDRs.
    pub token_bound_cidrs: Vec<String>,
    /// Issued tokens' explicit max TTL in seconds.
    pub token_explicit_max_ttl: u64,
    /// Leave `default` out of the issued tokens' policies.
    pub token_no_default_policy: bool,
    /// Issued tokens' use limit.
    pub token_num_uses: u64,
    /// Issued tokens' period in seconds.
    pub token_period: u64,
    /// `service`, `batch` or `default`.
    pub token_type: String,
    /// Accepted and echoed, as OpenBao does.
    pub token_strictly_bind_ip: bool,
    /// The older `policies` was used: reads echo it.
    pub legacy_policies: bool,
    /// The older `ttl` was used: reads echo it.
    pub legacy_ttl: bool,
    /// The older `max_ttl` was used: reads echo it.
    pub legacy_max_ttl: bool,
    /// The older `period` was used: reads echo it.
    pub legacy_period: bool,
}

impl Default for RoleEntry {
    fn default() -> Self {
        RoleEntry {
            bound_service_account_names: Vec::new(),
            bound_service_account_namespaces: Vec::new(),
            audience: String::new(),
            alias_name_source: ALIAS_SOURCES[0].into(),
            token_ttl: 0,
            token_max_ttl: 0,
            token_policies: Vec::new(),
            token_bound_cidrs: Vec::new(),
            token_explicit_max_ttl: 0,
            token_no_default_policy: false,
            token_num_uses: 0,
            token_period: 0,
            token_type: "default".into(),
            token_strictly_bind_ip: false,
            legacy_policies: false,
            legacy_ttl: false,
            legacy_max_ttl: false,
            legacy_period: false,
        }
    }
}

impl RoleEntry {
    /// The role as `GET role/:name` shows it (keys in OpenBao's order).
    pub fn render(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert(
            "alias_name_source".into(),
            self.alias_name_source.clone().into(),
        );
        if !self.audience.is_empty() {
            d.insert("audience".into(), self.audience.clone().into());
        }
        d.insert(
            "bound_service_account_names".into(),
            self.bound_service_account_names.clone().into(),
        );
        d.insert("bound_service_account_namespace_selector".into(), "".into());
        d.insert(
            "bound_service_account_namespaces".into(),
            self.bound_service_account_namespaces.clone().into(),
        );
        if self.legacy_max_ttl {
            d.insert("max_ttl".into(), self.token_max_ttl.into());
        }
        if self.legacy_period {
            d.insert("period".into(), self.token_period.into());
        }
        if self.legacy_policies {
            d.insert("policies".into(), self.token_policies.clone().into());
        }
        d.insert(
            "token_bound_cidrs".into(),
            self.token_bound_cidrs.clone().into(),
        );
        d.insert(
            "token_explicit_max_ttl".into(),
            self.token_explicit_max_ttl.into(),
        );
        d.insert("token_max_ttl".into(), self.token_max_ttl.into());
        d.insert(
            "token_no_default_policy".into(),
            self.token_no_default_policy.into(),
        );
        d.insert("token_num_uses".into(), self.token_num_uses.into());
        d.insert("token_period".into(), self.token_period.into());
        d.insert("token_policies".into(), self.token_policies.clone().into());
        d.insert(
            "token_strictly_bind_ip".into(),
            self.token_strictly_bind_ip.into(),
        );
        d.insert("token_ttl".into(), self.token_ttl.into());
        d.insert("token_type".into(), self.token_type.clone().into());
        if self.legacy_ttl {
            d.insert("ttl".into(), self.token_ttl.into());
        }
        d
    }

    /// Whether the role admits the service account `namespace`/`name`;
    /// the error is OpenBao's 403 naming what did not match.
    pub fn check_binding(&self, namespace: &str, name: &str) -> Result<()> {
        // `*` alone allows all; a `*` inside a value is a glob (`app-*`),
        // as Vault's Kubernetes method matches bound names. Kubernetes
        // names cannot contain `*`, so a glob never matches by accident.
        let allowed = |list: &[String], v: &str| {
            list.iter()
                .any(|x| x == "*" || x == v || (x.contains('*') && glob_match(x, v)))
        };
        if !allowed(&self.bound_service_account_namespaces, namespace) {
            return Err(Error::Forbidden("namespace not authorized".into()));
        }
        if !allowed(&self.bound_service_account_names, name) {
            return Err(Error::Forbidden(
                "service account name not authorized".into(),
            ));
        }
        Ok(())
    }
}

/// Checks a role name from the path (OpenBao's `\w([\w.-]*\w)?`, else 404)
/// and returns it lowercased, as the method stores roles.
pub fn role_name(raw: &str) -> Result<String> {
    if is_generic_name(raw) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(Error::UnsupportedPath)
    }
}

/// Reads a role by (lowercased) name.
pub async fn read_role(ctx: &Ctx, name: &str) -> Result<Option<RoleEntry>> {
    Ok(ctx
        .storage
        .get_json(&format!("{ROLE_PREFIX}{}", name.to_ascii_lowercase()))
        .await?)
}

fn name_of(ctx: &Ctx) -> Result<String> {
    role_name(&ctx.fields.str_or_empty("name")?)
}

/// `LIST role` and `LIST roles`.
pub async fn list(_s: S, ctx: Ctx) -> Result<Response> {
    list_entries(&ctx.storage, ROLE_PREFIX).await
}

/// Existence check of `role/:name`.
pub async fn exists(_s: S, ctx: Ctx) -> Result<bool> {
    let name = name_of(&ctx)?;
    Ok(read_role(&ctx, &name).await?.is_some())
}

/// `GET role/:name`.
pub async fn read(_s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&ctx)?;
    let role = read_role(&ctx, &name).await?.ok_or(Error::NotFound(None))?;
    Ok(Response::data(role.render()))
}

/// `DELETE role/:name`.
pub async fn delete(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&ctx)?;
    let _guard = s.roles.lock().await;
    ctx.storage.delete(&format!("{ROLE_PREFIX}{name}")).await?;
    Ok(Response::empty())
}

/// `POST role/:name`: creates the role or updates the given parameters.
/// Nothing is stored unless every check passes.
pub async fn write(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&ctx)?;
    let _guard = s.roles.lock().await;
    let mut role = read_role(&ctx, &name).await?.unwrap_or_default();
    let f = &ctx.fields;
    if let Some(v) = f.get_strings("bound_service_account_names")? {
        role.bound_service_account_names = v;
    }
    if let Some(v) = f.get_strings("bound_service_account_namespaces")? {
        role.bound_service_account_namespaces = v;
    }
    if let Some(v) = f.get_str("audience")? {
        role.audience = v;
    }
    if let Some(v) = f.get_str("alias_name_source")? {
        if !ALIAS_SOURCES.contains(&v.as_str()) {
            return Err(Error::bad_request(format!(
                "invalid alias_name_source, must be one of: {}",
                ALIAS_SOURCES.join(", ")
            )));
        }
        role.alias_name_source = v;
    }
    check_bindings(&role)?;
    let warnings = apply_token_fields(&mut role, f)?;
    ctx.storage
        .put_json(&format!("{ROLE_PREFIX}{name}"), &role)
        .await?;
    let mut resp = Response::empty();
    resp.warnings = warnings;
    Ok(resp)
}

/// OpenBao's rules on the bindings, plus the rule of the API document that
/// a role cannot admit every service account of every namespace.
fn check_bindings(role: &RoleEntry) -> Result<()> {
    let names = &role.bound_service_account_names;
    let namespaces = &role.bound_service_account_namespaces;
    if names.is_empty() {
        return Err(Error::bad_request(
            "\"bound_service_account_names\" can not be empty",
        ));
    }
    if namespaces.is_empty() {
        return Err(Error::bad_request(
            "\"bound_service_account_namespaces\" can not be empty if \"bound_service_account_namespace_selector\" is not set",
        ));
    }
    let star = |l: &[String]| l.iter().any(|x| x == "*");
    if (star(names) && names.len() > 1) || (star(namespaces) && namespaces.len() > 1) {
        return Err(Error::bad_request("can not mix \"*\" with values"));
    }
    if star(names) && star(namespaces) {
        return Err(Error::bad_request(
            "\"bound_service_account_names\" and \"bound_service_account_namespaces\" can not both be \"*\"",
        ));
    }
    Ok(())
}

fn non_negative(v: i64, msg: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::bad_request(msg))
}

/// Applies the token parameters the request gives (the `token_*` names
/// win over the older ones, which reads then echo), with OpenBao's checks.
pub fn apply_token_fields(role: &mut RoleEntry, f: &FieldData) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    if let Some(cidrs) = f.get_strings("token_bound_cidrs")? {
        role.token_bound_cidrs = cidrs
            .iter()
            .map(|c| BoundCidr::parse(c).map(|b| b.to_string()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Error::BadRequest)?;
    }
    if let Some(d) = f.get_duration("token_explicit_max_ttl")? {
        role.token_explicit_max_ttl = d.as_secs();
    }
    if let Some(n) = f.get_int("token_num_uses")? {
        role.token_num_uses = non_negative(n, "'token_num_uses' cannot be negative")?;
    }
    if let Some(t) = f.get_str("token_type")? {
        role.token_type = match t.as_str() {
            "" | "default" => "default".into(),
            "service" | "batch" => t,
            "default-service" | "default-batch" => {
                let plain = t.trim_start_matches("default-").to_string();
                warnings.push(format!("{t} has no useful meaning; adjusting to {plain}"));
                plain
            }
            other => {
                return Err(Error::bad_request(format!(
                    "invalid 'token_type' value {other:?}"
                )))
            }
        };
    }
    if let Some(b) = f.get_bool("token_no_default_policy")? {
        role.token_no_default_policy = b;
    }
    if let Some(b) = f.get_bool("token_strictly_bind_ip")? {
        role.token_strictly_bind_ip = b;
    }
    // (new name, old name, value, legacy flag) for the four renamed fields.
    let pick = |new: &str, old: &str| -> Result<(Option<std::time::Duration>, bool)> {
        match f.get_duration(new)? {
            Some(d) => Ok((Some(d), false)),
            None => Ok((f.get_duration(old)?, true)),
        }
    };
    if let (Some(d), legacy) = pick("token_ttl", "ttl")? {
        role.token_ttl = d.as_secs();
        role.legacy_ttl = legacy && !d.is_zero();
    }
    if let (Some(d), legacy) = pick("token_max_ttl", "max_ttl")? {
        role.token_max_ttl = d.as_secs();
        role.legacy_max_ttl = legacy && !d.is_zero();
    }
    if let (Some(d), legacy) = pick("token_period", "period")? {
        role.token_period = d.as_secs();
        role.legacy_period = legacy && !d.is_zero();
    }
    if let Some(p) = f.get_strings("token_policies")? {
        role.token_policies = p;
        role.legacy_policies = false;
    } else if let Some(p) = f.get_strings("policies")? {
        role.legacy_policies = !p.is_empty();
        role.token_policies = p;
    }
    if role.token_max_ttl > 0 && role.token_ttl > role.token_max_ttl {
        return Err(Error::bad_request(
            "token ttl should not be greater than token max ttl",
        ));
    }
    if role.token_type == "batch" {
        if role.token_period > 0 {
            return Err(Error::bad_request(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens",
            ));
        }
        if role.token_num_uses > 0 {
            return Err(Error::bad_request(
                "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
            ));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_names_match_globs() {
        let r = role(&["app-*", "exact"], &["team-*"]);
        assert!(r.check_binding("team-a", "app-web").is_ok());
        assert!(r.check_binding("team-a", "exact").is_ok());
        assert!(r.check_binding("team-a", "other").is_err());
        assert!(r.check_binding("prod", "app-web").is_err());
    }

    fn role(names: &[&str], namespaces: &[&str]) -> RoleEntry {
        RoleEntry {
            bound_service_account_names: names.iter().map(|s| s.to_string()).collect(),
            bound_service_account_namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn bindings_refuse_empty_mixed_and_double_star() {
        assert!(check_bindings(&role(&["a"], &["*"])).is_ok());
        assert!(check_bindings(&role(&["*"], &["ns"])).is_ok());
        for (names, nss) in [
            (&[][..], &["ns"][..]),
            (&["a"][..], &[][..]),
            (&["*", "a"][..], &["ns"][..]),
            (&["*"][..], &["*"][..]),
        ] {
            let err = check_bindings(&role(names, nss)).unwrap_err();
            assert_eq!(err.status(), 400, "{names:?} {nss:?}");
        }
    }

    #[test]
    fn binding_check_names_what_failed() {
        let r = role(&["app"], &["default", "prod"]);
        assert!(r.check_binding("prod", "app").is_ok());
        assert_eq!(
            r.check_binding("dev", "app").unwrap_err().to_string(),
            "namespace not authorized"
        );
        let err = r.check_binding("default", "other").unwrap_err();
        assert_eq!(err.status(), 403);
        assert_eq!(err.to_string(), "service account name not authorized");
        assert!(role(&["*"], &["ns"])
            .check_binding("ns", "anything")
            .is_ok());
    }

    #[test]
    fn role_names_are_routed_and_lowercased() {
        assert_eq!(role_name("My-Role.1").unwrap(), "my-role.1");
        for bad in ["", "-a", "a b", "a/b"] {
            assert_eq!(role_name(bad).unwrap_err().status(), 404, "{bad:?}");
        }
    }
}
