//! The identity store of one namespace: every entity and group in memory,
//! with the indexes the API and the request path need (by id, by name,
//! alias by mount accessor and name, group membership and its transitive
//! closure), persisted one record per entity (its aliases inside) and per
//! group (its alias inside) under the namespace's `identity/` mount
//! storage, behind the barrier.
//!
//! Reads never touch storage. Writes are serialised by one lock
//! ([`IdentityStore::lock`]): the caller reads the current state, decides,
//! and [`commits`](IdentityStore::commit) its changes in one storage batch,
//! then in memory. The policies and facts derived for an entity are cached
//! and the cache is emptied by every change that may affect them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, Weak};

use dashmap::DashMap;
use strongroom_sdk::identity::{AliasFacts, GroupFacts, IdentityFacts, LoginAlias};
use strongroom_sdk::storage::{BatchOp, View};
use strongroom_sdk::{Error, Result};

use crate::model::{now, Entity, EntityAlias, Group, Meta};

/// Storage prefix of entity records.
pub const ENTITY_PREFIX: &str = "entities/";
/// Storage prefix of group records.
pub const GROUP_PREFIX: &str = "groups/";

/// An auth mount as aliases show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Its path, `auth/<path>/`.
    pub path: String,
    /// Its type (`approle`, …).
    pub kind: String,
}

/// Finds the namespace's auth mounts by accessor (the core provides it).
pub trait MountLookup: Send + Sync {
    /// The auth mount with accessor `accessor`, if any.
    fn by_accessor(&self, accessor: &str) -> Option<MountInfo>;
}

/// What the request path needs of an entity: whether it is disabled and
/// the policies it and its groups (nested ones included) grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The entity is disabled: its tokens are refused.
    pub disabled: bool,
    /// Its identity policies, sorted and deduplicated.
    pub policies: Vec<String>,
}

/// One change to commit.
#[derive(Debug, Clone)]
pub enum Change {
    /// Store (create or replace) an entity.
    PutEntity(Entity),
    /// Delete an entity.
    DeleteEntity(String),
    /// Store (create or replace) a group.
    PutGroup(Group),
    /// Delete a group.
    DeleteGroup(String),
}

/// The in-memory state and its indexes.
#[derive(Debug, Default)]
pub struct State {
    entities: HashMap<String, Arc<Entity>>,
    entity_names: HashMap<String, String>,
    /// Alias id → entity id.
    aliases: HashMap<String, String>,
    /// (mount accessor, alias name) → alias id.
    alias_keys: HashMap<(String, String), String>,
    groups: HashMap<String, Arc<Group>>,
    group_names: HashMap<String, String>,
    /// Group alias id → group id.
    group_aliases: HashMap<String, String>,
    /// (mount accessor, alias name) → group alias id.
    group_alias_keys: HashMap<(String, String), String>,
    /// Entity id → the groups it is a direct member of.
    entity_groups: HashMap<String, BTreeSet<String>>,
    /// Group id → the groups that have it as a member.
    parents: HashMap<String, BTreeSet<String>>,
}

impl State {
    /// The entity with id `id`.
    pub fn entity(&self, id: &str) -> Option<&Arc<Entity>> {
        self.entities.get(id)
    }

    /// The entity named `name`.
    pub fn entity_by_name(&self, name: &str) -> Option<&Arc<Entity>> {
        self.entity_names
            .get(name)
            .and_then(|id| self.entities.get(id))
    }

    /// The entity and its alias with alias id `id`.
    pub fn alias(&self, id: &str) -> Option<(&Arc<Entity>, &EntityAlias)> {
        let entity = self.entities.get(self.aliases.get(id)?)?;
        let alias = entity.aliases.iter().find(|a| a.id == id)?;
        Some((entity, alias))
    }

    /// The entity and alias named `name` at the mount `accessor`.
    pub fn alias_by_key(&self, accessor: &str, name: &str) -> Option<(&Arc<Entity>, &EntityAlias)> {
        let id = self
            .alias_keys
            .get(&(accessor.to_string(), name.to_string()))?;
        self.alias(id)
    }

