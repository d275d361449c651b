//! The workloads, as data: what each iteration requests (one call, or a
//! chain where a call authenticates with a token taken from the previous
//! answer), what counts as success, what must be set up first, and which
//! pairings it runs in. Adding a workload (KV v2, AppRole login, ...) means
//! adding an entry to [`all`].

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;

use anyhow::bail;
use hyper::header::HeaderValue;
use hyper::Method;
use serde_json::{json, Value};

use crate::client;
use crate::load::{Check, Expect, TokenFrom};

/// The placeholder in a workload path that is replaced by a key number.
pub const KEY_PLACEHOLDER: &str = "{n}";

/// Which two servers are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pairing {
    /// Both servers in `-dev` mode (in-memory storage, unsealed, root token).
    Dev,
    /// Persistent storage: Strongroom on redb against OpenBao on raft.
    Durable,
}

impl Pairing {
    /// Every pairing, in the order they run.
    pub const ALL: [Pairing; 2] = [Pairing::Dev, Pairing::Durable];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Pairing::Dev => "dev",
            Pairing::Durable => "durable",
        }
    }

    /// Parses a pairing name as given to `--pairings`.
    pub fn parse(name: &str) -> anyhow::Result<Pairing> {
        match Pairing::ALL.into_iter().find(|p| p.name() == name) {
            Some(p) => Ok(p),
            None => bail!("unknown pairing {name:?} (known: dev, durable)"),
        }
    }
}

impl fmt::Display for Pairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One setup request, run with the root token before a workload. Steps are
/// identified by name so that a step shared by several workloads (mounting
/// `kv1/`) runs once per server.
#[derive(Debug, Clone)]
pub struct Step {
    /// Identifies the step; a server runs each name once.
    pub name: &'static str,
    /// The HTTP method.
    pub method: Method,
    /// The logical path below `/v1/`.
    pub path: &'static str,
    /// The JSON body, if any.
    pub body: Option<Value>,
}

impl Step {
    /// Runs the step against `addr`; any answer but 2xx is an error.
    pub async fn run(&self, addr: SocketAddr, root: &HeaderValue) -> anyhow::Result<()> {
        client::call_ok(
            addr,
            self.method.clone(),
            self.path,
            Some(root),
            self.body.as_ref(),
        )
        .await
        .map(drop)
    }
}

/// One request of a workload's iteration, as data.
#[derive(Debug, Clone)]
pub struct Call {
    /// The HTTP method.
    pub method: Method,
    /// The logical path below `/v1/`; [`KEY_PLACEHOLDER`] is replaced by the
    /// iteration's key number (`0..keys`, cycling).
    pub path: &'static str,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// Extra request headers (name, value), e.g. `X-Vault-Wrap-TTL`.
    pub headers: Vec<(&'static str, &'static str)>,
    /// Where the `X-Vault-Token` comes from.
    pub token: TokenFrom,
    /// What counts as a successful answer.
    pub expect: Expect,
}

impl Call {
    /// The concrete paths this call cycles over when its workload has `keys`
    /// keys (one when the path has no placeholder).
    pub fn paths(&self, keys: usize) -> Vec<String> {
        if self.path.contains(KEY_PLACEHOLDER) {
            (0..keys.max(1))
                .map(|n| self.path.replace(KEY_PLACEHOLDER, &n.to_string()))
                .collect()
        } else {
            vec![self.path.to_string()]
        }
    }
}

/// A call with the benchmark's token, no body, no extra header, and any 2xx
/// answer accepted: the base the workload table fills in.
fn call(method: Method, path: &'static str) -> Call {
    Call {
        method,
        path,
        body: None,
        headers: vec![],
        token: TokenFrom::Bench,
        expect: Expect::default(),
    }
}

/// A measured workload: one iteration (its [`Call`]s in order, on one
/// connection), issued in a closed loop. An iteration counts as one
/// operation; its latency runs from the first request to the last answer.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The name used on the command line and in the table.
    pub name: &'static str,
    /// The requests of one iteration, in order; a failed one ends the
    /// iteration (counted as one error).
    pub calls: Vec<Call>,
    /// How many distinct keys the placeholder cycles over.
    pub keys: usize,
    /// What must exist before the workload runs.
    pub setup: Vec<Step>,
    /// The pairings this workload is measured in.
    pub pairings: Vec<Pairing>,
}

impl Workload {
    /// For iterations of more than one request, the note under the table
    /// saying what one operation is; `None` for single-request workloads.
    pub fn operation_note(&self) -> Option<String> {
        if self.calls.len() < 2 {
            return None;
        }
        let steps: Vec<String> = self
            .calls
            .iter()
            .map(|c| format!("{} {}", c.method, c.path))
            .collect();
        Some(format!(
            "{}: one operation is {} requests on one connection ({}); req/s counts \
             operations and the latency covers all of them.",
            self.name,
            self.calls.len(),
            steps.join(", then ")
        ))
    }
}

