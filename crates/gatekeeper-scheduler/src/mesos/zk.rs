//! Mesos master discovery through ZooKeeper (`--mesos-master
//! zk://zk1:2181,zk2:2181/mesos`, or `zks://` for HTTPS to the masters).
//!
//! Every Mesos master contending for leadership holds an ephemeral
//! sequential child `json.info_<sequence>` of the configured node, whose
//! data is its `MasterInfo` as JSON; the lowest sequence leads. This module
//! owns the parsing of the `zk://` value, the choice of the leader out of
//! the children and their data (pure functions, tested alone), and the
//! [`ZkDiscovery`] task that keeps the leader's URL in memory: one
//! long-lived session, a child watch on the node and a data read of the
//! leading child whenever the children change. Lookups read the remembered
//! URL and never touch ZooKeeper. A session that expires, or is cut off for
//! longer than its timeout, forgets the leader (lookups answer
//! [`SchedulerError::Unavailable`]) and is replaced with backoff.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use tokio::sync::watch;
use zookeeper_client as zk;

use crate::common::nullable;
use crate::{SchedulerError, Secret};

/// How long a ZooKeeper session may be cut off before the leader it named
/// is forgotten (Mesos's own `--zk_session_timeout` default).
pub const ZK_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The prefix of the children Mesos masters register (Mesos 0.24 on; the
/// older protobuf `info_` children are ignored).
pub const LEADER_PREFIX: &str = "json.info_";

/// The ZooKeeper port when a host names none.
const DEFAULT_PORT: u16 = 2181;

/// The first and the longest pause between two session attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Where the masters register, from a `zk://` or `zks://` value.
#[derive(Clone, PartialEq, Eq)]
pub struct ZkTarget {
    /// The ZooKeeper connect string: `host:port,...`.
    pub hosts: String,
    /// The node whose children are the masters, e.g. `/mesos`.
    pub path: String,
    /// `https` for `zks://`, else `http`: how the masters are asked.
    pub scheme: &'static str,
    /// `user:password` of the URL, sent as ZooKeeper `digest` auth.
    pub auth: Option<Secret>,
}

impl fmt::Display for ZkTarget {
    /// The URL without its credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.scheme == "https" { "zks" } else { "zk" };
        write!(f, "{scheme}://{}{}", self.hosts, self.path)
    }
}

impl fmt::Debug for ZkTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZkTarget({self})")
    }
}

/// Parses a `mesos-master` value naming ZooKeeper:
/// `zk://[user:password@]host[:port],.../path` (`zks://` for HTTPS to the
/// masters; ZooKeeper itself is plain TCP either way). `Ok(None)` when the
/// value is not a ZooKeeper URL at all.
pub fn parse_zk(value: &str) -> Result<Option<ZkTarget>, SchedulerError> {
    let trimmed = value.trim();
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Ok(None);
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "zk" => "http",
        "zks" => "https",
        _ => return Ok(None),
    };
    // `user:password@` ends at the last `@`; only what follows it is ever
    // part of an error message.
    let (user, rest) = match rest.rsplit_once('@') {
        Some((user, after)) => (Some(user), after),
        None => (None, rest),
    };
    let shown = format!("{}://{rest}", &trimmed[..trimmed.find("://").unwrap_or(0)]);
    let bad = |why: &str| SchedulerError::Unavailable(format!("mesos-master {shown:?}: {why}"));
    let auth = match user {
        Some(user) if user.contains(':') && !user.starts_with(':') => Some(Secret::new(user)),
        Some(_) => return Err(bad("ZooKeeper credentials are `user:password@`")),
        None => None,
    };
    if rest.contains(['?', '#']) {
        return Err(bad("a ZooKeeper URL takes no query or fragment"));
    }
    let (hosts, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut list = Vec::new();
    for host in hosts.split(',').map(str::trim) {
        list.push(host_port(host).map_err(|why| bad(&why))?);
    }
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Err(bad(
            "no ZooKeeper path: name the node the masters register under (zk://zk1:2181/mesos)",
        ));
    }
    if path
        .split('/')
        .skip(1)
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(bad("the ZooKeeper path has an empty, `.` or `..` segment"));
    }
    Ok(Some(ZkTarget {
        hosts: list.join(","),
        path: path.to_owned(),
        scheme,
        auth,
    }))
}

