//! Helpers of the Gatekeeper end-to-end suite (`gatekeeper.rs` beside it).
//!
//! It owns: running `strongroom gatekeeper` as a real process on a free
//! loopback port ([`GatekeeperProc`]: started from an empty environment plus
//! the given flags and variables, ready once `/status` answers, its output
//! captured, killed on drop); the scheduler emulators behind one small
//! interface ([`Emulator`]: tasks with an age and an address, failure
//! modes); and the setup of a Vault-API server for Gatekeeper
//! ([`setup_vault`]): AppRole at a chosen mount with the tasks' roles, the
//! policies in KV v1 or v2, a narrow ACL policy for Gatekeeper's own token
//! ([`gatekeeper_acl`]), an admin token, and an AppRole credential for
//! Gatekeeper itself.
// Each helper is used by some tests only.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use strongroom_gatekeeper_scheduler::emulator::{
    EcsEmulator, EmulatedAllocation, EmulatedEcsTask, EmulatedMesosTask, EmulatedNode,
    EmulatedNomadTask, EmulatedPod, KubernetesEmulator, MesosEmulator, Mode, NomadEmulator,
    ECS_ACCESS_KEY_ID, ECS_REGION, ECS_SECRET_ACCESS_KEY, KUBERNETES_TOKEN,
};

use strongroom_test::server;
use strongroom_test::server::{free_port, Call, Kind, Reply, Server};

/// How long Gatekeeper may take to answer `/status` after its start.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The address tasks "run" at unless a test says otherwise: where the
/// test's requests come from, so the host check passes.
pub const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An address no request of the test comes from.
pub const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 9, 8, 7));

/// Older than the default `task-grace` (2m).
pub const OLD: Duration = Duration::from_secs(600);

/// Just started.
pub const FRESH: Duration = Duration::ZERO;

/// The admin path Gatekeeper checks (`--admin-path`, default).
pub const ADMIN_PATH: &str = "gatekeeper/admin";

/// A scheduler Gatekeeper can ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sched {
    /// Mesos masters.
    Mesos,
    /// The Kubernetes pods API.
    Kubernetes,
    /// The Nomad allocations API.
    Nomad,
    /// The ECS API (`DescribeTasks`).
    Ecs,
}

impl Sched {
    /// The name in `--schedulers`, requests and policy keys.
    pub fn name(self) -> &'static str {
        match self {
            Sched::Mesos => "mesos",
            Sched::Kubernetes => "kubernetes",
            Sched::Nomad => "nomad",
            Sched::Ecs => "ecs",
        }
    }

    /// The policy key (a prefix key) every task [`Emulator::add_task`]
    /// creates matches: `mesos:<framework>:<name>`,
    /// `kubernetes:<namespace>/<pod>`, `nomad:<job>/<group>/<task>`,
    /// `ecs:<task-definition family>`.
    pub fn policy_key(self) -> &'static str {
        match self {
            Sched::Mesos => "mesos:marathon:web*",
            Sched::Kubernetes => "kubernetes:team/web-*",
            Sched::Nomad => "nomad:web/*",
            Sched::Ecs => "ecs:web*",
        }
    }
}

/// A unique number in this test process.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A UUID-shaped unique id (Nomad and Kubernetes ids are UUIDs).
pub fn uuid_like() -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        std::process::id(),
        next_id()
    )
}

/// One emulated scheduler, served from this test process.
pub enum Emulator {
    /// Two Mesos masters.
    Mesos(MesosEmulator),
    /// A Kubernetes API server and the token file Gatekeeper reads.
    Kubernetes(KubernetesEmulator, tempfile::NamedTempFile),
    /// A Nomad agent.
    Nomad(NomadEmulator),
    /// The ECS API and agent (see [`ecs_env`] for the credentials).
    Ecs(EcsEmulator),
}

