//! The method's per-mount state: the loaded configuration with its parsed
//! `pem_keys` and the one HTTP client (connection pool) used for every
//! TokenReview call, built on first use and dropped when `config` changes.
//!
//! Storage, in the mount's view: `config` (a [`ConfigEntry`]) and
//! `role/<lowercased name>` (a [`RoleEntry`](crate::role::RoleEntry)).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use strongroom_sdk::role_store::RoleStore;
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};
use tokio::sync::Mutex;

use crate::config::{check_ca, parse_ca, parse_pem_keys, read_local, ConfigEntry, LOCAL_CA_PATH};
use crate::role::RoleEntry;

/// Where the configuration lives.
pub const CONFIG_KEY: &str = "config";
/// Prefix of the roles.
pub const ROLE_PREFIX: &str = "role/";

/// How long connecting to the API server may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole TokenReview call may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The configuration ready for logins.
pub struct Loaded {
    /// The stored configuration.
    pub config: ConfigEntry,
    /// The parsed `pem_keys` (empty: no local signature check; the
    /// TokenReview is sent either way).
    pub keys: Vec<DecodingKey>,
    /// The TokenReview endpoint.
    pub review_url: reqwest::Url,
    /// The client, trusting only the configured CA, shared by all logins.
    pub client: reqwest::Client,
}

/// The Kubernetes method's state, one per mount.
pub struct Kubernetes {
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// Serialises configuration writes with the (re)loading of the cache.
    pub config_lock: Mutex<()>,
    /// The roles, under `role/`; its locks serialise writes and deletes
    /// of one role.
    pub roles: RoleStore<RoleEntry>,
}

impl Default for Kubernetes {
    fn default() -> Self {
        Kubernetes {
            loaded: RwLock::new(None),
            config_lock: Mutex::new(()),
            roles: RoleStore::new(ROLE_PREFIX),
        }
    }
}

impl Kubernetes {
    /// Reads the stored configuration.
    pub async fn load_entry(&self, storage: &View) -> Result<Option<ConfigEntry>> {
        Ok(storage.get_json(CONFIG_KEY).await?)
    }

    /// Forgets the cached configuration and client.
    pub fn invalidate(&self) {
        let mut slot = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        *slot = None;
    }

    /// The loaded configuration, building it from storage on first use;
    /// `None` when the mount is not configured.
    pub async fn loaded(&self, storage: &View) -> Result<Option<Arc<Loaded>>> {
        if let Some(l) = self.cached() {
            return Ok(Some(l));
        }
        let _guard = self.config_lock.lock().await;
        if let Some(l) = self.cached() {
            return Ok(Some(l));
        }
        let Some(config) = self.load_entry(storage).await? else {
            return Ok(None);
        };
        let loaded = Arc::new(build(config)?);
        let mut slot = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        *slot = Some(loaded.clone());
        Ok(Some(loaded))
    }

    fn cached(&self) -> Option<Arc<Loaded>> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Parses the keys and builds the HTTP client of a configuration.
fn build(config: ConfigEntry) -> Result<Loaded> {
    let keys = parse_pem_keys(&config.pem_keys)?;
    let ca_pem = if config.kubernetes_ca_cert.trim().is_empty() {
        read_local(LOCAL_CA_PATH)?.to_string()
    } else {
        // Stored even when it does not parse (config write warns): a login
        // then fails naming the setting to fix.
        check_ca(&config.kubernetes_ca_cert).map_err(|e| {
            Error::bad_request(format!(
                "the configured kubernetes_ca_cert does not parse ({}): write a PEM certificate to this mount's config",
                e.messages().join("; ")
            ))
        })?;
        config.kubernetes_ca_cert.clone()
    };
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none());
    for der in parse_ca(&ca_pem)? {
        let cert = reqwest::Certificate::from_der(&der)
            .map_err(|e| Error::bad_request(format!("invalid kubernetes_ca_cert: {e}")))?;
        builder = builder.add_root_certificate(cert);
    }
    let client = builder
        .build()
        .map_err(|e| Error::internal(format!("building the Kubernetes client: {e}")))?;
    let mut review_url = config.base_url()?;
    {
        let mut segs = review_url
            .path_segments_mut()
            .map_err(|_| Error::bad_request("kubernetes_host cannot be a base URL"))?;
        segs.pop_if_empty();
        segs.extend(["apis", "authentication.k8s.io", "v1", "tokenreviews"]);
    }
    Ok(Loaded {
        config,
        keys,
        review_url,
        client,
    })
}
