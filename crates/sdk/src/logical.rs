//! The logical request and response: what the HTTP layer turns a call into,
//! and what backends answer. Independent of HTTP so that forwarding (HA),
//! audit and in-process tests see the same values.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

pub use crate::token_type::TokenType;

/// A JSON object, the shape of request and response data.
pub type Data = Map<String, Value>;

/// What a request asks of a path. HTTP maps onto it as Vault does: GET read,
/// POST/PUT create-or-update (decided by the backend's existence check),
/// DELETE delete, LIST or `GET ?list=true` list, PATCH patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Read the value at a path.
    Read,
    /// Write a path that does not exist yet.
    Create,
    /// Write a path (that exists, when the backend has an existence check).
    Update,
    /// Merge into a path.
    Patch,
    /// Remove a path.
    Delete,
    /// List the keys below a path.
    List,
    /// List every key below a path, recursively (OpenBao's `SCAN`).
    Scan,
    /// Describe a path (`?help=1`).
    Help,
}

impl Operation {
    /// The lowercase name used in help, OpenAPI and ACL capabilities.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
            Operation::List => "list",
            Operation::Scan => "scan",
            Operation::Help => "help",
        }
    }
}

/// A client's secret token. Its `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientToken(pub String);

impl std::fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientToken(<redacted>)")
    }
}

/// A request to a logical path (relative to `/v1/`). Cloning copies the
/// data stack-safely ([`crate::json::clone_map`]): it may be deeply nested.
#[derive(Debug)]
pub struct Request {
    /// The id echoed as `request_id`.
    pub id: String,
    /// What is asked.
    pub operation: Operation,
    /// The path below `/v1/`, without leading slash, e.g. `secret/foo`.
    pub path: String,
    /// The JSON body (writes) or the query parameters (reads, lists).
    pub data: Data,
    /// The token that authenticates the request, if any.
    pub client_token: Option<ClientToken>,
    /// `X-Vault-Wrap-TTL`: wrap the response for this long.
    pub wrap_ttl: Option<Duration>,
    /// The client's address, for CIDR bindings.
    pub remote_addr: Option<IpAddr>,
    /// The client's port (audit entries' `remote_port`).
    pub remote_port: Option<u16>,
    /// The HTTP request headers, kept only when the handler asks for them
    /// ([`RequestHandler::wants_headers`]: audited request headers).
    pub headers: Option<http::HeaderMap>,
    /// `X-Vault-Namespace`, as sent: the namespace the path is relative to
    /// (`None`: the path is the full one).
    pub namespace: Option<String>,
}

