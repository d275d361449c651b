//! High availability on PostgreSQL with three `strongroom` processes on
//! one throw-away database: exactly one active node; standbys forward
//! writes and answer with what was just acknowledged anywhere; step-down,
//! sealing a standby; `kill -9` of the active node under concurrent writers
//! (a ledger of acknowledged writes, none lost); the active node's link to
//! PostgreSQL reset or silently dropped (never two active nodes in any
//! sample, and the old active rejoining as a standby).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strongroom_test::postgres::{Postgres, Proxy};
use strongroom_test::server::{Call, Config, Kind, Reply, Server};

use crate::postgres::{ha_config, lock_holders, start_active};

/// The failover budget after a `kill -9` (issue: within 5 s).
const FAILOVER: Duration = Duration::from_secs(5);

/// Nodes started on one database; node 0 was initialised.
struct Cluster {
    configs: Vec<Config>,
    nodes: Vec<Option<Server>>,
    root: String,
    keys: Vec<String>,
    _dirs: Vec<tempfile::TempDir>,
}

/// A client that neither follows redirects nor waits long.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Sends `call` to `base`; `None` when the node cannot be reached (killed,
/// say).
async fn try_send(base: &str, token: Option<&str>, call: &Call) -> Option<Reply> {
    let url = format!("{base}/v1/{}", call.path);
    let method = reqwest::Method::from_bytes(call.method.as_bytes()).expect("method");
    let mut req = client().request(method, url);
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    for (k, v) in &call.headers {
        req = req.header(k, v);
    }
    if let Some(body) = &call.body {
        req = req.body(body.clone());
    }
    let resp = req.send().await.ok()?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.ok()?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Some(Reply { status, body })
}

impl Cluster {
    /// Starts one node per config: the first is initialised and unsealed
    /// (active), the others unsealed as standbys.
    async fn start(configs: Vec<Config>, dirs: Vec<tempfile::TempDir>) -> Cluster {
        let first = start_active(&configs[0]).await;
        let mut cluster = Cluster {
            root: first.root_token.clone().expect("root token"),
            keys: first.unseal_keys.clone(),
            nodes: vec![Some(first)],
            configs,
            _dirs: dirs,
        };
        for i in 1..cluster.configs.len() {
            cluster.nodes.push(None);
            cluster.restart(i).await;
        }
        cluster
    }

    /// Starts `n` nodes, each in a temporary folder with the config
    /// `config(i, folder)` makes.
    async fn start_with(
        n: usize,
        mut config: impl FnMut(usize, &std::path::Path) -> Config,
    ) -> Cluster {
        let dirs: Vec<tempfile::TempDir> = (0..n)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let configs = dirs
            .iter()
            .enumerate()
            .map(|(i, d)| config(i, d.path()))
            .collect();
        Cluster::start(configs, dirs).await
    }

    /// Starts node `i` (again) and unseals it; it is a standby when
    /// another node is active.
    async fn restart(&mut self, i: usize) {
        let mut node = Server::with_config(Kind::Strongroom, &self.configs[i]);
        node.root_token = Some(self.root.clone());
        node.unseal_keys = self.keys.clone();
        node.unseal().await;
        self.nodes[i] = Some(node);
    }

    fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("node running")
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i].take() {
            n.kill();
        }
    }

    fn addr(&self, i: usize) -> String {
        self.node(i).addr.clone()
    }

    /// `sys/health` of every running node, sent concurrently (one
    /// sample); `None` for a node that is down or did not answer.
    async fn sample(&self) -> Vec<Option<u16>> {
        let calls = self.nodes.iter().map(|n| async move {
            match n {
                Some(n) => try_send(&n.addr, None, &Call::get("sys/health"))
                    .await
                    .map(|r| r.status),
                None => None,
            }
        });
        futures::future::join_all(calls).await
    }

    /// Waits (at most `limit`) until exactly one node is active and every
    /// other running node answers as an unsealed standby; returns the
    /// active one. Panics if any sample shows two active nodes.
    async fn settled(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let sample = self.sample().await;
            let active: Vec<usize> = (0..sample.len())
                .filter(|&i| sample[i] == Some(200))
                .collect();
            assert!(active.len() <= 1, "two active nodes: {sample:?}");
            let standbys_ok = (0..sample.len()).all(|i| {
                self.nodes[i].is_none() || sample[i] == Some(200) || sample[i] == Some(429)
            });
            if active.len() == 1 && standbys_ok {
                return active[0];
            }
            assert!(
                Instant::now() < deadline,
                "not settled after {limit:?}: {sample:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `sys/leader` on node `i`, once it names an active node (at most
    /// `limit`).
    async fn leader(&self, i: usize, limit: Duration) -> Reply {
        let deadline = Instant::now() + limit;
        loop {
            let r = self.send(i, &Call::get("sys/leader")).await;
            let known = r.body["leader_address"]
                .as_str()
                .is_some_and(|a| !a.is_empty());
            if known || Instant::now() >= deadline {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes ACL policy `name` through node `i`.
    async fn put_policy(&self, i: usize, name: &str, text: &str) {
        let call = Call::put(
            &format!("sys/policies/acl/{name}"),
            json!({ "policy": text }),
        );
        let r = self.send(i, &call).await;
        assert_eq!(r.status, 204, "{r:?}");
    }

    async fn send(&self, i: usize, call: &Call) -> Reply {
        self.send_as(i, &self.root, call).await
    }

    /// `call` to node `i` with `token`; the node must answer.
    async fn send_as(&self, i: usize, token: &str, call: &Call) -> Reply {
        try_send(&self.addr(i), Some(token), call)
            .await
            .unwrap_or_else(|| panic!("node {i} did not answer {}", call.describe()))
    }
}

/// The string at JSON `pointer` in a reply (a token, an accessor).
fn text_at(r: &Reply, pointer: &str) -> String {
    r.body
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in {r:?}"))
        .to_string()
}

/// `n` nodes on a fresh database, all direct, with a lock of `ttl`.
async fn nodes(pg: &Postgres, n: usize, ttl: &str) -> (Cluster, String) {
    let url = pg.fresh_url();
    let cluster = Cluster::start_with(n, |_, dir| ha_config(dir, url.clone(), "true", ttl)).await;
    (cluster, url)
}

/// Three nodes on a fresh database, all direct, with OpenBao's lock TTL:
/// nothing here waits for a lock to expire, and a test machine under load
/// may stall a renewal for a good part of a second.
async fn three_nodes(pg: &Postgres) -> (Cluster, String) {
    nodes(pg, 3, "3s").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_active_standbys_forward_and_read_what_was_just_written() {
    let pg = Postgres::start();
    let (cluster, url) = three_nodes(&pg).await;
    let active = cluster.settled(Duration::from_secs(10)).await;
    assert_eq!(active, 0);
    assert_eq!(lock_holders(&url).await.len(), 1);

    // sys/leader everywhere names the active node (a standby learns it
    // from the lock row within a retry interval of unsealing).
    for i in 0..3 {
        let r = cluster.leader(i, Duration::from_secs(2)).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["ha_enabled"], true);
        assert_eq!(r.body["is_self"], i == 0, "node {i}: {r:?}");
        assert_eq!(r.body["leader_address"], cluster.addr(0), "node {i}: {r:?}");
    }
    // Node-local endpoints answer on the standby itself.
    let r = cluster
        .send(
            1,
            &Call::put(
                "sys/init",
                json!({"secret_shares": 1, "secret_threshold": 1}),
            ),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["errors"][0], "Vault is already initialized");
    let r = cluster.send(2, &Call::get("sys/seal-status")).await;
    assert_eq!(r.body["sealed"], false, "{r:?}");
    // A standby's health: 429, or 200 with standbyok.
    let r = try_send(
        &cluster.addr(1),
        None,
        &Call::get("sys/health?standbyok=true"),
    )
    .await
    .expect("health");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["standby"], true);

    // A mount and writes through the standbys, each read back at once on
    // every node.
    let r = cluster
        .send(1, &Call::post("sys/mounts/kv", json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    for round in 0..20 {
        let writer = round % 3;
        let value = format!("v{round}");
        let r = cluster
            .send(writer, &Call::put("kv/item", json!({ "value": value })))
            .await;
        assert_eq!(r.status, 204, "write {round} via node {writer}: {r:?}");
        for reader in 0..3 {
            let r = cluster.send(reader, &Call::get("kv/item")).await;
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(
                r.body["data"]["value"], value,
                "node {reader} after write {round} via node {writer}"
            );
        }
    }

    // Policies and tokens: made on one standby, used and revoked through
    // the others, the change seen everywhere at once.
    cluster
        .put_policy(2, "reader", "path \"kv/*\" { capabilities = [\"read\"] }")
        .await;
    let r = cluster
        .send(
            1,
            &Call::post(
                "auth/token/create",
                json!({"policies": ["reader"], "ttl": "1h"}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let token = text_at(&r, "/auth/client_token");
    for i in 0..3 {
        let r = cluster.send_as(i, &token, &Call::get("kv/item")).await;
        assert_eq!(r.status, 200, "node {i}: {r:?}");
    }
    cluster
        .put_policy(
            2,
            "reader",
            "path \"kv/other\" { capabilities = [\"read\"] }",
        )
        .await;
    for i in 0..3 {
        let r = cluster.send_as(i, &token, &Call::get("kv/item")).await;
        assert_eq!(r.status, 403, "node {i} after the policy change: {r:?}");
    }
    for i in 0..3 {
        let r = cluster
            .send_as(i, &token, &Call::get("auth/token/lookup-self"))
            .await;
        assert_eq!(r.status, 200, "node {i}: {r:?}");
        assert_eq!(r.body["data"]["policies"], json!(["default", "reader"]));
    }
    let r = cluster
        .send(
            2,
            &Call::post("auth/token/revoke", json!({ "token": token })),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    for i in 0..3 {
        let r = cluster
            .send_as(i, &token, &Call::get("auth/token/lookup-self"))
            .await;
        assert_eq!(r.status, 403, "node {i} after the revocation: {r:?}");
    }

    // Response wrapping through a standby.
    let r = cluster
        .send(
            1,
            &Call::post("sys/wrapping/wrap", json!({"secret": "s3"}))
                .header("X-Vault-Wrap-TTL", "5m"),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let wrapped = text_at(&r, "/wrap_info/token");
    let r = cluster
        .send_as(2, &wrapped, &Call::post("sys/wrapping/unwrap", json!({})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"]["secret"], "s3");

    // X-Vault-No-Request-Forwarding: a write gets a 307 to the active
    // node; a read is answered by the standby itself.
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = no_follow
        .put(format!("{}/v1/kv/item", cluster.addr(1)))
        .header("X-Vault-Token", &cluster.root)
        .header("X-Vault-No-Request-Forwarding", "true")
        .body(r#"{"value":"redirected"}"#)
        .send()
        .await
        .expect("redirect");
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(
        r.headers()["location"].to_str().expect("location"),
        format!("{}/v1/kv/item", cluster.addr(0))
    );
    let r = no_follow
        .get(format!("{}/v1/kv/item", cluster.addr(1)))
        .header("X-Vault-Token", &cluster.root)
        .header("X-Vault-No-Request-Forwarding", "true")
        .send()
        .await
        .expect("local read");
    assert_eq!(r.status().as_u16(), 200);

    // sys/ha-status: the active node and both standbys (once they have
    // reported, within a few seconds).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = cluster.send(2, &Call::get("sys/ha-status")).await;
        assert_eq!(r.status, 200, "{r:?}");
        let nodes = r.body["data"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if nodes.len() == 3 {
            let actives: Vec<&Value> = nodes.iter().filter(|n| n["active_node"] == true).collect();
            assert_eq!(actives.len(), 1, "{nodes:?}");
            assert_eq!(actives[0]["api_address"], cluster.addr(0));
            break;
        }
        assert!(Instant::now() < deadline, "ha-status: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Still one live lock row.
    assert_eq!(lock_holders(&url).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_down_hands_over_and_sealing_a_standby_seals_only_it() {
    let pg = Postgres::start();
    let (cluster, _url) = three_nodes(&pg).await;
    assert_eq!(cluster.settled(Duration::from_secs(10)).await, 0);

    // A token without sudo may do neither.
    cluster
        .put_policy(
            0,
            "plain",
            "path \"sys/*\" { capabilities = [\"update\", \"read\"] }",
        )
        .await;
    let r = cluster
        .send(
            0,
            &Call::post("auth/token/create", json!({"policies": ["plain"]})),
        )
        .await;
    let plain = text_at(&r, "/auth/client_token");
    let r = cluster
        .send_as(1, &plain, &Call::put("sys/step-down", json!({})))
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = cluster
        .send_as(2, &plain, &Call::put("sys/seal", json!({})))
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(cluster.settled(Duration::from_secs(1)).await, 0);

    // Step-down sent to a standby is forwarded: another node takes over.
    let r = cluster
        .send(1, &Call::put("sys/step-down", json!({})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let new_active = loop {
        let a = cluster.settled(Duration::from_secs(10)).await;
        if a != 0 {
            break a;
        }
        assert!(Instant::now() < deadline, "node 0 is still active");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let r = cluster
        .send(0, &Call::post("sys/mounts/after", json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "a write through the old active: {r:?}");
    let r = cluster.send(new_active, &Call::get("sys/leader")).await;
    assert_eq!(r.body["is_self"], true, "{r:?}");

    // Sealing a standby with a sudo token seals that node only.
    let standby = (0..3).find(|&i| i != new_active).expect("a standby");
    let r = cluster
        .send(standby, &Call::put("sys/seal", json!({})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = cluster.send(standby, &Call::get("sys/seal-status")).await;
    assert_eq!(r.body["sealed"], true, "{r:?}");
    let sample = cluster.sample().await;
    assert_eq!(sample[standby], Some(503), "{sample:?}");
    assert_eq!(sample[new_active], Some(200), "{sample:?}");
    let other = 3 - standby - new_active;
    assert_eq!(sample[other], Some(429), "{sample:?}");
}

/// Writers put `ledger/w<w>-<n>` through every node in turn and record what
/// was acknowledged.
async fn writer(
    addrs: Vec<String>,
    token: String,
    w: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<String> {
    let mut acked = Vec::new();
    let mut n = 0usize;
    while !*stop.borrow() {
        let key = format!("w{w}-{n}");
        let base = &addrs[n % addrs.len()];
        n += 1;
        let call = Call::put(&format!("ledger/{key}"), json!({ "v": key }));
        if let Some(r) = try_send(base, Some(&token), &call).await {
            if r.status == 204 {
                acked.push(key);
            }
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_active_node_under_writers_loses_no_acknowledged_write() {
    let pg = Postgres::start();
    // A short TTL: the failover waits for the killed node's row to expire.
    let (mut cluster, url) = nodes(&pg, 3, "2s").await;
    assert_eq!(cluster.settled(Duration::from_secs(10)).await, 0);
    let r = cluster
        .send(0, &Call::post("sys/mounts/ledger", json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");

    let addrs: Vec<String> = (0..3).map(|i| cluster.addr(i)).collect();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            tokio::spawn(writer(
                addrs.clone(),
                cluster.root.clone(),
                w,
                stop_rx.clone(),
            ))
        })
        .collect();
    // Let the writers get going: wait until the ledger holds writes.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = cluster.send(1, &Call::list("ledger")).await;
        if r.body["data"]["keys"]
            .as_array()
            .is_some_and(|k| k.len() >= 40)
        {
            break;
        }
        assert!(Instant::now() < deadline, "writers stuck: {r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    cluster.kill(0);
    let killed = Instant::now();
    let new_active = cluster.settled(Duration::from_secs(15)).await;
    let failover = killed.elapsed();
    assert_ne!(new_active, 0);
    assert!(failover < FAILOVER, "failover took {failover:?}");
    // Writes go on after the failover.
    let before = cluster.send(new_active, &Call::list("ledger")).await.body["data"]["keys"]
        .as_array()
        .map_or(0, Vec::len);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = cluster.send(new_active, &Call::list("ledger")).await;
        if r.body["data"]["keys"]
            .as_array()
            .is_some_and(|k| k.len() >= before + 40)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no writes after the failover: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send_replace(true);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    assert!(acked.len() >= 80, "{} writes acknowledged", acked.len());

    // The killed node rejoins as a standby.
    cluster.restart(0).await;
    assert_eq!(cluster.settled(Duration::from_secs(10)).await, new_active);

    // Every acknowledged write is there, on every node.
    for i in 0..3 {
        for key in &acked {
            let r = cluster.send(i, &Call::get(&format!("ledger/{key}"))).await;
            assert_eq!(r.status, 200, "node {i}: acknowledged {key} lost: {r:?}");
            assert_eq!(r.body["data"]["v"], key.as_str());
        }
    }
    assert_eq!(lock_holders(&url).await.len(), 1);
}

/// The active node (node 0) reaches PostgreSQL through a proxy that the
/// test freezes (silent partition) or cuts (connections reset).
async fn partition_of_the_active_node(cut: bool) {
    let pg = Postgres::start();
    let db = pg.create_database();
    let url = pg.url_for(&db);
    let proxy = Proxy::start(([127, 0, 0, 1], pg.port()).into()).await;
    let cluster = Cluster::start_with(3, |i, dir| {
        let via = if i == 0 {
            pg.url_via(&proxy.addr.to_string(), &db)
        } else {
            url.clone()
        };
        ha_config(dir, via, "true", "2s")
    })
    .await;
    assert_eq!(cluster.settled(Duration::from_secs(10)).await, 0);
    let r = cluster
        .send(0, &Call::post("sys/mounts/kv", json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = cluster
        .send(1, &Call::put("kv/before", json!({"v": "1"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");

    if cut {
        proxy.cut();
    } else {
        proxy.freeze();
    }
    // Every sample until another node is active: never two active nodes
    // (`settled` asserts it on each sample).
    let start = Instant::now();
    let new_active = loop {
        let a = cluster.settled(Duration::from_secs(15)).await;
        if a != 0 {
            break a;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "node 0 kept the lead"
        );
    };
    assert!(start.elapsed() < FAILOVER, "took {:?}", start.elapsed());
    let r = cluster
        .send(new_active, &Call::put("kv/during", json!({"v": "2"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");

    // The link heals: node 0 rejoins as a standby of the new active node,
    // and serves both writes.
    proxy.heal();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sample = cluster.sample().await;
        assert!(
            sample.iter().filter(|s| **s == Some(200)).count() <= 1,
            "two active nodes: {sample:?}"
        );
        if sample[0] == Some(429) {
            let r = cluster.send(0, &Call::get("sys/leader")).await;
            if r.body["leader_address"] == cluster.addr(new_active) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "node 0 did not rejoin: {sample:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for key in ["before", "during"] {
        let r = cluster.send(0, &Call::get(&format!("kv/{key}"))).await;
        assert_eq!(r.status, 200, "{key} through the healed node: {r:?}");
    }
    assert_eq!(lock_holders(&url).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_partitioned_active_node_hands_over_without_split_brain() {
    partition_of_the_active_node(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_node_whose_database_link_is_reset_hands_over_without_split_brain() {
    partition_of_the_active_node(true).await;
}

/// Steps the active node down and waits until `next` is active.
async fn hand_over(cluster: &Cluster, from: usize, next: usize) {
    let r = cluster
        .send(from, &Call::put("sys/step-down", json!({})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.settled(Duration::from_secs(10)).await != next {
        assert!(Instant::now() < deadline, "node {next} did not take over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_promoted_again_serves_what_others_wrote_and_keeps_ttls_and_wrappings() {
    let pg = Postgres::start();
    let (cluster, _url) = nodes(&pg, 2, "3s").await;
    assert_eq!(cluster.settled(Duration::from_secs(10)).await, 0);
    let r = cluster
        .send(0, &Call::post("sys/mounts/kv", json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = cluster.send(0, &Call::put("kv/x", json!({"v": "1"}))).await;
    assert_eq!(r.status, 204, "{r:?}");
    // Node 0 reads it (and may cache it).
    let r = cluster.send(0, &Call::get("kv/x")).await;
    assert_eq!(r.body["data"]["v"], "1");
    // A token with a TTL and a wrapping token, made on node 0.
    let r = cluster
        .send(0, &Call::post("auth/token/create", json!({"ttl": "1h"})))
        .await;
    let token = text_at(&r, "/auth/client_token");
    let r = cluster
        .send(
            0,
            &Call::post("sys/wrapping/wrap", json!({"k": "wrapped"}))
                .header("X-Vault-Wrap-TTL", "1h"),
        )
        .await;
    let wrapped = text_at(&r, "/wrap_info/token");

    // Node 1 takes over and writes; then node 0 again.
    hand_over(&cluster, 0, 1).await;
    let r = cluster.send(1, &Call::put("kv/x", json!({"v": "2"}))).await;
    assert_eq!(r.status, 204, "{r:?}");
    hand_over(&cluster, 1, 0).await;
    let r = cluster.send(0, &Call::get("kv/x")).await;
    assert_eq!(
        r.body["data"]["v"], "2",
        "node 0 served its stale cache: {r:?}"
    );

    // The token's TTL kept running across both failovers; the wrapping
    // token unwraps once, on whichever node.
    let r = cluster
        .send_as(1, &token, &Call::get("auth/token/lookup-self"))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let ttl = r.body["data"]["ttl"].as_u64().expect("ttl");
    assert!(ttl <= 3600 && ttl > 3000, "ttl {ttl}");
    let r = cluster
        .send_as(1, &wrapped, &Call::post("sys/wrapping/unwrap", json!({})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"]["k"], "wrapped");
    let r = cluster
        .send_as(0, &wrapped, &Call::post("sys/wrapping/unwrap", json!({})))
        .await;
    assert_eq!(r.status, 400, "a second unwrap: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standbys_answer_reads_themselves_while_the_active_node_hangs() {
    let pg = Postgres::start();
    // A long lock TTL: the hung active node stays the lock holder for the
    // whole test, so nothing but the standby can answer.
    let (cluster, _url) = nodes(&pg, 2, "30s").await;
    assert_eq!(cluster.settled(Duration::from_secs(10)).await, 0);
    let r = cluster
        .send(1, &Call::post("sys/mounts/kv", json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = cluster
        .send(1, &Call::put("kv/item", json!({"v": "before the hang"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = cluster
        .send(
            1,
            &Call::post("auth/token/create", json!({"policies": ["default"]})),
        )
        .await;
    let token = text_at(&r, "/auth/client_token");

    cluster.node(0).signal("STOP");
    // Reads on the standby: answered by the standby (a forwarded request
    // would wait for the stopped node until the client gives up).
    let r = try_send(&cluster.addr(1), Some(&cluster.root), &Call::get("kv/item")).await;
    let r = r.expect("the standby answered the read itself");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"]["v"], "before the hang");
    let r = try_send(
        &cluster.addr(1),
        Some(&token),
        &Call::get("auth/token/lookup-self"),
    )
    .await
    .expect("the standby answered the lookup itself");
    assert_eq!(r.status, 200, "{r:?}");
    // A write must reach the active node: it cannot be answered.
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let w = quick
        .put(format!("{}/v1/kv/item", cluster.addr(1)))
        .header("X-Vault-Token", &cluster.root)
        .body(r#"{"v":"during the hang"}"#)
        .send()
        .await;
    assert!(
        w.is_err(),
        "a write was answered without the active node: {w:?}"
    );
    cluster.node(0).signal("CONT");

    // Sealing the active node gives the lock up at once: the standby takes
    // over long before the 30 s TTL would have let it.
    let r = cluster.send(0, &Call::put("sys/seal", json!({}))).await;
    assert_eq!(r.status, 204, "{r:?}");
    let sealed = Instant::now();
    let deadline = Duration::from_secs(10);
    while cluster.sample().await[1] != Some(200) {
        assert!(sealed.elapsed() < deadline, "the standby did not take over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = cluster.send(1, &Call::get("kv/item")).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// Sends `call` from the local address `from` (any 127.x.y.z works on
/// Linux loopback).
async fn send_from(from: [u8; 4], base: &str, token: &str, call: &Call) -> Reply {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let method = reqwest::Method::from_bytes(call.method.as_bytes()).expect("method");
    let mut req = client
        .request(method, format!("{base}/v1/{}", call.path))
        .header("X-Vault-Token", token);
    if let Some(body) = &call.body {
        req = req.body(body.clone());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    Reply { status, body }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_request_carries_the_clients_address() {
    let pg = Postgres::start();
    let (cluster, _url) = nodes(&pg, 2, "3s").await;
    assert_eq!(cluster.settled(Duration::from_secs(10)).await, 0);
    let r = cluster
        .send(0, &Call::post("sys/mounts/kv", json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    // A token usable only from 127.0.0.2 (a token role's bound CIDRs).
    cluster
        .put_policy(
            0,
            "kvw",
            "path \"kv/*\" { capabilities = [\"create\", \"update\", \"read\"] }",
        )
        .await;
    let r = cluster
        .send(
            0,
            &Call::post(
                "auth/token/roles/bound",
                json!({"allowed_policies": ["kvw"], "token_bound_cidrs": ["127.0.0.2/32"]}),
            ),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = cluster
        .send(
            0,
            &Call::post("auth/token/create/bound", json!({"policies": ["kvw"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let token = text_at(&r, "/auth/client_token");
    // A write through the standby (forwarded: the standby reaches the
    // active node from 127.0.0.1) is judged by the client's address.
    let write = Call::put("kv/x", json!({"v": "1"}));
    let r = send_from([127, 0, 0, 2], &cluster.addr(1), &token, &write).await;
    assert_eq!(r.status, 204, "from 127.0.0.2 through the standby: {r:?}");
    let r = send_from([127, 0, 0, 1], &cluster.addr(1), &token, &write).await;
    assert_eq!(r.status, 403, "from 127.0.0.1 through the standby: {r:?}");
    // The same on the standby's own reads.
    let read = Call::get("kv/x");
    let r = send_from([127, 0, 0, 2], &cluster.addr(1), &token, &read).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = send_from([127, 0, 0, 1], &cluster.addr(1), &token, &read).await;
    assert_eq!(r.status, 403, "{r:?}");
}

/// Waits until node `i` logged a line containing `needle` (at most
/// `limit`).
async fn logged(cluster: &Cluster, i: usize, needle: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !cluster.node(i).output.text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "node {i} never logged {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A standby answers reads from a read lease, with no database round trip:
/// the active node pushes every write to it before acknowledging. When the
/// pushes cannot reach it (its advertised cluster address goes through a
/// proxy that freezes), the active node waits the lease out before it
/// acknowledges, so a read sent to the standby right after the
/// acknowledgement still sees the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_the_active_node_cannot_push_to_never_answers_an_older_value() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let port = strongroom_test::server::free_port();
    let proxy = Proxy::start(([127, 0, 0, 1], port).into()).await;
    let cluster = Cluster::start_with(2, |i, dir| {
        let mut cfg = ha_config(dir, url.clone(), "true", "3s");
        if i == 1 {
            cfg.cluster_port = Some(port);
            cfg.cluster_addr = Some(format!("https://{}", proxy.addr));
        }
        cfg
    })
    .await;
    assert_eq!(cluster.settled(Duration::from_secs(10)).await, 0);
    let r = cluster
        .send(0, &Call::post("sys/mounts/kv", json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = cluster.send(0, &Call::put("kv/x", json!({"v": "0"}))).await;
    assert_eq!(r.status, 204, "{r:?}");
    logged(
        &cluster,
        1,
        "HA: read lease granted",
        Duration::from_secs(10),
    )
    .await;
    let r = cluster.send(1, &Call::get("kv/x")).await;
    assert_eq!(r.body["data"]["v"], "0", "{r:?}");

    proxy.freeze();
    for round in 1..=3 {
        let v = round.to_string();
        let sent = Instant::now();
        let r = cluster.send(0, &Call::put("kv/x", json!({ "v": v }))).await;
        assert_eq!(r.status, 204, "{r:?}");
        // Bounded by the lease (2 s) and the push timeout (0.5 s).
        let took = sent.elapsed();
        assert!(
            took < Duration::from_secs(6),
            "write {round} waited {took:?}"
        );
        let r = cluster.send(1, &Call::get("kv/x")).await;
        assert_eq!(r.body["data"]["v"], v.as_str(), "round {round}: {r:?}");
    }

    // Pushes reach it again: writes are acknowledged at once and read back.
    proxy.heal();
    for round in 4..=6 {
        let v = round.to_string();
        let r = cluster.send(0, &Call::put("kv/x", json!({ "v": v }))).await;
        assert_eq!(r.status, 204, "{r:?}");
        let r = cluster.send(1, &Call::get("kv/x")).await;
        assert_eq!(r.body["data"]["v"], v.as_str(), "round {round}: {r:?}");
    }
}

/// With an audit device, a standby forwards even the reads it could
/// answer itself: the active node, which holds the device, records them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_audit_device_a_standby_read_is_on_the_active_nodes_record() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let cluster = Cluster::start_with(2, |_, dir| {
        let mut cfg = ha_config(dir, url.clone(), "true", "3s");
        cfg.lines
            .push("unsafe_allow_api_audit_creation = true".into());
        cfg
    })
    .await;
    assert_eq!(cluster.settled(Duration::from_secs(10)).await, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("audit.log");
    let r = cluster
        .send(
            0,
            &Call::put(
                "sys/audit/file",
                json!({"type": "file", "options": {"file_path": log}}),
            ),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = cluster
        .send(0, &Call::post("sys/mounts/kv", json!({"type": "kv"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = cluster
        .send(0, &Call::put("kv/item", json!({"v": "audited"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    // The standby learns of the device through the change log; until then
    // it may still answer a read itself, so read until the active node's
    // record shows one.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = cluster.send(1, &Call::get("kv/item")).await;
        assert_eq!(r.status, 200, "{r:?}");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let reads = text
            .lines()
            .filter(|l| l.contains("\"path\":\"kv/item\"") && l.contains("\"operation\":\"read\""))
            .count();
        if reads >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reads through the standby are not on record:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // From now on every read through the standby is on record.
    let count = |text: &str| {
        text.lines()
            .filter(|l| l.contains("\"path\":\"kv/item\"") && l.contains("\"type\":\"response\""))
            .count()
    };
    let before = count(&std::fs::read_to_string(&log).unwrap_or_default());
    for _ in 0..5 {
        let r = cluster.send(1, &Call::get("kv/item")).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let after = count(&std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(after, before + 5, "standby reads missing from the record");
}
