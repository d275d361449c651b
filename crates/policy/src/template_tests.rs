//! The cases of OpenBao's `identitytpl` tests (`TestPopulate_Basic`), in
//! the same order and with the same expectations, plus what the parse
//! step adds.

use super::*;

const NOW: i64 = 2_000_000_000;

#[derive(Default)]
struct Case {
    mode: Option<Mode>,
    input: &'static str,
    blocked: &'static [&'static str],
    entity_name: &'static str,
    metadata: &'static [(&'static str, &'static str)],
    alias_accessor: &'static str,
    alias_id: &'static str,
    alias_name: &'static str,
    alias_metadata: &'static [(&'static str, &'static str)],
    alias_custom: &'static [(&'static str, &'static str)],
    group_name: &'static str,
    memberships: &'static [&'static str],
    nil_entity: bool,
    output: &'static str,
    err: &'static str,
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn facts(c: &Case) -> Option<IdentityFacts> {
    if c.nil_entity {
        return None;
    }
    let mut f = IdentityFacts {
        entity_id: "entityID".into(),
        entity_name: c.entity_name.into(),
        entity_metadata: map(c.metadata),
        ..Default::default()
    };
    if !c.alias_accessor.is_empty() {
        f.aliases.push(AliasFacts {
            id: c.alias_id.into(),
            mount_accessor: c.alias_accessor.into(),
            name: c.alias_name.into(),
            metadata: map(c.alias_metadata),
            custom_metadata: map(c.alias_custom),
        });
    }
    if !c.group_name.is_empty() {
        f.groups.push(GroupFacts {
            id: "groupID".into(),
            name: c.group_name.into(),
            metadata: BTreeMap::new(),
        });
    }
    for (i, g) in c.memberships.iter().enumerate() {
        f.groups.push(GroupFacts {
            id: format!("{g}_{i}"),
            name: g.to_string(),
            metadata: BTreeMap::new(),
        });
    }
    Some(f)
}

fn run(c: &Case) -> Result<String, String> {
    let t = match Template::parse(c.input) {
        Ok(None) => return Ok(c.input.to_string()),
        Ok(Some(t)) => t,
        Err(e) => return Err(e.to_string()),
    };
    let f = facts(c);
    t.render(&RenderInput {
        identity: f.as_ref(),
        mode: c.mode.unwrap_or(Mode::Acl),
        blocked: c.blocked,
        now: NOW,
    })
    .map_err(|e| e.to_string())
}

const NOT_FOUND: &str = "no value could be found for one of the template directives";
const UNBALANCED: &str = "unbalanced templating characters";

