//! High availability as the core sees it.
//!
//! With HA storage several nodes share one storage; the node holding the
//! storage's lock is active, the others are unsealed standbys. The lock
//! itself, the cluster listener and forwarding live outside the core (the
//! server's HA coordinator); the core owns:
//! - the switch that keeps an HA node from activating on unseal
//!   ([`CoreConfig::ha_enabled`](super::CoreConfig)): the coordinator
//!   activates it once it holds the lock;
//! - the lifecycle signal the coordinator follows ([`Core::lifecycle`]):
//!   initialised or not, sealed or not;
//! - an immediate demotion ([`Core::demote`]) for a node that lost the
//!   lock: it stops answering as active at once, without waiting for an
//!   administrative operation in flight;
//! - the cluster's TLS identity, kept in the barrier ([`Core::cluster_tls`]);
//! - the [`HaControl`] the `sys/leader`, `sys/ha-status` and
//!   `sys/step-down` handlers ask.

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Core;
use strongroom_sdk::{Error, Result};

/// The barrier key of the cluster's TLS identity.
const CLUSTER_TLS_KEY: &str = "core/cluster/tls";

/// Where a node is, as the HA coordinator needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// The barrier has been initialised.
    pub initialized: bool,
    /// No keys in memory.
    pub sealed: bool,
}

/// The active node as a node sees it (`sys/leader`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderStatus {
    /// This node is the active one.
    pub is_self: bool,
    /// The active node's `api_addr` (empty when none is known).
    pub leader_address: String,
    /// The active node's cluster address (empty when none is known).
    pub leader_cluster_address: String,
    /// When this node became active (only when `is_self`).
    pub active_time: Option<SystemTime>,
}

/// One node of the cluster (`sys/ha-status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaNodeStatus {
    /// The node's host name.
    pub hostname: String,
    /// Its `api_addr`.
    pub api_address: String,
    /// Its cluster address.
    pub cluster_address: String,
    /// Whether it is the active node.
    pub active_node: bool,
    /// When a standby last reported to the active node.
    pub last_echo: Option<SystemTime>,
    /// Its version.
    pub version: String,
}

/// What the core and the system backend ask the HA coordinator.
#[async_trait::async_trait]
pub trait HaControl: Send + Sync {
    /// Waits (at most `limit`) until this node holds the lock and the
    /// storage accepts its writes; whether it does.
    async fn wait_writable(&self, limit: std::time::Duration) -> bool;
    /// A standby about to serve a read: applies (invalidates) every change
    /// the active node committed before this call; an error when the
    /// storage cannot tell (the read is then forwarded).
    async fn sync_reads(&self) -> Result<()>;
    /// Whether this node's hold on the lock is still valid by its local
    /// deadline (no I/O): checked on every request of an active node, so
    /// that it stops acting as active the moment the deadline passes,
    /// however late the coordinator's task gets to run.
    fn lease_valid(&self) -> bool;
    /// The active node as this node knows it.
    fn leader(&self) -> LeaderStatus;
    /// The active node and the standbys it heard from recently.
    fn nodes(&self) -> Vec<HaNodeStatus>;
    /// Gives up the lock (an active node): another node takes over, and
    /// this one competes again after a pause.
    fn step_down(&self);
}

/// The cluster's TLS identity: a CA of its own and one node certificate
/// it signed, with the certificate's key, made by the first active node
/// and kept in the barrier, so that every unsealed node can present it and
/// verify its peers with it. (The CA's key is not kept.)
#[derive(Clone, Serialize, Deserialize)]
pub struct ClusterTls {
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The node certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PKCS#8 PEM).
    pub key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls").finish_non_exhaustive()
    }
}

impl Core {
    /// Installs the HA coordinator's control (once, at start).
    pub fn set_ha(&self, control: Arc<dyn HaControl>) {
        if self.ha.set(control).is_err() {
            tracing::warn!("core: the HA control was already set; keeping the first");
        }
    }

