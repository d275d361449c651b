//! The token store: service tokens are persisted by salted hash (HMAC-SHA256
//! under a per-server salt kept behind the barrier), never in plaintext;
//! batch tokens are not persisted at all but carry their own entry,
//! encrypted and authenticated ([`batch`]).
//!
//! Every stored token is loaded into memory when the server unseals, and
//! every write goes through this store, so the in-memory maps are the
//! authoritative index: validating a request's token costs no storage read
//! and takes no global lock (sharded maps), and a miss means "no such
//! token". The maps also hold what storage does not need to: accessors and
//! the parent → children tree are rebuilt from the entries at load, so
//! creating a token is one storage write.
//!
//! Revocation (which also reaches leases and cubbyholes) is orchestrated by
//! the [`Core`](crate::node::Core); this store only answers for tokens.

pub mod backend;
pub mod batch;
pub mod role;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::expiration::{Due, Schedule};
use strongroom_barrier::Barrier;
use strongroom_sdk::storage::BatchOp;
use strongroom_sdk::storage::View;
use strongroom_sdk::token_type::TokenType;
use strongroom_sdk::{Error, Result};

/// The salt's key in the token store's view.
const SALT_KEY: &str = "salt";
/// The batch-token key's key in the token store's view.
const BATCH_KEY: &str = "batch-key";
/// Prefix of token entries by hashed id.
const ID_PREFIX: &str = "id/";
/// The only policy of response-wrapping tokens.
pub const RESPONSE_WRAPPING_POLICY: &str = "response-wrapping";

/// A token's entry. For service tokens this is what is stored (the id
/// itself never is, only its salted hash); batch tokens carry it inside the
/// token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// HMAC of the token id, hex (empty for batch tokens).
    pub id_hash: String,
    /// The token's accessor (empty for batch tokens).
    pub accessor: String,
    /// Policies attached to the token.
    pub policies: Vec<String>,
    /// The path that created it.
    pub path: String,
    /// Human-readable name.
    pub display_name: String,
    /// Unix seconds of creation.
    pub creation_time: u64,
    /// TTL in seconds at creation, 0 for none.
    pub ttl: u64,
    /// Explicit maximum TTL in seconds, 0 for none.
    pub explicit_max_ttl: u64,
    /// Remaining uses: 0 unlimited, > 0 remaining, -1 used up (the token is
    /// being revoked).
    pub num_uses: i64,
    /// No parent.
    pub orphan: bool,
    /// Hashed id of the parent, if any.
    pub parent: Option<String>,
    /// Free metadata.
    pub meta: Option<Map<String, Value>>,
    /// `service` or `batch`.
    pub token_type: TokenType,
    /// Whether `renew` may extend it.
    #[serde(default)]
    pub renewable: bool,
    /// Periodic tokens renew to this period, in seconds (0: not periodic).
    #[serde(default)]
    pub period: u64,
    /// Unix seconds at which the token expires (0: never).
    #[serde(default)]
    pub expire_time: u64,
    /// Unix seconds of the last renewal (0: never renewed).
    #[serde(default)]
    pub last_renewal: u64,
    /// The token role that created it, if any.
    #[serde(default)]
    pub role: String,
    /// Random id naming the token's cubbyhole (empty for batch tokens).
    #[serde(default)]
    pub cubbyhole_id: String,
    /// CIDR blocks the token may be used from (empty: anywhere).
    #[serde(default)]
    pub bound_cidrs: Vec<strongroom_sdk::cidr::BoundCidr>,
    /// The max TTL its auth method set, counted from creation (0: the
    /// mount's); renewals stay within it.
    #[serde(default)]
    pub max_ttl: u64,
}

impl TokenEntry {
    /// Whether the token carries the root policy.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// Whether this is a batch token.
    pub fn is_batch(&self) -> bool {
        self.token_type.is_batch()
    }

    /// Whether this is a response-wrapping token.
    pub fn is_wrapping(&self) -> bool {
        self.policies.len() == 1 && self.policies[0] == RESPONSE_WRAPPING_POLICY
    }

    /// Unix seconds at which the token expires, if it does.
    pub fn expires_at(&self) -> Option<u64> {
        (self.expire_time > 0).then_some(self.expire_time)
    }

