//! High availability (`--peers`): this module owns the peer list, its
//! discovery by DNS, and the calls one instance makes to another.
//!
//! The protocol, compatible with the original vault-gatekeeper:
//! - `--peers` is `[http(s)://]gk1,gk2:9201` (one port for all, the
//!   original's form) or `host:port[,host:port...]`. Every host is
//!   resolved to all its addresses, and every address is asked
//!   `GET /status` (with `Peer-Checker: true`); the instance whose `id` is
//!   this one's is skipped, duplicates (one instance behind several
//!   addresses) are kept once. The list is refreshed every
//!   `--peer-refresh` and when a forward finds no unsealed peer.
//! - A sealed instance forwards `POST /token` with the same body to an
//!   unsealed peer, adding `Gatekeeper-Proxy: <its id>` and
//!   `X-Forwarded-For: <the caller's address>`, and relays the answer. A
//!   request carrying `Gatekeeper-Proxy` is never forwarded again.
//! - The receiving instance believes `X-Forwarded-For` (its right-most
//!   address) only on a request that carries `Gatekeeper-Proxy` and comes
//!   from one of the addresses the `--peers` hosts resolve to
//!   ([`Peers::is_peer_addr`]), so the host check sees the task's address.
//! - `POST /policies/reload` is fanned out to the unsealed peers with the
//!   caller's admin credential and `Gatekeeper-Proxy`; a reload carrying
//!   that header is not fanned out again.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::Value;
use tokio::task::{JoinHandle, JoinSet};

use crate::service::canonical_ip;
use crate::vault::VaultTls;

/// The header marking a request one Gatekeeper sends another (its value
/// is the sender's id), as the original named it.
pub const PROXY_HEADER: &str = "gatekeeper-proxy";
/// The header of the discovery `GET /status` calls.
pub const CHECKER_HEADER: &str = "peer-checker";

/// How soon after a refresh a failed forward may trigger another one, by
/// default ([`Peers::with_min_forced_refresh`]), so that a stream of
/// requests to a sealed instance does not become a stream of DNS lookups
/// and status calls.
pub const MIN_FORCED_REFRESH: Duration = Duration::from_secs(1);

/// The parsed `--peers` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// `http` or `https`.
    pub scheme: String,
    /// Host names (or addresses) and ports, in the flag's order.
    pub hosts: Vec<(String, u16)>,
}

/// Splits an optional `http://` or `https://` prefix off `s`.
fn split_scheme(s: &str) -> Result<(Option<String>, &str), String> {
    match s.split_once("://") {
        None => Ok((None, s)),
        Some((scheme, rest)) => {
            let scheme = scheme.to_ascii_lowercase();
            if scheme == "http" || scheme == "https" {
                Ok((Some(scheme), rest))
            } else {
                Err(format!(
                    "invalid option for peers: invalid protocol {scheme:?}"
                ))
            }
        }
    }
}

/// Parses `host:port` or `[v6]:port`, or a host alone (`host`, `[v6]`),
/// which takes the list's shared port.
fn parse_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let s = s.trim().trim_end_matches('/');
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        match rest.split_once("]:") {
            Some((host, port)) => (host, Some(port)),
            None => (
                rest.strip_suffix(']')
                    .ok_or_else(|| format!("invalid peer {s:?}: expected [address]:port"))?,
                None,
            ),
        }
    } else {
        match s.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(format!(
                    "invalid peer {s:?}: put IPv6 addresses in brackets"
                ))
            }
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(format!("invalid peer {s:?}: no host"));
    }
    let port = port
        .map(|p| p.parse::<u16>())
        .transpose()
        .map_err(|_| format!("invalid peer {s:?}: bad port"))?;
    Ok((host.to_string(), port))
}

