//! High availability end to end: two Gatekeeper instances serving real
//! HTTP on loopback, peers of each other, sharing the `vault` usage store
//! of one real dev Vault-API server, with a fake scheduler. Also the sweep
//! of expired usage entries.
#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::{config, DevVault, FakeScheduler};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use strongroom_gatekeeper::http::{router, AppState};
use strongroom_gatekeeper::peers::{self, Peers, PROXY_HEADER};
use strongroom_gatekeeper::service::{new_seal_state, Gatekeeper};
use strongroom_gatekeeper::unseal::UnsealMethod;
use strongroom_gatekeeper::usage::{
    Acquire, Sweep, TokenSource, UsageError, UsageStore, VaultStore,
};
use strongroom_gatekeeper::vault::{Token, VaultClient};
use strongroom_gatekeeper_scheduler::Scheduler;
use tower::ServiceExt;

const FRESH: Duration = Duration::from_secs(5);
const TASK_ADDR: &str = "192.0.2.10";
const STORE: &str = "secret/data/gk-store";

/// One Gatekeeper listening on loopback.
struct Instance {
    gk: Arc<Gatekeeper>,
    peers: Arc<Peers>,
    app: axum::Router,
    addr: SocketAddr,
}

impl Instance {
    /// A request through the router as if from `from` (no network).
    async fn send_from(
        &self,
        from: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = Request::post(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::from(body.to_string())).unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(
            from.parse::<IpAddr>().unwrap(),
            40000,
        )));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A real HTTP request from loopback (a peer address).
    async fn http(
        &self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = reqwest::Client::new().request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("http://{}{path}", self.addr),
        );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.body(body.to_string()).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    fn requests(&self) -> u64 {
        self.gk.stats.snapshot()[0]
    }

    async fn unseal(&self) {
        self.gk
            .unseal(&UnsealMethod::Token(Token::new("root")))
            .await
            .unwrap();
    }
}

/// Two instances, A and B, sealed, with host checks, whose `--peers`
/// names both of them.
async fn cluster(vault: &DevVault, sched: &Arc<FakeScheduler>) -> (Instance, Instance) {
    let la = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (aa, ab) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let spec = format!("http://{aa},{ab}");
    let mut out = Vec::new();
    for listener in [la, lb] {
        let client = VaultClient::new(&vault.addr, None, false, Duration::from_secs(10)).unwrap();
        let state = new_seal_state();
        let st = state.clone();
        let store = VaultStore::new(
            client.clone(),
            STORE,
            Arc::new(move || st.load().as_ref().map(|s| s.token.clone())),
        );
        let gk = Arc::new(Gatekeeper::new(
            config(true, "approle"),
            client,
            vec![sched.clone() as Arc<dyn Scheduler>],
            Arc::new(store),
            state,
        ));
        let http = peers::http_client(None, false, Duration::from_secs(10)).unwrap();
        let peers = Arc::new(
            Peers::new(
                peers::parse_peers(&spec, "https").unwrap(),
                gk.id.clone(),
                "test".into(),
                http,
            )
            // Deterministic tests: a failed forward always refreshes.
            .with_min_forced_refresh(Duration::ZERO),
        );
        let app = router(AppState {
            gk: gk.clone(),
            trusted_proxies: Arc::new(vec![]),
            version: "test".into(),
            peers: Some(peers.clone()),
        });
        let addr = listener.local_addr().unwrap();
        let svc = app
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, svc).await });
        out.push(Instance {
            gk,
            peers,
            app,
            addr,
        });
    }
    let b = out.pop().unwrap();
    let a = out.pop().unwrap();
    (a, b)
}

async fn setup() -> (DevVault, Arc<FakeScheduler>, Instance, Instance) {
    let vault = DevVault::start().await;
    vault.prepare().await;
    let sched = Arc::new(FakeScheduler::default());
    for t in ["t1", "t2", "t3"] {
        sched.add(t, "web", FRESH, TASK_ADDR);
    }
    let (a, b) = cluster(&vault, &sched).await;
    (vault, sched, a, b)
}

