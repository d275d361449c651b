//! Fuzz target: Shamir shares and unseal keys, as `sys/unseal` takes them.
//!
//! - `decode_key` (the `key` of `sys/unseal`, hex or base64) never panics;
//!   what it accepts encodes back to the text it came from (lower-case hex,
//!   or canonical padded base64), and its refusal is the one 400 message.
//! - `shamir::combine` on any shares cut from the input never panics; a
//!   refusal is one line; an accepted set gives a secret one byte shorter
//!   than a share, the same whatever the shares' order (Lagrange
//!   interpolation at 0 does not depend on it).
//! - `shamir::split` then `combine` of any `threshold` of the shares gives
//!   the secret back, for any secret, share count and threshold.
//!
//! No `#![forbid(unsafe_code)]` here: `fuzz_target!` expands to the
//! `extern "C"` entry point libFuzzer calls.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use strongroom_barrier::shamir::{combine, split};
use strongroom_core::sys::decode_key;

/// The message of a key that is neither hex nor base64.
const BAD_KEY: &str = "'key' must be a valid hex or base64 string";

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };

    if let Ok(text) = std::str::from_utf8(rest) {
        match decode_key(text) {
            Ok(key) => {
                if hex::decode(text).is_ok() {
                    assert_eq!(hex::encode(key.as_slice()), text.to_ascii_lowercase());
                } else {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(key.as_slice());
                    assert_eq!(b64, text, "base64 is decoded canonically");
                }
            }
            Err(e) => {
                assert_eq!(e.status(), 400);
                assert_eq!(e.to_string(), BAD_KEY);
            }
        }
    }

    // Shares cut from the input: `control` gives their length (which may
    // not divide the input, leaving a shorter last share).
    let share_len = usize::from(control % 40) + 1;
    let shares: Vec<&[u8]> = rest.chunks(share_len).collect();
    match combine(&shares) {
        Ok(secret) => {
            assert_eq!(secret.len() + 1, share_len);
            let reversed: Vec<&[u8]> = shares.iter().rev().copied().collect();
            let again = combine(&reversed).expect("the same shares in another order");
            assert_eq!(again.as_slice(), secret.as_slice(), "order matters");
        }
        Err(e) => assert!(!e.to_string().contains('\n')),
    }

    // Round trip: the input is the secret (up to 64 bytes), `control`
    // picks the share count and threshold, the input's first bytes which
    // shares are combined.
    if rest.is_empty() {
        return;
    }
    let secret = &rest[..rest.len().min(64)];
    let parts = 2 + usize::from(control % 7);
    let threshold = 2 + usize::from(control / 7) % (parts - 1);
    let made = split(secret, parts, threshold).expect("valid parameters");
    assert_eq!(made.len(), parts);
    let mut order: Vec<usize> = (0..parts).collect();
    for (i, b) in rest.iter().take(parts).enumerate() {
        order.swap(i, i + usize::from(*b) % (parts - i));
    }
    let chosen: Vec<&[u8]> = order[..threshold]
        .iter()
        .map(|&i| made[i].as_slice())
        .collect();
    let back = combine(&chosen).expect("threshold shares combine");
    assert_eq!(
        back.as_slice(),
        secret,
        "parts={parts} threshold={threshold}"
    );
});