/// Parses `--peers`, in either of two forms (mixable):
/// - the original's URL: `[http(s)://]gk1,gk2,gk3:9201`, a comma-separated
///   host list with one port, given once at the end, for all of them;
/// - `[http(s)://]host:port[,host:port...]`, a port per host (each entry
///   may repeat the scheme).
///
/// A host without a port takes the port of the list's last entry, which
/// must have one. Without a scheme, `default_scheme` is used.
pub fn parse_peers(s: &str, default_scheme: &str) -> Result<PeerSpec, String> {
    let mut scheme: Option<String> = None;
    let mut entries = Vec::new();
    for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (entry_scheme, rest) = split_scheme(entry)?;
        if let Some(es) = entry_scheme {
            match &scheme {
                Some(prev) if *prev != es => {
                    return Err("invalid option for peers: mixed protocols".into())
                }
                _ => scheme = Some(es),
            }
        }
        entries.push(parse_host_port(rest)?);
    }
    let Some(&(_, last_port)) = entries.last() else {
        return Err("invalid option for peers: no host:port given".into());
    };
    let Some(shared_port) = last_port else {
        return Err(format!(
            "invalid option for peers: {s:?} names no port (give it once at the end, \
             as in https://gk1,gk2:9201)"
        ));
    };
    let hosts = entries
        .into_iter()
        .map(|(host, port)| (host, port.unwrap_or(shared_port)))
        .collect();
    Ok(PeerSpec {
        scheme: scheme.unwrap_or_else(|| default_scheme.to_string()),
        hosts,
    })
}

/// Another instance, as `/status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// Its id (its `/status` `id`).
    pub id: String,
    /// Its base URL, ending in `/`.
    pub address: String,
    /// Whether it said it was unsealed when last asked.
    pub unsealed: bool,
    /// Its version.
    pub version: String,
}

/// The answer a peer gave to a forwarded `/token`.
#[derive(Debug)]
pub struct Relayed {
    /// Its HTTP status.
    pub status: u16,
    /// Its body (holds the wrapping token on success: never log it).
    pub body: Bytes,
}

/// The outcome of a reload fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanOut {
    /// Peers that answered 2xx.
    pub reached: usize,
    /// Unsealed peers asked.
    pub asked: usize,
}

/// An HTTP client for peers: the Vault-API server's CA (`--vault-cacert`,
/// `--vault-skip-verify`) is trusted for peers too, as the original did.
/// See [`http_client_tls`] for every TLS setting.
pub fn http_client(
    cacert: Option<&Path>,
    skip_verify: bool,
    timeout: Duration,
) -> anyhow::Result<reqwest::Client> {
    let tls = VaultTls {
        cacert: cacert.map(Path::to_path_buf),
        skip_verify,
        ..VaultTls::default()
    };
    http_client_tls(&tls, timeout)
}

/// An HTTP client for peers with the Vault-API server's TLS settings
/// (`--vault-cacert` or `--vault-capath`, `--vault-client-cert` and
/// `--vault-client-key`, `--vault-skip-verify`): the original used one
/// transport for both, so peers behind the same CA, or requiring the same
/// client certificate, keep working.
pub fn http_client_tls(tls: &VaultTls, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        // A peer that redirects is not a peer: never carry the admin
        // credential elsewhere.
        .redirect(reqwest::redirect::Policy::none());
    Ok(tls.apply(builder)?.build()?)
}

/// The peers of this instance.
pub struct Peers {
    spec: PeerSpec,
    self_id: String,
    version: String,
    http: reqwest::Client,
    list: ArcSwap<Vec<Peer>>,
    known: ArcSwap<HashSet<IpAddr>>,
    /// When the last refresh finished; held while one runs.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    /// Refreshes done: a forward that waited for a running refresh uses
    /// its result rather than start another.
    refreshes: AtomicU64,
    min_forced_refresh: Duration,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("spec", &self.spec)
            .field("peers", &self.list.load())
            .finish_non_exhaustive()
    }
}

/// What a peer's `/status` says about it.
fn parse_status(body: &[u8]) -> Option<(String, bool, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let id = v.get("id")?.as_str().filter(|s| !s.is_empty())?.to_string();
    let unsealed = v.get("unsealed").and_then(Value::as_bool).unwrap_or(false);
    let version = v
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Some((id, unsealed, version))
}

