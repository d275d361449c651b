//! Crash durability: every write the server acknowledged survives
//! `kill -9` in the middle of a concurrent write load (KV v1 secrets, KV
//! v2 versions and tokens), over many kill and restart cycles of one
//! durable (redb) store. After each restart, every write acknowledged in
//! any earlier cycle is read back.
//!
//! `STRONGROOM_TEST_TARGET=bao` runs it against OpenBao's raft storage.

use std::sync::Arc;

use serde_json::{json, Value};
use strongroom_test::server::{target, Call, Config, Server, Storage};
use tokio::sync::mpsc;

use crate::races::wait_active;

/// Kill and restart cycles.
const CYCLES: usize = 10;
/// Concurrent writers in each cycle.
const WRITERS: usize = 16;
/// Concurrent readers checking the acknowledged writes.
const READERS: usize = 16;

/// Acknowledged writes to wait for before the kill of `cycle`: varied, so
/// that the kills land at different points of the store's life.
fn acks_before_kill(cycle: usize) -> usize {
    200 + 100 * (cycle % 4)
}

/// A write the server acknowledged: where to read it back and what value
/// it holds.
#[derive(Debug, Clone)]
struct Ack {
    /// A KV path below `/v1/`, or `token:<id>` for a created token.
    path: String,
    value: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_repeated_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::inmem(dir.path());
    cfg.storage = Storage::Durable(dir.path().to_path_buf());

    let mut server = Server::with_config(target(), &cfg);
    server.init(1, 1).await;
    server.unseal().await;
    wait_active(&server).await;
    for (path, version) in [("kv1", "1"), ("kv2", "2")] {
        let r = server
            .send(&Call::post(
                &format!("sys/mounts/{path}"),
                json!({"type": "kv", "options": {"version": version}}),
            ))
            .await;
        assert_eq!(r.status, 204, "enable {path}: {r:?}");
    }
    let token = server.root_token.clone().expect("root token after init");
    let keys = server.unseal_keys.clone();

    let mut acked: Vec<Ack> = Vec::new();
    for cycle in 0..CYCLES {
        if cycle > 0 {
            server = restart(&cfg, &token, &keys).await;
            check_all(&server, &token, &acked, &format!("restart {cycle}")).await;
        }
        let before = acked.len();
        write_until_killed(&mut server, &token, cycle, &mut acked).await;
        assert!(
            acked.len() - before >= acks_before_kill(cycle),
            "cycle {cycle}: too few acknowledgements"
        );
    }
    let server = restart(&cfg, &token, &keys).await;
    check_all(&server, &token, &acked, "the last restart").await;
}

/// Starts the server again on the same store, checks it comes back
/// initialised and sealed, and unseals it.
async fn restart(cfg: &Config, token: &str, keys: &[String]) -> Server {
    let mut server = Server::with_config(target(), cfg);
    let st = server.send(&Call::get("sys/seal-status")).await;
    assert_eq!(st.body["initialized"], true, "after restart: {st:?}");
    assert_eq!(st.body["sealed"], true, "after restart: {st:?}");
    server.root_token = Some(token.to_string());
    server.unseal_keys = keys.to_vec();
    server.unseal().await;
    wait_active(&server).await;
    server
}

