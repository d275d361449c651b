//! What Gatekeeper asks a scheduler: "is this task running, since when,
//! where, and under which name?". One trait, [`Scheduler`], answered by the
//! Mesos master state API, the Kubernetes pods API, the Nomad
//! allocations API and the ECS `DescribeTasks` API; the policy name and the freshness and host checks are
//! the caller's business and work on the [`Task`] every scheduler returns.
//!
//! With the `emulators` feature, [`emulator`] serves those four APIs (and
//! nothing else) from real HTTP servers, for tests and the benchmark.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

mod common;
pub mod ecs;
#[cfg(any(test, feature = "emulators"))]
pub mod emulator;
pub mod kubernetes;
pub mod mesos;
pub mod nomad;
#[cfg(test)]
mod tests;

/// A running task as its scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The id the task asked with (ECS: the task id, the last part of the
    /// ARN the task may have asked with).
    pub id: String,
    /// The task's name, as policies name it (Mesos: the task name;
    /// Kubernetes: `namespace/pod-name`; Nomad: `job/group/task`; ECS: the
    /// task-definition family).
    pub name: String,
    /// The group the name lives in, when the scheduler has one (Mesos: the
    /// framework's name); policies then key on `<scheduler>:<group>:<name>`.
    pub group: Option<String>,
    /// The container image, when known (used with `use-image-name`).
    pub image: Option<String>,
    /// When the task started running (Mesos: its first status; Kubernetes:
    /// the pod's start time; Nomad: the task's start).
    pub started: SystemTime,
    /// The addresses a request from this task may come from (the agent or
    /// node, the pod IP): the host check passes when the caller is one.
    pub addresses: Vec<IpAddr>,
}

/// Why a scheduler could not vouch for a task.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The scheduler does not know the task, or knows it but it is not
    /// running (pending, finished): the caller is not a live task.
    #[error("task {0} is not running on this scheduler")]
    NotFound(String),
    /// The scheduler could not be reached or answered with an error
    /// status: retry later.
    #[error("the scheduler is unavailable: {0}")]
    Unavailable(String),
    /// The scheduler did not answer within `--scheduler-timeout`.
    #[error("the scheduler did not answer in time: {0}")]
    TimedOut(String),
    /// The scheduler answered something that is not its API's answer.
    #[error("the scheduler answered garbage: {0}")]
    BadAnswer(String),
}

/// A scheduler Gatekeeper can ask about tasks.
#[async_trait::async_trait]
pub trait Scheduler: Send + Sync {
    /// The scheduler's name as it appears in `schedulers` and policy keys
    /// (`mesos`, `kubernetes`, `nomad`, `ecs`).
    fn name(&self) -> &str;
    /// Looks a task up by the id the task gave.
    async fn lookup(&self, task_id: &str) -> Result<Task, SchedulerError>;
}

/// The names [`build`] knows, in the order `--help` lists them.
pub const SCHEDULERS: &[&str] = &["mesos", "kubernetes", "nomad", "ecs"];

/// The EC2 instance metadata service's address.
pub const DEFAULT_METADATA_ADDR: &str = "http://169.254.169.254";

