//! The Kubernetes scheduler: the task id is the pod's `metadata.uid` (a pod
//! sees it through the downward API), looked up in the API server's pod
//! list.
//!
//! Cost: the pods API cannot select by uid, so each lookup lists the
//! cluster's running pods (`fieldSelector=status.phase=Running`), a page of
//! [`DEFAULT_PAGE_SIZE`] at a time with `limit`/`continue`, until the pod is
//! found: O(running pods) per request in the worst case, and the service
//! account needs `list` on pods in every namespace.
//!
//! The bearer token is read from a file and read again whenever the file
//! changes (projected service-account tokens rotate).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use reqwest::{StatusCode, Url};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::common::{self, nullable};
use crate::{Scheduler, SchedulerArgs, SchedulerError, Task};

/// Where a pod finds its service account's files.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// How many pods one list request asks for.
pub const DEFAULT_PAGE_SIZE: u32 = 500;
/// The most pages one lookup reads before deciding the server loops.
const MAX_PAGES: usize = 100_000;

/// Asks the Kubernetes API server about pods.
#[derive(Debug)]
pub struct KubernetesScheduler {
    client: reqwest::Client,
    pods_url: Url,
    token: Option<TokenFile>,
    page_size: u32,
}

impl KubernetesScheduler {
    /// Builds the scheduler from `kubernetes-api` (or the in-cluster
    /// `KUBERNETES_SERVICE_HOST`/`_PORT`), `kubernetes-cacert` and
    /// `kubernetes-token-file` (or the service-account files, when they
    /// exist) and `scheduler-timeout`. A token file given explicitly must
    /// be readable now.
    pub fn from_args(args: &SchedulerArgs) -> Result<Self, SchedulerError> {
        let bad = |why: String| SchedulerError::Unavailable(format!("kubernetes: {why}"));
        let api = match &args.kubernetes_api {
            Some(api) => api.trim().to_owned(),
            None => in_cluster_api().ok_or_else(|| {
                bad("kubernetes-api is not set and KUBERNETES_SERVICE_HOST is not in the environment".to_owned())
            })?,
        };
        let mut pods_url =
            Url::parse(&api).map_err(|e| bad(format!("kubernetes-api {api:?}: {e}")))?;
        if !matches!(pods_url.scheme(), "http" | "https") || pods_url.host_str().is_none() {
            return Err(bad(format!("kubernetes-api {api:?} is not an http(s) URL")));
        }
        {
            let mut segments = pods_url
                .path_segments_mut()
                .map_err(|_| bad(format!("kubernetes-api {api:?} cannot be a base")))?;
            segments.pop_if_empty().extend(["api", "v1", "pods"]);
        }
        pods_url.set_query(None);

        let default_ca = Path::new(SERVICE_ACCOUNT_DIR).join("ca.crt");
        let cacert = match &args.kubernetes_cacert {
            Some(path) => Some(path.clone()),
            None => default_ca.exists().then_some(default_ca),
        };
        let client = common::http_client("kubernetes", cacert.as_deref(), args.scheduler_timeout)?;

        let token = match &args.kubernetes_token_file {
            Some(path) => {
                let file = TokenFile::new(path.clone());
                file.read_now()?;
                Some(file)
            }
            None => {
                let path = Path::new(SERVICE_ACCOUNT_DIR).join("token");
                if path.exists() {
                    Some(TokenFile::new(path))
                } else {
                    tracing::warn!("kubernetes: no service-account token: asking without one");
                    None
                }
            }
        };
        Ok(KubernetesScheduler {
            client,
            pods_url,
            token,
            page_size: DEFAULT_PAGE_SIZE,
        })
    }

    /// The same scheduler asking for `page_size` pods per list request
    /// (at least 1).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Reads one page of running pods.
    async fn page(&self, token: Option<&str>, cont: Option<&str>) -> Result<Page, SchedulerError> {
        let mut url = self.pods_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("fieldSelector", "status.phase=Running")
                .append_pair("limit", &self.page_size.to_string());
            if let Some(cont) = cont {
                query.append_pair("continue", cont);
            }
        }
        let mut request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = token {
            let value = Zeroizing::new(format!("Bearer {token}"));
            let mut header = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                SchedulerError::Unavailable(
                    "kubernetes: the token file holds characters a header cannot carry".to_owned(),
                )
            })?;
            header.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, header);
        }
        let answer = common::send("kubernetes pods", request).await?;
        if answer.status == StatusCode::GONE {
            return Ok(Page::Expired);
        }
        if !answer.status.is_success() {
            return Err(common::status_error("kubernetes pods", answer.status));
        }
        Ok(Page::Pods(parse_pod_list(&answer.body)?))
    }
}

