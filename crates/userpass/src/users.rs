//! Users: `users/` (list), `users/:username` (create, update, read,
//! delete), `users/:username/password` and `users/:username/policies`.
//! Usernames are lowercased, as OpenBao stores them; every change takes
//! the user's lock, so a write never loses a concurrent one. Passwords are
//! hashed before the lock is taken (see [`crate::hash`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use strongroom_sdk::framework::Ctx;
use strongroom_sdk::logical::{Data, Response};
use strongroom_sdk::login::{Legacy, TokenParams};
use strongroom_sdk::{Error, Result};
use zeroize::Zeroizing;

use crate::hash::check_imported_hash;
use crate::state::Userpass;

type S = Arc<Userpass>;

/// A user as stored under `user/<lowercased name>`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserEntry {
    /// The bcrypt hash of the password (never the password).
    pub password_hash: String,
    /// The token parameters (stored flattened, with the older names'
    /// flags `legacy_policies`, `legacy_ttl`, `legacy_max_ttl`,
    /// `legacy_bound_cidrs`).
    #[serde(flatten)]
    pub params: TokenParams,
}

impl Default for UserEntry {
    fn default() -> Self {
        UserEntry {
            password_hash: String::new(),
            params: TokenParams::new(Legacy::USERPASS),
        }
    }
}

impl std::fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserEntry")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl UserEntry {
    /// The user as `GET users/:username` shows it.
    pub fn render(&self) -> Data {
        let mut d = Data::new();
        self.params.render(&mut d, Legacy::USERPASS);
        d
    }
}

/// The username of a `users/:username...` or `login/:username` request.
#[derive(Deserialize)]
pub(crate) struct UserPath {
    username: String,
}

/// The validated, lowercased username of the request path.
pub fn name_of(s: &Userpass, ctx: &Ctx) -> Result<String> {
    let UserPath { username } = ctx.decode()?;
    s.users.name(&username)
}

/// `password` and `password_hash` of a user write.
#[derive(Deserialize)]
pub(crate) struct PasswordParams {
    password: Option<String>,
    password_hash: Option<String>,
}

/// What a write sets the password to.
enum NewPassword {
    /// A clear password, to hash.
    Clear(Zeroizing<String>),
    /// A bcrypt hash given as is.
    Hash(String),
}

/// Reads the password parameters as OpenBao does: exactly one of
/// `password` and `password_hash`, non-empty; `None` when neither is given
/// and `required` is false.
fn new_password(ctx: &Ctx, required: bool) -> Result<Option<NewPassword>> {
    let p: PasswordParams = ctx.decode()?;
    let password = p.password.filter(|v| !v.is_empty()).map(Zeroizing::new);
    let hash = p.password_hash.filter(|v| !v.is_empty());
    match (password, hash) {
        (Some(_), Some(_)) => Err(Error::bad_request(
            "only one of password or password_hash may be provided",
        )),
        (None, None) if required => Err(Error::bad_request(
            "must provide either password or password_hash",
        )),
        (None, None) => Ok(None),
        (Some(p), None) => Ok(Some(NewPassword::Clear(p))),
        (None, Some(h)) => {
            check_imported_hash(&h).map_err(Error::BadRequest)?;
            Ok(Some(NewPassword::Hash(h)))
        }
    }
}

/// The stored hash of a new password (hashing a clear one, bounded).
async fn hash_of(s: &Userpass, p: NewPassword) -> Result<String> {
    match p {
        NewPassword::Clear(clear) => s.hasher.hash(clear).await,
        NewPassword::Hash(h) => Ok(h),
    }
}

/// `LIST users`.
pub async fn list(s: S, ctx: Ctx) -> Result<Response> {
    s.users.list(&ctx.storage).await
}

/// Existence check of `users/:username` (create needs a password).
pub async fn exists(s: S, ctx: Ctx) -> Result<bool> {
    let name = name_of(&s, &ctx)?;
    s.users.exists(&ctx.storage, &name).await
}

/// `GET users/:username`.
pub async fn read(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let user = s
        .users
        .read(&ctx.storage, &name)
        .await?
        .ok_or(Error::NotFound(None))?;
    Ok(Response::data(user.render()))
}