#[test]
fn openbao_identitytpl_cases() {
    let json = Some(Mode::Json);
    let cases = vec![
        Case {
            input: "{{time.now}}",
            output: "2000000000",
            ..Default::default()
        },
        Case {
            input: "{{time.now.plus.1h}}",
            output: "2000003600",
            ..Default::default()
        },
        Case {
            input: "{{time.now.minus.5m}}",
            output: "1999999700",
            ..Default::default()
        },
        Case {
            input: "{{time.now.divide.5m}}",
            err: "invalid time operator \"divide\"",
            ..Default::default()
        },
        Case {
            input: "{{time.now.plus}}",
            err: "missing time operand",
            ..Default::default()
        },
        Case {
            input: "path foobar {",
            output: "path foobar {",
            ..Default::default()
        },
        Case {
            input: "path foobar}} {",
            err: UNBALANCED,
            ..Default::default()
        },
        Case {
            input: "path }} {{foobar}} {",
            err: UNBALANCED,
            ..Default::default()
        },
        Case {
            input: "path {{foobar}} }}",
            err: UNBALANCED,
            ..Default::default()
        },
        Case {
            input: "path /{{identity.entity.id}}/ {",
            output: "path /entityID/ {",
            ..Default::default()
        },
        Case {
            input: "path {{identity.entity.name}} {\n\tval = {{identity.entity.metadata.foo}}\n}",
            entity_name: "entityName",
            metadata: &[("foo", "bar")],
            output: "path entityName {\n\tval = bar\n}",
            ..Default::default()
        },
        Case {
            input: "path {{identity.entity.name}} {\n\tval = {{identity.entity.metadata.foo}}\n}",
            metadata: &[("foo", "bar")],
            err: NOT_FOUND,
            ..Default::default()
        },
        Case {
            input: "path {{identity.entity.id}} {\n\tval = {{ent}}ity.metadata.foo}}\n}",
            err: UNBALANCED,
            ..Default::default()
        },
        Case {
            input: "path {{identity.entity.id}} {\n\tval = {{ent{{ity.metadata.foo}}\n}",
            err: UNBALANCED,
            ..Default::default()
        },
        // OpenBao renders piece by piece and reports the missing entity
        // before it reaches the unbalanced piece; parsing first reports the
        // imbalance. Either way nothing renders.
        Case {
            input: "path {{identity.entity.id}} {\n\tval = {{ent{{ity.metadata.foo}}\n}",
            nil_entity: true,
            err: UNBALANCED,
            ..Default::default()
        },
        Case {
            input: "path name {\n\tval = foo\n}",
            nil_entity: true,
            output: "path name {\n\tval = foo\n}",
            ..Default::default()
        },
        Case {
            input: "path {{ identity.entity.name}} {\n\tval = {{identity.entity.aliases.foomount.id}}  nval = {{identity.entity.aliases.foomount.name}}\n}",
            entity_name: "entityName",
            alias_accessor: "foomount",
            alias_id: "aliasID",
            alias_name: "aliasName",
            output: "path entityName {\n\tval = aliasID  nval = aliasName\n}",
            ..Default::default()
        },
        Case {
            input: "path foobar {\n\tval = {{identity.entity.aliases.foomount}}\n}",
            alias_accessor: "foomount",
            err: "invalid alias selector",
            ..Default::default()
        },
        Case {
            input: "path \"foobar\" {\n\tval = {{identity.entity.aliases.barmount.id}}\n}",
            alias_accessor: "foomount",
            err: "alias not found",
            ..Default::default()
        },
        Case {
            input: "path \"{{identity.entity.name}}\" {\n\tval = {{identity.entity.aliases.foomount.metadata.zip}}\n}",
            entity_name: "entityName",
            alias_accessor: "foomount",
            alias_id: "aliasID",
            alias_metadata: &[("zip", "zap")],
            output: "path \"entityName\" {\n\tval = zap\n}",
            ..Default::default()
        },
        Case {
            input: "path \"{{identity.groups.ids.groupID.name}}\" {\n\tval = {{identity.entity.name}}\n}",
            entity_name: "entityName",
            group_name: "groupName",
            output: "path \"groupName\" {\n\tval = entityName\n}",
            ..Default::default()
        },
        Case {
            input: "path \"{{identity.groups.ids.hroupID.name}}\" {\n\tval = {{identity.entity.name}}\n}",
            entity_name: "entityName",
            group_name: "groupName",
            err: "entity is not a member of group \"hroupID\"",
            ..Default::default()
        },
        Case {
            input: "path \"{{identity.groups.names.groupName.id}}\" {\n\tval = {{identity.entity.name}}\n}",
            entity_name: "entityName",
            group_name: "groupName",
            output: "path \"groupID\" {\n\tval = entityName\n}",
            ..Default::default()
        },
        Case {
            input: "path \"{{identity.groups.names.hroupName.id}}\" {\n\tval = {{identity.entity.name}}\n}",
            entity_name: "entityName",
            group_name: "groupName",
            err: "entity is not a member of group \"hroupName\"",
            ..Default::default()
        },
        Case {
            input: "{{identity.entity.metadata}}",
            metadata: &[("foo", "bar")],
            err: NOT_FOUND,
            ..Default::default()
        },
        Case {
            input: "{{identity.entity.aliases.foomount.metadata}}",
            alias_accessor: "foomount",
            alias_metadata: &[("foo", "bar")],
            err: NOT_FOUND,
            ..Default::default()
        },
        Case {
            input: "{{identity.entity.groups.names}}",
            memberships: &["foo", "bar"],
            err: NOT_FOUND,
            ..Default::default()
        },
        Case {
            input: "{{identity.entity.groups.ids}}",
            memberships: &["foo", "bar"],
            err: NOT_FOUND,
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.id}}",
            output: "\"entityID\"",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.name}}",
            entity_name: "entityName",
            output: "\"entityName\"",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.name}}",
            output: "\"\"",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.aliases.foomount.id}} {{identity.entity.aliases.foomount.name}}",
            alias_accessor: "foomount",
            alias_id: "aliasID",
            alias_name: "aliasName",
            output: "\"aliasID\" \"aliasName\"",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.metadata.color}}",
            metadata: &[("foo", "bar"), ("color", "green")],
            output: "\"green\"",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.metadata.size}}",
            metadata: &[("foo", "bar"), ("color", "green")],
            output: "\"\"",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.metadata}}",
            metadata: &[("foo", "bar"), ("color", "green")],
            output: r#"{"color":"green","foo":"bar"}"#,
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.metadata}}",
            output: "{}",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.groups.names}}",
            memberships: &["foo", "bar"],
            output: r#"["foo","bar"]"#,
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.groups.ids}}",
            memberships: &["foo", "bar"],
            output: r#"["foo_0","bar_1"]"#,
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.aliases.aws_123.metadata.color}}",
            alias_accessor: "aws_123",
            alias_metadata: &[("foo", "bar"), ("color", "green")],
            output: "\"green\"",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.aliases.aws_123.metadata.size}}",
            alias_accessor: "aws_123",
            alias_metadata: &[("foo", "bar"), ("color", "green")],
            output: "\"\"",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.aliases.aws_123.metadata.size}}",
            alias_accessor: "not_gonna_match",
            alias_metadata: &[("foo", "bar"), ("color", "green")],
            output: "\"\"",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.aliases.aws_123.metadata}}",
            alias_accessor: "aws_123",
            alias_metadata: &[("foo", "bar"), ("color", "green")],
            output: r#"{"color":"green","foo":"bar"}"#,
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.aliases.aws_123.metadata}}",
            alias_accessor: "aws_123",
            output: "{}",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.aliases.aws_123.metadata}}",
            alias_accessor: "not_gonna_match",
            alias_metadata: &[("foo", "bar"), ("color", "green")],
            output: "{}",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.aliases.aws_123.custom_metadata.foo}}",
            alias_accessor: "aws_123",
            alias_custom: &[("foo", "abc"), ("bar", "123")],
            output: "\"abc\"",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.aliases.aws_123.custom_metadata.size}}",
            alias_accessor: "not_gonna_match",
            alias_custom: &[("foo", "abc"), ("bar", "123")],
            output: "\"\"",
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.aliases.aws_123.custom_metadata}}",
            alias_accessor: "aws_123",
            alias_custom: &[("foo", "abc"), ("bar", "123")],
            output: r#"{"bar":"123","foo":"abc"}"#,
            ..Default::default()
        },
        Case {
            mode: json,
            input: "{{identity.entity.aliases.aws_123.custom_metadata}}",
            alias_accessor: "not_gonna_match",
            output: "{}",
            ..Default::default()
        },
        // Wildcard injection.
        Case {
            input: r#"path "*" {{identity.entity.metadata.x}}"#,
            blocked: &["*", "+"],
            metadata: &[("x", "ok"), ("unused_wildcard_is_ok", "*")],
            output: r#"path "*" ok"#,
            ..Default::default()
        },
        Case {
            input: r#"path "bad" {{identity.entity.metadata.x}}"#,
            blocked: &["*", "+"],
            metadata: &[("x", "this * is not ok")],
            err: r#"template substitution contains forbidden value "*""#,
            ..Default::default()
        },
        Case {
            input: r#"path "ok" "{{identity.entity.metadata.x}}""#,
            metadata: &[("x", "this + is * explicitly allowed")],
            output: r#"path "ok" "this + is * explicitly allowed""#,
            ..Default::default()
        },
        Case {
            mode: json,
            input: r#"{ "test/bad": {{identity.entity.metadata.x}} }"#,
            metadata: &[("x", "this * is also + ok")],
            output: r#"{ "test/bad": "this * is also + ok" }"#,
            ..Default::default()
        },
        Case {
            mode: json,
            input: r#"{ "test/bad": {{identity.entity.metadata.x}} }"#,
            blocked: &["that", "this", "other"],
            metadata: &[("x", r#"+ and * are ok, but "this" is not"#)],
            err: r#"template substitution contains forbidden value "this""#,
            ..Default::default()
        },
    ];
    for c in &cases {
        let got = run(c);
        if c.err.is_empty() {
            assert_eq!(got.as_deref(), Ok(c.output), "{}", c.input);
        } else {
            assert_eq!(got, Err(c.err.to_string()), "{}", c.input);
        }
    }
}

