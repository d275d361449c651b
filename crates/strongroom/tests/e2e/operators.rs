//! Rekeying a durable server: after a rekey the old shares no longer
//! unseal and the new ones do, also after the process is killed and
//! restarted on the same storage; the data written before stays readable.
//!
//! `STRONGROOM_TEST_TARGET=bao` runs it against OpenBao's raft storage.

use serde_json::json;
use strongroom_test::server::{str_list, target, Call, Config, Listener, Server, Storage};

async fn unseal_with(s: &Server, keys: &[String]) -> serde_json::Value {
    let mut last = json!(null);
    for k in keys {
        let r = s.send(&Call::put("sys/unseal", json!({ "key": k }))).await;
        last = json!({"status": r.status, "body": r.body});
    }
    last
}

#[tokio::test]
async fn rekeyed_shares_unseal_a_durable_server_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::inmem(dir.path());
    cfg.storage = Storage::Durable(dir.path().to_path_buf());
    cfg.listeners = vec![Listener {
        unauthed_operator_endpoints: true,
        ..Default::default()
    }];
    let mut server = Server::with_config(target(), &cfg);
    server.init(3, 2).await;
    server.unseal().await;
    let old = server.unseal_keys.clone();
    let token = server.root_token.clone().expect("root token from init");
    let r = server
        .send(&Call::post(
            "sys/mounts/kv",
            json!({"type": "kv", "options": {"version": "1"}}),
        ))
        .await;
    assert_eq!(r.status, 204, "mount: {r:?}");
    let r = server
        .send(&Call::put("kv/before", json!({"value": "kept"})))
        .await;
    assert_eq!(r.status, 204, "write: {r:?}");

    let r = server
        .send(
            &Call::put(
                "sys/rekey/init",
                json!({"secret_shares": 4, "secret_threshold": 3}),
            )
            .anonymous(),
        )
        .await;
    assert_eq!(r.status, 200, "rekey init: {r:?}");
    let nonce = r.body["nonce"].as_str().expect("nonce").to_string();
    let r = server
        .send(&Call::put("sys/rekey/update", json!({"nonce": nonce, "key": old[0]})).anonymous())
        .await;
    assert_eq!(
        (r.status, r.body["progress"].clone()),
        (200, json!(1)),
        "first share: {r:?}"
    );
    let r = server
        .send(&Call::put("sys/rekey/update", json!({"nonce": nonce, "key": old[1]})).anonymous())
        .await;
    assert_eq!(r.status, 200, "second share: {r:?}");
    assert_eq!(r.body["complete"], true, "{r:?}");
    let new = str_list(&r.body["keys_base64"]);
    assert_eq!(new.len(), 4, "{r:?}");

    server.kill();
    drop(server);
    let mut server = Server::with_config(target(), &cfg);
    let st = server.send(&Call::get("sys/seal-status")).await;
    assert_eq!(
        (
            st.body["sealed"].clone(),
            st.body["t"].clone(),
            st.body["n"].clone()
        ),
        (json!(true), json!(3), json!(4)),
        "{st:?}"
    );

    let r = unseal_with(&server, &old).await;
    assert_eq!(
        r["status"], 400,
        "a threshold of old shares must not unseal: {r}"
    );
    let st = server.send(&Call::get("sys/seal-status")).await;
    assert_eq!(st.body["sealed"], true, "{st:?}");

    let r = unseal_with(&server, &new[1..4]).await;
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["body"]["sealed"], false, "three new shares unseal: {r}");
    server.root_token = Some(token);
    let r = server.send(&Call::get("kv/before")).await;
    assert_eq!(r.status, 200, "data written before the rekey: {r:?}");
    assert_eq!(r.data("value"), &json!("kept"), "{r:?}");
}

/// `sys/key-status` reports the encryptions actually made: a few dozen after
/// a few dozen writes, also across a seal and unseal (a clean seal records
/// the exact count), never a whole persistence interval.
#[tokio::test]
async fn key_status_counts_the_real_encryptions_across_seal_and_unseal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::inmem(dir.path());
    cfg.storage = Storage::Durable(dir.path().to_path_buf());
    let mut server = Server::with_config(target(), &cfg);
    server.init(1, 1).await;
    server.unseal().await;
    let r = server
        .send(&Call::post(
            "sys/mounts/kv",
            json!({"type": "kv", "options": {"version": "1"}}),
        ))
        .await;
    assert_eq!(r.status, 204, "mount: {r:?}");
    let before = server.send(&Call::get("sys/key-status")).await;
    assert_eq!(before.status, 200, "{before:?}");
    let before = before.data("encryptions").as_u64().expect("encryptions");
    for i in 0..30 {
        let r = server
            .send(&Call::put(&format!("kv/k{i}"), json!({"value": i})))
            .await;
        assert_eq!(r.status, 204, "write {i}: {r:?}");
    }
    let after = server.send(&Call::get("sys/key-status")).await;
    let after = after.data("encryptions").as_u64().expect("encryptions");
    assert!(
        after >= before + 30 && after < 1_000,
        "30 writes: {before} -> {after} encryptions"
    );
    let r = server.send(&Call::put("sys/seal", json!({}))).await;
    assert_eq!(r.status, 204, "seal: {r:?}");
    server.unseal().await;
    let again = server.send(&Call::get("sys/key-status")).await;
    let again = again.data("encryptions").as_u64().expect("encryptions");
    assert!(
        again >= after && again < 1_000,
        "after seal and unseal: {after} -> {again} encryptions"
    );
}
