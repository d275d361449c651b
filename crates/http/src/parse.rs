//! Turning an HTTP request into a logical [`Request`]: the method mapping,
//! the path below `/v1/`, query or JSON data, and the Vault headers
//! (`X-Vault-Token`, `Authorization: Bearer`, `X-Vault-Wrap-TTL`,
//! `X-Vault-Namespace`). Pure and synchronous, so that it can be fuzzed.

use std::net::IpAddr;

use http::{HeaderMap, Method, Uri};
use serde_json::Value;
use strongroom_sdk::duration::parse_duration;
use strongroom_sdk::framework::parse_go_bool;
use strongroom_sdk::logical::{ClientToken, Data, Operation, Request};
use strongroom_sdk::Error;

/// The header carrying the client token.
pub const TOKEN_HEADER: &str = "x-vault-token";
/// The header asking for a wrapped response.
pub const WRAP_TTL_HEADER: &str = "x-vault-wrap-ttl";
/// The header naming the namespace of the request.
pub const NAMESPACE_HEADER: &str = "x-vault-namespace";

/// The prefix of every logical path.
const API_PREFIX: &str = "/v1/";

/// Parses one HTTP request into a logical [`Request`] the way Vault/OpenBao
/// do. `body` is only looked at for POST, PUT and PATCH.
///
/// Errors carry the status Vault answers with: 405 for a method Vault does
/// not map, 400 for a bad body, query or header, 404 for a path outside
/// `/v1/` or an unknown namespace.
pub fn parse_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    remote: Option<IpAddr>,
) -> Result<Request, Error> {
    let query = parse_query(uri.query().unwrap_or(""));
    let first = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };

    let mut operation = match method.as_str() {
        "GET" => match first("list") {
            // An empty value is ignored, as Vault does.
            Some(v) if !v.is_empty() => {
                if parse_go_bool(v).ok_or_else(|| {
                    Error::bad_request(format!("invalid value for list parameter: {v:?}"))
                })? {
                    Operation::List
                } else {
                    Operation::Read
                }
            }
            _ => Operation::Read,
        },
        "LIST" => Operation::List,
        "SCAN" => Operation::Scan,
        "POST" | "PUT" => Operation::Update,
        "PATCH" => Operation::Patch,
        "DELETE" => Operation::Delete,
        // Vault answers HEAD on the health check only (load balancers use
        // it); hyper sends no body for HEAD responses.
        "HEAD" if uri.path().trim_end_matches('/') == "/v1/sys/health" => Operation::Read,
        _ => return Err(Error::UnsupportedOperation),
    };
    // OpenBao answers help for any non-empty `help` value and any method
    // (`?help=1`, `?help=true`, even `?help=0`), so this does too.
    if first("help").is_some_and(|v| !v.is_empty()) {
        operation = Operation::Help;
    }

    let mut path = logical_path(uri.path())?;
    if matches!(operation, Operation::List | Operation::Scan)
        && !path.is_empty()
        && !path.ends_with('/')
    {
        path.push('/');
    }

    let namespace = namespace(headers)?;
    let wrap_ttl = wrap_ttl(headers)?;
    if operation == Operation::Patch {
        check_patch_content_type(headers)?;
    }

    // Writes carry their data in the body, everything else in the query.
    let data = match method.as_str() {
        "POST" | "PUT" | "PATCH" => json_body(body)?,
        _ => query_data(query),
    };

    let mut req = Request::new(operation, path);
    req.data = data;
    req.client_token = client_token(headers).map(ClientToken);
    req.wrap_ttl = wrap_ttl;
    req.remote_addr = remote;
    req.namespace = namespace;
    Ok(req)
}

