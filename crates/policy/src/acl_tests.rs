//! Tests of the compiled ACL. The expected answers are what OpenBao 2.7.2
//! (`bao server -dev`) returned for the same policies, via
//! `bao token capabilities` and real requests against a kv v1 mount.

use super::*;
use crate::root_policy;
use serde_json::json;
use strongroom_sdk::identity::IdentityFacts;

fn acl(texts: &[&str]) -> Acl {
    let policies: Vec<Arc<Policy>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Arc::new(Policy::parse(&format!("p{i}"), t).unwrap()))
        .collect();
    Acl::new(&policies)
}

fn caps(acl: &Acl, path: &str) -> String {
    acl.capabilities(path).join(", ")
}

fn data(v: Value) -> Data {
    v.as_object().unwrap().clone()
}

fn allowed(acl: &Acl, op: Operation, path: &str, body: Value) -> bool {
    acl.check(path, op, &data(body)).allowed
}

#[test]
fn priority_first_wildcard_later_wins() {
    // bao: secret/a/zip -> list
    let a = acl(&[r#"path "secret/+/zip" {
capabilities = ["read"]
}
        path "secret/a/*" {
capabilities = ["list"]
}"#]);
    assert_eq!(caps(&a, "secret/a/zip"), "list");
}

#[test]
fn priority_not_ending_in_star_wins() {
    // bao: secret/a/zip -> read
    let a = acl(&[r#"path "secret/+/zip" {
capabilities = ["read"]
}
        path "secret/+/zi*" {
capabilities = ["list"]
}"#]);
    assert_eq!(caps(&a, "secret/a/zip"), "read");
    // bao: secret/a/zip -> list
    let a = acl(&[r#"path "secret/+/*" {
capabilities = ["read"]
}
        path "secret/+/zip" {
capabilities = ["list"]
}"#]);
    assert_eq!(caps(&a, "secret/a/zip"), "list");
}

#[test]
fn priority_more_plus_segments_lose() {
    // bao: secret/x/a/b -> list
    let a = acl(&[r#"path "secret/+/+/*" {
capabilities = ["read"]
}
        path "secret/+/a/*" {
capabilities = ["list"]
}"#]);
    assert_eq!(caps(&a, "secret/x/a/b"), "list");
}

#[test]
fn priority_longer_wins() {
    // bao: secret/x/abc -> list, secret/x/ax -> read
    let a = acl(&[r#"path "secret/+/a*" {
capabilities = ["read"]
}
        path "secret/+/ab*" {
capabilities = ["list"]
}"#]);
    assert_eq!(caps(&a, "secret/x/abc"), "list");
    assert_eq!(caps(&a, "secret/x/ax"), "read");
    // Plain prefixes: bao secret/abc -> list, secret/ax -> read, secret/z -> update
    let a = acl(&[r#"path "secret/a*" {
capabilities = ["read"]
}
        path "secret/ab*" {
capabilities = ["list"]
}
        path "secret/*" {
capabilities = ["update"]
}"#]);
    assert_eq!(caps(&a, "secret/abc"), "list");
    assert_eq!(caps(&a, "secret/ax"), "read");
    assert_eq!(caps(&a, "secret/z"), "update");
}

#[test]
fn priority_lexicographically_larger_wins_in_any_order() {
    // bao: secret/x/a/b -> read, whichever block comes first
    for text in [
        r#"path "secret/+/a/+" {
capabilities = ["read"]
}
           path "secret/+/+/b" {
capabilities = ["list"]
}"#,
        r#"path "secret/+/+/b" {
capabilities = ["list"]
}
           path "secret/+/a/+" {
capabilities = ["read"]
}"#,
    ] {
        assert_eq!(caps(&acl(&[text]), "secret/x/a/b"), "read");
    }
}

#[test]
fn exact_rule_beats_globs_and_only_winner_counts() {
    // bao: secret/a -> read (not unioned with the glob); secret/ab -> list, sudo
    let a = acl(&[r#"path "secret/a" {
capabilities = ["read"]
}
        path "secret/a*" {
capabilities = ["list", "sudo"]
}"#]);
    assert_eq!(caps(&a, "secret/a"), "read");
    assert_eq!(caps(&a, "secret/ab"), "list, sudo");
    let d = a.check("secret/a", Operation::Read, &Data::new());
    assert!(d.allowed && !d.sudo);
    // An exact rule with no capabilities shadows the glob: bao a -> deny, ab -> read
    let a = acl(&[r#"path "a" {
capabilities = []
}
        path "a*" {
capabilities = ["read"]
}"#]);
    assert_eq!(caps(&a, "a"), "deny");
    assert_eq!(caps(&a, "ab"), "read");
}

#[test]
fn list_of_a_folder_falls_back_to_the_exact_rule_without_its_slash() {
    // OpenBao: for a LIST, `path "kv/dir"` decides `kv/dir/` before any
    // pattern, so a `read`-only exact rule refuses the listing even though
    // `kv/dir/*` grants `list`; `sys/capabilities` answers the same way.
    let a = acl(&[r#"
path "kv/dir" { capabilities = ["read"] }
path "kv/dir/*" { capabilities = ["list"] }
path "kv/other/*" { capabilities = ["list"] }
"#]);
    assert!(!allowed(&a, Operation::List, "kv/dir/", json!({})));
    assert_eq!(caps(&a, "kv/dir/"), "read");
    // Other operations on the folder path, and folders without an exact
    // rule, still take the pattern.
    assert!(!allowed(&a, Operation::Read, "kv/dir/", json!({})));
    assert!(allowed(&a, Operation::List, "kv/dir/sub/", json!({})));
    assert!(allowed(&a, Operation::List, "kv/other/", json!({})));
    assert_eq!(caps(&a, "kv/other/x/"), "list");
}

#[test]
fn glob_and_segment_matching() {
    let a = acl(&[r#"path "secret/a/*" {
capabilities = ["read"]
}"#]);
    // bao: secret/a -> deny, secret/a/ -> read, secret/a/b/c -> read, secret/b -> deny
    assert_eq!(caps(&a, "secret/a"), "deny");
    assert_eq!(caps(&a, "secret/a/"), "read");
    assert_eq!(caps(&a, "secret/a/b/c"), "read");
    assert_eq!(caps(&a, "secret/b"), "deny");

    // bao: secret/a -> read, secret/a/b -> deny, secret/ -> read, secret -> deny
    let a = acl(&[r#"path "secret/+" {
capabilities = ["read"]
}"#]);
    assert_eq!(caps(&a, "secret/a"), "read");
    assert_eq!(caps(&a, "secret/a/b"), "deny");
    assert_eq!(caps(&a, "secret/"), "read");
    assert_eq!(caps(&a, "secret"), "deny");

    // bao: secret/a -> deny, secret/a/ -> read, secret/a/b/c -> read
    let a = acl(&[r#"path "secret/+/*" {
capabilities = ["read"]
}"#]);
    assert_eq!(caps(&a, "secret/a"), "deny");
    assert_eq!(caps(&a, "secret/a/"), "read");
    assert_eq!(caps(&a, "secret/a/b/c"), "read");

    // `+` inside a segment and `*` before the end are literal.
    // bao: secret/foo+ -> read, secret/foox -> deny, secret/a*b -> read, secret/axb -> deny
    let a = acl(&[r#"path "secret/foo+" {
capabilities = ["read"]
}
        path "secret/a*b" {
capabilities = ["read"]
}"#]);
    assert_eq!(caps(&a, "secret/foo+"), "read");
    assert_eq!(caps(&a, "secret/foox"), "deny");
    assert_eq!(caps(&a, "secret/a*b"), "read");
    assert_eq!(caps(&a, "secret/axb"), "deny");

    // A lone `*` matches everything; a leading `/` in the pattern is dropped.
    let a = acl(&[r#"path "*" {
capabilities = ["read"]
}
        path "/x/y" {
capabilities = ["list"]
}"#]);
    assert_eq!(caps(&a, "a/b/c"), "read");
    assert_eq!(caps(&a, "x/y"), "list");
}

#[test]
fn merging_across_policies() {
    // bao with policies m1, m2, m3: secret/a -> list, read; secret/b -> deny;
    // secret/c -> update; secret/bb -> read
    let a = acl(&[
        r#"path "secret/a" {
capabilities = ["read"]
}"#,
        r#"path "secret/*" {
capabilities = ["update"]
}
           path "secret/a" {
capabilities = ["list"]
}
           path "secret/b" {
capabilities = ["deny"]
}"#,
        r#"path "secret/b*" {
capabilities = ["read"]
}
           path "secret/b" {
capabilities = ["read", "sudo"]
}"#,
    ]);
    assert_eq!(caps(&a, "secret/a"), "list, read");
    assert_eq!(caps(&a, "secret/b"), "deny");
    assert_eq!(caps(&a, "secret/c"), "update");
    assert_eq!(caps(&a, "secret/bb"), "read");
    let d = a.check("secret/b", Operation::Read, &Data::new());
    assert!(!d.allowed && !d.sudo && d.reason.is_some());
}

#[test]
fn operations_map_to_capabilities() {
    let a = acl(&[r#"path "kv/*" {
capabilities = ["read", "list", "sudo"]
}"#]);
    let empty = Data::new();
    assert!(a.check("kv/x", Operation::Read, &empty).allowed);
    assert!(a.check("kv/x", Operation::List, &empty).allowed);
    assert!(a.check("kv/x", Operation::Help, &empty).allowed);
    for op in [
        Operation::Create,
        Operation::Update,
        Operation::Patch,
        Operation::Delete,
    ] {
        let d = a.check("kv/x", op, &empty);
        assert!(!d.allowed, "{op:?}");
        assert_eq!(d.capabilities, ["list", "read", "sudo"]);
        assert!(d.sudo);
    }
    let d = a.check("other", Operation::Help, &empty);
    assert!(!d.allowed);
    assert_eq!(d.capabilities, ["deny"]);
}

#[test]
fn root_allows_everything() {
    let a = Acl::new(&[
        Arc::new(root_policy()),
        Arc::new(
            Policy::parse(
                "x",
                r#"path "*" {
capabilities = ["deny"]
}"#,
            )
            .unwrap(),
        ),
    ]);
    assert!(a.is_root());
    let d = a.check("sys/anything", Operation::Delete, &Data::new());
    assert!(d.allowed && d.root && d.sudo);
    assert_eq!(a.capabilities("x"), ["root"]); // bao token capabilities root x -> root
    assert_eq!(a.wrapping_ttl_bounds("x"), (None, None));
}

#[test]
fn allowed_parameters() {
    // Each line: what bao answered to a write on kv/a with that body.
    let a = acl(&[r#"path "kv/*" {
capabilities = ["create", "update", "read", "patch", "delete", "list"]
        allowed_parameters = { "k" = ["v1", "v2", true, "foo-*", "*-bar"], "Any" = [] }
}"#]);
    let w = |body| allowed(&a, Operation::Update, "kv/a", body);
    assert!(w(json!({"k": "v1"}))); // 204
    assert!(!w(json!({"k": "v3"}))); // 403
    assert!(!w(json!({"k": "true"}))); // values keep their type
    assert!(w(json!({"k": true}))); // 204
    assert!(w(json!({"k": "foo-x"}))); // 204
    assert!(w(json!({"k": "x-bar"}))); // 204
    assert!(!w(json!({"k": "xfoo-x"}))); // 403
    assert!(!w(json!({"k": ["v1", "v2"]}))); // 403: a list is one value
    assert!(w(json!({"ANY": "zz"}))); // keys are case-insensitive
    assert!(!w(json!({"other": "zz"}))); // 403
                                         // Read checks query parameters too (bao: GET kv/a?other=zz -> 403) ...
    assert!(!allowed(
        &a,
        Operation::Read,
        "kv/a",
        json!({"other": "zz"})
    ));
    assert!(allowed(&a, Operation::Create, "kv/a", json!({"k": "v2"})));
    assert!(!allowed(&a, Operation::Patch, "kv/a", json!({"k": "no"})));
    // ... delete and list do not (bao: 204 and 200).
    assert!(allowed(
        &a,
        Operation::Delete,
        "kv/a",
        json!({"other": "zz"})
    ));
    assert!(allowed(&a, Operation::List, "kv/", json!({"other": "zz"})));
}

#[test]
fn star_key_allows_any_other_key_whatever_its_values() {
    // bao: k=1 -> 403, k="1" -> 204, zz="x" -> 204, zz="y" -> 204,
    // l=["a","b"] -> 204, l="a" -> 403
    let a = acl(&[r#"path "kv/*" {
capabilities = ["update"]
        allowed_parameters = { "k" = ["1"], "l" = [["a", "b"]], "*" = ["x"] }
}"#]);
    let w = |body| allowed(&a, Operation::Update, "kv/a", body);
    assert!(!w(json!({"k": 1})));
    assert!(w(json!({"k": "1"})));
    assert!(w(json!({"zz": "x"})));
    assert!(w(json!({"zz": "y"})));
    assert!(w(json!({"l": ["a", "b"]})));
    assert!(!w(json!({"l": "a"})));
    // An empty allowed map restricts nothing (bao: 204).
    let a = acl(&[r#"path "kv/*" {
capabilities = ["update"]
allowed_parameters = {}
}"#]);
    assert!(allowed(&a, Operation::Update, "kv/a", json!({"k": "no"})));
}

#[test]
fn denied_and_required_parameters() {
    // bao: bad=1 -> 403, k=no -> 403, k=x-1 -> 403, k=ok -> 204,
    // k=["ok","no"] -> 204, other=1 -> 204
    let a = acl(&[r#"path "kv/*" {
capabilities = ["update"]
        denied_parameters = { "bad" = [], "k" = ["no", "x-*"] }
}"#]);
    let w = |body| allowed(&a, Operation::Update, "kv/a", body);
    assert!(!w(json!({"bad": "1"})));
    assert!(!w(json!({"k": "no"})));
    assert!(!w(json!({"k": "x-1"})));
    assert!(w(json!({"k": "ok"})));
    assert!(w(json!({"k": ["ok", "no"]})));
    assert!(w(json!({"other": "1"})));

    // A denied "*" refuses any parameter whatever its listed values, but not
    // a request without data (bao: k=y -> 403, k=x -> 403, GET -> 200).
    let a = acl(&[r#"path "kv/*" {
capabilities = ["update", "read"]
        denied_parameters = { "*" = ["x"]
}
allowed_parameters = { "k" = [] }
}"#]);
    assert!(!allowed(&a, Operation::Update, "kv/a", json!({"k": "y"})));
    assert!(allowed(&a, Operation::Read, "kv/a", json!({})));

    // Denied wins over allowed for the same key (bao: k=no -> 403, k=yes -> 204).
    let a = acl(&[r#"path "kv/*" {
capabilities = ["update"]
        allowed_parameters = { "k" = []
}
denied_parameters = { "k" = ["no"] }
}"#]);
    assert!(!allowed(&a, Operation::Update, "kv/a", json!({"k": "no"})));
    assert!(allowed(&a, Operation::Update, "kv/a", json!({"k": "yes"})));

    // bao: k=1 -> 403, r=1 -> 204, GET without r -> 403
    let a = acl(&[r#"path "kv/*" {
capabilities = ["update", "read", "delete"]
        required_parameters = ["r"]
}"#]);
    assert!(!allowed(&a, Operation::Update, "kv/a", json!({"k": "1"})));
    assert!(allowed(&a, Operation::Update, "kv/a", json!({"r": "1"})));
    assert!(!allowed(&a, Operation::Read, "kv/a", json!({})));
    assert!(allowed(&a, Operation::Delete, "kv/a", json!({})));
}

#[test]
fn parameter_maps_merge_across_policies() {
    let m1 = r#"path "kv/*" {
capabilities = ["create", "update"]
allowed_parameters = { "k" = ["a"] }
}"#;
    let m2 = r#"path "kv/*" {
capabilities = ["read"]
allowed_parameters = { "k" = ["b"], "j" = [] }
}"#;
    let m3 = r#"path "kv/*" {
capabilities = ["read"]
allowed_parameters = { "k" = [] }
}"#;
    let m4 = r#"path "kv/*" {
capabilities = ["read"]
}"#;
    // bao m1+m2: k=a 204, k=b 204, k=c 403, j=c 204
    let a = acl(&[m1, m2]);
    let w = |a: &Acl, body| allowed(a, Operation::Update, "kv/a", body);
    assert!(w(&a, json!({"k": "a"})));
    assert!(w(&a, json!({"k": "b"})));
    assert!(!w(&a, json!({"k": "c"})));
    assert!(w(&a, json!({"j": "c"})));
    // bao m1+m3: k=c 204 ([] absorbs); m1+m4: zz=c 403 (no map lifts nothing)
    assert!(w(&acl(&[m1, m3]), json!({"k": "c"})));
    assert!(!w(&acl(&[m1, m4]), json!({"zz": "c"})));

    let d1 = r#"path "kv/*" {
capabilities = ["create", "update"]
denied_parameters = { "k" = ["a"] }
}"#;
    let d2 = r#"path "kv/*" {
capabilities = ["read"]
denied_parameters = { "k" = ["b"] }
}"#;
    let d3 = r#"path "kv/*" {
capabilities = ["read"]
denied_parameters = { "k" = [] }
}"#;
    // bao d1+d2: k=a 403, k=b 403, k=c 204; d1+d3: k=c 403
    let a = acl(&[d1, d2]);
    assert!(!w(&a, json!({"k": "a"})));
    assert!(!w(&a, json!({"k": "b"})));
    assert!(w(&a, json!({"k": "c"})));
    assert!(!w(&acl(&[d1, d3]), json!({"k": "c"})));

    // bao: required lists union: r=a 403, r=a,s=b 204
    let a = acl(&[
        r#"path "kv/*" {
capabilities = ["create", "update"]
required_parameters = ["r"]
}"#,
        r#"path "kv/*" {
capabilities = ["read"]
required_parameters = ["s"]
}"#,
    ]);
    assert!(!w(&a, json!({"r": "a"})));
    assert!(w(&a, json!({"r": "a", "s": "b"})));

    // deny with parameters still denies (bao: GET -> 403)
    let a = acl(&[
        r#"path "kv/*" {
capabilities = ["deny"]
allowed_parameters = { "k" = ["a"] }
}"#,
        m4,
    ]);
    assert!(!allowed(&a, Operation::Read, "kv/a", json!({})));
}

#[test]
fn wrapping_ttl_bounds_merge_to_the_lowest() {
    // bao with both: wrap 4s -> 403, 7s -> 200, 150s -> 403, 250s -> 403
    let a = acl(&[
        r#"path "sys/wrapping/wrap" {
capabilities = ["update"]
min_wrapping_ttl = "10s"
max_wrapping_ttl = "100s"
}"#,
        r#"path "sys/wrapping/wrap" {
capabilities = ["update"]
min_wrapping_ttl = "5s"
max_wrapping_ttl = "200s"
}"#,
    ]);
    assert_eq!(
        a.wrapping_ttl_bounds("sys/wrapping/wrap"),
        (Some(Duration::from_secs(5)), Some(Duration::from_secs(100)))
    );
    assert_eq!(a.wrapping_ttl_bounds("elsewhere"), (None, None));
}

#[test]
fn templated_paths_never_match() {
    // bao default policy: identity/entity/id/ -> deny for a token without entity
    let a = acl(&[r#"path "identity/entity/id/{{identity.entity.id}}" {
capabilities = ["read"]
}"#]);
    assert_eq!(
        caps(&a, "identity/entity/id/{{identity.entity.id}}"),
        "deny"
    );
}

fn identity() -> IdentityFacts {
    use std::collections::BTreeMap;
    use strongroom_sdk::identity::{AliasFacts, GroupFacts};
    let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    IdentityFacts {
        entity_id: "e-1".into(),
        entity_name: "alice".into(),
        entity_metadata: m(&[
            ("team", "blue"),
            ("wild", "+"),
            ("star", "x*"),
            ("up", "../b"),
        ]),
        aliases: vec![AliasFacts {
            id: "a-1".into(),
            mount_accessor: "auth_userpass_1".into(),
            name: "alice-login".into(),
            metadata: m(&[("role", "dev")]),
            custom_metadata: m(&[("site", "paris")]),
        }],
        groups: vec![GroupFacts {
            id: "g-1".into(),
            name: "ops".into(),
            metadata: m(&[("tier", "gold")]),
        }],
    }
}

fn compiled(texts: &[&str], facts: Option<&IdentityFacts>) -> Acl {
    let policies: Vec<Arc<Policy>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Arc::new(Policy::parse(&format!("p{i}"), t).unwrap()))
        .collect();
    Acl::compile(&policies, facts, 0)
}

#[test]
fn templated_paths_render_per_entity() {
    let f = identity();
    let text = r#"
path "secret/{{identity.entity.id}}/*" { capabilities = ["read"] }
path "secret/by-name/{{identity.entity.name}}" { capabilities = ["update"] }
path "secret/team/{{identity.entity.metadata.team}}" { capabilities = ["list"] }
path "secret/alias/{{identity.entity.aliases.auth_userpass_1.name}}/{{identity.entity.aliases.auth_userpass_1.id}}" { capabilities = ["read"] }
path "secret/alias-meta/{{identity.entity.aliases.auth_userpass_1.metadata.role}}/{{identity.entity.aliases.auth_userpass_1.custom_metadata.site}}" { capabilities = ["read"] }
path "secret/group/{{identity.groups.ids.g-1.name}}" { capabilities = ["read"] }
path "secret/gid/{{identity.groups.names.ops.id}}" { capabilities = ["read"] }
path "secret/gmeta/{{identity.groups.names.ops.metadata.tier}}" { capabilities = ["read"] }
"#;
    let a = compiled(&[text], Some(&f));
    assert_eq!(caps(&a, "secret/e-1/x"), "read");
    assert_eq!(caps(&a, "secret/by-name/alice"), "update");
    assert_eq!(caps(&a, "secret/team/blue"), "list");
    assert_eq!(caps(&a, "secret/alias/alice-login/a-1"), "read");
    assert_eq!(caps(&a, "secret/alias-meta/dev/paris"), "read");
    assert_eq!(caps(&a, "secret/group/ops"), "read");
    assert_eq!(caps(&a, "secret/gid/g-1"), "read");
    assert_eq!(caps(&a, "secret/gmeta/gold"), "read");
    // Another entity's paths stay closed, and so does the raw pattern.
    assert_eq!(caps(&a, "secret/e-2/x"), "deny");
    assert_eq!(caps(&a, "secret/{{identity.entity.id}}/x"), "deny");
    assert!(allowed(&a, Operation::Read, "secret/e-1/x", json!({})));
    assert_eq!(
        &*a.check("secret/e-1/x", Operation::Read, &Data::new())
            .granting_policies,
        ["p0".to_string()]
    );
}

#[test]
fn unresolved_templates_drop_their_rule_and_never_widen() {
    let f = identity();
    let text = r#"
path "secret/{{identity.entity.metadata.missing}}" { capabilities = ["read"] }
path "secret/{{identity.entity.metadata.missing}}/*" { capabilities = ["read"] }
path "secret/a/{{identity.entity.aliases.auth_nope.name}}" { capabilities = ["read"] }
path "secret/g/{{identity.groups.names.nope.id}}" { capabilities = ["read"] }
path "secret/w/{{identity.entity.metadata.wild}}/x" { capabilities = ["read"] }
path "secret/s/{{identity.entity.metadata.star}}" { capabilities = ["read"] }
path "secret/u/{{identity.entity.metadata.up}}" { capabilities = ["read"] }
path "secret/list/{{identity.entity.groups.names}}" { capabilities = ["read"] }
path "secret/bogus/{{identity.entity.whatever}}" { capabilities = ["read"] }
path "secret/open" { capabilities = ["read"] }
"#;
    for facts in [Some(&f), None] {
        let a = compiled(&[text], facts);
        for path in [
            "secret/",
            "secret/x",
            "secret/x/y",
            "secret/a/alice-login",
            "secret/g/g-1",
            "secret/w/anything/x",
            "secret/w/+/x",
            "secret/s/x",
            "secret/s/xyz",
            "secret/u/../b",
            "secret/list/ops",
            "secret/bogus/",
        ] {
            assert_eq!(caps(&a, path), "deny", "{path} ({:?})", facts.is_some());
        }
        // The untemplated rule beside them is untouched.
        assert_eq!(caps(&a, "secret/open"), "read");
    }
    // Without an entity, entity templates drop their rules too.
    let a = compiled(
        &[r#"path "secret/{{identity.entity.id}}" { capabilities = ["read"] }"#],
        None,
    );
    assert_eq!(caps(&a, "secret/"), "deny");
}

#[test]
fn policies_may_allow_slashes_and_wildcards_in_substitutions() {
    let f = identity();
    let mut p = Policy::parse(
        "p",
        r#"path "secret/w/{{identity.entity.metadata.wild}}/x" { capabilities = ["read"] }
path "secret/u/{{identity.entity.metadata.up}}" { capabilities = ["read"] }"#,
    )
    .unwrap();
    p.allow_wildcards_in_identity_templates = true;
    let a = Acl::compile(&[Arc::new(p.clone())], Some(&f), 0);
    assert_eq!(caps(&a, "secret/w/anything/x"), "read");
    assert_eq!(caps(&a, "secret/u/../b"), "deny");
    p.allow_slashes_in_identity_templates = true;
    let a = Acl::compile(&[Arc::new(p)], Some(&f), 0);
    assert_eq!(caps(&a, "secret/u/../b"), "read");
}

#[test]
fn templated_rules_merge_with_literal_ones_for_the_same_pattern() {
    let f = identity();
    let a = compiled(
        &[
            r#"path "secret/alice" { capabilities = ["read"] }"#,
            r#"path "secret/{{identity.entity.name}}" { capabilities = ["update"] }"#,
        ],
        Some(&f),
    );
    assert_eq!(caps(&a, "secret/alice"), "read, update");
}

#[test]
fn malformed_templates_are_refused_when_written() {
    // bao: failed to parse policy: path "a/{{x": failed to validate policy
    // templating: unbalanced templating characters
    for text in [
        r#"path "a/{{x" { capabilities = ["read"] }"#,
        r#"path "a/x}}" { capabilities = ["read"] }"#,
        r#"path "a/{{x}}}}" { capabilities = ["read"] }"#,
    ] {
        let e = Policy::parse("p", text).unwrap_err().to_string();
        assert!(
            e.starts_with("failed to parse policy: path \"a/")
                && e.ends_with(
                    ": failed to validate policy templating: unbalanced templating characters"
                ),
            "{e}"
        );
    }
    // Unknown selectors are accepted and simply never resolve.
    let p = Policy::parse(
        "p",
        r#"path "a/{{nothing.here}}" { capabilities = ["read"] }"#,
    )
    .unwrap();
    assert!(p.is_templated());
    assert!(!Policy::parse("p", r#"path "a" {}"#).unwrap().is_templated());
}

#[test]
fn exact_paths_are_answered_without_scanning_wildcards() {
    let mut text = String::from(
        r#"path "secret/exact" {
capabilities = ["read"]
}"#,
    );
    for i in 0..200 {
        text.push_str(&format!(
            "\npath \"secret/+/p{i}\" {{
capabilities = [\"list\"]\n}}\npath \"secret/+/*\" {{
capabilities = [\"update\"]\n}}"
        ));
    }
    let a = acl(&[&text]);
    let (rule, probe) = a.lookup("secret/exact", false);
    assert_eq!(probe.source, Some(Source::Exact));
    assert_eq!(probe.segment_patterns_tested, 0);
    assert_eq!(a.rules[rule.unwrap()].0.text, "secret/exact");
    // A long prefix match stops the segment scan before weaker patterns.
    let a = acl(&[r#"path "secret/a/b/c/*" {
capabilities = ["read"]
}
        path "secret/+/x" {
capabilities = ["list"]
}
        path "secret/+/+/y" {
capabilities = ["list"]
}"#]);
    let (_, probe) = a.lookup("secret/a/b/c/d", false);
    assert_eq!(probe.source, Some(Source::Prefix));
    assert_eq!(probe.segment_patterns_tested, 0);
}

/// A tiny deterministic generator, so the property test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn path(&mut self, wild: bool) -> String {
        let atoms: &[&str] = if wild {
            &["a", "b", "ab", "/", "+", "*", "+/", "", "é", "a*"]
        } else {
            &["a", "b", "ab", "/", "+", "*", "", "é", "//"]
        };
        (0..self.next() % 7).map(|_| self.pick(atoms)).collect()
    }
}

/// The reference: scan every rule, keep the best by OpenBao's priority.
fn naive_best(acl: &Acl, path: &str) -> Option<String> {
    if let Some(&i) = acl.exact.get(path) {
        return Some(acl.rules[i].0.text.clone());
    }
    let mut best: Option<&PatternKey> = None;
    for (key, _) in &acl.rules {
        let matches = if key.plus_segments > 0 {
            acl.segment
                .iter()
                .find(|s| s.key.text == key.text)
                .is_some_and(|s| s.matches(path))
        } else if let Some(prefix) = key.text.strip_suffix('*') {
            path.starts_with(prefix)
        } else {
            false
        };
        if matches && best.is_none_or(|b| key.priority(b) == Ordering::Greater) {
            best = Some(key);
        }
    }
    best.map(|k| k.text.clone())
}

#[test]
fn property_check_never_panics_and_agrees_with_a_full_scan() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let caps_pool = ["read", "list", "update", "deny", "sudo", "create"];
    for _ in 0..300 {
        let mut text = String::new();
        for _ in 0..rng.next() % 8 {
            let mut pattern = rng.path(true);
            while pattern.contains("+*") {
                pattern = pattern.replace("+*", "+");
            }
            text.push_str(&format!(
                "path {:?} {{
capabilities = [{:?}]
allowed_parameters = {{ \"k\" = [\"v*\"] }}
}}\n",
                pattern,
                rng.pick(&caps_pool)
            ));
        }
        let policy = Policy::parse("p", &text).unwrap();
        let a = Acl::new(&[Arc::new(policy)]);
        for _ in 0..30 {
            let path = rng.path(false);
            let (rule, _) = a.lookup(&path, false);
            assert_eq!(
                rule.map(|i| a.rules[i].0.text.clone()),
                naive_best(&a, &path),
                "path {path:?} in\n{text}"
            );
            let body = data(json!({ rng.pick(&["k", "x"]): rng.pick(&["v1", "w"]) }));
            for op in [Operation::Read, Operation::Update, Operation::Help] {
                let d = a.check(&path, op, &body);
                assert!(d.capabilities.windows(2).all(|w| w[0] < w[1]));
                assert_eq!(d.allowed, d.reason.is_none());
            }
        }
    }
}

#[test]
fn mount_access_follows_openbaos_rule() {
    let a = acl(&[r#"
path "app/data/x" { capabilities = ["read"] }
path "kv1/team/*" { capabilities = ["list"] }
path "auth/approle/login" { capabilities = ["update"] }
path "nope/x" { capabilities = ["deny"] }
path "empty/x" { capabilities = [] }
"#]);
    // A rule at or under the mount grants something.
    assert!(a.has_mount_access("app/"));
    assert!(a.has_mount_access("kv1/"));
    assert!(a.has_mount_access("auth/approle/"));
    // Nothing under the mount, or only deny / no capabilities.
    assert!(!a.has_mount_access("other/"));
    assert!(!a.has_mount_access("nope/"));
    assert!(!a.has_mount_access("empty/"));
    // A rule for a longer mount name is not under this mount.
    assert!(!a.has_mount_access("app2/"));
    assert!(!acl(&[]).has_mount_access("app/"));
    assert!(acl_root().has_mount_access("anything/"));
}

#[test]
fn mount_access_of_wildcard_rules() {
    // Without `+` rules a covering `*` rule counts, whatever it grants
    // (OpenBao's bare-mount check returns its permissions, deny included).
    let star = acl(&[r#"path "walled/*" { capabilities = ["deny"] }"#]);
    assert!(star.has_mount_access("walled/"));
    let all = acl(&[r#"path "*" { capabilities = ["read"] }"#]);
    assert!(all.has_mount_access("any/"));
    // With a `+` rule, only `+` rules whose leading segments match count.
    let seg = acl(&[r#"
path "seg/+/x" { capabilities = ["read"] }
path "walled/*" { capabilities = ["deny"] }
path "+/deep/*" { capabilities = ["deny"] }
"#]);
    assert!(seg.has_mount_access("seg/"));
    assert!(!seg.has_mount_access("walled/"));
    assert!(!seg.has_mount_access("other/"));
    let plus_first = acl(&[r#"path "+/data/*" { capabilities = ["read"] }"#]);
    assert!(plus_first.has_mount_access("anykv/"));
    assert!(!plus_first.has_mount_access("two/parts/"));
}

fn acl_root() -> Acl {
    Acl::new(&[Arc::new(root_policy())])
}

#[test]
fn decisions_name_the_policies_that_granted_them() {
    let acl = acl(&[
        r#"path "kv/*" { capabilities = ["read", "list"] }"#,
        r#"path "kv/*" { capabilities = ["read", "update"] }"#,
        r#"path "other/*" { capabilities = ["read"] }"#,
    ]);
    let data = Data::new();
    let names = |op| acl.check("kv/x", op, &data).granting_policies.to_vec();
    assert_eq!(names(Operation::Read), ["p0", "p1"]);
    assert_eq!(names(Operation::List), ["p0"]);
    assert_eq!(names(Operation::Update), ["p1"]);
    // Refused: nobody granted it.
    assert!(names(Operation::Delete).is_empty());
    // A deny anywhere on the pattern: refused, no granting policy.
    let denied = self::acl(&[
        r#"path "kv/*" { capabilities = ["deny"] }"#,
        r#"path "kv/*" { capabilities = ["read"] }"#,
    ]);
    let d = denied.check("kv/x", Operation::Read, &data);
    assert!(!d.allowed && d.granting_policies.is_empty());
}