impl Emulator {
    /// Starts the emulator of `sched`.
    pub async fn start(sched: Sched) -> Emulator {
        match sched {
            Sched::Mesos => Emulator::Mesos(MesosEmulator::start().await),
            Sched::Kubernetes => {
                let file = tempfile::NamedTempFile::new().expect("token file");
                std::fs::write(file.path(), KUBERNETES_TOKEN).expect("write token file");
                Emulator::Kubernetes(KubernetesEmulator::start().await, file)
            }
            Sched::Nomad => Emulator::Nomad(NomadEmulator::start().await),
            Sched::Ecs => Emulator::Ecs(EcsEmulator::start().await),
        }
    }

    /// Which scheduler it emulates.
    pub fn sched(&self) -> Sched {
        match self {
            Emulator::Mesos(_) => Sched::Mesos,
            Emulator::Kubernetes(..) => Sched::Kubernetes,
            Emulator::Nomad(_) => Sched::Nomad,
            Emulator::Ecs(_) => Sched::Ecs,
        }
    }

    /// The Gatekeeper flags pointing at it (ECS: the API and the agent,
    /// which names the cluster; the region and keys are [`ecs_env`]).
    pub fn flags(&self) -> Vec<String> {
        match self {
            Emulator::Mesos(m) => vec!["--mesos-master".into(), m.url.clone()],
            Emulator::Kubernetes(k, file) => vec![
                "--kubernetes-api".into(),
                k.url.clone(),
                "--kubernetes-token-file".into(),
                file.path().display().to_string(),
            ],
            Emulator::Nomad(n) => vec!["--nomad-addr".into(), n.url.clone()],
            Emulator::Ecs(e) => vec![
                "--ecs-endpoint".into(),
                e.url.clone(),
                "--ecs-agent-addr".into(),
                e.url.clone(),
            ],
        }
    }

    /// Adds a running task started `age` ago whose requests come from
    /// `ip` (Mesos: the agent; Kubernetes: pod and host IP; Nomad: the
    /// node; ECS: the awsvpc interface), matching [`Sched::policy_key`].
    /// Answers its task id.
    pub fn add_task(&self, age: Duration, ip: IpAddr) -> String {
        let started = SystemTime::now() - age;
        match self {
            Emulator::Mesos(m) => {
                let id = format!("web.{}-{}", std::process::id(), next_id());
                let mut t = EmulatedMesosTask::running(&id, "marathon", "web");
                t.started = started;
                t.agent_ip = ip;
                m.add_task(t);
                id
            }
            Emulator::Kubernetes(k, _) => {
                let uid = uuid_like();
                let mut p = EmulatedPod::running(&uid, "team", &format!("web-{}", next_id()));
                p.started = started;
                p.pod_ip = ip;
                p.host_ip = ip;
                k.add_pod(p);
                uid
            }
            Emulator::Nomad(n) => {
                let node = uuid_like();
                n.add_node(EmulatedNode::new(&node, ip));
                let alloc = uuid_like();
                let mut task = EmulatedNomadTask::running("app", None);
                task.started = started;
                n.add_allocation(EmulatedAllocation::running(
                    &alloc,
                    "web",
                    "g",
                    &node,
                    vec![task],
                ));
                format!("{alloc}/app")
            }
            Emulator::Ecs(e) => {
                let id = ecs_task_id();
                e.add_task(EmulatedEcsTask {
                    started: Some(started),
                    eni_ip: Some(ip),
                    ..EmulatedEcsTask::running(&id, "web")
                });
                id
            }
        }
    }

    /// A task id of the right shape that the scheduler does not know.
    pub fn unknown_task(&self) -> String {
        match self {
            Emulator::Mesos(_) => format!("web.unknown-{}", next_id()),
            Emulator::Kubernetes(..) => uuid_like(),
            Emulator::Nomad(_) => format!("{}/app", uuid_like()),
            Emulator::Ecs(_) => ecs_task_id(),
        }
    }

    /// Switches every server of the emulator into `mode`.
    pub fn set_mode(&self, mode: Mode) {
        match self {
            Emulator::Mesos(m) => {
                m.set_mode(0, mode);
                m.set_mode(1, mode);
            }
            Emulator::Kubernetes(k, _) => k.set_mode(mode),
            Emulator::Nomad(n) => n.set_mode(mode),
            Emulator::Ecs(e) => e.set_mode(mode),
        }
    }
}

