//! The Nomad scheduler: the task id is `<alloc_id>/<task>` (what a task
//! sees as `$NOMAD_ALLOC_ID/$NOMAD_TASK_NAME`), or the bare `<alloc_id>`
//! when the allocation runs a single task. The allocation is read with
//! `GET /v1/allocation/<alloc_id>` and its node with `GET /v1/node/<id>`;
//! the task name is `<job>/<group>/<task>`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::common::{self, nullable};
use crate::{Scheduler, SchedulerArgs, SchedulerError, Secret, Task};

/// Asks a Nomad agent about allocations.
#[derive(Debug)]
pub struct NomadScheduler {
    client: reqwest::Client,
    base: Url,
    token: Option<Secret>,
}

impl NomadScheduler {
    /// Builds the scheduler from `nomad-addr`, `nomad-token`,
    /// `nomad-cacert` and `scheduler-timeout`; contacts nothing yet.
    pub fn from_args(args: &SchedulerArgs) -> Result<Self, SchedulerError> {
        let bad = |why: String| SchedulerError::Unavailable(format!("nomad: {why}"));
        let addr = args.nomad_addr.trim();
        let mut base = Url::parse(addr).map_err(|e| bad(format!("nomad-addr {addr:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(bad(format!("nomad-addr {addr:?} is not an http(s) URL")));
        }
        if base.cannot_be_a_base() {
            return Err(bad(format!("nomad-addr {addr:?} cannot be a base")));
        }
        base.set_query(None);
        base.set_fragment(None);
        let client = common::http_client(
            "nomad",
            args.nomad_cacert.as_deref(),
            args.scheduler_timeout,
        )?;
        Ok(NomadScheduler {
            client,
            base,
            token: args.nomad_token.clone().filter(|t| !t.expose().is_empty()),
        })
    }

    /// GETs `/v1/<kind>/<id>`; `Ok(None)` when Nomad answers 404.
    async fn get(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, SchedulerError> {
        let what = format!("nomad {kind}");
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| SchedulerError::Unavailable(format!("{what}: bad nomad-addr")))?
            .pop_if_empty()
            .extend(["v1", kind, id]);
        let mut request = self.client.get(url);
        if let Some(token) = &self.token {
            let mut value =
                reqwest::header::HeaderValue::from_str(token.expose()).map_err(|_| {
                    SchedulerError::Unavailable(
                        "nomad: the token holds characters a header cannot carry".to_owned(),
                    )
                })?;
            value.set_sensitive(true);
            request = request.header("X-Nomad-Token", value);
        }
        let answer = common::send(&what, request).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(common::status_error(&what, answer.status));
        }
        Ok(Some(answer.body))
    }
}

#[async_trait::async_trait]
impl Scheduler for NomadScheduler {
    fn name(&self) -> &str {
        "nomad"
    }

