//! Gatekeeper as a drop-in for vault-gatekeeper (issue 17), end to end
//! against the Strongroom dev server and OpenBao's: the original's operator
//! commands (`policy update`, `policy`, `unseal`, `policy reload`, `seal`)
//! run as the real `strongroom gatekeeper` processes an operator's script
//! would run, KV v1 policies in the layout `policy update` writes, and the
//! statuses of a scheduler that is down, failing, answering garbage or
//! hanging (502/504; 503 means sealed and nothing else).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

use std::process::Stdio;

use serde_json::{json, Value};
use strongroom_gatekeeper_scheduler::emulator::Mode;
use strongroom_test::server::{Call, Kind, Server};
use tokio::io::AsyncWriteExt as _;

use crate::gatekeeper_support::{
    assert_no_secrets, dev_server, mesos_ready, ok, policy, setup_vault, unwrap_once, Emulator,
    GatekeeperProc, Sched, FRESH, LOCAL,
};

/// What one command printed, and how it ended.
struct Ran {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `strongroom gatekeeper <args>` with only `env` in its
/// environment, `stdin` on its standard input.
async fn gk_cli(args: &[String], env: &[(&str, &str)], stdin: Option<&str>) -> Ran {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .arg("gatekeeper")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run strongroom gatekeeper");
    let mut input = child.stdin.take().expect("piped stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("stdin");
    }
    drop(input);
    let out = child.wait_with_output().await.expect("wait");
    Ran {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `words` as owned arguments.
fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The raw KV v1 secret at `path`.
async fn raw_secret(server: &Server, path: &str) -> Value {
    ok(server, Call::get(path)).await.body["data"].clone()
}

/// The operator's day with the original's commands, on KV v1: write the
/// policies, view them, unseal a sealed instance, change and reload them,
/// seal, unseal with AppRole.
async fn operator_commands(kind: Kind) {
    let ctx = kind.label();
    let server = dev_server(kind).await;
    let root = server.root_token.clone().expect("dev root token");
    let vault = setup_vault(&server, "approle", 1).await;
    let key = Sched::Mesos.policy_key();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policies.json");
    let first = policy(key, &["api"], 2);
    std::fs::write(&file, serde_json::to_vec_pretty(&first).unwrap()).unwrap();

    // `policy update FILE`: validated, then written in the original's
    // layout, `{"data": <policies>}`, on KV v1 too.
    let mut update = argv(&["policy", "update", file.to_str().unwrap()]);
    update.extend(vault.flags());
    let ran = gk_cli(&update, &[("VAULT_TOKEN", &root)], None).await;
    assert!(ran.success, "{ctx}: policy update: {}", ran.stderr);
    assert!(
        ran.stderr.contains("Wrote policy successfully."),
        "{ctx}: {}",
        ran.stderr
    );
    assert_eq!(
        raw_secret(&server, &vault.policy_path).await,
        json!({ "data": first }),
        "{ctx}: the original's KV v1 layout"
    );

    // A malformed file is refused before anything is written.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"mesos:x": {"roles": "api", "num_uses": 1}}"#).unwrap();
    let mut update_bad = argv(&["policy", "update", bad.to_str().unwrap()]);
    update_bad.extend(vault.flags());
    let ran = gk_cli(&update_bad, &[("VAULT_TOKEN", &root)], None).await;
    assert!(!ran.success, "{ctx}: a bad policy file was accepted");
    assert!(
        ran.stderr.contains("validation of the policy file failed"),
        "{ctx}: {}",
        ran.stderr
    );
    assert_eq!(
        raw_secret(&server, &vault.policy_path).await,
        json!({ "data": first }),
        "{ctx}: a refused update changed the policies"
    );

    // `policy` prints the merged policies, read with Gatekeeper's own
    // (least-privilege) token.
    let mut view = argv(&["policy"]);
    view.extend(vault.flags());
    let ran = gk_cli(&view, &[("VAULT_TOKEN", &vault.gk_token)], None).await;
    assert!(ran.success, "{ctx}: policy: {}", ran.stderr);
    let shown: Value = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("{ctx}: policy printed no JSON ({e}): {}", ran.stdout));
    assert_eq!(shown, first, "{ctx}: the merged policies");

    // A Gatekeeper started without a credential is sealed; `unseal token`
    // unseals it, and it reads the KV v1 policies `policy update` wrote.
    let emu = Emulator::start(Sched::Mesos).await;
    let mut args = vault.flags();
    args.extend(emu.flags());
    let gk = GatekeeperProc::start(&args, &[]).await;
    assert_eq!(gk.status().await.0, 503, "{ctx}: sealed at start");
    let addr = ["--gatekeeper-addr", gk.url.as_str()];
    let mut unseal = argv(&["unseal", "token"]);
    unseal.extend(argv(&addr));
    let ran = gk_cli(&unseal, &[("VAULT_TOKEN", &vault.gk_token)], None).await;
    assert!(
        ran.success,
        "{ctx}: unseal token: {}\n{}",
        ran.stderr,
        gk.output()
    );
    assert_eq!(gk.status().await.0, 200, "{ctx}: unsealed");
    let t = emu.add_task(FRESH, LOCAL);
    let (s, r) = gk.token_for(Sched::Mesos, &t).await;
    assert_eq!(s, 200, "{ctx}: token after unseal: {r}\n{}", gk.output());
    let (policies, _) = unwrap_once(&server, &r).await;
    assert!(
        policies.contains(&"p-api".to_string()),
        "{ctx}: {policies:?}"
    );
    let wrapping = r["token"].as_str().unwrap().to_string();

    // New policies from standard input, reloaded on the running instance.
    let second = policy(key, &["other"], 1);
    let mut update_stdin = argv(&["policy", "update", "-"]);
    update_stdin.extend(vault.flags());
    let ran = gk_cli(
        &update_stdin,
        &[("VAULT_TOKEN", &root)],
        Some(&second.to_string()),
    )
    .await;
    assert!(ran.success, "{ctx}: policy update -: {}", ran.stderr);
    let mut reload = argv(&["policy", "reload"]);
    reload.extend(argv(&addr));
    let ran = gk_cli(&reload, &[("VAULT_TOKEN", &vault.admin_token)], None).await;
    assert!(
        ran.success,
        "{ctx}: policy reload: {}\n{}",
        ran.stderr,
        gk.output()
    );
    let t = emu.add_task(FRESH, LOCAL);
    let (s, r) = gk.token_for(Sched::Mesos, &t).await;
    assert_eq!(s, 200, "{ctx}: token after reload: {r}");
    let (policies, _) = unwrap_once(&server, &r).await;
    assert!(
        policies.contains(&"p-other".to_string()),
        "{ctx}: {policies:?}"
    );

    // `seal` without an admin credential is refused and changes nothing;
    // with one, the instance seals: 503, `unsealed: false`.
    let mut seal = argv(&["seal"]);
    seal.extend(argv(&addr));
    let ran = gk_cli(&seal, &[], None).await;
    assert!(!ran.success, "{ctx}: seal without a credential worked");
    assert!(ran.stderr.contains("HTTP 401"), "{ctx}: {}", ran.stderr);
    assert_eq!(gk.status().await.0, 200, "{ctx}: still unsealed");
    seal.extend(argv(&["--admin-token", &vault.admin_token]));
    let ran = gk_cli(&seal, &[], None).await;
    assert!(ran.success, "{ctx}: seal: {}", ran.stderr);
    let (s, r) = gk
        .token_for(Sched::Mesos, &emu.add_task(FRESH, LOCAL))
        .await;
    assert_eq!(
        (s, &r["unsealed"]),
        (503, &json!(false)),
        "{ctx}: sealed: {r}"
    );

    // `unseal approle ROLE_ID SECRET_ID`, the original's positional form.
    let mut unseal = argv(&["unseal", "approle", &vault.gk_role_id, &vault.gk_secret_id]);
    unseal.extend(argv(&addr));
    let ran = gk_cli(&unseal, &[], None).await;
    assert!(
        ran.success,
        "{ctx}: unseal approle: {}\n{}",
        ran.stderr,
        gk.output()
    );
    assert_eq!(gk.status().await.0, 200, "{ctx}: unsealed by AppRole");

    assert_no_secrets(
        &gk.output(),
        &[
            ("gatekeeper's token", vault.gk_token.clone()),
            ("the admin token", vault.admin_token.clone()),
            ("gatekeeper's secret id", vault.gk_secret_id.clone()),
            ("a wrapping token", wrapping),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_on_strongroom() {
    operator_commands(Kind::Strongroom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_on_openbao() {
    operator_commands(Kind::Bao).await;
}

/// A scheduler that is down, failing or answering garbage gives 502, one
/// that hangs past `--scheduler-timeout` 504; both say `unsealed: true`
/// with an error, count as failed in `/status`, and spend no use.
async fn scheduler_failures(kind: Kind) {
    let ctx = kind.label();
    // The server lives as long as this binding.
    let (_server, vault) = mesos_ready(kind).await;
    let emu = Emulator::start(Sched::Mesos).await;
    let mut args = vault.flags();
    args.extend(emu.flags());
    args.extend(argv(&["--scheduler-timeout", "1s"]));
    let gk = GatekeeperProc::start(&args, &[("VAULT_TOKEN", &vault.gk_token)]).await;
    let task = emu.add_task(FRESH, LOCAL);
    let cases = [
        (Mode::Down, 502),
        (Mode::ServerError, 502),
        (Mode::Garbage, 502),
        (Mode::Stall, 504),
    ];
    for (mode, want) in cases {
        emu.set_mode(mode);
        let (s, a) = gk.token_for(Sched::Mesos, &task).await;
        assert_eq!(s, want, "{ctx} {mode:?}: {a}");
        assert_eq!(a["unsealed"], true, "{ctx} {mode:?}: {a}");
        assert!(
            a["error"].as_str().is_some_and(|e| e.contains("scheduler")),
            "{ctx} {mode:?}: no clear error: {a}"
        );
    }
    let (_, status) = gk.status().await;
    assert_eq!(
        status["stats"],
        json!({"requests": 4, "successful": 0, "denied": 0, "failed": 4}),
        "{ctx}: {status}"
    );
    // Back up: the task's one use was never spent.
    emu.set_mode(Mode::Normal);
    let (s, a) = gk.token_for(Sched::Mesos, &task).await;
    assert_eq!(s, 200, "{ctx}: back up: {a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_failures_on_strongroom() {
    scheduler_failures(Kind::Strongroom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_failures_on_openbao() {
    scheduler_failures(Kind::Bao).await;
}
