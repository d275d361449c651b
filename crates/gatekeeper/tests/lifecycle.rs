//! Gatekeeper's life as a process, end to end: the real `strongroom
//! gatekeeper` from `target/debug/strongroom` (build it first with `cargo
//! build -p strongroom`), its output captured to a file, against a real
//! dev Vault-API server and an emulated Mesos master (or, for the `aws`
//! unseal, a fake Vault-API endpoint and an EC2 metadata emulator):
//! renewal of its own token and sealing once that token is revoked, TLS
//! certificate reload on SIGHUP, `/metrics`, and the `aws` and `github`
//! unseals.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use common::{free_port, strongroom_bin, DevVault};
use serde_json::{json, Value};
use strongroom_gatekeeper::service::LATENCY_BUCKETS;
use strongroom_gatekeeper_scheduler::emulator::{EmulatedMesosTask, MesosEmulator, NomadEmulator};

/// Polls `cond` every 100ms until it holds; fails the test after `within`.
async fn eventually<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running `strongroom gatekeeper`, killed on drop, its stdout and
/// stderr going to one log file.
struct Gk {
    child: tokio::process::Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gk {
    /// Starts it on a fresh loopback port with `args` and the environment
    /// `env` only (nothing inherited, so no stray `VAULT_*` variable
    /// changes its settings), and waits until it listens.
    async fn start(args: &[&str], env: &[(&str, &str)]) -> Gk {
        let bin = strongroom_bin().expect("the binary: run `cargo build -p strongroom` first");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gatekeeper.log");
        let out = std::fs::File::create(&log).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("gatekeeper")
            .args(["--listen-addr", &addr.to_string(), "--log-level", "info"])
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true);
        let mut gk = Gk {
            child: cmd.spawn().unwrap(),
            addr,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if let Some(status) = gk.child.try_wait().unwrap() {
                panic!("gatekeeper exited ({status}):\n{}", gk.log());
            }
            assert!(
                Instant::now() < deadline,
                "gatekeeper did not listen:\n{}",
                gk.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        gk
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything it printed so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// `GET /status`'s status code.
    async fn status(&self) -> u16 {
        reqwest::get(self.url("/status"))
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A POST with a JSON body.
    async fn post(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = reqwest::Client::new().post(self.url(path)).json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

/// What Gatekeeper's own token may do on the dev server: read the
/// policies and use the usage store (KV), and mint AppRole logins.
const GATEKEEPER_POLICY: &str = r#"
path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/approle/role/*" { capabilities = ["create", "read", "update"] }
"#;

/// The TTL of Gatekeeper's token in the renewal test.
const TTL_SECS: u64 = 5;

#[tokio::test]
async fn a_renewable_token_is_renewed_and_a_revoked_one_seals() {
    let vault = DevVault::start().await;
    vault.prepare().await;
    vault
        .ok(
            "POST",
            "sys/policies/acl/gatekeeper",
            json!({ "policy": GATEKEEPER_POLICY }),
        )
        .await;
    let created = vault
        .ok(
            "POST",
            "auth/token/create",
            json!({"policies": ["gatekeeper"], "ttl": format!("{TTL_SECS}s"), "renewable": true}),
        )
        .await;
    assert_eq!(created["auth"]["lease_duration"], TTL_SECS, "{created}");
    let token = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mesos = MesosEmulator::start().await;
    let gk = Gk::start(
        &["--vault-addr", &vault.addr, "--mesos-master", &mesos.url],
        &[("VAULT_TOKEN", &token)],
    )
    .await;
    assert_eq!(gk.status().await, 200, "{}", gk.log());

    // The token's own record, as the server's root sees it; an expired
    // (never renewed) token has none, which fails the test at once.
    let lookup = || async {
        let (s, v) = vault
            .call("POST", "auth/token/lookup", json!({ "token": token }))
            .await;
        assert_eq!(s, 200, "the token is gone (not renewed?): {v}");
        v["data"].clone()
    };
    let created_at = lookup().await["creation_time"].as_u64().unwrap();
    // Alive, and renewed, after three TTLs: only renewals can do that.
    eventually(
        "a renewal three TTLs after the token was created",
        Duration::from_secs(TTL_SECS * 3 + 20),
        || async {
            lookup().await["last_renewal_time"]
                .as_u64()
                .is_some_and(|t| t >= created_at + 3 * TTL_SECS)
        },
    )
    .await;
    // And Gatekeeper still serves with it.
    mesos.add_task(EmulatedMesosTask::running("late-1", "marathon", "web"));
    let (s, v) = gk.post("/token", json!({"task_id": "late-1"}), &[]).await;
    assert_eq!(s, 200, "{v}\n{}", gk.log());
    assert!(!v["token"].as_str().unwrap().is_empty());

    // Revoked on the server: the next renewal fails, the retries give up
    // when the token would have expired, and Gatekeeper seals itself.
    vault
        .ok("POST", "auth/token/revoke", json!({ "token": token }))
        .await;
    eventually(
        "Gatekeeper sealed after its token was revoked",
        Duration::from_secs(TTL_SECS * 2 + 20),
        || async { gk.status().await == 503 },
    )
    .await;
    mesos.add_task(EmulatedMesosTask::running("late-2", "marathon", "web"));
    let (s, v) = gk.post("/token", json!({"task_id": "late-2"}), &[]).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["unsealed"], false);

    let log = gk.log();
    let line = log
        .lines()
        .find(|l| l.contains("could not be renewed"))
        .unwrap_or_else(|| panic!("no word of the failed renewal:\n{log}"));
    assert!(line.contains("sealed"), "{line}");
    // Why: the server's refusal.
    assert!(line.contains("answered 403"), "{line}");
    assert!(!log.contains(&token), "the token was logged:\n{log}");
}

/// A test CA and the leaf certificates it issues for 127.0.0.1.
struct TestCa {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl TestCa {
    fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, "lifecycle test CA");
        let cert = params.self_signed(&key).unwrap();
        TestCa { key, cert }
    }

    /// A leaf for 127.0.0.1 with `serial`: (cert PEM, key PEM, cert DER).
    fn leaf(&self, serial: u64) -> (String, String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

/// The certificate `addr` presents in a fresh handshake, verified against
/// the CA `ca_der`.
async fn served_certificate(addr: SocketAddr, ca_der: &[u8]) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let tls = connector.connect(name, tcp).await.unwrap();
    let (_, conn) = tls.get_ref();
    conn.peer_certificates().unwrap()[0].to_vec()
}

fn send_sighup(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP {pid}");
}

fn write_pair(dir: &Path, cert: &str, key: &str) {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
}

/// Operators send SIGHUP to reload; without TLS there is nothing to
/// reload, and the signal must not end the process (its default action).
#[tokio::test]
async fn sighup_without_tls_is_noted_not_fatal() {
    let gk = Gk::start(&["--vault-addr", "http://127.0.0.1:9"], &[]).await;
    send_sighup(gk.pid());
    eventually("the SIGHUP is logged", Duration::from_secs(20), || async {
        gk.log().contains("no TLS files to reload")
    })
    .await;
    // Still serving (sealed: nothing to unseal with).
    assert_eq!(gk.status().await, 503, "{}", gk.log());
}

#[tokio::test]
async fn sighup_reloads_the_tls_certificate_and_a_bad_one_is_refused() {
    let ca = TestCa::new();
    let files = tempfile::tempdir().unwrap();
    let (first_pem, first_key, first_der) = ca.leaf(1);
    let (second_pem, second_key, second_der) = ca.leaf(2);
    assert_ne!(first_der, second_der);
    write_pair(files.path(), &first_pem, &first_key);
    let cert = files.path().join("cert.pem");
    let key = files.path().join("key.pem");
    // Sealed (nothing to unseal with): TLS and its reload do not care.
    let gk = Gk::start(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--vault-addr",
            "http://127.0.0.1:9",
        ],
        &[],
    )
    .await;
    let ca_der = ca.cert.der().to_vec();
    assert_eq!(served_certificate(gk.addr, &ca_der).await, first_der);
    // HTTPS only, and an ordinary client trusting the CA gets answers.
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = https
        .get(format!("https://{}/status", gk.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    // Plain HTTP gets no HTTP answer from the TLS listener.
    let err = reqwest::get(gk.url("/status")).await.unwrap_err();
    assert!(
        err.is_request() && !err.is_connect() && err.status().is_none(),
        "{err:?}"
    );

    // New files, then SIGHUP: new handshakes get the new certificate.
    write_pair(files.path(), &second_pem, &second_key);
    send_sighup(gk.pid());
    eventually(
        "the new certificate served",
        Duration::from_secs(15),
        || async { served_certificate(gk.addr, &ca_der).await == second_der },
    )
    .await;
    assert!(
        gk.log().contains("TLS certificate reloaded"),
        "{}",
        gk.log()
    );

    // A certificate file that is not one: refused, the current one stays,
    // and the log says why.
    std::fs::write(&cert, "this is not a certificate\n").unwrap();
    send_sighup(gk.pid());
    eventually(
        "the failed reload logged",
        Duration::from_secs(15),
        || async { gk.log().contains("TLS reload failed") },
    )
    .await;
    let log = gk.log();
    let line = log
        .lines()
        .find(|l| l.contains("TLS reload failed"))
        .unwrap();
    assert!(line.contains("no PEM certificate found"), "{line}");
    assert!(line.contains(cert.to_str().unwrap()), "{line}");
    assert_eq!(served_certificate(gk.addr, &ca_der).await, second_der);
    let r = https
        .get(format!("https://{}/status", gk.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
}

/// The samples of a Prometheus text exposition: `name{labels}` -> value.
fn samples(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_string(), value.parse::<f64>().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_each_outcome_and_time_each_scheduler() {
    let vault = DevVault::start().await;
    vault.prepare().await;
    let mesos = MesosEmulator::start().await;
    let nomad = NomadEmulator::start().await;
    let gk = Gk::start(
        &[
            "--vault-addr",
            &vault.addr,
            "--schedulers",
            "mesos,nomad",
            "--mesos-master",
            &mesos.url,
            "--nomad-addr",
            &nomad.url,
        ],
        &[("VAULT_TOKEN", "root")],
    )
    .await;
    assert_eq!(gk.status().await, 200, "{}", gk.log());
    mesos.add_task(EmulatedMesosTask::running("m-1", "marathon", "web"));

    let mut codes = Vec::new();
    for body in [
        json!({"task_id": "m-1"}),                           // 200
        json!({"task_id": "m-1"}),                           // 429: one use
        json!({"task_id": "nobody"}),                        // 401
        json!({"task_id": "alloc-x", "scheduler": "nomad"}), // 401
        json!({"task_id": "m-1", "scheduler": "ecs"}),       // 400: not configured
    ] {
        codes.push(gk.post("/token", body, &[]).await.0);
    }
    let (s, _) = gk
        .post("/seal", json!({}), &[("x-vault-token", "root")])
        .await;
    assert_eq!(s, 200);
    codes.push(gk.post("/token", json!({"task_id": "m-1"}), &[]).await.0); // 503
    assert_eq!(codes, [200, 429, 401, 401, 400, 503]);

    let r = reqwest::get(gk.url("/metrics")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    let mut params = ctype.split(';').map(str::trim);
    assert_eq!(params.next(), Some("text/plain"), "{ctype}");
    assert!(params.any(|p| p == "version=0.0.4"), "{ctype}");
    let text = r.text().await.unwrap();
    let m = samples(&text);

    for (name, value) in [
        ("requests", 6.0),
        ("successful", 1.0),
        ("denied", 4.0),
        ("failed", 1.0),
    ] {
        let metric = format!("gatekeeper_token_{name}_total");
        assert!(text.contains(&format!("# TYPE {metric} counter")), "{text}");
        assert_eq!(m.get(&metric), Some(&value), "{metric} in\n{text}");
    }
    assert_eq!(m.get("gatekeeper_unsealed"), Some(&0.0), "{text}");
    assert!(
        text.contains("# TYPE gatekeeper_token_request_duration_seconds histogram"),
        "{text}"
    );
    // One histogram per configured scheduler asked: mesos four times (the
    // sealed request included), nomad once; the unknown one has none.
    for (sched, count) in [("mesos", 4.0), ("nomad", 1.0)] {
        let h = |suffix: &str, extra: &str| {
            let key = format!(
                "gatekeeper_token_request_duration_seconds_{suffix}{{scheduler=\"{sched}\"{extra}}}"
            );
            *m.get(&key).unwrap_or_else(|| panic!("no {key} in\n{text}"))
        };
        assert_eq!(h("count", ""), count, "{sched}");
        assert_eq!(h("bucket", ",le=\"+Inf\""), count, "{sched}");
        let sum = h("sum", "");
        assert!(sum.is_finite() && sum > 0.0, "{sched}: sum {sum}");
        // Cumulative buckets, one per bound.
        let mut previous = 0.0;
        for bound in LATENCY_BUCKETS {
            let n = h("bucket", &format!(",le=\"{bound}\""));
            assert!(n >= previous && n <= count, "{sched} le={bound}: {n}");
            previous = n;
        }
    }
    assert!(!text.contains("scheduler=\"ecs\""), "{text}");
    let buckets = text
        .lines()
        .filter(|l| l.starts_with("gatekeeper_token_request_duration_seconds_bucket"))
        .count();
    assert_eq!(buckets, 2 * (LATENCY_BUCKETS.len() + 1), "{text}");
}

// The `aws` unseal. Strongroom has no aws auth method, and OpenBao's
// verifies the PKCS7 identity document against AWS's own certificates (and
// the IAM flavour needs real AWS signatures), so neither can be the server
// here: a fake Vault-API endpoint plays the AWS auth method's login, and
// what unsealing asks next (the KV policies), as Vault answers them.

/// The EC2 metadata service's PKCS7 identity signature, as it is served:
/// base64 over several lines.
const PKCS7: &str =
    "MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwGggCSABIIB\n\
                     3nsKICAiYWNjb3VudElkIiA6ICIxMjM0NTY3ODkwMTIiLAogICJhcmNoaXRlY3R1cmUiIDog\n\
                     ImFVz4EAAAAAAAA=\n";
const IMDS_SESSION: &str = "imds-session-token";
const ROLE: &str = "gatekeeper-ec2";
const NONCE: &str = "5f0b6a1c-nonce";
const EC2_TOKEN: &str = "s.ec2-login-token";
const AWS_MOUNT: &str = "aws-ec2-custom";
const GH_MOUNT: &str = "github-custom";
const GH_TOKEN: &str = "ghp_personal0token0of0the0operator";

/// An EC2 metadata emulator that insists on IMDSv2 (a session token).
async fn metadata_emulator() -> String {
    use axum::routing::{get, put};
    let app = axum::Router::new()
        .route(
            "/latest/api/token",
            put(|h: HeaderMap| async move {
                if h.contains_key("x-aws-ec2-metadata-token-ttl-seconds") {
                    (StatusCode::OK, IMDS_SESSION)
                } else {
                    (StatusCode::BAD_REQUEST, "")
                }
            }),
        )
        .route(
            "/latest/dynamic/instance-identity/pkcs7",
            get(|h: HeaderMap| async move {
                match h.get("x-aws-ec2-metadata-token") {
                    Some(v) if v == IMDS_SESSION => (StatusCode::OK, PKCS7),
                    _ => (StatusCode::UNAUTHORIZED, ""),
                }
            }),
        );
    serve(app).await
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The calls the fake Vault-API endpoint received: `METHOD /path`.
type Calls = Arc<Mutex<Vec<String>>>;

fn vault_error(status: StatusCode, errors: &[&str]) -> axum::response::Response {
    (status, axum::Json(json!({ "errors": errors }))).into_response()
}

/// A fake Vault-API server with the AWS auth method at [`AWS_MOUNT`] and
/// the GitHub one at [`GH_MOUNT`]: it logs in only the expected role, nonce
/// and (newline-free) PKCS7, or the expected GitHub personal token, and
/// serves one Gatekeeper policy to the token it issued.
async fn fake_vault(calls: Calls) -> String {
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let calls = calls.clone();
            async move {
                let path = uri.path().to_string();
                calls.lock().unwrap().push(format!("{method} {path}"));
                let authed = headers
                    .get("x-vault-token")
                    .is_some_and(|t| t == EC2_TOKEN);
                match (method.as_str(), path.as_str()) {
                    ("POST", p) if p == format!("/v1/auth/{GH_MOUNT}/login") => {
                        let b: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        if b["token"] != GH_TOKEN {
                            // What Vault's GitHub method says of a bad token.
                            return vault_error(
                                StatusCode::BAD_REQUEST,
                                &["user is not part of required org"],
                            );
                        }
                        axum::Json(json!({
                            "auth": {
                                "client_token": EC2_TOKEN,
                                "accessor": "gh-accessor",
                                "policies": ["default", "gatekeeper"],
                                "metadata": {"org": "acme", "username": "operator"},
                                "lease_duration": 2_764_800,
                                "renewable": true,
                            },
                        }))
                        .into_response()
                    }
                    ("POST", p) if p == format!("/v1/auth/{AWS_MOUNT}/login") => {
                        let b: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        if b["pkcs7"] != PKCS7.replace('\n', "") {
                            return vault_error(
                                StatusCode::BAD_REQUEST,
                                &["failed to parse the BER encoded PKCS#7 signature"],
                            );
                        }
                        if b["role"] != ROLE {
                            return vault_error(
                                StatusCode::BAD_REQUEST,
                                &["entry for role not found"],
                            );
                        }
                        if b["nonce"] != NONCE {
                            return vault_error(StatusCode::BAD_REQUEST, &["client nonce mismatch"]);
                        }
                        axum::Json(json!({
                            "request_id": "7c2e1a8d-0000-4000-8000-000000000001",
                            "lease_id": "", "renewable": false, "lease_duration": 0,
                            "data": null, "wrap_info": null, "warnings": null,
                            "auth": {
                                "client_token": EC2_TOKEN,
                                "accessor": "ec2-accessor",
                                "policies": ["default", "gatekeeper"],
                                "token_policies": ["default", "gatekeeper"],
                                "metadata": {"role": ROLE, "ami_id": "ami-0abc", "instance_id": "i-0abc"},
                                "lease_duration": 2_764_800,
                                "renewable": true,
                            },
                        }))
                        .into_response()
                    }
                    _ if !authed => vault_error(StatusCode::FORBIDDEN, &["permission denied"]),
                    ("GET", "/v1/auth/token/lookup-self") => axum::Json(json!({
                        "data": {
                            "accessor": "ec2-accessor", "ttl": 2_764_800, "renewable": true,
                            "policies": ["default", "gatekeeper"], "path": format!("auth/{AWS_MOUNT}/login"),
                        },
                    }))
                    .into_response(),
                    ("GET", "/v1/secret/data/gatekeeper") => axum::Json(json!({
                        "data": {
                            "data": {"mesos:marathon:*": {"roles": ["api"], "num_uses": 1}},
                            "metadata": {"created_time": "2026-01-01T00:00:00Z", "deletion_time": "",
                                         "destroyed": false, "version": 1},
                        },
                    }))
                    .into_response(),
                    // Nothing below the policy secret: Vault's LIST answers
                    // 404 with no errors.
                    _ => vault_error(StatusCode::NOT_FOUND, &[]),
                }
            }
        },
    );
    serve(app).await
}

#[tokio::test]
async fn aws_unseal_logs_in_at_the_configured_mount_with_role_and_nonce() {
    let calls: Calls = Arc::default();
    let vault = fake_vault(calls.clone()).await;
    let metadata = metadata_emulator().await;
    let flags = [
        "--vault-addr",
        vault.as_str(),
        "--aws-metadata-addr",
        metadata.as_str(),
        "--vault-aws-mount",
        AWS_MOUNT,
    ];
    let gk = Gk::start(&flags, &[]).await;
    assert_eq!(gk.status().await, 503);

    let unseal = |nonce: &str| json!({"method": "aws", "aws_role": ROLE, "aws_nonce": nonce});
    let (s, v) = gk.post("/unseal", unseal("wrong-nonce"), &[]).await;
    assert_eq!(s, 401, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("nonce mismatch"),
        "{v}"
    );
    assert_eq!(gk.status().await, 503);
    let (s, v) = gk
        .post(
            "/unseal",
            json!({"method": "aws", "aws_role": "someone-else", "aws_nonce": NONCE}),
            &[],
        )
        .await;
    assert_eq!(s, 401, "{v}");

    let (s, v) = gk.post("/unseal", unseal(NONCE), &[]).await;
    assert_eq!(s, 200, "{v}\n{}", gk.log());
    assert_eq!(v["unsealed"], true);
    assert!(
        v["message"].as_str().unwrap().contains("1 total policies"),
        "{v}"
    );
    assert_eq!(gk.status().await, 200);
    let seen = calls.lock().unwrap().clone();
    let logins = seen
        .iter()
        .filter(|c| *c == &format!("POST /v1/auth/{AWS_MOUNT}/login"))
        .count();
    assert_eq!(logins, 3, "{seen:?}");
    assert!(
        seen.iter().all(|c| !c.contains("/v1/auth/aws/")),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"GET /v1/secret/data/gatekeeper".to_string()),
        "{seen:?}"
    );
    let log = gk.log();
    assert!(!log.contains(EC2_TOKEN) && !log.contains(NONCE), "{log}");
    drop(gk);

    // The same login from the flags' environment variables, at start.
    let gk = Gk::start(
        &flags,
        &[
            ("AUTH_AWS_EC2", "true"),
            ("AUTH_AWS_ROLE", ROLE),
            ("AUTH_AWS_NONCE", NONCE),
        ],
    )
    .await;
    assert_eq!(gk.status().await, 200, "{}", gk.log());
}

#[tokio::test]
async fn github_unseal_logs_in_at_the_configured_mount() {
    let calls: Calls = Arc::default();
    let vault = fake_vault(calls.clone()).await;
    let flags = [
        "--vault-addr",
        vault.as_str(),
        "--vault-github-mount",
        GH_MOUNT,
    ];
    let gk = Gk::start(&flags, &[]).await;
    assert_eq!(gk.status().await, 503);

    // Over the API, with the original's body field.
    let (s, v) = gk
        .post(
            "/unseal",
            json!({"method": "github", "personal_token": "ghp_wrong"}),
            &[],
        )
        .await;
    assert_eq!(s, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("required org"), "{v}");
    assert_eq!(gk.status().await, 503);

    // With the original's command: `gatekeeper unseal github`.
    let out = tokio::process::Command::new(strongroom_bin().unwrap())
        .args(["gatekeeper", "unseal", "github", "--gatekeeper-addr"])
        .arg(format!("http://{}", gk.addr))
        .env_clear()
        .env("AUTH_GH_TOKEN", GH_TOKEN)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", gk.log());
    assert_eq!(gk.status().await, 200);
    let seen = calls.lock().unwrap().clone();
    let logins = seen
        .iter()
        .filter(|c| *c == &format!("POST /v1/auth/{GH_MOUNT}/login"))
        .count();
    assert_eq!(logins, 2, "{seen:?}");
    assert!(
        seen.iter().all(|c| !c.contains("/v1/auth/github/")),
        "{seen:?}"
    );
    let log = gk.log();
    assert!(!log.contains(GH_TOKEN) && !log.contains(EC2_TOKEN), "{log}");
    drop(gk);

    // At start, from the flag's environment variable.
    let gk = Gk::start(&flags, &[("AUTH_GH_TOKEN", GH_TOKEN)]).await;
    assert_eq!(gk.status().await, 200, "{}", gk.log());
}
