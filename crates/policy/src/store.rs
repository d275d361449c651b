//! The policy store: ACL policies persisted behind the barrier (one entry
//! per policy under `sys/policy/`), versioned with check-and-set, cached
//! parsed, and compiled into an [`Acl`] once per distinct policy set.

use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use super::{Acl, Policy, DEFAULT_POLICY, DEFAULT_POLICY_TEXT, ROOT_POLICY};
use strongroom_sdk::identity::IdentityFacts;
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
    /// OpenBao's `allow_slashes_in_identity_templates`.
    #[serde(default)]
    pub allow_slashes_in_identity_templates: bool,
    /// OpenBao's `allow_wildcards_in_identity_templates`.
    #[serde(default)]
    pub allow_wildcards_in_identity_templates: bool,
}

/// A compiled policy set: its ACL for callers without an entity and,
/// when a policy is templated, what rendering it per entity needs.
struct CompiledSet {
    acl: Arc<Acl>,
    templated: Option<TemplatedSet>,
}

/// The templated part of a compiled set.
struct TemplatedSet {
    policies: Vec<Arc<Policy>>,
    /// A template reads the clock: render on every request.
    volatile: bool,
    /// Entity id -> the facts the ACL was rendered with, and the ACL. A
    /// hit needs the same facts, so a changed entity or group renders
    /// again without any generation counter.
    per_entity: DashMap<String, (IdentityFacts, Arc<Acl>)>,
}

/// Entities whose rendered ACLs one policy set keeps; past it the cache
/// starts over (rendering is cheap, memory must stay bounded).
const MAX_ENTITIES_PER_SET: usize = 4096;

/// The policy store of an unsealed server.
pub struct PolicyStore {
    view: View,
    parsed: DashMap<String, Arc<Policy>>,
    acls: DashMap<Vec<String>, Arc<CompiledSet>>,
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
                    allow_slashes_in_identity_templates: false,
                    allow_wildcards_in_identity_templates: false,
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
                allow_slashes_in_identity_templates: false,
                allow_wildcards_in_identity_templates: false,
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
        self.put_with(name, text, cas, TemplateOptions::default())
            .await
    }

    /// [`PolicyStore::put`] with the template options of
    /// `sys/policies/acl` (`None`: false, as OpenBao 2.7.2 resets them on
    /// a write that does not name them).
    pub async fn put_with(
        &self,
        name: &str,
        text: &str,
        cas: Option<u64>,
        options: TemplateOptions,
    ) -> Result<()> {
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
            allow_slashes_in_identity_templates: options.allow_slashes.unwrap_or(false),
            allow_wildcards_in_identity_templates: options.allow_wildcards.unwrap_or(false),
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
            let mut p = Policy::parse(&stored.name, &stored.policy)
                .map_err(|e| Error::internal(format!("stored policy does not parse: {e}")))?;
            p.allow_slashes_in_identity_templates = stored.allow_slashes_in_identity_templates;
            p.allow_wildcards_in_identity_templates = stored.allow_wildcards_in_identity_templates;
            p
        };
        let policy = Arc::new(policy);
        if self.generation.load(std::sync::atomic::Ordering::Acquire) == generation {
            self.parsed.insert(stored.name, policy.clone());
        }
        Ok(Some(policy))
    }

    /// The compiled ACL of a set of policy names (unknown names are
    /// skipped, as OpenBao does), cached by the sorted set, for a caller
    /// without an entity: templated rules that need one are dropped.
    pub async fn acl(&self, names: &[String]) -> Result<Arc<Acl>> {
        Ok(self.compiled(names).await?.acl.clone())
    }

    /// The compiled ACL of a set of policy names for a caller whose
    /// identity `identity` gives (asked only for a templated set; the
    /// authorize stage's call). A set without templated
    /// policies is the same cached ACL as [`PolicyStore::acl`], at the same
    /// cost; a templated set is rendered for the entity and cached per
    /// (set, entity id) until the entity's facts change (compared by
    /// value) or a policy changes. Templates that read the clock render on
    /// every call. No storage is read once the set's policies are cached.
    pub async fn acl_for(
        &self,
        names: &[String],
        identity: impl FnOnce() -> Option<IdentityFacts>,
    ) -> Result<Arc<Acl>> {
        let set = self.compiled(names).await?;
        let Some(t) = &set.templated else {
            return Ok(set.acl.clone());
        };
        // Only a templated set asks for the caller's facts.
        let identity = identity();
        if t.volatile {
            return Ok(Arc::new(Acl::compile(
                &t.policies,
                identity.as_ref(),
                super::acl::unix_now(),
            )));
        }
        let Some(facts) = identity.as_ref() else {
            return Ok(set.acl.clone());
        };
        if let Some(hit) = t.per_entity.get(facts.entity_id.as_str()) {
            if hit.0 == *facts {
                return Ok(hit.1.clone());
            }
        }
        let acl = Arc::new(Acl::compile(
            &t.policies,
            Some(facts),
            super::acl::unix_now(),
        ));
        if t.per_entity.len() >= MAX_ENTITIES_PER_SET {
            t.per_entity.clear();
        }
        t.per_entity
            .insert(facts.entity_id.clone(), (facts.clone(), acl.clone()));
        Ok(acl)
    }

    async fn compiled(&self, names: &[String]) -> Result<Arc<CompiledSet>> {
        // Hot path: tokens keep their policies sorted and lowercased, so
        // their list is the cache key as it is, with no allocation.
        if let Some(set) = self.acls.get(names) {
            return Ok(set.clone());
        }
        let mut key: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        key.sort();
        key.dedup();
        if let Some(set) = self.acls.get(&key) {
            return Ok(set.clone());
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::Acquire);
        let mut policies = Vec::with_capacity(key.len());
        for name in &key {
            if let Some(p) = self.parsed(name).await? {
                policies.push(p);
            }
        }
        let templated = policies
            .iter()
            .any(|p| p.is_templated())
            .then(|| TemplatedSet {
                volatile: policies.iter().any(|p| p.reads_time()),
                per_entity: DashMap::new(),
                policies: policies.clone(),
            });
        let set = Arc::new(CompiledSet {
            acl: Arc::new(Acl::new(&policies)),
            templated,
        });
        if self.generation.load(std::sync::atomic::Ordering::Acquire) == generation {
            self.acls.insert(key, set.clone());
        }
        Ok(set)
    }
}

