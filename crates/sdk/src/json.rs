//! JSON from outside, bounded and stack-safe. OpenBao (Go's
//! `encoding/json`) takes documents up to 10,000 levels deep and stores KV
//! values 5,000 levels deep; serde_json refuses past 128 levels, and its
//! recursive parsing, serialising and cloning of a deep `Value` overflow a
//! 2 MiB tokio worker stack long before 5,000 levels (a debug build
//! overflows parsing objects at about 700 levels).
//!
//! So every JSON document from a client or from storage is read here:
//! - its depth is counted first by a byte scan (no recursion), and a
//!   document deeper than [`MAX_DEPTH`] is refused;
//! - a shallow document (up to [`SHALLOW`] levels) is parsed by serde_json
//!   as usual (the hot path is unchanged);
//! - a deeper one is parsed with serde_json's recursion limit off, through
//!   `serde_stacker`, which moves the recursion onto a fresh heap stack
//!   whenever the current one runs low.
//!
//! Serialising ([`value_to_vec`], [`map_to_vec`], [`serialize_deep`]) runs
//! on a heap stack sized for the value's depth when it is deep
//! (`serde_stacker`'s serializer does not grow the stack per level);
//! cloning ([`clone_value`], [`clone_map`]), typed decoding from a `Value`
//! ([`deserialize_value`]) and recursions over a value ([`grow`],
//! [`merge_patch`]) grow it level by level. `json!` with a client's value
//! inside copies it through serde on the stack: build such objects by
//! moving values in. Dropping a `Value` recurses too, on the current
//! stack, but costs far less per level (about 230 bytes an object level in
//! a debug build, 130 an array level): a [`MAX_DEPTH`]-deep value drops in
//! about 1.4 MiB of a worker's 2 MiB, which is what bounds [`MAX_DEPTH`]
//! (the unit tests drop one on a 2 MiB thread).

use serde::de::{DeserializeOwned, Error as _};
use serde::Serialize;
use serde_json::{Map, Value};

/// The deepest JSON document accepted: 6,000 levels of arrays and objects.
/// It holds OpenBao's cases (KV values 5,000 levels deep, inside their
/// request and storage wrappers) while keeping the recursive `Drop` of a
/// `Value` well inside a 2 MiB stack.
pub const MAX_DEPTH: usize = 6_000;

/// Levels that serde_json parses on the current stack (below its own limit
/// of 128).
pub const SHALLOW: usize = 100;

/// How close to the end of the stack the recursion may come before moving
/// to a new segment, and how large each new segment is.
const RED_ZONE: usize = 128 * 1024;
const SEGMENT: usize = 4 * 1024 * 1024;

/// Stored documents are the values written under [`MAX_DEPTH`] plus the
/// few levels of the entry that wraps them.
const STORED_MARGIN: usize = 16;

/// The nesting depth of a JSON text: the most `[`/`{` open at once outside
/// strings. Counted without recursion; malformed text gets a depth too
/// (the parser then refuses it).
pub fn depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parses a client's JSON document: at most [`MAX_DEPTH`] levels, without
/// stack risk at any depth it accepts.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    parse_bounded(bytes, MAX_DEPTH)
}

/// Parses a JSON document read back from storage: what [`from_slice`]
/// accepts, inside the entry that stored it.
pub fn from_stored<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    parse_bounded(bytes, MAX_DEPTH + STORED_MARGIN)
}

