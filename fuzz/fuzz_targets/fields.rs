//! Fuzz target: request JSON through the SDK's declared-field readers and
//! typed `decode`, and Vault's lenient durations.
//!
//! Two declared field sets stand for the handlers: a token-create-like
//! path (durations, int, bool, string list, key-value pairs, object,
//! string with allowed values, a nullable duration, a raw field) and a
//! mount-tune-like path whose struct narrows the types (`u32`, `bool`
//! without `Option`). For any JSON object body:
//! - no reader and no `decode` panics;
//! - every refusal is a 400, on one line, naming a declared field;
//! - whatever `decode` accepts decodes again to the same value when sent
//!   back in its canonical form (the round trip a client relies on when it
//!   writes back what it read).
//!
//! For any text, `parse_duration` never panics, its error is one line, and
//! an accepted duration's whole seconds (below 2^53) parse back from both
//! `"<n>s"` and `format_secs`.
//!
//! No `#![forbid(unsafe_code)]` here: `fuzz_target!` expands to the
//! `extern "C"` entry point libFuzzer calls.
#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use strongroom_sdk::duration::{format_secs, parse_duration};
use strongroom_sdk::framework::{double_option, Field, FieldData, FieldType};
use strongroom_sdk::Error;

/// A token-create-like path's fields.
fn token_schema() -> Vec<Field> {
    vec![
        Field::new("ttl", FieldType::DurationSecond, "ttl"),
        Field::new("explicit_max_ttl", FieldType::DurationSecond, "max").default(json!("0")),
        Field::new("period", FieldType::DurationSecond, "period").nullable(),
        Field::new("num_uses", FieldType::Int, "uses"),
        Field::new("renewable", FieldType::Bool, "renewable").default(json!(true)),
        Field::new("policies", FieldType::CommaStringSlice, "policies"),
        Field::new("meta", FieldType::KvPairs, "meta"),
        Field::new("config", FieldType::Map, "config"),
        Field::new("display_name", FieldType::String, "name"),
        Field::new("type", FieldType::String, "type").allowed(&["service", "batch", "default"]),
        Field::new("entity_alias", FieldType::String, "alias").raw(),
        Field::new("headers", FieldType::Header, "headers"),
    ]
}

/// What a handler of the token-like path decodes.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct TokenLike {
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explicit_max_ttl: Option<u64>,
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    period: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_uses: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    renewable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policies: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_alias: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Value>,
}

/// A mount-tune-like path's fields.
fn mount_schema() -> Vec<Field> {
    vec![
        Field::new("default_lease_ttl", FieldType::DurationSecond, "ttl"),
        Field::new("max_lease_ttl", FieldType::DurationSecond, "max"),
        Field::new("local", FieldType::Bool, "local").default(json!(false)),
        Field::new("max_versions", FieldType::Int, "versions"),
        Field::new("allowed_keys", FieldType::CommaStringSlice, "keys"),
        Field::new("options", FieldType::Map, "options"),
        Field::new("description", FieldType::String, "description"),
    ]
}

/// What a handler of the mount-like path decodes: narrower types.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct MountLike {
    #[serde(skip_serializing_if = "Option::is_none")]
    default_lease_ttl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_lease_ttl: Option<u64>,
    local: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_versions: Option<u32>,
    #[serde(default)]
    allowed_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

/// Both schemas, built once.
fn schemas() -> &'static (Arc<[Field]>, Arc<[Field]>) {
    static SCHEMAS: OnceLock<(Arc<[Field]>, Arc<[Field]>)> = OnceLock::new();
    SCHEMAS.get_or_init(|| (Arc::from(token_schema()), Arc::from(mount_schema())))
}

/// A refusal must be a one-line 400 naming one of the declared fields.
fn check_refusal(e: &Error, schema: &[Field]) {
    let msg = e.to_string();
    assert_eq!(e.status(), 400, "not a 400: {msg:?}");
    assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
    assert!(
        schema.iter().any(|f| msg.contains(f.name)),
        "error names no field: {msg:?}"
    );
}

/// Decodes `body` as `T` under `schema`, checks refusals, and checks the
/// round trip of what is accepted.
fn decode_round_trip<T>(body: &Map<String, Value>, schema: &Arc<[Field]>)
where
    T: serde::de::DeserializeOwned + Serialize + PartialEq + std::fmt::Debug + 'static,
{
    let data = FieldData::new(body.clone(), HashMap::new(), schema.clone());
    match data.decode::<T>() {
        Ok(decoded) => {
            let Value::Object(canonical) = serde_json::to_value(&decoded).expect("serialisable")
            else {
                panic!("a struct serialises as an object");
            };
            let again = FieldData::new(canonical.clone(), HashMap::new(), schema.clone())
                .decode::<T>()
                .unwrap_or_else(|e| panic!("canonical form {canonical:?} refused: {e}"));
            assert_eq!(again, decoded, "round trip through {canonical:?}");
        }
        Err(e) => check_refusal(&e, schema),
    }
    // Every reader on every declared field, whatever its declared type.
    for field in schema.iter() {
        let name = field.name;
        let outcomes = [
            data.get_str(name).err(),
            data.get_bool(name).err(),
            data.get_int(name).err(),
            data.get_duration(name).err(),
            data.get_strings(name).err(),
            data.get_map(name).err(),
            data.get_kv_pairs(name).err(),
        ];
        for e in outcomes.iter().flatten() {
            check_refusal(e, schema);
        }
    }
    // No integer is clamped: an accepted `Int` field is exactly the
    // number the client sent (issue 14: 2^64 once became i64::MAX).
    for field in schema.iter().filter(|f| f.ty == FieldType::Int) {
        let Ok(Some(n)) = data.get_int(field.name) else {
            continue;
        };
        match body.get(field.name) {
            Some(Value::Number(num)) => {
                if let Some(i) = num.as_i64() {
                    assert_eq!(i, n, "{} = {num}", field.name);
                } else if let Some(u) = num.as_u64() {
                    assert_eq!(i64::try_from(u).ok(), Some(n), "{} = {num} clamped", field.name);
                } else if let Some(f) = num.as_f64() {
                    // 2^63 as f64: the first value no i64 holds.
                    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
                    assert!(
                        f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f),
                        "{} = {num} accepted as {n}",
                        field.name
                    );
                }
            }
            Some(Value::String(text)) => {
                if let Ok(i) = text.trim().parse::<i64>() {
                    assert_eq!(i, n, "{} = {text:?}", field.name);
                } else if text.trim().parse::<i128>().is_ok() {
                    panic!("{} = {text:?} (out of range) accepted as {n}", field.name);
                }
            }
            _ => {}
        }
    }
    let _ = data.unknown_fields();
    let _ = data.require();
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_duration(text) {
        // Below 2^53 seconds, where the parser's f64 sum is exact.
        Ok(d) if d.as_secs() < 1 << 53 => {
            let secs = d.as_secs();
            assert_eq!(
                parse_duration(&format!("{secs}s")),
                Ok(Duration::from_secs(secs))
            );
            assert_eq!(
                parse_duration(&format_secs(secs)),
                Ok(Duration::from_secs(secs)),
                "format_secs({secs})"
            );
        }
        Ok(_) => {}
        Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error: {e}"),
    }
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let (token, mount) = schemas();
    decode_round_trip::<TokenLike>(&body, token);
    decode_round_trip::<MountLike>(&body, mount);
});
