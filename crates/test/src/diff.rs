//! The comparison of OpenBao and Strongroom used by the differential suites.
//!
//! It owns: normalising a reply so two servers' answers can be compared by
//! value ([`normalise`]: request and entity ids, UUIDs, tokens, accessors,
//! timestamps and the remaining-time `ttl` become placeholders, so a
//! missing or empty one is still a difference); the recursive comparison of
//! two values, every key and every array element ([`value_diffs`],
//! [`reply_diffs`]); the accepted differences ([`Allow`]); and a [`Pair`] of
//! servers driven with the same requests, collecting every difference.

use serde_json::{Map, Value};

use crate::server::{bao_path, target, Call, Config, Kind, Reply, Server};

/// A documented, accepted difference between OpenBao and Strongroom.
#[derive(Debug, Clone, Copy)]
pub struct Allow {
    /// Where the difference may occur: a JSON pointer (`/data/keys`), keys
    /// escaped as in RFC 6901 (`~1` for `/`, so `sys/` is `sys~1`), `*` for
    /// any one segment, `**` for any number, `[]` for any array index, and
    /// `#status` for the status code. A difference at or below a matching
    /// path is accepted.
    pub pattern: &'static str,
    /// Why the difference is acceptable.
    pub reason: &'static str,
}

/// A difference accepted exactly as [`reply_diffs`] reports it (one line,
/// such as `/request_id: "" in openbao, "<id>" in strongroom`), so the
/// same kind of difference anywhere else still fails.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    /// The reported line.
    pub diff: &'static str,
    /// Why it is accepted (deliberate, or a `TODO(issue 13)` to fix).
    pub reason: &'static str,
}

/// The deliberate differences of a differential suite, kept in one place:
/// what is accepted anywhere ([`Allow`] patterns and exact [`Known`]
/// lines), and how error messages are reduced to what is compared.
#[derive(Debug, Clone, Copy)]
pub struct Differences {
    /// Paths where any difference is accepted in every reply.
    pub allow: &'static [Allow],
    /// Difference lines accepted in every reply.
    pub known: &'static [Known],
    /// Maps one error message to the part of it that is compared (after
    /// Go's multierror wrapping is removed); the identity compares all.
    pub canonical_error: fn(&str) -> String,
}

/// No deliberate difference at all.
pub const NO_DIFFERENCES: Differences = Differences {
    allow: &[],
    known: &[],
    canonical_error: str::to_string,
};

/// Keys whose string values are per-server identifiers: compared only for
/// being present and non-empty.
const ID_KEYS: &[&str] = &[
    "request_id",
    "accessor",
    "client_token",
    "lease_id",
    "entity_id",
    "secret_id",
    "secret_id_accessor",
    "role_id",
    "uuid",
    "token",
    "wrapped_accessor",
    "nonce",
    "keys_base64",
    "recovery_keys_base64",
    "mount_accessor",
];

/// Keys holding a remaining time, which depends on when the request came.
const REMAINING_KEYS: &[&str] = &["ttl"];

/// Keys holding a point in time (RFC 3339 strings are recognised anywhere;
/// these are also Unix seconds when numbers).
const TIME_KEYS: &[&str] = &[
    "creation_time",
    "expire_time",
    "issue_time",
    "last_renewal_time",
    "last_renewal",
];

/// The placeholder of a per-server identifier.
pub const ID: &str = "<id>";
/// The placeholder of a timestamp.
pub const TIME: &str = "<time>";
/// The placeholder of a namespace id (6 base62 characters, per server),
/// in a namespace's `id` and in the `.<nsid>` suffix of the tokens and
/// accessors issued in a namespace.
pub const NSID: &str = "<nsid>";

