//! The OpenBao CLI (`bao`) driving a Strongroom server: the commands users
//! type, with their outputs and exit codes.
//!
//! `STRONGROOM_TEST_TARGET=bao` runs the same commands against OpenBao.

use serde_json::Value;
use strongroom_test::server;
use strongroom_test::server::{bao_path, run, target, CmdOutput, Config, Server};

/// Runs `bao args` against `server`, with its root token (if any) in
/// `BAO_TOKEN` and a private `HOME` so no token helper file is shared.
#[track_caller]
pub(crate) fn bao(server: &Server, args: &[&str]) -> CmdOutput {
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
#[track_caller]
pub(crate) fn bao_ok(server: &Server, args: &[&str], code: i32) -> String {
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

pub(crate) fn json(s: &str, what: &str) -> Value {
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
    let hex = server::str_list(&init["unseal_keys_hex"]);
    let b64 = server::str_list(&init["unseal_keys_b64"]);
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

/// The string at JSON pointer `ptr` of `v`, asserting it is a non-empty
/// string.
fn str_at(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => panic!("{ptr}: expected a non-empty string in {v}"),
    }
}

#[test]
fn token_create_lookup_renew_revoke_with_the_cli() {
    let server = Server::dev(target());
    let created = json(
        &bao_ok(
            &server,
            &[
                "token",
                "create",
                "-policy=default",
                "-ttl=1h",
                "-display-name=cli",
                "-metadata=team=a",
                "-format=json",
            ],
            0,
        ),
        "token create",
    );
    assert_eq!(created["auth"]["policies"], serde_json::json!(["default"]));
    assert_eq!(created["auth"]["lease_duration"], 3600, "{created}");
    assert_eq!(created["auth"]["renewable"], true, "{created}");
    let token = str_at(&created, "/auth/client_token");
    let accessor = str_at(&created, "/auth/accessor");

    let lookup = json(
        &bao_ok(&server, &["token", "lookup", "-format=json", &token], 0),
        "token lookup",
    );
    assert_eq!(lookup["data"]["id"], token.as_str());
    assert_eq!(lookup["data"]["policies"], serde_json::json!(["default"]));
    assert_eq!(lookup["data"]["display_name"], "token-cli");
    assert_eq!(lookup["data"]["meta"], serde_json::json!({"team": "a"}));
    let ttl = lookup["data"]["ttl"].as_u64().unwrap_or(0);
    assert!(ttl > 0 && ttl <= 3600, "ttl {ttl}: {lookup}");
    // The table form names the fields users read.
    let table = bao_ok(&server, &["token", "lookup", &token], 0);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("policies") && l.contains("default")),
        "{table}"
    );
    let by_accessor = json(
        &bao_ok(
            &server,
            &["token", "lookup", "-accessor", "-format=json", &accessor],
            0,
        ),
        "token lookup -accessor",
    );
    assert_eq!(by_accessor["data"]["accessor"], accessor.as_str());
    assert_eq!(by_accessor["data"]["id"], "", "{by_accessor}");

    let renewed = json(
        &bao_ok(
            &server,
            &["token", "renew", "-increment=30m", "-format=json", &token],
            0,
        ),
        "token renew",
    );
    assert_eq!(renewed["auth"]["lease_duration"], 1800, "{renewed}");

    bao_ok(&server, &["token", "revoke", &token], 0);
    let out = bao(&server, &["token", "lookup", &token]);
    assert_eq!(out.code, 2, "lookup of a revoked token: {out:?}");
    assert!(out.stderr.contains("bad token"), "{out:?}");
    // Revoking by accessor, and a token that was never issued.
    let other = json(
        &bao_ok(&server, &["token", "create", "-format=json"], 0),
        "second token",
    );
    let other_accessor = str_at(&other, "/auth/accessor");
    bao_ok(
        &server,
        &["token", "revoke", "-accessor", &other_accessor],
        0,
    );
    let out = bao(
        &server,
        &["token", "lookup", &str_at(&other, "/auth/client_token")],
    );
    assert_eq!(out.code, 2, "lookup after revoke -accessor: {out:?}");
}

