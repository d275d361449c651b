//! The OpenBao CLI (`bao`) driving a Strongroom server: the commands users
//! type, with their outputs and exit codes.
//!
//! `STRONGROOM_TEST_TARGET=bao` runs the same commands against OpenBao.

mod common;

use common::{bao_path, run, target, CmdOutput, Config, Server};
use serde_json::Value;

/// Runs `bao args` against `server`, with its root token (if any) in
/// `BAO_TOKEN` and a private `HOME` so no token helper file is shared.
fn bao(server: &Server, args: &[&str]) -> CmdOutput {
    let home = server.home().to_string_lossy().into_owned();
    let mut env = vec![
        ("BAO_ADDR", server.addr.as_str()),
        ("VAULT_ADDR", server.addr.as_str()),
        ("HOME", home.as_str()),
    ];
    let token = server.root_token.clone().unwrap_or_default();
    if !token.is_empty() {
        env.push(("BAO_TOKEN", token.as_str()));
    }
    run(&bao_path(), args, &env)
}

/// Runs `bao args`, asserting exit code `code`, and returns stdout.
fn bao_ok(server: &Server, args: &[&str], code: i32) -> String {
    let out = bao(server, args);
    assert_eq!(
        out.code,
        code,
        "`bao {}` exited {} (expected {code})\nstdout: {}\nstderr: {}\nserver output:\n{}",
        args.join(" "),
        out.code,
        out.stdout,
        out.stderr,
        server.output.text()
    );
    out.stdout
}

fn json(s: &str, what: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {s}"))
}

#[test]
fn init_unseal_status_and_seal_with_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::with_config(target(), &Config::inmem(dir.path()));

    // Uninitialised: sealed, exit code 2.
    let status = json(
        &bao_ok(&server, &["status", "-format=json"], 2),
        "status before init",
    );
    assert_eq!(status["initialized"], false);
    assert_eq!(status["sealed"], true);

    let init = json(
        &bao_ok(
            &server,
            &[
                "operator",
                "init",
                "-key-shares=3",
                "-key-threshold=2",
                "-format=json",
            ],
            0,
        ),
        "operator init",
    );
    let hex = common::str_list(&init["unseal_keys_hex"]);
    let b64 = common::str_list(&init["unseal_keys_b64"]);
    assert_eq!((hex.len(), b64.len()), (3, 3), "{init}");
    assert_eq!(init["unseal_shares"], 3);
    assert_eq!(init["unseal_threshold"], 2);
    let root = init["root_token"].as_str().expect("root_token").to_string();
    server.root_token = Some(root);

    // Initialised but sealed: still 2.
    bao_ok(&server, &["status"], 2);

    // First share in hex: progress 1/2.
    let out = bao_ok(&server, &["operator", "unseal", "-format=json", &hex[0]], 0);
    let st = json(&out, "unseal 1");
    assert_eq!(
        (st["sealed"].clone(), st["progress"].clone()),
        (Value::Bool(true), 1.into())
    );
    // Second share in base64: unsealed.
    let out = bao_ok(&server, &["operator", "unseal", &b64[1]], 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("Sealed") && l.trim_end().ends_with("false")),
        "unseal output should report Sealed false:\n{out}"
    );

    let out = bao_ok(&server, &["status"], 0);
    assert!(out.contains("Initialized") && out.contains("true"), "{out}");
    let status = json(&bao_ok(&server, &["status", "-format=json"], 0), "status");
    assert_eq!(status["sealed"], false);
    assert_eq!(status["t"], 2);
    assert_eq!(status["n"], 3);

    // A malformed key is refused with a non-zero exit.
    let out = bao(&server, &["operator", "unseal", "not-a-key!"]);
    assert_ne!(out.code, 0, "bad key accepted: {out:?}");

    bao_ok(&server, &["operator", "seal"], 0);
    let status = json(&bao_ok(&server, &["status", "-format=json"], 2), "sealed");
    assert_eq!(status["sealed"], true);
    // Sealed: reads fail.
    let out = bao(&server, &["secrets", "list"]);
    assert_ne!(out.code, 0, "secrets list while sealed: {out:?}");
    // The base64 forms of the first two shares unseal again.
    bao_ok(&server, &["operator", "unseal", &b64[0]], 0);
    bao_ok(&server, &["operator", "unseal", &b64[2]], 0);
    bao_ok(&server, &["status"], 0);
}