async fn unwrap(vault: &DevVault, wrapping: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/sys/wrapping/unwrap", vault.addr))
        .header("X-Vault-Token", wrapping)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_sealed_instance_forwards_token_requests_with_their_body() {
    let (vault, _sched, a, b) = setup().await;
    b.unseal().await;
    a.peers.refresh().await;
    b.peers.refresh().await;

    // Each finds the other, by DNS on the flag's hosts, and not itself.
    let listed = a.peers.list();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, b.gk.id);
    assert_eq!(listed[0].address, format!("http://{}/", b.addr));
    assert!(listed[0].unsealed);
    let listed = b.peers.list();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, a.gk.id);
    assert!(!listed[0].unsealed);
    let (s, status) = a.http("GET", "/status", "", &[]).await;
    assert_eq!(s, 503);
    assert_eq!(
        status["peers"],
        json!([{"id": b.gk.id, "address": format!("http://{}/", b.addr), "unsealed": true, "version": "test"}])
    );

    // The task asks sealed A; B serves it with the same body (the role
    // asked for is honoured) and sees the task's address (host check).
    let (s, v) = a
        .send_from(
            TASK_ADDR,
            "/token",
            r#"{"task_id":"t1","role":"other"}"#,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let unwrapped = unwrap(&vault, v["token"].as_str().unwrap()).await;
    let policies = unwrapped["auth"]["policies"].as_array().unwrap();
    assert!(policies.contains(&json!("p-other")), "{unwrapped}");
    assert_eq!((a.requests(), b.requests()), (0, 1));

    // From elsewhere than the task: B sees that address and refuses.
    let (s, v) = a
        .send_from("198.51.100.7", "/token", r#"{"task_id":"t2"}"#, &[])
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");

    // X-Forwarded-For is believed only with the proxy header and only from
    // a peer address (loopback here).
    let xff = ("x-forwarded-for", TASK_ADDR);
    let (s, _) = b
        .http("POST", "/token", r#"{"task_id":"t2"}"#, &[xff])
        .await;
    assert_eq!(s, 401);
    let (s, _) = b
        .send_from(
            "198.51.100.7",
            "/token",
            r#"{"task_id":"t2"}"#,
            &[xff, (PROXY_HEADER, "someone")],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = b
        .http(
            "POST",
            "/token",
            r#"{"task_id":"t2"}"#,
            &[xff, (PROXY_HEADER, "a")],
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // Both unsealed: each serves its callers, and the use counts are
    // shared through the vault usage store.
    a.unseal().await;
    let (s, v) = a
        .send_from(TASK_ADDR, "/token", r#"{"task_id":"t3"}"#, &[])
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = b
        .send_from(TASK_ADDR, "/token", r#"{"task_id":"t3"}"#, &[])
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
}

#[tokio::test]
async fn a_forwarded_request_is_not_forwarded_again() {
    let (_vault, _sched, a, b) = setup().await;
    a.unseal().await;
    b.unseal().await;
    a.peers.refresh().await;
    b.peers.refresh().await;
    assert!(a.peers.list()[0].unsealed && b.peers.list()[0].unsealed);
    // Both sealed, each still believing the other unsealed.
    a.gk.seal();
    b.gk.seal();

    let (s, v) = a
        .send_from(TASK_ADDR, "/token", r#"{"task_id":"t1"}"#, &[])
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["unsealed"], false);
    // B answered the forwarded request itself (sealed) without sending it
    // back; A, finding no unsealed peer, refreshed and answered itself.
    assert_eq!((a.requests(), b.requests()), (1, 1));
    assert!(!a.peers.list()[0].unsealed);

    // A request already marked as forwarded is not forwarded by a sealed
    // instance, even to a peer it believes unsealed.
    b.unseal().await;
    a.peers.refresh().await;
    let (s, _) = a
        .send_from(
            TASK_ADDR,
            "/token",
            r#"{"task_id":"t1"}"#,
            &[(PROXY_HEADER, "x")],
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!((a.requests(), b.requests()), (2, 1));
}

#[tokio::test]
async fn policy_reloads_fan_out_to_unsealed_peers() {
    let (vault, _sched, a, b) = setup().await;
    a.unseal().await;
    b.unseal().await;
    a.peers.refresh().await;
    b.peers.refresh().await;
    vault
        .put_policy(json!({"mesos:marathon:*": {"roles": ["other"], "num_uses": 1}}))
        .await;

    // Without the admin credential nothing is reloaded anywhere.
    let (s, _) = a.send_from(TASK_ADDR, "/policies/reload", "", &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = b
        .send_from(TASK_ADDR, "/token", r#"{"task_id":"t1","role":"api"}"#, &[])
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let (s, v) = a
        .send_from(
            TASK_ADDR,
            "/policies/reload",
            "",
            &[("x-vault-token", "root")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["peers_reloaded"], 1, "{v}");
    assert_eq!(v["peers_asked"], 1, "{v}");
    assert!(v["message"].as_str().unwrap().contains("1 of 1"), "{v}");
    // B reloaded too: the role is no longer allowed there.
    let (s, v) = b
        .send_from(TASK_ADDR, "/token", r#"{"task_id":"t2","role":"api"}"#, &[])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // A reload a peer forwarded is done locally only.
    let (s, v) = b
        .http(
            "POST",
            "/policies/reload",
            "",
            &[("x-vault-token", "root"), (PROXY_HEADER, "a")],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("peers_reloaded").is_none(), "{v}");
    // And the peer's credential is still checked.
    let (s, _) = b
        .http("POST", "/policies/reload", "", &[(PROXY_HEADER, "a")])
        .await;
    assert_eq!(s, 401);
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn expired_usage_entries_are_swept_in_bounded_batches() {
    let vault = DevVault::start().await;
    let client = VaultClient::new(&vault.addr, None, false, Duration::from_secs(10)).unwrap();
    let token = Arc::new(Token::new("root"));
    let src: TokenSource = Arc::new(move || Some(token.clone()));
    let store = VaultStore::new(client.clone(), "secret/data/gk-sweep", src);
    let put = |key: &str, data: Value| {
        let path = format!("secret/data/gk-sweep/{key}");
        let vault = &vault;
        async move { vault.ok("POST", &path, json!({ "data": data })).await }
    };
    let long_ago = unix_now() - 3600;
    for k in ["mesos:old1", "mesos:old2", "mesos:old3"] {
        put(k, json!({"uses": 1, "expires": long_ago})).await;
    }
    // Within the clock-skew slack: kept for now.
    put("mesos:just", json!({"uses": 1, "expires": unix_now() - 5})).await;
    // Not Gatekeeper's, and a folder: left alone.
    put("notours", json!({"foo": "bar"})).await;
    put("sub/mesos:x", json!({"uses": 1, "expires": long_ago})).await;
    assert_eq!(
        store
            .acquire("mesos:live", 1, Duration::from_secs(180))
            .await
            .unwrap(),
        Acquire::Granted
    );

    // Six entries, two per sweep: three sweeps look at every one.
    let mut total = Sweep::default();
    for _ in 0..3 {
        let s = store.sweep(2).await.unwrap();
        assert_eq!(s.examined, 2);
        total.deleted += s.deleted;
    }
    assert_eq!(total.deleted, 3);
    let (_, list) = vault
        .call("LIST", "secret/metadata/gk-sweep", json!({}))
        .await;
    assert_eq!(
        list["data"]["keys"],
        json!(["mesos:just", "mesos:live", "notours", "sub/"])
    );
    // The live count is intact; a swept task starts afresh.
    assert_eq!(
        store
            .acquire("mesos:live", 1, Duration::from_secs(180))
            .await
            .unwrap(),
        Acquire::LimitReached
    );
    assert_eq!(store.sweep(10).await.unwrap().deleted, 0);

    // Sealed: no sweep.
    let sealed = VaultStore::new(client, "secret/data/gk-sweep", Arc::new(|| None));
    assert!(matches!(sealed.sweep(10).await, Err(UsageError::Sealed)));
}
