//! The userpass flow as people type it with the OpenBao CLI: an operator
//! enables the method and creates a user, the user runs
//! `bao login -method=userpass username=... password=...`, and the token
//! the CLI stores is the user's.
//!
//! `STRONGROOM_TEST_TARGET=bao` runs the same commands against OpenBao.

use strongroom_test::server::{bao_path, run, target, Server};

use crate::bao_cli::{bao, bao_ok, json, table_value};

#[test]
fn a_user_logs_in_with_the_cli_and_uses_the_stored_token() {
    let server = Server::dev(target());
    let out = bao_ok(&server, &["auth", "enable", "userpass"], 0);
    assert!(
        out.contains("Enabled userpass auth method at: userpass/"),
        "{out}"
    );
    bao_ok(
        &server,
        &[
            "write",
            "auth/userpass/users/Alice",
            "password=s3cret-pw",
            "token_policies=dev,ops",
            "token_ttl=15m",
        ],
        0,
    );
    let users = bao_ok(&server, &["list", "-format=json", "auth/userpass/users"], 0);
    assert_eq!(json(&users, "list users"), serde_json::json!(["alice"]));
    let table = bao_ok(&server, &["read", "auth/userpass/users/alice"], 0);
    assert_eq!(
        table_value(&table, "token_policies").as_deref(),
        Some("[dev ops]"),
        "{table}"
    );

    // The login as a person types it, with no token of their own: the
    // CLI stores the token in ~/.vault-token for the next commands.
    let home = server.home().to_string_lossy().into_owned();
    let env = [
        ("BAO_ADDR", server.addr.as_str()),
        ("VAULT_ADDR", server.addr.as_str()),
        ("HOME", home.as_str()),
    ];
    let login = run(
        &bao_path(),
        &[
            "login",
            "-method=userpass",
            "username=alice",
            "password=s3cret-pw",
        ],
        &env,
    );
    assert_eq!(login.code, 0, "{login:?}");
    assert!(
        login.stdout.contains("Success! You are now authenticated."),
        "{login:?}"
    );
    assert_eq!(
        table_value(&login.stdout, "token_meta_username").as_deref(),
        Some("alice"),
        "{login:?}"
    );
    let lookup = run(&bao_path(), &["token", "lookup", "-format=json"], &env);
    assert_eq!(lookup.code, 0, "{lookup:?}");
    let lookup = json(&lookup.stdout, "token lookup");
    let d = &lookup["data"];
    assert_eq!(d["display_name"], "userpass-alice", "{lookup}");
    assert_eq!(d["meta"]["username"], "alice", "{lookup}");
    assert_eq!(
        d["policies"],
        serde_json::json!(["default", "dev", "ops"]),
        "{lookup}"
    );
    assert_eq!(d["creation_ttl"], 900, "{lookup}");

    // A wrong password: exit code 2 and OpenBao's message; the stored
    // token is kept.
    let bad = run(
        &bao_path(),
        &[
            "login",
            "-method=userpass",
            "username=alice",
            "password=wrong",
        ],
        &env,
    );
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.contains("invalid username or password"),
        "{bad:?}"
    );
    let again = run(&bao_path(), &["token", "lookup", "-format=json"], &env);
    assert_eq!(again.code, 0, "{again:?}");

    // The operator resets the password with the CLI.
    bao_ok(
        &server,
        &[
            "write",
            "auth/userpass/users/alice/password",
            "password=n3w-pw",
        ],
        0,
    );
    let out = bao(
        &server,
        &[
            "login",
            "-method=userpass",
            "-no-store",
            "-format=json",
            "username=alice",
            "password=n3w-pw",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let auth = json(&out.stdout, "login -format=json");
    assert_eq!(auth["auth"]["metadata"]["username"], "alice", "{auth}");
}
