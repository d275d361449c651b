//! Gatekeeper's HTTP API end to end: the router (driven with `oneshot`),
//! a fake scheduler, and a real Vault-API server (the Strongroom dev
//! server from `target/debug/strongroom`, or `bao server -dev`), set up
//! over HTTP with AppRole roles and KV policies.
#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use common::{config, DevVault, FakeScheduler};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use strongroom_gatekeeper::http::{router, AppState};
use strongroom_gatekeeper::service::{new_seal_state, Gatekeeper};
use strongroom_gatekeeper::unseal::UnsealMethod;
use strongroom_gatekeeper::usage::{Acquire, MemoryStore, UsageError, UsageStore, VaultStore};
use strongroom_gatekeeper::vault::{Token, VaultClient};
use strongroom_gatekeeper_scheduler::Scheduler;
use tower::ServiceExt;

struct Env {
    vault: DevVault,
    sched: Arc<FakeScheduler>,
    gk: Arc<Gatekeeper>,
    app: axum::Router,
}

impl Env {
    /// A dev server with AppRole at `approle`, roles `api` (policy p-api)
    /// and `other` (p-other), and the policy `mesos:marathon:*` -> `api`.
    async fn new(host_check: bool, unseal: bool) -> Env {
        let vault = DevVault::start().await;
        vault.prepare().await;
        let client = VaultClient::new(&vault.addr, None, false, Duration::from_secs(10)).unwrap();
        let sched = Arc::new(FakeScheduler::default());
        let gk = Arc::new(Gatekeeper::new(
            config(host_check, "approle"),
            client,
            vec![sched.clone() as Arc<dyn Scheduler>],
            Arc::new(MemoryStore::new()),
            new_seal_state(),
        ));
        if unseal {
            gk.unseal(&UnsealMethod::Token(Token::new("root")))
                .await
                .unwrap();
        }
        let app = router(AppState {
            gk: gk.clone(),
            trusted_proxies: Arc::new(vec![]),
            version: "test".into(),
            peers: None,
        });
        Env {
            vault,
            sched,
            gk,
            app,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::from(body.to_string())).unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(
            "192.0.2.10".parse::<IpAddr>().unwrap(),
            40000,
        )));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }

    async fn token(&self, body: Value) -> (StatusCode, Value) {
        self.send("POST", "/token", &body.to_string(), &[]).await
    }

    /// Unwraps a wrapping token at the dev server.
    async fn unwrap(&self, wrapping: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/sys/wrapping/unwrap", self.vault.addr))
            .header("X-Vault-Token", wrapping)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

const FRESH: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_fresh_task_gets_a_wrapped_token_once() {
    let env = Env::new(false, true).await;
    env.sched.add("t1", "web", FRESH, "192.0.2.10");
    let (s, v) = env.token(json!({"task_id": "t1"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["unsealed"], true);
    assert_eq!(v["ttl"], "5m0s");
    assert_eq!(v["vault_addr"], format!("{}/", env.vault.addr));
    assert!(!v["accessor"].as_str().unwrap().is_empty());
    let wrapping = v["token"].as_str().unwrap().to_string();

    // It unwraps once, to a token with the first role's policies.
    let (s, unwrapped) = env.unwrap(&wrapping).await;
    assert_eq!(s, 200, "{unwrapped}");
    let policies = unwrapped["auth"]["policies"].as_array().unwrap();
    assert!(policies.contains(&json!("p-api")), "{unwrapped}");
    assert_ne!(env.unwrap(&wrapping).await.0, 200);

    // num_uses is 1: the second request is refused.
    let (s, v) = env.token(json!({"task_id": "t1"})).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(v["error"].as_str().unwrap().contains("Maximum number"));

    // A requested role among the allowed ones is honoured.
    env.sched.add("t2", "web", FRESH, "192.0.2.10");
    let (s, v) = env
        .token(json!({"task_id": "t2", "role": "other", "scheduler": "mesos"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, unwrapped) = env.unwrap(v["token"].as_str().unwrap()).await;
    assert!(unwrapped["auth"]["policies"]
        .as_array()
        .unwrap()
        .contains(&json!("p-other")));

    let (s, status) = env.send("GET", "/status", "", &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(status["unsealed"], true);
    assert_eq!(
        status["stats"],
        json!({"requests": 3, "successful": 2, "denied": 1, "failed": 0})
    );
    let (s, metrics) = env.send("GET", "/metrics", "", &[]).await;
    assert_eq!(s, StatusCode::OK);
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("gatekeeper_token_successful_total 2"),
        "{text}"
    );
    assert!(text.contains("gatekeeper_token_request_duration_seconds_count{scheduler=\"mesos\"} 3"));
}

#[tokio::test]
async fn refusals_have_their_statuses() {
    let env = Env::new(false, true).await;
    env.sched
        .add("old", "web", Duration::from_secs(600), "192.0.2.10");
    env.sched.add("fresh", "web", FRESH, "192.0.2.10");
    let (s, _) = env.token(json!({"task_id": "old"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = env.token(json!({"task_id": "nobody"})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = env
        .token(json!({"task_id": "fresh", "role": "admin"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = env
        .token(json!({"task_id": "fresh", "scheduler": "ecs"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    for bad in [
        r#"{"task_id": 5}"#,
        r#"{}"#,
        "not json",
        r#"{"task_id": "fresh", "role": []}"#,
    ] {
        let (s, v) = env.send("POST", "/token", bad, &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    // None of these used the fresh task's one use.
    let (s, v) = env.token(json!({"task_id": "fresh"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // A task no policy matches: 403 (the original said 500).
    let mut other = env
        .sched
        .tasks
        .lock()
        .unwrap()
        .get("fresh")
        .cloned()
        .unwrap();
    other.id = "chronos-task".into();
    other.group = Some("chronos".into());
    env.sched
        .tasks
        .lock()
        .unwrap()
        .insert(other.id.clone(), other);
    let (s, v) = env.token(json!({"task_id": "chronos-task"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["error"].as_str().unwrap().contains("policy"));

    // The scheduler is down: 502 (503 means sealed), still unsealed.
    *env.sched.down.lock().unwrap() = true;
    let (s, v) = env.token(json!({"task_id": "fresh"})).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!(v["unsealed"], true);
    assert!(
        v["error"].as_str().unwrap().contains("connection refused"),
        "{v}"
    );
}

#[tokio::test]
async fn host_check_uses_the_callers_address() {
    let env = Env::new(true, true).await;
    env.sched.add("here", "web", FRESH, "192.0.2.10");
    env.sched.add("elsewhere", "web", FRESH, "198.51.100.1");
    let (s, _) = env.token(json!({"task_id": "elsewhere"})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // X-Forwarded-For from an untrusted peer is ignored.
    let (s, _) = env
        .send(
            "POST",
            "/token",
            r#"{"task_id": "elsewhere"}"#,
            &[("x-forwarded-for", "198.51.100.1")],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = env.token(json!({"task_id": "here"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn seal_needs_an_admin_token_and_stops_tokens() {
    let env = Env::new(false, true).await;
    env.sched.add("t", "web", FRESH, "192.0.2.10");
    let (s, _) = env.send("POST", "/seal", "", &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = env
        .send("POST", "/seal", "", &[("x-vault-token", "not-a-token")])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(env.gk.is_unsealed());
    // A token without update on the admin path is refused.
    env.vault
        .ok(
            "POST",
            "sys/policies/acl/reader",
            json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"}),
        )
        .await;
    let weak = env
        .vault
        .ok("POST", "auth/token/create", json!({"policies": ["reader"]}))
        .await;
    let weak = weak["auth"]["client_token"].as_str().unwrap().to_string();
    let (s, _) = env
        .send(
            "POST",
            "/seal",
            "",
            &[("authorization", &format!("Bearer {weak}"))],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Unsealing again while unsealed is an admin act too.
    let (s, _) = env
        .send(
            "POST",
            "/unseal",
            r#"{"method":"token","token":"root"}"#,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, v) = env
        .send("POST", "/seal", "", &[("x-vault-token", "root")])
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["unsealed"], false);
    let (s, v) = env.token(json!({"task_id": "t"})).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["unsealed"], false);
    let (s, _) = env.send("GET", "/", "", &[]).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    // Sealed: the use was not taken, so after unsealing the task is served.
    let (s, _) = env
        .send(
            "POST",
            "/unseal",
            r#"{"method":"token","token":"root"}"#,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = env.token(json!({"task_id": "t"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn unseal_methods_and_their_statuses() {
    let env = Env::new(false, false).await;
    let (s, _) = env.send("POST", "/unseal", "{nope", &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = env
        .send("POST", "/unseal", r#"{"method":"kerberos"}"#, &[])
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = env
        .send("POST", "/unseal", r#"{"method":"github"}"#, &[])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = env
        .send(
            "POST",
            "/unseal",
            r#"{"method":"token","token":"bogus"}"#,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(!env.gk.is_unsealed());

    // AppRole at a non-default mount: the configured mount is used.
    env.vault
        .ok("POST", "sys/auth/gkauth", json!({"type": "approle"}))
        .await;
    env.vault
        .ok(
            "POST",
            "sys/policies/acl/gatekeeper",
            json!({"policy": "path \"secret/*\" { capabilities = [\"read\", \"list\"] }"}),
        )
        .await;
    env.vault
        .ok(
            "POST",
            "auth/gkauth/role/gatekeeper",
            json!({"token_policies": ["gatekeeper"]}),
        )
        .await;
    let rid = env
        .vault
        .ok("GET", "auth/gkauth/role/gatekeeper/role-id", json!({}))
        .await;
    let sid = env
        .vault
        .ok("POST", "auth/gkauth/role/gatekeeper/secret-id", json!({}))
        .await;
    let client = VaultClient::new(&env.vault.addr, None, false, Duration::from_secs(10)).unwrap();
    let gk = Arc::new(Gatekeeper::new(
        config(false, "gkauth"),
        client,
        vec![env.sched.clone() as Arc<dyn Scheduler>],
        Arc::new(MemoryStore::new()),
        new_seal_state(),
    ));
    let app = router(AppState {
        gk: gk.clone(),
        trusted_proxies: Arc::new(vec![]),
        version: "test".into(),
        peers: None,
    });
    let body = json!({"method": "approle", "role_id": rid["data"]["role_id"], "secret_id": sid["data"]["secret_id"]});
    let resp = app
        .oneshot(
            Request::post("/unseal")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(gk.is_unsealed());

    // The wrapped-token method unwraps once.
    let wrapped = reqwest::Client::new()
        .post(format!("{}/v1/auth/token/create", env.vault.addr))
        .header("X-Vault-Token", "root")
        .header("X-Vault-Wrap-TTL", "60")
        .json(&json!({"policies": ["gatekeeper"]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let w = wrapped["wrap_info"]["token"].as_str().unwrap();
    let body = json!({"method": "token-wrapped", "token": w}).to_string();
    let (s, v) = env.send("POST", "/unseal", &body, &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn reload_picks_up_changes_and_refuses_bad_policies() {
    let env = Env::new(false, true).await;
    env.vault
        .put_policy(json!({"mesos:marathon:*": {"roles": ["other"], "num_uses": 1}}))
        .await;
    // Before the reload the old policy applies.
    env.sched.add("a", "web", FRESH, "192.0.2.10");
    let (s, _) = env.token(json!({"task_id": "a", "role": "api"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = env.send("POST", "/policies/reload", "", &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = env
        .send("POST", "/policies/reload", "", &[("x-vault-token", "root")])
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    env.sched.add("b", "web", FRESH, "192.0.2.10");
    let (s, _) = env.token(json!({"task_id": "b", "role": "api"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Nested folders are merged.
    env.vault
        .ok(
            "POST",
            "secret/data/gatekeeper/team/chronos",
            json!({"data": {"mesos:chronos:*": {"roles": ["api"], "num_uses": 1}}}),
        )
        .await;
    // A malformed policy anywhere is refused; the loaded ones stay.
    env.vault
        .ok(
            "POST",
            "secret/data/gatekeeper/zz-bad",
            json!({"data": {"mesos:": {"roles": ["api"], "num_uses": 1}}}),
        )
        .await;
    let (s, v) = env
        .send("POST", "/policies/reload", "", &[("x-vault-token", "root")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"].as_str().unwrap().contains("zz-bad"), "{v}");
    let (s, _) = env.token(json!({"task_id": "b"})).await;
    assert_eq!(s, StatusCode::OK);

    env.vault
        .ok("DELETE", "secret/metadata/gatekeeper/zz-bad", json!({}))
        .await;
    let (s, v) = env
        .send("POST", "/policies/reload", "", &[("x-vault-token", "root")])
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut t = env.sched.tasks.lock().unwrap().get("b").cloned().unwrap();
    t.id = "c".into();
    t.group = Some("chronos".into());
    env.sched.tasks.lock().unwrap().insert("c".into(), t);
    let (s, v) = env.token(json!({"task_id": "c"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_failed_login_gives_the_use_back() {
    let env = Env::new(false, true).await;
    env.vault
        .put_policy(json!({"mesos:marathon:*": {"roles": ["later"], "num_uses": 1}}))
        .await;
    env.gk.reload_policies().await.unwrap();
    env.sched.add("t", "web", FRESH, "192.0.2.10");
    // The role does not exist yet: refused, and no use is spent.
    let (s, v) = env.token(json!({"task_id": "t"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    env.vault
        .ok(
            "POST",
            "auth/approle/role/later",
            json!({"token_policies": ["p-later"]}),
        )
        .await;
    let (s, v) = env.token(json!({"task_id": "t"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = env.token(json!({"task_id": "t"})).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_vault_usage_store_is_shared_and_bounded() {
    let vault = DevVault::start().await;
    let client = VaultClient::new(&vault.addr, None, false, Duration::from_secs(10)).unwrap();
    let token = Arc::new(Token::new("root"));
    let src = {
        let t = token.clone();
        Arc::new(move || Some(t.clone())) as strongroom_gatekeeper::usage::TokenSource
    };
    // Two instances on one path share the counts.
    let a = VaultStore::new(client.clone(), "secret/data/gk-store", src.clone());
    let b = VaultStore::new(client.clone(), "secret/data/gk-store", src);
    let ttl = Duration::from_secs(180);
    assert_eq!(
        a.acquire("mesos:t/1", 2, ttl).await.unwrap(),
        Acquire::Granted
    );
    assert_eq!(
        b.acquire("mesos:t/1", 2, ttl).await.unwrap(),
        Acquire::Granted
    );
    assert_eq!(
        a.acquire("mesos:t/1", 2, ttl).await.unwrap(),
        Acquire::LimitReached
    );
    b.release("mesos:t/1").await.unwrap();
    assert_eq!(
        a.acquire("mesos:t/1", 2, ttl).await.unwrap(),
        Acquire::Granted
    );
    // One entry per task, in one path segment.
    let (_, list) = vault
        .call("LIST", "secret/metadata/gk-store", json!({}))
        .await;
    assert_eq!(list["data"]["keys"], json!(["mesos:t~2F1"]));

    // Concurrent acquisitions never exceed the limit.
    let store = Arc::new(a);
    let mut handles = Vec::new();
    for _ in 0..6 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            s.acquire("mesos:race", 3, ttl).await
        }));
    }
    let mut granted = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(Acquire::Granted) => granted += 1,
            Ok(Acquire::LimitReached) | Err(_) => {}
        }
    }
    assert!(granted <= 3, "granted {granted}");

    // Sealed: no token, a clear error.
    let sealed = VaultStore::new(client, "secret/data/gk-store", Arc::new(|| None));
    assert!(matches!(
        sealed.acquire("mesos:x", 1, ttl).await,
        Err(UsageError::Sealed)
    ));
}
