//! Typed fields of a backend path and Vault's lenient decoding of request
//! data: numbers given as strings, booleans as `"true"`/`"1"`, durations as
//! `"1h"` or seconds, lists as JSON arrays or comma-separated strings.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::duration::duration_from_json;
use crate::json::{clone_map, clone_value};
use crate::logical::Data;
use crate::{Error, Result};

/// The type of a field, which decides how its raw value is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A string; numbers and booleans are accepted and stringified.
    String,
    /// A signed integer; numeric strings are accepted.
    Int,
    /// A boolean; Go's `ParseBool` strings are accepted.
    Bool,
    /// A duration in seconds; `"1h"`-style strings and numbers accepted.
    DurationSecond,
    /// A list of strings; a comma-separated string is split and trimmed.
    CommaStringSlice,
    /// A JSON object.
    Map,
    /// A map of strings to strings; an object, or `["k=v", ...]`.
    KvPairs,
    /// A header-like map of string lists; an object.
    Header,
}

impl FieldType {
    /// The name shown in help text (Vault's names).
    pub fn help_name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Bool => "bool",
            FieldType::DurationSecond => "duration (sec)",
            FieldType::CommaStringSlice => "slice",
            FieldType::Map => "map",
            FieldType::KvPairs => "keypair",
            FieldType::Header => "header",
        }
    }

    /// The OpenAPI schema of the type.
    pub fn openapi_schema(self) -> Value {
        match self {
            FieldType::String => serde_json::json!({"type": "string"}),
            FieldType::Int => serde_json::json!({"type": "integer"}),
            FieldType::Bool => serde_json::json!({"type": "boolean"}),
            FieldType::DurationSecond => {
                serde_json::json!({"type": "string", "format": "duration"})
            }
            FieldType::CommaStringSlice => {
                serde_json::json!({"type": "array", "items": {"type": "string"}})
            }
            FieldType::Map | FieldType::KvPairs | FieldType::Header => {
                serde_json::json!({"type": "object"})
            }
        }
    }
}

/// A declared field of a path.
#[derive(Debug, Clone)]
pub struct Field {
    /// The parameter name.
    pub name: &'static str,
    /// How its value is decoded.
    pub ty: FieldType,
    /// One-line description for help and OpenAPI.
    pub description: &'static str,
    /// The value used when the request does not give one.
    pub default: Option<Value>,
    /// Whether the request must give it (checked by [`FieldData::require`]).
    pub required: bool,
    /// The only values a string field accepts (`None`: any). Shown in help
    /// and as the OpenAPI `enum`; another value is a 400 naming the field
    /// and the allowed values.
    pub allowed: Option<&'static [&'static str]>,
    /// Whether [`FieldData::decode`] passes an explicit `null` on to the
    /// struct (which tells it from an absent field with
    /// [`double_option`](crate::framework::double_option)), rather than
    /// treating it as absent.
    pub nullable: bool,
    /// Whether [`FieldData::decode`] passes the value exactly as given (no
    /// coercion; an explicit `null` kept), for handlers that check the
    /// raw JSON themselves.
    pub raw: bool,
}

impl Field {
    /// A field with no default.
    pub const fn new(name: &'static str, ty: FieldType, description: &'static str) -> Self {
        Field {
            name,
            ty,
            description,
            default: None,
            required: false,
            allowed: None,
            nullable: false,
            raw: false,
        }
    }

    /// Passes the value to decoded structs exactly as given (builder
    /// style); see [`Field::raw`](Field#structfield.raw).
    pub fn raw(mut self) -> Self {
        self.raw = true;
        self
    }

    /// Passes an explicit `null` on to decoded structs (builder style).
    pub fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }

    /// Restricts a string field to `values` (builder style).
    pub fn allowed(mut self, values: &'static [&'static str]) -> Self {
        self.allowed = Some(values);
        self
    }

    /// The 400 for a value outside [`Field::allowed`] (the wording of
    /// OpenBao's Kubernetes method, the one backend that names the values).
    fn check_allowed(&self, value: &str) -> Result<()> {
        match self.allowed {
            Some(values) if !values.contains(&value) => Err(Error::bad_request(format!(
                "invalid {}, must be one of: {}",
                self.name,
                values.join(", ")
            ))),
            _ => Ok(()),
        }
    }

    /// The OpenAPI schema of the field's value (type, and `enum` for
    /// allowed values).
    pub fn openapi_schema(&self) -> Value {
        let mut schema = self.ty.openapi_schema();
        if let (Some(values), Some(obj)) = (self.allowed, schema.as_object_mut()) {
            obj.insert("enum".into(), Value::from(values.to_vec()));
        }
        schema
    }

    /// Sets the default value (builder style).
    pub fn default(mut self, value: Value) -> Self {
        self.default = Some(value);
        self
    }

    /// Marks the field required (builder style).
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// The request's data seen through a path's declared fields.
#[derive(Debug, Clone)]
pub struct FieldData {
    pub(super) raw: Data,
    pub(super) captures: HashMap<String, String>,
    pub(super) schema: std::sync::Arc<[Field]>,
    /// The structs the path declared with [`Path::decodes`](super::Path::decodes),
    /// when it declared any: in debug builds decoding another struct
    /// through this data is an internal error.
    pub(super) decodes: Option<std::sync::Arc<[std::any::TypeId]>>,
}