/// One list request's outcome.
enum Page {
    /// A page of pods.
    Pods(PodList),
    /// The continue token expired (410 Gone): list again from the start.
    Expired,
}

#[async_trait::async_trait]
impl Scheduler for KubernetesScheduler {
    fn name(&self) -> &str {
        "kubernetes"
    }

    async fn lookup(&self, task_id: &str) -> Result<Task, SchedulerError> {
        if task_id.is_empty() {
            return Err(SchedulerError::NotFound(String::new()));
        }
        let token = match &self.token {
            Some(file) => Some(file.current().await?),
            None => None,
        };
        let token = token.as_ref().map(|t| t.as_str());
        let mut cont: Option<String> = None;
        let mut restarted = false;
        for _ in 0..MAX_PAGES {
            let list = match self.page(token, cont.as_deref()).await? {
                Page::Pods(list) => list,
                Page::Expired if !restarted && cont.is_some() => {
                    restarted = true;
                    cont = None;
                    continue;
                }
                Page::Expired => {
                    return Err(SchedulerError::Unavailable(
                        "kubernetes pods: the list keeps expiring (410 Gone)".to_owned(),
                    ))
                }
            };
            if let Some(pod) = list.items.iter().find(|p| p.metadata.uid == task_id) {
                return pod_task(pod, task_id);
            }
            match list.metadata.cont.filter(|c| !c.is_empty()) {
                Some(next) if cont.as_deref() == Some(next.as_str()) => {
                    return Err(SchedulerError::BadAnswer(
                        "kubernetes pods: the same continue token twice".to_owned(),
                    ))
                }
                Some(next) => cont = Some(next),
                None => return Err(SchedulerError::NotFound(task_id.to_owned())),
            }
        }
        Err(SchedulerError::BadAnswer(format!(
            "kubernetes pods: more than {MAX_PAGES} pages"
        )))
    }
}

/// The in-cluster API server from the environment a pod is given.
fn in_cluster_api() -> Option<String> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").ok()?;
    let host = host.trim();
    if host.is_empty() {
        return None;
    }
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".to_owned());
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Some(format!("https://{host}:{}", port.trim()))
}

/// A bearer-token file, read again when its size or modification time
/// changes.
#[derive(Debug)]
struct TokenFile {
    path: PathBuf,
    cached: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    stamp: (Option<SystemTime>, u64),
    token: Zeroizing<String>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedToken(<redacted>)")
    }
}

impl TokenFile {
    fn new(path: PathBuf) -> Self {
        TokenFile {
            path,
            cached: Mutex::new(None),
        }
    }

    fn error(&self, e: std::io::Error) -> SchedulerError {
        SchedulerError::Unavailable(format!(
            "kubernetes: reading the token file {}: {e}",
            self.path.display()
        ))
    }

    /// Reads the file now (at build, to fail early).
    fn read_now(&self) -> Result<(), SchedulerError> {
        let meta = std::fs::metadata(&self.path).map_err(|e| self.error(e))?;
        let text = Zeroizing::new(std::fs::read_to_string(&self.path).map_err(|e| self.error(e))?);
        self.store(&meta, &text);
        Ok(())
    }

    fn store(&self, meta: &std::fs::Metadata, text: &str) {
        let token = Zeroizing::new(text.trim().to_owned());
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(CachedToken {
            stamp: (meta.modified().ok(), meta.len()),
            token,
        });
    }

    /// The token as the file holds it now.
    async fn current(&self) -> Result<Zeroizing<String>, SchedulerError> {
        let meta = tokio::fs::metadata(&self.path)
            .await
            .map_err(|e| self.error(e))?;
        let stamp = (meta.modified().ok(), meta.len());
        {
            let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(cached) = cached.as_ref().filter(|c| c.stamp == stamp) {
                return Ok(cached.token.clone());
            }
        }
        let text = Zeroizing::new(
            tokio::fs::read_to_string(&self.path)
                .await
                .map_err(|e| self.error(e))?,
        );
        tracing::debug!(path = %self.path.display(), "kubernetes: token file (re)read");
        self.store(&meta, &text);
        Ok(Zeroizing::new(text.trim().to_owned()))
    }
}

/// The part of a `PodList` this scheduler reads.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PodList {
    #[serde(default, deserialize_with = "nullable")]
    metadata: ListMeta,
    #[serde(default, deserialize_with = "nullable")]
    items: Vec<Pod>,
}

