//! Roles: `role/:name` (create, update, read, delete), the lists at `role`
//! and `roles`, and `role/:name/service-accounts` (add/remove). Owns the
//! stored role record, the validation of an `iam` role (type fixed at
//! creation, at least one project, service accounts given or `*` alone,
//! `max_jwt_exp` at most one hour), both generations of parameter names
//! (`project_id`/`bound_projects`, `service_accounts`/
//! `bound_service_accounts`), and the authorisation of a looked-up service
//! account against a role. The token parameters (`token_ttl`/`ttl`, ...)
//! are the core's [`TokenParams`] under [`Legacy::GCP`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_sdk::framework::{Ctx, FieldData};
use strongroom_sdk::logical::Response;
use strongroom_sdk::login::{Legacy, TokenParams};
use strongroom_sdk::{Error, Result};

use crate::google::ServiceAccount;
use crate::state::Gcp;

type S = Arc<Gcp>;

/// The only role type this method supports.
pub const IAM: &str = "iam";
/// `max_jwt_exp` when not given, in seconds.
pub const DEFAULT_MAX_JWT_EXP: u64 = 900;
/// The largest `max_jwt_exp` accepted, in seconds.
pub const MAX_MAX_JWT_EXP: u64 = 3600;

/// A role as stored under `role/<lowercased name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleEntry {
    /// The role type (`iam`).
    pub role_type: String,
    /// Projects whose service accounts may log in.
    pub bound_projects: Vec<String>,
    /// Service-account emails or unique ids allowed (`*`: any).
    pub bound_service_accounts: Vec<String>,
    /// How far ahead a login JWT's `exp` may be, in seconds.
    pub max_jwt_exp: u64,
    /// Accepted and echoed (GCE inference applies to `gce` roles only).
    pub allow_gce_inference: bool,
    /// The token parameters (stored flattened: `token_ttl`, ...).
    #[serde(flatten)]
    pub params: TokenParams,
}

impl Default for RoleEntry {
    fn default() -> Self {
        RoleEntry {
            role_type: String::new(),
            bound_projects: Vec::new(),
            bound_service_accounts: Vec::new(),
            max_jwt_exp: DEFAULT_MAX_JWT_EXP,
            allow_gce_inference: true,
            params: TokenParams {
                // Stored as `[]` when unset, as it always was.
                token_bound_cidrs: Some(Vec::new()),
                ..TokenParams::new(Legacy::GCP)
            },
        }
    }
}

impl RoleEntry {
    /// The role as `GET role/:name` shows it, under both name generations.
    pub fn render(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert(
            "allow_gce_inference".into(),
            self.allow_gce_inference.into(),
        );
        d.insert("bound_projects".into(), self.bound_projects.clone().into());
        d.insert(
            "bound_service_accounts".into(),
            self.bound_service_accounts.clone().into(),
        );
        d.insert("max_jwt_exp".into(), self.max_jwt_exp.into());
        // The seed's read shows `project_id` as one string; with several
        // bound projects it is their comma-joined list (the form the write
        // accepts), so the older field stays a string and loses nothing.
        d.insert("project_id".into(), self.bound_projects.join(",").into());
        d.insert("role_type".into(), self.role_type.clone().into());
        d.insert(
            "service_accounts".into(),
            self.bound_service_accounts.clone().into(),
        );
        d.insert("type".into(), self.role_type.clone().into());
        self.params.render(&mut d, Legacy::GCP);
        d
    }

    /// Checks the rules of an `iam` role.
    pub fn validate(&self) -> Result<()> {
        if self.role_type != IAM {
            return Err(Error::bad_request(format!(
                "role type {:?} is invalid: only \"iam\" is supported",
                self.role_type
            )));
        }
        if self.bound_projects.is_empty() {
            return Err(Error::bad_request(
                "at least one project (bound_projects or project_id) is required for iam roles",
            ));
        }
        if self.bound_service_accounts.is_empty() {
            return Err(Error::bad_request(
                "service_accounts (bound_service_accounts) must be given for iam roles",
            ));
        }
        if self.bound_service_accounts.len() > 1
            && self.bound_service_accounts.iter().any(|s| s == "*")
        {
            return Err(Error::bad_request(
                "cannot provide IAM service account wildcard '*' (for all service accounts) with other service accounts",
            ));
        }
        if self.max_jwt_exp > MAX_MAX_JWT_EXP {
            return Err(Error::bad_request(format!(
                "max_jwt_exp cannot be more than {MAX_MAX_JWT_EXP} seconds"
            )));
        }
        if self.params.token_max_ttl > 0 && self.params.token_ttl > self.params.token_max_ttl {
            return Err(Error::bad_request("ttl should not be greater than max ttl"));
        }
        Ok(())
    }