    /// Whether the token has expired at `now` (unix seconds).
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at().is_some_and(|at| now >= at)
    }

    /// The lease id under which `sys/leases` shows a service token.
    pub fn lease_id(&self) -> String {
        format!("{}/h{}", self.path.trim_end_matches('/'), self.id_hash)
    }
}

/// What a new token is made of (after the caller applied its rules).
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    /// Policies, sorted and deduplicated by the caller.
    pub policies: Vec<String>,
    /// Free metadata.
    pub meta: Option<Map<String, Value>>,
    /// Human-readable name.
    pub display_name: String,
    /// TTL in seconds (0: none).
    pub ttl: u64,
    /// Explicit max TTL in seconds (0: none).
    pub explicit_max_ttl: u64,
    /// Period in seconds (0: none).
    pub period: u64,
    /// Whether it can be renewed.
    pub renewable: bool,
    /// Hashed id of the parent; `None` makes an orphan.
    pub parent: Option<String>,
    /// The path that created it.
    pub path: String,
    /// Maximum uses (0: unlimited).
    pub num_uses: i64,
    /// The role that created it.
    pub role: String,
    /// CIDR blocks the token is bound to.
    pub bound_cidrs: Vec<strongroom_sdk::cidr::BoundCidr>,
    /// The max TTL the auth method set (0: the mount's).
    pub max_ttl: u64,
    /// `batch` for a batch token, else a service token.
    pub batch: bool,
    /// A caller-chosen id (root only; validated by the caller).
    pub id: Option<String>,
}

