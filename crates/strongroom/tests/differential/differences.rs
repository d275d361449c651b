//! Every deliberate difference between OpenBao and Strongroom the
//! differential suites accept, with its reason, in one place: what is
//! accepted in every reply ([`ALWAYS`]: paths, exact difference lines, and
//! how error messages are compared), and the named lists single requests
//! pass to `Pair::check`.
//!

use strongroom_test::diff::{Allow, Differences, Known, Pair};
use strongroom_test::server::Config;

/// Both servers in dev mode, comparing under [`ALWAYS`].
#[track_caller]
pub fn pair() -> Pair {
    Pair::dev().accepting(&ALWAYS)
}

/// Both servers from `config`, comparing under [`ALWAYS`].
#[track_caller]
pub fn pair_with_config(config: &Config) -> Pair {
    Pair::with_config(config).accepting(&ALWAYS)
}

/// A rekey with an invalid seal configuration (threshold above shares):
/// OpenBao answers 500, Strongroom 400 with the same message (bad input is a
/// client error).
pub const REKEY_CONFIG_STATUS: &[Allow] = &[Allow {
    pattern: "#status",
    reason: "OpenBao answers an invalid rekey seal configuration with 500; Strongroom with 400, \
             as for any bad input",
}];

/// Audit entries (`audit.rs`): what Strongroom's entries deliberately
/// leave out or word differently.
pub const AUDIT_ENTRY: &[Allow] = &[
    Allow {
        pattern: "/request/remote_port",
        reason: "each client connection's own port",
    },
    Allow {
        pattern: "/request/mount_running_version",
        reason: "the built-in plugin version is the server's own (v2.x+builtin.bao vs v0.x+builtin.strongroom)",
    },
    Allow {
        pattern: "/response/mount_running_plugin_version",
        reason: "the built-in plugin version is the server's own",
    },
    Allow {
        pattern: "/request/client_id",
        reason: "Strongroom does no client counting (OpenBao's activity log): there is no client id",
    },
    Allow {
        pattern: "**/entity_id",
        reason: "no identity store yet (issue 21): Strongroom's tokens have no entity",
    },
    Allow {
        pattern: "/auth/entity_created",
        reason: "no identity store yet (issue 21): a login creates no entity",
    },
];

/// The entries of an unwrap, beside [`AUDIT_ENTRY`].
pub const AUDIT_UNWRAP_ENTRY: &[Allow] = &[Allow {
    pattern: "/auth/display_name",
    reason: "a wrapping token's display name: OpenBao's entries show its creator's (`root`), \
                 Strongroom's the wrapping token's own (`response-wrapping`), as its token \
                 lookups do",
}];

/// What every comparison accepts.
pub static ALWAYS: Differences = Differences {
    allow: &[
        Allow {
            pattern: "/version",
            reason: "each server reports its own version",
        },
        Allow {
            pattern: "/commit_date",
            reason: "each server reports its own build; Strongroom has no commit date",
        },
        Allow {
            pattern: "**/running_plugin_version",
            reason: "the built-in plugin version is the server's own (v2.x+builtin.bao vs v0.x+builtin.strongroom)",
        },
        Allow {
            pattern: "/help",
            reason: "help text is rendered from Strongroom's own path declarations (route syntax, wording)",
        },
        Allow {
            pattern: "/openapi/info",
            reason: "the OpenAPI document names its own server and version",
        },
        Allow {
            pattern: "/info",
            reason: "the OpenAPI document names its own server and version",
        },
        Allow {
            pattern: "/warnings/[]",
            reason: "warnings are advice worded for each server (product name, Strongroom's token hashing, \
                     OpenBao's kv upgrade warning naming version 0); tests assert the ones that matter",
        },
        Allow {
            pattern: "/encryptions",
            reason: "sys/key-status encryptions: each server counts its own writes (Strongroom also counts its \
                     internal records); after a crash Strongroom adds its persist interval to the last persisted \
                     count, so a crash never resets the nonce budget (deliberate, safer)",
        },
        Allow {
            pattern: "/data/encryptions",
            reason: "sys/key-status encryptions: each server counts its own writes (Strongroom also counts its \
                     internal records); after a crash Strongroom adds its persist interval to the last persisted \
                     count, so a crash never resets the nonce budget (deliberate, safer)",
        },
    ],
    known: KNOWN,
    canonical_error,
};