/// Lines a process printed, stdout and stderr, in arrival order.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    /// Everything so far.
    pub fn text(&self) -> String {
        self.0.lock().map(|v| v.join("\n")).unwrap_or_default()
    }

    fn follow(&self, pipe: Box<dyn Read + Send>) {
        let out = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut v) = out.0.lock() {
                    v.push(line);
                }
            }
        });
    }
}

/// A `strongroom gatekeeper` process, killed when dropped.
pub struct GatekeeperProc {
    /// `http://<loopback address>:PORT`.
    pub url: String,
    /// What it printed.
    pub output: Captured,
    child: Option<Child>,
    http: reqwest::Client,
}

/// A Gatekeeper answer: status and JSON body (a JSON string holding the
/// text when the body is not JSON).
pub type Answer = (u16, Value);

impl GatekeeperProc {
    /// Starts `strongroom gatekeeper --listen-addr 127.0.0.1:<free> args`
    /// with only `env` in its environment, and waits until `/status`
    /// answers (200 or 503).
    pub async fn start(args: &[String], env: &[(&str, &str)]) -> GatekeeperProc {
        let mut last = String::new();
        for _ in 0..5 {
            match GatekeeperProc::try_start(free_port(), args, env).await {
                Ok(gk) => return gk,
                Err(text) if text.to_lowercase().contains("already in use") => last = text,
                Err(text) => panic!("strongroom gatekeeper {args:?} did not start:\n{text}"),
            }
        }
        panic!("strongroom gatekeeper could not get a port: {last}");
    }

    /// As [`GatekeeperProc::start`] on a given port (for `--peers`, which
    /// names the ports before the instances run).
    pub async fn start_on(port: u16, args: &[String], env: &[(&str, &str)]) -> GatekeeperProc {
        GatekeeperProc::start_at("127.0.0.1", port, args, env).await
    }

    /// As [`GatekeeperProc::start_on`] on a given loopback address (for
    /// `--peers` in the original's one-port form: every instance on the
    /// same port, each on its own address).
    pub async fn start_at(
        host: &str,
        port: u16,
        args: &[String],
        env: &[(&str, &str)],
    ) -> GatekeeperProc {
        GatekeeperProc::try_start_at(host, port, args, env)
            .await
            .unwrap_or_else(|text| panic!("strongroom gatekeeper {args:?} did not start:\n{text}"))
    }

    async fn try_start(
        port: u16,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<GatekeeperProc, String> {
        GatekeeperProc::try_start_at("127.0.0.1", port, args, env).await
    }

    async fn try_start_at(
        host: &str,
        port: u16,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<GatekeeperProc, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        let mut child = Command::new(env!("CARGO_BIN_EXE_strongroom"))
            .arg("gatekeeper")
            .arg("--listen-addr")
            .arg(format!("{host}:{port}"))
            .args(args)
            // Every flag is also a variable: nothing of the test's
            // environment may leak in.
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run strongroom gatekeeper");
        let output = Captured::default();
        output.follow(Box::new(child.stdout.take().expect("piped stdout")));
        output.follow(Box::new(child.stderr.take().expect("piped stderr")));
        let mut gk = GatekeeperProc {
            url: format!("http://{host}:{port}"),
            output,
            child: Some(child),
            http,
        };
        gk.wait_ready().await.map(|()| gk)
    }

    /// Polls `/status` until it answers, the process exits, or
    /// [`READY_TIMEOUT`] passes.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(r) = self.http.get(format!("{}/status", self.url)).send().await {
                if matches!(r.status().as_u16(), 200 | 503) {
                    return Ok(());
                }
            }
            let exited = self
                .child
                .as_mut()
                .map(|c| c.try_wait().ok().flatten().is_some())
                .unwrap_or(true);
            if exited {
                self.kill();
                return Err(format!("exited; output:\n{}", self.output.text()));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "/status did not answer within {READY_TIMEOUT:?}; output:\n{}",
                    self.output.text()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.output.text()
    }

