//! The OpenBao CLI (`bao`) with namespaces against a Strongroom server:
//! `bao namespace create/list/lookup/patch/lock/unlock/delete`, and
//! commands run inside a namespace with `-namespace` (and `BAO_NAMESPACE`)
//! or through a path prefix, with their outputs and exit codes.
//!
//! `STRONGROOM_TEST_TARGET=bao` runs the same commands against OpenBao.

use serde_json::Value;
use strongroom_test::server::{target, Server};

use crate::bao_cli::{bao, bao_ok, json, table_value};

/// How many times a deleted namespace is polled before the test gives up
/// (deletion is asynchronous; 200 tries 25 ms apart is 5 s).
const GONE_TRIES: usize = 200;

/// The sorted `keys` of `bao namespace list -format=json` (OpenBao lists
/// in no particular order).
fn listed(server: &Server, args: &[&str]) -> Vec<String> {
    let mut all = vec!["namespace", "list", "-format=json"];
    all.extend_from_slice(args);
    let v = json(&bao_ok(server, &all, 0), "namespace list");
    let mut keys: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

/// Waits (bounded) until `bao namespace lookup [args] name` says the
/// namespace is gone.
fn wait_gone(server: &Server, args: &[&str], name: &str) {
    let mut all = vec!["namespace", "lookup"];
    all.extend_from_slice(args);
    all.push(name);
    for _ in 0..GONE_TRIES {
        let out = bao(server, &all);
        if out.code == 2 && out.stderr.contains("Namespace not found") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("namespace {name} still there after its deletion");
}

#[test]
fn namespace_commands() {
    let server = Server::dev(target());

    // create, with custom metadata; the table shows the namespace.
    let out = bao_ok(
        &server,
        &["namespace", "create", "-custom-metadata=team=a", "cli1"],
        0,
    );
    assert_eq!(table_value(&out, "path").as_deref(), Some("cli1/"), "{out}");
    assert_eq!(
        table_value(&out, "locked").as_deref(),
        Some("false"),
        "{out}"
    );
    assert_eq!(
        table_value(&out, "custom_metadata").as_deref(),
        Some("map[team:a]"),
        "{out}"
    );
    let id = table_value(&out, "id").unwrap_or_default();
    assert_eq!(id.len(), 6, "{out}");

    // A child through -namespace, in JSON.
    let inner = json(
        &bao_ok(
            &server,
            &[
                "namespace",
                "create",
                "-namespace=cli1",
                "-format=json",
                "inner",
            ],
            0,
        ),
        "create inner",
    );
    assert_eq!(inner["path"], "cli1/inner/", "{inner}");
    bao_ok(&server, &["namespace", "create", "cli2"], 0);

    // list: the direct children of the current namespace.
    assert_eq!(listed(&server, &[]), ["cli1/", "cli2/"]);
    assert_eq!(listed(&server, &["-namespace=cli1"]), ["inner/"]);
    let table = bao_ok(&server, &["namespace", "list", "-namespace=cli1"], 0);
    assert!(table.lines().any(|l| l.trim() == "inner/"), "{table}");

    // lookup.
    let looked = json(
        &bao_ok(&server, &["namespace", "lookup", "-format=json", "cli1"], 0),
        "lookup cli1",
    );
    assert_eq!(looked["id"], Value::String(id.clone()), "{looked}");
    assert_eq!(looked["custom_metadata"]["team"], "a", "{looked}");
    let out = bao(&server, &["namespace", "lookup", "nope"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("Namespace not found"), "{out:?}");

    // patch: merge-patch of the metadata.
    let patched = json(
        &bao_ok(
            &server,
            &[
                "namespace",
                "patch",
                "-custom-metadata=env=prod",
                "-remove-custom-metadata=team",
                "-format=json",
                "cli1",
            ],
            0,
        ),
        "patch cli1",
    );
    assert_eq!(
        patched["custom_metadata"],
        serde_json::json!({"env": "prod"}),
        "{patched}"
    );
    assert_eq!(patched["id"], Value::String(id), "{patched}");

    // lock: the namespace and its descendants answer 503 until unlocked.
    let lock = json(
        &bao_ok(&server, &["namespace", "lock", "-format=json", "cli1"], 0),
        "lock cli1",
    );
    let key = lock["unlock_key"].as_str().unwrap_or_default().to_string();
    assert!(!key.is_empty(), "{lock}");
    let out = bao(
        &server,
        &["namespace", "lookup", "-namespace=cli1", "inner"],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("Code: 503"), "{out:?}");
    assert!(
        out.stderr
            .contains("API access to this namespace has been locked by an administrator"),
        "{out:?}"
    );
    let out = bao(
        &server,
        &["namespace", "unlock", "-unlock-key=wrong", "cli1"],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("incorrect unlock key"), "{out:?}");
    let out = bao_ok(
        &server,
        &["namespace", "unlock", &format!("-unlock-key={key}"), "cli1"],
        0,
    );
    assert!(out.contains("Namespace unlocked successfully!"), "{out}");
    bao_ok(
        &server,
        &["namespace", "lookup", "-namespace=cli1", "inner"],
        0,
    );
    // Locked again, unlocked with the root token's sudo (no key).
    bao_ok(
        &server,
        &["namespace", "lock", "-namespace=cli1", "inner"],
        0,
    );
    bao_ok(
        &server,
        &["namespace", "unlock", "-namespace=cli1", "inner"],
        0,
    );
    bao_ok(
        &server,
        &["namespace", "lookup", "-namespace=cli1", "inner"],
        0,
    );

    // delete: refused with children, then child first.
    let out = bao(&server, &["namespace", "delete", "cli1"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("unable to delete namespace containing child namespaces"),
        "{out:?}"
    );
    let out = bao_ok(
        &server,
        &["namespace", "delete", "-namespace=cli1", "inner"],
        0,
    );
    assert!(
        out.contains("Namespace deletion scheduled: inner/"),
        "{out}"
    );
    wait_gone(&server, &["-namespace=cli1"], "inner");
    bao_ok(&server, &["namespace", "delete", "cli1"], 0);
    wait_gone(&server, &[], "cli1");
    assert_eq!(listed(&server, &[]), ["cli2/"]);
}

#[test]
fn commands_inside_a_namespace() {
    let server = Server::dev(target());
    bao_ok(&server, &["namespace", "create", "ns1"], 0);
    bao_ok(
        &server,
        &["namespace", "create", "-namespace=ns1", "ns2"],
        0,
    );
    let out = bao_ok(
        &server,
        &[
            "secrets",
            "enable",
            "-namespace=ns1/ns2",
            "-path=kv",
            "kv-v2",
        ],
        0,
    );
    assert!(
        out.contains("Enabled the kv-v2 secrets engine at: kv/"),
        "{out}"
    );

    // kv put/get with -namespace.
    let out = bao_ok(
        &server,
        &["kv", "put", "-namespace=ns1/ns2", "kv/app", "pw=1"],
        0,
    );
    assert_eq!(table_value(&out, "version").as_deref(), Some("1"), "{out}");
    let got = json(
        &bao_ok(
            &server,
            &["kv", "get", "-namespace=ns1/ns2", "-format=json", "kv/app"],
            0,
        ),
        "kv get",
    );
    assert_eq!(got["data"]["data"]["pw"], "1", "{got}");
    // The other addressings: a partial -namespace and a path prefix.
    let out = bao_ok(
        &server,
        &["kv", "get", "-namespace=ns1", "-field=pw", "ns2/kv/app"],
        0,
    );
    assert_eq!(out.trim(), "1");
    let out = bao_ok(&server, &["kv", "get", "-field=pw", "ns1/ns2/kv/app"], 0);
    assert_eq!(out.trim(), "1");
    // The mount is not in the parent or the root namespace.
    let out = bao(&server, &["kv", "get", "-namespace=ns1", "kv/app"]);
    assert_eq!(out.code, 2, "{out:?}");
    let out = bao(&server, &["kv", "get", "kv/app"]);
    assert_eq!(out.code, 2, "{out:?}");
    // secrets list inside the namespace shows its own mounts.
    let mounts = json(
        &bao_ok(
            &server,
            &["secrets", "list", "-namespace=ns1/ns2", "-format=json"],
            0,
        ),
        "secrets list",
    );
    assert_eq!(mounts["kv/"]["type"], "kv", "{mounts}");
    assert_eq!(mounts["sys/"]["type"], "ns_system", "{mounts}");
    assert!(mounts.get("secret/").is_none(), "{mounts}");

    // A token created in ns1 carries its namespace, and the CLI's lookup
    // shows it.
    let created = json(
        &bao_ok(
            &server,
            &[
                "token",
                "create",
                "-namespace=ns1",
                "-policy=default",
                "-format=json",
            ],
            0,
        ),
        "token create",
    );
    let token = created["auth"]["client_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ns1 = json(
        &bao_ok(&server, &["namespace", "lookup", "-format=json", "ns1"], 0),
        "lookup ns1",
    )["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        token.ends_with(&format!(".{ns1}")),
        "{token} ends with .{ns1}"
    );
    let looked = json(
        &bao_ok(
            &server,
            &["token", "lookup", "-namespace=ns1", "-format=json", &token],
            0,
        ),
        "token lookup",
    );
    assert_eq!(looked["data"]["namespace_path"], "ns1/", "{looked}");

    // The unknown namespace (kv get only says "No value found": its
    // mount preflight fails first).
    let out = bao(&server, &["secrets", "list", "-namespace=nope"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("Code: 404"), "{out:?}");
    assert!(out.stderr.contains("namespace not found"), "{out:?}");
    let out = bao(&server, &["kv", "get", "-namespace=nope", "kv/app"]);
    assert_eq!(out.code, 2, "{out:?}");
}
