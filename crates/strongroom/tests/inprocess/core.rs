//! In-process tests of the core behind the real HTTP router (axum `oneshot`,
//! no sockets): the seal life cycle with Shamir shares, persistence behind
//! the barrier, mounts, and the promise that storage never holds plaintext.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strongroom_test::inprocess;

use std::sync::Arc;

use inprocess::{call, core_on, init, unseal};
use serde_json::json;
use strongroom_sdk::storage::Backend;

#[tokio::test]
async fn shamir_unseal_with_any_threshold_subset() {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let init = init(&core, 3, 2).await;
    assert_eq!(init.keys_hex.len(), 3);
    assert!(init.root.starts_with("s."));
    // Initialisation leaves the server sealed.
    let (s, v) = call(&core, "GET", "/v1/sys/seal-status", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["sealed"], true);
    assert_eq!((v["t"].as_u64(), v["n"].as_u64()), (Some(2), Some(3)));

    for (a, b) in [(0, 1), (1, 2), (2, 0)] {
        let (s, v) = unseal(&core, &init.keys_hex[a]).await;
        assert_eq!(
            (s, v["sealed"].as_bool(), v["progress"].as_u64()),
            (200, Some(true), Some(1))
        );
        assert!(!v["nonce"].as_str().unwrap().is_empty());
        // Base64 works as well as hex.
        let (s, v) = unseal(&core, &init.keys_b64[b]).await;
        assert_eq!((s, v["sealed"].as_bool()), (200, Some(false)), "{v}");
        let (s, _) = call(
            &core,
            "GET",
            "/v1/auth/token/lookup-self",
            Some(&init.root),
            None,
        )
        .await;
        assert_eq!(s, 200);
        let (s, _) = call(&core, "PUT", "/v1/sys/seal", Some(&init.root), None).await;
        assert_eq!(s, 204);
    }
}

#[tokio::test]
async fn forged_share_fails_and_resets_progress() {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let init = init(&core, 3, 2).await;
    let mut forged = hex::decode(&init.keys_hex[1]).unwrap();
    forged[0] ^= 0x01;
    unseal(&core, &init.keys_hex[0]).await;
    let (s, v) = unseal(&core, &hex::encode(&forged)).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["errors"].is_array());
    let (_, v) = call(&core, "GET", "/v1/sys/seal-status", None, None).await;
    assert_eq!(
        (v["sealed"].as_bool(), v["progress"].as_u64()),
        (Some(true), Some(0))
    );
    // Garbage is refused before it counts.
    let (s, _) = unseal(&core, "not-a-key!").await;
    assert_eq!(s, 400);
    let (_, v) = call(&core, "GET", "/v1/sys/seal-status", None, None).await;
    assert_eq!(v["progress"], 0);
    // The real shares still work.
    unseal(&core, &init.keys_hex[0]).await;
    let (_, v) = unseal(&core, &init.keys_hex[2]).await;
    assert_eq!(v["sealed"], false);
}

#[tokio::test]
async fn sealed_server_answers_503_except_seal_endpoints() {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let (s, v) = call(&core, "GET", "/v1/sys/health", None, None).await;
    assert_eq!((s, v["initialized"].as_bool()), (501, Some(false)));
    let init = init(&core, 1, 1).await;
    for path in [
        "/v1/secret/x",
        "/v1/sys/mounts",
        "/v1/auth/token/lookup-self",
    ] {
        let (s, v) = call(&core, "GET", path, Some(&init.root), None).await;
        assert_eq!(s, 503, "{path}");
        assert_eq!(v["errors"][0], "Vault is sealed");
    }
    let (s, _) = call(&core, "GET", "/v1/sys/health", None, None).await;
    assert_eq!(s, 503);
    let (s, _) = call(&core, "GET", "/v1/sys/health?sealedcode=299", None, None).await;
    assert_eq!(s, 299);
    let (s, _) = call(&core, "GET", "/v1/sys/leader", None, None).await;
    assert_eq!(s, 200);
    // A second init is refused.
    let (s, _) = call(
        &core,
        "PUT",
        "/v1/sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn invalid_init_parameters_change_nothing() {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    for body in [
        json!({"secret_shares": 2, "secret_threshold": 3}),
        json!({"secret_shares": 3, "secret_threshold": 1}),
        json!({"secret_shares": 0, "secret_threshold": 0}),
        json!({"secret_shares": 256, "secret_threshold": 2}),
        json!({"secret_shares": "many", "secret_threshold": 2}),
    ] {
        let (s, v) = call(&core, "PUT", "/v1/sys/init", None, Some(body.clone())).await;
        assert_eq!(s, 400, "{body} -> {v}");
        assert!(v["errors"].as_array().is_some_and(|e| !e.is_empty()));
    }
    let (_, v) = call(&core, "GET", "/v1/sys/init", None, None).await;
    assert_eq!(v["initialized"], false);
}