    /// The group with id `id`.
    pub fn group(&self, id: &str) -> Option<&Arc<Group>> {
        self.groups.get(id)
    }

    /// The group named `name`.
    pub fn group_by_name(&self, name: &str) -> Option<&Arc<Group>> {
        self.group_names
            .get(name)
            .and_then(|id| self.groups.get(id))
    }

    /// The group owning the group alias `id`.
    pub fn group_of_alias(&self, id: &str) -> Option<&Arc<Group>> {
        self.groups.get(self.group_aliases.get(id)?)
    }

    /// The group whose alias is `name` at the mount `accessor`.
    pub fn group_by_alias_key(&self, accessor: &str, name: &str) -> Option<&Arc<Group>> {
        let id = self
            .group_alias_keys
            .get(&(accessor.to_string(), name.to_string()))?;
        self.group_of_alias(id)
    }

    /// Every entity, by id.
    pub fn entities(&self) -> impl Iterator<Item = &Arc<Entity>> {
        self.entities.values()
    }

    /// Every group, by id.
    pub fn groups(&self) -> impl Iterator<Item = &Arc<Group>> {
        self.groups.values()
    }

    /// The groups `entity_id` is a direct member of, sorted.
    pub fn direct_groups(&self, entity_id: &str) -> Vec<String> {
        self.entity_groups
            .get(entity_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The groups that contain `group_id` directly, sorted.
    pub fn parent_groups(&self, group_id: &str) -> Vec<String> {
        self.parents
            .get(group_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every group above the groups in `start` (through nesting), not
    /// including them, in discovery order.
    pub fn ancestors(&self, start: &[String]) -> Vec<String> {
        let mut seen: HashSet<&str> = start.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        let mut queue: Vec<&str> = start.iter().map(String::as_str).collect();
        while let Some(g) = queue.pop() {
            if let Some(ps) = self.parents.get(g) {
                for p in ps {
                    if seen.insert(p) {
                        out.push(p.clone());
                        queue.push(p);
                    }
                }
            }
        }
        out
    }

    /// The direct and inherited groups of an entity.
    pub fn entity_group_ids(&self, entity_id: &str) -> (Vec<String>, Vec<String>) {
        let direct = self.direct_groups(entity_id);
        let inherited = self.ancestors(&direct);
        (direct, inherited)
    }

    /// Whether making `member` a member group of `group` makes a cycle.
    pub fn would_cycle(&self, group: &str, member: &str) -> bool {
        member == group
            || self
                .ancestors(&[group.to_string()])
                .iter()
                .any(|a| a == member)
    }

    fn resolve(&self, entity_id: &str) -> Option<Resolved> {
        let entity = self.entities.get(entity_id)?;
        let (direct, inherited) = self.entity_group_ids(entity_id);
        let mut policies: Vec<String> = entity.policies.clone();
        for g in direct.iter().chain(inherited.iter()) {
            if let Some(p) = self.groups.get(g).and_then(|g| g.policies.as_ref()) {
                policies.extend(p.iter().cloned());
            }
        }
        policies.sort();
        policies.dedup();
        Some(Resolved {
            disabled: entity.disabled,
            policies,
        })
    }

    fn facts(&self, entity_id: &str) -> Option<IdentityFacts> {
        let entity = self.entities.get(entity_id)?;
        let (direct, inherited) = self.entity_group_ids(entity_id);
        let map = |m: &Option<Meta>| m.clone().unwrap_or_default();
        Some(IdentityFacts {
            entity_id: entity.id.clone(),
            entity_name: entity.name.clone(),
            entity_metadata: map(&entity.metadata),
            aliases: entity
                .aliases
                .iter()
                .map(|a| AliasFacts {
                    id: a.id.clone(),
                    mount_accessor: a.mount_accessor.clone(),
                    name: a.name.clone(),
                    metadata: map(&a.metadata),
                    custom_metadata: map(&a.custom_metadata),
                })
                .collect(),
            groups: direct
                .iter()
                .chain(inherited.iter())
                .filter_map(|g| self.groups.get(g))
                .map(|g| GroupFacts {
                    id: g.id.clone(),
                    name: g.name.clone(),
                    metadata: map(&g.metadata),
                })
                .collect(),
        })
    }

    fn remove_entity(&mut self, id: &str) {
        if let Some(old) = self.entities.remove(id) {
            if self.entity_names.get(&old.name).is_some_and(|i| i == id) {
                self.entity_names.remove(&old.name);
            }
            for a in &old.aliases {
                if self.aliases.get(&a.id).is_some_and(|e| e == id) {
                    self.aliases.remove(&a.id);
                }
                let key = (a.mount_accessor.clone(), a.name.clone());
                if self.alias_keys.get(&key).is_some_and(|i| *i == a.id) {
                    self.alias_keys.remove(&key);
                }
            }
        }
    }

    fn insert_entity(&mut self, entity: Entity) {
        self.remove_entity(&entity.id);
        self.entity_names
            .insert(entity.name.clone(), entity.id.clone());
        for a in &entity.aliases {
            self.aliases.insert(a.id.clone(), entity.id.clone());
            self.alias_keys
                .insert((a.mount_accessor.clone(), a.name.clone()), a.id.clone());
        }
        self.entities.insert(entity.id.clone(), Arc::new(entity));
    }

    fn remove_group(&mut self, id: &str) {
        if let Some(old) = self.groups.remove(id) {
            if self.group_names.get(&old.name).is_some_and(|i| i == id) {
                self.group_names.remove(&old.name);
            }
            if let Some(a) = &old.alias {
                self.group_aliases.remove(&a.id);
                let key = (a.mount_accessor.clone(), a.name.clone());
                if self.group_alias_keys.get(&key).is_some_and(|i| *i == a.id) {
                    self.group_alias_keys.remove(&key);
                }
            }
            for e in old.member_entity_ids.iter().flatten() {
                if let Some(set) = self.entity_groups.get_mut(e) {
                    set.remove(id);
                    if set.is_empty() {
                        self.entity_groups.remove(e);
                    }
                }
            }
            for g in old.member_group_ids.iter().flatten() {
                if let Some(set) = self.parents.get_mut(g) {
                    set.remove(id);
                    if set.is_empty() {
                        self.parents.remove(g);
                    }
                }
            }
        }
    }

    fn insert_group(&mut self, group: Group) {
        self.remove_group(&group.id);
        self.group_names
            .insert(group.name.clone(), group.id.clone());
        if let Some(a) = &group.alias {
            self.group_aliases.insert(a.id.clone(), group.id.clone());
            self.group_alias_keys
                .insert((a.mount_accessor.clone(), a.name.clone()), a.id.clone());
        }
        for e in group.member_entity_ids.iter().flatten() {
            self.entity_groups
                .entry(e.clone())
                .or_default()
                .insert(group.id.clone());
        }
        for g in group.member_group_ids.iter().flatten() {
            self.parents
                .entry(g.clone())
                .or_default()
                .insert(group.id.clone());
        }
        self.groups.insert(group.id.clone(), Arc::new(group));
    }

    fn apply(&mut self, change: Change) {
        match change {
            Change::PutEntity(e) => self.insert_entity(e),
            Change::DeleteEntity(id) => self.remove_entity(&id),
            Change::PutGroup(g) => self.insert_group(g),
            Change::DeleteGroup(id) => self.remove_group(&id),
        }
    }
}

/// The identity store of one namespace (see the module doc).
pub struct IdentityStore {
    view: View,
    /// The namespace id as the API shows it (`root` for root).
    namespace_id: String,
    /// What ids made here end with (`""` in root, `.<id>` elsewhere).
    suffix: String,
    mounts: Arc<dyn MountLookup>,
    state: RwLock<State>,
    write: tokio::sync::Mutex<()>,
    resolved: DashMap<String, Arc<Resolved>>,
    /// Itself, for the reloads an invalidation spawns.
    me: Weak<IdentityStore>,
}

impl std::fmt::Debug for IdentityStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityStore")
            .field("namespace_id", &self.namespace_id)
            .finish_non_exhaustive()
    }
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("corrupt identity record {key}: {e}"))
}

impl IdentityStore {
    /// An empty store over `view` for the namespace with id `namespace_id`
    /// (`""` for root); [`load`](Self::load) fills it.
    pub fn new(view: View, namespace_id: &str, mounts: Arc<dyn MountLookup>) -> Arc<IdentityStore> {
        let (namespace_id, suffix) = if namespace_id.is_empty() || namespace_id == "root" {
            ("root".to_string(), String::new())
        } else {
            (namespace_id.to_string(), format!(".{namespace_id}"))
        };
        Arc::new_cyclic(|me| IdentityStore {
            view,
            namespace_id,
            suffix,
            mounts,
            state: RwLock::new(State::default()),
            write: tokio::sync::Mutex::new(()),
            resolved: DashMap::new(),
            me: me.clone(),
        })
    }