#[derive(Debug, Default, Deserialize)]
struct ListMeta {
    #[serde(rename = "continue", default, deserialize_with = "nullable")]
    cont: Option<String>,
}

/// The part of a pod this scheduler reads.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Pod {
    #[serde(default, deserialize_with = "nullable")]
    metadata: PodMeta,
    #[serde(default, deserialize_with = "nullable")]
    spec: PodSpec,
    #[serde(default, deserialize_with = "nullable")]
    status: PodStatus,
}

#[derive(Debug, Default, Deserialize)]
struct PodMeta {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    namespace: String,
    #[serde(default, deserialize_with = "nullable")]
    uid: String,
}

#[derive(Debug, Default, Deserialize)]
struct PodSpec {
    #[serde(default, deserialize_with = "nullable")]
    containers: Vec<Container>,
}

#[derive(Debug, Default, Deserialize)]
struct Container {
    #[serde(default, deserialize_with = "nullable")]
    image: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStatus {
    #[serde(default, deserialize_with = "nullable")]
    phase: String,
    #[serde(default, deserialize_with = "nullable")]
    start_time: Option<String>,
    #[serde(rename = "podIP", default, deserialize_with = "nullable")]
    pod_ip: Option<String>,
    #[serde(rename = "podIPs", default, deserialize_with = "nullable")]
    pod_ips: Vec<PodIp>,
    #[serde(rename = "hostIP", default, deserialize_with = "nullable")]
    host_ip: Option<String>,
    #[serde(rename = "hostIPs", default, deserialize_with = "nullable")]
    host_ips: Vec<PodIp>,
}

#[derive(Debug, Default, Deserialize)]
struct PodIp {
    #[serde(default, deserialize_with = "nullable")]
    ip: Option<String>,
}

#[cfg(test)]
impl PodList {
    /// The pods of this page.
    pub(crate) fn pods(&self) -> &[Pod] {
        &self.items
    }
}

/// Decodes one page of the pod list.
pub(crate) fn parse_pod_list(body: &[u8]) -> Result<PodList, SchedulerError> {
    common::decode("kubernetes pods", body)
}

/// Reads one page of the pods list as a lookup does once it has arrived:
/// the task of the pod whose uid is `task_id` when the page has it
/// (`Some`), and the page's continue token. Public so that the fuzz
/// targets reach the parser.
#[allow(clippy::type_complexity)]
pub fn read_pod_page(
    body: &[u8],
    task_id: &str,
) -> Result<(Option<Result<Task, SchedulerError>>, Option<String>), SchedulerError> {
    let list = parse_pod_list(body)?;
    let task = list
        .items
        .iter()
        .find(|p| p.metadata.uid == task_id)
        .map(|pod| pod_task(pod, task_id));
    Ok((task, list.metadata.cont.filter(|c| !c.is_empty())))
}

/// The task a pod is, if it runs.
pub(crate) fn pod_task(pod: &Pod, task_id: &str) -> Result<Task, SchedulerError> {
    if pod.status.phase != "Running" {
        return Err(SchedulerError::NotFound(task_id.to_owned()));
    }
    let bad = |why: &str| SchedulerError::BadAnswer(format!("kubernetes pod {task_id}: {why}"));
    let started = pod
        .status
        .start_time
        .as_deref()
        .and_then(common::parse_rfc3339)
        .ok_or_else(|| bad("no valid startTime"))?;
    let mut addresses = Vec::new();
    let ips = pod
        .status
        .pod_ips
        .iter()
        .filter_map(|p| p.ip.as_deref())
        .chain(pod.status.pod_ip.as_deref())
        .chain(pod.status.host_ips.iter().filter_map(|p| p.ip.as_deref()))
        .chain(pod.status.host_ip.as_deref());
    for ip in ips.filter_map(|ip| ip.parse().ok()) {
        common::push_address(&mut addresses, ip);
    }
    if addresses.is_empty() {
        return Err(bad("no pod or host IP"));
    }
    if pod.metadata.name.is_empty() || pod.metadata.namespace.is_empty() {
        return Err(bad("no name or namespace"));
    }
    Ok(Task {
        id: task_id.to_owned(),
        name: format!("{}/{}", pod.metadata.namespace, pod.metadata.name),
        group: None,
        image: pod
            .spec
            .containers
            .first()
            .and_then(|c| c.image.clone())
            .filter(|i| !i.is_empty()),
        started,
        addresses,
    })
}
