//! Fuzz target: what the Kubernetes auth method parses from clients and
//! from the API server must never panic, whatever the bytes:
//! - the login JWT (`parse_unverified`): an accepted one names a namespace
//!   and a service account; a refusal is a 403; the claim checks
//!   (`check_claims`) answer 403 or accept, never panic;
//! - its signature (`verify_signature`) against a fixed EC key: no input
//!   the fuzzer can make is accepted (it holds no private key), including
//!   `alg: none` and HMAC headers;
//! - the TokenReview answer (`parse_review`): an accepted one is a service
//!   account `system:serviceaccount:<ns>:<name>` with both parts non-empty;
//! - the config's `pem_keys`, `kubernetes_ca_cert` and `kubernetes_host`:
//!   refusals are one-line 400s, an accepted host is an http(s) URL.
//!
//! No `#![forbid(unsafe_code)]` here: `fuzz_target!` expands to the
//! `extern "C"` entry point libFuzzer calls.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use strongroom_kubernetes::config::{base_url, parse_ca, parse_pem_keys};
use strongroom_kubernetes::jwt::{check_claims, parse_unverified, verify_signature};
use strongroom_kubernetes::review::parse_review;
use strongroom_sdk::Error;

/// A P-256 public key whose private half was thrown away.
const EC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZ0ZvsaCX3hStZVmCPxx6sJ8N6FEg
oe1gYQvOVd/kLffzA2tPsrf1nRBwLNxM7JOzApYCsN/4+odihNqVeTsHVg==
-----END PUBLIC KEY-----
";

/// A fixed "now" for the claim checks (2023-11-14).
const NOW: u64 = 1_700_000_000;

/// The decoding keys, parsed once.
fn keys() -> &'static [jsonwebtoken::DecodingKey] {
    static KEYS: OnceLock<Vec<jsonwebtoken::DecodingKey>> = OnceLock::new();
    KEYS.get_or_init(|| parse_pem_keys(&[EC_KEY.to_string()]).expect("the fixed key parses"))
}

/// A refusal of bad client input: the given status, one line.
fn check_refusal(e: &Error, status: u16) {
    let msg = e.to_string();
    assert_eq!(e.status(), status, "{msg:?}");
    assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_unverified(text) {
        Ok(claims) => {
            assert!(!claims.account.namespace.is_empty() && !claims.account.name.is_empty());
            let aud = claims.raw.get("aud").and_then(Value::as_str).unwrap_or("x");
            let iss = claims.raw.get("iss").and_then(Value::as_str);
            for (audience, issuer) in [("", None), (aud, iss), ("x", Some(""))] {
                if let Err(e) = check_claims(&claims, audience, issuer, NOW) {
                    check_refusal(&e, 403);
                }
            }
            // A token with no time claims, the issuer and audience asked
            // for, passes the checks (exp/nbf are optional, as in OpenBao).
            let timeless = !claims.raw.contains_key("exp") && !claims.raw.contains_key("nbf");
            if timeless {
                if let Some(iss) = iss.filter(|i| !i.is_empty()) {
                    if claims.raw.get("aud").and_then(Value::as_str).is_some() {
                        assert!(check_claims(&claims, aud, Some(iss), NOW).is_ok());
                    }
                }
            }
        }
        Err(e) => check_refusal(&e, 403),
    }
    match verify_signature(text, keys()) {
        Ok(()) => panic!("a forged JWT passed the signature check: {text:?}"),
        Err(e) => check_refusal(&e, 403),
    }
    if let Ok(answer) = serde_json::from_str::<Value>(text) {
        match parse_review(&answer) {
            Ok(account) => {
                assert!(!account.namespace.is_empty() && !account.name.is_empty());
                assert!(!account.name.contains(':'));
                let username = answer
                    .pointer("/status/user/username")
                    .and_then(Value::as_str)
                    .expect("an accepted review has a username");
                assert_eq!(
                    username,
                    format!(
                        "system:serviceaccount:{}:{}",
                        account.namespace, account.name
                    )
                );
            }
            Err(e) => check_refusal(&e, 403),
        }
    }
    match parse_pem_keys(&[text.to_string()]) {
        Ok(keys) => assert_eq!(keys.len(), 1),
        Err(e) => check_refusal(&e, 400),
    }
    match parse_ca(text) {
        Ok(certs) => assert!(!certs.is_empty()),
        Err(e) => check_refusal(&e, 400),
    }
    match base_url(text) {
        Ok(url) => {
            assert!(matches!(url.scheme(), "http" | "https"));
            assert!(url.host_str().is_some());
        }
        Err(e) => check_refusal(&e, 400),
    }
});
