//! The ECS scheduler: a task asks with its task ARN or id, and Gatekeeper
//! asks the ECS API (`DescribeTasks`, JSON 1.1, signed with SigV4) about
//! it in the configured cluster.
//!
//! As the original vault-gatekeeper: the cluster is the one the ECS agent
//! on this host reports (`GET http://<private IPv4>:51678/v1/metadata`)
//! unless `--ecs-cluster` names it; the region comes from the EC2
//! metadata unless given; the task's name is its task-definition family
//! (policies key on `ecs:<family>`), its id the ARN's last part (so the
//! ARN and the bare id count as one task), its start `startedAt`, and its
//! address the private IP of its awsvpc network interface. A task that is
//! still starting (PROVISIONING, PENDING, ACTIVATING, or RUNNING without
//! `startedAt`) is asked about again after 0.5, 0.75 and 1 s, as the
//! original did, and is then "not running"; where the original could
//! crash on it, this never does. Bridge and host network tasks have no
//! address of their own in the ECS answer, so `--host-check` refuses them
//! (the original compared with that same missing address). No image is
//! reported, so `--use-image-name` keeps keying on the family, as the
//! original.

mod credentials;

pub use credentials::read_credentials;

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use reqwest::header::HeaderValue;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::common::{self, nullable};
use crate::{Scheduler, SchedulerArgs, SchedulerError, Task};

use credentials::http_url;
pub(crate) use credentials::Imds;

/// How long before their expiry fetched credentials are replaced.
#[cfg(test)]
pub(crate) fn refresh_margin() -> Duration {
    credentials::REFRESH_BEFORE
}

/// The `X-Amz-Target` of `DescribeTasks`.
pub const DESCRIBE_TASKS_TARGET: &str = "AmazonEC2ContainerServiceV20141113.DescribeTasks";

/// The content type of the ECS API (AWS JSON 1.1).
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The SigV4 service name of ECS.
pub const SIGNING_NAME: &str = "ecs";

/// The port of the ECS agent's introspection API.
const AGENT_PORT: u16 = 51678;

/// How long to wait before asking again about a task that is still
/// starting: the original's schedule.
const PENDING_DELAYS: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_millis(750),
    Duration::from_millis(1000),
];

/// Asks the ECS API about tasks.
#[derive(Debug)]
pub struct EcsScheduler {
    client: reqwest::Client,
    imds: Imds,
    credentials: credentials::Provider,
    region_flag: Option<String>,
    cluster_flag: Option<String>,
    endpoint_flag: Option<Url>,
    agent_flag: Option<Url>,
    region: OnceCell<String>,
    cluster: OnceCell<String>,
    pending_delays: Vec<Duration>,
}

impl EcsScheduler {
    /// Builds the scheduler from the `ecs-*` and `aws-*` flags and
    /// `scheduler-timeout`; contacts nothing yet (the region, the cluster
    /// and the credentials are looked up at the first request, and kept).
    pub fn from_args(args: &SchedulerArgs) -> Result<Self, SchedulerError> {
        let bad = |why: String| SchedulerError::Unavailable(format!("ecs: {why}"));
        let given = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let region_flag = given(&args.aws_region).or_else(|| given(&args.aws_default_region));
        if let Some(region) = &region_flag {
            credentials::check_region(region)?;
        }
        let cluster_flag = given(&args.ecs_cluster);
        if let Some(cluster) = &cluster_flag {
            check_cluster(cluster)?;
        }
        let url_flag = |name: &str, value: &Option<String>| {
            given(value)
                .map(|text| http_url(&text).map_err(|why| bad(format!("{name} {text:?}: {why}"))))
                .transpose()
        };
        let endpoint_flag = url_flag("ecs-endpoint", &args.ecs_endpoint)?;
        let agent_flag = url_flag("ecs-agent-addr", &args.ecs_agent_addr)?;
        let imds = Imds::new(&args.aws_metadata_addr)?;
        let credentials = credentials::Provider::from_args(args, imds.clone())?;
        let client = common::http_client("ecs", None, args.scheduler_timeout)?;
        Ok(EcsScheduler {
            client,
            imds,
            credentials,
            region_flag,
            cluster_flag,
            endpoint_flag,
            agent_flag,
            region: OnceCell::new(),
            cluster: OnceCell::new(),
            pending_delays: PENDING_DELAYS.to_vec(),
        })
    }

    /// Replaces the waits before asking again about a starting task (the
    /// tests wait for nothing).
    #[cfg(test)]
    pub(crate) fn with_pending_delays(mut self, delays: Vec<Duration>) -> Self {
        self.pending_delays = delays;
        self
    }