#[tokio::test]
async fn mounts_and_secrets_survive_seal_and_restart_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.redb");
    let (root, key) = {
        let core = core_on(Arc::new(
            strongroom_storage::RedbBackend::open(&path).unwrap(),
        ));
        let init = init(&core, 1, 1).await;
        unseal(&core, &init.keys_b64[0]).await;
        let (s, _) = call(
            &core,
            "POST",
            "/v1/sys/mounts/team/kv",
            Some(&init.root),
            Some(json!({"type": "kv", "description": "team secrets"})),
        )
        .await;
        assert_eq!(s, 204);
        let (s, _) = call(
            &core,
            "PUT",
            "/v1/team/kv/app/db",
            Some(&init.root),
            Some(json!({"password": "hunter2", "port": 5432})),
        )
        .await;
        assert_eq!(s, 204);
        (init.root, init.keys_b64[0].clone())
    };
    // A new process on the same file.
    let core = core_on(Arc::new(
        strongroom_storage::RedbBackend::open(&path).unwrap(),
    ));
    let (s, _) = call(&core, "GET", "/v1/team/kv/app/db", Some(&root), None).await;
    assert_eq!(s, 503);
    unseal(&core, &key).await;
    let (s, v) = call(&core, "GET", "/v1/team/kv/app/db", Some(&root), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"], json!({"password": "hunter2", "port": 5432}));
    let (_, v) = call(&core, "GET", "/v1/sys/mounts", Some(&root), None).await;
    assert_eq!(v["data"]["team/kv/"]["description"], "team secrets");
    let (s, v) = call(&core, "LIST", "/v1/team/kv/app", Some(&root), None).await;
    assert_eq!((s, &v["data"]["keys"]), (200, &json!(["db"])));
}

