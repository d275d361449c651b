//! Fuzz target: the PGP public keys that `sys/init`, `sys/rekey/init`
//! (`pgp_keys`) and `sys/generate-root/attempt` (`pgp_key`) take from
//! clients, as base64 of a binary OpenPGP key.
//!
//! - `PgpKey::parse` never panics, on the input as text and on the base64
//!   of the raw input (so the packet parser sees arbitrary bytes); every
//!   refusal is a one-line 400 starting with OpenBao's "error decoding
//!   given PGP key" or "error parsing given PGP key".
//! - An accepted key has a 40-character lower-case hex fingerprint and
//!   encrypts a share without panicking.
//!
//! No `#![forbid(unsafe_code)]` here: `fuzz_target!` expands to the
//! `extern "C"` entry point libFuzzer calls.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use strongroom_core::node::pgp::PgpKey;
use strongroom_sdk::Error;

fn check(encoded: &str) {
    match PgpKey::parse(encoded) {
        Ok(key) => {
            let fp = key.fingerprint();
            assert_eq!(fp.len(), 40, "fingerprint {fp:?}");
            assert!(fp
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
            // Encryption may fail on a key the parser let through (an
            // unusual algorithm), but as an error, never a panic.
            let _ = key.encrypt(b"0123456789abcdef");
        }
        Err(Error::BadRequest(m)) => {
            assert!(!m.contains('\n'), "multi-line refusal: {m:?}");
            assert!(
                m.starts_with("error decoding given PGP key")
                    || m.starts_with("error parsing given PGP key"),
                "{m}"
            );
        }
        Err(other) => panic!("unexpected error kind: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    check(&base64::engine::general_purpose::STANDARD.encode(data));
});
