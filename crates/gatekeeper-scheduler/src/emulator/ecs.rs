//! The ECS emulator: on one HTTP server, the ECS API's `DescribeTasks`
//! (`POST /` with `X-Amz-Target`, AWS JSON 1.1), the ECS agent's
//! introspection `GET /v1/metadata`, the EC2 instance metadata service
//! (IMDSv2 session tokens, with IMDSv1 allowed or not; region,
//! `local-ipv4`, role credentials) and a container credentials endpoint
//! (`GET /v2/credentials/<id>`, with an optional `Authorization` check).
//!
//! Every `DescribeTasks` must carry a SigV4 signature of the right shape
//! (`Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/ecs/
//! aws4_request, SignedHeaders=...host...x-amz-date..., Signature=<64
//! hex>` and an `X-Amz-Date` within 15 minutes), made with a key the
//! emulator knows (its static key, or temporary credentials it issued and
//! that have not expired, with their session token) and verified in full
//! by signing the request again. Anything else is refused with 403 and
//! an AWS error, as AWS does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use super::{lock, Control, Mode, Server};
use crate::ecs::{CONTENT_TYPE, DESCRIBE_TASKS_TARGET, SIGNING_NAME};

/// The emulated region.
pub const ECS_REGION: &str = "us-east-1";
/// The emulated account.
pub const ECS_ACCOUNT: &str = "123456789012";
/// The emulated cluster's name (the agent reports it).
pub const ECS_CLUSTER: &str = "gatekeeper";
/// The access key id the emulator always accepts.
pub const ECS_ACCESS_KEY_ID: &str = "AKIAEMULATEDECS00001";
/// The secret access key of [`ECS_ACCESS_KEY_ID`].
pub const ECS_SECRET_ACCESS_KEY: &str = "emulated/EcsSecretAccessKey+0123456789abcdefg";
/// The IAM role of the emulated EC2 instance.
pub const ECS_INSTANCE_ROLE: &str = "gatekeeper-instance-role";
/// The container credentials path (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
pub const ECS_CONTAINER_CREDENTIALS_PATH: &str = "/v2/credentials/5d7c2a9e-emulated";

/// An emulated ECS task.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatedEcsTask {
    /// The task id (32 hex digits).
    pub id: String,
    /// The task definition's family.
    pub family: String,
    /// `lastStatus`: `PENDING`, `RUNNING`, `STOPPED`, ...
    pub last_status: String,
    /// `startedAt`, once started.
    pub started: Option<SystemTime>,
    /// The awsvpc network interface's private IPv4; `None`: a bridge
    /// network task.
    pub eni_ip: Option<IpAddr>,
    /// The first container's image.
    pub image: String,
    /// How many `DescribeTasks` answers say PENDING before the task is
    /// RUNNING since that moment (0: as `last_status` says).
    pub pending_answers: u32,
}

impl EmulatedEcsTask {
    /// An awsvpc task of `family` running since now at 127.0.0.1.
    pub fn running(id: &str, family: &str) -> Self {
        EmulatedEcsTask {
            id: id.to_owned(),
            family: family.to_owned(),
            last_status: "RUNNING".to_owned(),
            started: Some(SystemTime::now()),
            eni_ip: Some(IpAddr::from([127, 0, 0, 1])),
            image: format!("{family}:latest"),
            pending_answers: 0,
        }
    }

    /// A task of `family` that has not started (PENDING, no `startedAt`).
    pub fn pending(id: &str, family: &str) -> Self {
        EmulatedEcsTask {
            last_status: "PENDING".to_owned(),
            started: None,
            ..EmulatedEcsTask::running(id, family)
        }
    }

    /// A task of `family` that ran and stopped.
    pub fn stopped(id: &str, family: &str) -> Self {
        EmulatedEcsTask {
            last_status: "STOPPED".to_owned(),
            ..EmulatedEcsTask::running(id, family)
        }
    }

    /// The task's ARN in the emulated cluster.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:ecs:{ECS_REGION}:{ECS_ACCOUNT}:task/{ECS_CLUSTER}/{}",
            self.id
        )
    }
}

