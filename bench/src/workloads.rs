//! The workloads, as data: what each iteration requests (one call, or a
//! chain where a call authenticates with a token taken from the previous
//! answer), what counts as success, what must be set up first, and which
//! pairings it runs in. Adding a workload (AppRole login, ...) means
//! adding an entry to [`all`]. Values known only at run time (the fake
//! Kubernetes API server's URL and CA, the service-account JWT, the fake
//! Google's URL and credentials, the GCP login JWTs) appear in bodies as
//! placeholders that a [`Runtime`] fills in. A workload OpenBao cannot run
//! (GCP login: OpenBao has no GCP auth method) says why, and runs against
//! Strongroom only.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use hyper::header::HeaderValue;
use hyper::Method;
use serde_json::{json, Value};
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::client;
use crate::load::{Check, Expect, TokenFrom};

/// The placeholder in a workload path that is replaced by a key number.
pub const KEY_PLACEHOLDER: &str = "{n}";

/// The placeholder for the fake Kubernetes API server's URL.
pub const K8S_URL: &str = "{k8s_url}";
/// The placeholder for the PEM CA certificate of that server.
pub const K8S_CA: &str = "{k8s_ca}";
/// The placeholder for the PEM public key that signs the bench's JWT.
pub const K8S_PEM: &str = "{k8s_pem}";
/// The placeholder for the bench's service-account JWT.
pub const K8S_JWT: &str = "{k8s_jwt}";

/// The placeholder for the fake Google API's URL (`custom_endpoint`).
pub const GCP_URL: &str = "{gcp_url}";
/// The placeholder for the service-account key JSON Strongroom is
/// configured with (it holds a private key).
pub const GCP_CREDENTIALS: &str = "{gcp_credentials}";
/// The placeholder for the one GCP login JWT of `gcp-login-cached`.
pub const GCP_JWT: &str = "{gcp_jwt}";
/// The placeholder for the iteration's JWT from the pool of cold GCP login
/// JWTs (each under a key id of its own). A workload using it has one key
/// per pool JWT and uses each once: its run stops when the pool runs out.
pub const GCP_COLD_JWT: &str = "{gcp_cold_jwt}";

/// The values behind the run-time placeholders, made once before the
/// workloads run and substituted into setup and call bodies.
pub struct Runtime {
    /// Replaces [`K8S_URL`].
    pub k8s_url: String,
    /// Replaces [`K8S_CA`].
    pub k8s_ca: String,
    /// Replaces [`K8S_PEM`].
    pub k8s_pem: String,
    /// Replaces [`K8S_JWT`].
    pub k8s_jwt: Zeroizing<String>,
    /// Replaces [`GCP_URL`].
    pub gcp_url: String,
    /// Replaces [`GCP_CREDENTIALS`].
    pub gcp_credentials: Zeroizing<String>,
    /// Replaces [`GCP_JWT`].
    pub gcp_jwt: Zeroizing<String>,
    /// The pool behind [`GCP_COLD_JWT`]; empty when no selected workload
    /// uses it.
    pub gcp_cold_jwts: Vec<Zeroizing<String>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // JWTs and credentials are secrets: never printed.
        f.debug_struct("Runtime")
            .field("k8s_url", &self.k8s_url)
            .field("gcp_url", &self.gcp_url)
            .field("gcp_cold_jwts", &self.gcp_cold_jwts.len())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// `body` with every placeholder inside its strings (keys included)
    /// replaced by its value; [`GCP_COLD_JWT`] is left as it is (it differs
    /// per iteration: see [`Runtime::fill_bodies`]).
    pub fn fill(&self, body: &Value) -> Value {
        self.fill_with(body, GCP_COLD_JWT)
    }

    /// The bodies an iteration cycles over: one per cold JWT when `body`
    /// uses [`GCP_COLD_JWT`] (none if the pool is empty), else just
    /// `body` filled.
    pub fn fill_bodies(&self, body: &Value) -> Vec<Value> {
        if mentions(body, GCP_COLD_JWT) {
            self.gcp_cold_jwts
                .iter()
                .map(|jwt| self.fill_with(body, jwt))
                .collect()
        } else {
            vec![self.fill(body)]
        }
    }