    /// The region: the flag's, or the instance's.
    async fn region(&self) -> Result<&str, SchedulerError> {
        self.region
            .get_or_try_init(|| async {
                match &self.region_flag {
                    Some(region) => Ok(region.clone()),
                    None => self.imds.region(&self.client).await,
                }
            })
            .await
            .map(String::as_str)
    }

    /// The cluster: the flag's, or the one the ECS agent reports.
    async fn cluster(&self) -> Result<&str, SchedulerError> {
        self.cluster
            .get_or_try_init(|| async {
                if let Some(cluster) = &self.cluster_flag {
                    return Ok(cluster.clone());
                }
                let agent = match &self.agent_flag {
                    Some(agent) => agent.clone(),
                    None => {
                        let ip = self.imds.local_ip(&self.client).await?;
                        let host = std::net::SocketAddr::new(ip, AGENT_PORT);
                        http_url(&format!("http://{host}/")).map_err(|why| {
                            SchedulerError::Unavailable(format!("ecs: the agent address: {why}"))
                        })?
                    }
                };
                let what = "ecs: the ECS agent's metadata";
                let url = agent
                    .join("v1/metadata")
                    .map_err(|e| SchedulerError::Unavailable(format!("{what}: {e}")))?;
                let answer = common::send(what, self.client.get(url)).await?;
                if !answer.status.is_success() {
                    return Err(common::status_error(what, answer.status));
                }
                let cluster = read_agent_metadata(&answer.body)?;
                tracing::info!(cluster = %cluster, "ecs: the cluster, from the ECS agent");
                Ok(cluster)
            })
            .await
            .map(String::as_str)
    }

    /// The ECS API endpoint: the flag's, or the region's.
    fn endpoint(&self, region: &str) -> Result<Url, SchedulerError> {
        if let Some(endpoint) = &self.endpoint_flag {
            return Ok(endpoint.clone());
        }
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        http_url(&format!("https://ecs.{region}.{suffix}/"))
            .map_err(|why| SchedulerError::Unavailable(format!("ecs: the endpoint: {why}")))
    }

    /// One signed `DescribeTasks` of `task` (an id or ARN); the answer's
    /// body when it is 200.
    async fn describe(&self, task: &str) -> Result<Vec<u8>, SchedulerError> {
        let what = "ecs DescribeTasks";
        let region = self.region().await?;
        let cluster = self.cluster().await?;
        let endpoint = self.endpoint(region)?;
        let credentials = self.credentials.get(&self.client).await?;
        let body = serde_json::to_vec(&serde_json::json!({"cluster": cluster, "tasks": [task]}))
            .map_err(|e| SchedulerError::Unavailable(format!("{what}: {e}")))?;
        let headers = [
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", DESCRIBE_TASKS_TARGET),
        ];
        let signed = sign(
            "POST",
            endpoint.as_str(),
            &headers,
            &body,
            &credentials,
            region,
            SystemTime::now(),
        )?;
        let mut request = self.client.post(endpoint).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let answer = common::send(what, request).await?;
        if answer.status == StatusCode::OK {
            return Ok(answer.body);
        }
        if answer.status == StatusCode::FORBIDDEN {
            // Expired or revoked temporary credentials: fetch new ones
            // for the next request.
            self.credentials.forget();
        }
        Err(SchedulerError::Unavailable(format!(
            "{what}: answered HTTP {}{} (credentials: {})",
            answer.status,
            api_error(&answer.body),
            self.credentials.describe()
        )))
    }
}

#[async_trait::async_trait]
impl Scheduler for EcsScheduler {
    fn name(&self) -> &str {
        "ecs"
    }

    async fn lookup(&self, task_id: &str) -> Result<Task, SchedulerError> {
        let not_found = || SchedulerError::NotFound(task_id.to_owned());
        if task_ref(task_id).is_none() {
            return Err(not_found());
        }
        let mut delays = self.pending_delays.iter();
        loop {
            let body = self.describe(task_id).await?;
            match describe_outcome(&body, task_id)? {
                Outcome::Running(task) => return Ok(task),
                Outcome::Starting => match delays.next() {
                    Some(delay) => {
                        tracing::debug!(task_id, ?delay, "ecs: the task is starting; asking again");
                        tokio::time::sleep(*delay).await;
                    }
                    None => {
                        tracing::debug!(task_id, "ecs: the task has not started");
                        return Err(not_found());
                    }
                },
            }
        }
    }
}

