//! Typed decoding of request data: [`FieldData::decode`] reads the fields a
//! struct names, each through its declared [`FieldType`] (the same lenient
//! rules as `get_str`, `get_int`, ...), and deserialises the struct from
//! the result. A struct cannot read a name the path does not declare: a
//! path lists the structs its handlers decode with
//! [`Path::decodes`](super::Path::decodes), and building the backend
//! checks each against the path's fields ([`undeclared_fields`]); in debug
//! builds a path that lists its structs refuses to decode any other.

use serde::de::{DeserializeOwned, Visitor};
use serde_json::{Map, Value};

use super::field::{FieldData, FieldType};
use crate::{Error, Result};

/// The names of a struct's fields as serde sees them (after `rename`), in
/// declaration order; `None` for anything that is not a plain struct
/// (e.g. a struct with `#[serde(flatten)]`, which deserialises as a map).
pub fn struct_fields<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut names = None;
    // The introspecting deserializer always fails after recording the
    // names; the error carries nothing of interest.
    let _ = T::deserialize(Names(&mut names));
    names
}

/// The names `T` decodes that `schema` does not declare, or an error when
/// `T` is not a plain struct: what [`Path::decodes`](super::Path::decodes)
/// checks when the backend is built.
pub fn undeclared_fields<T: DeserializeOwned>(
    schema: &[super::Field],
) -> std::result::Result<Vec<&'static str>, String> {
    let names = struct_fields::<T>().ok_or_else(|| {
        format!(
            "{} is not a struct that can be decoded from fields",
            std::any::type_name::<T>()
        )
    })?;
    Ok(names
        .iter()
        .copied()
        .filter(|n| !schema.iter().any(|f| f.name == *n))
        .collect())
}

/// A deserializer that records the field list serde passes to
/// `deserialize_struct` and refuses everything.
struct Names<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> serde::Deserializer<'de> for Names<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> std::result::Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> std::result::Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(serde::de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

impl FieldData {
    /// Decodes the request into `T` through the path's declared fields.
    ///
    /// Each field of `T` must be a declared field of the path (else an
    /// internal error); it is read with its [`FieldType`]'s rules:
    /// strings (numbers and booleans stringified, allowed values checked),
    /// integers (numeric strings accepted), booleans (Go's `ParseBool`),
    /// durations as whole seconds, comma-separated or array string lists,
    /// objects, key-value pairs, and raw values for headers. A field the
    /// request does not give (or gives as null) takes its declared
    /// default, else is absent: an `Option` field then is `None` (the
    /// "is set" of the old readers). A [`nullable`](super::Field::nullable)
    /// field given as null is passed on as null (see [`double_option`]); a
    /// [`raw`](super::Field::raw) field is passed on exactly as given. Fields are read in `T`'s order, and
    /// the first bad one is the 400.
    pub fn decode<T: DeserializeOwned + 'static>(&self) -> Result<T> {
        self.decode_inner(true)
    }

    /// Decodes the request into `T` as [`decode`](Self::decode) does, but
    /// ignoring declared defaults: a field is present only when the request
    /// gives it (not as null, unless the field is nullable). For writes
    /// that change only what is given, where a declared default must not
    /// overwrite a stored value.
    pub fn decode_given<T: DeserializeOwned + 'static>(&self) -> Result<T> {
        self.decode_inner(false)
    }

    fn decode_inner<T: DeserializeOwned + 'static>(&self, defaults: bool) -> Result<T> {
        if cfg!(debug_assertions) {
            if let Some(declared) = &self.decodes {
                if !declared.contains(&std::any::TypeId::of::<T>()) {
                    return Err(Error::internal(format!(
                        "{} is decoded but not declared with Path::decodes",
                        std::any::type_name::<T>()
                    )));
                }
            }
        }
        let names = struct_fields::<T>().ok_or_else(|| {
            Error::internal(format!(
                "{} is not a struct that can be decoded from fields",
                std::any::type_name::<T>()
            ))
        })?;
        let mut obj = Map::new();
        for name in names {
            let field = self.field(name)?;
            if field.raw {
                if let Some(v) = self.given(name) {
                    obj.insert((*name).to_string(), v);
                }
                continue;
            }
            if !defaults && self.given(name).is_none_or(|v| v.is_null()) {
                if field.nullable && self.is_null(name) {
                    obj.insert((*name).to_string(), Value::Null);
                }
                continue;
            }
            match self.coerced(name)? {
                Some(v) => {
                    obj.insert((*name).to_string(), v);
                }
                None if field.nullable && self.is_null(name) => {
                    obj.insert((*name).to_string(), Value::Null);
                }
                None => {}
            }
        }
        crate::json::deserialize_value(Value::Object(obj)).map_err(|e| {
            Error::bad_request(format!(
                "error converting input for field {:?}: {}",
                e.path().to_string(),
                e.inner()
            ))
        })
    }

    /// Checks every declared field the request gives (path captures
    /// aside) against its type and range, as OpenBao's `FieldData.Validate`
    /// does before any handler runs: a bad one is a 400 naming the field,
    /// whether or not the handler reads it. Raw and header fields are the
    /// handler's to check.
    pub fn validate(&self) -> Result<()> {
        for field in self.schema.iter() {
            if field.raw
                || field.ty == FieldType::Header
                || self.captures.contains_key(field.name)
                || !self.raw.contains_key(field.name)
            {
                continue;
            }
            // A string's allowed values are the handler's refusal (OpenBao
            // checks them there, without the validation prefix): only its
            // type is checked here.
            let checked = match (field.ty, self.raw.get(field.name)) {
                (FieldType::String, Some(v @ (Value::Array(_) | Value::Object(_)))) => {
                    Err(FieldData::invalid(field.name, v, FieldType::String))
                }
                (FieldType::String, _) => Ok(()),
                _ => self.coerced(field.name).map(|_| ()),
            };
            checked.map_err(|e| match e {
                Error::BadRequest(m) => Error::BadRequest(format!("Field validation failed: {m}")),
                other => other,
            })?;
        }
        Ok(())
    }

    /// The value of the declared field `name` in its type's canonical JSON
    /// form (durations as seconds), or `None` when absent.
    fn coerced(&self, name: &str) -> Result<Option<Value>> {
        let ty = self.field(name)?.ty;
        Ok(match ty {
            FieldType::String => self.get_str(name)?.map(Value::String),
            FieldType::Int => self.get_int(name)?.map(Value::from),
            FieldType::Bool => self.get_bool(name)?.map(Value::Bool),
            FieldType::DurationSecond => self.get_duration(name)?.map(|d| d.as_secs().into()),
            FieldType::CommaStringSlice => self.get_strings(name)?.map(Value::from),
            FieldType::Map => self.get_map(name)?.map(Value::Object),
            FieldType::KvPairs => self.get_kv_pairs(name)?.map(|pairs| {
                let mut sorted: Vec<_> = pairs.into_iter().collect();
                sorted.sort();
                Value::Object(
                    sorted
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                )
            }),
            FieldType::Header => self.value(name)?,
        })
    }
}