#[test]
fn kv_v1_secrets_with_the_cli() {
    let server = Server::dev(target());
    bao_ok(&server, &["status"], 0);
    bao_ok(
        &server,
        &["secrets", "enable", "-path=kv1", "-version=1", "kv"],
        0,
    );
    // Enabling twice fails.
    let out = bao(
        &server,
        &["secrets", "enable", "-path=kv1", "-version=1", "kv"],
    );
    assert_eq!(out.code, 2, "{out:?}");

    let mounts = json(
        &bao_ok(&server, &["secrets", "list", "-format=json"], 0),
        "secrets list",
    );
    assert_eq!(mounts["kv1/"]["type"], "kv", "{mounts}");
    assert_eq!(mounts["kv1/"]["options"]["version"], "1", "{mounts}");
    assert_eq!(mounts["sys/"]["type"], "system", "{mounts}");

    bao_ok(
        &server,
        &["write", "kv1/app/db", "foo=bar", "user=admin"],
        0,
    );
    bao_ok(&server, &["write", "kv1/other", "x=1"], 0);
    assert_eq!(
        bao_ok(&server, &["read", "-field=foo", "kv1/app/db"], 0).trim(),
        "bar"
    );
    let read = json(
        &bao_ok(&server, &["read", "-format=json", "kv1/app/db"], 0),
        "read",
    );
    assert_eq!(
        read["data"],
        serde_json::json!({"foo": "bar", "user": "admin"})
    );
    let table = bao_ok(&server, &["read", "kv1/app/db"], 0);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("foo") && l.trim_end().ends_with("bar")),
        "{table}"
    );

    let keys = json(
        &bao_ok(&server, &["list", "-format=json", "kv1/"], 0),
        "list",
    );
    assert_eq!(keys, serde_json::json!(["app/", "other"]));
    let keys = json(
        &bao_ok(&server, &["list", "-format=json", "kv1/app"], 0),
        "list folder",
    );
    assert_eq!(keys, serde_json::json!(["db"]));

    // Missing secret: exit code 2, "No value found".
    let out = bao(&server, &["read", "kv1/nothing"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("No value found"), "{out:?}");

    bao_ok(&server, &["delete", "kv1/app/db"], 0);
    let out = bao(&server, &["read", "kv1/app/db"]);
    assert_eq!(out.code, 2, "read after delete: {out:?}");

    bao_ok(
        &server,
        &["secrets", "tune", "-default-lease-ttl=1h", "kv1/"],
        0,
    );
    let tune = json(
        &bao_ok(&server, &["read", "-format=json", "sys/mounts/kv1/tune"], 0),
        "tune",
    );
    assert_eq!(tune["data"]["default_lease_ttl"], 3600, "{tune}");
    let read = json(
        &bao_ok(&server, &["read", "-format=json", "kv1/other"], 0),
        "read after tune",
    );
    assert_eq!(read["lease_duration"], 3600, "{read}");

    bao_ok(&server, &["secrets", "disable", "kv1/"], 0);
    let mounts = json(
        &bao_ok(&server, &["secrets", "list", "-format=json"], 0),
        "secrets list after disable",
    );
    assert!(mounts.get("kv1/").is_none(), "{mounts}");
    let out = bao(&server, &["read", "kv1/other"]);
    assert_ne!(out.code, 0, "read on a disabled mount: {out:?}");
}

#[test]
fn token_errors_with_the_cli() {
    let mut server = Server::dev(target());
    let lookup = json(
        &bao_ok(&server, &["token", "lookup", "-format=json"], 0),
        "token lookup",
    );
    assert_eq!(lookup["data"]["policies"], serde_json::json!(["root"]));
    server.root_token = Some("not-a-real-token".to_string());
    let out = bao(&server, &["secrets", "list"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("permission denied"), "{out:?}");
}
