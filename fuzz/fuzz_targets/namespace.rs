//! Fuzz target: reading a namespace from a header or a path, and a
//! namespace name, must never panic; what they produce must be canonical
//! (no empty, `.` or `..` segment, one trailing slash) and a parsed name
//! must be one segment.
//!
//! No `#![forbid(unsafe_code)]` here: `fuzz_target!` expands to the
//! `extern "C"` entry point libFuzzer calls.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_core::namespace::{canonicalize, from_header, id_suffix, parse_name};

fn assert_canonical(path: &str) {
    if path.is_empty() {
        return;
    }
    assert!(path.ends_with('/'), "{path:?}");
    for segment in path[..path.len() - 1].split('/') {
        assert!(!matches!(segment, "" | "." | ".."), "{path:?}");
    }
    assert_eq!(canonicalize(path), path);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    assert_canonical(&canonicalize(text));
    assert_canonical(&from_header(text));
    if let Ok(name) = parse_name(text) {
        assert_canonical(&name);
        assert_eq!(name.matches('/').count(), 1, "{name:?}");
    }
    if let Some(id) = id_suffix(text) {
        assert!(text.ends_with(&format!(".{id}")));
    }
});
