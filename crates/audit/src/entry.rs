//! One audit entry, in OpenBao's JSON shape (one object per line): `time`,
//! `type` (`request` or `response`), `auth`, `request`, `response`,
//! `error`. The core fills an [`Entry`] in clear; each device makes its own
//! copy with [`Entry::hashed`] (its salt, its options) before writing it.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::hash::{hash_string, hash_value};
use crate::salt::Salt;

/// `request` or `response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    /// Written after authorisation, before the backend runs.
    Request,
    /// Written once the answer is final.
    Response,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
    /// `request` or `response`.
    #[serde(rename = "type")]
    pub kind: EntryType,
    /// Who asked.
    pub auth: Auth,
    /// What was asked.
    pub request: RequestInfo,
    /// What was answered (response entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseInfo>,
    /// Why the request failed, if it did.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// The caller's token, as OpenBao's `auth` block shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Auth {
    /// The token (hashed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_token: String,
    /// Its accessor (hashed unless `hmac_accessor=false`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub accessor: String,
    /// The token's display name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    /// Every policy of the token.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// The token's own policies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub token_policies: Vec<String>,
    /// How the ACL decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_results: Option<PolicyResults>,
    /// The token's metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// The entity, when there is one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub entity_id: String,
    /// `service`, `batch`, or `default` when there is no token.
    pub token_type: String,
    /// The token's TTL in seconds (response entries of logins).
    #[serde(skip_serializing_if = "is_zero")]
    pub token_ttl: u64,
    /// When the token was issued (RFC 3339, seconds).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token_issue_time: String,
    /// Uses left, for a token with `num_uses`.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub remaining_uses: i64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// The ACL's verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PolicyResults {
    /// Whether the request was allowed.
    pub allowed: bool,
    /// The policies that granted it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub granting_policies: Vec<PolicyInfo>,
}

/// One granting policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInfo {
    /// Its name.
    pub name: String,
    /// Its namespace's id (`root`).
    pub namespace_id: String,
    /// `acl`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The mount a request went to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MountInfo {
    /// `secret/`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mount_point: String,
    /// `kv`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mount_type: String,
    /// `kv_1a2b3c4d`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mount_accessor: String,
}

/// The running version of a mount's plugin and its class, as OpenBao
/// names them in request entries (`mount_running_version`) and response
/// entries (`mount_running_plugin_version`).
#[derive(Debug, Clone, Default)]
pub struct MountVersion {
    /// `v0.1.0+builtin.strongroom`.
    pub version: String,
    /// `secret` or `auth`.
    pub class: String,
}

/// The namespace of a request.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceInfo {
    /// `root` for the root namespace.
    pub id: String,
    /// Its path (`""` for root: omitted).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
}

impl Default for NamespaceInfo {
    fn default() -> Self {
        NamespaceInfo {
            id: "root".into(),
            path: String::new(),
        }
    }
}

/// What was asked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestInfo {
    /// The request id, shared by the request and the response entry.
    pub id: String,
    /// `read`, `update`, `create`, `delete`, `list`, ...
    pub operation: String,
    /// The mount it went to.
    #[serde(flatten)]
    pub mount: MountInfo,
    /// The mount's running version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mount_running_version: String,
    /// `secret` or `auth`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mount_class: String,
    /// The token (hashed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_token: String,
    /// The token's accessor (hashed unless `hmac_accessor=false`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_token_accessor: String,
    /// The namespace.
    pub namespace: NamespaceInfo,
    /// The path, below `/v1/`.
    pub path: String,
    /// The request data (hashed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// The client's address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_address: String,
    /// The client's port.
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub remote_port: u16,
    /// The requested wrapping TTL, in seconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub wrap_ttl: u64,
    /// The audited request headers (lowercased names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Map<String, Value>>,
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

/// A login's new token, in the response entry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResponseAuth {
    /// The new token (hashed).
    pub client_token: String,
    /// Its accessor (hashed unless `hmac_accessor=false`).
    pub accessor: String,
    /// Its display name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    /// Its policies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Its own policies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub token_policies: Vec<String>,
    /// Its metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// `service` or `batch`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token_type: String,
    /// Its TTL in seconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub token_ttl: u64,
}