impl FieldData {
    /// Combines raw request data with the path captures (which take
    /// precedence) under `schema`.
    pub fn new(
        raw: Data,
        captures: HashMap<String, String>,
        schema: std::sync::Arc<[Field]>,
    ) -> Self {
        FieldData {
            raw,
            captures,
            schema,
            decodes: None,
        }
    }

    /// Restricts (in debug builds) the structs this data decodes to the
    /// path's declared ones; `None` when the path declared none.
    pub(super) fn with_decodes(
        mut self,
        decodes: Option<std::sync::Arc<[std::any::TypeId]>>,
    ) -> Self {
        self.decodes = decodes;
        self
    }

    /// The raw request data (for paths that take arbitrary input).
    pub fn raw(&self) -> &Data {
        &self.raw
    }

    /// Consumes self, returning the raw data.
    pub fn into_raw(self) -> Data {
        self.raw
    }

    /// Names in the raw data that the schema does not declare, sorted.
    pub fn unknown_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .raw
            .keys()
            .filter(|k| !self.schema.iter().any(|f| f.name == k.as_str()))
            .cloned()
            .collect();
        out.sort();
        out
    }

    pub(super) fn field(&self, name: &str) -> Result<&Field> {
        self.schema
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| Error::internal(format!("field {name:?} is not declared")))
    }

    /// The value given for `name` exactly as the request gave it.
    pub(super) fn given(&self, name: &str) -> Option<Value> {
        match self.captures.get(name) {
            Some(c) => Some(Value::String(c.clone())),
            None => self.raw.get(name).map(clone_value),
        }
    }

    /// Whether the request gave `name` as an explicit `null`.
    pub(super) fn is_null(&self, name: &str) -> bool {
        !self.captures.contains_key(name) && matches!(self.raw.get(name), Some(Value::Null))
    }

    /// Whether the request gave a value for `name` (captures count).
    pub fn is_set(&self, name: &str) -> bool {
        self.captures.contains_key(name) || self.raw.contains_key(name)
    }

    /// The raw value given for `name`, or its default.
    pub(super) fn value(&self, name: &str) -> Result<Option<Value>> {
        let field = self.field(name)?;
        if let Some(c) = self.captures.get(name) {
            return Ok(Some(Value::String(c.clone())));
        }
        match self.raw.get(name) {
            Some(Value::Null) | None => Ok(field.default.clone()),
            Some(v) => Ok(Some(clone_value(v))),
        }
    }

    pub(super) fn invalid(name: &str, value: &Value, ty: FieldType) -> Error {
        let shown = shown(value);
        match (ty, value) {
            // OpenBao passes Go's duration parser error through.
            (FieldType::DurationSecond, Value::String(_) | Value::Number(_)) => {
                // Go reads a JSON number as a duration string: `1e20`,
                // `1.5` and numbers past the maximum are invalid there.
                let text = match value {
                    Value::Number(n) => format!("\"{n}\""),
                    _ => shown,
                };
                Error::bad_request(format!(
                    "error converting input for field {name:?}: time: invalid duration {text}"
                ))
            }
            _ => Error::bad_request(format!(
                "error converting input {shown} for field {name:?}: cannot parse as {}",
                ty.help_name()
            )),
        }
    }

    /// Checks that every required field is present.
    pub fn require(&self) -> Result<()> {
        for f in self.schema.iter().filter(|f| f.required) {
            if !self.is_set(f.name) {
                return Err(Error::bad_request(format!("missing {}", f.name)));
            }
        }
        Ok(())
    }

    /// A string field.
    pub fn get_str(&self, name: &str) -> Result<Option<String>> {
        let Some(v) = self.value(name)? else {
            return Ok(None);
        };
        let Some(s) = weak_string(&v) else {
            return Err(Self::invalid(name, &v, FieldType::String));
        };
        self.field(name)?.check_allowed(&s)?;
        Ok(Some(s))
    }

    /// A string field, empty when absent.
    pub fn str_or_empty(&self, name: &str) -> Result<String> {
        Ok(self.get_str(name)?.unwrap_or_default())
    }

    /// A boolean field.
    pub fn get_bool(&self, name: &str) -> Result<Option<bool>> {
        let Some(v) = self.value(name)? else {
            return Ok(None);
        };
        match &v {
            Value::Bool(b) => Ok(Some(*b)),
            Value::String(s) => parse_go_bool(s)
                .map(Some)
                .ok_or_else(|| Self::invalid(name, &v, FieldType::Bool)),
            Value::Number(n) => match n.as_i64() {
                Some(0) => Ok(Some(false)),
                Some(1) => Ok(Some(true)),
                _ => Err(Self::invalid(name, &v, FieldType::Bool)),
            },
            _ => Err(Self::invalid(name, &v, FieldType::Bool)),
        }
    }

    /// An integer field: a JSON integer in i64's range, or a string
    /// holding one; anything else is a 400 naming the field.
    pub fn get_int(&self, name: &str) -> Result<Option<i64>> {
        let Some(v) = self.value(name)? else {
            return Ok(None);
        };
        // As OpenBao (`strconv.ParseInt` of the JSON number's text): a
        // fraction or an exponent is refused, and so is anything outside
        // i64, never clamped.
        let parsed = match &v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| Self::invalid(name, &v, FieldType::Int))
    }

    /// A duration field (see [`duration_from_json`]: whole seconds, or a
    /// `"1h30m"` string, at most
    /// [`MAX_DURATION_SECS`](crate::duration::MAX_DURATION_SECS)); a bad
    /// one is a 400 naming the field.
    pub fn get_duration(&self, name: &str) -> Result<Option<Duration>> {
        let Some(v) = self.value(name)? else {
            return Ok(None);
        };
        if let Value::String(s) = &v {
            if s.is_empty() {
                return Ok(Some(Duration::ZERO));
            }
        }
        duration_from_json(&v)
            .map(Some)
            .map_err(|_| Self::invalid(name, &v, FieldType::DurationSecond))
    }

    /// A list-of-strings field (array, or comma-separated string).
    pub fn get_strings(&self, name: &str) -> Result<Option<Vec<String>>> {
        let Some(v) = self.value(name)? else {
            return Ok(None);
        };
        match &v {
            Value::String(s) => Ok(Some(
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect(),
            )),
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.trim().to_string()),
                    other => weak_string(other)
                        .ok_or_else(|| Self::invalid(name, &v, FieldType::CommaStringSlice)),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            // Go's weak decoding makes a lone number or boolean a list of
            // one, and takes an empty map as an empty list.
            Value::Number(_) | Value::Bool(_) => Ok(weak_string(&v).map(|s| vec![s])),
            Value::Object(m) if m.is_empty() => Ok(Some(Vec::new())),
            _ => Err(Self::invalid(name, &v, FieldType::CommaStringSlice)),
        }
    }

    /// An object field. A JSON string holding an object is accepted too.
    pub fn get_map(&self, name: &str) -> Result<Option<Map<String, Value>>> {
        let Some(v) = self.value(name)? else {
            return Ok(None);
        };
        match &v {
            Value::Object(m) => Ok(Some(clone_map(m))),
            // Go's weak decoding takes an empty list as an empty map.
            Value::Array(a) if a.is_empty() => Ok(Some(Map::new())),
            Value::String(s) if s.is_empty() => Ok(Some(Map::new())),
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => Ok(Some(m)),
                _ => Err(Self::invalid(name, &v, FieldType::Map)),
            },
            _ => Err(Self::invalid(name, &v, FieldType::Map)),
        }
    }

    /// A map of strings (`{"k":"v"}` or `["k=v"]`).
    pub fn get_kv_pairs(&self, name: &str) -> Result<Option<HashMap<String, String>>> {
        let Some(v) = self.value(name)? else {
            return Ok(None);
        };
        kv_pairs(name, &v).map(|pairs| Some(pairs.into_iter().collect()))
    }
}

