//! Crash durability: every write the server acknowledged survives a
//! `kill -9` in the middle of a concurrent write load (KV v1 secrets, KV v2
//! versions and tokens).
//!
//! `STRONGROOM_TEST_TARGET=bao` runs it against OpenBao's file storage.

use std::sync::Arc;

use serde_json::json;
use strongroom_test::server::{target, Call, Config, Server, Storage};
use tokio::sync::mpsc;

/// Concurrent writers.
const WRITERS: usize = 8;
/// Acknowledged writes to wait for before killing the server.
const ACKS_BEFORE_KILL: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::inmem(dir.path());
    cfg.storage = Storage::Durable(dir.path().to_path_buf());

    let mut server = Server::with_config(target(), &cfg);
    server.init(1, 1).await;
    server.unseal().await;
    let r = server
        .send(&Call::post(
            "sys/mounts/kv1",
            json!({"type": "kv", "options": {"version": "1"}}),
        ))
        .await;
    assert_eq!(r.status, 204, "enable kv1: {r:?}");
    let r = server
        .send(&Call::post(
            "sys/mounts/kv2",
            json!({"type": "kv", "options": {"version": "2"}}),
        ))
        .await;
    assert_eq!(r.status, 204, "enable kv2: {r:?}");
    let token = server.root_token.clone().expect("root token after init");
    let keys = server.unseal_keys.clone();

    // Each writer PUTs its own keys in order and reports every 2xx.
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, String)>();
    let client = reqwest::Client::new();
    let base = Arc::new(server.addr.clone());
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (tx, client, base, token) = (tx.clone(), client.clone(), base.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                // Writers take turns at the three kinds of acknowledged
                // writes: a KV v1 secret, a KV v2 version, a token.
                let value = format!("writer {w} write {i}");
                let (path, request) = match w % 3 {
                    0 => {
                        let path = format!("kv1/w{w}/k{i}");
                        let req = client
                            .put(format!("{base}/v1/{path}"))
                            .json(&json!({ "value": value }));
                        (path, req)
                    }
                    1 => {
                        let path = format!("kv2/data/w{w}/k{i}");
                        let req = client
                            .post(format!("{base}/v1/{path}"))
                            .json(&json!({ "data": { "value": value } }));
                        (path, req)
                    }
                    _ => {
                        let req = client
                            .post(format!("{base}/v1/auth/token/create"))
                            .json(&json!({ "policies": ["default"], "meta": { "value": value } }));
                        ("auth/token/create".to_string(), req)
                    }
                };
                let sent = request.header("X-Vault-Token", &token).send().await;
                let sent = match sent {
                    Ok(resp) if resp.status().is_success() && w % 3 == 2 => {
                        // A token is acknowledged by its id: remember it.
                        let Ok(body) = resp.json::<serde_json::Value>().await else {
                            return;
                        };
                        let id = body["auth"]["client_token"].as_str().unwrap_or_default();
                        if tx.send((format!("token:{id}"), value)).is_err() {
                            return;
                        }
                        continue;
                    }
                    other => other,
                };
                match sent {
                    Ok(resp) if resp.status().is_success() => {
                        if tx.send((path, value)).is_err() {
                            return;
                        }
                    }
                    Ok(resp) if resp.status().is_server_error() => return,
                    Ok(resp) => panic!("{path}: unexpected {}", resp.status()),
                    // The server is gone: the load ends.
                    Err(_) => return,
                }
            }
        }));
    }
    drop(tx);

    let mut acked = Vec::new();
    while acked.len() < ACKS_BEFORE_KILL {
        match rx.recv().await {
            Some(a) => acked.push(a),
            None => panic!(
                "writers stopped after {} acknowledgements; server output:\n{}",
                acked.len(),
                server.output.text()
            ),
        }
    }
    server.kill();
    for t in tasks {
        t.await.expect("writer task");
    }
    // Writes acknowledged between the count and the kill count too.
    while let Some(a) = rx.recv().await {
        acked.push(a);
    }
    let before = server.output.text();
    drop(server);

    let mut server = Server::with_config(target(), &cfg);
    let st = server.send(&Call::get("sys/seal-status")).await;
    assert_eq!(st.body["initialized"], true, "after restart: {st:?}");
    assert_eq!(st.body["sealed"], true, "after restart: {st:?}");
    server.root_token = Some(token);
    server.unseal_keys = keys;
    server.unseal().await;

    let mut lost = Vec::new();
    for (path, value) in &acked {
        let (r, got) = if let Some(id) = path.strip_prefix("token:") {
            let r = server
                .send(&Call::get("auth/token/lookup-self").token(id))
                .await;
            let got = r.body["data"]["meta"]["value"].clone();
            (r, got)
        } else {
            let r = server.send(&Call::get(path)).await;
            let got = if path.starts_with("kv2/") {
                r.body["data"]["data"]["value"].clone()
            } else {
                r.body["data"]["value"].clone()
            };
            (r, got)
        };
        if r.status != 200 || got != json!(value) {
            lost.push(format!("{path}: {} {}", r.status, r.body));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost after kill -9:\n{}\noutput before the kill:\n{before}",
        lost.len(),
        acked.len(),
        lost.join("\n")
    );
}