#[test]
fn policies_with_the_cli() {
    let mut server = Server::dev(target());
    bao_ok(
        &server,
        &["secrets", "enable", "-path=kv1", "-version=1", "kv"],
        0,
    );
    bao_ok(&server, &["write", "kv1/app/db", "user=admin"], 0);
    let text = "path \"kv1/app/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n";
    let file = server.home().join("reader.hcl");
    std::fs::write(&file, text).expect("write policy file");
    let file = file.to_string_lossy().into_owned();
    let out = bao_ok(&server, &["policy", "write", "reader", &file], 0);
    assert!(out.contains("reader"), "{out}");
    assert_eq!(
        bao_ok(&server, &["policy", "read", "reader"], 0).trim(),
        text.trim()
    );
    let listed = bao_ok(&server, &["policy", "list"], 0);
    assert_eq!(
        listed.lines().map(str::trim).collect::<Vec<_>>(),
        ["default", "reader", "root"],
        "{listed}"
    );
    let listed = json(
        &bao_ok(&server, &["policy", "list", "-format=json"], 0),
        "policy list",
    );
    assert_eq!(listed, serde_json::json!(["default", "reader", "root"]));
    // A policy that does not parse is refused, and not stored.
    let bad = server.home().join("bad.hcl");
    std::fs::write(&bad, "path \"kv1/*\" {").expect("write bad policy file");
    let out = bao(&server, &["policy", "write", "bad", &bad.to_string_lossy()]);
    assert_eq!(out.code, 2, "{out:?}");
    let out = bao(&server, &["policy", "read", "bad"]);
    assert_eq!(out.code, 2, "{out:?}");

    // The policy governs a token that carries it.
    let created = json(
        &bao_ok(
            &server,
            &["token", "create", "-policy=reader", "-format=json"],
            0,
        ),
        "token create",
    );
    let root = server
        .root_token
        .replace(str_at(&created, "/auth/client_token"));
    assert_eq!(
        bao_ok(&server, &["read", "-field=user", "kv1/app/db"], 0).trim(),
        "admin"
    );
    let out = bao(&server, &["write", "kv1/app/db", "user=mallory"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("permission denied"), "{out:?}");
    let out = bao(&server, &["policy", "list"]);
    assert_eq!(out.code, 2, "policy list without sudo: {out:?}");
    server.root_token = root;

    bao_ok(&server, &["policy", "delete", "reader"], 0);
    let out = bao(&server, &["policy", "read", "reader"]);
    assert_eq!(out.code, 2, "read of a deleted policy: {out:?}");
    let out = bao(&server, &["policy", "delete", "default"]);
    assert_eq!(out.code, 2, "the default policy cannot be deleted: {out:?}");
}

#[test]
fn response_wrapping_with_the_cli() {
    let server = Server::dev(target());
    let wrapped = json(
        &bao_ok(
            &server,
            &[
                "write",
                "-wrap-ttl=5m",
                "-format=json",
                "sys/wrapping/wrap",
                "foo=bar",
            ],
            0,
        ),
        "wrap",
    );
    assert_eq!(wrapped["wrap_info"]["ttl"], 300, "{wrapped}");
    let wrapping_token = str_at(&wrapped, "/wrap_info/token");
    let unwrapped = json(
        &bao_ok(&server, &["unwrap", "-format=json", &wrapping_token], 0),
        "unwrap",
    );
    assert_eq!(unwrapped["data"], serde_json::json!({"foo": "bar"}));
    let out = bao(&server, &["unwrap", &wrapping_token]);
    assert_eq!(out.code, 2, "second unwrap: {out:?}");
    assert!(
        out.stderr
            .contains("wrapping token is not valid or does not exist"),
        "{out:?}"
    );

    // A wrapped token: unwrapping yields a working token.
    let wrapped = json(
        &bao_ok(
            &server,
            &[
                "token",
                "create",
                "-wrap-ttl=5m",
                "-policy=default",
                "-format=json",
            ],
            0,
        ),
        "wrapped token create",
    );
    assert!(wrapped["auth"].is_null(), "{wrapped}");
    str_at(&wrapped, "/wrap_info/wrapped_accessor");
    let wrapping_token = str_at(&wrapped, "/wrap_info/token");
    let unwrapped = json(
        &bao_ok(&server, &["unwrap", "-format=json", &wrapping_token], 0),
        "unwrap token",
    );
    let token = str_at(&unwrapped, "/auth/client_token");
    let lookup = json(
        &bao_ok(&server, &["token", "lookup", "-format=json", &token], 0),
        "lookup of the unwrapped token",
    );
    assert_eq!(lookup["data"]["policies"], serde_json::json!(["default"]));
}

/// The value column of the table row whose key is `key` (`Key    Value`
/// tables printed by `bao kv`), if any.
pub(crate) fn table_value(table: &str, key: &str) -> Option<String> {
    table.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(key)).then(|| parts.collect::<Vec<_>>().join(" "))
    })
}

