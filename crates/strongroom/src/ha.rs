//! High availability on PostgreSQL: the coordinator that ties the storage's
//! lock to the core, the cluster listener, and forwarding from standbys.
//!
//! **Who is active.** A node wants the lock while it is unsealed (or while
//! the storage is not initialised yet, so that `sys/init` may write). The
//! node holding it fences the storage on it (every write transaction checks
//! the lock row, see `strongroom_postgres`) and activates the core. When the
//! lock is lost (the renewal deadline passed: reset or silent link) the
//! core is demoted at once, before the row can expire in the database, and
//! the node competes again as a standby. Sealing releases the lock at once;
//! `sys/step-down` releases it and leaves it to the other nodes (see
//! `Coordinator::pause_after_step_down`).
//!
//! **Standbys.** An unsealed node that is not active answers the node-local
//! endpoints itself (health, seal status, unseal, leader), and reads outside
//! `sys/` from its read-only state (`Core::serving_standby`): at once under
//! a read lease from the active node, which pushes it every write before
//! acknowledging it (see [`read_leases`]); without one, after applying the
//! change log up to the moment the read arrived ([`HaControl::sync_reads`]:
//! one query shared by the reads that arrive together; the ordering
//! argument is in `strongroom_postgres::changes`). Everything else, and any
//! read that turns out to need a write (a token's use count) or the active
//! node's state, goes to the active node over the cluster link (mutual TLS
//! with the cluster's certificate, kept in the barrier), with its body and
//! the client's address; the active node's answer goes back unchanged.
//! With `X-Vault-No-Request-Forwarding` the client gets a 307 to the
//! active node's `api_addr` instead of a forward. Sealing a standby asks the
//! active node whether the token may (sudo on `sys/seal`), then seals this
//! node only.
//!
//! **Who leads, as a standby knows it.** The lock row's value is this
//! node's advertisement (id, host name, API and cluster addresses); a
//! standby reads the row every `lock_retry_interval` and after a failed
//! forward, and reports to the active node every second (`sys/ha-status`).

mod read_leases;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use axum::body::Body;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strongroom_core::node::ha::{ClusterTls, HaControl, HaNodeStatus, LeaderStatus, Lifecycle};
use strongroom_core::node::NodeState;
use strongroom_core::Core;
use strongroom_http::{
    ClusterTlsConfig, ConnLimits, Decision, Forward, HttpOptions, RouterExtras,
    CLUSTER_SERVER_NAME, FORWARDED_FOR_HEADER, NO_FORWARDING_HEADER,
};
use strongroom_postgres::{CommitObserver, HaLock, HeldLock, PostgresBackend};

use read_leases::{Extended, Grants, LeaseAnswer, LeaseRequest, LeaseSlot, Push, Target};
use strongroom_sdk::Error;
use strongroom_storage::CachedBackend;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, OnceCell};

/// How long a standby waits for an active node to be known before it
/// answers a request it must forward with an error.
const LEADER_WAIT: Duration = Duration::from_secs(5);
/// How often a standby reports to the active node.
const ECHO_INTERVAL: Duration = Duration::from_secs(1);
/// Standbys not heard from for this long leave `sys/ha-status`.
const ECHO_FORGET: Duration = Duration::from_secs(30);
/// After `sys/step-down`, how long the node leaves the lock to others at
/// most (OpenBao's `manualStepDownSleepPeriod`).
const STEP_DOWN_PAUSE: Duration = Duration::from_secs(10);

/// What a node tells the others about itself (the lock row's value, and
/// its echo to the active node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advert {
    /// A random id per process.
    pub node_id: String,
    /// The host name.
    pub hostname: String,
    /// Where clients reach it (`api_addr`).
    pub api_addr: String,
    /// Where nodes reach its cluster listener (`cluster_addr`).
    pub cluster_addr: String,
}

/// The HA coordinator of one node.
pub struct Coordinator {
    core: Arc<Core>,
    backend: Arc<PostgresBackend>,
    /// The read cache in front of the storage: other nodes wrote while
    /// this one was not active, so it is cleared before every activation.
    cache: Option<Arc<CachedBackend>>,
    lock: HaLock,
    me: Advert,
    retry: Duration,
    /// The active node as last seen (this node while it is active).
    leader: watch::Sender<Option<Advert>>,
    active_since: Mutex<Option<SystemTime>>,
    step_down: Notify,
    echoes: Mutex<HashMap<String, (Advert, SystemTime)>>,
    tls: OnceCell<ClusterTlsConfig>,
    /// The forwarding client and the cluster address it dials.
    client: Mutex<Option<(String, reqwest::Client)>>,
    /// The lock, while held (released at shutdown).
    held: tokio::sync::Mutex<Option<HeldLock>>,
    /// Whether the storage is fenced on a lock this node holds.
    writable: watch::Sender<bool>,
    /// The fence of the lock this node holds (its local deadline decides
    /// `lease_valid`).
    fence: std::sync::RwLock<Option<strongroom_postgres::Fence>>,
    /// A standby's read sync: the last change-log row applied.
    applied: tokio::sync::Mutex<u64>,
    /// Read syncs started and (the number of) the last one finished.
    syncs_started: AtomicU64,
    syncs_finished: AtomicU64,
    /// The active node's read-lease grants (see [`read_leases`]).
    grants: Grants,
    /// A standby's read lease from the active node.
    read_lease: LeaseSlot,
}

