//! The CLI as a least-privilege user runs it: `bao kv ...` and `bao read
//! -field` with a token whose policy grants only the paths it uses (the CLI
//! first asks `sys/internal/ui/mounts/<path>`, which such a token must be
//! allowed to ask), and README's dev-mode commands run exactly as written
//! from a clean `HOME`.
//!
//! `STRONGROOM_TEST_TARGET=bao` runs the same commands against OpenBao.

use strongroom_test::server::{bao_path, run, target, CmdOutput, Kind, Server};

/// The policy of the limited token: the app's KV v2 subtree (no delete),
/// one KV v1 key, nothing on `private/`.
const APP_POLICY: &str = r#"
path "secret/data/app/*" { capabilities = ["create", "read", "update", "patch"] }
path "secret/metadata/app/*" { capabilities = ["read", "list"] }
path "kv1/app" { capabilities = ["read"] }
"#;

/// Runs `bao args` against `server` with `token` in `BAO_TOKEN` (none when
/// empty) and the server's private `HOME`.
fn bao_as(server: &Server, token: &str, args: &[&str]) -> CmdOutput {
    let home = server.home().to_string_lossy().into_owned();
    let mut env = vec![
        ("BAO_ADDR", server.addr.as_str()),
        ("VAULT_ADDR", server.addr.as_str()),
        ("HOME", home.as_str()),
    ];
    if !token.is_empty() {
        env.push(("BAO_TOKEN", token));
    }
    run(&bao_path(), args, &env)
}

/// [`bao_as`], asserting exit code `code`; returns stdout.
#[track_caller]
fn bao_as_ok(server: &Server, token: &str, args: &[&str], code: i32) -> String {
    let out = bao_as(server, token, args);
    assert_eq!(
        out.code,
        code,
        "`bao {}` exited {} (expected {code})\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.code,
        out.stdout,
        out.stderr,
    );
    out.stdout
}

/// The value of `key` in a two-column table printed by `bao`.
fn table_value(table: &str, key: &str) -> Option<String> {
    table.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(key)).then(|| parts.collect::<Vec<_>>().join(" "))
    })
}

