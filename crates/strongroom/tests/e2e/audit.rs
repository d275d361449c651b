//! Audit devices end to end (issue 18): the real `strongroom server -dev`
//! with a config file, its `file` devices read back as an operator would,
//! and `strongroom audit verify` as an operator runs it.
//!
//! - enabling over the API needs `unsafe_allow_api_audit_creation`, and
//!   `prefix` needs `allow_audit_log_prefixing`;
//! - the HMAC rules, checked against `sys/audit-hash`; `log_raw`,
//!   `hmac_accessor`, `elide_list_responses`, `prefix`;
//! - declared devices, reconciled on SIGHUP, which also reopens files for
//!   rotation; a hash chain that survives the rotation and finds an
//!   altered, a removed and a reordered entry;
//! - fail-closed when no device can write, a failing device tolerated
//!   beside a working one;
//! - no token, secret id or secret value in clear in any device's output
//!   unless `log_raw` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};

use crate::audit_support::{audit_hash, dev_with_file, eventually, ok, SECRET};
use serde_json::{json, Value};
use strongroom_test::server::{run, Call, Kind, Server};

/// Starts `strongroom server -dev` with `config` (settings only) written
/// to `dir/config.hcl`.
async fn dev_with(dir: &Path, config: &str) -> (Server, PathBuf) {
    let path = dir.join("config.hcl");
    let server = dev_with_file(Kind::Strongroom, &path, config).await;
    (server, path)
}

/// The entries of a log file, parsed (a prefix, if any, stripped).
fn entries(path: &Path, prefix: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let l = l
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("no prefix: {l}"));
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
        })
        .collect()
}

