//! The bad-input table: every field of the endpoints that take input
//! (token create/renew/roles, mounts, auth methods, tune, leases, AppRole
//! roles and secret ids, KV v2 config/metadata/data/delete, policies, the
//! wrapping header) gets wrong types, out-of-range and huge numbers
//! (`1e20`, 2^64, `-1e24`), NUL bytes and invalid UTF-8. Each request must
//! be refused with a 4xx and `{"errors": [...]}` (non-empty, no storage
//! detail), and must change nothing: the whole physical store (every key
//! and every encrypted value, read through the backend the core runs on)
//! is compared before and after each request.
//!
//! In-process (the real HTTP router over an in-memory backend kept by the
//! test) rather than against the binary: the snapshot then is exact and
//! cheap, with no other writer to race. The same router serves the binary.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use strongroom_sdk::storage::Backend;
use strongroom_test::inprocess::{call, call_raw, core_on, init, unseal};

/// Every key and value of the physical store.
async fn snapshot(store: &strongroom_storage::InmemBackend) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut prefixes = vec![String::new()];
    while let Some(prefix) = prefixes.pop() {
        for entry in store.list(&prefix).await.unwrap() {
            let key = format!("{prefix}{entry}");
            if entry.ends_with('/') {
                prefixes.push(key);
            } else {
                let value = store.get(&key).await.unwrap().unwrap_or_default();
                out.insert(key, value);
            }
        }
    }
    out
}

/// What a field holds, which decides the bad values it is sent.
#[derive(Clone, Copy)]
enum Kind {
    Duration,
    Int,
    Bool,
    Str,
    List,
    Map,
}

/// Raw JSON texts (not `Value`s: `1e20` and 2^64 must reach the server as
/// written) that no field of `kind` accepts.
fn bad_values(kind: Kind) -> &'static [&'static str] {
    const HUGE: [&str; 3] = ["1e20", "18446744073709551616", "-1e24"];
    match kind {
        Kind::Duration => &[
            "1e20",
            "18446744073709551616",
            "-1e24",
            "9223372037",
            "1.5",
            "-5",
            "\"1e20\"",
            "\"100000000000h\"",
            "\"2562048h\"",
            "\"1h\\u0000\"",
            "[]",
            "{}",
        ],
        Kind::Int => &[
            HUGE[0],
            HUGE[1],
            HUGE[2],
            "1.5",
            "\"x\"",
            "\"1\\u0000\"",
            "[]",
            "{}",
        ],
        Kind::Bool => &["\"str\"", "\"t\\u0000\"", "2", "1e20", "[]", "{}"],
        Kind::Str => &["{}", "[]", "[{}]"],
        Kind::List => &["{\"a\":\"b\"}", "[[]]", "[{}]"],
        Kind::Map => &["\"not json\"", "5", "[1]", "true"],
    }
}

