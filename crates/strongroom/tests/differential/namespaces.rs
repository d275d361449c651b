//! Differential tests for namespaces (OpenBao 2.x semantics): the
//! `sys/namespaces` API, the three ways to address a namespaced path, the
//! `X-Vault-Namespace` header echo, token and policy scoping, the
//! root-only `sys` endpoints, deletion, API locks, and secrets engines,
//! auth methods, response wrapping, cubbyhole and the UI mount listing
//! inside a namespace. The same requests go to OpenBao and to Strongroom;
//! bodies are compared by value (namespace ids, UUIDs and the `.<nsid>`
//! suffix of namespaced tokens normalised, see `strongroom_test::diff`),
//! and the values a client relies on are asserted on both servers.

use std::time::Duration;

use crate::differences;
use serde_json::{json, Value};
use strongroom_test::diff::{on_both, Pair};
use strongroom_test::server::{str_list, Call, Kind, Reply, Server};

/// One value per server: (OpenBao's, Strongroom's).
type Two = (String, String);

/// The header that selects a namespace.
const NS: &str = "X-Vault-Namespace";

/// How many times a deleted namespace is polled before the test gives up
/// (OpenBao deletes asynchronously; 200 tries 25 ms apart is 5 s).
const GONE_TRIES: usize = 200;