    /// `method path` with a raw `body` and `headers`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("gatekeeper {path}: {e}\n{}", self.output()));
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("gatekeeper body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    /// `POST /token` with a JSON body.
    pub async fn token(&self, body: Value) -> Answer {
        self.send("POST", "/token", Some(&body.to_string()), &[])
            .await
    }

    /// `POST /token` for `task_id` at `sched`.
    pub async fn token_for(&self, sched: Sched, task_id: &str) -> Answer {
        self.token(json!({"task_id": task_id, "scheduler": sched.name()}))
            .await
    }

    /// `GET /status`.
    pub async fn status(&self) -> Answer {
        self.send("GET", "/status", None, &[]).await
    }

    /// `POST path` (an admin endpoint) with `token` in `X-Vault-Token`.
    pub async fn admin(&self, path: &str, token: Option<&str>) -> Answer {
        match token {
            Some(t) => self.send("POST", path, None, &[("X-Vault-Token", t)]).await,
            None => self.send("POST", path, None, &[]).await,
        }
    }

    /// `POST /unseal` with a JSON body (no admin token).
    pub async fn unseal(&self, body: Value) -> Answer {
        self.send("POST", "/unseal", Some(&body.to_string()), &[])
            .await
    }
}

impl Drop for GatekeeperProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Vault-API server prepared for Gatekeeper by [`setup_vault`].
#[derive(Debug, Clone)]
pub struct VaultSetup {
    /// `http://127.0.0.1:PORT` of the server.
    pub addr: String,
    /// Where AppRole is mounted (`--vault-approle-mount`).
    pub approle_mount: String,
    /// KV version at the policy path (`--vault-kv-version`).
    pub kv_version: u8,
    /// `--policy-path`.
    pub policy_path: String,
    /// Gatekeeper's own token, with only [`gatekeeper_acl`] (and `default`).
    pub gk_token: String,
    /// A token with `update` on [`ADMIN_PATH`] and nothing else.
    pub admin_token: String,
    /// The role id of Gatekeeper's own AppRole role (`gatekeeper`).
    pub gk_role_id: String,
    /// A secret id of that role.
    pub gk_secret_id: String,
}

/// The ACL policy Gatekeeper's token needs, and nothing more:
///
/// - the tasks' roles at the AppRole mount: read a role's `role-id` and
///   create a `secret-id` (the login itself needs no token);
/// - the policies: read every secret at and below the policy path and list
///   its folders. KV v2 reads below `data/` and lists below `metadata/`.
///   KV v1 reads and lists the same paths, and the exact policy path needs
///   `list` too: for `LIST <path>/` OpenBao applies the exact rule of
///   `<path>` (without the slash) before any `<path>/*` glob;
/// - the `vault` usage store: create, read and update one KV v2 entry per
///   task below `secret/data/gatekeeper-store`.
///
/// The `default` policy covers the rest: `auth/token/lookup-self` (the
/// `token` unseal) and `auth/token/renew-self` (renewal). The admin check
/// (`sys/capabilities-self`) is made with the caller's token, not this one.
pub fn gatekeeper_acl(approle_mount: &str, policy_path: &str, kv_version: u8) -> String {
    let policies = if kv_version == 2 {
        let list = policy_path.replacen("/data/", "/metadata/", 1);
        format!(
            r#"
path "{policy_path}" {{
  capabilities = ["read"]
}}
path "{policy_path}/*" {{
  capabilities = ["read"]
}}
path "{list}/*" {{
  capabilities = ["list"]
}}
"#
        )
    } else {
        format!(
            r#"
path "{policy_path}" {{
  capabilities = ["read", "list"]
}}
path "{policy_path}/*" {{
  capabilities = ["read", "list"]
}}
"#
        )
    };
    format!(
        r#"
path "auth/{approle_mount}/role/+/role-id" {{
  capabilities = ["read"]
}}
path "auth/{approle_mount}/role/+/secret-id" {{
  capabilities = ["create", "update"]
}}
{policies}
path "secret/data/gatekeeper-store/*" {{
  capabilities = ["create", "read", "update"]
}}
"#
    )
}

/// Sends `call` and asserts a 2xx answer.
pub async fn ok(server: &Server, call: Call) -> Reply {
    let what = call.describe();
    let r = server.send(&call).await;
    assert!(
        (200..300).contains(&r.status),
        "{} {what}: {} {}",
        server.kind.label(),
        r.status,
        r.body
    );
    r
}

/// Prepares `server` (root token) for Gatekeeper: AppRole at
/// `approle_mount` with roles `api` (token policy `p-api`), `other`
/// (`p-other`) and `gatekeeper` (Gatekeeper's own, policy `gatekeeper`);
/// the policies at `secret/data/gatekeeper` (KV v2) or `kv1/gatekeeper`
/// (a KV v1 mount); the ACL policies `gatekeeper` ([`gatekeeper_acl`]) and
/// `gk-admin`; tokens for both. No Gatekeeper policy is written yet.
pub async fn setup_vault(server: &Server, approle_mount: &str, kv_version: u8) -> VaultSetup {
    ok(
        server,
        Call::post(
            &format!("sys/auth/{approle_mount}"),
            json!({"type": "approle"}),
        ),
    )
    .await;
    let policy_path = if kv_version == 2 {
        "secret/data/gatekeeper".to_string()
    } else {
        ok(
            server,
            Call::post(
                "sys/mounts/kv1",
                json!({"type": "kv", "options": {"version": "1"}}),
            ),
        )
        .await;
        "kv1/gatekeeper".to_string()
    };
    for (role, policy) in [
        ("api", "p-api"),
        ("other", "p-other"),
        ("gatekeeper", "gatekeeper"),
    ] {
        ok(
            server,
            Call::post(
                &format!("auth/{approle_mount}/role/{role}"),
                json!({"token_policies": [policy]}),
            ),
        )
        .await;
    }
    let acl = gatekeeper_acl(approle_mount, &policy_path, kv_version);
    ok(
        server,
        Call::put("sys/policies/acl/gatekeeper", json!({ "policy": acl })),
    )
    .await;
    let admin = format!("path \"{ADMIN_PATH}\" {{\n  capabilities = [\"update\"]\n}}\n");
    ok(
        server,
        Call::put("sys/policies/acl/gk-admin", json!({ "policy": admin })),
    )
    .await;
    let token = |policy: &'static str| async move {
        let r = ok(
            server,
            Call::post("auth/token/create", json!({ "policies": [policy] })),
        )
        .await;
        r.body["auth"]["client_token"]
            .as_str()
            .expect("client_token")
            .to_string()
    };
    let gk_token = token("gatekeeper").await;
    let admin_token = token("gk-admin").await;
    let rid = ok(
        server,
        Call::get(&format!("auth/{approle_mount}/role/gatekeeper/role-id")),
    )
    .await;
    let sid = ok(
        server,
        Call::post(
            &format!("auth/{approle_mount}/role/gatekeeper/secret-id"),
            json!({}),
        ),
    )
    .await;
    VaultSetup {
        addr: server.addr.clone(),
        approle_mount: approle_mount.to_string(),
        kv_version,
        policy_path,
        gk_token,
        admin_token,
        gk_role_id: rid.data("role_id").as_str().expect("role_id").to_string(),
        gk_secret_id: sid
            .data("secret_id")
            .as_str()
            .expect("secret_id")
            .to_string(),
    }
}