    /// The backend's invalidation hook: reloads `key` in the background
    /// (see [`reload_key`](Self::reload_key)).
    pub fn invalidated(&self, key: &str) {
        let (Some(me), Ok(rt)) = (self.me.upgrade(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let key = key.to_string();
        rt.spawn(async move {
            if let Err(e) = me.reload_key(&key).await {
                tracing::warn!(error = %e, "identity: reloading a changed record failed");
            }
        });
    }

    /// The namespace id as entities show it (`root` for root).
    pub fn namespace_id(&self) -> &str {
        &self.namespace_id
    }

    /// A new id for an object of this namespace.
    pub fn new_id(&self) -> String {
        format!("{}{}", uuid::Uuid::new_v4(), self.suffix)
    }

    /// The auth mount with accessor `accessor`.
    pub fn mount(&self, accessor: &str) -> Option<MountInfo> {
        self.mounts.by_accessor(accessor)
    }

    /// Reads every record from storage into memory (replacing what was
    /// there).
    pub async fn load(&self) -> Result<()> {
        let mut state = State::default();
        for key in self.view.list(ENTITY_PREFIX).await? {
            let full = format!("{ENTITY_PREFIX}{key}");
            if let Some(e) = self.read::<Entity>(&full).await? {
                state.insert_entity(e);
            }
        }
        for key in self.view.list(GROUP_PREFIX).await? {
            let full = format!("{GROUP_PREFIX}{key}");
            if let Some(g) = self.read::<Group>(&full).await? {
                state.insert_group(g);
            }
        }
        let _write = self.write.lock().await;
        *self.state_mut() = state;
        self.resolved.clear();
        Ok(())
    }

    async fn read<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.view.get(key).await? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| corrupt(key, e)),
        }
    }