/// The template options of a policy write; `None` is false.
#[derive(Debug, Clone, Copy, Default)]
pub struct TemplateOptions {
    /// `allow_slashes_in_identity_templates`.
    pub allow_slashes: Option<bool>,
    /// `allow_wildcards_in_identity_templates`.
    pub allow_wildcards: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_sdk::storage::MemoryStorage;

    fn facts(id: &str, team: &str) -> IdentityFacts {
        IdentityFacts {
            entity_id: id.into(),
            entity_metadata: [("team".to_string(), team.to_string())].into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn templated_sets_render_per_entity_and_follow_changes() {
        let store = PolicyStore::open(MemoryStorage::view("p/")).await.unwrap();
        store
            .put(
                "t",
                r#"path "kv/{{identity.entity.metadata.team}}/*" { capabilities = ["read"] }"#,
                None,
            )
            .await
            .unwrap();
        store
            .put(
                "plain",
                r#"path "kv/open" { capabilities = ["read"] }"#,
                None,
            )
            .await
            .unwrap();
        let names = vec!["plain".to_string()];
        // Untemplated sets: one shared ACL whatever the identity.
        let a = store
            .acl_for(&names, || Some(facts("e1", "x")))
            .await
            .unwrap();
        let b = store.acl_for(&names, || None).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Arc::ptr_eq(&a, &store.acl(&names).await.unwrap()));

        let names = vec!["t".to_string()];
        let blue = facts("e1", "blue");
        let a = store.acl_for(&names, || Some(blue.clone())).await.unwrap();
        assert_eq!(a.capabilities("kv/blue/s"), ["read"]);
        assert_eq!(a.capabilities("kv/red/s"), ["deny"]);
        // Cached for the same facts.
        let again = store.acl_for(&names, || Some(blue.clone())).await.unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        // The entity changed team: rendered again.
        let red = facts("e1", "red");
        let r = store.acl_for(&names, || Some(red.clone())).await.unwrap();
        assert_eq!(r.capabilities("kv/red/s"), ["read"]);
        assert_eq!(r.capabilities("kv/blue/s"), ["deny"]);
        // No entity: the rule is dropped.
        let none = store.acl_for(&names, || None).await.unwrap();
        assert_eq!(none.capabilities("kv/blue/s"), ["deny"]);
        // A policy change reaches cached renderings.
        store
            .put(
                "t",
                r#"path "kv/{{identity.entity.id}}" { capabilities = ["list"] }"#,
                None,
            )
            .await
            .unwrap();
        let n = store.acl_for(&names, || Some(red.clone())).await.unwrap();
        assert_eq!(n.capabilities("kv/e1"), ["list"]);
        assert_eq!(n.capabilities("kv/red/s"), ["deny"]);
    }

    #[tokio::test]
    async fn template_options_are_stored_and_reset_by_writes_without_them() {
        let store = PolicyStore::open(MemoryStorage::view("p/")).await.unwrap();
        let text = r#"path "kv/{{identity.entity.metadata.team}}" { capabilities = ["read"] }"#;
        let opts = TemplateOptions {
            allow_slashes: Some(true),
            allow_wildcards: None,
        };
        store.put_with("t", text, None, opts).await.unwrap();
        let names = vec!["t".to_string()];
        let f = facts("e1", "a/b");
        let a = store.acl_for(&names, || Some(f.clone())).await.unwrap();
        assert_eq!(a.capabilities("kv/a/b"), ["read"]);
        let stored = store.get("t").await.unwrap().unwrap();
        assert!(stored.allow_slashes_in_identity_templates);
        assert!(!stored.allow_wildcards_in_identity_templates);
        // bao 2.7.2: a later write that does not name them resets them.
        store.put("t", text, None).await.unwrap();
        let stored = store.get("t").await.unwrap().unwrap();
        assert!(!stored.allow_slashes_in_identity_templates);
        let a = store.acl_for(&names, || Some(f.clone())).await.unwrap();
        assert_eq!(a.capabilities("kv/a/b"), ["deny"]);
    }
}
