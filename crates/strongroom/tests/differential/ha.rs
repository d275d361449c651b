//! Differential tests of high availability on PostgreSQL: two OpenBao
//! nodes on one database and two Strongroom nodes on another, compared
//! active to active and standby to standby for `sys/health` (and its
//! `standbyok` / `standbycode`), `sys/leader`, `sys/ha-status` and
//! `sys/step-down`.
//!
//! Normalisations, beyond the suite's usual ones:
//! - addresses (`leader_address`, `leader_cluster_address`, the nodes'
//!   `api_address` and `cluster_address`) name each cluster's own ports:
//!   not compared by value; instead each cluster's answer must name its
//!   own nodes;
//! - `version` and `upgrade_version` are each server's own;
//! - `active_time` and `last_echo` are times.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strongroom_test::diff::{on_both, Allow, Pair};
use strongroom_test::postgres::Postgres;
use strongroom_test::server::{Call, Config, Kind, Server, Storage};

const ADDRESSES: &[Allow] = &[
    Allow {
        pattern: "**/leader_address",
        reason: "each cluster's own active node",
    },
    Allow {
        pattern: "**/leader_cluster_address",
        reason: "each cluster's own active node",
    },
    Allow {
        pattern: "**/api_address",
        reason: "each cluster's own nodes",
    },
    Allow {
        pattern: "**/cluster_address",
        reason: "each cluster's own nodes",
    },
    Allow {
        pattern: "**/version",
        reason: "each server's own version",
    },
    Allow {
        pattern: "**/upgrade_version",
        reason: "each server's own version",
    },
    Allow {
        pattern: "**/active_time",
        reason: "a time",
    },
    Allow {
        pattern: "**/last_echo",
        reason: "a time",
    },
];

/// `sys/ha-status` lists nodes by API address, and the test's ports are
/// random: which position the active node holds differs. Checked apart.
const NODE_ORDER: &[Allow] = &[Allow {
    pattern: "**/nodes/[]/active_node",
    reason: "nodes are listed by API address; the ports are random",
}];

