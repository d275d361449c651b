//! `POST login` (role, jwt) for `iam` roles, with the checks in the
//! contract's order: arguments and role; the JWT's shape (RS256, `kid`,
//! `sub`); the public key for (`sub`, `kid`) from the cache, IAM, or the
//! public certificates; the signature; `exp` and `aud`; the service
//! account as IAM describes it (exists, enabled, in the role's projects
//! and accounts). A login that passes asks the core for a token with the
//! role's parameters. Time is passed in to the claim checks.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use strongroom_sdk::framework::Ctx;
use strongroom_sdk::logical::Response;
use strongroom_sdk::{Error, Result};
use zeroize::Zeroizing;

use crate::google::Google;
use crate::role::RoleEntry;
use crate::state::Gcp;

/// How far in the past `exp` may be (clock skew).
pub const EXP_LEEWAY: u64 = 60;

/// What a login JWT says before its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    /// The header's key id.
    pub kid: String,
    /// The `sub` claim: the service account's email or unique id.
    pub sub: String,
}

fn bad_jwt(why: &str) -> Error {
    Error::bad_request(format!("invalid JWT: {why}"))
}

/// Reads the header and `sub` of a compact JWS without verifying it: the
/// header must say RS256 and carry a `kid`, the payload a `sub`.
pub fn parse_unverified(jwt: &str) -> Result<Unverified> {
    let parts: Vec<&str> = jwt.trim().split('.').collect();
    if parts.len() != 3 {
        return Err(bad_jwt("not a compact JWS"));
    }
    let header =
        jsonwebtoken::decode_header(jwt.trim()).map_err(|_| bad_jwt("malformed header"))?;
    if header.alg != Algorithm::RS256 {
        return Err(bad_jwt("the signing algorithm must be RS256"));
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad_jwt("the header has no 'kid'"))?;
    let payload = Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1].trim_end_matches('='))
            .map_err(|_| bad_jwt("malformed payload"))?,
    );
    let claims: Value =
        serde_json::from_slice(&payload).map_err(|_| bad_jwt("malformed payload"))?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad_jwt("no 'sub' claim naming the service account"))?;
    Ok(Unverified {
        kid,
        sub: sub.to_string(),
    })
}

/// Verifies the signature of `jwt` with `key` (RS256) and returns its
/// claims; the claims themselves are checked by [`check_claims`].
pub fn verify_signature(jwt: &str, key: &DecodingKey) -> Result<Map<String, Value>> {
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Map<String, Value>>(jwt.trim(), key, &v)
        .map(|d| d.claims)
        .map_err(|_| Error::bad_request("unable to verify the JWT's signature"))
}

