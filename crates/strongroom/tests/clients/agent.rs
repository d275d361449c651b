//! `bao agent` against Strongroom and against OpenBao, each started by the
//! harness: AppRole auto-auth with a response-wrapped secret id, a KV v2
//! template given as the short path (`secret "secret/app"`, which the agent
//! resolves through `sys/internal/ui/mounts`), `exit_after_auth`, and the
//! API proxy forwarding with the auto-auth token.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;
use strongroom_test::server::{bao_path, free_port, run, Kind, Server};

/// How long one agent may take to authenticate and render.
const AGENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The app's policy: read its one secret, nothing else.
const APP_POLICY: &str = r#"path "secret/data/app" { capabilities = ["read"] }"#;

/// Runs `bao args` as root against `server`; returns stdout.
#[track_caller]
fn root(server: &Server, args: &[&str]) -> String {
    let home = server.home().to_string_lossy().into_owned();
    let token = server.root_token.clone().unwrap_or_default();
    let env = [
        ("BAO_ADDR", server.addr.as_str()),
        ("HOME", home.as_str()),
        ("BAO_TOKEN", token.as_str()),
    ];
    let out = run(&bao_path(), args, &env);
    assert_eq!(
        out.code,
        0,
        "{}: `bao {}`: {}{}",
        server.kind.label(),
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// Sets up the app on `server` and writes the role id and a freshly
/// wrapped secret id into `dir`; checks the wrap info names the secret id.
fn provision(server: &Server, dir: &Path) {
    root(server, &["auth", "enable", "approle"]);
    root(
        server,
        &["kv", "put", "secret/app", "password=from-the-template"],
    );
    let policy = dir.join("app.hcl");
    std::fs::write(&policy, APP_POLICY).expect("write policy");
    root(
        server,
        &["policy", "write", "app", &policy.to_string_lossy()],
    );
    root(
        server,
        &["write", "auth/approle/role/app", "token_policies=app"],
    );
    let role_id = root(
        server,
        &["read", "-field=role_id", "auth/approle/role/app/role-id"],
    );
    std::fs::write(dir.join("role-id"), role_id.trim()).expect("write role id");
    wrap_secret_id(server, dir);
}

/// Writes a new response-wrapped secret id into `dir/secret-id`.
fn wrap_secret_id(server: &Server, dir: &Path) {
    let out = root(
        server,
        &[
            "write",
            "-wrap-ttl=5m",
            "-format=json",
            "-f",
            "auth/approle/role/app/secret-id",
        ],
    );
    let v: Value = serde_json::from_str(&out).expect("wrapped secret-id is JSON");
    let w = &v["wrap_info"];
    assert_eq!(w["creation_path"], "auth/approle/role/app/secret-id", "{v}");
    let accessor = w["wrapped_accessor"].as_str().unwrap_or_default();
    assert!(
        !accessor.is_empty(),
        "{}: no wrapped_accessor: {v}",
        server.kind.label()
    );
    // The wrapped accessor is the secret id's accessor.
    let looked = root(
        server,
        &[
            "write",
            "-format=json",
            "auth/approle/role/app/secret-id-accessor/lookup",
            &format!("secret_id_accessor={accessor}"),
        ],
    );
    let looked: Value = serde_json::from_str(&looked).expect("accessor lookup is JSON");
    assert_eq!(looked["data"]["secret_id_accessor"], accessor, "{looked}");
    let token = w["token"].as_str().expect("wrapping token");
    std::fs::write(dir.join("secret-id"), token).expect("write secret id");
}

/// The agent config's auto-auth block for the files in `dir`.
fn auto_auth(dir: &Path, sink: &str) -> String {
    let d = dir.display();
    format!(
        r#"auto_auth {{
  method "approle" {{
    config = {{
      role_id_file_path = "{d}/role-id"
      secret_id_file_path = "{d}/secret-id"
      secret_id_response_wrapping_path = "auth/approle/role/app/secret-id"
      remove_secret_id_file_after_reading = false
    }}
  }}
  sink "file" {{
    config = {{ path = "{d}/{sink}" }}
  }}
}}
"#
    )
}

/// Starts `bao agent -config=<config>` with its output lines on a channel.
fn spawn_agent(dir: &Path, config: &str, name: &str) -> (Child, Receiver<String>) {
    let path = dir.join(name);
    std::fs::write(&path, config).expect("write agent config");
    let mut child = Command::new(bao_path())
        .arg("agent")
        .arg(format!("-config={}", path.display()))
        .env("HOME", dir)
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_TOKEN")
        .env_remove("BAO_ADDR")
        .env_remove("VAULT_ADDR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bao agent");
    let (tx, rx) = mpsc::channel();
    let pipes: Vec<Box<dyn Read + Send>> = vec![
        Box::new(child.stdout.take().expect("piped stdout")),
        Box::new(child.stderr.take().expect("piped stderr")),
    ];
    for pipe in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    (child, rx)
}

