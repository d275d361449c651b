//! The method's in-memory state: the per-mount HMAC salt, the locks that
//! make role changes and secret id uses exact, the login lockout and the
//! tidy guard. Also the
//! storage layout and the small storage helpers every handler shares.
//!
//! Storage, in the mount's view:
//! - `salt`: 32 random bytes, the HMAC key of everything below;
//! - `role/<name>`: a [`RoleEntry`];
//! - `role_id/<HMAC(role id)>`: the [`RoleIdEntry`] naming its role;
//! - `secret_id/<HMAC(role name)>/<HMAC(secret id)>`: a [`SecretIdEntry`];
//! - `accessor/<HMAC(accessor)>`: the [`AccessorEntry`] locating it.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use aws_lc_rs::hmac;
use serde::de::DeserializeOwned;
use serde::Serialize;
use strongroom_sdk::role_store::RoleStore;
use strongroom_sdk::storage::BatchOp;
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};
use tokio::sync::{Mutex, MutexGuard, OnceCell};
use zeroize::Zeroizing;

use crate::model::{AccessorEntry, RoleEntry, RoleIdEntry, SecretIdEntry, MAX_ROLE_NAME_LEN};

/// Where the salt lives.
pub const SALT_KEY: &str = "salt";
/// Prefix of the roles.
pub const ROLE_PREFIX: &str = "role/";
/// Prefix of the role id index.
pub const ROLE_ID_PREFIX: &str = "role_id/";
/// Prefix of the secret ids.
pub const SECRET_PREFIX: &str = "secret_id/";
/// Prefix of the accessor index.
pub const ACCESSOR_PREFIX: &str = "accessor/";

/// How many locks the secret ids are striped over.
const STRIPES: usize = 64;

/// The AppRole method's state, one per mount.
pub struct AppRole {
    salt: OnceCell<Zeroizing<Vec<u8>>>,
    /// The roles, under `role/`, with one lock stripe: writers change
    /// roles (and role ids, unique across roles), readers use them (secret
    /// id operations, logins, the tidy), so a role cannot vanish under a
    /// login.
    pub roles: RoleStore<RoleEntry>,
    stripes: Vec<Mutex<()>>,
    /// Set while a tidy runs.
    pub tidy_running: Arc<AtomicBool>,
    /// Failed logins per role id (by HMAC), for OpenBao's user lockout.
    pub lockout: strongroom_sdk::lockout::Lockout,
    /// When the periodic tidy last started (`None`: never).
    pub last_periodic_tidy: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Default for AppRole {
    fn default() -> Self {
        AppRole {
            salt: OnceCell::new(),
            roles: RoleStore::with_stripes(ROLE_PREFIX, 1).max_name_len(MAX_ROLE_NAME_LEN),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            tidy_running: Arc::new(AtomicBool::new(false)),
            lockout: strongroom_sdk::lockout::Lockout::default(),
            last_periodic_tidy: std::sync::Mutex::new(None),
        }
    }
}

impl AppRole {
    /// The mount's salt, created on first use.
    async fn salt(&self, storage: &View) -> Result<&Zeroizing<Vec<u8>>> {
        self.salt
            .get_or_try_init(|| async {
                if let Some(existing) = storage.get(SALT_KEY).await? {
                    return Ok::<_, Error>(Zeroizing::new(existing));
                }
                let mut fresh = Zeroizing::new(vec![0u8; 32]);
                aws_lc_rs::rand::fill(&mut fresh[..])
                    .map_err(|_| Error::internal("random source failed"))?;
                storage.put(SALT_KEY, &fresh).await?;
                Ok(fresh)
            })
            .await
    }

    /// HMAC-SHA256 of `value` in the `domain`, hex.
    pub async fn hmac(&self, storage: &View, domain: &str, value: &str) -> Result<String> {
        let salt = self.salt(storage).await?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(domain.as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        Ok(hex::encode(ctx.sign().as_ref()))
    }

    /// The storage name of a role's secret id folder.
    pub async fn role_hash(&self, storage: &View, role: &str) -> Result<String> {
        self.hmac(storage, "role", role).await
    }

    /// Serialises every change to the secret id with this HMAC.
    pub async fn lock_secret(&self, secret_hmac: &str) -> MutexGuard<'_, ()> {
        let idx = secret_hmac
            .get(..2)
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .unwrap_or(0)
            % STRIPES;
        // invariant: `idx < STRIPES == stripes.len()`.
        self.stripes[idx].lock().await
    }
}

/// Reads a JSON record.
pub async fn get<T: DeserializeOwned>(storage: &View, key: &str) -> Result<Option<T>> {
    Ok(storage.get_json(key).await?)
}

/// Encodes a record for a batch.
pub fn put_op<T: Serialize>(key: String, value: &T) -> Result<BatchOp> {
    let bytes = serde_json::to_vec(value).map_err(Error::internal)?;
    Ok(BatchOp::Put(key, bytes))
}

/// The key of a secret id.
pub fn secret_key(role_hash: &str, secret_hmac: &str) -> String {
    format!("{SECRET_PREFIX}{role_hash}/{secret_hmac}")
}

/// Reads a secret id.
pub async fn read_secret(
    storage: &View,
    role_hash: &str,
    secret_hmac: &str,
) -> Result<Option<SecretIdEntry>> {
    get(storage, &secret_key(role_hash, secret_hmac)).await
}

/// The ops removing a secret id and its accessor.
pub fn delete_secret_ops(role_hash: &str, secret_hmac: &str, accessor_hmac: &str) -> Vec<BatchOp> {
    vec![
        BatchOp::Delete(secret_key(role_hash, secret_hmac)),
        BatchOp::Delete(format!("{ACCESSOR_PREFIX}{accessor_hmac}")),
    ]
}

/// Reads an accessor index entry.
pub async fn read_accessor(storage: &View, accessor_hmac: &str) -> Result<Option<AccessorEntry>> {
    get(storage, &format!("{ACCESSOR_PREFIX}{accessor_hmac}")).await
}

/// Reads a role id index entry.
pub async fn read_role_id(storage: &View, role_id_hmac: &str) -> Result<Option<RoleIdEntry>> {
    get(storage, &format!("{ROLE_ID_PREFIX}{role_id_hmac}")).await
}