fn parse_bounded<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> serde_json::Result<T> {
    // Nearly every document is shallow: serde_json's own parser, whose
    // recursion limit (128 levels) is safe on any worker stack, takes it
    // with no pre-scan. Only a document it refuses for its depth is
    // measured and, within `limit`, parsed again on grown stacks.
    let first = match serde_json::from_slice(bytes) {
        Ok(value) => return Ok(value),
        Err(e) if is_recursion_limit(&e) => e,
        Err(e) => return Err(e),
    };
    let depth = depth(bytes);
    if depth > limit {
        return Err(serde_json::Error::custom(format!(
            "JSON nested deeper than {limit} levels"
        )));
    }
    if depth <= SHALLOW {
        // The scan and the parser disagree only on malformed text.
        return Err(first);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let mut stacked = serde_stacker::Deserializer::new(&mut de);
    stacked.red_zone = RED_ZONE;
    stacked.stack_size = SEGMENT;
    let value = T::deserialize(stacked)?;
    de.end()?;
    Ok(value)
}

/// Whether serde_json refused a document for nesting deeper than its
/// recursion limit (it has no error code to match; its message is fixed).
fn is_recursion_limit(e: &serde_json::Error) -> bool {
    e.is_syntax() && e.to_string().starts_with("recursion limit exceeded")
}

/// Stack reserved per level when a deep value is serialised (a debug
/// build needs about 700 bytes a level for arrays), beside a fixed base.
const STACK_PER_LEVEL: usize = 2 * 1024;
const STACK_BASE: usize = 256 * 1024;

/// The nesting depth of a value (arrays and objects; a scalar is 0),
/// counted without recursion.
pub fn value_depth(value: &Value) -> usize {
    fn is_container(v: &Value) -> bool {
        matches!(v, Value::Array(_) | Value::Object(_))
    }
    if !is_container(value) {
        return 0;
    }
    let mut max = 0;
    let mut pending: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((v, level)) = pending.pop() {
        max = max.max(level);
        match v {
            Value::Array(items) => pending.extend(
                items
                    .iter()
                    .filter(|c| is_container(c))
                    .map(|c| (c, level + 1)),
            ),
            Value::Object(map) => pending.extend(
                map.values()
                    .filter(|c| is_container(c))
                    .map(|c| (c, level + 1)),
            ),
            _ => {}
        }
    }
    max
}

/// The nesting depth of an object (see [`value_depth`]).
pub fn map_depth(map: &Map<String, Value>) -> usize {
    1 + map.values().map(value_depth).max().unwrap_or(0)
}

/// Whether `value` nests deeper than `limit` levels (arrays and objects),
/// found without allocating: the walk recurses at most `limit` levels and
/// stops at the first container below them.
pub fn deeper_than(value: &Value, limit: usize) -> bool {
    match value {
        Value::Array(items) => limit == 0 || items.iter().any(|v| deeper_than(v, limit - 1)),
        Value::Object(map) => limit == 0 || map.values().any(|v| deeper_than(v, limit - 1)),
        _ => false,
    }
}

/// Runs `f`, which recurses `depth` levels into a value, on the current
/// stack when the value is shallow, else on a fresh heap stack sized for
/// `depth` (serde's `Serialize` of a `Value` recurses with no hook to grow
/// the stack level by level).
pub fn with_stack_for<R>(depth: usize, f: impl FnOnce() -> R) -> R {
    if depth <= SHALLOW {
        return f();
    }
    let size = STACK_BASE.saturating_add(depth.saturating_mul(STACK_PER_LEVEL));
    stacker::grow(size, f)
}

/// Serialises a value as compact JSON, stack-safe at any depth (a shallow
/// value, the usual case, costs one bounded walk and no allocation more).
pub fn value_to_vec(value: &Value) -> serde_json::Result<Vec<u8>> {
    if !deeper_than(value, SHALLOW) {
        return serde_json::to_vec(value);
    }
    with_stack_for(value_depth(value), || serde_json::to_vec(value))
}

/// Serialises an object as compact JSON, stack-safe at any depth.
pub fn map_to_vec(map: &Map<String, Value>) -> serde_json::Result<Vec<u8>> {
    if !map.values().any(|v| deeper_than(v, SHALLOW - 1)) {
        return serde_json::to_vec(map);
    }
    with_stack_for(map_depth(map), || serde_json::to_vec(map))
}

/// `#[serde(serialize_with = "...")]` for a `Value` field of a struct
/// that may hold a client's deep value: stack-safe at any depth.
pub fn serialize_deep<S: serde::Serializer>(
    value: &Value,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if !deeper_than(value, SHALLOW) {
        return value.serialize(serializer);
    }
    with_stack_for(value_depth(value), || value.serialize(serializer))
}

/// Deserialises `T` from a `Value` (serde's recursion over it made
/// stack-safe), keeping the path of a bad field for the message.
pub fn deserialize_value<T: DeserializeOwned>(
    value: Value,
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    let mut stacked = serde_stacker::Deserializer::new(value);
    stacked.red_zone = RED_ZONE;
    stacked.stack_size = SEGMENT;
    serde_path_to_error::deserialize(stacked)
}

/// A deep copy of `value` that grows the stack as deep values need
/// (`Value::clone` recurses on the current stack).
pub fn clone_value(value: &Value) -> Value {
    match value {
        Value::Array(items) => stacker::maybe_grow(RED_ZONE, SEGMENT, || {
            Value::Array(items.iter().map(clone_value).collect())
        }),
        Value::Object(map) => Value::Object(clone_map(map)),
        other => other.clone(),
    }
}

/// A deep copy of an object; see [`clone_value`].
pub fn clone_map(map: &Map<String, Value>) -> Map<String, Value> {
    stacker::maybe_grow(RED_ZONE, SEGMENT, || {
        map.iter()
            .map(|(k, v)| (k.clone(), clone_value(v)))
            .collect()
    })
}

/// Runs `f`, on a fresh heap stack segment if the current stack is close
/// to its end: call it at each level of a recursion over a `Value`.
pub fn grow<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, SEGMENT, f)
}

