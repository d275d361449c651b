//! Fuzz target: the ACL policy parser (`Policy::parse`, HCL or JSON) must
//! never panic nor overflow its stack; every error it returns renders as one
//! line that says it is a policy parse failure; and whatever it accepts
//! compiles into an `Acl` whose answers are consistent with the rules parsed.
//!
//! No `#![forbid(unsafe_code)]` here: `fuzz_target!` expands to the
//! `extern "C"` entry point libFuzzer calls.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use strongroom_sdk::logical::{Data, Operation};
use strongroom_policy::{Acl, Capabilities, Policy};

/// The policy name every input is parsed under.
const NAME: &str = "Fuzz";

/// Paths every compiled ACL is asked about, beside the policy's own.
const PROBES: [&str; 6] = [
    "",
    "secret/foo",
    "sys/wrapping/wrap",
    "auth/token/create",
    "/cubbyhole/a/b",
    "a/b/c/d",
];

/// Operations probed on every path.
const OPS: [Operation; 7] = [
    Operation::Read,
    Operation::Create,
    Operation::Update,
    Operation::Patch,
    Operation::Delete,
    Operation::List,
    Operation::Help,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match Policy::parse(NAME, text) {
        Ok(policy) => policy,
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
            assert!(
                msg.starts_with("failed to parse policy: "),
                "error does not say what failed: {msg:?}"
            );
            return;
        }
    };
    assert_eq!(policy.name, "fuzz", "names are lowercased");
    assert_eq!(policy.raw, text, "the text is kept verbatim");
    for rules in &policy.paths {
        assert!(!rules.path.contains("+*"), "accepted {:?}", rules.path);
        if let (Some(min), Some(max)) = (rules.min_wrapping_ttl, rules.max_wrapping_ttl) {
            assert!(max.is_zero() || max >= min, "accepted max < min");
        }
    }

    // What each exact pattern (no trailing `*`, no `+` segment, no identity
    // template) must answer: the union of its blocks, `deny` overriding.
    let mut exact: Vec<(&str, Capabilities)> = Vec::new();
    for rules in &policy.paths {
        let p = rules.path.as_str();
        // A query path loses one leading `/`, so "//x" rules are not probed.
        if p.ends_with('*') || p.starts_with('/') || p.contains("{{") {
            continue;
        }
        if p.split('/').any(|seg| seg == "+") {
            continue;
        }
        match exact.iter_mut().find(|(q, _)| *q == p) {
            Some((_, caps)) => *caps = *caps | rules.capabilities,
            None => exact.push((p, rules.capabilities)),
        }
    }

    let own: Vec<String> = policy
        .paths
        .iter()
        .map(|r| r.path.replace('*', "x").replace('+', "y"))
        .collect();
    let acl = Acl::new(&[Arc::new(policy.clone())]);
    assert!(!acl.is_root());
    let empty = Data::new();
    for path in PROBES.iter().copied().chain(own.iter().map(String::as_str)) {
        let caps = acl.capabilities(path);
        assert!(!caps.is_empty(), "capabilities of {path:?} are never empty");
        let _ = acl.wrapping_ttl_bounds(path);
        for op in OPS {
            let decision = acl.check(path, op, &empty);
            // `capabilities` looks rules up as a LIST does (OpenBao): for
            // other operations a trailing `/` may pick another rule.
            if op == Operation::List || !path.ends_with('/') {
                assert_eq!(decision.capabilities, caps, "check and capabilities agree");
            }
            assert!(!decision.root);
            assert_eq!(decision.allowed, decision.reason.is_none());
            if decision.allowed && op != Operation::Help {
                assert!(caps.iter().any(|c| c == op.as_str()), "{op:?} on {path:?}");
            }
        }
    }
    for (path, granted) in exact {
        let want = if granted.is_empty() || granted.contains(Capabilities::DENY) {
            vec!["deny".to_string()]
        } else {
            granted.names()
        };
        assert_eq!(acl.capabilities(path), want, "exact rule {path:?}");
    }
});