    /// Another node changed the record at `key` (relative to the store's
    /// view): read it again. Reloads are serialised with writes, and each
    /// reads storage under the lock, so the last one leaves memory as
    /// storage is.
    pub async fn reload_key(&self, key: &str) -> Result<()> {
        let _write = self.write.lock().await;
        if let Some(id) = key.strip_prefix(ENTITY_PREFIX) {
            let change = match self.read::<Entity>(key).await? {
                Some(e) => Change::PutEntity(e),
                None => Change::DeleteEntity(id.to_string()),
            };
            self.apply(vec![change]);
        } else if let Some(id) = key.strip_prefix(GROUP_PREFIX) {
            let change = match self.read::<Group>(key).await? {
                Some(g) => Change::PutGroup(g),
                None => Change::DeleteGroup(id.to_string()),
            };
            self.apply(vec![change]);
        }
        Ok(())
    }

    /// Reads of the state (never held across an await).
    pub fn state(&self) -> RwLockReadGuard<'_, State> {
        match self.state.read() {
            Ok(s) => s,
            // A panic while applying cannot leave a half-applied index
            // worse than a reload would fix; keep serving.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        match self.state.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes the write lock: hold it from reading the state a change is
    /// computed from to its [`commit`](Self::commit).
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write.lock().await
    }

