//! The [`Core`]: the node and its state machine.
//!
//! A node is [`Sealed`](NodeState::Sealed) (no keys in memory),
//! [`Standby`](NodeState::Standby) (keys in memory, serving nothing and
//! writing nothing), or [`Active`](NodeState::Active) (mounts, policies
//! and tokens loaded, expiration running, the only state that writes).
//! Unsealing makes the keys available; activation is a separate step. A
//! single node activates right after unsealing; with HA a coordinator will
//! decide when.
//!
//! Modules, in the order of a node's life:
//! - [`seal`]: initialise, unseal with Shamir shares, seal;
//! - [`activation`]: Standby → Active (and back): load the tables, policies
//!   and tokens, start expiration and the backends' periodic work;
//! - [`gate`]: the one place that refuses writes unless active;
//! - [`ha`]: what the HA coordinator and the `sys/` HA endpoints need:
//!   the lifecycle signal, demotion, the cluster's TLS identity;
//! - [`mounts`]: the mount tables and the routes built from them;
//! - [`identity`]: the `identity/` mount and identity store of each
//!   namespace;
//! - [`tenant`]: each namespace's serving state and the registry that
//!   resolves a request's namespace; [`namespaces`]: creating, changing,
//!   locking and deleting namespaces;
//! - [`revocation`]: revoking tokens, token trees and leases, and the reaper;
//! - [`rootgen`] and [`rekey`]: generating a root token and replacing the
//!   unseal key, each with a quorum of unseal key shares;
//! - [`pgp`]: PGP encryption of the shares and root tokens handed out.
//!
//! The request path is in [`crate::pipeline`].

pub mod activation;
pub mod gate;
pub mod ha;
pub mod identity;
pub mod mounts;
pub mod namespaces;
pub mod pgp;
pub mod rekey;
pub mod revocation;
pub mod rootgen;
pub mod seal;
pub mod tenant;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::mount::SystemTtls;
use crate::pipeline::{AuditHook, NoAudit, NoObserver, Observer};
use crate::{sys, token};
use gate::Gate;
use strongroom_barrier::Barrier;
use strongroom_sdk::framework::{LogicalBackend, MountContext};
use strongroom_sdk::registry::Registry;
use strongroom_sdk::storage::Backend as Physical;
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};

pub use activation::{Active, ClusterInfo};
pub use mounts::Tune;
pub use revocation::clear_view;

/// The physical key of the plaintext seal configuration.
pub const SEAL_CONFIG_KEY: &str = "core/seal-config";

/// How often the backends' `periodic` hooks run on an active node.
pub const DEFAULT_PERIODIC_INTERVAL: Duration = Duration::from_secs(60);

/// Server-wide settings the core needs.
#[derive(Debug, Clone, Default)]
pub struct CoreConfig {
    /// System lease TTLs.
    pub ttls: SystemTtls,
    /// Configured cluster name; generated when absent.
    pub cluster_name: Option<String>,
    /// The storage type shown by seal-status (`inmem`, `redb`).
    pub storage_type: String,
    /// The advertised API address.
    pub api_addr: Option<String>,
    /// How often backends' `periodic` hooks run (default: a minute).
    pub periodic_interval: Option<Duration>,
    /// HA storage: unsealing leaves the node a standby; the HA coordinator
    /// activates it when it holds the lock (see [`ha`]).
    pub ha_enabled: bool,
    /// Audit devices declared in the config file and the audit flags.
    pub audit: crate::audit::AuditSettings,
}

/// The plaintext seal configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealConfig {
    /// Always `shamir` for now.
    #[serde(rename = "type")]
    pub kind: String,
    /// Number of key shares.
    pub secret_shares: usize,
    /// Shares needed to unseal.
    pub secret_threshold: usize,
}

/// What `initialize` hands back once: the key shares and the root token.
pub struct InitOutput {
    /// The unseal key shares (the key itself when there is one share), or
    /// with `pgp_keys` the binary OpenPGP messages that carry them.
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// The initial root token, or with `root_token_pgp_key` the base64 of
    /// the OpenPGP message that carries it.
    pub root_token: Zeroizing<String>,
}