/// A namespace id: OpenBao's 6 base62 characters.
fn is_nsid(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A token, accessor, lease key or entity id issued in a namespace other
/// than root (`s.<random>.<nsid>`, `<accessor>.<nsid>`, `h<hash>.<nsid>`,
/// `<uuid>.<nsid>`): `<id>.<nsid>`, so a missing suffix is still a
/// difference.
fn namespaced_id(s: &str) -> Option<String> {
    let (id, suffix) = s.rsplit_once('.')?;
    (is_nsid(suffix) && (is_token(id) || is_accessor(id) || is_hash(id) || is_uuid(id)))
        .then(|| format!("{ID}.{NSID}"))
}

/// A namespace's description (`sys/namespaces` reads and lists): an object
/// with `id`, `path`, `uuid`, `locked` and `tainted`.
fn is_namespace_info(map: &Map<String, Value>) -> bool {
    ["id", "path", "uuid", "locked", "tainted"]
        .iter()
        .all(|k| map.contains_key(*k))
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// RFC 3339 timestamps as both servers print them (`2026-12-04T22:30:46.1Z`,
/// with an offset or fraction or not).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
}

/// Service, batch and recovery tokens of either server (`hvs.`, `hvb.`,
/// `hvr.`, and the older `s.`/`b.`/`r.` forms).
fn is_token(s: &str) -> bool {
    ["hvs.", "hvb.", "hvr.", "s.", "b.", "r."]
        .iter()
        .any(|p| s.strip_prefix(p).is_some_and(|rest| rest.len() >= 20))
}

/// Salted hashes and key material standing for ids (lease-id suffixes,
/// hex unseal keys): 40 or more hex digits (OpenBao's SHA-1 is 40), or
/// `h` and 64 (Strongroom's SHA-256).
fn is_hash(s: &str) -> bool {
    let hex = |t: &str| t.bytes().all(|b| b.is_ascii_hexdigit());
    (s.len() >= 40 && hex(s))
        || s.strip_prefix('h').is_some_and(|r| r.len() == 64 && hex(r))
        // Audit entries' values, hashed with each server's own salt.
        || s.strip_prefix("hmac-sha256:").is_some_and(|r| r.len() == 64 && hex(r))
}

/// `s` with every UUID inside it replaced by [`ID`] (error messages that
/// quote one).
fn replace_uuids(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if let Some(candidate) = s.get(i..i + 36) {
            if is_uuid(candidate) {
                out.push_str(ID);
                i += 36;
                continue;
            }
        }
        let c = s[i..].chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8().max(1);
    }
    out
}

/// Go's multierror wrapping of a single error (`1 error occurred:\n\t* m\n\n`)
/// is formatting, not content: the inner message is compared.
fn unwrap_multierror(s: &str) -> Option<&str> {
    s.strip_prefix("1 error occurred:\n\t* ").map(str::trim_end)
}