    /// Whether the role admits the service account `sa`; the error names
    /// what did not match.
    pub fn authorize(&self, sa: &ServiceAccount) -> Result<()> {
        if !self.bound_projects.contains(&sa.project_id) {
            return Err(Error::bad_request(format!(
                "service account {} (id: {}) is not in bound projects",
                sa.email, sa.unique_id
            )));
        }
        let allowed = self
            .bound_service_accounts
            .iter()
            .any(|s| s == "*" || s.eq_ignore_ascii_case(&sa.email) || *s == sa.unique_id);
        if !allowed {
            return Err(Error::bad_request(format!(
                "service account {} (id: {}) is not authorized for role",
                sa.email, sa.unique_id
            )));
        }
        Ok(())
    }
}

/// The role name of a `role/:name` request.
#[derive(Deserialize)]
pub(crate) struct RolePath {
    name: String,
}

/// The validated, lowercased role name of the request path
/// (`\w([\w.-]*\w)?`, else 404).
fn name_of(s: &Gcp, ctx: &Ctx) -> Result<String> {
    let RolePath { name } = ctx.decode()?;
    s.roles.name(&name)
}

/// The role type of a write: `type`, or the older `role_type`.
#[derive(Deserialize)]
pub(crate) struct TypeWrite {
    #[serde(rename = "type")]
    kind: Option<String>,
    role_type: Option<String>,
}

/// `bound_projects`, read first.
#[derive(Deserialize)]
pub(crate) struct Projects {
    bound_projects: Option<Vec<String>>,
}

/// The older `project_id`, read only without `bound_projects`.
#[derive(Deserialize)]
pub(crate) struct OldProjects {
    project_id: Option<Vec<String>>,
}

/// `bound_service_accounts`, read first.
#[derive(Deserialize)]
pub(crate) struct Accounts {
    bound_service_accounts: Option<Vec<String>>,
}

/// The older `service_accounts`, read only without
/// `bound_service_accounts`.
#[derive(Deserialize)]
pub(crate) struct OldAccounts {
    service_accounts: Option<Vec<String>>,
}

/// The remaining fields of the method's own.
#[derive(Deserialize)]
pub(crate) struct RestWrite {
    /// Seconds.
    max_jwt_exp: Option<u64>,
    allow_gce_inference: Option<bool>,
}

/// The fields of `role/:name/service-accounts`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct EditAccounts {
    add: Vec<String>,
    remove: Vec<String>,
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
    let existing = s.roles.read(&ctx.storage, &name).await?;
    let (role, warnings) = apply(existing, &ctx.fields)?;
    s.roles.write(&ctx.storage, &name, &role).await?;
    let mut resp = Response::empty();
    resp.warnings = warnings;
    Ok(resp)
}

