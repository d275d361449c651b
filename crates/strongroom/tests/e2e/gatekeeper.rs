//! Gatekeeper end to end (issue 8): the real `strongroom gatekeeper`
//! process, the scheduler emulators (Mesos, Kubernetes, Nomad, ECS) and a real
//! Vault-API server (the Strongroom dev server and OpenBao's `bao server
//! -dev`), driven over HTTP as a task and an operator would.
//!
//! The main scenario runs for every (scheduler, server) pair of [`matrix!`];
//! the other tests (host check, bad input, shared usage counts) cover one
//! concern each.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

use serde_json::{json, Value};
use strongroom_gatekeeper_scheduler::emulator::Mode;

use crate::gatekeeper_support::{
    assert_no_secrets, dev_server, ecs_env, ecs_task_id, mesos_ready, policy, setup_vault,
    unwrap_once, Emulator, GatekeeperProc, Sched, VaultSetup, ELSEWHERE, FRESH, LOCAL, OLD,
};
use strongroom_gatekeeper_scheduler::emulator::{
    EmulatedEcsTask, ECS_DESCRIBE_PATH, ECS_SECRET_ACCESS_KEY,
};
use strongroom_test::server::{free_port, Call, Kind};

/// How each scheduler's row is configured, so that the table also covers
/// the flag and environment spellings, both KV versions, a non-default
/// AppRole mount and the three start-up unseal credentials.
struct Variant {
    approle_mount: &'static str,
    kv_version: u8,
}

fn variant(sched: Sched) -> Variant {
    match sched {
        // Defaults: `approle`, KV v2; unsealed with `--vault-token`.
        Sched::Mesos => Variant {
            approle_mount: "approle",
            kv_version: 2,
        },
        // A non-default AppRole mount, for the tasks' logins and for
        // Gatekeeper's own AppRole unseal (AUTH_APP_ROLE/AUTH_APP_SECRET).
        Sched::Kubernetes => Variant {
            approle_mount: "gk-approle",
            kv_version: 2,
        },
        // KV v1 policies, configured by environment; unsealed with the
        // VAULT_TOKEN variable.
        Sched::Nomad => Variant {
            approle_mount: "approle",
            kv_version: 1,
        },
        // ECS: region and keys in the AWS variables, the cluster from the
        // (emulated) ECS agent; unsealed with VAULT_TOKEN.
        Sched::Ecs => Variant {
            approle_mount: "approle",
            kv_version: 2,
        },
    }
}

/// Starts Gatekeeper for `emu` against `vault`, unsealed at start by the
/// row's credential, at `--log-level debug`.
async fn start_gatekeeper(emu: &Emulator, vault: &VaultSetup) -> GatekeeperProc {
    let mut args = vec![
        "--schedulers".to_string(),
        emu.sched().name().to_string(),
        "--wrap-ttl".into(),
        "5m".into(),
        "--log-level".into(),
        "debug".into(),
        "--vault-addr".into(),
        vault.addr.clone(),
    ];
    args.extend(emu.flags());
    let mount = vault.approle_mount.clone();
    let kv = vault.kv_version.to_string();
    let mut env: Vec<(&str, &str)> = Vec::new();
    match emu.sched() {
        Sched::Mesos => {
            args.extend([
                "--vault-token".into(),
                vault.gk_token.clone(),
                "--policy-path".into(),
                vault.policy_path.clone(),
                "--vault-kv-version".into(),
                kv.clone(),
            ]);
        }
        Sched::Kubernetes => {
            args.extend([
                "--vault-approle-mount".into(),
                mount.clone(),
                "--policy-path".into(),
                vault.policy_path.clone(),
            ]);
            env.push(("AUTH_APP_ROLE", &vault.gk_role_id));
            env.push(("AUTH_APP_SECRET", &vault.gk_secret_id));
        }
        Sched::Nomad => {
            env.push(("VAULT_TOKEN", &vault.gk_token));
            env.push(("POLICY_PATH", &vault.policy_path));
            env.push(("VAULT_KV_VERSION", "v1"));
        }
        Sched::Ecs => {
            env.push(("VAULT_TOKEN", &vault.gk_token));
            env.push(("POLICY_PATH", &vault.policy_path));
            env.extend(ecs_env());
        }
    }
    GatekeeperProc::start(&args, &env).await
}