impl VaultSetup {
    /// The Gatekeeper flags for this server (no unseal credential).
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--vault-addr".into(),
            self.addr.clone(),
            "--vault-approle-mount".into(),
            self.approle_mount.clone(),
            "--vault-kv-version".into(),
            self.kv_version.to_string(),
            "--policy-path".into(),
            self.policy_path.clone(),
        ]
    }

    /// Writes `policies` (Gatekeeper's JSON format) at the policy path, or
    /// at `sub` below it.
    pub async fn put_policies(&self, server: &Server, sub: Option<&str>, policies: Value) {
        let path = match sub {
            Some(s) => format!("{}/{s}", self.policy_path),
            None => self.policy_path.clone(),
        };
        let body = if self.kv_version == 2 {
            json!({ "data": policies })
        } else {
            policies
        };
        ok(server, Call::post(&path, body)).await;
    }

    /// Deletes the policy secret at `sub` below the policy path (all its
    /// versions on KV v2).
    pub async fn delete_policies(&self, server: &Server, sub: &str) {
        let path = format!("{}/{sub}", self.policy_path);
        let path = if self.kv_version == 2 {
            path.replacen("/data/", "/metadata/", 1)
        } else {
            path
        };
        ok(server, Call::delete(&path)).await;
    }
}

/// `{key: {"roles": roles, "num_uses": num_uses}}`.
pub fn policy(key: &str, roles: &[&str], num_uses: u32) -> Value {
    json!({ key: { "roles": roles, "num_uses": num_uses } })
}