/// Applies a write's fields to the existing role (or a new one) and
/// validates the result. Fields are read in OpenBao's order, the older
/// names only when the newer are absent.
pub fn apply(existing: Option<RoleEntry>, f: &FieldData) -> Result<(RoleEntry, Vec<String>)> {
    let creating = existing.is_none();
    let mut role = existing.unwrap_or_default();
    let t: TypeWrite = f.decode()?;
    let given_type = t
        .kind
        .or(t.role_type)
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty());
    match (creating, given_type) {
        (true, None) => return Err(Error::bad_request("role type must be provided")),
        (true, Some(t)) => role.role_type = t,
        (false, Some(t)) if t != role.role_type => {
            return Err(Error::bad_request(format!(
                "role type cannot be changed for an existing role (is {:?}, got {t:?})",
                role.role_type
            )))
        }
        (false, _) => {}
    }
    if role.role_type != IAM {
        return Err(Error::bad_request(format!(
            "role type {:?} is invalid: only \"iam\" is supported",
            role.role_type
        )));
    }
    let projects = match f.decode::<Projects>()?.bound_projects {
        Some(p) => Some(p),
        None => f.decode::<OldProjects>()?.project_id,
    };
    if let Some(p) = projects {
        role.bound_projects = p;
    }
    let accounts = match f.decode::<Accounts>()?.bound_service_accounts {
        Some(a) => Some(a),
        None => f.decode::<OldAccounts>()?.service_accounts,
    };
    if let Some(v) = accounts {
        role.bound_service_accounts = v;
    }
    dedup(&mut role.bound_projects);
    dedup(&mut role.bound_service_accounts);
    let rest: RestWrite = f.decode()?;
    if let Some(secs) = rest.max_jwt_exp {
        role.max_jwt_exp = match secs {
            0 => DEFAULT_MAX_JWT_EXP,
            n => n,
        };
    }
    if let Some(b) = rest.allow_gce_inference {
        role.allow_gce_inference = b;
    }
    let warnings = role.params.apply(f, Legacy::GCP)?;
    role.validate()?;
    Ok((role, warnings))
}

fn dedup(list: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|x| !x.is_empty() && seen.insert(x.clone()));
}

/// `POST role/:name/service-accounts`: adds and removes bound service
/// accounts of an existing `iam` role.
pub async fn edit_service_accounts(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let _guard = s.roles.lock(&name).await;
    let mut role = s
        .roles
        .read(&ctx.storage, &name)
        .await?
        .ok_or_else(|| Error::bad_request(format!("role {name:?} not found")))?;
    if role.role_type != IAM {
        return Err(Error::bad_request(format!(
            "role {name:?} is not an iam role"
        )));
    }
    let EditAccounts { add, remove } = ctx.decode()?;
    if add.is_empty() && remove.is_empty() {
        return Err(Error::bad_request(
            "must provide at least one of add or remove",
        ));
    }
    role.bound_service_accounts = edit_list(&role.bound_service_accounts, &add, &remove);
    role.validate()?;
    s.roles.write(&ctx.storage, &name, &role).await?;
    Ok(Response::empty())
}