/// The main scenario for one scheduler against one server.
async fn scenario(sched: Sched, kind: Kind) {
    let server = dev_server(kind).await;
    let v = variant(sched);
    let vault = setup_vault(&server, v.approle_mount, v.kv_version).await;
    let key = sched.policy_key();
    vault
        .put_policies(&server, None, policy(key, &["api"], 1))
        .await;
    let emu = Emulator::start(sched).await;
    let gk = start_gatekeeper(&emu, &vault).await;
    let ctx = format!("{} on {}", sched.name(), kind.label());
    let mut secrets: Vec<(&str, String)> = vec![
        ("gatekeeper's token", vault.gk_token.clone()),
        ("the admin token", vault.admin_token.clone()),
        ("gatekeeper's secret id", vault.gk_secret_id.clone()),
    ];

    // Unsealed at start by the row's credential.
    let (s, st) = gk.status().await;
    assert_eq!(s, 200, "{ctx}: /status after start: {st}\n{}", gk.output());
    assert_eq!(st["unsealed"], true, "{ctx}: {st}");

    // A fresh task gets a wrapping token with its TTL, the server's
    // address and the wrapping accessor.
    let t1 = emu.add_task(FRESH, LOCAL);
    let (s, a) = gk.token_for(sched, &t1).await;
    assert_eq!(s, 200, "{ctx}: fresh task: {a}\n{}", gk.output());
    assert_eq!(a["ttl"], "5m0s", "{ctx}: {a}");
    assert_eq!(a["vault_addr"], format!("{}/", server.addr), "{ctx}: {a}");
    assert!(
        a["accessor"].as_str().is_some_and(|x| !x.is_empty()),
        "{ctx}: no accessor: {a}"
    );
    secrets.push(("a wrapping token", a["token"].as_str().unwrap().into()));
    // It unwraps once, to a token with the role's policies.
    let (policies, token) = unwrap_once(&server, &a).await;
    assert!(
        policies.contains(&"p-api".to_string()),
        "{ctx}: {policies:?}"
    );
    secrets.push(("an unwrapped token", token));

    // num_uses 1: the second request is refused.
    let (s, a) = gk.token_for(sched, &t1).await;
    assert_eq!(s, 429, "{ctx}: second request: {a}");

    // An old task, an unknown task, a role the policy does not allow.
    let old = emu.add_task(OLD, LOCAL);
    let (s, a) = gk.token_for(sched, &old).await;
    assert_eq!(s, 403, "{ctx}: old task: {a}");
    let (s, a) = gk.token_for(sched, &emu.unknown_task()).await;
    assert_eq!(s, 401, "{ctx}: unknown task: {a}");
    let t2 = emu.add_task(FRESH, LOCAL);
    let (s, a) = gk
        .token(json!({"task_id": t2, "scheduler": sched.name(), "role": "other"}))
        .await;
    assert_eq!(s, 403, "{ctx}: role not in the policy: {a}");
    // That refusal did not spend the task's one use.
    let (s, a) = gk.token_for(sched, &t2).await;
    assert_eq!(s, 200, "{ctx}: after a refused role: {a}");
    secrets.push(("a wrapping token", a["token"].as_str().unwrap().into()));

    // /seal needs an admin credential.
    let (s, a) = gk.admin("/seal", None).await;
    assert_eq!(s, 401, "{ctx}: /seal without a token: {a}");
    let (s, a) = gk.admin("/seal", Some(&vault.gk_token)).await;
    assert_eq!(s, 403, "{ctx}: /seal with a non-admin token: {a}");
    assert_eq!(gk.status().await.0, 200, "{ctx}: still unsealed");

    // Sealed: tokens and /status answer 503.
    let (s, a) = gk.admin("/seal", Some(&vault.admin_token)).await;
    assert_eq!(s, 200, "{ctx}: /seal with the admin token: {a}");
    let t3 = emu.add_task(FRESH, LOCAL);
    let (s, a) = gk.token_for(sched, &t3).await;
    assert_eq!(s, 503, "{ctx}: sealed /token: {a}");
    assert_eq!(a["unsealed"], false, "{ctx}: {a}");
    let (s, st) = gk.status().await;
    assert_eq!(s, 503, "{ctx}: sealed /status: {st}");
    assert_eq!(st["unsealed"], false, "{ctx}: {st}");

    // The token method unseals again, and the task is served.
    let (s, a) = gk
        .unseal(json!({"method": "token", "token": vault.gk_token}))
        .await;
    assert_eq!(s, 200, "{ctx}: /unseal: {a}");
    assert_eq!(gk.status().await.0, 200, "{ctx}: unsealed again");
    let (s, a) = gk.token_for(sched, &t3).await;
    assert_eq!(s, 200, "{ctx}: after unsealing: {a}");
    secrets.push(("a wrapping token", a["token"].as_str().unwrap().into()));

    // A changed policy applies after /policies/reload, not before.
    vault
        .put_policies(&server, None, policy(key, &["other"], 1))
        .await;
    let t4 = emu.add_task(FRESH, LOCAL);
    let (s, a) = gk.token_for(sched, &t4).await;
    assert_eq!(s, 200, "{ctx}: before the reload: {a}");
    secrets.push(("a wrapping token", a["token"].as_str().unwrap().into()));
    let (policies, token) = unwrap_once(&server, &a).await;
    assert!(
        policies.contains(&"p-api".to_string()),
        "{ctx}: {policies:?}"
    );
    secrets.push(("an unwrapped token", token));
    let (s, a) = gk.admin("/policies/reload", None).await;
    assert_eq!(s, 401, "{ctx}: /policies/reload without a token: {a}");
    let (s, a) = gk.admin("/policies/reload", Some(&vault.admin_token)).await;
    assert_eq!(s, 200, "{ctx}: /policies/reload: {a}");
    let t5 = emu.add_task(FRESH, LOCAL);
    let (s, a) = gk.token_for(sched, &t5).await;
    assert_eq!(s, 200, "{ctx}: after the reload: {a}");
    secrets.push(("a wrapping token", a["token"].as_str().unwrap().into()));
    let (policies, token) = unwrap_once(&server, &a).await;
    assert!(
        policies.contains(&"p-other".to_string()) && !policies.contains(&"p-api".to_string()),
        "{ctx}: after the reload: {policies:?}"
    );
    secrets.push(("an unwrapped token", token));

    // Nothing secret reached the log, at debug level (which is on).
    let out = gk.output();
    assert!(out.contains("DEBUG"), "{ctx}: no debug lines: {out}");
    assert_no_secrets(&out, &secrets);
}