/// A node wants the lock while unsealed, or while the storage is not
/// initialised (so that `sys/init` can write).
fn wanted(l: &Lifecycle) -> bool {
    !l.sealed || !l.initialized
}

impl Coordinator {
    /// A coordinator for `core` over `backend`'s lock; `me` is what this
    /// node advertises. Nothing runs until [`Coordinator::start`].
    pub fn new(
        core: Arc<Core>,
        backend: Arc<PostgresBackend>,
        cache: Option<Arc<CachedBackend>>,
        lock_config: strongroom_postgres::LockConfig,
        me: Advert,
    ) -> anyhow::Result<Arc<Self>> {
        let value = serde_json::to_string(&me)?;
        let retry = lock_config.retry_interval;
        let lock = backend
            .ha_lock(&value, lock_config)
            .map_err(|e| anyhow::anyhow!("storage \"postgresql\": {e}"))?;
        Ok(Arc::new(Coordinator {
            core,
            backend,
            cache,
            lock,
            me,
            retry,
            leader: watch::Sender::new(None),
            active_since: Mutex::new(None),
            step_down: Notify::new(),
            echoes: Mutex::new(HashMap::new()),
            tls: OnceCell::new(),
            client: Mutex::new(None),
            held: tokio::sync::Mutex::new(None),
            writable: watch::Sender::new(false),
            fence: std::sync::RwLock::new(None),
            applied: tokio::sync::Mutex::new(0),
            syncs_started: AtomicU64::new(0),
            syncs_finished: AtomicU64::new(0),
            grants: Grants::default(),
            read_lease: LeaseSlot::default(),
        }))
    }

    /// Starts the lock loop, the leader watch, the echo and the cluster
    /// listener (served once the cluster's TLS identity is known).
    pub fn start(self: &Arc<Self>, cluster: TcpListener, stop: watch::Receiver<bool>) {
        let pusher: Arc<dyn CommitObserver> = Arc::new(Pusher(Arc::downgrade(self)));
        self.backend.set_commit_observer(Some(pusher));
        tokio::spawn(self.clone().lease_loop());
        tokio::spawn(self.clone().lock_loop());
        tokio::spawn(self.clone().leader_watch());
        tokio::spawn(self.clone().echo_loop());
        tokio::spawn(self.clone().serve_cluster(cluster, stop));
    }

    /// Clean shutdown (the core is sealed already): no more writes, and the
    /// lock freed at once so that another node takes over without waiting
    /// for the TTL.
    pub async fn shutdown(&self) {
        self.backend.set_fence(None);
        self.revoke_read_leases().await;
        if let Some(held) = self.held.lock().await.take() {
            if let Err(e) = held.release().await {
                tracing::warn!(error = %e, "could not release the HA lock; it expires by itself");
            }
        }
    }

