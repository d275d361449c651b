//! Bad input against OpenBao: huge durations (issue 14, defect 1), loose
//! types and ranges (defect 4) and what OpenBao accepts where Strongroom
//! used to refuse (defect 5). Each request goes to both servers; statuses
//! must agree, and so must bodies, error messages included (as the
//! differential suite reduces them), except the wording of a duration's
//! refusal (Go's `time` package words each its own way; Strongroom's name
//! the field).

use serde_json::json;
use strongroom_test::diff::Allow;
use strongroom_test::server::{Call, Reply};

use crate::differences;

/// The wording of a duration's refusal differs (Go's `time` messages vs
/// Strongroom's); the status and the rest of the body are compared.
const WORDING: &[Allow] = &[Allow {
    pattern: "/errors",
    reason: "the parsers word the refusal differently; both name the field",
}];

fn is_4xx(r: &Reply) -> bool {
    (400..500).contains(&r.status)
}

/// `POST path` with `body` sent as written (numbers such as `1e20` and
/// 2^64 must reach the servers verbatim).
fn post(path: &str, body: &str) -> Call {
    Call::new("POST", path).raw(body.as_bytes().to_vec())
}

#[tokio::test]
async fn dev_bad_input_is_refused_as_openbao_refuses_it() {
    let mut p = differences::pair();
    for (path, body) in [
        ("sys/auth/approle", r#"{"type":"approle"}"#),
        ("auth/approle/role/a", r#"{"token_ttl":60}"#),
        ("auth/token/roles/r", r#"{"allowed_policies":["x"]}"#),
    ] {
        let r = p.check(post(path, body), &[]).await;
        p.expect_status(&r, 204, &format!("set-up {path}"));
    }

    let huge_durations = [
        "1e20",
        "18446744073709551616",
        "-1e24",
        "9223372037",
        "1.5",
        "\"1e20\"",
        "\"100000000000h\"",
        "\"2562048h\"",
    ];
    let huge_ints = ["18446744073709551616", "-1000000000000000000000000", "1.5"];
    let mut cases: Vec<Call> = Vec::new();
    // Defect 1: every duration field, with numbers past Go's maximum.
    for d in huge_durations {
        for (path, field) in [
            ("auth/token/renew-self", "increment"),
            ("auth/token/create", "ttl"),
            ("auth/token/create", "explicit_max_ttl"),
            ("auth/token/create", "period"),
            ("auth/token/roles/r", "token_explicit_max_ttl"),
            ("auth/token/roles/r", "token_period"),
            ("auth/token/roles/r", "explicit_max_ttl"),
            ("auth/token/roles/r", "period"),
            ("auth/approle/role/a", "token_ttl"),
            ("auth/approle/role/a", "token_max_ttl"),
            ("auth/approle/role/a", "token_period"),
            ("auth/approle/role/a", "secret_id_ttl"),
            ("auth/approle/role/a/secret-id", "ttl"),
            ("secret/config", "delete_version_after"),
            ("secret/metadata/m", "delete_version_after"),
            ("sys/mounts/secret/tune", "default_lease_ttl"),
            ("sys/mounts/secret/tune", "max_lease_ttl"),
            ("sys/auth/token/tune", "default_lease_ttl"),
        ] {
            cases.push(post(path, &format!(r#"{{"{field}":{d}}}"#)));
        }
        cases.push(post(
            "sys/leases/renew",
            &format!(r#"{{"lease_id":"x","increment":{d}}}"#),
        ));
        for (path, kind) in [("sys/mounts/x", "kv"), ("sys/auth/y", "approle")] {
            for field in ["default_lease_ttl", "max_lease_ttl"] {
                cases.push(post(
                    path,
                    &format!(r#"{{"type":"{kind}","config":{{"{field}":{d}}}}}"#),
                ));
            }
        }
    }
    // Go words each duration refusal its own way (`missing unit`,
    // `multiplication of durations resulted in overflow`, with or without
    // the field's name); Strongroom's always name the field. The rest is
    // compared whole, error messages included (reduced as `differences`
    // reduces them).
    let mut worded = std::mem::take(&mut cases);
    // Defect 4: types and ranges of the other fields.
    for n in huge_ints {
        for (path, field) in [
            ("auth/token/create", "num_uses"),
            ("auth/token/roles/r", "token_num_uses"),
            ("auth/approle/role/a", "secret_id_num_uses"),
            ("auth/approle/role/a", "token_num_uses"),
            ("auth/approle/role/a/secret-id", "num_uses"),
            ("secret/config", "max_versions"),
            ("secret/metadata/m", "max_versions"),
        ] {
            cases.push(post(path, &format!(r#"{{"{field}":{n}}}"#)));
        }
        cases.push(post(
            "secret/data/d",
            &format!(r#"{{"data":{{"a":1}},"options":{{"cas":{n}}}}}"#),
        ));
        worded.push(post(
            "secret/destroy/d",
            &format!(r#"{{"versions":[{n}]}}"#),
        ));
        cases.push(Call::get(&format!("secret/data/d?version={n}")));
    }
    for body in [
        r#"{"renewable":[]}"#,
        r#"{"lease":{}}"#,
        r#"{"entity_alias":{}}"#,
        r#"{"entity_alias":"x"}"#,
        r#"{"display_name":{}}"#,
        r#"{"no_parent":"x"}"#,
        r#"{"num_uses":-1}"#,
        r#"{"ttl":[]}"#,
    ] {
        cases.push(post("auth/token/create", body));
    }
    for body in [
        r#"{"type":"kv","local":"str"}"#,
        r#"{"type":"kv","plugin_name":{}}"#,
        r#"{"type":"kv","config":{"force_no_cache":[]}}"#,
        r#"{"type":"kv","seal_wrap":"x"}"#,
        r#"{"type":"kv","external_entropy_access":"x"}"#,
        r#"{"type":[]}"#,
        r#"{"type":"kv","description":{}}"#,
    ] {
        cases.push(post("sys/mounts/x", body));
    }
    cases.push(post("sys/auth/y", r#"{"type":"approle","local":"str"}"#));
    for body in [
        r#"{"max_lease_ttl":[]}"#,
        r#"{"listing_visibility":[]}"#,
        r#"{"description":{}}"#,
    ] {
        cases.push(post("sys/mounts/secret/tune", body));
    }
    for body in [
        r#"{"orphan":[]}"#,
        r#"{"renewable":"x"}"#,
        r#"{"path_suffix":{}}"#,
    ] {
        cases.push(post("auth/token/roles/r", body));
    }
    cases.push(post("auth/approle/role/a", r#"{"bind_secret_id":[]}"#));
    cases.push(post("auth/approle/role/a/secret-id", r#"{"metadata":[]}"#));
    cases.push(post("secret/config", r#"{"cas_required":[]}"#));
    cases.push(post("secret/metadata/m", r#"{"cas_required":"x"}"#));
    cases.push(post("secret/data/d", r#"{"data":"x"}"#));
    cases.push(post("sys/policy/p", r#"{"policy":{}}"#));
    cases.push(post("sys/policies/acl/p", r#"{"policy":[]}"#));
    worded.push(post("auth/token/create", r#"{"ttl":-1}"#));
    for ttl in ["9223372036854775807", "9223372037", "1e20", "-5", "1.5"] {
        worded.push(post("sys/wrapping/wrap", r#"{"a":1}"#).header("X-Vault-Wrap-TTL", ttl));
    }
    let all = worded
        .into_iter()
        .map(|c| (c, WORDING))
        .chain(cases.into_iter().map(|c| (c, &[][..])));
    for (call, allow) in all {
        let what = call.describe();
        let r = p.check(call, allow).await;
        p.expect(
            is_4xx(&r.0),
            format!("{what}: OpenBao accepts it: {:?}", r.0),
        );
    }

    // NUL and other control characters in the path, where storage keys
    // come from: OpenBao's URL parser answers 400 with an empty body,
    // Strongroom 400 with the usual errors.
    for path in [
        "sys/policy/p%00",
        "auth/approle/role/a%00b",
        "secret/data/x%00y",
        "secret/data/x%0Ay",
        "cubbyhole/a%7F",
    ] {
        let call = post(path, r#"{"policy":"path \"a\" {}","data":{"a":1}}"#);
        let (a, b) = (p.bao.send(&call).await, p.sr.send(&call).await);
        p.expect(
            a.status == 400 && b.status == 400 && !b.errors().is_empty(),
            format!(
                "{path}: openbao {} {}, strongroom {} {}",
                a.status, a.body, b.status, b.body
            ),
        );
    }

    // Accepted by both: the largest duration Go holds, and a policy name
    // that cannot be a storage key (a warning, not a storage error).
    let r = p
        .check(
            post("sys/wrapping/wrap", r#"{"a":1}"#).header("X-Vault-Wrap-TTL", "9223372036"),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "the largest wrapping TTL");
    let r = p
        .check(post("auth/token/create", r#"{"policies":["\u0000"]}"#), &[])
        .await;
    p.expect_status(&r, 200, "a policy name with a NUL byte");
    p.finish();
}

#[tokio::test]
async fn dev_policy_listings_and_deep_values() {
    let mut p = differences::pair();
    // Defect 5: LIST sys/policy is the legacy listing, as GET.
    let r = p.check(Call::list("sys/policy"), &[]).await;
    p.expect_status(&r, 200, "LIST sys/policy");
    p.expect(
        r.1.data("keys") == &json!(["default", "root"]),
        "LIST sys/policy names default and root",
    );
    let r = p.check(Call::get("sys/policy"), &[]).await;
    p.expect_status(&r, 200, "GET sys/policy");

    // Defect 5: a KV value 5,000 levels deep is stored and read back.
    let depth = 5_000;
    let value = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let r = p
        .check(
            post(
                "secret/data/deep",
                &format!(r#"{{"data":{{"v":{value}}}}}"#),
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "write a value 5,000 levels deep");
    // Read back from each server (the harness keeps a body deeper than
    // serde_json's default limit as its text).
    let read = Call::get("secret/data/deep");
    let wanted = format!(r#""data":{{"v":{value}}}"#);
    for (reply, label) in [
        (p.bao.send(&read).await, "openbao"),
        (p.sr.send(&read).await, "strongroom"),
    ] {
        let text = match &reply.body {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        p.expect(
            reply.status == 200 && text.contains(&wanted),
            format!(
                "{label}: the value 5,000 levels deep reads back unchanged (status {})",
                reply.status
            ),
        );
    }
    // Strongroom's own bound (OpenBao's is Go's 10,000): one level deeper
    // than `MAX_DEPTH` is a 400, and the server carries on.
    let limit = strongroom_sdk::json::MAX_DEPTH;
    let too_deep = format!(r#"{{"v":{}1{}}}"#, "[".repeat(limit), "]".repeat(limit));
    let r = p.sr.send(&post("secret/data/too-deep", &too_deep)).await;
    p.expect(
        r.status == 400
            && r.errors()
                == vec![format!(
                    "failed to decode JSON input: JSON nested deeper than {limit} levels"
                )],
        format!("a body deeper than the limit: {} {}", r.status, r.body),
    );
    let r = p.sr.send(&Call::get("sys/health")).await;
    p.expect(
        r.status == 200,
        format!("health after the deep requests: {}", r.status),
    );
    p.finish();
}

/// Go's weak decoding, as OpenBao's framework applies it to loosely typed
/// input: mount `options` as key-value pairs (an object, `key=value`
/// strings, or one such string), numbers and booleans where strings are
/// expected (booleans as `"1"`/`"0"`), a lone scalar as a list of one. Both
/// servers must accept and store the same values, and refuse the same
/// malformed pairs.
#[tokio::test]
async fn dev_loosely_typed_values_are_read_as_openbao_reads_them() {
    let mut p = differences::pair();
    for (i, body) in [
        r#"{"type":"kv","options":["version=2"]}"#,
        r#"{"type":"kv","options":"version=2"}"#,
        r#"{"type":"kv","options":{"version":2}}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("sys/mounts/weak{i}");
        let r = p.check(post(&path, body), &[]).await;
        p.expect_status(&r, 204, body);
        p.check(Call::get(&path), &[]).await;
    }
    for body in [
        r#"{"type":"kv","options":["noequals"]}"#,
        r#"{"type":"kv","options":[5]}"#,
    ] {
        let r = p.check(post("sys/mounts/weakbad", body), &[]).await;
        p.expect_status(&r, 400, body);
    }
    for body in [
        r#"{"description":5}"#,
        r#"{"description":true}"#,
        r#"{"passthrough_request_headers":[1]}"#,
        r#"{"passthrough_request_headers":5}"#,
        r#"{"allowed_response_headers":[true,"x"]}"#,
        r#"{"audit_non_hmac_request_keys":{}}"#,
    ] {
        let r = p.check(post("sys/mounts/weak0/tune", body), &[]).await;
        p.expect_status(&r, 204, body);
        p.check(Call::get("sys/mounts/weak0/tune"), &[]).await;
    }
    let r = p
        .check(
            post(
                "auth/token/create",
                r#"{"display_name":true,"policies":[true,5],"meta":{"a":true}}"#,
            ),
            &[],
        )
        .await;
    p.expect_status(&r, 200, "token create with booleans for strings");
    p.finish();
}