#[test]
fn kv_v2_put_get_patch_with_the_cli() {
    let server = Server::dev(target());
    let out = bao_ok(&server, &["kv", "put", "secret/app", "a=1"], 0);
    assert!(out.contains("secret/data/app"), "{out}");
    assert_eq!(table_value(&out, "version").as_deref(), Some("1"), "{out}");
    let put = json(
        &bao_ok(
            &server,
            &["kv", "put", "-format=json", "secret/app", "a=1", "c=3"],
            0,
        ),
        "kv put -format=json",
    );
    assert_eq!(put["data"]["version"], 2, "{put}");
    assert_eq!(put["data"]["destroyed"], false, "{put}");

    // The table form shows the metadata and the data.
    let table = bao_ok(&server, &["kv", "get", "secret/app"], 0);
    assert_eq!(
        table_value(&table, "version").as_deref(),
        Some("2"),
        "{table}"
    );
    assert_eq!(table_value(&table, "a").as_deref(), Some("1"), "{table}");
    assert_eq!(table_value(&table, "c").as_deref(), Some("3"), "{table}");
    assert_eq!(
        table_value(&table, "deletion_time").as_deref(),
        Some("n/a"),
        "{table}"
    );
    let v1 = json(
        &bao_ok(
            &server,
            &["kv", "get", "-version=1", "-format=json", "secret/app"],
            0,
        ),
        "kv get -version=1",
    );
    assert_eq!(v1["data"]["data"], serde_json::json!({"a": "1"}), "{v1}");
    assert_eq!(v1["data"]["metadata"]["version"], 1, "{v1}");
    assert_eq!(
        bao_ok(&server, &["kv", "get", "-field=c", "secret/app"], 0),
        "3"
    );
    // The -mount flag form addresses the same secret.
    assert_eq!(
        bao_ok(
            &server,
            &["kv", "get", "-mount=secret", "-field=a", "app"],
            0
        ),
        "1"
    );

    // patch merges into the latest version.
    let out = bao_ok(&server, &["kv", "patch", "secret/app", "b=2"], 0);
    assert_eq!(table_value(&out, "version").as_deref(), Some("3"), "{out}");
    let latest = json(
        &bao_ok(&server, &["kv", "get", "-format=json", "secret/app"], 0),
        "kv get after patch",
    );
    assert_eq!(
        latest["data"]["data"],
        serde_json::json!({"a": "1", "b": "2", "c": "3"}),
        "{latest}"
    );
    // patch of a key that does not exist fails.
    let out = bao(&server, &["kv", "patch", "secret/nothing", "b=2"]);
    assert_eq!(out.code, 2, "patch of a missing key: {out:?}");

    // -cas=0 on an existing key fails with OpenBao's message; the right
    // version succeeds.
    let out = bao(&server, &["kv", "put", "-cas=0", "secret/app", "a=9"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("check-and-set parameter did not match the current version"),
        "{out:?}"
    );
    let out = bao_ok(&server, &["kv", "put", "-cas=3", "secret/app", "a=9"], 0);
    assert_eq!(table_value(&out, "version").as_deref(), Some("4"), "{out}");
    bao_ok(&server, &["kv", "put", "-cas=0", "secret/fresh", "x=1"], 0);

    // A missing secret: exit code 2 and "No value found".
    let out = bao(&server, &["kv", "get", "secret/nothing"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("No value found"), "{out:?}");
}

#[test]
fn kv_v2_delete_undelete_destroy_metadata_list_with_the_cli() {
    let server = Server::dev(target());
    for pair in ["v=1", "v=2", "v=3"] {
        bao_ok(&server, &["kv", "put", "secret/app", pair], 0);
    }
    bao_ok(&server, &["kv", "put", "secret/dir/x", "y=1"], 0);

    let out = bao_ok(&server, &["kv", "delete", "secret/app"], 0);
    assert!(out.contains("Success"), "{out}");
    // A deleted latest version: the metadata is shown, the data is not.
    let table = bao_ok(&server, &["kv", "get", "secret/app"], 0);
    assert_eq!(
        table_value(&table, "version").as_deref(),
        Some("3"),
        "{table}"
    );
    assert_ne!(
        table_value(&table, "deletion_time").as_deref(),
        Some("n/a"),
        "{table}"
    );
    assert!(table_value(&table, "v").is_none(), "{table}");

    bao_ok(&server, &["kv", "undelete", "-versions=3", "secret/app"], 0);
    assert_eq!(
        bao_ok(&server, &["kv", "get", "-field=v", "secret/app"], 0),
        "3"
    );
    bao_ok(&server, &["kv", "delete", "-versions=2", "secret/app"], 0);
    let v2 = json(
        &bao_ok(
            &server,
            &["kv", "get", "-version=2", "-format=json", "secret/app"],
            0,
        ),
        "kv get of a deleted version",
    );
    assert!(v2["data"]["data"].is_null(), "{v2}");
    assert_ne!(v2["data"]["metadata"]["deletion_time"], "", "{v2}");

    bao_ok(&server, &["kv", "destroy", "-versions=1", "secret/app"], 0);
    let v1 = json(
        &bao_ok(
            &server,
            &["kv", "get", "-version=1", "-format=json", "secret/app"],
            0,
        ),
        "kv get of a destroyed version",
    );
    assert!(v1["data"]["data"].is_null(), "{v1}");
    assert_eq!(v1["data"]["metadata"]["destroyed"], true, "{v1}");
    // -versions is required.
    let out = bao(&server, &["kv", "destroy", "secret/app"]);
    assert_ne!(out.code, 0, "destroy without -versions: {out:?}");

    // metadata get shows every version's state.
    let meta = json(
        &bao_ok(
            &server,
            &["kv", "metadata", "get", "-format=json", "secret/app"],
            0,
        ),
        "kv metadata get",
    );
    let d = &meta["data"];
    assert_eq!(d["current_version"], 3, "{meta}");
    assert_eq!(d["versions"]["1"]["destroyed"], true, "{meta}");
    assert_ne!(d["versions"]["2"]["deletion_time"], "", "{meta}");
    assert_eq!(d["versions"]["3"]["deletion_time"], "", "{meta}");
    let table = bao_ok(&server, &["kv", "metadata", "get", "secret/app"], 0);
    assert_eq!(
        table_value(&table, "current_version").as_deref(),
        Some("3"),
        "{table}"
    );
    assert!(table.contains("Version 3"), "{table}");

    bao_ok(
        &server,
        &[
            "kv",
            "metadata",
            "put",
            "-max-versions=5",
            "-custom-metadata=owner=me",
            "secret/app",
        ],
        0,
    );
    let meta = json(
        &bao_ok(
            &server,
            &["kv", "metadata", "get", "-format=json", "secret/app"],
            0,
        ),
        "kv metadata get after put",
    );
    assert_eq!(meta["data"]["max_versions"], 5, "{meta}");
    assert_eq!(
        meta["data"]["custom_metadata"],
        serde_json::json!({"owner": "me"}),
        "{meta}"
    );
    // metadata put on a key without versions creates its metadata.
    bao_ok(
        &server,
        &[
            "kv",
            "metadata",
            "put",
            "-cas-required=true",
            "secret/guarded",
        ],
        0,
    );
    let out = bao(&server, &["kv", "put", "secret/guarded", "a=1"]);
    assert_eq!(
        out.code, 2,
        "write without -cas to a cas-required key: {out:?}"
    );
    bao_ok(
        &server,
        &["kv", "put", "-cas=0", "secret/guarded", "a=1"],
        0,
    );

    let out = bao_ok(&server, &["kv", "list", "secret/"], 0);
    assert_eq!(
        out.lines().map(str::trim).collect::<Vec<_>>(),
        ["Keys", "----", "app", "dir/", "guarded"],
        "{out}"
    );
    let keys = json(
        &bao_ok(&server, &["kv", "list", "-format=json", "secret/dir"], 0),
        "kv list folder",
    );
    assert_eq!(keys, serde_json::json!(["x"]));
    let out = bao(&server, &["kv", "list", "secret/nothing"]);
    assert_eq!(out.code, 2, "list of a missing folder: {out:?}");

    bao_ok(&server, &["kv", "metadata", "delete", "secret/app"], 0);
    let reads: [&[&str]; 2] = [
        &["kv", "get", "secret/app"],
        &["kv", "metadata", "get", "secret/app"],
    ];
    for args in reads {
        let out = bao(&server, args);
        assert_eq!(
            out.code,
            2,
            "`bao {}` after metadata delete: {out:?}",
            args.join(" ")
        );
        assert!(out.stderr.contains("No value found"), "{out:?}");
    }
}

#[test]
fn approle_with_the_cli() {
    let server = Server::dev(target());
    let out = bao_ok(&server, &["auth", "enable", "approle"], 0);
    assert!(
        out.contains("Enabled approle auth method at: approle/"),
        "{out}"
    );
    let out = bao(&server, &["auth", "enable", "approle"]);
    assert_eq!(out.code, 2, "enabling approle twice: {out:?}");
    let methods = json(
        &bao_ok(&server, &["auth", "list", "-format=json"], 0),
        "auth list",
    );
    assert_eq!(methods["approle/"]["type"], "approle", "{methods}");

    bao_ok(
        &server,
        &[
            "write",
            "auth/approle/role/r",
            "token_policies=default",
            "secret_id_num_uses=2",
        ],
        0,
    );
    let table = bao_ok(&server, &["read", "auth/approle/role/r"], 0);
    assert_eq!(
        table_value(&table, "secret_id_num_uses").as_deref(),
        Some("2"),
        "{table}"
    );
    assert_eq!(
        table_value(&table, "token_policies").as_deref(),
        Some("[default]"),
        "{table}"
    );
    let role = json(
        &bao_ok(&server, &["read", "-format=json", "auth/approle/role/r"], 0),
        "read role",
    );
    assert_eq!(role["data"]["bind_secret_id"], true, "{role}");

    let role_id = bao_ok(
        &server,
        &["read", "-field=role_id", "auth/approle/role/r/role-id"],
        0,
    );
    let role_id = role_id.trim();
    assert!(
        !role_id.is_empty() && !role_id.contains('\n'),
        "{role_id:?}"
    );
    let secret_id = bao_ok(
        &server,
        &[
            "write",
            "-f",
            "-field=secret_id",
            "auth/approle/role/r/secret-id",
        ],
        0,
    );
    let secret_id = secret_id.trim();
    assert!(
        !secret_id.is_empty() && !secret_id.contains('\n'),
        "{secret_id:?}"
    );
    let role_arg = format!("role_id={role_id}");
    let secret_arg = format!("secret_id={secret_id}");

    // Table login output names the token and its policies.
    let table = bao_ok(
        &server,
        &["write", "auth/approle/login", &role_arg, &secret_arg],
        0,
    );
    let token = table_value(&table, "token").unwrap_or_default();
    assert!(!token.is_empty(), "{table}");
    assert_eq!(
        table_value(&table, "token_policies").as_deref(),
        Some("[\"default\"]"),
        "{table}"
    );
    assert_eq!(
        table_value(&table, "token_meta_role_name").as_deref(),
        Some("r"),
        "{table}"
    );
    assert_eq!(
        table_value(&table, "token_renewable").as_deref(),
        Some("true"),
        "{table}"
    );
    // The CLI run with the login token as BAO_TOKEN is that token.
    let home = server.home().to_string_lossy().into_owned();
    let out = run(
        &bao_path(),
        &["token", "lookup", "-format=json"],
        &[
            ("BAO_ADDR", server.addr.as_str()),
            ("HOME", home.as_str()),
            ("BAO_TOKEN", token.as_str()),
        ],
    );
    assert_eq!(out.code, 0, "lookup-self with the login token: {out:?}");
    let lookup = json(&out.stdout, "lookup-self with the login token");
    assert_eq!(lookup["data"]["path"], "auth/approle/login", "{lookup}");

    // JSON login: the second and last use of the secret id.
    let login = json(
        &bao_ok(
            &server,
            &[
                "write",
                "-format=json",
                "auth/approle/login",
                &role_arg,
                &secret_arg,
            ],
            0,
        ),
        "login -format=json",
    );
    assert_eq!(login["auth"]["policies"], serde_json::json!(["default"]));
    assert_eq!(
        login["auth"]["metadata"],
        serde_json::json!({"role_name": "r"})
    );
    assert_eq!(login["auth"]["renewable"], true, "{login}");
    str_at(&login, "/auth/client_token");
    let out = bao(
        &server,
        &["write", "auth/approle/login", &role_arg, &secret_arg],
    );
    assert_eq!(out.code, 2, "login with a used-up secret id: {out:?}");
    assert!(out.stderr.contains("invalid role or secret ID"), "{out:?}");

    bao_ok(
        &server,
        &["write", "auth/approle/role/other", "token_ttl=1h"],
        0,
    );
    let out = bao_ok(&server, &["list", "auth/approle/role"], 0);
    assert_eq!(
        out.lines().map(str::trim).collect::<Vec<_>>(),
        ["Keys", "----", "other", "r"],
        "{out}"
    );
    let keys = json(
        &bao_ok(&server, &["list", "-format=json", "auth/approle/role"], 0),
        "list roles",
    );
    assert_eq!(keys, serde_json::json!(["other", "r"]));
    bao_ok(&server, &["delete", "auth/approle/role/other"], 0);
    let out = bao(&server, &["read", "auth/approle/role/other"]);
    assert_eq!(out.code, 2, "read of a deleted role: {out:?}");
}

use strongroom_test::kube;

/// The Kubernetes auth method with the CLI: enable, config with the CA
/// read from a file (`@file`), a role, and `bao write auth/kubernetes/login`
/// with a service-account JWT that a fake Kubernetes API server reviews.
#[test]
fn kubernetes_with_the_cli() {
    use std::sync::Arc;

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let signer = Arc::new(kube::RsaSigner::generate());
    let fake = runtime.block_on(kube::FakeKube::start(signer.clone()));
    let reviewer = "cli-reviewer-jwt";
    fake.require_reviewer(reviewer);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &fake.ca_pem).expect("write CA file");
    let server = Server::dev(target());

    let out = bao_ok(&server, &["auth", "enable", "kubernetes"], 0);
    assert!(out.contains("Enabled kubernetes auth method"), "{out}");
    let host_arg = format!("kubernetes_host={}", fake.url);
    let ca_arg = format!("kubernetes_ca_cert=@{}", ca_file.display());
    let reviewer_arg = format!("token_reviewer_jwt={reviewer}");
    bao_ok(
        &server,
        &[
            "write",
            "auth/kubernetes/config",
            &host_arg,
            &ca_arg,
            &reviewer_arg,
        ],
        0,
    );
    let config = json(
        &bao_ok(
            &server,
            &["read", "-format=json", "auth/kubernetes/config"],
            0,
        ),
        "read config",
    );
    assert_eq!(config["data"]["kubernetes_host"], fake.url.as_str());
    assert_eq!(
        config["data"]["kubernetes_ca_cert"],
        fake.ca_pem.as_str(),
        "the CA read from the file is stored as given"
    );
    assert!(!config.to_string().contains(reviewer), "{config}");

    bao_ok(
        &server,
        &[
            "write",
            "auth/kubernetes/role/r",
            "bound_service_account_names=app",
            "bound_service_account_namespaces=prod",
            "token_policies=default",
        ],
        0,
    );
    let role = json(
        &bao_ok(
            &server,
            &["read", "-format=json", "auth/kubernetes/role/r"],
            0,
        ),
        "read role",
    );
    assert_eq!(
        role["data"]["bound_service_account_names"],
        serde_json::json!(["app"])
    );
    assert_eq!(
        role["data"]["bound_service_account_namespaces"],
        serde_json::json!(["prod"])
    );
    let keys = json(
        &bao_ok(
            &server,
            &["list", "-format=json", "auth/kubernetes/role"],
            0,
        ),
        "list roles",
    );
    assert_eq!(keys, serde_json::json!(["r"]));

    // Table login: the token is printed and works.
    let jwt = signer.sign(&kube::legacy_claims("prod", "app"));
    let jwt_arg = format!("jwt={jwt}");
    let out = bao_ok(
        &server,
        &["write", "auth/kubernetes/login", "role=r", &jwt_arg],
        0,
    );
    let token = table_value(&out, "token").expect("token row in the login table");
    assert_eq!(
        table_value(&out, "token_meta_service_account_namespace").as_deref(),
        Some("prod"),
        "{out}"
    );
    let home = server.home().to_string_lossy().into_owned();
    let out = run(
        &bao_path(),
        &["token", "lookup", "-format=json"],
        &[
            ("BAO_ADDR", server.addr.as_str()),
            ("HOME", home.as_str()),
            ("BAO_TOKEN", token.as_str()),
        ],
    );
    assert_eq!(out.code, 0, "lookup-self with the login token: {out:?}");
    let lookup = json(&out.stdout, "lookup-self with the login token");
    assert_eq!(lookup["data"]["path"], "auth/kubernetes/login", "{lookup}");
    assert_eq!(lookup["data"]["meta"]["service_account_name"], "app");

    // JSON login: the auth block a client reads.
    let login = json(
        &bao_ok(
            &server,
            &[
                "write",
                "-format=json",
                "auth/kubernetes/login",
                "role=r",
                &jwt_arg,
            ],
            0,
        ),
        "login -format=json",
    );
    assert_eq!(login["auth"]["policies"], serde_json::json!(["default"]));
    assert_eq!(
        login["auth"]["metadata"],
        serde_json::json!({"role": "r", "service_account_name": "app",
                           "service_account_namespace": "prod",
                           "service_account_secret_name": "app-token-abcde",
                           "service_account_uid": kube::sa_uid("prod", "app")})
    );
    str_at(&login, "/auth/client_token");
    // Every login was reviewed with the reviewer JWT.
    let seen = fake.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen
        .iter()
        .all(|s| s.authorization.as_deref() == Some(&format!("Bearer {reviewer}"))));

    // A service account in another namespace is refused, exit code 2.
    let other = signer.sign(&kube::legacy_claims("dev", "app"));
    let other_arg = format!("jwt={other}");
    let out = bao(
        &server,
        &["write", "auth/kubernetes/login", "role=r", &other_arg],
    );
    assert_eq!(out.code, 2, "login from another namespace: {out:?}");
    assert!(out.stderr.contains("namespace not authorized"), "{out:?}");
    // A JWT Kubernetes did not sign.
    let forged = kube::RsaSigner::generate().sign(&kube::legacy_claims("prod", "app"));
    let forged_arg = format!("jwt={forged}");
    let out = bao(
        &server,
        &["write", "auth/kubernetes/login", "role=r", &forged_arg],
    );
    assert_eq!(out.code, 2, "login with a forged JWT: {out:?}");
    assert!(out.stderr.contains("permission denied"), "{out:?}");
}