/// Mounts KV version 1 at `kv1/`.
fn mount_kv1() -> Step {
    Step {
        name: "mount-kv1",
        method: Method::POST,
        path: "sys/mounts/kv1",
        body: Some(json!({"type": "kv", "options": {"version": "1"}})),
    }
}

/// A small secret, the size of a typical credential.
fn small_secret() -> Value {
    json!({"username": "bench-user", "password": "correct-horse-battery-staple"})
}

/// The header that asks for a response-wrapped answer.
const WRAP_TTL_HEADER: &str = "X-Vault-Wrap-TTL";

/// `sys/wrapping/wrap` of a small secret for five minutes; a 200 carrying a
/// wrapping token.
fn wrap() -> Call {
    Call {
        body: Some(json!({"secret": "value"})),
        headers: vec![(WRAP_TTL_HEADER, "5m")],
        expect: Expect {
            status: Some(200),
            checks: vec![Check::Present("/wrap_info/token")],
        },
        ..call(Method::POST, "sys/wrapping/wrap")
    }
}

/// Every workload, in table order.
pub fn all() -> Vec<Workload> {
    vec![
        Workload {
            name: "health",
            calls: vec![call(Method::GET, "sys/health")],
            keys: 1,
            setup: vec![],
            pairings: vec![Pairing::Dev],
        },
        Workload {
            name: "kv1-read",
            calls: vec![call(Method::GET, "kv1/bench-read")],
            keys: 1,
            setup: vec![
                mount_kv1(),
                Step {
                    name: "seed-kv1-read",
                    method: Method::PUT,
                    path: "kv1/bench-read",
                    body: Some(small_secret()),
                },
            ],
            pairings: vec![Pairing::Dev, Pairing::Durable],
        },
        Workload {
            name: "kv1-write",
            calls: vec![Call {
                body: Some(small_secret()),
                ..call(Method::PUT, "kv1/bench-{n}")
            }],
            keys: 1000,
            setup: vec![mount_kv1()],
            pairings: vec![Pairing::Dev, Pairing::Durable],
        },
        Workload {
            name: "token-lookup-self",
            calls: vec![call(Method::GET, "auth/token/lookup-self")],
            keys: 1,
            setup: vec![],
            pairings: vec![Pairing::Dev],
        },
        Workload {
            name: "token-create",
            calls: vec![Call {
                body: Some(json!({"policies": ["default"], "ttl": "10m"})),
                expect: Expect {
                    status: Some(200),
                    checks: vec![Check::Present("/auth/client_token")],
                },
                ..call(Method::POST, "auth/token/create")
            }],
            keys: 1,
            setup: vec![],
            pairings: vec![Pairing::Dev],
        },
        Workload {
            name: "wrap",
            calls: vec![wrap()],
            keys: 1,
            setup: vec![],
            pairings: vec![Pairing::Dev],
        },
        Workload {
            name: "wrap-unwrap",
            calls: vec![
                wrap(),
                Call {
                    // The wrapping token authenticates the unwrap; no body.
                    token: TokenFrom::Answer("/wrap_info/token"),
                    expect: Expect {
                        status: Some(200),
                        checks: vec![Check::Equals("/data/secret", json!("value"))],
                    },
                    ..call(Method::POST, "sys/wrapping/unwrap")
                },
            ],
            keys: 1,
            setup: vec![],
            pairings: vec![Pairing::Dev],
        },
    ]
}