/// Reads agent lines until one contains `needle`; panics with everything
/// seen after [`AGENT_TIMEOUT`] or when the agent's output ends first.
fn wait_for_line(rx: &Receiver<String>, needle: &str, what: &str) -> Vec<String> {
    let deadline = Instant::now() + AGENT_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return seen;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "{what}: no {needle:?} within {AGENT_TIMEOUT:?}:\n{}",
                    seen.join("\n")
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!(
                    "{what}: agent output ended before {needle:?}:\n{}",
                    seen.join("\n")
                )
            }
        }
    }
}

/// One plain HTTP/1.1 GET to `127.0.0.1:port` without a token; the status
/// and body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the agent");
    s.set_read_timeout(Some(AGENT_TIMEOUT))
        .expect("read timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read answer");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The whole agent flow against `kind`.
fn agent_flow(kind: Kind) {
    let server = Server::dev(kind);
    let label = kind.label();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    provision(&server, d);

    // exit_after_auth: authenticate, render the short-path template, exit 0.
    let config = format!(
        "exit_after_auth = true\nvault {{ address = \"{}\" }}\n{}template {{\n  contents = \"{{{{ with secret \\\"secret/app\\\" }}}}{{{{ .Data.data.password }}}}{{{{ end }}}}\"\n  destination = \"{}/rendered\"\n}}\n",
        server.addr,
        auto_auth(d, "sink"),
        d.display()
    );
    let (mut child, rx) = spawn_agent(d, &config, "once.hcl");
    let deadline = Instant::now() + AGENT_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("poll agent") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let lines: Vec<String> = rx.try_iter().collect();
            panic!(
                "{label}: agent with exit_after_auth still runs:\n{}",
                lines.join("\n")
            );
        }
        // The agent's exit is what is waited for; this only paces the poll.
        let _ = rx.recv_timeout(Duration::from_millis(50));
    };
    let lines: Vec<String> = rx.try_iter().collect();
    assert!(
        status.success(),
        "{label}: agent exited {status}:\n{}",
        lines.join("\n")
    );
    let rendered = std::fs::read_to_string(d.join("rendered")).unwrap_or_else(|e| {
        panic!(
            "{label}: template not rendered ({e}):\n{}",
            lines.join("\n")
        )
    });
    assert_eq!(rendered, "from-the-template", "{label}");
    let sink = std::fs::read_to_string(d.join("sink")).expect("sink file");
    assert!(!sink.trim().is_empty(), "{label}: empty sink");

    // The API proxy with the auto-auth token: a request without a token is
    // sent on with the agent's, which may read the app's secret only. A
    // wrapped secret id unwraps once, so the second agent gets a new one.
    wrap_secret_id(&server, d);
    let port = free_port();
    let config = format!(
        "vault {{ address = \"{}\" }}\n{}api_proxy {{ use_auto_auth_token = true }}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n",
        server.addr,
        auto_auth(d, "proxy-sink"),
    );
    let (mut child, rx) = spawn_agent(d, &config, "proxy.hcl");
    wait_for_line(
        &rx,
        "token written",
        &format!("{label}: proxy agent auto-auth"),
    );
    // The proxy takes the token from the same auth round that wrote the
    // sink; a request racing that hand-over is retried until the deadline.
    let deadline = Instant::now() + AGENT_TIMEOUT;
    let (status, body) = loop {
        let (status, body) = get(port, "/v1/secret/data/app");
        if status == 200 || Instant::now() > deadline {
            break (status, body);
        }
        let _ = rx.recv_timeout(Duration::from_millis(100));
    };
    assert_eq!(status, 200, "{label}: proxied read: {body}");
    let v: Value = serde_json::from_str(&body).expect("proxied answer is JSON");
    assert_eq!(
        v["data"]["data"]["password"], "from-the-template",
        "{label}: {v}"
    );
    let (status, body) = get(port, "/v1/secret/data/other");
    assert_eq!(status, 403, "{label}: the proxy token is the app's: {body}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn bao_agent_against_strongroom() {
    agent_flow(Kind::Strongroom);
}

#[test]
fn bao_agent_against_openbao() {
    agent_flow(Kind::Bao);
}