    /// Records where this node is reached (its effective `api_addr` and
    /// cluster address), for `sys/ha-status` on a single node; set once by
    /// the server after binding its listeners.
    pub fn set_advertised(&self, api_addr: String, cluster_addr: String) {
        let _ = self.advertised.set((api_addr, cluster_addr));
    }

    /// This node as `sys/ha-status` lists a single node (no HA): active,
    /// at its advertised addresses.
    pub fn single_node(&self) -> HaNodeStatus {
        let (api, cluster) = self.advertised.get().cloned().unwrap_or_default();
        HaNodeStatus {
            hostname: hostname(),
            api_address: api,
            cluster_address: cluster,
            active_node: true,
            last_echo: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// The HA coordinator's control, when HA is configured.
    pub fn ha(&self) -> Option<&Arc<dyn HaControl>> {
        self.ha.get()
    }

    /// The node's lifecycle, updated at every init, unseal and seal.
    pub fn lifecycle(&self) -> tokio::sync::watch::Receiver<Lifecycle> {
        self.lifecycle.subscribe()
    }

    /// Reads the lifecycle from the node and publishes it if it changed
    /// (the core does so after init, unseal and seal; the coordinator once
    /// at start).
    pub async fn publish_lifecycle(&self) {
        let sealed = self.is_sealed();
        let initialized = !sealed || self.barrier.initialized().await.unwrap_or(false);
        self.lifecycle.send_if_modified(|l| {
            let next = Lifecycle {
                initialized,
                sealed,
            };
            let changed = *l != next;
            *l = next;
            changed
        });
    }

    /// The read-only state a standby serves `ctx` from: reads only
    /// (`read`, `list`, no response wrapping), once the coordinator has
    /// applied every change committed before the call
    /// ([`HaControl::sync_reads`]). Anything else is [`Error::Standby`]
    /// (forwarded by the HTTP layer).
    pub(crate) async fn serving_standby(
        &self,
        ctx: &crate::pipeline::RequestCtx,
    ) -> Result<Arc<super::Active>> {
        use strongroom_sdk::logical::Operation;
        let read = matches!(
            ctx.operation,
            Operation::Read | Operation::List | Operation::Scan
        );
        let (Some(ha), true, None) = (self.ha(), read, ctx.wrap_ttl) else {
            return Err(Error::Standby);
        };
        // With audit devices, every request goes to the active node, which
        // records it: a standby has no devices open.
        if self.standby.load().is_none() || self.audit.standby_forwards() {
            return Err(Error::Standby);
        }
        ha.sync_reads().await?;
        self.standby.load_full().ok_or(Error::Standby)
    }

    /// Stops acting as active at once (the HA lock is lost or about to
    /// be): requests see a standby from now on and the gate refuses
    /// writes; the backends' cleanup and the background tasks are stopped
    /// in the background. Unlike [`Core::step_down`] this does not wait
    /// for an administrative operation in flight (which may be stuck on
    /// the very storage link that was lost); such an operation keeps its
    /// handle on the old state, and its writes are refused.
    pub fn demote(&self) {
        self.gate.set_writable(false);
        if let Some(active) = self.active.swap(None) {
            tracing::warn!("core: demoted to standby");
            tokio::spawn(async move { active.stop().await });
        }
    }

    /// The cluster's TLS identity: read from the barrier, or on the active
    /// node made with `generate` and stored when there is none yet.
    pub async fn cluster_tls(
        &self,
        generate: impl FnOnce() -> Result<ClusterTls>,
    ) -> Result<ClusterTls> {
        if let Some(tls) = self.read_json::<ClusterTls>(CLUSTER_TLS_KEY).await? {
            return Ok(tls);
        }
        if !self.gate.is_writable() {
            return Err(Error::Standby);
        }
        let _admin = self.admin.lock().await;
        if let Some(tls) = self.read_json::<ClusterTls>(CLUSTER_TLS_KEY).await? {
            return Ok(tls);
        }
        let tls = generate()?;
        let bytes = Zeroizing::new(super::json_bytes(&tls)?);
        self.view("").put(CLUSTER_TLS_KEY, &bytes).await?;
        Ok(tls)
    }
}

/// This machine's host name, from the kernel (as OpenBao's `os.Hostname`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}