    async fn lock_loop(self: Arc<Self>) {
        let mut life = self.core.lifecycle();
        self.core.publish_lifecycle().await;
        loop {
            if life.wait_for(wanted).await.is_err() {
                return;
            }
            if !life.borrow().sealed {
                self.enter_standby().await;
            }
            tracing::debug!("HA: competing for the lock");
            let held = tokio::select! {
                held = self.lock.acquire() => held,
                _ = life.wait_for(|l| !wanted(l)) => continue,
            };
            // Waiting may have taken long: another node may have
            // initialised the storage meanwhile.
            self.core.publish_lifecycle().await;
            let state = *life.borrow_and_update();
            if !wanted(&state) {
                self.release(held).await;
                continue;
            }
            self.backend.set_fence(Some(held.fence()));
            *self.fence.write().unwrap_or_else(PoisonError::into_inner) = Some(held.fence());
            self.writable.send_replace(true);
            if !state.sealed {
                if let Some(cache) = &self.cache {
                    cache.clear();
                }
                if let Err(e) = self.core.activate().await {
                    tracing::error!(error = %e, "could not activate after taking the HA lock");
                    self.writable.send_replace(false);
                    *self.fence.write().unwrap_or_else(PoisonError::into_inner) = None;
                    self.backend.set_fence(None);
                    self.release(held).await;
                    tokio::time::sleep(self.retry).await;
                    continue;
                }
                if let Err(e) = self.cluster_tls().await {
                    tracing::error!(error = %e, "cluster TLS identity unavailable: standbys cannot forward");
                }
                *self
                    .active_since
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(SystemTime::now());
                self.echoes
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                self.read_lease.clear();
                self.grants.open();
                self.leader.send_replace(Some(self.me.clone()));
                tracing::info!("HA: this node is active");
            }
            let mut lost = held.subscribe();
            *self.held.lock().await = Some(held);
            enum Why {
                Lost,
                StepDown,
                Lifecycle,
            }
            let why = tokio::select! {
                _ = lost.wait_for(|lost| *lost) => Why::Lost,
                _ = self.step_down.notified() => Why::StepDown,
                _ = life.wait_for(|l| l.sealed != state.sealed || !wanted(l)) => Why::Lifecycle,
            };
            self.writable.send_replace(false);
            *self.fence.write().unwrap_or_else(PoisonError::into_inner) = None;
            let held = self.held.lock().await.take();
            *self
                .active_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
            self.leader.send_replace(None);
            match why {
                Why::Lost => {
                    // Demote before anything else: the row may be taken by
                    // another node once it expires. The leases granted end
                    // before it does (see `read_leases`): nothing to tell.
                    self.core.demote();
                    self.grants.close();
                    self.backend.set_fence(None);
                    self.backend.drop_idle_connections();
                    tracing::warn!("HA: lost the lock; this node is a standby now");
                }
                Why::StepDown => {
                    // Stop acting as active and free the lock at once,
                    // without waiting for the backends' cleanup (it runs in
                    // the background): nothing this node does from here on
                    // can write (no fence), and a write already inside its
                    // transaction holds the lock row (`FOR SHARE`) until it
                    // commits, so the release is ordered after it.
                    self.core.demote();
                    self.backend.set_fence(None);
                    self.revoke_read_leases().await;
                    if let Some(held) = held {
                        self.release(held).await;
                    }
                    tracing::info!("HA: stepped down");
                    self.pause_after_step_down().await;
                }
                Why::Lifecycle => {
                    // Sealed (the core stepped down while sealing), or
                    // initialised and sealed after `sys/init`.
                    self.core.step_down().await;
                    self.backend.set_fence(None);
                    self.revoke_read_leases().await;
                    if let Some(held) = held {
                        self.release(held).await;
                    }
                }
            }
        }
    }

    /// After `sys/step-down`, leaves the lock to the other nodes: waits
    /// until one of them holds it, or [`STEP_DOWN_PAUSE`] passes (then no
    /// other node could take it, e.g. a single node, and this one competes
    /// again, as OpenBao does after its own pause). A fixed shorter pause
    /// would let a node that stepped down retake the lock from a standby
    /// that was merely slow to try.
    async fn pause_after_step_down(&self) {
        let mut leader = self.leader.subscribe();
        let other = tokio::time::timeout(STEP_DOWN_PAUSE, leader.wait_for(Option::is_some)).await;
        match other {
            Ok(Ok(_)) => tracing::debug!("HA: another node took the lock after the step-down"),
            _ => tracing::info!(
                "HA: no other node took the lock after the step-down; competing again"
            ),
        }
    }

    /// Loads the standby's read-only state, with the change log's
    /// position taken *before* the load (changes during it are applied
    /// again at the first read, which is harmless). Failures are logged:
    /// reads are then forwarded until a later attempt succeeds.
    async fn enter_standby(&self) {
        tracing::debug!("HA: loading the standby state");
        let mut applied = self.applied.lock().await;
        let top = match self.backend.changes_since(u64::MAX).await {
            Ok(c) => c.top,
            Err(e) => {
                tracing::debug!(error = %e, "HA: change log unavailable; reads are forwarded");
                self.core.drop_standby();
                return;
            }
        };
        // Other nodes wrote while this one was not serving reads.
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        match self.core.load_standby().await {
            Ok(()) => {
                tracing::debug!("HA: standby state loaded");
                *applied = top;
            }
            Err(e) => {
                tracing::debug!(error = %e, "HA: standby state not loaded; reads are forwarded");
            }
        }
    }

