//! `strongroom gatekeeper login` against a Gatekeeper serving real HTTP on
//! loopback (fake scheduler) and a real dev Vault-API server: in process,
//! and as the `strongroom` binary (`cargo build -p strongroom` first).
#![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use common::{config, strongroom_bin, DevVault, FakeScheduler};
use serde_json::Value;
use strongroom_gatekeeper::client::{self, LoginArgs};
use strongroom_gatekeeper::http::{router, AppState};
use strongroom_gatekeeper::service::{new_seal_state, Gatekeeper};
use strongroom_gatekeeper::unseal::UnsealMethod;
use strongroom_gatekeeper::usage::MemoryStore;
use strongroom_gatekeeper::vault::{Token, VaultClient};
use strongroom_gatekeeper_scheduler::Scheduler;

const FRESH: Duration = Duration::from_secs(5);

/// An unsealed Gatekeeper on loopback: its base URL.
async fn gatekeeper(vault: &DevVault, sched: &Arc<FakeScheduler>) -> String {
    let client = VaultClient::new(&vault.addr, None, false, Duration::from_secs(10)).unwrap();
    let gk = Arc::new(Gatekeeper::new(
        config(false, "approle"),
        client,
        vec![sched.clone() as Arc<dyn Scheduler>],
        Arc::new(MemoryStore::new()),
        new_seal_state(),
    ));
    gk.unseal(&UnsealMethod::Token(Token::new("root")))
        .await
        .unwrap();
    let app = router(AppState {
        gk,
        trusted_proxies: Arc::new(vec![]),
        version: "test".into(),
        peers: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, svc).await });
    format!("http://{addr}")
}

/// The token's policies, asked of the Vault-API server with the token.
async fn policies_of(vault: &DevVault, token: &str) -> Vec<Value> {
    let r = reqwest::Client::new()
        .get(format!("{}/v1/auth/token/lookup-self", vault.addr))
        .header("X-Vault-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the token does not work");
    let v: Value = r.json().await.unwrap();
    v["data"]["policies"].as_array().unwrap().clone()
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: LoginArgs,
}

#[tokio::test]
async fn login_in_process_unwraps_the_token_of_the_task() {
    let vault = DevVault::start().await;
    vault.prepare().await;
    let sched = Arc::new(FakeScheduler::default());
    sched.add("web.1", "web", FRESH, "127.0.0.1");
    let gk = gatekeeper(&vault, &sched).await;
    let args = Cli::try_parse_from(["login", "--gatekeeper-addr", &gk, "--role", "other"])
        .unwrap()
        .args;
    let env = |k: &str| (k == "MESOS_TASK_ID").then(|| "web.1".to_string());
    let token = client::login(&args, env).await.unwrap();
    let policies = policies_of(&vault, token.expose()).await;
    assert!(policies.contains(&Value::from("p-other")), "{policies:?}");

    // The second time: Gatekeeper's status and message.
    let err = client::login(&args, env).await.unwrap_err().to_string();
    assert!(err.contains("429"), "{err}");
    assert!(err.contains("Maximum number of tokens"), "{err}");
}

#[tokio::test]
async fn the_login_command_prints_or_writes_the_token() {
    let bin = strongroom_bin().expect("the strongroom binary: cargo build -p strongroom");
    let vault = DevVault::start().await;
    vault.prepare().await;
    let sched = Arc::new(FakeScheduler::default());
    for t in ["t1", "t2", "t3"] {
        sched.add(t, "web", FRESH, "127.0.0.1");
    }
    let gk = gatekeeper(&vault, &sched).await;
    let login = |extra: &[&str], env: &[(&str, &str)]| {
        let mut c = tokio::process::Command::new(&bin);
        c.args(["gatekeeper", "login", "--gatekeeper-addr", &gk])
            .args(extra)
            .env_remove("VAULT_ADDR")
            .env_remove("MESOS_TASK_ID")
            .env_remove("NOMAD_ALLOC_ID");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output()
    };

    // On stdout, from MESOS_TASK_ID.
    let out = login(&[], &[("MESOS_TASK_ID", "t1")]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.strip_suffix('\n').unwrap();
    assert!(policies_of(&vault, token)
        .await
        .contains(&Value::from("p-api")));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(token));

    // In a new file, mode 0600, nothing on stdout.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vault-token");
    let out = login(
        &["--task-id", "t2", "--output", file.to_str().unwrap()],
        &[],
    )
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(policies_of(&vault, &written)
        .await
        .contains(&Value::from("p-api")));

    // Refusals: Gatekeeper's status and message, a failed exit.
    let out = login(&["--task-id", "t2"], &[]).await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("429") && stderr.contains("Maximum number"),
        "{stderr}"
    );
    let out = login(&["--task-id", "nobody"], &[]).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    // No task id anywhere.
    let out = login(&[], &[]).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("task id"));

    // --vault-addr wins over Gatekeeper's vault_addr.
    let out = login(
        &["--task-id", "t3", "--vault-addr", "http://127.0.0.1:9"],
        &[],
    )
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unwrapping"));
}