/// Whether a relayed answer says the peer is sealed (it was sealed since
/// it was last asked): then the next peer is tried.
fn says_sealed(status: u16, body: &[u8]) -> bool {
    status == 503
        && serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("unsealed").and_then(Value::as_bool))
            == Some(false)
}

impl Peers {
    /// Peers from `spec`, for the instance `self_id`; empty until
    /// [`Peers::refresh`].
    pub fn new(spec: PeerSpec, self_id: String, version: String, http: reqwest::Client) -> Self {
        Peers {
            spec,
            self_id,
            version,
            http,
            list: ArcSwap::from_pointee(Vec::new()),
            known: ArcSwap::from_pointee(HashSet::new()),
            last_refresh: tokio::sync::Mutex::new(None),
            refreshes: AtomicU64::new(0),
            min_forced_refresh: MIN_FORCED_REFRESH,
        }
    }

    /// Sets how soon after a refresh a forward finding no unsealed peer
    /// may refresh again (default [`MIN_FORCED_REFRESH`]).
    pub fn with_min_forced_refresh(mut self, min: Duration) -> Self {
        self.min_forced_refresh = min;
        self
    }

    /// The peers found by the last refresh (this instance excluded).
    pub fn list(&self) -> Arc<Vec<Peer>> {
        self.list.load_full()
    }

    /// Whether `ip` is one of the addresses the `--peers` hosts resolved
    /// to: a request from there carrying [`PROXY_HEADER`] is believed
    /// about the caller's address.
    pub fn is_peer_addr(&self, ip: IpAddr) -> bool {
        self.known.load().contains(&canonical_ip(ip))
    }

    /// Resolves every host, asks every address for its status, and
    /// replaces the list. Failures are logged and leave those peers out.
    pub async fn refresh(&self) {
        let mut last = self.last_refresh.lock().await;
        self.refresh_locked().await;
        *last = Some(Instant::now());
        self.refreshes.fetch_add(1, Ordering::SeqCst);
    }

    /// Refreshes unless one finished less than the minimum interval ago,
    /// or one finished while this call waited for the lock.
    async fn refresh_on_demand(&self) {
        let seen = self.refreshes.load(Ordering::SeqCst);
        let mut last = self.last_refresh.lock().await;
        if self.refreshes.load(Ordering::SeqCst) != seen
            || last.is_some_and(|t| t.elapsed() < self.min_forced_refresh)
        {
            return;
        }
        self.refresh_locked().await;
        *last = Some(Instant::now());
        self.refreshes.fetch_add(1, Ordering::SeqCst);
    }

