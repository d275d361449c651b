//! Differential tests for the token store, ACL policies, leases, cubbyhole
//! and response wrapping: the same requests sent to OpenBao and to
//! Strongroom, status codes and response bodies compared by value, and the values a
//! client relies on asserted on both servers.

use crate::differences;
use serde_json::{json, Value};
use strongroom_test::diff::{on_both, same_value, Allow, Pair};
use strongroom_test::server;
use strongroom_test::server::{errors_mention, Call, Reply};

/// One value per server: (OpenBao's, Strongroom's).
type Two = (String, String);

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
async fn each(p: &mut Pair, v: &Two, f: impl Fn(&str) -> Call, allow: &[Allow]) -> (Reply, Reply) {
    p.check_each(f(&v.0), f(&v.1), allow).await
}

fn has_warnings(r: &Reply) -> bool {
    r.body["warnings"].as_array().is_some_and(|w| !w.is_empty())
}

fn kv1_mount() -> Value {
    json!({"type": "kv", "options": {"version": "1"}})
}

/// Creates a token as root on both servers with `body`, returning the two
/// client tokens and the two accessors.
async fn create(p: &mut Pair, path: &str, body: Value) -> (Two, Two) {
    let r = p.check(Call::post(path, body.clone()), &[]).await;
    p.expect_status(&r, 200, &format!("create token at {path} with {body}"));
    (both(&r, "/auth/client_token"), both(&r, "/auth/accessor"))
}

