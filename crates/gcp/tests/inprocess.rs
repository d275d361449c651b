//! The GCP auth method end to end through the in-process server, against
//! the Google API emulator (tests/gcp) over real HTTPS: config and role
//! shapes and validation, logins with self-signed and `signJwt` keys (by
//! email, unique id or `*` with a project binding), wrapping, the key and
//! access-token caches, every bad input of the issue, and Google refusing,
//! failing or down. Every refused login answers `{"errors": [...]}`, no
//! token, and changes nothing.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strongroom_test::gcp;
use strongroom_test::inprocess;

use std::sync::Arc;

use gcp::{closed_url, now, Account, Emulator, Endpoint, Failure, RsaKey, ADMIN_PROJECT};
use inprocess::{call, call_with};
use serde_json::{json, Value};
use strongroom_core::Core;

const BASE: &str = "/v1/auth/gcp";

/// An unsealed in-memory core whose registry has `gcp-test` (the method
/// trusting `ca_pem`), enabled at `auth/gcp`; returns it and the root token.
async fn core_trusting(ca_pem: &str) -> (Arc<Core>, String) {
    let registry = inprocess::registry_with(inprocess::Revoked::default()).auth(
        "gcp-test",
        strongroom_gcp::factory_with(strongroom_gcp::Options {
            extra_root_pem: Some(ca_pem.to_string()),
        }),
    );
    let core = inprocess::inmem_core_from(registry);
    let init = inprocess::init(&core, 1, 1).await;
    let (s, v) = inprocess::unseal(&core, &init.keys_b64[0]).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(
        &core,
        "POST",
        "/v1/sys/auth/gcp",
        Some(&init.root),
        Some(json!({"type": "gcp-test"})),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    (core, init.root)
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
    assert!(!errors.is_empty(), "{v}");
    assert!(
        errors.iter().any(|e| e
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains(&msg.to_lowercase())),
        "{msg:?} not in {v}"
    );
    assert!(v.get("auth").is_none_or(Value::is_null), "{v}");
}

/// The strings of a JSON list, sorted (list order is not part of the API).
fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

async fn token_count(core: &Arc<Core>, root: &str) -> usize {
    let (s, v) = call(core, "LIST", "/v1/auth/token/accessors", Some(root), None).await;
    assert_eq!(s, 200, "{v}");
    v["data"]["keys"].as_array().unwrap().len()
}

/// A configured mount with one service account `app@proj-a` (one
/// user-managed key) and a role `r` bound to it and to `proj-a`.
struct Env {
    emu: Emulator,
    core: Arc<Core>,
    root: String,
    sa: Account,
    kid: String,
}

/// Which listener of the emulator the mount talks to.
enum Base {
    Https,
    Http,
}

impl Env {
    async fn new() -> Env {
        Env::new_at(Base::Https).await
    }

    async fn new_at(base: Base) -> Env {
        let emu = Emulator::start().await;
        let (core, root) = core_trusting(&emu.ca_pem).await;
        let url = match base {
            Base::Https => emu.url.clone(),
            Base::Http => emu.http_url.clone(),
        };
        let (s, v) = post(
            &core,
            &root,
            "config",
            json!({"credentials": emu.credentials_json_at(&url),
                   "custom_endpoint": emu.custom_endpoint_at(&url)}),
        )
        .await;
        assert_eq!(s, 204, "{v}");
        let sa = emu.add_account("app", "proj-a");
        let kid = emu.add_key(&sa.email);
        let (s, v) = post(
            &core,
            &root,
            "role/r",
            json!({"type": "iam", "bound_projects": ["proj-a"],
                   "bound_service_accounts": [sa.email], "policies": ["dev", "ops"],
                   "ttl": "1h", "max_ttl": "2h"}),
        )
        .await;
        assert_eq!(s, 204, "{v}");
        Env {
            emu,
            core,
            root,
            sa,
            kid,
        }
    }

    /// A valid login JWT of the account for role `r`, expiring in 5 min.
    fn jwt(&self) -> String {
        self.emu
            .sign_login(&self.sa.email, &self.kid, "vault/r", now() + 300)
    }

    async fn login(&self, role: &str, jwt: &str) -> (u16, Value) {
        login(&self.core, role, jwt).await
    }

    async fn tokens(&self) -> usize {
        token_count(&self.core, &self.root).await
    }

    /// Logs in with a valid JWT and asserts success (the state is sound).
    async fn assert_login_ok(&self) -> Value {
        let (s, v) = self.login("r", &self.jwt()).await;
        assert_eq!(s, 200, "{v}");
        v
    }
}

#[tokio::test]
async fn config_write_read_delete() {
    let emu = Emulator::start().await;
    let (core, root) = core_trusting(&emu.ca_pem).await;

    // No config stored: 200 with empty fields.
    let (s, v) = get(&core, &root, "config").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["client_email"], json!(""), "{v}");
    assert!(v["data"].get("private_key").is_none(), "{v}");

    let creds = emu.credentials_json();
    let (s, v) = post(
        &core,
        &root,
        "config",
        json!({"credentials": creds, "custom_endpoint": emu.custom_endpoint()}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = get(&core, &root, "config").await;
    assert_eq!(s, 200, "{v}");
    let d = &v["data"];
    assert_eq!(d["client_email"], json!(emu.admin.email));
    assert_eq!(d["client_id"], json!(emu.admin.unique_id));
    assert_eq!(d["private_key_id"], json!(emu.admin_kid()));
    assert_eq!(d["project_id"], json!(ADMIN_PROJECT));
    assert_eq!(d["token_uri"], json!(format!("{}/token", emu.url)));
    assert_eq!(d["custom_endpoint"], emu.custom_endpoint());
    // Never the private key.
    assert!(d.get("private_key").is_none(), "{v}");
    assert!(!v.to_string().contains("PRIVATE KEY"), "{v}");

    // custom_endpoint as a JSON string, only some keys: only those are shown.
    let partial = json!({"api": emu.url, "iam": emu.url});
    let (s, v) = post(
        &core,
        &root,
        "config",
        json!({"credentials": creds, "custom_endpoint": partial.to_string()}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (_, v) = get(&core, &root, "config").await;
    assert_eq!(v["data"]["custom_endpoint"], partial, "{v}");

    let (s, v) = call(
        &core,
        "DELETE",
        &format!("{BASE}/config"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = get(&core, &root, "config").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["client_email"], json!(""), "{v}");
    assert_eq!(v["data"]["private_key_id"], json!(""), "{v}");
}

#[tokio::test]
async fn config_refuses_bad_credentials_and_endpoints() {
    let emu = Emulator::start().await;
    let (core, root) = core_trusting(&emu.ca_pem).await;
    let (s, v) = post(
        &core,
        &root,
        "config",
        json!({"credentials": emu.credentials_json(), "custom_endpoint": emu.custom_endpoint()}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (_, before) = get(&core, &root, "config").await;

    let mut no_key: Value = serde_json::from_str(&emu.credentials_json()).unwrap();
    no_key.as_object_mut().unwrap().remove("private_key");
    let mut no_email: Value = serde_json::from_str(&emu.credentials_json()).unwrap();
    no_email.as_object_mut().unwrap().remove("client_email");
    for (body, what) in [
        (json!({"credentials": "this is not JSON"}), "not JSON"),
        (json!({"credentials": "[1, 2]"}), "not an object"),
        (json!({"credentials": no_key.to_string()}), "no private_key"),
        (
            json!({"credentials": no_email.to_string()}),
            "no client_email",
        ),
        (
            json!({"credentials": emu.credentials_json(),
                   "custom_endpoint": {"api": emu.url, "storage": emu.url}}),
            "unknown custom_endpoint key",
        ),
    ] {
        let (s, v) = post(&core, &root, "config", body).await;
        assert_eq!(s, 400, "{what}: {v}");
        assert!(
            !v["errors"].as_array().expect(what).is_empty(),
            "{what}: {v}"
        );
        assert!(!v.to_string().contains("PRIVATE KEY"), "{what}: {v}");
    }
    let (_, after) = get(&core, &root, "config").await;
    assert_eq!(
        after["data"], before["data"],
        "a refused write changed the config"
    );
}

#[tokio::test]
async fn role_write_read_list_delete() {
    let emu = Emulator::start().await;
    let (core, root) = core_trusting(&emu.ca_pem).await;
    let (s, v) = post(
        &core,
        &root,
        "role/dev",
        json!({"type": "iam", "project_id": "proj-a",
               "service_accounts": "a@proj-a.iam.gserviceaccount.com,104729000000000000001",
               "policies": "p1,p2", "ttl": "1h", "max_ttl": "2h", "period": "30m",
               "max_jwt_exp": "10m", "allow_gce_inference": false}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = get(&core, &root, "role/dev").await;
    assert_eq!(s, 200, "{v}");
    let d = &v["data"];
    assert_eq!(d["type"], "iam", "{v}");
    assert_eq!(d["role_type"], "iam", "{v}");
    assert_eq!(d["bound_projects"], json!(["proj-a"]), "{v}");
    // The seed's older field is a string.
    assert_eq!(d["project_id"], json!("proj-a"), "{v}");
    let sas = ["104729000000000000001", "a@proj-a.iam.gserviceaccount.com"];
    assert_eq!(sorted(&d["bound_service_accounts"]), sas, "{v}");
    assert_eq!(sorted(&d["service_accounts"]), sas, "{v}");
    assert_eq!(d["max_jwt_exp"], 600, "{v}");
    assert_eq!(d["allow_gce_inference"], false, "{v}");
    assert_eq!(d["policies"], json!(["p1", "p2"]), "{v}");
    assert_eq!(d["token_policies"], json!(["p1", "p2"]), "{v}");
    assert_eq!(
        (d["ttl"].clone(), d["token_ttl"].clone()),
        (json!(3600), json!(3600))
    );
    assert_eq!(
        (d["max_ttl"].clone(), d["token_max_ttl"].clone()),
        (json!(7200), json!(7200))
    );
    assert_eq!(
        (d["period"].clone(), d["token_period"].clone()),
        (json!(1800), json!(1800))
    );
    assert!(d.get("token_type").is_some(), "{v}");
    assert!(d.get("token_bound_cidrs").is_some(), "{v}");

    // Defaults: max_jwt_exp 900, allow_gce_inference true; the new names.
    let (s, v) = post(
        &core,
        &root,
        "role/other",
        json!({"type": "iam", "bound_projects": ["p1", "p2"],
               "bound_service_accounts": ["*"]}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (_, v) = get(&core, &root, "role/other").await;
    assert_eq!(v["data"]["max_jwt_exp"], 900, "{v}");
    assert_eq!(v["data"]["allow_gce_inference"], true, "{v}");
    assert_eq!(v["data"]["bound_projects"], json!(["p1", "p2"]), "{v}");
    assert_eq!(v["data"]["bound_service_accounts"], json!(["*"]), "{v}");

    // An update without type keeps the role (type cannot change).
    let (s, v) = post(&core, &root, "role/other", json!({"policies": ["x"]})).await;
    assert_eq!(s, 204, "{v}");
    let (_, v) = get(&core, &root, "role/other").await;
    assert_eq!(v["data"]["policies"], json!(["x"]), "{v}");
    assert_eq!(v["data"]["bound_projects"], json!(["p1", "p2"]), "{v}");

    for path in ["roles", "role"] {
        let (s, v) = call(&core, "LIST", &format!("{BASE}/{path}"), Some(&root), None).await;
        assert_eq!(s, 200, "{path}: {v}");
        assert_eq!(sorted(&v["data"]["keys"]), ["dev", "other"], "{path}: {v}");
    }

    let (s, v) = call(
        &core,
        "DELETE",
        &format!("{BASE}/role/dev"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = get(&core, &root, "role/dev").await;
    assert_eq!(s, 404, "{v}");
    let (_, v) = call(&core, "LIST", &format!("{BASE}/roles"), Some(&root), None).await;
    assert_eq!(v["data"]["keys"], json!(["other"]), "{v}");
}

#[tokio::test]
async fn role_validation_errors() {
    let emu = Emulator::start().await;
    let (core, root) = core_trusting(&emu.ca_pem).await;
    let sa = "a@proj-a.iam.gserviceaccount.com";
    for (body, what) in [
        (
            json!({"bound_projects": ["p"], "bound_service_accounts": [sa]}),
            "no type on create",
        ),
        (
            json!({"type": "gce", "bound_projects": ["p"], "bound_service_accounts": [sa]}),
            "type gce (only iam)",
        ),
        (
            json!({"type": "nonsense", "bound_projects": ["p"], "bound_service_accounts": [sa]}),
            "unknown type",
        ),
        (
            json!({"type": "iam", "bound_service_accounts": [sa]}),
            "no project",
        ),
        (
            json!({"type": "iam", "bound_projects": ["p"]}),
            "no service accounts",
        ),
        (
            json!({"type": "iam", "bound_projects": ["p"], "bound_service_accounts": ["*", sa]}),
            "* with others",
        ),
        (
            json!({"type": "iam", "bound_projects": ["p"], "bound_service_accounts": [sa],
                   "max_jwt_exp": "2h"}),
            "max_jwt_exp above one hour",
        ),
    ] {
        let (s, v) = post(&core, &root, "role/bad", body).await;
        assert_eq!(s, 400, "{what}: {v}");
        assert!(
            !v["errors"].as_array().expect(what).is_empty(),
            "{what}: {v}"
        );
    }
    let (s, v) = get(&core, &root, "role/bad").await;
    assert_eq!(s, 404, "refused writes created the role: {v}");

    // The type cannot change once set.
    let (s, v) = post(
        &core,
        &root,
        "role/r",
        json!({"type": "iam", "bound_projects": ["p"], "bound_service_accounts": [sa]}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = post(&core, &root, "role/r", json!({"type": "gce"})).await;
    assert_eq!(s, 400, "{v}");
    let (_, v) = get(&core, &root, "role/r").await;
    assert_eq!(v["data"]["type"], "iam", "{v}");
}

#[tokio::test]
async fn role_service_accounts_add_and_remove() {
    let emu = Emulator::start().await;
    let (core, root) = core_trusting(&emu.ca_pem).await;
    let (a, b, c) = (
        "a@p.iam.gserviceaccount.com",
        "b@p.iam.gserviceaccount.com",
        "104729000000000000077",
    );
    let (s, v) = post(
        &core,
        &root,
        "role/r",
        json!({"type": "iam", "bound_projects": ["p"], "bound_service_accounts": [a, b]}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = post(
        &core,
        &root,
        "role/r/service-accounts",
        json!({"add": [c], "remove": [a]}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (_, v) = get(&core, &root, "role/r").await;
    assert_eq!(sorted(&v["data"]["bound_service_accounts"]), [c, b], "{v}");

    // A missing role.
    let (s, v) = post(
        &core,
        &root,
        "role/nope/service-accounts",
        json!({"add": [a]}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(!v["errors"].as_array().unwrap().is_empty(), "{v}");
    let (s, _) = get(&core, &root, "role/nope").await;
    assert_eq!(s, 404, "editing a missing role created it");
}

#[tokio::test]
async fn login_with_a_self_signed_key() {
    let env = Env::new().await;
    let (s, v) = env.login("r", &env.jwt()).await;
    assert_eq!(s, 200, "{v}");
    let auth = &v["auth"];
    assert_eq!(auth["policies"], json!(["default", "dev", "ops"]), "{v}");
    assert_eq!(
        auth["token_policies"],
        json!(["default", "dev", "ops"]),
        "{v}"
    );
    assert_eq!(
        auth["metadata"],
        json!({"role": "r", "service_account_email": env.sa.email,
               "service_account_id": env.sa.unique_id, "project_id": "proj-a"}),
        "{v}"
    );
    assert_eq!(auth["lease_duration"], 3600, "{v}");
    assert_eq!(auth["renewable"], true, "{v}");
    let token = auth["client_token"].as_str().unwrap();

    // The token works.
    let (s, v) = call(
        &env.core,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["path"], "auth/gcp/login", "{v}");
    assert_eq!(
        v["data"]["display_name"],
        format!("gcp-{}", env.sa.email),
        "{v}"
    );
    assert_eq!(
        v["data"]["meta"]["service_account_id"],
        json!(env.sa.unique_id)
    );

    // Strongroom authenticated to Google with the configured credentials:
    // one OAuth2 token, used as the bearer of the IAM calls.
    let seen = env.emu.seen();
    let token_calls: Vec<_> = seen
        .iter()
        .filter(|s| s.endpoint == Endpoint::Token)
        .collect();
    assert_eq!(token_calls.len(), 1, "{seen:?}");
    assert!(token_calls[0]
        .body
        .contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"));
    for s in seen
        .iter()
        .filter(|s| matches!(s.endpoint, Endpoint::Key | Endpoint::ServiceAccount))
    {
        assert!(
            s.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer ya29.emu")),
            "{s:?}"
        );
    }
    assert_eq!(env.emu.count(Endpoint::Key), 1, "{seen:?}");
    assert_eq!(env.emu.count(Endpoint::ServiceAccount), 1, "{seen:?}");
    assert_eq!(env.emu.count(Endpoint::Certs), 0, "{seen:?}");
}

#[tokio::test]
async fn audiences_ending_in_vault_role_are_accepted() {
    let env = Env::new().await;
    let email = env.sa.email.clone();
    for aud in [
        json!("https://vault.example.com/vault/r"),
        json!(["vault/r", "http://vault/vault/r"]),
    ] {
        let jwt = env.emu.sign_claims(
            &email,
            &env.kid,
            &json!({"sub": email, "aud": aud, "exp": now() + 300}),
        );
        let (s, v) = env.login("r", &jwt).await;
        assert_eq!(s, 200, "aud {aud}: {v}");
        assert_eq!(v["auth"]["metadata"]["role"], "r", "{v}");
    }
}

/// A Google that accepts the connection and never answers: the call times
/// out and the login answers 502 (the outer bound only keeps a missing
/// timeout from hanging the suite).
#[tokio::test]
async fn google_hanging_times_out_as_a_bad_gateway() {
    let env = Env::new().await;
    env.emu.set_failure(Endpoint::Token, Some(Failure::Hang));
    let (s, v) = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        env.login("r", &env.jwt()),
    )
    .await
    .expect("a login against a hanging Google must end");
    assert_eq!(s, 502, "{v}");
    assert!(v.get("auth").is_none_or(Value::is_null), "{v}");
    env.emu.set_failure(Endpoint::Token, None);
    env.assert_login_ok().await;
}

#[tokio::test]
async fn keys_and_access_tokens_are_cached() {
    let env = Env::new().await;
    env.assert_login_ok().await;
    env.assert_login_ok().await;
    // The second login fetched no key and no new access token.
    assert_eq!(env.emu.count(Endpoint::Key), 1, "{:?}", env.emu.seen());
    assert_eq!(env.emu.count(Endpoint::Token), 1, "{:?}", env.emu.seen());
    assert_eq!(env.emu.issued_tokens(), 1);

    // A new kid is fetched (with the same access token).
    let kid2 = env.emu.add_key(&env.sa.email);
    let jwt = env
        .emu
        .sign_login(&env.sa.email, &kid2, "vault/r", now() + 300);
    let (s, v) = env.login("r", &jwt).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(env.emu.count(Endpoint::Key), 2, "{:?}", env.emu.seen());
    assert_eq!(env.emu.count(Endpoint::Token), 1, "{:?}", env.emu.seen());
}

#[tokio::test]
async fn login_with_a_sign_jwt_key_through_the_certificate_endpoint() {
    let env = Env::new().await;
    let kid = env.emu.add_system_key(&env.sa.email);
    let jwt = env
        .emu
        .sign_login(&env.sa.email, &kid, "vault/r", now() + 300);
    let (s, v) = env.login("r", &jwt).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["auth"]["metadata"]["service_account_email"],
        json!(env.sa.email)
    );
    // IAM said 404, the certificate endpoint knew the key.
    assert_eq!(env.emu.count(Endpoint::Key), 1, "{:?}", env.emu.seen());
    assert_eq!(env.emu.count(Endpoint::Certs), 1, "{:?}", env.emu.seen());
    assert!(env
        .emu
        .seen()
        .iter()
        .any(|s| s.path == format!("/service_accounts/v1/metadata/x509/{}", env.sa.email)));
    // Cached: a second login asks neither.
    let (s, v) = env.login("r", &jwt).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(env.emu.count(Endpoint::Key), 1);
    assert_eq!(env.emu.count(Endpoint::Certs), 1);
}

#[tokio::test]
async fn login_bound_by_unique_id() {
    let env = Env::new().await;
    let sa = env.emu.add_account("by-id", "proj-a");
    let kid = env.emu.add_key(&sa.email);
    let (s, v) = post(
        &env.core,
        &env.root,
        "role/byid",
        json!({"type": "iam", "project_id": "proj-a", "service_accounts": [sa.unique_id]}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    // sub is the email: matched by the unique id IAM reports.
    let jwt = env
        .emu
        .sign_login(&sa.email, &kid, "vault/byid", now() + 300);
    let (s, v) = env.login("byid", &jwt).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["auth"]["metadata"]["service_account_id"],
        json!(sa.unique_id)
    );
    assert_eq!(
        v["auth"]["metadata"]["service_account_email"],
        json!(sa.email)
    );
    // sub is the unique id itself.
    let jwt = env.emu.sign_claims(
        &sa.email,
        &kid,
        &json!({"sub": sa.unique_id, "aud": "vault/byid", "exp": now() + 300}),
    );
    let (s, v) = env.login("byid", &jwt).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["auth"]["metadata"]["service_account_email"],
        json!(sa.email)
    );
}

#[tokio::test]
async fn star_role_is_still_bound_by_project() {
    let env = Env::new().await;
    let (s, v) = post(
        &env.core,
        &env.root,
        "role/any",
        json!({"type": "iam", "bound_projects": ["proj-a"], "bound_service_accounts": "*"}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let other = env.emu.add_account("other", "proj-a");
    let kid = env.emu.add_key(&other.email);
    let jwt = env
        .emu
        .sign_login(&other.email, &kid, "vault/any", now() + 300);
    let (s, v) = env.login("any", &jwt).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["auth"]["metadata"]["project_id"], "proj-a");

    let before = env.tokens().await;
    let outsider = env.emu.add_account("outsider", "proj-b");
    let kid = env.emu.add_key(&outsider.email);
    let jwt = env
        .emu
        .sign_login(&outsider.email, &kid, "vault/any", now() + 300);
    let (s, v) = env.login("any", &jwt).await;
    assert_refused(s, &v, 400, "not in bound projects");
    assert_eq!(env.tokens().await, before);
}

#[tokio::test]
async fn wrapped_login_unwraps_to_the_auth() {
    let env = Env::new().await;
    let (s, v) = call_with(
        &env.core,
        "POST",
        &format!("{BASE}/login"),
        None,
        Some(json!({"role": "r", "jwt": env.jwt()})),
        &[("X-Vault-Wrap-TTL", "5m")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["auth"].is_null(), "{v}");
    let wrap = v["wrap_info"]["token"].as_str().unwrap();
    assert_eq!(v["wrap_info"]["ttl"], 300, "{v}");
    assert_eq!(v["wrap_info"]["creation_path"], "auth/gcp/login", "{v}");
    let (s, v) = call(
        &env.core,
        "POST",
        "/v1/sys/wrapping/unwrap",
        Some(wrap),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["auth"]["metadata"]["service_account_email"],
        json!(env.sa.email),
        "{v}"
    );
    let token = v["auth"]["client_token"].as_str().unwrap();
    let (s, v) = call(
        &env.core,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(token),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn bad_logins_are_refused_and_change_nothing() {
    let env = Env::new().await;
    env.assert_login_ok().await;
    let before = env.tokens().await;
    let email = env.sa.email.clone();
    let t = now();

    // Accounts outside the role, outside the project, disabled, deleted.
    let stranger = env.emu.add_account("stranger", "proj-a");
    let stranger_kid = env.emu.add_key(&stranger.email);
    let elsewhere = env.emu.add_account("app", "proj-b");
    let elsewhere_kid = env.emu.add_key(&elsewhere.email);
    let (s, v) = post(
        &env.core,
        &env.root,
        "role/r/service-accounts",
        json!({"add": [elsewhere.email]}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let disabled = env.emu.add_account("disabled", "proj-a");
    let disabled_kid = env.emu.add_key(&disabled.email);
    env.emu.set_disabled(&disabled.email, true);
    let gone = env.emu.add_account("gone", "proj-a");
    let gone_kid = env.emu.add_key(&gone.email);
    let gone_key = env.emu.key(&gone.email, &gone_kid);
    env.emu.remove_account(&gone.email);
    let (s, v) = post(
        &env.core,
        &env.root,
        "role/r/service-accounts",
        json!({"add": [disabled.email, gone.email]}),
    )
    .await;
    assert_eq!(s, 204, "{v}");

    let stray = RsaKey::generate("stray");
    let good = |claims: Value| env.emu.sign_claims(&email, &env.kid, &claims);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a JWT signed by another key (known kid)",
            stray.sign(
                &env.kid,
                &json!({"sub": email, "aud": "vault/r", "exp": t + 300}),
            ),
            "",
        ),
        (
            "an unknown kid",
            stray.sign(
                "0123456789abcdef",
                &json!({"sub": email, "aud": "vault/r", "exp": t + 300}),
            ),
            "unable to get public key",
        ),
        (
            "expired",
            good(json!({"sub": email, "aud": "vault/r", "exp": t - 600})),
            "JWT is expired or does not have proper 'exp' claim",
        ),
        (
            "no exp",
            good(json!({"sub": email, "aud": "vault/r"})),
            "JWT is expired or does not have proper 'exp' claim",
        ),
        (
            "exp beyond max_jwt_exp (900 s)",
            good(json!({"sub": email, "aud": "vault/r", "exp": t + 1800})),
            "role requires that service account JWTs expire within 900 seconds",
        ),
        (
            "the wrong audience",
            good(json!({"sub": email, "aud": "vault/other", "exp": t + 300})),
            "",
        ),
        (
            "one wrong audience among good ones",
            good(json!({"sub": email, "aud": ["vault/r", "https://example.com"], "exp": t + 300})),
            "",
        ),
        (
            "no audience",
            good(json!({"sub": email, "exp": t + 300})),
            "",
        ),
        (
            "no sub",
            good(json!({"aud": "vault/r", "exp": t + 300})),
            "",
        ),
        (
            "HS256",
            stray.sign_header(
                &json!({"alg": "HS256", "kid": env.kid}),
                &json!({"sub": email, "aud": "vault/r", "exp": t + 300}),
            ),
            "",
        ),
        (
            "no kid",
            stray.sign_header(
                &json!({"alg": "RS256"}),
                &json!({"sub": email, "aud": "vault/r", "exp": t + 300}),
            ),
            "",
        ),
        ("not a JWT", "not.a.jwt".to_string(), ""),
        (
            "a service account outside the role",
            env.emu
                .sign_login(&stranger.email, &stranger_kid, "vault/r", t + 300),
            "is not authorized for role",
        ),
        (
            "a service account outside the project",
            env.emu
                .sign_login(&elsewhere.email, &elsewhere_kid, "vault/r", t + 300),
            "not in bound projects",
        ),
        (
            "a disabled service account",
            env.emu
                .sign_login(&disabled.email, &disabled_kid, "vault/r", t + 300),
            "",
        ),
        (
            "a deleted service account",
            gone_key.sign(
                &gone_kid,
                &json!({"sub": gone.email, "aud": "vault/r", "exp": t + 300}),
            ),
            "",
        ),
    ];
    for (what, jwt, msg) in cases {
        let (s, v) = env.login("r", &jwt).await;
        assert_eq!(s, 400, "{what}: {v}");
        assert_refused(s, &v, 400, msg);
    }

    // Missing arguments and an unknown role.
    let (s, v) = call(
        &env.core,
        "POST",
        &format!("{BASE}/login"),
        None,
        Some(json!({"jwt": env.jwt()})),
    )
    .await;
    assert_refused(s, &v, 400, "role is required");
    let (s, v) = call(
        &env.core,
        "POST",
        &format!("{BASE}/login"),
        None,
        Some(json!({"role": "r"})),
    )
    .await;
    assert_refused(s, &v, 400, "jwt argument is required");
    let (s, v) = env.login("nope", &env.jwt()).await;
    assert_refused(s, &v, 400, "role \"nope\" not found");

    assert_eq!(env.tokens().await, before, "a refused login issued a token");
    env.assert_login_ok().await;
}

/// Google answering 4xx: 400 naming the status; failing: 502. No token,
/// no secret in the answer, and nothing changes.
#[tokio::test]
async fn google_refusing_or_failing() {
    let env = Env::new().await;
    let before = env.tokens().await;
    let creds: Value = serde_json::from_str(&env.emu.credentials_json()).unwrap();
    let private_key = creds["private_key"].as_str().unwrap().to_string();
    let check = |s: u16, v: &Value, status: u16, what: &str| {
        assert_eq!(s, status, "{what}: {v}");
        assert!(
            !v["errors"].as_array().expect(what).is_empty(),
            "{what}: {v}"
        );
        assert!(v.get("auth").is_none_or(Value::is_null), "{what}: {v}");
        let text = v.to_string();
        assert!(!text.contains("ya29."), "{what}: access token leaked: {v}");
        assert!(
            !text.contains(private_key.lines().nth(1).unwrap()),
            "{what}: {v}"
        );
    };

    // Cold (no access token, no key cached): each endpoint in turn.
    for (endpoint, failure, status, what) in [
        (Endpoint::Token, Failure::Status(403), 400, "OAuth2 refuses"),
        (Endpoint::Token, Failure::Status(500), 502, "OAuth2 fails"),
        (Endpoint::Token, Failure::Garbage, 502, "OAuth2 garbage"),
        (Endpoint::Key, Failure::Status(403), 400, "IAM key 403"),
        (Endpoint::Key, Failure::Status(500), 502, "IAM key 500"),
        (Endpoint::Key, Failure::Garbage, 502, "IAM key garbage"),
        (
            Endpoint::ServiceAccount,
            Failure::Status(403),
            400,
            "IAM account 403",
        ),
        (
            Endpoint::ServiceAccount,
            Failure::Status(500),
            502,
            "IAM account 500",
        ),
        (
            Endpoint::ServiceAccount,
            Failure::Garbage,
            502,
            "IAM account garbage",
        ),
    ] {
        env.emu.set_failure(endpoint, Some(failure.clone()));
        let (s, v) = env.login("r", &env.jwt()).await;
        check(s, &v, status, what);
        if status == 400 {
            assert!(
                v["errors"].to_string().contains("403"),
                "{what}: the status is not named: {v}"
            );
        }
        env.emu.set_failure(endpoint, None);
    }
    // The certificate endpoint, for a signJwt key.
    let sys_kid = env.emu.add_system_key(&env.sa.email);
    let sys_jwt = env
        .emu
        .sign_login(&env.sa.email, &sys_kid, "vault/r", now() + 300);
    for (failure, status, what) in [
        (Failure::Status(500), 502, "certificates 500"),
        (Failure::Garbage, 502, "certificates garbage"),
    ] {
        env.emu.set_failure(Endpoint::Certs, Some(failure));
        let (s, v) = env.login("r", &sys_jwt).await;
        check(s, &v, status, what);
        env.emu.set_failure(Endpoint::Certs, None);
    }
    assert_eq!(env.tokens().await, before, "a refused login issued a token");
    env.assert_login_ok().await;

    // A revoked access token: IAM answers 401 -> 400 (never a token).
    env.emu.revoke_access_tokens();
    let stranger = env.emu.add_account("late", "proj-a");
    let kid = env.emu.add_key(&stranger.email);
    let jwt = env
        .emu
        .sign_login(&stranger.email, &kid, "vault/r", now() + 300);
    let (s, v) = env.login("r", &jwt).await;
    check(s, &v, 400, "IAM 401");
}

#[tokio::test]
async fn google_down_is_a_bad_gateway() {
    let env = Env::new().await;
    let before = env.tokens().await;
    let down = closed_url().await;
    let (s, v) = post(
        &env.core,
        &env.root,
        "config",
        json!({"credentials": env.emu.credentials_json_at(&down),
               "custom_endpoint": env.emu.custom_endpoint_at(&down)}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = env.login("r", &env.jwt()).await;
    assert_eq!(s, 502, "{v}");
    assert!(!v["errors"].as_array().unwrap().is_empty(), "{v}");
    assert!(v.get("auth").is_none_or(Value::is_null), "{v}");
    assert_eq!(env.tokens().await, before);

    // Google back (the same emulator): logins work again.
    let (s, v) = post(
        &env.core,
        &env.root,
        "config",
        json!({"credentials": env.emu.credentials_json(),
               "custom_endpoint": env.emu.custom_endpoint()}),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    env.assert_login_ok().await;
}

#[tokio::test]
async fn plain_http_endpoints_work() {
    // custom_endpoint and token_uri may be plain http URLs.
    let env = Env::new_at(Base::Http).await;
    env.assert_login_ok().await;
    assert_eq!(env.emu.count(Endpoint::Token), 1, "{:?}", env.emu.seen());
    assert_eq!(env.emu.count(Endpoint::Key), 1, "{:?}", env.emu.seen());
}

/// The emulator itself refuses what Google refuses, so that the refusals
/// above are Strongroom's doing and the successes are earned.
#[tokio::test]
async fn emulator_authenticates_like_google() {
    let emu = Emulator::start().await;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(emu.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let sa = emu.add_account("x", "proj-a");
    let kid = emu.add_key(&sa.email);
    let sys_kid = emu.add_system_key(&sa.email);
    let iam = format!("{}/v1/projects/-/serviceAccounts/{}", emu.url, sa.email);

    let r = client.get(&iam).send().await.unwrap();
    assert_eq!(r.status(), 401, "IAM without a bearer");
    let r = client
        .get(&iam)
        .bearer_auth("ya29.forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "IAM with a forged bearer");

    let assertion = |key: &RsaKey| {
        let t = now();
        key.sign(
            emu.admin_kid(),
            &json!({"iss": emu.admin.email, "scope": gcp::SCOPE,
                    "aud": format!("{}/token", emu.url), "iat": t, "exp": t + 3600}),
        )
    };
    let grant = |jwt: String| {
        client
            .post(format!("{}/token", emu.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"
            ))
            .send()
    };
    let r = grant(assertion(&RsaKey::generate("stray"))).await.unwrap();
    assert_eq!(r.status(), 400, "an assertion signed by another key");
    let r = grant(assertion(&emu.key(&emu.admin.email, emu.admin_kid())))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(body["expires_in"], 3599);

    let r: Value = client
        .get(&iam)
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["uniqueId"], json!(sa.unique_id));
    assert_eq!(r["projectId"], "proj-a");
    let key_url = |k: &str| format!("{iam}/keys/{k}?publicKeyType=TYPE_X509_PEM_FILE");
    let r = client
        .get(key_url(&kid))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(key_url(&sys_kid))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "signJwt keys are not IAM keys");
    let r: Value = client
        .get(format!(
            "{}/service_accounts/v1/metadata/x509/{}",
            emu.url, sa.email
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r.get(&sys_kid).is_some() && r.get(&kid).is_none(), "{r}");
}
