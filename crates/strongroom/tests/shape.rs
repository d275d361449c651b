//! Tests of the harness's shape comparison: the differential suites are only
//! as good as its ability to notice a difference.

mod common;

use common::{reply_diffs, shape_diffs, Allow, Reply};
use serde_json::json;

const L: (&str, &str) = ("openbao", "strongroom");

#[test]
fn equal_shapes_with_different_values_agree() {
    let a = json!({"request_id": "a", "data": {"keys": ["x", "y"], "n": 1, "t": true}});
    let b = json!({"request_id": "b", "data": {"keys": ["z"], "n": 99, "t": false}});
    assert!(shape_diffs(&a, &b, L, &[]).is_empty());
}

#[test]
fn missing_and_extra_keys_are_named_with_their_side() {
    let a = json!({"data": {"only_a": 1, "both": 2}});
    let b = json!({"data": {"both": 2, "only_b": "x"}});
    let d = shape_diffs(&a, &b, L, &[]);
    assert_eq!(
        d,
        vec![
            "/data/only_a: only in openbao (number)".to_string(),
            "/data/only_b: only in strongroom (string)".to_string(),
        ]
    );
}

#[test]
fn type_differences_are_found_at_depth_and_inside_arrays() {
    let a = json!({"x": {"y": [{"z": "s"}]}, "w": null});
    let b = json!({"x": {"y": [{"z": 1}]}, "w": {}});
    let d = shape_diffs(&a, &b, L, &[]);
    assert_eq!(
        d,
        vec![
            "/x/y/[]/z: string in openbao, number in strongroom".to_string(),
            "/w: null in openbao, object in strongroom".to_string(),
        ]
    );
}

#[test]
fn keys_with_slashes_are_escaped_and_allow_patterns_match() {
    let a = json!({"data": {"secret/": {"type": "kv"}, "cubbyhole/": {}, "extra/": {}}});
    let b = json!({"data": {"secret/": {"type": "kv"}}});
    // cubbyhole/ is globally allowed; extra/ is not until allowed here.
    assert_eq!(
        shape_diffs(&a, &b, L, &[]),
        vec!["/data/extra~1: only in openbao (object)".to_string()]
    );
    let allow = [Allow {
        pattern: "/*/extra~1",
        reason: "test",
    }];
    assert!(shape_diffs(&a, &b, L, &allow).is_empty());
}

#[test]
fn allow_covers_subtrees_but_not_siblings() {
    let a = json!({"help": "x", "openapi": {"a": 1}, "k": 1});
    let b = json!({"help": "y", "k": "s"});
    let allow = [Allow {
        pattern: "/openapi",
        reason: "test",
    }];
    assert_eq!(
        shape_diffs(&a, &b, L, &allow),
        vec!["/k: number in openbao, string in strongroom".to_string()]
    );
}

#[test]
fn status_differences_are_reported_unless_allowed() {
    let a = Reply {
        status: 404,
        body: json!({"errors": []}),
    };
    let b = Reply {
        status: 400,
        body: json!({"errors": ["x"]}),
    };
    assert_eq!(
        reply_diffs(&a, &b, L, &[]),
        vec!["status: 404 from openbao, 400 from strongroom".to_string()]
    );
    let allow = [Allow {
        pattern: "#status",
        reason: "test",
    }];
    assert!(reply_diffs(&a, &b, L, &allow).is_empty());
}

#[test]
fn empty_body_differs_from_an_object() {
    let a = Reply {
        status: 204,
        body: serde_json::Value::Null,
    };
    let b = Reply {
        status: 204,
        body: json!({"data": null}),
    };
    assert_eq!(
        reply_diffs(&a, &b, L, &[]),
        vec!["/: null in openbao, object in strongroom".to_string()]
    );
}
