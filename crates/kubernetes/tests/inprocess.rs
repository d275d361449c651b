//! The Kubernetes auth method end to end through the in-process server,
//! against a fake Kubernetes API server answering TokenReviews over real
//! HTTPS: config and role shapes, logins through TokenReview (legacy and
//! projected tokens, bindings, audiences, the API server refusing,
//! failing or down), logins checked against `pem_keys` and then still
//! reviewed, a wrapped login, and bad input that changes nothing.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strongroom_test::inprocess;
use strongroom_test::kube;

use std::sync::Arc;

use inprocess::{call, call_with};
use kube::{
    closed_url, legacy_claims, now, projected_claims, sa_uid, EcSigner, FakeKube, Mode, RsaSigner,
};
use serde_json::{json, Value};
use strongroom_core::Core;

const BASE: &str = "/v1/auth/kubernetes";
const REVIEWER: &str = "reviewer-jwt-not-a-real-one";

async fn setup() -> (Arc<Core>, String) {
    inprocess::with_auth_method("kubernetes").await
}

async fn post(core: &Arc<Core>, root: &str, path: &str, body: Value) -> (u16, Value) {
    call(
        core,
        "POST",
        &format!("{BASE}/{path}"),
        Some(root),
        Some(body),
    )
    .await
}

async fn get(core: &Arc<Core>, root: &str, path: &str) -> (u16, Value) {
    call(core, "GET", &format!("{BASE}/{path}"), Some(root), None).await
}

async fn login(core: &Arc<Core>, role: &str, jwt: &str) -> (u16, Value) {
    call(
        core,
        "POST",
        &format!("{BASE}/login"),
        None,
        Some(json!({"role": role, "jwt": jwt})),
    )
    .await
}

/// Asserts a refusal: the status, an `errors` list naming `msg`, no token.
fn assert_refused(s: u16, v: &Value, status: u16, msg: &str) {
    assert_eq!(s, status, "{v}");
    let errors = v["errors"].as_array().expect("errors list");
    assert!(
        errors.iter().any(|e| e.as_str().unwrap().contains(msg)),
        "{msg:?} not in {v}"
    );
    assert!(v.get("auth").is_none_or(Value::is_null), "{v}");
}

