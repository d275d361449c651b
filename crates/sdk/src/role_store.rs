//! The roles of an auth method, kept as typed JSON entries under a prefix
//! of the mount's [`View`]: listing, reading, writing and deleting them,
//! OpenBao's generic role-name rule, and the locks that serialise changes.
//!
//! Locks are striped by name: changes to one role are serialised, changes
//! to roles on different stripes are not. A method whose invariants span
//! roles (AppRole's role ids are unique across roles) builds the store
//! with one stripe, which makes every lock a store-wide lock.

use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::framework::{is_generic_name, list_entries};
use crate::logical::Response;
use crate::storage::{BatchOp, View};
use crate::{Error, Result};

/// How many stripes the role locks have by default.
pub const DEFAULT_STRIPES: usize = 32;

/// Typed role entries under a storage prefix (e.g. `role/`).
pub struct RoleStore<R> {
    prefix: &'static str,
    max_name_len: Option<usize>,
    stripes: Vec<RwLock<()>>,
    _entries: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for RoleStore<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleStore")
            .field("prefix", &self.prefix)
            .field("stripes", &self.stripes.len())
            .finish()
    }
}

impl<R: Serialize + DeserializeOwned> RoleStore<R> {
    /// A store under `prefix` with [`DEFAULT_STRIPES`] lock stripes.
    pub fn new(prefix: &'static str) -> Self {
        Self::with_stripes(prefix, DEFAULT_STRIPES)
    }

    /// A store under `prefix` with `stripes` lock stripes (at least one).
    pub fn with_stripes(prefix: &'static str, stripes: usize) -> Self {
        RoleStore {
            prefix,
            max_name_len: None,
            stripes: (0..stripes.max(1)).map(|_| RwLock::new(())).collect(),
            _entries: PhantomData,
        }
    }

    /// Refuses names longer than `len` bytes with OpenBao's 400 (builder
    /// style).
    pub fn max_name_len(mut self, len: usize) -> Self {
        self.max_name_len = Some(len);
        self
    }

    /// Checks a role name from a request path against OpenBao's generic
    /// name rule (else 404, as OpenBao does not route it) and the length
    /// limit, and returns it lowercased, as the methods store roles.
    pub fn name(&self, raw: &str) -> Result<String> {
        if !is_generic_name(raw) {
            return Err(Error::UnsupportedPath);
        }
        if let Some(max) = self.max_name_len {
            if raw.len() > max {
                return Err(Error::bad_request(format!(
                    "role_name is longer than maximum of {max} bytes"
                )));
            }
        }
        Ok(raw.to_ascii_lowercase())
    }

    /// The storage key of the role `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The LIST answer of the roles (404 when there are none).
    pub async fn list(&self, storage: &View) -> Result<Response> {
        list_entries(storage, self.prefix).await
    }

    /// The role names, sorted.
    pub async fn names(&self, storage: &View) -> Result<Vec<String>> {
        Ok(storage
            .list(self.prefix)
            .await?
            .into_iter()
            .filter(|k| !k.ends_with('/'))
            .collect())
    }

    /// Whether the role `name` exists.
    pub async fn exists(&self, storage: &View, name: &str) -> Result<bool> {
        Ok(storage.get(&self.key(name)).await?.is_some())
    }

    /// Reads the role `name`.
    pub async fn read(&self, storage: &View, name: &str) -> Result<Option<R>> {
        Ok(storage.get_json(&self.key(name)).await?)
    }

    /// Stores the role `name`.
    pub async fn write(&self, storage: &View, name: &str, role: &R) -> Result<()> {
        Ok(storage.put_json(&self.key(name), role).await?)
    }

    /// The batch operation storing the role `name` (for changes that must
    /// land together with other records).
    pub fn put_op(&self, name: &str, role: &R) -> Result<BatchOp> {
        let bytes = serde_json::to_vec(role).map_err(Error::internal)?;
        Ok(BatchOp::Put(self.key(name), bytes))
    }

