//! StatsD (`--metrics-statsd`): a real UDP socket receives the request
//! counters as token requests go through the router (against a dev
//! Vault-API server, as tests/router.rs), and the gauges every ticker.
#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::{config, DevVault, FakeScheduler};
use strongroom_gatekeeper::http::{router, AppState};
use strongroom_gatekeeper::service::{new_seal_state, Gatekeeper};
use strongroom_gatekeeper::statsd::{spawn_gauges, Statsd, TagFormat};
use strongroom_gatekeeper::unseal::UnsealMethod;
use strongroom_gatekeeper::usage::MemoryStore;
use strongroom_gatekeeper::vault::{Token, VaultClient};
use strongroom_gatekeeper_scheduler::Scheduler;
use tokio::net::UdpSocket;
use tower::ServiceExt;

/// The receiving end: a StatsD server on a real UDP socket.
struct Receiver(UdpSocket);

impl Receiver {
    async fn new() -> Receiver {
        Receiver(UdpSocket::bind("127.0.0.1:0").await.unwrap())
    }

    fn addr(&self) -> String {
        self.0.local_addr().unwrap().to_string()
    }

    /// The next line sent (a missing one fails after a generous bound).
    async fn line(&self) -> String {
        let mut buf = [0u8; 1500];
        let n = tokio::time::timeout(Duration::from_secs(10), self.0.recv(&mut buf))
            .await
            .expect("no StatsD datagram arrived")
            .unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// The next `n` lines, sorted (UDP need not keep their order).
    async fn lines(&self, n: usize) -> Vec<String> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(self.line().await);
        }
        v.sort();
        v
    }
}

struct Env {
    _vault: DevVault,
    sched: Arc<FakeScheduler>,
    gk: Arc<Gatekeeper>,
    app: axum::Router,
}

async fn env(statsd: Arc<Statsd>) -> Env {
    let vault = DevVault::start().await;
    vault.prepare().await;
    let client = VaultClient::new(&vault.addr, None, false, Duration::from_secs(10)).unwrap();
    let sched = Arc::new(FakeScheduler::default());
    let gk = Arc::new(
        Gatekeeper::new(
            config(false, "approle"),
            client,
            vec![sched.clone() as Arc<dyn Scheduler>],
            Arc::new(MemoryStore::new()),
            new_seal_state(),
        )
        .with_statsd(statsd),
    );
    gk.unseal(&UnsealMethod::Token(Token::new("root")))
        .await
        .unwrap();
    let app = router(AppState {
        gk: gk.clone(),
        trusted_proxies: Arc::new(vec![]),
        version: "test".into(),
        peers: None,
    });
    Env {
        _vault: vault,
        sched,
        gk,
        app,
    }
}

impl Env {
    async fn token(&self, body: &str) -> StatusCode {
        let mut req = Request::builder()
            .method("POST")
            .uri("/token")
            .body(Body::from(body.to_string()))
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(
            "192.0.2.10".parse::<IpAddr>().unwrap(),
            40000,
        )));
        self.app.clone().oneshot(req).await.unwrap().status()
    }
}

const FRESH: Duration = Duration::from_secs(5);

#[tokio::test]
async fn each_counted_request_is_sent_and_the_gauges_every_tick() {
    let rx = Receiver::new().await;
    let statsd = Arc::new(
        Statsd::connect(&rx.addr(), "gatekeeper", None)
            .await
            .unwrap(),
    );
    let env = env(statsd.clone()).await;

    // A token: requests and success.
    env.sched.add("t1", "web", FRESH, "192.0.2.10");
    assert_eq!(env.token(r#"{"task_id": "t1"}"#).await, StatusCode::OK);
    assert_eq!(
        rx.lines(2).await,
        ["gatekeeper.requests:1|c", "gatekeeper.success:1|c"]
    );

    // An unknown task and a body that is not JSON: denied.
    assert_eq!(
        env.token(r#"{"task_id": "nope"}"#).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        rx.lines(2).await,
        ["gatekeeper.denied:1|c", "gatekeeper.requests:1|c"]
    );
    assert_eq!(env.token("{not json").await, StatusCode::BAD_REQUEST);
    assert_eq!(
        rx.lines(2).await,
        ["gatekeeper.denied:1|c", "gatekeeper.requests:1|c"]
    );

    // The scheduler down: failed.
    *env.sched.down.lock().unwrap() = true;
    assert_eq!(
        env.token(r#"{"task_id": "t1"}"#).await,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        rx.lines(2).await,
        ["gatekeeper.failed:1|c", "gatekeeper.requests:1|c"]
    );
    // /status and /metrics agree with what was sent.
    assert_eq!(env.gk.stats.snapshot(), [4, 1, 2, 1]);

    // The gauges, every tick: unsealed and alone.
    let ticker = spawn_gauges(
        statsd.clone(),
        Arc::downgrade(&env.gk),
        None,
        Duration::from_millis(20),
    );
    assert_eq!(
        rx.lines(5).await,
        [
            "gatekeeper.in_service:1|g",
            "gatekeeper.peers:0|g",
            "gatekeeper.sealed:0|g",
            "gatekeeper.unsealed:1|g",
            "gatekeeper.unsealed_peers:0|g",
        ]
    );
    // Once sealed, a later tick says so (and that nothing serves).
    env.gk.seal();
    let wanted = ["gatekeeper.sealed:1|g", "gatekeeper.in_service:0|g"];
    let mut seen: Vec<String> = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !wanted.iter().all(|w| seen.iter().any(|s| s == w)) {
            seen.push(rx.line().await);
        }
    })
    .await
    .expect("no gauge said sealed after the seal");
    ticker.abort();
}

#[tokio::test]
async fn a_host_tag_in_the_influx_format_and_a_gone_server_fails_no_request() {
    let rx = Receiver::new().await;
    let tag = Some((TagFormat::Influx, "gk-host-1".to_string()));
    let statsd = Arc::new(Statsd::connect(&rx.addr(), "gk", tag).await.unwrap());
    let env = env(statsd).await;
    env.sched.add("t1", "web", FRESH, "192.0.2.10");
    assert_eq!(env.token(r#"{"task_id": "t1"}"#).await, StatusCode::OK);
    assert_eq!(
        rx.lines(2).await,
        [
            "gk.requests,host=gk-host-1:1|c",
            "gk.success,host=gk-host-1:1|c"
        ]
    );

    // The StatsD server goes away: requests are served all the same.
    drop(rx);
    for id in ["t2", "t3", "t4"] {
        env.sched.add(id, "web", FRESH, "192.0.2.10");
        let body = format!(r#"{{"task_id": "{id}"}}"#);
        assert_eq!(env.token(&body).await, StatusCode::OK);
    }
    assert_eq!(env.gk.stats.snapshot()[1], 4);
}

#[tokio::test]
async fn the_datadog_format_on_the_wire() {
    let rx = Receiver::new().await;
    let tag = Some((TagFormat::Datadog, "gk-host-2".to_string()));
    let statsd = Statsd::connect(&rx.addr(), "gatekeeper.", tag)
        .await
        .unwrap();
    statsd.count("requests", 1);
    statsd.gauge("peers", 2);
    assert_eq!(
        rx.lines(2).await,
        [
            "gatekeeper.peers:2|g|#host:gk-host-2",
            "gatekeeper.requests:1|c|#host:gk-host-2"
        ]
    );
}