/// Writes an ACL policy on both servers.
async fn policy(p: &mut Pair, name: &str, text: &str) {
    let r = p
        .check(
            Call::put(
                &format!("sys/policies/acl/{name}"),
                json!({ "policy": text }),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, &format!("write policy {name}"));
}

/// Wraps `{"foo": "bar"}` with a 5 minute TTL on both servers, returning
/// the two wrapping tokens.
async fn data_wrap(p: &mut Pair) -> Two {
    let call =
        Call::post("sys/wrapping/wrap", json!({"foo": "bar"})).header("X-Vault-Wrap-TTL", "5m");
    let r = p.check(call, &[]).await;
    p.expect_status(&r, 200, "sys/wrapping/wrap");
    both(&r, "/wrap_info/token")
}

fn lookup_self(t: &str) -> Call {
    Call::get("auth/token/lookup-self").token(t)
}

fn lookup(t: &str) -> Call {
    Call::post("auth/token/lookup", json!({ "token": t }))
}

#[tokio::test]
async fn token_lifecycle() {
    let mut p = differences::pair();
    policy(
        &mut p,
        "app",
        "path \"auth/token/create\" {\n  capabilities = [\"update\"]\n}\n",
    )
    .await;
    let body = json!({
        "policies": ["app"],
        "ttl": "1h",
        "explicit_max_ttl": "2h",
        "meta": {"team": "a"},
        "display_name": "Web Server",
        "num_uses": 0,
    });
    let r = p.check(Call::post("auth/token/create", body), &[]).await;
    p.expect_status(&r, 200, "create");
    on_both(&mut p, &r, "create: auth block", |x| {
        let a = &x.body["auth"];
        a["policies"] == json!(["app", "default"])
            && a["token_policies"] == json!(["app", "default"])
            && a["metadata"] == json!({"team": "a"})
            && a["lease_duration"] == json!(3600)
            && a["renewable"] == json!(true)
            && a["orphan"] == json!(false)
            && a["token_type"] == json!("service")
            && x.body["data"].is_null()
    });
    let tok = both(&r, "/auth/client_token");
    let acc = both(&r, "/auth/accessor");

    let r = each(&mut p, &tok, lookup_self, &[]).await;
    p.expect_status(&r, 200, "lookup-self with the new token");
    on_both(&mut p, &r, "lookup-self values", |x| {
        let d = &x.body["data"];
        d["display_name"] == json!("token-Web-Server")
            && d["explicit_max_ttl"] == json!(7200)
            && d["creation_ttl"] == json!(3600)
            && d["path"] == json!("auth/token/create")
            && d["meta"] == json!({"team": "a"})
            && d["num_uses"] == json!(0)
            && d["expire_time"].is_string()
            && d["type"] == json!("service")
    });
    let r = each(&mut p, &tok, lookup, &[]).await;
    p.expect_status(&r, 200, "lookup by id");
    on_both(&mut p, &r, "lookup id and accessor", |x| {
        x.data("id").is_string() && x.data("accessor").is_string()
    });
    let r = each(
        &mut p,
        &tok,
        |t| Call::get(&format!("auth/token/lookup?token={t}")),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "GET lookup with token in the query");
    let r = each(
        &mut p,
        &acc,
        |a| Call::post("auth/token/lookup-accessor", json!({ "accessor": a })),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "lookup-accessor");
    on_both(&mut p, &r, "lookup-accessor hides the id", |x| {
        x.data("id") == &json!("") && x.data("policies") == &json!(["app", "default"])
    });

    // Renewal.
    let r = each(
        &mut p,
        &tok,
        |t| Call::post("auth/token/renew", json!({"token": t, "increment": "30m"})),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "renew");
    on_both(&mut p, &r, "renew sets the increment", |x| {
        x.body["auth"]["lease_duration"] == json!(1800)
    });
    let r = each(
        &mut p,
        &tok,
        |t| Call::post("auth/token/renew-self", json!({})).token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "renew-self without an increment");
    on_both(
        &mut p,
        &r,
        "renew without an increment keeps the last TTL",
        |x| x.body["auth"]["lease_duration"] == json!(1800),
    );
    let r = each(
        &mut p,
        &tok,
        |t| Call::post("auth/token/renew-self", json!({"increment": "5h"})).token(t),
        &[Allow {
            pattern: "/auth/lease_duration",
            reason: "capped by explicit_max_ttl, the grant is the time that remains, in whole seconds: one less on a server whose clock crossed a second boundary since the token was made (the range is checked below)",
        }],
    )
    .await;
    p.expect_status(&r, 200, "renew-self beyond explicit_max_ttl");
    on_both(&mut p, &r, "renew-self capped with a warning", |x| {
        has_warnings(x)
            && x.body["auth"]["lease_duration"]
                .as_u64()
                .is_some_and(|d| (7190..=7200).contains(&d))
    });
    let r = each(
        &mut p,
        &acc,
        |a| Call::post("auth/token/renew-accessor", json!({ "accessor": a })),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "renew-accessor");
    on_both(&mut p, &r, "renew-accessor hides the token", |x| {
        x.body["auth"]["client_token"] == json!("")
    });

    // A non-renewable token with a period, num_uses and a fixed max.
    let r = p
        .check(
            Call::post(
                "auth/token/create",
                json!({"policies": ["default"], "renewable": false, "ttl": "10m", "num_uses": 5}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "create non-renewable");
    on_both(&mut p, &r, "non-renewable create", |x| {
        x.body["auth"]["renewable"] == json!(false) && x.body["auth"]["num_uses"] == json!(5)
    });
    let fixed = both(&r, "/auth/client_token");
    let r = each(
        &mut p,
        &fixed,
        |t| Call::post("auth/token/renew", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 400, "renew a non-renewable token");
    let r = p
        .check(
            Call::post(
                "auth/token/create",
                json!({"period": "30m", "policies": ["default"]}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "create periodic");
    let periodic = both(&r, "/auth/client_token");
    let r = each(&mut p, &periodic, lookup, &[]).await;
    on_both(&mut p, &r, "periodic token lookup", |x| {
        x.data("period") == &json!(1800) && x.data("ttl").as_u64().is_some_and(|t| t <= 1800)
    });

    // Orphans.
    let r = p
        .check(
            Call::post("auth/token/create-orphan", json!({"policies": ["default"]})),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "create-orphan");
    on_both(&mut p, &r, "create-orphan is an orphan", |x| {
        x.body["auth"]["orphan"] == json!(true)
    });
    let orphan = both(&r, "/auth/client_token");

    // Accessors LIST.
    let r = p.check(Call::list("auth/token/accessors"), &[]).await;
    p.expect_status(&r, 200, "LIST accessors");
    let listed = |x: &Reply, a: &str| server::str_list(x.data("keys")).iter().any(|k| k == a);
    p.expect(
        listed(&r.0, &acc.0) && listed(&r.1, &acc.1),
        format!("accessor listed: {:?}", r.1.body),
    );
    let r = p.check(Call::get("auth/token/accessors"), &[]).await;
    p.expect_status(&r, 405, "GET accessors without list");

    // Revocation.
    let r = p
        .check(
            Call::post("auth/token/revoke-accessor", json!({"accessor": "nope"})),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "revoke-accessor of an unknown accessor");
    on_both(&mut p, &r, "unknown accessor warns", has_warnings);
    let r = each(
        &mut p,
        &acc,
        |a| Call::post("auth/token/revoke-accessor", json!({ "accessor": a })),
        &[],
    )
    .await;
    p.expect_status(&r, 204, "revoke-accessor");
    let r = each(&mut p, &tok, lookup_self, &[]).await;
    p.expect_status(&r, 403, "lookup-self after revoke-accessor");
    let r = each(
        &mut p,
        &fixed,
        |t| Call::post("auth/token/revoke", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 204, "revoke");
    let r = each(&mut p, &fixed, lookup, &[]).await;
    p.expect_status(&r, 403, "lookup of a revoked token");
    let r = each(
        &mut p,
        &orphan,
        |t| Call::post("auth/token/revoke-self", json!({})).token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 204, "revoke-self");
    let r = each(&mut p, &orphan, lookup_self, &[]).await;
    p.expect_status(&r, 403, "lookup-self after revoke-self");

    // Bad input.
    for (path, body) in [
        ("auth/token/create", json!({"ttl": "abc"})),
        ("auth/token/create", json!({"num_uses": -1})),
        ("auth/token/create", json!({"explicit_max_ttl": "abc"})),
        ("auth/token/create", json!({"id": "s.custom"})),
        ("auth/token/create/no-such-role", json!({})),
        ("auth/token/renew", json!({})),
        ("auth/token/revoke", json!({})),
        ("auth/token/lookup-accessor", json!({})),
        ("auth/token/revoke-accessor", json!({})),
    ] {
        let r = p.check(Call::post(path, body.clone()), &[]).await;
        p.expect_status(&r, 400, &format!("POST {path} {body}"));
    }
    let r = p.check(lookup("not-a-token"), &[]).await;
    p.expect_status(&r, 403, "lookup of a bad token");
    let r = p
        .check(
            Call::post("auth/token/lookup-accessor", json!({"accessor": "nope"})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "lookup of an unknown accessor");
    let r = p
        .check(
            Call::post("auth/token/renew-accessor", json!({"accessor": "nope"})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "renew of an unknown accessor");
    let r = p
        .check(
            Call::post("auth/token/create", json!({"id": "my-own-id"})),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "custom id");
    on_both(
        &mut p,
        &r,
        "custom id kept; no TTL, so not renewable",
        |x| {
            x.body["auth"]["client_token"] == json!("my-own-id")
                && x.body["auth"]["renewable"] == json!(false)
                && x.body["auth"]["lease_duration"] == json!(0)
        },
    );
    let r = p
        .check(
            Call::post("auth/token/create", json!({"id": "my-own-id"})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "duplicate custom id");
    let r = p.check(lookup_self("my-own-id"), &[]).await;
    p.expect_status(&r, 200, "lookup-self with a custom id");
    p.finish();
}

#[tokio::test]
async fn token_tree_revocation() {
    let mut p = differences::pair();
    policy(
        &mut p,
        "creator",
        "path \"auth/token/create\" {\n  capabilities = [\"update\"]\n}\npath \"auth/token/create-orphan\" {\n  capabilities = [\"update\"]\n}\n",
    )
    .await;
    let (parent, _) = create(
        &mut p,
        "auth/token/create",
        json!({"policies": ["creator"]}),
    )
    .await;
    let child_of = |path: &'static str| {
        move |t: &str| Call::post(path, json!({"policies": ["default"]})).token(t)
    };
    let r = each(&mut p, &parent, child_of("auth/token/create"), &[]).await;
    p.expect_status(&r, 200, "child created by the parent");
    on_both(&mut p, &r, "child is not an orphan", |x| {
        x.body["auth"]["orphan"] == json!(false)
    });
    let child = both(&r, "/auth/client_token");
    let r = each(&mut p, &parent, child_of("auth/token/create-orphan"), &[]).await;
    p.expect_status(&r, 200, "orphan created by the parent");
    let orphan = both(&r, "/auth/client_token");
    let r = each(&mut p, &child, lookup_self, &[]).await;
    p.expect_status(&r, 200, "child lookup-self");
    let r = each(
        &mut p,
        &parent,
        |t| Call::post("auth/token/create", json!({"policies": ["root"]})).token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 400, "a child cannot have policies its parent lacks");

    let r = each(
        &mut p,
        &parent,
        |t| Call::post("auth/token/revoke", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 204, "revoke the parent");
    let r = each(&mut p, &child, lookup_self, &[]).await;
    p.expect_status(&r, 403, "child lookup-self after its parent is revoked");
    let r = each(&mut p, &child, lookup, &[]).await;
    p.expect_status(&r, 403, "child lookup after its parent is revoked");
    let r = each(&mut p, &orphan, lookup_self, &[]).await;
    p.expect_status(&r, 200, "the orphan survives");

    // revoke-orphan: the children survive, as orphans.
    let (parent2, _) = create(
        &mut p,
        "auth/token/create",
        json!({"policies": ["creator"]}),
    )
    .await;
    let r = each(&mut p, &parent2, child_of("auth/token/create"), &[]).await;
    let child2 = both(&r, "/auth/client_token");
    let r = each(
        &mut p,
        &parent2,
        |t| Call::post("auth/token/revoke-orphan", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 204, "revoke-orphan");
    let r = each(&mut p, &parent2, lookup_self, &[]).await;
    p.expect_status(&r, 403, "revoke-orphan revokes the parent");
    let r = each(&mut p, &child2, lookup_self, &[]).await;
    p.expect_status(&r, 200, "the child survives revoke-orphan");
    on_both(&mut p, &r, "the survivor is an orphan", |x| {
        x.data("orphan") == &json!(true)
    });
    // revoke-orphan needs sudo: the child may not call it on itself.
    let r = each(
        &mut p,
        &child2,
        |t| Call::post("auth/token/revoke-orphan", json!({ "token": t })).token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 403, "revoke-orphan without sudo");
    p.finish();
}

#[tokio::test]
async fn token_num_uses() {
    let mut p = differences::pair();
    let (tok, _) = create(&mut p, "auth/token/create", json!({"num_uses": 2})).await;
    let first = each(&mut p, &tok, lookup_self, &[]).await;
    p.expect_status(&first, 200, "first use");
    same_value(&mut p, &first, "/data/num_uses", "num_uses after one use");
    let second = each(&mut p, &tok, lookup_self, &[]).await;
    p.expect_status(&second, 200, "second use");
    same_value(&mut p, &second, "/data/num_uses", "num_uses after two uses");
    let uses = |r: &Reply| r.data("num_uses").as_i64().unwrap_or(i64::MAX);
    p.expect(
        uses(&second.0) < uses(&first.0) && uses(&second.1) < uses(&first.1),
        format!(
            "num_uses decreases: openbao {} -> {}, strongroom {} -> {}",
            first.0.data("num_uses"),
            second.0.data("num_uses"),
            first.1.data("num_uses"),
            second.1.data("num_uses")
        ),
    );
    let third = each(&mut p, &tok, lookup_self, &[]).await;
    p.expect_status(&third, 403, "third use");
    // Its revocation is asynchronous on OpenBao (a root lookup may still
    // show it with num_uses -1 for a moment), so only its own use is checked.
    let r = each(&mut p, &tok, lookup_self, &[]).await;
    p.expect_status(&r, 403, "the spent token stays unusable");
    p.finish();
}

#[tokio::test]
async fn batch_tokens() {
    let mut p = differences::pair();
    let r = p
        .check(
            Call::post(
                "auth/token/create",
                json!({"type": "batch", "policies": ["default"], "ttl": "1h"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "create batch");
    on_both(&mut p, &r, "batch create", |x| {
        let a = &x.body["auth"];
        a["token_type"] == json!("batch")
            && a["accessor"] == json!("")
            && a["renewable"] == json!(false)
            && a["lease_duration"] == json!(3600)
            && a["orphan"] == json!(false)
    });
    let batch = both(&r, "/auth/client_token");
    let r = each(&mut p, &batch, lookup_self, &[]).await;
    p.expect_status(&r, 200, "batch lookup-self");
    on_both(&mut p, &r, "batch lookup-self", |x| {
        x.data("type") == &json!("batch") && x.data("policies") == &json!(["default"])
    });
    let r = each(&mut p, &batch, lookup, &[]).await;
    p.expect_status(&r, 200, "batch lookup by root");
    let r = each(
        &mut p,
        &batch,
        |t| Call::post("auth/token/renew-self", json!({})).token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 400, "batch renew-self");
    let (ea, eb) = (r.0.errors(), r.1.errors());
    p.expect(ea == eb, format!("renew-self errors: {ea:?} vs {eb:?}"));
    let r = each(
        &mut p,
        &batch,
        |t| Call::post("auth/token/revoke-self", json!({})).token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 400, "batch revoke-self");
    let (ea, eb) = (r.0.errors(), r.1.errors());
    p.expect(ea == eb, format!("revoke-self errors: {ea:?} vs {eb:?}"));
    let r = each(
        &mut p,
        &batch,
        |t| Call::put("cubbyhole/x", json!({"a": 1})).token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 400, "cubbyhole with a batch token");
    for body in [
        json!({"type": "batch", "num_uses": 3}),
        json!({"type": "batch", "policies": ["root"]}),
        json!({"type": "batch", "period": "1h"}),
        json!({"type": "batch", "policies": ["default"], "explicit_max_ttl": "1h"}),
        json!({"type": "batch", "explicit_max_ttl": "1h", "num_uses": 3}),
        json!({"type": "batch", "num_uses": 3, "period": "1h"}),
        json!({"type": "batch", "policies": ["root"], "period": "1h"}),
        json!({"type": "bogus"}),
    ] {
        let r = p
            .check(Call::post("auth/token/create", body.clone()), &[])
            .await;
        p.expect_status(&r, 400, &format!("create {body}"));
    }
    let r = each(&mut p, &batch, lookup_self, &[]).await;
    p.expect_status(&r, 200, "batch token still valid");
    p.finish();
}

#[tokio::test]
async fn token_roles() {
    let mut p = differences::pair();
    policy(
        &mut p,
        "app",
        "path \"kv1/*\" {\n  capabilities = [\"read\"]\n}\n",
    )
    .await;
    let r = p.check(Call::list("auth/token/roles"), &[]).await;
    p.expect_status(&r, 404, "LIST roles when none");
    let role = json!({
        "allowed_policies": ["app"],
        "orphan": true,
        "token_period": "1h",
        "path_suffix": "svc-v1",
    });
    let r = p.check(Call::post("auth/token/roles/web", role), &[]).await;
    p.expect_status(&r, 204, "write role");
    let r = p.check(Call::get("auth/token/roles/web"), &[]).await;
    p.expect_status(&r, 200, "read role");
    on_both(&mut p, &r, "role values", |x| {
        x.data("allowed_policies") == &json!(["app"])
            && x.data("orphan") == &json!(true)
            && x.data("token_period") == &json!(3600)
            && x.data("period") == &json!(0)
            && x.data("path_suffix") == &json!("svc-v1")
            && x.data("name") == &json!("web")
            && x.data("renewable") == &json!(true)
            && x.data("token_type") == &json!("default-service")
    });
    let r = p.check(Call::list("auth/token/roles"), &[]).await;
    on_both(&mut p, &r, "roles listed", |x| {
        x.data("keys") == &json!(["web"])
    });
    let r = p.check(Call::get("auth/token/roles?list=true"), &[]).await;
    p.expect_status(&r, 200, "GET roles?list=true");

    let r = p
        .check(
            Call::post("auth/token/create/web", json!({"policies": ["app"]})),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "create from role");
    on_both(&mut p, &r, "role token", |x| {
        let a = &x.body["auth"];
        a["policies"] == json!(["app", "default"])
            && a["orphan"] == json!(true)
            && a["lease_duration"] == json!(3600)
    });
    let tok = both(&r, "/auth/client_token");
    let r = each(&mut p, &tok, lookup, &[]).await;
    on_both(&mut p, &r, "role token lookup", |x| {
        x.data("path") == &json!("auth/token/create/web/svc-v1")
            && x.data("role") == &json!("web")
            && x.data("ttl").as_u64().is_some_and(|t| t <= 3600)
    });
    let r = p
        .check(Call::post("auth/token/create/web", json!({})), &[])
        .await;
    p.expect_status(&r, 200, "create from role with no policies");
    on_both(&mut p, &r, "role token gets the allowed policies", |x| {
        x.body["auth"]["policies"] == json!(["app", "default"])
    });
    let r = p
        .check(
            Call::post("auth/token/create/web", json!({"policies": ["other"]})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "disallowed policy");
    let r = p
        .check(
            Call::post(
                "auth/token/create",
                json!({"role_name": "web", "policies": ["app"]}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "create with role_name");

    for body in [
        json!({"token_type": "bogus"}),
        json!({"token_period": "abc"}),
        json!({"allowed_policies": {"a": 1}}),
    ] {
        let r = p
            .check(Call::post("auth/token/roles/bad", body.clone()), &[])
            .await;
        p.expect_status(&r, 400, &format!("role {body}"));
    }
    let r = p.check(Call::get("auth/token/roles/bad"), &[]).await;
    p.expect_status(&r, 404, "a refused role is not stored");

    let r = p.check(Call::delete("auth/token/roles/web"), &[]).await;
    p.expect_status(&r, 204, "delete role");
    let r = p.check(Call::get("auth/token/roles/web"), &[]).await;
    p.expect_status(&r, 404, "read after delete");
    let r = p.check(Call::list("auth/token/roles"), &[]).await;
    p.expect_status(&r, 404, "LIST after the last role is deleted");
    let r = p
        .check(Call::post("auth/token/create/web", json!({})), &[])
        .await;
    p.expect_status(&r, 400, "create from a deleted role");
    p.finish();
}

#[tokio::test]
async fn cubbyhole_is_private_per_token() {
    let mut p = differences::pair();
    let r = p.check(Call::get("sys/mounts"), &[]).await;
    on_both(&mut p, &r, "cubbyhole/ mounted", |x| {
        x.data("cubbyhole/")["type"] == json!("cubbyhole")
            && x.data("cubbyhole/")["local"] == json!(true)
    });
    let r = p.check(Call::get("sys/mounts/cubbyhole"), &[]).await;
    p.expect_status(&r, 200, "GET sys/mounts/cubbyhole");
    let r = p.check(Call::delete("sys/mounts/cubbyhole"), &[]).await;
    p.expect_status(&r, 400, "cubbyhole cannot be disabled");

    let (one, _) = create(
        &mut p,
        "auth/token/create",
        json!({"policies": ["default"]}),
    )
    .await;
    let (two, _) = create(
        &mut p,
        "auth/token/create",
        json!({"policies": ["default"]}),
    )
    .await;
    let steps: Vec<(Call, u16)> = vec![
        (Call::get("cubbyhole/secret"), 404),
        (Call::list("cubbyhole/"), 404),
        (
            Call::put("cubbyhole/secret", json!({"k": "v", "n": 1})),
            204,
        ),
        (Call::post("cubbyhole/dir/inner", json!({"x": true})), 204),
        (Call::get("cubbyhole/secret"), 200),
        (Call::list("cubbyhole/"), 200),
        (Call::list("cubbyhole/dir"), 200),
    ];
    for (call, status) in steps {
        let what = call.describe();
        let r = each(&mut p, &one, |t| call.clone().token(t), &[]).await;
        p.expect_status(&r, status, &format!("token one: {what}"));
    }
    // An empty write is refused (OpenBao answers 500 "missing data fields").
    let r = each(
        &mut p,
        &one,
        |t| Call::put("cubbyhole/empty", json!({})).token(t),
        differences::EMPTY_CUBBYHOLE_WRITE,
    )
    .await;
    on_both(&mut p, &r, "empty cubbyhole write refused", |x| {
        x.status >= 400 && errors_mention(x, "missing data fields")
    });
    let r = each(
        &mut p,
        &one,
        |t| Call::get("cubbyhole/secret").token(t),
        &[],
    )
    .await;
    on_both(&mut p, &r, "cubbyhole read back", |x| {
        x.body["data"] == json!({"k": "v", "n": 1}) && x.body["lease_duration"] == json!(0)
    });
    let r = each(&mut p, &one, |t| Call::list("cubbyhole/").token(t), &[]).await;
    on_both(&mut p, &r, "cubbyhole list", |x| {
        x.data("keys") == &json!(["dir/", "secret"])
    });
    // Another token, and root, see nothing of token one's cubbyhole.
    let r = each(
        &mut p,
        &two,
        |t| Call::get("cubbyhole/secret").token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 404, "token two cannot read token one's cubbyhole");
    let r = each(&mut p, &two, |t| Call::list("cubbyhole/").token(t), &[]).await;
    p.expect_status(&r, 404, "token two lists nothing");
    let r = p.check(Call::get("cubbyhole/secret"), &[]).await;
    p.expect_status(&r, 404, "root cannot read token one's cubbyhole");

    let r = each(
        &mut p,
        &one,
        |t| Call::delete("cubbyhole/secret").token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 204, "delete");
    let r = each(
        &mut p,
        &one,
        |t| Call::get("cubbyhole/secret").token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 404, "read after delete");

    // A revoked token's cubbyhole is unreachable; a new token starts empty.
    let r = each(
        &mut p,
        &one,
        |t| Call::post("auth/token/revoke", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 204, "revoke token one");
    let r = each(
        &mut p,
        &one,
        |t| Call::get("cubbyhole/dir/inner").token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 403, "revoked token cannot read its cubbyhole");
    let (three, _) = create(
        &mut p,
        "auth/token/create",
        json!({"policies": ["default"]}),
    )
    .await;
    let r = each(&mut p, &three, |t| Call::list("cubbyhole/").token(t), &[]).await;
    p.expect_status(&r, 404, "a new token's cubbyhole is empty");
    let r = each(
        &mut p,
        &three,
        |t| Call::get("cubbyhole/dir/inner").token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 404, "a new token sees none of the old data");
    p.finish();
}

#[tokio::test]
async fn response_wrapping() {
    let mut p = differences::pair();
    p.check(Call::post("sys/mounts/kv1", kv1_mount()), &[])
        .await;
    p.check(Call::put("kv1/s", json!({"v": "x"})), &[]).await;
    let wrap = |call: Call, ttl: &str| call.header("X-Vault-Wrap-TTL", ttl);

    let r = p.check(wrap(Call::get("kv1/s"), "5m"), &[]).await;
    p.expect_status(&r, 200, "wrapped KV read");
    on_both(&mut p, &r, "wrapped KV read", |x| {
        let w = &x.body["wrap_info"];
        x.body["data"].is_null()
            && w["ttl"] == json!(300)
            && w["creation_path"] == json!("kv1/s")
            && w["token"].as_str().is_some_and(|t| !t.is_empty())
            && w["accessor"].as_str().is_some_and(|t| !t.is_empty())
            && w["creation_time"].is_string()
    });
    let kv_wrap = both(&r, "/wrap_info/token");
    let r = p.check(wrap(Call::get("kv1/s"), "300"), &[]).await;
    on_both(&mut p, &r, "wrap TTL in seconds", |x| {
        x.body["wrap_info"]["ttl"] == json!(300)
    });

    let r = p
        .check(
            wrap(
                Call::post("auth/token/create", json!({"policies": ["default"]})),
                "5m",
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "wrapped token create");
    on_both(&mut p, &r, "wrapped token create", |x| {
        x.body["auth"].is_null()
            && x.body["wrap_info"]["wrapped_accessor"]
                .as_str()
                .is_some_and(|a| !a.is_empty())
            && x.body["wrap_info"]["creation_path"] == json!("auth/token/create")
    });
    let tok_wrap = both(&r, "/wrap_info/token");

    let r = p
        .check(Call::post("sys/wrapping/wrap", json!({"foo": "bar"})), &[])
        .await;
    p.expect_status(&r, 400, "sys/wrapping/wrap without a TTL");
    let w1 = data_wrap(&mut p).await;

    let r = each(
        &mut p,
        &w1,
        |t| Call::post("sys/wrapping/lookup", json!({ "token": t })).anonymous(),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "anonymous wrapping lookup");
    on_both(&mut p, &r, "wrapping lookup", |x| {
        x.data("creation_path") == &json!("sys/wrapping/wrap")
            && x.data("creation_ttl") == &json!(300)
            && x.data("creation_time").is_string()
    });
    let r = p
        .check(
            Call::post("sys/wrapping/lookup", json!({"token": "nope"})).anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "lookup of a bad wrapping token");

    // Unwrap with the token in the header, then again.
    let r = each(
        &mut p,
        &w1,
        |t| Call::post("sys/wrapping/unwrap", json!({})).token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "unwrap with the token in the header");
    on_both(&mut p, &r, "unwrapped data", |x| {
        x.body["data"] == json!({"foo": "bar"})
    });
    let r = each(
        &mut p,
        &w1,
        |t| Call::post("sys/wrapping/unwrap", json!({})).token(t),
        &[],
    )
    .await;
    p.expect_status(&r, 400, "second unwrap with the spent token in the header");
    let r = each(
        &mut p,
        &w1,
        |t| Call::post("sys/wrapping/unwrap", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 400, "second unwrap with the spent token in the body");

    // Unwrap with the token in the body: the KV read and the token.
    let r = each(
        &mut p,
        &kv_wrap,
        |t| Call::post("sys/wrapping/unwrap", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "unwrap a KV read in the body");
    on_both(&mut p, &r, "unwrapped KV read", |x| {
        x.body["data"] == json!({"v": "x"}) && x.body["lease_duration"].is_number()
    });
    let r = each(
        &mut p,
        &tok_wrap,
        |t| Call::post("sys/wrapping/unwrap", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "unwrap a token");
    on_both(&mut p, &r, "unwrapped token", |x| {
        x.body["auth"]["client_token"].is_string()
            && x.body["auth"]["policies"] == json!(["default"])
    });
    let unwrapped = both(&r, "/auth/client_token");
    let r = each(&mut p, &unwrapped, lookup_self, &[]).await;
    p.expect_status(&r, 200, "the unwrapped token works");

    // Rewrap: the old token is spent, the new one unwraps the same data.
    let w2 = data_wrap(&mut p).await;
    let r = each(
        &mut p,
        &w2,
        |t| Call::post("sys/wrapping/rewrap", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "rewrap");
    on_both(&mut p, &r, "rewrap wrap_info", |x| {
        x.body["wrap_info"]["ttl"] == json!(300)
            && x.body["wrap_info"]["creation_path"] == json!("sys/wrapping/wrap")
    });
    let w3 = both(&r, "/wrap_info/token");
    let r = each(
        &mut p,
        &w2,
        |t| Call::post("sys/wrapping/unwrap", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 400, "unwrap after rewrap");
    let r = each(
        &mut p,
        &w3,
        |t| Call::post("sys/wrapping/unwrap", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "unwrap the rewrapped token");
    on_both(&mut p, &r, "rewrapped data", |x| {
        x.body["data"] == json!({"foo": "bar"})
    });

    // A wrapping token is good for the wrapping endpoints only.
    let w4 = data_wrap(&mut p).await;
    let r = each(&mut p, &w4, lookup_self, &[]).await;
    p.expect_status(&r, 403, "wrapping token on another path");
    let r = each(&mut p, &w4, |t| Call::get("kv1/s").token(t), &[]).await;
    p.expect_status(&r, 403, "wrapping token reading a secret");
    let r = each(
        &mut p,
        &w4,
        |t| Call::post("sys/wrapping/unwrap", json!({ "token": t })),
        &[],
    )
    .await;
    p.expect_status(&r, 400, "a wrapping token used elsewhere is spent");

    for ttl in ["abc", "-5", "5x"] {
        let r = p.check(wrap(Call::get("kv1/s"), ttl), &[]).await;
        p.expect_status(&r, 400, &format!("X-Vault-Wrap-TTL {ttl}"));
    }
    p.finish();
}

#[tokio::test]
async fn wrapping_ttl_bounds_in_policies() {
    let mut p = differences::pair();
    p.check(Call::post("sys/mounts/kv1", kv1_mount()), &[])
        .await;
    p.check(Call::put("kv1/wrapped", json!({"v": 1})), &[])
        .await;
    policy(
        &mut p,
        "bounded",
        "path \"kv1/wrapped\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"1m\"\n  max_wrapping_ttl = \"10m\"\n}\n",
    )
    .await;
    let (tok, _) = create(
        &mut p,
        "auth/token/create",
        json!({"policies": ["bounded"]}),
    )
    .await;
    let read = |ttl: Option<&'static str>| {
        move |t: &str| {
            let c = Call::get("kv1/wrapped").token(t);
            match ttl {
                Some(ttl) => c.header("X-Vault-Wrap-TTL", ttl),
                None => c,
            }
        }
    };
    for (ttl, status) in [
        (None, 403),
        (Some("30s"), 403),
        (Some("1h"), 403),
        (Some("5m"), 200),
        (Some("1m"), 200),
        (Some("10m"), 200),
    ] {
        let r = each(&mut p, &tok, read(ttl), &[]).await;
        p.expect_status(&r, status, &format!("read with wrap TTL {ttl:?}"));
    }
    p.finish();
}

#[tokio::test]
async fn leases_of_tokens() {
    let mut p = differences::pair();
    // An orphan root token, created outside auth/token/create, survives
    // the revoke-prefix at the end and serves as root from then on.
    let (admin, _) = create(
        &mut p,
        "auth/token/create-orphan",
        json!({"policies": ["root"]}),
    )
    .await;
    // The dev root token has a lease at auth/token/create too; the new
    // token's lease is the key that appears when it is created.
    let list = || Call::list("sys/leases/lookup/auth/token/create/");
    let before = p.check(list(), &[]).await;
    p.expect_status(&before, 200, "LIST token leases");
    let (tok, _) = create(&mut p, "auth/token/create", json!({"ttl": "1h"})).await;
    let after = p.check(list(), &[]).await;
    on_both(&mut p, &after, "one more token lease listed", |x| {
        server::str_list(x.data("keys")).len() == 2
    });
    let new_key = |before: &Reply, after: &Reply| {
        let old = server::str_list(before.data("keys"));
        let key = server::str_list(after.data("keys"))
            .into_iter()
            .find(|k| !old.contains(k))
            .unwrap_or_default();
        format!("auth/token/create/{key}")
    };
    let lease = (new_key(&before.0, &after.0), new_key(&before.1, &after.1));
    let (tok2, _) = create(&mut p, "auth/token/create", json!({"ttl": "1h"})).await;
    let (orphan, _) = create(&mut p, "auth/token/create-orphan", json!({"ttl": "1h"})).await;
    let r = p
        .check(Call::list("sys/leases/lookup/auth/token/create/"), &[])
        .await;
    on_both(&mut p, &r, "three token leases listed", |x| {
        server::str_list(x.data("keys")).len() == 3
    });
    let r = p
        .check(Call::list("sys/leases/lookup/auth/token/"), &[])
        .await;
    on_both(&mut p, &r, "LIST one level up", |x| {
        let keys = server::str_list(x.data("keys"));
        keys.contains(&"create/".to_string()) && keys.contains(&"create-orphan/".to_string())
    });
    let r = p.check(Call::list("sys/leases/lookup/nope/"), &[]).await;
    p.expect_status(&r, 404, "LIST of an unknown prefix");

    let r = each(
        &mut p,
        &lease,
        |l| Call::put("sys/leases/lookup", json!({ "lease_id": l })),
        &[],
    )
    .await;
    p.expect_status(&r, 200, "lookup a token lease");
    on_both(&mut p, &r, "token lease values", |x| {
        x.data("renewable") == &json!(true)
            && x.data("expire_time").is_string()
            && x.data("issue_time").is_string()
            && x.data("ttl")
                .as_u64()
                .is_some_and(|t| t > 3000 && t <= 3600)
    });
    let r = each(
        &mut p,
        &lease,
        |l| Call::put("sys/leases/renew", json!({ "lease_id": l })),
        &[],
    )
    .await;
    p.expect_status(&r, 400, "renew a token lease");
    on_both(&mut p, &r, "token lease renew message", |x| {
        errors_mention(x, "tokens cannot be renewed through this endpoint")
    });
    for (path, body, status) in [
        (
            "sys/leases/lookup",
            json!({"lease_id": "kv1/nope/abc"}),
            400,
        ),
        ("sys/leases/lookup", json!({}), 400),
        ("sys/leases/renew", json!({}), 400),
        ("sys/leases/revoke", json!({}), 400),
        ("sys/leases/renew", json!({"lease_id": "kv1/nope/abc"}), 400),
        (
            "sys/leases/revoke",
            json!({"lease_id": "kv1/nope/abc"}),
            204,
        ),
    ] {
        let r = p.check(Call::put(path, body.clone()), &[]).await;
        p.expect_status(&r, status, &format!("PUT {path} {body}"));
    }
    let r = p
        .check(
            Call::put("sys/leases/lookup", json!({"lease_id": "x"})).anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 403, "lease lookup without a token");

    // Revoking a token's lease revokes the token.
    let r = each(
        &mut p,
        &lease,
        |l| Call::put("sys/leases/revoke", json!({ "lease_id": l })),
        &[],
    )
    .await;
    p.expect_status(&r, 204, "revoke a token lease");
    let r = each(&mut p, &tok, lookup_self, &[]).await;
    p.expect_status(&r, 403, "the token of a revoked lease is gone");
    let r = each(&mut p, &tok2, lookup_self, &[]).await;
    p.expect_status(&r, 200, "the other token remains");

    let r = p.check(Call::put("sys/leases/tidy", json!({})), &[]).await;
    p.expect_status(&r, 202, "tidy");
    on_both(&mut p, &r, "tidy warns", has_warnings);

    // revoke-prefix: everything created at auth/token/create, the dev root
    // token included.
    let r = p
        .check(
            Call::put("sys/leases/revoke-prefix/auth/token/create", json!({})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "revoke-prefix");
    let r = each(&mut p, &tok2, lookup_self, &[]).await;
    p.expect_status(&r, 403, "revoke-prefix revoked the token");
    let r = p.check(Call::get("auth/token/lookup-self"), &[]).await;
    p.expect_status(&r, 403, "revoke-prefix revoked the dev root token");
    let r = each(&mut p, &orphan, lookup_self, &[]).await;
    p.expect_status(&r, 200, "tokens outside the prefix survive");
    p.bao.root_token = Some(admin.0);
    p.sr.root_token = Some(admin.1);
    let r = p
        .check(Call::list("sys/leases/lookup/auth/token/create/"), &[])
        .await;
    p.expect_status(&r, 404, "no leases left under the prefix");
    let r = p
        .check(Call::list("sys/leases/lookup/auth/token/"), &[])
        .await;
    on_both(&mut p, &r, "only create-orphan/ is left", |x| {
        x.data("keys") == &json!(["create-orphan/"])
    });
    p.finish();
}

#[tokio::test]
async fn acl_rules_over_http() {
    let mut p = differences::pair();
    p.check(Call::post("sys/mounts/kv1", kv1_mount()), &[])
        .await;
    for path in [
        "ro/x",
        "data/secret",
        "data/other",
        "a/conf",
        "a/b/conf",
        "conf",
        "team-a",
        "team-a/x",
        "teamx",
        "pub/secret",
        "pub/open",
    ] {
        p.check(Call::put(&format!("kv1/{path}"), json!({"v": path})), &[])
            .await;
    }
    policy(
        &mut p,
        "rules",
        "path \"kv1/ro/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n\
         path \"kv1/data/*\" {\n  capabilities = [\"read\", \"update\"]\n}\n\
         path \"kv1/+/conf\" {\n  capabilities = [\"read\"]\n}\n\
         path \"kv1/team-*\" {\n  capabilities = [\"read\"]\n}\n\
         path \"kv1/pub/*\" {\n  capabilities = [\"read\"]\n}\n\
         path \"kv1/pub/secret\" {\n  capabilities = [\"list\"]\n}\n",
    )
    .await;
    policy(
        &mut p,
        "denier",
        "path \"kv1/data/secret\" {\n  capabilities = [\"deny\"]\n}\n",
    )
    .await;
    let (tok, _) = create(
        &mut p,
        "auth/token/create",
        json!({"policies": ["rules", "denier"]}),
    )
    .await;
    let steps: Vec<(Call, u16)> = vec![
        (Call::get("kv1/ro/x"), 200),
        (Call::list("kv1/ro/"), 200),
        (Call::put("kv1/ro/x", json!({"v": 2})), 403),
        (Call::delete("kv1/ro/x"), 403),
        (Call::get("kv1/data/other"), 200),
        (Call::put("kv1/data/other", json!({"v": 2})), 204),
        (Call::put("kv1/data/new", json!({"v": 2})), 403),
        (Call::get("kv1/data/secret"), 403),
        (Call::put("kv1/data/secret", json!({"v": 2})), 403),
        (Call::get("kv1/a/conf"), 200),
        (Call::get("kv1/a/b/conf"), 403),
        (Call::get("kv1/conf"), 403),
        (Call::get("kv1/team-a"), 200),
        (Call::get("kv1/team-a/x"), 200),
        (Call::get("kv1/teamx"), 403),
        (Call::get("kv1/pub/open"), 200),
        (Call::get("kv1/pub/secret"), 403),
        (Call::get("kv1/missing"), 403),
        (Call::get("kv1/team-missing"), 404),
    ];
    for (call, status) in steps {
        let what = call.describe();
        let r = each(&mut p, &tok, |t| call.clone().token(t), &[]).await;
        p.expect_status(&r, status, &format!("ACL: {what}"));
    }
    let r = each(
        &mut p,
        &tok,
        |t| {
            Call::post(
                "sys/capabilities-self",
                json!({"paths": ["kv1/data/secret", "kv1/pub/secret", "kv1/a/conf", "kv1/data/x"]}),
            )
            .token(t)
        },
        &[],
    )
    .await;
    on_both(&mut p, &r, "capabilities-self", |x| {
        x.data("kv1/data/secret") == &json!(["deny"])
            && x.data("kv1/pub/secret") == &json!(["list"])
            && x.data("kv1/a/conf") == &json!(["read"])
            && x.data("kv1/data/x") == &json!(["read", "update"])
    });
    // Policy changes apply to live tokens.
    policy(
        &mut p,
        "denier",
        "path \"kv1/nothing\" {\n  capabilities = [\"deny\"]\n}\n",
    )
    .await;
    let r = each(&mut p, &tok, |t| Call::get("kv1/data/secret").token(t), &[]).await;
    p.expect_status(&r, 200, "deny lifted by rewriting the policy");
    let r = p.check(Call::delete("sys/policies/acl/rules"), &[]).await;
    p.expect_status(&r, 204, "delete policy");
    let r = each(&mut p, &tok, |t| Call::get("kv1/ro/x").token(t), &[]).await;
    p.expect_status(&r, 403, "a deleted policy grants nothing");
    p.finish();
}

/// Roles bind their tokens to CIDR blocks: a token is refused from an
/// address outside them (the tests connect from 127.0.0.1).
#[tokio::test]
async fn role_bound_cidrs() {
    let mut p = differences::pair();
    for (role, cidr) in [("local", "127.0.0.1/32"), ("far", "10.0.0.0/8")] {
        let r = p
            .check(
                Call::post(
                    &format!("auth/token/roles/{role}"),
                    json!({"token_bound_cidrs": [cidr], "allowed_policies": ["default"]}),
                ),
                &[],
            )
            .await;
        p.expect_status(&r, 204, &format!("write role {role}"));
    }
    let r = p.check(Call::get("auth/token/roles/far"), &[]).await;
    same_value(
        &mut p,
        &r,
        "/data/token_bound_cidrs",
        "bound CIDRs read back",
    );
    let (local, _) = create(&mut p, "auth/token/create/local", json!({})).await;
    let r = each(&mut p, &local, lookup_self, &[]).await;
    p.expect_status(&r, 200, "token bound to 127.0.0.1 used from 127.0.0.1");
    let (far, _) = create(&mut p, "auth/token/create/far", json!({})).await;
    let r = each(&mut p, &far, lookup_self, &[]).await;
    p.expect_status(&r, 403, "token bound to 10.0.0.0/8 used from 127.0.0.1");
    p.finish();
}

/// The leases of login tokens (AppRole), the URL forms of revoke,
/// `revoke-force`, and OpenBao's sudo rules on `sys/leases/*`: listing,
/// `revoke-prefix` and `revoke-force` need sudo; lookup and revoke of one
/// lease do not.
#[tokio::test]
async fn leases_of_logins_and_their_sudo_rules() {
    let mut p = differences::pair();
    let r = p
        .check(
            Call::post("sys/auth/approle", json!({"type": "approle"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "enable approle");
    let r = p
        .check(
            Call::post("auth/approle/role/app", json!({"token_ttl": "1h"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "approle role");
    let role_id = both(
        &p.check(Call::get("auth/approle/role/app/role-id"), &[])
            .await,
        "/data/role_id",
    );
    let first = approle_login(&mut p, &role_id).await;
    let second = approle_login(&mut p, &role_id).await;
    let third = approle_login(&mut p, &role_id).await;
    let r = p
        .check(Call::list("sys/leases/lookup/auth/approle/login/"), &[])
        .await;
    p.expect_status(&r, 200, "LIST login leases");
    on_both(&mut p, &r, "three login leases", |x| {
        server::str_list(x.data("keys")).len() == 3
    });
    let keys = (
        server::str_list(r.0.data("keys")),
        server::str_list(r.1.data("keys")),
    );

    // A token that may do anything under sys/leases/ but has no sudo.
    policy(
        &mut p,
        "leases-nosudo",
        r#"path "sys/leases/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#,
    )
    .await;
    let (plain, _) = create(
        &mut p,
        "auth/token/create",
        json!({"policies": ["leases-nosudo"]}),
    )
    .await;
    let as_plain = |call: Call, t: &Two| (call.clone().token(&t.0), call.token(&t.1));
    for (call, what) in [
        (Call::list("sys/leases/lookup/auth/approle/login/"), "LIST"),
        (
            Call::put("sys/leases/revoke-prefix/auth/approle/login", json!({})),
            "revoke-prefix",
        ),
        (
            Call::put("sys/leases/revoke-force/auth/approle/login", json!({})),
            "revoke-force",
        ),
    ] {
        let (a, b) = as_plain(call, &plain);
        let r = p.check_each(a, b, &[]).await;
        p.expect_status(&r, 403, &format!("{what} without sudo"));
    }
    // One lease: lookup and revoke (URL form) need no sudo.
    let lease = (
        format!("auth/approle/login/{}", keys.0[0]),
        format!("auth/approle/login/{}", keys.1[0]),
    );
    let r = p
        .check_each(
            Call::put("sys/leases/lookup", json!({"lease_id": lease.0})).token(&plain.0),
            Call::put("sys/leases/lookup", json!({"lease_id": lease.1})).token(&plain.1),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "lookup of one login lease without sudo");
    on_both(&mut p, &r, "login lease values", |x| {
        x.data("ttl")
            .as_u64()
            .is_some_and(|t| t > 3000 && t <= 3600)
            && x.data("renewable") == &json!(true)
    });
    let r = p
        .check_each(
            Call::put(&format!("sys/leases/revoke/{}", lease.0), json!({})).token(&plain.0),
            Call::put(&format!("sys/leases/revoke/{}", lease.1), json!({})).token(&plain.1),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "revoke one lease by URL without sudo");
    let r = p
        .check(Call::list("sys/leases/lookup/auth/approle/login/"), &[])
        .await;
    on_both(&mut p, &r, "two login leases left", |x| {
        server::str_list(x.data("keys")).len() == 2
    });
    let alive = [&first, &second, &third]
        .into_iter()
        .map(|t| (t.0.clone(), t.1.clone()))
        .collect::<Vec<_>>();
    let mut live = (0, 0);
    // Which login the revoked lease belonged to differs between the two
    // servers (keys sort by their random ids): count, do not pair.
    for t in &alive {
        live.0 += usize::from(p.bao.send(&lookup_self(&t.0)).await.status == 200);
        live.1 += usize::from(p.sr.send(&lookup_self(&t.1)).await.status == 200);
    }
    assert_eq!(
        live,
        (2, 2),
        "exactly the revoked lease's token is gone (openbao, strongroom)"
    );

    // revoke-force, as root: every login token under the prefix goes.
    let r = p
        .check(
            Call::put("sys/leases/revoke-force/auth/approle/login", json!({})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "revoke-force");
    for t in &alive {
        let r = each(&mut p, t, lookup_self, &[]).await;
        p.expect_status(&r, 403, "a login token after revoke-force");
    }
    let r = p
        .check(Call::list("sys/leases/lookup/auth/approle/login/"), &[])
        .await;
    p.expect_status(&r, 404, "no login leases left");
    p.finish();
}

/// A new secret id for role `app` and a login with it on both servers:
/// the two client tokens.
async fn approle_login(p: &mut Pair, role_id: &Two) -> Two {
    let secret = both(
        &p.check(
            Call::post("auth/approle/role/app/secret-id", json!({})),
            &[],
        )
        .await,
        "/data/secret_id",
    );
    let login = |role: &str, secret: &str| {
        Call::post(
            "auth/approle/login",
            json!({"role_id": role, "secret_id": secret}),
        )
        .anonymous()
    };
    let r = p
        .check_each(
            login(&role_id.0, &secret.0),
            login(&role_id.1, &secret.1),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "approle login");
    both(&r, "/auth/client_token")
}
