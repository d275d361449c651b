//! The Mesos scheduler: a task is looked up in the leading master's state
//! (`GET <master>/master/state`).
//!
//! With a list of masters, the leader is found among them (a master that is
//! not the leader either redirects to it, as Mesos 1.x does, or answers its
//! own state naming the leader, as older versions do) and remembered; it is
//! looked for again only when it fails or has stopped leading. With
//! `zk://host:port,.../path` (or `zks://` for HTTPS to the masters) the
//! leader is the one ZooKeeper names, followed by a watch ([`zk`]).
//!
//! Cost: the state holds every running task of the cluster, so each lookup
//! downloads it whole (megabytes on a big cluster); it is the one endpoint
//! that names a task's framework and agent together.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::common::{self, nullable};
use crate::{Scheduler, SchedulerArgs, SchedulerError, Task};

pub mod zk;

pub use zk::{ZkLeader, ZK_SESSION_TIMEOUT};

/// The only Mesos task state that vouches for a task.
const RUNNING: &str = "TASK_RUNNING";

/// Asks the leading Mesos master about tasks.
#[derive(Debug)]
pub struct MesosScheduler {
    client: reqwest::Client,
    masters: Vec<Url>,
    /// `zk://` discovery, instead of `masters`.
    zookeeper: Option<zk::ZkDiscovery>,
    leader: Mutex<Option<Url>>,
    timeout: Duration,
}

impl MesosScheduler {
    /// Builds the scheduler from `mesos-master`, `mesos-cacert` and
    /// `scheduler-timeout`. A masters list contacts nothing yet; a `zk://`
    /// value starts following ZooKeeper in the background (under a Tokio
    /// runtime; else at the first lookup).
    pub fn from_args(args: &SchedulerArgs) -> Result<Self, SchedulerError> {
        Self::with_zk_session_timeout(args, ZK_SESSION_TIMEOUT)
    }

    /// As [`MesosScheduler::from_args`], with `zk://` sessions of
    /// `session_timeout` (how long ZooKeeper may be cut off before the
    /// leader it named is forgotten) instead of [`ZK_SESSION_TIMEOUT`].
    pub fn with_zk_session_timeout(
        args: &SchedulerArgs,
        session_timeout: Duration,
    ) -> Result<Self, SchedulerError> {
        let target = zk::parse_zk(&args.mesos_master)?;
        let masters = match target {
            Some(_) => Vec::new(),
            None => parse_masters(&args.mesos_master)?,
        };
        let client = common::http_client(
            "mesos",
            args.mesos_cacert.as_deref(),
            args.scheduler_timeout,
        )?;
        Ok(MesosScheduler {
            client,
            masters,
            zookeeper: target.map(|t| zk::ZkDiscovery::new(t, session_timeout)),
            leader: Mutex::new(None),
            timeout: args.scheduler_timeout,
        })
    }

    /// The masters this scheduler asks, as base URLs ending in `/` (none
    /// with `zk://`: ZooKeeper names them).
    pub fn masters(&self) -> &[Url] {
        &self.masters
    }

    /// With `zk://`: what is known of the leader now and each change after
    /// (for tests and health checks; lookups need not wait on it).
    pub fn zk_leader(&self) -> Option<tokio::sync::watch::Receiver<ZkLeader>> {
        self.zookeeper.as_ref().map(zk::ZkDiscovery::watch)
    }

