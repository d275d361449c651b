//! The workloads, as data: what each one requests, what it needs set up
//! first, and which pairings it runs in. Adding a workload (KV v2, AppRole
//! login, ...) means adding an entry to [`all`].

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;

use anyhow::bail;
use hyper::header::HeaderValue;
use hyper::Method;
use serde_json::{json, Value};

use crate::client;

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

/// A measured workload: one request shape, issued in a closed loop.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The name used on the command line and in the table.
    pub name: &'static str,
    /// The HTTP method of every request.
    pub method: Method,
    /// The logical path below `/v1/`; [`KEY_PLACEHOLDER`] is replaced by
    /// `0..keys`, cycling.
    pub path: &'static str,
    /// How many distinct keys the placeholder cycles over.
    pub keys: usize,
    /// The JSON body of every request, if any.
    pub body: Option<Value>,
    /// What must exist before the workload runs.
    pub setup: Vec<Step>,
    /// The pairings this workload is measured in.
    pub pairings: Vec<Pairing>,
}

impl Workload {
    /// The concrete paths the workload cycles over (one when the path has no
    /// placeholder).
    pub fn paths(&self) -> Vec<String> {
        if self.path.contains(KEY_PLACEHOLDER) {
            (0..self.keys.max(1))
                .map(|n| self.path.replace(KEY_PLACEHOLDER, &n.to_string()))
                .collect()
        } else {
            vec![self.path.to_string()]
        }
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

/// Every workload, in table order.
pub fn all() -> Vec<Workload> {
    vec![
        Workload {
            name: "health",
            method: Method::GET,
            path: "sys/health",
            keys: 1,
            body: None,
            setup: vec![],
            pairings: vec![Pairing::Dev],
        },
        Workload {
            name: "kv1-read",
            method: Method::GET,
            path: "kv1/bench-read",
            keys: 1,
            body: None,
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
            method: Method::PUT,
            path: "kv1/bench-{n}",
            keys: 1000,
            body: Some(small_secret()),
            setup: vec![mount_kv1()],
            pairings: vec![Pairing::Dev, Pairing::Durable],
        },
        Workload {
            name: "token-lookup-self",
            method: Method::GET,
            path: "auth/token/lookup-self",
            keys: 1,
            body: None,
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
            ["health", "kv1-read", "kv1-write", "token-lookup-self"]
        );
        assert_eq!(in_pairing(Pairing::Durable), ["kv1-read", "kv1-write"]);
    }

    #[test]
    fn write_workload_cycles_over_distinct_keys() {
        let write = select(&["kv1-write".into()]).unwrap().remove(0);
        let paths = write.paths();
        assert_eq!(paths.len(), 1000);
        assert_eq!(paths[0], "kv1/bench-0");
        assert_eq!(paths[999], "kv1/bench-999");
        assert_eq!(paths.iter().collect::<HashSet<_>>().len(), 1000);
    }

    #[test]
    fn read_workload_reads_the_secret_its_setup_writes() {
        let read = select(&["kv1-read".into()]).unwrap().remove(0);
        assert_eq!(read.paths(), ["kv1/bench-read"]);
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
    fn pairing_names_round_trip() {
        for p in Pairing::ALL {
            assert_eq!(Pairing::parse(p.name()).unwrap(), p);
        }
        assert!(Pairing::parse("prod").is_err());
    }
}