/// A mount configured for TokenReview against `kube`, with a reviewer JWT,
/// and a role `app` for `default`/`app` (and `web` in `prod`).
async fn review_setup(kube: &FakeKube) -> (Arc<Core>, String) {
    let (core, root) = setup().await;
    kube.require_reviewer(REVIEWER);
    let (s, v) = post(
        &core,
        &root,
        "config",
        json!({"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem,
               "token_reviewer_jwt": REVIEWER, "disable_local_ca_jwt": true}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = post(
        &core,
        &root,
        "role/app",
        json!({"bound_service_account_names": "app,web",
               "bound_service_account_namespaces": ["default", "prod"],
               "token_policies": "read-app", "token_ttl": "1h"}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    (core, root)
}

async fn token_count(core: &Arc<Core>, root: &str) -> usize {
    let (s, v) = call(core, "LIST", "/v1/auth/token/accessors", Some(root), None).await;
    assert_eq!(s, 200, "{v}");
    v["data"]["keys"].as_array().unwrap().len()
}

#[tokio::test]
async fn config_write_read_and_refusals() {
    let (core, root) = setup().await;
    let (s, v) = get(&core, &root, "config").await;
    assert_eq!((s, &v), (404, &json!({"errors": []})));
    let (s, v) = post(&core, &root, "config", json!({})).await;
    assert_refused(s, &v, 400, "no host provided");
    let (s, v) = post(
        &core,
        &root,
        "config",
        json!({"kubernetes_host": "10.0.0.1:6443", "disable_local_ca_jwt": true}),
    )
    .await;
    assert_refused(
        s,
        &v,
        400,
        "kubernetes_ca_cert must be given when disable_local_ca_jwt is true",
    );

    let kube = FakeKube::start(Arc::new(RsaSigner::generate())).await;
    let key = RsaSigner::generate().public_pem();
    let (s, v) = post(
        &core,
        &root,
        "config",
        json!({"kubernetes_host": "10.0.0.1:6443", "kubernetes_ca_cert": kube.ca_pem,
               "pem_keys": [key], "token_reviewer_jwt": "secret-reviewer-jwt",
               "issuer": "https://kubernetes.default.svc", "disable_iss_validation": false}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = get(&core, &root, "config").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["data"],
        json!({"disable_iss_validation": false, "disable_local_ca_jwt": false,
               "issuer": "https://kubernetes.default.svc", "kubernetes_ca_cert": kube.ca_pem,
               "kubernetes_host": "10.0.0.1:6443", "pem_keys": [key.trim()],
               "token_reviewer_jwt_set": true})
    );
    assert!(!v.to_string().contains("secret-reviewer-jwt"));

    // Bad keys, a bad CA or a bad host are refused and change nothing.
    for (body, msg) in [
        (
            json!({"kubernetes_host": "https://k8s", "kubernetes_ca_cert": kube.ca_pem, "pem_keys": ["junk"]}),
            "data does not contain any valid public keys",
        ),
        (
            json!({"kubernetes_host": "ftp://k8s", "kubernetes_ca_cert": kube.ca_pem}),
            "invalid kubernetes_host",
        ),
    ] {
        let (s, e) = post(&core, &root, "config", body).await;
        assert_refused(s, &e, 400, msg);
    }
    let (_, after) = get(&core, &root, "config").await;
    assert_eq!(after["data"], v["data"]);

    // A CA that does not parse is stored (as OpenBao does; tools write
    // placeholders) with a warning naming it; a login then fails saying so.
    let (s, w) = post(
        &core,
        &root,
        "config",
        json!({"kubernetes_host": "https://k8s", "kubernetes_ca_cert": "junk"}),
    )
    .await;
    assert_eq!(s, 200, "{w}");
    let warnings = w["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|x| x.as_str().is_some_and(|x| {
            x.contains("kubernetes_ca_cert was stored but does not parse")
                && x.contains("no PEM certificate found")
        })),
        "{w}"
    );
    let (_, stored) = get(&core, &root, "config").await;
    assert_eq!(stored["data"]["kubernetes_ca_cert"], "junk");
    let (s, _) = post(
        &core,
        &root,
        "role/app",
        json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "ns"}),
    )
    .await;
    assert_eq!(s, 204);
    let jwt = RsaSigner::generate().sign(&legacy_claims("ns", "app"));
    let (s, e) = login(&core, "app", &jwt).await;
    assert_refused(
        s,
        &e,
        400,
        "the configured kubernetes_ca_cert does not parse",
    );
}