use strongroom_test::gcp;

/// The GCP auth method with the CLI: enable, config with the credentials
/// read from a file (`@file`) and `custom_endpoint` as a JSON string, a
/// role, `list`, and `bao write auth/gcp/login` with a JWT signed by a
/// service-account key of the Google API emulator. The dev server does not
/// trust the emulator's test CA, so the emulator is reached over plain
/// HTTP (`custom_endpoint` and `token_uri` may be `http` URLs).
#[test]
fn gcp_with_the_cli() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let emu = runtime.block_on(gcp::Emulator::start());
    let sa = emu.add_account("app", "proj-a");
    let kid = emu.add_key(&sa.email);
    let dir = tempfile::tempdir().expect("tempdir");
    let creds_file = dir.path().join("creds.json");
    std::fs::write(&creds_file, emu.credentials_json_at(&emu.http_url)).expect("write creds");
    let server = Server::dev(target());

    let out = bao_ok(&server, &["auth", "enable", "gcp"], 0);
    assert!(out.contains("Enabled gcp auth method"), "{out}");
    let creds_arg = format!("credentials=@{}", creds_file.display());
    let endpoint_arg = format!("custom_endpoint={}", emu.custom_endpoint_at(&emu.http_url));
    bao_ok(
        &server,
        &["write", "auth/gcp/config", &creds_arg, &endpoint_arg],
        0,
    );
    let config = json(
        &bao_ok(&server, &["read", "-format=json", "auth/gcp/config"], 0),
        "read config",
    );
    assert_eq!(config["data"]["client_email"], emu.admin.email.as_str());
    assert_eq!(config["data"]["private_key_id"], emu.admin_kid());
    assert_eq!(
        config["data"]["custom_endpoint"]["iam"],
        emu.http_url.as_str()
    );
    assert!(!config.to_string().contains("PRIVATE KEY"), "{config}");

    // Credentials that are not JSON: refused, exit code 2.
    let out = bao(
        &server,
        &["write", "auth/gcp/config", "credentials=not-json"],
    );
    assert_eq!(out.code, 2, "credentials that are not JSON: {out:?}");

    let sa_arg = format!("service_accounts={}", sa.email);
    bao_ok(
        &server,
        &[
            "write",
            "auth/gcp/role/r",
            "type=iam",
            "project_id=proj-a",
            &sa_arg,
            "policies=dev",
            "ttl=1h",
        ],
        0,
    );
    let role = json(
        &bao_ok(&server, &["read", "-format=json", "auth/gcp/role/r"], 0),
        "read role",
    );
    assert_eq!(role["data"]["type"], "iam");
    assert_eq!(
        role["data"]["bound_service_accounts"],
        serde_json::json!([sa.email])
    );
    let keys = json(
        &bao_ok(&server, &["list", "-format=json", "auth/gcp/roles"], 0),
        "list roles",
    );
    assert_eq!(keys, serde_json::json!(["r"]));

    // Table login: the token is printed and works.
    let jwt = emu.sign_login(&sa.email, &kid, "vault/r", gcp::now() + 300);
    let jwt_arg = format!("jwt={jwt}");
    let out = bao_ok(&server, &["write", "auth/gcp/login", "role=r", &jwt_arg], 0);
    let token = table_value(&out, "token").expect("token row in the login table");
    assert_eq!(
        table_value(&out, "token_meta_service_account_email").as_deref(),
        Some(sa.email.as_str()),
        "{out}"
    );
    let home = server.home().to_string_lossy().into_owned();
    let out = run(
        &bao_path(),
        &["token", "lookup", "-format=json"],
        &[
            ("BAO_ADDR", server.addr.as_str()),
            ("HOME", home.as_str()),
            ("BAO_TOKEN", token.as_str()),
        ],
    );
    assert_eq!(out.code, 0, "lookup-self with the login token: {out:?}");
    let lookup = json(&out.stdout, "lookup-self with the login token");
    assert_eq!(lookup["data"]["path"], "auth/gcp/login", "{lookup}");
    assert_eq!(
        lookup["data"]["policies"],
        serde_json::json!(["default", "dev"])
    );
    assert_eq!(
        lookup["data"]["meta"]["service_account_id"],
        sa.unique_id.as_str()
    );

    // A JWT for another audience is refused, exit code 2.
    let wrong = emu.sign_login(&sa.email, &kid, "vault/other", gcp::now() + 300);
    let wrong_arg = format!("jwt={wrong}");
    let out = bao(&server, &["write", "auth/gcp/login", "role=r", &wrong_arg]);
    assert_eq!(out.code, 2, "login with the wrong audience: {out:?}");
    drop(runtime);
}
