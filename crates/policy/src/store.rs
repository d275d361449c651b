//! The policy store: ACL policies persisted behind the barrier (one entry
//! per policy under `sys/policy/`), versioned with check-and-set, cached
//! parsed, and compiled into an [`Acl`] once per distinct policy set.

use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use super::{Acl, Policy, DEFAULT_POLICY, DEFAULT_POLICY_TEXT, ROOT_POLICY};
use strongroom_sdk::storage::{BarrierError, StorageError, View};
use strongroom_sdk::{Error, Result};

/// A stored policy: its text and bookkeeping, as `sys/policies/acl` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPolicy {
    /// Lowercased name.
    pub name: String,
    /// The policy text as written.
    pub policy: String,
    /// Incremented on every write; the check-and-set counter.
    pub version: u64,
    /// Whether writes must give `cas`.
    #[serde(default)]
    pub cas_required: bool,
    /// RFC 3339 time of the last write (empty for the built-in root).
    #[serde(default)]
    pub modified: String,
}

/// The policy store of an unsealed server.
pub struct PolicyStore {
    view: View,
    parsed: DashMap<String, Arc<Policy>>,
    acls: DashMap<Vec<String>, Arc<Acl>>,
    writes: tokio::sync::Mutex<()>,
    /// Bumped by every invalidation: a read that raced with one does not
    /// cache what it read (it may be older than the change).
    generation: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore").finish_non_exhaustive()
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// Policy names are case-insensitive, stored lowercased, as in OpenBao.
pub fn normalize_name(name: &str) -> Result<String> {
    let name = name.trim().to_lowercase();
    if name.is_empty() || name.contains("..") || name.contains('/') {
        return Err(Error::bad_request(format!("invalid policy name {name:?}")));
    }
    Ok(name)
}

impl PolicyStore {
    /// Opens the store in `view`, writing the built-in `default` policy the
    /// first time.
    pub async fn open(view: View) -> Result<Self> {
        Self::open_with(view, true).await
    }

    /// Opens the store without ever writing (an HA standby): the
    /// `default` policy is read as stored.
    pub async fn open_read_only(view: View) -> Result<Self> {
        Self::open_with(view, false).await
    }

    async fn open_with(view: View, create_default: bool) -> Result<Self> {
        let store = PolicyStore {
            view,
            parsed: DashMap::new(),
            generation: std::sync::atomic::AtomicU64::new(0),
            acls: DashMap::new(),
            writes: tokio::sync::Mutex::new(()),
        };
        if create_default && store.view.get(DEFAULT_POLICY).await?.is_none() {
            store
                .write_entry(&StoredPolicy {
                    name: DEFAULT_POLICY.into(),
                    policy: DEFAULT_POLICY_TEXT.into(),
                    version: 1,
                    cas_required: false,
                    modified: now_rfc3339(),
                })
                .await?;
        }
        Ok(store)
    }

    async fn write_entry(&self, entry: &StoredPolicy) -> Result<()> {
        let bytes = serde_json::to_vec(entry).map_err(Error::internal)?;
        self.view.put(&entry.name, &bytes).await?;
        Ok(())
    }

    /// The stored policy `name`; `root` is built in with an empty text.
    pub async fn get(&self, name: &str) -> Result<Option<StoredPolicy>> {
        let name = normalize_name(name)?;
        if name == ROOT_POLICY {
            return Ok(Some(StoredPolicy {
                name,
                policy: String::new(),
                version: 0,
                cas_required: false,
                modified: String::new(),
            }));
        }
        let stored = match self.view.get(&name).await {
            // A name that cannot be a storage key (a NUL byte, `..`) names
            // no policy: OpenBao warns that it does not exist.
            Err(
                BarrierError::Storage(StorageError::InvalidKey(_)) | BarrierError::InvalidPath(_),
            ) => return Ok(None),
            other => other?,
        };
        match stored {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::internal(format!("corrupt policy {name:?}: {e}"))),
        }
    }