/// The logical path: what follows `/v1/`, percent-decoded, without leading
/// slashes and with repeated slashes collapsed (Vault's mux redirects such
/// paths to their clean form). Dot segments are refused rather than
/// resolved: the core must never see `..` in a path.
fn logical_path(raw: &str) -> Result<String, Error> {
    let Some(rest) = raw.strip_prefix(API_PREFIX) else {
        return Err(Error::NotFound(None));
    };
    let decoded = percent_decode(rest.as_bytes(), false)
        .ok_or_else(|| Error::bad_request("invalid escape in request path"))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| Error::bad_request("request path is not valid UTF-8"))?;
    // As OpenBao (Go's URL parser): no control characters, NUL included,
    // which no storage key may hold.
    if decoded.chars().any(|c| c.is_ascii_control()) {
        return Err(Error::bad_request("invalid request path"));
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in decoded.split('/') {
        if segment == "." || segment == ".." {
            return Err(Error::bad_request("invalid request path"));
        }
        if !segment.is_empty() {
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(segment);
        }
    }
    if decoded.ends_with('/') && !out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Decodes `%XX` escapes; with `plus_as_space`, `+` becomes a space (query
/// strings). `None` on a malformed escape.
///
/// Hand-written on purpose: the `percent-encoding` and `form_urlencoded`
/// crates pass malformed escapes through literally, while Vault (Go's
/// `net/url`) refuses them in paths and drops such query pairs; matching
/// that matters more than the twenty lines saved.
fn percent_decode(input: &[u8], plus_as_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let hi = input.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
                let lo = input.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
                // Two hex digits are at most 0xFF, so the cast is lossless.
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Parses a query string into its pairs, in order. Like Go's
/// `URL.Query()`, a pair with a malformed escape is dropped.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k.as_bytes(), true)?;
            let v = percent_decode(v.as_bytes(), true)?;
            Some((
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ))
        })
        .collect()
}

/// The query parameters as request data, as Vault builds it: a key given
/// once is a string, a repeated key an array of strings. `list` and `help`
/// are request modifiers, not data.
fn query_data(query: Vec<(String, String)>) -> Data {
    let mut data = Data::new();
    for (k, v) in query {
        if k == "list" || k == "help" {
            continue;
        }
        match data.get_mut(&k) {
            Some(Value::Array(values)) => values.push(Value::String(v)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(v)]);
            }
            None => {
                data.insert(k, Value::String(v));
            }
        }
    }
    data
}

/// The JSON body of a write. An empty (or blank) body and a JSON `null` are
/// empty data: Vault's Go client sends `null` for a write without data.
/// Anything else must be one JSON object.
fn json_body(body: &[u8]) -> Result<Data, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Data::new());
    }
    let value: Value = strongroom_sdk::json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("failed to decode JSON input: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Data::new()),
        other => Err(Error::bad_request(format!(
            "failed to decode JSON input: expected a JSON object, got {}",
            json_kind(&other)
        ))),
    }
}

/// The JSON type name of a value, for error messages (never the value).
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The token: `X-Vault-Token`, else `Authorization: Bearer <token>`.
fn client_token(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some(t.to_string());
    }
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// PATCH bodies are JSON merge patches and must say so, as in OpenBao.
fn check_patch_content_type(headers: &HeaderMap) -> Result<(), Error> {
    let given = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = given.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/merge-patch+json") {
        return Ok(());
    }
    if media.is_empty() {
        // OpenBao's answer (Go's mime parser) when the header is missing.
        return Err(Error::bad_request("mime: no media type"));
    }
    Err(Error::UnsupportedMediaType(format!(
        "PATCH requires Content-Type of application/merge-patch+json, provided {given}"
    )))
}

/// `X-Vault-Wrap-TTL`: absent, empty or zero means no wrapping.
fn wrap_ttl(headers: &HeaderMap) -> Result<Option<std::time::Duration>, Error> {
    let Some(raw) = headers.get(WRAP_TTL_HEADER) else {
        return Ok(None);
    };
    let raw = raw
        .to_str()
        .map_err(|_| Error::bad_request("error parsing X-Vault-Wrap-TTL header: not ASCII"))?
        .trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let ttl = parse_duration(raw)
        .map_err(|e| Error::bad_request(format!("error parsing X-Vault-Wrap-TTL header: {e}")))?;
    Ok((!ttl.is_zero()).then_some(ttl))
}

