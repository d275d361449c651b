//! `POST login/:username {password}`: checks the password and the
//! client's address and asks the core for a token with the user's token
//! parameters, the `username` metadata and the username as entity alias.
//!
//! A wrong password and an unknown user get the same 400 `invalid
//! username or password` after a check of the same cost (see
//! [`crate::hash`]). A wrong password for an existing user counts towards
//! OpenBao's lockout ([`strongroom_sdk::lockout`]); an unknown user's does
//! not, as in OpenBao. A locked-out user gets 403 `permission denied`
//! whatever the password. A client outside the user's `token_bound_cidrs`
//! gets 403 `permission denied` once the password is right.

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value};
use strongroom_sdk::cidr::BoundCidr;
use strongroom_sdk::framework::Ctx;
use strongroom_sdk::identity::LoginAlias;
use strongroom_sdk::lockout::{Locked, Verdict};
use strongroom_sdk::logical::Response;
use strongroom_sdk::{Error, Result};
use zeroize::Zeroizing;

use crate::state::Userpass;
use crate::users::name_of;

type S = Arc<Userpass>;

/// The `password` of a login.
#[derive(Deserialize)]
pub(crate) struct PasswordParam {
    password: Option<String>,
}

/// The answer to bad credentials.
pub const INVALID: &str = "invalid username or password";

fn invalid() -> Error {
    Error::bad_request(INVALID)
}

fn denied() -> Error {
    Error::Forbidden("permission denied".into())
}

/// Whether the client may log in under the user's token CIDR blocks.
fn address_allowed(cidrs: &[String], ctx: &Ctx) -> bool {
    let Some(ip) = ctx.request.remote_addr else {
        return false;
    };
    cidrs
        .iter()
        .filter_map(|c| BoundCidr::parse(c).ok())
        .any(|b| b.contains(ip))
}

/// `POST login/:username`.
pub async fn login(s: S, ctx: Ctx) -> Result<Response> {
    let name = name_of(&s, &ctx)?;
    // OpenBao answers a missing password with a 500; it is a 400 here.
    let password = ctx
        .decode::<PasswordParam>()?
        .password
        .filter(|p| !p.is_empty())
        .map(Zeroizing::new)
        .ok_or_else(|| Error::bad_request("missing password"))?;
    let attempt = s
        .lockout
        .begin(&name, Instant::now())
        .map_err(|Locked| denied())?;
    let user = s.users.read(&ctx.storage, &name).await?;
    let exists = user.is_some();
    let hash = user.as_ref().map(|u| u.password_hash.as_str());
    let matched = s.hasher.verify(password, hash).await?;
    let Some(user) = user.filter(|_| matched) else {
        if !exists {
            return Err(invalid());
        }
        return match attempt.failed(Instant::now()) {
            Verdict::Counted => Err(invalid()),
            Verdict::Locked => Err(denied()),
        };
    };
    let cidrs = user.params.bound_cidrs();
    if !cidrs.is_empty() && !address_allowed(cidrs, &ctx) {
        return Err(denied());
    }
    attempt.succeeded();
    let mut metadata = Map::new();
    metadata.insert("username".into(), Value::from(name.clone()));
    let mut issue = user.params.issue(metadata, name.clone());
    issue.alias = Some(LoginAlias {
        name,
        ..Default::default()
    });
    Ok(Response {
        issue: Some(issue),
        ..Default::default()
    })
}