/// Runs [`WRITERS`] concurrent writers until [`acks_before_kill`] writes
/// are acknowledged, kills the server with SIGKILL under the load, and
/// adds every acknowledged write (including those acknowledged between the
/// count and the kill) to `acked`.
async fn write_until_killed(server: &mut Server, token: &str, cycle: usize, acked: &mut Vec<Ack>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Ack>();
    let client = reqwest::Client::new();
    let base = Arc::new(server.addr.clone());
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (tx, client, base, token) =
            (tx.clone(), client.clone(), base.clone(), token.to_string());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                // Writers take turns at the three kinds of acknowledged
                // writes: a KV v1 secret, a KV v2 version, a token.
                let value = format!("cycle {cycle} writer {w} write {i}");
                let (path, request) = match w % 3 {
                    0 => {
                        let path = format!("kv1/c{cycle}/w{w}/k{i}");
                        let req = client
                            .put(format!("{base}/v1/{path}"))
                            .json(&json!({ "value": value }));
                        (path, req)
                    }
                    1 => {
                        let path = format!("kv2/data/c{cycle}/w{w}/k{i}");
                        let req = client
                            .post(format!("{base}/v1/{path}"))
                            .json(&json!({ "data": { "value": value } }));
                        (path, req)
                    }
                    _ => {
                        let req = client
                            .post(format!("{base}/v1/auth/token/create"))
                            .json(&json!({ "policies": ["default"], "meta": { "value": value } }));
                        (String::new(), req)
                    }
                };
                let resp = match request.header("X-Vault-Token", &token).send().await {
                    Ok(resp) => resp,
                    // The server is gone: the load ends.
                    Err(_) => return,
                };
                let status = resp.status();
                if status.is_server_error() {
                    return;
                }
                assert!(status.is_success(), "{path}: unexpected {status}");
                let path = if w % 3 == 2 {
                    // A token is acknowledged by its id in the answer.
                    let Ok(body) = resp.json::<Value>().await else {
                        return;
                    };
                    let id = body["auth"]["client_token"].as_str().unwrap_or_default();
                    assert!(!id.is_empty(), "token create answered {body}");
                    format!("token:{id}")
                } else {
                    path
                };
                if tx.send(Ack { path, value }).is_err() {
                    return;
                }
            }
        }));
    }
    drop(tx);

    let mut count = 0;
    while count < acks_before_kill(cycle) {
        match rx.recv().await {
            Some(a) => {
                acked.push(a);
                count += 1;
            }
            None => panic!(
                "cycle {cycle}: writers stopped after {count} acknowledgements; server output:\n{}",
                server.output.text()
            ),
        }
    }
    server.kill();
    for t in tasks {
        t.await.expect("writer task");
    }
    while let Some(a) = rx.recv().await {
        acked.push(a);
    }
}

/// Reads back every acknowledged write, [`READERS`] at a time, and fails
/// listing the lost ones.
async fn check_all(server: &Server, token: &str, acked: &[Ack], when: &str) {
    let client = reqwest::Client::new();
    let chunk = acked.len().div_ceil(READERS).max(1);
    let mut readers = Vec::new();
    for part in acked.chunks(chunk) {
        let (client, base, token, part) = (
            client.clone(),
            server.addr.clone(),
            token.to_string(),
            part.to_vec(),
        );
        readers.push(tokio::spawn(async move {
            let mut lost = Vec::new();
            for ack in part {
                let (status, got) = read_back(&client, &base, &token, &ack.path).await;
                if status != 200 || got != json!(ack.value) {
                    lost.push(format!("{}: {status} {got}", ack.path));
                }
            }
            lost
        }));
    }
    let mut lost = Vec::new();
    for r in readers {
        lost.extend(r.await.expect("reader task"));
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost after {when}:\n{}\nserver output:\n{}",
        lost.len(),
        acked.len(),
        lost.join("\n"),
        server.output.text()
    );
}

/// The status and the stored value of one acknowledged write.
async fn read_back(client: &reqwest::Client, base: &str, root: &str, path: &str) -> (u16, Value) {
    let (url, token) = match path.strip_prefix("token:") {
        Some(id) => (format!("{base}/v1/auth/token/lookup-self"), id),
        None => (format!("{base}/v1/{path}"), root),
    };
    let resp = client
        .get(&url)
        .header("X-Vault-Token", token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("read back {path}: {e}"));
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let got = if path.starts_with("token:") {
        body["data"]["meta"]["value"].clone()
    } else if path.starts_with("kv2/") {
        body["data"]["data"]["value"].clone()
    } else {
        body["data"]["value"].clone()
    };
    (status, got)
}