    /// The master currently remembered as the leader, if any.
    pub fn remembered_leader(&self) -> Option<Url> {
        self.leader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn remember(&self, leader: Option<Url>) {
        *self.leader.lock().unwrap_or_else(|e| e.into_inner()) = leader;
    }

    /// Asks one master for its state.
    async fn probe(&self, base: &Url) -> Result<Probe, SchedulerError> {
        let url = base
            .join("master/state")
            .map_err(|e| SchedulerError::Unavailable(format!("mesos: {base}: {e}")))?;
        let what = format!("mesos master {base}");
        let answer = common::send(&what, self.client.get(url.clone())).await?;
        if answer.status.is_redirection() {
            let hint = answer
                .location
                .as_deref()
                .and_then(|location| url.join(location).ok())
                .map(|target| base_of(&target));
            return Ok(Probe::Follower(hint));
        }
        if !answer.status.is_success() {
            return Err(common::status_error(&what, answer.status));
        }
        let state = parse_state(&what, &answer.body)?;
        if !state.pid.is_empty() && state.pid == state.leader {
            Ok(Probe::Leader(Box::new(state)))
        } else {
            Ok(Probe::Follower(state.leader_hint(base.scheme())))
        }
    }

    /// The leading master's state: with ZooKeeper, from the master it
    /// names (following a redirect it may answer); else from the
    /// remembered leader when it still leads, else after looking for the
    /// leader again.
    async fn leader_state(&self) -> Result<MesosState, SchedulerError> {
        let mut queue: VecDeque<Url> = VecDeque::new();
        let mut tried: Vec<Url> = Vec::new();
        let mut errors: Vec<SchedulerError> = Vec::new();
        if let Some(zookeeper) = &self.zookeeper {
            queue.push_back(zookeeper.leader(self.timeout).await?);
            return self.search(queue, tried, errors, 1, false).await;
        }
        if let Some(base) = self.remembered_leader() {
            match self.probe(&base).await {
                Ok(Probe::Leader(state)) => return Ok(*state),
                Ok(Probe::Follower(hint)) => {
                    tracing::info!(master = %base, "mesos: the remembered master no longer leads");
                    queue.extend(hint);
                }
                Err(e) => {
                    tracing::warn!(master = %base, error = %e, "mesos: the remembered leader failed");
                    errors.push(e);
                }
            }
            self.remember(None);
            tried.push(base);
        }
        queue.extend(self.masters.iter().cloned());
        self.search(queue, tried, errors, self.masters.len(), true)
            .await
    }

    /// Asks the masters of `queue` in turn, and the leaders they name,
    /// until one leads: `masters` of them plus a few hints at most. The
    /// leader found is remembered when `remember`.
    async fn search(
        &self,
        mut queue: VecDeque<Url>,
        mut tried: Vec<Url>,
        mut errors: Vec<SchedulerError>,
        masters: usize,
        remember: bool,
    ) -> Result<MesosState, SchedulerError> {
        let mut budget = masters + 3;
        while let Some(base) = queue.pop_front() {
            if tried.contains(&base) {
                continue;
            }
            if budget == 0 {
                break;
            }
            budget -= 1;
            tried.push(base.clone());
            match self.probe(&base).await {
                Ok(Probe::Leader(state)) => {
                    if remember {
                        tracing::info!(master = %base, "mesos: found the leading master");
                        self.remember(Some(base));
                    }
                    return Ok(*state);
                }
                Ok(Probe::Follower(Some(hint))) => queue.push_front(hint),
                Ok(Probe::Follower(None)) => errors.push(SchedulerError::Unavailable(format!(
                    "mesos master {base}: not the leader, and names none"
                ))),
                Err(e) => errors.push(e),
            }
        }
        Err(combine(errors))
    }

    /// Resolves an agent host name to its addresses.
    async fn resolve(&self, host: &str) -> Vec<IpAddr> {
        match tokio::time::timeout(self.timeout, tokio::net::lookup_host((host, 0))).await {
            Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
            Ok(Err(e)) => {
                tracing::warn!(host, error = %e, "mesos: cannot resolve the agent");
                Vec::new()
            }
            Err(_) => {
                tracing::warn!(host, "mesos: resolving the agent timed out");
                Vec::new()
            }
        }
    }
}

#[async_trait::async_trait]
impl Scheduler for MesosScheduler {
    fn name(&self) -> &str {
        "mesos"
    }