/// Token accessors: 24 alphanumeric characters.
fn is_accessor(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Lease ids: `<path>/<random>` below a mount (`auth/token/create/h3k...`).
fn is_lease_id(s: &str) -> bool {
    s.rsplit_once('/').is_some_and(|(path, last)| {
        !path.is_empty() && (is_accessor(last) || is_uuid(last) || is_hash(last))
    })
}

fn normalise_string(key: Option<&str>, s: &str) -> Value {
    if s.is_empty() {
        return Value::String(String::new());
    }
    if key == Some("errors") {
        if let Some(inner) = unwrap_multierror(s) {
            return Value::String(inner.to_string());
        }
    }
    if let Some(namespaced) = namespaced_id(s) {
        return Value::String(namespaced);
    }
    if key == Some("cluster_name") && s.starts_with("vault-cluster-") {
        return Value::String(format!("vault-cluster-{ID}"));
    }
    if key.is_some_and(|k| ID_KEYS.contains(&k))
        || is_uuid(s)
        || is_token(s)
        || is_accessor(s)
        || is_hash(s)
    {
        return Value::String(ID.into());
    }
    if is_timestamp(s) {
        return Value::String(TIME.into());
    }
    if is_lease_id(s) && key.is_some_and(|k| k.contains("lease") || k == "id") {
        return Value::String(ID.into());
    }
    Value::String(replace_uuids(s))
}

/// `v` with its per-server values replaced by placeholders: identifiers
/// (UUIDs, tokens, accessors, salted hashes, values of id keys) by [`ID`],
/// timestamps (RFC 3339, or Unix seconds under time keys) by [`TIME`],
/// namespace ids by [`NSID`] (a namespace's `id`, and the `.<nsid>`
/// suffix of namespaced tokens and accessors, kept as `<id>.<nsid>`), a
/// positive remaining `ttl` by `"<ttl>"`, the random default cluster name;
/// Go's single-error multierror wrapping is removed from `errors`.
/// Empty strings, zero and `null` stay as they are, so a value present on
/// one server and missing or empty on the other is still a difference.
pub fn normalise(v: &Value) -> Value {
    normalise_at(None, v)
}

fn normalise_at(key: Option<&str>, v: &Value) -> Value {
    match v {
        Value::String(s) => normalise_string(key, s),
        Value::Number(n)
            if key.is_some_and(|k| REMAINING_KEYS.contains(&k))
                && n.as_f64().is_some_and(|f| f > 0.0) =>
        {
            Value::String("<ttl>".into())
        }
        Value::Number(n)
            if key.is_some_and(|k| TIME_KEYS.contains(&k))
                && n.as_f64().is_some_and(|f| f > 0.0) =>
        {
            Value::String(TIME.into())
        }
        Value::Array(items) => Value::Array(items.iter().map(|x| normalise_at(key, x)).collect()),
        Value::Object(map) if is_namespace_info(map) => Value::Object(
            map.iter()
                .map(|(k, x)| match x {
                    Value::String(id) if k == "id" && is_nsid(id) => {
                        (k.clone(), Value::String(NSID.into()))
                    }
                    _ => (k.clone(), normalise_at(Some(k), x)),
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| (k.clone(), normalise_at(Some(k), x)))
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Does `pattern` match `path` or an ancestor of it?
fn pattern_matches(pattern: &[&str], path: &[String]) -> bool {
    match pattern.split_first() {
        None => true,
        Some((&"**", rest)) => (0..=path.len()).any(|i| pattern_matches(rest, &path[i..])),
        Some((seg, rest)) => match path.split_first() {
            Some((p, prest)) => {
                let index = !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
                (*seg == "*" || seg == p || (*seg == "[]" && index)) && pattern_matches(rest, prest)
            }
            None => false,
        },
    }
}

fn allowed(allow: &[Allow], path: &[String]) -> bool {
    allow.iter().any(|a| {
        let segs: Vec<&str> = a.pattern.trim_start_matches('/').split('/').collect();
        pattern_matches(&segs, path)
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        format!("{}...", s.chars().take(117).collect::<String>())
    } else {
        s
    }
}

struct Walk<'a> {
    labels: (&'a str, &'a str),
    allow: &'a [Allow],
    out: Vec<String>,
}

impl Walk<'_> {
    fn here(path: &[String]) -> String {
        format!("/{}", path.join("/"))
    }

    fn only_in(&mut self, path: &[String], side: &str, v: &Value) {
        if !allowed(self.allow, path) {
            self.out.push(format!(
                "{}: only in {side} ({})",
                Self::here(path),
                type_name(v)
            ));
        }
    }

    fn walk(&mut self, a: &Value, b: &Value, path: &mut Vec<String>) {
        if !path.is_empty() && allowed(self.allow, path) {
            return;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, va) in x {
                    path.push(escape(k));
                    match y.get(k) {
                        Some(vb) => self.walk(va, vb, path),
                        None => self.only_in(path, self.labels.0, va),
                    }
                    path.pop();
                }
                for (k, vb) in y {
                    if !x.contains_key(k) {
                        path.push(escape(k));
                        self.only_in(path, self.labels.1, vb);
                        path.pop();
                    }
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                for (i, (ea, eb)) in x.iter().zip(y).enumerate() {
                    path.push(i.to_string());
                    self.walk(ea, eb, path);
                    path.pop();
                }
                let (longer, side) = if x.len() > y.len() {
                    (x, self.labels.0)
                } else {
                    (y, self.labels.1)
                };
                for (i, extra) in longer.iter().enumerate().skip(x.len().min(y.len())) {
                    path.push(i.to_string());
                    self.only_in(path, side, extra);
                    path.pop();
                }
            }
            _ if type_name(a) != type_name(b) => self.out.push(format!(
                "{}: {} in {}, {} in {}",
                Self::here(path),
                type_name(a),
                self.labels.0,
                type_name(b),
                self.labels.1
            )),
            _ if a != b => self.out.push(format!(
                "{}: {} in {}, {} in {}",
                Self::here(path),
                short(a),
                self.labels.0,
                short(b),
                self.labels.1
            )),
            _ => {}
        }
    }
}

/// The differences between two JSON values after [`normalise`]: keys
/// present on one side only, array elements present on one side only,
/// differing types, and differing values, recursively through every key
/// and every array element (compared by index).
pub fn value_diffs(a: &Value, b: &Value, labels: (&str, &str), allow: &[Allow]) -> Vec<String> {
    let mut w = Walk {
        labels,
        allow,
        out: Vec::new(),
    };
    w.walk(&normalise(a), &normalise(b), &mut Vec::new());
    w.out
}

/// Differences in status and body between two replies.
pub fn reply_diffs(a: &Reply, b: &Reply, labels: (&str, &str), allow: &[Allow]) -> Vec<String> {
    let mut out = Vec::new();
    if a.status != b.status && !allowed(allow, &["#status".to_string()]) {
        out.push(format!(
            "status: {} from {}, {} from {}",
            a.status, labels.0, b.status, labels.1
        ));
    }
    out.extend(value_diffs(&a.body, &b.body, labels, allow));
    out
}

/// Panics with a readable diff unless `a` (OpenBao) and `b` (Strongroom)
/// agree in status and (normalised) body.
pub fn assert_same_reply(what: &str, a: &Reply, b: &Reply, allow: &[Allow]) {
    let diffs = reply_diffs(a, b, ("openbao", "strongroom"), allow);
    assert!(
        diffs.is_empty(),
        "{what}: openbao and strongroom differ:\n  {}\nopenbao:    {} {}\nstrongroom: {} {}",
        diffs.join("\n  "),
        a.status,
        a.body,
        b.status,
        b.body
    );
}

/// An OpenBao server and a Strongroom server driven with the same requests.
/// Differences are collected and reported together by [`Pair::finish`].
pub struct Pair {
    /// The reference.
    pub bao: Server,
    /// The implementation under test.
    pub sr: Server,
    differences: &'static Differences,
    failures: Vec<String>,
}

impl Pair {
    /// Both servers in dev mode. With `STRONGROOM_TEST_TARGET=bao` both are
    /// OpenBao, which checks the harness and the sequences themselves.
    /// Fails the test with one line naming the install command when `bao`
    /// is missing.
    #[track_caller]
    pub fn dev() -> Pair {
        bao_path();
        let (bao, sr) = std::thread::scope(|s| {
            let a = s.spawn(|| Server::dev(Kind::Bao));
            let b = s.spawn(|| Server::dev(target()));
            (a.join(), b.join())
        });
        Pair::new(unwrap_join(bao), unwrap_join(sr))
    }

    /// Both servers from `config` (fails like [`Pair::dev`] without `bao`).
    #[track_caller]
    pub fn with_config(config: &Config) -> Pair {
        bao_path();
        let (bao, sr) = std::thread::scope(|s| {
            let a = s.spawn(|| Server::with_config(Kind::Bao, config));
            let b = s.spawn(|| Server::with_config(target(), config));
            (a.join(), b.join())
        });
        Pair::new(unwrap_join(bao), unwrap_join(sr))
    }

    /// A pair of servers the test started itself (e.g. one node of a
    /// cluster each).
    pub fn from_servers(bao: Server, sr: Server) -> Pair {
        Pair::new(bao, sr)
    }

    fn new(bao: Server, sr: Server) -> Pair {
        Pair {
            bao,
            sr,
            differences: &NO_DIFFERENCES,
            failures: Vec::new(),
        }
    }

    /// Accepts `differences` in every later comparison.
    pub fn accepting(mut self, differences: &'static Differences) -> Pair {
        self.differences = differences;
        self
    }

    /// `r` with each message of its `errors` reduced by the
    /// [`Differences::canonical_error`] in force.
    fn canonical(&self, r: &Reply) -> Reply {
        let mut r = r.clone();
        if let Some(errors) = r.body.get_mut("errors").and_then(Value::as_array_mut) {
            for e in errors.iter_mut() {
                if let Value::String(m) = e {
                    let inner = unwrap_multierror(m).unwrap_or(m);
                    *m = (self.differences.canonical_error)(inner);
                }
            }
        }
        r
    }

    /// Sends `call` to both and records any difference in status or
    /// (normalised) body. Returns both replies for further assertions.
    pub async fn check(&mut self, call: Call, allow: &[Allow]) -> (Reply, Reply) {
        self.check_each(call.clone(), call, allow).await
    }

    /// Sends `a` to OpenBao and `b` to Strongroom (for requests that carry
    /// per-server values such as unseal keys) and records differences.
    pub async fn check_each(&mut self, a: Call, b: Call, allow: &[Allow]) -> (Reply, Reply) {
        let ra = self.bao.send(&a).await;
        let rb = self.sr.send(&b).await;
        let allow: Vec<Allow> = allow
            .iter()
            .chain(self.differences.allow)
            .copied()
            .collect();
        let diffs: Vec<String> = reply_diffs(
            &self.canonical(&ra),
            &self.canonical(&rb),
            ("openbao", "strongroom"),
            &allow,
        )
        .into_iter()
        .filter(|d| !self.differences.known.iter().any(|k| k.diff == d))
        .collect();
        if !diffs.is_empty() {
            self.failures.push(format!(
                "{}:\n    {}\n    openbao:    {} {}\n    strongroom: {} {}",
                b.describe(),
                diffs.join("\n    "),
                ra.status,
                ra.body,
                rb.status,
                rb.body
            ));
        }
        (ra, rb)
    }

    /// Records a failed value assertion without stopping the sequence.
    pub fn expect(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }

    /// Checks that both replies have `status` (recorded, not panicking).
    pub fn expect_status(&mut self, replies: &(Reply, Reply), status: u16, what: &str) {
        for (r, label) in [(&replies.0, "openbao"), (&replies.1, "strongroom")] {
            if r.status != status {
                self.failures.push(format!(
                    "{what}: {label} answered {} (expected {status}): {}",
                    r.status, r.body
                ));
            }
        }
    }

    /// Panics listing every recorded difference, if any.
    #[track_caller]
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} difference(s) between OpenBao and {}:\n{}",
            self.failures.len(),
            self.sr.kind.label(),
            self.failures.join("\n")
        );
    }
}