/// A key the emulator accepts.
#[derive(Debug, Clone)]
struct Key {
    secret: String,
    token: Option<String>,
    expires: Option<SystemTime>,
}

#[derive(Debug)]
struct Cluster {
    tasks: Vec<EmulatedEcsTask>,
    keys: HashMap<String, Key>,
    issued: u64,
    credentials_lifetime: Duration,
    imds_v1: bool,
    imds_v2: bool,
    imds_tokens: Vec<String>,
    container_token: Option<String>,
    refused: u64,
    instance_ip: IpAddr,
}

#[derive(Debug)]
struct Shared {
    cluster: Mutex<Cluster>,
    control: Arc<Control>,
}

/// An emulated ECS API, ECS agent, EC2 metadata service and container
/// credentials endpoint, all at [`EcsEmulator::url`].
#[derive(Debug)]
pub struct EcsEmulator {
    /// The server's address: an `ecs-endpoint`, `ecs-agent-addr` and
    /// metadata service address.
    pub url: String,
    shared: Arc<Shared>,
    _server: Server,
}

impl EcsEmulator {
    /// Starts the emulator: no task, [`ECS_ACCESS_KEY_ID`] accepted,
    /// IMDSv1 allowed, instance credentials valid for an hour.
    pub async fn start() -> Self {
        let control = Arc::new(Control::default());
        let mut keys = HashMap::new();
        keys.insert(
            ECS_ACCESS_KEY_ID.to_owned(),
            Key {
                secret: ECS_SECRET_ACCESS_KEY.to_owned(),
                token: None,
                expires: None,
            },
        );
        let shared = Arc::new(Shared {
            cluster: Mutex::new(Cluster {
                tasks: Vec::new(),
                keys,
                issued: 0,
                credentials_lifetime: Duration::from_secs(3600),
                imds_v1: true,
                imds_v2: true,
                imds_tokens: Vec::new(),
                container_token: None,
                refused: 0,
                instance_ip: IpAddr::from([127, 0, 0, 1]),
            }),
            control: control.clone(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = Server::start(router, control, None).await;
        EcsEmulator {
            url: server.url(),
            shared,
            _server: server,
        }
    }

    /// Adds a task, replacing one with the same id.
    pub fn add_task(&self, task: EmulatedEcsTask) {
        let mut cluster = lock(&self.shared.cluster);
        cluster.tasks.retain(|t| t.id != task.id);
        cluster.tasks.push(task);
    }

    /// Removes a task: ECS no longer knows it.
    pub fn remove_task(&self, id: &str) {
        lock(&self.shared.cluster).tasks.retain(|t| t.id != id);
    }

    /// Changes a task's `lastStatus`.
    pub fn set_status(&self, id: &str, status: &str) {
        for task in lock(&self.shared.cluster)
            .tasks
            .iter_mut()
            .filter(|t| t.id == id)
        {
            task.last_status = status.to_owned();
        }
    }

    /// Accepts another static key.
    pub fn add_key(&self, access_key_id: &str, secret: &str) {
        lock(&self.shared.cluster).keys.insert(
            access_key_id.to_owned(),
            Key {
                secret: secret.to_owned(),
                token: None,
                expires: None,
            },
        );
    }

    /// Accepts a temporary key, used with its session token.
    pub fn add_temporary_key(&self, access_key_id: &str, secret: &str, token: &str) {
        lock(&self.shared.cluster).keys.insert(
            access_key_id.to_owned(),
            Key {
                secret: secret.to_owned(),
                token: Some(token.to_owned()),
                expires: None,
            },
        );
    }

    /// Revokes every temporary key issued so far (as a rotated instance
    /// role does): requests signed with them are refused from now on.
    pub fn revoke_issued(&self) {
        lock(&self.shared.cluster)
            .keys
            .retain(|key, _| !key.starts_with("ASIAEMULATED"));
    }

    /// How long the temporary credentials issued from now on are valid.
    pub fn set_credentials_lifetime(&self, lifetime: Duration) {
        lock(&self.shared.cluster).credentials_lifetime = lifetime;
    }

    /// Whether the metadata service answers without an IMDSv2 session
    /// token (IMDSv1); `false` also refuses none.
    pub fn set_imds_v1(&self, allowed: bool) {
        lock(&self.shared.cluster).imds_v1 = allowed;
    }

    /// Makes the metadata service refuse IMDSv2 session tokens (as one
    /// that only speaks IMDSv1).
    pub fn disable_imds_v2(&self) {
        lock(&self.shared.cluster).imds_v2 = false;
    }

    /// Requires `Authorization: token` at the container credentials
    /// endpoint (`None`: none required).
    pub fn set_container_token(&self, token: Option<&str>) {
        lock(&self.shared.cluster).container_token = token.map(str::to_owned);
    }

    /// The instance's private IPv4 the metadata service reports.
    pub fn set_instance_ip(&self, ip: IpAddr) {
        lock(&self.shared.cluster).instance_ip = ip;
    }

    /// How many temporary credentials the emulator issued.
    pub fn credentials_issued(&self) -> u64 {
        lock(&self.shared.cluster).issued
    }

    /// How many `DescribeTasks` it refused for their signature or key.
    pub fn refused(&self) -> u64 {
        lock(&self.shared.cluster).refused
    }

    /// Switches the emulator into `mode`.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.control.set_mode(mode);
    }

    /// How many requests `path` got (`DescribeTasks` is [`DESCRIBE_PATH`]).
    pub fn requests(&self, path: &str) -> u64 {
        self.shared.control.requests(path)
    }

    /// How many requests the emulator got in all.
    pub fn total_requests(&self) -> u64 {
        self.shared.control.total()
    }
}

/// The path `DescribeTasks` is counted under by [`EcsEmulator::requests`].
pub const DESCRIBE_PATH: &str = "DescribeTasks";

fn text(status: StatusCode, body: &str) -> Response {
    (status, body.to_owned()).into_response()
}

/// An AWS JSON error answer.
fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut response = super::json(status, json!({"__type": kind, "message": message}));
    if let Ok(value) = kind.parse() {
        response.headers_mut().insert("x-amzn-ErrorType", value);
    }
    response
}

fn epoch(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn task_json(task: &EmulatedEcsTask) -> Value {
    let arn = task.arn();
    let cluster_arn = format!("arn:aws:ecs:{ECS_REGION}:{ECS_ACCOUNT}:cluster/{ECS_CLUSTER}");
    let definition = format!(
        "arn:aws:ecs:{ECS_REGION}:{ECS_ACCOUNT}:task-definition/{}:7",
        task.family
    );
    let created = task.started.unwrap_or_else(SystemTime::now) - Duration::from_secs(5);
    let attachment_id = "a1b2c3d4-0000-4000-8000-0000000000e1";
    let (attachments, interfaces) = match task.eni_ip {
        Some(ip) => (
            json!([{
                "id": attachment_id,
                "type": "ElasticNetworkInterface",
                "status": "ATTACHED",
                "details": [
                    {"name": "subnetId", "value": "subnet-0123456789abcdef0"},
                    {"name": "networkInterfaceId", "value": "eni-0123456789abcdef0"},
                    {"name": "macAddress", "value": "0a:1b:2c:3d:4e:5f"},
                    {"name": "privateDnsName", "value": "ip-10-0-0-1.ec2.internal"},
                    {"name": "privateIPv4Address", "value": ip.to_string()},
                ],
            }]),
            json!([{"attachmentId": attachment_id, "privateIpv4Address": ip.to_string()}]),
        ),
        None => (json!([]), json!([])),
    };
    let mut value = json!({
        "taskArn": arn,
        "clusterArn": cluster_arn,
        "taskDefinitionArn": definition,
        "containerInstanceArn": format!("arn:aws:ecs:{ECS_REGION}:{ECS_ACCOUNT}:container-instance/{ECS_CLUSTER}/0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
        "lastStatus": task.last_status,
        "desiredStatus": if task.last_status == "STOPPED" { "STOPPED" } else { "RUNNING" },
        "launchType": "EC2",
        "group": format!("family:{}", task.family),
        "version": 3,
        "cpu": "256",
        "memory": "512",
        "createdAt": epoch(created),
        "attachments": attachments,
        "containers": [{
            "containerArn": format!("arn:aws:ecs:{ECS_REGION}:{ECS_ACCOUNT}:container/{ECS_CLUSTER}/{}/c0ffee00-0000-4000-8000-000000000001", task.id),
            "taskArn": task.arn(),
            "name": task.family,
            "image": task.image,
            "lastStatus": task.last_status,
            "networkBindings": [],
            "networkInterfaces": interfaces,
        }],
        "tags": [],
    });
    if let Some(started) = task.started.filter(|_| task.last_status != "PENDING") {
        value["startedAt"] = json!(epoch(started));
        value["pullStartedAt"] = json!(epoch(started) - 2.0);
        value["pullStoppedAt"] = json!(epoch(started) - 1.0);
    }
    if task.last_status == "STOPPED" {
        let stopped = task.started.unwrap_or(created) + Duration::from_secs(1);
        value["stoppedAt"] = json!(epoch(stopped));
        value["stoppedReason"] = json!("Essential container in task exited");
        value["stopCode"] = json!("EssentialContainerExited");
    }
    value
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let counted = if method == Method::POST && target.is_some() {
        DESCRIBE_PATH
    } else {
        path
    };
    if let Some(answer) = shared.control.enter(counted) {
        return answer;
    }
    let mut cluster = lock(&shared.cluster);
    if method == Method::POST && path == "/" {
        return ecs_api(&mut cluster, &uri, &headers, &body);
    }
    if method == Method::PUT && path == "/latest/api/token" {
        return imds_token(&mut cluster, &headers);
    }
    if method != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    if path == "/v1/metadata" {
        return super::json(
            StatusCode::OK,
            json!({
                "Cluster": ECS_CLUSTER,
                "ContainerInstanceArn": format!("arn:aws:ecs:{ECS_REGION}:{ECS_ACCOUNT}:container-instance/{ECS_CLUSTER}/0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
                "Version": "Amazon ECS Agent - v1.86.0 (emulated)",
            }),
        );
    }
    if path == ECS_CONTAINER_CREDENTIALS_PATH {
        if let Some(token) = &cluster.container_token {
            let given = headers.get("authorization").and_then(|v| v.to_str().ok());
            if given != Some(token.as_str()) {
                return super::json(
                    StatusCode::UNAUTHORIZED,
                    json!({"code": "AccessDenied", "message": "Authorization token is invalid"}),
                );
            }
        }
        return super::json(StatusCode::OK, issue(&mut cluster, None));
    }
    if let Some(rest) = path.strip_prefix("/latest/") {
        if !cluster.imds_v1 {
            let given = headers
                .get("x-aws-ec2-metadata-token")
                .and_then(|v| v.to_str().ok());
            if !given.is_some_and(|g| cluster.imds_tokens.iter().any(|t| t == g)) {
                return text(StatusCode::UNAUTHORIZED, "");
            }
        }
        let role_path = format!("meta-data/iam/security-credentials/{ECS_INSTANCE_ROLE}");
        return match rest {
            "meta-data/placement/region" => text(StatusCode::OK, ECS_REGION),
            "meta-data/local-ipv4" => text(StatusCode::OK, &cluster.instance_ip.to_string()),
            "meta-data/iam/security-credentials/" => text(StatusCode::OK, ECS_INSTANCE_ROLE),
            other if other == role_path => {
                super::json(StatusCode::OK, issue(&mut cluster, Some("Success")))
            }
            _ => text(StatusCode::NOT_FOUND, "Not Found"),
        };
    }
    text(StatusCode::NOT_FOUND, "Not Found")
}

/// `PUT /latest/api/token`: a session token (refused once IMDSv2 is off).
fn imds_token(cluster: &mut Cluster, headers: &HeaderMap) -> Response {
    if !cluster.imds_v2 {
        return text(StatusCode::FORBIDDEN, "");
    }
    let ttl = headers
        .get("x-aws-ec2-metadata-token-ttl-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    if !ttl.is_some_and(|t| (1..=21600).contains(&t)) {
        return text(StatusCode::BAD_REQUEST, "");
    }
    let token = format!("imds-session-{}", cluster.imds_tokens.len() + 1);
    cluster.imds_tokens.push(token.clone());
    text(StatusCode::OK, &token)
}

/// Issues temporary credentials (with `Code` from the metadata service).
fn issue(cluster: &mut Cluster, code: Option<&str>) -> Value {
    cluster.issued += 1;
    let n = cluster.issued;
    let key = format!("ASIAEMULATED{n:08}");
    let secret = format!("emulated/temporary/secret/{n:08}/abcdefghijklmnop");
    let token = format!("emulated-session-token-{n:08}");
    let expires = SystemTime::now() + cluster.credentials_lifetime;
    cluster.keys.insert(
        key.clone(),
        Key {
            secret: secret.clone(),
            token: Some(token.clone()),
            expires: Some(expires),
        },
    );
    let mut doc = json!({
        "AccessKeyId": key,
        "SecretAccessKey": secret,
        "Token": token,
        "Expiration": humantime::format_rfc3339_seconds(expires).to_string(),
        "RoleArn": format!("arn:aws:iam::{ECS_ACCOUNT}:role/{ECS_INSTANCE_ROLE}"),
    });
    if let Some(code) = code {
        doc["Code"] = json!(code);
        doc["Type"] = json!("AWS-HMAC");
        doc["LastUpdated"] =
            json!(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
    }
    doc
}

/// The parts of a SigV4 `Authorization` header.
struct Authorization<'a> {
    key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
}

/// Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
/// Signature=...`; `None` unless it has that exact shape.
fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim) {
        let (name, value) = part.split_once('=')?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let signature = signature?;
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [key, date, region, service, "aws4_request"] = scope.as_slice() else {
        return None;
    };
    let signed_headers: Vec<&str> = signed?.split(';').collect();
    let has = |h: &str| signed_headers.contains(&h);
    let sorted = signed_headers.windows(2).all(|w| w[0] < w[1]);
    if !has("host") || !has("x-amz-date") || !sorted || key.is_empty() {
        return None;
    }
    Some(Authorization {
        key,
        date,
        region,
        service,
        signed_headers,
    })
}

/// `YYYYMMDDTHHMMSSZ` as a time.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| {
        value
            .get(r)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
    };
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        digits(0..4)?,
        digits(4..6)?,
        digits(6..8)?,
        digits(9..11)?,
        digits(11..13)?,
        digits(13..15)?
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

/// Why a request's signature is refused: the AWS error type and message.
type Refusal = (&'static str, &'static str);

/// Checks the signature of an ECS API request; the refusal otherwise.
fn check_signature(
    cluster: &Cluster,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let forbidden = |kind: &'static str, message: &'static str| Err((kind, message));
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(authorization) = header("authorization") else {
        return forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    };
    let Some(auth) = parse_authorization(authorization) else {
        return forbidden(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
        );
    };
    let Some(amz_date) = header("x-amz-date") else {
        return forbidden(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        );
    };
    let Some(time) = parse_amz_date(amz_date) else {
        return forbidden("IncompleteSignatureException", "X-Amz-Date is not a date");
    };
    if amz_date.get(..8) != Some(auth.date) {
        return forbidden(
            "InvalidSignatureException",
            "Credential should be scoped to a valid date.",
        );
    }
    if auth.region != ECS_REGION || auth.service != SIGNING_NAME {
        return forbidden(
            "InvalidSignatureException",
            "Credential should be scoped to a valid region and service.",
        );
    }
    let now = SystemTime::now();
    let skew = now
        .duration_since(time)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default();
    if skew > Duration::from_secs(15 * 60) {
        return forbidden("InvalidSignatureException", "Signature expired");
    }
    let Some(key) = cluster.keys.get(auth.key) else {
        return forbidden(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    };
    if key.expires.is_some_and(|at| at <= now) {
        return forbidden(
            "ExpiredTokenException",
            "The security token included in the request is expired",
        );
    }
    if key.token.as_deref() != header("x-amz-security-token") {
        return forbidden(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    // Sign the same request again and compare.
    let Some(host) = header("host") else {
        return forbidden("IncompleteSignatureException", "no Host header");
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let own: Vec<(&str, &str)> = auth
        .signed_headers
        .iter()
        .filter(|h| !matches!(**h, "x-amz-date" | "x-amz-security-token"))
        .map(|h| (*h, header(h).unwrap_or_default()))
        .collect();
    let credentials = Credentials::new(
        auth.key,
        key.secret.clone(),
        key.token.clone(),
        None,
        "emulator",
    );
    let expected = crate::ecs::sign(
        "POST",
        &format!("http://{host}{path}"),
        &own,
        body,
        &credentials,
        ECS_REGION,
        time,
    )
    .ok()
    .and_then(|headers| {
        headers
            .into_iter()
            .find(|(name, _)| *name == "authorization")
            .and_then(|(_, value)| value.to_str().ok().map(str::to_owned))
    });
    if expected.as_deref() != Some(authorization) {
        return forbidden(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        );
    }
    Ok(())
}

/// `POST /`: the ECS API.
fn ecs_api(cluster: &mut Cluster, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Err((kind, message)) = check_signature(cluster, uri, headers, body) {
        cluster.refused += 1;
        return aws_error(StatusCode::FORBIDDEN, kind, message);
    }
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    if target != Some(DESCRIBE_TASKS_TARGET) {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "The action or operation requested is invalid.",
        );
    }
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    if content_type != Some(CONTENT_TYPE) {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "Unexpected content type",
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "Invalid JSON",
        );
    };
    let asked_cluster = request["cluster"].as_str().unwrap_or("default");
    let cluster_arn = format!("arn:aws:ecs:{ECS_REGION}:{ECS_ACCOUNT}:cluster/{ECS_CLUSTER}");
    if asked_cluster != ECS_CLUSTER && asked_cluster != cluster_arn {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ClusterNotFoundException",
            "Cluster not found.",
        );
    }
    let Some(asked) = request["tasks"]
        .as_array()
        .filter(|t| !t.is_empty() && t.len() <= 100)
    else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            "Tasks cannot be empty.",
        );
    };
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for asked in asked {
        let Some(asked) = asked.as_str() else {
            return aws_error(StatusCode::BAD_REQUEST, "SerializationException", "tasks");
        };
        let id = asked.rsplit('/').next().unwrap_or(asked);
        let in_cluster = !asked.starts_with("arn:")
            || asked == format!("arn:aws:ecs:{ECS_REGION}:{ECS_ACCOUNT}:task/{ECS_CLUSTER}/{id}");
        match cluster.tasks.iter_mut().find(|t| t.id == id && in_cluster) {
            Some(task) => {
                if task.pending_answers > 0 {
                    task.pending_answers -= 1;
                    let mut pending = task.clone();
                    pending.last_status = "PENDING".to_owned();
                    if task.pending_answers == 0 {
                        task.last_status = "RUNNING".to_owned();
                        task.started = Some(SystemTime::now());
                    }
                    tasks.push(task_json(&pending));
                } else {
                    tasks.push(task_json(task));
                }
            }
            None => failures.push(json!({
                "arn": format!("arn:aws:ecs:{ECS_REGION}:{ECS_ACCOUNT}:task/{ECS_CLUSTER}/{id}"),
                "reason": "MISSING",
            })),
        }
    }
    super::json(
        StatusCode::OK,
        json!({"tasks": tasks, "failures": failures}),
    )
}
