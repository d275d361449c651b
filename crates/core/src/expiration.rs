//! Expiration: when tokens and leased secrets end.
//!
//! [`Schedule`] is the one timetable of everything that expires, tokens and
//! secret leases alike; the [`Core`](crate::node::Core) runs a reaper task
//! that sleeps until the earliest deadline and revokes what is due. The
//! timetable is rebuilt from storage at every unseal (token entries and
//! [`LeaseStore`] entries carry their expiry; tokens are scheduled by the
//! token store's background pass, see [`crate::token`]), so expiry
//! survives restarts and seal/unseal: anything that came due while the
//! server was down is revoked right after unsealing (tokens once the pass
//! has indexed them, since revoking a token needs its whole tree).
//!
//! [`LeaseStore`] keeps secret leases (responses a backend marked as leased)
//! persisted behind the barrier under `sys/expire/id/<lease id>`, loaded in
//! memory with an index by the token that created them, so that revoking a
//! token revokes its leases.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::namespace::Places;
use crate::token::{now_unix, random_base62};
use strongroom_sdk::logical::Data;
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};

/// Something that expires.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Due {
    /// A service token, by hashed id.
    Token(String),
    /// A secret lease, by lease id.
    Lease(String),
}

/// A deadline's key as the timetable holds it: a token's hashed id (64 hex
/// characters) as its 32 bytes rather than a 64-byte string, since every
/// expiring token stays in the timetable (see [`crate::token`] for the
/// per-token memory budget).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Slot {
    Token([u8; 32]),
    Other(Due),
}

impl Slot {
    fn of(due: Due) -> Slot {
        if let Due::Token(hash) = &due {
            let mut key = [0u8; 32];
            if hex::decode_to_slice(hash, &mut key).is_ok() {
                return Slot::Token(key);
            }
        }
        Slot::Other(due)
    }

    fn due(self) -> Due {
        match self {
            Slot::Token(key) => Due::Token(hex::encode(key)),
            Slot::Other(due) => due,
        }
    }
}

#[derive(Default)]
struct Timetable {
    by_time: BTreeSet<(u64, Slot)>,
    by_key: HashMap<Slot, u64>,
}

/// The timetable of deadlines (unix seconds), woken when it changes.
#[derive(Default)]
pub struct Schedule {
    inner: Mutex<Timetable>,
    changed: tokio::sync::Notify,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule").finish_non_exhaustive()
    }
}

impl Schedule {
    fn table(&self) -> std::sync::MutexGuard<'_, Timetable> {
        // A panic while holding this lock cannot leave the two maps out of
        // step (each update is two infallible inserts/removes), so a
        // poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets (or moves) the deadline of `key`.
    pub fn set(&self, key: Due, at: u64) {
        let key = Slot::of(key);
        let earlier = {
            let mut t = self.table();
            if let Some(old) = t.by_key.insert(key.clone(), at) {
                t.by_time.remove(&(old, key.clone()));
            }
            t.by_time.insert((at, key));
            t.by_time.first().is_some_and(|(first, _)| *first == at)
        };
        if earlier {
            self.changed.notify_one();
        }
    }

    /// Forgets the deadline of `key`.
    pub fn remove(&self, key: &Due) {
        let key = Slot::of(key.clone());
        let mut t = self.table();
        if let Some(old) = t.by_key.remove(&key) {
            t.by_time.remove(&(old, key));
        }
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<u64> {
        self.table().by_time.first().map(|(at, _)| *at)
    }

    /// Takes everything due at `now` out of the timetable.
    pub fn take_due(&self, now: u64) -> Vec<Due> {
        let mut t = self.table();
        let mut out = Vec::new();
        while let Some((at, key)) = t.by_time.first().cloned() {
            if at > now {
                break;
            }
            t.by_time.remove(&(at, key.clone()));
            t.by_key.remove(&key);
            out.push(key.due());
        }
        out
    }

    /// Waits until the timetable gets an earlier deadline.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

/// A leased secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseEntry {
    /// `<request path>/<random>`.
    pub lease_id: String,
    /// The request path that produced the secret.
    pub path: String,
    /// Hashed id of the token that read it ("" for none).
    pub token_hash: String,
    /// What the backend needs to revoke the secret.
    pub internal: Data,
    /// Unix seconds of issue.
    pub issue_time: u64,
    /// Unix seconds of expiry (0: never).
    pub expire_time: u64,
    /// Unix seconds of the last renewal (0: never).
    pub last_renewal: u64,
    /// The TTL granted at issue.
    pub ttl: u64,
    /// Whether `sys/leases/renew` may extend it.
    pub renewable: bool,
    /// The max TTL counted from issue (0: none).
    pub max_ttl: u64,
    /// The id of the namespace the secret was read in (`""`: root); the
    /// lease id ends with `.<namespace id>` and `path` is relative to it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_id: String,
}

/// The secret leases of an unsealed server.
pub struct LeaseStore {
    /// The root namespace's lease storage; other namespaces' are at the
    /// same place under their prefix.
    view: View,
    places: Arc<dyn Places>,
    schedule: Arc<Schedule>,
    leases: DashMap<String, Arc<LeaseEntry>>,
    by_token: DashMap<String, HashSet<String>>,
}

impl std::fmt::Debug for LeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseStore")
            .field("leases", &self.leases.len())
            .finish_non_exhaustive()
    }
}