/// One test per (scheduler, server kind) row.
macro_rules! matrix {
    ($($name:ident: $sched:expr, $kind:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            scenario($sched, $kind).await;
        }
    )*};
}

matrix! {
    mesos_on_strongroom: Sched::Mesos, Kind::Strongroom;
    mesos_on_openbao: Sched::Mesos, Kind::Bao;
    kubernetes_on_strongroom: Sched::Kubernetes, Kind::Strongroom;
    kubernetes_on_openbao: Sched::Kubernetes, Kind::Bao;
    nomad_on_strongroom: Sched::Nomad, Kind::Strongroom;
    nomad_on_openbao: Sched::Nomad, Kind::Bao;
    ecs_on_strongroom: Sched::Ecs, Kind::Strongroom;
    ecs_on_openbao: Sched::Ecs, Kind::Bao;
}

/// All three emulators and a Gatekeeper enabling all three schedulers
/// (Mesos the default), with `extra` flags and `env`.
async fn all_schedulers(
    vault: &VaultSetup,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Vec<Emulator>, GatekeeperProc) {
    let mut emus = Vec::new();
    for s in [Sched::Mesos, Sched::Kubernetes, Sched::Nomad] {
        emus.push(Emulator::start(s).await);
    }
    let mut args = vault.flags();
    args.extend(["--schedulers".into(), "mesos,kubernetes,nomad".into()]);
    args.extend(["--log-level".into(), "debug".into()]);
    for e in &emus {
        args.extend(e.flags());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let gk = GatekeeperProc::start(&args, env).await;
    (emus, gk)
}

/// The policies of all three schedulers: role `api`, `num_uses` uses.
fn all_policies(num_uses: u32) -> Value {
    let mut all = serde_json::Map::new();
    for s in [Sched::Mesos, Sched::Kubernetes, Sched::Nomad] {
        if let Value::Object(m) = policy(s.policy_key(), &["api"], num_uses) {
            all.extend(m);
        }
    }
    Value::Object(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_check_refuses_a_task_running_elsewhere() {
    let server = dev_server(Kind::Strongroom).await;
    let vault = setup_vault(&server, "approle", 2).await;
    vault.put_policies(&server, None, all_policies(1)).await;
    let (emus, gk) = all_schedulers(
        &vault,
        &["--host-check"],
        &[("VAULT_TOKEN", &vault.gk_token)],
    )
    .await;
    for emu in &emus {
        let sched = emu.sched();
        // The test's requests come from 127.0.0.1.
        let away = emu.add_task(FRESH, ELSEWHERE);
        let (s, a) = gk.token_for(sched, &away).await;
        assert_eq!(s, 401, "{}: task at {ELSEWHERE}: {a}", sched.name());
        let here = emu.add_task(FRESH, LOCAL);
        let (s, a) = gk.token_for(sched, &here).await;
        assert_eq!(s, 200, "{}: task at {LOCAL}: {a}", sched.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_statuses_and_spends_no_use() {
    let server = dev_server(Kind::Strongroom).await;
    let vault = setup_vault(&server, "gk-approle", 2).await;
    vault.put_policies(&server, None, all_policies(1)).await;
    // Started sealed: no credential. A scheduler that hangs is given up
    // on after 2 s.
    let (emus, gk) = all_schedulers(&vault, &["--scheduler-timeout", "2s"], &[]).await;
    let mut secrets: Vec<(&str, String)> = vec![
        ("gatekeeper's token", vault.gk_token.clone()),
        ("the admin token", vault.admin_token.clone()),
        ("gatekeeper's role id", vault.gk_role_id.clone()),
        ("gatekeeper's secret id", vault.gk_secret_id.clone()),
    ];
    assert_eq!(gk.status().await.0, 503, "sealed at start");

    // An unknown unseal method: 422, still sealed.
    let (s, a) = gk.unseal(json!({"method": "kerberos", "token": "x"})).await;
    assert_eq!(s, 422, "unknown unseal method: {a}");
    // A known one without its credential: 400.
    let (s, a) = gk.unseal(json!({"method": "github", "token": "x"})).await;
    assert_eq!(s, 400, "github without personal_token: {a}");
    assert_eq!(a["error"], "'personal_token' is required", "{a}");
    assert_eq!(gk.status().await.0, 503, "still sealed");
    // AppRole at the configured (non-default) mount unseals.
    let (s, a) = gk
        .unseal(json!({"method": "approle", "role_id": vault.gk_role_id, "secret_id": vault.gk_secret_id}))
        .await;
    assert_eq!(s, 200, "approle unseal at gk-approle: {a}\n{}", gk.output());
    assert_eq!(gk.status().await.0, 200);

    // Malformed requests: 400.
    let mesos = &emus[0];
    let t = mesos.add_task(FRESH, LOCAL);
    for bad in [
        r#"{}"#.to_string(),
        r#"{"task_id": 5}"#.to_string(),
        r#"{"task_id": ["x"]}"#.to_string(),
        r#"{"task_id": ""}"#.to_string(),
        "not json".to_string(),
        format!(r#"{{"task_id": "{t}", "scheduler": "ecs"}}"#),
    ] {
        let (s, a) = gk.send("POST", "/token", Some(&bad), &[]).await;
        assert_eq!(s, 400, "{bad}: {a}");
        assert!(
            a["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{bad}: no message: {a}"
        );
    }
    // None of that spent the task's use (the default scheduler is Mesos).
    let (s, a) = gk.token(json!({"task_id": t})).await;
    assert_eq!(s, 200, "after bad requests: {a}");
    secrets.push(("a wrapping token", a["token"].as_str().unwrap().into()));

    // A scheduler that is down, failing or answering garbage: 502; one
    // that hangs: 504 (503 means sealed and nothing else). Still unsealed,
    // and no use counted.
    for emu in &emus {
        let sched = emu.sched();
        let task = emu.add_task(FRESH, LOCAL);
        for (mode, want) in [
            (Mode::Down, 502),
            (Mode::ServerError, 502),
            (Mode::Garbage, 502),
            (Mode::Stall, 504),
        ] {
            emu.set_mode(mode);
            let (s, a) = gk.token_for(sched, &task).await;
            assert_eq!(s, want, "{} {mode:?}: {a}", sched.name());
            assert_eq!(a["unsealed"], true, "{} {mode:?}: {a}", sched.name());
            assert!(a["error"].as_str().is_some_and(|e| !e.is_empty()), "{a}");
        }
        emu.set_mode(Mode::Normal);
        let (s, a) = gk.token_for(sched, &task).await;
        assert_eq!(s, 200, "{} back up: {a}", sched.name());
        secrets.push(("a wrapping token", a["token"].as_str().unwrap().into()));
        let (s, a) = gk.token_for(sched, &task).await;
        assert_eq!(s, 429, "{} one use only: {a}", sched.name());
    }

    // A malformed policy in a nested folder: the reload is refused with a
    // message naming it, and the loaded policies keep working.
    vault
        .put_policies(
            &server,
            Some("team/zz-bad"),
            json!({"mesos:": {"roles": ["api"], "num_uses": 1}}),
        )
        .await;
    let (s, a) = gk.admin("/policies/reload", Some(&vault.admin_token)).await;
    assert_eq!(s, 400, "a malformed policy is refused as bad input: {a}");
    let msg = a["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("zz-bad"),
        "the message does not say where: {a}"
    );
    let t = mesos.add_task(FRESH, LOCAL);
    let (s, a) = gk.token(json!({"task_id": t})).await;
    assert_eq!(s, 200, "the old policies stay: {a}");
    secrets.push(("a wrapping token", a["token"].as_str().unwrap().into()));
    // Fixed: the reload goes through again.
    vault.delete_policies(&server, "team/zz-bad").await;
    let (s, a) = gk.admin("/policies/reload", Some(&vault.admin_token)).await;
    assert_eq!(s, 200, "reload after the fix: {a}");

    assert_no_secrets(&gk.output(), &secrets);
}

/// Two instances with `--usage-store vault` on one server share the
/// counts: with `num_uses` 1, whichever answers second says 429.
async fn shared_usage_counts(kind: Kind) {
    let (server, vault) = mesos_ready(kind).await;
    let emu = Emulator::start(Sched::Mesos).await;
    let mut args = vault.flags();
    args.extend(["--usage-store".into(), "vault".into()]);
    args.extend(emu.flags());
    let env = [("VAULT_TOKEN", vault.gk_token.as_str())];
    let a = GatekeeperProc::start(&args, &env).await;
    let b = GatekeeperProc::start(&args, &env).await;
    let ctx = kind.label();

    let t1 = emu.add_task(FRESH, LOCAL);
    let (s, r) = a.token_for(Sched::Mesos, &t1).await;
    assert_eq!(s, 200, "{ctx}: first instance: {r}\n{}", a.output());
    let (s, r) = b.token_for(Sched::Mesos, &t1).await;
    assert_eq!(s, 429, "{ctx}: second instance, same task: {r}");
    let t2 = emu.add_task(FRESH, LOCAL);
    let (s, r) = b.token_for(Sched::Mesos, &t2).await;
    assert_eq!(s, 200, "{ctx}: second instance, new task: {r}");
    let (s, r) = a.token_for(Sched::Mesos, &t2).await;
    assert_eq!(s, 429, "{ctx}: first instance, that task: {r}");

    // One KV entry per task, with Gatekeeper's narrow token.
    let list = server
        .send(&Call::list("secret/metadata/gatekeeper-store"))
        .await;
    assert_eq!(list.status, 200, "{ctx}: {list:?}");
    assert_eq!(
        list.data("keys").as_array().map(Vec::len),
        Some(2),
        "{ctx}: {list:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_usage_store_is_shared_on_strongroom() {
    shared_usage_counts(Kind::Strongroom).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_usage_store_is_shared_on_openbao() {
    shared_usage_counts(Kind::Bao).await;
}

/// How the test names the peers.
#[derive(Debug, Clone, Copy)]
enum PeersForm {
    /// The original's: `http://127.0.0.1,127.0.0.2:PORT`, both instances on
    /// one port, each on its own loopback address.
    OnePort,
    /// `127.0.0.1:PA,127.0.0.1:PB`.
    PortEach,
}

/// Two instances with `--peers`: `/policies/reload` on one reaches the
/// other, and a sealed one forwards `/token`, body included, to the
/// unsealed one.
async fn peers_forward_and_fan_out(kind: Kind, form: PeersForm) {
    let server = dev_server(kind).await;
    let vault = setup_vault(&server, "approle", 2).await;
    let key = Sched::Mesos.policy_key();
    vault
        .put_policies(&server, None, policy(key, &["api"], 1))
        .await;
    let emu = Emulator::start(Sched::Mesos).await;
    let pa = free_port();
    let (hb, pb, peers) = match form {
        PeersForm::OnePort => ("127.0.0.2", pa, format!("http://127.0.0.1,127.0.0.2:{pa}")),
        PeersForm::PortEach => {
            let pb = std::iter::repeat_with(free_port)
                .find(|p| *p != pa)
                .expect("a second port");
            ("127.0.0.1", pb, format!("127.0.0.1:{pa},127.0.0.1:{pb}"))
        }
    };
    let mut args = vault.flags();
    args.extend(emu.flags());
    args.extend([
        "--usage-store".into(),
        "vault".into(),
        "--peers".into(),
        peers,
        "--peer-refresh".into(),
        "1s".into(),
    ]);
    let env = [("VAULT_TOKEN", vault.gk_token.as_str())];
    let a = GatekeeperProc::start_on(pa, &args, &env).await;
    // B finds A (already answering) when it starts.
    let b = GatekeeperProc::start_at(hb, pb, &args, &env).await;
    let ctx = format!("{} {form:?}", kind.label());

    // A changed policy, reloaded on B only, applies on A too.
    vault
        .put_policies(&server, None, policy(key, &["other"], 1))
        .await;
    let (s, r) = b.admin("/policies/reload", Some(&vault.admin_token)).await;
    assert_eq!(s, 200, "{ctx}: reload on B: {r}\n{}", b.output());
    let t = emu.add_task(FRESH, LOCAL);
    let (s, r) = a.token_for(Sched::Mesos, &t).await;
    assert_eq!(s, 200, "{ctx}: A after B's reload: {r}\n{}", a.output());
    let (policies, _) = unwrap_once(&server, &r).await;
    assert!(
        policies.contains(&"p-other".to_string()),
        "{ctx}: B's reload did not reach A: {policies:?}"
    );

    // B sealed: its /token is answered by A, for the task in the body.
    let (s, r) = b.admin("/seal", Some(&vault.admin_token)).await;
    assert_eq!(s, 200, "{ctx}: seal B: {r}");
    let t = emu.add_task(FRESH, LOCAL);
    let (s, r) = b
        .token(json!({"task_id": t, "scheduler": "mesos", "role": "other"}))
        .await;
    assert_eq!(s, 200, "{ctx}: sealed B forwarding: {r}\n{}", b.output());
    let (policies, _) = unwrap_once(&server, &r).await;
    assert!(
        policies.contains(&"p-other".to_string()),
        "{ctx}: {policies:?}"
    );
    // The use was counted once, for both.
    let (s, r) = a.token_for(Sched::Mesos, &t).await;
    assert_eq!(s, 429, "{ctx}: A, same task: {r}");
    // A request B forwards is still refused when it should be.
    let (s, r) = b.token_for(Sched::Mesos, &emu.unknown_task()).await;
    assert_eq!(s, 401, "{ctx}: unknown task through B: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_in_the_originals_form_on_strongroom() {
    peers_forward_and_fan_out(Kind::Strongroom, PeersForm::OnePort).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_in_the_originals_form_on_openbao() {
    peers_forward_and_fan_out(Kind::Bao, PeersForm::OnePort).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_with_a_port_each_on_strongroom() {
    peers_forward_and_fan_out(Kind::Strongroom, PeersForm::PortEach).await;
}

/// ECS against its emulator, with `--host-check`: a fresh awsvpc task gets
/// a token (once, whether it asks with its id or its ARN); a pending,
/// stopped or unknown task, a bridge task (no address of its own) and a
/// task elsewhere are refused with 401; a family without a policy with
/// 403; an ECS API that is down, answers garbage or refuses the signature
/// gives 502, and a silent one 504, both still unsealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_tasks_in_every_state() {
    let server = dev_server(Kind::Strongroom).await;
    let vault = setup_vault(&server, "approle", 2).await;
    vault
        .put_policies(&server, None, policy(Sched::Ecs.policy_key(), &["api"], 1))
        .await;
    let emu = Emulator::start(Sched::Ecs).await;
    let Emulator::Ecs(ecs) = &emu else {
        unreachable!("an ECS emulator")
    };
    let mut args = vault.flags();
    args.extend(["--schedulers".into(), "ecs".into(), "--host-check".into()]);
    args.extend(["--log-level".into(), "debug".into()]);
    args.extend(emu.flags());
    let mut env = ecs_env();
    env.push(("VAULT_TOKEN", &vault.gk_token));
    let gk = GatekeeperProc::start(&args, &env).await;
    let mut secrets: Vec<(&str, String)> = vec![
        ("gatekeeper's token", vault.gk_token.clone()),
        ("the AWS secret key", ECS_SECRET_ACCESS_KEY.to_owned()),
    ];

    // A fresh task: a token that unwraps once to the role's policies.
    let fresh = emu.add_task(FRESH, LOCAL);
    let (s, a) = gk.token_for(Sched::Ecs, &fresh).await;
    assert_eq!(s, 200, "fresh task: {a}\n{}", gk.output());
    secrets.push(("a wrapping token", a["token"].as_str().unwrap().into()));
    let (policies, token) = unwrap_once(&server, &a).await;
    assert!(policies.contains(&"p-api".to_string()), "{policies:?}");
    secrets.push(("an unwrapped token", token));
    // Its ARN is the same task: its one use is spent.
    let arn = EmulatedEcsTask::running(&fresh, "web").arn();
    let (s, a) = gk.token_for(Sched::Ecs, &arn).await;
    assert_eq!(s, 429, "the same task by its ARN: {a}");

    // Not running (pending: after the original's three re-asks), unknown,
    // or without an address of its own: 401.
    let pending = ecs_task_id();
    ecs.add_task(EmulatedEcsTask::pending(&pending, "web"));
    let before = ecs.requests(ECS_DESCRIBE_PATH);
    let (s, a) = gk.token_for(Sched::Ecs, &pending).await;
    assert_eq!(s, 401, "pending task: {a}");
    assert_eq!(ecs.requests(ECS_DESCRIBE_PATH) - before, 4, "asked 4 times");
    let stopped = ecs_task_id();
    ecs.add_task(EmulatedEcsTask::stopped(&stopped, "web"));
    let (s, a) = gk.token_for(Sched::Ecs, &stopped).await;
    assert_eq!(s, 401, "stopped task: {a}");
    let (s, a) = gk.token_for(Sched::Ecs, &emu.unknown_task()).await;
    assert_eq!(s, 401, "unknown task: {a}");
    let bridge = ecs_task_id();
    ecs.add_task(EmulatedEcsTask {
        eni_ip: None,
        ..EmulatedEcsTask::running(&bridge, "web")
    });
    let (s, a) = gk.token_for(Sched::Ecs, &bridge).await;
    assert_eq!(s, 401, "bridge task under --host-check: {a}");
    let away = emu.add_task(FRESH, ELSEWHERE);
    let (s, a) = gk.token_for(Sched::Ecs, &away).await;
    assert_eq!(s, 401, "task at {ELSEWHERE}: {a}");
    // A family no policy names: 403.
    let other = ecs_task_id();
    ecs.add_task(EmulatedEcsTask::running(&other, "batch"));
    let (s, a) = gk.token_for(Sched::Ecs, &other).await;
    assert_eq!(s, 403, "family without a policy: {a}");
    assert_eq!(ecs.refused(), 0, "every request was signed right");

    // The ECS API down or answering garbage: 502, still unsealed, no use.
    let task = emu.add_task(FRESH, LOCAL);
    for mode in [Mode::Down, Mode::ServerError, Mode::Garbage] {
        emu.set_mode(mode);
        let (s, a) = gk.token_for(Sched::Ecs, &task).await;
        assert_eq!(s, 502, "{mode:?}: {a}");
        assert_eq!(a["unsealed"], true, "{mode:?}: {a}");
    }
    emu.set_mode(Mode::Normal);
    let (s, a) = gk.token_for(Sched::Ecs, &task).await;
    assert_eq!(s, 200, "back up: {a}");
    secrets.push(("a wrapping token", a["token"].as_str().unwrap().into()));

    // A wrong secret key: the emulator refuses the signature, and the
    // task is never answered as a success.
    let mut wrong_env = env.clone();
    wrong_env.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    wrong_env.push(("AWS_SECRET_ACCESS_KEY", "not-the-secret-key"));
    let wrong = GatekeeperProc::start(&args, &wrong_env).await;
    let task = emu.add_task(FRESH, LOCAL);
    let (s, a) = wrong.token_for(Sched::Ecs, &task).await;
    assert_eq!(s, 502, "a refused signature: {a}");
    assert_eq!(a["unsealed"], true, "{a}");
    assert!(ecs.refused() >= 1, "the emulator refused it");
    assert_no_secrets(
        &wrong.output(),
        &[("the wrong key", "not-the-secret-key".into())],
    );
    drop(wrong);
    // The right key still serves that task.
    let (s, a) = gk.token_for(Sched::Ecs, &task).await;
    assert_eq!(s, 200, "with the right key: {a}");
    secrets.push(("a wrapping token", a["token"].as_str().unwrap().into()));

    // An ECS API that never answers: 504 after --scheduler-timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let mut slow_args = vault.flags();
    slow_args.extend([
        "--schedulers".into(),
        "ecs".into(),
        "--ecs-endpoint".into(),
        silent_url,
        "--ecs-agent-addr".into(),
        ecs.url.clone(),
        "--scheduler-timeout".into(),
        "1s".into(),
    ]);
    let slow = GatekeeperProc::start(&slow_args, &env).await;
    let (s, a) = slow
        .token_for(Sched::Ecs, &emu.add_task(FRESH, LOCAL))
        .await;
    assert_eq!(s, 504, "a silent ECS API: {a}");
    assert_eq!(a["unsealed"], true, "{a}");
    hold.abort();

    assert_no_secrets(&gk.output(), &secrets);
}