/// The first entry of `kind` (`request`/`response`) on `path`.
fn find<'a>(entries: &'a [Value], kind: &str, path: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["type"] == kind && e["request"]["path"] == path)
        .unwrap_or_else(|| panic!("no {kind} entry for {path} in {entries:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_the_flags_and_entries_follow_openbaos_hmac_rules() {
    let dir = tempfile::tempdir().unwrap();
    // Without the flag: OpenBao's refusal, nothing enabled.
    let (plain, _) = dev_with(dir.path(), "").await;
    let log = dir.path().join("refused.log");
    let r = plain
        .send(&Call::put(
            "sys/audit/file",
            json!({"type": "file", "options": {"file_path": log}}),
        ))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.errors()[0].starts_with("cannot enable audit device via API"),
        "{r:?}"
    );
    assert!(!log.exists());
    drop(plain);

    let (server, _) = dev_with(dir.path(), "unsafe_allow_api_audit_creation = true\n").await;
    let root = server.root_token.clone().unwrap();
    let file = |name: &str| dir.path().join(name);
    // `prefix` needs allow_audit_log_prefixing.
    let r = server
        .send(&Call::put(
            "sys/audit/prefixed",
            json!({"type": "file", "options": {"file_path": file("p.log"), "prefix": "AUDIT:"}}),
        ))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.errors()[0].contains("prefix"), "{r:?}");
    // jsonx is gone, as in OpenBao 2.x.
    let r = server
        .send(&Call::put(
            "sys/audit/x",
            json!({"type": "file", "options": {"file_path": file("x.log"), "format": "jsonx"}}),
        ))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    for (path, options) in [
        ("hashed", json!({"file_path": file("hashed.log")})),
        (
            "raw",
            json!({"file_path": file("raw.log"), "log_raw": "true"}),
        ),
        (
            "clear-accessors",
            json!({"file_path": file("acc.log"), "hmac_accessor": "false", "elide_list_responses": "true"}),
        ),
    ] {
        ok(
            &server,
            Call::put(
                &format!("sys/audit/{path}"),
                json!({"type": "file", "options": options}),
            ),
        )
        .await;
    }
    let listed = ok(&server, Call::get("sys/audit")).await;
    assert_eq!(listed.data("hashed/")["type"], "file", "{listed:?}");
    assert_eq!(listed.data("raw/")["options"]["log_raw"], "true");

    ok(
        &server,
        Call::put(
            "secret/data/app",
            json!({"data": {"password": SECRET, "port": 5432}}),
        ),
    )
    .await;
    ok(&server, Call::get("secret/data/app")).await;
    ok(&server, Call::list("secret/metadata/")).await;
    let denied = server
        .send(&Call::get("secret/data/app").token("not-a-token"))
        .await;
    assert_eq!(denied.status, 403);
    let me = ok(&server, Call::get("auth/token/lookup-self")).await;
    let accessor = me.data("accessor").as_str().unwrap().to_string();
    // A mount's non-HMAC keys stay in clear.
    ok(
        &server,
        Call::post(
            "sys/mounts/secret/tune",
            json!({"audit_non_hmac_request_keys": ["note"], "audit_non_hmac_response_keys": ["deletion_time"]}),
        ),
    )
    .await;
    ok(
        &server,
        Call::put(
            "secret/data/noted",
            json!({"data": {"password": SECRET}, "note": "in clear"}),
        ),
    )
    .await;
    // Not audited, as in OpenBao.
    for path in ["sys/health", "sys/seal-status", "sys/leader"] {
        ok(&server, Call::get(path)).await;
    }

    let hashed = entries(&file("hashed.log"), "");
    // The enable's test entry comes first.
    assert_eq!(hashed[0]["request"]["path"], "sys/audit/test");
    let write = find(&hashed, "request", "secret/data/app");
    let password = audit_hash(&server, "hashed", SECRET).await;
    assert_eq!(
        write["request"]["data"]["data"]["password"],
        password.as_str()
    );
    // Numbers stay; tokens and accessors are hashed with the device's salt.
    assert_eq!(write["request"]["data"]["data"]["port"], 5432);
    assert_eq!(
        write["auth"]["client_token"],
        audit_hash(&server, "hashed", &root).await.as_str()
    );
    assert_eq!(
        write["request"]["client_token_accessor"],
        audit_hash(&server, "hashed", &accessor).await.as_str()
    );
    assert_eq!(write["request"]["mount_type"], "kv");
    assert_eq!(write["request"]["remote_address"], "127.0.0.1");
    assert!(write["request"]["remote_port"].as_u64().unwrap() > 0);
    // The request and response entries share the id; the read's answer is
    // hashed; an RFC 3339 time stays in clear.
    let read = find(&hashed, "response", "secret/data/app");
    let read = hashed
        .iter()
        .filter(|e| e["type"] == "response" && e["request"]["path"] == "secret/data/app")
        .find(|e| e["request"]["operation"] == "read")
        .unwrap_or(read);
    assert_eq!(
        read["response"]["data"]["data"]["password"],
        password.as_str()
    );
    let created = read["response"]["data"]["metadata"]["created_time"]
        .as_str()
        .unwrap();
    assert!(created.ends_with('Z') && created.contains('T'), "{created}");
    assert!(hashed
        .iter()
        .any(|e| e["type"] == "request" && e["request"]["id"] == read["request"]["id"]));
    let noted = find(&hashed, "response", "secret/data/noted");
    assert_eq!(noted["request"]["data"]["note"], "in clear");
    assert_eq!(noted["response"]["data"]["deletion_time"], "");
    assert_ne!(noted["request"]["data"]["data"]["password"], SECRET);
    for path in ["sys/health", "sys/seal-status", "sys/leader"] {
        assert!(
            !hashed.iter().any(|e| e["request"]["path"] == path),
            "{path} was audited"
        );
    }
    // A denied request is on record with its error.
    let refused = hashed
        .iter()
        .find(|e| e["type"] == "request" && e["error"] == "permission denied")
        .expect("the denied request");
    assert_eq!(refused["auth"], json!({"token_type": "default"}));

    // log_raw: in clear. hmac_accessor=false: accessors in clear, tokens
    // still hashed; elide_list_responses: the LIST's keys are a count.
    let raw = std::fs::read_to_string(file("raw.log")).unwrap();
    assert!(raw.contains(SECRET) && raw.contains(&root));
    let acc = entries(&file("acc.log"), "");
    let write = find(&acc, "request", "secret/data/app");
    assert_eq!(write["request"]["client_token_accessor"], accessor.as_str());
    assert_ne!(write["auth"]["client_token"], root.as_str());
    let list = acc
        .iter()
        .find(|e| e["type"] == "response" && e["request"]["operation"] == "list")
        .expect("the LIST answer");
    assert_eq!(list["response"]["data"]["keys"], 1);

    for name in ["hashed.log", "acc.log"] {
        let text = std::fs::read_to_string(file(name)).unwrap();
        assert!(!text.contains(SECRET), "{name} holds the secret");
        assert!(!text.contains(&root), "{name} holds the root token");
    }

    // Disabled: the device writes no more; its path can be reused with a
    // new salt.
    let before = audit_hash(&server, "hashed", "x").await;
    ok(&server, Call::delete("sys/audit/hashed")).await;
    ok(
        &server,
        Call::put(
            "sys/audit/hashed",
            json!({"type": "file", "options": {"file_path": file("hashed2.log")}}),
        ),
    )
    .await;
    assert_ne!(
        audit_hash(&server, "hashed", "x").await,
        before,
        "a new salt"
    );
}

/// The `audit` block of a declared file device.
fn declared(path: &str, file: &Path, extra: &str) -> String {
    format!(
        "audit \"file\" \"{path}\" {{\n  options {{\n    file_path = \"{}\"\n{extra}  }}\n}}\n",
        file.display()
    )
}