/// One `host[:port]` of a ZooKeeper URL as `host:port`.
fn host_port(item: &str) -> Result<String, String> {
    if item.is_empty() {
        return Err("an empty ZooKeeper host".to_owned());
    }
    let (host, port) = if let Some(v6) = item.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("ZooKeeper host {item:?}: no `]`"))?;
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("ZooKeeper host {item:?}: not an IPv6 address"))?;
        match after {
            "" => (format!("[{host}]"), None),
            _ => match after.strip_prefix(':') {
                Some(port) => (format!("[{host}]"), Some(port)),
                None => return Err(format!("ZooKeeper host {item:?}: junk after `]`")),
            },
        }
    } else {
        match item.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (item.to_owned(), None),
        }
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if !host.starts_with('[') && (host.is_empty() || !host.chars().all(valid)) {
        return Err(format!("ZooKeeper host {item:?}: not a host name"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("ZooKeeper host {item:?}: bad port"))?,
    };
    Ok(format!("{host}:{port}"))
}

/// The leading master's child among `children`: the `json.info_` child
/// with the lowest sequence number. Other names (and a sequence that is
/// not a number) are ignored.
pub fn leader_child(children: &[String]) -> Option<&str> {
    children
        .iter()
        .filter_map(|name| {
            let digits = name.strip_prefix(LEADER_PREFIX)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((digits.parse::<u64>().ok()?, name.as_str()))
        })
        .min()
        .map(|(_, name)| name)
}

/// The part of Mesos's `MasterInfo` JSON this module reads.
#[derive(Debug, Default, Deserialize)]
struct MasterInfo {
    #[serde(default, deserialize_with = "nullable")]
    address: Option<Address>,
    #[serde(default, deserialize_with = "nullable")]
    hostname: Option<String>,
    /// IPv4 packed in network byte order, read as a little-endian integer.
    #[serde(default, deserialize_with = "nullable")]
    ip: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    port: Option<u32>,
    /// `master@ip:port`.
    #[serde(default, deserialize_with = "nullable")]
    pid: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Address {
    #[serde(default, deserialize_with = "nullable")]
    hostname: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    ip: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    port: Option<u32>,
}

/// The master's base URL (`<scheme>://host:port/`) from its `MasterInfo`
/// JSON: the host is `address.hostname`, else `address.ip`, else the
/// top-level `hostname`, else the top-level packed `ip`, else the `pid`'s;
/// the port is `address.port`, else `port`, else the `pid`'s. Answers why
/// when the data names no usable address.
pub fn master_url(data: &[u8], scheme: &str) -> Result<Url, String> {
    let info: MasterInfo =
        serde_json::from_slice(data).map_err(|e| format!("not MasterInfo JSON: {e}"))?;
    let address = info.address.unwrap_or_default();
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let pid = info
        .pid
        .as_deref()
        .and_then(|p| p.rsplit_once('@'))
        .and_then(|(_, a)| a.rsplit_once(':'))
        .map(|(h, p)| (h.to_owned(), p.parse::<u32>().ok()));
    let host = nonempty(address.hostname)
        .or_else(|| nonempty(address.ip))
        .or_else(|| nonempty(info.hostname))
        .or_else(|| {
            info.ip
                .filter(|ip| *ip != 0)
                .map(|ip| Ipv4Addr::from(ip.to_le_bytes()).to_string())
        })
        .or_else(|| {
            pid.as_ref()
                .map(|(h, _)| h.clone())
                .filter(|h| !h.is_empty())
        })
        .ok_or("names no host")?;
    let port = address
        .port
        .or(info.port)
        .or_else(|| pid.as_ref().and_then(|(_, p)| *p))
        .filter(|p| (1..=65535).contains(p))
        .ok_or("names no valid port")?;
    let host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => {
            let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
            if !host.chars().all(valid) {
                return Err(format!("host {host:?} is not a host name"));
            }
            host
        }
    };
    Url::parse(&format!("{scheme}://{host}:{port}/")).map_err(|e| format!("host {host:?}: {e}"))
}

/// What discovery knows of the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkLeader {
    /// Not read yet: the first session is being established.
    Pending,
    /// The leading master's base URL.
    Known(Url),
    /// No leader is known, and why (no master registered, unreadable
    /// data, ZooKeeper unreachable, the session lost).
    Unknown(String),
}