impl Clone for Request {
    fn clone(&self) -> Self {
        Request {
            id: self.id.clone(),
            operation: self.operation,
            path: self.path.clone(),
            data: crate::json::clone_map(&self.data),
            client_token: self.client_token.clone(),
            wrap_ttl: self.wrap_ttl,
            remote_addr: self.remote_addr,
            remote_port: self.remote_port,
            headers: self.headers.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

impl Request {
    /// A request with a fresh id and nothing else set.
    pub fn new(operation: Operation, path: impl Into<String>) -> Self {
        Request {
            id: uuid::Uuid::new_v4().to_string(),
            operation,
            path: path.into(),
            data: Data::new(),
            client_token: None,
            wrap_ttl: None,
            remote_addr: None,
            remote_port: None,
            headers: None,
            namespace: None,
        }
    }

    /// Sets the data (builder style, for tests and internal callers).
    pub fn with_data(mut self, data: Data) -> Self {
        self.data = data;
        self
    }

    /// Sets the client token (builder style).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.client_token = Some(ClientToken(token.into()));
        self
    }
}

/// The authentication block of a response that issued a token.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Auth {
    /// The new token.
    pub client_token: String,
    /// Its accessor.
    pub accessor: String,
    /// All its policies.
    pub policies: Vec<String>,
    /// The policies that came from the token itself.
    pub token_policies: Vec<String>,
    /// The policies its entity and the entity's groups grant (shown when
    /// there are any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identity_policies: Vec<String>,
    /// Metadata attached by the auth method.
    pub metadata: Option<Map<String, Value>>,
    /// TTL in seconds.
    pub lease_duration: u64,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// The id of the token's entity (empty: none).
    pub entity_id: String,
    /// `service` or `batch`.
    pub token_type: TokenType,
    /// Whether the token has no parent.
    pub orphan: bool,
    /// Multi-factor requirement (always null here).
    pub mfa_requirement: Option<Value>,
    /// Remaining uses, 0 for unlimited.
    pub num_uses: u64,
}

/// What an auth method asks the core to issue after a successful login.
/// The core turns it into a service or batch token (an orphan, under the
/// login path) and answers with the `auth` block; the method never touches
/// the token store.
#[derive(Debug, Clone, Default)]
pub struct TokenIssue {
    /// Policies (`default` is added unless `no_default_policy`).
    pub policies: Vec<String>,
    /// Metadata shown in the auth block and on lookups.
    pub metadata: Map<String, Value>,
    /// Appended to the mount name for the token's display name.
    pub display_name: String,
    /// TTL (0: the mount's default).
    pub ttl: Duration,
    /// Max TTL (0: the mount's max).
    pub max_ttl: Duration,
    /// Explicit max TTL (0: none).
    pub explicit_max_ttl: Duration,
    /// Period (0: not periodic).
    pub period: Duration,
    /// Use limit (0: unlimited).
    pub num_uses: u64,
    /// CIDR blocks the token may be used from.
    pub bound_cidrs: Vec<String>,
    /// `service`, `batch`, or `default` (the mount's token type).
    pub token_type: TokenType,
    /// Leave out the `default` policy.
    pub no_default_policy: bool,
    /// Bind the token to the address that logged in.
    pub strictly_bind_ip: bool,
    /// The alias the core resolves to an entity (none: the token has no
    /// entity).
    pub alias: Option<crate::identity::LoginAlias>,
}

/// Lease information of a leased response.
#[derive(Debug, Clone, Default)]
pub struct Lease {
    /// The lease id (empty when the response is not leased).
    pub lease_id: String,
    /// Seconds until the data should be re-read or renewed.
    pub lease_duration: u64,
    /// Whether `sys/leases/renew` may extend it.
    pub renewable: bool,
    /// Set by backends that lease a secret: what they need to revoke it.
    /// The core then registers the lease and fills `lease_id`. Responses
    /// that only suggest a refresh interval (KV's `ttl`) leave it `None`.
    pub internal: Option<Data>,
}

/// What a wrapped response carries instead of its data.
#[derive(Debug, Clone, Serialize)]
pub struct WrapInfo {
    /// The single-use wrapping token.
    pub token: String,
    /// The wrapping token's accessor.
    pub accessor: String,
    /// Seconds the wrapping token lives.
    pub ttl: u64,
    /// RFC 3339 creation time.
    pub creation_time: String,
    /// The path whose response was wrapped.
    pub creation_path: String,
    /// The accessor of the wrapped token, when an auth response was wrapped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub wrapped_accessor: String,
}

/// A response that bypasses the standard envelope: some `sys/` endpoints
/// (seal-status, health, init, unseal, leader) answer with a bare object and
/// their own status codes.
#[derive(Debug, Clone)]
pub struct Raw {
    /// The HTTP status.
    pub status: u16,
    /// The body, serialised as-is; with a `content_type`, a string sent
    /// as the body's bytes.
    pub body: Value,
    /// A non-JSON body's content type (`sys/metrics`' Prometheus text,
    /// OpenBao's plain-text 400s); `None`: JSON.
    pub content_type: Option<&'static str>,
}

/// A backend's answer.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// The `data` object.
    pub data: Option<Data>,
    /// The `auth` block, when a token was issued.
    pub auth: Option<Auth>,
    /// Lease information, when the data is leased.
    pub lease: Option<Lease>,
    /// Non-fatal remarks (unknown fields, deprecations).
    pub warnings: Vec<String>,
    /// Set when the response was wrapped.
    pub wrap_info: Option<WrapInfo>,
    /// A bare response, rendered instead of the envelope.
    pub raw: Option<Raw>,
    /// An explicit status for an enveloped answer (e.g. a 404 carrying data).
    pub status: Option<u16>,
    /// Top-level fields some legacy `sys/` endpoints add beside the envelope.
    pub top_level: Option<Data>,
    /// A login's request for a token (auth methods); the core issues it
    /// and fills `auth`.
    pub issue: Option<TokenIssue>,
    /// Extra HTTP headers of the answer (name, value): the rate-limit
    /// quota's `X-RateLimit-*` when enabled. They do not make an empty
    /// answer non-empty.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// A response with `data`.
    pub fn data(data: Data) -> Self {
        Response {
            data: Some(data),
            ..Default::default()
        }
    }