/// Difference lines accepted wherever they occur.
const KNOWN: &[Known] = &[
    Known {
        diff: "/errors/0: \"child policies must be subset of parent\" in openbao, \"child policies must be subset of parent: \\\"root\\\" is not\" in strongroom",
        reason: "Strongroom names the policy the child may not have",
    },
    Known {
        diff: "/errors/0: \"invalid 'token_type' value\" in openbao, \"invalid 'token_type' value \\\"bogus\\\"\" in strongroom",
        reason: "Strongroom quotes the refused value",
    },
    Known {
        diff: "/errors/0: \"error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative\" in openbao, \"invalid duration\" in strongroom",
        reason: "a negative X-Vault-Wrap-TTL is refused as an invalid duration",
    },
    Known {
        diff: "/errors/0: \"invalid value for field \\\"max_lease_ttl\\\"\" in openbao, \"invalid duration\" in strongroom",
        reason: "a non-string TTL in a tune is refused as an invalid duration",
    },
    Known {
        diff: "/errors/0: \"invalid value for field \\\"custom_metadata\\\"\" in openbao, \"custom_metadata must be an object\" in strongroom",
        reason: "Strongroom's message for non-object custom_metadata",
    },
    Known {
        diff: "/errors/0: \"invalid value for field \\\"versions\\\"\" in openbao, \"invalid version \\\"abc\\\"\" in strongroom",
        reason: "Strongroom names the version it cannot parse",
    },
    Known {
        diff: "/errors/0: \"failed to decode JSON input\" in openbao, \"invalid value for field \\\"secret_shares\\\"\" in strongroom",
        reason: "OpenBao decodes sys/init into a Go struct, so a string share count is a JSON error there",
    },
];

/// Error messages are compared by what they say, not by the wording of
/// Go's and Rust's parsers:
/// - a field's value that does not convert (OpenBao: `error converting
///   input for field "x": '' cannot parse value as 'int': strconv...`,
///   optionally behind `Field validation failed: `) becomes
///   `invalid value for field "x"`;
/// - a malformed duration (`time: invalid duration "abc"`, `unknown unit`,
///   behind any prefix) becomes `invalid duration`;
/// - a JSON body that does not parse becomes `failed to decode JSON input`
///   (the parser's position and wording differ);
/// - a policy that does not parse becomes `failed to parse policy` (the
///   HCL parsers' messages differ), except for an invalid capability,
///   compared whole;
/// - an invalid seal configuration becomes `invalid seal configuration`;
/// - a PGP key that does not decode or parse is compared up to `given PGP
///   key` (`error parsing PGP key: error parsing given PGP key`): what
///   follows is the OpenPGP library's own wording (go-crypto's, rPGP's);
/// - OpenBao's `%!w(<nil>)` (a Go formatting bug) is dropped.
pub fn canonical_error(m: &str) -> String {
    let m = m.replace(": %!w(<nil>)", "");
    if let Some(at) = m.find("given PGP key: ") {
        return m[..at + "given PGP key".len()].to_string();
    }
    if m.contains("invalid duration") || m.contains("unknown unit") {
        return "invalid duration".into();
    }
    if m.contains("error converting input") {
        if let Some(field) = m
            .split("for field \"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            return format!("invalid value for field \"{field}\"");
        }
    }
    if m.starts_with("failed to decode JSON input") {
        return "failed to decode JSON input".into();
    }
    if m.starts_with("failed to parse policy") {
        if let Some(cap) = m.find("invalid capability") {
            let path = m.split("path \"").nth(1).and_then(|r| r.split('"').next());
            return format!("path {path:?}: {}", &m[cap..]);
        }
        return "failed to parse policy".into();
    }
    if m.starts_with("invalid seal configuration") {
        return "invalid seal configuration".into();
    }
    m
}

/// `?help=1` answers: their OpenAPI operations are generated from
/// Strongroom's own declarations and differ in detail (operation ids,
/// tags, response schemas).
pub const HELP: &[Allow] = &[
    Allow {
        pattern: "/openapi/paths/**",
        reason: "OpenAPI operations are generated from Strongroom's declarations",
    },
    Allow {
        pattern: "/openapi/components/**",
        reason: "response schemas are not declared yet",
    },
];