#[tokio::test]
async fn role_write_read_list_delete() {
    let (core, root) = setup().await;
    let (s, v) = call(&core, "LIST", &format!("{BASE}/role"), Some(&root), None).await;
    assert_eq!((s, &v), (404, &json!({"errors": []})));
    let (s, v) = post(
        &core,
        &root,
        "role/r2",
        json!({"bound_service_account_names": "a", "bound_service_account_namespaces": "*",
               "audience": "vault", "alias_name_source": "serviceaccount_name",
               "policies": "p1,p2", "ttl": "1h", "max_ttl": "2h", "period": "30m"}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = get(&core, &root, "role/r2").await;
    assert_eq!(s, 200, "{v}");
    // OpenBao 2.x's shape, field for field.
    assert_eq!(
        v["data"],
        json!({"alias_name_source": "serviceaccount_name", "audience": "vault",
               "bound_service_account_names": ["a"],
               "bound_service_account_namespace_selector": "",
               "bound_service_account_namespaces": ["*"], "max_ttl": 7200, "period": 1800,
               "policies": ["p1", "p2"], "token_bound_cidrs": [], "token_explicit_max_ttl": 0,
               "token_max_ttl": 7200, "token_no_default_policy": false, "token_num_uses": 0,
               "token_period": 1800, "token_policies": ["p1", "p2"],
               "token_strictly_bind_ip": false, "token_ttl": 3600, "token_type": "default",
               "ttl": 3600})
    );
    let (s, _) = post(
        &core,
        &root,
        "role/R1",
        json!({"bound_service_account_names": ["a", "b"], "bound_service_account_namespaces": "default"}),
    )
    .await;
    assert_eq!(s, 204);
    let (s, v) = get(&core, &root, "role/r1").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["alias_name_source"], "serviceaccount_uid");
    assert!(v["data"].get("audience").is_none() && v["data"].get("ttl").is_none());
    for path in ["role", "roles"] {
        let (s, v) = call(&core, "LIST", &format!("{BASE}/{path}"), Some(&root), None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["data"]["keys"], json!(["r1", "r2"]));
    }
    let (s, v) = call(
        &core,
        "DELETE",
        &format!("{BASE}/role/r1"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, _) = get(&core, &root, "role/r1").await;
    assert_eq!(s, 404);
    let (s, v) = call(
        &core,
        "DELETE",
        &format!("{BASE}/role/none"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
}

#[tokio::test]
async fn bad_role_input_changes_nothing() {
    let (core, root) = setup().await;
    let good = json!({"bound_service_account_names": "a", "bound_service_account_namespaces": "ns",
                      "token_policies": "p"});
    assert_eq!(post(&core, &root, "role/r", good).await.0, 204);
    let (_, before) = get(&core, &root, "role/r").await;
    for (body, msg) in [
        (
            json!({"bound_service_account_names": "*", "bound_service_account_namespaces": "*"}),
            "can not both be \"*\"",
        ),
        (
            json!({"bound_service_account_names": ["*", "x"]}),
            "can not mix \"*\" with values",
        ),
        (
            json!({"alias_name_source": "pod"}),
            "invalid alias_name_source",
        ),
        (
            json!({"token_ttl": "2h", "token_max_ttl": "1h"}),
            "token ttl should not be greater than token max ttl",
        ),
        (
            json!({"token_type": "batch", "token_period": "1h"}),
            "'token_type' cannot be 'batch'",
        ),
        (json!({"token_ttl": "forever"}), "token_ttl"),
    ] {
        let (s, v) = post(&core, &root, "role/r", body.clone()).await;
        assert_refused(s, &v, 400, msg);
        let (_, after) = get(&core, &root, "role/r").await;
        assert_eq!(after["data"], before["data"], "{body}");
    }
    let (s, v) = post(
        &core,
        &root,
        "role/new",
        json!({"bound_service_account_names": "a"}),
    )
    .await;
    assert_refused(
        s,
        &v,
        400,
        "\"bound_service_account_namespaces\" can not be empty",
    );
    assert_eq!(get(&core, &root, "role/new").await.0, 404);
}

#[tokio::test]
async fn login_via_token_review_legacy_and_projected() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let (core, _root) = review_setup(&kube).await;

    let jwt = signer.sign(&legacy_claims("default", "app"));
    let (s, v) = login(&core, "app", &jwt).await;
    assert_eq!(s, 200, "{v}");
    let auth = &v["auth"];
    assert_eq!(auth["policies"], json!(["default", "read-app"]));
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(
        auth["metadata"],
        json!({"role": "app", "service_account_name": "app",
               "service_account_namespace": "default",
               "service_account_secret_name": "app-token-abcde",
               "service_account_uid": sa_uid("default", "app")})
    );
    let seen = kube.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {REVIEWER}").as_str())
    );
    assert_eq!(seen[0].body["kind"], "TokenReview");
    assert_eq!(seen[0].body["spec"]["token"], jwt);
    // The token works.
    let token = auth["client_token"].as_str().unwrap();
    let (s, v) = call(
        &core,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["meta"]["service_account_name"], "app");

    let jwt = signer.sign(&projected_claims("prod", "web", "vault", now() + 600));
    let (s, v) = login(&core, "app", &jwt).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["auth"]["metadata"]["service_account_namespace"], "prod");
    assert_eq!(v["auth"]["metadata"]["service_account_secret_name"], "");
    assert_eq!(
        v["auth"]["metadata"]["service_account_uid"],
        sa_uid("prod", "web")
    );
}

#[tokio::test]
async fn login_refuses_wrong_bindings_and_audience_without_a_token() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let (core, root) = review_setup(&kube).await;
    let before = token_count(&core, &root).await;

    let (s, v) = login(&core, "app", &signer.sign(&legacy_claims("other", "app"))).await;
    assert_refused(s, &v, 403, "namespace not authorized");
    let (s, v) = login(&core, "app", &signer.sign(&legacy_claims("default", "db"))).await;
    assert_refused(s, &v, 403, "service account name not authorized");
    // Bindings are checked before Kubernetes is asked.
    assert!(kube.seen().is_empty());

    let (s, _) = post(
        &core,
        &root,
        "role/aud",
        json!({"bound_service_account_names": "web", "bound_service_account_namespaces": "prod",
               "audience": "vault"}),
    )
    .await;
    assert_eq!(s, 204);
    let jwt = signer.sign(&projected_claims("prod", "web", "other", now() + 600));
    let (s, v) = login(&core, "aud", &jwt).await;
    assert_refused(s, &v, 403, "invalid audience (aud) claim");
    let jwt = signer.sign(&projected_claims("prod", "web", "vault", now() + 600));
    let (s, v) = login(&core, "aud", &jwt).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        kube.seen().last().unwrap().body["spec"]["audiences"],
        json!(["vault"])
    );

    let (s, v) = login(&core, "nope", &jwt).await;
    assert_refused(s, &v, 400, "invalid role name \"nope\"");
    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/login"),
        None,
        Some(json!({"role": "app"})),
    )
    .await;
    assert_refused(s, &v, 400, "missing jwt");
    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/login"),
        None,
        Some(json!({"jwt": jwt})),
    )
    .await;
    assert_refused(s, &v, 400, "missing role");
    assert_eq!(token_count(&core, &root).await, before + 1);
}