/// Unwraps `wrapping` at `server` (with the wrapping token itself).
pub async fn unwrap(server: &Server, wrapping: &str) -> Reply {
    server
        .send(&Call::post("sys/wrapping/unwrap", json!({})).token(wrapping))
        .await
}

/// `auth/token/lookup-self` of `token`.
pub async fn lookup_self(server: &Server, token: &str) -> Reply {
    server
        .send(&Call::get("auth/token/lookup-self").token(token))
        .await
}

/// Unwraps a `/token` answer's wrapping token once, checks a second unwrap
/// fails, and answers the unwrapped token's policies (from `lookup-self`)
/// and the token itself.
pub async fn unwrap_once(server: &Server, answer: &Value) -> (Vec<String>, String) {
    let wrapping = answer["token"].as_str().expect("a wrapping token");
    let first = unwrap(server, wrapping).await;
    assert_eq!(first.status, 200, "first unwrap: {:?}", first);
    let token = first.body["auth"]["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("the wrapped answer is not a login: {}", first.body))
        .to_string();
    let second = unwrap(server, wrapping).await;
    assert_ne!(second.status, 200, "a second unwrap worked: {:?}", second);
    let me = lookup_self(server, &token).await;
    assert_eq!(me.status, 200, "lookup-self of the unwrapped token: {me:?}");
    let policies = server::str_list(me.data("policies"));
    (policies, token)
}

/// Panics naming every secret that appears in `output`.
pub fn assert_no_secrets(output: &str, secrets: &[(&str, String)]) {
    let leaked: Vec<&str> = secrets
        .iter()
        .filter(|(_, s)| !s.is_empty() && output.contains(s.as_str()))
        .map(|(what, _)| *what)
        .collect();
    if leaked.is_empty() {
        return;
    }
    let mut shown = output.to_string();
    for (what, s) in secrets.iter().filter(|(_, s)| !s.is_empty()) {
        shown = shown.replace(s.as_str(), &format!("<{what}>"));
    }
    panic!(
        "Gatekeeper's output contains secrets ({}); output, secrets replaced by <name>:\n{shown}",
        leaked.join(", ")
    );
}

/// A unique ECS task id (32 hex digits, as ECS makes them).
pub fn ecs_task_id() -> String {
    format!("{:016x}{:016x}", std::process::id(), next_id())
}

/// The environment giving Gatekeeper the ECS emulator's region and static
/// keys, in the AWS variables.
pub fn ecs_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_REGION", ECS_REGION),
        ("AWS_ACCESS_KEY_ID", ECS_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", ECS_SECRET_ACCESS_KEY),
    ]
}

/// Starts a dev server of `kind` without blocking the runtime.
pub async fn dev_server(kind: Kind) -> Server {
    tokio::task::spawn_blocking(move || Server::dev(kind))
        .await
        .expect("dev server thread")
}

/// A dev server of `kind` prepared by [`setup_vault`] (AppRole at
/// `approle`, policies on KV v2) with one Gatekeeper policy: Mesos tasks
/// get role `api`, once.
pub async fn mesos_ready(kind: Kind) -> (Server, VaultSetup) {
    let server = dev_server(kind).await;
    let vault = setup_vault(&server, "approle", 2).await;
    vault
        .put_policies(
            &server,
            None,
            policy(Sched::Mesos.policy_key(), &["api"], 1),
        )
        .await;
    (server, vault)
}
