//! The Nomad API emulator: `GET /v1/allocation/<id>` and
//! `GET /v1/node/<id>`, with the ACL token checked (`X-Nomad-Token`) when
//! one is set, answering as a Nomad agent does (404 text for an unknown id,
//! 403 "Permission denied").

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};

use super::{lock, Control, Mode, Server};

/// A task of an emulated allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatedNomadTask {
    /// The task's name in its group.
    pub name: String,
    /// Its state: `pending`, `running` or `dead`.
    pub state: String,
    /// When it started.
    pub started: SystemTime,
    /// The Docker image in its config, if any.
    pub image: Option<String>,
}

impl EmulatedNomadTask {
    /// A task running since now with the given image.
    pub fn running(name: &str, image: Option<&str>) -> Self {
        EmulatedNomadTask {
            name: name.to_owned(),
            state: "running".to_owned(),
            started: SystemTime::now(),
            image: image.map(str::to_owned),
        }
    }
}

/// An emulated allocation.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatedAllocation {
    /// The allocation id (a UUID).
    pub id: String,
    /// The job id.
    pub job: String,
    /// The task group.
    pub group: String,
    /// The node it was placed on.
    pub node_id: String,
    /// `ClientStatus`: `pending`, `running`, `complete`, `failed`, `lost`.
    pub client_status: String,
    /// The allocation's bridge-network address, if any.
    pub network_ip: Option<IpAddr>,
    /// Its tasks.
    pub tasks: Vec<EmulatedNomadTask>,
}

impl EmulatedAllocation {
    /// A running allocation with the given tasks.
    pub fn running(
        id: &str,
        job: &str,
        group: &str,
        node_id: &str,
        tasks: Vec<EmulatedNomadTask>,
    ) -> Self {
        EmulatedAllocation {
            id: id.to_owned(),
            job: job.to_owned(),
            group: group.to_owned(),
            node_id: node_id.to_owned(),
            client_status: "running".to_owned(),
            network_ip: None,
            tasks,
        }
    }
}

/// An emulated client node.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatedNode {
    /// The node id.
    pub id: String,
    /// Its address (in `HTTPAddr` and `unique.network.ip-address`).
    pub ip: IpAddr,
}

impl EmulatedNode {
    /// A node at `ip`.
    pub fn new(id: &str, ip: IpAddr) -> Self {
        EmulatedNode {
            id: id.to_owned(),
            ip,
        }
    }