    /// An empty response (HTTP 204 unless warnings are attached).
    pub fn empty() -> Self {
        Response::default()
    }

    /// A LIST answer, `{"keys": [...]}`; a 404 when there is nothing to
    /// list, as OpenBao answers an empty listing.
    pub fn keys(keys: Vec<impl Into<Value>>) -> crate::Result<Self> {
        if keys.is_empty() {
            return Err(crate::Error::NotFound(None));
        }
        let mut data = Data::new();
        data.insert(
            "keys".into(),
            Value::Array(keys.into_iter().map(Into::into).collect()),
        );
        Ok(Response::data(data))
    }

    /// A bare response with its own status.
    pub fn raw(status: u16, body: Value) -> Self {
        Response {
            raw: Some(Raw {
                status,
                body,
                content_type: None,
            }),
            ..Default::default()
        }
    }

    /// A bare non-JSON response: `body` sent as-is with `content_type`.
    pub fn raw_text(status: u16, content_type: &'static str, body: String) -> Self {
        Response {
            raw: Some(Raw {
                status,
                body: Value::String(body),
                content_type: Some(content_type),
            }),
            ..Default::default()
        }
    }

    /// Adds a warning (builder style).
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// True when there is nothing to send but a 204.
    pub fn is_empty(&self) -> bool {
        self.data.is_none()
            && self.auth.is_none()
            && self.lease.is_none()
            && self.warnings.is_empty()
            && self.wrap_info.is_none()
            && self.raw.is_none()
            && self.status.is_none()
            && self.top_level.is_none()
            && self.issue.is_none()
    }

    /// Renders the standard envelope (`request_id`, empty when the answer
    /// is response-wrapped, `lease_id`, `renewable`, `lease_duration`,
    /// `data`, `wrap_info`, `warnings`, `auth`).
    pub fn envelope(&self, request_id: &str) -> Value {
        let lease = self.lease.clone().unwrap_or_default();
        let mut out = Map::new();
        if let Some(top) = &self.top_level {
            for (k, v) in top {
                out.insert(k.clone(), crate::json::clone_value(v));
            }
        }
        // A response-wrapped answer has an empty request_id, as in OpenBao.
        let request_id = if self.wrap_info.is_some() {
            ""
        } else {
            request_id
        };
        out.insert("request_id".into(), Value::String(request_id.to_string()));
        out.insert("lease_id".into(), Value::String(lease.lease_id));
        out.insert("renewable".into(), Value::Bool(lease.renewable));
        out.insert("lease_duration".into(), Value::from(lease.lease_duration));
        out.insert(
            "data".into(),
            self.data
                .as_ref()
                .map(|d| Value::Object(crate::json::clone_map(d)))
                .unwrap_or(Value::Null),
        );
        out.insert(
            "wrap_info".into(),
            self.wrap_info
                .as_ref()
                .and_then(|w| serde_json::to_value(w).ok())
                .unwrap_or(Value::Null),
        );
        out.insert(
            "warnings".into(),
            if self.warnings.is_empty() {
                Value::Null
            } else {
                Value::from(self.warnings.clone())
            },
        );
        out.insert(
            "auth".into(),
            self.auth
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok())
                .unwrap_or(Value::Null),
        );
        Value::Object(out)
    }
}

/// The keys of the standard envelope, in the order they are written.
const ENVELOPE_KEYS: [&str; 8] = [
    "request_id",
    "lease_id",
    "renewable",
    "lease_duration",
    "data",
    "wrap_info",
    "warnings",
    "auth",
];

/// The standard envelope of a [`Response`], serialised from borrowed parts
/// (no copy of the data, no intermediate `Value`): the same JSON object as
/// [`Response::envelope`].
pub struct Envelope<'a> {
    response: &'a Response,
    request_id: &'a str,
}

impl Response {
    /// The standard envelope, for serialising straight to bytes (see
    /// [`Envelope`]).
    pub fn envelope_ref<'a>(&'a self, request_id: &'a str) -> Envelope<'a> {
        Envelope {
            response: self,
            request_id,
        }
    }
}