/// The workloads named in `names` (all of them when `names` is empty), in
/// table order; an unknown name is an error listing the known ones.
pub fn select(names: &[String]) -> anyhow::Result<Vec<Workload>> {
    let every = all();
    let known: HashSet<&str> = every.iter().map(|w| w.name).collect();
    if let Some(unknown) = names.iter().find(|n| !known.contains(n.as_str())) {
        let mut list: Vec<&str> = every.iter().map(|w| w.name).collect();
        list.sort_unstable();
        bail!("unknown workload {unknown:?} (known: {})", list.join(", "));
    }
    Ok(every
        .into_iter()
        .filter(|w| names.is_empty() || names.iter().any(|n| n == w.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_and_step_names_are_unique() {
        let every = all();
        let names: HashSet<_> = every.iter().map(|w| w.name).collect();
        assert_eq!(names.len(), every.len());
        // A step name stands for one request: two different requests under
        // one name would make the second silently skipped.
        let mut steps = std::collections::HashMap::new();
        for step in every.iter().flat_map(|w| &w.setup) {
            let shape = (step.method.clone(), step.path, step.body.clone());
            if let Some(prev) = steps.insert(step.name, shape.clone()) {
                assert_eq!(prev, shape, "step {} differs between workloads", step.name);
            }
        }
    }

    #[test]
    fn brief_pairings_are_covered() {
        let every = all();
        let in_pairing = |p: Pairing| -> Vec<&str> {
            every
                .iter()
                .filter(|w| w.pairings.contains(&p))
                .map(|w| w.name)
                .collect()
        };
        assert_eq!(
            in_pairing(Pairing::Dev),
            [
                "health",
                "kv1-read",
                "kv1-write",
                "token-lookup-self",
                "token-create",
                "wrap",
                "wrap-unwrap"
            ]
        );
        assert_eq!(in_pairing(Pairing::Durable), ["kv1-read", "kv1-write"]);
    }

    #[test]
    fn write_workload_cycles_over_distinct_keys() {
        let write = select(&["kv1-write".into()]).unwrap().remove(0);
        let paths = write.calls[0].paths(write.keys);
        assert_eq!(paths.len(), 1000);
        assert_eq!(paths[0], "kv1/bench-0");
        assert_eq!(paths[999], "kv1/bench-999");
        assert_eq!(paths.iter().collect::<HashSet<_>>().len(), 1000);
    }

    #[test]
    fn read_workload_reads_the_secret_its_setup_writes() {
        let read = select(&["kv1-read".into()]).unwrap().remove(0);
        assert_eq!(read.calls[0].paths(read.keys), ["kv1/bench-read"]);
        assert!(read
            .setup
            .iter()
            .any(|s| s.method == Method::PUT && s.path == "kv1/bench-read"));
        // The mount comes before the write into it.
        assert_eq!(read.setup[0].path, "sys/mounts/kv1");
    }

    #[test]
    fn select_keeps_table_order_and_rejects_unknown_names() {
        let picked = select(&["token-lookup-self".into(), "health".into()]).unwrap();
        let names: Vec<_> = picked.iter().map(|w| w.name).collect();
        assert_eq!(names, ["health", "token-lookup-self"]);
        assert_eq!(select(&[]).unwrap().len(), all().len());
        let err = select(&["kv2-read".into()]).unwrap_err().to_string();
        assert!(
            err.contains("kv2-read") && err.contains("kv1-write"),
            "{err}"
        );
    }

    #[test]
    fn token_create_asks_for_a_default_token_and_wants_it_back() {
        let create = select(&["token-create".into()]).unwrap().remove(0);
        let [call] = create.calls.as_slice() else {
            panic!("one request per operation");
        };
        assert_eq!(
            (call.method.clone(), call.path),
            (Method::POST, "auth/token/create")
        );
        assert_eq!(
            call.body,
            Some(json!({"policies": ["default"], "ttl": "10m"}))
        );
        assert_eq!(call.token, TokenFrom::Bench);
        assert_eq!(call.expect.status, Some(200));
        assert_eq!(call.expect.checks, [Check::Present("/auth/client_token")]);
        assert!(create.operation_note().is_none());
    }

    #[test]
    fn wrap_unwrap_feeds_the_wrapping_token_of_a_wrap_into_an_unwrap() {
        let wrap = select(&["wrap".into()]).unwrap().remove(0);
        let pair = select(&["wrap-unwrap".into()]).unwrap().remove(0);
        assert_eq!(pair.calls.len(), 2);
        // The first half is exactly the wrap workload.
        let (first, alone) = (&pair.calls[0], &wrap.calls[0]);
        assert_eq!(
            (&first.method, first.path, &first.body, &first.headers),
            (&alone.method, alone.path, &alone.body, &alone.headers)
        );
        assert_eq!(first.headers, [("X-Vault-Wrap-TTL", "5m")]);
        assert_eq!(first.body, Some(json!({"secret": "value"})));
        assert_eq!(first.expect.checks, [Check::Present("/wrap_info/token")]);
        let unwrap = &pair.calls[1];
        assert_eq!(
            (unwrap.method.clone(), unwrap.path),
            (Method::POST, "sys/wrapping/unwrap")
        );
        assert_eq!(unwrap.token, TokenFrom::Answer("/wrap_info/token"));
        assert!(unwrap.body.is_none() && unwrap.headers.is_empty());
        assert_eq!(
            unwrap.expect.checks,
            [Check::Equals("/data/secret", json!("value"))]
        );
        let note = pair.operation_note().unwrap();
        assert!(
            note.starts_with("wrap-unwrap: one operation is 2 requests"),
            "{note}"
        );
        assert!(wrap.operation_note().is_none());
    }

    #[test]
    fn pairing_names_round_trip() {
        for p in Pairing::ALL {
            assert_eq!(Pairing::parse(p.name()).unwrap(), p);
        }
        assert!(Pairing::parse("prod").is_err());
    }
}