/// Runs `strongroom audit verify` on `files` against `server`'s device.
fn verify(server: &Server, device: &str, files: &[&Path]) -> (bool, String) {
    let mut args = vec![
        "audit".to_string(),
        "verify".into(),
        format!("-salt-from={}", server.addr),
        format!("-device={device}"),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let token = server.root_token.clone().unwrap();
    let out = run(
        &strongroom_test::server::strongroom_path(),
        &args,
        &[("VAULT_TOKEN", &token)],
    );
    (out.code == 0, format!("{}{}", out.stdout, out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_devices_follow_the_config_file_and_the_chain_survives_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let chained = dir.path().join("chained.log");
    let other = dir.path().join("other.log");
    let a = declared("chained", &chained, "    hash_chain = true\n");
    let (server, config) = dev_with(dir.path(), &a).await;
    let listed = ok(&server, Call::get("sys/audit")).await;
    assert_eq!(listed.data("chained/")["options"]["hash_chain"], "true");
    // Declared: not disabled over the API, nor enabled again there.
    let r = server.send(&Call::delete("sys/audit/chained")).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.errors(),
        ["cannot disable configuration-managed audit device"]
    );

    for i in 0..5 {
        ok(
            &server,
            Call::put(&format!("secret/data/s{i}"), json!({"data": {"v": SECRET}})),
        )
        .await;
    }
    // Rotation: the file is moved away, SIGHUP reopens it; a second
    // declared device appears at the same time.
    let rotated = dir.path().join("chained.log.1");
    std::fs::rename(&chained, &rotated).unwrap();
    std::fs::write(&config, format!("{a}{}", declared("other", &other, ""))).unwrap();
    server.signal("HUP");
    eventually("the second declared device", || async {
        server.send(&Call::get("sys/audit")).await.body["data"]["other/"].is_object()
    })
    .await;
    for i in 5..8 {
        ok(&server, Call::get(&format!("secret/data/s{}", i - 5))).await;
    }
    assert!(chained.exists(), "SIGHUP did not reopen the file");
    let (good, out) = verify(&server, "chained", &[&rotated, &chained]);
    assert!(good, "{out}");
    assert!(out.starts_with("OK: "), "{out}");

    // Tampering, three ways, each found at the right line.
    let lines: Vec<String> = std::fs::read_to_string(&rotated)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(lines.len() >= 6, "{lines:?}");
    let tampered = dir.path().join("tampered.log");
    let check = |lines: &[String], want_line: usize, how: &str| {
        std::fs::write(&tampered, lines.join("\n") + "\n").unwrap();
        let (good, out) = verify(&server, "chained", &[&tampered]);
        assert!(!good, "{how}: verified: {out}");
        assert!(
            out.contains(&format!("tampered.log:{want_line}:")),
            "{how}: {out}"
        );
    };
    let mut altered = lines.clone();
    altered[3] = altered[3].replacen("\"operation\":\"", "\"operation\":\"x", 1);
    check(&altered, 4, "altered");
    let mut removed = lines.clone();
    removed.remove(2);
    check(&removed, 3, "removed");
    let mut reordered = lines.clone();
    reordered.swap(2, 3);
    check(&reordered, 3, "reordered");

    // Removing the declaration disables the device at the next SIGHUP.
    std::fs::write(&config, declared("other", &other, "")).unwrap();
    server.signal("HUP");
    eventually("the first device removed", || async {
        server.send(&Call::get("sys/audit")).await.body["data"]["chained/"].is_null()
    })
    .await;
    let text = std::fs::read_to_string(&other).unwrap();
    assert!(!text.contains(SECRET) && !text.is_empty());

    // A changed declaration is refused, as OpenBao refuses it: the device
    // in force stays as it was.
    std::fs::write(&config, declared("other", &other, "    log_raw = true\n")).unwrap();
    server.signal("HUP");
    eventually("the refusal in the log", || async {
        server
            .output
            .text()
            .contains("modifications to audit devices are not allowed")
    })
    .await;
    let listed = ok(&server, Call::get("sys/audit")).await;
    assert!(
        listed.data("other/")["options"]["log_raw"].is_null(),
        "{listed:?}"
    );
    ok(&server, Call::get("secret/data/s0")).await;
    let text = std::fs::read_to_string(&other).unwrap();
    assert!(!text.contains(SECRET), "the refused log_raw took effect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_device_able_to_write_fails_requests_and_one_failing_device_is_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    // /dev/full opens but every write fails (ENOSPC).
    let full = declared("full", Path::new("/dev/full"), "    mode = \"0000\"\n");
    let (server, config) = dev_with(
        dir.path(),
        &format!("{full}{}", declared("good", &good, "")),
    )
    .await;
    ok(
        &server,
        Call::put("secret/data/kept", json!({"data": {"v": 1}})),
    )
    .await;
    assert!(std::fs::read_to_string(&good)
        .unwrap()
        .contains("secret/data/kept"));

    // Only the failing device: requests fail before their backend runs.
    std::fs::write(&config, &full).unwrap();
    server.signal("HUP");
    eventually("requests refused", || async {
        server.send(&Call::get("secret/data/kept")).await.status == 500
    })
    .await;
    let r = server
        .send(&Call::put("secret/data/lost", json!({"data": {"v": 2}})))
        .await;
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        server.output.text().contains("full/"),
        "the log names the device"
    );

    // A working device again: the refused write never happened.
    std::fs::write(&config, declared("good", &good, "")).unwrap();
    server.signal("HUP");
    eventually("requests served", || async {
        server.send(&Call::get("secret/data/kept")).await.status == 200
    })
    .await;
    assert_eq!(
        server.send(&Call::get("secret/data/lost")).await.status,
        404
    );
}