/// Reads `value` as OpenBao's key-value pairs (`TypeKVPairs`) for the field
/// `name`: an object of scalars, or a list of `key=value` strings (a single
/// string counts as a list of one; numbers and booleans are taken as their
/// text, as Go's weak decoding does). A pair without `=` or with an empty
/// key is refused with OpenBao's message. The pairs come sorted by key.
pub fn kv_pairs(name: &str, value: &Value) -> Result<Vec<(String, String)>> {
    let bad = || FieldData::invalid(name, value, FieldType::KvPairs);
    let scalar = weak_string;
    let mut pairs: Vec<(String, String)> = match value {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| scalar(v).map(|s| (k.clone(), s)).ok_or_else(bad))
            .collect::<Result<_>>()?,
        Value::Array(_) | Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            let items: Vec<String> = match value {
                Value::Array(items) => items
                    .iter()
                    .map(|i| scalar(i).ok_or_else(bad))
                    .collect::<Result<_>>()?,
                single => vec![scalar(single).ok_or_else(bad)?],
            };
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item.split_once('=') {
                    Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                    _ => Err(Error::bad_request(format!(
                        "error converting input for field {name:?}: invalid key pair at index {i} in field {name:?}"
                    ))),
                })
                .collect::<Result<_>>()?
        }
        Value::Null => Vec::new(),
    };
    // Sorted by key (stably); a repeated key keeps its last value, as a Go
    // map filled in order does.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs.reverse();
    pairs.dedup_by(|a, b| a.0 == b.0);
    pairs.reverse();
    Ok(pairs)
}

