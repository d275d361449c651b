//! In-process tests of KV version 2 for what a differential test cannot
//! show: check-and-set under concurrent writers, the v1 → v2 upgrade, and
//! that refused writes change nothing.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use strongroom_test::inprocess;

use std::sync::Arc;

use inprocess::{call, call_with, unsealed_inmem};
use serde_json::{json, Value};
use strongroom_core::Core;

const MERGE: [(&str, &str); 1] = [("Content-Type", "application/merge-patch+json")];

async fn mount_v2(core: &Arc<Core>, root: &str, path: &str) {
    let (s, v) = call(
        core,
        "POST",
        &format!("/v1/sys/mounts/{path}"),
        Some(root),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await;
    assert_eq!(s, 204, "{v}");
}

async fn current(core: &Arc<Core>, root: &str, key: &str) -> (u64, Value) {
    let (s, v) = call(core, "GET", &format!("/v1/kv/data/{key}"), Some(root), None).await;
    assert_eq!(s, 200, "{v}");
    (
        v["data"]["metadata"]["version"].as_u64().unwrap(),
        v["data"]["data"].clone(),
    )
}

#[tokio::test]
async fn of_concurrent_writers_with_the_same_cas_exactly_one_wins() {
    let (core, root, _) = unsealed_inmem().await;
    mount_v2(&core, &root, "kv").await;
    let (s, _) = call(
        &core,
        "POST",
        "/v1/kv/data/k",
        Some(&root),
        Some(json!({"data": {"n": 0}})),
    )
    .await;
    assert_eq!(s, 200);
    let mut writers = Vec::new();
    for n in 1..=16 {
        let core = core.clone();
        let root = root.clone();
        writers.push(tokio::spawn(async move {
            call(
                &core,
                "POST",
                "/v1/kv/data/k",
                Some(&root),
                Some(json!({"data": {"n": n}, "options": {"cas": 1}})),
            )
            .await
        }));
    }
    let mut won = Vec::new();
    for w in writers {
        let (s, v) = w.await.unwrap();
        match s {
            200 => won.push(v),
            400 => assert_eq!(
                v["errors"][0],
                "check-and-set parameter did not match the current version"
            ),
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!(won.len(), 1);
    assert_eq!(won[0]["data"]["version"], 2);
    let (version, data) = current(&core, &root, "k").await;
    assert_eq!(version, 2);
    assert_ne!(data["n"], 0);
    // Concurrent creators with cas 0: one creates the key.
    let mut creators = Vec::new();
    for n in 0..8 {
        let core = core.clone();
        let root = root.clone();
        creators.push(tokio::spawn(async move {
            call(
                &core,
                "POST",
                "/v1/kv/data/fresh",
                Some(&root),
                Some(json!({"data": {"n": n}, "options": {"cas": 0}})),
            )
            .await
            .0
        }));
    }
    let mut statuses = Vec::new();
    for c in creators {
        statuses.push(c.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn refused_writes_change_nothing() {
    let (core, root, _) = unsealed_inmem().await;
    mount_v2(&core, &root, "kv").await;
    call(
        &core,
        "POST",
        "/v1/kv/data/k",
        Some(&root),
        Some(json!({"data": {"a": 1}})),
    )
    .await;
    // (method, body, headers, expected status)
    type Bad<'a> = (&'a str, Value, &'a [(&'a str, &'a str)], u16);
    let bad: Vec<Bad> = vec![
        (
            "POST",
            json!({"data": {"a": 2}, "options": {"cas": 7}}),
            &[],
            400,
        ),
        ("POST", json!({"data": "not an object"}), &[], 400),
        ("POST", json!({}), &[], 400),
        ("PATCH", json!({"data": {"a": 2}}), &[], 400),
        (
            "PATCH",
            json!({"data": {"a": 2}}),
            &[("Content-Type", "application/json")],
            415,
        ),
        (
            "PATCH",
            json!({"data": ["not", "an", "object"]}),
            &MERGE,
            400,
        ),
        (
            "PATCH",
            json!({"data": {"a": 2}, "options": {"cas": 9}}),
            &MERGE,
            400,
        ),
    ];
    for (method, body, headers, status) in bad {
        let (s, v) = call_with(
            &core,
            method,
            "/v1/kv/data/k",
            Some(&root),
            Some(body.clone()),
            headers,
        )
        .await;
        assert_eq!(s, status, "{method} {body}: {v}");
        assert!(v["errors"].is_array());
    }
    assert_eq!(current(&core, &root, "k").await, (1, json!({"a": 1})));
    // A merge patch that is well-formed applies.
    let (s, _) = call_with(
        &core,
        "PATCH",
        "/v1/kv/data/k",
        Some(&root),
        Some(json!({"data": {"a": null, "b": 2}})),
        &MERGE,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(current(&core, &root, "k").await, (2, json!({"b": 2})));
}

#[tokio::test]
async fn a_v1_mount_tuned_to_version_2_keeps_its_secrets_as_version_1() {
    let (core, root, _) = unsealed_inmem().await;
    let (s, _) = call(
        &core,
        "POST",
        "/v1/sys/mounts/kv",
        Some(&root),
        Some(json!({"type": "kv", "options": {"version": "1"}})),
    )
    .await;
    assert_eq!(s, 204);
    for (k, v) in [
        ("app/db", json!({"password": "p1"})),
        ("top", json!({"x": "1"})),
        ("kv2/odd", json!({"y": "2"})),
    ] {
        let (s, _) = call(&core, "PUT", &format!("/v1/kv/{k}"), Some(&root), Some(v)).await;
        assert_eq!(s, 204);
    }
    let (s, v) = call(
        &core,
        "POST",
        "/v1/sys/mounts/kv/tune",
        Some(&root),
        Some(json!({"options": {"version": "2"}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["warnings"][0]
        .as_str()
        .unwrap()
        .contains("Upgrading mount"));
    assert_eq!(
        current(&core, &root, "app/db").await,
        (1, json!({"password": "p1"}))
    );
    assert_eq!(current(&core, &root, "top").await, (1, json!({"x": "1"})));
    assert_eq!(
        current(&core, &root, "kv2/odd").await,
        (1, json!({"y": "2"}))
    );
    let (s, v) = call(&core, "LIST", "/v1/kv/metadata/", Some(&root), None).await;
    assert_eq!(
        (s, &v["data"]["keys"]),
        (200, &json!(["app/", "kv2/", "top"])),
        "{v}"
    );
    let (_, v) = call(&core, "GET", "/v1/sys/mounts/kv", Some(&root), None).await;
    assert_eq!(v["data"]["options"]["version"], "2");
    // The engine now answers as v2: writes make version 2.
    let (s, v) = call(
        &core,
        "POST",
        "/v1/kv/data/top",
        Some(&root),
        Some(json!({"data": {"x": "2"}})),
    )
    .await;
    assert_eq!((s, v["data"]["version"].as_u64()), (200, Some(2)));
}

#[tokio::test]
async fn versions_are_trimmed_and_destroyed_data_is_gone() {
    let (core, root, _) = unsealed_inmem().await;
    mount_v2(&core, &root, "kv").await;
    let (s, _) = call(
        &core,
        "POST",
        "/v1/kv/metadata/k",
        Some(&root),
        Some(json!({"max_versions": 2})),
    )
    .await;
    assert_eq!(s, 204);
    for n in 1..=4 {
        call(
            &core,
            "POST",
            "/v1/kv/data/k",
            Some(&root),
            Some(json!({"data": {"n": n}})),
        )
        .await;
    }
    let (_, v) = call(&core, "GET", "/v1/kv/metadata/k", Some(&root), None).await;
    assert_eq!(v["data"]["current_version"], 4);
    assert_eq!(v["data"]["oldest_version"], 3);
    let versions: Vec<&String> = v["data"]["versions"].as_object().unwrap().keys().collect();
    assert_eq!(versions, ["3", "4"]);
    let (s, _) = call(&core, "GET", "/v1/kv/data/k?version=1", Some(&root), None).await;
    assert_eq!(s, 404);
    let (s, _) = call(
        &core,
        "POST",
        "/v1/kv/destroy/k",
        Some(&root),
        Some(json!({"versions": [3]})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, v) = call(&core, "GET", "/v1/kv/data/k?version=3", Some(&root), None).await;
    assert_eq!(
        (s, &v["data"]["metadata"]["destroyed"]),
        (404, &json!(true))
    );
    // Deleting the metadata deletes every version: the key is gone.
    let (s, _) = call(&core, "DELETE", "/v1/kv/metadata/k", Some(&root), None).await;
    assert_eq!(s, 204);
    let (s, v) = call(&core, "GET", "/v1/kv/data/k", Some(&root), None).await;
    assert_eq!((s, v), (404, json!({"errors": []})));
}
