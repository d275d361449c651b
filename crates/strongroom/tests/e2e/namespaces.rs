//! Namespaces end to end, in the real binary over HTTP: Kubernetes and GCP
//! logins inside a namespace (through the `X-Vault-Namespace` header and
//! through a path prefix) against the fake Kubernetes API and the Google
//! emulator; deleting a namespace revokes its tokens and leases and leaves
//! its siblings alone; and a bounded concurrency run of namespace creates,
//! deletes, mounts and requests in several namespaces at once, which must
//! finish with no request stuck and no 5xx (OpenBao's issues 2166, 2226
//! and 2625 were deadlocks around namespace deletion).
//!
//! All but the GCP test also run against OpenBao
//! (`STRONGROOM_TEST_TARGET=bao`), which checks the expectations.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strongroom_test::gcp::{self, Emulator};
use strongroom_test::kube::{legacy_claims, FakeKube, RsaSigner};
use strongroom_test::server::{target, Call, Kind, Reply, Server};

/// The header that selects a namespace.
const NS: &str = "X-Vault-Namespace";

/// The reviewer JWT the server sends to the fake Kubernetes API.
const REVIEWER: &str = "reviewer-jwt-for-the-namespace-tests";

/// How many times a deleted namespace is polled before a test gives up
/// (deletion is asynchronous; 200 tries 25 ms apart is 5 s).
const GONE_TRIES: usize = 200;

/// `call` in namespace `ns` through the header.
fn in_ns(ns: &str, call: Call) -> Call {
    call.header(NS, ns)
}

/// Sends `call`, asserting `status`; the reply.
#[track_caller]
fn expect(r: Reply, status: u16, what: &str) -> Reply {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    r
}

