//! Fuzz target: the JSON Gatekeeper reads from outside.
//!
//! - A `/token` body (`parse_token_request`): never panics; an accepted
//!   body has the non-empty string `task_id` it gave, and `scheduler` and
//!   `role` exactly as given; a refusal is one line.
//! - An `/unseal` body (`unseal_method`): never panics; a refusal message
//!   is one line.
//! - A KV v1 policy secret's layout (`kv1_document`): the wrapped form is
//!   exactly `{"data": <document>}`; anything else is kept as it is.
//! - Policies (`Policies::from_json`): never panic; a refusal is one line;
//!   accepted policies answer every exact key (no `*`, no `regexp`) with
//!   its own `num_uses` and its roles first, answer any name when `*` is a
//!   key, and answer arbitrary names without panicking.
//!
//! No `#![forbid(unsafe_code)]` here: `fuzz_target!` expands to the
//! `extern "C"` entry point libFuzzer calls.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use strongroom_gatekeeper::http::{parse_token_request, unseal_method};
use strongroom_gatekeeper::policy::{kv1_document, Kv1Layout, Policies};

/// Names asked of every accepted policy set, beside its own keys.
const NAMES: [&str; 5] = [
    "",
    "mesos:marathon:api",
    "kubernetes:ns/pod",
    "nomad:job/group/task",
    "*",
];

fuzz_target!(|data: &[u8]| {
    let body: Option<Value> = serde_json::from_slice(data).ok();

    match parse_token_request(data) {
        Ok(req) => {
            let body = body.as_ref().expect("an accepted body is JSON");
            assert!(!req.task_id.is_empty());
            assert_eq!(
                body.get("task_id").and_then(Value::as_str),
                Some(req.task_id.as_str())
            );
            assert_eq!(
                body.get("scheduler").and_then(Value::as_str),
                req.scheduler.as_deref()
            );
            assert_eq!(
                body.get("role").and_then(Value::as_str),
                req.role.as_deref()
            );
        }
        Err(e) => assert!(!e.contains('\n'), "multi-line error: {e:?}"),
    }

    if let Some(v @ Value::Object(_)) = &body {
        if let Err(Some(e)) = unseal_method(v) {
            assert!(!e.contains('\n'), "multi-line error: {e:?}");
        }
    }

    // A KV v1 secret's layout: the wrapped form is exactly `{"data": doc}`,
    // anything else is read as it is.
    if let Some(Value::Object(secret)) = &body {
        let (doc, layout) = kv1_document(secret.clone());
        match layout {
            Kv1Layout::Wrapped => {
                assert_eq!(secret.len(), 1);
                assert_eq!(secret.get("data"), Some(&Value::Object(doc)));
            }
            Kv1Layout::Bare => assert_eq!(&doc, secret),
        }
    }

    let policies = match Policies::from_json(data) {
        Ok(p) => p,
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
            return;
        }
    };
    let Some(Value::Object(map)) = body else {
        panic!("accepted policies are a JSON object");
    };
    assert_eq!(policies.len(), map.len());
    check_keys(&policies, &map);
    for name in NAMES {
        let got = policies.get(name);
        if map.contains_key("*") {
            assert!(got.is_some(), "`*` answers {name:?}");
        }
        if let Some(p) = got {
            assert!(p.num_uses >= 1);
            assert!(p.roles.iter().all(|r| !r.is_empty()));
        }
    }
});

/// Every exact key without a `regexp` answers its own `num_uses`, its
/// roles first.
fn check_keys(policies: &Policies, map: &Map<String, Value>) {
    for (key, entry) in map {
        let prefix = key.ends_with('*');
        let has_regexp = entry
            .get("regexp")
            .and_then(Value::as_str)
            .is_some_and(|r| !r.is_empty());
        let got = policies.get(key);
        if prefix || has_regexp {
            continue;
        }
        let p = got.unwrap_or_else(|| panic!("exact key {key:?} does not answer"));
        let uses = entry
            .get("num_uses")
            .and_then(Value::as_i64)
            .expect("checked");
        assert_eq!(i64::from(p.num_uses), uses, "{key:?}");
        let mut own: Vec<&str> = Vec::new();
        for r in entry
            .get("roles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !own.contains(&r) {
                own.push(r);
            }
        }
        let first: Vec<&str> = p.roles.iter().take(own.len()).map(String::as_str).collect();
        assert_eq!(first, own, "{key:?}: its own roles first");
    }
}