/// A response's wrapping: the answer's own `wrap_info` (the entry hashes
/// its token and accessors).
pub use strongroom_sdk::logical::WrapInfo;

/// A secret's lease.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SecretInfo {
    /// The lease id.
    pub lease_id: String,
}

/// What was answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResponseInfo {
    /// The mount it came from.
    #[serde(flatten)]
    pub mount: MountInfo,
    /// The mount's running version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mount_running_plugin_version: String,
    /// `secret` or `auth`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mount_class: String,
    /// A login's token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<ResponseAuth>,
    /// A leased secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretInfo>,
    /// The answer's data (hashed; absent from wrapped answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// Warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// A redirect.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub redirect: String,
    /// The wrapping of a wrapped answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrap_info: Option<WrapInfo>,
}

/// How one device hashes an entry.
#[derive(Debug, Clone, Copy)]
pub struct HashRules<'a> {
    /// Leave everything in clear.
    pub log_raw: bool,
    /// Hash accessors too.
    pub hmac_accessor: bool,
    /// Replace the `keys` of LIST answers with their count.
    pub elide_list_responses: bool,
    /// Request data keys left in clear (the mount's).
    pub non_hmac_request_keys: &'a [String],
    /// Response data keys left in clear (the mount's).
    pub non_hmac_response_keys: &'a [String],
}

impl Entry {
    /// This entry as a device with `rules` and `salt` writes it.
    pub fn hashed(&self, salt: &Salt, rules: &HashRules<'_>) -> Entry {
        let mut e = self.clone();
        if rules.elide_list_responses && e.request.operation == "list" {
            if let Some(data) = e.response.as_mut().and_then(|r| r.data.as_mut()) {
                elide_keys(data);
            }
        }
        if rules.log_raw {
            return e;
        }
        let accessor = |s: &mut String| {
            if rules.hmac_accessor {
                hash_string(salt, s);
            }
        };
        hash_string(salt, &mut e.auth.client_token);
        accessor(&mut e.auth.accessor);
        hash_string(salt, &mut e.request.client_token);
        accessor(&mut e.request.client_token_accessor);
        if let Some(data) = e.request.data.as_mut() {
            hash_map(salt, data, rules.non_hmac_request_keys);
        }
        if let Some(headers) = e.request.headers.as_mut() {
            // Headers the operator asked to be hashed arrive marked by
            // the core: the value is `{"hmac": value}`.
            for v in headers.values_mut() {
                if let Some(inner) = v.as_object_mut().and_then(|o| o.remove("hmac")) {
                    let mut inner = inner;
                    hash_value(salt, &mut inner, &[]);
                    *v = inner;
                }
            }
        }
        if let Some(resp) = e.response.as_mut() {
            if let Some(auth) = resp.auth.as_mut() {
                hash_string(salt, &mut auth.client_token);
                accessor(&mut auth.accessor);
            }
            if let Some(data) = resp.data.as_mut() {
                hash_map(salt, data, rules.non_hmac_response_keys);
            }
            if let Some(w) = resp.wrap_info.as_mut() {
                hash_string(salt, &mut w.token);
                accessor(&mut w.accessor);
                accessor(&mut w.wrapped_accessor);
            }
        }
        e
    }
}

/// Hashes a data map's values (keys stay).
fn hash_map(salt: &Salt, data: &mut Map<String, Value>, keep: &[String]) {
    for (k, v) in data.iter_mut() {
        if keep.iter().any(|n| n == k) {
            continue;
        }
        hash_value(salt, v, keep);
    }
}