    async fn lookup(&self, task_id: &str) -> Result<Task, SchedulerError> {
        let state = self.leader_state().await?;
        let (mut task, agent_host) = find_task(&state, task_id)?;
        if let Some(host) = agent_host {
            for ip in self.resolve(&host).await {
                common::push_address(&mut task.addresses, ip);
            }
            if task.addresses.is_empty() {
                return Err(SchedulerError::Unavailable(format!(
                    "mesos: cannot resolve the agent {host} of task {task_id}"
                )));
            }
        }
        Ok(task)
    }
}

/// What one master said about leadership.
enum Probe {
    /// It leads: here is the state.
    Leader(Box<MesosState>),
    /// It does not lead; it may have named the leader's base URL.
    Follower(Option<Url>),
}

/// One error out of every master's: a bad answer only if all were bad
/// answers, timed out only if all timed out, else unavailable.
fn combine(errors: Vec<SchedulerError>) -> SchedulerError {
    if errors.is_empty() {
        return SchedulerError::Unavailable("mesos: no master to ask".to_owned());
    }
    let all_bad = errors
        .iter()
        .all(|e| matches!(e, SchedulerError::BadAnswer(_)));
    let all_late = errors
        .iter()
        .all(|e| matches!(e, SchedulerError::TimedOut(_)));
    let text = errors
        .iter()
        .map(|e| match e {
            SchedulerError::NotFound(s)
            | SchedulerError::Unavailable(s)
            | SchedulerError::TimedOut(s)
            | SchedulerError::BadAnswer(s) => s.as_str(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    if all_bad {
        SchedulerError::BadAnswer(text)
    } else if all_late {
        SchedulerError::TimedOut(text)
    } else {
        SchedulerError::Unavailable(text)
    }
}

/// The base URL of a master from the URL of one of its endpoints.
fn base_of(endpoint: &Url) -> Url {
    let mut base = endpoint.clone();
    base.set_query(None);
    base.set_fragment(None);
    let path = base.path().to_owned();
    let prefix = path.strip_suffix("master/state").unwrap_or("/");
    base.set_path(if prefix.is_empty() { "/" } else { prefix });
    base
}

/// Parses a `mesos-master` list of masters (a `zk://` value is
/// [`zk::parse_zk`]'s): comma-separated `http(s)://host:port[/path]` or
/// `host:port`; a master without a scheme takes the previous one's (so the
/// original's `http://m1:5050,m2:5050/` works), plain HTTP by default.
pub fn parse_masters(list: &str) -> Result<Vec<Url>, SchedulerError> {
    let bad = |why: String| SchedulerError::Unavailable(format!("mesos-master {list:?}: {why}"));
    let mut scheme = "http";
    let mut masters = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let rest = match item.split_once("://") {
            Some((given, rest)) => {
                scheme = match given.to_ascii_lowercase().as_str() {
                    "http" => "http",
                    "https" => "https",
                    "zk" | "zks" => {
                        return Err(bad(
                            "a zk:// URL is the whole value, not one master of a list".to_owned(),
                        ))
                    }
                    other => return Err(bad(format!("unknown scheme {other:?}"))),
                };
                rest
            }
            None => item,
        };
        let mut url = Url::parse(&format!("{scheme}://{rest}")).map_err(|e| bad(e.to_string()))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad(format!("{item:?} has no host")));
        }
        url.set_query(None);
        url.set_fragment(None);
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        if !masters.contains(&url) {
            masters.push(url);
        }
    }
    if masters.is_empty() {
        return Err(bad("no master given".to_owned()));
    }
    Ok(masters)
}

/// The part of a master's state this scheduler reads.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MesosState {
    #[serde(default, deserialize_with = "nullable")]
    leader: String,
    #[serde(default, deserialize_with = "nullable")]
    pid: String,
    #[serde(default, deserialize_with = "nullable")]
    leader_info: Option<MasterInfo>,
    #[serde(default, deserialize_with = "nullable")]
    slaves: Vec<Agent>,
    #[serde(default, deserialize_with = "nullable")]
    frameworks: Vec<Framework>,
}

impl MesosState {
    /// The leader's base URL, from `leader_info` or the `leader` pid.
    pub(crate) fn leader_hint(&self, scheme: &str) -> Option<Url> {
        let from_info = self.leader_info.as_ref().and_then(|info| {
            let host = info.hostname.as_deref().filter(|h| !h.is_empty())?;
            let port = info.port.filter(|p| *p > 0)?;
            Some(format!("{host}:{port}"))
        });
        let from_pid = || {
            let (_, address) = self.leader.split_once('@')?;
            (!address.is_empty()).then(|| address.to_owned())
        };
        let authority = from_info.or_else(from_pid)?;
        Url::parse(&format!("{scheme}://{authority}/")).ok()
    }
}