/// Checks `exp` (present, not more than a minute past, no further than
/// `max_jwt_exp` ahead) and `aud` (every one ends with `vault/<role>`).
pub fn check_claims(
    claims: &Map<String, Value>,
    role_name: &str,
    max_jwt_exp: u64,
    now: u64,
) -> Result<()> {
    let exp = claims.get("exp").and_then(|e| {
        e.as_u64()
            .or_else(|| e.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    });
    let expired = || Error::bad_request("JWT is expired or does not have proper 'exp' claim");
    let exp = exp.ok_or_else(expired)?;
    if exp.saturating_add(EXP_LEEWAY) < now {
        return Err(expired());
    }
    if exp > now.saturating_add(max_jwt_exp) {
        return Err(Error::bad_request(format!(
            "role requires that service account JWTs expire within {max_jwt_exp} seconds"
        )));
    }
    let suffix = format!("vault/{role_name}");
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let aud_count = match claims.get("aud") {
        Some(Value::Array(items)) => items.len(),
        Some(_) => 1,
        None => 0,
    };
    if auds.is_empty() || auds.len() != aud_count || !auds.iter().all(|a| a.ends_with(&suffix)) {
        return Err(Error::bad_request(format!(
            "JWT does not have the expected audience: every 'aud' must end with {suffix:?}"
        )));
    }
    Ok(())
}

fn unix(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The verification key for (`sub`, `kid`): cached, else from IAM, else
/// from the public certificates. Concurrent cold lookups of one key wait
/// for a single fetch.
async fn public_key(
    s: &Gcp,
    google: &Google,
    sub: &str,
    kid: &str,
    now: SystemTime,
) -> Result<Arc<DecodingKey>> {
    if let Some(k) = s.keys.get(sub, kid, now) {
        return Ok(k);
    }
    let guard = s.keys.fetch_guard(sub, kid);
    let _held = guard.lock().await;
    if let Some(k) = s.keys.get(sub, kid, now) {
        return Ok(k);
    }
    let result = fetch_key(s, google, sub, kid, now).await;
    s.keys.fetch_done(sub, kid);
    result
}

async fn fetch_key(
    s: &Gcp,
    google: &Google,
    sub: &str,
    kid: &str,
    now: SystemTime,
) -> Result<Arc<DecodingKey>> {
    if let Some(found) = google.iam_key(sub, kid, now).await? {
        let key = Arc::new(found.key);
        s.keys
            .insert(sub, kid, key.clone(), found.valid_before, now);
        return Ok(key);
    }
    let certs = google.certs(sub).await?;
    let until = certs.max_age.map(|a| now + a);
    let mut wanted = None;
    for (k, key) in certs.keys {
        let key = Arc::new(key);
        if k == kid {
            wanted = Some(key.clone());
        }
        s.keys.insert(sub, &k, key, until, now);
    }
    wanted.ok_or_else(|| {
        Error::bad_request(format!(
            "unable to get public key {kid:?} for service account {sub:?}: no such key"
        ))
    })
}

/// The fields of a login.
#[derive(serde::Deserialize)]
pub(crate) struct LoginRequest {
    role: Option<String>,
    jwt: Option<String>,
}

/// `POST login`.
pub async fn login(s: Arc<Gcp>, ctx: Ctx) -> Result<Response> {
    let req: LoginRequest = ctx.decode()?;
    let role_name = req
        .role
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::bad_request("role is required"))?;
    let jwt = req
        .jwt
        .filter(|j| !j.is_empty())
        .map(Zeroizing::new)
        .ok_or_else(|| Error::bad_request("jwt argument is required"))?;
    let role: RoleEntry = s
        .roles
        .read(&ctx.storage, &role_name.to_ascii_lowercase())
        .await?
        .ok_or_else(|| Error::bad_request(format!("role {role_name:?} not found")))?;
    if role.role_type != crate::role::IAM {
        return Err(Error::bad_request(format!(
            "role {role_name:?} has an unsupported type {:?}",
            role.role_type
        )));
    }
    let now = SystemTime::now();

    let unverified = parse_unverified(&jwt)?;
    let google = s.google(&ctx.storage).await?;
    let key = public_key(&s, &google, &unverified.sub, &unverified.kid, now).await?;
    let claims = verify_signature(&jwt, &key)?;
    check_claims(&claims, &role_name, role.max_jwt_exp, unix(now))?;

    let sa = google
        .service_account(&unverified.sub, now)
        .await?
        .ok_or_else(|| {
            Error::bad_request(format!("service account {:?} not found", unverified.sub))
        })?;
    if sa.disabled {
        return Err(Error::bad_request(format!(
            "service account {} (id: {}) is disabled",
            sa.email, sa.unique_id
        )));
    }
    role.authorize(&sa)?;

    let mut metadata = Map::new();
    metadata.insert("project_id".into(), sa.project_id.clone().into());
    metadata.insert("role".into(), role_name.to_ascii_lowercase().into());
    metadata.insert("service_account_email".into(), sa.email.clone().into());
    metadata.insert("service_account_id".into(), sa.unique_id.clone().into());
    let mut issue = role.params.issue(metadata.clone(), sa.email.clone());
    // As OpenBao's default `iam_alias` (`unique_id`): the entity alias is
    // the service account's unique id, with the login's metadata.
    issue.alias = Some(strongroom_sdk::identity::LoginAlias {
        name: sa.unique_id.clone(),
        metadata: metadata
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
            .collect(),
    });
    Ok(Response {
        issue: Some(issue),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn exp_must_be_present_recent_and_not_too_far() {
        let ok = |exp: Value| {
            check_claims(
                &claims(json!({"exp": exp, "aud": "vault/dev"})),
                "dev",
                900,
                NOW,
            )
        };
        assert!(ok(json!(NOW + 600)).is_ok());
        assert!(ok(json!(NOW + 900)).is_ok());
        assert!(ok(json!(NOW - 30)).is_ok(), "a minute of skew is allowed");
        let e = ok(json!(NOW - 120)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "JWT is expired or does not have proper 'exp' claim"
        );
        let e = ok(json!(NOW + 901)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "role requires that service account JWTs expire within 900 seconds"
        );
        let e = check_claims(&claims(json!({"aud": "vault/dev"})), "dev", 900, NOW).unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(ok(json!("soon")).unwrap_err().status(), 400);
    }

    #[test]
    fn every_aud_must_name_the_role() {
        let check = |aud: Value| {
            check_claims(
                &claims(json!({"exp": NOW + 60, "aud": aud})),
                "dev",
                900,
                NOW,
            )
        };
        assert!(check(json!("vault/dev")).is_ok());
        assert!(check(json!("https://vault.example.com/vault/dev")).is_ok());
        assert!(check(json!(["vault/dev", "x/vault/dev"])).is_ok());
        for bad in [
            json!("vault/prod"),
            json!(["vault/dev", "other"]),
            json!([]),
            json!(null),
            json!([1]),
        ] {
            assert_eq!(check(bad.clone()).unwrap_err().status(), 400, "{bad}");
        }
        assert_eq!(
            check_claims(&claims(json!({"exp": NOW + 60})), "dev", 900, NOW)
                .unwrap_err()
                .status(),
            400
        );
    }

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn jwt_shape_needs_rs256_kid_and_sub() {
        let jwt = |h: Value, p: Value| format!("{}.{}.c2ln", b64(&h), b64(&p));
        let u = parse_unverified(&jwt(
            json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}),
            json!({"sub": "a@p.iam.gserviceaccount.com"}),
        ))
        .unwrap();
        assert_eq!(u.kid, "k1");
        assert_eq!(u.sub, "a@p.iam.gserviceaccount.com");
        for bad in [
            jwt(json!({"alg": "HS256", "kid": "k1"}), json!({"sub": "a"})),
            jwt(json!({"alg": "RS256"}), json!({"sub": "a"})),
            jwt(json!({"alg": "RS256", "kid": "k1"}), json!({"aud": "a"})),
            "not-a-jwt".to_string(),
            "a.b".to_string(),
        ] {
            assert_eq!(parse_unverified(&bad).unwrap_err().status(), 400, "{bad}");
        }
    }
}

#[cfg(test)]
mod signature_tests {
    use super::*;
    use serde_json::json;

    fn sign(private_pem: &str, claims: &Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    #[test]
    fn only_the_right_key_verifies() {
        let (private, public) = crate::config::tests::rsa_pems();
        let (_, other_public) = crate::config::tests::rsa_pems();
        let jwt = sign(
            &private,
            &json!({"sub": "a@p", "aud": "vault/dev", "exp": 1}),
        );
        let key = DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
        let claims = verify_signature(&jwt, &key).unwrap();
        assert_eq!(claims["sub"], json!("a@p"));
        let other = DecodingKey::from_rsa_pem(other_public.as_bytes()).unwrap();
        assert_eq!(verify_signature(&jwt, &other).unwrap_err().status(), 400);
        // A tampered payload fails too.
        let mut parts: Vec<String> = jwt.split('.').map(String::from).collect();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"sub": "b@p", "aud": "vault/dev", "exp": 1}).to_string());
        assert_eq!(
            verify_signature(&parts.join("."), &key)
                .unwrap_err()
                .status(),
            400
        );
    }
}