/// Applies a JSON merge patch (RFC 7396) to `doc`, stack-safe at any
/// depth (the same result as `json_patch::merge`).
pub fn merge_patch(doc: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *doc = clone_value(patch);
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    if let Value::Object(map) = doc {
        for (key, value) in patch {
            if value.is_null() {
                map.shift_remove(key.as_str());
            } else {
                let slot = map.entry(key.as_str()).or_insert(Value::Null);
                grow(|| merge_patch(slot, value));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels))
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(depth(br#"{"a":"[[[{{\"[","b":[1,[2]]}"#), 3);
        assert_eq!(depth(b"1"), 0);
        assert_eq!(depth(nested(7).as_bytes()), 7);
        let v: Value = serde_json::from_str(r#"{"a":"[[","b":[1,[2,{}]],"c":{}}"#).unwrap();
        assert_eq!(value_depth(&v), 4);
        assert_eq!(value_depth(&Value::from(1)), 0);
        assert_eq!(map_depth(v.as_object().unwrap()), 4);
    }

    #[test]
    fn deep_documents_round_trip_on_a_small_stack() {
        // A 2 MiB thread, as a tokio worker: parse, clone, serialise and
        // drop a document at the limit.
        let text = nested(MAX_DEPTH);
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let v: Value = from_slice(text.as_bytes()).expect("at the limit");
                let copy = clone_value(&v);
                assert_eq!(value_depth(&copy), MAX_DEPTH);
                let out = value_to_vec(&copy).expect("serialises");
                assert_eq!(out, text.as_bytes());
                #[derive(serde::Deserialize)]
                struct A {
                    a: Value,
                }
                let a: A = deserialize_value(v).expect("typed decoding");
                assert!(a.a.is_object());
            })
            .expect("spawn");
        handle.join().expect("no stack overflow");
    }

    #[test]
    fn deeper_than_the_limit_is_refused() {
        let err = from_slice::<Value>(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), "JSON nested deeper than 6000 levels");
        // Storage keeps a margin for the entry around a value.
        assert!(from_stored::<Value>(nested(MAX_DEPTH + 2).as_bytes()).is_ok());
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = serde_json::json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(
            &mut doc,
            &serde_json::json!({"a": "z", "c": {"f": null}, "n": [1]}),
        );
        assert_eq!(
            doc,
            serde_json::json!({"a": "z", "c": {"d": "e"}, "n": [1]})
        );
        let mut scalar = serde_json::json!(1);
        merge_patch(&mut scalar, &serde_json::json!({"x": {"y": null}}));
        assert_eq!(scalar, serde_json::json!({"x": {}}));
    }

    #[test]
    fn every_depth_around_serde_json_s_own_limit_parses() {
        // serde_json alone stops at 128 levels; the grown-stack path takes
        // over from there.
        for levels in [SHALLOW, 127, 128, 129, 130, 500] {
            let v: Value = from_slice(nested(levels).as_bytes()).expect("parses");
            assert_eq!(value_depth(&v), levels);
            assert_eq!(value_to_vec(&v).unwrap(), nested(levels).as_bytes());
        }
        let malformed = format!("{}1", "{\"a\":".repeat(200));
        assert!(from_slice::<Value>(malformed.as_bytes()).is_err());
    }

    #[test]
    fn deeper_than_counts_levels_of_containers() {
        let v: Value = serde_json::from_str(r#"{"a":[1,{"b":{}}],"c":2}"#).unwrap();
        assert!(deeper_than(&v, 3));
        assert!(!deeper_than(&v, 4));
        assert!(!deeper_than(&Value::from("x"), 0));
        assert!(deeper_than(&serde_json::json!([]), 0));
    }

    #[test]
    fn trailing_garbage_is_refused_on_both_paths() {
        assert!(from_slice::<Value>(b"{} x").is_err());
        let deep = format!("{} x", nested(SHALLOW + 1));
        assert!(from_slice::<Value>(deep.as_bytes()).is_err());
    }
}