    /// [`Runtime::fill`], with [`GCP_COLD_JWT`] replaced by `cold_jwt`.
    fn fill_with(&self, body: &Value, cold_jwt: &str) -> Value {
        let values: [(&str, &str); 8] = [
            (K8S_URL, &self.k8s_url),
            (K8S_CA, &self.k8s_ca),
            (K8S_PEM, &self.k8s_pem),
            (K8S_JWT, &self.k8s_jwt),
            (GCP_URL, &self.gcp_url),
            (GCP_CREDENTIALS, &self.gcp_credentials),
            (GCP_JWT, &self.gcp_jwt),
            (GCP_COLD_JWT, cold_jwt),
        ];
        let text = |s: &str| {
            values
                .iter()
                .fold(s.to_string(), |s, (from, to)| s.replace(from, to))
        };
        match body {
            Value::String(s) => Value::String(text(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.fill_with(v, cold_jwt)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (text(k), self.fill_with(v, cold_jwt)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Whether `placeholder` occurs in a string (or key) inside `body`.
fn mentions(body: &Value, placeholder: &str) -> bool {
    match body {
        Value::String(s) => s.contains(placeholder),
        Value::Array(items) => items.iter().any(|v| mentions(v, placeholder)),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains(placeholder) || mentions(v, placeholder)),
        _ => false,
    }
}

/// Which two servers are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pairing {
    /// Both servers in `-dev` mode (in-memory storage, unsealed, root token).
    Dev,
    /// Persistent storage: Strongroom on redb against OpenBao on raft.
    Durable,
    /// Both on one throw-away PostgreSQL cluster, each server on its own
    /// database, with `ha_enabled` (one node each).
    Postgres,
    /// Both in `-dev` mode with one `file` audit device each (declared in a
    /// config file, hashed as by default): the cost of audit, read against
    /// the `dev` rows.
    DevAudit,
    /// `--standby-rows`: two nodes each on PostgreSQL, the load sent to the
    /// active node (not in [`Pairing::ALL`]).
    HaActive,
    /// `--standby-rows`: the same, the load sent to the standby.
    HaStandby,
}

impl Pairing {
    /// Every pairing, in the order they run.
    pub const ALL: [Pairing; 4] = [
        Pairing::Dev,
        Pairing::Durable,
        Pairing::Postgres,
        Pairing::DevAudit,
    ];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Pairing::Dev => "dev",
            Pairing::Durable => "durable",
            Pairing::Postgres => "postgresql",
            Pairing::DevAudit => "dev-audit",
            Pairing::HaActive => "postgresql-ha-active",
            Pairing::HaStandby => "postgresql-ha-standby",
        }
    }

    /// Parses a pairing name as given to `--pairings`.
    pub fn parse(name: &str) -> anyhow::Result<Pairing> {
        match Pairing::ALL.into_iter().find(|p| p.name() == name) {
            Some(p) => Ok(p),
            None => bail!("unknown pairing {name:?} (known: dev, durable, postgresql, dev-audit)"),
        }
    }
}

impl fmt::Display for Pairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The pause between attempts of a setup step that may be retried.
const STEP_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// One setup request, run with the root token before a workload. Steps are
/// identified by name so that a step shared by several workloads (mounting
/// `kv1/`) runs once per server.
#[derive(Debug, Clone)]
pub struct Step {
    /// Identifies the step; a server runs each name once.
    pub name: &'static str,
    /// The HTTP method.
    pub method: Method,
    /// The logical path below `/v1/`.
    pub path: &'static str,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// How long a failed attempt is retried (every 100 ms) before the step
    /// fails; zero for a step that must succeed at once. For idempotent
    /// steps against something that becomes ready by itself, such as a
    /// fresh KV v2 mount, which OpenBao on raft briefly answers with 400
    /// while it "upgrades" it.
    pub patience: Duration,
    /// A path below `/v1/` whose GET answering 2xx means the step's effect
    /// is already there, so the step is skipped: for a mount that one
    /// pairing's servers make by themselves (`secret/` in `-dev` mode) and
    /// the other's do not.
    pub unless: Option<&'static str>,
}

impl Step {
    /// Runs the step against `addr`, its body filled from `runtime`, unless
    /// [`Step::unless`] finds its effect already there; any answer but 2xx
    /// is an error, unless a later attempt within [`Step::patience`]
    /// succeeds.
    pub async fn run(
        &self,
        addr: SocketAddr,
        root: &HeaderValue,
        runtime: &Runtime,
    ) -> anyhow::Result<()> {
        if let Some(probe) = self.unless {
            let (status, _) = client::call(addr, Method::GET, probe, Some(root), None).await?;
            if status.is_success() {
                return Ok(());
            }
        }
        let deadline = Instant::now() + self.patience;
        let body = self.body.as_ref().map(|b| runtime.fill(b));
        loop {
            let result = client::call_ok(
                addr,
                self.method.clone(),
                self.path,
                Some(root),
                body.as_ref(),
            )
            .await;
            match result {
                Ok(_) => return Ok(()),
                Err(err) if Instant::now() + STEP_RETRY_INTERVAL > deadline => return Err(err),
                Err(_) => tokio::time::sleep(STEP_RETRY_INTERVAL).await,
            }
        }
    }
}

/// One request of a workload's iteration, as data.
#[derive(Debug, Clone)]
pub struct Call {
    /// The HTTP method.
    pub method: Method,
    /// The logical path below `/v1/` (Gatekeeper's own path, from the root,
    /// when the workload's [`Front`] is Gatekeeper); [`KEY_PLACEHOLDER`] is
    /// replaced by the iteration's key number (`0..keys`, cycling).
    pub path: &'static str,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// Extra request headers (name, value), e.g. `X-Vault-Wrap-TTL`.
    pub headers: Vec<(&'static str, &'static str)>,
    /// Where the `X-Vault-Token` comes from.
    pub token: TokenFrom,
    /// What counts as a successful answer.
    pub expect: Expect,
}

impl Call {
    /// The concrete paths this call cycles over when its workload has `keys`
    /// keys (one when the path has no placeholder).
    pub fn paths(&self, keys: usize) -> Vec<String> {
        if self.path.contains(KEY_PLACEHOLDER) {
            (0..keys.max(1))
                .map(|n| self.path.replace(KEY_PLACEHOLDER, &n.to_string()))
                .collect()
        } else {
            vec![self.path.to_string()]
        }
    }
}

/// A call with the benchmark's token, no body, no extra header, and any 2xx
/// answer accepted: the base the workload table fills in.
fn call(method: Method, path: &'static str) -> Call {
    Call {
        method,
        path,
        body: None,
        headers: vec![],
        token: TokenFrom::Bench,
        expect: Expect::default(),
    }
}

/// A measured workload: one iteration (its [`Call`]s in order, on one
/// connection), issued in a closed loop. An iteration counts as one
/// operation; its latency runs from the first request to the last answer.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The name used on the command line and in the table.
    pub name: &'static str,
    /// The requests of one iteration, in order; a failed one ends the
    /// iteration (counted as one error).
    pub calls: Vec<Call>,
    /// How many distinct keys the placeholder cycles over.
    pub keys: usize,
    /// What must exist before the workload runs.
    pub setup: Vec<Step>,
    /// The pairings this workload is measured in.
    pub pairings: Vec<Pairing>,
    /// Why OpenBao cannot run this workload, when it cannot: it then runs
    /// against Strongroom only (and not in `--strongroom-as-bao` runs), and
    /// the table shows `n/a` for OpenBao with this reason.
    pub strongroom_only: Option<&'static str>,
    /// What the calls are sent to: the server, or a Gatekeeper in front of
    /// it.
    pub front: Front,
}

/// What a workload's calls are sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// The server under test; call paths are below `/v1/`.
    Server,
    /// A `strongroom gatekeeper` the bench starts in front of the server
    /// (after the workload's setup, which prepares the server for it); call
    /// paths are Gatekeeper's own (`/token`).
    Gatekeeper,
}

impl Front {
    /// The request URI of a call path.
    pub fn uri(self, path: &str) -> anyhow::Result<hyper::Uri> {
        match self {
            Front::Server => client::v1_uri(path),
            Front::Gatekeeper => path
                .parse()
                .with_context(|| format!("invalid Gatekeeper path {path:?}")),
        }
    }
}

impl Workload {
    /// Whether an iteration takes a JWT from the cold pool
    /// ([`GCP_COLD_JWT`]): its keys are the pool's JWTs, each used once.
    pub fn uses_cold_pool(&self) -> bool {
        self.calls
            .iter()
            .filter_map(|c| c.body.as_ref())
            .any(|b| mentions(b, GCP_COLD_JWT))
    }

    /// For iterations of more than one request, the note under the table
    /// saying what one operation is; `None` for single-request workloads.
    pub fn operation_note(&self) -> Option<String> {
        if self.calls.len() < 2 {
            return None;
        }
        let steps: Vec<String> = self
            .calls
            .iter()
            .map(|c| format!("{} {}", c.method, c.path))
            .collect();
        Some(format!(
            "{}: one operation is {} requests on one connection ({}); req/s counts \
             operations and the latency covers all of them.",
            self.name,
            self.calls.len(),
            steps.join(", then ")
        ))
    }
}

/// How many distinct keys the KV write workloads cycle over.
const KV_WRITE_KEYS: usize = 1000;

/// Mounts KV version 1 at `kv1/`.
fn mount_kv1() -> Step {
    Step {
        name: "mount-kv1",
        method: Method::POST,
        path: "sys/mounts/kv1",
        body: Some(json!({"type": "kv", "options": {"version": "1"}})),
        patience: Duration::ZERO,
        unless: None,
    }
}

/// Mounts KV version 2 at `kv2/`.
fn mount_kv2() -> Step {
    Step {
        name: "mount-kv2",
        method: Method::POST,
        path: "sys/mounts/kv2",
        body: Some(json!({"type": "kv", "options": {"version": "2"}})),
        patience: Duration::ZERO,
        unless: None,
    }
}

/// How many versions of a key the `kv2/` mount keeps: OpenBao's default
/// (`max_versions` 0 keeps 10), stated so that both servers bound
/// `kv2-write`'s growing history alike whatever their defaults.
const KV2_MAX_VERSIONS: u64 = 10;

