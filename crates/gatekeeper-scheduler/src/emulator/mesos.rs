//! The Mesos master emulator: two masters answering `/master/state` (and
//! `/state`), one of them leading; followers redirect to the leader with
//! 307 as Mesos 1.x does, or (legacy mode) answer their own state naming
//! the leader as older Mesos did.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use super::{lock, Control, Mode, Server};

/// A task as the emulated cluster runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatedMesosTask {
    /// The task id (what `MESOS_TASK_ID` holds).
    pub id: String,
    /// The task's name.
    pub name: String,
    /// The name of the framework that launched it.
    pub framework: String,
    /// The Docker image, if any.
    pub image: Option<String>,
    /// Report the image as a Mesos-containerizer image
    /// (`container.mesos.image.docker.name`) instead of `container.docker`.
    pub unified_container: bool,
    /// The IP of the agent it runs on.
    pub agent_ip: IpAddr,
    /// The task's own container IP, if it has one.
    pub container_ip: Option<IpAddr>,
    /// When its first status was sent.
    pub started: SystemTime,
    /// Its Mesos state (`TASK_RUNNING`, `TASK_STAGING`, `TASK_FINISHED`, ...);
    /// terminal states put it in the framework's `completed_tasks`.
    pub state: String,
}

impl EmulatedMesosTask {
    /// A task running since now on agent 127.0.0.1, no image.
    pub fn running(id: &str, framework: &str, name: &str) -> Self {
        EmulatedMesosTask {
            id: id.to_owned(),
            name: name.to_owned(),
            framework: framework.to_owned(),
            image: None,
            unified_container: false,
            agent_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            container_ip: None,
            started: SystemTime::now(),
            state: "TASK_RUNNING".to_owned(),
        }
    }
}

fn is_terminal(state: &str) -> bool {
    matches!(
        state,
        "TASK_FINISHED"
            | "TASK_FAILED"
            | "TASK_KILLED"
            | "TASK_LOST"
            | "TASK_ERROR"
            | "TASK_DROPPED"
            | "TASK_GONE"
            | "TASK_GONE_BY_OPERATOR"
    )
}

#[derive(Debug, Default)]
struct Cluster {
    leader: Option<usize>,
    legacy_followers: bool,
    tasks: Vec<EmulatedMesosTask>,
    ports: Vec<u16>,
}

#[derive(Debug)]
struct Master {
    index: usize,
    cluster: Arc<Mutex<Cluster>>,
    control: Arc<Control>,
}

/// Two emulated Mesos masters sharing one cluster.
#[derive(Debug)]
pub struct MesosEmulator {
    /// Both masters, comma-separated: a `mesos-master` value.
    pub url: String,
    /// Each master's base URL, by index.
    pub masters: Vec<String>,
    /// With [`MesosEmulator::start_tls`]: the PEM of the CA that issued the
    /// masters' certificates (a `mesos-cacert` file's content).
    pub ca_pem: Option<String>,
    cluster: Arc<Mutex<Cluster>>,
    controls: Vec<Arc<Control>>,
    _servers: Vec<Server>,
}

impl MesosEmulator {
    /// Starts two plain-HTTP masters; master 0 leads.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts two HTTPS masters with certificates for 127.0.0.1 issued by a
    /// fresh CA (in [`MesosEmulator::ca_pem`]); master 0 leads.
    pub async fn start_tls() -> Self {
        let (ca_pem, config) = super::tls_config();
        let mut emulator = Self::start_with(Some(config)).await;
        emulator.ca_pem = Some(ca_pem);
        emulator
    }

    async fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let cluster = Arc::new(Mutex::new(Cluster {
            leader: Some(0),
            ..Cluster::default()
        }));
        let mut servers = Vec::new();
        let mut controls = Vec::new();
        for index in 0..2 {
            let control = Arc::new(Control::default());
            let master = Arc::new(Master {
                index,
                cluster: cluster.clone(),
                control: control.clone(),
            });
            let router = Router::new().fallback(handle).with_state(master);
            servers.push(Server::start(router, control.clone(), tls.clone()).await);
            controls.push(control);
        }
        lock(&cluster).ports = servers.iter().map(|s| s.addr.port()).collect();
        let masters: Vec<String> = servers.iter().map(Server::url).collect();
        MesosEmulator {
            url: masters.join(","),
            masters,
            ca_pem: None,
            cluster,
            controls,
            _servers: servers,
        }
    }

    /// Makes master `index` the leader (`None`: no master leads).
    pub fn set_leader(&self, index: Option<usize>) {
        lock(&self.cluster).leader = index;
    }

    /// Followers answer their own state naming the leader (Mesos before
    /// 1.0) instead of redirecting with 307.
    pub fn set_legacy_followers(&self, legacy: bool) {
        lock(&self.cluster).legacy_followers = legacy;
    }

    /// Adds a task, replacing one with the same id.
    pub fn add_task(&self, task: EmulatedMesosTask) {
        let mut cluster = lock(&self.cluster);
        cluster.tasks.retain(|t| t.id != task.id);
        cluster.tasks.push(task);
    }

    /// Removes a task.
    pub fn remove_task(&self, id: &str) {
        lock(&self.cluster).tasks.retain(|t| t.id != id);
    }

    /// Changes a task's state.
    pub fn set_task_state(&self, id: &str, state: &str) {
        for task in lock(&self.cluster).tasks.iter_mut().filter(|t| t.id == id) {
            task.state = state.to_owned();
        }
    }

    /// Switches master `index` into `mode`.
    pub fn set_mode(&self, index: usize, mode: Mode) {
        if let Some(control) = self.controls.get(index) {
            control.set_mode(mode);
        }
    }

    /// Master `index`'s `MasterInfo` as the JSON a Mesos master writes to
    /// its ZooKeeper node (`json.info_<sequence>`) when it contends for
    /// leadership.
    pub fn master_info(&self, index: usize) -> Value {
        let port = lock(&self.cluster).ports.get(index).copied().unwrap_or(0);
        json!({
            "id": format!("master-{index}"),
            // 127.0.0.1 packed in network byte order.
            "ip": u32::from_le_bytes(Ipv4Addr::LOCALHOST.octets()),
            "port": port,
            "pid": pid(port),
            "hostname": "127.0.0.1",
            "version": "1.11.0",
            "address": {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": port},
        })
    }

    /// How many requests master `index` got for `path` (`/master/state`).
    pub fn requests(&self, index: usize, path: &str) -> u64 {
        self.controls.get(index).map_or(0, |c| c.requests(path))
    }
}