    /// The batch operation deleting the role `name`.
    pub fn delete_op(&self, name: &str) -> BatchOp {
        BatchOp::Delete(self.key(name))
    }

    /// Deletes the role `name` (no error when missing).
    pub async fn delete(&self, storage: &View, name: &str) -> Result<()> {
        Ok(storage.delete(&self.key(name)).await?)
    }

    fn stripe(&self, name: &str) -> &RwLock<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        // invariant: the index is reduced modulo the (non-zero) length.
        &self.stripes[(h.finish() % self.stripes.len() as u64) as usize]
    }

    /// Locks the role `name` for a change (read, modify, write).
    pub async fn lock(&self, name: &str) -> RwLockWriteGuard<'_, ()> {
        self.stripe(name).write().await
    }

    /// Locks the role `name` against changes while it is used (a login).
    pub async fn lock_shared(&self, name: &str) -> RwLockReadGuard<'_, ()> {
        self.stripe(name).read().await
    }

    /// Locks every role against changes (a scan over all roles), taking
    /// the stripes in order, so it cannot deadlock with single locks.
    pub async fn lock_all_shared(&self) -> Vec<RwLockReadGuard<'_, ()>> {
        let mut guards = Vec::with_capacity(self.stripes.len());
        for s in &self.stripes {
            guards.push(s.read().await);
        }
        guards
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::storage::MemoryStorage;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    #[serde(default)]
    struct Role {
        policies: Vec<String>,
        ttl: u64,
    }

    #[tokio::test]
    async fn roles_round_trip_as_plain_json_under_the_prefix() {
        let storage = MemoryStorage::view("auth/x/");
        let store: RoleStore<Role> = RoleStore::new("role/");
        assert_eq!(
            store.list(&storage).await.unwrap_err().status(),
            404,
            "an empty listing is a 404"
        );
        let r = Role {
            policies: vec!["dev".into()],
            ttl: 60,
        };
        store.write(&storage, "web", &r).await.unwrap();
        assert!(store.exists(&storage, "web").await.unwrap());
        assert_eq!(store.read(&storage, "web").await.unwrap(), Some(r));
        // Stored as plain JSON at prefix + name: existing data loads.
        assert_eq!(
            storage.get("role/web").await.unwrap().unwrap(),
            br#"{"policies":["dev"],"ttl":60}"#
        );
        storage.put("role/old", br#"{"ttl":5}"#).await.unwrap();
        assert_eq!(store.read(&storage, "old").await.unwrap().unwrap().ttl, 5);
        assert_eq!(store.names(&storage).await.unwrap(), vec!["old", "web"]);
        store.delete(&storage, "web").await.unwrap();
        assert_eq!(store.read(&storage, "web").await.unwrap(), None);
        assert!(!store.exists(&storage, "web").await.unwrap());
    }

    #[test]
    fn names_follow_openbaos_generic_rule() {
        let store: RoleStore<Role> = RoleStore::new("role/").max_name_len(8);
        assert_eq!(store.name("Web.App-1").unwrap_err().status(), 400);
        assert_eq!(store.name("Web.App").unwrap(), "web.app");
        for bad in ["", "-a", "a.", "a/b", "a b"] {
            assert!(
                matches!(store.name(bad), Err(Error::UnsupportedPath)),
                "{bad:?}"
            );
        }
        let err = store.name("abcdefghi").unwrap_err();
        assert_eq!(
            err.to_string(),
            "role_name is longer than maximum of 8 bytes"
        );
    }

    #[tokio::test]
    async fn one_stripe_makes_every_lock_store_wide() {
        let store: RoleStore<Role> = RoleStore::with_stripes("role/", 1);
        let _a = store.lock("a").await;
        assert!(store.stripe("b").try_read().is_err(), "b waits for a");
        drop(_a);
        let shared = store.lock_all_shared().await;
        assert!(store.stripe("c").try_write().is_err());
        drop(shared);
        assert!(store.stripe("c").try_write().is_ok());
    }
}
