//! `POST login` (role, jwt): reads the JWT's claims, checks its signature
//! against `pem_keys` when set, always asks the TokenReview API, checks the role's
//! namespace/name bindings and audience, and asks the core for a token with
//! the role's token parameters and the service account in its metadata.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use strongroom_sdk::framework::Ctx;
use strongroom_sdk::logical::Response;
use strongroom_sdk::{Error, Result};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::config::{read_local, LOCAL_JWT_PATH};
use crate::jwt::{check_claims, denied, now_secs, parse_unverified, verify_signature};
use crate::review::review;
use crate::state::Kubernetes;

/// The fields of a login.
#[derive(Deserialize)]
pub(crate) struct LoginRequest {
    role: Option<String>,
    jwt: Option<String>,
}

/// `POST login`.
pub async fn login(s: Arc<Kubernetes>, ctx: Ctx) -> Result<Response> {
    let req: LoginRequest = ctx.decode()?;
    let role_name = req
        .role
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::bad_request("missing role"))?;
    let jwt = req
        .jwt
        .filter(|j| !j.is_empty())
        .map(Zeroizing::new)
        .ok_or_else(|| Error::bad_request("missing jwt"))?;
    let role = s
        .roles
        .read(&ctx.storage, &role_name.to_ascii_lowercase())
        .await?
        .ok_or_else(|| Error::bad_request(format!("invalid role name {role_name:?}")))?;
    let loaded = s
        .loaded(&ctx.storage)
        .await?
        .ok_or_else(|| Error::bad_request("could not load backend configuration"))?;

    let claims = parse_unverified(&jwt)?;
    if !loaded.keys.is_empty() {
        verify_signature(&jwt, &loaded.keys)?;
    }
    let issuer = (!loaded.config.disable_iss_validation).then_some(loaded.config.issuer.as_str());
    check_claims(&claims, &role.audience, issuer, now_secs())?;
    let mut account = claims.account.clone();
    role.check_binding(&account.namespace, &account.name)?;

    // The TokenReview is always sent, `pem_keys` or not (as Vault and
    // OpenBao do): a signature proves who issued the token, only the
    // cluster knows whether its service account still exists (legacy
    // service-account tokens never expire).
    {
        let local;
        let bearer: &str = if !loaded.config.token_reviewer_jwt.is_empty() {
            &loaded.config.token_reviewer_jwt
        } else if !loaded.config.disable_local_ca_jwt {
            local = read_local(LOCAL_JWT_PATH).ok();
            local.as_deref().map_or(jwt.as_str(), |l| l.trim())
        } else {
            &jwt
        };
        let reviewed = review(&loaded, &jwt, bearer, &role.audience).await?;
        let same = |a: &str, b: &str| bool::from(a.as_bytes().ct_eq(b.as_bytes()));
        if !same(&reviewed.namespace, &account.namespace) || !same(&reviewed.name, &account.name) {
            tracing::debug!("TokenReview names a different service account than the JWT");
            return Err(denied());
        }
        if !reviewed.uid.is_empty() {
            account.uid = reviewed.uid;
        }
    }

    let mut metadata = Map::new();
    metadata.insert("role".into(), Value::from(role_name.to_ascii_lowercase()));
    metadata.insert("service_account_name".into(), account.name.clone().into());
    metadata.insert(
        "service_account_namespace".into(),
        account.namespace.clone().into(),
    );
    metadata.insert(
        "service_account_secret_name".into(),
        account.secret_name.clone().into(),
    );
    metadata.insert("service_account_uid".into(), account.uid.clone().into());
    let mut issue = role
        .params
        .issue(metadata, format!("{}-{}", account.namespace, account.name));
    // As OpenBao: the entity alias is the service account's uid, or
    // `namespace/name` with `alias_name_source=serviceaccount_name`.
    let alias_name = if role.alias_name_source == "serviceaccount_name" {
        format!("{}/{}", account.namespace, account.name)
    } else {
        account.uid.clone()
    };
    issue.alias = Some(strongroom_sdk::identity::LoginAlias {
        name: alias_name,
        metadata: [
            ("service_account_name", &account.name),
            ("service_account_namespace", &account.namespace),
            ("service_account_secret_name", &account.secret_name),
            ("service_account_uid", &account.uid),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect(),
    });
    Ok(Response {
        issue: Some(issue),
        ..Default::default()
    })
}