/// OpenBao's `elide_list_responses`: `keys` becomes its count, and a
/// `key_info` map does too.
fn elide_keys(data: &mut Map<String, Value>) {
    for field in ["keys", "key_info"] {
        let n = match data.get(field) {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(o)) => o.len(),
            _ => continue,
        };
        data.insert(field.to_string(), Value::from(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Entry {
        Entry {
            time: "2026-12-05T11:36:26.619891363Z".into(),
            kind: EntryType::Response,
            auth: Auth {
                client_token: "s.token".into(),
                accessor: "acc".into(),
                display_name: "token".into(),
                policies: vec!["root".into()],
                token_policies: vec!["root".into()],
                token_type: "service".into(),
                ..Auth::default()
            },
            request: RequestInfo {
                id: "req-1".into(),
                operation: "list".into(),
                client_token: "s.token".into(),
                client_token_accessor: "acc".into(),
                path: "secret/metadata/".into(),
                data: Some(
                    json!({"password": "hunter2", "ttl": 30})
                        .as_object()
                        .cloned()
                        .unwrap(),
                ),
                ..RequestInfo::default()
            },
            response: Some(ResponseInfo {
                data: Some(
                    json!({"keys": ["a", "b"], "note": "x"})
                        .as_object()
                        .cloned()
                        .unwrap(),
                ),
                wrap_info: Some(WrapInfo {
                    token: "s.wrap".into(),
                    accessor: "wacc".into(),
                    ttl: 60,
                    creation_time: "2026-12-05T11:36:26Z".into(),
                    creation_path: "secret/metadata/".into(),
                    wrapped_accessor: String::new(),
                }),
                ..ResponseInfo::default()
            }),
            error: String::new(),
        }
    }

    fn rules(log_raw: bool, hmac_accessor: bool, elide: bool) -> HashRules<'static> {
        HashRules {
            log_raw,
            hmac_accessor,
            elide_list_responses: elide,
            non_hmac_request_keys: &[],
            non_hmac_response_keys: &[],
        }
    }

    #[test]
    fn tokens_accessors_and_data_are_hashed_by_default() {
        let salt = Salt::from_bytes(b"s");
        let h = |s: &str| salt.hash(s.as_bytes());
        let e = sample().hashed(&salt, &rules(false, true, false));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["auth"]["client_token"], h("s.token"));
        assert_eq!(v["auth"]["accessor"], h("acc"));
        assert_eq!(v["request"]["client_token"], h("s.token"));
        assert_eq!(
            v["request"]["data"],
            json!({"password": h("hunter2"), "ttl": 30})
        );
        assert_eq!(v["response"]["data"]["keys"], json!([h("a"), h("b")]));
        assert_eq!(v["response"]["wrap_info"]["token"], h("s.wrap"));
        assert_eq!(v["response"]["wrap_info"]["accessor"], h("wacc"));
        assert_eq!(v["type"], "response");
        assert_eq!(v["request"]["namespace"], json!({"id": "root"}));
        assert!(v.get("error").is_none());
        let text = v.to_string();
        for secret in ["s.token", "hunter2", "s.wrap"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn accessors_raw_and_elided_lists_follow_the_options() {
        let salt = Salt::from_bytes(b"s");
        let e = sample().hashed(&salt, &rules(false, false, true));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["auth"]["accessor"], "acc");
        assert_eq!(v["request"]["client_token_accessor"], "acc");
        assert_eq!(v["response"]["wrap_info"]["accessor"], "wacc");
        assert_ne!(v["auth"]["client_token"], "s.token");
        assert_eq!(v["response"]["data"]["keys"], 2);
        let raw = serde_json::to_value(sample().hashed(&salt, &rules(true, true, false))).unwrap();
        assert_eq!(raw["request"]["data"]["password"], "hunter2");
        assert_eq!(raw["auth"]["client_token"], "s.token");
    }

    #[test]
    fn a_mounts_non_hmac_keys_stay_in_clear() {
        let salt = Salt::from_bytes(b"s");
        let keep = vec!["password".to_string()];
        let r = HashRules {
            non_hmac_request_keys: &keep,
            ..rules(false, true, false)
        };
        let v = serde_json::to_value(sample().hashed(&salt, &r)).unwrap();
        assert_eq!(v["request"]["data"]["password"], "hunter2");
        assert_eq!(v["response"]["data"]["note"], salt.hash(b"x"));
    }
}