    async fn lookup(&self, task_id: &str) -> Result<Task, SchedulerError> {
        let not_found = || SchedulerError::NotFound(task_id.to_owned());
        let (alloc_id, task_name) = split_task_id(task_id).ok_or_else(not_found)?;
        let body = self
            .get("allocation", alloc_id)
            .await?
            .ok_or_else(not_found)?;
        let alloc = parse_allocation(&body)?;
        let (mut task, node_id) = alloc_task(&alloc, task_id, task_name)?;
        if !is_id(&node_id) {
            return Err(SchedulerError::BadAnswer(format!(
                "nomad: allocation {alloc_id} has no valid NodeID"
            )));
        }
        let body = self.get("node", &node_id).await?.ok_or_else(|| {
            SchedulerError::BadAnswer(format!("nomad: node {node_id} of {alloc_id} is unknown"))
        })?;
        let node = parse_node(&body)?;
        let mut addresses = node_addresses(&node);
        for ip in task.addresses.drain(..) {
            common::push_address(&mut addresses, ip);
        }
        if addresses.is_empty() {
            return Err(SchedulerError::BadAnswer(format!(
                "nomad: node {node_id} has no address"
            )));
        }
        task.addresses = addresses;
        Ok(task)
    }
}

/// Whether `id` looks like a Nomad id (a UUID): it is put in a URL path.
fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Splits `<alloc_id>[/<task>]`; `None` when it cannot be one.
pub(crate) fn split_task_id(task_id: &str) -> Option<(&str, Option<&str>)> {
    let (alloc, task) = match task_id.split_once('/') {
        Some((alloc, task)) if !task.is_empty() => (alloc, Some(task)),
        Some(_) => return None,
        None => (task_id, None),
    };
    is_id(alloc).then_some((alloc, task))
}

/// The part of an allocation this scheduler reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Allocation {
    #[serde(rename = "NodeID", default, deserialize_with = "nullable")]
    node_id: String,
    #[serde(rename = "JobID", default, deserialize_with = "nullable")]
    job_id: String,
    #[serde(default, deserialize_with = "nullable")]
    task_group: String,
    #[serde(default, deserialize_with = "nullable")]
    client_status: String,
    #[serde(default, deserialize_with = "nullable")]
    task_states: BTreeMap<String, TaskState>,
    #[serde(default, deserialize_with = "nullable")]
    job: Option<Job>,
    #[serde(default, deserialize_with = "nullable")]
    allocated_resources: Option<AllocatedResources>,
    #[serde(default, deserialize_with = "nullable")]
    network_status: Option<NetworkStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskState {
    #[serde(default, deserialize_with = "nullable")]
    state: String,
    #[serde(default, deserialize_with = "nullable")]
    started_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Job {
    #[serde(default, deserialize_with = "nullable")]
    task_groups: Vec<TaskGroup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskGroup {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    tasks: Vec<JobTask>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JobTask {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    config: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AllocatedResources {
    #[serde(default, deserialize_with = "nullable")]
    shared: Option<SharedResources>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SharedResources {
    #[serde(default, deserialize_with = "nullable")]
    networks: Vec<Network>,
}

#[derive(Debug, Default, Deserialize)]
struct Network {
    #[serde(rename = "IP", default, deserialize_with = "nullable")]
    ip: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkStatus {
    #[serde(default, deserialize_with = "nullable")]
    address: Option<String>,
}

/// The part of a node this scheduler reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Node {
    #[serde(rename = "HTTPAddr", default, deserialize_with = "nullable")]
    http_addr: String,
    #[serde(default, deserialize_with = "nullable")]
    attributes: BTreeMap<String, String>,
}

/// Decodes an allocation.
pub(crate) fn parse_allocation(body: &[u8]) -> Result<Allocation, SchedulerError> {
    common::decode("nomad allocation", body)
}

/// Decodes a node.
pub(crate) fn parse_node(body: &[u8]) -> Result<Node, SchedulerError> {
    common::decode("nomad node", body)
}

/// Reads an allocation answer as a lookup does for `task_id`
/// (`<alloc_id>[/<task>]`) once it has arrived: the running task and its
/// node id. Public so that the fuzz targets reach the parser.
pub fn read_allocation(body: &[u8], task_id: &str) -> Result<(Task, String), SchedulerError> {
    let (_, task_name) =
        split_task_id(task_id).ok_or_else(|| SchedulerError::NotFound(task_id.to_owned()))?;
    alloc_task(&parse_allocation(body)?, task_id, task_name)
}

/// Reads a node answer as a lookup does: the node's addresses. Public so
/// that the fuzz targets reach the parser.
pub fn read_node(body: &[u8]) -> Result<Vec<IpAddr>, SchedulerError> {
    Ok(node_addresses(&parse_node(body)?))
}

/// The running task of an allocation (its addresses: the allocation's
/// own networks) and the allocation's node id.
pub(crate) fn alloc_task(
    alloc: &Allocation,
    task_id: &str,
    task_name: Option<&str>,
) -> Result<(Task, String), SchedulerError> {
    let not_found = || SchedulerError::NotFound(task_id.to_owned());
    if alloc.client_status != "running" {
        tracing::debug!(task_id, status = %alloc.client_status, "nomad: the allocation is not running");
        return Err(not_found());
    }
    let (name, state) = match task_name {
        Some(name) => alloc
            .task_states
            .get_key_value(name)
            .ok_or_else(not_found)?,
        None if alloc.task_states.len() == 1 => {
            alloc.task_states.iter().next().ok_or_else(not_found)?
        }
        None => {
            tracing::debug!(task_id, "nomad: several tasks: ask with <alloc_id>/<task>");
            return Err(not_found());
        }
    };
    if state.state != "running" {
        return Err(not_found());
    }
    let started = state
        .started_at
        .as_deref()
        .and_then(common::parse_rfc3339)
        .ok_or_else(|| {
            SchedulerError::BadAnswer(format!("nomad: task {task_id} has no valid StartedAt"))
        })?;
    let image = alloc
        .job
        .as_ref()
        .and_then(|job| job.task_groups.iter().find(|g| g.name == alloc.task_group))
        .and_then(|group| group.tasks.iter().find(|t| t.name == *name))
        .and_then(|t| t.config.get("image"))
        .and_then(|image| image.as_str())
        .filter(|image| !image.is_empty())
        .map(str::to_owned);
    let mut addresses = Vec::new();
    let shared = alloc
        .allocated_resources
        .as_ref()
        .and_then(|r| r.shared.as_ref())
        .map(|s| s.networks.as_slice())
        .unwrap_or_default();
    let ips = shared.iter().filter_map(|n| n.ip.as_deref()).chain(
        alloc
            .network_status
            .as_ref()
            .and_then(|n| n.address.as_deref()),
    );
    for ip in ips.filter_map(|ip| ip.parse::<IpAddr>().ok()) {
        common::push_address(&mut addresses, ip);
    }
    Ok((
        Task {
            id: task_id.to_owned(),
            name: format!("{}/{}/{}", alloc.job_id, alloc.task_group, name),
            group: None,
            image,
            started,
            addresses,
        },
        alloc.node_id.clone(),
    ))
}

/// A node's addresses: the host of its `HTTPAddr` and its
/// `unique.network.ip-address` attribute.
pub(crate) fn node_addresses(node: &Node) -> Vec<IpAddr> {
    let mut addresses = Vec::new();
    let from_http = node
        .http_addr
        .rsplit_once(':')
        .map(|(host, _)| host)
        .unwrap_or(&node.http_addr)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let from_attribute = node
        .attributes
        .get("unique.network.ip-address")
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    for ip in from_http.into_iter().chain(from_attribute) {
        common::push_address(&mut addresses, ip);
    }
    addresses
}
