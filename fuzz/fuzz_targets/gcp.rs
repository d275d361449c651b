//! Fuzz target: what the GCP auth method parses from clients and from
//! Google must never panic, whatever the bytes: the login JWT's header and
//! `sub` (`parse_unverified`), its claims (`check_claims`, for any role name
//! and `max_jwt_exp`), the credentials JSON (`Credentials::parse`, whose
//! errors never echo the input), `custom_endpoint`, and Google's answers
//! (service account, key, RFC 3339 times, `Cache-Control`).
//!
//! No `#![forbid(unsafe_code)]` here: `fuzz_target!` expands to the
//! `extern "C"` entry point libFuzzer calls.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use strongroom_gcp::config::{Credentials, CustomEndpoint};
use strongroom_gcp::google::{parse_iam_key, parse_service_account};
use strongroom_gcp::keys::{max_age, parse_rfc3339};
use strongroom_gcp::login::{check_claims, parse_unverified};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = parse_unverified(text) {
        assert!(!u.kid.is_empty() && !u.sub.is_empty());
    }
    if let Err(e) = Credentials::parse(text) {
        // The refusal names the problem, never the (possibly secret) input.
        // Only JSON objects are checked: a short text can be part of a
        // fixed message ("redentials are not valid J"), and no fixed
        // message holds a `{`.
        if text.len() > 16 && text.trim_start().starts_with('{') {
            assert!(!e.to_string().contains(text), "error echoes the input");
        }
    }
    let _ = parse_rfc3339(text);
    let _ = max_age(text);
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        let _ = parse_service_account(&v);
        let _ = parse_iam_key(&v);
        if let Value::Object(map) = &v {
            let _ = CustomEndpoint::parse(map);
            let role = map.get("role").and_then(Value::as_str).unwrap_or("r");
            let max = map.get("max").and_then(Value::as_u64).unwrap_or(900);
            let now = map.get("now").and_then(Value::as_u64).unwrap_or(1_700_000_000);
            let _ = check_claims(map, role, max, now);
        }
    }
});
