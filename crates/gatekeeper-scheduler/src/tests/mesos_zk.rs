//! Mesos master discovery through ZooKeeper: the `zk://` value, the
//! leader out of the children and their data, and the scheduler against a
//! real ZooKeeper (strongroom-test's throw-away server) with emulated
//! masters registering as Mesos does.

use std::time::Duration;

use strongroom_test::zookeeper::{Session, ZooKeeper};
use tokio::sync::watch;

use super::args;
use crate::emulator::{EmulatedMesosTask, MesosEmulator};
use crate::mesos::zk::{leader_child, master_url, parse_zk, ZkTarget};
use crate::mesos::{parse_masters, MesosScheduler, ZkLeader};
use crate::{Scheduler, SchedulerError};

const STATE: &str = "/master/state";

/// How long a test waits for discovery to see a change in ZooKeeper.
const SEE_CHANGE: Duration = Duration::from_secs(30);

fn target(value: &str) -> ZkTarget {
    parse_zk(value)
        .unwrap_or_else(|e| panic!("{value}: {e}"))
        .unwrap_or_else(|| panic!("{value}: not a ZooKeeper URL"))
}

#[test]
fn zk_urls_in_every_accepted_form() {
    let t = target("zk://zk1:2181,zk2:2182/mesos");
    assert_eq!(t.hosts, "zk1:2181,zk2:2182");
    assert_eq!(t.path, "/mesos");
    assert_eq!(t.scheme, "http");
    assert!(t.auth.is_none());
    assert_eq!(t.to_string(), "zk://zk1:2181,zk2:2182/mesos");

    // zks: HTTPS to the masters; several path segments; a trailing slash;
    // the default port; IPv6; any case of the scheme.
    let t = target("ZKS://zk1, [fd00::1]:2190,10.0.0.3/dc1/mesos/");
    assert_eq!(t.scheme, "https");
    assert_eq!(t.hosts, "zk1:2181,[fd00::1]:2190,10.0.0.3:2181");
    assert_eq!(t.path, "/dc1/mesos");
    assert_eq!(
        t.to_string(),
        "zks://zk1:2181,[fd00::1]:2190,10.0.0.3:2181/dc1/mesos"
    );

    // Credentials are used as digest auth and never shown.
    let t = target("zk://mesos:s3cret@zk1:2181/mesos");
    assert_eq!(t.auth.as_ref().unwrap().expose(), "mesos:s3cret");
    assert_eq!(t.to_string(), "zk://zk1:2181/mesos");
    assert!(!format!("{t:?}").contains("s3cret"));

    // Not ZooKeeper at all: left to the masters list.
    for other in ["http://m1:5050", "m1:5050,m2:5050", "https://m1/zk://"] {
        assert!(parse_zk(other).unwrap().is_none(), "{other}");
    }
}