    async fn refresh_locked(&self) {
        let mut addrs: Vec<SocketAddr> = Vec::new();
        let mut resolution_failed = false;
        for (host, port) in &self.spec.hosts {
            match tokio::net::lookup_host((host.as_str(), *port)).await {
                Ok(found) => {
                    for a in found {
                        let a = SocketAddr::new(canonical_ip(a.ip()), a.port());
                        if !addrs.contains(&a) {
                            addrs.push(a);
                        }
                    }
                }
                Err(e) => {
                    resolution_failed = true;
                    tracing::info!(peer = %host, error = %e, "peer host did not resolve");
                }
            }
        }
        let mut known: HashSet<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
        if resolution_failed {
            // A passing DNS failure must not stop trusting a known peer.
            known.extend(self.known.load().iter().copied());
        }
        self.known.store(Arc::new(known));

        let mut set = JoinSet::new();
        for (i, addr) in addrs.iter().enumerate() {
            let base = format!("{}://{addr}/", self.spec.scheme);
            let http = self.http.clone();
            let ua = format!("Gatekeeper Peer {}", self.version);
            set.spawn(async move {
                let answer = http
                    .get(format!("{base}status"))
                    .header(CHECKER_HEADER, "true")
                    .header(reqwest::header::USER_AGENT, ua)
                    .send()
                    .await;
                let status = match answer {
                    Ok(r) => r.bytes().await.ok().and_then(|b| parse_status(&b)),
                    Err(e) => {
                        tracing::debug!(peer = %base, error = %e.without_url(), "peer did not answer");
                        None
                    }
                };
                (i, base, status)
            });
        }
        let mut found = Vec::new();
        while let Some(done) = set.join_next().await {
            if let Ok((i, base, Some(status))) = done {
                found.push((i, base, status));
            }
        }
        // In the flag's order, whatever order the answers came in.
        found.sort_by_key(|(i, _, _)| *i);
        let mut seen = HashSet::new();
        let peers: Vec<Peer> = found
            .into_iter()
            .filter(|(_, _, (id, _, _))| *id != self.self_id && seen.insert(id.clone()))
            .map(|(_, address, (id, unsealed, version))| Peer {
                id,
                address,
                unsealed,
                version,
            })
            .collect();
        tracing::debug!(
            peers = peers.len(),
            unsealed = peers.iter().filter(|p| p.unsealed).count(),
            "peers refreshed"
        );
        self.list.store(Arc::new(peers));
    }

