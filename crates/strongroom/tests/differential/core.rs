//! Differential tests of the core: sys status endpoints, tokens and
//! routing errors, mounts, auth methods, policies, kv v1, seal/unseal and
//! init from a config file.

use crate::differences;
use serde_json::{json, Value};
use strongroom_test::diff::{on_both, Pair};
use strongroom_test::server;
use strongroom_test::server::{Call, Config, Listener, Reply};

fn kv1_mount() -> Value {
    json!({"type": "kv", "options": {"version": "1"}, "description": "differential kv v1"})
}

fn is_4xx(r: &Reply) -> bool {
    (400..500).contains(&r.status)
}

#[tokio::test]
async fn dev_sys_status_endpoints() {
    let mut p = differences::pair();
    let r = p.check(Call::get("sys/seal-status").anonymous(), &[]).await;
    p.expect_status(&r, 200, "seal-status");
    p.expect(
        r.1.body["sealed"] == json!(false),
        "seal-status: sealed should be false",
    );
    p.expect(r.1.body["t"] == json!(1), "dev seal-status: t == 1");
    let r = p.check(Call::get("sys/init").anonymous(), &[]).await;
    p.expect(r.1.body == json!({"initialized": true}), "GET sys/init");
    let r = p.check(Call::get("sys/health").anonymous(), &[]).await;
    p.expect_status(&r, 200, "health");
    for (query, status) in [
        ("activecode=201", 201),
        ("standbyok=true&perfstandbyok=true", 200),
        ("sealedcode=299&uninitcode=298", 200),
        ("activecode=abc", 400),
        ("standbycode=abc", 400),
        ("standbyok=maybe", 400),
    ] {
        let r = p
            .check(Call::get(&format!("sys/health?{query}")).anonymous(), &[])
            .await;
        p.expect_status(&r, status, &format!("health?{query}"));
    }
    let r = p
        .check(Call::new("HEAD", "sys/health").anonymous(), &[])
        .await;
    p.expect_status(&r, 200, "HEAD sys/health");
    let r = p.check(Call::get("sys/leader").anonymous(), &[]).await;
    p.expect(
        r.1.body["ha_enabled"] == json!(false),
        "leader: ha_enabled false",
    );
    let r = p.check(Call::get("sys/key-status"), &[]).await;
    p.expect(r.1.data("term") == &json!(1), "key-status term 1");
    let r = p.check(Call::put("sys/rotate", json!({})), &[]).await;
    p.expect_status(&r, 204, "rotate");
    let r = p.check(Call::get("sys/key-status"), &[]).await;
    p.expect(
        r.1.data("term") == &json!(2),
        "key-status term 2 after rotate",
    );
    p.check(Call::get("sys/key-status").anonymous(), &[]).await;
    // OpenBao 2.x's names: rotate/keyring adds a term as rotate does;
    // rotate/root replaces the root key (no shares) and needs sudo.
    let r = p
        .check(Call::post("sys/rotate/keyring", json!({})), &[])
        .await;
    p.expect_status(&r, 204, "rotate/keyring");
    let r = p.check(Call::get("sys/key-status"), &[]).await;
    p.expect(
        r.1.data("term") == &json!(3),
        "key-status term 3 after rotate/keyring",
    );
    let r = p.check(Call::post("sys/rotate/root", json!({})), &[]).await;
    p.expect_status(&r, 204, "rotate/root");
    let r = p
        .check(Call::post("sys/rotate/root", json!({})).anonymous(), &[])
        .await;
    p.expect_status(&r, 403, "rotate/root without a token");
    let r = p
        .check(
            Call::put("sys/mounts/after-root-rotation", json!({"type": "kv"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "writes go on after a root key rotation");
    // The whole-server OpenAPI document: its top level is compared; the
    // operations are Strongroom's own (as for help answers).
    let r = p
        .check(
            Call::get("sys/internal/specs/openapi").anonymous(),
            differences::OPENAPI,
        )
        .await;
    p.expect_status(&r, 200, "openapi document");
    for help in ["sys/seal-status?help=1", "sys/mounts?help=1"] {
        let r = p.check(Call::get(help), differences::HELP).await;
        p.expect(r.1.body["help"].is_string(), format!("{help}: help string"));
    }
    // Unsupported methods.
    for (m, path) in [
        ("DELETE", "sys/seal-status"),
        ("POST", "sys/seal-status"),
        ("PUT", "sys/leader"),
        ("DELETE", "sys/init"),
        ("POST", "sys/health"),
        ("GET", "sys/seal"),
        ("GET", "sys/unseal"),
        ("GET", "sys/rotate"),
        ("DELETE", "sys/mounts"),
    ] {
        let r = p.check(Call::new(m, path), &[]).await;
        p.expect_status(&r, 405, &format!("{m} {path}"));
    }
    // OpenBao's own handlers refuse the method before the token.
    let r = p.check(Call::get("sys/seal").anonymous(), &[]).await;
    p.expect_status(&r, 405, "GET sys/seal without a token");
    p.finish();
}

#[tokio::test]
async fn dev_tokens_and_routing_errors() {
    let mut p = differences::pair();
    for path in [
        "sys/mounts",
        "auth/token/lookup-self",
        "secret/foo",
        "nope/x",
    ] {
        let r = p.check(Call::get(path).anonymous(), &[]).await;
        p.expect_status(&r, 403, &format!("{path} without token"));
        let r = p.check(Call::get(path).token("not-a-token"), &[]).await;
        p.expect_status(&r, 403, &format!("{path} with a bad token"));
        let r = p.check(Call::get(path).bearer("not-a-token"), &[]).await;
        p.expect_status(&r, 403, &format!("{path} with a bad bearer token"));
    }
    let r = p.check(Call::get("auth/token/lookup-self"), &[]).await;
    p.expect_status(&r, 200, "lookup-self");
    p.expect(
        r.1.data("policies") == &json!(["root"]),
        "lookup-self: policies [root]",
    );
    let token = server::DEV_ROOT_TOKEN;
    p.expect(r.1.data("id") == &json!(token), "lookup-self: id");
    let r = p
        .check(Call::get("auth/token/lookup-self").bearer(token), &[])
        .await;
    p.expect_status(&r, 200, "lookup-self with Authorization: Bearer");
    let r = p.check(Call::get("nope/x"), &[]).await;
    p.expect_status(&r, 404, "unknown path");
    let r = p.check(Call::list("sys/mounts"), &[]).await;
    p.expect_status(&r, 404, "LIST sys/mounts");
    let r = p
        .check(
            Call::get("sys/mounts").header("X-Vault-Namespace", "team-a"),
            differences::OTHER_NAMESPACE,
        )
        .await;
    p.expect(is_4xx(&r.1), format!("namespace team-a: {:?}", r.1));
    for ns in ["root", "root/"] {
        let r = p
            .check(Call::get("sys/mounts").header("X-Vault-Namespace", ns), &[])
            .await;
        p.expect_status(&r, 200, &format!("namespace {ns}"));
    }
    p.finish();
}

#[tokio::test]
async fn dev_secrets_engine_lifecycle() {
    let mut p = differences::pair();
    let (_, r) = p.check(Call::get("sys/mounts"), &[]).await;
    p.expect(
        r.data("sys/")["type"] == json!("system"),
        "sys/ mount listed",
    );
    p.check(Call::get("sys/mounts/sys/tune"), &[]).await;
    p.check(Call::get("sys/internal/ui/mounts"), &[]).await;
    p.check(Call::get("sys/internal/ui/mounts").anonymous(), &[])
        .await;
    p.check(Call::get("sys/internal/ui/mounts/sys"), &[]).await;

    let r = p
        .check(Call::post("sys/mounts/kv1", kv1_mount()), &[])
        .await;
    p.expect_status(&r, 204, "enable kv1");
    let r = p
        .check(Call::post("sys/mounts/kv1", kv1_mount()), &[])
        .await;
    p.expect_status(&r, 400, "enable kv1 twice");
    let r = p
        .check(
            Call::post("sys/mounts/gen", json!({"type": "generic"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "enable generic");
    for (path, body) in [
        ("sys/mounts/bad1", json!({"type": "no-such-engine"})),
        ("sys/mounts/bad2", json!({"type": 5})),
        ("sys/mounts/bad3", json!({})),
        (
            "sys/mounts/bad4",
            json!({"type": "kv", "config": "notamap"}),
        ),
        (
            "sys/mounts/bad5",
            json!({"type": "kv", "config": {"default_lease_ttl": "abc"}}),
        ),
        ("sys/mounts/kv1/nested", kv1_mount()),
    ] {
        let r = p.check(Call::post(path, body.clone()), &[]).await;
        p.expect_status(&r, 400, &format!("POST {path} {body}"));
    }
    let r = p
        .check(Call::new("POST", "sys/mounts/bad6").raw("{not json"), &[])
        .await;
    p.expect_status(&r, 400, "malformed JSON");
    let r = p
        .check(Call::new("PUT", "sys/mounts/bad7").raw("[1,2]"), &[])
        .await;
    p.expect_status(&r, 400, "array body");

    let r = p.check(Call::get("sys/mounts/kv1"), &[]).await;
    p.expect(
        r.1.data("options") == &json!({"version": "1"}) && r.1.data("type") == &json!("kv"),
        "GET sys/mounts/kv1",
    );
    let r = p.check(Call::get("sys/mounts/nothere"), &[]).await;
    p.expect_status(&r, 400, "GET missing mount");
    let r = p.check(Call::get("sys/mounts/kv1/tune"), &[]).await;
    p.expect(
        r.1.data("default_lease_ttl") == &json!(2_764_800),
        "kv1 tune default ttl 768h",
    );
    let r = p
        .check(
            Call::post(
                "sys/mounts/kv1/tune",
                json!({"default_lease_ttl": "1h", "description": "tuned"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "tune kv1");
    let r = p.check(Call::get("sys/mounts/kv1/tune"), &[]).await;
    p.expect(
        r.1.data("default_lease_ttl") == &json!(3600),
        "kv1 tuned default ttl",
    );
    p.expect(
        r.1.data("description") == &json!("tuned"),
        "kv1 tuned description",
    );
    for body in [
        json!({"default_lease_ttl": "abc"}),
        json!({"max_lease_ttl": [1]}),
    ] {
        let r = p
            .check(Call::post("sys/mounts/kv1/tune", body.clone()), &[])
            .await;
        p.expect_status(&r, 400, &format!("bad tune {body}"));
    }
    let r = p.check(Call::get("sys/mounts/nothere/tune"), &[]).await;
    p.expect_status(&r, 400, "tune of missing mount");
    let r = p
        .check(
            Call::post(
                "sys/mounts/nothere/tune",
                json!({"default_lease_ttl": "1h"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "write tune of missing mount");
    let r = p.check(Call::get("sys/internal/ui/mounts/kv1"), &[]).await;
    p.expect(r.1.data("path") == &json!("kv1/"), "ui mount path");
    p.check(Call::get("sys/internal/ui/mounts/kv1/some/secret"), &[])
        .await;
    let r = p
        .check(Call::get("sys/internal/ui/mounts/nothere"), &[])
        .await;
    p.expect_status(&r, 403, "ui mount of missing path");
    let (_, r) = p.check(Call::get("sys/mounts"), &[]).await;
    p.expect(r.data("kv1/").is_object(), "kv1/ listed");

    let r = p.check(Call::delete("sys/mounts/kv1"), &[]).await;
    p.expect_status(&r, 204, "disable kv1");
    let r = p.check(Call::get("sys/mounts/kv1"), &[]).await;
    p.expect_status(&r, 400, "GET disabled mount");
    let r = p.check(Call::delete("sys/mounts/nothere"), &[]).await;
    p.expect_status(&r, 204, "disable missing mount");
    let r = p.check(Call::delete("sys/mounts/sys"), &[]).await;
    p.expect_status(&r, 400, "disable sys/");
    p.finish();
}

#[tokio::test]
async fn dev_auth_methods() {
    let mut p = differences::pair();
    let (_, r) = p.check(Call::get("sys/auth"), &[]).await;
    p.expect(r.data("token/")["type"] == json!("token"), "token/ listed");
    p.check(Call::get("sys/auth/token"), &[]).await;
    let r = p.check(Call::get("sys/auth/token/tune"), &[]).await;
    p.expect(
        r.1.data("token_type") == &json!("default-service"),
        "token tune",
    );
    let r = p
        .check(
            Call::post("sys/auth/token/tune", json!({"default_lease_ttl": "1h"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "tune token/");
    let r = p.check(Call::get("sys/auth/token/tune"), &[]).await;
    p.expect(r.1.data("default_lease_ttl") == &json!(3600), "token tuned");
    for body in [json!({"type": "no-such-method"}), json!({})] {
        let r = p.check(Call::post("sys/auth/foo", body.clone()), &[]).await;
        p.expect_status(&r, 400, &format!("enable auth {body}"));
    }
    let r = p.check(Call::delete("sys/auth/token"), &[]).await;
    p.expect_status(&r, 400, "disable token/");
    let r = p.check(Call::delete("sys/auth/nothere"), &[]).await;
    p.expect_status(&r, 204, "disable missing auth");
    let r = p.check(Call::get("sys/auth/nothere/tune"), &[]).await;
    p.expect_status(&r, 400, "tune missing auth");
    let r = p
        .check(
            Call::post("sys/auth/nothere/tune", json!({"default_lease_ttl": "1h"})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "write tune of missing auth");
    p.check(Call::get("sys/auth").anonymous(), &[]).await;
    p.finish();
}

#[tokio::test]
async fn dev_acl_policy_store() {
    let mut p = differences::pair();
    let policy = "path \"secret/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n";
    let r = p.check(Call::get("sys/policy"), &[]).await;
    p.expect(
        r.1.data("keys") == &json!(["default", "root"]),
        "policy list",
    );
    let r = p.check(Call::list("sys/policies/acl"), &[]).await;
    p.expect(r.1.data("keys") == &json!(["default", "root"]), "acl list");
    p.check(Call::get("sys/policies/acl?list=true"), &[]).await;
    let r = p.check(Call::get("sys/policies/acl"), &[]).await;
    p.expect_status(&r, 405, "GET sys/policies/acl without list");
    for name in ["default", "root"] {
        p.check(Call::get(&format!("sys/policies/acl/{name}")), &[])
            .await;
        p.check(Call::get(&format!("sys/policy/{name}")), &[]).await;
    }
    let r = p
        .check(
            Call::put("sys/policies/acl/Reader", json!({"policy": policy})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "write policy");
    let r = p.check(Call::get("sys/policies/acl/reader"), &[]).await;
    p.expect(r.1.data("version") == &json!(1), "version 1");
    p.expect(r.1.data("policy") == &json!(policy), "text kept as written");
    let r = p
        .check(
            Call::put(
                "sys/policies/acl/reader",
                json!({"policy": policy, "cas": 0}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "cas mismatch");
    let r = p
        .check(
            Call::put(
                "sys/policies/acl/reader",
                json!({"policy": policy, "cas": 1}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "cas match");
    let r = p
        .check(
            Call::put("sys/policy/legacy", json!({"rules": policy})),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "legacy write warns");
    p.check(Call::get("sys/policy/legacy"), &[]).await;
    for (name, body) in [
        ("root", json!({"policy": policy})),
        (
            "bad",
            json!({"policy": "path \"a\" {\n capabilities = [\"fly\"]\n}"}),
        ),
        ("bad", json!({"policy": "path \"a\" {"})),
        ("empty", json!({})),
    ] {
        let r = p
            .check(
                Call::put(&format!("sys/policies/acl/{name}"), body.clone()),
                &[],
            )
            .await;
        p.expect_status(&r, 400, &format!("refused {name} {body}"));
    }
    let r = p.check(Call::get("sys/policies/acl/bad"), &[]).await;
    p.expect_status(&r, 404, "a refused policy is not stored");
    let r = p.check(Call::delete("sys/policies/acl/default"), &[]).await;
    p.expect_status(&r, 400, "default cannot be deleted");
    let r = p.check(Call::delete("sys/policies/acl/reader"), &[]).await;
    p.expect_status(&r, 204, "delete");
    let r = p.check(Call::delete("sys/policies/acl/reader"), &[]).await;
    p.expect_status(&r, 204, "delete again");
    let r = p.check(Call::get("sys/policies/acl/reader"), &[]).await;
    p.expect_status(&r, 404, "deleted");
    p.finish();
}

#[tokio::test]
async fn dev_tokens_with_policies() {
    let mut p = differences::pair();
    p.check(Call::post("sys/mounts/kv1", kv1_mount()), &[])
        .await;
    let policy = "path \"kv1/app/*\" {\n  capabilities = [\"create\", \"read\", \"list\"]\n}\npath \"kv1/admin\" {\n  capabilities = [\"deny\"]\n}\n";
    p.check(
        Call::put("sys/policies/acl/app", json!({"policy": policy})),
        &[],
    )
    .await;
    let r = p
        .check(
            Call::post(
                "auth/token/create",
                json!({"policies": ["app"], "ttl": "1h", "meta": {"team": "a"}, "display_name": "web"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "create token");
    let created = r.clone();
    let token_of = |reply: &Reply| {
        reply.body["auth"]["client_token"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (bao_token, sr_token) = (token_of(&r.0), token_of(&r.1));
    p.expect(
        r.1.body["auth"]["policies"] == json!(["app", "default"]),
        "token policies",
    );
    // The same token-specific calls on both servers.
    let steps: Vec<(Call, u16)> = vec![
        (Call::get("auth/token/lookup-self"), 200),
        (Call::put("kv1/app/one", json!({"v": "1"})), 204),
        (Call::put("kv1/app/one", json!({"v": "2"})), 403),
        (Call::get("kv1/app/one"), 200),
        (Call::list("kv1/app"), 200),
        (Call::delete("kv1/app/one"), 403),
        (Call::get("kv1/admin"), 403),
        (Call::get("kv1/other"), 403),
        (Call::get("sys/mounts"), 403),
        (
            Call::post(
                "sys/capabilities-self",
                json!({"paths": ["kv1/app/x", "kv1/admin", "sys/mounts"]}),
            ),
            200,
        ),
        (
            Call::post("sys/capabilities-self", json!({"path": "kv1/app/x"})),
            200,
        ),
        (
            Call::post("auth/token/create", json!({"policies": ["root"]})),
            403,
        ),
    ];
    for (call, status) in steps {
        let what = call.describe();
        let r = p
            .check_each(call.clone().token(&bao_token), call.token(&sr_token), &[])
            .await;
        p.expect_status(&r, status, &format!("app token: {what}"));
    }
    let caps = Call::post(
        "sys/capabilities-self",
        json!({"paths": ["kv1/app/x", "kv1/admin"]}),
    );
    let r = p
        .check_each(caps.clone().token(&bao_token), caps.token(&sr_token), &[])
        .await;
    p.expect(
        r.1.data("kv1/app/x") == &json!(["create", "list", "read"])
            && r.1.data("kv1/admin") == &json!(["deny"]),
        "capabilities-self values",
    );
    // The same token named by id (lookup, capabilities) and by accessor.
    let accessor_of = |reply: &Reply| {
        reply.body["auth"]["accessor"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (bao_accessor, sr_accessor) = (accessor_of(&created.0), accessor_of(&created.1));
    let lookup = |t: &str| Call::post("auth/token/lookup", json!({"token": t}));
    let r = p
        .check_each(lookup(&bao_token), lookup(&sr_token), &[])
        .await;
    p.expect(
        r.1.data("policies") == &json!(["app", "default"]),
        "lookup by id",
    );
    p.expect(r.1.data("meta") == &json!({"team": "a"}), "lookup meta");
    let caps = |t: &str| {
        Call::post(
            "sys/capabilities",
            json!({"token": t, "paths": ["kv1/app/x"]}),
        )
    };
    let r = p.check_each(caps(&bao_token), caps(&sr_token), &[]).await;
    p.expect(
        r.1.data("kv1/app/x") == &json!(["create", "list", "read"]),
        "capabilities",
    );
    let by_accessor = |a: &str| {
        Call::post(
            "sys/capabilities-accessor",
            json!({"accessor": a, "paths": ["kv1/admin"]}),
        )
    };
    let r = p
        .check_each(by_accessor(&bao_accessor), by_accessor(&sr_accessor), &[])
        .await;
    p.expect(
        r.1.data("kv1/admin") == &json!(["deny"]),
        "capabilities-accessor",
    );
    let r = p
        .check(
            Call::post(
                "sys/capabilities-accessor",
                json!({"accessor": "nope", "paths": ["a"]}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "capabilities of an unknown accessor");
    let r = p
        .check(
            Call::post("sys/capabilities", json!({"token": "nope", "paths": ["a"]})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "capabilities of an unknown token");
    let r = p
        .check(
            Call::post("auth/token/create", json!({"ttl": "forever"})),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "bad ttl");
    p.finish();
}

/// A LIST of `dir/` is decided by an exact `dir` rule before any pattern
/// (so `read` on `kv1/dir` refuses the listing even with `list` on
/// `kv1/dir/*`), and `sys/capabilities-self` of `dir/` answers that rule.
#[tokio::test]
async fn dev_list_of_a_folder_uses_the_exact_rule_without_the_slash() {
    let mut p = differences::pair();
    p.check(Call::post("sys/mounts/kv1", kv1_mount()), &[])
        .await;
    let policy = "path \"kv1/dir\" { capabilities = [\"read\"] }\npath \"kv1/dir/*\" { capabilities = [\"list\"] }\npath \"kv1/open/*\" { capabilities = [\"list\"] }\n";
    p.check(
        Call::put("sys/policies/acl/folders", json!({"policy": policy})),
        &[],
    )
    .await;
    p.check(Call::put("kv1/dir/sub/a", json!({"v": "1"})), &[])
        .await;
    p.check(Call::put("kv1/open/a", json!({"v": "1"})), &[])
        .await;
    let r = p
        .check(
            Call::post("auth/token/create", json!({"policies": ["folders"]})),
            &[],
        )
        .await;
    let token_of = |reply: &Reply| {
        reply.body["auth"]["client_token"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (bao_token, sr_token) = (token_of(&r.0), token_of(&r.1));
    let steps: Vec<(Call, u16)> = vec![
        (Call::list("kv1/dir/"), 403),
        (Call::list("kv1/dir/sub/"), 200),
        (Call::list("kv1/open/"), 200),
        (
            Call::post(
                "sys/capabilities-self",
                json!({"paths": ["kv1/dir/", "kv1/dir", "kv1/open/", "kv1/dir/sub/"]}),
            ),
            200,
        ),
    ];
    for (call, status) in steps {
        let what = call.describe();
        let r = p
            .check_each(call.clone().token(&bao_token), call.token(&sr_token), &[])
            .await;
        p.expect_status(&r, status, &format!("folders token: {what}"));
        if what.contains("capabilities") {
            for path in ["kv1/dir/", "kv1/dir", "kv1/open/", "kv1/dir/sub/"] {
                p.expect(
                    r.0.data(path) == r.1.data(path),
                    format!(
                        "capabilities of {path}: {} vs {}",
                        r.0.data(path),
                        r.1.data(path)
                    ),
                );
            }
        }
    }
}

#[tokio::test]
async fn dev_kv_v1() {
    let mut p = differences::pair();
    let r = p
        .check(Call::post("sys/mounts/kv1", kv1_mount()), &[])
        .await;
    p.expect_status(&r, 204, "enable kv1");
    let value = json!({"foo": "bar", "n": 1, "f": 1.5, "t": true, "nil": null,
                       "list": [1, "two", {"three": 3}], "obj": {"a": {"b": []}}});
    let r = p
        .check(Call::put("kv1/app/config", value.clone()), &[])
        .await;
    p.expect_status(&r, 204, "write");
    let r = p.check(Call::post("kv1/top", json!({"k": "v"})), &[]).await;
    p.expect_status(&r, 204, "write with POST");
    let r = p.check(Call::get("kv1/app/config"), &[]).await;
    p.expect(
        r.1.body["data"] == value,
        format!("read back: {}", r.1.body),
    );
    p.expect(
        r.1.body["lease_duration"] == json!(2_764_800),
        "kv read lease_duration",
    );
    let r = p
        .check(
            Call::get("kv1/app/config").bearer(server::DEV_ROOT_TOKEN),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "read with Bearer");
    let r = p
        .check(Call::put("kv1/app/config", json!({"foo": "baz"})), &[])
        .await;
    p.expect_status(&r, 204, "overwrite");
    let r = p.check(Call::get("kv1/app/config"), &[]).await;
    p.expect(
        r.1.body["data"] == json!({"foo": "baz"}),
        "overwrite replaces",
    );
    for list in [
        Call::list("kv1/"),
        Call::list("kv1"),
        Call::get("kv1/?list=true"),
    ] {
        let r = p.check(list.clone(), &[]).await;
        p.expect(
            r.1.data("keys") == &json!(["app/", "top"]),
            format!("{}: {}", list.describe(), r.1.body),
        );
    }
    let r = p.check(Call::list("kv1/app"), &[]).await;
    p.expect(r.1.data("keys") == &json!(["config"]), "list folder");
    let r = p.check(Call::list("kv1/nothing"), &[]).await;
    p.expect_status(&r, 404, "list missing folder");
    let r = p.check(Call::get("kv1/missing"), &[]).await;
    p.expect_status(&r, 404, "read missing");
    p.expect(r.1.body == json!({"errors": []}), "read missing body");
    let r = p
        .check(Call::get("kv1/app/config?help=1"), differences::HELP)
        .await;
    p.expect(r.1.body["help"].is_string(), "kv help");
    let r = p.check(Call::put("kv1/empty", json!({})), &[]).await;
    p.expect_status(&r, 400, "empty write");
    let r = p
        .check(Call::new("PUT", "kv1/bad").raw("{\"a\": "), &[])
        .await;
    p.expect_status(&r, 400, "malformed JSON");
    let r = p.check(Call::new("PUT", "kv1/bad").raw("[1]"), &[]).await;
    p.expect_status(&r, 400, "array body");
    let r = p.check(Call::get("kv1/top").anonymous(), &[]).await;
    p.expect_status(&r, 403, "read without token");
    let r = p
        .check(Call::put("kv1/top", json!({"x": 1})).token("bad"), &[])
        .await;
    p.expect_status(&r, 403, "write with bad token");
    let r = p.check(Call::delete("kv1/app/config"), &[]).await;
    p.expect_status(&r, 204, "delete");
    let r = p.check(Call::get("kv1/app/config"), &[]).await;
    p.expect_status(&r, 404, "read deleted");
    let r = p.check(Call::delete("kv1/app/config"), &[]).await;
    p.expect_status(&r, 204, "delete again");
    let r = p.check(Call::list("kv1/"), &[]).await;
    p.expect(r.1.data("keys") == &json!(["top"]), "list after delete");
    // A `generic` mount is KV v1 under its old name.
    p.check(
        Call::post("sys/mounts/gen", json!({"type": "generic"})),
        &[],
    )
    .await;
    p.check(Call::put("gen/a", json!({"v": 1})), &[]).await;
    let r = p.check(Call::get("gen/a"), &[]).await;
    p.expect(r.1.data("v") == &json!(1), "generic read back");
    p.finish();
}

#[tokio::test]
async fn dev_seal_and_unseal() {
    let mut p = differences::pair();
    p.check(Call::post("sys/mounts/kv1", kv1_mount()), &[])
        .await;
    p.check(Call::put("kv1/s", json!({"v": "kept"})), &[]).await;
    let r = p
        .check(Call::put("sys/seal", json!({})).anonymous(), &[])
        .await;
    p.expect_status(&r, 403, "seal without token");
    let r = p.check(Call::put("sys/seal", json!({})), &[]).await;
    p.expect_status(&r, 204, "seal");
    let r = p.check(Call::get("sys/seal-status"), &[]).await;
    p.expect(r.1.body["sealed"] == json!(true), "sealed");
    for path in [
        "sys/mounts",
        "kv1/s",
        "sys/auth",
        "auth/token/lookup-self",
        "sys/key-status",
    ] {
        let r = p.check(Call::get(path), &[]).await;
        p.expect_status(&r, 503, &format!("{path} while sealed"));
    }
    let r = p.check(Call::get("sys/health"), &[]).await;
    p.expect_status(&r, 503, "health while sealed");
    let r = p.check(Call::get("sys/health?sealedcode=299"), &[]).await;
    p.expect_status(&r, 299, "health sealedcode");
    let r = p.check(Call::get("sys/leader"), &[]).await;
    p.expect_status(&r, 200, "leader while sealed");
    let r = p.check(Call::get("sys/init"), &[]).await;
    p.expect_status(&r, 200, "init while sealed");
    for body in [
        json!({}),
        json!({"key": "zz-not-a-key"}),
        json!({"key": "abc"}),
    ] {
        let r = p.check(Call::put("sys/unseal", body.clone()), &[]).await;
        p.expect_status(&r, 400, &format!("unseal {body}"));
    }
    let r = p
        .check(Call::put("sys/unseal", json!({"reset": true})), &[])
        .await;
    p.expect_status(&r, 200, "unseal reset");
    let ka = p.bao.unseal_keys.first().cloned().unwrap_or_default();
    let kb = p.sr.unseal_keys.first().cloned().unwrap_or_default();
    let r = p
        .check_each(
            Call::put("sys/unseal", json!({ "key": ka })).anonymous(),
            Call::put("sys/unseal", json!({ "key": kb })).anonymous(),
            &[],
        )
        .await;
    p.expect(
        r.1.body["sealed"] == json!(false),
        "unsealed with the dev key",
    );
    let r = p.check(Call::get("kv1/s"), &[]).await;
    p.expect(r.1.data("v") == &json!("kept"), "data survives seal/unseal");
    let r = p
        .check(Call::put("sys/unseal", json!({"reset": true})), &[])
        .await;
    p.expect_status(&r, 400, "reset while unsealed");
    p.finish();
}

/// Hex form of a base64 key.
fn b64_to_hex(b64: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("init returns base64 keys");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn config_init_unseal_seal_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::inmem(dir.path());
    cfg.listeners = vec![Listener {
        tls: None,
        max_request_size: Some(4096),
        ..Default::default()
    }];
    let mut p = differences::pair_with_config(&cfg);

    let r = p.check(Call::get("sys/init"), &[]).await;
    p.expect(
        r.1.body == json!({"initialized": false}),
        "GET sys/init before init",
    );
    let r = p.check(Call::get("sys/seal-status"), &[]).await;
    p.expect(
        r.1.body["initialized"] == json!(false),
        "seal-status uninitialised",
    );
    let r = p.check(Call::get("sys/health"), &[]).await;
    p.expect_status(&r, 501, "health uninitialised");
    let r = p.check(Call::get("sys/health?uninitcode=200"), &[]).await;
    p.expect_status(&r, 200, "health uninitcode");
    p.check(Call::get("sys/leader"), &[]).await;
    let r = p.check(Call::get("sys/mounts").token("x"), &[]).await;
    p.expect_status(&r, 503, "sys/mounts before init");
    for key in ["abcd", &"AA".repeat(40), "!!!"] {
        let r = p
            .check(Call::put("sys/unseal", json!({ "key": key })), &[])
            .await;
        p.expect_status(&r, 400, &format!("unseal before init with {key:?}"));
    }
    for body in [
        json!({"secret_shares": 0, "secret_threshold": 2}),
        json!({"secret_shares": 2, "secret_threshold": 3}),
        json!({"secret_shares": "three", "secret_threshold": 2}),
    ] {
        let r = p.check(Call::put("sys/init", body.clone()), &[]).await;
        p.expect_status(&r, 400, &format!("init {body}"));
    }
    let r = p
        .check(Call::new("PUT", "sys/init").raw("{oops"), &[])
        .await;
    p.expect_status(&r, 400, "init malformed JSON");

    let init = json!({"secret_shares": 3, "secret_threshold": 2});
    let (a, b) = p.check(Call::put("sys/init", init.clone()), &[]).await;
    p.expect(server::str_list(&b.body["keys"]).len() == 3, "3 hex keys");
    p.expect(
        server::str_list(&b.body["keys_base64"]).len() == 3,
        "3 base64 keys",
    );
    for (srv, reply) in [(&mut p.bao, &a), (&mut p.sr, &b)] {
        srv.root_token = reply.body["root_token"].as_str().map(str::to_string);
        srv.unseal_keys = server::str_list(&reply.body["keys_base64"]);
    }
    assert!(
        p.bao.unseal_keys.len() == 3 && p.sr.unseal_keys.len() == 3,
        "init failed: openbao {a:?} strongroom {b:?}"
    );
    let r = p.check(Call::put("sys/init", init), &[]).await;
    p.expect_status(&r, 400, "init twice");
    let r = p.check(Call::get("sys/seal-status"), &[]).await;
    p.expect(
        r.1.body["sealed"] == json!(true) && r.1.body["t"] == json!(2) && r.1.body["n"] == json!(3),
        format!("sealed 2-of-3 after init: {}", r.1.body),
    );

    // First key in hex: progress 1; reset: progress 0.
    let hex = |s: &server::Server, i: usize| b64_to_hex(&s.unseal_keys[i]);
    let (ha, hb) = (hex(&p.bao, 0), hex(&p.sr, 0));
    let r = p
        .check_each(
            Call::put("sys/unseal", json!({ "key": ha })),
            Call::put("sys/unseal", json!({ "key": hb })),
            &[],
        )
        .await;
    p.expect(r.1.body["progress"] == json!(1), "progress 1 after hex key");
    p.expect(
        r.1.body["nonce"].as_str().is_some_and(|n| !n.is_empty()),
        "nonce set",
    );
    let r = p
        .check(Call::put("sys/unseal", json!({"reset": true})), &[])
        .await;
    p.expect(r.1.body["progress"] == json!(0), "progress 0 after reset");
    // A key that is no share of this server's master key.
    let wrong = "ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8B";
    let too_long = "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=";
    let r = p
        .check(Call::put("sys/unseal", json!({"key": too_long})), &[])
        .await;
    p.expect_status(&r, 400, "unseal key too long");
    p.check(Call::put("sys/unseal", json!({ "key": wrong })), &[])
        .await;
    let r = p
        .check(
            Call::put("sys/unseal", json!({ "key": wrong.replace('A', "B") })),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "wrong keys reaching the threshold");
    let r = p.check(Call::get("sys/seal-status"), &[]).await;
    p.expect(
        r.1.body["sealed"] == json!(true) && r.1.body["progress"] == json!(0),
        format!(
            "still sealed, progress reset after failed unseal: {}",
            r.1.body
        ),
    );
    // Base64 keys 1 and 2 unseal.
    for i in [1, 2] {
        let (ka, kb) = (p.bao.unseal_keys[i].clone(), p.sr.unseal_keys[i].clone());
        p.check_each(
            Call::put("sys/unseal", json!({ "key": ka })),
            Call::put("sys/unseal", json!({ "key": kb })),
            &[],
        )
        .await;
    }
    let r = p.check(Call::get("sys/seal-status"), &[]).await;
    p.expect(
        r.1.body["sealed"] == json!(false),
        "unsealed with two base64 keys",
    );
    let r = p.check(Call::get("sys/health"), &[]).await;
    p.expect_status(&r, 200, "health unsealed");
    let r = p.check(Call::get("sys/mounts"), &[]).await;
    p.expect_status(&r, 200, "sys/mounts with the init root token");
    p.check(Call::get("sys/key-status"), &[]).await;

    // max_request_size = 4096.
    let big = json!({ "type": "kv", "description": "x".repeat(8192) });
    let r = p.check(Call::post("sys/mounts/big", big), &[]).await;
    p.expect_status(&r, 413, "body over max_request_size");
    let big_unauth = json!({ "key": "y".repeat(8192) });
    let r = p.check(Call::put("sys/unseal", big_unauth), &[]).await;
    p.expect_status(&r, 413, "unseal body over max_request_size");

    let r = p.check(Call::put("sys/seal", json!({})), &[]).await;
    p.expect_status(&r, 204, "seal");
    let r = p.check(Call::get("sys/seal-status"), &[]).await;
    p.expect(r.1.body["sealed"] == json!(true), "sealed again");
    let r = p.check(Call::get("sys/mounts"), &[]).await;
    p.expect_status(&r, 503, "sys/mounts when sealed");
    let r = p.check(Call::get("sys/health?sealedcode=200"), &[]).await;
    p.expect_status(&r, 200, "health sealedcode=200");
    p.finish();
}

/// Creates a token with `policies` (and the default policy unless
/// `no_default`) on both servers; the two tokens.
async fn token_with(p: &mut Pair, policies: &[&str], no_default: bool) -> (String, String) {
    let body = json!({"policies": policies, "ttl": "1h", "no_default_policy": no_default});
    let r = p.check(Call::post("auth/token/create", body), &[]).await;
    p.expect_status(&r, 200, &format!("token with {policies:?}"));
    let tok = |x: &Reply| {
        x.body["auth"]["client_token"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    (tok(&r.0), tok(&r.1))
}

#[tokio::test]
async fn dev_ui_mounts_for_limited_tokens() {
    let mut p = differences::pair();
    for (path, version) in [
        ("app", "2"),
        ("kv1", "1"),
        ("hidden", "1"),
        ("open", "1"),
        ("walled", "1"),
        ("seg", "1"),
    ] {
        let r = p
            .check(
                Call::post(
                    &format!("sys/mounts/{path}"),
                    json!({"type": "kv", "options": {"version": version}}),
                ),
                &[],
            )
            .await;
        p.expect_status(&r, 204, &format!("enable {path}"));
    }
    let r = p
        .check(
            Call::post(
                "sys/mounts/open/tune",
                json!({"listing_visibility": "unauth"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "tune open/ unauth");
    let r = p
        .check(
            Call::post("sys/auth/approle", json!({"type": "approle"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "enable approle");
    // An exact rule under app/, a prefix rule under kv1/, an auth path,
    // and a deny-only prefix rule covering walled/ (OpenBao counts a
    // covering `*` rule when the ACL has no `+` rule).
    let plain = "path \"app/data/x\" { capabilities = [\"read\"] }\n\
                 path \"kv1/team/*\" { capabilities = [\"list\"] }\n\
                 path \"auth/approle/login\" { capabilities = [\"update\"] }\n\
                 path \"walled/*\" { capabilities = [\"deny\"] }\n";
    // With a `+` rule: only its segments decide seg/.
    let segment = "path \"seg/+/x\" { capabilities = [\"read\"] }\n\
                   path \"walled/*\" { capabilities = [\"deny\"] }\n";
    for (name, policy) in [("plain", plain), ("segment", segment)] {
        let r = p
            .check(
                Call::put(
                    &format!("sys/policies/acl/{name}"),
                    json!({"policy": policy}),
                ),
                &[],
            )
            .await;
        p.expect_status(&r, 204, &format!("policy {name}"));
    }
    // The default policy has a `+` rule; without it, the covering `*`
    // rule of walled/ counts.
    let plain_tok = token_with(&mut p, &["plain"], false).await;
    let bare_tok = token_with(&mut p, &["plain"], true).await;
    let seg_tok = token_with(&mut p, &["segment"], false).await;
    for (what, (a, b)) in [
        ("plain", &plain_tok),
        ("plain without default", &bare_tok),
        ("segment", &seg_tok),
    ] {
        // The listing: only what the token can reach, plus open/.
        let r = p
            .check_each(
                Call::get("sys/internal/ui/mounts").token(a),
                Call::get("sys/internal/ui/mounts").token(b),
                &[],
            )
            .await;
        p.expect_status(&r, 200, &format!("{what}: ui mounts"));
        // One mount: the CLI's preflight, no ACL check of the path itself.
        for path in [
            "app/data/x",
            "app/data/other",
            "app",
            "kv1/team/a",
            "kv1/other",
            "hidden/x",
            "open/x",
            "walled/x",
            "seg/a/x",
            "seg",
            "auth/approle/login",
            "auth/token/lookup-self",
            "cubbyhole/x",
            "sys/mounts",
            "nothere/x",
        ] {
            let ui = format!("sys/internal/ui/mounts/{path}");
            p.check_each(Call::get(&ui).token(a), Call::get(&ui).token(b), &[])
                .await;
        }
        let r = p
            .check_each(
                Call::list("sys/internal/ui/mounts").token(a),
                Call::list("sys/internal/ui/mounts").token(b),
                &[],
            )
            .await;
        p.expect(r.0.status == r.1.status, format!("{what}: LIST ui mounts"));
    }
    let r = p
        .check(
            Call::get("sys/internal/ui/mounts/app/data/x").anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 403, "ui mount without a token");
    let r = p
        .check(Call::get("sys/internal/ui/mounts").anonymous(), &[])
        .await;
    p.expect_status(&r, 200, "ui mounts without a token");
    on_both(
        &mut p,
        &r,
        "without a token only open/ is listed, briefly",
        |x| {
            x.body["data"]["secret"]
                == json!({"open/": {"type": "kv", "description": "", "options": {"version": "1"}}})
                && x.body["data"]["auth"] == json!({})
        },
    );
    let r = p
        .check(
            Call::get("sys/internal/ui/mounts/app").token("not-a-token"),
            &[],
        )
        .await;
    p.expect_status(&r, 403, "ui mount with a bad token");
    let r = p
        .check(
            Call::get("sys/internal/ui/mounts").token("not-a-token"),
            &[],
        )
        .await;
    p.expect(r.0.status == r.1.status, "ui mounts with a bad token");
    p.finish();
}

#[tokio::test]
async fn dev_auth_tune_above_the_system_max() {
    let mut p = differences::pair();
    let r = p
        .check(
            Call::post("sys/auth/approle", json!({"type": "approle"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "enable approle");
    // Above the system maximum (768h in dev): stored as given.
    let r = p
        .check(
            Call::post("sys/auth/approle/tune", json!({"max_lease_ttl": "100000h"})),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "tune max_lease_ttl above the system max");
    let r = p.check(Call::get("sys/auth/approle/tune"), &[]).await;
    on_both(&mut p, &r, "the tuned maximum is stored", |x| {
        x.body["data"]["max_lease_ttl"] == json!(360_000_000)
    });
    let r = p.check(Call::get("sys/auth/approle"), &[]).await;
    p.expect_status(&r, 200, "read the auth mount");
    // Only two explicit TTLs are checked against each other.
    let r = p
        .check(
            Call::post(
                "sys/auth/approle/tune",
                json!({"default_lease_ttl": "100001h"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 400, "default above the tuned max");
    let r = p
        .check(
            Call::post(
                "sys/auth/approle/tune",
                json!({"max_lease_ttl": "system", "default_lease_ttl": "1000h"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "default above the system max, max from the system");
    p.check(Call::get("sys/auth/approle/tune"), &[]).await;
    let r = p
        .check(
            Call::post(
                "sys/auth/approle/tune",
                json!({"max_lease_ttl": "100000h", "default_lease_ttl": "system"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "back to a large max");
    // At use: a login's TTL is bounded by the mount's tuned maximum, as on
    // OpenBao (not by the system's).
    let r = p
        .check(
            Call::post(
                "auth/approle/role/big",
                json!({"role_id": "big-id", "bind_secret_id": false,
                       "secret_id_bound_cidrs": "127.0.0.1/32",
                       "token_ttl": "90000h", "token_max_ttl": "95000h"}),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 204, "role with long TTLs");
    let r = p
        .check(
            Call::post("auth/approle/login", json!({"role_id": "big-id"})).anonymous(),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "login");
    on_both(&mut p, &r, "the login's TTL", |x| {
        x.body["auth"]["lease_duration"] == json!(324_000_000)
    });
    p.finish();
}