    /// Applies the change log after `*applied`: drops the cached entries
    /// of every key changed (storage cache, then the core's state); starts
    /// over from storage when rows are missing (pruned, or a restored
    /// database).
    async fn apply_changes(&self, applied: &mut u64) -> Result<(), Error> {
        loop {
            let changes = self
                .backend
                .changes_since(*applied)
                .await
                .map_err(|_| Error::Standby)?;
            let gap = changes.top < *applied
                || changes
                    .rows
                    .first()
                    .is_some_and(|(seq, _)| *seq != *applied + 1)
                || (changes.rows.is_empty() && changes.top > *applied);
            if gap {
                if let Some(cache) = &self.cache {
                    cache.clear();
                }
                self.core.load_standby().await?;
                *applied = changes.top;
                return Ok(());
            }
            for (seq, keys) in &changes.rows {
                for key in keys {
                    if let Some(cache) = &self.cache {
                        cache.invalidate(key);
                    }
                    self.core.invalidate_standby(key).await?;
                }
                *applied = *seq;
            }
            if *applied >= changes.top {
                return Ok(());
            }
        }
    }

    async fn release(&self, held: HeldLock) {
        if let Err(e) = held.release().await {
            tracing::warn!(error = %e, "could not release the HA lock; it expires by itself");
        }
    }

    /// Keeps [`Coordinator::leader`] current on a standby: reads the lock
    /// row every retry interval.
    async fn leader_watch(self: Arc<Self>) {
        loop {
            if self.core.state() != NodeState::Active {
                self.refresh_leader().await;
            }
            if self.core.state() == NodeState::Standby && !self.core.has_standby_state() {
                // E.g. unsealed before any node was ever active.
                self.enter_standby().await;
            }
            tokio::time::sleep(self.retry).await;
        }
    }

    async fn refresh_leader(&self) {
        match self.lock.leader().await {
            Ok(info) => {
                let advert = info.and_then(|i| serde_json::from_str::<Advert>(&i.value).ok());
                let advert = advert.filter(|a| a.node_id != self.me.node_id);
                self.leader.send_if_modified(|cur| {
                    let changed = *cur != advert;
                    *cur = advert;
                    changed
                });
            }
            Err(e) => tracing::debug!(error = %e, "HA: could not read the lock row"),
        }
    }

