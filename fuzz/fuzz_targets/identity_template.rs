//! Fuzz target: identity templates (`strongroom_policy::template`), as
//! policy paths and OIDC role templates hold them. Parsing must never
//! panic and refuses only unbalanced braces; rendering never panics in
//! either mode, with or without an entity; and in ACL mode with the
//! default blocked substitutions, no identity value can add a `/`, `*` or
//! `+` to a path: the output holds exactly those of the template's own
//! literal text, even when every identity value is made of them.
//!
//! No `#![forbid(unsafe_code)]` here: `fuzz_target!` expands to the
//! `extern "C"` entry point libFuzzer calls.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use strongroom_policy::template::{Mode, RenderInput, Template, ACL_BLOCKED};
use strongroom_sdk::identity::{AliasFacts, GroupFacts, IdentityFacts};

/// Identity facts whose every value is `value`, with keys the fuzzer is
/// likely to name.
fn facts(value: &str) -> IdentityFacts {
    let map: BTreeMap<String, String> = ["a", "team", "x", ""]
        .iter()
        .map(|k| (k.to_string(), value.to_string()))
        .collect();
    IdentityFacts {
        entity_id: value.into(),
        entity_name: value.into(),
        entity_metadata: map.clone(),
        aliases: vec![AliasFacts {
            id: value.into(),
            mount_accessor: "acc".into(),
            name: value.into(),
            metadata: map.clone(),
            custom_metadata: map.clone(),
        }],
        groups: vec![GroupFacts {
            id: "g".into(),
            name: "n".into(),
            metadata: map,
        }],
    }
}

/// The template's literal text: everything outside `{{ ... }}`.
fn literal(text: &str) -> String {
    let mut pieces = text.split("{{");
    let mut out = pieces.next().unwrap_or("").to_string();
    for piece in pieces {
        if let Some((_, rest)) = piece.split_once("}}") {
            out.push_str(rest);
        }
    }
    out
}

fn count(s: &str, c: char) -> usize {
    s.chars().filter(|x| *x == c).count()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let template = match Template::parse(text) {
        Ok(None) => {
            assert!(!text.contains("{{") && !text.contains("}}"), "{text:?}");
            return;
        }
        Ok(Some(t)) => t,
        Err(e) => {
            assert_eq!(e.to_string(), "unbalanced templating characters");
            return;
        }
    };
    let evil = facts("a/*+b");
    let plain = facts("v");
    let lit = literal(text);
    for identity in [Some(&evil), Some(&plain), None] {
        for mode in [Mode::Acl, Mode::Json] {
            let input = RenderInput {
                identity,
                mode,
                blocked: &ACL_BLOCKED,
                now: 1_700_000_000,
            };
            if let Ok(out) = template.render(&input) {
                for c in ['/', '*', '+'] {
                    assert_eq!(count(&out, c), count(&lit, c), "{c} added to {text:?}: {out:?}");
                }
            }
            let open = RenderInput { blocked: &[], ..input };
            let _ = template.render(&open);
        }
    }
});