/// Sets the `kv2/` mount's `max_versions` to [`KV2_MAX_VERSIONS`]; runs
/// after [`mount_kv2`], and is retried until the fresh mount is ready (the
/// write is idempotent), so that the steps and workloads after it find a
/// mount that serves.
fn config_kv2() -> Step {
    Step {
        name: "config-kv2",
        method: Method::POST,
        path: "kv2/config",
        body: Some(json!({ "max_versions": KV2_MAX_VERSIONS })),
        patience: Duration::from_secs(30),
        unless: None,
    }
}

/// The AppRole setup, static on both servers: the method at `approle/`, a
/// role `bench` issuing `default` tokens, and a custom role id and secret
/// id so that the login body is known in advance.
fn approle_setup() -> Vec<Step> {
    let step = |name, path, body| Step {
        name,
        method: Method::POST,
        path,
        body: Some(body),
        patience: Duration::ZERO,
        unless: None,
    };
    vec![
        step(
            "enable-approle",
            "sys/auth/approle",
            json!({"type": "approle"}),
        ),
        step(
            "approle-role",
            "auth/approle/role/bench",
            json!({"token_policies": "default", "token_ttl": "10m"}),
        ),
        step(
            "approle-role-id",
            "auth/approle/role/bench/role-id",
            json!({"role_id": APPROLE_ROLE_ID}),
        ),
        step(
            "approle-secret-id",
            "auth/approle/role/bench/custom-secret-id",
            json!({"secret_id": APPROLE_SECRET_ID}),
        ),
    ]
}

/// The userpass setup, static on both servers: the method at
/// `userpass/` and a user `bench` issuing `default` tokens (its password
/// hashed by each server: bcrypt at cost 10 on both).
fn userpass_setup() -> Vec<Step> {
    let step = |name, path, body| Step {
        name,
        method: Method::POST,
        path,
        body: Some(body),
        patience: Duration::ZERO,
        unless: None,
    };
    vec![
        step(
            "enable-userpass",
            "sys/auth/userpass",
            json!({"type": "userpass"}),
        ),
        step(
            "userpass-user",
            "auth/userpass/users/bench",
            json!({"password": USERPASS_PASSWORD, "token_policies": "default", "token_ttl": "10m"}),
        ),
    ]
}

/// The bench user's password.
const USERPASS_PASSWORD: &str = "bench-password-0123456789";

/// The bench role's id.
const APPROLE_ROLE_ID: &str = "bench-role-id";
/// The bench role's (unlimited) secret id.
const APPROLE_SECRET_ID: &str = "bench-secret-id-0123456789";