/// The task following the leader through ZooKeeper, and its latest word.
#[derive(Debug)]
pub struct ZkDiscovery {
    target: ZkTarget,
    leader: watch::Receiver<ZkLeader>,
    /// What the task needs, until it is started (at once under a Tokio
    /// runtime, else at the first lookup).
    start: Mutex<Option<(watch::Sender<ZkLeader>, Duration)>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ZkDiscovery {
    /// Prepares discovery at `target`; starts following it when a Tokio
    /// runtime is running (else at the first [`ZkDiscovery::leader`]).
    pub fn new(target: ZkTarget, session_timeout: Duration) -> Self {
        let (tx, rx) = watch::channel(ZkLeader::Pending);
        let discovery = ZkDiscovery {
            target,
            leader: rx,
            start: Mutex::new(Some((tx, session_timeout))),
            task: Mutex::new(None),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            discovery.ensure_started();
        }
        discovery
    }

    /// Where the masters register.
    pub fn target(&self) -> &ZkTarget {
        &self.target
    }

    fn ensure_started(&self) {
        // Outside a runtime, wait for a call from inside one.
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let Some((tx, session_timeout)) =
            self.start.lock().unwrap_or_else(|e| e.into_inner()).take()
        else {
            return;
        };
        let task = tokio::spawn(follow_forever(self.target.clone(), session_timeout, tx));
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// What is known of the leader now, and each change after.
    pub fn watch(&self) -> watch::Receiver<ZkLeader> {
        self.ensure_started();
        self.leader.clone()
    }

    /// The leader's base URL, from memory. Only before the first answer of
    /// ZooKeeper does this wait, `wait` at most; no known leader is
    /// [`SchedulerError::Unavailable`].
    pub async fn leader(&self, wait: Duration) -> Result<Url, SchedulerError> {
        let mut rx = self.watch();
        let state = {
            let got = tokio::time::timeout(wait, rx.wait_for(|l| *l != ZkLeader::Pending)).await;
            match got {
                Ok(Ok(state)) => state.clone(),
                // The task never ends on its own: only a timeout is left.
                _ => ZkLeader::Pending,
            }
        };
        match state {
            ZkLeader::Known(url) => Ok(url),
            ZkLeader::Pending => Err(SchedulerError::Unavailable(format!(
                "mesos: {}: ZooKeeper has not named the leading master yet",
                self.target
            ))),
            ZkLeader::Unknown(why) => Err(SchedulerError::Unavailable(format!(
                "mesos: {}: no leading master known: {why}",
                self.target
            ))),
        }
    }
}

impl Drop for ZkDiscovery {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

/// Publishes `leader` when it differs from what is known, and logs it.
fn publish(tx: &watch::Sender<ZkLeader>, target: &ZkTarget, leader: ZkLeader) {
    tx.send_if_modified(|known| {
        if *known == leader {
            return false;
        }
        match &leader {
            ZkLeader::Known(url) => {
                tracing::info!(zookeeper = %target, leader = %url, "mesos: ZooKeeper names the leading master")
            }
            ZkLeader::Unknown(why) => {
                tracing::warn!(zookeeper = %target, reason = %why, "mesos: no leading master known")
            }
            ZkLeader::Pending => {}
        }
        *known = leader;
        true
    });
}

/// Sessions one after the other, with backoff between failed ones.
async fn follow_forever(target: ZkTarget, session_timeout: Duration, tx: watch::Sender<ZkLeader>) {
    let mut pause = BACKOFF_MIN;
    loop {
        match connect(&target, session_timeout).await {
            Ok(client) => {
                pause = BACKOFF_MIN;
                let why = follow(&client, &target, session_timeout, &tx).await;
                publish(
                    &tx,
                    &target,
                    ZkLeader::Unknown(format!("ZooKeeper session lost: {why}")),
                );
                drop(client);
            }
            Err(e) => publish(
                &tx,
                &target,
                ZkLeader::Unknown(format!("cannot reach ZooKeeper: {e}")),
            ),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(BACKOFF_MAX);
    }
}

/// A new session; refused connections fail at once rather than after the
/// session timeout.
async fn connect(target: &ZkTarget, session_timeout: Duration) -> Result<zk::Client, String> {
    let mut connector = zk::Client::connector()
        .with_session_timeout(session_timeout)
        .with_fail_eagerly();
    if let Some(auth) = &target.auth {
        connector = connector.with_auth("digest", auth.expose().as_bytes());
    }
    // The client bounds its own attempt by the session timeout; this is a
    // guard against waiting forever.
    match tokio::time::timeout(session_timeout * 2, connector.connect(&target.hosts)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

/// Is `e` the end of the session (rather than of one request)?
fn session_over(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::AuthFailed
    )
}

/// What one read of the node found.
enum Read {
    /// The leader (or why there is none), and the watch on the children.
    Children(ZkLeader, zk::OneshotWatcher),
    /// The node does not exist; the watch fires when it is created.
    Missing(zk::OneshotWatcher),
}

/// Reads the children with a watch, then the leading child's data.
async fn read(client: &zk::Client, target: &ZkTarget) -> Result<Read, zk::Error> {
    loop {
        let (children, watcher) = match client.list_and_watch_children(&target.path).await {
            Ok(found) => found,
            Err(zk::Error::NoNode) => match client.check_and_watch_stat(&target.path).await? {
                (None, watcher) => return Ok(Read::Missing(watcher)),
                // Created in between: read again.
                (Some(_), _) => continue,
            },
            Err(e) => return Err(e),
        };
        let Some(child) = leader_child(&children) else {
            let why = format!("no Mesos master is registered under {}", target.path);
            return Ok(Read::Children(ZkLeader::Unknown(why), watcher));
        };
        let node = format!("{}/{child}", target.path);
        match client.get_data(&node).await {
            Ok((data, _)) => {
                let leader = match master_url(&data, target.scheme) {
                    Ok(url) => ZkLeader::Known(url),
                    Err(why) => ZkLeader::Unknown(format!("the leader's node {node}: {why}")),
                };
                return Ok(Read::Children(leader, watcher));
            }
            // The leader left in between: its watch has fired; read again.
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Follows the node through one session until the session is over;
/// answers why it is over.
async fn follow(
    client: &zk::Client,
    target: &ZkTarget,
    session_timeout: Duration,
    tx: &watch::Sender<ZkLeader>,
) -> String {
    let mut state = client.state_watcher();
    loop {
        let watcher = match read(client, target).await {
            Ok(Read::Children(leader, watcher)) => {
                publish(tx, target, leader);
                watcher
            }
            Ok(Read::Missing(watcher)) => {
                let why = format!("the node {} does not exist", target.path);
                publish(tx, target, ZkLeader::Unknown(why));
                watcher
            }
            Err(e) if session_over(&e) => return e.to_string(),
            Err(e @ (zk::Error::ConnectionLoss | zk::Error::Timeout)) => {
                // Wait for the session to come back (or end), then read
                // again; the leader known so far stands meanwhile.
                tracing::debug!(zookeeper = %target, error = %e, "mesos: ZooKeeper read failed");
                if let Err(why) = next_reconnect(&mut state, session_timeout).await {
                    return why;
                }
                continue;
            }
            Err(e) => {
                // Refused (not authorized, ...): no leader known; try again
                // in a while, as the refusal may be lifted.
                let why = format!("cannot read {}: {e}", target.path);
                publish(tx, target, ZkLeader::Unknown(why));
                tokio::select! {
                    () = tokio::time::sleep(BACKOFF_MAX) => {}
                    back = next_reconnect(&mut state, session_timeout) => {
                        if let Err(why) = back {
                            return why;
                        }
                    }
                }
                continue;
            }
        };
        // Read again on the watch's event, or when the session is back
        // after a disconnection (the watch survives it, but an event may
        // have fallen in the gap).
        tokio::select! {
            event = watcher.changed() => {
                if event.event_type == zk::EventType::Session && event.session_state.is_terminated() {
                    return format!("{:?}", event.session_state);
                }
            }
            back = next_reconnect(&mut state, session_timeout) => {
                if let Err(why) = back {
                    return why;
                }
            }
        }
    }
}

/// Waits for the session to come back after a disconnection (`Ok`), or to
/// end: a terminal state, or cut off for longer than `session_timeout`.
async fn next_reconnect(
    state: &mut zk::StateWatcher,
    session_timeout: Duration,
) -> Result<(), String> {
    loop {
        let now = if state.peek_state() == zk::SessionState::Disconnected {
            zk::SessionState::Disconnected
        } else {
            state.changed().await
        };
        match now {
            zk::SessionState::Disconnected => {
                let back = tokio::time::timeout(session_timeout, async {
                    loop {
                        match state.changed().await {
                            zk::SessionState::Disconnected => continue,
                            s if s.is_terminated() => return Err(format!("{s:?}")),
                            _ => return Ok(()),
                        }
                    }
                })
                .await;
                return match back {
                    Ok(result) => result,
                    Err(_) => Err(format!(
                        "cut off from ZooKeeper for longer than the session timeout ({session_timeout:?})"
                    )),
                };
            }
            s if s.is_terminated() => return Err(format!("{s:?}")),
            _ => continue,
        }
    }
}
