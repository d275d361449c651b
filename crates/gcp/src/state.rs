//! The method's per-mount state: the one HTTP client (connection pool,
//! timeouts, trusted roots) shared by every Google call, the [`Google`]
//! client built from the stored configuration (with its cached access
//! token), and the [`KeyCache`]. The Google client and the keys are
//! dropped whenever `config` is written or deleted.
//!
//! Storage, in the mount's view: `config` (a
//! [`ConfigEntry`](crate::config::ConfigEntry)) and `role/<lowercased
//! name>` (a [`RoleEntry`](crate::role::RoleEntry)).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use strongroom_sdk::role_store::RoleStore;
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};
use tokio::sync::Mutex;

use crate::config::ConfigEntry;
use crate::google::Google;
use crate::keys::KeyCache;
use crate::role::RoleEntry;

/// Where the configuration lives.
pub const CONFIG_KEY: &str = "config";
/// Prefix of the roles.
pub const ROLE_PREFIX: &str = "role/";

/// How long connecting to Google may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole Google call may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Builds the shared HTTP client: rustls, the webpki and system roots
/// (the system's honour `SSL_CERT_FILE` / `SSL_CERT_DIR`), plus
/// `extra_root_pem` when given; connect and request timeouts; no
/// redirects.
pub fn http_client(extra_root_pem: Option<&str>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = extra_root_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| Error::internal(format!("invalid extra root certificate: {e}")))?;
        if certs.is_empty() {
            return Err(Error::internal(
                "invalid extra root certificate: no PEM certificate found",
            ));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| Error::internal(format!("building the Google client: {e}")))
}

/// The GCP method's state, one per mount.
pub struct Gcp {
    http: reqwest::Client,
    google: RwLock<Option<Arc<Google>>>,
    /// Verification keys of service-account JWTs.
    pub keys: KeyCache,
    /// Serialises configuration writes with the (re)building of the client.
    pub config_lock: Mutex<()>,
    /// The roles, under `role/`; its locks serialise writes and deletes
    /// of one role.
    pub roles: RoleStore<RoleEntry>,
}

impl Gcp {
    /// State over the shared HTTP client `http`.
    pub fn new(http: reqwest::Client) -> Gcp {
        Gcp {
            http,
            google: RwLock::new(None),
            keys: KeyCache::default(),
            config_lock: Mutex::new(()),
            roles: RoleStore::new(ROLE_PREFIX),
        }
    }

    /// Reads the stored configuration.
    pub async fn load_entry(&self, storage: &View) -> Result<Option<ConfigEntry>> {
        Ok(storage.get_json(CONFIG_KEY).await?)
    }

    /// Forgets the Google client (with its access token) and the keys.
    pub fn invalidate(&self) {
        *self.google.write().unwrap_or_else(|p| p.into_inner()) = None;
        self.keys.clear();
    }

    /// The Google client of the stored configuration (application default
    /// credentials when none is stored), built on first use.
    pub async fn google(&self, storage: &View) -> Result<Arc<Google>> {
        if let Some(g) = self.cached() {
            return Ok(g);
        }
        let _guard = self.config_lock.lock().await;
        if let Some(g) = self.cached() {
            return Ok(g);
        }
        let config = self.load_entry(storage).await?.unwrap_or_default();
        let google = Arc::new(Google::new(self.http.clone(), &config)?);
        *self.google.write().unwrap_or_else(|p| p.into_inner()) = Some(google.clone());
        Ok(google)
    }

    fn cached(&self) -> Option<Arc<Google>> {
        self.google
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
