//! Gatekeeper's Mesos master discovery through ZooKeeper, end to end: the
//! real `strongroom gatekeeper --mesos-master zk://127.0.0.1:<port>/mesos`,
//! a real ZooKeeper (strongroom-test's throw-away server), two emulated
//! Mesos clusters whose leading masters register in ZooKeeper as Mesos
//! does (ephemeral sequential `json.info_` nodes holding their
//! `MasterInfo`), and a real Vault-API server (the Strongroom dev server
//! and OpenBao's `bao server -dev`). A leader change in ZooKeeper is picked
//! up without a restart; ZooKeeper lost is a 502, not a crash.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

use std::time::{Duration, Instant, SystemTime};

use strongroom_gatekeeper_scheduler::emulator::{EmulatedMesosTask, MesosEmulator};
use strongroom_test::server::Kind;
use strongroom_test::zookeeper::{Session, ZooKeeper};

use crate::gatekeeper_support::{
    assert_no_secrets, mesos_ready, unwrap_once, GatekeeperProc, Sched, LOCAL,
};

/// The ZooKeeper node the masters register under.
const PATH: &str = "/mesos";

/// How long Gatekeeper may take to log that it saw a change.
const SEE_CHANGE: Duration = Duration::from_secs(40);

/// Registers the leading master of `cluster` in ZooKeeper; answers its node.
async fn register(session: &Session, cluster: &MesosEmulator) -> String {
    let info = cluster.master_info(0).to_string();
    session
        .register_sequential(PATH, "json.info_", info.as_bytes())
        .await
}

/// A fresh task of framework `marathon` named `web` (the policy key
/// `mesos:marathon:web*`), running on this machine, in `cluster` only.
fn add_task(cluster: &MesosEmulator, id: &str) -> String {
    let mut task = EmulatedMesosTask::running(id, "marathon", "web");
    task.started = SystemTime::now();
    task.agent_ip = LOCAL;
    cluster.add_task(task);
    id.to_string()
}

/// Waits until Gatekeeper's output has a line with every one of `parts`
/// after its first `skip` lines; answers the number of lines seen.
async fn wait_for_line(gk: &GatekeeperProc, skip: usize, parts: &[&str], what: &str) -> usize {
    let deadline = Instant::now() + SEE_CHANGE;
    loop {
        let text = gk.output();
        let lines: Vec<&str> = text.lines().collect();
        if lines
            .iter()
            .skip(skip)
            .any(|l| parts.iter().all(|p| l.contains(p)))
        {
            return lines.len();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no line with {parts:?} within {SEE_CHANGE:?}; output:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks `gk` for `task`'s token: it must be served, and unwrap (once) to a
/// token with the `api` role's policy. Answers the secrets handed out.
async fn served(
    gk: &GatekeeperProc,
    server: &strongroom_test::server::Server,
    task: &str,
    what: &str,
) -> Vec<(&'static str, String)> {
    let (s, r) = gk.token_for(Sched::Mesos, task).await;
    assert_eq!(s, 200, "{what}: {r}\n{}", gk.output());
    let wrapping = r["token"].as_str().unwrap().to_string();
    let (policies, token) = unwrap_once(server, &r).await;
    assert!(
        policies.contains(&"p-api".to_string()),
        "{what}: {policies:?}"
    );
    vec![
        ("a wrapping token", wrapping),
        ("an unwrapped token", token),
    ]
}

/// The scenario against one Vault-API server.
async fn leader_change_through_zookeeper(kind: Kind) {
    let ctx = kind.label();
    let (server, vault) = mesos_ready(kind).await;
    let mut zk = ZooKeeper::start().await;
    let a = MesosEmulator::start().await;
    let b = MesosEmulator::start().await;
    let session = zk.session().await;
    let node_a = register(&session, &a).await;

    let zk_url = format!("zk://{}{PATH}", zk.address());
    let mut args = vault.flags();
    args.extend([
        "--schedulers".into(),
        "mesos".into(),
        "--mesos-master".into(),
        zk_url.clone(),
        "--wrap-ttl".into(),
        "5m".into(),
        "--log-level".into(),
        "debug".into(),
    ]);
    let gk = GatekeeperProc::start(&args, &[("VAULT_TOKEN", vault.gk_token.as_str())]).await;
    let mut secrets: Vec<(&str, String)> = vec![("gatekeeper's token", vault.gk_token.clone())];

    // A task of cluster A gets its token through A's master, the leader.
    let t1 = add_task(&a, &format!("web.zk-{ctx}-1"));
    secrets.extend(
        served(
            &gk,
            &server,
            &t1,
            &format!("{ctx}: task at the first leader"),
        )
        .await,
    );
    assert_eq!(a.requests(0, "/master/state"), 1, "{ctx}");

    // B's master registers behind A's, then A's node goes: ZooKeeper now
    // names B, and Gatekeeper (the same process) logs that it follows.
    let seen = gk.output().lines().count();
    register(&session, &b).await;
    session.delete(&node_a).await;
    let b_url = format!("{}/", b.masters[0]);
    let seen = wait_for_line(
        &gk,
        seen,
        &["ZooKeeper names the leading master", &b_url],
        &format!("{ctx}: the leader change"),
    )
    .await;

    // The next task, known to B only, is looked up at B at the first try.
    let t2 = add_task(&b, &format!("web.zk-{ctx}-2"));
    secrets.extend(served(&gk, &server, &t2, &format!("{ctx}: task at the new leader")).await);
    assert_eq!(b.requests(0, "/master/state"), 1, "{ctx}");
    // A task of A only is not running for the new leader; A is not asked.
    let t3 = add_task(&a, &format!("web.zk-{ctx}-3"));
    let (s, r) = gk.token_for(Sched::Mesos, &t3).await;
    assert_eq!(s, 401, "{ctx}: task known to the old leader only: {r}");
    assert_eq!(a.requests(0, "/master/state"), 1, "{ctx}");

    // ZooKeeper goes down: once the session is lost, no leader is known and
    // a task gets 502 (the scheduler is unavailable), the service unsealed.
    zk.stop();
    wait_for_line(
        &gk,
        seen,
        &["no leading master known"],
        &format!("{ctx}: ZooKeeper down"),
    )
    .await;
    let t4 = add_task(&b, &format!("web.zk-{ctx}-4"));
    let (s, r) = gk.token_for(Sched::Mesos, &t4).await;
    assert_eq!(s, 502, "{ctx}: ZooKeeper down: {r}");
    assert_eq!(r["unsealed"], true, "{ctx}: {r}");
    assert!(
        r.to_string().contains("no leading master known"),
        "{ctx}: {r}"
    );
    // Still the same process, still answering.
    let (s, st) = gk.status().await;
    assert_eq!(s, 200, "{ctx}: /status: {st}");
    assert_no_secrets(&gk.output(), &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_leader_change_through_zookeeper_on_strongroom() {
    leader_change_through_zookeeper(Kind::Strongroom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_leader_change_through_zookeeper_on_openbao() {
    leader_change_through_zookeeper(Kind::Bao).await;
}
