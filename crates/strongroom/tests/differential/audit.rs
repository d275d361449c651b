//! Audit entries, OpenBao against Strongroom: both dev servers get a file
//! device (the API flag set on both), the same requests, and their entries
//! are compared value by value once ids, hashes and times are normalised:
//! a KV read, a denied request, an AppRole login, a wrapped response and
//! its unwrap, a read granted by two ACL policies, request and response
//! entry each. Deliberate differences are
//! in [`differences::AUDIT_ENTRY`].
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use strongroom_test::diff::value_diffs;
use strongroom_test::server::{Call, Kind, Server};

use crate::differences;

/// Starts a dev server of `kind` whose config allows enabling audit
/// devices over the API, and enables a file device writing to
/// `dir/<kind>.log`.
async fn server_with_device(kind: Kind, dir: &Path) -> (Server, PathBuf) {
    let config = dir.join(format!("{}-audit.hcl", kind.label()));
    std::fs::write(&config, "unsafe_allow_api_audit_creation = true\n").unwrap();
    let arg = format!("-config={}", config.display());
    let server = tokio::task::spawn_blocking(move || {
        Server::dev_command(kind, &["server", "-dev", "-dev-no-store-token", &arg])
    })
    .await
    .unwrap();
    let log = dir.join(format!("{}.log", kind.label()));
    let r = server
        .send(&Call::put(
            "sys/audit/file",
            json!({"type": "file", "options": {"file_path": log}}),
        ))
        .await;
    assert_eq!(r.status, 204, "{}: enabling: {r:?}", kind.label());
    (server, log)
}

/// The requests of the comparison, in order.
async fn drive(server: &Server) {
    let send = |call: Call| async move {
        let what = call.describe();
        let r = server.send(&call).await;
        assert!(r.status < 500, "{}: {what}: {r:?}", server.kind.label());
        r
    };
    send(Call::put(
        "secret/data/app",
        json!({"data": {"password": "hunter2"}}),
    ))
    .await;
    send(Call::get("secret/data/app")).await;
    send(Call::get("secret/data/app").token("no-such-token")).await;
    send(Call::post("sys/auth/approle", json!({"type": "approle"}))).await;
    send(Call::post(
        "auth/approle/role/web",
        json!({"token_policies": ["default"], "secret_id_num_uses": 0}),
    ))
    .await;
    let role_id = send(Call::get("auth/approle/role/web/role-id")).await;
    let secret_id = send(Call::post("auth/approle/role/web/secret-id", json!({}))).await;
    send(
        Call::post(
            "auth/approle/login",
            json!({
                "role_id": role_id.data("role_id"),
                "secret_id": secret_id.data("secret_id"),
            }),
        )
        .anonymous(),
    )
    .await;
    let wrapped = send(Call::get("secret/data/app").header("X-Vault-Wrap-TTL", "60")).await;
    let token = wrapped.body["wrap_info"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    send(
        Call::post("sys/wrapping/unwrap", json!({}))
            .anonymous()
            .token(&token),
    )
    .await;
    // A read with a token of ACL policies, two of which grant it.
    for name in ["reader", "auditor"] {
        send(Call::put(
            &format!("sys/policies/acl/{name}"),
            json!({"policy": "path \"secret/data/*\" { capabilities = [\"read\"] }"}),
        ))
        .await;
    }
    let created = send(Call::post(
        "auth/token/create",
        json!({"policies": ["reader", "auditor"]}),
    ))
    .await;
    let reader = created.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    send(Call::get("secret/data/app").token(&reader)).await;
}

/// The entries of `log` of type `kind` for `path`, in order.
fn entries_for(log: &Path, kind: &str, path: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == kind && e["request"]["path"] == path)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_have_openbaos_shape() {
    strongroom_test::server::bao_path();
    let dir = tempfile::tempdir().unwrap();
    let ((bao, bao_log), (sr, sr_log)) = tokio::join!(
        server_with_device(Kind::Bao, dir.path()),
        server_with_device(strongroom_test::server::target(), dir.path())
    );
    drive(&bao).await;
    drive(&sr).await;
    // Which entries: (what, path, index among that path's entries).
    let cases = [
        ("KV write", "secret/data/app", 0),
        ("KV read", "secret/data/app", 1),
        ("denied read", "secret/data/app", 2),
        ("wrapped read", "secret/data/app", 3),
        ("read with ACL policies", "secret/data/app", 4),
        ("AppRole login", "auth/approle/login", 0),
        ("unwrap", "sys/wrapping/unwrap", 0),
    ];
    let mut failures = Vec::new();
    for (what, path, index) in cases {
        for kind in ["request", "response"] {
            let a = entries_for(&bao_log, kind, path);
            let b = entries_for(&sr_log, kind, path);
            let (Some(a), Some(b)) = (a.get(index), b.get(index)) else {
                failures.push(format!(
                    "{what} {kind}: openbao has {} entries, strongroom {}",
                    a.len(),
                    b.len()
                ));
                continue;
            };
            let allow: Vec<_> = differences::AUDIT_ENTRY
                .iter()
                .chain(if what == "unwrap" {
                    differences::AUDIT_UNWRAP_ENTRY
                } else {
                    &[]
                })
                .copied()
                .collect();
            let diffs = value_diffs(a, b, ("openbao", "strongroom"), &allow);
            if !diffs.is_empty() {
                failures.push(format!(
                    "{what} {kind}:\n    {}\n    openbao:    {a}\n    strongroom: {b}",
                    diffs.join("\n    ")
                ));
            }
        }
    }
    for (log, label) in [(&bao_log, "openbao"), (&sr_log, "strongroom")] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(!text.contains("hunter2"), "{label}'s log holds the secret");
    }
    assert!(
        failures.is_empty(),
        "{} audit entries differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
