//! In-process tests of namespaces where what storage holds matters: each
//! namespace's data is under its own barrier prefix, deleting one never
//! touches another's keys, and namespaces, their mounts and their tokens
//! survive a seal and unseal. The API itself is covered against OpenBao by
//! the differential suite, and end to end by the e2e suite.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use strongroom_core::Core;
use strongroom_sdk::storage::Backend;
use strongroom_storage::InmemBackend;
use strongroom_test::inprocess::{call, call_with, core_on, init, unseal};

/// Every key of the physical storage with its (encrypted) value.
async fn snapshot(physical: &InmemBackend) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(prefix) = stack.pop() {
        for k in physical.list(&prefix).await.unwrap() {
            let full = format!("{prefix}{k}");
            if k.ends_with('/') {
                stack.push(full);
            } else {
                let v = physical.get(&full).await.unwrap().unwrap();
                out.insert(full, v);
            }
        }
    }
    out
}

async fn ok(core: &Arc<Core>, method: &str, path: &str, root: &str, body: Option<Value>) -> Value {
    let (s, v) = call(core, method, path, Some(root), body).await;
    assert!(s == 200 || s == 204, "{method} {path}: {s} {v}");
    v
}

/// A namespace at `path` (`ns1`, `ns1/ns2`) with a KV v2 mount holding a
/// secret, a policy, a child token and an AppRole login token; returns its
/// uuid and the two tokens.
async fn populate(core: &Arc<Core>, root: &str, path: &str) -> (String, String, String) {
    let (parent, name) = match path.rsplit_once('/') {
        Some((p, n)) => (format!("/{p}"), n.to_string()),
        None => (String::new(), path.to_string()),
    };
    let v = ok(
        core,
        "POST",
        &format!("/v1{parent}/sys/namespaces/{name}"),
        root,
        None,
    )
    .await;
    let uuid = v["data"]["uuid"].as_str().unwrap().to_string();
    let ns = format!("/v1/{path}");
    ok(
        core,
        "POST",
        &format!("{ns}/sys/mounts/kv"),
        root,
        Some(json!({"type": "kv-v2"})),
    )
    .await;
    ok(
        core,
        "POST",
        &format!("{ns}/kv/data/s"),
        root,
        Some(json!({"data": {"k": "v"}})),
    )
    .await;
    ok(
        core,
        "PUT",
        &format!("{ns}/sys/policies/acl/reader"),
        root,
        Some(json!({"policy": "path \"kv/*\" { capabilities = [\"read\"] }"})),
    )
    .await;
    let v = ok(
        core,
        "POST",
        &format!("{ns}/auth/token/create"),
        root,
        Some(json!({"policies": ["reader"]})),
    )
    .await;
    let token = v["auth"]["client_token"].as_str().unwrap().to_string();
    ok(
        core,
        "POST",
        &format!("{ns}/sys/auth/approle"),
        root,
        Some(json!({"type": "approle"})),
    )
    .await;
    ok(
        core,
        "POST",
        &format!("{ns}/auth/approle/role/r"),
        root,
        Some(json!({"token_policies": "reader"})),
    )
    .await;
    let role_id = ok(
        core,
        "GET",
        &format!("{ns}/auth/approle/role/r/role-id"),
        root,
        None,
    )
    .await["data"]["role_id"]
        .clone();
    let secret_id = ok(
        core,
        "POST",
        &format!("{ns}/auth/approle/role/r/secret-id"),
        root,
        None,
    )
    .await["data"]["secret_id"]
        .clone();
    let (s, v) = call(
        core,
        "POST",
        &format!("{ns}/auth/approle/login"),
        None,
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let login = v["auth"]["client_token"].as_str().unwrap().to_string();
    (uuid, token, login)
}

/// Waits (by condition, a bounded number of polls) until the namespace
/// `name` is gone from its parent's listing.
async fn wait_deleted(core: &Arc<Core>, root: &str, name: &str) {
    for _ in 0..2000 {
        let (s, _) = call(
            core,
            "GET",
            &format!("/v1/sys/namespaces/{name}"),
            Some(root),
            None,
        )
        .await;
        if s == 404 {
            return;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("namespace {name} was never deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_namespace_is_stored_under_its_prefix_and_deleting_one_touches_no_other_key() {
    let physical = Arc::new(InmemBackend::new());
    let core = core_on(physical.clone());
    let i = init(&core, 1, 1).await;
    unseal(&core, &i.keys_b64[0]).await;
    let root = i.root.as_str();
    let (ns1, t1, login1) = populate(&core, root, "ns1").await;
    let (ns2, t2, login2) = populate(&core, root, "ns2").await;
    let (child, _, _) = populate(&core, root, "ns2/child").await;

    let before = snapshot(&physical).await;
    // Each namespace's data is below its prefix; the root namespace's
    // storage holds only the namespaces' entries.
    for uuid in [&ns1, &ns2, &child] {
        assert!(before.contains_key(&format!("core/namespaces/{uuid}")));
        let own: Vec<&String> = before
            .keys()
            .filter(|k| k.contains(uuid.as_str()))
            .collect();
        assert!(own.len() > 5, "{own:?}");
        assert!(own
            .iter()
            .all(|k| k.starts_with(&format!("namespaces/{uuid}/"))
                || **k == format!("core/namespaces/{uuid}")));
    }
    for key in [
        "core/mounts",
        "core/auth",
        "sys/policy/reader",
        "sys/token/id/",
    ] {
        let prefix = format!("namespaces/{ns1}/{key}");
        assert!(before.keys().any(|k| k.starts_with(&prefix)), "no {prefix}");
    }

    let (s, v) = call(&core, "DELETE", "/v1/sys/namespaces/ns1", Some(root), None).await;
    assert_eq!((s, &v["data"]["status"]), (200, &json!("in-progress")));
    wait_deleted(&core, root, "ns1").await;

    let after = snapshot(&physical).await;
    assert!(
        after.keys().all(|k| !k.contains(ns1.as_str())),
        "ns1 left keys behind"
    );
    // Every other key is untouched, value for value.
    let others: BTreeMap<&String, &Vec<u8>> = before
        .iter()
        .filter(|(k, _)| !k.contains(ns1.as_str()))
        .collect();
    let after_all: BTreeMap<&String, &Vec<u8>> = after.iter().collect();
    assert_eq!(others, after_all);

    // ns1's tokens are gone; ns2's work.
    for t in [&t1, &login1] {
        let (s, _) = call(&core, "GET", "/v1/auth/token/lookup-self", Some(t), None).await;
        assert_eq!(s, 403, "a deleted namespace's token still works");
    }
    for t in [&t2, &login2] {
        let (s, v) = call_with(
            &core,
            "GET",
            "/v1/kv/data/s",
            Some(t),
            None,
            &[("X-Vault-Namespace", "ns2")],
        )
        .await;
        assert_eq!((s, &v["data"]["data"]), (200, &json!({"k": "v"})));
    }

    // Recreated, ns1 is empty.
    ok(&core, "POST", "/v1/sys/namespaces/ns1", root, None).await;
    let (s, _) = call(&core, "GET", "/v1/ns1/kv/data/s", Some(root), None).await;
    assert_eq!(s, 404);
    let v = ok(&core, "LIST", "/v1/ns1/sys/policies/acl", root, None).await;
    assert_eq!(v["data"]["keys"], json!(["default"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_their_mounts_and_tokens_survive_seal_and_unseal() {
    let physical = Arc::new(InmemBackend::new());
    let core = core_on(physical.clone());
    let i = init(&core, 1, 1).await;
    unseal(&core, &i.keys_b64[0]).await;
    let root = i.root.as_str();
    populate(&core, root, "a").await;
    let (_, token, login) = populate(&core, root, "a/b").await;
    ok(&core, "POST", "/v1/sys/seal", root, None).await;
    // A fresh core over the same storage: everything comes from storage.
    let core = core_on(physical.clone());
    unseal(&core, &i.keys_b64[0]).await;
    let v = ok(&core, "LIST", "/v1/a/sys/namespaces", root, None).await;
    assert_eq!(v["data"]["keys"], json!(["b/"]));
    for t in [&token, &login] {
        let (s, v) = call(&core, "GET", "/v1/a/b/kv/data/s", Some(t), None).await;
        assert_eq!((s, &v["data"]["data"]), (200, &json!({"k": "v"})), "{t}");
        let (s, v) = call(&core, "GET", "/v1/auth/token/lookup-self", Some(t), None).await;
        assert_eq!((s, &v["data"]["namespace_path"]), (200, &json!("a/b/")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_parent_token_revokes_its_children_in_child_namespaces() {
    let physical = Arc::new(InmemBackend::new());
    let core = core_on(physical);
    let i = init(&core, 1, 1).await;
    unseal(&core, &i.keys_b64[0]).await;
    let root = i.root.as_str();
    ok(&core, "POST", "/v1/sys/namespaces/ns1", root, None).await;
    // A root-namespace token with sudo on token creation in ns1.
    ok(
        &core,
        "PUT",
        "/v1/sys/policies/acl/admin",
        root,
        Some(json!({"policy": "path \"ns1/auth/token/create\" { capabilities = [\"update\", \"sudo\"] }"})),
    )
    .await;
    let v = ok(
        &core,
        "POST",
        "/v1/auth/token/create",
        root,
        Some(json!({"policies": ["admin"]})),
    )
    .await;
    let parent = v["auth"]["client_token"].as_str().unwrap().to_string();
    let (s, v) = call(
        &core,
        "POST",
        "/v1/ns1/auth/token/create",
        Some(&parent),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let child = v["auth"]["client_token"].as_str().unwrap().to_string();
    assert!(child.ends_with(&format!(
        ".{}",
        ok(&core, "GET", "/v1/sys/namespaces/ns1", root, None).await["data"]["id"]
            .as_str()
            .unwrap()
    )));
    assert_eq!(v["auth"]["policies"], json!(["default"]));
    let (s, _) = call(
        &core,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(&child),
        None,
    )
    .await;
    assert_eq!(s, 200);
    ok(
        &core,
        "POST",
        "/v1/auth/token/revoke",
        root,
        Some(json!({"token": parent})),
    )
    .await;
    let (s, _) = call(
        &core,
        "GET",
        "/v1/auth/token/lookup-self",
        Some(&child),
        None,
    )
    .await;
    assert_eq!(s, 403, "the child in ns1 outlived its parent");
}