    /// A standby reports to the active node every second.
    async fn echo_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(ECHO_INTERVAL).await;
            if self.core.state() != NodeState::Standby {
                continue;
            }
            let Some(leader) = self.leader.borrow().clone() else {
                continue;
            };
            let Ok(client) = self.client_for(&leader).await else {
                continue;
            };
            let url = format!("{}/cluster/echo", cluster_base(&leader.cluster_addr));
            if let Err(e) = client.post(url).json(&self.me).send().await {
                tracing::debug!(error = %e, "HA: echo to the active node failed");
            }
        }
    }

    /// Serves the cluster listener once the cluster's TLS identity is known
    /// (the first unseal reads it, or the first activation makes it).
    async fn serve_cluster(self: Arc<Self>, listener: TcpListener, stop: watch::Receiver<bool>) {
        let mut life = self.core.lifecycle();
        let tls = loop {
            if life.wait_for(|l| !l.sealed).await.is_err() {
                return;
            }
            match self.cluster_tls().await {
                Ok(tls) => break tls.server.clone(),
                // A standby of a cluster whose first active node has not
                // made the identity yet: try again shortly.
                Err(_) => tokio::time::sleep(self.retry).await,
            }
        };
        let api = strongroom_http::router_with(
            self.core.clone(),
            HttpOptions {
                max_request_size: u64::MAX,
                ..HttpOptions::default()
            },
            RouterExtras {
                forward: None,
                cluster: true,
            },
        );
        let echo = axum::Router::new()
            .route("/cluster/echo", axum::routing::post(echo))
            .route("/cluster/lease", axum::routing::post(grant_lease))
            .route("/cluster/invalidate", axum::routing::post(invalidated))
            .with_state(self.clone());
        let app = echo.merge(api);
        let mut stop = stop;
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let limits = ConnLimits {
            max_connections: 4096,
            ..ConnLimits::default()
        };
        if let Err(e) =
            strongroom_http::serve_with(listener, Some(tls), app, limits, shutdown).await
        {
            tracing::error!(error = %e, "cluster listener failed");
        }
    }

    /// The cluster's TLS configuration: read from the barrier (made there
    /// by the first active node).
    async fn cluster_tls(&self) -> Result<&ClusterTlsConfig, Error> {
        self.tls
            .get_or_try_init(|| async {
                let material = self.core.cluster_tls(generate_cluster_tls).await?;
                strongroom_http::cluster_tls(
                    &material.ca_pem,
                    &material.cert_pem,
                    &material.key_pem,
                )
                .map_err(|e| Error::internal(e.to_string()))
            })
            .await
    }

    /// The forwarding client for `leader`'s cluster address (made again
    /// when the leader moves).
    async fn client_for(&self, leader: &Advert) -> Result<reqwest::Client, Error> {
        if let Some((addr, client)) = &*self.client.lock().unwrap_or_else(PoisonError::into_inner) {
            if *addr == leader.cluster_addr {
                return Ok(client.clone());
            }
        }
        let client = self.cluster_client(&leader.cluster_addr).await?;
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((leader.cluster_addr.clone(), client.clone()));
        Ok(client)
    }

    /// A client for the node whose cluster address is `addr` (mutual TLS
    /// with the cluster's identity).
    async fn cluster_client(&self, addr: &str) -> Result<reqwest::Client, Error> {
        let tls = self.cluster_tls().await?;
        let target = resolve(addr)
            .await
            .map_err(|e| Error::Upstream(format!("cluster address {addr:?}: {e}")))?;
        reqwest::Client::builder()
            .use_preconfigured_tls(tls.client.clone())
            .resolve(CLUSTER_SERVER_NAME, target)
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::internal(format!("cluster client: {e}")))
    }

    /// A standby keeps a read lease from the active node (see
    /// [`read_leases`]): asks every [`read_leases::RENEW_EVERY`] while it
    /// serves reads.
    async fn lease_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(read_leases::RENEW_EVERY).await;
            if self.core.state() != NodeState::Standby || !self.core.has_standby_state() {
                self.read_lease.clear();
                continue;
            }
            let Some(leader) = self.leader.borrow().clone() else {
                self.read_lease.clear();
                continue;
            };
            let asked = Instant::now();
            let answer = match self.ask_lease(&leader).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "HA: no read lease from the active node");
                    continue;
                }
            };
            let Some(until) =
                (asked + Duration::from_millis(answer.valid_ms)).checked_sub(read_leases::MARGIN)
            else {
                continue;
            };
            // The same grant, extended: every write since it began was
            // pushed here.
            if self.read_lease.extend(&leader.node_id, answer.grant, until) == Extended::Yes {
                continue;
            }
            // A new grant: writes acknowledged before it may not have been
            // pushed here. Catch up from the change log first (every such
            // write committed before the grant was made).
            let mut applied = self.applied.lock().await;
            match self.apply_changes(&mut applied).await {
                Ok(()) => {
                    if self
                        .read_lease
                        .install(&leader.node_id, answer.grant, until)
                    {
                        tracing::debug!(grant = answer.grant, "HA: read lease granted");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "HA: could not catch up for a read lease"),
            }
        }
    }

    async fn ask_lease(&self, leader: &Advert) -> Result<LeaseAnswer, Error> {
        let client = self.client_for(leader).await?;
        let url = format!("{}/cluster/lease", cluster_base(&leader.cluster_addr));
        let request = LeaseRequest {
            node_id: self.me.node_id.clone(),
            cluster_addr: self.me.cluster_addr.clone(),
        };
        let resp = client
            .post(url)
            .json(&request)
            // The active node may probe this node before answering.
            .timeout(read_leases::PUSH_TIMEOUT * 2)
            .send()
            .await
            .map_err(|e| Error::Upstream(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(Error::Upstream(format!("lease refused: {}", resp.status())));
        }
        resp.json()
            .await
            .map_err(|e| Error::Upstream(format!("lease answer: {e}")))
    }

    /// The active node pushes written keys to every standby holding a
    /// lease and waits for each to confirm; a standby that does not is
    /// revoked and waited out (see [`read_leases`]).
    async fn push_keys(&self, keys: Vec<String>) {
        let live = self.grants.live();
        if live.is_empty() {
            return;
        }
        let pushes = live
            .iter()
            .map(|l| (l.target.clone(), self.push(l.grant, keys.clone(), false)))
            .collect();
        let failed = read_leases::send_all(pushes).await;
        let ends = failed
            .into_iter()
            .filter_map(|i| self.grants.revoke(&live[i].node_id, live[i].grant));
        read_leases::wait_out(ends.max()).await;
    }

    /// Closes the grants and ends every read lease before the lock is
    /// given up on purpose: a standby that does not confirm is waited out.
    async fn revoke_read_leases(&self) {
        let closed = self.grants.close();
        if closed.is_empty() {
            return;
        }
        let pushes = closed
            .iter()
            .map(|(l, _)| (l.target.clone(), self.push(l.grant, Vec::new(), true)))
            .collect();
        let failed = read_leases::send_all(pushes).await;
        read_leases::wait_out(failed.into_iter().map(|i| closed[i].1).max()).await;
    }

    /// A push from this (active) node under `grant`.
    fn push(&self, grant: u64, keys: Vec<String>, revoke: bool) -> Push {
        Push {
            from: self.me.node_id.clone(),
            grant,
            keys,
            revoke,
        }
    }

    /// A standby applies a push: forgets what it cached of the keys (or
    /// ends its lease), under the same lock as the change-log sync.
    async fn apply_push(&self, push: Push) -> Result<(), Error> {
        if push.revoke {
            self.read_lease.revoke(&push.from, push.grant);
            return Ok(());
        }
        let _applied = self.applied.lock().await;
        for key in &push.keys {
            if let Some(cache) = &self.cache {
                cache.invalidate(key);
            }
            if let Err(e) = self.core.invalidate_standby(key).await {
                // Not applied: this node must not serve from its lease.
                self.read_lease.clear();
                return Err(e);
            }
        }
        Ok(())
    }

    /// The active node, waiting up to [`LEADER_WAIT`] for one to be known.
    async fn wait_for_leader(&self) -> Result<Advert, Error> {
        let mut rx = self.leader.subscribe();
        let found = tokio::time::timeout(LEADER_WAIT, rx.wait_for(|l| l.is_some())).await;
        match found {
            Ok(Ok(leader)) => leader
                .clone()
                .ok_or_else(|| Error::Upstream("no active node is known".into())),
            _ => Err(Error::Upstream(
                "local node not active but active cluster node not found".into(),
            )),
        }
    }

    async fn send(
        &self,
        leader: &Advert,
        parts: &http::request::Parts,
        path_and_query: &str,
        body: Bytes,
        client_addr: Option<IpAddr>,
    ) -> Result<reqwest::Response, SendError> {
        let client = self.client_for(leader).await.map_err(|e| SendError {
            unsent: true,
            message: e.to_string(),
        })?;
        let url = format!("{}{path_and_query}", cluster_base(&leader.cluster_addr));
        let mut req = client.request(parts.method.clone(), url);
        for (name, value) in &parts.headers {
            if matches!(
                name.as_str(),
                "host" | "connection" | "content-length" | "transfer-encoding"
            ) || name.as_str() == FORWARDED_FOR_HEADER
            {
                continue;
            }
            req = req.header(name, value);
        }
        if let Some(ip) = client_addr {
            req = req.header(FORWARDED_FOR_HEADER, ip.to_string());
        }
        req.body(body).send().await.map_err(|e| SendError {
            unsent: e.is_connect(),
            message: e.to_string(),
        })
    }

    /// Seals this standby, once the active node confirmed that the token
    /// may (sudo on `sys/seal`).
    async fn seal_standby(
        &self,
        parts: &http::request::Parts,
        client_addr: Option<IpAddr>,
    ) -> Result<http::Response<Body>, Error> {
        let leader = self.wait_for_leader().await?;
        let mut head = http::Request::builder()
            .method(http::Method::POST)
            .uri("/v1/sys/capabilities-self")
            .body(())
            .map_err(Error::internal)?
            .into_parts()
            .0;
        for name in ["x-vault-token", "authorization", "x-vault-namespace"] {
            if let Some(v) = parts.headers.get(name) {
                head.headers.insert(name, v.clone());
            }
        }
        head.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let body = Bytes::from_static(br#"{"paths":["sys/seal"]}"#);
        let resp = self
            .send(
                &leader,
                &head,
                "/v1/sys/capabilities-self",
                body,
                client_addr,
            )
            .await
            .map_err(|e| Error::Upstream(format!("asking the active node: {}", e.message)))?;
        if !resp.status().is_success() {
            return into_response(resp).await;
        }
        let answer: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| Error::Upstream(format!("active node's answer: {e}")))?;
        let caps = answer
            .pointer("/data/sys~1seal")
            .or_else(|| answer.get("sys/seal"))
            .or_else(|| answer.get("capabilities"))
            .and_then(|c| c.as_array())
            .cloned()
            .unwrap_or_default();
        let may = caps.iter().any(|c| c == "sudo" || c == "root");
        if !may {
            return Err(Error::PermissionDenied);
        }
        self.core.seal().await;
        let mut resp = http::Response::new(Body::empty());
        *resp.status_mut() = http::StatusCode::NO_CONTENT;
        Ok(resp)
    }
}