/// The token store of an unsealed server.
pub struct TokenStore {
    view: View,
    salt: hmac::Key,
    batch: batch::Codec,
    /// Every live service token, by hashed id.
    tokens: DashMap<String, Arc<TokenEntry>>,
    /// Accessor → hashed id.
    accessors: DashMap<String, String>,
    /// Parent hashed id → children hashed ids.
    children: DashMap<String, HashSet<String>>,
    /// Serialises use-count updates per limited-use token.
    use_locks: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    schedule: Arc<Schedule>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

/// Random base62 text of `len` characters.
pub fn random_base62(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        // aws-lc's RNG does not fail on supported platforms; an error here
        // would leave `buf` as zeros, so refuse to continue rather than
        // produce a guessable token.
        #[allow(clippy::expect_used)]
        aws_lc_rs::rand::fill(&mut buf).expect("system random generator failed");
        for b in buf {
            // Rejection sampling keeps the distribution uniform.
            if b < 248 && out.len() < len {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The TTL a new token starts with, in seconds (0: never expires):
/// its `period` for periodic tokens, else `requested`, else `default`
/// (unless the token may never expire: `no_expiry`); bounded by `max` unless periodic,
/// and always by `explicit_max` (OpenBao's rules for created and logged-in
/// tokens alike).
pub fn initial_ttl(
    requested: u64,
    period: u64,
    explicit_max: u64,
    default: u64,
    max: u64,
    no_expiry: bool,
) -> u64 {
    let mut ttl = match (requested, period) {
        (_, p) if p > 0 => p,
        (0, _) if no_expiry => 0,
        (0, _) => default,
        (t, _) => t,
    };
    if ttl > 0 && period == 0 && max > 0 {
        ttl = ttl.min(max);
    }
    if explicit_max > 0 {
        ttl = if ttl == 0 {
            explicit_max
        } else {
            ttl.min(explicit_max)
        };
    }
    ttl
}

#[cfg(test)]
#[test]
fn initial_ttl_follows_openbao() {
    // (requested, period, explicit max, default, max, no expiry) -> ttl
    for (args, ttl) in [
        ((0, 0, 0, 100, 1000, false), 100),
        ((0, 0, 0, 100, 1000, true), 0),
        ((5000, 0, 0, 100, 1000, false), 1000),
        ((50, 3000, 0, 100, 1000, false), 3000),
        ((5000, 0, 200, 100, 1000, false), 200),
        ((0, 0, 200, 100, 1000, true), 200),
    ] {
        let (r, p, e, d, m, n) = args;
        assert_eq!(initial_ttl(r, p, e, d, m, n), ttl, "{args:?}");
    }
}

/// What a use of a token left of it.
#[derive(Debug, Clone)]
pub struct Used {
    /// The entry after the use.
    pub entry: Arc<TokenEntry>,
    /// The use was the last one: revoke the token once the request is done.
    pub exhausted: bool,
}

impl TokenStore {
    /// Opens the store in `view`, creating its keys on first use, and loads
    /// every stored token into memory. Tokens whose parent is gone (a crash
    /// during a tree revocation) are returned for the caller to revoke.
    pub async fn open(view: View, schedule: Arc<Schedule>) -> Result<(Self, Vec<String>)> {
        let salt = load_or_create_key(&view, SALT_KEY).await?;
        let batch_key = load_or_create_key(&view, BATCH_KEY).await?;
        let store = TokenStore {
            salt: hmac::Key::new(hmac::HMAC_SHA256, &salt),
            batch: batch::Codec::new(&batch_key)?,
            view,
            tokens: DashMap::new(),
            accessors: DashMap::new(),
            children: DashMap::new(),
            use_locks: DashMap::new(),
            schedule,
        };
        for hash in store.view.list(ID_PREFIX).await? {
            let Some(bytes) = store.view.get(&format!("{ID_PREFIX}{hash}")).await? else {
                continue;
            };
            let entry: TokenEntry = serde_json::from_slice(&bytes)
                .map_err(|e| Error::internal(format!("corrupt token entry: {e}")))?;
            store.index(Arc::new(entry));
        }
        let dangling = store
            .tokens
            .iter()
            .filter(|e| {
                e.parent
                    .as_ref()
                    .is_some_and(|p| !store.tokens.contains_key(p))
            })
            .map(|e| e.id_hash.clone())
            .collect();
        Ok((store, dangling))
    }

    /// Adds `entry` to the in-memory maps and the expiry schedule.
    fn index(&self, entry: Arc<TokenEntry>) {
        if let Some(parent) = &entry.parent {
            self.children
                .entry(parent.clone())
                .or_default()
                .insert(entry.id_hash.clone());
        }
        self.accessors
            .insert(entry.accessor.clone(), entry.id_hash.clone());
        match entry.expires_at() {
            Some(at) => self.schedule.set(Due::Token(entry.id_hash.clone()), at),
            None => self.schedule.remove(&Due::Token(entry.id_hash.clone())),
        }
        self.tokens.insert(entry.id_hash.clone(), entry);
    }

    /// The salted hash under which a token id is stored.
    pub fn hash(&self, id: &str) -> String {
        hex::encode(hmac::sign(&self.salt, id.as_bytes()).as_ref())
    }

    /// Creates a root token, with `id` or a fresh `s.` id; returns the id.
    /// `sys/init` makes it under `auth/token/root`; dev mode, as OpenBao's,
    /// under `auth/token/create`.
    pub async fn create_root(&self, id: Option<&str>, dev: bool) -> Result<String> {
        let (path, display_name) = if dev {
            ("auth/token/create", "token")
        } else {
            ("auth/token/root", "root")
        };
        let new = NewToken {
            policies: vec!["root".into()],
            display_name: display_name.into(),
            path: path.into(),
            id: id.filter(|i| !i.is_empty()).map(str::to_string),
            ..Default::default()
        };
        let (id, _) = self.create(new).await?;
        Ok(id)
    }

    /// Creates a token (service or batch); returns its id and entry. A
    /// child of a parent that was revoked meanwhile is not created.
    pub async fn create(&self, new: NewToken) -> Result<(String, Arc<TokenEntry>)> {
        self.create_with(new, |_| Ok(Vec::new())).await
    }

    /// [`create`](Self::create), writing `extra` (barrier-absolute keys,
    /// computed from the new entry) in the same atomic batch as the token:
    /// response wrapping stores the token and its wrapped answer at once.
    pub async fn create_with(
        &self,
        new: NewToken,
        extra: impl FnOnce(&TokenEntry) -> Result<Vec<BatchOp>>,
    ) -> Result<(String, Arc<TokenEntry>)> {
        let now = now_unix();
        let mut entry = TokenEntry {
            id_hash: String::new(),
            accessor: String::new(),
            policies: new.policies,
            path: new.path,
            display_name: new.display_name,
            creation_time: now,
            ttl: new.ttl,
            explicit_max_ttl: new.explicit_max_ttl,
            num_uses: new.num_uses,
            orphan: new.parent.is_none(),
            parent: new.parent,
            meta: new.meta,
            token_type: if new.batch {
                TokenType::Batch
            } else {
                TokenType::Service
            },
            renewable: new.renewable && !new.batch,
            period: new.period,
            expire_time: if new.ttl > 0 { now + new.ttl } else { 0 },
            last_renewal: 0,
            role: new.role,
            cubbyhole_id: String::new(),
            bound_cidrs: new.bound_cidrs,
            max_ttl: new.max_ttl,
        };
        if new.batch {
            let id = self.batch.seal(&entry)?;
            return Ok((id, Arc::new(entry)));
        }
        let id = new.id.unwrap_or_else(|| format!("s.{}", random_base62(24)));
        entry.id_hash = self.hash(&id);
        if self.tokens.contains_key(&entry.id_hash) {
            return Err(Error::bad_request(
                "cannot create a token with a duplicate ID",
            ));
        }
        entry.accessor = random_base62(24);
        entry.cubbyhole_id = random_base62(24);
        let mut ops = vec![self.put_op(&entry)?];
        ops.extend(extra(&entry)?);
        self.view.storage().batch(ops).await?;
        let entry = Arc::new(entry);
        self.index(entry.clone());
        if let Some(parent) = &entry.parent {
            if !self.tokens.contains_key(parent) {
                // The parent's tree was revoked while this child was being
                // written: the child must not outlive it.
                self.delete(&entry.id_hash).await?;
                return Err(Error::PermissionDenied);
            }
        }
        Ok((id, entry))
    }

    /// The barrier-absolute key of a token entry.
    fn entry_key(&self, hash: &str) -> String {
        format!("{}{ID_PREFIX}{hash}", self.view.prefix())
    }

    fn put_op(&self, entry: &TokenEntry) -> Result<BatchOp> {
        let bytes = serde_json::to_vec(entry).map_err(Error::internal)?;
        Ok(BatchOp::Put(self.entry_key(&entry.id_hash), bytes))
    }

    async fn persist(&self, entry: &TokenEntry) -> Result<()> {
        let bytes = serde_json::to_vec(entry).map_err(Error::internal)?;
        self.view
            .put(&format!("{ID_PREFIX}{}", entry.id_hash), &bytes)
            .await?;
        Ok(())
    }

    /// Replaces a stored entry (same hash) in storage and memory.
    async fn update(&self, entry: TokenEntry) -> Result<Arc<TokenEntry>> {
        self.persist(&entry).await?;
        let entry = Arc::new(entry);
        self.index(entry.clone());
        Ok(entry)
    }

    /// Looks a token id up. Expired tokens are not returned; used-up ones
    /// are (their last request may still be looking at them).
    pub fn lookup(&self, id: &str) -> Option<Arc<TokenEntry>> {
        if id.starts_with(batch::PREFIX) {
            let entry = self.batch.open(id)?;
            let parent_alive = entry
                .parent
                .as_ref()
                .is_none_or(|p| self.lookup_hash(p).is_some());
            return (parent_alive && !entry.expired(now_unix())).then(|| Arc::new(entry));
        }
        self.lookup_hash(&self.hash(id))
    }

    /// Looks a service token up by its hashed id.
    pub fn lookup_hash(&self, hash: &str) -> Option<Arc<TokenEntry>> {
        let e = self.tokens.get(hash)?;
        (!e.expired(now_unix())).then(|| e.clone())
    }

    /// A service token's entry by hashed id, expired or not (for
    /// revocation, which must clean up after expired tokens too).
    pub fn get_any(&self, hash: &str) -> Option<Arc<TokenEntry>> {
        self.tokens.get(hash).map(|e| e.clone())
    }

    /// Looks a token up by its accessor.
    pub fn lookup_accessor(&self, accessor: &str) -> Option<Arc<TokenEntry>> {
        let hash = self.accessors.get(accessor)?.clone();
        self.lookup_hash(&hash)
    }

    /// Every accessor of a live service token.
    pub fn accessors(&self) -> Vec<String> {
        let mut v: Vec<String> = self.accessors.iter().map(|e| e.key().clone()).collect();
        v.sort();
        v
    }

    /// Every live service token (for `sys/leases` listings and tidy).
    pub fn entries(&self) -> Vec<Arc<TokenEntry>> {
        self.tokens.iter().map(|e| e.value().clone()).collect()
    }

    /// Spends one use of `entry`. Unlimited tokens pass untouched; a
    /// limited one is counted down under its own lock, so that concurrent
    /// requests never spend more uses than the token has. A used-up token
    /// is refused.
    pub async fn use_token(&self, entry: Arc<TokenEntry>) -> Result<Used> {
        if entry.num_uses == 0 {
            return Ok(Used {
                entry,
                exhausted: false,
            });
        }
        if entry.is_batch() {
            // Batch tokens never carry a use count (refused at creation).
            return Err(Error::PermissionDenied);
        }
        let (_guard, current) = self.lock_usable(&entry.id_hash).await?;
        let mut next = (*current).clone();
        next.num_uses -= 1;
        let exhausted = next.num_uses == 0;
        if exhausted {
            next.num_uses = -1;
        }
        let entry = self.update(next).await?;
        Ok(Used { entry, exhausted })
    }

    /// Takes the use lock of a limited-use token and returns its current
    /// entry, or `PermissionDenied` when it is gone or used up.
    async fn lock_usable(
        &self,
        hash: &str,
    ) -> Result<(tokio::sync::OwnedMutexGuard<()>, Arc<TokenEntry>)> {
        let lock = self.use_locks.entry(hash.to_string()).or_default().clone();
        let guard = lock.lock_owned().await;
        let current = self.lookup_hash(hash).ok_or(Error::PermissionDenied)?;
        if current.num_uses <= 0 {
            return Err(Error::PermissionDenied);
        }
        Ok((guard, current))
    }

    /// Spends the single use of a childless, lease-free token (a wrapping
    /// token) by deleting it, with `extra` (barrier-absolute keys) in the
    /// same atomic batch: one write, and of concurrent claims exactly one
    /// succeeds.
    pub async fn claim(&self, entry: &TokenEntry, extra: Vec<BatchOp>) -> Result<()> {
        let (_guard, _) = self.lock_usable(&entry.id_hash).await?;
        let mut ops = vec![BatchOp::Delete(self.entry_key(&entry.id_hash))];
        ops.extend(extra);
        self.view.storage().batch(ops).await?;
        self.forget(&entry.id_hash);
        Ok(())
    }

    /// The children of a token, by hashed id.
    pub fn children_of(&self, hash: &str) -> Vec<String> {
        self.children
            .get(hash)
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The tree below `hash`, children before their parents, `hash` last.
    pub fn tree_postorder(&self, hash: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        // Iterative depth-first walk: a deep tree cannot overflow the stack.
        let mut stack = vec![(hash.to_string(), false)];
        while let Some((h, expanded)) = stack.pop() {
            if expanded {
                out.push(h);
                continue;
            }
            if !seen.insert(h.clone()) {
                continue;
            }
            stack.push((h.clone(), true));
            for c in self.children_of(&h) {
                stack.push((c, false));
            }
        }
        out
    }

    /// Makes the children of `hash` orphans (for `revoke-orphan`).
    pub async fn orphan_children(&self, hash: &str) -> Result<()> {
        for child in self.children_of(hash) {
            if let Some(e) = self.tokens.get(&child).map(|e| e.clone()) {
                let mut next = (*e).clone();
                next.parent = None;
                next.orphan = true;
                self.update(next).await?;
            }
        }
        self.children.remove(hash);
        Ok(())
    }

    /// Deletes one token from storage, then from memory. Idempotent.
    pub async fn delete(&self, hash: &str) -> Result<()> {
        self.view.delete(&format!("{ID_PREFIX}{hash}")).await?;
        self.forget(hash);
        Ok(())
    }

    /// Removes a token from the in-memory maps and the timetable.
    fn forget(&self, hash: &str) {
        if let Some((_, e)) = self.tokens.remove(hash) {
            self.accessors.remove(&e.accessor);
            if let Some(parent) = &e.parent {
                if let Some(mut c) = self.children.get_mut(parent) {
                    c.remove(hash);
                }
                self.children.remove_if(parent, |_, c| c.is_empty());
            }
        }
        self.children.remove_if(hash, |_, c| c.is_empty());
        self.use_locks.remove(hash);
        self.schedule.remove(&Due::Token(hash.to_string()));
    }

    /// Extends a token's life: to its period for periodic tokens, else by
    /// `increment` (or the TTL last granted, by creation or renewal), never past its explicit max TTL or
    /// the mount's max TTL counted from creation. Returns the new entry and
    /// a warning when the TTL was capped.
    pub async fn renew(
        &self,
        hash: &str,
        increment: u64,
        mount_max: u64,
    ) -> Result<(Arc<TokenEntry>, Option<String>)> {
        let current = self
            .lookup_hash(hash)
            .ok_or_else(|| Error::bad_request("token not found"))?;
        if !current.renewable {
            return Err(Error::bad_request("lease is not renewable"));
        }
        let now = now_unix();
        let (wanted, max) = if current.period > 0 {
            (current.period, current.explicit_max_ttl)
        } else {
            // Without an increment OpenBao renews for the TTL last granted:
            // the one of the last renewal, else the one at creation.
            let last_granted = if current.last_renewal > 0 && current.expire_time > 0 {
                current.expire_time.saturating_sub(current.last_renewal)
            } else {
                current.ttl
            };
            let wanted = if increment > 0 {
                increment
            } else {
                last_granted
            };
            // The smallest of the limits that are set.
            let max = [current.explicit_max_ttl, current.max_ttl, mount_max]
                .into_iter()
                .filter(|m| *m > 0)
                .min()
                .unwrap_or(0);
            (wanted, max)
        };
        let mut ttl = wanted;
        let mut warning = None;
        if max > 0 {
            let left = (current.creation_time + max).saturating_sub(now);
            if ttl > left || ttl == 0 {
                if ttl > left {
                    warning = Some(format!(
                        "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
                        strongroom_sdk::duration::format_secs(ttl),
                        strongroom_sdk::duration::format_secs(max)
                    ));
                }
                ttl = left;
            }
        }
        let mut next = (*current).clone();
        next.expire_time = if ttl > 0 { now + ttl } else { 0 };
        next.last_renewal = now;
        let entry = self.update(next).await?;
        Ok((entry, warning))
    }

    /// Removes children links to tokens that no longer exist and returns
    /// the hashes of tokens whose parent is gone (for `tidy`).
    pub fn tidy_candidates(&self) -> Vec<String> {
        let mut stale = HashMap::new();
        for c in self.children.iter() {
            if !self.tokens.contains_key(c.key()) {
                stale.insert(c.key().clone(), c.value().clone());
            }
        }
        stale.into_values().flatten().collect()
    }
}

async fn load_or_create_key(view: &View, key: &str) -> Result<Zeroizing<Vec<u8>>> {
    Ok(match view.get(key).await? {
        Some(s) => Zeroizing::new(s),
        None => {
            let s = Barrier::generate_key();
            view.put(key, &s).await?;
            s
        }
    })
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_nanos(UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
}

/// The token as `lookup`, `lookup-self` and `lookup-accessor` render it;
/// `id` is empty for accessor lookups.
pub fn render(id: &str, e: &TokenEntry) -> Map<String, Value> {
    let now = now_unix();
    let (ttl, expire_time) = match e.expires_at() {
        Some(at) => (at.saturating_sub(now), Value::String(rfc3339(at))),
        None => (0, Value::Null),
    };
    let mut v = json!({
        "accessor": e.accessor,
        "creation_time": e.creation_time,
        "creation_ttl": e.ttl,
        "display_name": e.display_name,
        "entity_id": "",
        "expire_time": expire_time,
        "explicit_max_ttl": e.explicit_max_ttl,
        "id": id,
        "issue_time": rfc3339(e.creation_time),
        "meta": e.meta,
        "num_uses": e.num_uses,
        "orphan": e.orphan,
        "path": e.path,
        "policies": e.policies,
        "renewable": e.renewable,
        "ttl": ttl,
        "type": e.token_type,
    });
    // OpenBao shows `period` for tokens asked to be periodic, not for
    // those a role made periodic.
    if e.period > 0 && e.role.is_empty() {
        v["period"] = json!(e.period);
    }
    if e.last_renewal > 0 {
        v["last_renewal"] = json!(rfc3339(e.last_renewal));
        v["last_renewal_time"] = json!(e.last_renewal);
    }
    if !e.role.is_empty() {
        v["role"] = json!(e.role);
    }
    if !e.bound_cidrs.is_empty() {
        v["bound_cidrs"] = json!(e.bound_cidrs);
    }
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests;