#[tokio::test]
async fn login_follows_what_kubernetes_answers() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let (core, root) = review_setup(&kube).await;
    let before = token_count(&core, &root).await;
    let jwt = signer.sign(&legacy_claims("default", "app"));

    // The service account's token was invalidated: not authenticated.
    kube.revoke(&jwt);
    let (s, v) = login(&core, "app", &jwt).await;
    assert_refused(s, &v, 403, "permission denied");
    // A token Kubernetes did not sign, with the right claims.
    let forged = RsaSigner::generate().sign(&legacy_claims("default", "app"));
    let (s, v) = login(&core, "app", &forged).await;
    assert_refused(s, &v, 403, "permission denied");

    let good = signer.sign(&legacy_claims("default", "web"));
    for mode in [
        Mode::Fixed(401, json!({"kind": "Status", "code": 401}).to_string()),
        Mode::Fixed(500, "internal error".into()),
        Mode::Fixed(201, "this is not json".into()),
        Mode::Fixed(
            201,
            json!({"status": {"authenticated": true,
            "user": {"username": "system:serviceaccount:default:app"}}})
            .to_string(),
        ),
    ] {
        kube.set_mode(mode);
        let (s, v) = login(&core, "app", &good).await;
        assert_refused(s, &v, 403, "permission denied");
    }
    // The API server's answer decides; back to normal, the login works.
    kube.set_mode(Mode::Review);
    let (s, v) = login(&core, "app", &good).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(token_count(&core, &root).await, before + 1);

    // A reviewer JWT the API server does not accept.
    kube.require_reviewer("another-reviewer");
    let (s, v) = login(&core, "app", &good).await;
    assert_refused(s, &v, 403, "permission denied");
}