fn unwrap_join(r: std::thread::Result<Server>) -> Server {
    match r {
        Ok(s) => s,
        Err(e) => std::panic::resume_unwind(e),
    }
}

/// Records a failure for each server whose reply does not satisfy `pred`.
pub fn on_both(p: &mut Pair, r: &(Reply, Reply), what: &str, pred: impl Fn(&Reply) -> bool) {
    for (reply, label) in [(&r.0, "openbao"), (&r.1, "strongroom")] {
        p.expect(
            pred(reply),
            format!("{what}: {label} answered {} {}", reply.status, reply.body),
        );
    }
}

/// Records a failure unless both servers answered the same value at `ptr`
/// (raw, not normalised: for values a test has made deterministic).
pub fn same_value(p: &mut Pair, r: &(Reply, Reply), ptr: &str, what: &str) {
    let (a, b) = (r.0.body.pointer(ptr), r.1.body.pointer(ptr));
    p.expect(
        a == b,
        format!("{what}: {ptr} is {a:?} on openbao, {b:?} on strongroom"),
    );
}

#[cfg(test)]
mod tests {
    //! The comparison itself: the differential suites are only as good as
    //! its ability to notice a difference.
    use serde_json::json;

    use super::*;

    const L: (&str, &str) = ("openbao", "strongroom");