    /// Refreshes every `every` in the background (the first run after one
    /// period: call [`Peers::refresh`] at start).
    pub fn spawn_refresh(self: &Arc<Self>, every: Duration) -> JoinHandle<()> {
        let me = Arc::downgrade(self);
        let every = every.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(p) = me.upgrade() else { return };
                p.refresh().await;
            }
        })
    }

    async fn try_forward(
        &self,
        peers: &[Peer],
        tried: &mut HashSet<String>,
        body: &Bytes,
        client: Option<IpAddr>,
    ) -> Option<Relayed> {
        for peer in peers.iter().filter(|p| p.unsealed) {
            if !tried.insert(peer.id.clone()) {
                continue;
            }
            let mut req = self
                .http
                .post(format!("{}token", peer.address))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(PROXY_HEADER, &self.self_id)
                .body(body.clone());
            if let Some(ip) = client {
                req = req.header("x-forwarded-for", ip.to_string());
            }
            let answer = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(peer = %peer.address, error = %e.without_url(), "forwarding /token failed");
                    continue;
                }
            };
            let status = answer.status().as_u16();
            let Ok(body) = answer.bytes().await else {
                tracing::warn!(peer = %peer.address, "the peer's /token answer could not be read");
                continue;
            };
            if says_sealed(status, &body) {
                tracing::info!(peer = %peer.address, "the peer is sealed now");
                continue;
            }
            tracing::info!(peer = %peer.address, status, "/token forwarded");
            return Some(Relayed { status, body });
        }
        None
    }

    /// Forwards a `/token` body to an unsealed peer and answers its reply;
    /// when no peer takes it, refreshes the list and tries the peers not
    /// tried yet. `None`: no unsealed peer answered.
    pub async fn forward_token(&self, body: &Bytes, client: Option<IpAddr>) -> Option<Relayed> {
        let mut tried = HashSet::new();
        if let Some(r) = self
            .try_forward(&self.list(), &mut tried, body, client)
            .await
        {
            return Some(r);
        }
        self.refresh_on_demand().await;
        self.try_forward(&self.list(), &mut tried, body, client)
            .await
    }

    /// Asks every unsealed peer to reload its policies, with the admin
    /// credential headers of the caller (`X-Vault-Token`,
    /// `Authorization`).
    pub async fn forward_reload(&self, caller: &HeaderMap) -> FanOut {
        let creds: HashMap<&str, String> = ["x-vault-token", "authorization"]
            .into_iter()
            .filter_map(|h| {
                caller
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| (h, v.to_string()))
            })
            .collect();
        let mut set = JoinSet::new();
        let list = self.list();
        for peer in list.iter().filter(|p| p.unsealed) {
            let mut req = self
                .http
                .post(format!("{}policies/reload", peer.address))
                .header(PROXY_HEADER, &self.self_id);
            for (h, v) in &creds {
                req = req.header(*h, v);
            }
            let address = peer.address.clone();
            set.spawn(async move {
                match req.send().await {
                    Ok(r) if r.status().is_success() => true,
                    Ok(r) => {
                        tracing::warn!(peer = %address, status = r.status().as_u16(), "the peer refused the reload");
                        false
                    }
                    Err(e) => {
                        tracing::warn!(peer = %address, error = %e.without_url(), "forwarding the reload failed");
                        false
                    }
                }
            });
        }
        let asked = set.len();
        let mut reached = 0;
        while let Some(done) = set.join_next().await {
            if matches!(done, Ok(true)) {
                reached += 1;
            }
        }
        FanOut { reached, asked }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_flag_formats() {
        let s = parse_peers("gk1:9201,gk2:9202", "http").unwrap();
        assert_eq!(s.scheme, "http");
        assert_eq!(
            s.hosts,
            [("gk1".to_string(), 9201), ("gk2".to_string(), 9202)]
        );
        let s = parse_peers("https://gk.service.consul:9201", "http").unwrap();
        assert_eq!(s.scheme, "https");
        assert_eq!(s.hosts, [("gk.service.consul".to_string(), 9201)]);
        let s = parse_peers("HTTP://[::1]:9201, 10.0.0.2:9201/", "https").unwrap();
        assert_eq!(s.scheme, "http");
        assert_eq!(
            s.hosts,
            [("::1".to_string(), 9201), ("10.0.0.2".to_string(), 9201)]
        );
        // The original's form: one URL, a host list, one port for all.
        let s = parse_peers("https://gk1.internal,gk2.internal:9201", "http").unwrap();
        assert_eq!(s.scheme, "https");
        assert_eq!(
            s.hosts,
            [
                ("gk1.internal".to_string(), 9201),
                ("gk2.internal".to_string(), 9201)
            ]
        );
        let s = parse_peers("http://10.0.0.1,10.0.0.2:9201", "https").unwrap();
        assert_eq!(s.scheme, "http");
        assert_eq!(
            s.hosts,
            [
                ("10.0.0.1".to_string(), 9201),
                ("10.0.0.2".to_string(), 9201)
            ]
        );
        let s = parse_peers("[::1],gk2:9300,gk3:9400/", "http").unwrap();
        assert_eq!(
            s.hosts,
            [
                ("::1".to_string(), 9400),
                ("gk2".to_string(), 9300),
                ("gk3".to_string(), 9400)
            ]
        );
        for bad in [
            "",
            "gk1",
            "https://gk1,gk2",
            "gk1:9201,gk2",
            "[::1",
            "ftp://gk1:21",
            "gk1:notaport",
            "::1:9201",
            ":9201",
            "http://a:1,https://b:2",
        ] {
            let err = parse_peers(bad, "http").err();
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.starts_with("invalid peer ")
                        || e.starts_with("invalid option for peers: ")),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn status_and_sealed_answers() {
        assert_eq!(
            parse_status(br#"{"id":"abc","unsealed":true,"version":"1"}"#),
            Some(("abc".into(), true, "1".into()))
        );
        assert_eq!(parse_status(br#"{"unsealed":true}"#), None);
        assert_eq!(parse_status(b"<html>"), None);
        assert!(says_sealed(
            503,
            br#"{"unsealed":false,"error":"Unable to provide token: Gatekeeper is sealed."}"#
        ));
        // A 503 that says unsealed is not a sealed peer: relayed as it is.
        assert!(!says_sealed(503, br#"{"unsealed":true,"error":"x"}"#));
        // An unsealed peer whose scheduler is down answers 502: relayed.
        assert!(!says_sealed(502, br#"{"unsealed":true,"error":"x"}"#));
        assert!(!says_sealed(429, br#"{"unsealed":false}"#));
    }
}