#[test]
fn kv_and_read_field_with_a_limited_policy_token() {
    let server = Server::dev(target());
    let root = server.root_token.clone().unwrap_or_default();
    let sudo = |args: &[&str]| bao_as_ok(&server, &root, args, 0);
    sudo(&["secrets", "enable", "-path=kv1", "-version=1", "kv"]);
    sudo(&["secrets", "enable", "-path=private", "-version=2", "kv"]);
    sudo(&["kv", "put", "kv1/app", "password=v1-secret"]);
    sudo(&["kv", "put", "private/x", "a=1"]);
    let policy = server.home().join("app.hcl");
    std::fs::write(&policy, APP_POLICY).expect("write policy file");
    sudo(&["policy", "write", "app", &policy.to_string_lossy()]);
    let token = sudo(&["token", "create", "-policy=app", "-field=token"]);
    let token = token.trim();
    let user = |args: &[&str], code: i32| bao_as_ok(&server, token, args, code);

    // put, get (table and -field), patch, list, metadata get.
    let out = user(&["kv", "put", "secret/app/db", "user=u", "password=p1"], 0);
    assert_eq!(table_value(&out, "version").as_deref(), Some("1"), "{out}");
    let out = user(&["kv", "get", "secret/app/db"], 0);
    assert_eq!(
        table_value(&out, "password").as_deref(),
        Some("p1"),
        "{out}"
    );
    assert_eq!(user(&["kv", "get", "-field=user", "secret/app/db"], 0), "u");
    let out = user(&["kv", "patch", "secret/app/db", "password=p2"], 0);
    assert_eq!(table_value(&out, "version").as_deref(), Some("2"), "{out}");
    assert_eq!(
        user(&["kv", "get", "-field=password", "secret/app/db"], 0),
        "p2"
    );
    user(&["kv", "put", "secret/app/cache", "k=v"], 0);
    let out = user(&["kv", "list", "secret/app"], 0);
    let keys: Vec<&str> = out.lines().skip(2).map(str::trim).collect();
    assert_eq!(keys, ["cache", "db"], "{out}");
    let out = user(&["kv", "metadata", "get", "secret/app/db"], 0);
    assert_eq!(
        table_value(&out, "current_version").as_deref(),
        Some("2"),
        "{out}"
    );

    // `bao read -field` on KV v1 and on the KV v2 data path.
    assert_eq!(
        user(&["read", "-field=password", "kv1/app"], 0),
        "v1-secret"
    );
    assert_eq!(
        user(&["kv", "get", "-field=password", "kv1/app"], 0),
        "v1-secret"
    );
    let out = user(
        &["read", "-field=data", "-format=json", "secret/data/app/db"],
        0,
    );
    let data: serde_json::Value = serde_json::from_str(&out).expect("read -field=data is JSON");
    assert_eq!(data, serde_json::json!({"user": "u", "password": "p2"}));

    // What the policy does not grant stays refused: another key of the
    // mount (the ACL's 403), deleting, and a mount the token cannot reach
    // at all (the preflight's 403, the same as for a mount that does not
    // exist).
    let out = bao_as(&server, token, &["kv", "get", "secret/other"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("permission denied"), "{out:?}");
    let out = bao_as(&server, token, &["kv", "delete", "secret/app/db"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("permission denied"), "{out:?}");
    for path in ["private/x", "nowhere/x"] {
        let out = bao_as(&server, token, &["kv", "get", path]);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(
            out.stderr.contains(&format!(
                "preflight capability check returned 403, please ensure client's policies grant access to path \"{path}/\""
            )),
            "{out:?}"
        );
    }
}

/// The shell block of README.md that follows `marker` (the first
/// ```` ```sh ```` fence after it).
fn readme_block(readme: &str, marker: &str) -> String {
    let from = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README.md has no {marker:?}"));
    let rest = &readme[from..];
    let start = rest.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let len = rest[start..]
        .find("```")
        .expect("the block's closing fence");
    rest[start..start + len].to_string()
}

#[test]
fn readme_dev_mode_commands_work_from_a_clean_home() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("read README.md");
    let section = &readme[readme
        .find("## Run it (dev mode)")
        .expect("README has its dev-mode section")..];
    // The server command, as README gives it: `cargo run --release --`
    // runs the binary this test runs, with the arguments after `--`.
    let command = readme_block(section, "On a fresh machine");
    let command = command.trim();
    let args = command
        .strip_prefix("cargo run --release -- ")
        .unwrap_or_else(|| panic!("README's dev command changed: {command:?}"));
    let args: Vec<&str> = args.split_whitespace().collect();
    assert_eq!(args, ["server", "-dev"], "README's dev command");
    let server = Server::dev_command(Kind::Strongroom, &args);

    // The dev server stored its root token where the CLI looks for it.
    let token_file = server.home().join(".vault-token");
    let stored = std::fs::read_to_string(&token_file).expect("dev mode writes ~/.vault-token");
    assert_eq!(Some(stored.as_str()), server.root_token.as_deref());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "token file mode");
    }

    // The client block, line for line, in bash from that clean HOME with no
    // token in the environment; only README's fixed address is replaced by
    // the port this test's server listens on.
    let client = readme_block(section, "Point a client at it");
    assert!(
        client.contains("bao kv put secret/hello value=world"),
        "README's client block: {client}"
    );
    let port = server.addr.trim_start_matches("http://");
    let script = format!(
        "set -euo pipefail\n{}",
        client.replace("127.0.0.1:8200", port)
    );
    let bao_dir = bao_path()
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = format!("{bao_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let home = server.home().to_string_lossy().into_owned();
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-c", &script])
        .env("HOME", &home)
        .env("PATH", &path)
        .stdin(std::process::Stdio::null());
    for var in [
        "BAO_TOKEN",
        "VAULT_TOKEN",
        "BAO_ADDR",
        "VAULT_ADDR",
        "BAO_TOKEN_PATH",
        "VAULT_TOKEN_PATH",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "README's client commands failed ({}):\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver:\n{}",
        out.status,
        server.output.text()
    );
    // `bao kv get secret/hello` printed the value written just before.
    assert_eq!(
        table_value(&stdout, "value").as_deref(),
        Some("world"),
        "{stdout}"
    );
    // README's read-only policy is enough for `bao kv get` (the CLI's
    // preflight on sys/internal/ui/mounts included).
    let addr = server.addr.as_str();
    let env = [("BAO_ADDR", addr), ("HOME", home.as_str())];
    let created = run(
        &bao_path(),
        &["token", "create", "-policy=readonly", "-field=token"],
        &env,
    );
    assert_eq!(created.code, 0, "{created:?}");
    let reader = created.stdout.trim().to_string();
    let env = [
        ("BAO_ADDR", addr),
        ("HOME", home.as_str()),
        ("BAO_TOKEN", reader.as_str()),
    ];
    let read = run(
        &bao_path(),
        &["kv", "get", "-field=value", "secret/hello"],
        &env,
    );
    assert_eq!((read.code, read.stdout.as_str()), (0, "world"), "{read:?}");
    // `-dev-no-store-token` leaves the token file alone.
    let quiet = Server::dev_command(Kind::Strongroom, &["server", "-dev", "-dev-no-store-token"]);
    assert!(
        !quiet.home().join(".vault-token").exists(),
        "-dev-no-store-token wrote a token file"
    );
}