const ID_PREFIX: &str = "id/";

impl LeaseStore {
    /// Loads every stored lease (of every namespace `places` knows) and
    /// schedules its expiry.
    pub async fn open(
        view: View,
        schedule: Arc<Schedule>,
        places: Arc<dyn Places>,
    ) -> Result<Self> {
        let store = LeaseStore {
            view,
            places,
            schedule,
            leases: DashMap::new(),
            by_token: DashMap::new(),
        };
        store.load(&store.view.clone()).await?;
        for ns in store.places.ids() {
            if let Some(view) = store.view_for(&ns) {
                store.load(&view).await?;
            }
        }
        Ok(store)
    }

    /// Indexes the leases stored in `view`.
    async fn load(&self, view: &View) -> Result<()> {
        let mut stack = vec![String::new()];
        while let Some(prefix) = stack.pop() {
            for k in view.list(&format!("{ID_PREFIX}{prefix}")).await? {
                let full = format!("{prefix}{k}");
                if k.ends_with('/') {
                    stack.push(full);
                    continue;
                }
                let Some(bytes) = view.get(&format!("{ID_PREFIX}{full}")).await? else {
                    continue;
                };
                let entry: LeaseEntry = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::internal(format!("corrupt lease entry: {e}")))?;
                self.index(Arc::new(entry));
            }
        }
        Ok(())
    }

    /// The lease storage of namespace `ns` (`""`: root).
    fn view_for(&self, ns: &str) -> Option<View> {
        crate::namespace::view_in(&*self.places, &self.view, ns)
    }

    /// The storage of the lease `lease_id` (its namespace's, from its id).
    fn view_of(&self, lease_id: &str) -> Option<View> {
        self.view_for(crate::namespace::id_suffix(lease_id).unwrap_or_default())
    }

    /// The ids of every lease of namespace `ns`.
    pub fn of_namespace(&self, ns: &str) -> Vec<String> {
        self.leases
            .iter()
            .filter(|e| e.namespace_id == ns)
            .map(|e| e.key().clone())
            .collect()
    }

    /// How many leases of namespace `ns` were created at a path under
    /// `prefix` (relative to the namespace; lease-count quotas).
    pub fn count_under(&self, ns: &str, prefix: &str) -> u64 {
        let n = self
            .leases
            .iter()
            .filter(|e| e.namespace_id == ns && e.path.starts_with(prefix))
            .count();
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    fn index(&self, entry: Arc<LeaseEntry>) {
        if !entry.token_hash.is_empty() {
            self.by_token
                .entry(entry.token_hash.clone())
                .or_default()
                .insert(entry.lease_id.clone());
        }
        let key = Due::Lease(entry.lease_id.clone());
        match entry.expire_time {
            0 => self.schedule.remove(&key),
            at => self.schedule.set(key, at),
        }
        self.leases.insert(entry.lease_id.clone(), entry);
    }

    async fn persist(&self, entry: &LeaseEntry) -> Result<()> {
        let bytes = serde_json::to_vec(entry).map_err(Error::internal)?;
        let view = self
            .view_for(&entry.namespace_id)
            .ok_or_else(|| Error::bad_request("namespace not found"))?;
        view.put(&format!("{ID_PREFIX}{}", entry.lease_id), &bytes)
            .await?;
        Ok(())
    }

    /// Registers a secret read at `path` (relative to namespace
    /// `namespace_id`, `""` for root) by `token_hash`, leased for `ttl`
    /// seconds (bounded by `max_ttl`); returns the new lease.
    #[allow(clippy::too_many_arguments)] // What a lease is made of.
    pub async fn register(
        &self,
        namespace_id: &str,
        path: &str,
        token_hash: &str,
        internal: Data,
        ttl: u64,
        max_ttl: u64,
        renewable: bool,
    ) -> Result<Arc<LeaseEntry>> {
        let now = now_unix();
        let ttl = if max_ttl > 0 { ttl.min(max_ttl) } else { ttl };
        let entry = LeaseEntry {
            lease_id: if namespace_id.is_empty() {
                format!("{}/{}", path.trim_end_matches('/'), random_base62(24))
            } else {
                format!(
                    "{}/{}.{namespace_id}",
                    path.trim_end_matches('/'),
                    random_base62(24)
                )
            },
            path: path.to_string(),
            token_hash: token_hash.to_string(),
            internal,
            issue_time: now,
            expire_time: if ttl > 0 { now + ttl } else { 0 },
            last_renewal: 0,
            ttl,
            renewable,
            max_ttl,
            namespace_id: namespace_id.to_string(),
        };
        self.persist(&entry).await?;
        let entry = Arc::new(entry);
        self.index(entry.clone());
        Ok(entry)
    }

    /// How many leases there are (every namespace's).
    pub fn count(&self) -> usize {
        self.leases.len()
    }

    /// The lease with this id.
    pub fn get(&self, lease_id: &str) -> Option<Arc<LeaseEntry>> {
        self.leases.get(lease_id).map(|e| e.clone())
    }

    /// Every lease id.
    pub fn ids(&self) -> Vec<String> {
        self.leases.iter().map(|e| e.key().clone()).collect()
    }

    /// The leases a token created.
    pub fn of_token(&self, token_hash: &str) -> Vec<String> {
        self.by_token
            .get(token_hash)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Extends a lease by `increment` (or its original TTL), never past its
    /// max TTL from issue.
    pub async fn renew(&self, lease_id: &str, increment: u64) -> Result<Arc<LeaseEntry>> {
        let current = self
            .get(lease_id)
            .ok_or_else(|| Error::bad_request("lease not found"))?;
        if !current.renewable {
            return Err(Error::bad_request("lease is not renewable"));
        }
        let now = now_unix();
        let mut ttl = if increment > 0 {
            increment
        } else {
            current.ttl
        };
        if current.max_ttl > 0 {
            ttl = ttl.min((current.issue_time + current.max_ttl).saturating_sub(now));
        }
        let mut next = (*current).clone();
        next.expire_time = now + ttl;
        next.last_renewal = now;
        self.persist(&next).await?;
        let next = Arc::new(next);
        self.index(next.clone());
        Ok(next)
    }

    /// Deletes a lease from storage, then memory. Idempotent.
    pub async fn remove(&self, lease_id: &str) -> Result<()> {
        if let Some(view) = self.view_of(lease_id) {
            view.delete(&format!("{ID_PREFIX}{lease_id}")).await?;
        }
        if let Some((_, e)) = self.leases.remove(lease_id) {
            if let Some(mut s) = self.by_token.get_mut(&e.token_hash) {
                s.remove(lease_id);
            }
            self.by_token.remove_if(&e.token_hash, |_, s| s.is_empty());
        }
        self.schedule.remove(&Due::Lease(lease_id.to_string()));
        Ok(())
    }
}

/// The next level of keys below `prefix` among `ids`, as a storage listing
/// shows them (`foo/` for deeper ids), sorted and deduplicated.
pub fn list_level<'a>(prefix: &str, ids: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = ids
        .filter_map(|id| id.strip_prefix(prefix))
        .filter(|rest| !rest.is_empty())
        .map(|rest| match rest.find('/') {
            Some(i) => rest[..=i].to_string(),
            None => rest.to_string(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schedule_hands_out_what_is_due_in_order() {
        let s = Schedule::default();
        s.set(Due::Token("a".into()), 30);
        s.set(Due::Lease("b".into()), 10);
        s.set(Due::Token("c".into()), 20);
        s.set(Due::Token("c".into()), 40); // moved later
        s.remove(&Due::Token("a".into()));
        assert_eq!(s.next(), Some(10));
        assert_eq!(s.take_due(25), vec![Due::Lease("b".into())]);
        assert_eq!(s.next(), Some(40));
        assert!(s.take_due(39).is_empty());
        assert_eq!(s.take_due(40), vec![Due::Token("c".into())]);
        assert_eq!(s.next(), None);
    }

    #[test]
    fn listing_shows_one_level() {
        let ids = ["auth/token/create/h1", "auth/token/create/h2", "kv/x/y"];
        assert_eq!(list_level("", ids.iter().copied()), vec!["auth/", "kv/"]);
        assert_eq!(
            list_level("auth/token/create/", ids.iter().copied()),
            vec!["h1", "h2"]
        );
        assert!(list_level("nope/", ids.iter().copied()).is_empty());
    }
}