/// A forward that failed.
struct SendError {
    /// The request never reached the active node (safe to send again).
    unsent: bool,
    message: String,
}

/// `https://host:port` without a trailing slash.
fn cluster_base(addr: &str) -> String {
    let addr = addr.trim_end_matches('/');
    let rest = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .unwrap_or(addr);
    let port = rest.rsplit_once(':').map(|(_, p)| p).unwrap_or("8201");
    format!("https://{CLUSTER_SERVER_NAME}:{port}")
}

/// The socket address of a cluster URL (`https://host:port`).
async fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    let rest = addr
        .trim_end_matches('/')
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .unwrap_or(addr);
    tokio::net::lookup_host(rest)
        .await
        .with_context(|| format!("resolving {rest}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{rest} resolves to no address"))
}

/// Makes the cluster's TLS identity (first activation only): a CA and
/// one certificate for [`CLUSTER_SERVER_NAME`], good for serving and for
/// client authentication.
fn generate_cluster_tls() -> Result<ClusterTls, Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    let err = |e: rcgen::Error| Error::internal(format!("generating the cluster certificate: {e}"));
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "strongroom-cluster-ca");
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(vec![CLUSTER_SERVER_NAME.to_string()]).map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, CLUSTER_SERVER_NAME);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(err)?;
    Ok(ClusterTls {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
    })
}