/// Parameters of `initialize`.
#[derive(Debug, Clone)]
pub struct InitParams {
    /// Number of key shares.
    pub secret_shares: usize,
    /// Shares needed to unseal.
    pub secret_threshold: usize,
    /// Fixed root token id (dev mode), else generated.
    pub root_token_id: Option<String>,
    /// Dev mode: the root token is made as `auth/token/create` makes
    /// tokens (OpenBao's dev server does so), not as `sys/init` does.
    pub dev: bool,
    /// Base64 binary PGP public keys, one per share, to encrypt the shares
    /// to (empty: the shares are handed out plain).
    pub pgp_keys: Vec<String>,
    /// A base64 binary PGP public key to encrypt the root token to.
    pub root_token_pgp_key: Option<String>,
}

/// Where the node is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// No keys in memory: only the seal-free `sys/` paths answer.
    Sealed,
    /// Keys in memory, nothing loaded: reads only, no writes, and no
    /// request but the seal-free ones (until HA forwards them).
    Standby,
    /// Serving: the only state that writes to storage.
    Active,
}

impl NodeState {
    /// The name shown in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Sealed => "sealed",
            NodeState::Standby => "standby",
            NodeState::Active => "active",
        }
    }
}

/// The observers of the request pipeline: the audit hooks and the metrics
/// observer. Swapped whole, so a request sees one consistent set.
pub struct PipelineHooks {
    /// Called after authorisation and once the response is final.
    pub audit: Arc<dyn AuditHook>,
    /// Told each stage's timing and each request's outcome.
    pub observer: Arc<dyn Observer>,
}

impl Default for PipelineHooks {
    fn default() -> Self {
        PipelineHooks {
            audit: Arc::new(NoAudit),
            observer: Arc::new(NoObserver),
        }
    }
}

/// The server core.
pub struct Core {
    physical: Arc<dyn Physical>,
    barrier: Arc<Barrier>,
    gate: Arc<Gate>,
    config: CoreConfig,
    registry: Registry,
    active: ArcSwapOption<Active>,
    /// An HA standby's read-only state (see `activation::load_standby`).
    standby: ArcSwapOption<Active>,
    hooks: ArcSwap<PipelineHooks>,
    audit: Arc<crate::audit::Audit>,
    progress: tokio::sync::Mutex<seal::UnsealProgress>,
    /// The root token generation in progress (locked after `admin` when both are).
    root_gen: tokio::sync::Mutex<Option<rootgen::RootGeneration>>,
    /// The rekey in progress (locked after `admin`).
    rekey: tokio::sync::Mutex<Option<rekey::Rekey>>,
    /// Serialises the state transitions (init, unseal, activation, seal).
    admin: tokio::sync::Mutex<()>,
    /// The HA coordinator's control (HA storage only).
    ha: std::sync::OnceLock<Arc<dyn ha::HaControl>>,
    /// This node's effective API and cluster addresses (see
    /// `ha::Core::set_advertised`).
    advertised: std::sync::OnceLock<(String, String)>,
    /// Initialised / sealed, for the HA coordinator.
    lifecycle: tokio::sync::watch::Sender<ha::Lifecycle>,
    sys: Arc<dyn LogicalBackend>,
    token: Arc<dyn LogicalBackend>,
    sys_view: View,
    sys_mount: Arc<MountContext>,
    /// The requests being answered (`sys/in-flight-req`).
    in_flight: crate::telemetry::InFlightRequests,
    /// What renders `sys/metrics`, once the binary installed its recorder.
    metrics: std::sync::OnceLock<Arc<dyn strongroom_telemetry::Render>>,
    weak: Weak<Core>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

fn json_bytes<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(Error::internal)
}