/// A scalar as Go's weak decoding turns it into a string (what OpenBao's
/// framework does with a number or boolean given for a string): numbers as
/// written, booleans as `"1"` and `"0"`; `None` for null, arrays and
/// objects.
pub fn weak_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        _ => None,
    }
}

/// A bad value as an error message shows it: scalars as given (a string
/// quoted and cut at 64 characters), an array or object only by its kind,
/// so that a message stays short and never walks a deep value.
fn shown(value: &Value) -> String {
    const MAX: usize = 64;
    match value {
        Value::String(s) if s.chars().count() > MAX => {
            let cut: String = s.chars().take(MAX).collect();
            format!("{:?}", format!("{cut}..."))
        }
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Array(_) => "[...]".into(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Object(_) => "{...}".into(),
        scalar => scalar.to_string(),
    }
}

/// Go's `strconv.ParseBool`, which Vault uses for boolean strings.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn data(v: Value, schema: Vec<Field>) -> FieldData {
        let Value::Object(m) = v else { panic!() };
        FieldData::new(m, HashMap::new(), Arc::from(schema))
    }

    #[test]
    fn lenient_decoding() {
        let fd = data(
            json!({"n": "42", "b": "true", "d": "1h", "l": "a, b,,c", "m": "{\"x\":1}", "s": 7}),
            vec![
                Field::new("n", FieldType::Int, ""),
                Field::new("b", FieldType::Bool, ""),
                Field::new("d", FieldType::DurationSecond, ""),
                Field::new("l", FieldType::CommaStringSlice, ""),
                Field::new("m", FieldType::Map, ""),
                Field::new("s", FieldType::String, ""),
                Field::new("def", FieldType::Int, "").default(json!(5)),
            ],
        );
        assert_eq!(fd.get_int("n").unwrap(), Some(42));
        assert_eq!(fd.get_bool("b").unwrap(), Some(true));
        assert_eq!(
            fd.get_duration("d").unwrap(),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(fd.get_strings("l").unwrap().unwrap(), vec!["a", "b", "c"]);
        assert_eq!(fd.get_map("m").unwrap().unwrap()["x"], json!(1));
        assert_eq!(fd.get_str("s").unwrap().unwrap(), "7");
        assert_eq!(fd.get_int("def").unwrap(), Some(5));
        assert!(
            matches!(fd.get_str("undeclared"), Err(Error::Internal(m)) if m.contains("not declared"))
        );
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let fd = data(
            json!({"n": "x", "b": "maybe", "d": "forever", "l": {"a": 1}}),
            vec![
                Field::new("n", FieldType::Int, ""),
                Field::new("b", FieldType::Bool, ""),
                Field::new("d", FieldType::DurationSecond, ""),
                Field::new("l", FieldType::CommaStringSlice, ""),
            ],
        );
        for name in ["n", "b", "d", "l"] {
            let err = match name {
                "n" => fd.get_int(name).unwrap_err(),
                "b" => fd.get_bool(name).unwrap_err(),
                "d" => fd.get_duration(name).unwrap_err(),
                _ => fd.get_strings(name).unwrap_err(),
            };
            assert_eq!(err.status(), 400, "{name}");
        }
        assert_eq!(fd.unknown_fields(), Vec::<String>::new());
    }

    #[test]
    fn integers_are_never_clamped_nor_rounded() {
        let schema = || vec![Field::new("n", FieldType::Int, "")];
        for bad in [
            json!(1.5),
            json!(1.0),
            json!(1e20),
            json!(-1e24),
            json!(u64::MAX),
            json!("1.5"),
            json!("18446744073709551616"),
        ] {
            let err = data(json!({ "n": bad }), schema())
                .get_int("n")
                .unwrap_err();
            assert!(
                matches!(&err, Error::BadRequest(m) if m.contains("for field \"n\"")),
                "{bad}: {err}"
            );
        }
        let fd = data(json!({"n": i64::MAX}), schema());
        assert_eq!(fd.get_int("n").unwrap(), Some(i64::MAX));
    }

    #[test]
    fn huge_durations_are_bad_requests_naming_the_field() {
        let schema = || vec![Field::new("ttl", FieldType::DurationSecond, "")];
        for bad in [
            json!(1e20),
            json!(u64::MAX),
            json!(-1e24),
            json!(9_223_372_037u64),
            json!(1.5),
            json!("2562048h"),
            json!("1e20"),
        ] {
            let err = data(json!({ "ttl": bad }), schema())
                .get_duration("ttl")
                .unwrap_err();
            assert!(
                matches!(&err, Error::BadRequest(m)
                    if m.starts_with("error converting input for field \"ttl\": time: invalid duration")),
                "{bad}: {err}"
            );
        }
        let fd = data(json!({"ttl": 9_223_372_036u64}), schema());
        assert_eq!(
            fd.get_duration("ttl").unwrap(),
            Some(Duration::from_secs(9_223_372_036))
        );
    }

    #[test]
    fn validate_checks_every_declared_field_given() {
        let schema = || {
            vec![
                Field::new("flag", FieldType::Bool, ""),
                Field::new("name", FieldType::String, ""),
                Field::new("body", FieldType::Map, "").raw(),
            ]
        };
        // The handler might never read `flag`: it is checked anyway.
        let err = data(json!({"flag": [], "name": "x"}), schema())
            .validate()
            .unwrap_err();
        assert!(
            matches!(&err, Error::BadRequest(m)
                if m == "Field validation failed: error converting input [] for field \"flag\": cannot parse as bool"),
            "{err}"
        );
        // Raw fields are the handler's to check; undeclared names are not
        // checked (they are warned about).
        data(json!({"body": "text", "other": {}}), schema())
            .validate()
            .unwrap();
        // Go's weak decoding: an empty list is an empty map, an empty map
        // an empty list.
        let fd = data(
            json!({"m": [], "l": {}}),
            vec![
                Field::new("m", FieldType::Map, ""),
                Field::new("l", FieldType::CommaStringSlice, ""),
            ],
        );
        assert_eq!(fd.get_map("m").unwrap(), Some(Map::new()));
        assert_eq!(fd.get_strings("l").unwrap(), Some(Vec::new()));
    }
}