/// Signs a request to the ECS API with SigV4: the headers to add
/// (`authorization`, `x-amz-date`, and `x-amz-security-token` with
/// temporary credentials), sensitive ones marked so. `headers` are the
/// request's own headers to sign besides `host`, which comes from `uri`.
pub fn sign(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(&'static str, HeaderValue)>, SchedulerError> {
    let failed = |why: String| SchedulerError::Unavailable(format!("ecs: signing: {why}"));
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SIGNING_NAME)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(e.to_string()))?
        .into();
    let request = SignableRequest::new(
        method,
        uri,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| failed(e.to_string()))?;
    let (instructions, _signature) = aws_sigv4::http_request::sign(request, &params)
        .map_err(|e| failed(e.to_string()))?
        .into_parts();
    let (signed, _params) = instructions.into_parts();
    signed
        .into_iter()
        .map(|header| {
            let mut value = HeaderValue::from_str(header.value())
                .map_err(|_| failed(format!("the {} header is not a header", header.name())))?;
            value.set_sensitive(header.sensitive() || header.name() == "authorization");
            Ok((header.name(), value))
        })
        .collect()
}

/// ` (<type>: <message>)` of an AWS JSON error answer, on one line and
/// short; empty when the body is none.
fn api_error(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(short);
    let kind = text("__type").map(|t| t.rsplit('#').next().unwrap_or_default().to_owned());
    let message = text("message").or_else(|| text("Message"));
    match (kind, message) {
        (Some(kind), Some(message)) => format!(" ({kind}: {message:?})"),
        (Some(kind), None) => format!(" ({kind})"),
        (None, Some(message)) => format!(" ({message:?})"),
        (None, None) => String::new(),
    }
}

/// At most 200 characters of `text`.
fn short(text: &str) -> String {
    text.chars().take(200).collect()
}

/// A cluster name (`default`) or ARN, as the flag gives it.
fn check_cluster(cluster: &str) -> Result<(), SchedulerError> {
    let name_ok = |name: &str| {
        !name.is_empty()
            && name.len() <= 255
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let ok = match cluster.strip_prefix("arn:") {
        Some(_) => cluster
            .split_once(":cluster/")
            .is_some_and(|(_, name)| name_ok(name)),
        None => name_ok(cluster),
    };
    if ok {
        Ok(())
    } else {
        Err(SchedulerError::Unavailable(format!(
            "ecs: {cluster:?} is not a cluster name or ARN"
        )))
    }
}

/// Whether `id` can be an ECS task id (32 hex digits today, a UUID in
/// older clusters).
fn is_task_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The task id a task asks with: a bare id, or a task ARN
/// (`arn:<partition>:ecs:<region>:<account>:task/[<cluster>/]<id>`); its
/// id part, or `None` when it can be neither (nothing is then asked).
pub fn task_ref(task_id: &str) -> Option<&str> {
    if task_id.len() > 1024 {
        return None;
    }
    if !task_id.starts_with("arn:") {
        return is_task_id(task_id).then_some(task_id);
    }
    let parts: Vec<&str> = task_id.splitn(6, ':').collect();
    let [_, partition, "ecs", region, account, resource] = parts.as_slice() else {
        return None;
    };
    let simple = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if partition.is_empty() || !simple(partition) || !simple(region) || !simple(account) {
        return None;
    }
    let rest = resource.strip_prefix("task/")?;
    let (cluster, id) = match rest.split_once('/') {
        Some((cluster, id)) => (Some(cluster), id),
        None => (None, rest),
    };
    if cluster.is_some_and(|c| c.is_empty() || !simple(c)) {
        return None;
    }
    is_task_id(id).then_some(id)
}

/// What the ECS agent's `/v1/metadata` says (the part read here).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AgentMetadata {
    #[serde(default, deserialize_with = "nullable")]
    cluster: String,
}

/// Reads the ECS agent's `/v1/metadata` answer: its cluster. Public so
/// that the fuzz targets reach the parser.
pub fn read_agent_metadata(body: &[u8]) -> Result<String, SchedulerError> {
    let metadata: AgentMetadata = common::decode("ecs agent metadata", body)?;
    check_cluster(&metadata.cluster).map_err(|_| {
        SchedulerError::BadAnswer(format!(
            "ecs agent metadata: the Cluster {:?} is not a cluster name or ARN",
            short(&metadata.cluster)
        ))
    })?;
    Ok(metadata.cluster)
}