    /// Persists `changes` in one storage batch, then applies them in
    /// memory. The caller holds [`lock`](Self::lock).
    pub async fn commit(&self, changes: Vec<Change>) -> Result<()> {
        let mut ops = Vec::with_capacity(changes.len());
        for c in &changes {
            ops.push(match c {
                Change::PutEntity(e) => BatchOp::Put(
                    format!("{ENTITY_PREFIX}{}", e.id),
                    serde_json::to_vec(e).map_err(Error::internal)?,
                ),
                Change::DeleteEntity(id) => BatchOp::Delete(format!("{ENTITY_PREFIX}{id}")),
                Change::PutGroup(g) => BatchOp::Put(
                    format!("{GROUP_PREFIX}{}", g.id),
                    serde_json::to_vec(g).map_err(Error::internal)?,
                ),
                Change::DeleteGroup(id) => BatchOp::Delete(format!("{GROUP_PREFIX}{id}")),
            });
        }
        self.view.batch(ops).await?;
        self.apply(changes);
        Ok(())
    }

    fn apply(&self, changes: Vec<Change>) {
        let mut state = self.state_mut();
        for c in changes {
            state.apply(c);
        }
        drop(state);
        self.resolved.clear();
    }

    /// The entity's disabled flag and identity policies (from memory,
    /// cached until the next change); `None` when it does not exist.
    pub fn resolve(&self, entity_id: &str) -> Option<Arc<Resolved>> {
        if let Some(r) = self.resolved.get(entity_id) {
            return Some(r.clone());
        }
        let r = Arc::new(self.state().resolve(entity_id)?);
        self.resolved.insert(entity_id.to_string(), r.clone());
        Some(r)
    }

    /// What policy and token templates see of an entity (from memory).
    pub fn facts(&self, entity_id: &str) -> Option<IdentityFacts> {
        self.state().facts(entity_id)
    }

    /// The entity a login with `alias` on the auth mount `accessor`
    /// resolves to: the alias's entity, or a new entity with this alias
    /// (entity and alias persisted in one write). Concurrent first logins
    /// of one alias make one entity. The alias's metadata follows the
    /// auth method's.
    pub async fn login(&self, accessor: &str, alias: &LoginAlias) -> Result<Arc<Entity>> {
        let metadata = (!alias.metadata.is_empty()).then(|| alias.metadata.clone());
        let found = |state: &State| {
            state
                .alias_by_key(accessor, &alias.name)
                .map(|(e, a)| (e.clone(), a.metadata == metadata))
        };
        if let Some((entity, true)) = found(&self.state()) {
            return Ok(entity);
        }
        let _write = self.write.lock().await;
        let existing = found(&self.state());
        match existing {
            Some((entity, true)) => Ok(entity),
            Some((entity, false)) => {
                let mut updated = (*entity).clone();
                let at = now();
                for a in &mut updated.aliases {
                    if a.mount_accessor == accessor && a.name == alias.name {
                        a.metadata = metadata.clone();
                        a.last_update_time = at.clone();
                    }
                }
                self.commit(vec![Change::PutEntity(updated.clone())])
                    .await?;
                Ok(Arc::new(updated))
            }
            None => {
                let at = now();
                let id = self.new_id();
                let short = uuid::Uuid::new_v4().simple().to_string();
                let entity = Entity {
                    id: id.clone(),
                    name: format!("entity_{}.{}", &short[..8], self.namespace_id),
                    policies: Vec::new(),
                    metadata: None,
                    disabled: false,
                    creation_time: at.clone(),
                    last_update_time: at.clone(),
                    merged_entity_ids: None,
                    aliases: vec![EntityAlias {
                        id: self.new_id(),
                        canonical_id: id,
                        name: alias.name.clone(),
                        mount_accessor: accessor.to_string(),
                        metadata,
                        custom_metadata: None,
                        creation_time: at.clone(),
                        last_update_time: at,
                        merged_from_canonical_ids: None,
                    }],
                };
                self.commit(vec![Change::PutEntity(entity.clone())]).await?;
                Ok(Arc::new(entity))
            }
        }
    }
}