/// The active node records a standby's report.
async fn echo(
    axum::extract::State(coord): axum::extract::State<Arc<Coordinator>>,
    axum::Json(advert): axum::Json<Advert>,
) -> http::StatusCode {
    coord
        .echoes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(advert.node_id.clone(), (advert, SystemTime::now()));
    http::StatusCode::NO_CONTENT
}

/// The active node grants (or extends) a standby's read lease, never
/// beyond what remains of its own lock.
async fn grant_lease(
    axum::extract::State(coord): axum::extract::State<Arc<Coordinator>>,
    axum::Json(req): axum::Json<LeaseRequest>,
) -> Result<axum::Json<LeaseAnswer>, http::StatusCode> {
    let unavailable = http::StatusCode::SERVICE_UNAVAILABLE;
    if coord.core.state() != NodeState::Active {
        return Err(unavailable);
    }
    let remaining = coord
        .fence
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(strongroom_postgres::Fence::remaining)
        .ok_or(unavailable)?;
    let validity = read_leases::LEASE.min(remaining);
    if validity < read_leases::MIN_LEASE {
        return Err(unavailable);
    }
    if let Some(answer) = coord.grants.extend(&req.node_id, validity) {
        return Ok(axum::Json(answer));
    }
    // A new grant only to a standby this node can reach: one it cannot
    // would cost every write the push timeout and the rest of its lease.
    let client = coord
        .cluster_client(&req.cluster_addr)
        .await
        .map_err(|_| unavailable)?;
    let target = Target {
        client,
        base: cluster_base(&req.cluster_addr),
    };
    let probe = coord.push(0, Vec::new(), false);
    if !read_leases::send(&target, &probe).await {
        return Err(unavailable);
    }
    // Counted from now, after the probe: still within the lock's deadline
    // (the standby counts from before it asked).
    coord
        .grants
        .grant(&req.node_id, validity, || target)
        .map(axum::Json)
        .ok_or(unavailable)
}

/// A standby applies what the active node pushed, and confirms.
async fn invalidated(
    axum::extract::State(coord): axum::extract::State<Arc<Coordinator>>,
    axum::Json(push): axum::Json<Push>,
) -> http::StatusCode {
    match coord.apply_push(push).await {
        Ok(()) => http::StatusCode::NO_CONTENT,
        Err(e) => {
            tracing::warn!(error = %e, "HA: could not apply a read-lease push");
            http::StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// The coordinator as the PostgreSQL writer's commit observer (weak: the
/// backend must not keep the coordinator alive).
struct Pusher(Weak<Coordinator>);

#[async_trait::async_trait]
impl CommitObserver for Pusher {
    async fn committed(&self, keys: Vec<String>) {
        if let Some(coord) = self.0.upgrade() {
            coord.push_keys(keys).await;
        }
    }
}

/// The active node's answer, passed on unchanged (status, headers, body).
async fn into_response(resp: reqwest::Response) -> Result<http::Response<Body>, Error> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Error::Upstream(format!("reading the active node's answer: {e}")))?;
    let mut out = http::Response::new(Body::from(body));
    *out.status_mut() = status;
    for (name, value) in &headers {
        if matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "content-length"
        ) {
            continue;
        }
        out.headers_mut().append(name, value.clone());
    }
    Ok(out)
}

/// The `/v1/` path without the prefix and trailing slashes.
fn api_path(parts: &http::request::Parts) -> &str {
    parts
        .uri
        .path()
        .strip_prefix("/v1/")
        .unwrap_or("")
        .trim_end_matches('/')
}

/// Endpoints a standby answers itself: they describe this node.
fn node_local(path: &str) -> bool {
    matches!(
        path,
        "sys/health" | "sys/seal-status" | "sys/init" | "sys/unseal" | "sys/leader"
    )
}