    #[test]
    fn ids_and_times_are_normalised_but_not_their_absence() {
        let a = json!({"request_id": "6f1c2a8e-0000-4000-8000-000000000001",
            "auth": {"client_token": "hvs.CAESIAbcdefghijklmnopqrstuvwxyz", "accessor": "abcdefghijklmnopqrstuvwx"},
            "data": {"creation_time": "2026-12-04T22:30:46.123456Z", "ttl": 2764799}});
        let b = json!({"request_id": "0a1b2c3d-0000-4000-8000-000000000002",
            "auth": {"client_token": "hvs.ZZZZZZZZZZZZZZZZZZZZZZZZZZ", "accessor": "ZYXWVUTSRQPONMLKJIHGFEDC"},
            "data": {"creation_time": "2026-12-04T22:30:47Z", "ttl": 2764800}});
        assert_eq!(value_diffs(&a, &b, L, &[]), Vec::<String>::new());
        let c = json!({"request_id": "", "auth": {"client_token": "hvs.ZZZZZZZZZZZZZZZZZZZZZZZZZZ", "accessor": "ZYXWVUTSRQPONMLKJIHGFEDC"},
            "data": {"creation_time": "2026-12-04T22:30:47Z", "ttl": 0}});
        assert_eq!(
            value_diffs(&a, &c, L, &[]),
            vec![
                "/request_id: \"<id>\" in openbao, \"\" in strongroom".to_string(),
                "/data/ttl: string in openbao, number in strongroom".to_string(),
            ]
        );
    }

