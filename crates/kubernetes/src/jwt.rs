//! Service-account JWTs: reading the claims Kubernetes puts in legacy
//! (`kubernetes.io/serviceaccount/...`) and projected (`kubernetes.io:
//! {namespace, serviceaccount, pod}`, `aud`, `exp`) tokens, checking the
//! time, audience and issuer claims, and verifying the signature against
//! the configured `pem_keys` (RS256/384/512, ES256/384).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use strongroom_sdk::{Error, Result};

use crate::config::LEGACY_ISSUER;

/// How far clocks may disagree when checking `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 60;

/// The service account a JWT speaks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// The secret holding a legacy token (empty for projected tokens).
    pub secret_name: String,
}

/// The parts of a JWT the login looks at.
#[derive(Debug, Clone)]
pub struct Claims {
    /// All claims.
    pub raw: Map<String, Value>,
    /// The service account named by the claims.
    pub account: ServiceAccount,
}

/// The 403 of a JWT that cannot be accepted, worded as OpenBao.
pub fn denied() -> Error {
    Error::Forbidden("permission denied".into())
}

fn claim_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Parses a compact JWS without checking its signature (the TokenReview
/// path lets Kubernetes do that). Anything that is not a three-part JWT
/// with a JSON object payload is refused with 403.
pub fn parse_unverified(jwt: &str) -> Result<Claims> {
    let mut parts = jwt.trim().split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(denied());
    };
    let decode_obj = |s: &str| -> Option<Map<String, Value>> {
        let bytes = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(m) => Some(m),
            _ => None,
        }
    };
    decode_obj(header).ok_or_else(denied)?;
    let raw = decode_obj(payload).ok_or_else(denied)?;
    let v = Value::Object(raw.clone());
    let legacy = |k: &str| claim_str(&v, &[&format!("kubernetes.io/serviceaccount/{k}")]);
    let account = if let Some(ns) = claim_str(&v, &["kubernetes.io", "namespace"]) {
        ServiceAccount {
            namespace: ns.into(),
            name: claim_str(&v, &["kubernetes.io", "serviceaccount", "name"])
                .unwrap_or_default()
                .into(),
            uid: claim_str(&v, &["kubernetes.io", "serviceaccount", "uid"])
                .unwrap_or_default()
                .into(),
            secret_name: claim_str(&v, &["kubernetes.io", "secret", "name"])
                .unwrap_or_default()
                .into(),
        }
    } else {
        ServiceAccount {
            namespace: legacy("namespace").unwrap_or_default().into(),
            name: legacy("service-account.name").unwrap_or_default().into(),
            uid: legacy("service-account.uid").unwrap_or_default().into(),
            secret_name: legacy("secret.name").unwrap_or_default().into(),
        }
    };
    if account.namespace.is_empty() || account.name.is_empty() {
        return Err(denied());
    }
    Ok(Claims { raw, account })
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks `exp`, `nbf`, the role's audience and (unless disabled) the
/// issuer, with OpenBao's messages (403).
pub fn check_claims(claims: &Claims, audience: &str, issuer: Option<&str>, now: u64) -> Result<()> {
    let num = |k: &str| claims.raw.get(k).and_then(Value::as_f64);
    if let Some(exp) = num("exp") {
        if exp + (LEEWAY_SECS as f64) < now as f64 {
            return Err(Error::Forbidden(
                "invalid expiration time (exp) claim: token is expired".into(),
            ));
        }
    }
    if let Some(nbf) = num("nbf") {
        if nbf > (now + LEEWAY_SECS) as f64 {
            return Err(Error::Forbidden(
                "invalid not before (nbf) claim: token not valid yet".into(),
            ));
        }
    }
    if !audience.is_empty() {
        let ok = match claims.raw.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(audience)),
            _ => false,
        };
        if !ok {
            return Err(Error::Forbidden(
                "invalid audience (aud) claim: audience claim does not match any expected audience"
                    .into(),
            ));
        }
    }
    if let Some(expected) = issuer {
        let expected = if expected.is_empty() {
            LEGACY_ISSUER
        } else {
            expected
        };
        if claims.raw.get("iss").and_then(Value::as_str) != Some(expected) {
            return Err(Error::Forbidden(
                "invalid issuer (iss) claim: issuer does not match".into(),
            ));
        }
    }
    Ok(())
}