#[cfg(test)]
mod weak_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_become_strings_as_go_weak_decoding_makes_them() {
        assert_eq!(weak_string(&json!(true)).as_deref(), Some("1"));
        assert_eq!(weak_string(&json!(false)).as_deref(), Some("0"));
        assert_eq!(weak_string(&json!(5)).as_deref(), Some("5"));
        assert_eq!(weak_string(&json!("x")).as_deref(), Some("x"));
        assert_eq!(weak_string(&json!([])), None);
        assert_eq!(weak_string(&json!(null)), None);
    }

    #[test]
    fn key_value_pairs_take_openbao_forms() {
        let pairs = |v| kv_pairs("options", &v);
        let p = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            pairs(json!({"version": 2})).unwrap(),
            vec![p("version", "2")]
        );
        assert_eq!(
            pairs(json!(["version=2"])).unwrap(),
            vec![p("version", "2")]
        );
        assert_eq!(pairs(json!("version=2")).unwrap(), vec![p("version", "2")]);
        assert_eq!(
            pairs(json!(["b=1", "a=x=y", "b=2"])).unwrap(),
            vec![p("a", "x=y"), p("b", "2")],
            "sorted, a value may hold '=', the last repeat wins"
        );
        assert_eq!(pairs(json!({"a": true})).unwrap(), vec![p("a", "1")]);
        for bad in [json!(["noequals"]), json!([5]), json!(["=v"])] {
            let err = pairs(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                "error converting input for field \"options\": invalid key pair at index 0 in field \"options\""
            );
        }
        assert!(matches!(
            pairs(json!({"version": {"a": 1}})),
            Err(Error::BadRequest(_))
        ));
    }
}