/// `POST users/:username`: creates the user (a password or a bcrypt
/// `password_hash` is required) or updates the given parameters.
pub async fn write(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let creating = !s.users.exists(&ctx.storage, &name).await?;
    let password = new_password(&ctx, creating)?;
    // The token parameters are checked before the (slow) hash is made.
    UserEntry::default()
        .params
        .apply(&ctx.fields, Legacy::USERPASS)?;
    let hash = match password {
        Some(p) => Some(hash_of(&s, p).await?),
        None => None,
    };
    let _guard = s.users.lock(&name).await;
    let mut user = match s.users.read(&ctx.storage, &name).await? {
        Some(u) => u,
        None if hash.is_none() => {
            return Err(Error::bad_request(
                "must provide either password or password_hash",
            ))
        }
        None => UserEntry::default(),
    };
    let warnings = user.params.apply(&ctx.fields, Legacy::USERPASS)?;
    if let Some(h) = hash {
        user.password_hash = h;
    }
    s.users.write(&ctx.storage, &name, &user).await?;
    let mut resp = Response::empty();
    resp.warnings = warnings;
    Ok(resp)
}

/// `DELETE users/:username`.
pub async fn delete(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let _guard = s.users.lock(&name).await;
    s.users.delete(&ctx.storage, &name).await?;
    Ok(Response::empty())
}

/// The answer to a change of a user that does not exist (OpenBao answers
/// it with a 500; the client's mistake is a 400 here).
fn no_such_user() -> Error {
    Error::bad_request("username does not exist")
}

/// `POST users/:username/password`.
pub async fn write_password(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    if !s.users.exists(&ctx.storage, &name).await? {
        return Err(no_such_user());
    }
    let Some(password) = new_password(&ctx, true)? else {
        return Err(Error::bad_request(
            "must provide either password or password_hash",
        ));
    };
    let hash = hash_of(&s, password).await?;
    let _guard = s.users.lock(&name).await;
    let Some(mut user) = s.users.read(&ctx.storage, &name).await? else {
        return Err(no_such_user());
    };
    user.password_hash = hash;
    s.users.write(&ctx.storage, &name, &user).await?;
    Ok(Response::empty())
}

/// `token_policies` and `policies` of `users/:username/policies`.
#[derive(Deserialize)]
pub(crate) struct PoliciesParams {
    token_policies: Option<Vec<String>>,
    policies: Option<Vec<String>>,
}

/// OpenBao's `policyutil.ParsePolicies`: trimmed, lowercased, without
/// empty names and duplicates, sorted; `root` alone when present.
pub fn parse_policies(raw: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = raw
        .into_iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if out.iter().any(|p| p == "root") {
        return vec!["root".into()];
    }
    out.sort();
    out.dedup();
    out
}

/// `POST users/:username/policies`.
pub async fn write_policies(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    let p: PoliciesParams = ctx.decode()?;
    let _guard = s.users.lock(&name).await;
    let Some(mut user) = s.users.read(&ctx.storage, &name).await? else {
        return Err(no_such_user());
    };
    let params = &mut user.params;
    match (p.token_policies, p.policies) {
        (Some(new), old) => {
            params.token_policies = parse_policies(new);
            params.legacy_policies = Some(old.is_some() && !params.token_policies.is_empty());
        }
        (None, Some(old)) => {
            params.token_policies = parse_policies(old);
            params.legacy_policies = Some(!params.token_policies.is_empty());
        }
        (None, None) => {}
    }
    s.users.write(&ctx.storage, &name, &user).await?;
    Ok(Response::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_parsed_as_openbao_does() {
        let v = |s: &[&str]| s.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_policies(v(&["B", " a", "a", ""])), v(&["a", "b"]));
        assert_eq!(parse_policies(v(&["x", "Root"])), v(&["root"]));
    }

    #[test]
    fn a_user_entry_never_shows_its_hash() {
        let u = UserEntry {
            password_hash: "$2b$04$secretsecretsecret".into(),
            ..Default::default()
        };
        assert!(!format!("{u:?}").contains("secret"));
        assert!(!serde_json::to_string(&u.render()).unwrap().contains("$2b$"));
    }
}
