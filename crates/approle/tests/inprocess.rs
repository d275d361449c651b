//! The AppRole auth method end to end through the in-process server:
//! roles, role ids, secret ids, logins, use limits under concurrency,
//! expiry and tidy, role deletion, and bad input that must change nothing.
//! (In-process calls carry no client address; CIDR checks against an
//! address are covered by the e2e tests.)
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strongroom_test::inprocess;

use std::sync::Arc;
use std::time::{Duration, Instant};

use inprocess::{call, call_with};
use serde_json::{json, Value};
use strongroom_core::Core;

const BASE: &str = "/v1/auth/approle";

async fn setup() -> (Arc<Core>, String) {
    inprocess::with_auth_method("approle").await
}

async fn write_role(core: &Arc<Core>, root: &str, name: &str, body: Value) {
    let (s, v) = call(
        core,
        "POST",
        &format!("{BASE}/role/{name}"),
        Some(root),
        Some(body),
    )
    .await;
    assert_eq!(s, 204, "{v}");
}

async fn role_id(core: &Arc<Core>, root: &str, name: &str) -> String {
    let (s, v) = call(
        core,
        "GET",
        &format!("{BASE}/role/{name}/role-id"),
        Some(root),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["data"]["role_id"].as_str().unwrap().to_string()
}

/// Generates a secret id; returns (secret id, accessor).
async fn secret_id(core: &Arc<Core>, root: &str, name: &str, body: Value) -> (String, String) {
    let (s, v) = call(
        core,
        "POST",
        &format!("{BASE}/role/{name}/secret-id"),
        Some(root),
        Some(body),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    (
        v["data"]["secret_id"].as_str().unwrap().to_string(),
        v["data"]["secret_id_accessor"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

async fn login(core: &Arc<Core>, role_id: &str, secret_id: &str) -> (u16, Value) {
    call(
        core,
        "POST",
        &format!("{BASE}/login"),
        None,
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    )
    .await
}

async fn list_accessors(core: &Arc<Core>, root: &str, name: &str) -> (u16, Vec<String>) {
    let (s, v) = call(
        core,
        "LIST",
        &format!("{BASE}/role/{name}/secret-id"),
        Some(root),
        None,
    )
    .await;
    let keys = v["data"]["keys"]
        .as_array()
        .map(|a| a.iter().map(|k| k.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    (s, keys)
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_msg: &str) {
    assert_eq!(status, want_status, "{body}");
    let errors = body["errors"].as_array().expect("errors list");
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains(want_msg)),
        "{body} should mention {want_msg:?}"
    );
}

#[tokio::test]
async fn role_secret_id_and_login_flow() {
    let (core, root) = setup().await;
    write_role(
        &core,
        &root,
        "App",
        json!({"token_policies": "reader, writer", "token_ttl": "1h", "token_max_ttl": "2h",
               "token_num_uses": 5, "secret_id_num_uses": 10, "secret_id_ttl": "10m"}),
    )
    .await;
    // Names are case-insensitive and listed lowercased.
    let (s, v) = call(&core, "LIST", &format!("{BASE}/role"), Some(&root), None).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["keys"], json!(["app"]));
    let (s, v) = call(&core, "GET", &format!("{BASE}/role/app"), Some(&root), None).await;
    assert_eq!(s, 200);
    let d = &v["data"];
    assert_eq!(d["token_policies"], json!(["reader", "writer"]));
    assert_eq!(d["token_ttl"], 3600);
    assert_eq!(d["token_max_ttl"], 7200);
    assert_eq!(d["secret_id_num_uses"], 10);
    assert_eq!(d["secret_id_ttl"], 600);
    assert_eq!(d["bind_secret_id"], true);
    assert_eq!(d["secret_id_bound_cidrs"], Value::Null);
    assert_eq!(d["token_type"], "default");

    let rid = role_id(&core, &root, "APP").await;
    let (sid, accessor) = secret_id(
        &core,
        &root,
        "app",
        json!({"metadata": "{\"team\": \"blue\"}", "num_uses": 4}),
    )
    .await;
    let (s, keys) = list_accessors(&core, &root, "app").await;
    assert_eq!((s, keys), (200, vec![accessor.clone()]));

    // Lookups by secret id and by accessor agree and never show the secret.
    let (s, by_secret) = call(
        &core,
        "POST",
        &format!("{BASE}/role/app/secret-id/lookup"),
        Some(&root),
        Some(json!({"secret_id": sid})),
    )
    .await;
    assert_eq!(s, 200, "{by_secret}");
    let (s, by_accessor) = call(
        &core,
        "POST",
        &format!("{BASE}/role/app/secret-id-accessor/lookup"),
        Some(&root),
        Some(json!({"secret_id_accessor": accessor})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(by_secret["data"], by_accessor["data"]);
    let d = &by_accessor["data"];
    assert_eq!(d["metadata"], json!({"team": "blue"}));
    assert_eq!(d["secret_id_num_uses"], 4);
    assert_eq!(d["secret_id_ttl"], 600);
    assert_eq!(d["secret_id_accessor"], accessor.as_str());
    assert!(d.get("secret_id").is_none());
    assert!(!by_accessor.to_string().contains(&sid));

    let (s, v) = login(&core, &rid, &sid).await;
    assert_eq!(s, 200, "{v}");
    let auth = &v["auth"];
    assert_eq!(
        auth["metadata"],
        json!({"role_name": "app", "team": "blue"})
    );
    assert_eq!(
        auth["token_policies"],
        json!(["default", "reader", "writer"])
    );
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["num_uses"], 5);
    assert_eq!(auth["orphan"], true);
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
    assert_eq!(v["data"]["display_name"], "approle");
    assert_eq!(v["data"]["path"], "auth/approle/login");
    assert_eq!(v["data"]["meta"]["role_name"], "app");

    // The use was counted.
    let (_, v) = call(
        &core,
        "POST",
        &format!("{BASE}/role/app/secret-id-accessor/lookup"),
        Some(&root),
        Some(json!({"secret_id_accessor": accessor})),
    )
    .await;
    assert_eq!(v["data"]["secret_id_num_uses"], 3);

    // Wrong secret id, a secret id of another role, an unknown role id.
    let (s, v) = login(&core, &rid, "not-the-secret").await;
    assert_error(s, &v, 400, "invalid role or secret ID");
    write_role(&core, &root, "other", json!({})).await;
    let (other_sid, _) = secret_id(&core, &root, "other", json!({})).await;
    let (s, v) = login(&core, &rid, &other_sid).await;
    assert_error(s, &v, 400, "invalid role or secret ID");
    let (s, v) = login(&core, "no-such-role-id", &sid).await;
    assert_error(s, &v, 400, "invalid role or secret ID");
    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/login"),
        None,
        Some(json!({"role_id": rid})),
    )
    .await;
    assert_error(s, &v, 400, "missing secret_id");

    // An accessor of another role cannot destroy this role's secret id.
    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/role/other/secret-id-accessor/destroy"),
        Some(&root),
        Some(json!({"secret_id_accessor": accessor})),
    )
    .await;
    assert_error(s, &v, 403, "invalid secret id accessor");
    let (s, _) = call(
        &core,
        "POST",
        &format!("{BASE}/role/app/secret-id-accessor/destroy"),
        Some(&root),
        Some(json!({"secret_id_accessor": accessor})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, v) = login(&core, &rid, &sid).await;
    assert_error(s, &v, 400, "invalid role or secret ID");
    let (s, _) = list_accessors(&core, &root, "app").await;
    assert_eq!(s, 404);

    // Destroy by secret id.
    let (s, _) = call(
        &core,
        "POST",
        &format!("{BASE}/role/other/secret-id/destroy"),
        Some(&root),
        Some(json!({"secret_id": other_sid})),
    )
    .await;
    assert_eq!(s, 204);
    let rid_other = role_id(&core, &root, "other").await;
    let (s, _) = login(&core, &rid_other, &other_sid).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn custom_secret_ids_and_wrapping() {
    let (core, root) = setup().await;
    write_role(&core, &root, "svc", json!({"secret_id_num_uses": 2})).await;
    let rid = role_id(&core, &root, "svc").await;
    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/role/svc/custom-secret-id"),
        Some(&root),
        Some(json!({"secret_id": "my-own-secret"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["secret_id"], "my-own-secret");
    assert_eq!(v["data"]["secret_id_num_uses"], 2);
    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/role/svc/custom-secret-id"),
        Some(&root),
        Some(json!({"secret_id": "my-own-secret"})),
    )
    .await;
    assert_error(s, &v, 400, "SecretID is already registered");
    let (s, v) = call_with(
        &core,
        "POST",
        &format!("{BASE}/login"),
        None,
        Some(json!({"role_id": rid, "secret_id": "my-own-secret"})),
        &[("X-Vault-Wrap-TTL", "60s")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["auth"], Value::Null);
    assert!(v["wrap_info"]["token"].as_str().is_some(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_use_secret_id_wins_exactly_once_under_concurrency() {
    let (core, root) = setup().await;
    // Several rounds, so that an unserialised read-then-write would show;
    // a role per round, since the losers' failed logins lock a role id out
    // (OpenBao's user lockout).
    for round in 0..10 {
        let name = format!("once{round}");
        write_role(&core, &root, &name, json!({})).await;
        let rid = role_id(&core, &root, &name).await;
        let (sid, accessor) = secret_id(&core, &root, &name, json!({"num_uses": 1})).await;
        let start = Arc::new(tokio::sync::Barrier::new(32));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (core, rid, sid, start) =
                    (core.clone(), rid.clone(), sid.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    login(&core, &rid, &sid).await.0
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        let wins = statuses.iter().filter(|s| **s == 200).count();
        assert_eq!(wins, 1, "round {round}: {statuses:?}");
        assert!(
            statuses.iter().all(|s| matches!(s, 200 | 400 | 403)),
            "{statuses:?}"
        );
        // The used-up secret id is gone, accessor included.
        let (s, _) = list_accessors(&core, &root, &name).await;
        assert_eq!(s, 404);
        let (s, v) = call(
            &core,
            "POST",
            &format!("{BASE}/role/{name}/secret-id-accessor/lookup"),
            Some(&root),
            Some(json!({"secret_id_accessor": accessor})),
        )
        .await;
        assert_eq!(s, 404, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_uses_are_exactly_three() {
    let (core, root) = setup().await;
    write_role(&core, &root, "thrice", json!({})).await;
    let rid = role_id(&core, &root, "thrice").await;
    // Sequentially: three logins, then refusal.
    let (sid, _) = secret_id(&core, &root, "thrice", json!({"num_uses": 3})).await;
    for i in 0..3 {
        let (s, v) = login(&core, &rid, &sid).await;
        assert_eq!(s, 200, "login {i}: {v}");
    }
    let (s, v) = login(&core, &rid, &sid).await;
    assert_error(s, &v, 400, "invalid role or secret ID");
    // In parallel: exactly three of sixteen.
    let (sid, _) = secret_id(&core, &root, "thrice", json!({"num_uses": 3})).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (core, rid, sid) = (core.clone(), rid.clone(), sid.clone());
            tokio::spawn(async move { login(&core, &rid, &sid).await.0 })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 3);
}

#[tokio::test]
async fn expired_secret_ids_fail_login_and_tidy_removes_them() {
    let (core, root) = setup().await;
    write_role(&core, &root, "brief", json!({})).await;
    let rid = role_id(&core, &root, "brief").await;
    let (probe, _) = secret_id(&core, &root, "brief", json!({"ttl": 1})).await;
    let (_left, _) = secret_id(&core, &root, "brief", json!({"ttl": "1s"})).await;
    let (keep, keep_accessor) = secret_id(&core, &root, "brief", json!({})).await;

    // Poll until the probe stops working (it must, within the deadline).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, v) = login(&core, &rid, &probe).await;
        if s == 400 {
            assert_error(s, &v, 400, "invalid role or secret ID");
            break;
        }
        assert_eq!(s, 200, "{v}");
        assert!(Instant::now() < deadline, "secret id never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/tidy/secret-id"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert!(v["warnings"][0]
        .as_str()
        .unwrap()
        .contains("Tidy operation successfully started"));
    // Tidy runs in the background: wait for only the live secret id to remain.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, keys) = list_accessors(&core, &root, "brief").await;
        if keys == vec![keep_accessor.clone()] {
            break;
        }
        assert!(Instant::now() < deadline, "tidy left {keys:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, v) = login(&core, &rid, &keep).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn deleting_a_role_removes_its_secret_ids_and_role_id() {
    let (core, root) = setup().await;
    write_role(&core, &root, "gone", json!({"role_id": "gone-role-id"})).await;
    let (sid, accessor) = secret_id(&core, &root, "gone", json!({})).await;
    let (s, _) = call(
        &core,
        "DELETE",
        &format!("{BASE}/role/gone"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &core,
        "GET",
        &format!("{BASE}/role/gone"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, v) = login(&core, "gone-role-id", &sid).await;
    assert_error(s, &v, 400, "invalid role or secret ID");

    // A new role of the same name starts empty, and the old role id is free.
    write_role(&core, &root, "gone", json!({})).await;
    let (s, _) = list_accessors(&core, &root, "gone").await;
    assert_eq!(s, 404);
    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/role/gone/secret-id/lookup"),
        Some(&root),
        Some(json!({"secret_id": sid})),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, _) = call(
        &core,
        "POST",
        &format!("{BASE}/role/gone/secret-id-accessor/lookup"),
        Some(&root),
        Some(json!({"secret_id_accessor": accessor})),
    )
    .await;
    assert_eq!(s, 404);
    write_role(&core, &root, "fresh", json!({"role_id": "gone-role-id"})).await;
    let (s, _) = login(&core, "gone-role-id", &sid).await;
    assert_eq!(s, 400);
    // Deleting a missing role is not an error.
    let (s, _) = call(
        &core,
        "DELETE",
        &format!("{BASE}/role/never"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn custom_role_ids_are_unique_across_roles() {
    let (core, root) = setup().await;
    write_role(&core, &root, "a", json!({"role_id": "shared"})).await;
    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/role/b"),
        Some(&root),
        Some(json!({"role_id": "shared"})),
    )
    .await;
    assert_error(s, &v, 400, "role_id already in use");
    let (s, _) = call(&core, "GET", &format!("{BASE}/role/b"), Some(&root), None).await;
    assert_eq!(s, 404, "a refused create stores nothing");

    write_role(&core, &root, "b", json!({})).await;
    let b_id = role_id(&core, &root, "b").await;
    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/role/b/role-id"),
        Some(&root),
        Some(json!({"role_id": "shared"})),
    )
    .await;
    assert_error(s, &v, 400, "role_id already in use");
    assert_eq!(role_id(&core, &root, "b").await, b_id);
    // Re-setting a role's own id is fine.
    let (s, _) = call(
        &core,
        "POST",
        &format!("{BASE}/role/a/role-id"),
        Some(&root),
        Some(json!({"role_id": "shared"})),
    )
    .await;
    assert_eq!(s, 204);

    // Moving a to another id frees "shared" for b; logins follow.
    let (s, _) = call(
        &core,
        "POST",
        &format!("{BASE}/role/a/role-id"),
        Some(&root),
        Some(json!({"role_id": "a-new"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &core,
        "POST",
        &format!("{BASE}/role/b/role-id"),
        Some(&root),
        Some(json!({"role_id": "shared"})),
    )
    .await;
    assert_eq!(s, 204);
    let (sid, _) = secret_id(&core, &root, "b", json!({})).await;
    let (s, v) = login(&core, "shared", &sid).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["auth"]["metadata"]["role_name"], "b");
    let (s, _) = login(&core, &b_id, &sid).await;
    assert_eq!(s, 400, "the old role id no longer logs in");
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let (core, root) = setup().await;
    write_role(
        &core,
        &root,
        "base",
        json!({"secret_id_bound_cidrs": "10.0.0.0/8", "secret_id_num_uses": 5, "secret_id_ttl": "10m",
               "token_bound_cidrs": "10.0.0.0/8"}),
    )
    .await;
    let (_, accessor) = secret_id(&core, &root, "base", json!({})).await;
    let snapshot = |core: Arc<Core>, root: String| async move {
        let roles = call(&core, "LIST", &format!("{BASE}/role"), Some(&root), None)
            .await
            .1["data"]
            .clone();
        let role = call(
            &core,
            "GET",
            &format!("{BASE}/role/base"),
            Some(&root),
            None,
        )
        .await
        .1["data"]
            .clone();
        let rid = call(
            &core,
            "GET",
            &format!("{BASE}/role/base/role-id"),
            Some(&root),
            None,
        )
        .await
        .1["data"]
            .clone();
        let (_, secrets) = list_accessors(&core, &root, "base").await;
        (roles, role, rid, secrets)
    };
    let before = snapshot(core.clone(), root.clone()).await;
    assert_eq!(before.3, vec![accessor]);

    let long = "a".repeat(4097);
    let cases: Vec<(&str, String, Value, u16, &str)> = vec![
        (
            "POST",
            "role/bad!name".into(),
            json!({}),
            404,
            "unsupported path",
        ),
        (
            "POST",
            format!("role/{long}"),
            json!({}),
            400,
            "longer than maximum of 4096 bytes",
        ),
        (
            "POST",
            "role/new".into(),
            json!({"token_type": "weird"}),
            400,
            "invalid 'token_type' value",
        ),
        (
            "POST",
            "role/new".into(),
            json!({"secret_id_bound_cidrs": "nope"}),
            400,
            "failed to validate CIDR blocks",
        ),
        (
            "POST",
            "role/new".into(),
            json!({"token_bound_cidrs": "nope"}),
            400,
            "error parsing address",
        ),
        (
            "POST",
            "role/new".into(),
            json!({"bind_secret_id": false}),
            400,
            "at least one constraint should be enabled",
        ),
        (
            "POST",
            "role/new".into(),
            json!({"secret_id_num_uses": -1}),
            400,
            "cannot be negative",
        ),
        (
            "POST",
            "role/new".into(),
            json!({"token_ttl": "2h", "token_max_ttl": "1h"}),
            400,
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ),
        (
            "POST",
            "role/base".into(),
            json!({"local_secret_ids": true}),
            400,
            "local_secret_ids can only be modified during role creation",
        ),
        (
            "POST",
            "role/base".into(),
            json!({"token_type": "batch", "token_num_uses": 2}),
            400,
            "cannot be 'batch'",
        ),
        (
            "POST",
            "role/base/secret-id".into(),
            json!({"cidr_list": "11.0.0.0/8"}),
            400,
            "failed to verify subset relationship",
        ),
        (
            "POST",
            "role/base/secret-id".into(),
            json!({"token_bound_cidrs": "11.0.0.0/8"}),
            400,
            "failed to verify subset relationship",
        ),
        (
            "POST",
            "role/base/secret-id".into(),
            json!({"cidr_list": "10.0.0.1"}),
            400,
            "invalid CIDR address",
        ),
        (
            "POST",
            "role/base/secret-id".into(),
            json!({"metadata": "not json"}),
            400,
            "failed to parse metadata",
        ),
        (
            "POST",
            "role/base/secret-id".into(),
            json!({"metadata": "{\"n\": 1}"}),
            400,
            "invalid <key,value> format",
        ),
        (
            "POST",
            "role/base/secret-id".into(),
            json!({"num_uses": 6}),
            400,
            "num_uses cannot be higher than the role's secret_id_num_uses",
        ),
        (
            "POST",
            "role/base/secret-id".into(),
            json!({"num_uses": -1}),
            400,
            "num_uses cannot be negative",
        ),
        (
            "POST",
            "role/base/secret-id".into(),
            json!({"ttl": "1h"}),
            400,
            "ttl cannot be longer than the role's secret_id_ttl",
        ),
        (
            "POST",
            "role/missing/secret-id".into(),
            json!({}),
            404,
            "role \"missing\" does not exist",
        ),
        (
            "POST",
            "role/base/custom-secret-id".into(),
            json!({}),
            400,
            "missing secret_id",
        ),
        (
            "POST",
            "role/base/role-id".into(),
            json!({"role_id": ""}),
            400,
            "missing role_id",
        ),
        (
            "POST",
            "role/base/secret-id-num-uses".into(),
            json!({"secret_id_num_uses": -3}),
            400,
            "cannot be negative",
        ),
        (
            "POST",
            "role/base/token-max-ttl".into(),
            json!({}),
            400,
            "missing token_max_ttl",
        ),
        (
            "POST",
            "role/base/token-bound-cidrs".into(),
            json!({"token_bound_cidrs": "x"}),
            400,
            "failed to parse token_bound_cidrs",
        ),
        (
            "POST",
            "role/base/secret-id-accessor/destroy".into(),
            json!({"secret_id_accessor": "nope"}),
            400,
            "failed to find accessor entry",
        ),
        (
            "LIST",
            "role/missing/secret-id".into(),
            Value::Null,
            400,
            "role \"missing\" does not exist",
        ),
    ];
    for (method, path, body, status, msg) in cases {
        let body = (!body.is_null()).then_some(body);
        let (s, v) = call(&core, method, &format!("{BASE}/{path}"), Some(&root), body).await;
        assert_eq!(s, status, "{method} {}: {v}", &path[..path.len().min(40)]);
        assert_error(s, &v, status, msg);
    }
    assert_eq!(snapshot(core.clone(), root.clone()).await, before);
    // Nothing was created under the refused names either.
    let (s, _) = call(&core, "GET", &format!("{BASE}/role/new"), Some(&root), None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn per_property_endpoints_read_update_and_reset() {
    let (core, root) = setup().await;
    write_role(&core, &root, "p", json!({})).await;
    let cases: Vec<(&str, Value, Value, Value)> = vec![
        // (suffix, POST body, GET data after POST, GET data after DELETE)
        (
            "policies",
            json!({"token_policies": "a,b"}),
            json!({"token_policies": ["a", "b"]}),
            json!({"token_policies": []}),
        ),
        (
            "policies",
            json!({"policies": "c"}),
            json!({"policies": ["c"], "token_policies": ["c"]}),
            json!({"token_policies": []}),
        ),
        (
            "secret-id-num-uses",
            json!({"secret_id_num_uses": 7}),
            json!({"secret_id_num_uses": 7}),
            json!({"secret_id_num_uses": 0}),
        ),
        (
            "secret-id-ttl",
            json!({"secret_id_ttl": "5m"}),
            json!({"secret_id_ttl": 300}),
            json!({"secret_id_ttl": 0}),
        ),
        (
            "token-ttl",
            json!({"token_ttl": "30m"}),
            json!({"token_ttl": 1800}),
            json!({"token_ttl": 0}),
        ),
        (
            "token-max-ttl",
            json!({"token_max_ttl": "2h"}),
            json!({"token_max_ttl": 7200}),
            json!({"token_max_ttl": 0}),
        ),
        (
            "secret-id-bound-cidrs",
            json!({"secret_id_bound_cidrs": "10.0.0.0/8"}),
            json!({"secret_id_bound_cidrs": ["10.0.0.0/8"]}),
            json!({"secret_id_bound_cidrs": null}),
        ),
        (
            "token-bound-cidrs",
            json!({"token_bound_cidrs": "10.0.0.1"}),
            json!({"token_bound_cidrs": ["10.0.0.1"]}),
            json!({"token_bound_cidrs": null}),
        ),
        (
            "period",
            json!({"token_period": "1h"}),
            json!({"token_period": 3600}),
            json!({"token_period": 0}),
        ),
        (
            "period",
            json!({"period": "2h"}),
            json!({"period": 7200, "token_period": 7200}),
            json!({"token_period": 0}),
        ),
        (
            "token-num-uses",
            json!({"token_num_uses": 4}),
            json!({"token_num_uses": 4}),
            json!({"token_num_uses": 0}),
        ),
        (
            "bind-secret-id",
            json!({"bind_secret_id": true}),
            json!({"bind_secret_id": true}),
            json!({"bind_secret_id": true}),
        ),
    ];
    for (suffix, body, after_post, after_delete) in cases {
        let url = format!("{BASE}/role/p/{suffix}");
        let (s, v) = call(&core, "POST", &url, Some(&root), Some(body)).await;
        assert_eq!(s, 204, "{suffix}: {v}");
        let (s, v) = call(&core, "GET", &url, Some(&root), None).await;
        assert_eq!((s, &v["data"]), (200, &after_post), "{suffix}");
        let (s, _) = call(&core, "DELETE", &url, Some(&root), None).await;
        assert_eq!(s, 204);
        let (_, v) = call(&core, "GET", &url, Some(&root), None).await;
        assert_eq!(v["data"], after_delete, "{suffix}");
    }
    // The per-property writes are the role's properties.
    let (s, _) = call(
        &core,
        "POST",
        &format!("{BASE}/role/p/token-ttl"),
        Some(&root),
        Some(json!({"token_ttl": 90})),
    )
    .await;
    assert_eq!(s, 204);
    let (_, v) = call(&core, "GET", &format!("{BASE}/role/p"), Some(&root), None).await;
    assert_eq!(v["data"]["token_ttl"], 90);
    // local-secret-ids is read-only; a role without constraints is refused.
    let (_, v) = call(
        &core,
        "GET",
        &format!("{BASE}/role/p/local-secret-ids"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(v["data"], json!({"local_secret_ids": false}));
    let (s, _) = call(
        &core,
        "POST",
        &format!("{BASE}/role/p/local-secret-ids"),
        Some(&root),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 405);
    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/role/p/bind-secret-id"),
        Some(&root),
        Some(json!({"bind_secret_id": false})),
    )
    .await;
    assert_error(s, &v, 400, "at least one constraint should be enabled");
    // Missing roles: read 404, update 404, delete 204.
    let (s, _) = call(
        &core,
        "GET",
        &format!("{BASE}/role/none/token-ttl"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(
        &core,
        "POST",
        &format!("{BASE}/role/none/token-ttl"),
        Some(&root),
        Some(json!({"token_ttl": 5})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = call(
        &core,
        "GET",
        &format!("{BASE}/role/none"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 404, "a per-property write does not create the role");
}

#[tokio::test]
async fn cidr_bound_logins_need_a_client_address() {
    let (core, root) = setup().await;
    write_role(
        &core,
        &root,
        "net",
        json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.1/32"}),
    )
    .await;
    let rid = role_id(&core, &root, "net").await;
    let (s, v) = call(
        &core,
        "POST",
        &format!("{BASE}/login"),
        None,
        Some(json!({"role_id": rid})),
    )
    .await;
    assert_error(s, &v, 400, "failed to get connection information");
}

/// Tuning the mount swaps its context in place: the backend keeps what it
/// holds in memory, so a role id locked out by failed logins stays locked
/// across a tune (a rebuild used to forget the lockout), while the new TTL
/// applies to the next token.
#[tokio::test]
async fn a_tune_keeps_the_lockout_and_applies_the_new_ttl() {
    let (core, root) = setup().await;
    write_role(&core, &root, "tuned", json!({})).await;
    let rid = role_id(&core, &root, "tuned").await;
    let (sid, _) = secret_id(&core, &root, "tuned", json!({})).await;
    for _ in 0..5 {
        let (s, v) = login(&core, &rid, "wrong").await;
        assert_eq!(s, 400, "{v}");
    }
    let (s, v) = login(&core, &rid, &sid).await;
    assert_eq!(s, 403, "locked out before the tune: {v}");
    let (s, v) = call(
        &core,
        "POST",
        "/v1/sys/auth/approle/tune",
        Some(&root),
        Some(json!({"default_lease_ttl": "42m"})),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = login(&core, &rid, &sid).await;
    assert_eq!(s, 403, "still locked out after the tune: {v}");

    // Another role's token gets the tuned default TTL.
    write_role(&core, &root, "fresh", json!({})).await;
    let rid = role_id(&core, &root, "fresh").await;
    let (sid, _) = secret_id(&core, &root, "fresh", json!({})).await;
    let (s, v) = login(&core, &rid, &sid).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["auth"]["lease_duration"], 42 * 60);
}