/// Serde helper for an `Option<Option<T>>` field of a decoded struct
/// (`#[serde(default, deserialize_with = "double_option::deserialize")]`)
/// whose field is declared [`nullable`](super::Field::nullable): `None`
/// when absent, `Some(None)` when given as null, `Some(Some(v))` else.
pub mod double_option {
    use serde::{Deserialize, Deserializer};

    /// Deserialises a present value (null included) as `Some`.
    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::framework::Field;

    fn data(v: Value, captures: &[(&str, &str)]) -> FieldData {
        let Value::Object(m) = v else {
            panic!("test data must be an object")
        };
        let captures: HashMap<String, String> = captures
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FieldData::new(
            m,
            captures,
            Arc::from(vec![
                Field::new("name", FieldType::String, ""),
                Field::new("count", FieldType::Int, ""),
                Field::new("flag", FieldType::Bool, ""),
                Field::new("ttl", FieldType::DurationSecond, ""),
                Field::new("list", FieldType::CommaStringSlice, ""),
                Field::new("map", FieldType::Map, ""),
                Field::new("pairs", FieldType::KvPairs, ""),
                Field::new("kind", FieldType::String, "").allowed(&["iam", "gce"]),
                Field::new("with_default", FieldType::Bool, "").default(json!(true)),
            ]),
        )
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default)]
    struct Params {
        name: String,
        count: Option<i64>,
        flag: Option<bool>,
        ttl: Option<u64>,
        list: Option<Vec<String>>,
        map: Option<Map<String, Value>>,
        pairs: Option<HashMap<String, String>>,
        kind: Option<String>,
        with_default: bool,
    }

    #[test]
    fn decodes_with_the_field_types_coercions() {
        let fd = data(
            json!({"name": "ignored, the capture wins", "count": "42", "flag": "t",
                   "ttl": "1h", "list": "a, b,,c", "map": "{\"x\":1}",
                   "pairs": ["k=v"], "kind": "gce", "other": 1}),
            &[("name", "web")],
        );
        let p: Params = fd.decode().unwrap();
        assert_eq!(
            p,
            Params {
                name: "web".into(),
                count: Some(42),
                flag: Some(true),
                ttl: Some(3600),
                list: Some(vec!["a".into(), "b".into(), "c".into()]),
                map: Some(json!({"x": 1}).as_object().unwrap().clone()),
                pairs: Some(HashMap::from([("k".into(), "v".into())])),
                kind: Some("gce".into()),
                with_default: true,
            }
        );
    }

    #[test]
    fn absent_and_null_fields_are_unset() {
        let p: Params = data(json!({"count": null}), &[]).decode().unwrap();
        assert_eq!(p.count, None);
        assert_eq!(p.ttl, None);
        assert!(p.with_default, "the declared default applies");
    }

    #[test]
    fn decode_given_ignores_declared_defaults() {
        #[derive(Debug, Deserialize)]
        struct Given {
            with_default: Option<bool>,
            count: Option<i64>,
        }
        let fd = data(json!({"count": "3"}), &[]);
        let g: Given = fd.decode_given().unwrap();
        assert_eq!((g.with_default, g.count), (None, Some(3)));
        let g: Given = data(json!({"with_default": "f", "count": null}), &[])
            .decode_given()
            .unwrap();
        assert_eq!((g.with_default, g.count), (Some(false), None));
        // Plain decode applies the default.
        let g: Given = fd.decode().unwrap();
        assert_eq!(g.with_default, Some(true));
    }

    #[test]
    fn bad_values_are_400s_naming_the_field() {
        let err = data(json!({"count": "many"}), &[])
            .decode::<Params>()
            .unwrap_err();
        assert!(
            matches!(&err, Error::BadRequest(m) if m.contains("\"count\"")),
            "{err}"
        );
        let err = data(json!({"ttl": "forever"}), &[])
            .decode::<Params>()
            .unwrap_err();
        assert!(
            matches!(&err, Error::BadRequest(m) if m.contains("\"ttl\"")),
            "{err}"
        );
        // A value the type cannot hold (a negative number for u64).
        #[derive(Debug, Deserialize)]
        struct Unsigned {
            #[allow(dead_code)]
            count: Option<u64>,
        }
        let err = data(json!({"count": -1}), &[])
            .decode::<Unsigned>()
            .unwrap_err();
        assert!(
            matches!(&err, Error::BadRequest(m) if m.contains("\"count\"")),
            "{err}"
        );
    }

    #[test]
    fn allowed_values_are_enforced() {
        let err = data(json!({"kind": "gke"}), &[])
            .decode::<Params>()
            .unwrap_err();
        assert!(
            matches!(&err, Error::BadRequest(m) if m == "invalid kind, must be one of: iam, gce"),
            "{err}"
        );
    }

    #[test]
    fn nullable_fields_tell_null_from_absent() {
        #[derive(Debug, Deserialize)]
        struct Given {
            #[serde(default, deserialize_with = "double_option::deserialize")]
            m: Option<Option<Map<String, Value>>>,
        }
        let fd = |v: Value| {
            let Value::Object(m) = v else {
                panic!("test data must be an object")
            };
            FieldData::new(
                m,
                HashMap::new(),
                Arc::from(vec![Field::new("m", FieldType::Map, "").nullable()]),
            )
        };
        assert_eq!(fd(json!({})).decode::<Given>().unwrap().m, None);
        assert_eq!(
            fd(json!({"m": null})).decode::<Given>().unwrap().m,
            Some(None)
        );
        let given = fd(json!({"m": {"a": 1}})).decode::<Given>().unwrap().m;
        assert_eq!(
            given,
            Some(Some(json!({"a": 1}).as_object().unwrap().clone()))
        );
    }

    #[test]
    fn raw_fields_are_passed_as_given() {
        #[derive(Debug, Deserialize)]
        struct Raw {
            #[serde(default, deserialize_with = "double_option::deserialize")]
            data: Option<Option<Value>>,
        }
        let fd = |v: Value| {
            let Value::Object(m) = v else {
                panic!("test data must be an object")
            };
            FieldData::new(
                m,
                HashMap::new(),
                Arc::from(vec![Field::new("data", FieldType::Map, "").raw()]),
            )
        };
        assert_eq!(fd(json!({})).decode::<Raw>().unwrap().data, None);
        assert_eq!(
            fd(json!({"data": null})).decode::<Raw>().unwrap().data,
            Some(None)
        );
        // Not decoded as a map field would be (a JSON string stays a string).
        let given = fd(json!({"data": "{}"})).decode::<Raw>().unwrap().data;
        assert_eq!(given, Some(Some(json!("{}"))));
    }

    #[test]
    fn undeclared_names_cannot_be_read() {
        #[derive(Debug, Deserialize)]
        struct Sneaky {
            #[allow(dead_code)]
            other: Option<String>,
        }
        let err = data(json!({"other": "x"}), &[])
            .decode::<Sneaky>()
            .unwrap_err();
        assert!(matches!(err, Error::Internal(_)), "{err}");
    }

    #[test]
    fn only_the_fields_read_are_checked() {
        #[derive(Debug, Deserialize)]
        struct NameOnly {
            name: String,
        }
        // `count` is bad, but this struct does not read it.
        let p: NameOnly = data(json!({"count": "many"}), &[("name", "a")])
            .decode()
            .unwrap();
        assert_eq!(p.name, "a");
    }
}