/// Verifies the JWT's signature against `keys`: RS256/384/512 and
/// ES256/384 only (never `none` or HMAC). The claims are checked apart by
/// [`check_claims`].
pub fn verify_signature(jwt: &str, keys: &[DecodingKey]) -> Result<()> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| denied())?;
    let alg = header.alg;
    if !matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::ES256
            | Algorithm::ES384
    ) {
        return Err(denied());
    }
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let ok = keys
        .iter()
        .any(|k| jsonwebtoken::decode::<Value>(jwt, k, &validation).is_ok());
    if ok {
        Ok(())
    } else {
        Err(denied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(claims: Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.c2ln",
            enc(&json!({"alg":"RS256","typ":"JWT"})),
            enc(&claims)
        )
    }

    #[test]
    fn reads_legacy_and_projected_claims() {
        let legacy = parse_unverified(&jwt(json!({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": "default",
            "kubernetes.io/serviceaccount/service-account.name": "app",
            "kubernetes.io/serviceaccount/service-account.uid": "u1",
            "kubernetes.io/serviceaccount/secret.name": "app-token-x",
        })))
        .unwrap();
        assert_eq!(
            legacy.account,
            ServiceAccount {
                namespace: "default".into(),
                name: "app".into(),
                uid: "u1".into(),
                secret_name: "app-token-x".into()
            }
        );
        let projected = parse_unverified(&jwt(json!({
            "aud": ["vault"], "exp": 4_000_000_000u64,
            "kubernetes.io": {"namespace": "prod", "pod": {"name": "p", "uid": "pu"},
                              "serviceaccount": {"name": "web", "uid": "u2"}},
        })))
        .unwrap();
        assert_eq!(projected.account.namespace, "prod");
        assert_eq!(projected.account.name, "web");
        assert_eq!(projected.account.uid, "u2");
        assert_eq!(projected.account.secret_name, "");
    }

    #[test]
    fn refuses_what_is_not_a_service_account_jwt() {
        for bad in [
            "notajwt".to_string(),
            "a.b.c".into(),
            "a.b".into(),
            jwt(json!({"sub": "x"})),
            format!(
                "{}.extra",
                jwt(json!({"kubernetes.io": {"namespace": "n"}}))
            ),
        ] {
            assert_eq!(parse_unverified(&bad).unwrap_err().status(), 403, "{bad}");
        }
    }

    #[test]
    fn claim_checks_use_openbao_messages() {
        let c = parse_unverified(&jwt(json!({
            "iss": "https://kubernetes.default.svc", "aud": "vault", "exp": 1000, "nbf": 900,
            "kubernetes.io": {"namespace": "n", "serviceaccount": {"name": "a", "uid": "u"}},
        })))
        .unwrap();
        assert!(check_claims(&c, "vault", None, 1000).is_ok());
        assert_eq!(
            check_claims(&c, "", None, 2000).unwrap_err().to_string(),
            "invalid expiration time (exp) claim: token is expired"
        );
        assert_eq!(
            check_claims(&c, "", None, 500).unwrap_err().status(),
            403,
            "not yet valid"
        );
        assert!(check_claims(&c, "other", None, 1000)
            .unwrap_err()
            .to_string()
            .starts_with("invalid audience (aud) claim"));
        assert!(check_claims(&c, "", Some("https://kubernetes.default.svc"), 1000).is_ok());
        assert_eq!(
            check_claims(&c, "", Some(""), 1000).unwrap_err().status(),
            403
        );
    }
}