/// One Kubernetes auth mount of the bench: where it lives and whether
/// logins are checked against `pem_keys` before the TokenReview, or by
/// the TokenReview alone.
struct K8sMount {
    /// The step names: enable, config, role.
    steps: [&'static str; 3],
    /// `sys/auth/<mount>`.
    enable: &'static str,
    /// `auth/<mount>/config`.
    config: &'static str,
    /// `auth/<mount>/role/bench`.
    role: &'static str,
    /// `auth/<mount>/login`.
    login: &'static str,
    /// Whether the config carries the bench's public key in `pem_keys`.
    pem_keys: bool,
}

/// `kubernetes/`: JWT signatures checked locally against `pem_keys`, then
/// (as in Vault and OpenBao) every login still asks the fake API server for
/// a TokenReview: the row measures local verification plus review.
const K8S_PEM_MOUNT: K8sMount = K8sMount {
    steps: ["enable-k8s-pem", "k8s-pem-config", "k8s-pem-role"],
    enable: "sys/auth/kubernetes",
    config: "auth/kubernetes/config",
    role: "auth/kubernetes/role/bench",
    login: "auth/kubernetes/login",
    pem_keys: true,
};

/// `kubernetes-review/`: no `pem_keys`, so every login asks the fake API
/// server for a TokenReview.
const K8S_REVIEW_MOUNT: K8sMount = K8sMount {
    steps: ["enable-k8s-review", "k8s-review-config", "k8s-review-role"],
    enable: "sys/auth/kubernetes-review",
    config: "auth/kubernetes-review/config",
    role: "auth/kubernetes-review/role/bench",
    login: "auth/kubernetes-review/login",
    pem_keys: false,
};

/// The setup of a Kubernetes mount: enable it, point it at the fake API
/// server (trusting its CA), and a role `bench` for service account
/// `bench/bench` issuing `default` tokens.
fn k8s_setup(mount: &K8sMount) -> Vec<Step> {
    let step = |name, path, body| Step {
        name,
        method: Method::POST,
        path,
        body: Some(body),
        patience: Duration::ZERO,
        unless: None,
    };
    let mut config = json!({"kubernetes_host": K8S_URL, "kubernetes_ca_cert": K8S_CA});
    if mount.pem_keys {
        config["pem_keys"] = json!([K8S_PEM]);
    }
    vec![
        step(mount.steps[0], mount.enable, json!({"type": "kubernetes"})),
        step(mount.steps[1], mount.config, config),
        step(
            mount.steps[2],
            mount.role,
            json!({
                "bound_service_account_names": "bench",
                "bound_service_account_namespaces": "bench",
                "token_policies": "default",
                "token_ttl": "10m",
            }),
        ),
    ]
}

/// A login with the bench's service-account JWT as role `bench`; a 200
/// carrying a client token.
fn k8s_login(mount: &K8sMount) -> Call {
    Call {
        body: Some(json!({"role": "bench", "jwt": K8S_JWT})),
        expect: Expect {
            status: Some(200),
            checks: vec![Check::Present("/auth/client_token")],
        },
        ..call(Method::POST, mount.login)
    }
}

/// Why the GCP workloads run against Strongroom only.
const NO_GCP_IN_OPENBAO: &str = "OpenBao has no GCP auth method";

/// The GCP setup: the method at `gcp/`, configured with the fake Google's
/// service-account key (its `token_uri` at the fake) and the fake as the
/// `api` and `iam` endpoints, and an IAM role `bench` for the bench's
/// service account issuing `default` tokens.
fn gcp_setup() -> Vec<Step> {
    let step = |name, path, body| Step {
        name,
        method: Method::POST,
        path,
        body: Some(body),
        patience: Duration::ZERO,
        unless: None,
    };
    vec![
        step("enable-gcp", "sys/auth/gcp", json!({"type": "gcp"})),
        step(
            "gcp-config",
            "auth/gcp/config",
            json!({
                "credentials": GCP_CREDENTIALS,
                "custom_endpoint": {"api": GCP_URL, "iam": GCP_URL},
            }),
        ),
        step(
            "gcp-role",
            "auth/gcp/role/bench",
            json!({
                "type": "iam",
                "project_id": crate::gcp::PROJECT,
                "service_accounts": [crate::gcp::EMAIL],
                "max_jwt_exp": crate::gcp::MAX_JWT_EXP_SECS,
                "token_policies": "default",
                "token_ttl": "10m",
            }),
        ),
    ]
}

/// A GCP login as role `bench` with the JWT behind `jwt` (a placeholder);
/// a 200 carrying a client token.
fn gcp_login(jwt: &'static str) -> Call {
    Call {
        body: Some(json!({"role": "bench", "jwt": jwt})),
        expect: Expect {
            status: Some(200),
            checks: vec![Check::Present("/auth/client_token")],
        },
        ..call(Method::POST, "auth/gcp/login")
    }
}

/// A small secret, the size of a typical credential.
pub fn small_secret() -> Value {
    json!({"username": "bench-user", "password": "correct-horse-battery-staple"})
}

/// The header that asks for a response-wrapped answer.
const WRAP_TTL_HEADER: &str = "X-Vault-Wrap-TTL";

/// `sys/wrapping/wrap` of a small secret for five minutes; a 200 carrying a
/// wrapping token.
fn wrap() -> Call {
    Call {
        body: Some(json!({"secret": "value"})),
        headers: vec![(WRAP_TTL_HEADER, "5m")],
        expect: Expect {
            status: Some(200),
            checks: vec![Check::Present("/wrap_info/token")],
        },
        ..call(Method::POST, "sys/wrapping/wrap")
    }
}

/// The Mesos task Gatekeeper hands tokens to: its id (what a task sends
/// as `task_id`), its framework and its name.
pub const GATEKEEPER_TASK: (&str, &str, &str) = ("bench-task", "bench", "bench");

/// The ECS task that asks Gatekeeper for tokens in `gatekeeper-token-ecs`:
/// its task id and task-definition family (policy key `ecs:<family>`).
pub const GATEKEEPER_ECS_TASK: (&str, &str) = ("0be4c4ba5e000000000000000000be4c", "bench");

/// Where Gatekeeper reads its policies: the `--policy-path` default (KV v2
/// at `secret/`), so the bench passes no such flag.
const GATEKEEPER_POLICY_PATH: &str = "secret/data/gatekeeper";

/// How many tokens the bench task may have: more than any run asks for,
/// so that every measured request is a full grant, never "limit reached".
const GATEKEEPER_NUM_USES: u64 = 1_000_000_000;

/// The server side of Gatekeeper: AppRole at `approle/` with the role
/// `bench` (the same steps as `approle-login`'s), a KV v2 mount at
/// `secret/` (which `-dev` servers have already, so it is made only where
/// missing), and the Gatekeeper policy giving the Mesos task
/// `bench:bench` and the ECS family `bench` that role. The policy write waits for a fresh mount
/// (OpenBao on raft answers 400 while it readies one).
fn gatekeeper_setup() -> Vec<Step> {
    let mut steps: Vec<Step> = approle_setup()
        .into_iter()
        .filter(|s| s.name == "enable-approle" || s.name == "approle-role")
        .collect();
    let (_, framework, name) = GATEKEEPER_TASK;
    let (_, family) = GATEKEEPER_ECS_TASK;
    steps.push(Step {
        name: "mount-secret",
        method: Method::POST,
        path: "sys/mounts/secret",
        body: Some(json!({"type": "kv", "options": {"version": "2"}})),
        patience: Duration::ZERO,
        unless: Some("secret/config"),
    });
    steps.push(Step {
        name: "gatekeeper-policy",
        method: Method::POST,
        path: GATEKEEPER_POLICY_PATH,
        body: Some(json!({"data": {
            format!("mesos:{framework}:{name}"): {
                "roles": ["bench"],
                "num_uses": GATEKEEPER_NUM_USES,
            },
            format!("ecs:{family}"): {
                "roles": ["bench"],
                "num_uses": GATEKEEPER_NUM_USES,
            },
        }})),
        patience: Duration::from_secs(30),
        unless: None,
    });
    steps
}

/// Every workload, in table order.
pub fn all() -> Vec<Workload> {
    vec![
        Workload {
            name: "health",
            calls: vec![call(Method::GET, "sys/health")],
            keys: 1,
            setup: vec![],
            pairings: vec![Pairing::Dev],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "kv1-read",
            calls: vec![call(Method::GET, "kv1/bench-read")],
            keys: 1,
            setup: vec![
                mount_kv1(),
                Step {
                    name: "seed-kv1-read",
                    method: Method::PUT,
                    path: "kv1/bench-read",
                    body: Some(small_secret()),
                    patience: Duration::ZERO,
                    unless: None,
                },
            ],
            pairings: vec![
                Pairing::Dev,
                Pairing::Durable,
                Pairing::Postgres,
                Pairing::DevAudit,
            ],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "kv1-write",
            calls: vec![Call {
                body: Some(small_secret()),
                ..call(Method::PUT, "kv1/bench-{n}")
            }],
            keys: KV_WRITE_KEYS,
            setup: vec![mount_kv1()],
            pairings: vec![
                Pairing::Dev,
                Pairing::Durable,
                Pairing::Postgres,
                Pairing::DevAudit,
            ],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "kv2-read",
            calls: vec![Call {
                // The seeded secret, not just any 200 (checked by its
                // username, so that an error never quotes the password).
                expect: Expect {
                    status: Some(200),
                    checks: vec![
                        Check::Present("/data/data"),
                        Check::Equals("/data/data/username", json!("bench-user")),
                    ],
                },
                ..call(Method::GET, "kv2/data/bench-read")
            }],
            keys: 1,
            setup: vec![
                mount_kv2(),
                config_kv2(),
                Step {
                    name: "seed-kv2-read",
                    method: Method::POST,
                    path: "kv2/data/bench-read",
                    body: Some(json!({ "data": small_secret() })),
                    patience: Duration::ZERO,
                    unless: None,
                },
            ],
            pairings: vec![Pairing::Dev, Pairing::Durable, Pairing::Postgres],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "kv2-write",
            calls: vec![Call {
                body: Some(json!({"data": {"value": "correct-horse-battery-staple"}})),
                expect: Expect {
                    status: Some(200),
                    checks: vec![Check::Present("/data/version")],
                },
                ..call(Method::POST, "kv2/data/bench-{n}")
            }],
            // As many keys as kv1-write, so the two compare.
            keys: KV_WRITE_KEYS,
            setup: vec![mount_kv2(), config_kv2()],
            pairings: vec![Pairing::Dev, Pairing::Durable, Pairing::Postgres],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "approle-login",
            calls: vec![Call {
                body: Some(json!({"role_id": APPROLE_ROLE_ID, "secret_id": APPROLE_SECRET_ID})),
                expect: Expect {
                    status: Some(200),
                    checks: vec![Check::Present("/auth/client_token")],
                },
                ..call(Method::POST, "auth/approle/login")
            }],
            keys: 1,
            setup: approle_setup(),
            pairings: vec![
                Pairing::Dev,
                Pairing::Durable,
                Pairing::Postgres,
                Pairing::DevAudit,
            ],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "userpass-login",
            calls: vec![Call {
                body: Some(json!({"password": USERPASS_PASSWORD})),
                expect: Expect {
                    status: Some(200),
                    checks: vec![Check::Present("/auth/client_token")],
                },
                ..call(Method::POST, "auth/userpass/login/bench")
            }],
            keys: 1,
            setup: userpass_setup(),
            pairings: vec![Pairing::Dev],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "k8s-login-pem",
            calls: vec![k8s_login(&K8S_PEM_MOUNT)],
            keys: 1,
            setup: k8s_setup(&K8S_PEM_MOUNT),
            pairings: vec![Pairing::Dev, Pairing::Durable],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "k8s-login-review",
            calls: vec![k8s_login(&K8S_REVIEW_MOUNT)],
            keys: 1,
            setup: k8s_setup(&K8S_REVIEW_MOUNT),
            pairings: vec![Pairing::Dev, Pairing::Durable],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "gcp-login-cached",
            calls: vec![gcp_login(GCP_JWT)],
            keys: 1,
            setup: gcp_setup(),
            pairings: vec![Pairing::Dev, Pairing::Durable],
            strongroom_only: Some(NO_GCP_IN_OPENBAO),
            front: Front::Server,
        },
        Workload {
            name: "gcp-login-cold",
            calls: vec![gcp_login(GCP_COLD_JWT)],
            // One per cold JWT: the pool's size, known at run time.
            keys: 1,
            setup: gcp_setup(),
            pairings: vec![Pairing::Dev, Pairing::Durable],
            strongroom_only: Some(NO_GCP_IN_OPENBAO),
            front: Front::Server,
        },
        Workload {
            name: "token-lookup-self",
            calls: vec![call(Method::GET, "auth/token/lookup-self")],
            keys: 1,
            setup: vec![],
            pairings: vec![Pairing::Dev],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "token-create",
            calls: vec![Call {
                body: Some(json!({"policies": ["default"], "ttl": "10m"})),
                expect: Expect {
                    status: Some(200),
                    checks: vec![Check::Present("/auth/client_token")],
                },
                ..call(Method::POST, "auth/token/create")
            }],
            keys: 1,
            setup: vec![],
            pairings: vec![Pairing::Dev, Pairing::Postgres],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "wrap",
            calls: vec![wrap()],
            keys: 1,
            setup: vec![],
            pairings: vec![Pairing::Dev],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "wrap-unwrap",
            calls: vec![
                wrap(),
                Call {
                    // The wrapping token authenticates the unwrap; no body.
                    token: TokenFrom::Answer("/wrap_info/token"),
                    expect: Expect {
                        status: Some(200),
                        checks: vec![Check::Equals("/data/secret", json!("value"))],
                    },
                    ..call(Method::POST, "sys/wrapping/unwrap")
                },
            ],
            keys: 1,
            setup: vec![],
            pairings: vec![Pairing::Dev],
            strongroom_only: None,
            front: Front::Server,
        },
        Workload {
            name: "gatekeeper-token",
            calls: vec![Call {
                body: Some(json!({"task_id": GATEKEEPER_TASK.0})),
                // A task has no Vault token: it asks with its task id only.
                token: TokenFrom::Nowhere,
                expect: Expect {
                    status: Some(200),
                    checks: vec![Check::Present("/token")],
                },
                ..call(Method::POST, "/token")
            }],
            keys: 1,
            setup: gatekeeper_setup(),
            pairings: vec![Pairing::Dev, Pairing::Durable],
            strongroom_only: None,
            front: Front::Gatekeeper,
        },
        Workload {
            name: "gatekeeper-token-ecs",
            calls: vec![Call {
                body: Some(json!({"task_id": GATEKEEPER_ECS_TASK.0, "scheduler": "ecs"})),
                token: TokenFrom::Nowhere,
                expect: Expect {
                    status: Some(200),
                    checks: vec![Check::Present("/token")],
                },
                ..call(Method::POST, "/token")
            }],
            keys: 1,
            setup: gatekeeper_setup(),
            pairings: vec![Pairing::Dev, Pairing::Durable],
            strongroom_only: None,
            front: Front::Gatekeeper,
        },
    ]
}

/// The `--workloads` value that selects no workload, for runs of only the
/// extra measurements (`--namespace-scale`, `--failover-rounds`).
pub const NO_WORKLOADS: &str = "none";

/// The workloads named in `names` (all of them when `names` is empty), in
/// table order; [`NO_WORKLOADS`] alone selects none; an unknown name is an
/// error listing the known ones.
pub fn select(names: &[String]) -> anyhow::Result<Vec<Workload>> {
    if names.len() == 1 && names[0] == NO_WORKLOADS {
        return Ok(Vec::new());
    }
    let every = all();
    let known: HashSet<&str> = every.iter().map(|w| w.name).collect();
    if let Some(unknown) = names.iter().find(|n| !known.contains(n.as_str())) {
        let mut list: Vec<&str> = every.iter().map(|w| w.name).collect();
        list.sort_unstable();
        bail!("unknown workload {unknown:?} (known: {})", list.join(", "));
    }
    Ok(every
        .into_iter()
        .filter(|w| names.is_empty() || names.iter().any(|n| n == w.name))
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn workload_and_step_names_are_unique() {
        let every = all();
        let names: HashSet<_> = every.iter().map(|w| w.name).collect();
        assert_eq!(names.len(), every.len());
        // A step name stands for one request: two different requests under
        // one name would make the second silently skipped.
        let mut steps = std::collections::HashMap::new();
        for step in every.iter().flat_map(|w| &w.setup) {
            let shape = (step.method.clone(), step.path, step.body.clone());
            if let Some(prev) = steps.insert(step.name, shape.clone()) {
                assert_eq!(prev, shape, "step {} differs between workloads", step.name);
            }
        }
    }

    #[test]
    fn brief_pairings_are_covered() {
        let every = all();
        let in_pairing = |p: Pairing| -> Vec<&str> {
            every
                .iter()
                .filter(|w| w.pairings.contains(&p))
                .map(|w| w.name)
                .collect()
        };
        assert_eq!(
            in_pairing(Pairing::Dev),
            [
                "health",
                "kv1-read",
                "kv1-write",
                "kv2-read",
                "kv2-write",
                "approle-login",
                "userpass-login",
                "k8s-login-pem",
                "k8s-login-review",
                "gcp-login-cached",
                "gcp-login-cold",
                "token-lookup-self",
                "token-create",
                "wrap",
                "wrap-unwrap",
                "gatekeeper-token",
                "gatekeeper-token-ecs"
            ]
        );
        assert_eq!(
            in_pairing(Pairing::Durable),
            [
                "kv1-read",
                "kv1-write",
                "kv2-read",
                "kv2-write",
                "approle-login",
                "k8s-login-pem",
                "k8s-login-review",
                "gcp-login-cached",
                "gcp-login-cold",
                "gatekeeper-token",
                "gatekeeper-token-ecs"
            ]
        );
        assert_eq!(
            in_pairing(Pairing::Postgres),
            [
                "kv1-read",
                "kv1-write",
                "kv2-read",
                "kv2-write",
                "approle-login",
                "token-create"
            ]
        );
        // Only the GCP logins are kept from OpenBao, which lacks the method.
        let only: Vec<_> = every
            .iter()
            .filter_map(|w| w.strongroom_only.map(|r| (w.name, r)))
            .collect();
        assert_eq!(
            only,
            [
                ("gcp-login-cached", "OpenBao has no GCP auth method"),
                ("gcp-login-cold", "OpenBao has no GCP auth method"),
            ]
        );
    }

    #[test]
    fn write_workload_cycles_over_distinct_keys() {
        let write = select(&["kv1-write".into()]).unwrap().remove(0);
        let paths = write.calls[0].paths(write.keys);
        assert_eq!(paths.len(), 1000);
        assert_eq!(paths[0], "kv1/bench-0");
        assert_eq!(paths[999], "kv1/bench-999");
        assert_eq!(paths.iter().collect::<HashSet<_>>().len(), 1000);
    }

    #[test]
    fn read_workload_reads_the_secret_its_setup_writes() {
        let read = select(&["kv1-read".into()]).unwrap().remove(0);
        assert_eq!(read.calls[0].paths(read.keys), ["kv1/bench-read"]);
        assert!(read
            .setup
            .iter()
            .any(|s| s.method == Method::PUT && s.path == "kv1/bench-read"));
        // The mount comes before the write into it.
        assert_eq!(read.setup[0].path, "sys/mounts/kv1");
    }

    #[test]
    fn select_keeps_table_order_and_rejects_unknown_names() {
        let picked = select(&["token-lookup-self".into(), "health".into()]).unwrap();
        let names: Vec<_> = picked.iter().map(|w| w.name).collect();
        assert_eq!(names, ["health", "token-lookup-self"]);
        assert_eq!(select(&[]).unwrap().len(), all().len());
        assert!(select(&["none".into()]).unwrap().is_empty());
        let err = select(&["kv3-read".into()]).unwrap_err().to_string();
        assert!(
            err.contains("kv3-read") && err.contains("kv2-write"),
            "{err}"
        );
    }

    #[test]
    fn kv2_read_mounts_a_v2_engine_seeds_it_and_reads_the_seed_back() {
        let read = select(&["kv2-read".into()]).unwrap().remove(0);
        let [call] = read.calls.as_slice() else {
            panic!("one request per operation");
        };
        assert_eq!(
            (call.method.clone(), call.paths(read.keys)),
            (Method::GET, vec!["kv2/data/bench-read".to_string()])
        );
        assert_eq!(call.expect.status, Some(200));
        assert!(call.expect.checks.contains(&Check::Present("/data/data")));
        // The check names a field the seed really holds.
        let seed = read
            .setup
            .iter()
            .find(|s| s.path == "kv2/data/bench-read")
            .unwrap();
        assert_eq!(seed.method, Method::POST);
        let seeded = seed.body.as_ref().unwrap();
        for check in &call.expect.checks {
            if let Check::Equals(pointer, want) = check {
                let in_seed = pointer.strip_prefix("/data").unwrap();
                assert_eq!(seeded.pointer(in_seed), Some(want), "{pointer}");
            }
        }
        // Mount, then the mount's config, then the write into it.
        let order: Vec<_> = read.setup.iter().map(|s| s.path).collect();
        assert_eq!(
            order,
            ["sys/mounts/kv2", "kv2/config", "kv2/data/bench-read"]
        );
        assert_eq!(
            read.setup[0].body,
            Some(json!({"type": "kv", "options": {"version": "2"}}))
        );
    }

    #[test]
    fn kv2_write_cycles_over_the_kv1_write_keys_in_a_bounded_mount() {
        let kv1 = select(&["kv1-write".into()]).unwrap().remove(0);
        let write = select(&["kv2-write".into()]).unwrap().remove(0);
        let [call] = write.calls.as_slice() else {
            panic!("one request per operation");
        };
        assert_eq!(call.method, Method::POST);
        let paths = call.paths(write.keys);
        assert_eq!(paths.len(), kv1.calls[0].paths(kv1.keys).len());
        assert_eq!(paths[0], "kv2/data/bench-0");
        assert_eq!(paths.iter().collect::<HashSet<_>>().len(), paths.len());
        assert!(!paths.contains(&"kv2/data/bench-read".to_string()));
        // KV v2 wants the secret under "data"; the answer carries the
        // version written.
        let body = call.body.as_ref().unwrap();
        assert!(body.pointer("/data/value").is_some_and(Value::is_string));
        assert_eq!(call.expect.status, Some(200));
        assert_eq!(call.expect.checks, [Check::Present("/data/version")]);
        // Every write adds a version: the mount keeps a bounded number.
        let config = write.setup.iter().find(|s| s.path == "kv2/config").unwrap();
        assert_eq!(config.body, Some(json!({"max_versions": 10})));
        assert_eq!(write.setup[0].path, "sys/mounts/kv2");
    }

    /// The `path "..." { capabilities = [...] }` rules of a policy file
    /// laid out like `bench/policy.hcl` (one attribute per line).
    fn policy_rules(text: &str) -> Vec<(String, Vec<String>)> {
        let quoted = |line: &str| -> Vec<String> {
            line.split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        let mut rules: Vec<(String, Vec<String>)> = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with("path ") {
                rules.push((quoted(line).remove(0), vec![]));
            } else if line.starts_with("capabilities") {
                rules.last_mut().unwrap().1 = quoted(line);
            }
        }
        rules
    }

    #[test]
    fn bench_policy_grants_what_every_measured_request_needs() {
        let rules = policy_rules(include_str!("../policy.hcl"));
        // Unauthenticated, or granted by the `default` policy the bench
        // token also holds.
        let elsewhere = [
            "sys/health",
            "auth/token/lookup-self",
            "auth/approle/login",
            "auth/userpass/login/bench",
            "auth/kubernetes/login",
            "auth/kubernetes-review/login",
            "auth/gcp/login",
        ];
        for workload in all() {
            for call in workload
                .calls
                .iter()
                .filter(|c| c.token == TokenFrom::Bench)
            {
                for path in call.paths(workload.keys) {
                    if elsewhere.contains(&path.as_str()) {
                        continue;
                    }
                    let rule = rules.iter().find(|(glob, _)| match glob.strip_suffix('*') {
                        Some(prefix) => path.starts_with(prefix),
                        None => path == *glob,
                    });
                    let Some((_, caps)) = rule else {
                        panic!("{}: no policy rule for {path}", workload.name);
                    };
                    // Writes to KV keys that may not exist yet need create.
                    let needed: &[&str] = match call.method {
                        Method::GET => &["read"],
                        _ if path.starts_with("kv") => &["create", "update"],
                        _ => &["update"],
                    };
                    for cap in needed {
                        assert!(
                            caps.iter().any(|c| c == cap),
                            "{}: {path} lacks {cap}",
                            workload.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn token_create_asks_for_a_default_token_and_wants_it_back() {
        let create = select(&["token-create".into()]).unwrap().remove(0);
        let [call] = create.calls.as_slice() else {
            panic!("one request per operation");
        };
        assert_eq!(
            (call.method.clone(), call.path),
            (Method::POST, "auth/token/create")
        );
        assert_eq!(
            call.body,
            Some(json!({"policies": ["default"], "ttl": "10m"}))
        );
        assert_eq!(call.token, TokenFrom::Bench);
        assert_eq!(call.expect.status, Some(200));
        assert_eq!(call.expect.checks, [Check::Present("/auth/client_token")]);
        assert!(create.operation_note().is_none());
    }

    #[test]
    fn wrap_unwrap_feeds_the_wrapping_token_of_a_wrap_into_an_unwrap() {
        let wrap = select(&["wrap".into()]).unwrap().remove(0);
        let pair = select(&["wrap-unwrap".into()]).unwrap().remove(0);
        assert_eq!(pair.calls.len(), 2);
        // The first half is exactly the wrap workload.
        let (first, alone) = (&pair.calls[0], &wrap.calls[0]);
        assert_eq!(
            (&first.method, first.path, &first.body, &first.headers),
            (&alone.method, alone.path, &alone.body, &alone.headers)
        );
        assert_eq!(first.headers, [("X-Vault-Wrap-TTL", "5m")]);
        assert_eq!(first.body, Some(json!({"secret": "value"})));
        assert_eq!(first.expect.checks, [Check::Present("/wrap_info/token")]);
        let unwrap = &pair.calls[1];
        assert_eq!(
            (unwrap.method.clone(), unwrap.path),
            (Method::POST, "sys/wrapping/unwrap")
        );
        assert_eq!(unwrap.token, TokenFrom::Answer("/wrap_info/token"));
        assert!(unwrap.body.is_none() && unwrap.headers.is_empty());
        assert_eq!(
            unwrap.expect.checks,
            [Check::Equals("/data/secret", json!("value"))]
        );
        let note = pair.operation_note().unwrap();
        assert!(
            note.starts_with("wrap-unwrap: one operation is 2 requests"),
            "{note}"
        );
        assert!(wrap.operation_note().is_none());
    }

    /// A server that answers the first `busy` requests with 400 (as a fresh
    /// KV v2 mount on raft does), then 204; returns its address and a count
    /// of the requests it received.
    async fn becomes_ready_after(
        busy: usize,
    ) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let count = Arc::clone(&count);
                let svc = hyper::service::service_fn(move |_req| {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = if n < busy {
                        (
                            400,
                            r#"{"errors":["Upgrading from non-versioned to versioned data."]}"#,
                        )
                    } else {
                        (204, "")
                    };
                    async move {
                        hyper::Response::builder()
                            .status(status)
                            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc),
                );
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn patient_steps_wait_for_a_mount_that_is_still_upgrading() {
        let root = client::token_header("root").unwrap();
        let (addr, seen) = becomes_ready_after(3).await;
        config_kv2().run(addr, &root, &runtime()).await.unwrap();
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 4);

        // Without patience the first 400 is the step's error, and it says
        // what the server answered.
        let (addr, seen) = becomes_ready_after(3).await;
        let err = mount_kv2()
            .run(addr, &root, &runtime())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("400") && err.contains("Upgrading"), "{err}");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn patience_runs_out_with_the_last_answer_as_the_error() {
        let root = client::token_header("root").unwrap();
        let (addr, seen) = becomes_ready_after(usize::MAX).await;
        let step = Step {
            patience: STEP_RETRY_INTERVAL * 10,
            ..config_kv2()
        };
        let err = step
            .run(addr, &root, &runtime())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("POST /v1/kv2/config answered 400"), "{err}");
        assert!(
            seen.load(std::sync::atomic::Ordering::SeqCst) >= 2,
            "it retried"
        );
    }

    /// A runtime with recognisable values.
    pub(crate) fn runtime() -> Runtime {
        Runtime {
            k8s_url: "https://127.0.0.1:6443".into(),
            k8s_ca: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n".into(),
            k8s_pem: "-----BEGIN PUBLIC KEY-----\nKEY\n-----END PUBLIC KEY-----\n".into(),
            k8s_jwt: Zeroizing::new("header.claims.signature".into()),
            gcp_url: "https://127.0.0.1:8443".into(),
            gcp_credentials: Zeroizing::new(r#"{"private_key":"SECRET-KEY"}"#.into()),
            gcp_jwt: Zeroizing::new("gcp.cached.jwt".into()),
            gcp_cold_jwts: (0..3)
                .map(|n| Zeroizing::new(format!("gcp.cold-{n}.jwt")))
                .collect(),
        }
    }

    #[test]
    fn runtime_fills_placeholders_wherever_they_are_and_nothing_else() {
        let rt = runtime();
        let body = json!({
            "host": K8S_URL,
            "keys": [K8S_PEM, "static"],
            "nested": {"jwt": K8S_JWT, "n": 3, "ok": true, "none": null},
            "url": format!("{K8S_URL}/apis"),
            "path": "kv1/bench-{n}",
        });
        assert_eq!(
            rt.fill(&body),
            json!({
                "host": "https://127.0.0.1:6443",
                "keys": [rt.k8s_pem, "static"],
                "nested": {"jwt": "header.claims.signature", "n": 3, "ok": true, "none": null},
                "url": "https://127.0.0.1:6443/apis",
                "path": "kv1/bench-{n}",
            })
        );
        let printed = format!("{rt:?}");
        for secret in ["signature", "SECRET-KEY", "gcp.cached", "gcp.cold"] {
            assert!(!printed.contains(secret), "{secret} printed: {printed}");
        }
    }

    #[test]
    fn every_placeholder_in_the_workloads_is_one_the_runtime_fills() {
        let rt = runtime();
        let bodies = all().into_iter().flat_map(|w| {
            let setup = w.setup.into_iter().filter_map(|s| s.body);
            let calls = w.calls.into_iter().filter_map(|c| c.body);
            setup.chain(calls).collect::<Vec<_>>()
        });
        for body in bodies {
            for filled in rt.fill_bodies(&body) {
                let filled = filled.to_string();
                assert!(!filled.contains("{k8s"), "{filled}");
                assert!(!filled.contains("{gcp"), "{filled}");
            }
        }
    }

    #[test]
    fn gcp_logins_configure_the_fake_google_and_log_in_as_the_bench_account() {
        let picked = select(&["gcp-login-cached".into(), "gcp-login-cold".into()]).unwrap();
        let rt = runtime();
        for workload in &picked {
            let order: Vec<_> = workload.setup.iter().map(|s| s.path).collect();
            assert_eq!(
                order,
                ["sys/auth/gcp", "auth/gcp/config", "auth/gcp/role/bench"]
            );
            assert_eq!(workload.setup[0].body, Some(json!({"type": "gcp"})));
            let config = rt.fill(workload.setup[1].body.as_ref().unwrap());
            assert_eq!(
                config,
                json!({
                    "credentials": *rt.gcp_credentials,
                    "custom_endpoint": {"api": rt.gcp_url, "iam": rt.gcp_url},
                })
            );
            let role = workload.setup[2].body.as_ref().unwrap();
            assert_eq!(role["type"], "iam");
            assert_eq!(role["project_id"], crate::gcp::PROJECT);
            assert_eq!(role["service_accounts"], json!([crate::gcp::EMAIL]));
            assert_eq!(role["token_policies"], "default");
            let [login] = workload.calls.as_slice() else {
                panic!("one request per operation");
            };
            assert_eq!(
                (login.method.clone(), login.path),
                (Method::POST, "auth/gcp/login")
            );
            assert_eq!(login.expect.status, Some(200));
            assert_eq!(login.expect.checks, [Check::Present("/auth/client_token")]);
        }
        // The cached login sends one JWT; the cold one a JWT of the pool
        // per iteration, each once.
        let (cached, cold) = (&picked[0], &picked[1]);
        assert!(!cached.uses_cold_pool());
        assert_eq!(
            rt.fill_bodies(cached.calls[0].body.as_ref().unwrap()),
            [json!({"role": "bench", "jwt": "gcp.cached.jwt"})]
        );
        assert!(cold.uses_cold_pool());
        assert_eq!(
            rt.fill_bodies(cold.calls[0].body.as_ref().unwrap()),
            [
                json!({"role": "bench", "jwt": "gcp.cold-0.jwt"}),
                json!({"role": "bench", "jwt": "gcp.cold-1.jwt"}),
                json!({"role": "bench", "jwt": "gcp.cold-2.jwt"}),
            ]
        );
        // Without a pool there is nothing to send.
        let empty = Runtime {
            gcp_cold_jwts: vec![],
            ..runtime()
        };
        assert!(empty
            .fill_bodies(cold.calls[0].body.as_ref().unwrap())
            .is_empty());
    }

    #[test]
    fn k8s_logins_use_their_own_mounts_configured_for_pem_keys_or_review() {
        let picked = select(&["k8s-login-pem".into(), "k8s-login-review".into()]).unwrap();
        let rt = runtime();
        for (workload, mount, pem) in [
            (&picked[0], "kubernetes", true),
            (&picked[1], "kubernetes-review", false),
        ] {
            let order: Vec<_> = workload.setup.iter().map(|s| s.path).collect();
            assert_eq!(
                order,
                [
                    format!("sys/auth/{mount}"),
                    format!("auth/{mount}/config"),
                    format!("auth/{mount}/role/bench"),
                ]
            );
            assert_eq!(workload.setup[0].body, Some(json!({"type": "kubernetes"})));
            let config = rt.fill(workload.setup[1].body.as_ref().unwrap());
            assert_eq!(config["kubernetes_host"], json!(rt.k8s_url));
            assert_eq!(config["kubernetes_ca_cert"], json!(rt.k8s_ca));
            if pem {
                assert_eq!(config["pem_keys"], json!([rt.k8s_pem]));
            } else {
                assert!(config.get("pem_keys").is_none(), "{mount} must review");
            }
            let role = workload.setup[2].body.as_ref().unwrap();
            assert_eq!(role["bound_service_account_names"], "bench");
            assert_eq!(role["bound_service_account_namespaces"], "bench");
            assert_eq!(role["token_policies"], "default");

            let [login] = workload.calls.as_slice() else {
                panic!("one request per operation");
            };
            assert_eq!(
                (login.method.clone(), login.path.to_string()),
                (Method::POST, format!("auth/{mount}/login"))
            );
            assert_eq!(
                rt.fill(login.body.as_ref().unwrap()),
                json!({"role": "bench", "jwt": "header.claims.signature"})
            );
            assert_eq!(login.expect.status, Some(200));
            assert_eq!(login.expect.checks, [Check::Present("/auth/client_token")]);
        }
    }

    #[test]
    fn gatekeeper_token_asks_a_gatekeeper_set_up_for_the_mesos_bench_task() {
        let gk = select(&["gatekeeper-token".into()]).unwrap().remove(0);
        assert_eq!(gk.front, Front::Gatekeeper);
        assert!(gk.strongroom_only.is_none(), "OpenBao runs it too");
        let [token] = gk.calls.as_slice() else {
            panic!("one request per operation");
        };
        assert_eq!((token.method.clone(), token.path), (Method::POST, "/token"));
        assert_eq!(gk.front.uri(token.path).unwrap().path(), "/token");
        assert_eq!(token.body, Some(json!({"task_id": "bench-task"})));
        assert_eq!(token.token, TokenFrom::Nowhere, "a task has no Vault token");
        assert_eq!(token.expect.status, Some(200));
        assert_eq!(token.expect.checks, [Check::Present("/token")]);

        let order: Vec<_> = gk.setup.iter().map(|s| s.path).collect();
        assert_eq!(
            order,
            [
                "sys/auth/approle",
                "auth/approle/role/bench",
                "sys/mounts/secret",
                "secret/data/gatekeeper",
            ]
        );
        // The AppRole steps are approle-login's, so a run of both makes
        // them once.
        let approle = select(&["approle-login".into()]).unwrap().remove(0);
        for step in &gk.setup[..2] {
            let same = approle.setup.iter().find(|s| s.name == step.name).unwrap();
            assert_eq!((&same.path, &same.body), (&step.path, &step.body));
        }
        // secret/ is mounted only where a -dev server has not already.
        assert_eq!(gk.setup[2].unless, Some("secret/config"));
        // The policy names the task by scheduler, framework and name, and
        // allows far more uses than a run makes.
        let policy = gk.setup[3].body.as_ref().unwrap();
        let (_, framework, name) = GATEKEEPER_TASK;
        let entry = &policy["data"][format!("mesos:{framework}:{name}")];
        assert_eq!(entry["roles"], json!(["bench"]));
        assert!(entry["num_uses"].as_u64().unwrap() >= 1_000_000_000);
        let (_, family) = GATEKEEPER_ECS_TASK;
        assert_eq!(policy["data"][format!("ecs:{family}")], *entry);
        assert!(gk.setup[3].patience > Duration::ZERO, "waits for the mount");

        // The ECS row asks the same Gatekeeper, set up the same way, about
        // the ECS bench task.
        let ecs = select(&["gatekeeper-token-ecs".into()]).unwrap().remove(0);
        assert_eq!(ecs.front, Front::Gatekeeper);
        assert_eq!(
            ecs.calls[0].body,
            Some(json!({"task_id": GATEKEEPER_ECS_TASK.0, "scheduler": "ecs"}))
        );
        let same: Vec<_> = ecs.setup.iter().map(|s| (s.name, s.path)).collect();
        let gk_steps: Vec<_> = gk.setup.iter().map(|s| (s.name, s.path)).collect();
        assert_eq!(same, gk_steps);

        // Every other workload goes to the server itself.
        let others = all()
            .into_iter()
            .filter(|w| !w.name.starts_with("gatekeeper-token"));
        for w in others {
            assert_eq!(w.front, Front::Server, "{}", w.name);
            assert_eq!(w.front.uri("sys/health").unwrap().path(), "/v1/sys/health");
        }
    }

    #[tokio::test]
    async fn a_step_whose_effect_is_there_already_is_skipped() {
        let root = client::token_header("root").unwrap();
        let mount = gatekeeper_setup().remove(2);
        // The probe answers 2xx: nothing else is sent.
        let (addr, seen) = becomes_ready_after(0).await;
        mount.run(addr, &root, &runtime()).await.unwrap();
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The probe fails: the step runs, and its own answer decides.
        let (addr, seen) = becomes_ready_after(usize::MAX).await;
        let err = mount.run(addr, &root, &runtime()).await.unwrap_err();
        assert!(err.to_string().contains("sys/mounts/secret"), "{err}");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn pairing_names_round_trip() {
        for p in Pairing::ALL {
            assert_eq!(Pairing::parse(p.name()).unwrap(), p);
        }
        assert_eq!(
            Pairing::parse("prod")
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("unknown pairing \"prod\" (known: dev, durable, postgresql, dev-audit)")
        );
    }
}