/// The string at `ptr` of `r`.
fn s(r: &Reply, ptr: &str) -> String {
    r.body
        .pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Creates namespace `name` in `parent` (`""`: root); its id.
async fn create_ns(server: &Server, parent: &str, name: &str) -> String {
    let call = Call::post(&format!("sys/namespaces/{name}"), json!({}));
    let call = if parent.is_empty() {
        call
    } else {
        in_ns(parent, call)
    };
    let r = expect(server.send(&call).await, 200, &format!("create {name}"));
    let id = s(&r, "/data/id");
    assert_eq!(
        id.len(),
        6,
        "a namespace id is 6 base62 characters: {}",
        r.body
    );
    id
}

/// Deletes root's child `name` and waits, a bounded number of times, for
/// it to be gone.
async fn delete_ns(server: &Server, name: &str) {
    let r = expect(
        server
            .send(&Call::delete(&format!("sys/namespaces/{name}")))
            .await,
        200,
        &format!("delete {name}"),
    );
    assert_eq!(
        r.body["data"],
        json!({"status": "in-progress"}),
        "{}",
        r.body
    );
    let read = Call::get(&format!("sys/namespaces/{name}"));
    for _ in 0..GONE_TRIES {
        if server.send(&read).await.status == 404 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("namespace {name} still there after its deletion");
}

/// Asserts a login answer made a token of the namespace with id `nsid`,
/// which looks itself up as of `ns_path` and `login_path`; the token.
async fn assert_namespaced_login(
    server: &Server,
    r: &Reply,
    nsid: &str,
    ns_path: &str,
    login_path: &str,
) -> String {
    assert_eq!(r.status, 200, "login: {}", r.body);
    let token = s(r, "/auth/client_token");
    let accessor = s(r, "/auth/accessor");
    assert!(
        token.ends_with(&format!(".{nsid}")) && accessor.ends_with(&format!(".{nsid}")),
        "the login's token and accessor carry the namespace id {nsid}: {}",
        r.body
    );
    let ns = ns_path.trim_end_matches('/');
    let me = expect(
        server
            .send(&in_ns(
                ns,
                Call::get("auth/token/lookup-self").token(&token),
            ))
            .await,
        200,
        "lookup-self of the login token",
    );
    assert_eq!(
        me.body["data"]["namespace_path"],
        json!(ns_path),
        "{}",
        me.body
    );
    assert_eq!(me.body["data"]["path"], json!(login_path), "{}", me.body);
    token
}

/// Mounts a KV v1 `secret/` in `ns` with `secret/app` = `{"in": ns}`, and
/// a policy `reader` on it (which may also create child tokens).
async fn secret_and_reader(server: &Server, ns: &str) {
    expect(
        server
            .send(&in_ns(
                ns,
                Call::post(
                    "sys/mounts/secret",
                    json!({"type": "kv", "options": {"version": "1"}}),
                ),
            ))
            .await,
        204,
        "mount secret/",
    );
    expect(
        server
            .send(&in_ns(ns, Call::post("secret/app", json!({ "in": ns }))))
            .await,
        204,
        "write secret/app",
    );
    expect(
        server
            .send(&in_ns(
                ns,
                Call::put(
                    "sys/policies/acl/reader",
                    json!({"policy": "path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n\
                        path \"auth/token/create\" {\n  capabilities = [\"update\"]\n}\n"}),
                ),
            ))
            .await,
        204,
        "write policy reader",
    );
}

/// The namespace's token reads its own secret and nothing in root.
async fn assert_scoped(server: &Server, ns: &str, token: &str) {
    let r = expect(
        server
            .send(&in_ns(ns, Call::get("secret/app").token(token)))
            .await,
        200,
        "the namespace's token reads its secret",
    );
    assert_eq!(r.body["data"], json!({ "in": ns }));
    let r = expect(
        server
            .send(&Call::get(&format!("{ns}/secret/app")).token(token))
            .await,
        200,
        "the namespace's token reads its secret through the path",
    );
    assert_eq!(r.body["data"], json!({ "in": ns }));
    expect(
        server.send(&Call::get("sys/mounts").token(token)).await,
        403,
        "the namespace's token in root",
    );
}

#[tokio::test]
async fn kubernetes_login_in_a_namespace() {
    let signer = Arc::new(RsaSigner::generate());
    let kube = FakeKube::start(signer.clone()).await;
    kube.require_reviewer(REVIEWER);
    let server = Server::dev(target());
    let nsid = create_ns(&server, "", "team").await;
    let child = create_ns(&server, "team", "app").await;
    for (ns, id) in [("team", &nsid), ("team/app", &child)] {
        secret_and_reader(&server, ns).await;
        expect(
            server
                .send(&in_ns(
                    ns,
                    Call::post("sys/auth/kubernetes", json!({"type": "kubernetes"})),
                ))
                .await,
            204,
            "enable kubernetes",
        );
        // Configured through the path prefix, the role through the header.
        expect(
            server
                .send(&Call::post(
                    &format!("{ns}/auth/kubernetes/config"),
                    json!({"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem,
                           "token_reviewer_jwt": REVIEWER}),
                ))
                .await,
            204,
            "kubernetes config",
        );
        expect(
            server
                .send(&in_ns(
                    ns,
                    Call::post(
                        "auth/kubernetes/role/app",
                        json!({"bound_service_account_names": "app",
                               "bound_service_account_namespaces": "default",
                               "token_policies": "reader"}),
                    ),
                ))
                .await,
            204,
            "kubernetes role",
        );
        let jwt = signer.sign(&legacy_claims("default", "app"));
        let body = json!({"role": "app", "jwt": jwt});
        let ns_path = format!("{ns}/");
        for call in [
            in_ns(ns, Call::post("auth/kubernetes/login", body.clone())),
            Call::post(&format!("{ns}/auth/kubernetes/login"), body.clone()),
        ] {
            let what = call.describe();
            let r = server.send(&call.anonymous()).await;
            assert_eq!(r.status, 200, "{what}: {}", r.body);
            assert_eq!(r.body["auth"]["policies"], json!(["default", "reader"]));
            let token =
                assert_namespaced_login(&server, &r, id, &ns_path, "auth/kubernetes/login").await;
            assert_scoped(&server, ns, &token).await;
        }
    }
    // team/app's token is not valid in its parent team.
    let jwt = signer.sign(&legacy_claims("default", "app"));
    let r = server
        .send(
            &Call::post(
                "team/app/auth/kubernetes/login",
                json!({"role": "app", "jwt": jwt}),
            )
            .anonymous(),
        )
        .await;
    let token = s(&expect(r, 200, "login in team/app"), "/auth/client_token");
    expect(
        server
            .send(&in_ns("team", Call::get("secret/app").token(&token)))
            .await,
        403,
        "a child namespace's token in its parent",
    );
    // The root namespace has no kubernetes/.
    let r = server
        .send(&Call::post("auth/kubernetes/login", json!({"role": "app", "jwt": jwt})).anonymous())
        .await;
    assert!(r.status >= 400 && r.body["auth"].is_null(), "{r:?}");
}

#[tokio::test]
async fn gcp_login_in_a_namespace() {
    // GCP auth is not in OpenBao's dev server: Strongroom only.
    let emu = Emulator::start().await;
    let ca = emu.ca_file.to_string_lossy().into_owned();
    let server = Server::dev_with_env(Kind::Strongroom, &[("SSL_CERT_FILE", &ca)]);
    let sa = emu.add_account("app", "proj-a");
    let kid = emu.add_key(&sa.email);
    let nsid = create_ns(&server, "", "team").await;
    secret_and_reader(&server, "team").await;
    expect(
        server
            .send(&Call::post("team/sys/auth/gcp", json!({"type": "gcp"})))
            .await,
        204,
        "enable gcp in team",
    );
    expect(
        server
            .send(&in_ns(
                "team",
                Call::post(
                    "auth/gcp/config",
                    json!({"credentials": emu.credentials_json(),
                           "custom_endpoint": emu.custom_endpoint()}),
                ),
            ))
            .await,
        204,
        "gcp config in team",
    );
    expect(
        server
            .send(&in_ns(
                "team",
                Call::post(
                    "auth/gcp/role/r",
                    json!({"type": "iam", "project_id": "proj-a",
                           "service_accounts": [sa.email], "policies": "reader"}),
                ),
            ))
            .await,
        204,
        "gcp role in team",
    );
    for via_header in [true, false] {
        let jwt = emu.sign_login(&sa.email, &kid, "vault/r", gcp::now() + 300);
        let body = json!({"role": "r", "jwt": jwt});
        let call = if via_header {
            in_ns("team", Call::post("auth/gcp/login", body))
        } else {
            Call::post("team/auth/gcp/login", body)
        };
        let r = server.send(&call.anonymous()).await;
        assert_eq!(
            r.status, 200,
            "gcp login (header: {via_header}): {}",
            r.body
        );
        assert_eq!(
            r.body["auth"]["metadata"]["service_account_email"],
            json!(sa.email)
        );
        assert_eq!(r.body["auth"]["policies"], json!(["default", "reader"]));
        let token = assert_namespaced_login(&server, &r, &nsid, "team/", "auth/gcp/login").await;
        assert_scoped(&server, "team", &token).await;
    }
    // The root namespace has no gcp/.
    let jwt = emu.sign_login(&sa.email, &kid, "vault/r", gcp::now() + 300);
    let r = server
        .send(&Call::post("auth/gcp/login", json!({"role": "r", "jwt": jwt})).anonymous())
        .await;
    assert!(r.status >= 400 && r.body["auth"].is_null(), "{r:?}");
}

#[tokio::test]
async fn deleting_a_namespace_revokes_its_tokens_and_leases() {
    let server = Server::dev(target());
    create_ns(&server, "", "gone").await;
    create_ns(&server, "", "kept").await;
    for ns in ["gone", "kept"] {
        secret_and_reader(&server, ns).await;
        expect(
            server
                .send(&in_ns(
                    ns,
                    Call::post("sys/auth/approle", json!({"type": "approle"})),
                ))
                .await,
            204,
            "enable approle",
        );
        expect(
            server
                .send(&in_ns(
                    ns,
                    Call::post(
                        "auth/approle/role/web",
                        json!({"token_policies": ["reader"], "role_id": "web-role"}),
                    ),
                ))
                .await,
            204,
            "approle role",
        );
    }
    let mut tokens = Vec::new();
    for ns in ["gone", "kept"] {
        let r = expect(
            server
                .send(&in_ns(
                    ns,
                    Call::post("auth/approle/role/web/secret-id", json!({})),
                ))
                .await,
            200,
            "secret-id",
        );
        let sid = s(&r, "/data/secret_id");
        let r = server
            .send(
                &in_ns(
                    ns,
                    Call::post(
                        "auth/approle/login",
                        json!({"role_id": "web-role", "secret_id": sid}),
                    ),
                )
                .anonymous(),
            )
            .await;
        let login = s(&expect(r, 200, "approle login"), "/auth/client_token");
        // A child token of the login token, and an orphan created by root.
        let r = server
            .send(
                &in_ns(
                    ns,
                    Call::post("auth/token/create", json!({"policies": ["reader"]})),
                )
                .token(&login),
            )
            .await;
        let child = s(&expect(r, 200, "child token"), "/auth/client_token");
        let r = server
            .send(&in_ns(
                ns,
                Call::post("auth/token/create-orphan", json!({"policies": ["reader"]})),
            ))
            .await;
        let orphan = s(&expect(r, 200, "orphan token"), "/auth/client_token");
        // The leases of the namespace's logins.
        let r = server
            .send(&in_ns(
                ns,
                Call::list("sys/leases/lookup/auth/approle/login/"),
            ))
            .await;
        let r = expect(r, 200, "the namespace lists its login leases");
        assert_eq!(
            r.body["data"]["keys"].as_array().map(Vec::len),
            Some(1),
            "{}",
            r.body
        );
        for t in [&login, &child, &orphan] {
            assert_scoped(&server, ns, t).await;
        }
        tokens.push((ns, [login, child, orphan]));
    }

    delete_ns(&server, "gone").await;
    for (ns, ts) in &tokens {
        for t in ts {
            let r = server
                .send(&Call::get("auth/token/lookup-self").token(t))
                .await;
            let r2 = server
                .send(&in_ns(ns, Call::get("secret/app").token(t)))
                .await;
            if *ns == "gone" {
                assert_eq!(
                    r.status, 403,
                    "a deleted namespace's token is revoked: {}",
                    r.body
                );
                assert!(r2.status == 403 || r2.status == 404, "{r2:?}");
            } else {
                assert_eq!(r.status, 200, "a sibling's token survives: {}", r.body);
                assert_eq!(r2.status, 200, "a sibling's token still reads: {}", r2.body);
                assert_eq!(r2.body["data"], json!({"in": "kept"}));
            }
        }
    }
    // kept's lease is still there.
    let r = server
        .send(&in_ns(
            "kept",
            Call::list("sys/leases/lookup/auth/approle/login/"),
        ))
        .await;
    assert_eq!(
        expect(r, 200, "kept's leases").body["data"]["keys"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Recreated: empty, no leases, the old tokens refused in it.
    create_ns(&server, "", "gone").await;
    let r = expect(
        server.send(&in_ns("gone", Call::get("sys/mounts"))).await,
        200,
        "mounts",
    );
    assert!(r.body["data"]["secret/"].is_null(), "{}", r.body);
    let r = expect(
        server.send(&in_ns("gone", Call::get("sys/auth"))).await,
        200,
        "auth mounts",
    );
    assert!(r.body["data"]["approle/"].is_null(), "{}", r.body);
    let r = expect(
        server.send(&in_ns("gone", Call::get("sys/policy"))).await,
        200,
        "policies",
    );
    assert_eq!(r.body["data"]["policies"], json!(["default"]));
    let r = server
        .send(&in_ns(
            "gone",
            Call::list("sys/leases/lookup/auth/approle/login/"),
        ))
        .await;
    assert_eq!(
        r.status, 404,
        "no leases in the recreated namespace: {}",
        r.body
    );
    for t in &tokens[0].1 {
        let r = server
            .send(&in_ns("gone", Call::get("auth/token/lookup-self").token(t)))
            .await;
        assert_eq!(
            r.status, 403,
            "an old token in the recreated namespace: {}",
            r.body
        );
    }
}

/// What the concurrency run counts and what it found wrong.
#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    /// Churn rounds whose namespace was created and whose deletion was
    /// accepted.
    rounds: AtomicUsize,
    problems: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn problem(&self, what: String) {
        if let Ok(mut p) = self.problems.lock() {
            p.push(what);
        }
    }
}

/// A client for the concurrency run: every request has a deadline.
struct Client {
    http: reqwest::Client,
    addr: String,
    token: String,
    tally: Arc<Tally>,
}

/// How long one request of the concurrency run may take before it counts
/// as stuck.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    /// Sends one request; records a timeout or a 5xx as a problem. The
    /// status, or None when there was no answer.
    async fn send(
        &self,
        method: &str,
        path: &str,
        ns: Option<&str>,
        body: Option<Value>,
    ) -> Option<u16> {
        self.tally.requests.fetch_add(1, Ordering::Relaxed);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method.clone(), format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token);
        if let Some(ns) = ns {
            req = req.header(NS, ns);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let what = format!("{method} {path} (namespace {ns:?})");
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                if status >= 500 {
                    self.tally.problem(format!("{what}: {status} {text}"));
                }
                Some(status)
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "stuck (timed out)"
                } else {
                    "failed"
                };
                self.tally.problem(format!("{what}: {kind}: {e}"));
                None
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_deletes_mounts_and_requests() {
    const RUN: Duration = Duration::from_secs(10);
    const STABLE: usize = 3;
    const CHURN: usize = 3;
    let server = Server::dev(target());
    let tally = Arc::new(Tally::default());
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap(),
        addr: server.addr.clone(),
        token: server.root_token.clone().unwrap(),
        tally: tally.clone(),
    });
    // Stable namespaces (each with a child) that live through the run.
    for i in 0..STABLE {
        let ns = format!("stable{i}");
        create_ns(&server, "", &ns).await;
        create_ns(&server, &ns, "child").await;
        for n in [ns.clone(), format!("{ns}/child")] {
            expect(
                server
                    .send(&in_ns(
                        &n,
                        Call::post(
                            "sys/mounts/kv",
                            json!({"type": "kv", "options": {"version": "2"}}),
                        ),
                    ))
                    .await,
                204,
                "mount kv",
            );
        }
    }
    let deadline = Instant::now() + RUN;
    let mut tasks = Vec::new();
    // Churn: create a namespace tree, mount, write, read, delete, again.
    for i in 0..CHURN {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut round = 0usize;
            while Instant::now() < deadline {
                let name = format!("churn{i}");
                let child = format!("{name}/sub");
                let created = c
                    .send(
                        "POST",
                        &format!("sys/namespaces/{name}"),
                        None,
                        Some(json!({})),
                    )
                    .await;
                c.send("POST", "sys/namespaces/sub", Some(&name), Some(json!({})))
                    .await;
                for ns in [&name, &child] {
                    c.send(
                        "POST",
                        "sys/mounts/kv",
                        Some(ns),
                        Some(json!({"type": "kv", "options": {"version": "1"}})),
                    )
                    .await;
                    c.send("POST", "kv/x", Some(ns), Some(json!({"round": round})))
                        .await;
                    c.send("GET", "kv/x", Some(ns), None).await;
                    c.send(
                        "POST",
                        "auth/token/create",
                        Some(ns),
                        Some(json!({"policies": ["default"]})),
                    )
                    .await;
                }
                // Child first, then the parent (a parent with children is refused).
                c.send("DELETE", "sys/namespaces/sub", Some(&name), None)
                    .await;
                for _ in 0..GONE_TRIES {
                    if c.send("GET", "sys/namespaces/sub", Some(&name), None).await != Some(200) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let deleted = c
                    .send("DELETE", &format!("sys/namespaces/{name}"), None, None)
                    .await;
                if created == Some(200) && deleted == Some(200) {
                    c.tally.rounds.fetch_add(1, Ordering::Relaxed);
                }
                for _ in 0..GONE_TRIES {
                    if c.send("GET", &format!("sys/namespaces/{name}"), None, None)
                        .await
                        != Some(200)
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                round += 1;
            }
        }));
    }
    // Requests in the stable namespaces, and in the churning ones (which
    // may or may not exist at that moment: any 4xx is fine, a 5xx is not).
    for i in 0..STABLE {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let ns = format!("stable{i}");
            let child = format!("{ns}/child");
            let mut round = 0usize;
            while Instant::now() < deadline {
                for n in [&ns, &child] {
                    c.send(
                        "POST",
                        "kv/data/x",
                        Some(n),
                        Some(json!({"data": {"round": round}})),
                    )
                    .await;
                    c.send("GET", "kv/data/x", Some(n), None).await;
                }
                c.send("GET", &format!("{ns}/child/kv/data/x"), None, None)
                    .await;
                let m = format!("sys/mounts/m{round}");
                c.send("POST", &m, Some(&child), Some(json!({"type": "kv"})))
                    .await;
                c.send("LIST", "sys/namespaces", None, None).await;
                c.send(
                    "GET",
                    "kv/x",
                    Some(&format!("churn{}", round % CHURN)),
                    None,
                )
                .await;
                c.send(
                    "GET",
                    &format!("churn{}/sub/kv/x", round % CHURN),
                    None,
                    None,
                )
                .await;
                c.send("DELETE", &m, Some(&child), None).await;
                round += 1;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let problems = tally.problems.lock().unwrap().clone();
    assert!(
        problems.is_empty(),
        "{} of {} requests were stuck or answered 5xx:\n{}",
        problems.len(),
        tally.requests.load(Ordering::Relaxed),
        problems.join("\n")
    );
    let (requests, rounds) = (
        tally.requests.load(Ordering::Relaxed),
        tally.rounds.load(Ordering::Relaxed),
    );
    eprintln!("concurrency run: {requests} requests, {rounds} create-delete rounds");
    assert!(
        requests > 100 && rounds >= CHURN,
        "the run made too little to mean anything: {requests} requests, {rounds} create-delete rounds"
    );
    // Afterwards the server still answers, and the stable data is there.
    let r = server.send(&Call::get("sys/health")).await;
    assert_eq!(r.status, 200, "{r:?}");
    for i in 0..STABLE {
        let r = expect(
            server
                .send(&Call::get(&format!("stable{i}/child/kv/data/x")))
                .await,
            200,
            "stable data after the run",
        );
        assert!(r.body["data"]["data"]["round"].is_number(), "{}", r.body);
    }
    let r = expect(
        server.send(&Call::list("sys/namespaces")).await,
        200,
        "list after the run",
    );
    let keys = r.body["data"]["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for i in 0..STABLE {
        assert!(keys.contains(&json!(format!("stable{i}/"))), "{keys:?}");
    }
}