/// Recursively collects every physical entry.
async fn dump(physical: &dyn Backend) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(prefix) = stack.pop() {
        for k in physical.list(&prefix).await.unwrap() {
            let full = format!("{prefix}{k}");
            if k.ends_with('/') {
                stack.push(full);
            } else {
                let v = physical.get(&full).await.unwrap().unwrap();
                out.push((full, v));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn storage_never_holds_plaintext() {
    let physical = Arc::new(strongroom_storage::InmemBackend::new());
    let core = core_on(physical.clone());
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    call(
        &core,
        "POST",
        "/v1/sys/mounts/kv",
        Some(&init.root),
        Some(json!({"type": "kv"})),
    )
    .await;
    let secret = "correct-horse-battery-staple-7f3a";
    let (s, _) = call(
        &core,
        "PUT",
        "/v1/kv/plain-check",
        Some(&init.root),
        Some(json!({"value": secret})),
    )
    .await;
    assert_eq!(s, 204);
    let entries = dump(physical.as_ref()).await;
    assert!(
        entries.len() > 4,
        "expected keyring, tables, token and secret entries"
    );
    let unseal_key = base64_decode(&init.keys_b64[0]);
    for (key, value) in &entries {
        if key == "core/seal-config" {
            continue;
        }
        for needle in [
            secret.as_bytes(),
            init.root.as_bytes(),
            b"plain-check",
            b"\"kv\"",
            b"hunter",
            &unseal_key,
        ] {
            assert!(
                !contains(value, needle),
                "{key} holds plaintext {:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }
    // The token is not a storage key either, only its salted hash.
    assert!(entries.iter().all(|(k, _)| !k.contains(&init.root)));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[tokio::test]
async fn mount_errors_change_nothing() {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    let root = Some(init.root.as_str());
    call(
        &core,
        "POST",
        "/v1/sys/mounts/kv",
        root,
        Some(json!({"type": "kv"})),
    )
    .await;
    let (_, before) = call(&core, "GET", "/v1/sys/mounts", root, None).await;
    for (path, body) in [
        ("/v1/sys/mounts/kv", json!({"type": "kv"})),
        ("/v1/sys/mounts/kv/nested", json!({"type": "kv"})),
        ("/v1/sys/mounts/sys/x", json!({"type": "kv"})),
        ("/v1/sys/mounts/other", json!({"type": "no-such-engine"})),
        (
            "/v1/sys/mounts/other",
            json!({"type": "kv", "config": {"default_lease_ttl": "forever"}}),
        ),
        (
            "/v1/sys/mounts/other",
            json!({"type": "kv", "options": {"version": "7"}}),
        ),
        ("/v1/sys/mounts/other", json!({})),
        ("/v1/sys/auth/other", json!({"type": "no-such-method"})),
    ] {
        let (s, v) = call(&core, "POST", path, root, Some(body.clone())).await;
        assert_eq!(s, 400, "{path} {body} -> {v}");
    }
    let (_, after) = call(&core, "GET", "/v1/sys/mounts", root, None).await;
    assert_eq!(before["data"], after["data"]);
    let (s, _) = call(&core, "DELETE", "/v1/sys/mounts/sys", root, None).await;
    assert_eq!(s, 400);
    let (s, _) = call(&core, "DELETE", "/v1/sys/auth/token", root, None).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn unmount_deletes_data_and_tune_sets_lease() {
    let physical = Arc::new(strongroom_storage::InmemBackend::new());
    let core = core_on(physical.clone());
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    let root = Some(init.root.as_str());
    call(
        &core,
        "POST",
        "/v1/sys/mounts/kv",
        root,
        Some(json!({"type": "kv"})),
    )
    .await;
    call(&core, "PUT", "/v1/kv/a", root, Some(json!({"x": "1"}))).await;
    let (_, v) = call(&core, "GET", "/v1/kv/a", root, None).await;
    assert_eq!(v["lease_duration"], 768 * 3600);
    let (s, _) = call(
        &core,
        "POST",
        "/v1/sys/mounts/kv/tune",
        root,
        Some(json!({"default_lease_ttl": "1h"})),
    )
    .await;
    assert_eq!(s, 204);
    let (_, v) = call(&core, "GET", "/v1/sys/mounts/kv/tune", root, None).await;
    assert_eq!(v["data"]["default_lease_ttl"], 3600);
    let (_, v) = call(&core, "GET", "/v1/kv/a", root, None).await;
    assert_eq!(v["lease_duration"], 3600);
    // A secret's own ttl wins.
    call(
        &core,
        "PUT",
        "/v1/kv/b",
        root,
        Some(json!({"x": "1", "ttl": "30m"})),
    )
    .await;
    let (_, v) = call(&core, "GET", "/v1/kv/b", root, None).await;
    assert_eq!(v["lease_duration"], 1800);

    let uuid = {
        let (_, v) = call(&core, "GET", "/v1/sys/mounts/kv", root, None).await;
        v["data"]["uuid"].as_str().unwrap().to_string()
    };
    let prefix = format!("logical/{uuid}/");
    assert!(!physical.list(&prefix).await.unwrap().is_empty());
    let (s, _) = call(&core, "DELETE", "/v1/sys/mounts/kv", root, None).await;
    assert_eq!(s, 204);
    assert!(physical.list(&prefix).await.unwrap().is_empty());
    let (s, _) = call(&core, "GET", "/v1/kv/a", root, None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    for token in [None, Some(""), Some("s.doesnotexist")] {
        let (s, v) = call(&core, "GET", "/v1/sys/mounts", token, None).await;
        assert_eq!(s, 403, "{token:?}");
        assert!(v["errors"][0]
            .as_str()
            .unwrap()
            .contains("permission denied"));
    }
    let (s, v) = call(&core, "GET", "/v1/nowhere/x", Some(&init.root), None).await;
    assert_eq!(s, 404);
    assert!(v["errors"][0]
        .as_str()
        .unwrap()
        .contains("no handler for route"));
    let (s, v) = call(
        &core,
        "GET",
        "/v1/sys/mounts?help=1",
        Some(&init.root),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(v["help"].as_str().unwrap().contains("mounted backends"));
    assert!(v["openapi"]["paths"].is_object());
}

#[tokio::test]
async fn auth_methods_enable_tune_disable() {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    let root = Some(init.root.as_str());
    let (s, v) = call(
        &core,
        "POST",
        "/v1/sys/auth/machines",
        root,
        Some(json!({"type": "test-auth", "description": "for machines"})),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    let (_, v) = call(&core, "GET", "/v1/sys/auth", root, None).await;
    let entry = &v["data"]["machines/"];
    assert_eq!(entry["type"], "test-auth");
    assert!(entry["accessor"]
        .as_str()
        .unwrap()
        .starts_with("auth_test-auth_"));
    assert_eq!(entry["config"]["token_type"], "default-service");
    assert!(v["data"]["token/"].is_object());
    // The method is routed below auth/.
    let (s, _) = call(
        &core,
        "PUT",
        "/v1/auth/machines/x",
        root,
        Some(json!({"a": "b"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, v) = call(&core, "GET", "/v1/auth/machines/x", root, None).await;
    assert_eq!((s, &v["data"]["a"]), (200, &json!("b")));
    // Tune, and read the tuning back.
    let (s, _) = call(
        &core,
        "POST",
        "/v1/sys/auth/machines/tune",
        root,
        Some(json!({"default_lease_ttl": "20m", "token_type": "batch"})),
    )
    .await;
    assert_eq!(s, 204);
    let (_, v) = call(&core, "GET", "/v1/sys/auth/machines/tune", root, None).await;
    assert_eq!(
        (
            v["data"]["default_lease_ttl"].as_u64(),
            v["data"]["token_type"].as_str()
        ),
        (Some(1200), Some("batch"))
    );
    let (s, _) = call(
        &core,
        "POST",
        "/v1/sys/auth/machines/tune",
        root,
        Some(json!({"token_type": "nonsense"})),
    )
    .await;
    assert_eq!(s, 400);
    // The same path twice is refused; the ui listing shows both tables.
    let (s, _) = call(
        &core,
        "POST",
        "/v1/sys/auth/machines",
        root,
        Some(json!({"type": "test-auth"})),
    )
    .await;
    assert_eq!(s, 400);
    let (_, v) = call(&core, "GET", "/v1/sys/internal/ui/mounts", root, None).await;
    assert!(v["data"]["auth"]["machines/"].is_object() && v["data"]["secret"]["sys/"].is_object());
    // Disable removes the route and the data.
    let (s, _) = call(&core, "DELETE", "/v1/sys/auth/machines", root, None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&core, "GET", "/v1/auth/machines/x", root, None).await;
    assert_eq!(s, 404);
    let (_, v) = call(&core, "GET", "/v1/sys/auth", root, None).await;
    assert!(v["data"]["machines/"].is_null());
}

#[tokio::test]
async fn openapi_document_covers_mounted_paths() {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    call(
        &core,
        "POST",
        "/v1/sys/mounts/kv",
        Some(&init.root),
        Some(json!({"type": "kv"})),
    )
    .await;
    let (s, v) = call(&core, "GET", "/v1/sys/internal/specs/openapi", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["openapi"], "3.0.2");
    let paths = v["paths"].as_object().unwrap();
    for p in [
        "/kv/{path}",
        "/sys/mounts/{path}",
        "/sys/mounts/{path}/tune",
        "/auth/token/lookup-self",
        "/sys/unseal",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    // Declared fields become the request body schema.
    let unseal = &paths["/sys/unseal"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"];
    assert_eq!(unseal["key"]["type"], "string");
    assert_eq!(unseal["reset"]["type"], "boolean");
}

#[tokio::test]
async fn unknown_fields_are_warnings_not_errors() {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    let root = Some(init.root.as_str());
    // A write that answers 204 stays a 204, as in OpenBao.
    let (s, _) = call(
        &core,
        "POST",
        "/v1/sys/mounts/kv",
        root,
        Some(json!({"type": "kv", "bogus": 1})),
    )
    .await;
    assert_eq!(s, 204);
    // An answer with a body carries the warning.
    let (s, v) = call(
        &core,
        "POST",
        "/v1/auth/token/lookup",
        root,
        Some(json!({"token": init.root, "bogus": 1})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["warnings"][0],
        "Endpoint ignored these unrecognized parameters: [bogus]"
    );
    assert_eq!(v["data"]["policies"], json!(["root"]));
}

#[tokio::test]
async fn keys_the_storage_refuses_are_client_errors() {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    let root = Some(init.root.as_str());
    call(
        &core,
        "POST",
        "/v1/sys/mounts/kv",
        root,
        Some(json!({"type": "kv"})),
    )
    .await;
    let (s, v) = call(&core, "PUT", "/v1/kv/a%00b", root, Some(json!({"x": "1"}))).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["errors"].is_array());
    let (s, _) = call(&core, "LIST", "/v1/kv/", root, None).await;
    assert_eq!(s, 404, "nothing was stored");
}

#[tokio::test]
async fn policies_persist_and_compile_per_set() {
    use strongroom_sdk::logical::{Data, Operation};
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    let root = Some(init.root.as_str());
    let text = "path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n";
    let (s, _) = call(
        &core,
        "PUT",
        "/v1/sys/policies/acl/reader",
        root,
        Some(json!({"policy": text})),
    )
    .await;
    assert_eq!(s, 204);
    call(&core, "PUT", "/v1/sys/seal", root, None).await;
    unseal(&core, &init.keys_b64[0]).await;
    let (s, v) = call(&core, "GET", "/v1/sys/policies/acl/reader", root, None).await;
    assert_eq!((s, &v["data"]["policy"]), (200, &json!(text)));
    let store = core.active().unwrap().root().policies.clone();
    let acl = store
        .acl(&["reader".into(), "default".into()])
        .await
        .unwrap();
    assert!(
        acl.check("secret/app", Operation::Read, &Data::new())
            .allowed
    );
    assert!(
        !acl.check("secret/app", Operation::Update, &Data::new())
            .allowed
    );
    assert!(
        acl.check("auth/token/lookup-self", Operation::Read, &Data::new())
            .allowed
    );
    // A rewrite is seen by the next compile of the same set.
    let text2 = "path \"secret/*\" {\n  capabilities = [\"update\"]\n}\n";
    call(
        &core,
        "PUT",
        "/v1/sys/policies/acl/reader",
        root,
        Some(json!({"policy": text2})),
    )
    .await;
    let acl = store
        .acl(&["default".into(), "reader".into()])
        .await
        .unwrap();
    assert!(
        !acl.check("secret/app", Operation::Read, &Data::new())
            .allowed
    );
    assert!(
        acl.check("secret/app", Operation::Update, &Data::new())
            .allowed
    );
}

#[tokio::test]
async fn child_tokens_stay_within_their_parent() {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let init = init(&core, 1, 1).await;
    unseal(&core, &init.keys_b64[0]).await;
    let root = Some(init.root.as_str());
    let creator = "path \"auth/token/create*\" {\n  capabilities = [\"update\"]\n}\n";
    call(
        &core,
        "PUT",
        "/v1/sys/policies/acl/creator",
        root,
        Some(json!({"policy": creator})),
    )
    .await;
    call(
        &core,
        "PUT",
        "/v1/sys/policies/acl/other",
        root,
        Some(json!({"policy": creator})),
    )
    .await;
    let (s, v) = call(
        &core,
        "POST",
        "/v1/auth/token/create",
        root,
        Some(json!({"policies": "creator", "ttl": "10m"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["auth"]["lease_duration"], 600);
    assert_eq!(v["auth"]["orphan"], false);
    let parent = v["auth"]["client_token"].as_str().unwrap().to_string();
    let parent = Some(parent.as_str());
    // Only policies the parent holds.
    let (s, _) = call(
        &core,
        "POST",
        "/v1/auth/token/create",
        parent,
        Some(json!({"policies": ["other"]})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &core,
        "POST",
        "/v1/auth/token/create",
        parent,
        Some(json!({"policies": ["root"]})),
    )
    .await;
    assert_eq!(s, 400);
    // No orphans from a non-root parent on create; a child inherits.
    let (s, _) = call(
        &core,
        "POST",
        "/v1/auth/token/create",
        parent,
        Some(json!({"no_parent": true})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = call(
        &core,
        "POST",
        "/v1/auth/token/create",
        parent,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["auth"]["policies"], json!(["creator", "default"]));
    // A TTL above the mount's maximum is capped.
    let (_, v) = call(
        &core,
        "POST",
        "/v1/auth/token/create",
        root,
        Some(json!({"policies": ["other"], "ttl": "10000h"})),
    )
    .await;
    assert_eq!(v["auth"]["lease_duration"], 768 * 3600);
    // Root children of root never expire unless asked.
    let (_, v) = call(
        &core,
        "POST",
        "/v1/auth/token/create-orphan",
        root,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (
            v["auth"]["lease_duration"].as_u64(),
            v["auth"]["orphan"].as_bool()
        ),
        (Some(0), Some(true))
    );
}