/// An endpoint: method, path, the valid body the bad field is added to,
/// and its fields with their kinds.
struct Endpoint {
    path: &'static str,
    base: Value,
    fields: Vec<(&'static str, Kind)>,
}

fn endpoints() -> Vec<Endpoint> {
    use Kind::*;
    let token_create = vec![
        ("ttl", Duration),
        ("explicit_max_ttl", Duration),
        ("period", Duration),
        ("renewable", Bool),
        ("num_uses", Int),
        ("no_parent", Bool),
        ("no_default_policy", Bool),
        ("policies", List),
        ("meta", Map),
        ("display_name", Str),
        ("type", Str),
        ("id", Str),
        ("entity_alias", Str),
        ("lease", Str),
    ];
    let mount = vec![
        ("type", Str),
        ("description", Str),
        ("local", Bool),
        ("seal_wrap", Bool),
        ("external_entropy_access", Bool),
        ("plugin_name", Str),
        ("plugin_version", Str),
        ("config", Map),
        ("options", Map),
    ];
    let tune = vec![
        ("default_lease_ttl", Duration),
        ("max_lease_ttl", Duration),
        ("description", Str),
        ("listing_visibility", Str),
        ("token_type", Str),
        ("audit_non_hmac_request_keys", List),
        ("passthrough_request_headers", List),
    ];
    let approle_role = vec![
        ("token_ttl", Duration),
        ("token_max_ttl", Duration),
        ("token_explicit_max_ttl", Duration),
        ("token_period", Duration),
        ("period", Duration),
        ("secret_id_ttl", Duration),
        ("secret_id_num_uses", Int),
        ("token_num_uses", Int),
        ("bind_secret_id", Bool),
        ("local_secret_ids", Bool),
        ("token_policies", List),
        ("policies", List),
        ("secret_id_bound_cidrs", List),
        ("token_type", Str),
    ];
    let kv_meta = vec![
        ("max_versions", Int),
        ("cas_required", Bool),
        ("delete_version_after", Duration),
    ];
    vec![
        Endpoint {
            path: "auth/token/create",
            base: json!({}),
            fields: token_create.clone(),
        },
        Endpoint {
            path: "auth/token/create-orphan",
            base: json!({}),
            fields: token_create,
        },
        Endpoint {
            path: "auth/token/renew-self",
            base: json!({}),
            fields: vec![("increment", Duration)],
        },
        Endpoint {
            path: "auth/token/renew-accessor",
            base: json!({"accessor": "nope"}),
            fields: vec![("increment", Duration), ("accessor", Str)],
        },
        Endpoint {
            path: "auth/token/roles/r",
            base: json!({}),
            fields: vec![
                ("token_explicit_max_ttl", Duration),
                ("token_period", Duration),
                ("explicit_max_ttl", Duration),
                ("period", Duration),
                ("token_num_uses", Int),
                ("orphan", Bool),
                ("renewable", Bool),
                ("allowed_policies", List),
                ("disallowed_policies", List),
                ("path_suffix", Str),
                ("token_type", Str),
            ],
        },
        Endpoint {
            path: "sys/mounts/new-kv",
            base: json!({"type": "kv"}),
            fields: mount.clone(),
        },
        Endpoint {
            path: "sys/auth/new-approle",
            base: json!({"type": "approle"}),
            fields: mount,
        },
        Endpoint {
            path: "sys/mounts/secret/tune",
            base: json!({}),
            fields: tune.clone(),
        },
        Endpoint {
            path: "sys/auth/approle/tune",
            base: json!({}),
            fields: tune,
        },
        Endpoint {
            path: "sys/leases/renew",
            base: json!({"lease_id": "auth/token/create/nope"}),
            fields: vec![("increment", Duration), ("lease_id", Str)],
        },
        Endpoint {
            path: "auth/approle/role/a",
            base: json!({}),
            fields: approle_role,
        },
        Endpoint {
            path: "auth/approle/role/a/secret-id",
            base: json!({}),
            fields: vec![
                ("ttl", Duration),
                ("num_uses", Int),
                ("metadata", Str),
                ("cidr_list", List),
            ],
        },
        Endpoint {
            path: "secret/config",
            base: json!({}),
            fields: kv_meta.clone(),
        },
        Endpoint {
            path: "secret/metadata/m",
            base: json!({}),
            fields: {
                let mut f = kv_meta;
                f.push(("custom_metadata", Map));
                f
            },
        },
        Endpoint {
            path: "secret/data/d",
            base: json!({"data": {"a": "b"}}),
            fields: vec![("data", Map), ("options", Map)],
        },
        Endpoint {
            path: "sys/policy/p",
            base: json!({"policy": "path \"a\" { capabilities = [\"read\"] }"}),
            fields: vec![("policy", Str)],
        },
        Endpoint {
            path: "sys/policies/acl/p",
            base: json!({"policy": "path \"a\" { capabilities = [\"read\"] }"}),
            fields: vec![("policy", Str), ("cas", Int)],
        },
    ]
}

/// One request of the table: method, path, body bytes, headers.
type Case = (&'static str, String, Vec<u8>, Vec<(&'static str, String)>);