#[async_trait::async_trait]
impl Forward for Coordinator {
    fn decide(&self, parts: &http::request::Parts) -> Decision {
        if self.core.state() != NodeState::Standby {
            return Decision::Local;
        }
        let path = api_path(parts);
        if node_local(path) {
            return Decision::Local;
        }
        let redirect = if parts.headers.contains_key(NO_FORWARDING_HEADER) && path != "sys/seal" {
            self.leader.borrow().as_ref().map(|leader| {
                let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                format!("{}{pq}", leader.api_addr.trim_end_matches('/'))
            })
        } else {
            None
        };
        // Reads are answered here when the standby can (see
        // `Core::serving_standby`); the rest goes to the active node.
        // `sys/` stays with the active node: its answers describe the
        // cluster (mounts, leases, rekey progress, key status), which only
        // the active node knows first-hand.
        if matches!(parts.method.as_str(), "GET" | "HEAD" | "LIST" | "SCAN")
            && !path.starts_with("sys/")
        {
            return Decision::TryLocal { redirect };
        }
        match redirect {
            Some(location) => Decision::Redirect(location),
            None => Decision::Forward,
        }
    }

    async fn forward(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        client_addr: Option<IpAddr>,
    ) -> Result<http::Response<Body>, Error> {
        if api_path(parts) == "sys/seal"
            && matches!(parts.method, http::Method::PUT | http::Method::POST)
        {
            return self.seal_standby(parts, client_addr).await;
        }
        let pq = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let mut leader = self.wait_for_leader().await?;
        let mut last = None;
        for attempt in 0..2 {
            match self
                .send(&leader, parts, &pq, body.clone(), client_addr)
                .await
            {
                Ok(resp) => return into_response(resp).await,
                // Only a request that never reached the active node is
                // sent again (to the node the lock row names now).
                Err(e) if e.unsent && attempt == 0 => {
                    last = Some(e.message);
                    self.refresh_leader().await;
                    leader = self.wait_for_leader().await?;
                }
                Err(e) => {
                    last = Some(e.message);
                    break;
                }
            }
        }
        Err(Error::Upstream(format!(
            "forwarding to the active node failed: {}",
            last.unwrap_or_default()
        )))
    }
}

#[async_trait::async_trait]
impl HaControl for Coordinator {
    fn lease_valid(&self) -> bool {
        self.fence
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(strongroom_postgres::Fence::is_held)
    }

    async fn sync_reads(&self) -> Result<(), Error> {
        // Under a read lease every acknowledged write was pushed here
        // already (see `read_leases`).
        if self.read_lease.valid() {
            return Ok(());
        }
        // Reads arriving together share one query: a sync that *started*
        // after this read arrived has seen every change acknowledged
        // before it (see `strongroom_postgres::changes`).
        let arrived = self.syncs_started.load(Ordering::Acquire);
        let mut applied = self.applied.lock().await;
        if self.syncs_finished.load(Ordering::Acquire) > arrived {
            return Ok(());
        }
        let number = self.syncs_started.fetch_add(1, Ordering::AcqRel) + 1;
        let outcome = self.apply_changes(&mut applied).await;
        self.syncs_finished.store(number, Ordering::Release);
        outcome
    }

    async fn wait_writable(&self, limit: Duration) -> bool {
        let mut rx = self.writable.subscribe();
        let outcome = tokio::time::timeout(limit, rx.wait_for(|w| *w))
            .await
            .map(|r| r.is_ok());
        outcome.unwrap_or(false)
    }

    fn leader(&self) -> LeaderStatus {
        let is_self = self.core.state() == NodeState::Active;
        let leader = if is_self {
            Some(self.me.clone())
        } else {
            self.leader.borrow().clone()
        };
        LeaderStatus {
            is_self,
            leader_address: leader
                .as_ref()
                .map(|l| l.api_addr.clone())
                .unwrap_or_default(),
            leader_cluster_address: leader.map(|l| l.cluster_addr).unwrap_or_default(),
            active_time: if is_self {
                *self
                    .active_since
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            } else {
                None
            },
        }
    }

    fn nodes(&self) -> Vec<HaNodeStatus> {
        let version = env!("CARGO_PKG_VERSION").to_string();
        let mut nodes = vec![HaNodeStatus {
            hostname: self.me.hostname.clone(),
            api_address: self.me.api_addr.clone(),
            cluster_address: self.me.cluster_addr.clone(),
            active_node: true,
            last_echo: None,
            version: version.clone(),
        }];
        let now = SystemTime::now();
        let echoes = self.echoes.lock().unwrap_or_else(PoisonError::into_inner);
        let standbys = echoes
            .values()
            .filter(|(_, at)| now.duration_since(*at).unwrap_or_default() < ECHO_FORGET);
        nodes.extend(standbys.map(|(a, at)| HaNodeStatus {
            hostname: a.hostname.clone(),
            api_address: a.api_addr.clone(),
            cluster_address: a.cluster_addr.clone(),
            active_node: false,
            last_echo: Some(*at),
            version: version.clone(),
        }));
        // OpenBao lists them by API address.
        nodes.sort_by(|a, b| a.api_address.cmp(&b.api_address));
        nodes
    }

    fn step_down(&self) {
        self.step_down.notify_one();
    }
}