/// A string at JSON pointer `ptr` of each reply (empty when absent).
fn both(r: &(Reply, Reply), ptr: &str) -> Two {
    let get = |x: &Reply| {
        x.body
            .pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (get(&r.0), get(&r.1))
}

/// Sends `f(OpenBao's value)` to OpenBao and `f(Strongroom's value)` to
/// Strongroom, recording differences.
async fn each(p: &mut Pair, v: &Two, f: impl Fn(&str) -> Call) -> (Reply, Reply) {
    p.check_each(f(&v.0), f(&v.1), &[]).await
}

/// `call` in namespace `ns` (through the header).
fn in_ns(ns: &str, call: Call) -> Call {
    call.header(NS, ns)
}

fn kv1_mount() -> Value {
    json!({"type": "kv", "options": {"version": "1"}})
}

fn kv2_mount() -> Value {
    json!({"type": "kv", "options": {"version": "2"}})
}

fn policy_body(text: &str) -> Value {
    json!({ "policy": text })
}

fn lookup_self(t: &str) -> Call {
    Call::get("auth/token/lookup-self").token(t)
}

/// The sorted `keys` of a LIST answer.
fn keys(r: &Reply) -> Vec<String> {
    let mut k = str_list(&r.body["data"]["keys"]);
    k.sort();
    k
}

/// Lists the namespaces below `ns` (`""`: root) on both servers; their
/// keys are compared sorted (OpenBao's order is random).
async fn list(p: &mut Pair, ns: &str) -> (Reply, Reply) {
    let call = Call::list("sys/namespaces");
    let call = if ns.is_empty() { call } else { in_ns(ns, call) };
    let r = p.check(call, differences::NAMESPACE_LIST).await;
    p.expect(
        keys(&r.0) == keys(&r.1),
        format!(
            "LIST sys/namespaces in {ns:?}: {:?} on openbao, {:?} on strongroom",
            keys(&r.0),
            keys(&r.1)
        ),
    );
    r
}

fn errors_are(r: &Reply, msg: &str) -> bool {
    r.body["errors"] == json!([msg])
}

/// Creates namespace `name` inside `parent` ("" for root) on both servers,
/// expecting 200; returns each server's namespace id.
async fn create(p: &mut Pair, parent: &str, name: &str) -> Two {
    let call = Call::post(&format!("sys/namespaces/{name}"), json!({}));
    let call = if parent.is_empty() {
        call
    } else {
        in_ns(parent, call)
    };
    let r = p.check(call, &[]).await;
    p.expect_status(&r, 200, &format!("create namespace {name} in {parent:?}"));
    both(&r, "/data/id")
}

/// Sends `call` to `s` until it answers 404 (a deleted namespace gone),
/// a bounded number of times; the last answer.
async fn until_gone(s: &Server, call: &Call) -> Reply {
    let mut last = s.send(call).await;
    for _ in 0..GONE_TRIES {
        if last.status == 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        last = s.send(call).await;
    }
    last
}

/// Deletes namespace `name` inside `parent` on both servers (an
/// asynchronous deletion: `{"status": "in-progress"}`), then waits on each
/// until it is gone from both its read and its parent's list, and compares
/// the final answers.
async fn delete(p: &mut Pair, parent: &str, name: &str) {
    let with = |c: Call| {
        if parent.is_empty() {
            c
        } else {
            in_ns(parent, c)
        }
    };
    let r = p
        .check(with(Call::delete(&format!("sys/namespaces/{name}"))), &[])
        .await;
    p.expect_status(&r, 200, &format!("delete namespace {name}"));
    on_both(p, &r, "a deletion is in progress", |x| {
        x.body["data"] == json!({"status": "in-progress"})
    });
    let read = with(Call::get(&format!("sys/namespaces/{name}")));
    let gone = (
        until_gone(&p.bao, &read).await,
        until_gone(&p.sr, &read).await,
    );
    p.expect_status(
        &gone,
        404,
        &format!("namespace {name} gone after its deletion"),
    );
    let r = p.check(read, &[]).await;
    p.expect_status(&r, 404, &format!("read deleted namespace {name}"));
    let r = list(p, parent).await;
    on_both(p, &r, "a deleted namespace is not listed", |x| {
        x.status == 404 || !keys(x).contains(&format!("{name}/"))
    });
}

/// Each server's `(status, X-Vault-Namespace response header)` for `GET
/// /v1/<path>` with the request header `header` (None: no header).
async fn echoed(s: &Server, path: &str, header: Option<&str>) -> (u16, Option<String>) {
    let client = reqwest::Client::new();
    let mut req = client
        .get(format!("{}/v1/{path}", s.addr))
        .header("X-Vault-Token", s.root_token.clone().unwrap_or_default());
    if let Some(h) = header {
        req = req.header(NS, h);
    }
    let resp = req.send().await.expect("request");
    let echoed = resp
        .headers()
        .get(NS)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (resp.status().as_u16(), echoed)
}

#[tokio::test]
async fn namespace_api() {
    let mut p = differences::pair();

    // Create with custom metadata; a non-string value is refused and changes
    // nothing.
    let r = p
        .check(
            Call::post(
                "sys/namespaces/ns1",
                json!({"custom_metadata": {"team": "a", "env": "dev"}}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "create ns1");
    on_both(&mut p, &r, "create answers the namespace", |x| {
        let d = &x.body["data"];
        d["path"] == json!("ns1/")
            && d["custom_metadata"] == json!({"team": "a", "env": "dev"})
            && d["locked"] == json!(false)
            && d["tainted"] == json!(false)
            && d["id"]
                .as_str()
                .is_some_and(|id| id.len() == 6 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
            && d["uuid"].as_str().is_some_and(|u| u.len() == 36)
    });
    let id = both(&r, "/data/id");
    let r = p
        .check(
            Call::post(
                "sys/namespaces/ns1",
                json!({"custom_metadata": {"team": 1}}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "non-string metadata value");
    on_both(&mut p, &r, "non-string metadata message", |x| {
        errors_are(x, "custom_metadata values must be strings")
    });
    let r = p
        .check(
            Call::post(
                "sys/namespaces/bad",
                json!({"custom_metadata": {"nested": {"a": "b"}}}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "object metadata value");
    let r = p.check(Call::get("sys/namespaces/bad"), &[]).await;
    p.expect_status(&r, 404, "a refused create creates nothing");

    let r = p.check(Call::get("sys/namespaces/ns1"), &[]).await;
    p.expect_status(&r, 200, "read ns1");
    on_both(&mut p, &r, "the refused metadata changed nothing", |x| {
        x.body["data"]["custom_metadata"] == json!({"team": "a", "env": "dev"})
    });
    p.expect(
        both(&r, "/data/id") == id,
        "the namespace id is stable between create and read",
    );

    // A POST on an existing namespace replaces its metadata, keeps its id.
    let r = p
        .check(
            Call::post(
                "sys/namespaces/ns1",
                json!({"custom_metadata": {"team": "b"}}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "re-create ns1");
    on_both(&mut p, &r, "a POST replaces the metadata", |x| {
        x.body["data"]["custom_metadata"] == json!({"team": "b"})
    });
    p.expect(both(&r, "/data/id") == id, "a POST keeps the namespace id");

    // Children: created through the header, read back through the header.
    create(&mut p, "ns1", "ns2").await;
    create(&mut p, "ns1", "other").await;
    create(&mut p, "", "sib").await;
    let r = p
        .check(in_ns("ns1", Call::get("sys/namespaces/ns2")), &[])
        .await;
    p.expect_status(&r, 200, "read ns2 from ns1");
    on_both(&mut p, &r, "a child's path is its full path", |x| {
        x.body["data"]["path"] == json!("ns1/ns2/")
    });
    // A nested name in the path is refused.
    let r = p.check(Call::get("sys/namespaces/ns1/ns2"), &[]).await;
    p.expect_status(&r, 400, "read a nested name");
    let r = p
        .check(Call::post("sys/namespaces/ns1/x", json!({})), &[])
        .await;
    p.expect_status(&r, 400, "create a nested name");

    // LIST: the direct children, relative to the caller's namespace.
    let r = list(&mut p, "").await;
    p.expect_status(&r, 200, "list root");
    on_both(&mut p, &r, "root lists its direct children", |x| {
        keys(x) == ["ns1/", "sib/"]
            && x.body["data"]["key_info"]["ns1/"]["path"] == json!("ns1/")
            && x.body["data"]["key_info"]["sib/"]["path"] == json!("sib/")
    });
    let r = list(&mut p, "ns1").await;
    p.expect_status(&r, 200, "list ns1");
    on_both(
        &mut p,
        &r,
        "ns1 lists its children relative to itself",
        |x| {
            keys(x) == ["ns2/", "other/"]
                && x.body["data"]["key_info"]["ns2/"]["path"] == json!("ns1/ns2/")
        },
    );
    let r = list(&mut p, "ns1/ns2").await;
    p.expect_status(&r, 404, "list a namespace without children");

    // SCAN: every namespace below, recursively, relative to the caller.
    let r = p
        .check(
            Call::new("SCAN", "sys/namespaces"),
            differences::NAMESPACE_LIST,
        )
        .await;
    p.expect_status(&r, 200, "scan root");
    on_both(&mut p, &r, "root scans every namespace below it", |x| {
        keys(x) == ["ns1/", "ns1/ns2/", "ns1/other/", "sib/"]
            && x.body["data"]["key_info"]["ns1/ns2/"]["path"] == json!("ns1/ns2/")
    });
    let r = p
        .check(
            in_ns("ns1", Call::new("SCAN", "sys/namespaces")),
            differences::NAMESPACE_LIST,
        )
        .await;
    on_both(&mut p, &r, "ns1 scans relative to itself", |x| {
        keys(x) == ["ns2/", "other/"]
    });

    // PATCH: merge-patch only.
    let r = p
        .check(
            Call::new("PATCH", "sys/namespaces/ns1")
                .json(&json!({"custom_metadata": {"env": "prod"}}))
                .header("Content-Type", "application/json"),
            &[],
        )
        .await;
    p.expect_status(&r, 415, "PATCH with application/json");
    on_both(&mut p, &r, "415 message", |x| {
        errors_are(
            x,
            "PATCH requires Content-Type of application/merge-patch+json, provided application/json",
        )
    });
    let r = p
        .check(
            Call::new("PATCH", "sys/namespaces/ns1")
                .json(&json!({"custom_metadata": {"env": "prod", "team": null}}))
                .header("Content-Type", "application/merge-patch+json"),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "PATCH with merge-patch");
    on_both(&mut p, &r, "merge-patch adds and removes keys", |x| {
        x.body["data"]["custom_metadata"] == json!({"env": "prod"})
    });
    let r = p
        .check(
            Call::new("PATCH", "sys/namespaces/nope")
                .json(&json!({"custom_metadata": {"env": "prod"}}))
                .header("Content-Type", "application/merge-patch+json"),
            &[],
        )
        .await;
    on_both(&mut p, &r, "PATCH of an unknown namespace is a 4xx", |x| {
        (400..500).contains(&x.status)
    });

    // Names.
    for reserved in ["root", "sys", "audit", "auth", "cubbyhole", "identity"] {
        let r = p
            .check(
                Call::post(&format!("sys/namespaces/{reserved}"), json!({})),
                &[],
            )
            .await;
        p.expect_status(&r, 400, &format!("reserved name {reserved}"));
        on_both(
            &mut p,
            &r,
            &format!("reserved name {reserved} message"),
            |x| {
                errors_are(
                    x,
                    &format!(
                        "\"{reserved}/\" is a reserved path and cannot be used as a namespace name"
                    ),
                )
            },
        );
    }
    for (name, path) in [("a b", "a%20b"), ("a*", "a*"), ("a+", "a+")] {
        let r = p
            .check(
                Call::post(&format!("sys/namespaces/{path}"), json!({})),
                &[],
            )
            .await;
        p.expect_status(&r, 400, &format!("invalid name {name:?}"));
        on_both(&mut p, &r, &format!("invalid name {name:?} message"), |x| {
            x.body["errors"][0]
                .as_str()
                .is_some_and(|e| e.starts_with(&format!("\"{name}\" contains")))
        });
    }
    let r = list(&mut p, "").await;
    on_both(&mut p, &r, "refused names created nothing", |x| {
        keys(x) == ["ns1/", "sib/"]
    });

    // DELETE: a namespace with children is refused (Strongroom 409).
    let r = p
        .check(
            Call::delete("sys/namespaces/ns1"),
            differences::NAMESPACE_WITH_CHILDREN,
        )
        .await;
    if p.sr.kind == Kind::Strongroom {
        p.expect(
            r.1.status == 409,
            format!(
                "delete with children: strongroom answered {} (expected 409)",
                r.1.status
            ),
        );
    }
    on_both(&mut p, &r, "delete with children message", |x| {
        errors_are(x, "unable to delete namespace containing child namespaces")
    });
    let r = p.check(Call::get("sys/namespaces/ns1"), &[]).await;
    p.expect_status(&r, 200, "a refused delete keeps the namespace");
    let r = p.check(Call::delete("sys/namespaces/nope"), &[]).await;
    p.expect_status(&r, 200, "delete of an unknown namespace");
    delete(&mut p, "ns1", "ns2").await;
    delete(&mut p, "ns1", "other").await;
    delete(&mut p, "", "ns1").await;
    let r = list(&mut p, "").await;
    on_both(&mut p, &r, "root lists what is left", |x| {
        keys(x) == ["sib/"]
    });
    p.finish();
}

#[tokio::test]
async fn addressing_and_header_echo() {
    let mut p = differences::pair();
    create(&mut p, "", "ns1").await;
    create(&mut p, "ns1", "ns2").await;
    let r = p
        .check(
            in_ns("ns1/ns2", Call::post("sys/mounts/secret", kv1_mount())),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "mount secret/ in ns1/ns2");
    let r = p
        .check(
            in_ns(
                "ns1/ns2/",
                Call::post("secret/foo", json!({"where": "ns2"})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write ns1/ns2 secret/foo");

    // The three addressings of ns1/ns2/secret/foo, and a leading slash.
    for (header, path) in [
        (Some("ns1/ns2/"), "secret/foo"),
        (Some("ns1/ns2"), "secret/foo"),
        (Some("ns1/"), "ns2/secret/foo"),
        (Some("ns1"), "ns2/secret/foo"),
        (None, "ns1/ns2/secret/foo"),
        (Some("root"), "ns1/ns2/secret/foo"),
    ] {
        let call = match header {
            Some(h) => in_ns(h, Call::get(path)),
            None => Call::get(path),
        };
        let r = p.check(call, &[]).await;
        p.expect_status(
            &r,
            200,
            &format!("read with header {header:?} and path {path}"),
        );
        on_both(
            &mut p,
            &r,
            &format!("{header:?} + {path} reads ns2's secret"),
            |x| x.body["data"] == json!({"where": "ns2"}),
        );
    }
    // Writes through the other addressings land in the same place.
    let r = p
        .check(
            in_ns("ns1", Call::post("ns2/secret/bar", json!({"v": "1"}))),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write through header ns1 + path ns2/");
    let r = p.check(in_ns("ns1/ns2", Call::list("secret")), &[]).await;
    on_both(&mut p, &r, "both writes are in ns2's mount", |x| {
        x.body["data"]["keys"] == json!(["bar", "foo"])
    });
    // The root namespace has no secret/foo at this path.
    let r = p.check(Call::get("secret/foo"), &[]).await;
    on_both(&mut p, &r, "root's secret/ is another mount", |x| {
        x.status != 200 || x.body["data"] != json!({"where": "ns2"})
    });

    // Unknown namespaces.
    for (header, path) in [
        (Some("nope"), "secret/foo"),
        (Some("ns1/nope"), "secret/foo"),
        (Some("ns1/ns2/ns3"), "secret/foo"),
        (Some("nope"), "sys/mounts"),
    ] {
        let call = match header {
            Some(h) => in_ns(h, Call::get(path)),
            None => Call::get(path),
        };
        let r = p.check(call, &[]).await;
        p.expect_status(&r, 404, &format!("unknown namespace {header:?} + {path}"));
        on_both(&mut p, &r, "unknown namespace message", |x| {
            errors_are(x, "namespace not found")
        });
    }
    // A path prefix that is no namespace is a path in the namespace.
    let r = p.check(Call::get("nope/secret/foo"), &[]).await;
    p.expect_status(
        &r,
        404,
        "an unknown first path segment is a route, not a namespace",
    );

    // The longest existing namespace prefix wins; the rest is a route in
    // it, named relative to it in the message.
    for call in [
        in_ns("ns1", Call::get("ns2/nope/foo")),
        Call::get("ns1/ns2/nope/foo"),
    ] {
        let what = call.describe();
        let r = p.check(call, &[]).await;
        p.expect_status(&r, 404, &format!("{what}: no such route in ns1/ns2"));
        on_both(&mut p, &r, "the route is named relative to ns1/ns2", |x| {
            errors_are(
                x,
                "no handler for route \"nope/foo\". route entry not found.",
            )
        });
    }

    // sys/ in a namespace through the path prefix.
    let r = p.check(Call::get("ns1/ns2/sys/mounts/secret"), &[]).await;
    p.expect_status(&r, 200, "ns1/ns2/sys/mounts/secret without a header");

    // The request header is echoed as sent.
    for header in [Some("ns1"), Some("ns1/"), Some("/ns1/"), Some("root"), None] {
        let a = echoed(&p.bao, "sys/mounts", header).await;
        let b = echoed(&p.sr, "sys/mounts", header).await;
        p.expect(
            a == b,
            format!("header echo for {header:?}: openbao {a:?}, strongroom {b:?}"),
        );
    }
    let a = echoed(&p.bao, "secret/foo", Some("nope")).await;
    let b = echoed(&p.sr, "secret/foo", Some("nope")).await;
    p.expect(
        a == b && a == (404, Some("nope".to_string())),
        format!("header echo for an unknown namespace: openbao {a:?}, strongroom {b:?}"),
    );
    p.finish();
}

#[tokio::test]
async fn per_namespace_mounts_and_policies() {
    let mut p = differences::pair();
    create(&mut p, "", "ns1").await;
    // Each namespace has its own sys/, cubbyhole/ and token/ (and, in
    // OpenBao, identity/: see differences::ALWAYS).
    let r = p.check(in_ns("ns1", Call::get("sys/mounts")), &[]).await;
    p.expect_status(&r, 200, "ns1 sys/mounts");
    on_both(&mut p, &r, "ns1's own mounts", |x| {
        let d = &x.body["data"];
        d["sys/"]["type"] == json!("ns_system")
            && d["cubbyhole/"]["type"] == json!("ns_cubbyhole")
            && d["secret/"].is_null()
    });
    let r = p.check(in_ns("ns1", Call::get("sys/auth")), &[]).await;
    p.expect_status(&r, 200, "ns1 sys/auth");
    on_both(&mut p, &r, "ns1's own token/", |x| {
        x.body["data"]["token/"]["type"] == json!("ns_token")
    });
    let r = p.check(in_ns("ns1", Call::get("sys/policy")), &[]).await;
    on_both(&mut p, &r, "ns1 has its own default policy only", |x| {
        x.body["data"]["policies"] == json!(["default"])
    });
    let r = p
        .check(in_ns("ns1", Call::list("sys/policies/acl")), &[])
        .await;
    p.expect_status(&r, 200, "ns1 policies");
    let r = p
        .check(in_ns("ns1", Call::get("sys/policies/acl/default")), &[])
        .await;
    p.expect_status(&r, 200, "ns1 default policy");
    // OpenBao answers the built-in root policy (empty) in a namespace too.
    let r = p
        .check(in_ns("ns1", Call::get("sys/policies/acl/root")), &[])
        .await;
    p.expect_status(&r, 200, "the root policy read in a namespace");

    // A policy written in ns1 is ns1's only.
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::put(
                    "sys/policies/acl/only-ns1",
                    policy_body("path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n"),
                ),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write a policy in ns1");
    let r = p.check(Call::get("sys/policies/acl/only-ns1"), &[]).await;
    p.expect_status(&r, 404, "ns1's policy is not in root");
    let r = p
        .check(Call::get("ns1/sys/policies/acl/only-ns1"), &[])
        .await;
    p.expect_status(&r, 200, "ns1's policy through the path prefix");

    // Mounts in ns1 are not in root and vice versa.
    let r = p
        .check(in_ns("ns1", Call::post("sys/mounts/kv1", kv1_mount())), &[])
        .await;
    p.expect_status(&r, 204, "mount kv1 in ns1");
    let r = p.check(Call::get("sys/mounts/kv1"), &[]).await;
    p.expect_status(&r, 400, "ns1's mount is not in root");
    let r = p
        .check(in_ns("ns1", Call::get("sys/mounts/kv1")), &[])
        .await;
    p.expect_status(&r, 200, "ns1's mount in ns1");
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::post("sys/mounts/kv1/tune", json!({"description": "tuned"})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "tune a mount in ns1");
    let r = p.check(in_ns("ns1", Call::get("sys/mounts")), &[]).await;
    on_both(&mut p, &r, "the tuned mount", |x| {
        x.body["data"]["kv1/"]["description"] == json!("tuned")
    });
    p.finish();
}

#[tokio::test]
async fn token_scoping() {
    let mut p = differences::pair();
    let ns1 = create(&mut p, "", "ns1").await;
    let ns2 = create(&mut p, "ns1", "ns2").await;
    create(&mut p, "", "sib").await;
    for ns in ["ns1", "ns1/ns2", "sib"] {
        let r = p
            .check(in_ns(ns, Call::post("sys/mounts/secret", kv1_mount())), &[])
            .await;
        p.expect_status(&r, 204, &format!("mount secret/ in {ns}"));
        let r = p
            .check(in_ns(ns, Call::post("secret/foo", json!({"in": ns}))), &[])
            .await;
        p.expect_status(&r, 204, &format!("write secret/foo in {ns}"));
    }
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::put(
                    "sys/policies/acl/reader",
                    policy_body(
                        "path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n\
                         path \"ns2/secret/*\" {\n  capabilities = [\"read\"]\n}\n\
                         path \"sys/mounts\" {\n  capabilities = [\"read\"]\n}\n",
                    ),
                ),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write ns1 policy reader");

    // A token created in ns1 carries the namespace.
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::post("auth/token/create", json!({"policies": ["reader"]})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "create a token in ns1");
    on_both(&mut p, &r, "ns1 token policies", |x| {
        x.body["auth"]["policies"] == json!(["default", "reader"])
    });
    let tok = both(&r, "/auth/client_token");
    let acc = both(&r, "/auth/accessor");
    for (label, (t, a, id)) in [
        ("openbao", (&tok.0, &acc.0, &ns1.0)),
        ("strongroom", (&tok.1, &acc.1, &ns1.1)),
    ] {
        p.expect(
            !id.is_empty() && t.ends_with(&format!(".{id}")) && a.ends_with(&format!(".{id}")),
            format!("{label}: token {t} and accessor {a} end with ns1's id .{id}"),
        );
    }

    let r = each(&mut p, &tok, |t| in_ns("ns1", lookup_self(t))).await;
    p.expect_status(&r, 200, "lookup-self in ns1");
    on_both(&mut p, &r, "lookup shows the namespace", |x| {
        x.body["data"]["namespace_path"] == json!("ns1/")
            && x.body["data"]["path"] == json!("auth/token/create")
    });
    // OpenBao answers lookup-self anywhere.
    for ns in ["root", "ns1/ns2", "sib"] {
        let r = each(&mut p, &tok, |t| in_ns(ns, lookup_self(t))).await;
        p.expect_status(&r, 200, &format!("lookup-self of the ns1 token in {ns}"));
    }
    let r = each(&mut p, &tok, |t| {
        Call::post("auth/token/lookup", json!({ "token": t }))
    })
    .await;
    p.expect_status(&r, 200, "root looks the ns1 token up from root");
    on_both(&mut p, &r, "root's lookup shows the namespace", |x| {
        x.body["data"]["namespace_path"] == json!("ns1/")
    });
    let r = each(&mut p, &acc, |a| {
        in_ns(
            "ns1",
            Call::post("auth/token/lookup-accessor", json!({ "accessor": a })),
        )
    })
    .await;
    p.expect_status(&r, 200, "lookup-accessor in ns1");

    // Valid in ns1 and where its policies reach in descendants.
    let r = each(&mut p, &tok, |t| {
        in_ns("ns1", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 200, "ns1 token reads ns1 secret/foo");
    let r = each(&mut p, &tok, |t| Call::get("ns1/secret/foo").token(t)).await;
    p.expect_status(&r, 200, "ns1 token reads ns1/secret/foo without a header");
    let r = each(&mut p, &tok, |t| {
        in_ns("ns1/ns2", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 200, "ns1 token reads ns1/ns2 secret/foo (ns2/secret/*)");
    on_both(&mut p, &r, "the ns2 secret", |x| {
        x.body["data"] == json!({"in": "ns1/ns2"})
    });
    let r = each(&mut p, &tok, |t| {
        in_ns("ns1/ns2", Call::get("sys/mounts").token(t))
    })
    .await;
    p.expect_status(&r, 403, "ns1 token: sys/mounts in ns2 is not in its policy");
    let r = each(&mut p, &tok, |t| {
        in_ns("ns1", Call::get("sys/mounts").token(t))
    })
    .await;
    p.expect_status(&r, 200, "ns1 token: sys/mounts in ns1");
    let r = each(&mut p, &tok, |t| {
        in_ns("ns1", Call::post("secret/foo", json!({"x": "y"})).token(t))
    })
    .await;
    p.expect_status(&r, 403, "ns1 token may not write");

    // Never in a parent or a sibling.
    let r = each(&mut p, &tok, |t| Call::get("secret/foo").token(t)).await;
    p.expect_status(&r, 403, "ns1 token in root");
    let r = each(&mut p, &tok, |t| Call::get("sys/mounts").token(t)).await;
    p.expect_status(&r, 403, "ns1 token sys/mounts in root");
    let r = each(&mut p, &tok, |t| {
        in_ns("sib", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 403, "ns1 token in a sibling");
    let r = each(&mut p, &tok, |t| Call::get("sib/secret/foo").token(t)).await;
    p.expect_status(&r, 403, "ns1 token in a sibling through the path");

    // A token of ns1/ns2 is not valid in ns1.
    let r = p
        .check(
            in_ns(
                "ns1/ns2",
                Call::put(
                    "sys/policies/acl/all",
                    policy_body("path \"*\" {\n  capabilities = [\"read\", \"list\"]\n}\n"),
                ),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write ns1/ns2 policy all");
    let r = p
        .check(
            in_ns(
                "ns1/ns2",
                Call::post("auth/token/create", json!({"policies": ["all"]})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "create a token in ns1/ns2");
    let child = both(&r, "/auth/client_token");
    p.expect(
        child.0.ends_with(&format!(".{}", ns2.0)) && child.1.ends_with(&format!(".{}", ns2.1)),
        format!("ns1/ns2 tokens end with ns2's id: {child:?} {ns2:?}"),
    );
    let r = each(&mut p, &child, |t| {
        in_ns("ns1/ns2", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 200, "ns2 token in ns2");
    let r = each(&mut p, &child, |t| {
        in_ns("ns1", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 403, "ns2 token in its parent ns1");
    let r = each(&mut p, &child, |t| {
        in_ns("ns1", Call::get("ns2/secret/foo").token(t))
    })
    .await;
    p.expect_status(
        &r,
        200,
        "ns2 token through its parent's header and a path prefix",
    );

    // Revoking in ns1 works for ns1's token; the token is gone afterwards.
    let r = each(&mut p, &tok, |t| {
        in_ns(
            "ns1",
            Call::post("auth/token/revoke", json!({ "token": t })),
        )
    })
    .await;
    p.expect_status(&r, 204, "revoke the ns1 token in ns1");
    let r = each(&mut p, &tok, |t| {
        in_ns("ns1", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 403, "a revoked ns1 token");
    p.finish();
}

#[tokio::test]
async fn policy_scoping() {
    let mut p = differences::pair();
    create(&mut p, "", "ns1").await;
    create(&mut p, "ns1", "ns2").await;
    for ns in ["ns1", "ns1/ns2"] {
        let r = p
            .check(in_ns(ns, Call::post("sys/mounts/secret", kv1_mount())), &[])
            .await;
        p.expect_status(&r, 204, &format!("mount secret/ in {ns}"));
        let r = p
            .check(in_ns(ns, Call::post("secret/foo", json!({"in": ns}))), &[])
            .await;
        p.expect_status(&r, 204, &format!("write secret/foo in {ns}"));
    }

    // A root-namespace policy on ns1/secret/*: paths are relative to the
    // root namespace, so it reaches ns1's secret/ and nothing deeper.
    let r = p
        .check(
            Call::put(
                "sys/policies/acl/root-ns1",
                policy_body("path \"ns1/secret/*\" {\n  capabilities = [\"read\"]\n}\n"),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write root policy root-ns1");
    let r = p
        .check(
            Call::post("auth/token/create", json!({"policies": ["root-ns1"]})),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "root token with root-ns1");
    let rt = both(&r, "/auth/client_token");
    p.expect(
        rt.0.matches('.').count() == 1 && rt.1.matches('.').count() == 1,
        format!("a root-namespace token has no namespace suffix: {rt:?}"),
    );
    let r = each(&mut p, &rt, |t| {
        in_ns("ns1", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 200, "root policy reaches ns1 secret/ (header)");
    let r = each(&mut p, &rt, |t| Call::get("ns1/secret/foo").token(t)).await;
    p.expect_status(&r, 200, "root policy reaches ns1 secret/ (path)");
    let r = each(&mut p, &rt, |t| {
        in_ns("ns1/ns2", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 403, "root policy does not reach ns1/ns2");
    let r = each(&mut p, &rt, |t| {
        in_ns("ns1", Call::post("secret/foo", json!({"a": "b"})).token(t))
    })
    .await;
    p.expect_status(&r, 403, "root policy grants read only");
    // Capabilities of the root token's path in ns1.
    let r = each(&mut p, &rt, |t| {
        Call::post(
            "sys/capabilities-self",
            json!({"paths": ["ns1/secret/foo", "ns1/ns2/secret/foo"]}),
        )
        .token(t)
    })
    .await;
    p.expect_status(&r, 200, "capabilities-self across namespaces");

    // An ns1 policy: secret/* is ns1's, ns2/secret/* is ns1/ns2's.
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::put(
                    "sys/policies/acl/ns1-reader",
                    policy_body(
                        "path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n\
                         path \"ns2/secret/*\" {\n  capabilities = [\"read\", \"update\"]\n}\n",
                    ),
                ),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write ns1 policy ns1-reader");
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::post("auth/token/create", json!({"policies": ["ns1-reader"]})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "ns1 token with ns1-reader");
    let t1 = both(&r, "/auth/client_token");
    let r = each(&mut p, &t1, |t| {
        in_ns("ns1", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 200, "ns1 policy secret/* in ns1");
    on_both(&mut p, &r, "ns1's secret", |x| {
        x.body["data"] == json!({"in": "ns1"})
    });
    let r = each(&mut p, &t1, |t| {
        in_ns("ns1/ns2", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 200, "ns1 policy ns2/secret/* in ns1/ns2");
    on_both(&mut p, &r, "ns2's secret", |x| {
        x.body["data"] == json!({"in": "ns1/ns2"})
    });
    let r = each(&mut p, &t1, |t| {
        in_ns(
            "ns1/ns2",
            Call::post("secret/foo", json!({"in": "updated"})).token(t),
        )
    })
    .await;
    p.expect_status(&r, 204, "ns1 policy grants update in ns1/ns2");
    let r = each(&mut p, &t1, |t| {
        in_ns("ns1", Call::post("secret/foo", json!({"x": "y"})).token(t))
    })
    .await;
    p.expect_status(&r, 403, "ns1 policy grants no update in ns1");
    let r = each(&mut p, &t1, |t| {
        in_ns(
            "ns1",
            Call::post(
                "sys/capabilities-self",
                json!({"paths": ["secret/foo", "ns2/secret/foo"]}),
            )
            .token(t),
        )
    })
    .await;
    p.expect_status(&r, 200, "capabilities-self in ns1");
    on_both(&mut p, &r, "capabilities relative to ns1", |x| {
        x.body["data"]["secret/foo"] == json!(["read"])
            && x.body["data"]["ns2/secret/foo"] == json!(["read", "update"])
    });

    // A policy of the same name in ns1/ns2 is another policy: a token of
    // ns1/ns2 with "ns1-reader" gets ns2's (none here, so only default).
    let r = p
        .check(
            in_ns(
                "ns1/ns2",
                Call::post("auth/token/create", json!({"policies": ["ns1-reader"]})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "ns2 token naming a policy ns2 does not have");
    let t2 = both(&r, "/auth/client_token");
    let r = each(&mut p, &t2, |t| {
        in_ns("ns1/ns2", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 403, "ns1's policy does not apply to an ns2 token");
    p.finish();
}

#[tokio::test]
async fn root_only_endpoints() {
    let mut p = differences::pair();
    create(&mut p, "", "ns1").await;
    for (method, path) in [
        ("GET", "sys/audit"),
        ("PUT", "sys/audit/file"),
        ("POST", "sys/audit-hash/file"),
        ("GET", "sys/config/auditing/request-headers"),
        ("GET", "sys/quotas/config"),
        ("GET", "sys/quotas/rate-limit"),
        ("GET", "sys/loggers"),
        ("GET", "sys/host-info"),
        ("GET", "sys/config/state/sanitized"),
        ("GET", "sys/config/cors"),
        ("PUT", "sys/seal"),
        ("PUT", "sys/unseal"),
        ("GET", "sys/init"),
        ("PUT", "sys/init"),
        ("GET", "sys/rekey/init"),
        ("PUT", "sys/rekey/verify"),
        ("GET", "sys/generate-root/attempt"),
        ("PUT", "sys/step-down"),
        ("GET", "sys/health"),
        ("GET", "sys/metrics"),
        ("GET", "sys/raw/core"),
        ("GET", "sys/pprof/"),
        ("GET", "sys/in-flight-req"),
    ] {
        // Both the header and the path prefix.
        for call in [
            in_ns("ns1", Call::new(method, path)),
            Call::new(method, &format!("ns1/{path}")),
        ] {
            let what = call.describe();
            let r = p.check(call, &[]).await;
            p.expect_status(&r, 400, &format!("{what} in ns1"));
            on_both(&mut p, &r, &format!("{what} message"), |x| {
                errors_are(x, "operation only available in root namespace")
                    || errors_are(x, "operation unavailable in namespaces")
            });
        }
    }
    // Still served in the root namespace, also with the header `root`.
    let r = p.check(in_ns("root", Call::get("sys/audit")), &[]).await;
    p.expect_status(&r, 200, "sys/audit in root");
    // seal-status, leader and ha-status answer in a namespace.
    for path in ["sys/seal-status", "sys/leader"] {
        let r = p.check(in_ns("ns1", Call::get(path)), &[]).await;
        p.expect_status(&r, 200, &format!("{path} in ns1"));
    }
    p.finish();
}

#[tokio::test]
async fn deletion_empties_the_namespace() {
    let mut p = differences::pair();
    create(&mut p, "", "gone").await;
    let r = p
        .check(
            in_ns("gone", Call::post("sys/mounts/secret", kv1_mount())),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "mount secret/ in gone");
    let r = p
        .check(
            in_ns("gone", Call::post("secret/foo", json!({"a": "b"}))),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write secret/foo in gone");
    let r = p
        .check(
            in_ns(
                "gone",
                Call::put(
                    "sys/policies/acl/reader",
                    policy_body("path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n"),
                ),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "policy in gone");
    let r = p
        .check(
            in_ns(
                "gone",
                Call::post("sys/auth/approle", json!({"type": "approle"})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "approle in gone");
    let r = p
        .check(
            in_ns(
                "gone",
                Call::post("auth/token/create", json!({"policies": ["reader"]})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "token in gone");
    let tok = both(&r, "/auth/client_token");
    let r = each(&mut p, &tok, |t| {
        in_ns("gone", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 200, "the token reads before the deletion");

    delete(&mut p, "", "gone").await;
    let r = p.check(in_ns("gone", Call::get("sys/mounts")), &[]).await;
    p.expect_status(&r, 404, "a deleted namespace is not found");
    let r = each(&mut p, &tok, lookup_self).await;
    p.expect_status(&r, 403, "the deleted namespace's token is revoked");

    // Recreated at the same path: empty.
    create(&mut p, "", "gone").await;
    let r = p.check(in_ns("gone", Call::get("sys/mounts")), &[]).await;
    p.expect_status(&r, 200, "recreated mounts");
    on_both(&mut p, &r, "the recreated namespace has no secret/", |x| {
        x.body["data"]["secret/"].is_null()
    });
    let r = p.check(in_ns("gone", Call::get("sys/auth")), &[]).await;
    on_both(&mut p, &r, "the recreated namespace has no approle/", |x| {
        x.body["data"]["approle/"].is_null() && x.body["data"]["token/"].is_object()
    });
    let r = p.check(in_ns("gone", Call::get("sys/policy")), &[]).await;
    on_both(
        &mut p,
        &r,
        "the recreated namespace has only default",
        |x| x.body["data"]["policies"] == json!(["default"]),
    );
    let r = p.check(in_ns("gone", Call::get("secret/foo")), &[]).await;
    p.expect_status(&r, 404, "no secret/foo in the recreated namespace");
    let r = p
        .check(
            in_ns("gone", Call::post("sys/mounts/secret", kv1_mount())),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "mount secret/ again");
    let r = p.check(in_ns("gone", Call::get("secret/foo")), &[]).await;
    p.expect_status(&r, 404, "the new mount is empty");
    let r = each(&mut p, &tok, |t| {
        in_ns("gone", Call::get("secret/foo").token(t))
    })
    .await;
    p.expect_status(&r, 403, "the old token is not valid in the new namespace");
    p.finish();
}

#[tokio::test]
async fn api_lock_and_unlock() {
    let mut p = differences::pair();
    create(&mut p, "", "ns1").await;
    create(&mut p, "ns1", "ns2").await;
    let r = p
        .check(
            in_ns("ns1/ns2", Call::post("sys/mounts/secret", kv1_mount())),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "mount in ns2");
    let r = p
        .check(
            in_ns("ns1/ns2", Call::post("secret/foo", json!({"a": "b"}))),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write in ns2");

    let r = p
        .check(Call::post("sys/namespaces/api-lock/lock", json!({})), &[])
        .await;
    p.expect_status(&r, 400, "the root namespace cannot be locked");
    on_both(&mut p, &r, "root lock message", |x| {
        errors_are(x, "root namespace cannot be locked/unlocked")
    });
    let r = p
        .check(
            Call::post("sys/namespaces/api-lock/lock/nope", json!({})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "lock an unknown namespace");

    // Two tokens of ns1, to revoke while it is locked.
    let mut toks = Vec::new();
    for _ in 0..2 {
        let r = p
            .check(
                in_ns("ns1", Call::post("auth/token/create", json!({}))),
                &[],
            )
            .await;
        p.expect_status(&r, 200, "a token in ns1");
        toks.push(both(&r, "/auth/client_token"));
    }

    // Lock ns1 from root through the path.
    let r = p
        .check(
            Call::post("sys/namespaces/api-lock/lock/ns1", json!({})),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "lock ns1");
    on_both(&mut p, &r, "lock answers an unlock key", |x| {
        x.body["data"]["unlock_key"]
            .as_str()
            .is_some_and(|k| !k.is_empty())
    });
    let key = both(&r, "/data/unlock_key");
    let locked = "API access to this namespace has been locked by an administrator - \"ns1/\" must be unlocked to gain access.";
    for call in [
        in_ns("ns1/ns2", Call::get("secret/foo")),
        Call::get("ns1/ns2/secret/foo"),
        in_ns("ns1", Call::get("sys/mounts")),
        in_ns("ns1", Call::list("sys/namespaces")),
    ] {
        let what = call.describe();
        let r = p.check(call, &[]).await;
        p.expect_status(&r, 503, &format!("{what} in a locked namespace"));
        on_both(&mut p, &r, "locked message", |x| errors_are(x, locked));
    }
    let r = p.check(Call::get("sys/namespaces/ns1"), &[]).await;
    p.expect_status(&r, 200, "read a locked namespace from its parent");
    on_both(&mut p, &r, "shown locked", |x| {
        x.body["data"]["locked"] == json!(true)
    });
    // Revocations inside the locked namespace are locked too; from the
    // root namespace its tokens can still be looked up and revoked.
    let r = each(&mut p, &toks[0], |t| {
        in_ns(
            "ns1",
            Call::post("auth/token/revoke-self", json!({})).token(t),
        )
    })
    .await;
    p.expect_status(&r, 503, "revoke-self inside the locked namespace");
    let r = each(&mut p, &toks[0], lookup_self).await;
    p.expect_status(
        &r,
        200,
        "lookup-self from root of a locked namespace's token",
    );
    let r = each(&mut p, &toks[0], |t| {
        Call::post("auth/token/revoke-self", json!({})).token(t)
    })
    .await;
    p.expect_status(
        &r,
        204,
        "revoke-self from root of a locked namespace's token",
    );
    let r = each(&mut p, &toks[1], |t| {
        Call::post("auth/token/revoke", json!({ "token": t }))
    })
    .await;
    p.expect_status(&r, 204, "root revokes a locked namespace's token");
    for t in &toks {
        let r = each(&mut p, t, lookup_self).await;
        p.expect_status(&r, 403, "a revoked token of the locked namespace");
    }
    let r = p
        .check(
            Call::post("sys/namespaces/api-lock/lock/ns1", json!({})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "lock a locked namespace");
    let r = p
        .check(
            Call::post(
                "sys/namespaces/api-lock/unlock/ns1",
                json!({"unlock_key": "wrong"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "unlock with a wrong key");
    on_both(&mut p, &r, "wrong key message", |x| {
        errors_are(x, "incorrect unlock key")
    });
    let r = each(&mut p, &key, |k| {
        Call::post(
            "sys/namespaces/api-lock/unlock/ns1",
            json!({ "unlock_key": k }),
        )
    })
    .await;
    p.expect_status(&r, 204, "unlock with the key");
    let r = p
        .check(in_ns("ns1/ns2", Call::get("secret/foo")), &[])
        .await;
    p.expect_status(&r, 200, "read after unlock");
    let r = p
        .check(
            Call::post("sys/namespaces/api-lock/unlock/ns1", json!({})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "unlock an unlocked namespace");

    // Lock from inside (header, no path), unlock with sudo (no key).
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::post("sys/namespaces/api-lock/lock/ns2", json!({})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "lock ns2 from ns1");
    let r = p.check(in_ns("ns1", Call::get("sys/mounts")), &[]).await;
    p.expect_status(&r, 200, "the parent of a locked namespace is not locked");
    let r = p
        .check(in_ns("ns1/ns2", Call::get("secret/foo")), &[])
        .await;
    p.expect_status(&r, 503, "ns2 locked");
    // Without sudo, unlocking needs the key: a token that may lock and
    // unlock but has no sudo is refused without one.
    let r = p
        .check(
            Call::put(
                "sys/policies/acl/unlocker",
                policy_body(
                    "path \"sys/namespaces/api-lock/*\" {\n  capabilities = [\"update\"]\n}\n",
                ),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write policy unlocker");
    let r = p
        .check(
            Call::post("auth/token/create", json!({"policies": ["unlocker"]})),
            &[],
        )
        .await;
    let unlocker = both(&r, "/auth/client_token");
    let unlock = |t: &str| Call::post("sys/namespaces/api-lock/unlock/ns1/ns2", json!({})).token(t);
    let r = p
        .check_each(
            unlock(&unlocker.0),
            unlock(&unlocker.1),
            differences::UNLOCK_WITHOUT_KEY,
        )
        .await;
    let refused = if p.sr.kind == Kind::Strongroom {
        (400..500).contains(&r.1.status)
    } else {
        r.1.status == r.0.status
    };
    p.expect(
        r.0.status == 500 && refused,
        format!(
            "unlock without the key or sudo: openbao {} {}, {} {} {}",
            r.0.status,
            r.0.body,
            p.sr.kind.label(),
            r.1.status,
            r.1.body
        ),
    );
    let r = p
        .check(in_ns("ns1/ns2", Call::get("secret/foo")), &[])
        .await;
    p.expect_status(&r, 503, "still locked after a refused unlock");
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::post("sys/namespaces/api-lock/unlock/ns2", json!({})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "unlock with sudo");
    on_both(&mut p, &r, "sudo unlock warning", |x| {
        x.body["warnings"] == json!(["Namespace unlocked using sudo capabilities"])
    });
    let r = p
        .check(in_ns("ns1/ns2", Call::get("secret/foo")), &[])
        .await;
    p.expect_status(&r, 200, "read after the sudo unlock");
    p.finish();
}

#[tokio::test]
async fn engines_and_approle_in_a_namespace() {
    let mut p = differences::pair();
    create(&mut p, "", "ns1").await;
    create(&mut p, "ns1", "ns2").await;
    // KV v1 and v2 in ns1/ns2.
    for (mount, body) in [("kv1", kv1_mount()), ("kv2", kv2_mount())] {
        let r = p
            .check(
                in_ns("ns1/ns2", Call::post(&format!("sys/mounts/{mount}"), body)),
                &[],
            )
            .await;
        p.expect_status(&r, 204, &format!("mount {mount}"));
    }
    let r = p
        .check(
            in_ns("ns1/ns2", Call::post("kv1/app", json!({"pw": "1"}))),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "kv1 write");
    let r = p.check(Call::get("ns1/ns2/kv1/app"), &[]).await;
    p.expect_status(&r, 200, "kv1 read through the path");
    let r = p.check(in_ns("ns1", Call::list("ns2/kv1")), &[]).await;
    on_both(&mut p, &r, "kv1 list", |x| {
        x.body["data"]["keys"] == json!(["app"])
    });
    let r = p
        .check(
            in_ns(
                "ns1/ns2",
                Call::post("kv2/data/app", json!({"data": {"pw": "2"}})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "kv2 write");
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::post(
                    "ns2/kv2/data/app",
                    json!({"data": {"pw": "3"}, "options": {"cas": 1}}),
                ),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "kv2 write with cas through header + path");
    let r = p
        .check(in_ns("ns1/ns2", Call::get("kv2/data/app")), &[])
        .await;
    p.expect_status(&r, 200, "kv2 read");
    on_both(&mut p, &r, "kv2 version 2", |x| {
        x.body["data"]["data"] == json!({"pw": "3"})
            && x.body["data"]["metadata"]["version"] == json!(2)
    });
    let r = p.check(Call::get("ns1/ns2/kv2/metadata/app"), &[]).await;
    p.expect_status(&r, 200, "kv2 metadata");
    let r = p
        .check(in_ns("ns1/ns2", Call::get("kv2/config")), &[])
        .await;
    p.expect_status(&r, 200, "kv2 config");

    // AppRole in ns1, login through the header and through the path.
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::post("sys/auth/approle", json!({"type": "approle"})),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "enable approle in ns1");
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::put(
                    "sys/policies/acl/app",
                    policy_body("path \"ns2/kv2/data/*\" {\n  capabilities = [\"read\"]\n}\n"),
                ),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "policy app in ns1");
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::post(
                    "auth/approle/role/web",
                    json!({"token_policies": ["app"], "role_id": "web-role"}),
                ),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "approle role in ns1");
    let r = p
        .check(Call::get("ns1/auth/approle/role/web/role-id"), &[])
        .await;
    on_both(&mut p, &r, "role-id", |x| {
        x.body["data"]["role_id"] == json!("web-role")
    });
    let mut tokens = Vec::new();
    for via_header in [true, false] {
        let r = p
            .check(
                in_ns(
                    "ns1",
                    Call::post("auth/approle/role/web/secret-id", json!({})),
                ),
                &[],
            )
            .await;
        p.expect_status(&r, 200, "secret-id in ns1");
        let sid = both(&r, "/data/secret_id");
        let r = each(&mut p, &sid, |s| {
            let body = json!({"role_id": "web-role", "secret_id": s});
            if via_header {
                in_ns("ns1", Call::post("auth/approle/login", body)).anonymous()
            } else {
                Call::post("ns1/auth/approle/login", body).anonymous()
            }
        })
        .await;
        p.expect_status(&r, 200, &format!("approle login (header: {via_header})"));
        on_both(&mut p, &r, "login policies", |x| {
            x.body["auth"]["policies"] == json!(["app", "default"])
        });
        tokens.push(both(&r, "/auth/client_token"));
    }
    for tok in &tokens {
        let r = each(&mut p, tok, |t| in_ns("ns1", lookup_self(t))).await;
        p.expect_status(&r, 200, "lookup-self of the login token");
        on_both(&mut p, &r, "login token in ns1", |x| {
            x.body["data"]["namespace_path"] == json!("ns1/")
                && x.body["data"]["path"] == json!("auth/approle/login")
        });
        let r = each(&mut p, tok, |t| {
            in_ns("ns1/ns2", Call::get("kv2/data/app").token(t))
        })
        .await;
        p.expect_status(&r, 200, "the login token reads ns2's kv2");
        let r = each(&mut p, tok, |t| {
            in_ns("ns1/ns2", Call::get("kv1/app").token(t))
        })
        .await;
        p.expect_status(&r, 403, "the login token cannot read kv1");
    }
    // The root namespace has no approle.
    let r = p
        .check(
            Call::post(
                "auth/approle/login",
                json!({"role_id": "web-role", "secret_id": "x"}),
            )
            .anonymous(),
            &[],
        )
        .await;
    on_both(&mut p, &r, "no approle in root", |x| x.status >= 400);
    p.finish();
}

#[tokio::test]
async fn wrapping_cubbyhole_and_ui_mounts() {
    let mut p = differences::pair();
    let ns1 = create(&mut p, "", "ns1").await;
    create(&mut p, "", "sib").await;

    // Wrapping in ns1: the wrapping token carries the namespace.
    let wrap = |ns: &str| {
        in_ns(ns, Call::post("sys/wrapping/wrap", json!({"foo": "bar"})))
            .header("X-Vault-Wrap-TTL", "5m")
    };
    let r = p.check(wrap("ns1"), &[]).await;
    p.expect_status(&r, 200, "wrap in ns1");
    let w = both(&r, "/wrap_info/token");
    let wa = both(&r, "/wrap_info/accessor");
    p.expect(
        w.0.ends_with(&format!(".{}", ns1.0))
            && w.1.ends_with(&format!(".{}", ns1.1))
            && wa.0.ends_with(&format!(".{}", ns1.0))
            && wa.1.ends_with(&format!(".{}", ns1.1)),
        format!("wrapping tokens of ns1 carry ns1's id: {w:?} {wa:?} {ns1:?}"),
    );
    let r = each(&mut p, &w, |t| {
        in_ns(
            "ns1",
            Call::post("sys/wrapping/lookup", json!({ "token": t })),
        )
    })
    .await;
    p.expect_status(&r, 200, "wrapping lookup in ns1");
    let r = each(&mut p, &w, |t| {
        in_ns("ns1", Call::post("sys/wrapping/unwrap", json!({})).token(t))
    })
    .await;
    p.expect_status(&r, 200, "unwrap in ns1");
    on_both(&mut p, &r, "unwrapped data", |x| {
        x.body["data"] == json!({"foo": "bar"})
    });
    let r = each(&mut p, &w, |t| {
        in_ns("ns1", Call::post("sys/wrapping/unwrap", json!({})).token(t))
    })
    .await;
    p.expect_status(&r, 400, "second unwrap");
    // Unwrap in the root namespace and in a sibling, as OpenBao allows.
    for ns in ["root", "sib"] {
        let r = p.check(wrap("ns1"), &[]).await;
        let w = both(&r, "/wrap_info/token");
        let r = each(&mut p, &w, |t| {
            in_ns(ns, Call::post("sys/wrapping/unwrap", json!({})).token(t))
        })
        .await;
        p.expect_status(&r, 200, &format!("unwrap an ns1 token in {ns}"));
    }
    // A wrapped KV read in ns1.
    let r = p
        .check(
            in_ns("ns1", Call::post("sys/mounts/secret", kv1_mount())),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "mount secret/ in ns1");
    let r = p
        .check(
            in_ns("ns1", Call::post("secret/foo", json!({"a": "b"}))),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write secret/foo in ns1");
    let r = p
        .check(
            in_ns("ns1", Call::get("secret/foo")).header("X-Vault-Wrap-TTL", "5m"),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "wrapped read in ns1");
    on_both(&mut p, &r, "wrapped read's creation path", |x| {
        x.body["wrap_info"]["creation_path"] == json!("secret/foo")
    });
    let w = both(&r, "/wrap_info/token");
    let r = each(&mut p, &w, |t| {
        in_ns(
            "ns1",
            Call::post("sys/wrapping/unwrap", json!({"token": t})),
        )
    })
    .await;
    p.expect_status(&r, 200, "unwrap the read with the token in the body");
    on_both(&mut p, &r, "the unwrapped secret", |x| {
        x.body["data"] == json!({"a": "b"})
    });

    // Cubbyhole: per namespace and per token.
    let r = p
        .check(
            in_ns("ns1", Call::post("cubbyhole/x", json!({"a": "b"}))),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "cubbyhole write in ns1");
    let r = p.check(in_ns("ns1", Call::get("cubbyhole/x")), &[]).await;
    p.expect_status(&r, 200, "cubbyhole read in ns1");
    let r = p.check(Call::get("cubbyhole/x"), &[]).await;
    p.expect_status(&r, 404, "root's cubbyhole is another");
    let r = p.check(Call::get("ns1/cubbyhole/x"), &[]).await;
    p.expect_status(&r, 200, "ns1's cubbyhole through the path");
    let r = p.check(in_ns("ns1", Call::list("cubbyhole")), &[]).await;
    on_both(&mut p, &r, "cubbyhole list", |x| {
        x.body["data"]["keys"] == json!(["x"])
    });
    let r = p
        .check(
            in_ns(
                "ns1",
                Call::post("auth/token/create", json!({"policies": ["default"]})),
            ),
            &[],
        )
        .await;
    let t = both(&r, "/auth/client_token");
    let r = each(&mut p, &t, |t| {
        in_ns("ns1", Call::post("cubbyhole/y", json!({"c": "d"})).token(t))
    })
    .await;
    p.expect_status(&r, 204, "an ns1 token writes its cubbyhole");
    let r = each(&mut p, &t, |t| {
        in_ns("ns1", Call::get("cubbyhole/y").token(t))
    })
    .await;
    p.expect_status(&r, 200, "an ns1 token reads its cubbyhole");
    let r = each(&mut p, &t, |t| {
        in_ns("ns1", Call::get("cubbyhole/x").token(t))
    })
    .await;
    p.expect_status(&r, 404, "another token's cubbyhole");
    let r = each(&mut p, &t, |t| Call::get("cubbyhole/y").token(t)).await;
    p.expect_status(&r, 403, "an ns1 token's cubbyhole from root");

    // sys/internal/ui/mounts in ns1: root token, then a default-policy token.
    let r = p
        .check(in_ns("ns1", Call::get("sys/internal/ui/mounts")), &[])
        .await;
    p.expect_status(&r, 200, "ui mounts in ns1");
    on_both(&mut p, &r, "ui mounts in ns1", |x| {
        x.body["data"]["secret"]["secret/"]["type"] == json!("kv")
            && x.body["data"]["auth"]["token/"]["type"] == json!("ns_token")
    });
    let r = each(&mut p, &t, |t| {
        in_ns("ns1", Call::get("sys/internal/ui/mounts").token(t))
    })
    .await;
    p.expect_status(&r, 200, "ui mounts in ns1 with a default token");
    let r = p
        .check(
            in_ns("ns1", Call::get("sys/internal/ui/mounts/secret")),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "ui mount secret/ in ns1");
    let r = p
        .check(Call::get("ns1/sys/internal/ui/mounts/secret"), &[])
        .await;
    p.expect_status(&r, 200, "ui mount secret/ through the path");
    p.finish();
}