#[tokio::test]
async fn without_reviewer_jwt_the_clients_own_jwt_authenticates_the_review() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let (core, root) = setup().await;
    let (s, v) = post(
        &core,
        &root,
        "config",
        json!({"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem,
               "disable_local_ca_jwt": true}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, _) = post(
        &core,
        &root,
        "role/app",
        json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "default"}),
    )
    .await;
    assert_eq!(s, 204);
    let jwt = signer.sign(&legacy_claims("default", "app"));
    let (s, v) = login(&core, "app", &jwt).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        kube.seen()[0].authorization.as_deref(),
        Some(format!("Bearer {jwt}").as_str())
    );
}

#[tokio::test]
async fn kubernetes_down_or_untrusted_is_a_server_side_error() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let (core, root) = review_setup(&kube).await;
    let jwt = signer.sign(&legacy_claims("default", "app"));

    let down = closed_url().await;
    let (s, v) = post(
        &core,
        &root,
        "config",
        json!({"kubernetes_host": down, "kubernetes_ca_cert": kube.ca_pem,
               "token_reviewer_jwt": REVIEWER, "disable_local_ca_jwt": true}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = login(&core, "app", &jwt).await;
    assert_refused(s, &v, 502, "could not connect");
    assert!(!v.to_string().contains(REVIEWER) && !v.to_string().contains(&jwt));

    // A server whose certificate the configured CA did not issue.
    let other = FakeKube::start(signer.clone()).await;
    let (s, _) = post(
        &core,
        &root,
        "config",
        json!({"kubernetes_host": other.url, "kubernetes_ca_cert": kube.ca_pem,
               "token_reviewer_jwt": REVIEWER, "disable_local_ca_jwt": true}),
    )
    .await;
    assert_eq!(s, 204);
    let (s, v) = login(&core, "app", &jwt).await;
    assert_eq!(s, 502, "{v}");
    assert!(other.seen().is_empty());
}

#[tokio::test]
async fn login_with_pem_keys_checks_locally_then_reviews() {
    let signer = RsaSigner::generate();
    let ec = EcSigner::generate();
    let (core, root) = setup().await;
    // The API server authenticates the RSA signer's tokens only.
    let signer = Arc::new(signer);
    let kube = FakeKube::start(signer.clone()).await;
    let (s, v) = post(
        &core,
        &root,
        "config",
        json!({"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem,
               "pem_keys": [signer.public_pem(), ec.public_pem()],
               "disable_local_ca_jwt": true}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, _) = post(
        &core,
        &root,
        "role/app",
        json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "*",
               "token_policies": "p"}),
    )
    .await;
    assert_eq!(s, 204);
    let before = token_count(&core, &root).await;

    for alg in ["RS256", "RS384", "RS512"] {
        let (s, v) = login(
            &core,
            "app",
            &signer.sign_with(alg, &legacy_claims("ns1", "app")),
        )
        .await;
        assert_eq!(s, 200, "{alg}: {v}");
        assert_eq!(v["auth"]["metadata"]["service_account_namespace"], "ns1");
    }
    // Every login passing the signature check was also reviewed.
    assert_eq!(kube.seen().len(), 3);
    // An ES256 token passes pem_keys, but the API server does not know it:
    // the review refuses it, and so does the login.
    let ec_jwt = ec.sign(&projected_claims("ns2", "app", "vault", now() + 600));
    let (s, v) = login(&core, "app", &ec_jwt).await;
    assert_refused(s, &v, 403, "permission denied");
    assert_eq!(kube.seen().len(), 4);
    // A deleted service account: its legacy token never expires and is
    // still validly signed; only the review catches it.
    let mut claims = legacy_claims("ns1", "app");
    claims["jti"] = json!("deleted");
    let deleted = signer.sign(&claims);
    kube.revoke(&deleted);
    let (s, v) = login(&core, "app", &deleted).await;
    assert_refused(s, &v, 403, "permission denied");
    assert_eq!(kube.seen().len(), 5);
    assert_eq!(token_count(&core, &root).await, before + 3);

    let other = RsaSigner::generate();
    let good = signer.sign(&legacy_claims("ns1", "app"));
    let (head, rest) = good.split_once('.').unwrap();
    let tampered_payload = format!(
        "{head}.{}.{}",
        base64_claims(&legacy_claims("ns1", "app-admin")),
        rest.rsplit_once('.').unwrap().1
    );
    let none_alg = format!(
        "{}.{}.",
        base64_claims(&json!({"alg": "none", "typ": "JWT"})),
        base64_claims(&legacy_claims("ns1", "app"))
    );
    for (jwt, status, msg) in [
        (
            other.sign(&legacy_claims("ns1", "app")),
            403,
            "permission denied",
        ),
        (tampered_payload, 403, "permission denied"),
        (none_alg, 403, "permission denied"),
        (
            signer.sign(&projected_claims("ns1", "app", "vault", now() - 3600)),
            403,
            "invalid expiration time (exp) claim: token is expired",
        ),
        (
            format!("{}x", &good[..good.len() - 10]),
            403,
            "permission denied",
        ),
        ("not-a-jwt".to_string(), 403, "permission denied"),
        ("a.b.c".to_string(), 403, "permission denied"),
    ] {
        let (s, v) = login(&core, "app", &jwt).await;
        assert_refused(s, &v, status, msg);
    }
    // Refused by the signature check: never sent for review.
    assert_eq!(token_count(&core, &root).await, before + 3);
    assert_eq!(kube.seen().len(), 5);
}

