//! What the integration tests share: a fake scheduler, a dev Vault-API
//! server (the Strongroom dev server from `target/debug/strongroom`, or
//! `bao server -dev`) and Gatekeeper's settings.
#![allow(dead_code)] // Each test binary uses a part.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use strongroom_gatekeeper::service::Config;
use strongroom_gatekeeper::unseal::UnsealConfig;
use strongroom_gatekeeper_scheduler::{Scheduler, SchedulerError, Task};

/// A scheduler whose tasks the test sets.
#[derive(Default)]
pub struct FakeScheduler {
    /// The tasks by id.
    pub tasks: Mutex<HashMap<String, Task>>,
    /// Answer every lookup with "unavailable".
    pub down: Mutex<bool>,
}

#[async_trait::async_trait]
impl Scheduler for FakeScheduler {
    fn name(&self) -> &str {
        "mesos"
    }
    async fn lookup(&self, task_id: &str) -> Result<Task, SchedulerError> {
        if *self.down.lock().unwrap() {
            return Err(SchedulerError::Unavailable("connection refused".into()));
        }
        self.tasks
            .lock()
            .unwrap()
            .get(task_id)
            .cloned()
            .ok_or_else(|| SchedulerError::NotFound(task_id.into()))
    }
}

impl FakeScheduler {
    /// Adds a task started `age` ago at `addr`.
    pub fn add(&self, id: &str, name: &str, age: Duration, addr: &str) {
        self.tasks.lock().unwrap().insert(
            id.into(),
            Task {
                id: id.into(),
                name: name.into(),
                group: Some("marathon".into()),
                image: None,
                started: SystemTime::now() - age,
                addresses: vec![addr.parse().unwrap()],
            },
        );
    }
}

/// A dev Vault-API server, killed on drop.
pub struct DevVault {
    _child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub addr: String,
}

/// A port nobody listens on (now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Strongroom binary, if built.
pub fn strongroom_bin() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("STRONGROOM_BIN") {
        return Some(p.into());
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let p = target.join("debug/strongroom");
    p.exists().then_some(p)
}

impl DevVault {
    /// Starts one and waits until it answers.
    pub async fn start() -> DevVault {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = if let Some(bin) = strongroom_bin() {
            let mut c = tokio::process::Command::new(bin);
            c.args([
                "server",
                "-dev",
                // Never touch the user's ~/.vault-token.
                "-dev-no-store-token",
                "-dev-root-token-id",
                "root",
                "-dev-listen-address",
                &listen,
            ]);
            c
        } else {
            let mut c = tokio::process::Command::new("bao");
            c.args([
                "server",
                "-dev",
                "-dev-no-store-token",
                "-dev-root-token-id=root",
                &format!("-dev-listen-address={listen}"),
            ]);
            c
        };
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "a Vault-API server: build it with `cargo build -p strongroom` (or install bao)",
            );
        let addr = format!("http://{listen}");
        let http = reqwest::Client::new();
        // Readiness poll: the server answers health once it listens.
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("{addr}/v1/sys/health")).send().await {
                if r.status().is_success() {
                    return DevVault {
                        _child: child,
                        addr,
                    };
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the dev server at {addr} did not come up");
    }

    /// One call with the root token.
    pub async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/v1/{path}", self.addr),
            )
            .header("X-Vault-Token", "root")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v = r.json().await.unwrap_or(Value::Null);
        (status, v)
    }

    /// One call that must succeed.
    pub async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (s, v) = self.call(method, path, body).await;
        assert!(s < 300, "{method} {path}: {s} {v}");
        v
    }

    /// Replaces the Gatekeeper policies at `secret/data/gatekeeper`.
    pub async fn put_policy(&self, policy: Value) {
        self.ok("POST", "secret/data/gatekeeper", json!({ "data": policy }))
            .await;
    }

    /// AppRole at `approle`, roles `api` (policy p-api) and `other`
    /// (p-other), and the policy `mesos:marathon:*` -> `api`, `other`
    /// with one use.
    pub async fn prepare(&self) {
        self.ok("POST", "sys/auth/approle", json!({"type": "approle"}))
            .await;
        for (role, pol) in [("api", "p-api"), ("other", "p-other")] {
            self.ok(
                "POST",
                &format!("auth/approle/role/{role}"),
                json!({"token_policies": [pol], "secret_id_num_uses": 1}),
            )
            .await;
        }
        self.put_policy(json!({"mesos:marathon:*": {"roles": ["api", "other"], "num_uses": 1}}))
            .await;
    }
}

/// The service settings the tests run with.
pub fn config(default_host_check: bool, approle_mount: &str) -> Config {
    Config {
        default_scheduler: "mesos".into(),
        task_grace: Duration::from_secs(120),
        host_check: default_host_check,
        use_image_name: false,
        policy_path: "secret/data/gatekeeper".into(),
        kv_version: 2,
        approle_mount: approle_mount.into(),
        wrap_ttl: Duration::from_secs(300),
        unseal: UnsealConfig {
            approle_mount: approle_mount.into(),
            aws_mount: "aws".into(),
            github_mount: "github".into(),
            aws_metadata_addr: "http://127.0.0.1:9".into(),
        },
        admin_path: "gatekeeper/admin".into(),
        admin_open: false,
    }
}
