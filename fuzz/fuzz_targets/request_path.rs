//! Fuzzes `strongroom_http::parse_request`: a method, a `/v1/` URI, a few
//! Vault headers and a body built from the input must never make it panic,
//! whatever it accepts keeps the logical path invariants, and whatever it
//! refuses is a 4xx with a one-line message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_http::http::{HeaderMap, HeaderValue, Method, Uri};

const METHODS: [&str; 8] = [
    "GET", "LIST", "POST", "PUT", "PATCH", "DELETE", "TRACE", "HEAD",
];
const HEADERS: [&str; 4] = [
    "x-vault-wrap-ttl",
    "x-vault-namespace",
    "x-vault-token",
    "authorization",
];

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else {
        return;
    };
    // Fields are separated by 0x00: path-and-query, header values, body.
    let mut fields = rest.splitn(4, |b| *b == 0);
    let target = fields.next().unwrap_or_default();
    let method =
        Method::from_bytes(METHODS[usize::from(selector % 8)].as_bytes()).unwrap_or(Method::GET);

    let mut raw_uri = b"/v1/".to_vec();
    raw_uri.extend_from_slice(target);
    let Ok(uri) = Uri::try_from(raw_uri) else {
        return;
    };

    let mut headers = HeaderMap::new();
    for (i, value) in fields.by_ref().take(2).enumerate() {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            let name = HEADERS[(usize::from(selector >> 3) + i) % HEADERS.len()];
            headers.insert(name, v);
        }
    }
    let body = fields.next().unwrap_or_default();

    match strongroom_http::parse_request(&method, &uri, &headers, body, None) {
        Ok(req) => {
            assert!(!req.path.starts_with('/'));
            assert!(!req.path.split('/').any(|s| s == "." || s == ".."));
        }
        // Bad input is the client's fault: a 4xx, its message on one line.
        Err(e) => {
            let msg = e.to_string();
            assert!((400..500).contains(&e.status()), "{}: {msg:?}", e.status());
            assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
        }
    }
});