fn base64_claims(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn issuer_is_checked_when_enabled() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let (core, root) = setup().await;
    let config = |disable: bool| {
        json!({"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem,
               "pem_keys": [signer.public_pem()], "disable_local_ca_jwt": true,
               "disable_iss_validation": disable})
    };
    assert_eq!(post(&core, &root, "config", config(false)).await.0, 204);
    let (s, _) = post(
        &core,
        &root,
        "role/app",
        json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "ns"}),
    )
    .await;
    assert_eq!(s, 204);
    // Legacy tokens carry the default issuer; projected ones do not.
    let (s, v) = login(&core, "app", &signer.sign(&legacy_claims("ns", "app"))).await;
    assert_eq!(s, 200, "{v}");
    let projected = signer.sign(&projected_claims("ns", "app", "x", now() + 600));
    let (s, v) = login(&core, "app", &projected).await;
    assert_refused(s, &v, 403, "invalid issuer (iss) claim");
    assert_eq!(post(&core, &root, "config", config(true)).await.0, 204);
    let (s, v) = login(&core, "app", &projected).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn wrapped_login_hands_out_the_token_once() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    let (core, _root) = review_setup(&kube).await;
    let jwt = signer.sign(&legacy_claims("default", "app"));
    let (s, v) = call_with(
        &core,
        "POST",
        &format!("{BASE}/login"),
        None,
        Some(json!({"role": "app", "jwt": jwt})),
        &[("X-Vault-Wrap-TTL", "60s")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["auth"], Value::Null);
    assert_eq!(v["wrap_info"]["creation_path"], "auth/kubernetes/login");
    let wrapping = v["wrap_info"]["token"].as_str().unwrap().to_string();
    let (s, v) = call(
        &core,
        "POST",
        "/v1/sys/wrapping/unwrap",
        Some(&wrapping),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["auth"]["metadata"]["service_account_name"], "app");
    assert!(v["auth"]["client_token"].as_str().is_some());
    let (s, _) = call(
        &core,
        "POST",
        "/v1/sys/wrapping/unwrap",
        Some(&wrapping),
        None,
    )
    .await;
    assert_eq!(s, 400);
}