#[test]
fn group_metadata_and_other_selectors() {
    let f = IdentityFacts {
        entity_id: "e1".into(),
        groups: vec![GroupFacts {
            id: "g1".into(),
            name: "devs".into(),
            metadata: map(&[("team", "blue")]),
        }],
        ..Default::default()
    };
    let render = |s: &str| {
        Template::parse(s).unwrap().unwrap().render(&RenderInput {
            identity: Some(&f),
            mode: Mode::Acl,
            blocked: &ACL_BLOCKED,
            now: NOW,
        })
    };
    assert_eq!(
        render("t/{{identity.groups.names.devs.metadata.team}}"),
        Ok("t/blue".into())
    );
    assert_eq!(
        render("t/{{identity.groups.ids.g1.metadata.nope}}"),
        Err(RenderError::NotFound)
    );
    assert_eq!(
        render("{{identity.groups.other.devs.id}}"),
        Err(RenderError::InvalidGroupsSelector)
    );
    assert_eq!(
        render("{{identity.groups.ids.g1}}"),
        Err(RenderError::InvalidGroupsAccessor)
    );
    assert_eq!(render("{{identity.entity}}"), Err(RenderError::NotFound));
    assert_eq!(render("{{something.else}}"), Err(RenderError::NotFound));
    assert_eq!(
        render("{{time.later}}"),
        Err(RenderError::InvalidTimeSelector("later".into()))
    );
    // A metadata key may hold dots: everything after `metadata.` is the key.
    let g = IdentityFacts {
        entity_metadata: map(&[("a.b", "x")]),
        ..f.clone()
    };
    let t = Template::parse("{{identity.entity.metadata.a.b}}")
        .unwrap()
        .unwrap();
    let input = RenderInput {
        identity: Some(&g),
        mode: Mode::Acl,
        blocked: &ACL_BLOCKED,
        now: NOW,
    };
    assert_eq!(t.render(&input), Ok("x".into()));
    // A group's directives fail without groups, even when malformed.
    let none = IdentityFacts::default();
    let t = Template::parse("{{identity.groups.bogus}}")
        .unwrap()
        .unwrap();
    let input = RenderInput {
        identity: Some(&none),
        ..input
    };
    assert_eq!(t.render(&input), Err(RenderError::NoGroups));
}

#[test]
fn blocked_characters_stop_path_escapes() {
    let f = IdentityFacts {
        entity_id: "e1".into(),
        entity_name: "../admin".into(),
        ..Default::default()
    };
    let t = Template::parse("kv/{{identity.entity.name}}/*")
        .unwrap()
        .unwrap();
    let mut input = RenderInput {
        identity: Some(&f),
        mode: Mode::Acl,
        blocked: &ACL_BLOCKED,
        now: NOW,
    };
    assert_eq!(t.render(&input), Err(RenderError::Forbidden("/".into())));
    input.blocked = &[];
    assert_eq!(t.render(&input), Ok("kv/../admin/*".into()));
    assert!(!t.reads_time());
    assert!(Template::parse("{{time.now}}")
        .unwrap()
        .unwrap()
        .reads_time());
}
