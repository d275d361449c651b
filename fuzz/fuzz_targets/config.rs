//! Fuzz target: the server config parser must never panic (nor overflow its
//! stack), and every error it returns must render as a single line.
//!
//! No `#![forbid(unsafe_code)]` here: `fuzz_target!` expands to the
//! `extern "C"` entry point libFuzzer calls.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_config::{parse_str, Format};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Hcl, Format::Json] {
        if let Err(e) = parse_str(text, format) {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
        }
    }
});
