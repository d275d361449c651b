//! The TokenReview call: `POST <kubernetes_host>/apis/authentication.k8s.io/
//! v1/tokenreviews` with the client's JWT, authenticated by the reviewer JWT
//! (or the client's own), over the mount's shared client. Owns the mapping
//! of the API server's answers onto errors: a review that does not
//! authenticate, or an API server answering 401/500/garbage, refuses the
//! login (403, as OpenBao); an API server that cannot be reached or does
//! not answer in time is a 502 naming the problem.

use serde_json::{json, Value};
use strongroom_sdk::{Error, Result};

use crate::jwt::{denied, ServiceAccount};
use crate::state::Loaded;

/// The prefix of a service account's user name.
const SA_PREFIX: &str = "system:serviceaccount:";

/// Asks the API server to review `jwt`, authenticating with `bearer`;
/// returns the service account it authenticated. `audience`, when set, is
/// asked for in the review.
pub async fn review(
    loaded: &Loaded,
    jwt: &str,
    bearer: &str,
    audience: &str,
) -> Result<ServiceAccount> {
    let mut spec = json!({ "token": jwt });
    if !audience.is_empty() {
        spec["audiences"] = json!([audience]);
    }
    let body = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": spec,
    });
    let resp = loaded
        .client
        .post(loaded.review_url.clone())
        .bearer_auth(bearer)
        .header(reqwest::header::ACCEPT, "application/json")
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            tracing::warn!(host = %loaded.config.kubernetes_host, "TokenReview {what}");
            Error::Upstream(format!(
                "error calling the Kubernetes TokenReview API at {}: {what}",
                loaded.config.kubernetes_host
            ))
        })?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|_| Error::Upstream("error reading the Kubernetes TokenReview answer".into()))?;
    if !status.is_success() {
        tracing::debug!(%status, "TokenReview refused");
        return Err(denied());
    }
    let answer: Value = serde_json::from_slice(&bytes).map_err(|_| {
        tracing::debug!("TokenReview answer is not JSON");
        denied()
    })?;
    parse_review(&answer)
}

/// Reads a TokenReview answer: it must authenticate a service account.
pub fn parse_review(answer: &Value) -> Result<ServiceAccount> {
    let status = answer.get("status").ok_or_else(denied)?;
    if status.get("authenticated").and_then(Value::as_bool) != Some(true) {
        return Err(denied());
    }
    let user = status.get("user").ok_or_else(denied)?;
    let username = user
        .get("username")
        .and_then(Value::as_str)
        .ok_or_else(denied)?;
    let (namespace, name) = username
        .strip_prefix(SA_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains(':'))
        .ok_or_else(denied)?;
    Ok(ServiceAccount {
        namespace: namespace.into(),
        name: name.into(),
        uid: user
            .get("uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .into(),
        secret_name: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_authenticated_service_accounts_pass() {
        let ok = parse_review(&json!({"status": {"authenticated": true,
            "user": {"username": "system:serviceaccount:default:app", "uid": "u1"}}}))
        .unwrap();
        assert_eq!(
            (ok.namespace.as_str(), ok.name.as_str()),
            ("default", "app")
        );
        assert_eq!(ok.uid, "u1");
        for bad in [
            json!({"status": {"authenticated": false}}),
            json!({"status": {"authenticated": true, "user": {"username": "alice"}}}),
            json!({"status": {"authenticated": true,
                "user": {"username": "system:serviceaccount:default"}}}),
            json!({"kind": "Status"}),
            json!([1, 2]),
        ] {
            assert_eq!(parse_review(&bad).unwrap_err().status(), 403, "{bad}");
        }
    }
}