/// Every scheduler's command-line flags, each also read from the
/// environment variable of the same name upper-cased with `_` (the flags
/// and variables of the original vault-gatekeeper). The service flattens
/// this into its own arguments and hands it to [`build`].
#[derive(Debug, Clone, clap::Args)]
pub struct SchedulerArgs {
    /// Mesos masters, comma-separated: `http(s)://host:port` or `host:port`
    /// (plain HTTP); `http://m1:5050,m2:5050/` (the original's form) also
    /// works. The leader is found among them and remembered. Or ZooKeeper:
    /// `zk://zk1:2181,zk2:2181/mesos` (`zks://` to ask the masters over
    /// HTTPS; `user:password@` for digest auth): the leader is the master
    /// ZooKeeper names, followed by a watch.
    #[arg(
        long = "mesos-master",
        env = "MESOS_MASTER",
        default_value = "http://localhost:5050"
    )]
    pub mesos_master: String,
    /// PEM file of the CA(s) that sign the Mesos masters' certificates; when
    /// given, only these CAs are trusted for Mesos.
    #[arg(long = "mesos-cacert", env = "MESOS_CACERT")]
    pub mesos_cacert: Option<PathBuf>,
    /// The Kubernetes API server (`https://host:port`); by default the
    /// in-cluster one from `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`.
    #[arg(long = "kubernetes-api", env = "KUBERNETES_API")]
    pub kubernetes_api: Option<String>,
    /// PEM file of the Kubernetes API server's CA; by default the in-cluster
    /// service-account `ca.crt` when it exists.
    #[arg(long = "kubernetes-cacert", env = "KUBERNETES_CACERT")]
    pub kubernetes_cacert: Option<PathBuf>,
    /// File holding the bearer token for the Kubernetes API, re-read when it
    /// changes; by default the in-cluster service-account `token`.
    #[arg(long = "kubernetes-token-file", env = "KUBERNETES_TOKEN_FILE")]
    pub kubernetes_token_file: Option<PathBuf>,
    /// The Nomad HTTP API address.
    #[arg(
        long = "nomad-addr",
        env = "NOMAD_ADDR",
        default_value = "http://127.0.0.1:4646"
    )]
    pub nomad_addr: String,
    /// The Nomad ACL token sent as `X-Nomad-Token`, if ACLs are on.
    #[arg(long = "nomad-token", env = "NOMAD_TOKEN", hide_env_values = true)]
    pub nomad_token: Option<Secret>,
    /// PEM file of the CA that signs the Nomad servers' certificates.
    #[arg(long = "nomad-cacert", env = "NOMAD_CACERT")]
    pub nomad_cacert: Option<PathBuf>,
    /// ECS: the cluster the tasks run in (name or ARN); by default the one
    /// the ECS agent on this host reports (`--ecs-agent-addr`).
    #[arg(long = "ecs-cluster", env = "ECS_CLUSTER")]
    pub ecs_cluster: Option<String>,
    /// ECS: the ECS agent's introspection API, asked for the cluster when
    /// `--ecs-cluster` is not given; by default
    /// `http://<this instance's private IPv4>:51678`, as the original.
    #[arg(long = "ecs-agent-addr", env = "ECS_AGENT_ADDR")]
    pub ecs_agent_addr: Option<String>,
    /// ECS: the ECS API endpoint (Strongroom's addition, e.g. for a VPC
    /// endpoint); by default `https://ecs.<region>.amazonaws.com`.
    #[arg(long = "ecs-endpoint", env = "ECS_ENDPOINT")]
    pub ecs_endpoint: Option<String>,
    /// ECS: the AWS region; by default `AWS_DEFAULT_REGION`, else the EC2
    /// instance's region from the metadata service.
    #[arg(long = "aws-region", env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// ECS: the region when `aws-region` is not set (the AWS CLI's
    /// variable).
    #[arg(long = "aws-default-region", env = "AWS_DEFAULT_REGION", hide = true)]
    pub aws_default_region: Option<String>,
    /// ECS: the AWS access key id; without it, the container credentials
    /// endpoint or the EC2 instance role gives credentials.
    #[arg(long = "aws-access-key-id", env = "AWS_ACCESS_KEY_ID")]
    pub aws_access_key_id: Option<String>,
    /// ECS: the AWS secret access key that goes with `aws-access-key-id`.
    #[arg(
        long = "aws-secret-access-key",
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub aws_secret_access_key: Option<Secret>,
    /// ECS: the session token of temporary AWS keys.
    #[arg(
        long = "aws-session-token",
        env = "AWS_SESSION_TOKEN",
        hide_env_values = true
    )]
    pub aws_session_token: Option<Secret>,
    /// ECS: the container credentials path ECS gives a task (relative to
    /// `http://169.254.170.2`).
    #[arg(
        long = "aws-container-credentials-relative-uri",
        env = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        hide = true
    )]
    pub aws_container_credentials_relative_uri: Option<String>,
    /// ECS: a full container credentials URL (https, or http to a loopback
    /// or the ECS/EKS credentials address).
    #[arg(
        long = "aws-container-credentials-full-uri",
        env = "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        hide = true
    )]
    pub aws_container_credentials_full_uri: Option<String>,
    /// ECS: the `Authorization` value for the full container credentials
    /// URL.
    #[arg(
        long = "aws-container-authorization-token",
        env = "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        hide = true,
        hide_env_values = true
    )]
    pub aws_container_authorization_token: Option<Secret>,
    /// ECS: a file holding that `Authorization` value, read at each fetch.
    #[arg(
        long = "aws-container-authorization-token-file",
        env = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        hide = true
    )]
    pub aws_container_authorization_token_file: Option<PathBuf>,
    /// ECS: the EC2 instance metadata service (region, private IPv4, role
    /// credentials). Not a flag of its own: the service sets it from its
    /// `--aws-metadata-addr`.
    #[arg(skip = DEFAULT_METADATA_ADDR.to_owned())]
    pub aws_metadata_addr: String,
    /// How long one request to a scheduler may take (connect included).
    #[arg(
        long = "scheduler-timeout",
        env = "SCHEDULER_TIMEOUT",
        default_value = "5s",
        value_parser = humantime::parse_duration
    )]
    pub scheduler_timeout: Duration,
}

impl Default for SchedulerArgs {
    /// The same values as the flags' defaults with no environment set.
    fn default() -> Self {
        SchedulerArgs {
            mesos_master: "http://localhost:5050".to_owned(),
            mesos_cacert: None,
            kubernetes_api: None,
            kubernetes_cacert: None,
            kubernetes_token_file: None,
            nomad_addr: "http://127.0.0.1:4646".to_owned(),
            nomad_token: None,
            nomad_cacert: None,
            ecs_cluster: None,
            ecs_agent_addr: None,
            ecs_endpoint: None,
            aws_region: None,
            aws_default_region: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_session_token: None,
            aws_container_credentials_relative_uri: None,
            aws_container_credentials_full_uri: None,
            aws_container_authorization_token: None,
            aws_container_authorization_token_file: None,
            aws_metadata_addr: DEFAULT_METADATA_ADDR.to_owned(),
            scheduler_timeout: Duration::from_secs(5),
        }
    }
}

/// A secret string (an API token) that is zeroed when dropped and never
/// shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret itself: do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

/// Builds the scheduler called `name` (one of [`SCHEDULERS`]) from the
/// flags. Nothing is contacted yet: a bad configuration (an unknown name,
/// an unreadable CA file, no Kubernetes API address, half an AWS key) is reported here, as
/// [`SchedulerError::Unavailable`], so the service can refuse to start.
pub fn build(name: &str, args: &SchedulerArgs) -> Result<Arc<dyn Scheduler>, SchedulerError> {
    match name {
        "mesos" => Ok(Arc::new(mesos::MesosScheduler::from_args(args)?)),
        "kubernetes" => Ok(Arc::new(kubernetes::KubernetesScheduler::from_args(args)?)),
        "nomad" => Ok(Arc::new(nomad::NomadScheduler::from_args(args)?)),
        "ecs" => Ok(Arc::new(ecs::EcsScheduler::from_args(args)?)),
        other => Err(SchedulerError::Unavailable(format!(
            "unknown scheduler {other:?} (known: {})",
            SCHEDULERS.join(", ")
        ))),
    }
}
