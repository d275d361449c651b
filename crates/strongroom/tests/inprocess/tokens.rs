//! In-process tests of tokens, leases, cubbyholes and response wrapping:
//! the behaviours that depend on timing, concurrency, restarts or on what
//! storage holds, which a client-level differential test cannot see.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strongroom_test::inprocess;

use std::sync::Arc;
use std::time::{Duration, Instant};

use inprocess::{call, call_with, core_on, core_with, init, unseal, unsealed_inmem, Revoked};
use serde_json::{json, Value};
use strongroom_core::Core;

async fn create(core: &Arc<Core>, token: &str, body: Value) -> (String, String) {
    let (s, v) = call(
        core,
        "POST",
        "/v1/auth/token/create",
        Some(token),
        Some(body),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    (
        v["auth"]["client_token"].as_str().unwrap().to_string(),
        v["auth"]["accessor"].as_str().unwrap().to_string(),
    )
}

async fn lookup_status(core: &Arc<Core>, root: &str, token: &str) -> u16 {
    call(
        core,
        "POST",
        "/v1/auth/token/lookup",
        Some(root),
        Some(json!({"token": token})),
    )
    .await
    .0
}

/// Installs the policy `creator`, which may create child tokens.
async fn creator_policy(core: &Arc<Core>, root: &str) {
    let (s, _) = call(
        core,
        "PUT",
        "/v1/sys/policies/acl/creator",
        Some(root),
        Some(json!({"policy": "path \"auth/token/create*\" { capabilities = [\"update\"] }"})),
    )
    .await;
    assert_eq!(s, 204);
}

/// The status of `lookup-accessor` for `accessor` (400 once revoked).
async fn accessor_status(core: &Arc<Core>, root: &str, accessor: &str) -> u16 {
    call(
        core,
        "POST",
        "/v1/auth/token/lookup-accessor",
        Some(root),
        Some(json!({"accessor": accessor})),
    )
    .await
    .0
}

/// Polls `cond` until it holds or `limit` passes (expiry is driven by the
/// clock: the test waits for time to pass, then for the reaper to act).
async fn eventually<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn revoking_a_parent_takes_its_tree_but_not_orphans() {
    let (core, root, _) = unsealed_inmem().await;
    let (parent, _) = create(&core, &root, json!({"policies": ["default"]})).await;
    // The default policy cannot create tokens: give the parent a policy
    // that can.
    creator_policy(&core, &root).await;
    let (parent2, _) = create(&core, &root, json!({"policies": ["creator"]})).await;
    let (child, _) = create(&core, &parent2, json!({"policies": ["creator"]})).await;
    let (grandchild, _) = create(&core, &child, json!({})).await;
    let (s, v) = call(
        &core,
        "POST",
        "/v1/auth/token/create-orphan",
        Some(&child),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let orphan = v["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(v["auth"]["orphan"], true);

    let (s, _) = call(
        &core,
        "POST",
        "/v1/auth/token/revoke",
        Some(&root),
        Some(json!({"token": parent2})),
    )
    .await;
    assert_eq!(s, 204);
    for gone in [&parent2, &child, &grandchild] {
        // OpenBao: 403 "bad token".
        assert_eq!(lookup_status(&core, &root, gone).await, 403);
        let (s, _) = call(&core, "GET", "/v1/auth/token/lookup-self", Some(gone), None).await;
        assert_eq!(s, 403);
    }
    assert_eq!(lookup_status(&core, &root, &orphan).await, 200);
    assert_eq!(lookup_status(&core, &root, &parent).await, 200);

    // revoke-orphan: the children survive, as orphans.
    let (p, _) = create(&core, &root, json!({"policies": ["creator"]})).await;
    let (c, _) = create(&core, &p, json!({})).await;
    let (s, _) = call(
        &core,
        "POST",
        "/v1/auth/token/revoke-orphan",
        Some(&root),
        Some(json!({"token": p})),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(lookup_status(&core, &root, &p).await, 403);
    let (s, v) = call(
        &core,
        "POST",
        "/v1/auth/token/lookup",
        Some(&root),
        Some(json!({"token": c})),
    )
    .await;
    assert_eq!((s, &v["data"]["orphan"]), (200, &json!(true)));
}

#[tokio::test]
async fn num_uses_are_spent_exactly_even_concurrently() {
    let (core, root, _) = unsealed_inmem().await;
    let (token, _) = create(
        &core,
        &root,
        json!({"num_uses": 3, "policies": ["default"]}),
    )
    .await;
    let mut calls = Vec::new();
    for _ in 0..12 {
        let core = core.clone();
        let token = token.clone();
        calls.push(tokio::spawn(async move {
            call(
                &core,
                "GET",
                "/v1/auth/token/lookup-self",
                Some(&token),
                None,
            )
            .await
            .0
        }));
    }
    let mut statuses = Vec::new();
    for c in calls {
        statuses.push(c.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        9,
        "{statuses:?}"
    );
    // The used-up token is revoked, not just refused.
    assert_eq!(lookup_status(&core, &root, &token).await, 403);
}

#[tokio::test]
async fn cubbyholes_are_private_and_die_with_their_token() {
    let (core, root, _) = unsealed_inmem().await;
    let (a, _) = create(&core, &root, json!({"policies": ["default"]})).await;
    let (b, _) = create(&core, &root, json!({"policies": ["default"]})).await;
    let (s, _) = call(
        &core,
        "PUT",
        "/v1/cubbyhole/note",
        Some(&a),
        Some(json!({"k": "v"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, v) = call(&core, "GET", "/v1/cubbyhole/note", Some(&a), None).await;
    assert_eq!((s, &v["data"]), (200, &json!({"k": "v"})));
    let (s, _) = call(&core, "GET", "/v1/cubbyhole/note", Some(&b), None).await;
    assert_eq!(s, 404);
    let cubbyhole = core.active().unwrap().root().cubbyhole.clone();
    assert_eq!(cubbyhole.list("").await.unwrap().len(), 1);
    let (s, _) = call(&core, "POST", "/v1/auth/token/revoke-self", Some(&a), None).await;
    assert_eq!(s, 204);
    assert!(cubbyhole.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_wrapped_response_unwraps_exactly_once() {
    let (core, root, _) = unsealed_inmem().await;
    let (s, v) = call_with(
        &core,
        "POST",
        "/v1/sys/wrapping/wrap",
        Some(&root),
        Some(json!({"answer": 42})),
        &[("X-Vault-Wrap-TTL", "5m")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"], Value::Null);
    let wrap = v["wrap_info"]["token"].as_str().unwrap().to_string();
    let mut calls = Vec::new();
    for i in 0..8 {
        let core = core.clone();
        let wrap = wrap.clone();
        let root = root.clone();
        calls.push(tokio::spawn(async move {
            // Half in the header, half in the body.
            if i % 2 == 0 {
                call(&core, "POST", "/v1/sys/wrapping/unwrap", Some(&wrap), None).await
            } else {
                call(
                    &core,
                    "POST",
                    "/v1/sys/wrapping/unwrap",
                    Some(&root),
                    Some(json!({"token": wrap})),
                )
                .await
            }
        }));
    }
    let mut ok = Vec::new();
    for c in calls {
        let (s, v) = c.await.unwrap();
        if s == 200 {
            ok.push(v);
        } else {
            assert_eq!(s, 400, "{v}");
        }
    }
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0]["data"], json!({"answer": 42}));
    // Nothing of the wrapping token is left behind.
    let cubbyhole = core.active().unwrap().root().cubbyhole.clone();
    assert!(cubbyhole.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn expired_tokens_are_revoked_with_their_children() {
    let (core, root, _) = unsealed_inmem().await;
    creator_policy(&core, &root).await;
    let (parent, _) = create(&core, &root, json!({"policies": ["creator"], "ttl": "1s"})).await;
    let (child, child_accessor) = create(&core, &parent, json!({"ttl": "1h"})).await;
    assert_eq!(lookup_status(&core, &root, &child).await, 200);
    // The child outlives its own TTL's start but not its parent: once the
    // parent expires, the reaper revokes the tree.
    let gone = eventually(Duration::from_secs(10), || async {
        accessor_status(&core, &root, &child_accessor).await == 400
    })
    .await;
    assert!(gone, "the child of an expired token must be revoked");
}

#[tokio::test]
async fn leases_are_revoked_on_expiry_by_hand_and_with_their_token() {
    let revoked = Revoked::default();
    let core = core_with(
        Arc::new(strongroom_storage::InmemBackend::new()),
        revoked.clone(),
    );
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    let root = init.root;
    let (s, _) = call(
        &core,
        "POST",
        "/v1/sys/mounts/lease",
        Some(&root),
        Some(json!({"type": "leasing"})),
    )
    .await;
    assert_eq!(s, 204);

    // Leased on read: a lease id under the read path.
    let (s, v) = call(&core, "GET", "/v1/lease/db?ttl=3600", Some(&root), None).await;
    assert_eq!(s, 200, "{v}");
    let lease = v["lease_id"].as_str().unwrap().to_string();
    assert!(lease.starts_with("lease/db/"), "{lease}");
    assert_eq!(
        (v["lease_duration"].as_u64(), v["renewable"].as_bool()),
        (Some(3600), Some(true))
    );
    let (s, v) = call(
        &core,
        "PUT",
        "/v1/sys/leases/lookup",
        Some(&root),
        Some(json!({"lease_id": lease})),
    )
    .await;
    assert_eq!((s, &v["data"]["id"]), (200, &json!(lease)));
    let (s, v) = call(
        &core,
        "PUT",
        "/v1/sys/leases/renew",
        Some(&root),
        Some(json!({"lease_id": lease, "increment": 60})),
    )
    .await;
    assert_eq!((s, v["lease_duration"].as_u64()), (200, Some(60)), "{v}");
    let (s, v) = call(
        &core,
        "LIST",
        "/v1/sys/leases/lookup/lease/db/",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["keys"].as_array().unwrap().len(), 1);

    // By hand.
    let (s, _) = call(
        &core,
        "PUT",
        "/v1/sys/leases/revoke",
        Some(&root),
        Some(json!({"lease_id": lease})),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(revoked.lock().unwrap().as_slice(), ["db"]);
    let (s, _) = call(
        &core,
        "PUT",
        "/v1/sys/leases/lookup",
        Some(&root),
        Some(json!({"lease_id": lease})),
    )
    .await;
    assert_eq!(s, 400);

    // With the token that read it.
    let (token, _) = create(&core, &root, json!({"policies": ["root"]})).await;
    let (s, _) = call(&core, "GET", "/v1/lease/cache?ttl=3600", Some(&token), None).await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &core,
        "POST",
        "/v1/auth/token/revoke-self",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(revoked.lock().unwrap().as_slice(), ["db", "cache"]);

    // On expiry.
    let (s, _) = call(&core, "GET", "/v1/lease/short?ttl=1", Some(&root), None).await;
    assert_eq!(s, 200);
    let expired = eventually(Duration::from_secs(10), || async {
        revoked.lock().unwrap().iter().any(|r| r == "short")
    })
    .await;
    assert!(expired, "a lease must be revoked when it expires");

    // By prefix.
    for name in ["p/a", "p/b"] {
        call(
            &core,
            "GET",
            &format!("/v1/lease/{name}?ttl=3600"),
            Some(&root),
            None,
        )
        .await;
    }
    let (s, _) = call(
        &core,
        "PUT",
        "/v1/sys/leases/revoke-prefix/lease/p",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let r = revoked.lock().unwrap().clone();
    assert!(
        r.contains(&"p/a".to_string()) && r.contains(&"p/b".to_string()),
        "{r:?}"
    );
}

#[tokio::test]
async fn expiry_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.redb");
    let (root, key, child_accessor, long_accessor) = {
        let core = core_on(Arc::new(
            strongroom_storage::RedbBackend::open(&path).unwrap(),
        ));
        let init = init(&core, 1, 1).await;
        unseal(&core, &init.keys_b64[0]).await;
        let root = init.root.clone();
        creator_policy(&core, &root).await;
        let (parent, _) = create(&core, &root, json!({"policies": ["creator"], "ttl": "2s"})).await;
        let (_, child_accessor) = create(&core, &parent, json!({"ttl": "1h"})).await;
        let (_, long_accessor) = create(&core, &root, json!({"ttl": "1h"})).await;
        (
            root,
            init.keys_b64[0].clone(),
            child_accessor,
            long_accessor,
        )
    };
    // The server is down while the parent's TTL runs out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let core = core_on(Arc::new(
        strongroom_storage::RedbBackend::open(&path).unwrap(),
    ));
    unseal(&core, &key).await;
    let gone = eventually(Duration::from_secs(10), || async {
        accessor_status(&core, &root, &child_accessor).await == 400
    })
    .await;
    assert!(
        gone,
        "a token expired while the server was down is revoked after unseal"
    );
    assert_eq!(accessor_status(&core, &root, &long_accessor).await, 200);
}

#[tokio::test]
async fn tokens_and_leases_survive_seal_and_unseal() {
    let revoked = Revoked::default();
    let core = core_with(
        Arc::new(strongroom_storage::InmemBackend::new()),
        revoked.clone(),
    );
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    let root = init.root;
    call(
        &core,
        "POST",
        "/v1/sys/mounts/lease",
        Some(&root),
        Some(json!({"type": "leasing"})),
    )
    .await;
    let (s, v) = call(&core, "GET", "/v1/lease/db?ttl=3600", Some(&root), None).await;
    assert_eq!(s, 200);
    let lease = v["lease_id"].as_str().unwrap().to_string();
    let (token, _) = create(
        &core,
        &root,
        json!({"policies": ["default"], "num_uses": 5}),
    )
    .await;
    call(
        &core,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(&token),
        None,
    )
    .await;
    call(&core, "PUT", "/v1/sys/seal", Some(&root), None).await;
    unseal(&core, &init.keys_b64[0]).await;
    let (s, v) = call(
        &core,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(&token),
        None,
    )
    .await;
    // One use before the seal, one now: the count survived.
    assert_eq!((s, v["data"]["num_uses"].as_i64()), (200, Some(3)));
    let (s, _) = call(
        &core,
        "PUT",
        "/v1/sys/leases/lookup",
        Some(&root),
        Some(json!({"lease_id": lease})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(revoked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn wrapping_ttl_bounds_and_wrapping_token_limits() {
    let (core, root, _) = unsealed_inmem().await;
    let (s, _) = call(
        &core,
        "PUT",
        "/v1/sys/policies/acl/wrapped",
        Some(&root),
        Some(json!({"policy": "path \"cubbyhole/*\" { capabilities = [\"read\", \"create\", \"update\"] min_wrapping_ttl = \"1m\" max_wrapping_ttl = \"10m\" }"})),
    )
    .await;
    assert_eq!(s, 204);
    let (token, _) = create(&core, &root, json!({"policies": ["wrapped"]})).await;
    // Writes need wrapping too (a min TTL means "must wrap").
    let (s, _) = call(
        &core,
        "PUT",
        "/v1/cubbyhole/x",
        Some(&token),
        Some(json!({"a": 1})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call_with(
        &core,
        "PUT",
        "/v1/cubbyhole/x",
        Some(&token),
        Some(json!({"a": 1})),
        &[("X-Vault-Wrap-TTL", "5m")],
    )
    .await;
    assert_eq!(s, 204);
    for (ttl, status) in [("30s", 403), ("20m", 403), ("5m", 200)] {
        let (s, v) = call_with(
            &core,
            "GET",
            "/v1/cubbyhole/x",
            Some(&token),
            None,
            &[("X-Vault-Wrap-TTL", ttl)],
        )
        .await;
        assert_eq!(s, status, "{ttl}: {v}");
        if s == 200 {
            assert_eq!(
                (v["data"].clone(), v["wrap_info"]["ttl"].as_u64()),
                (Value::Null, Some(300))
            );
        }
    }
    // A wrapping token can do nothing but unwrap, look up and rewrap, and
    // a refused use still spends it.
    let (_, v) = call_with(
        &core,
        "POST",
        "/v1/sys/wrapping/wrap",
        Some(&root),
        Some(json!({"a": 1})),
        &[("X-Vault-Wrap-TTL", "1m")],
    )
    .await;
    let wrap = v["wrap_info"]["token"].as_str().unwrap().to_string();
    let (s, _) = call(&core, "GET", "/v1/cubbyhole/response", Some(&wrap), None).await;
    assert_eq!(s, 403);
    let (s, _) = call(&core, "POST", "/v1/sys/wrapping/unwrap", Some(&wrap), None).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn lease_ttls_come_from_the_server_config_and_mount_tune() {
    use strongroom_core::mount::SystemTtls;
    use strongroom_core::CoreConfig;
    let config = CoreConfig {
        ttls: SystemTtls {
            default: Duration::from_secs(3600),
            max: Duration::from_secs(7200),
        },
        ..Default::default()
    };
    let core = Core::new(
        Arc::new(strongroom_storage::InmemBackend::new()),
        config,
        inprocess::registry_with(Revoked::default()),
    );
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    let root = init.root;
    let (s, v) = call(
        &core,
        "POST",
        "/v1/auth/token/create",
        Some(&root),
        Some(json!({"policies": ["default"]})),
    )
    .await;
    assert_eq!((s, v["auth"]["lease_duration"].as_u64()), (200, Some(3600)));
    let (s, v) = call(
        &core,
        "POST",
        "/v1/auth/token/create",
        Some(&root),
        Some(json!({"policies": ["default"], "ttl": "5h"})),
    )
    .await;
    assert_eq!((s, v["auth"]["lease_duration"].as_u64()), (200, Some(7200)));
    // Tuning the token mount changes the default for new tokens.
    let (s, _) = call(
        &core,
        "POST",
        "/v1/sys/auth/token/tune",
        Some(&root),
        Some(json!({"default_lease_ttl": "10m"})),
    )
    .await;
    assert_eq!(s, 204);
    let (_, v) = call(
        &core,
        "POST",
        "/v1/auth/token/create",
        Some(&root),
        Some(json!({"policies": ["default"]})),
    )
    .await;
    assert_eq!(v["auth"]["lease_duration"].as_u64(), Some(600));
    // A secrets mount's max TTL caps its leases.
    call(
        &core,
        "POST",
        "/v1/sys/mounts/lease",
        Some(&root),
        Some(json!({"type": "leasing", "config": {"max_lease_ttl": "60s"}})),
    )
    .await;
    let (s, v) = call(&core, "GET", "/v1/lease/x?ttl=3600", Some(&root), None).await;
    assert_eq!((s, v["lease_duration"].as_u64()), (200, Some(60)), "{v}");
}

#[tokio::test]
async fn a_login_issues_an_orphan_token_within_the_mount_limits() {
    let (core, root, _) = unsealed_inmem().await;
    let (s, v) = call(
        &core,
        "POST",
        "/v1/sys/auth/pw",
        Some(&root),
        Some(json!({"type": "test-login", "config": {"max_lease_ttl": "1h"}})),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = call(
        &core,
        "POST",
        "/v1/auth/pw/login",
        None,
        Some(json!({"policies": ["reader"], "ttl": 7200, "num_uses": 2})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let auth = &v["auth"];
    assert_eq!(auth["policies"], json!(["default", "reader"]));
    assert_eq!(auth["metadata"], json!({"user": "tester"}));
    assert_eq!(
        (auth["lease_duration"].as_u64(), auth["orphan"].as_bool()),
        (Some(3600), Some(true))
    );
    assert_eq!(
        (auth["token_type"].as_str(), auth["num_uses"].as_u64()),
        (Some("service"), Some(2))
    );
    let token = auth["client_token"].as_str().unwrap().to_string();
    let (s, v) = call(
        &core,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            v["data"]["path"].as_str(),
            v["data"]["display_name"].as_str()
        ),
        (Some("auth/pw/login"), Some("pw-tester"))
    );
    // The use limit holds: lookup-self above was one, this is the last.
    let (s, _) = call(
        &core,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &core,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(s, 403);
    // Bound CIDRs hold on every use (in-process calls have no address).
    let (_, v) = call(
        &core,
        "POST",
        "/v1/auth/pw/login",
        None,
        Some(json!({"bound_cidrs": ["10.0.0.0/8"]})),
    )
    .await;
    let bound = v["auth"]["client_token"].as_str().unwrap().to_string();
    let (s, _) = call(
        &core,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(&bound),
        None,
    )
    .await;
    assert_eq!(s, 403);
    // A token bound to the login address needs one (in-process calls have
    // none); the AppRole end-to-end test covers the bound case.
    let (s, v) = call(
        &core,
        "POST",
        "/v1/auth/pw/login",
        None,
        Some(json!({"strictly_bind_ip": true})),
    )
    .await;
    assert_eq!(
        (s, &v["errors"][0]),
        (400, &json!("failed to get connection information"))
    );
    // Root cannot be issued by a login; batch tokens can.
    let (s, _) = call(
        &core,
        "POST",
        "/v1/auth/pw/login",
        None,
        Some(json!({"policies": ["root"]})),
    )
    .await;
    assert_eq!(s, 400);
    let (_, v) = call(
        &core,
        "POST",
        "/v1/auth/pw/login",
        None,
        Some(json!({"token_type": "batch"})),
    )
    .await;
    assert!(v["auth"]["client_token"]
        .as_str()
        .unwrap()
        .starts_with("b."));
    // A wrapped login hides the token and names its accessor.
    let (s, v) = call_with(
        &core,
        "POST",
        "/v1/auth/pw/login",
        None,
        Some(json!({})),
        &[("X-Vault-Wrap-TTL", "1m")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["auth"], Value::Null);
    assert!(!v["wrap_info"]["wrapped_accessor"]
        .as_str()
        .unwrap()
        .is_empty());
    let wrap = v["wrap_info"]["token"].as_str().unwrap().to_string();
    let (s, v) = call(&core, "POST", "/v1/sys/wrapping/unwrap", Some(&wrap), None).await;
    assert_eq!(s, 200);
    assert!(v["auth"]["client_token"]
        .as_str()
        .unwrap()
        .starts_with("s."));
}