/// The whole-server OpenAPI document (`sys/internal/specs/openapi`).
pub const OPENAPI: &[Allow] = &[
    Allow {
        pattern: "/paths/**",
        reason: "OpenAPI operations are generated from Strongroom's declarations",
    },
    Allow {
        pattern: "/components/**",
        reason: "response schemas are not declared yet",
    },
];

/// A namespace other than the root one (Strongroom has no namespaces).
pub const OTHER_NAMESPACE: &[Allow] = &[
    Allow {
        pattern: "#status",
        reason: "contract: any 4xx for a namespace other than root",
    },
    Allow {
        pattern: "/errors",
        reason: "contract: any 4xx for a namespace other than root, with its own message",
    },
];

/// DELETE of a namespace that has child namespaces: refused by both with
/// the same message; OpenBao 2.7.2 answers 400, Strongroom 409 Conflict
/// (as OpenBao's main branch does since: the request is well formed, the
/// namespace's state forbids it).
pub const NAMESPACE_WITH_CHILDREN: &[Allow] = &[Allow {
    pattern: "#status",
    reason: "deliberate: a namespace with children is a 409 Conflict (OpenBao 2.7.2: 400; OpenBao main: 409)",
}];

/// An unlock without an `unlock_key` by a token without sudo: OpenBao
/// 2.7.2 answers 500 "provided empty key"; Strongroom refuses it as the
/// client's fault, a 4xx with its own message (the test checks the range
/// and that the namespace stays locked).
pub const UNLOCK_WITHOUT_KEY: &[Allow] = &[
    Allow {
        pattern: "#status",
        reason: "bad input is a 4xx here; OpenBao answers 500 for a missing unlock key",
    },
    Allow {
        pattern: "/errors",
        reason: "Strongroom words the missing unlock key its own way",
    },
];

/// `LIST sys/namespaces`: OpenBao 2.7.2 lists a namespace's children in
/// no particular order (Go map iteration, different between two calls);
/// the tests compare the sorted keys instead.
pub const NAMESPACE_LIST: &[Allow] = &[Allow {
    pattern: "/data/keys",
    reason: "OpenBao lists namespaces in random order; the sorted keys are compared by the test",
}];

/// Bad AppRole input that OpenBao answers with a 500 (its storage layer's
/// error) and Strongroom with a 400: the same refusal and message,
/// answered as the client's fault, which it is.
pub const BAD_INPUT_400: &[Allow] = &[Allow {
    pattern: "#status",
    reason: "bad input is a 400 here, a 500 in OpenBao",
}];

/// An empty cubbyhole write (OpenBao answers 500 "missing data fields").
pub const EMPTY_CUBBYHOLE_WRITE: &[Allow] = &[Allow {
    pattern: "#status",
    reason: "bad input is a 400 here; OpenBao answers 500 for an empty cubbyhole write",
}];

/// A Kubernetes login while the Kubernetes API is down.
pub const KUBERNETES_DOWN: &[Allow] = &[
    Allow {
        pattern: "#status",
        reason: "the issue demands a clear 5xx when Kubernetes is down (OpenBao 403)",
    },
    Allow {
        pattern: "/errors",
        reason:
            "Strongroom says which Kubernetes API it could not reach (OpenBao: permission denied)",
    },
];

/// Kubernetes config with an invalid `kubernetes_ca_cert`: both store it;
/// Strongroom answers 200 with a warning (OpenBao 204, silent), and its
/// login failure names the setting (OpenBao: permission denied).
pub const KUBERNETES_INVALID_CA: &str =
    "the issue demands a warning naming an unparsable kubernetes_ca_cert at config write \
     (OpenBao stores it silently) and a login failure that names it";

/// A Kubernetes role bound to `*` names and `*` namespaces (OpenBao 204,
/// Strongroom 400): compared by status and message, not by body.
pub const KUBERNETES_STAR_ROLE: &str =
    "deliberate: the seed document refuses a role bound to * for both names and namespaces, \
     since it would let every service account of every namespace log in; issue 15 keeps the \
     refusal (OpenBao stores such a role)";
