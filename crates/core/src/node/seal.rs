//! Initialising and sealing: the Shamir split of a new unseal key, unseal
//! progress share by share, and sealing (which steps down first).

use base64::Engine as _;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::mounts::default_tables;
use super::pgp::{self, PgpKey};
use super::{json_bytes, Core, InitOutput, InitParams, SealConfig, SEAL_CONFIG_KEY};
use crate::mount::{MountConfig, Table};
use strongroom_barrier::{shamir, Barrier, BarrierError};
use strongroom_sdk::{Error, Result};

/// How long `sys/init` waits for this node to hold the HA lock.
const INIT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The shares given so far towards the threshold.
#[derive(Default)]
pub(crate) struct UnsealProgress {
    shares: Vec<Zeroizing<Vec<u8>>>,
    nonce: String,
}

impl Core {
    /// Unseal progress: (shares given, nonce).
    pub async fn unseal_progress(&self) -> (usize, String) {
        let p = self.progress.lock().await;
        (p.shares.len(), p.nonce.clone())
    }
    /// Initialises the server: generates the unseal key and its shares, the
    /// root key and keyring, the default mounts and a root token. Leaves the
    /// core sealed, as OpenBao does.
    pub async fn initialize(&self, params: InitParams) -> Result<InitOutput> {
        let (shares, threshold) = (params.secret_shares, params.secret_threshold);
        if shares == 0 || shares > 255 {
            return Err(Error::bad_request(
                "invalid seal configuration: secret shares must be between 1 and 255",
            ));
        }
        if threshold > shares {
            return Err(Error::bad_request(
                "invalid seal configuration: threshold cannot be larger than shares",
            ));
        }
        if shares > 1 && threshold < 2 {
            return Err(Error::bad_request(
                "invalid seal configuration: threshold must be greater than one for multiple shares",
            ));
        }
        if threshold == 0 {
            return Err(Error::bad_request(
                "invalid seal configuration: threshold must be at least one",
            ));
        }
        if !params.pgp_keys.is_empty() && params.pgp_keys.len() != shares {
            return Err(Error::bad_request(
                "invalid seal configuration: count mismatch between number of provided PGP keys and number of shares",
            ));
        }
        let share_keys = pgp::parse_keys(&params.pgp_keys)
            .map_err(|e| Error::bad_request(format!("invalid seal configuration: {e}")))?;
        // Checked here, before anything is stored: OpenBao parses this key
        // only once the server is initialised, so a bad one leaves it
        // initialised with the shares and the root token lost.
        let token_key = match params.root_token_pgp_key.as_deref() {
            Some(k) if !k.is_empty() => Some(PgpKey::parse(k)?),
            _ => None,
        };
        if self.barrier.initialized().await? {
            return Err(Error::bad_request("Vault is already initialized"));
        }
        if let Some(ha) = self.ha() {
            // With HA storage only the lock holder may write; a node of an
            // uninitialised cluster takes the lock within a retry interval
            // of starting.
            if !ha.wait_writable(INIT_LOCK_WAIT).await {
                return Err(Error::bad_request(
                    "another node holds the HA lock: initialize the cluster through that node",
                ));
            }
        }
        let _admin = self.admin.lock().await;
        if self.barrier.initialized().await? {
            return Err(Error::bad_request("Vault is already initialized"));
        }
        let unseal_key = Barrier::generate_key();
        let keys = if shares == 1 {
            vec![unseal_key.clone()]
        } else {
            shamir::split(&unseal_key, shares, threshold)
                .map_err(|e| Error::internal(format!("splitting the unseal key: {e}")))?
        };
        let handed_out = if share_keys.is_empty() {
            keys
        } else {
            pgp::encrypt_shares(&keys, &share_keys)?
                .into_iter()
                .map(Zeroizing::new)
                .collect()
        };
        self.barrier.initialize(&unseal_key).await?;
        let seal = SealConfig {
            kind: "shamir".into(),
            secret_shares: shares,
            secret_threshold: threshold,
        };
        self.physical
            .put(SEAL_CONFIG_KEY, json_bytes(&seal)?)
            .await?;
        self.barrier.unseal(&unseal_key).await?;
        let tables = default_tables(true);
        // Initialisation is the active node's work: the gate opens for the
        // default tables, the activation that follows, and the root token.
        self.gate.set_writable(true);
        let active = match self.persist_tables("", &tables).await {
            Ok(()) => self.activate_locked().await,
            Err(e) => Err(e),
        };
        let active = match active {
            Ok(active) => active,
            Err(e) => {
                self.seal_locked().await;
                return Err(e);
            }
        };
        let root = Zeroizing::new(
            active
                .tokens
                .create_root(params.root_token_id.as_deref(), params.dev)
                .await?,
        );
        self.seal_locked().await;
        let root_token = match token_key {
            Some(key) => Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(key.encrypt(root.as_bytes())?),
            ),
            None => root,
        };
        self.publish_lifecycle().await;
        Ok(InitOutput {
            keys: handed_out,
            root_token,
        })
    }

    /// Dev mode: initialise with one share, unseal, and mount `secret/` as
    /// KV version 2, as OpenBao does.
    pub async fn init_dev(&self, root_token_id: Option<String>) -> Result<InitOutput> {
        let out = self
            .initialize(InitParams {
                secret_shares: 1,
                secret_threshold: 1,
                root_token_id,
                dev: true,
                pgp_keys: Vec::new(),
                root_token_pgp_key: None,
            })
            .await?;
        self.submit_unseal_key(out.keys[0].clone()).await?;
        let mut options = Map::new();
        options.insert("version".into(), Value::from("2"));
        let active = self.active()?;
        self.mount(
            active.root(),
            Table::Mounts,
            "secret",
            "kv",
            "key/value secret storage",
            MountConfig::default(),
            Some(options),
        )
        .await?;
        Ok(out)
    }

    /// Adds one unseal key share; unseals when the threshold is reached.
    /// A wrong key (the root key does not decrypt) resets the progress.
    pub async fn submit_unseal_key(&self, key: Zeroizing<Vec<u8>>) -> Result<()> {
        let config = self
            .seal_config()
            .await?
            .ok_or_else(|| Error::bad_request("Vault is not initialized"))?;
        let mut progress = self.progress.lock().await;
        if !self.is_sealed() {
            return Ok(());
        }
        if progress
            .shares
            .iter()
            .any(|s| bool::from(s.as_slice().ct_eq(key.as_slice())))
        {
            return Ok(());
        }
        if progress.shares.is_empty() {
            progress.nonce = uuid::Uuid::new_v4().to_string();
        }
        progress.shares.push(key);
        if progress.shares.len() < config.secret_threshold {
            return Ok(());
        }
        let shares = std::mem::take(&mut progress.shares);
        progress.nonce.clear();
        let unseal_key = if config.secret_threshold == 1 {
            shares[0].clone()
        } else {
            let parts: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
            shamir::combine(&parts).map_err(|e| {
                Error::bad_request(format!("invalid key: failed to compute combined key: {e}"))
            })?
        };
        let _admin = self.admin.lock().await;
        let unsealed = if self.config.ha_enabled {
            // A standby may not write; activation resumes the count.
            self.barrier.unseal_read_only(&unseal_key).await
        } else {
            self.barrier.unseal(&unseal_key).await
        };
        match unsealed {
            Ok(()) => {}
            Err(BarrierError::InvalidKey) => {
                return Err(Error::bad_request(
                    "Error unsealing: cipher: message authentication failed",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!("core: vault is unsealed");
        // A single node activates as soon as it is unsealed; with HA the
        // coordinator activates the node that holds the lock.
        if !self.config.ha_enabled {
            if let Err(e) = self.activate_locked().await {
                self.seal_locked().await;
                self.publish_lifecycle().await;
                return Err(e);
            }
        }
        self.publish_lifecycle().await;
        Ok(())
    }

    /// Forgets the unseal progress.
    pub async fn reset_unseal(&self) {
        let mut p = self.progress.lock().await;
        p.shares.clear();
        p.nonce.clear();
    }

    /// Seals: drops every key and the unsealed state.
    pub async fn seal(&self) {
        let _admin = self.admin.lock().await;
        self.seal_locked().await;
        self.publish_lifecycle().await;
        tracing::info!("core: vault is sealed");
    }

    /// Seals with the admin lock held: steps down first (so the backends
    /// clean up and nothing writes), then drops the keys.
    pub(crate) async fn seal_locked(&self) {
        self.standby.store(None);
        let was_active = self.active.load().is_some();
        self.step_down_locked().await;
        if self.config.ha_enabled && !was_active {
            // An HA standby never encrypted anything and may not write.
            self.barrier.seal();
            return;
        }
        // Nothing writes after stepping down: record the exact encryption
        // count for key-status (on failure the next unseal assumes a whole
        // persist interval, as after a crash).
        if let Err(e) = self.barrier.seal_persisting().await {
            tracing::warn!(error = %e, "core: could not record the encryption count while sealing");
            self.barrier.seal();
        }
        self.reset_unseal().await;
        // Root generation and rekey need an unsealed node: both start over.
        *self.root_gen.lock().await = None;
        *self.rekey.lock().await = None;
    }
}
