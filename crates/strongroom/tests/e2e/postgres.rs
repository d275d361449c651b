//! The server on `storage "postgresql"` (a throw-away PostgreSQL from the
//! harness) with `ha_enabled`, one serving node at a time: nothing readable
//! reaches the table but keys; acknowledged data survives `kill -9` and a
//! restart; a node cut off from PostgreSQL steps down before its lock can
//! expire in the database, and serves again when the link heals. Several
//! nodes are in `ha.rs`.

use serde_json::json;
use strongroom_test::postgres::{Postgres, Proxy};
use strongroom_test::server::{Call, Config, Kind, Server, Storage};

use crate::races::wait_active;

/// A string that must never appear in the table in plain text.
const CANARY: &str = "canary-7f3a9c1e-plaintext-must-not-leak";

async fn rows(url: &str) -> Vec<(String, String, String, Vec<u8>)> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client
        .query(
            "SELECT parent_path, path, key, value FROM openbao_kv_store",
            &[],
        )
        .await
        .expect("scan the table")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

pub(crate) async fn lock_holders(url: &str) -> Vec<String> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client
        .query(
            "SELECT ha_value FROM openbao_ha_locks WHERE valid_until > now()",
            &[],
        )
        .await
        .expect("read the lock table")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A server config on PostgreSQL at `url` with HA enabled (`ha_enabled`
/// as written in HCL: `true` or `"true"`, both accepted as in OpenBao) and
/// a lock of `ttl`, renewed every 200 ms, retried every 100 ms.
pub(crate) fn ha_config(dir: &std::path::Path, url: String, ha_enabled: &str, ttl: &str) -> Config {
    let mut cfg = Config::inmem(dir);
    cfg.storage = Storage::Postgres {
        url,
        lines: vec![
            format!("ha_enabled = {ha_enabled}"),
            format!("lock_ttl = \"{ttl}\""),
            "lock_renew_interval = \"200ms\"".into(),
            "lock_retry_interval = \"100ms\"".into(),
        ],
    };
    // The HA coordinator's and the lock's steps, for the log tail a
    // failing test prints.
    cfg.env.push((
        "STRONGROOM_LOG".into(),
        "info,strongroom::ha=debug,strongroom_postgres::lock=debug".into(),
    ));
    cfg
}

/// Starts a server with `cfg`, initialises it with one share, unseals it
/// and waits until it serves as the active node.
pub(crate) async fn start_active(cfg: &Config) -> Server {
    let mut server = Server::with_config(Kind::Strongroom, cfg);
    server.init(1, 1).await;
    server.unseal().await;
    wait_active(&server).await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_storage_keeps_only_ciphertext_and_survives_kill_9() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ha_config(dir.path(), url.clone(), "\"true\"", "2s");
    let mut server = start_active(&cfg).await;
    let r = server
        .send(&Call::post("sys/mounts/secret", json!({"type": "kv-v2"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = server
        .send(&Call::put(
            "secret/data/app",
            json!({"data": {"password": CANARY}}),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = server
        .send(&Call::post(
            "auth/token/create",
            json!({"meta": {"note": CANARY}, "ttl": "1h"}),
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let token = r.body["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_string();
    let root = server.root_token.clone().expect("root token");

    // One node holds the lock, advertising a value.
    assert_eq!(lock_holders(&url).await.len(), 1);

    // Scan every row: neither the canary nor a token in plain text, in
    // values or in keys.
    let table = rows(&url).await;
    assert!(table.len() > 10, "{} rows", table.len());
    for secret in [CANARY, token.as_str(), root.as_str()] {
        for (parent, path, key, value) in &table {
            assert!(
                !contains(value, secret.as_bytes()),
                "{secret:?} in plain text in the value at {path}{key}"
            );
            for column in [parent, path, key] {
                assert!(
                    !column.contains(secret),
                    "{secret:?} in the key {path}{key}"
                );
            }
        }
    }

    // kill -9, restart on the same database: the new process takes the
    // lock once the dead one's expires, and finds everything.
    let keys = server.unseal_keys.clone();
    server.kill();
    let mut server = Server::with_config(Kind::Strongroom, &cfg);
    server.root_token = Some(root);
    server.unseal_keys = keys;
    server.unseal().await;
    wait_active(&server).await;
    let r = server.send(&Call::get("secret/data/app")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"]["data"]["password"], CANARY);
    let r = server
        .send(&Call::get("auth/token/lookup-self").token(&token))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"]["meta"]["note"], CANARY);
    assert_eq!(lock_holders(&url).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_postgresql_steps_down_before_its_lock_expires() {
    let pg = Postgres::start();
    let db = pg.create_database();
    let url = pg.url_for(&db);
    let proxy = Proxy::start(([127, 0, 0, 1], pg.port()).into()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ha_config(
        dir.path(),
        pg.url_via(&proxy.addr.to_string(), &db),
        "true",
        "2s",
    );
    let server = start_active(&cfg).await;
    // A silent partition between the node and PostgreSQL.
    proxy.freeze();
    // Poll until the node no longer answers as active, noting when the
    // last request that got "active" was *sent*: the node handled it after
    // that instant, so that instant must precede the lock's expiry in the
    // database (same host, same clock as the database's). The test's own
    // lag under load only moves the send time earlier, never later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut last_active_sent = std::time::SystemTime::now();
    let status = loop {
        let sent = std::time::SystemTime::now();
        let r = server.send(&Call::get("sys/health").anonymous()).await;
        if r.status != 200 {
            break r;
        }
        last_active_sent = sent;
        assert!(
            std::time::Instant::now() < deadline,
            "still active 10 s into the partition"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    // A standby now (still unsealed).
    assert_eq!(status.status, 429, "{status:?}");
    assert_eq!(status.body["standby"], true);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    let valid_until: f64 = client
        .query_one(
            "SELECT extract(epoch FROM valid_until)::float8 FROM openbao_ha_locks",
            &[],
        )
        .await
        .expect("the lock row")
        .get(0);
    let sent = last_active_sent
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    assert!(
        sent < valid_until,
        "answered as active to a request sent {:.3}s after the lock expired in the database",
        sent - valid_until
    );
    // The link heals: the node takes the lock again (it is the only one)
    // and serves as active.
    proxy.heal();
    wait_active(&server).await;
}