    #[test]
    fn uuids_inside_messages_and_key_material_are_normalised() {
        let a = json!({"errors": ["no entry for \"ac2297e7-f0a3-88fd-e115-dbc619b29c2e\""],
            "keys": ["0a143f9429d5cd8c7dda490d3f7778945908972b1bcc9e3a601c972a9a1667c465"]});
        let b = json!({"errors": ["no entry for \"a2f66090-40c6-4f35-bfb0-16635e9076f0\""],
            "keys": ["87db0ee4417e8fbc6170d0fbd4b6e473dd5fe7937dc8b9ac822b8706fd362901e0"]});
        assert_eq!(value_diffs(&a, &b, L, &[]), Vec::<String>::new());
    }

    #[test]
    fn namespace_ids_and_token_suffixes_are_normalised_but_not_their_absence() {
        let a = json!({"data": {"id": "sIpFNe", "path": "ns1/", "uuid": "67ad96c3-6308-bbca-0579-4cefe853208e",
            "locked": false, "tainted": false, "custom_metadata": {}},
            "auth": {"client_token": "s.A74xt5vCBLlBUfhA8SdlvoJE.sIpFNe", "accessor": "v687aSQArPgCVyTecgzhYj7s.sIpFNe"}});
        let b = json!({"data": {"id": "Ab3xY9", "path": "ns1/", "uuid": "0a1b2c3d-0000-4000-8000-000000000002",
            "locked": false, "tainted": false, "custom_metadata": {}},
            "auth": {"client_token": "s.ZZZZZZZZZZZZZZZZZZZZZZZZ.Ab3xY9", "accessor": "ZYXWVUTSRQPONMLKJIHGFEDC.Ab3xY9"}});
        assert_eq!(value_diffs(&a, &b, L, &[]), Vec::<String>::new());
        assert_eq!(normalise(&a)["auth"]["client_token"], json!("<id>.<nsid>"));
        // A token without the namespace suffix, or an id of another shape,
        // is a difference.
        let c = json!({"data": {"id": "ns1", "path": "ns1/", "uuid": "0a1b2c3d-0000-4000-8000-000000000002",
            "locked": false, "tainted": false, "custom_metadata": {}},
            "auth": {"client_token": "s.ZZZZZZZZZZZZZZZZZZZZZZZZ", "accessor": "ZYXWVUTSRQPONMLKJIHGFEDC"}});
        assert_eq!(
            value_diffs(&a, &c, L, &[]),
            vec![
                "/data/id: \"<nsid>\" in openbao, \"ns1\" in strongroom".to_string(),
                "/auth/client_token: \"<id>.<nsid>\" in openbao, \"<id>\" in strongroom"
                    .to_string(),
                "/auth/accessor: \"<id>.<nsid>\" in openbao, \"<id>\" in strongroom".to_string(),
            ]
        );
        // An `id` outside a namespace's description is not a namespace id.
        let d = json!({"id": "abcdef"});
        assert_eq!(normalise(&d), d);
    }