#[test]
fn bad_zk_urls_are_refused_with_the_reason() {
    let cases = [
        ("zk://zk1:2181", "no ZooKeeper path"),
        ("zk://zk1:2181/", "no ZooKeeper path"),
        ("zk://zk1:2181//mesos", "empty, `.` or `..` segment"),
        ("zk://zk1:2181/mesos/../x", "empty, `.` or `..` segment"),
        ("zk://zk1:2181,,zk2/mesos", "an empty ZooKeeper host"),
        ("zk:///mesos", "an empty ZooKeeper host"),
        ("zk://zk1:99999/mesos", "bad port"),
        ("zk://zk1:0/mesos", "bad port"),
        ("zk://zk1:http/mesos", "bad port"),
        ("zk://[fd00::1/mesos", "no `]`"),
        ("zk://[zk1]:2181/mesos", "not an IPv6 address"),
        ("zk://zk 1:2181/mesos", "not a host name"),
        ("zk://zk1:2181/mesos?x=1", "no query or fragment"),
        ("zk://s3cret@zk1/mesos", "`user:password@`"),
        ("zk://me:s3c/ret@zk1:x/mesos", "bad port"),
        ("zk://me:s3cret@zk1:2181", "no ZooKeeper path"),
    ];
    for (value, why) in cases {
        match parse_zk(value) {
            Err(SchedulerError::Unavailable(m)) => {
                assert!(m.starts_with("mesos-master \""), "{value}: {m}");
                assert!(m.contains(why), "{value}: {m}");
                assert!(
                    !m.contains("s3cret"),
                    "{value}: the credentials are shown: {m}"
                );
            }
            other => panic!("{value}: expected Unavailable, got {other:?}"),
        }
    }
    // A zk:// URL inside a masters list is not a master.
    match parse_masters("http://m1:5050,zk://zk1:2181/mesos") {
        Err(SchedulerError::Unavailable(m)) => assert!(m.contains("the whole value"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn the_lowest_json_info_child_leads_and_odd_names_are_ignored() {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let children = names(&[
        "log_replicas",
        "json.info_0000000012",
        "info_0000000001",
        "json.info_0000000010",
        "json.info_",
        "json.info_abc",
        "json.info_-000000001",
        "json.info_0000000011",
    ]);
    assert_eq!(leader_child(&children), Some("json.info_0000000010"));
    // Numbers, not text: an unpadded 9 is below 10.
    let children = names(&["json.info_0000000010", "json.info_9"]);
    assert_eq!(leader_child(&children), Some("json.info_9"));
    assert_eq!(
        leader_child(&names(&["info_0000000001", "log_replicas"])),
        None
    );
    assert_eq!(leader_child(&[]), None);
}

#[test]
fn the_leader_url_comes_from_its_master_info() {
    let url = |data: serde_json::Value, scheme: &str| {
        master_url(data.to_string().as_bytes(), scheme).map(|u| u.to_string())
    };
    // What Mesos writes: address.hostname and address.port.
    let full = serde_json::json!({
        "address": {"hostname": "m1.example", "ip": "10.0.0.1", "port": 5050},
        "hostname": "other.example", "id": "x", "ip": 16777226u32,
        "pid": "master@10.0.0.1:5050", "port": 5051, "version": "1.11.0"
    });
    assert_eq!(
        url(full.clone(), "http").unwrap(),
        "http://m1.example:5050/"
    );
    assert_eq!(url(full, "https").unwrap(), "https://m1.example:5050/");
    // No address.hostname: address.ip.
    let data = serde_json::json!({"address": {"hostname": "", "ip": "10.0.0.2", "port": 5050}});
    assert_eq!(url(data, "http").unwrap(), "http://10.0.0.2:5050/");
    // No address: the top-level hostname and port.
    let data = serde_json::json!({"hostname": "m3", "port": 5052, "ip": 16777226u32});
    assert_eq!(url(data, "http").unwrap(), "http://m3:5052/");
    // Only the packed IP (10.0.0.1, network byte order) and port.
    let data = serde_json::json!({"ip": 16777226u32, "port": 5050});
    assert_eq!(url(data, "http").unwrap(), "http://10.0.0.1:5050/");
    // Only the pid.
    let data = serde_json::json!({"pid": "master@10.0.0.4:5053"});
    assert_eq!(url(data, "http").unwrap(), "http://10.0.0.4:5053/");
    // IPv6 gets brackets.
    let data = serde_json::json!({"address": {"ip": "fd00::7", "port": 5050}});
    assert_eq!(url(data, "http").unwrap(), "http://[fd00::7]:5050/");

    let refused = |data: &[u8]| master_url(data, "http").unwrap_err();
    assert!(refused(b"not json").contains("not MasterInfo JSON"));
    assert!(refused(b"[1,2]").contains("not MasterInfo JSON"));
    assert!(refused(b"{\"port\": \"5050\"}").contains("not MasterInfo JSON"));
    assert!(refused(b"{\"port\": 5050}").contains("names no host"));
    assert!(refused(b"{\"hostname\": \"m1\"}").contains("names no valid port"));
    assert!(refused(b"{\"hostname\": \"m1\", \"port\": 70000}").contains("names no valid port"));
    assert!(refused(b"{\"hostname\": \"m1/x?y\", \"port\": 5050}").contains("not a host name"));
    assert!(refused(b"{\"hostname\": \"me@m1\", \"port\": 5050}").contains("not a host name"));
    assert!(refused(b"").contains("not MasterInfo JSON"));
}

#[test]
fn zk_parsers_survive_garbage() {
    // A small deterministic generator (xorshift) over bytes that matter.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let alphabet = b"zks:/@,[]0123456789.json_info{}\":-? \\\x00\xff";
    for _ in 0..3000 {
        let mut bytes = Vec::new();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for i in 0..(x % 48) {
            bytes.push(alphabet[((x >> (i % 50)) as usize + i as usize) % alphabet.len()]);
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_zk(&text);
        let _ = parse_zk(&format!("zk://{text}"));
        let _ = master_url(&bytes, "http");
        let _ = leader_child(&[format!("json.info_{text}"), text.to_string()]);
    }
}

// ---- Against a real ZooKeeper -------------------------------------------

/// A scheduler following `value`, with `session_timeout` sessions.
fn zk_scheduler(value: String, session_timeout: Duration) -> MesosScheduler {
    let mut args = args();
    args.mesos_master = value;
    MesosScheduler::with_zk_session_timeout(&args, session_timeout).unwrap()
}

/// Waits until discovery's word on the leader satisfies `pred`.
async fn wait_leader(
    scheduler: &MesosScheduler,
    what: &str,
    pred: impl Fn(&ZkLeader) -> bool,
) -> ZkLeader {
    let mut rx: watch::Receiver<ZkLeader> = scheduler.zk_leader().expect("zk:// discovery");
    let seen = tokio::time::timeout(SEE_CHANGE, rx.wait_for(|l| pred(l)))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|l| l.clone());
    match seen {
        Some(l) => l,
        None => panic!(
            "{what}: not seen within {SEE_CHANGE:?}; last: {:?}",
            *rx.borrow()
        ),
    }
}

fn known(url: &str) -> impl Fn(&ZkLeader) -> bool + '_ {
    move |l| matches!(l, ZkLeader::Known(u) if u.as_str() == format!("{url}/"))
}

fn unknown_with(why: &str) -> impl Fn(&ZkLeader) -> bool + '_ {
    move |l| matches!(l, ZkLeader::Unknown(m) if m.contains(why))
}

/// Registers master 0 of `emulator` under `path` as Mesos does.
async fn register(session: &Session, path: &str, emulator: &MesosEmulator) -> String {
    let info = emulator.master_info(0).to_string();
    session
        .register_sequential(path, "json.info_", info.as_bytes())
        .await
}

async fn unavailable(scheduler: &MesosScheduler, task: &str) -> String {
    match scheduler.lookup(task).await {
        Err(SchedulerError::Unavailable(m)) => m,
        other => panic!("{task}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn the_leader_zookeeper_names_is_followed_without_a_restart() {
    let zk = ZooKeeper::start().await;
    let a = MesosEmulator::start().await;
    let b = MesosEmulator::start().await;
    a.add_task(EmulatedMesosTask::running("on-a", "fw", "web"));
    b.add_task(EmulatedMesosTask::running("on-b", "fw", "web"));
    let path = "/dc1/mesos";
    let scheduler = zk_scheduler(
        format!("zk://{}{path}", zk.address()),
        Duration::from_secs(10),
    );

    // No node yet: no leader, a clear Unavailable.
    wait_leader(&scheduler, "missing node", unknown_with("does not exist")).await;
    let m = unavailable(&scheduler, "on-a").await;
    assert!(m.contains("the node /dc1/mesos does not exist"), "{m}");

    // Master A registers (ephemeral sequential, as Mesos does), beside
    // nodes that are not contenders.
    let session = zk.session().await;
    let node_a = register(&session, path, &a).await;
    assert!(node_a.starts_with("/dc1/mesos/json.info_"), "{node_a}");
    session.create(&format!("{path}/log_replicas"), b"").await;
    wait_leader(&scheduler, "A leads", known(&a.masters[0])).await;
    assert_eq!(scheduler.lookup("on-a").await.unwrap().name, "web");
    assert!(matches!(
        scheduler.lookup("on-b").await,
        Err(SchedulerError::NotFound(_))
    ));
    assert_eq!(a.requests(0, STATE), 2);

    // B registers behind A: A still leads.
    let node_b = register(&session, path, &b).await;
    assert!(node_b > node_a, "{node_b} after {node_a}");
    scheduler.lookup("on-a").await.unwrap();
    assert_eq!((a.requests(0, STATE), b.requests(0, STATE)), (3, 0));

    // A's node goes: the next lookups go to B, without a restart.
    session.delete(&node_a).await;
    wait_leader(&scheduler, "B leads", known(&b.masters[0])).await;
    assert_eq!(scheduler.lookup("on-b").await.unwrap().name, "web");
    assert!(matches!(
        scheduler.lookup("on-a").await,
        Err(SchedulerError::NotFound(_))
    ));
    assert_eq!((a.requests(0, STATE), b.requests(0, STATE)), (3, 2));

    // A leader node whose data is not MasterInfo: Unavailable, naming it.
    session.delete(&node_b).await;
    let garbage = session
        .register_sequential(path, "json.info_", b"{not json")
        .await;
    wait_leader(
        &scheduler,
        "garbage leader",
        unknown_with("not MasterInfo JSON"),
    )
    .await;
    let m = unavailable(&scheduler, "on-b").await;
    assert!(m.contains(&format!("the leader's node {garbage}")), "{m}");

    // No contender at all.
    session.delete(&garbage).await;
    wait_leader(
        &scheduler,
        "no master",
        unknown_with("no Mesos master is registered"),
    )
    .await;
    let m = unavailable(&scheduler, "on-b").await;
    assert!(
        m.contains("no Mesos master is registered under /dc1/mesos"),
        "{m}"
    );

    // B registers again and leads.
    register(&session, path, &b).await;
    wait_leader(&scheduler, "B again", known(&b.masters[0])).await;
    scheduler.lookup("on-b").await.unwrap();
}

#[tokio::test]
async fn zookeeper_down_forgets_the_leader_and_back_finds_it_again() {
    let mut zk = ZooKeeper::start().await;
    let a = MesosEmulator::start().await;
    a.add_task(EmulatedMesosTask::running("t1", "fw", "web"));
    let session = zk.session().await;
    session.create_path("/mesos").await;
    // A persistent node: it outlives the test's session across the restart.
    let info = a.master_info(0).to_string();
    session
        .create("/mesos/json.info_0000000001", info.as_bytes())
        .await;
    drop(session);
    let scheduler = zk_scheduler(
        format!("zk://{}/mesos", zk.address()),
        Duration::from_secs(2),
    );
    wait_leader(&scheduler, "A leads", known(&a.masters[0])).await;
    scheduler.lookup("t1").await.unwrap();

    // ZooKeeper dies: once the session is cut off longer than its
    // timeout, the leader is forgotten and lookups are Unavailable (the
    // master itself is still up).
    zk.stop();
    wait_leader(&scheduler, "session lost", |l| {
        matches!(l, ZkLeader::Unknown(_))
    })
    .await;
    let m = unavailable(&scheduler, "t1").await;
    assert!(m.contains("no leading master known"), "{m}");
    assert!(m.contains(&format!("zk://{}/mesos", zk.address())), "{m}");

    // It comes back: a new session finds the leader again.
    zk.restart().await;
    wait_leader(&scheduler, "A leads again", known(&a.masters[0])).await;
    scheduler.lookup("t1").await.unwrap();
}

#[tokio::test]
async fn zks_asks_the_masters_over_https_with_their_ca() {
    let zk = ZooKeeper::start().await;
    let a = MesosEmulator::start_tls().await;
    a.add_task(EmulatedMesosTask::running("t1", "fw", "web"));
    let session = zk.session().await;
    register(&session, "/mesos", &a).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, a.ca_pem.as_deref().unwrap()).unwrap();
    let mut args = args();
    args.mesos_master = format!("zks://{}/mesos", zk.address());
    args.mesos_cacert = Some(ca);
    let scheduler = MesosScheduler::from_args(&args).unwrap();
    assert!(scheduler.masters().is_empty());
    assert!(a.masters[0].starts_with("https://"));
    wait_leader(&scheduler, "A leads", known(&a.masters[0])).await;
    assert_eq!(scheduler.lookup("t1").await.unwrap().name, "web");
    // zk:// would ask the same master over plain HTTP, which it refuses.
    let plain = zk_scheduler(
        format!("zk://{}/mesos", zk.address()),
        Duration::from_secs(10),
    );
    let http = a.masters[0].replacen("https://", "http://", 1);
    wait_leader(&plain, "A over HTTP", known(&http)).await;
    let m = unavailable(&plain, "t1").await;
    assert!(m.contains(&http), "{m}");
}

#[test]
fn built_outside_a_runtime_it_starts_at_the_first_lookup() {
    // Nothing listens there: ZooKeeper is down from the start.
    let port = strongroom_test::server::free_port();
    let scheduler = zk_scheduler(
        format!("zk://127.0.0.1:{port}/mesos"),
        Duration::from_secs(2),
    );
    assert_eq!(*scheduler.zk_leader().unwrap().borrow(), ZkLeader::Pending);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let m = runtime.block_on(unavailable(&scheduler, "t1"));
    assert!(m.contains(&format!("zk://127.0.0.1:{port}/mesos")), "{m}");
    assert!(m.contains("cannot reach ZooKeeper"), "{m}");
}

#[tokio::test]
async fn credentials_in_the_url_read_a_protected_node() {
    let zk = ZooKeeper::start().await;
    let a = MesosEmulator::start().await;
    a.add_task(EmulatedMesosTask::running("t1", "fw", "web"));
    let owner = zk.session_as("mesos:s3cret").await;
    owner.create_private("/secure", b"").await;
    let info = a.master_info(0).to_string();
    owner
        .create("/secure/json.info_0000000001", info.as_bytes())
        .await;
    let with = zk_scheduler(
        format!("zk://mesos:s3cret@{}/secure", zk.address()),
        Duration::from_secs(10),
    );
    wait_leader(&with, "with credentials", known(&a.masters[0])).await;
    assert_eq!(with.lookup("t1").await.unwrap().name, "web");
    // Without them the node cannot be read: no leader, never a hang.
    let without = zk_scheduler(
        format!("zk://{}/secure", zk.address()),
        Duration::from_secs(10),
    );
    wait_leader(
        &without,
        "without credentials",
        unknown_with("not authorized"),
    )
    .await;
    let m = unavailable(&without, "t1").await;
    assert!(m.contains("cannot read /secure: not authorized"), "{m}");
    assert!(!m.contains("s3cret"), "{m}");
}