/// The part of a `DescribeTasks` answer this scheduler reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeTasksOutput {
    #[serde(default, deserialize_with = "nullable")]
    tasks: Vec<EcsTask>,
    #[serde(default, deserialize_with = "nullable")]
    failures: Vec<Failure>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EcsTask {
    #[serde(default, deserialize_with = "nullable")]
    task_arn: String,
    #[serde(default, deserialize_with = "nullable")]
    task_definition_arn: String,
    #[serde(default, deserialize_with = "nullable")]
    last_status: String,
    #[serde(default, deserialize_with = "nullable")]
    started_at: Option<f64>,
    #[serde(default, deserialize_with = "nullable")]
    stopped_at: Option<f64>,
    #[serde(default, deserialize_with = "nullable")]
    attachments: Vec<Attachment>,
    #[serde(default, deserialize_with = "nullable")]
    containers: Vec<Container>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attachment {
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    kind: String,
    #[serde(default, deserialize_with = "nullable")]
    details: Vec<Detail>,
}

#[derive(Debug, Default, Deserialize)]
struct Detail {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    #[serde(default, deserialize_with = "nullable")]
    network_interfaces: Vec<NetworkInterface>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NetworkInterface {
    #[serde(default, deserialize_with = "nullable")]
    private_ipv4_address: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    ipv6_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Failure {
    #[serde(default, deserialize_with = "nullable")]
    arn: String,
    #[serde(default, deserialize_with = "nullable")]
    reason: String,
    #[serde(default, deserialize_with = "nullable")]
    detail: String,
}

/// What a `DescribeTasks` answer says of the task asked about.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Running since its start.
    Running(Task),
    /// Not started yet: worth asking again shortly.
    Starting,
}

/// Reads a `DescribeTasks` answer as a lookup of `task_id` does, without
/// waiting for a starting task: a task that is not running (starting,
/// stopping, stopped, unknown) is [`SchedulerError::NotFound`]. Public so
/// that the fuzz targets reach the parser.
pub fn read_describe_tasks(body: &[u8], task_id: &str) -> Result<Task, SchedulerError> {
    match describe_outcome(body, task_id)? {
        Outcome::Running(task) => Ok(task),
        Outcome::Starting => Err(SchedulerError::NotFound(task_id.to_owned())),
    }
}

/// Reads a `DescribeTasks` answer about `task_id`.
pub(crate) fn describe_outcome(body: &[u8], task_id: &str) -> Result<Outcome, SchedulerError> {
    let what = "ecs DescribeTasks";
    let not_found = || SchedulerError::NotFound(task_id.to_owned());
    let id = task_ref(task_id).ok_or_else(not_found)?;
    let output: DescribeTasksOutput = common::decode(what, body)?;
    let found = output
        .tasks
        .iter()
        .find(|t| t.task_arn.rsplit('/').next() == Some(id));
    let Some(task) = found else {
        if !output.tasks.is_empty() {
            return Err(SchedulerError::BadAnswer(format!(
                "{what}: the answer describes other tasks than {id}"
            )));
        }
        return match output.failures.iter().find(|f| f.reason != "MISSING") {
            Some(f) => Err(SchedulerError::Unavailable(format!(
                "{what}: failed for {:?}: {:?} {:?}",
                short(&f.arn),
                short(&f.reason),
                short(&f.detail)
            ))),
            None => Err(not_found()),
        };
    };
    match task.last_status.as_str() {
        "PROVISIONING" | "PENDING" | "ACTIVATING" => return Ok(Outcome::Starting),
        "RUNNING" if task.stopped_at.is_none() => {}
        other => {
            tracing::debug!(task_id, status = %short(other), "ecs: the task is not running");
            return Err(not_found());
        }
    }
    let Some(started_at) = task.started_at else {
        return Ok(Outcome::Starting);
    };
    let started = common::from_unix_f64(started_at).ok_or_else(|| {
        SchedulerError::BadAnswer(format!("{what}: task {id} has no valid startedAt"))
    })?;
    let family = family(&task.task_definition_arn).ok_or_else(|| {
        SchedulerError::BadAnswer(format!("{what}: task {id} has no valid taskDefinitionArn"))
    })?;
    Ok(Outcome::Running(Task {
        id: id.to_owned(),
        name: family.to_owned(),
        group: None,
        image: None,
        started,
        addresses: addresses(task),
    }))
}

/// The family of a task definition ARN
/// (`arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>`).
fn family(arn: &str) -> Option<&str> {
    let (_, definition) = arn.split_once(":task-definition/")?;
    let (family, revision) = definition.rsplit_once(':')?;
    let ok = !family.is_empty()
        && family.len() <= 255
        && family
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !revision.is_empty()
        && revision.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(family)
}

/// A task's own addresses: its awsvpc network interface's private IPv4
/// (and IPv6), from the attachment and from the containers.
fn addresses(task: &EcsTask) -> Vec<IpAddr> {
    let mut addresses = Vec::new();
    let from_attachments = task
        .attachments
        .iter()
        .filter(|a| a.kind == "ElasticNetworkInterface")
        .flat_map(|a| a.details.iter())
        .filter(|d| d.name == "privateIPv4Address" || d.name == "ipv6Address")
        .map(|d| d.value.as_str());
    let from_containers = task
        .containers
        .iter()
        .flat_map(|c| c.network_interfaces.iter())
        .flat_map(|n| [n.private_ipv4_address.as_deref(), n.ipv6_address.as_deref()])
        .flatten();
    for ip in from_attachments
        .chain(from_containers)
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
    {
        common::push_address(&mut addresses, ip);
    }
    addresses
}