/// The `X-Vault-Namespace` header, when set and not empty. The core
/// resolves it; a value that is not text names no namespace (OpenBao's
/// 404 `namespace not found`).
fn namespace(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let Some(raw) = headers.get(NAMESPACE_HEADER) else {
        return Ok(None);
    };
    match raw.to_str().map(str::trim) {
        Ok("") => Ok(None),
        Ok(ns) => Ok(Some(ns.to_string())),
        Err(_) => Err(Error::NotFound(Some("namespace not found".to_string()))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Request, Error> {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let uri: Uri = uri.parse().unwrap();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        parse_request(&method, &uri, &map, body, None)
    }

    #[test]
    fn methods_map_as_vault() {
        let cases = [
            ("GET", Operation::Read),
            ("LIST", Operation::List),
            ("SCAN", Operation::Scan),
            ("POST", Operation::Update),
            ("PUT", Operation::Update),
            ("PATCH", Operation::Patch),
            ("DELETE", Operation::Delete),
        ];
        let patch = [("content-type", "application/merge-patch+json")];
        for (m, op) in cases {
            assert_eq!(
                parse(m, "/v1/secret/foo", &patch, b"").unwrap().operation,
                op,
                "{m}"
            );
        }
        for m in ["TRACE", "HEAD", "OPTIONS", "CONNECT", "FOO"] {
            assert_eq!(
                parse(m, "/v1/secret/foo", &[], b"").unwrap_err().status(),
                405,
                "{m}"
            );
        }
    }

    #[test]
    fn list_query_uses_go_bools() {
        for v in ["true", "1", "t", "T", "TRUE", "True"] {
            let r = parse("GET", &format!("/v1/kv/a?list={v}"), &[], b"").unwrap();
            assert_eq!(r.operation, Operation::List, "{v}");
            assert_eq!(r.path, "kv/a/");
        }
        for v in ["false", "0", "F", ""] {
            let r = parse("GET", &format!("/v1/kv/a?list={v}"), &[], b"").unwrap();
            assert_eq!(r.operation, Operation::Read, "{v}");
            assert_eq!(r.path, "kv/a");
            assert!(r.data.is_empty());
        }
        assert_eq!(
            parse("GET", "/v1/kv/a?list=yes", &[], b"")
                .unwrap_err()
                .status(),
            400
        );
        // The first value wins, as with Go's Query().Get.
        let r = parse("GET", "/v1/kv/a?list=1&list=0", &[], b"").unwrap();
        assert_eq!(r.operation, Operation::List);
        // A path already ending in / is not doubled.
        assert_eq!(parse("LIST", "/v1/kv/a/", &[], b"").unwrap().path, "kv/a/");
    }

    #[test]
    fn help_wins_for_any_method() {
        for m in ["GET", "LIST", "POST", "DELETE"] {
            let r = parse(m, "/v1/kv/a?help=1", &[], b"").unwrap();
            assert_eq!(r.operation, Operation::Help, "{m}");
            assert!(!r.data.contains_key("help"));
        }
        assert_eq!(
            parse("GET", "/v1/kv/a?help=", &[], b"").unwrap().operation,
            Operation::Read
        );
    }

    #[test]
    fn path_is_decoded_and_normalised() {
        assert_eq!(
            parse("GET", "/v1/kv/a%20b/c%2Fd", &[], b"").unwrap().path,
            "kv/a b/c/d"
        );
        assert_eq!(parse("GET", "/v1//kv//a/", &[], b"").unwrap().path, "kv/a/");
        assert_eq!(parse("GET", "/v1/a+b", &[], b"").unwrap().path, "a+b");
        assert_eq!(parse("GET", "/v1/", &[], b"").unwrap().path, "");
        for bad in [
            "/v1/kv/../sys",
            "/v1/kv/%2e%2e/sys",
            "/v1/./kv",
            "/v1/%zz",
            "/v1/%ff",
            "/v1/secret/a%00b",
            "/v1/sys/policy/p%0A",
            "/v1/kv/%7F",
        ] {
            assert_eq!(
                parse("GET", bad, &[], b"").unwrap_err().status(),
                400,
                "{bad}"
            );
        }
        for outside in ["/v2/x", "/v1", "/", "/ui/"] {
            assert_eq!(
                parse("GET", outside, &[], b"").unwrap_err().status(),
                404,
                "{outside}"
            );
        }
    }

    #[test]
    fn query_becomes_string_data() {
        let r = parse(
            "GET",
            "/v1/x?a=1&b=x+y&a=2&c&d=%2F&list=false&bad=%zz",
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(
            Value::Object(r.data),
            json!({"a": ["1", "2"], "b": "x y", "c": "", "d": "/"})
        );
        let r = parse("DELETE", "/v1/x?version=3", &[], b"").unwrap();
        assert_eq!(Value::Object(r.data), json!({"version": "3"}));
        // Writes take their data from the body, not the query.
        let r = parse("POST", "/v1/x?q=1", &[], br#"{"a":1}"#).unwrap();
        assert_eq!(Value::Object(r.data), json!({"a": 1}));
    }

    #[test]
    fn write_bodies() {
        for empty in [&b""[..], b"  \n", b"null"] {
            assert!(parse("PUT", "/v1/x", &[], empty).unwrap().data.is_empty());
        }
        for bad in [
            &b"{bad"[..],
            b"[1,2]",
            b"\"s\"",
            b"42",
            b"{\"a\":1} x",
            b"\xff",
        ] {
            let e = parse("POST", "/v1/x", &[], bad).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(
                e.messages()[0].starts_with("failed to decode JSON input"),
                "{e}"
            );
        }
        let merge = [("content-type", "application/merge-patch+json")];
        let r = parse("PATCH", "/v1/x", &merge, br#"{"n":{"m":[true]}}"#).unwrap();
        assert_eq!(Value::Object(r.data), json!({"n": {"m": [true]}}));
    }

    #[test]
    fn patch_needs_the_merge_patch_media_type() {
        let body = br#"{"data":{}}"#;
        let e = parse(
            "PATCH",
            "/v1/x",
            &[("content-type", "application/json")],
            body,
        )
        .unwrap_err();
        assert_eq!(e.status(), 415);
        assert_eq!(
            e.messages(),
            vec!["PATCH requires Content-Type of application/merge-patch+json, provided application/json"]
        );
        // No header at all: OpenBao's 400 from Go's mime parser.
        let e = parse("PATCH", "/v1/x", &[], body).unwrap_err();
        assert_eq!(
            (e.status(), e.messages()),
            (400, vec!["mime: no media type".to_string()])
        );
        let ok = [(
            "content-type",
            "application/merge-patch+json; charset=utf-8",
        )];
        assert!(parse("PATCH", "/v1/x", &ok, body).is_ok());
    }

    #[test]
    fn token_headers() {
        let t = |h: &[(&str, &str)]| {
            parse("GET", "/v1/x", h, b"")
                .unwrap()
                .client_token
                .map(|t| t.0)
        };
        assert_eq!(t(&[("X-Vault-Token", "s.abc")]).as_deref(), Some("s.abc"));
        assert_eq!(
            t(&[("Authorization", "Bearer s.def")]).as_deref(),
            Some("s.def")
        );
        assert_eq!(
            t(&[
                ("X-Vault-Token", "s.abc"),
                ("Authorization", "Bearer s.def")
            ])
            .as_deref(),
            Some("s.abc")
        );
        assert_eq!(
            t(&[("X-Vault-Token", ""), ("Authorization", "Bearer s.d")]).as_deref(),
            Some("s.d")
        );
        assert_eq!(t(&[("Authorization", "bearer s.def")]), None);
        assert_eq!(t(&[("Authorization", "Basic Zm9vOmJhcg==")]), None);
        assert_eq!(t(&[]), None);
    }

    #[test]
    fn wrap_ttl_header() {
        let w =
            |v: &str| parse("GET", "/v1/x", &[("X-Vault-Wrap-TTL", v)], b"").map(|r| r.wrap_ttl);
        assert_eq!(w("60").unwrap(), Some(std::time::Duration::from_secs(60)));
        assert_eq!(w("1h").unwrap(), Some(std::time::Duration::from_secs(3600)));
        assert_eq!(w("").unwrap(), None);
        assert_eq!(w("0").unwrap(), None);
        for bad in ["abc", "-5", "1x"] {
            let e = w(bad).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.messages()[0].contains("X-Vault-Wrap-TTL"));
        }
    }

    #[test]
    fn namespace_header() {
        let req = parse("GET", "/v1/x", &[], b"").unwrap();
        assert_eq!(req.namespace, None);
        let req = parse("GET", "/v1/x", &[("X-Vault-Namespace", " ")], b"").unwrap();
        assert_eq!(req.namespace, None);
        let req = parse("GET", "/v1/x", &[("X-Vault-Namespace", "ns1/ns2")], b"").unwrap();
        assert_eq!(req.namespace.as_deref(), Some("ns1/ns2"));
        // A header value that is not text names no namespace.
        let mut map = HeaderMap::new();
        map.insert(
            http::HeaderName::from_static("x-vault-namespace"),
            http::HeaderValue::from_bytes(b"ns\xff").unwrap(),
        );
        let uri: Uri = "/v1/x".parse().unwrap();
        let e = parse_request(&Method::GET, &uri, &map, b"", None).unwrap_err();
        assert_eq!(e.status(), 404);
        assert_eq!(e.messages(), vec!["namespace not found".to_string()]);
    }

    /// A small deterministic generator (xorshift), so the junk is the same
    /// on every run and a failure is reproducible.
    struct Junk(u64);
    impl Junk {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, max: usize) -> Vec<u8> {
            const ALPHABET: &[u8] = b"/%.+&=?ab09fFlisthe lp\"{}[]:,\\\xff\x00\xc3";
            let n = (self.next() % max as u64) as usize;
            (0..n)
                .map(|_| {
                    if self.next().is_multiple_of(4) {
                        self.next() as u8
                    } else {
                        ALPHABET[(self.next() % ALPHABET.len() as u64) as usize]
                    }
                })
                .collect()
        }
    }

    #[test]
    fn junk_never_panics() {
        let mut junk = Junk(0x5eed_1234_abcd_ef01);
        let methods = ["GET", "LIST", "POST", "PUT", "PATCH", "DELETE", "TRACE"];
        let mut parsed = 0;
        for i in 0..5000 {
            let raw = junk.bytes(40);
            let tail: String = String::from_utf8_lossy(&raw)
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .collect();
            let Ok(uri) = format!("/v1/{tail}").parse::<Uri>() else {
                continue;
            };
            let mut headers = HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_bytes(&junk.bytes(8)) {
                headers.insert(WRAP_TTL_HEADER, v);
            }
            if let Ok(v) = http::HeaderValue::from_bytes(&junk.bytes(8)) {
                headers.insert(NAMESPACE_HEADER, v);
            }
            let body = junk.bytes(30);
            let method = Method::from_bytes(methods[i % methods.len()].as_bytes()).unwrap();
            if let Ok(req) = parse_request(&method, &uri, &headers, &body, None) {
                // What parsing lets through keeps the path invariants.
                assert!(!req.path.starts_with('/'), "{uri}");
                assert!(!req.path.split('/').any(|s| s == ".."), "{uri}");
                parsed += 1;
            }
        }
        assert!(
            parsed > 100,
            "the generator should produce parseable requests too"
        );
    }
}