impl serde::Serialize for Envelope<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;

        /// A client's value, written with a stack as deep as it needs.
        struct Deep<'v>(&'v Value);
        impl serde::Serialize for Deep<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                crate::json::serialize_deep(self.0, s)
            }
        }
        /// The data object, each value written stack-safely.
        struct DeepMap<'v>(&'v Map<String, Value>);
        impl serde::Serialize for DeepMap<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    map.serialize_entry(k, &Deep(v))?;
                }
                map.end()
            }
        }

        let r = self.response;
        let mut map = serializer.serialize_map(None)?;
        // Extra top-level keys come first; the standard keys win over them.
        if let Some(top) = &r.top_level {
            for (k, v) in top {
                if !ENVELOPE_KEYS.contains(&k.as_str()) {
                    map.serialize_entry(k, &Deep(v))?;
                }
            }
        }
        // A response-wrapped answer has an empty request_id, as in OpenBao.
        let request_id = if r.wrap_info.is_some() {
            ""
        } else {
            self.request_id
        };
        map.serialize_entry("request_id", request_id)?;
        let lease = r.lease.as_ref();
        map.serialize_entry("lease_id", lease.map_or("", |l| l.lease_id.as_str()))?;
        map.serialize_entry("renewable", &lease.is_some_and(|l| l.renewable))?;
        map.serialize_entry("lease_duration", &lease.map_or(0, |l| l.lease_duration))?;
        map.serialize_entry("data", &r.data.as_ref().map(DeepMap))?;
        map.serialize_entry("wrap_info", &r.wrap_info)?;
        map.serialize_entry("warnings", &(!r.warnings.is_empty()).then_some(&r.warnings))?;
        map.serialize_entry("auth", &r.auth)?;
        map.end()
    }
}

/// Anything that answers logical requests: the core's request pipeline,
/// and in tests a fake. The HTTP layer depends only on this.
#[async_trait::async_trait]
pub trait RequestHandler: Send + Sync + 'static {
    /// Answers one request. A `Help` operation answers with a raw
    /// `{"help": ...}` body.
    async fn handle_request(&self, req: Request) -> crate::Result<Response>;

    /// Whether requests should carry their HTTP headers
    /// ([`Request::headers`]); cloning them costs an allocation, so the
    /// default is no.
    fn wants_headers(&self) -> bool {
        false
    }

    /// `sys/metrics` in `format` (`""`, `json` or `prometheus`) without a
    /// token: a listener with `unauthenticated_metrics_access` calls it
    /// instead of [`RequestHandler::handle_request`]. The default knows no
    /// metrics (404).
    fn metrics(&self, format: &str) -> crate::Result<Response> {
        let _ = format;
        Err(crate::Error::NotFound(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Data {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test data is an object"),
        }
    }

    /// The borrowed envelope writes exactly the object `envelope` builds,
    /// for every part a response can have (a deep value included: the
    /// test's own building, parsing and dropping of it recurse, so it runs
    /// on a big stack).
    #[test]
    fn the_borrowed_envelope_is_the_same_json_as_the_built_one() {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(compare_envelopes)
            .expect("thread")
            .join()
            .expect("no panic");
    }

    fn compare_envelopes() {
        let mut deep = json!("leaf");
        for _ in 0..3000 {
            deep = json!([deep]);
        }
        let cases = vec![
            Response::default(),
            Response::data(data(json!({"a": 1, "deep": deep}))),
            Response {
                lease: Some(Lease {
                    lease_id: "kv/x/abc".into(),
                    lease_duration: 60,
                    renewable: true,
                    internal: None,
                }),
                warnings: vec!["careful".into()],
                top_level: Some(data(json!({"extra": true, "data": "overridden"}))),
                data: Some(data(json!({"k": "v"}))),
                ..Default::default()
            },
            Response {
                wrap_info: Some(WrapInfo {
                    token: "hvs.x".into(),
                    accessor: "acc".into(),
                    ttl: 300,
                    creation_time: "2026-01-01T00:00:00Z".into(),
                    creation_path: "sys/wrapping/wrap".into(),
                    wrapped_accessor: String::new(),
                }),
                ..Default::default()
            },
            Response {
                auth: Some(Auth {
                    client_token: "hvs.t".into(),
                    accessor: "a".into(),
                    policies: vec!["default".into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        for resp in cases {
            let built = resp.envelope("req-1");
            let bytes = serde_json::to_vec(&resp.envelope_ref("req-1")).expect("serialises");
            let mut de = serde_json::Deserializer::from_slice(&bytes);
            de.disable_recursion_limit();
            let written: Value = serde::Deserialize::deserialize(&mut de).expect("valid JSON");
            assert!(
                written == built,
                "{}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            );
        }
    }
}