    /// Whether a policy of that name exists (built-ins included).
    pub async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.get(name).await?.is_some())
    }

    /// Every policy name, `root` included, sorted.
    pub async fn list(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .view
            .list("")
            .await?
            .into_iter()
            .filter(|k| !k.ends_with('/'))
            .collect();
        names.push(ROOT_POLICY.into());
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Writes policy `name` from `text` after parsing it. With `cas`, the
    /// write happens only if the current version equals it (0: must not
    /// exist).
    pub async fn put(&self, name: &str, text: &str, cas: Option<u64>) -> Result<()> {
        let name = normalize_name(name)?;
        if name == ROOT_POLICY {
            return Err(Error::bad_request("cannot update \"root\" policy"));
        }
        Policy::parse(&name, text).map_err(|e| Error::bad_request(e.to_string()))?;
        let _guard = self.writes.lock().await;
        let current = self.get(&name).await?;
        let version = current.as_ref().map(|c| c.version).unwrap_or(0);
        let cas_required = current.as_ref().is_some_and(|c| c.cas_required);
        match cas {
            Some(c) if c != version => {
                return Err(Error::bad_request(format!(
                    "check-and-set parameter {c} did not match the current version {version}"
                )))
            }
            None if cas_required => {
                return Err(Error::bad_request(
                    "check-and-set parameter required for this call",
                ))
            }
            _ => {}
        }
        self.write_entry(&StoredPolicy {
            name: name.clone(),
            policy: text.to_string(),
            version: version + 1,
            cas_required,
            modified: now_rfc3339(),
        })
        .await?;
        self.invalidate(&name);
        Ok(())
    }

    /// Deletes policy `name` (`default` and `root` cannot be deleted; a
    /// missing policy is not an error).
    pub async fn delete(&self, name: &str) -> Result<()> {
        let name = normalize_name(name)?;
        match name.as_str() {
            ROOT_POLICY => return Err(Error::bad_request("cannot delete \"root\" policy")),
            DEFAULT_POLICY => return Err(Error::bad_request("cannot delete default policy")),
            _ => {}
        }
        let _guard = self.writes.lock().await;
        self.view.delete(&name).await?;
        self.invalidate(&name);
        Ok(())
    }

    /// Another node changed policy `name` (its storage key): forget what
    /// was cached of it.
    pub fn invalidate(&self, name: &str) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.parsed.remove(name);
        // Any compiled set may include the policy; sets are few and cheap
        // to rebuild.
        self.acls.clear();
    }

    async fn parsed(&self, name: &str) -> Result<Option<Arc<Policy>>> {
        if let Some(p) = self.parsed.get(name) {
            return Ok(Some(p.clone()));
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        let Some(stored) = self.get(name).await? else {
            return Ok(None);
        };
        let policy = if stored.name == ROOT_POLICY {
            super::root_policy()
        } else {
            Policy::parse(&stored.name, &stored.policy)
                .map_err(|e| Error::internal(format!("stored policy does not parse: {e}")))?
        };
        let policy = Arc::new(policy);
        if self.generation.load(std::sync::atomic::Ordering::Acquire) == generation {
            self.parsed.insert(stored.name, policy.clone());
        }
        Ok(Some(policy))
    }

    /// The compiled ACL of a set of policy names (unknown names are
    /// skipped, as OpenBao does), cached by the sorted set.
    pub async fn acl(&self, names: &[String]) -> Result<Arc<Acl>> {
        // Hot path: tokens keep their policies sorted and lowercased, so
        // their list is the cache key as it is, with no allocation.
        if let Some(acl) = self.acls.get(names) {
            return Ok(acl.clone());
        }
        let mut key: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        key.sort();
        key.dedup();
        if let Some(acl) = self.acls.get(&key) {
            return Ok(acl.clone());
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        let mut policies = Vec::with_capacity(key.len());
        for name in &key {
            if let Some(p) = self.parsed(name).await? {
                policies.push(p);
            }
        }
        let acl = Arc::new(Acl::new(&policies));
        if self.generation.load(std::sync::atomic::Ordering::Acquire) == generation {
            self.acls.insert(key, acl.clone());
        }
        Ok(acl)
    }
}