fn secs(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn pid(port: u16) -> String {
    format!("master@127.0.0.1:{port}")
}

fn agent_id(ip: IpAddr) -> String {
    format!("agent-{}", ip.to_string().replace([':', '.'], "-"))
}

fn task_json(task: &EmulatedMesosTask) -> Value {
    let status = |state: &str, at: f64| {
        let mut status = json!({"state": state, "timestamp": at, "source": "SOURCE_EXECUTOR"});
        if let Some(ip) = task.container_ip {
            status["container_status"] = json!({
                "network_infos": [{"ip_addresses": [{"protocol": "IPv4", "ip_address": ip.to_string()}]}]
            });
        }
        status
    };
    let started = secs(task.started);
    let statuses = match task.state.as_str() {
        "TASK_STAGING" => vec![],
        "TASK_RUNNING" => vec![status("TASK_RUNNING", started)],
        other if is_terminal(other) => vec![
            status("TASK_RUNNING", started),
            status(other, started + 60.0),
        ],
        other => vec![status(other, started)],
    };
    let mut value = json!({
        "id": task.id,
        "name": task.name,
        "framework_id": format!("fw-{}", task.framework),
        "executor_id": "",
        "slave_id": agent_id(task.agent_ip),
        "state": task.state,
        "resources": {"cpus": 0.1, "mem": 32.0, "disk": 0.0, "gpus": 0.0},
        "statuses": statuses,
    });
    if let Some(image) = &task.image {
        value["container"] = if task.unified_container {
            json!({"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": image}}}})
        } else {
            json!({"type": "DOCKER", "docker": {"image": image, "network": "BRIDGE"}})
        };
    }
    value
}

fn state_json(cluster: &Cluster, index: usize, leading: bool) -> Value {
    let port = cluster.ports.get(index).copied().unwrap_or(0);
    let leader = cluster.leader.and_then(|l| cluster.ports.get(l).copied());
    let mut state = json!({
        "version": "1.11.0",
        "git_tag": "1.11.0",
        "id": format!("master-{index}"),
        "pid": pid(port),
        "hostname": "127.0.0.1",
        "activated_slaves": 0,
        "start_time": 1_700_000_000.0,
        "flags": {"port": port.to_string()},
        "slaves": [],
        "frameworks": [],
        "completed_frameworks": [],
        "unregistered_frameworks": [],
    });
    if let Some(leader_port) = leader {
        state["leader"] = json!(pid(leader_port));
        state["leader_info"] = json!({
            "id": "leader",
            "pid": pid(leader_port),
            "hostname": "127.0.0.1",
            "port": leader_port,
            "address": {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": leader_port},
        });
    }
    if !leading {
        return state;
    }
    let mut agents: Vec<IpAddr> = cluster.tasks.iter().map(|t| t.agent_ip).collect();
    agents.sort();
    agents.dedup();
    state["activated_slaves"] = json!(agents.len());
    state["slaves"] = agents
        .iter()
        .map(|ip| {
            json!({
                "id": agent_id(*ip),
                "pid": format!("slave(1)@{}", std::net::SocketAddr::new(*ip, 5051)),
                "hostname": ip.to_string(),
                "active": true,
            })
        })
        .collect();
    let mut names: Vec<&str> = cluster.tasks.iter().map(|t| t.framework.as_str()).collect();
    names.sort();
    names.dedup();
    state["frameworks"] = names
        .iter()
        .map(|name| {
            let of = |done: bool| -> Vec<Value> {
                cluster
                    .tasks
                    .iter()
                    .filter(|t| t.framework == *name && is_terminal(&t.state) == done)
                    .map(task_json)
                    .collect()
            };
            json!({
                "id": format!("fw-{name}"),
                "name": name,
                "active": true,
                "tasks": of(false),
                "completed_tasks": of(true),
            })
        })
        .collect();
    state
}

async fn handle(State(master): State<Arc<Master>>, uri: Uri) -> Response {
    let path = uri.path();
    if let Some(answer) = master.control.enter(path) {
        return answer;
    }
    if !matches!(
        path,
        "/master/state" | "/state" | "/master/state.json" | "/state.json"
    ) {
        return (StatusCode::NOT_FOUND, "").into_response();
    }
    let cluster = lock(&master.cluster);
    let leading = cluster.leader == Some(master.index);
    if !leading && !cluster.legacy_followers {
        let leader_port = cluster.leader.and_then(|l| cluster.ports.get(l).copied());
        return match leader_port {
            Some(port) => (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, format!("//127.0.0.1:{port}{path}"))],
            )
                .into_response(),
            None => (StatusCode::SERVICE_UNAVAILABLE, "No leader elected").into_response(),
        };
    }
    super::json(StatusCode::OK, state_json(&cluster, master.index, leading))
}