/// One active node without an echo time, and standbys with one.
fn one_active(r: &strongroom_test::server::Reply) -> bool {
    let nodes = r.body["data"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let active: Vec<&Value> = nodes.iter().filter(|n| n["active_node"] == true).collect();
    active.len() == 1
        && active[0]["last_echo"].is_null()
        && nodes
            .iter()
            .filter(|n| n["active_node"] == false)
            .all(|n| n["last_echo"].is_string())
}

/// A node config on PostgreSQL with HA.
fn config(dir: &std::path::Path, url: &str) -> Config {
    let mut cfg = Config::inmem(dir);
    cfg.storage = Storage::Postgres {
        url: url.to_string(),
        lines: vec!["ha_enabled = \"true\"".into()],
    };
    cfg
}

/// Sends `call` to `s` until `pred` holds (at most 60 s: OpenBao takes
/// its time to settle).
async fn wait_until(s: &Server, call: Call, pred: impl Fn(u16, &Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = s.send(&call).await;
        if pred(r.status, &r.body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} {}: still {r:?}",
            s.kind.label(),
            call.describe()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A standby's health once settled (OpenBao reports unknown replication
/// modes for a moment after unsealing or stepping down).
fn settled_standby(status: u16, body: &Value) -> bool {
    status == 429 && body["replication_performance_mode"] != "unknown"
}

/// Two nodes of `kind` on `url`: the first initialised and active, the
/// second unsealed as its standby.
async fn two_nodes(kind: Kind, url: &str, dirs: &[tempfile::TempDir; 2]) -> (Server, Server) {
    let mut active = Server::with_config(kind, &config(dirs[0].path(), url));
    active.init(1, 1).await;
    active.unseal().await;
    wait_until(&active, Call::get("sys/health").anonymous(), |s, _| {
        s == 200
    })
    .await;
    let mut standby = Server::with_config(kind, &config(dirs[1].path(), url));
    standby.root_token = active.root_token.clone();
    standby.unseal_keys = active.unseal_keys.clone();
    standby.unseal().await;
    // OpenBao's standby reports "unknown" replication modes for a moment
    // after unsealing, then its settled state.
    wait_until(
        &standby,
        Call::get("sys/health").anonymous(),
        settled_standby,
    )
    .await;
    (active, standby)
}

fn dirs() -> [tempfile::TempDir; 2] {
    [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_leader_ha_status_and_step_down_answer_as_openbao() {
    let pg = Postgres::start();
    let (bao_url, sr_url) = (pg.fresh_url(), pg.fresh_url());
    let (bao_dirs, sr_dirs) = (dirs(), dirs());
    let (bao_active, bao_standby) = two_nodes(Kind::Bao, &bao_url, &bao_dirs).await;
    let (sr_active, sr_standby) =
        two_nodes(strongroom_test::server::target(), &sr_url, &sr_dirs).await;
    let mut active = Pair::from_servers(bao_active, sr_active);
    let mut standby = Pair::from_servers(bao_standby, sr_standby);

    // sys/health, active and standby, with the standby parameters.
    for path in [
        "sys/health",
        "sys/health?standbyok=true",
        "sys/health?standbycode=299",
        "sys/health?standbyok=true&standbycode=299",
    ] {
        active.check(Call::get(path).anonymous(), ADDRESSES).await;
        standby.check(Call::get(path).anonymous(), ADDRESSES).await;
    }
    // HEAD answers the status alone.
    standby
        .check(Call::new("HEAD", "sys/health").anonymous(), ADDRESSES)
        .await;

    // sys/leader: each cluster's nodes name that cluster's active node.
    let r = active
        .check(Call::get("sys/leader").anonymous(), ADDRESSES)
        .await;
    on_both(&mut active, &r, "active is_self", |r| {
        r.body["is_self"] == true
    });
    let leaders = (
        r.0.body["leader_address"].clone(),
        r.1.body["leader_address"].clone(),
    );
    let expected = (active.bao.addr.clone(), active.sr.addr.clone());
    active.expect(
        leaders.0 == expected.0.as_str() && leaders.1 == expected.1.as_str(),
        format!("leader_address {leaders:?}, expected {expected:?}"),
    );
    // A standby learns the leader from the lock; wait for both.
    wait_until(&standby.bao, Call::get("sys/leader"), |_, b| {
        b["leader_address"] == expected.0.as_str()
    })
    .await;
    wait_until(&standby.sr, Call::get("sys/leader"), |_, b| {
        b["leader_address"] == expected.1.as_str()
    })
    .await;
    standby
        .check(Call::get("sys/leader").anonymous(), ADDRESSES)
        .await;

    // sys/ha-status once both standbys reported to their active node.
    for s in [&active.bao, &active.sr] {
        wait_until(s, Call::get("sys/ha-status"), |st, b| {
            st == 200 && b["data"]["nodes"].as_array().is_some_and(|n| n.len() == 2)
        })
        .await;
    }
    let both: Vec<Allow> = ADDRESSES.iter().chain(NODE_ORDER).copied().collect();
    let r = active.check(Call::get("sys/ha-status"), &both).await;
    on_both(&mut active, &r, "one active node", one_active);
    let r = standby.check(Call::get("sys/ha-status"), &both).await;
    on_both(
        &mut standby,
        &r,
        "one active node (via the standby)",
        one_active,
    );
    active
        .check(Call::get("sys/ha-status").anonymous(), ADDRESSES)
        .await;

    // sys/step-down: needs a token with sudo; sent to the standby it is
    // forwarded, and the other node takes over.
    standby
        .check(Call::put("sys/step-down", json!({})).anonymous(), ADDRESSES)
        .await;
    let r = standby
        .check(Call::put("sys/step-down", json!({})), ADDRESSES)
        .await;
    standby.expect_status(&r, 204, "step-down through the standby");
    for s in [&standby.bao, &standby.sr] {
        wait_until(s, Call::get("sys/health").anonymous(), |st, _| st == 200).await;
    }
    for s in [&active.bao, &active.sr] {
        wait_until(s, Call::get("sys/health").anonymous(), settled_standby).await;
    }
    standby.check(Call::get("sys/leader"), ADDRESSES).await;
    active
        .check(Call::get("sys/health").anonymous(), ADDRESSES)
        .await;

    active.finish();
    standby.finish();
}

#[tokio::test]
async fn a_single_node_answers_the_ha_endpoints_as_openbao() {
    let mut p = Pair::dev();
    p.check(Call::get("sys/leader").anonymous(), ADDRESSES)
        .await;
    let r = p.check(Call::get("sys/ha-status"), ADDRESSES).await;
    on_both(&mut p, &r, "lists itself, active", |r| {
        let nodes = r.body["data"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        nodes.len() == 1
            && nodes[0]["active_node"] == true
            && nodes[0]["api_address"]
                .as_str()
                .is_some_and(|a| !a.is_empty())
    });
    let (bao_addr, sr_addr) = (p.bao.addr.clone(), p.sr.addr.clone());
    p.expect(
        r.0.body["data"]["nodes"][0]["api_address"] == bao_addr.as_str()
            && r.1.body["data"]["nodes"][0]["api_address"] == sr_addr.as_str(),
        format!("api_address: {} / {}", r.0.body, r.1.body),
    );
    p.check(Call::get("sys/ha-status").anonymous(), ADDRESSES)
        .await;
    p.check(Call::put("sys/step-down", json!({})).anonymous(), ADDRESSES)
        .await;
    let r = p
        .check(Call::put("sys/step-down", json!({})), ADDRESSES)
        .await;
    p.expect_status(&r, 204, "step-down of a single node");
    p.check(Call::get("sys/health").anonymous(), ADDRESSES)
        .await;
    p.finish();
}
