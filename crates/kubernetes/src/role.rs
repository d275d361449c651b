//! Roles: `role/:name` (create, update, read, delete) and the lists at
//! `role` and `roles`. Owns the stored role record, OpenBao's validation
//! of the bindings (`*` rules, alias source), and the rendering of a role
//! on read. The token parameters (new `token_*` names and the older `ttl`,
//! `max_ttl`, `period`, `policies`) are the core's
//! [`TokenParams`] under [`Legacy::KUBERNETES`].

use std::sync::Arc;
use strongroom_sdk::glob::glob_match;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_sdk::framework::Ctx;
use strongroom_sdk::logical::Response;
use strongroom_sdk::login::{Legacy, TokenParams};
use strongroom_sdk::{Error, Result};

use crate::state::Kubernetes;

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
    /// The token parameters (stored flattened: `token_ttl`, ...,
    /// `legacy_policies`, `legacy_ttl`, `legacy_max_ttl`, `legacy_period`).
    #[serde(flatten)]
    pub params: TokenParams,
}

impl Default for RoleEntry {
    fn default() -> Self {
        RoleEntry {
            bound_service_account_names: Vec::new(),
            bound_service_account_namespaces: Vec::new(),
            audience: String::new(),
            alias_name_source: ALIAS_SOURCES[0].into(),
            params: TokenParams {
                // Stored as `[]` when unset, as it always was.
                token_bound_cidrs: Some(Vec::new()),
                ..TokenParams::new(Legacy::KUBERNETES)
            },
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
        self.params.render(&mut d, Legacy::KUBERNETES);
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

/// The role name of a `role/:name` request.
#[derive(Deserialize)]
pub(crate) struct RolePath {
    name: String,
}

/// The validated, lowercased role name of the request path (OpenBao's
/// `\w([\w.-]*\w)?`, else 404).
fn name_of(s: &Kubernetes, ctx: &Ctx) -> Result<String> {
    let RolePath { name } = ctx.decode()?;
    s.roles.name(&name)
}

/// The method's own fields of a role write (the token parameters are
/// [`TokenParams::apply`]'s).
#[derive(Deserialize)]
pub(crate) struct RoleWrite {
    bound_service_account_names: Option<Vec<String>>,
    bound_service_account_namespaces: Option<Vec<String>>,
    audience: Option<String>,
    alias_name_source: Option<String>,
}

/// `LIST role` and `LIST roles`.
pub async fn list(s: S, ctx: Ctx) -> Result<Response> {
    s.roles.list(&ctx.storage).await
}

/// Existence check of `role/:name`.
pub async fn exists(s: S, ctx: Ctx) -> Result<bool> {
    let name = name_of(&s, &ctx)?;
    s.roles.exists(&ctx.storage, &name).await
}

/// `GET role/:name`.
pub async fn read(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let role = s
        .roles
        .read(&ctx.storage, &name)
        .await?
        .ok_or(Error::NotFound(None))?;
    Ok(Response::data(role.render()))
}

/// `DELETE role/:name`.
pub async fn delete(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let _guard = s.roles.lock(&name).await;
    s.roles.delete(&ctx.storage, &name).await?;
    Ok(Response::empty())
}

/// `POST role/:name`: creates the role or updates the given parameters.
/// Nothing is stored unless every check passes.
pub async fn write(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let _guard = s.roles.lock(&name).await;
    let mut role = s.roles.read(&ctx.storage, &name).await?.unwrap_or_default();
    // `alias_name_source` is declared with its allowed values: another is
    // OpenBao's 400 "invalid alias_name_source, must be one of: ...".
    let w: RoleWrite = ctx.decode()?;
    if let Some(v) = w.bound_service_account_names {
        role.bound_service_account_names = v;
    }
    if let Some(v) = w.bound_service_account_namespaces {
        role.bound_service_account_namespaces = v;
    }
    if let Some(v) = w.audience {
        role.audience = v;
    }
    if let Some(v) = w.alias_name_source {
        role.alias_name_source = v;
    }
    check_bindings(&role)?;
    let warnings = role.params.apply(&ctx.fields, Legacy::KUBERNETES)?;
    s.roles.write(&ctx.storage, &name, &role).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_names_match_globs() {
        let r = role(&["app-*", "exact"], &["team-*"]);
        assert!(r.check_binding("team-a", "app-web").is_ok());
        assert!(r.check_binding("team-a", "exact").is_ok());
        assert!(matches!(
            r.check_binding("team-a", "other"),
            Err(Error::Forbidden(m)) if m == "service account name not authorized"
        ));
        assert!(matches!(
            r.check_binding("prod", "app-web"),
            Err(Error::Forbidden(m)) if m == "namespace not authorized"
        ));
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
    fn roles_stored_before_token_params_load_and_store_unchanged() {
        // A role as the method has always stored it (field order included).
        let stored = r#"{"bound_service_account_names":["app"],"bound_service_account_namespaces":["prod"],"audience":"vault","alias_name_source":"serviceaccount_name","token_ttl":3600,"token_max_ttl":7200,"token_policies":["dev"],"token_bound_cidrs":[],"token_explicit_max_ttl":0,"token_no_default_policy":false,"token_num_uses":0,"token_period":0,"token_type":"default","token_strictly_bind_ip":false,"legacy_policies":true,"legacy_ttl":true,"legacy_max_ttl":false,"legacy_period":false}"#;
        let role: RoleEntry = serde_json::from_str(stored).unwrap();
        assert_eq!(role.bound_service_account_names, vec!["app"]);
        assert_eq!(role.params.token_ttl, 3600);
        assert_eq!(role.params.token_policies, vec!["dev"]);
        let d = role.render();
        assert_eq!(d["ttl"], 3600);
        assert_eq!(d["policies"], serde_json::json!(["dev"]));
        assert!(!d.contains_key("max_ttl"));
        assert_eq!(serde_json::to_string(&role).unwrap(), stored);
        // A fresh role stores what a fresh role always stored.
        assert_eq!(
            serde_json::to_string(&RoleEntry::default()).unwrap(),
            r#"{"bound_service_account_names":[],"bound_service_account_namespaces":[],"audience":"","alias_name_source":"serviceaccount_uid","token_ttl":0,"token_max_ttl":0,"token_policies":[],"token_bound_cidrs":[],"token_explicit_max_ttl":0,"token_no_default_policy":false,"token_num_uses":0,"token_period":0,"token_type":"default","token_strictly_bind_ip":false,"legacy_policies":false,"legacy_ttl":false,"legacy_max_ttl":false,"legacy_period":false}"#
        );
    }

    #[test]
    fn role_names_are_routed_and_lowercased() {
        let state = Kubernetes::default();
        assert_eq!(state.roles.name("My-Role.1").unwrap(), "my-role.1");
        for bad in ["", "-a", "a b", "a/b"] {
            assert_eq!(state.roles.name(bad).unwrap_err().status(), 404, "{bad:?}");
        }
    }
}
