//! Differential tests for the versioned key/value engine (KV version 2):
//! the same requests sent to OpenBao and to Strongroom, status codes and
//! response bodies compared by value, and the values a client relies on (versions,
//! data, deletion markers, error messages) asserted on both servers.

use std::time::{Duration, Instant};

use crate::differences;
use serde_json::{json, Value};
use strongroom_test::diff::{on_both, same_value, Pair};
use strongroom_test::server;
use strongroom_test::server::{errors_mention, Call, Reply, Server};

/// How long the KV v1 -> v2 upgrade may take before the test gives up.
const UPGRADE_DEADLINE: Duration = Duration::from_secs(30);

/// OpenBao's message for a check-and-set version that is not the current one.
const CAS_MISMATCH: &str = "check-and-set parameter did not match the current version";

/// OpenBao's message for a write without `options.cas` where one is required.
const CAS_REQUIRED: &str = "check-and-set parameter required for this call";

/// A non-empty string at `ptr`.
fn is_time(r: &Reply, ptr: &str) -> bool {
    r.body
        .pointer(ptr)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// `PATCH path` with a JSON merge patch body, as the `bao kv patch` CLI sends.
fn patch(path: &str, body: Value) -> Call {
    Call::new("PATCH", path)
        .json(&body)
        .header("Content-Type", "application/merge-patch+json")
}

/// Mounts a KV engine at `path` with `body` on both servers.
async fn mount(p: &mut Pair, path: &str, body: Value) {
    let r = p
        .check(Call::post(&format!("sys/mounts/{path}"), body.clone()), &[])
        .await;
    p.expect_status(&r, 204, &format!("mount {path} with {body}"));
}

/// Mounts a fresh KV v2 engine at `path` with the documented option.
async fn mount_kv2(p: &mut Pair, path: &str) {
    mount(p, path, json!({"type": "kv", "options": {"version": "2"}})).await;
}

/// Writes `data` at `mount/data/key` on both servers, expecting 200 and the
/// given new version.
async fn put(p: &mut Pair, mount: &str, key: &str, data: Value, version: u64) -> (Reply, Reply) {
    let r = p
        .check(
            Call::post(&format!("{mount}/data/{key}"), json!({ "data": data })),
            &[],
        )
        .await;
    p.expect_status(&r, 200, &format!("write {mount}/data/{key}"));
    on_both(p, &r, &format!("write {key} is version {version}"), |x| {
        x.data("version") == &json!(version)
    });
    r
}

/// Reads `path` on both servers, asserting status 200 and the secret data.
async fn read_data(p: &mut Pair, path: &str, data: Value, version: u64) {
    let r = p.check(Call::get(path), &[]).await;
    p.expect_status(&r, 200, &format!("read {path}"));
    on_both(p, &r, &format!("read {path}: data and version"), |x| {
        x.body["data"]["data"] == data && x.body["data"]["metadata"]["version"] == json!(version)
    });
}

#[tokio::test]
async fn kv2_mount_types_and_dev_secret_mount() {
    let mut p = differences::pair();
    // Dev mode mounts secret/ as KV v2.
    let r = p.check(Call::get("sys/mounts"), &[]).await;
    p.expect_status(&r, 200, "sys/mounts");
    on_both(&mut p, &r, "dev secret/ is kv version 2", |x| {
        x.data("secret/")["type"] == json!("kv")
            && x.data("secret/")["options"]["version"] == json!("2")
    });
    put(&mut p, "secret", "app", json!({"a": "1"}), 1).await;
    read_data(&mut p, "secret/data/app", json!({"a": "1"}), 1).await;

    // The kv-v2 type is an alias for kv with version 2.
    mount(&mut p, "kvt", json!({"type": "kv-v2"})).await;
    let r = p.check(Call::get("sys/mounts/kvt"), &[]).await;
    p.expect_status(&r, 200, "read the kv-v2 mount");
    on_both(&mut p, &r, "kv-v2 is recorded as kv version 2", |x| {
        x.data("type") == &json!("kv") && x.data("options")["version"] == json!("2")
    });
    put(&mut p, "kvt", "x", json!({"b": "2"}), 1).await;
    read_data(&mut p, "kvt/data/x", json!({"b": "2"}), 1).await;

    // The KV v1 path form is not a v2 endpoint: 404 with a warning.
    let r = p.check(Call::get("kvt/x"), &[]).await;
    p.expect_status(&r, 404, "v1-style read on a v2 mount");
    on_both(&mut p, &r, "v1-style read warns", |x| {
        x.body["warnings"].as_array().is_some_and(|w| !w.is_empty())
    });
    p.finish();
}

#[tokio::test]
async fn kv2_config() {
    let mut p = differences::pair();
    mount_kv2(&mut p, "kv2").await;
    let r = p.check(Call::get("kv2/config"), &[]).await;
    p.expect_status(&r, 200, "read default config");
    on_both(&mut p, &r, "default config", |x| {
        x.data("max_versions") == &json!(0)
            && x.data("cas_required") == &json!(false)
            && x.data("delete_version_after") == &json!("0s")
    });
    same_value(&mut p, &r, "/data", "default config");

    let body = json!({"max_versions": 3, "cas_required": true, "delete_version_after": "1h"});
    let r = p.check(Call::post("kv2/config", body), &[]).await;
    p.expect_status(&r, 204, "write config");
    let r = p.check(Call::get("kv2/config"), &[]).await;
    p.expect_status(&r, 200, "read config back");
    on_both(&mut p, &r, "config read back", |x| {
        x.data("max_versions") == &json!(3)
            && x.data("cas_required") == &json!(true)
            && x.data("delete_version_after") == &json!("1h0m0s")
    });
    same_value(&mut p, &r, "/data", "config read back");

    // Bad values are refused and change nothing.
    for body in [
        json!({"max_versions": "abc"}),
        json!({"delete_version_after": "bogus"}),
        json!({"cas_required": "maybe"}),
    ] {
        let r = p.check(Call::post("kv2/config", body.clone()), &[]).await;
        p.expect_status(&r, 400, &format!("config {body}"));
    }
    let r = p.check(Call::get("kv2/config"), &[]).await;
    on_both(&mut p, &r, "config unchanged after bad writes", |x| {
        x.data("max_versions") == &json!(3) && x.data("delete_version_after") == &json!("1h0m0s")
    });

    // A negative max_versions: OpenBao accepts it (stored as a uint32).
    let r = p
        .check(Call::post("kv2/config", json!({"max_versions": -1})), &[])
        .await;
    same_value(&mut p, &r, "/errors", "negative max_versions");
    p.finish();
}

#[tokio::test]
async fn kv2_write_and_read_versions() {
    let mut p = differences::pair();
    mount_kv2(&mut p, "kv2").await;
    let r = put(&mut p, "kv2", "app", json!({"a": "1"}), 1).await;
    on_both(&mut p, &r, "write response metadata", |x| {
        x.data("custom_metadata").is_null()
            && x.data("deletion_time") == &json!("")
            && x.data("destroyed") == &json!(false)
            && is_time(x, "/data/created_time")
    });
    let nested = json!({"n": 1, "nested": {"x": [1, 2]}, "b": true, "s": "two"});
    put(&mut p, "kv2", "app", nested.clone(), 2).await;

    let r = p.check(Call::get("kv2/data/app"), &[]).await;
    p.expect_status(&r, 200, "read latest");
    same_value(&mut p, &r, "/data/data", "latest data");
    on_both(&mut p, &r, "latest is version 2 with its JSON types", |x| {
        x.body["data"]["data"] == nested
            && x.body["data"]["metadata"]["version"] == json!(2)
            && x.body["data"]["metadata"]["deletion_time"] == json!("")
            && x.body["data"]["metadata"]["destroyed"] == json!(false)
            && x.body["data"]["metadata"]["custom_metadata"].is_null()
            && x.body["lease_duration"] == json!(0)
    });
    read_data(&mut p, "kv2/data/app?version=1", json!({"a": "1"}), 1).await;
    read_data(&mut p, "kv2/data/app?version=2", nested.clone(), 2).await;
    // Version 0 means the latest.
    read_data(&mut p, "kv2/data/app?version=0", nested, 2).await;

    // A version that was never written, and a key that was never written.
    for path in ["kv2/data/app?version=7", "kv2/data/nothing"] {
        let r = p.check(Call::get(path), &[]).await;
        p.expect_status(&r, 404, path);
        on_both(&mut p, &r, &format!("{path}: empty errors"), |x| {
            x.body == json!({"errors": []})
        });
    }

    // PUT writes like POST.
    let r = p
        .check(Call::put("kv2/data/put", json!({"data": {"x": "y"}})), &[])
        .await;
    p.expect_status(&r, 200, "PUT data");

    // Missing and non-object data: refused, nothing written.
    for (key, body) in [
        ("e1", json!({})),
        ("e2", json!({"foo": "bar"})),
        ("e4", json!({"data": "str"})),
        ("e5", json!({"data": [1, 2]})),
        ("e6", json!({"data": {"a": "1"}, "options": "x"})),
    ] {
        let r = p
            .check(Call::post(&format!("kv2/data/{key}"), body.clone()), &[])
            .await;
        p.expect_status(&r, 400, &format!("write {body}"));
        let r = p.check(Call::get(&format!("kv2/data/{key}")), &[]).await;
        p.expect_status(&r, 404, &format!("nothing written by {body}"));
    }
    let r = p.check(Call::post("kv2/data/e1", json!({})), &[]).await;
    on_both(&mut p, &r, "missing data message", |x| {
        errors_mention(x, "no data provided")
    });
    // OpenBao accepts an explicit null and stores a version without data.
    let r = p
        .check(Call::post("kv2/data/e3", json!({"data": null})), &[])
        .await;
    p.expect_status(&r, 200, "data null");
    let r = p.check(Call::get("kv2/data/e3"), &[]).await;
    p.expect_status(&r, 200, "read a null-data version");
    on_both(&mut p, &r, "null data read back", |x| {
        x.body["data"]["data"].is_null() && x.body["data"]["metadata"]["version"] == json!(1)
    });
    // An empty object is a valid (empty) secret.
    let r = p
        .check(Call::post("kv2/data/empty", json!({"data": {}})), &[])
        .await;
    p.expect_status(&r, 200, "empty data object");
    read_data(&mut p, "kv2/data/empty", json!({}), 1).await;
    p.finish();
}

#[tokio::test]
async fn kv2_check_and_set() {
    let mut p = differences::pair();
    mount_kv2(&mut p, "kv2").await;
    let cas = |data: &str, cas: i64| json!({"data": {"v": data}, "options": {"cas": cas}});

    // cas 0: only if absent.
    let r = p.check(Call::post("kv2/data/k", cas("1", 0)), &[]).await;
    p.expect_status(&r, 200, "cas 0 on an absent key");
    let r = p.check(Call::post("kv2/data/k", cas("x", 0)), &[]).await;
    p.expect_status(&r, 400, "cas 0 on an existing key");
    on_both(&mut p, &r, "cas 0 mismatch message", |x| {
        errors_mention(x, CAS_MISMATCH)
    });
    // Right and wrong versions.
    let r = p.check(Call::post("kv2/data/k", cas("2", 1)), &[]).await;
    p.expect_status(&r, 200, "cas 1 = current");
    on_both(&mut p, &r, "cas write makes version 2", |x| {
        x.data("version") == &json!(2)
    });
    for wrong in [1, 3, -1] {
        let r = p
            .check(Call::post("kv2/data/k", cas("x", wrong)), &[])
            .await;
        p.expect_status(&r, 400, &format!("cas {wrong} with current 2"));
        on_both(&mut p, &r, "wrong cas message", |x| {
            errors_mention(x, CAS_MISMATCH)
        });
    }
    let r = p.check(Call::post("kv2/data/new", cas("x", 1)), &[]).await;
    p.expect_status(&r, 400, "cas 1 on an absent key");
    let r = p
        .check(
            Call::post(
                "kv2/data/k",
                json!({"data": {"v": "x"}, "options": {"cas": "abc"}}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "non-numeric cas");
    read_data(&mut p, "kv2/data/k", json!({"v": "2"}), 2).await;

    // cas_required on the mount.
    mount_kv2(&mut p, "strict").await;
    let r = p
        .check(
            Call::post("strict/config", json!({"cas_required": true})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "config cas_required");
    let r = p
        .check(
            Call::post("strict/data/a", json!({"data": {"v": "1"}})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "write without cas on a cas_required mount");
    on_both(&mut p, &r, "cas required message", |x| {
        errors_mention(x, CAS_REQUIRED)
    });
    let r = p.check(Call::post("strict/data/a", cas("1", 0)), &[]).await;
    p.expect_status(&r, 200, "write with cas on a cas_required mount");
    let r = p
        .check(
            Call::post("strict/data/a", json!({"data": {"v": "2"}})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "second write without cas");

    // cas_required on one key's metadata.
    let r = p
        .check(
            Call::post("kv2/metadata/guarded", json!({"cas_required": true})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "metadata cas_required");
    let r = p
        .check(
            Call::post("kv2/data/guarded", json!({"data": {"v": "1"}})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "write without cas on a cas_required key");
    on_both(&mut p, &r, "cas required (key) message", |x| {
        errors_mention(x, CAS_REQUIRED)
    });
    let r = p
        .check(Call::post("kv2/data/guarded", cas("1", 0)), &[])
        .await;
    p.expect_status(&r, 200, "write with cas on a cas_required key");
    // Other keys of that mount are not affected.
    let r = p
        .check(
            Call::post("kv2/data/free", json!({"data": {"v": "1"}})),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "write without cas on another key");
    p.finish();
}

#[tokio::test]
async fn kv2_patch() {
    let mut p = differences::pair();
    mount_kv2(&mut p, "kv2").await;
    put(
        &mut p,
        "kv2",
        "p",
        json!({"a": "1", "b": "2", "c": {"d": "x", "e": "y"}}),
        1,
    )
    .await;
    let r = p
        .check(
            patch(
                "kv2/data/p",
                json!({"data": {"a": "10", "b": null, "c": {"d": null}, "z": "new"}}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "merge patch");
    on_both(&mut p, &r, "patch makes version 2", |x| {
        x.data("version") == &json!(2) && x.data("deletion_time") == &json!("")
    });
    read_data(
        &mut p,
        "kv2/data/p",
        json!({"a": "10", "c": {"e": "y"}, "z": "new"}),
        2,
    )
    .await;
    // The old version is untouched.
    read_data(
        &mut p,
        "kv2/data/p?version=1",
        json!({"a": "1", "b": "2", "c": {"d": "x", "e": "y"}}),
        1,
    )
    .await;

    // A key that does not exist.
    let r = p
        .check(patch("kv2/data/missing", json!({"data": {"a": "1"}})), &[])
        .await;
    p.expect_status(&r, 404, "patch of a missing key");
    let r = p.check(Call::get("kv2/data/missing"), &[]).await;
    p.expect_status(&r, 404, "patch did not create the key");

    // Check-and-set.
    let r = p
        .check(
            patch(
                "kv2/data/p",
                json!({"data": {"a": "x"}, "options": {"cas": 1}}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "patch with a stale cas");
    on_both(&mut p, &r, "patch cas message", |x| {
        errors_mention(x, CAS_MISMATCH)
    });
    let r = p
        .check(
            patch(
                "kv2/data/p",
                json!({"data": {"a": "11"}, "options": {"cas": 2}}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "patch with the current cas");
    on_both(&mut p, &r, "patch with cas makes version 3", |x| {
        x.data("version") == &json!(3)
    });

    // Wrong content types: 415, naming the required type.
    for ct in ["application/json", "text/plain"] {
        let call = Call::new("PATCH", "kv2/data/p")
            .json(&json!({"data": {"a": "bad"}}))
            .header("Content-Type", ct);
        let r = p.check(call, &[]).await;
        p.expect_status(&r, 415, &format!("patch with Content-Type {ct}"));
        on_both(&mut p, &r, "415 names merge-patch", |x| {
            errors_mention(x, "application/merge-patch+json")
        });
    }
    // No Content-Type at all: OpenBao cannot parse the media type.
    let r = p
        .check(
            Call::new("PATCH", "kv2/data/p").json(&json!({"data": {"a": "bad"}})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "patch without a Content-Type");
    // Malformed patches.
    for body in [json!({}), json!({"data": "x"})] {
        let r = p.check(patch("kv2/data/p", body.clone()), &[]).await;
        p.expect_status(&r, 400, &format!("patch {body}"));
    }
    let r = p
        .check(
            Call::new("PATCH", "kv2/data/p")
                .raw(r#"{"data":{"a":"12"}"#)
                .header("Content-Type", "application/merge-patch+json"),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "patch with malformed JSON");
    read_data(
        &mut p,
        "kv2/data/p",
        json!({"a": "11", "c": {"e": "y"}, "z": "new"}),
        3,
    )
    .await;

    // A soft-deleted latest version cannot be patched.
    let r = p.check(Call::delete("kv2/data/p"), &[]).await;
    p.expect_status(&r, 204, "delete latest");
    let r = p
        .check(patch("kv2/data/p", json!({"data": {"a": "13"}})), &[])
        .await;
    p.expect_status(&r, 404, "patch of a deleted latest version");
    on_both(&mut p, &r, "patch of deleted: metadata of version 3", |x| {
        x.data("version") == &json!(3) && is_time(x, "/data/deletion_time")
    });
    // Undeleting makes it patchable again.
    let r = p
        .check(Call::post("kv2/undelete/p", json!({"versions": [3]})), &[])
        .await;
    p.expect_status(&r, 204, "undelete 3");
    let r = p
        .check(patch("kv2/data/p", json!({"data": {"a": "13"}})), &[])
        .await;
    p.expect_status(&r, 200, "patch after undelete");
    read_data(
        &mut p,
        "kv2/data/p",
        json!({"a": "13", "c": {"e": "y"}, "z": "new"}),
        4,
    )
    .await;
    p.finish();
}

#[tokio::test]
async fn kv2_delete_undelete_destroy() {
    let mut p = differences::pair();
    mount_kv2(&mut p, "kv2").await;
    for v in 1..=3 {
        put(&mut p, "kv2", "d", json!({ "v": v.to_string() }), v).await;
    }

    // DELETE data/ soft-deletes the latest version.
    let r = p.check(Call::delete("kv2/data/d"), &[]).await;
    p.expect_status(&r, 204, "delete latest");
    let r = p.check(Call::get("kv2/data/d"), &[]).await;
    p.expect_status(&r, 404, "read a deleted latest version");
    on_both(&mut p, &r, "deleted read: null data, metadata kept", |x| {
        x.body["data"]["data"].is_null()
            && x.body["data"]["metadata"]["version"] == json!(3)
            && x.body["data"]["metadata"]["destroyed"] == json!(false)
            && is_time(x, "/data/metadata/deletion_time")
    });
    // Older versions stay readable.
    read_data(&mut p, "kv2/data/d?version=2", json!({"v": "2"}), 2).await;

    // delete/ by version.
    let r = p
        .check(Call::post("kv2/delete/d", json!({"versions": [1]})), &[])
        .await;
    p.expect_status(&r, 204, "delete version 1");
    let r = p.check(Call::get("kv2/data/d?version=1"), &[]).await;
    p.expect_status(&r, 404, "read deleted version 1");
    on_both(&mut p, &r, "version 1 deleted", |x| {
        x.body["data"]["metadata"]["version"] == json!(1)
            && is_time(x, "/data/metadata/deletion_time")
    });

    // undelete/ restores both.
    let r = p
        .check(
            Call::post("kv2/undelete/d", json!({"versions": [1, 3]})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "undelete 1 and 3");
    read_data(&mut p, "kv2/data/d?version=1", json!({"v": "1"}), 1).await;
    let r = p.check(Call::get("kv2/data/d"), &[]).await;
    p.expect_status(&r, 200, "latest readable after undelete");
    on_both(&mut p, &r, "undeleted: deletion_time cleared", |x| {
        x.body["data"]["metadata"]["deletion_time"] == json!("")
            && x.body["data"]["data"] == json!({"v": "3"})
    });

    // destroy/ is permanent.
    let r = p
        .check(Call::post("kv2/destroy/d", json!({"versions": [2]})), &[])
        .await;
    p.expect_status(&r, 204, "destroy 2");
    let r = p.check(Call::get("kv2/data/d?version=2"), &[]).await;
    p.expect_status(&r, 404, "read destroyed version");
    on_both(&mut p, &r, "destroyed: null data, destroyed true", |x| {
        x.body["data"]["data"].is_null()
            && x.body["data"]["metadata"]["destroyed"] == json!(true)
            && x.body["data"]["metadata"]["version"] == json!(2)
    });
    let r = p
        .check(Call::post("kv2/undelete/d", json!({"versions": [2]})), &[])
        .await;
    p.expect_status(&r, 204, "undelete a destroyed version (no-op)");
    let r = p.check(Call::get("kv2/data/d?version=2"), &[]).await;
    p.expect_status(&r, 404, "destroyed stays destroyed");

    let r = p.check(Call::get("kv2/metadata/d"), &[]).await;
    p.expect_status(&r, 200, "metadata after delete/destroy");
    on_both(&mut p, &r, "metadata records each version's state", |x| {
        let v = &x.body["data"]["versions"];
        v["1"]["deletion_time"] == json!("")
            && v["2"]["destroyed"] == json!(true)
            && v["3"]["destroyed"] == json!(false)
            && v["3"]["deletion_time"] == json!("")
            && x.data("current_version") == &json!(3)
    });

    // Versions and keys that do not exist: silently accepted.
    for (op, path) in [
        ("delete", "kv2/delete/d"),
        ("undelete", "kv2/undelete/d"),
        ("destroy", "kv2/destroy/d"),
        ("delete", "kv2/delete/nokey"),
        ("undelete", "kv2/undelete/nokey"),
        ("destroy", "kv2/destroy/nokey"),
    ] {
        let r = p
            .check(Call::post(path, json!({"versions": [99]})), &[])
            .await;
        p.expect_status(&r, 204, &format!("{op} of a missing version at {path}"));
    }
    let r = p.check(Call::get("kv2/data/nokey"), &[]).await;
    p.expect_status(&r, 404, "no key created by delete/undelete/destroy");
    // No versions: 400.
    for path in ["kv2/delete/d", "kv2/undelete/d", "kv2/destroy/d"] {
        for body in [json!({"versions": []}), json!({})] {
            let r = p.check(Call::post(path, body.clone()), &[]).await;
            p.expect_status(&r, 400, &format!("{path} with {body}"));
            on_both(&mut p, &r, "no versions message", |x| {
                errors_mention(&lowercase(x), "no version number provided")
            });
        }
    }
    let r = p
        .check(
            Call::post("kv2/delete/d", json!({"versions": ["abc"]})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "non-numeric version");
    let r = p.check(Call::get("kv2/data/d"), &[]).await;
    p.expect_status(&r, 200, "latest still readable after refused deletes");
    p.finish();
}

/// `r` with its error messages lowercased (OpenBao capitalises some).
fn lowercase(r: &Reply) -> Reply {
    let errors: Vec<Value> = server::str_list(&r.body["errors"])
        .into_iter()
        .map(|e| Value::String(e.to_lowercase()))
        .collect();
    Reply {
        status: r.status,
        body: json!({ "errors": errors }),
    }
}

#[tokio::test]
async fn kv2_metadata() {
    let mut p = differences::pair();
    mount_kv2(&mut p, "kv2").await;

    // Nothing to list yet.
    for call in [
        Call::list("kv2/metadata/"),
        Call::get("kv2/metadata?list=true"),
    ] {
        let r = p.check(call, &[]).await;
        p.expect_status(&r, 404, "list an empty mount");
        on_both(&mut p, &r, "empty list: empty errors", |x| {
            x.body == json!({"errors": []})
        });
    }
    put(&mut p, "kv2", "top", json!({"v": "1"}), 1).await;
    put(&mut p, "kv2", "dir/a", json!({"v": "1"}), 1).await;
    put(&mut p, "kv2", "dir/sub/b", json!({"v": "1"}), 1).await;
    for (path, keys) in [
        ("kv2/metadata/", json!(["dir/", "top"])),
        ("kv2/metadata/dir/", json!(["a", "sub/"])),
        ("kv2/metadata/dir", json!(["a", "sub/"])),
    ] {
        let r = p.check(Call::list(path), &[]).await;
        p.expect_status(&r, 200, &format!("LIST {path}"));
        on_both(&mut p, &r, &format!("LIST {path} keys"), |x| {
            x.data("keys") == &keys
        });
    }
    let r = p.check(Call::list("kv2/metadata/nothing/"), &[]).await;
    p.expect_status(&r, 404, "LIST of a missing folder");
    // LIST is not a data/ operation.
    let r = p.check(Call::list("kv2/data/"), &[]).await;
    p.expect_status(&r, 405, "LIST data/");

    // Metadata of a key written through data/.
    put(&mut p, "kv2", "top", json!({"v": "2"}), 2).await;
    let r = p.check(Call::get("kv2/metadata/top"), &[]).await;
    p.expect_status(&r, 200, "read metadata");
    on_both(&mut p, &r, "metadata values", |x| {
        let v = &x.body["data"]["versions"];
        x.data("current_version") == &json!(2)
            && x.data("oldest_version") == &json!(0)
            && x.data("max_versions") == &json!(0)
            && x.data("cas_required") == &json!(false)
            && x.data("delete_version_after") == &json!("0s")
            && x.data("custom_metadata").is_null()
            && is_time(x, "/data/created_time")
            && is_time(x, "/data/updated_time")
            && v.as_object().is_some_and(|m| m.len() == 2)
            && v["1"]["created_time"] == x.body["data"]["created_time"]
            && v["2"]["created_time"] == x.body["data"]["updated_time"]
    });
    let r = p.check(Call::get("kv2/metadata/nothing"), &[]).await;
    p.expect_status(&r, 404, "metadata of a missing key");

    // Write metadata of an existing key.
    let r = p
        .check(
            Call::post(
                "kv2/metadata/top",
                json!({"custom_metadata": {"owner": "you"}, "max_versions": 4}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write metadata of an existing key");
    let r = p.check(Call::get("kv2/metadata/top"), &[]).await;
    same_value(&mut p, &r, "/data/custom_metadata", "custom_metadata");
    on_both(&mut p, &r, "metadata written", |x| {
        x.data("custom_metadata") == &json!({"owner": "you"})
            && x.data("max_versions") == &json!(4)
            && x.data("current_version") == &json!(2)
    });
    // custom_metadata shows in data reads.
    let r = p.check(Call::get("kv2/data/top"), &[]).await;
    on_both(&mut p, &r, "custom_metadata in data reads", |x| {
        x.body["data"]["metadata"]["custom_metadata"] == json!({"owner": "you"})
    });

    // Write metadata of a key that has no versions yet.
    let body = json!({
        "max_versions": 2,
        "cas_required": false,
        "delete_version_after": "1h",
        "custom_metadata": {"owner": "me"},
    });
    let r = p.check(Call::post("kv2/metadata/fresh", body), &[]).await;
    p.expect_status(&r, 204, "write metadata of a new key");
    let r = p.check(Call::get("kv2/metadata/fresh"), &[]).await;
    p.expect_status(&r, 200, "read metadata of a key without versions");
    on_both(&mut p, &r, "metadata of a key without versions", |x| {
        x.data("current_version") == &json!(0)
            && x.data("versions") == &json!({})
            && x.data("max_versions") == &json!(2)
            && x.data("delete_version_after") == &json!("1h0m0s")
            && x.data("custom_metadata") == &json!({"owner": "me"})
    });
    let r = p.check(Call::get("kv2/data/fresh"), &[]).await;
    p.expect_status(&r, 404, "no data yet");
    let r = p.check(Call::list("kv2/metadata/"), &[]).await;
    on_both(&mut p, &r, "a metadata-only key is listed", |x| {
        x.data("keys") == &json!(["dir/", "fresh", "top"])
    });

    // PATCH metadata merges custom_metadata and leaves the rest alone.
    let r = p
        .check(
            patch(
                "kv2/metadata/top",
                json!({"custom_metadata": {"team": "x"}, "max_versions": 5}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "patch metadata");
    let r = p.check(Call::get("kv2/metadata/top"), &[]).await;
    on_both(&mut p, &r, "patched metadata", |x| {
        x.data("custom_metadata") == &json!({"owner": "you", "team": "x"})
            && x.data("max_versions") == &json!(5)
            && x.data("current_version") == &json!(2)
    });
    let r = p
        .check(
            patch(
                "kv2/metadata/top",
                json!({"custom_metadata": {"team": null}}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "patch metadata removing a field");
    let r = p.check(Call::get("kv2/metadata/top"), &[]).await;
    on_both(&mut p, &r, "null removes a custom_metadata field", |x| {
        x.data("custom_metadata") == &json!({"owner": "you"}) && x.data("max_versions") == &json!(5)
    });
    let r = p
        .check(
            patch("kv2/metadata/missing", json!({"max_versions": 5})),
            &[],
        )
        .await;
    p.expect_status(&r, 404, "patch metadata of a missing key");

    // DELETE metadata removes every version.
    let r = p.check(Call::delete("kv2/metadata/top"), &[]).await;
    p.expect_status(&r, 204, "delete metadata");
    for path in ["kv2/data/top", "kv2/data/top?version=1", "kv2/metadata/top"] {
        let r = p.check(Call::get(path), &[]).await;
        p.expect_status(&r, 404, &format!("{path} after metadata delete"));
        on_both(&mut p, &r, "gone: empty errors", |x| {
            x.body == json!({"errors": []})
        });
    }
    let r = p.check(Call::delete("kv2/metadata/top"), &[]).await;
    p.expect_status(&r, 204, "delete metadata again");
    // The key starts over at version 1.
    put(&mut p, "kv2", "top", json!({"v": "again"}), 1).await;
    p.finish();
}

#[tokio::test]
async fn kv2_max_versions_and_delete_version_after() {
    let mut p = differences::pair();
    mount_kv2(&mut p, "kv2").await;
    let r = p
        .check(
            Call::post("kv2/metadata/trim", json!({"max_versions": 2})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "metadata max_versions 2");
    for v in 1..=5 {
        put(&mut p, "kv2", "trim", json!({ "v": v.to_string() }), v).await;
    }
    let r = p.check(Call::get("kv2/metadata/trim"), &[]).await;
    on_both(&mut p, &r, "only the newest 2 versions kept", |x| {
        let keys: Vec<&String> = x.body["data"]["versions"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        x.data("current_version") == &json!(5)
            && x.data("oldest_version") == &json!(4)
            && keys.len() == 2
            && keys.iter().all(|k| *k == "4" || *k == "5")
    });
    let r = p.check(Call::get("kv2/data/trim?version=3"), &[]).await;
    p.expect_status(&r, 404, "trimmed version");
    on_both(&mut p, &r, "trimmed: empty errors", |x| {
        x.body == json!({"errors": []})
    });
    read_data(&mut p, "kv2/data/trim?version=4", json!({"v": "4"}), 4).await;

    // The mount's max_versions applies to keys without their own.
    let r = p
        .check(Call::post("kv2/config", json!({"max_versions": 3})), &[])
        .await;
    p.expect_status(&r, 204, "config max_versions 3");
    for v in 1..=5 {
        put(
            &mut p,
            "kv2",
            "mount-trim",
            json!({ "v": v.to_string() }),
            v,
        )
        .await;
    }
    let r = p.check(Call::get("kv2/metadata/mount-trim"), &[]).await;
    on_both(&mut p, &r, "mount max_versions keeps 3", |x| {
        x.data("oldest_version") == &json!(3)
            && x.data("current_version") == &json!(5)
            && x.data("max_versions") == &json!(0)
            && x.body["data"]["versions"]
                .as_object()
                .is_some_and(|m| m.len() == 3)
    });

    // delete_version_after: new versions carry a future deletion time but
    // stay readable until then.
    let r = p
        .check(
            Call::post(
                "kv2/metadata/expiring",
                json!({"delete_version_after": "1h"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "metadata delete_version_after");
    let r = put(&mut p, "kv2", "expiring", json!({"v": "1"}), 1).await;
    on_both(
        &mut p,
        &r,
        "deletion_time one hour after created_time",
        |x| {
            let created = x.data("created_time").as_str().unwrap_or_default();
            let deletion = x.data("deletion_time").as_str().unwrap_or_default();
            !created.is_empty() && deletion > created
        },
    );
    read_data(&mut p, "kv2/data/expiring", json!({"v": "1"}), 1).await;
    let r = p.check(Call::get("kv2/data/expiring"), &[]).await;
    on_both(&mut p, &r, "read shows the scheduled deletion", |x| {
        is_time(x, "/data/metadata/deletion_time")
    });
    p.finish();
}

#[tokio::test]
async fn kv2_subkeys() {
    let mut p = differences::pair();
    mount_kv2(&mut p, "kv2").await;
    put(
        &mut p,
        "kv2",
        "sk",
        json!({"a": "1", "b": {"c": {"d": "x"}, "e": "y"}, "f": [1, 2]}),
        1,
    )
    .await;
    put(&mut p, "kv2", "sk", json!({"only": "v2"}), 2).await;
    for (query, subkeys, version) in [
        ("", json!({"only": null}), 2),
        ("?depth=1", json!({"only": null}), 2),
        (
            "?version=1",
            json!({"a": null, "b": {"c": {"d": null}, "e": null}, "f": null}),
            1,
        ),
        (
            "?version=1&depth=1",
            json!({"a": null, "b": null, "f": null}),
            1,
        ),
        (
            "?version=1&depth=2",
            json!({"a": null, "b": {"c": null, "e": null}, "f": null}),
            1,
        ),
        (
            "?version=1&depth=0",
            json!({"a": null, "b": {"c": {"d": null}, "e": null}, "f": null}),
            1,
        ),
    ] {
        let path = format!("kv2/subkeys/sk{query}");
        let r = p.check(Call::get(&path), &[]).await;
        p.expect_status(&r, 200, &path);
        on_both(&mut p, &r, &format!("{path}: subkeys and version"), |x| {
            x.data("subkeys") == &subkeys && x.body["data"]["metadata"]["version"] == json!(version)
        });
    }
    for path in ["kv2/subkeys/sk?version=9", "kv2/subkeys/nokey"] {
        let r = p.check(Call::get(path), &[]).await;
        p.expect_status(&r, 404, path);
    }
    let r = p.check(Call::get("kv2/subkeys/sk?depth=abc"), &[]).await;
    p.expect_status(&r, 400, "subkeys depth=abc");

    let r = p.check(Call::delete("kv2/data/sk"), &[]).await;
    p.expect_status(&r, 204, "delete latest");
    let r = p.check(Call::get("kv2/subkeys/sk"), &[]).await;
    p.expect_status(&r, 404, "subkeys of a deleted version");
    on_both(&mut p, &r, "deleted subkeys: null, metadata kept", |x| {
        x.data("subkeys").is_null()
            && x.body["data"]["metadata"]["version"] == json!(2)
            && is_time(x, "/data/metadata/deletion_time")
    });
    p.finish();
}

#[tokio::test]
async fn kv2_bad_input_changes_nothing() {
    let mut p = differences::pair();
    mount_kv2(&mut p, "kv2").await;
    put(&mut p, "kv2", "bi", json!({"v": "1"}), 1).await;
    let r = p.check(Call::get("kv2/data/bi?version=abc"), &[]).await;
    p.expect_status(&r, 400, "version=abc");
    for (path, body) in [
        ("kv2/data/bi", r#"{"data":{"v":"#),
        ("kv2/data/bi", "not json"),
        ("kv2/data/bi", "[1,2]"),
        ("kv2/metadata/bi", r#"{"max_versions":"#),
        ("kv2/delete/bi", r#"{"versions":"#),
        ("kv2/destroy/bi", r#"{"versions":"#),
        ("kv2/config", r#"{"max_versions":"#),
    ] {
        let r = p.check(Call::new("POST", path).raw(body), &[]).await;
        p.expect_status(&r, 400, &format!("POST {path} {body}"));
    }
    for body in [
        json!({"max_versions": "x"}),
        json!({"delete_version_after": "soon"}),
        json!({"custom_metadata": "x"}),
        json!({"cas_required": "maybe"}),
    ] {
        let r = p
            .check(Call::post("kv2/metadata/bi", body.clone()), &[])
            .await;
        p.expect_status(&r, 400, &format!("metadata {body}"));
    }
    read_data(&mut p, "kv2/data/bi", json!({"v": "1"}), 1).await;
    let r = p.check(Call::get("kv2/metadata/bi"), &[]).await;
    on_both(&mut p, &r, "metadata unchanged by bad input", |x| {
        x.data("current_version") == &json!(1)
            && x.data("max_versions") == &json!(0)
            && x.data("custom_metadata").is_null()
            && x.data("delete_version_after") == &json!("0s")
            && x.body["data"]["versions"]["1"]["deletion_time"] == json!("")
    });
    let r = p.check(Call::get("kv2/config"), &[]).await;
    on_both(&mut p, &r, "config unchanged by bad input", |x| {
        x.data("max_versions") == &json!(0)
    });
    p.finish();
}

/// Sends `n` concurrent writes to `key` on `server`, each with
/// `options.cas = cas`, and returns their status codes.
async fn racing_writes(server: &Server, key: &str, cas: u64, n: usize) -> Vec<u16> {
    let client = reqwest::Client::new();
    let url = format!("{}/v1/kv2/data/{key}", server.addr);
    let token = server.root_token.clone().unwrap_or_default();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        set.spawn(async move {
            let body = json!({"data": {"writer": i}, "options": {"cas": cas}});
            client
                .post(&url)
                .header("X-Vault-Token", token)
                .body(body.to_string())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = set.join_next().await {
        statuses.push(s.unwrap_or(0));
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kv2_concurrent_cas_writers_one_wins() {
    const WRITERS: usize = 16;
    let mut p = differences::pair();
    mount_kv2(&mut p, "kv2").await;
    put(&mut p, "kv2", "race", json!({"v": "1"}), 1).await;
    put(&mut p, "kv2", "race", json!({"v": "2"}), 2).await;
    for server in [&p.bao, &p.sr] {
        let statuses = racing_writes(server, "race", 2, WRITERS).await;
        let ok = statuses.iter().filter(|s| **s == 200).count();
        let refused = statuses.iter().filter(|s| **s == 400).count();
        assert_eq!(
            (ok, refused),
            (1, WRITERS - 1),
            "{}: {WRITERS} writers with cas=2 answered {statuses:?}",
            server.kind.label()
        );
        let r = server.send(&Call::get("kv2/metadata/race")).await;
        assert_eq!(
            r.data("current_version"),
            &json!(3),
            "{}: exactly one new version: {r:?}",
            server.kind.label()
        );
        // The winner's data is the latest version.
        let r = server.send(&Call::get("kv2/data/race")).await;
        assert!(
            r.body["data"]["data"]["writer"].is_u64(),
            "{}: latest data is one writer's: {r:?}",
            server.kind.label()
        );
    }
    p.finish();
}

/// Reads `path` on `server` until it answers 200 or the deadline passes.
async fn poll_until_ok(server: &Server, path: &str) -> Reply {
    let deadline = Instant::now() + UPGRADE_DEADLINE;
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        interval.tick().await;
        let r = server.send(&Call::get(path)).await;
        if r.status == 200 || Instant::now() >= deadline {
            return r;
        }
    }
}

#[tokio::test]
async fn kv1_to_kv2_upgrade() {
    let mut p = differences::pair();
    mount(
        &mut p,
        "up",
        json!({"type": "kv", "options": {"version": "1"}}),
    )
    .await;
    for (key, body) in [("k1", json!({"a": "1"})), ("dir/k2", json!({"b": "2"}))] {
        let r = p.check(Call::post(&format!("up/{key}"), body), &[]).await;
        p.expect_status(&r, 204, &format!("v1 write {key}"));
    }
    let r = p
        .check(
            Call::post("sys/mounts/up/tune", json!({"options": {"version": "2"}})),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "tune to version 2");
    on_both(
        &mut p,
        &r,
        "upgrade warns the mount is briefly unavailable",
        |x| x.body["warnings"].as_array().is_some_and(|w| !w.is_empty()),
    );
    // The upgrade may run in the background: poll with a deadline.
    let r = (
        poll_until_ok(&p.bao, "up/data/k1").await,
        poll_until_ok(&p.sr, "up/data/k1").await,
    );
    p.expect_status(&r, 200, "read upgraded key");
    on_both(&mut p, &r, "old key is version 1", |x| {
        x.body["data"]["data"] == json!({"a": "1"})
            && x.body["data"]["metadata"]["version"] == json!(1)
    });
    read_data(&mut p, "up/data/dir/k2", json!({"b": "2"}), 1).await;
    let r = p.check(Call::get("up/metadata/k1"), &[]).await;
    on_both(&mut p, &r, "upgraded metadata", |x| {
        x.data("current_version") == &json!(1) && x.data("oldest_version") == &json!(1)
    });
    let r = p.check(Call::list("up/metadata/"), &[]).await;
    on_both(&mut p, &r, "upgraded keys listed", |x| {
        x.data("keys") == &json!(["dir/", "k1"])
    });
    let r = p.check(Call::get("sys/mounts/up/tune"), &[]).await;
    on_both(&mut p, &r, "mount now reports version 2", |x| {
        x.data("options")["version"] == json!("2")
    });
    // New writes continue the version sequence.
    put(&mut p, "up", "k1", json!({"a": "2"}), 2).await;
    p.finish();
}

/// OpenBao's metadata check-and-set: `metadata_cas` against the key's
/// `current_metadata_version`, required per key or per mount.
#[tokio::test]
async fn kv2_metadata_check_and_set() {
    let mut p = differences::pair();
    mount_kv2(&mut p, "mcas").await;
    let steps: Vec<(Call, u16, &str)> = vec![
        (
            Call::post(
                "mcas/metadata/new",
                json!({"max_versions": 3, "metadata_cas": 2}),
            ),
            400,
            "metadata_cas must be 0",
        ),
        (
            Call::post(
                "mcas/metadata/new",
                json!({"max_versions": 3, "metadata_cas": 0}),
            ),
            204,
            "",
        ),
        (
            Call::post(
                "mcas/metadata/new",
                json!({"metadata_cas_required": true, "metadata_cas": 1}),
            ),
            204,
            "",
        ),
        (
            Call::post("mcas/metadata/new", json!({"max_versions": 4})),
            400,
            "metadata check-and-set parameter required",
        ),
        (
            Call::post(
                "mcas/metadata/new",
                json!({"max_versions": 4, "metadata_cas": 1}),
            ),
            400,
            "does not match",
        ),
        (
            patch("mcas/metadata/new", json!({"max_versions": 4})),
            400,
            "metadata check-and-set parameter required",
        ),
        (
            patch(
                "mcas/metadata/new",
                json!({"max_versions": 4, "metadata_cas": 2}),
            ),
            204,
            "",
        ),
        (
            Call::post("mcas/config", json!({"metadata_cas_required": true})),
            204,
            "",
        ),
        (
            Call::post("mcas/metadata/other", json!({"max_versions": 2})),
            400,
            "metadata check-and-set parameter required",
        ),
    ];
    for (call, status, needle) in steps {
        let what = call.describe();
        let r = p.check(call, &[]).await;
        p.expect_status(&r, status, &what);
        if !needle.is_empty() {
            on_both(&mut p, &r, &what, |x| errors_mention(x, needle));
        }
    }
    let r = p.check(Call::get("mcas/metadata/new"), &[]).await;
    same_value(
        &mut p,
        &r,
        "/data/current_metadata_version",
        "metadata version",
    );
    same_value(
        &mut p,
        &r,
        "/data/metadata_cas_required",
        "metadata cas required",
    );
    same_value(&mut p, &r, "/data/max_versions", "max_versions");
    let r = p.check(Call::get("mcas/config"), &[]).await;
    same_value(
        &mut p,
        &r,
        "/data/metadata_cas_required",
        "mount metadata cas required",
    );
    p.finish();
}