/// Requests outside the field table: nested fields, headers, paths and raw
/// bodies.
fn extra_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let post = |path: &str, body: &str| {
        (
            "POST",
            path.to_string(),
            body.as_bytes().to_vec(),
            Vec::new(),
        )
    };
    // Nested duration and boolean fields of a mount's config.
    for path in ["sys/mounts/new-kv", "sys/auth/new-approle"] {
        let kind = if path.contains("auth") {
            "approle"
        } else {
            "kv"
        };
        for ttl in bad_values(Kind::Duration) {
            for field in ["default_lease_ttl", "max_lease_ttl"] {
                out.push(post(
                    path,
                    &format!(r#"{{"type":"{kind}","config":{{"{field}":{ttl}}}}}"#),
                ));
            }
        }
        for b in ["[]", "{}", "\"str\""] {
            out.push(post(
                path,
                &format!(r#"{{"type":"{kind}","config":{{"force_no_cache":{b}}}}}"#),
            ));
        }
    }
    // KV v2 check-and-set.
    for cas in [
        "1e20",
        "18446744073709551616",
        "-1e24",
        "1.5",
        "\"x\"",
        "[]",
    ] {
        out.push(post(
            "secret/data/d",
            &format!(r#"{{"data":{{"a":"c"}},"options":{{"cas":{cas}}}}}"#),
        ));
    }
    // Versions to delete, undelete and destroy.
    for op in ["delete", "undelete", "destroy"] {
        for v in [
            "[1e20]",
            "[18446744073709551616]",
            "[-1e24]",
            "[1.5]",
            "[\"x\"]",
            "[[]]",
        ] {
            out.push(post(
                &format!("secret/{op}/d"),
                &format!(r#"{{"versions":{v}}}"#),
            ));
        }
    }
    // Query parameters.
    for v in ["1e20", "18446744073709551616", "-1e24", "1.5", "x"] {
        out.push((
            "GET",
            format!("secret/data/d?version={v}"),
            Vec::new(),
            Vec::new(),
        ));
    }
    // The wrapping header.
    for ttl in [
        "9223372036854775807",
        "9223372037",
        "1e20",
        "-5",
        "1.5",
        "5x",
    ] {
        out.push((
            "POST",
            "sys/wrapping/wrap".to_string(),
            br#"{"a":"b"}"#.to_vec(),
            vec![("X-Vault-Wrap-TTL", ttl.to_string())],
        ));
    }
    // NUL bytes where they reach a storage key: the path.
    for path in [
        "auth/approle/role/a%00b",
        "sys/policy/p%00",
        "sys/policies/acl/%00",
        "auth/token/roles/r%00",
    ] {
        out.push(post(
            path,
            r#"{"policy":"path \"a\" { capabilities = [\"read\"] }"}"#,
        ));
    }
    // Invalid UTF-8 and malformed JSON bodies, to every endpoint.
    for e in endpoints() {
        for body in [
            &b"{\"a\":\"\xff\xfe\"}"[..],
            &b"{\"\xc3\x28\":1}"[..],
            &b"\xff"[..],
            &b"{\"a\":"[..],
            &b"[1,2]"[..],
            &b"\"str\""[..],
            &b"{\"a\":1} trailing"[..],
        ] {
            out.push(("POST", e.path.to_string(), body.to_vec(), Vec::new()));
        }
    }
    // Deep values (within the depth limit) where a scalar, a list of
    // strings or a map of strings is wanted: refused without walking them
    // on the stack.
    let deep = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
    let deep_map = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    for (path, field) in [
        ("auth/token/create", "ttl"),
        ("auth/token/create", "policies"),
        ("auth/token/create", "meta"),
        ("auth/token/create", "display_name"),
        ("auth/approle/role/a", "token_policies"),
        ("secret/config", "max_versions"),
    ] {
        out.push(post(path, &format!(r#"{{"{field}":{deep}}}"#)));
        out.push(post(path, &format!(r#"{{"{field}":{deep_map}}}"#)));
    }
    out.push(post(
        "sys/mounts/new-kv",
        &format!(r#"{{"type":"kv","config":{{"max_lease_ttl":{deep}}}}}"#),
    ));
    // Deeper than the JSON depth limit.
    let depth = strongroom_sdk::json::MAX_DEPTH;
    let deep = format!(
        r#"{{"data":{{"v":{}1{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    out.push(post("secret/data/d", &deep));
    out
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let store = Arc::new(strongroom_storage::InmemBackend::new());
    let core = core_on(store.clone());
    let init = init(&core, 1, 1).await;
    assert_eq!(unseal(&core, &init.keys_b64[0]).await.0, 200);
    let root = init.root.as_str();
    // Something to update at every path the table writes to.
    for (path, body, status) in [
        ("sys/mounts/secret", json!({"type": "kv-v2"}), 204),
        ("sys/auth/approle", json!({"type": "approle"}), 204),
        ("auth/approle/role/a", json!({"token_ttl": 60}), 204),
        (
            "auth/token/roles/r",
            json!({"allowed_policies": ["x"]}),
            204,
        ),
        ("secret/data/d", json!({"data": {"a": "b"}}), 200),
        ("secret/metadata/m", json!({"max_versions": 3}), 204),
        (
            "sys/policy/p",
            json!({"policy": "path \"b\" { capabilities = [\"list\"] }"}),
            204,
        ),
    ] {
        let (s, v) = call(
            &core,
            "POST",
            &format!("/v1/{path}"),
            Some(root),
            Some(body),
        )
        .await;
        assert_eq!(s, status, "set-up {path}: {v}");
    }

    let mut cases: Vec<Case> = Vec::new();
    for e in endpoints() {
        for (field, kind) in &e.fields {
            for bad in bad_values(*kind) {
                // The base body with the field replaced by the raw text.
                let mut base = e.base.as_object().unwrap().clone();
                base.remove(*field);
                let mut text = serde_json::to_string(&base).unwrap();
                text.pop(); // the closing brace
                if !base.is_empty() {
                    text.push(',');
                }
                text.push_str(&format!("\"{field}\":{bad}}}"));
                cases.push(("POST", e.path.to_string(), text.into_bytes(), Vec::new()));
            }
        }
    }
    cases.extend(extra_cases());
    assert!(cases.len() > 400, "the table covers {} cases", cases.len());

    let mut failures = Vec::new();
    for (method, path, body, headers) in &cases {
        let before = snapshot(&store).await;
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = (!body.is_empty()).then(|| body.clone());
        let (status, reply) = call_raw(
            &core,
            method,
            &format!("/v1/{path}"),
            Some(root),
            body.clone(),
            &headers,
        )
        .await;
        let after = snapshot(&store).await;
        let errors: Vec<&str> = reply["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let shown = String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
        let shown: String = shown.chars().take(120).collect();
        if !(400..500).contains(&status) {
            failures.push(format!(
                "{method} {path} {shown} {headers:?}: status {status}: {reply}"
            ));
        } else if errors.is_empty() || errors.iter().any(|e| e.trim().is_empty()) {
            failures.push(format!(
                "{method} {path} {shown}: no error message: {reply}"
            ));
        } else if errors.iter().any(|e| e.to_lowercase().contains("storage")) {
            failures.push(format!(
                "{method} {path} {shown}: storage detail leaked: {reply}"
            ));
        } else if before != after {
            let changed: Vec<&String> = after
                .keys()
                .chain(before.keys())
                .filter(|k| before.get(*k) != after.get(*k))
                .collect();
            failures.push(format!(
                "{method} {path} {shown}: storage changed at {changed:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad requests were mishandled:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