impl Core {
    /// A core over `physical` storage; sealed (and maybe uninitialised).
    pub fn new(physical: Arc<dyn Physical>, config: CoreConfig, registry: Registry) -> Arc<Core> {
        let barrier = Arc::new(Barrier::new(physical.clone()));
        let gate = Arc::new(Gate::new(barrier.clone()));
        let sys_view = gate.view("sys/");
        let audit = Arc::new(crate::audit::Audit::new(config.audit.clone()));
        Arc::new_cyclic(|weak: &Weak<Core>| Core {
            physical,
            barrier,
            gate,
            config,
            registry,
            active: ArcSwapOption::empty(),
            standby: ArcSwapOption::empty(),
            hooks: ArcSwap::from_pointee(PipelineHooks {
                audit: Arc::new(crate::audit::CoreAuditHook::new(
                    audit.clone(),
                    weak.clone(),
                )),
                observer: Arc::new(NoObserver),
            }),
            audit,
            progress: tokio::sync::Mutex::new(seal::UnsealProgress::default()),
            root_gen: tokio::sync::Mutex::new(None),
            rekey: tokio::sync::Mutex::new(None),
            admin: tokio::sync::Mutex::new(()),
            ha: std::sync::OnceLock::new(),
            advertised: std::sync::OnceLock::new(),
            lifecycle: tokio::sync::watch::Sender::new(ha::Lifecycle {
                initialized: false,
                sealed: true,
            }),
            sys: Arc::new(sys::backend(weak.clone())),
            token: Arc::new(token::backend::backend(weak.clone())),
            weak: weak.clone(),
            in_flight: Default::default(),
            metrics: std::sync::OnceLock::new(),
            sys_view,
            sys_mount: Arc::new(MountContext {
                path: "sys/".into(),
                kind: "system".into(),
                ..Default::default()
            }),
        })
    }

    /// The server settings.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// The barrier (for key status and rotation).
    pub fn barrier(&self) -> &Arc<Barrier> {
        &self.barrier
    }

    /// The node's state.
    pub fn state(&self) -> NodeState {
        if self.barrier.is_sealed() {
            NodeState::Sealed
        } else if self.active.load().is_some() && self.lease_valid() {
            NodeState::Active
        } else {
            NodeState::Standby
        }
    }

    /// Whether the core is sealed (no keys in memory).
    pub fn is_sealed(&self) -> bool {
        self.barrier.is_sealed()
    }

    /// The active state, or `Error::Sealed` (sealed) / `Error::Standby`
    /// (keys present, not active).
    pub fn active(&self) -> Result<Arc<Active>> {
        match self.active.load_full() {
            Some(active) if self.lease_valid() => Ok(active),
            Some(_) => Err(Error::Standby),
            None if self.barrier.is_sealed() => Err(Error::Sealed),
            None => Err(Error::Standby),
        }
    }

    /// With HA, whether the lock is still held by its local deadline
    /// (see [`ha::HaControl::lease_valid`]); always true without HA.
    fn lease_valid(&self) -> bool {
        self.ha.get().is_none_or(|ha| ha.lease_valid())
    }

    /// Audit: its devices, salts and audited headers.
    pub fn audit(&self) -> &Arc<crate::audit::Audit> {
        &self.audit
    }

    /// Replaces the pipeline's audit hook and metrics observer.
    pub fn set_pipeline_hooks(&self, hooks: PipelineHooks) {
        self.hooks.store(Arc::new(hooks));
    }

    /// The requests being answered.
    pub fn in_flight(&self) -> &crate::telemetry::InFlightRequests {
        &self.in_flight
    }

    /// What renders `sys/metrics` (set by [`Core::set_metrics`]).
    pub(crate) fn metrics_render(
        &self,
    ) -> &std::sync::OnceLock<Arc<dyn strongroom_telemetry::Render>> {
        &self.metrics
    }

    /// The pipeline's current audit hook and observer.
    pub(crate) fn pipeline_hooks(&self) -> Arc<PipelineHooks> {
        self.hooks.load_full()
    }

    /// The system backend, its storage and context (for the seal-free
    /// paths, answered outside the mount table).
    pub(crate) fn system_backend(&self) -> (Arc<dyn LogicalBackend>, View, Arc<MountContext>) {
        (
            self.sys.clone(),
            self.sys_view.clone(),
            self.sys_mount.clone(),
        )
    }

    /// A view of the node's (gated) storage under `prefix`.
    pub(crate) fn view(&self, prefix: &str) -> View {
        self.gate.view(prefix)
    }

    /// Whether the barrier has been initialised.
    pub async fn is_initialized(&self) -> Result<bool> {
        // An unsealed core is initialised: skip the storage read (this is
        // on the path of every health check).
        if !self.is_sealed() {
            return Ok(true);
        }
        Ok(self.barrier.initialized().await?)
    }

    /// The stored seal configuration.
    pub async fn seal_config(&self) -> Result<Option<SealConfig>> {
        match self.physical.get(SEAL_CONFIG_KEY).await? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::internal(format!("corrupt seal configuration: {e}"))),
        }
    }
}