/// `list` with `add` appended (without duplicates) and `remove` taken out.
pub fn edit_list(list: &[String], add: &[String], remove: &[String]) -> Vec<String> {
    let mut out: Vec<String> = list.to_vec();
    for a in add {
        if !a.is_empty() && !out.contains(a) {
            out.push(a.clone());
        }
    }
    out.retain(|x| !remove.contains(x));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn fields(v: Value) -> FieldData {
        let Value::Object(m) = v else {
            panic!("test data must be an object")
        };
        FieldData::new(m, HashMap::new(), Arc::from(crate::role_fields()))
    }

    fn create(v: Value) -> Result<RoleEntry> {
        apply(None, &fields(v)).map(|(r, _)| r)
    }

    #[test]
    fn iam_role_needs_type_projects_and_accounts() {
        let ok = create(json!({"type": "iam", "project_id": "p1", "service_accounts": "a@p1.iam.gserviceaccount.com,123"}))
            .unwrap();
        assert_eq!(ok.bound_projects, vec!["p1"]);
        assert_eq!(
            ok.bound_service_accounts,
            vec!["a@p1.iam.gserviceaccount.com", "123"]
        );
        assert_eq!(ok.max_jwt_exp, 900);
        assert!(ok.allow_gce_inference);
        for bad in [
            json!({"project_id": "p1", "service_accounts": "*"}),
            json!({"type": "gce", "project_id": "p1", "service_accounts": "*"}),
            json!({"type": "iam", "service_accounts": "*"}),
            json!({"type": "iam", "bound_projects": ["p1"]}),
            json!({"type": "iam", "bound_projects": ["p1"], "bound_service_accounts": ["*", "a"]}),
            json!({"type": "iam", "bound_projects": ["p1"], "bound_service_accounts": ["*"], "max_jwt_exp": "2h"}),
            json!({"type": "iam", "bound_projects": ["p1"], "bound_service_accounts": ["*"], "ttl": 100, "max_ttl": 10}),
        ] {
            assert_eq!(create(bad.clone()).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn type_cannot_change_and_updates_keep_the_rest() {
        let r = create(json!({"type": "iam", "bound_projects": "p1", "bound_service_accounts": "*", "policies": "dev", "ttl": "1h"}))
            .unwrap();
        assert_eq!(r.params.token_policies, vec!["dev"]);
        assert_eq!(r.params.token_ttl, 3600);
        let (u, _) = apply(Some(r.clone()), &fields(json!({"max_jwt_exp": 60}))).unwrap();
        assert_eq!(u.max_jwt_exp, 60);
        assert_eq!(u.bound_projects, vec!["p1"]);
        assert_eq!(u.params.token_policies, vec!["dev"]);
        let err = apply(Some(r), &fields(json!({"type": "gce"}))).unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn render_shows_both_name_generations() {
        let r = create(json!({"type": "iam", "bound_projects": "p1", "bound_service_accounts": "*", "token_policies": "a", "token_ttl": 60}))
            .unwrap();
        let d = r.render();
        assert_eq!(d["type"], json!("iam"));
        assert_eq!(d["role_type"], json!("iam"));
        assert_eq!(d["project_id"], json!("p1"));
        assert_eq!(d["bound_projects"], json!(["p1"]));
        assert_eq!(d["service_accounts"], json!(["*"]));
        assert_eq!(d["policies"], json!(["a"]));
        assert_eq!(d["ttl"], json!(60));
        assert_eq!(d["max_jwt_exp"], json!(900));
    }

    #[test]
    fn roles_stored_before_token_params_load_and_store_unchanged() {
        // A role as the method has always stored it (field order included).
        let stored = r#"{"role_type":"iam","bound_projects":["p1"],"bound_service_accounts":["*"],"max_jwt_exp":900,"allow_gce_inference":true,"token_ttl":60,"token_max_ttl":0,"token_policies":["a"],"token_bound_cidrs":["10.0.0.0/8"],"token_explicit_max_ttl":0,"token_no_default_policy":false,"token_num_uses":0,"token_period":0,"token_type":"default","token_strictly_bind_ip":false}"#;
        let role: RoleEntry = serde_json::from_str(stored).unwrap();
        assert_eq!(role.bound_projects, vec!["p1"]);
        assert_eq!(role.params.token_ttl, 60);
        assert_eq!(role.params.bound_cidrs(), ["10.0.0.0/8"]);
        assert_eq!(role.render()["ttl"], json!(60));
        assert_eq!(serde_json::to_string(&role).unwrap(), stored);
        // A fresh role stores what a fresh role always stored.
        assert_eq!(
            serde_json::to_string(&RoleEntry::default()).unwrap(),
            r#"{"role_type":"","bound_projects":[],"bound_service_accounts":[],"max_jwt_exp":900,"allow_gce_inference":true,"token_ttl":0,"token_max_ttl":0,"token_policies":[],"token_bound_cidrs":[],"token_explicit_max_ttl":0,"token_no_default_policy":false,"token_num_uses":0,"token_period":0,"token_type":"default","token_strictly_bind_ip":false}"#
        );
    }

    fn sa(email: &str, id: &str, project: &str) -> ServiceAccount {
        ServiceAccount {
            email: email.into(),
            unique_id: id.into(),
            project_id: project.into(),
            disabled: false,
        }
    }

    #[test]
    fn authorize_checks_project_then_account() {
        let r = create(json!({"type": "iam", "bound_projects": "p1", "bound_service_accounts": "a@p1.iam.gserviceaccount.com,999"}))
            .unwrap();
        assert!(r
            .authorize(&sa("a@p1.iam.gserviceaccount.com", "1", "p1"))
            .is_ok());
        assert!(r
            .authorize(&sa("b@p1.iam.gserviceaccount.com", "999", "p1"))
            .is_ok());
        let e = r
            .authorize(&sa("b@p1.iam.gserviceaccount.com", "2", "p1"))
            .unwrap_err();
        assert!(e.to_string().contains("not authorized for role"), "{e}");
        let e = r
            .authorize(&sa("a@p1.iam.gserviceaccount.com", "1", "p2"))
            .unwrap_err();
        assert!(e.to_string().contains("not in bound projects"), "{e}");
    }

    #[test]
    fn service_account_edits_add_and_remove() {
        let l = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            edit_list(&l, &["c".into(), "a".into()], &["b".into()]),
            vec!["a", "c"]
        );
    }
}