#[derive(Debug, Default, Deserialize)]
struct MasterInfo {
    #[serde(default, deserialize_with = "nullable")]
    hostname: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    port: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct Agent {
    #[serde(default, deserialize_with = "nullable")]
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    pid: String,
    #[serde(default, deserialize_with = "nullable")]
    hostname: String,
}

#[derive(Debug, Default, Deserialize)]
struct Framework {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    /// Live tasks only: `completed_tasks` are not read.
    #[serde(default, deserialize_with = "nullable")]
    tasks: Vec<MesosTask>,
}

#[derive(Debug, Default, Deserialize)]
struct MesosTask {
    #[serde(default, deserialize_with = "nullable")]
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    state: String,
    #[serde(default, deserialize_with = "nullable")]
    slave_id: String,
    #[serde(default, deserialize_with = "nullable")]
    statuses: Vec<Status>,
    #[serde(default, deserialize_with = "nullable")]
    container: Option<Container>,
}

#[derive(Debug, Default, Deserialize)]
struct Status {
    #[serde(default, deserialize_with = "nullable")]
    timestamp: Option<f64>,
    #[serde(default, deserialize_with = "nullable")]
    container_status: Option<ContainerStatus>,
}

#[derive(Debug, Default, Deserialize)]
struct ContainerStatus {
    #[serde(default, deserialize_with = "nullable")]
    network_infos: Vec<NetworkInfo>,
}

#[derive(Debug, Default, Deserialize)]
struct NetworkInfo {
    #[serde(default, deserialize_with = "nullable")]
    ip_addresses: Vec<IpAddress>,
}

#[derive(Debug, Default, Deserialize)]
struct IpAddress {
    #[serde(default, deserialize_with = "nullable")]
    ip_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Container {
    #[serde(default, deserialize_with = "nullable")]
    docker: Option<DockerInfo>,
    #[serde(default, deserialize_with = "nullable")]
    mesos: Option<MesosInfo>,
}

#[derive(Debug, Default, Deserialize)]
struct DockerInfo {
    #[serde(default, deserialize_with = "nullable")]
    image: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct MesosInfo {
    #[serde(default, deserialize_with = "nullable")]
    image: Option<Image>,
}

#[derive(Debug, Default, Deserialize)]
struct Image {
    #[serde(default, deserialize_with = "nullable")]
    docker: Option<ImageDocker>,
}

#[derive(Debug, Default, Deserialize)]
struct ImageDocker {
    #[serde(default, deserialize_with = "nullable")]
    name: Option<String>,
}

/// Decodes a master's state.
pub(crate) fn parse_state(what: &str, body: &[u8]) -> Result<MesosState, SchedulerError> {
    common::decode(what, body)
}

/// Reads a master's `master/state` answer as a lookup does once it has
/// arrived: the leader it names (a base URL with `scheme`), and the
/// running task `task_id` with the agent host name still to resolve.
/// Public so that the fuzz targets reach the parser.
#[allow(clippy::type_complexity)]
pub fn read_state(
    body: &[u8],
    scheme: &str,
    task_id: &str,
) -> Result<(Option<Url>, Result<(Task, Option<String>), SchedulerError>), SchedulerError> {
    let state = parse_state("mesos master", body)?;
    Ok((state.leader_hint(scheme), find_task(&state, task_id)))
}

/// The IP in an agent's pid (`slave(1)@10.0.0.5:5051`).
fn pid_ip(pid: &str) -> Option<IpAddr> {
    let (_, address) = pid.rsplit_once('@')?;
    let (host, _port) = address.rsplit_once(':')?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Finds a running task in the state: the task, and the agent's host name
/// when it still has to be resolved to an address.
pub(crate) fn find_task(
    state: &MesosState,
    task_id: &str,
) -> Result<(Task, Option<String>), SchedulerError> {
    let not_found = || SchedulerError::NotFound(task_id.to_owned());
    let (framework, found) = state
        .frameworks
        .iter()
        .find_map(|f| f.tasks.iter().find(|t| t.id == task_id).map(|t| (f, t)))
        .ok_or_else(not_found)?;
    if found.state != RUNNING {
        tracing::debug!(task_id, state = %found.state, "mesos: the task is not running");
        return Err(not_found());
    }
    if found.statuses.is_empty() {
        return Err(not_found());
    }
    let started = found
        .statuses
        .iter()
        .filter_map(|s| s.timestamp.and_then(common::from_unix_f64))
        .min()
        .ok_or_else(|| {
            SchedulerError::BadAnswer(format!("mesos: task {task_id} has no valid status time"))
        })?;
    let image = found.container.as_ref().and_then(|c| {
        c.docker
            .as_ref()
            .and_then(|d| d.image.clone())
            .or_else(|| {
                c.mesos
                    .as_ref()
                    .and_then(|m| m.image.as_ref())
                    .and_then(|i| i.docker.as_ref())
                    .and_then(|d| d.name.clone())
            })
            .filter(|i| !i.is_empty())
    });

    let mut addresses = Vec::new();
    let mut unresolved = None;
    match state.slaves.iter().find(|a| a.id == found.slave_id) {
        Some(agent) => {
            if let Some(ip) = pid_ip(&agent.pid) {
                common::push_address(&mut addresses, ip);
            } else if let Ok(ip) = agent.hostname.parse::<IpAddr>() {
                common::push_address(&mut addresses, ip);
            } else if !agent.hostname.is_empty() {
                unresolved = Some(agent.hostname.clone());
            }
        }
        None => {
            tracing::warn!(task_id, agent = %found.slave_id, "mesos: the task's agent is not in the state")
        }
    }
    let container_ips = found
        .statuses
        .iter()
        .filter_map(|s| s.container_status.as_ref())
        .flat_map(|c| &c.network_infos)
        .flat_map(|n| &n.ip_addresses)
        .filter_map(|a| a.ip_address.as_deref()?.parse::<IpAddr>().ok());
    for ip in container_ips {
        common::push_address(&mut addresses, ip);
    }
    if addresses.is_empty() && unresolved.is_none() {
        return Err(SchedulerError::BadAnswer(format!(
            "mesos: no address for the agent of task {task_id}"
        )));
    }
    Ok((
        Task {
            id: task_id.to_owned(),
            name: found.name.clone(),
            group: Some(framework.name.clone()).filter(|n| !n.is_empty()),
            image,
            started,
            addresses,
        },
        unresolved,
    ))
}