    /// A node at 127.0.0.1.
    pub fn local(id: &str) -> Self {
        Self::new(id, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

#[derive(Debug, Default)]
struct Cluster {
    allocations: Vec<EmulatedAllocation>,
    nodes: Vec<EmulatedNode>,
    token: Option<String>,
}

#[derive(Debug)]
struct Shared {
    cluster: Mutex<Cluster>,
    control: Arc<Control>,
}

/// An emulated Nomad agent (allocations and nodes only).
#[derive(Debug)]
pub struct NomadEmulator {
    /// The agent's address: a `nomad-addr` value.
    pub url: String,
    shared: Arc<Shared>,
    _server: Server,
}

impl NomadEmulator {
    /// Starts an agent with nothing scheduled and ACLs off.
    pub async fn start() -> Self {
        let control = Arc::new(Control::default());
        let shared = Arc::new(Shared {
            cluster: Mutex::new(Cluster::default()),
            control: control.clone(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = Server::start(router, control, None).await;
        NomadEmulator {
            url: server.url(),
            shared,
            _server: server,
        }
    }

    /// Requires `X-Nomad-Token: token` from now on (`None`: ACLs off).
    pub fn set_token(&self, token: Option<&str>) {
        lock(&self.shared.cluster).token = token.map(str::to_owned);
    }

    /// Adds an allocation, replacing one with the same id.
    pub fn add_allocation(&self, alloc: EmulatedAllocation) {
        let mut cluster = lock(&self.shared.cluster);
        cluster.allocations.retain(|a| a.id != alloc.id);
        cluster.allocations.push(alloc);
    }

    /// Removes an allocation.
    pub fn remove_allocation(&self, id: &str) {
        lock(&self.shared.cluster)
            .allocations
            .retain(|a| a.id != id);
    }

    /// Changes an allocation's `ClientStatus`.
    pub fn set_client_status(&self, id: &str, status: &str) {
        for alloc in lock(&self.shared.cluster)
            .allocations
            .iter_mut()
            .filter(|a| a.id == id)
        {
            alloc.client_status = status.to_owned();
        }
    }

    /// Adds a node, replacing one with the same id.
    pub fn add_node(&self, node: EmulatedNode) {
        let mut cluster = lock(&self.shared.cluster);
        cluster.nodes.retain(|n| n.id != node.id);
        cluster.nodes.push(node);
    }

    /// Switches the agent into `mode`.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.control.set_mode(mode);
    }

    /// How many requests `path` (`/v1/allocation/<id>`) got.
    pub fn requests(&self, path: &str) -> u64 {
        self.shared.control.requests(path)
    }

    /// How many requests the agent got in all.
    pub fn total_requests(&self) -> u64 {
        self.shared.control.total()
    }
}

fn nanos(time: SystemTime) -> String {
    humantime::format_rfc3339_nanos(time).to_string()
}

fn alloc_json(alloc: &EmulatedAllocation) -> Value {
    let mut states = Map::new();
    for task in &alloc.tasks {
        let running = task.state != "pending";
        states.insert(
            task.name.clone(),
            json!({
                "State": task.state,
                "Failed": false,
                "Restarts": 0,
                "LastRestart": null,
                "StartedAt": if running { nanos(task.started) } else { "0001-01-01T00:00:00Z".to_owned() },
                "FinishedAt": if task.state == "dead" { nanos(task.started) } else { "0001-01-01T00:00:00Z".to_owned() },
                "Events": null,
            }),
        );
    }
    let tasks: Vec<Value> = alloc
        .tasks
        .iter()
        .map(|t| {
            let config = match &t.image {
                Some(image) => json!({"image": image}),
                None => json!({"command": "/bin/true"}),
            };
            json!({"Name": t.name, "Driver": if t.image.is_some() { "docker" } else { "exec" }, "Config": config})
        })
        .collect();
    json!({
        "ID": alloc.id,
        "Namespace": "default",
        "EvalID": "00000000-0000-0000-0000-00000000eval",
        "Name": format!("{}.{}[0]", alloc.job, alloc.group),
        "NodeID": alloc.node_id,
        "NodeName": "node",
        "JobID": alloc.job,
        "Job": {
            "ID": alloc.job,
            "Name": alloc.job,
            "Type": "service",
            "TaskGroups": [{"Name": alloc.group, "Count": 1, "Tasks": tasks}],
        },
        "TaskGroup": alloc.group,
        "DesiredStatus": "run",
        "ClientStatus": alloc.client_status,
        "TaskStates": if alloc.tasks.is_empty() { Value::Null } else { Value::Object(states) },
        "AllocatedResources": {
            "Tasks": null,
            "Shared": {"Networks": null, "DiskMB": 300},
        },
        "NetworkStatus": alloc.network_ip.map(|ip| json!({"InterfaceName": "eth0", "Address": ip.to_string(), "DNS": null})),
        "CreateIndex": 10,
        "ModifyIndex": 12,
    })
}

fn node_json(node: &EmulatedNode) -> Value {
    json!({
        "ID": node.id,
        "Name": format!("node-{}", node.id),
        "Datacenter": "dc1",
        "HTTPAddr": std::net::SocketAddr::new(node.ip, 4646).to_string(),
        "Attributes": {
            "unique.network.ip-address": node.ip.to_string(),
            "os.name": "linux",
        },
        "Status": "ready",
        "Drivers": null,
    })
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, body.to_owned()).into_response()
}

async fn handle(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if let Some(answer) = shared.control.enter(path) {
        return answer;
    }
    let cluster = lock(&shared.cluster);
    if let Some(token) = &cluster.token {
        let given = headers.get("X-Nomad-Token").and_then(|v| v.to_str().ok());
        if given != Some(token.as_str()) {
            return text(StatusCode::FORBIDDEN, "Permission denied");
        }
    }
    if let Some(id) = path.strip_prefix("/v1/allocation/") {
        return match cluster.allocations.iter().find(|a| a.id == id) {
            Some(alloc) => super::json(StatusCode::OK, alloc_json(alloc)),
            None => text(StatusCode::NOT_FOUND, "alloc not found"),
        };
    }
    if let Some(id) = path.strip_prefix("/v1/node/") {
        return match cluster.nodes.iter().find(|n| n.id == id) {
            Some(node) => super::json(StatusCode::OK, node_json(node)),
            None => text(StatusCode::NOT_FOUND, "node not found"),
        };
    }
    text(StatusCode::NOT_FOUND, "Invalid URL")
}