    #[test]
    fn values_are_compared() {
        let a = json!({"data": {"n": 1, "t": true, "s": "x"}});
        let b = json!({"data": {"n": 2, "t": true, "s": "y"}});
        assert_eq!(
            value_diffs(&a, &b, L, &[]),
            vec![
                "/data/n: 1 in openbao, 2 in strongroom".to_string(),
                "/data/s: \"x\" in openbao, \"y\" in strongroom".to_string(),
            ]
        );
    }

    #[test]
    fn every_array_element_is_compared() {
        let a = json!({"keys": ["x", "y", "z"]});
        let b = json!({"keys": ["x", "q"]});
        assert_eq!(
            value_diffs(&a, &b, L, &[]),
            vec![
                "/keys/1: \"y\" in openbao, \"q\" in strongroom".to_string(),
                "/keys/2: only in openbao (string)".to_string(),
            ]
        );
    }

    #[test]
    fn missing_and_extra_keys_are_named_with_their_side() {
        let a = json!({"data": {"only_a": 1, "both": 2}});
        let b = json!({"data": {"both": 2, "only_b": "x"}});
        assert_eq!(
            value_diffs(&a, &b, L, &[]),
            vec![
                "/data/only_a: only in openbao (number)".to_string(),
                "/data/only_b: only in strongroom (string)".to_string(),
            ]
        );
    }

    #[test]
    fn type_differences_are_found_at_depth_and_inside_arrays() {
        let a = json!({"x": {"y": [{"z": "s"}, {"z": 1}]}, "w": null});
        let b = json!({"x": {"y": [{"z": "s"}, {"z": "1"}]}, "w": {}});
        assert_eq!(
            value_diffs(&a, &b, L, &[]),
            vec![
                "/x/y/1/z: number in openbao, string in strongroom".to_string(),
                "/w: null in openbao, object in strongroom".to_string(),
            ]
        );
    }

    #[test]
    fn keys_with_slashes_are_escaped_and_allow_patterns_match() {
        let a = json!({"data": {"secret/": {"type": "kv"}, "extra/": {}}});
        let b = json!({"data": {"secret/": {"type": "kv"}}});
        assert_eq!(
            value_diffs(&a, &b, L, &[]),
            vec!["/data/extra~1: only in openbao (object)".to_string()]
        );
        let allow = [Allow {
            pattern: "/*/extra~1",
            reason: "test",
        }];
        assert!(value_diffs(&a, &b, L, &allow).is_empty());
    }

    #[test]
    fn allow_covers_subtrees_and_array_elements_but_not_siblings() {
        let a = json!({"help": "x", "openapi": {"a": 1}, "k": 1, "l": [{"m": 1}, {"m": 2}]});
        let b = json!({"help": "x", "k": "s", "l": [{"m": 3}, {"m": 4}]});
        let allow = [
            Allow {
                pattern: "/openapi",
                reason: "test",
            },
            Allow {
                pattern: "/l/[]/m",
                reason: "test",
            },
        ];
        assert_eq!(
            value_diffs(&a, &b, L, &allow),
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
            body: json!({"errors": []}),
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
            body: Value::Null,
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
}
