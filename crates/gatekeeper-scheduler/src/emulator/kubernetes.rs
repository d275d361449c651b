//! The Kubernetes API emulator: `GET /api/v1/pods` with `fieldSelector`
//! on `status.phase`, `limit`/`continue` pagination and a required bearer
//! token, answering `PodList`s and `Status` errors as the API server does.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use super::{lock, Control, Mode, Server};

/// The bearer token the emulator requires until told otherwise.
pub const DEFAULT_TOKEN: &str = "emulated-service-account-token";

/// A pod as the emulated cluster runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatedPod {
    /// `metadata.uid`: the task id.
    pub uid: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`).
    pub phase: String,
    /// `status.startTime`.
    pub started: SystemTime,
    /// `status.podIP`.
    pub pod_ip: IpAddr,
    /// `status.hostIP`.
    pub host_ip: IpAddr,
    /// The first container's image.
    pub image: String,
}

impl EmulatedPod {
    /// A pod running since now, pod IP 10.1.0.1 on host 127.0.0.1.
    pub fn running(uid: &str, namespace: &str, name: &str) -> Self {
        EmulatedPod {
            uid: uid.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            phase: "Running".to_owned(),
            started: SystemTime::now(),
            pod_ip: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)),
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            image: "registry.example/app:1".to_owned(),
        }
    }
}

#[derive(Debug)]
struct Cluster {
    pods: Vec<EmulatedPod>,
    token: Option<String>,
    max_page: Option<usize>,
}

#[derive(Debug)]
struct Shared {
    cluster: Mutex<Cluster>,
    control: Arc<Control>,
}

/// An emulated Kubernetes API server (pods only).
#[derive(Debug)]
pub struct KubernetesEmulator {
    /// The API server's base URL: a `kubernetes-api` value.
    pub url: String,
    shared: Arc<Shared>,
    _server: Server,
}

impl KubernetesEmulator {
    /// Starts an API server with no pods, requiring [`DEFAULT_TOKEN`].
    pub async fn start() -> Self {
        let control = Arc::new(Control::default());
        let shared = Arc::new(Shared {
            cluster: Mutex::new(Cluster {
                pods: Vec::new(),
                token: Some(DEFAULT_TOKEN.to_owned()),
                max_page: None,
            }),
            control: control.clone(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = Server::start(router, control, None).await;
        KubernetesEmulator {
            url: server.url(),
            shared,
            _server: server,
        }
    }

    /// The bearer token required from now on (`None`: anyone may list).
    pub fn set_token(&self, token: Option<&str>) {
        lock(&self.shared.cluster).token = token.map(str::to_owned);
    }

    /// Returns at most `max` pods per page whatever `limit` asks (the API
    /// server may return fewer than asked), to exercise pagination.
    pub fn set_max_page(&self, max: Option<usize>) {
        lock(&self.shared.cluster).max_page = max;
    }

    /// Adds a pod, replacing one with the same uid.
    pub fn add_pod(&self, pod: EmulatedPod) {
        let mut cluster = lock(&self.shared.cluster);
        cluster.pods.retain(|p| p.uid != pod.uid);
        cluster.pods.push(pod);
    }

    /// Removes a pod.
    pub fn remove_pod(&self, uid: &str) {
        lock(&self.shared.cluster).pods.retain(|p| p.uid != uid);
    }

    /// Changes a pod's phase.
    pub fn set_phase(&self, uid: &str, phase: &str) {
        for pod in lock(&self.shared.cluster)
            .pods
            .iter_mut()
            .filter(|p| p.uid == uid)
        {
            pod.phase = phase.to_owned();
        }
    }

    /// Switches the server into `mode`.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.control.set_mode(mode);
    }

    /// How many requests `path` (`/api/v1/pods`) got.
    pub fn requests(&self, path: &str) -> u64 {
        self.shared.control.requests(path)
    }
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    super::json(
        code,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code.as_u16(),
        }),
    )
}

fn pod_json(pod: &EmulatedPod) -> Value {
    let started = humantime::format_rfc3339_seconds(pod.started).to_string();
    json!({
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": pod.uid,
            "resourceVersion": "1",
            "creationTimestamp": started,
        },
        "spec": {
            "containers": [{"name": "main", "image": pod.image}],
            "nodeName": "node-1",
            "serviceAccountName": "default",
        },
        "status": {
            "phase": pod.phase,
            "hostIP": pod.host_ip.to_string(),
            "hostIPs": [{"ip": pod.host_ip.to_string()}],
            "podIP": pod.pod_ip.to_string(),
            "podIPs": [{"ip": pod.pod_ip.to_string()}],
            "startTime": started,
        },
    })
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = uri.path();
    if let Some(answer) = shared.control.enter(path) {
        return answer;
    }
    let cluster = lock(&shared.cluster);
    if let Some(token) = &cluster.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
        }
    }
    if path != "/api/v1/pods" {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    let phase_filter: Option<(bool, &str)> = match query.get("fieldSelector").map(String::as_str) {
        None | Some("") => None,
        Some(selector) => {
            if let Some(phase) = selector.strip_prefix("status.phase!=") {
                Some((false, phase))
            } else if let Some(phase) = selector
                .strip_prefix("status.phase==")
                .or_else(|| selector.strip_prefix("status.phase="))
            {
                Some((true, phase))
            } else {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("field label not supported: {selector}"),
                );
            }
        }
    };
    let offset = match query.get("continue").map(String::as_str) {
        None | Some("") => 0,
        Some(token) => match token
            .strip_prefix("emulated-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(offset) => offset,
            None => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "continue key is not valid",
                )
            }
        },
    };
    let mut limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => usize::MAX,
        Some(Ok(0)) => usize::MAX,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "limit is not a number",
            )
        }
    };
    if let Some(max) = cluster.max_page {
        limit = limit.min(max.max(1));
    }
    let matching: Vec<&EmulatedPod> = cluster
        .pods
        .iter()
        .filter(|p| phase_filter.is_none_or(|(equal, phase)| (p.phase == phase) == equal))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|p| pod_json(p))
        .collect();
    let next = offset.saturating_add(page.len());
    let mut metadata = json!({"resourceVersion": "1"});
    if next < matching.len() {
        metadata["continue"] = json!(format!("emulated-{next}"));
        metadata["remainingItemCount"] = json!(matching.len() - next);
    }
    super::json(
        StatusCode::OK,
        json!({"kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": page}),
    )
}
