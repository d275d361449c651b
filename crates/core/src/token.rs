//! The token store: service tokens are persisted by salted hash (HMAC-SHA256
//! under a per-server salt kept behind the barrier), never in plaintext;
//! batch tokens are not persisted at all but carry their own entry,
//! encrypted and authenticated ([`batch`]).
//!
//! # What stays in memory, and when it is there
//!
//! Unsealing must not wait for the tokens: [`TokenStore::open`] only reads
//! the two keys, and [`TokenStore::start_background`] then walks storage
//! once to build a compact **resident skeleton** of every live token (the
//! design of OpenBao's lease restore, with a much smaller per-token
//! footprint than a full entry):
//!
//! - `skel`: hashed id (32 bytes) → accessor (24 bytes) and parent (33
//!   bytes), so that a miss after the pass means "no such token" without a
//!   storage read;
//! - `accessors`: accessor → hashed id (56 bytes);
//! - `children`: parent → set of children (32 bytes per child);
//! - the expiry [`Schedule`] (two 40-byte records per expiring token).
//!
//! That is about 260 bytes of payload per live token; with hash-table
//! slack (load factor ≤ 7/8, tables grow by doubling), B-tree nodes and a
//! small children set per parent, the test `resident_bytes_per_idle_token`
//! measures about 700 bytes per token over a million tokens (half of them
//! children, each of its own parent; the tables just past a doubling), so
//! ~0.7 GB for a million live tokens against ~3.6 KB per token when every
//! full entry was resident. Full entries (policies, metadata, …, around
//! 1 KB each) are only held in a bounded cache of
//! [`ENTRY_CACHE_CAPACITY`] entries (S3-FIFO eviction, `quick_cache`), so
//! the memory held by tokens that are not in use is the skeleton's.
//!
//! Validating a cached token is one map lookup, without a storage read or
//! a global lock. A token missing from the cache is read from storage
//! (and cached): before the pass has finished, any miss reads storage, so
//! tokens that are not indexed yet work from the first request; after it,
//! only tokens in the skeleton do. Creating a token is still one storage
//! batch: accessors and the parent → children tree live in the skeleton,
//! rebuilt from the entries at every unseal, so storage keeps the format
//! of earlier versions (no secondary index keys to build or migrate).
//!
//! What needs the whole set (the tree for revocation and orphaning,
//! accessor listing, tidy, tokens by lease prefix, and accessor lookups
//! that miss) waits for the pass ([`TokenStore::loaded`]); so does the
//! reaper's first token revocation, which is how tokens that expired while
//! the server was down are revoked right after the pass. Readers that fill
//! the cache or skeleton from storage and writers hold the same per-token
//! stripe lock around their storage access and the map update, so a
//! revoked or updated token can never be brought back stale.
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
use crate::namespace::Places;
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
    /// The id of the namespace it was made in (`""`: root).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_id: String,
    /// The entity of the identity store it belongs to (`""`: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub entity_id: String,
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
    /// The id of the namespace it is made in (`""`: root); its id and
    /// accessor end with `.<namespace id>`.
    pub namespace_id: String,
    /// The entity it belongs to (`""`: none).
    pub entity_id: String,
}

/// How many full token entries the store keeps in memory at most; the
/// others are read from storage when used.
pub const ENTRY_CACHE_CAPACITY: usize = 50_000;

/// `open` indexes the store itself when the first of the 256 pages of ids
/// holds at most this many (so about 256 times as many tokens in all).
pub const INLINE_PROBE_MAX: usize = 2;

/// The storage prefix of page `page` (0..256) of token ids: the ids whose
/// hex starts with that byte.
fn page_prefix(page: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    format!(
        "{ID_PREFIX}{}{}",
        char::from(HEX[(page >> 4) & 15]),
        char::from(HEX[page & 15])
    )
}

/// Number of stripe locks serialising storage access per token.
const STRIPES: usize = 1024;

/// A service token's hashed id, as its 32 bytes.
type Key = [u8; 32];
/// An accessor (24 base62 characters), as its bytes.
type AccessorKey = [u8; 24];

/// The hashed id `hash` as a [`Key`]; `None` for text that is not the hex
/// of 32 bytes (no stored token has such a hash).
fn key_of(hash: &str) -> Option<Key> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hash, &mut key).ok().map(|()| key)
}

/// The hex text of a [`Key`].
fn hash_of(key: &Key) -> String {
    hex::encode(key)
}

/// What stays in memory of every live token (see the module comment).
#[derive(Debug, Clone, Copy)]
struct Skeleton {
    /// Its accessor, or `None` when the accessor is not 24 bytes long (then
    /// it is in `odd_accessors`; never the case for tokens this server made).
    accessor: Option<AccessorKey>,
    /// Its parent.
    parent: Option<Key>,
}

/// Where the background pass is.
#[derive(Debug, Clone, PartialEq)]
enum Progress {
    Loading,
    Ready,
    Failed(String),
    /// An HA standby's read-only replica: never indexed (every miss reads
    /// storage); what needs the index belongs to the active node.
    Replica,
}

/// The token store of an unsealed server.
pub struct TokenStore {
    view: View,
    salt: hmac::Key,
    batch: batch::Codec,
    /// Full entries of tokens in use, bounded.
    cache: quick_cache::sync::Cache<Key, Arc<TokenEntry>>,
    /// Every live service token (complete once the pass is done).
    skel: DashMap<Key, Skeleton>,
    /// Accessor → hashed id.
    accessors: DashMap<AccessorKey, Key>,
    /// Accessors that are not 24 bytes long → hashed id.
    odd_accessors: DashMap<String, Key>,
    /// Parent → children (across namespaces: a child may be in a
    /// namespace below its parent's).
    children: DashMap<Key, HashSet<Key>>,
    /// The namespace of every token outside root (root's are not listed).
    ns_of: DashMap<Key, Arc<str>>,
    /// Where each namespace's tokens are stored.
    places: Arc<dyn Places>,
    /// Serialises use-count updates per limited-use token.
    use_locks: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Serialise, per token, storage access with the map updates it leads to.
    stripes: Box<[tokio::sync::Mutex<()>]>,
    schedule: Arc<Schedule>,
    progress: tokio::sync::watch::Sender<Progress>,
    /// What `open` found dangling when it indexed a small store itself.
    inline_dangling: std::sync::Mutex<Option<Vec<String>>>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore")
            .field("tokens", &self.skel.len())
            .field("cached", &self.cache.len())
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
    /// Opens the store in `view`, creating its keys on first use. Tokens are
    /// served from here on (read from storage on a miss), but the index of
    /// every token is built by [`start_background`](Self::start_background),
    /// which the caller starts next. A small store (its first page of ids,
    /// 1/256th of them, has at most [`INLINE_PROBE_MAX`] keys: a few hundred
    /// tokens) is indexed here at once instead.
    ///
    /// `view` is the root namespace's token storage; the tokens of other
    /// namespaces are stored at the same place under their namespace's
    /// prefix, which `places` tells.
    pub async fn open(
        view: View,
        schedule: Arc<Schedule>,
        places: Arc<dyn Places>,
    ) -> Result<Self> {
        Self::open_with(view, schedule, places, true).await
    }

    async fn open_with(
        view: View,
        schedule: Arc<Schedule>,
        places: Arc<dyn Places>,
        inline: bool,
    ) -> Result<Self> {
        let salt = load_or_create_key(&view, SALT_KEY, true).await?;
        let batch_key = load_or_create_key(&view, BATCH_KEY, true).await?;
        Self::assemble(view, schedule, places, inline, salt, batch_key).await
    }

    async fn assemble(
        view: View,
        schedule: Arc<Schedule>,
        places: Arc<dyn Places>,
        inline: bool,
        salt: Zeroizing<Vec<u8>>,
        batch_key: Zeroizing<Vec<u8>>,
    ) -> Result<Self> {
        let store = TokenStore {
            salt: hmac::Key::new(hmac::HMAC_SHA256, &salt),
            batch: batch::Codec::new(&batch_key)?,
            view,
            cache: quick_cache::sync::Cache::new(ENTRY_CACHE_CAPACITY),
            skel: DashMap::new(),
            accessors: DashMap::new(),
            odd_accessors: DashMap::new(),
            children: DashMap::new(),
            ns_of: DashMap::new(),
            places,
            use_locks: DashMap::new(),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            schedule,
            progress: tokio::sync::watch::Sender::new(Progress::Loading),
            inline_dangling: std::sync::Mutex::new(None),
        };
        if inline && store.view.list(&page_prefix(0)).await?.len() <= INLINE_PROBE_MAX {
            for rest in store.view.list(ID_PREFIX).await? {
                store.load_one("", &rest).await?;
            }
            store.load_namespaces().await?;
            let dangling = store.dangling();
            if let Ok(mut slot) = store.inline_dangling.lock() {
                *slot = Some(dangling);
            }
            store.progress.send_replace(Progress::Ready);
        }
        Ok(store)
    }

    /// A read-only replica for an HA standby: lookups by id read storage
    /// on a cache miss and are cached; [`TokenStore::invalidate`] drops
    /// what the active node changed. Nothing is indexed, so what needs the
    /// whole set answers [`Error::Standby`] (forwarded to the active node).
    pub async fn open_replica(view: View, places: Arc<dyn Places>) -> Result<Self> {
        // Never creates the keys: a replica must hash as the active node
        // does (a missing key means no node has activated yet).
        let salt = load_or_create_key(&view, SALT_KEY, false).await?;
        let batch_key = load_or_create_key(&view, BATCH_KEY, false).await?;
        let store = Self::assemble(
            view,
            Arc::new(Schedule::default()),
            places,
            false,
            salt,
            batch_key,
        )
        .await?;
        store.progress.send_replace(Progress::Replica);
        Ok(store)
    }

    /// The active node changed the storage key `key` (relative to this
    /// store's view): a replica forgets what it cached of that token.
    pub async fn invalidate(&self, key: &str) {
        let Some(hash) = key.strip_prefix(ID_PREFIX) else {
            return;
        };
        let Some(k) = key_of(hash) else {
            return;
        };
        let _guard = self.stripe(&k).lock().await;
        self.forget(&k);
    }

    /// Starts the background pass that indexes every stored token (skeleton,
    /// accessors, tree, expiry timetable). The task's result is the hashed
    /// ids of tokens whose parent is gone (a crash during a tree
    /// revocation), for the caller to revoke; [`loaded`](Self::loaded)
    /// tells when it is done. The task holds the store until it is done.
    pub fn start_background(self: &Arc<Self>) -> tokio::task::JoinHandle<Result<Vec<String>>> {
        if self.is_loaded() {
            // Indexed by `open` (a small store).
            let dangling = self
                .inline_dangling
                .lock()
                .ok()
                .and_then(|mut d| d.take())
                .unwrap_or_default();
            return tokio::spawn(async move { Ok(dangling) });
        }
        let store = self.clone();
        tokio::spawn(async move {
            let outcome = store.load_all().await;
            store.progress.send_replace(match &outcome {
                Ok(_) => Progress::Ready,
                Err(e) => Progress::Failed(e.to_string()),
            });
            outcome
        })
    }

    /// Waits until the background pass has indexed every stored token;
    /// an error when it failed (the storage could not be read).
    pub async fn loaded(&self) -> Result<()> {
        let mut rx = self.progress.subscribe();
        let state = rx
            .wait_for(|p| *p != Progress::Loading)
            .await
            .map_err(|_| Error::internal("token index: loading stopped"))?;
        match &*state {
            Progress::Failed(e) => Err(Error::internal(format!("token index: {e}"))),
            // The active node answers what needs the index.
            Progress::Replica => Err(Error::Standby),
            _ => Ok(()),
        }
    }

    /// Whether the background pass has finished.
    pub fn is_loaded(&self) -> bool {
        *self.progress.borrow() == Progress::Ready
    }

    async fn load_all(&self) -> Result<Vec<String>> {
        // Hashed ids are hex: list them in 256 pages by their first two
        // digits, so that the listing never holds every key at once.
        for page in 0..256 {
            let prefix = page_prefix(page);
            for rest in self.view.list(&prefix).await? {
                let hash = format!("{}{rest}", &prefix[ID_PREFIX.len()..]);
                self.load_one("", &hash).await?;
            }
            // Storage reads do not yield: leave room to requests.
            tokio::task::yield_now().await;
        }
        self.load_namespaces().await?;
        Ok(self.dangling())
    }

    /// Indexes the tokens of every namespace but root.
    async fn load_namespaces(&self) -> Result<()> {
        for ns in self.places.ids() {
            let Some(view) = self.view_for(&ns) else {
                continue;
            };
            for hash in view.list(ID_PREFIX).await? {
                self.load_one(&ns, &hash).await?;
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// The token storage of namespace `ns` (`""`: root); `None` when the
    /// namespace does not exist (any more).
    fn view_for(&self, ns: &str) -> Option<View> {
        crate::namespace::view_in(&*self.places, &self.view, ns)
    }

    /// The namespace of an indexed token (`""`: root).
    fn ns_of(&self, key: &Key) -> Arc<str> {
        self.ns_of
            .get(key)
            .map(|n| n.clone())
            .unwrap_or_else(|| "".into())
    }

    /// The hashed ids of every token of namespace `ns` (once indexed).
    pub async fn of_namespace(&self, ns: &str) -> Result<Vec<String>> {
        self.loaded().await?;
        Ok(self
            .ns_of
            .iter()
            .filter(|e| &**e.value() == ns)
            .map(|e| hash_of(e.key()))
            .collect())
    }

    /// Indexed tokens whose parent is not indexed.
    fn dangling(&self) -> Vec<String> {
        self.skel
            .iter()
            .filter(|s| s.parent.is_some_and(|p| !self.skel.contains_key(&p)))
            .map(|s| hash_of(s.key()))
            .collect()
    }

    /// Indexes one stored token of namespace `ns` unless it is already.
    async fn load_one(&self, ns: &str, hash: &str) -> Result<()> {
        let Some(key) = key_of(hash) else {
            tracing::warn!(key = %hash, "token store: ignoring a stored key that is not a token hash");
            return Ok(());
        };
        if self.skel.contains_key(&key) {
            // Indexed by a write or a lookup meanwhile, from storage.
            return Ok(());
        }
        let _guard = self.stripe(&key).lock().await;
        if self.skel.contains_key(&key) {
            return Ok(());
        }
        match self.read(ns, hash).await {
            Ok(Some(entry)) => self.index(key, &entry),
            Ok(None) => {}
            Err(Error::Internal(e)) => {
                tracing::warn!(error = %e, "token store: skipping an unreadable token entry");
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn stripe(&self, key: &Key) -> &tokio::sync::Mutex<()> {
        let i = (usize::from(key[0]) << 8 | usize::from(key[1])) % STRIPES;
        &self.stripes[i]
    }

    /// Reads an entry of namespace `ns` from storage (no caching).
    async fn read(&self, ns: &str, hash: &str) -> Result<Option<TokenEntry>> {
        let Some(view) = self.view_for(ns) else {
            return Ok(None);
        };
        let Some(bytes) = view.get(&format!("{ID_PREFIX}{hash}")).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal(format!("corrupt token entry: {e}")))
    }

    /// Adds `entry` to the skeleton, accessors, tree and expiry schedule.
    /// Callers hold the token's stripe lock, after a storage read or write.
    fn index(&self, key: Key, entry: &TokenEntry) {
        let parent = entry.parent.as_deref().and_then(key_of);
        if let Some(parent) = parent {
            self.children.entry(parent).or_default().insert(key);
        }
        let accessor = match <AccessorKey>::try_from(entry.accessor.as_bytes()) {
            Ok(a) => {
                self.accessors.insert(a, key);
                Some(a)
            }
            Err(_) => {
                self.odd_accessors.insert(entry.accessor.clone(), key);
                None
            }
        };
        self.skel.insert(key, Skeleton { accessor, parent });
        if !entry.namespace_id.is_empty() {
            self.ns_of.insert(key, entry.namespace_id.as_str().into());
        }
        match entry.expires_at() {
            Some(at) => self.schedule.set(Due::Token(entry.id_hash.clone()), at),
            None => self.schedule.remove(&Due::Token(entry.id_hash.clone())),
        }
    }

    /// [`index`](Self::index) and cache a fresh entry. Callers hold the
    /// token's stripe lock, after the storage write.
    fn remember(&self, key: Key, entry: Arc<TokenEntry>) {
        self.index(key, &entry);
        self.cache.insert(key, entry);
    }

    /// Whether a service token (expired or not) exists: the skeleton
    /// answers once complete, storage before.
    async fn exists(&self, hash: &str) -> Result<bool> {
        if self.is_loaded() {
            return Ok(key_of(hash).is_some_and(|k| self.skel.contains_key(&k)));
        }
        Ok(self.get_any(hash).await?.is_some())
    }

    /// How many service tokens the store holds (every namespace's).
    pub fn count(&self) -> usize {
        self.skel.len()
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

    /// The entry of a new token, before its id, accessor and cubbyhole.
    fn fresh_entry(new: &NewToken) -> TokenEntry {
        let now = now_unix();
        TokenEntry {
            id_hash: String::new(),
            accessor: String::new(),
            policies: new.policies.clone(),
            path: new.path.clone(),
            display_name: new.display_name.clone(),
            creation_time: now,
            ttl: new.ttl,
            explicit_max_ttl: new.explicit_max_ttl,
            num_uses: new.num_uses,
            orphan: new.parent.is_none(),
            parent: new.parent.clone(),
            meta: new.meta.clone(),
            token_type: if new.batch {
                TokenType::Batch
            } else {
                TokenType::Service
            },
            renewable: new.renewable && !new.batch,
            period: new.period,
            expire_time: if new.ttl > 0 { now + new.ttl } else { 0 },
            last_renewal: 0,
            role: new.role.clone(),
            cubbyhole_id: String::new(),
            bound_cidrs: new.bound_cidrs.clone(),
            max_ttl: new.max_ttl,
            namespace_id: new.namespace_id.clone(),
            entity_id: new.entity_id.clone(),
        }
    }

    /// Creates service tokens in bulk, all in one storage batch (for
    /// seeding benchmarks and imports: `new` must not be batch tokens nor
    /// carry chosen ids, and parents are not checked). Returns their ids.
    pub async fn create_many(&self, new: &[NewToken]) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(new.len());
        let mut entries = Vec::with_capacity(new.len());
        let mut ops = Vec::with_capacity(new.len());
        for n in new {
            if n.batch || n.id.is_some() || !n.namespace_id.is_empty() {
                return Err(Error::bad_request(
                    "bulk creation makes service tokens with random ids only",
                ));
            }
            let id = format!("s.{}", random_base62(24));
            let mut entry = Self::fresh_entry(n);
            entry.id_hash = self.hash(&id);
            entry.accessor = random_base62(24);
            entry.cubbyhole_id = random_base62(24);
            ops.push(self.put_op(&entry)?);
            ids.push(id);
            entries.push(entry);
        }
        self.view.storage().batch(ops).await?;
        // Nobody knows these random ids yet, so no reader can race the
        // indexing below (no stripe lock needed); they are not cached.
        for entry in &entries {
            if let Some(key) = key_of(&entry.id_hash) {
                self.index(key, entry);
            }
        }
        Ok(ids)
    }

    /// [`create`](Self::create), writing `extra` (barrier-absolute keys,
    /// computed from the new entry) in the same atomic batch as the token:
    /// response wrapping stores the token and its wrapped answer at once.
    pub async fn create_with(
        &self,
        new: NewToken,
        extra: impl FnOnce(&TokenEntry) -> Result<Vec<BatchOp>>,
    ) -> Result<(String, Arc<TokenEntry>)> {
        let mut entry = Self::fresh_entry(&new);
        if new.batch {
            let mut id = self.batch.seal(&entry)?;
            if !new.namespace_id.is_empty() {
                id = format!("{id}.{}", new.namespace_id);
            }
            self.record_creation(&entry);
            return Ok((id, Arc::new(entry)));
        }
        let chosen = new.id.is_some();
        let suffix = if new.namespace_id.is_empty() {
            String::new()
        } else {
            format!(".{}", new.namespace_id)
        };
        // A chosen id gets the namespace's suffix too (as in OpenBao), so
        // that the id alone always tells where the token is stored.
        let id = match new.id {
            Some(chosen) => format!("{chosen}{suffix}"),
            None => format!("s.{}{suffix}", random_base62(24)),
        };
        entry.id_hash = self.hash(&id);
        let key = key_of(&entry.id_hash).ok_or_else(|| Error::internal("token hash is not hex"))?;
        // A random id cannot collide; a chosen one is checked (in storage
        // too while the index is loading).
        let taken = if chosen {
            self.exists(&entry.id_hash).await?
        } else {
            self.skel.contains_key(&key)
        };
        if taken {
            return Err(Error::bad_request(
                "cannot create a token with a duplicate ID",
            ));
        }
        entry.accessor = format!("{}{suffix}", random_base62(24));
        entry.cubbyhole_id = random_base62(24);
        let mut ops = vec![self.put_op(&entry)?];
        ops.extend(extra(&entry)?);
        let entry = Arc::new(entry);
        {
            let _guard = self.stripe(&key).lock().await;
            self.view.storage().batch(ops).await?;
            self.remember(key, entry.clone());
        }
        if let Some(parent) = &entry.parent {
            if !self.exists(parent).await? {
                // The parent's tree was revoked while this child was being
                // written: the child must not outlive it.
                self.delete(&entry.id_hash).await?;
                return Err(Error::PermissionDenied);
            }
        }
        self.record_creation(&entry);
        Ok((id, entry))
    }

    /// The barrier-absolute key of a token entry.
    fn entry_key(&self, entry: &TokenEntry) -> Result<String> {
        let view = self
            .view_for(&entry.namespace_id)
            .ok_or_else(|| Error::bad_request("namespace not found"))?;
        Ok(format!("{}{ID_PREFIX}{}", view.prefix(), entry.id_hash))
    }

    fn put_op(&self, entry: &TokenEntry) -> Result<BatchOp> {
        let bytes = serde_json::to_vec(entry).map_err(Error::internal)?;
        Ok(BatchOp::Put(self.entry_key(entry)?, bytes))
    }

    /// Replaces a stored entry (same hash) in storage and memory.
    async fn update(&self, entry: TokenEntry) -> Result<Arc<TokenEntry>> {
        let key = key_of(&entry.id_hash).ok_or_else(|| Error::internal("token hash is not hex"))?;
        let op = self.put_op(&entry)?;
        let entry = Arc::new(entry);
        let _guard = self.stripe(&key).lock().await;
        self.view.storage().batch(vec![op]).await?;
        self.remember(key, entry.clone());
        Ok(entry)
    }

    /// Looks a token id up. Expired tokens are not returned; used-up ones
    /// are (their last request may still be looking at them).
    pub async fn lookup(&self, id: &str) -> Result<Option<Arc<TokenEntry>>> {
        let ns = crate::namespace::id_suffix(id);
        if let Some(ns) = ns {
            if self.places.prefix_of(ns).is_none() {
                return Ok(None);
            }
        }
        if id.starts_with(batch::PREFIX) {
            let sealed = match ns {
                Some(ns) => &id[..id.len() - ns.len() - 1],
                None => id,
            };
            let Some(entry) = self.batch.open(sealed) else {
                return Ok(None);
            };
            if entry.namespace_id != ns.unwrap_or_default() {
                return Ok(None);
            }
            let parent_alive = match &entry.parent {
                None => true,
                Some(p) => self.lookup_hash(p).await?.is_some(),
            };
            return Ok((parent_alive && !entry.expired(now_unix())).then(|| Arc::new(entry)));
        }
        let now = now_unix();
        Ok(self
            .get_in(&self.hash(id), Some(ns.unwrap_or_default()))
            .await?
            .filter(|e| !e.expired(now)))
    }

    /// Looks a service token up by its hashed id.
    pub async fn lookup_hash(&self, hash: &str) -> Result<Option<Arc<TokenEntry>>> {
        let now = now_unix();
        Ok(self.get_any(hash).await?.filter(|e| !e.expired(now)))
    }

    /// A service token's entry by hashed id, expired or not (for
    /// revocation, which must clean up after expired tokens too). A cached
    /// entry costs a map lookup; another is read from storage and cached.
    pub async fn get_any(&self, hash: &str) -> Result<Option<Arc<TokenEntry>>> {
        if let Some(found) = self.get_in(hash, None).await? {
            return Ok(Some(found));
        }
        // Known by hash only, the token may be in a namespace the index
        // has not reached yet: once it has, its namespace is known.
        if self.is_loaded() || self.places.only_root() {
            return Ok(None);
        }
        self.loaded().await?;
        self.get_in(hash, None).await
    }

    /// [`get_any`](Self::get_any) knowing the namespace (`hint`, from the
    /// token's id) or not (then the index's, else root).
    async fn get_in(&self, hash: &str, hint: Option<&str>) -> Result<Option<Arc<TokenEntry>>> {
        let Some(key) = key_of(hash) else {
            return Ok(None);
        };
        if let Some(e) = self.cache.get(&key) {
            return Ok(Some(e));
        }
        if self.is_loaded() && !self.skel.contains_key(&key) {
            return Ok(None);
        }
        let _guard = self.stripe(&key).lock().await;
        if let Some(e) = self.cache.get(&key) {
            return Ok(Some(e));
        }
        let ns: Arc<str> = match hint {
            Some(ns) => ns.into(),
            None => self.ns_of(&key),
        };
        let Some(entry) = self.read(&ns, hash).await? else {
            return Ok(None);
        };
        let entry = Arc::new(entry);
        if !self.skel.contains_key(&key) {
            // Not indexed yet by the background pass: index it now.
            self.index(key, &entry);
        }
        self.cache.insert(key, entry.clone());
        Ok(Some(entry))
    }

    /// Looks a token up by its accessor (waiting for the index when the
    /// accessor is not known yet).
    pub async fn lookup_accessor(&self, accessor: &str) -> Result<Option<Arc<TokenEntry>>> {
        let find = || match <AccessorKey>::try_from(accessor.as_bytes()) {
            Ok(a) => self.accessors.get(&a).map(|k| *k),
            Err(_) => self.odd_accessors.get(accessor).map(|k| *k),
        };
        let key = match find() {
            Some(key) => Some(key),
            None if self.is_loaded() => None,
            None => {
                self.loaded().await?;
                find()
            }
        };
        match key {
            Some(key) => self.lookup_hash(&hash_of(&key)).await,
            None => Ok(None),
        }
    }

    /// Every accessor of a live service token, sorted.
    pub async fn accessors(&self) -> Result<Vec<String>> {
        self.loaded().await?;
        let mut v: Vec<String> = self
            .accessors
            .iter()
            .map(|e| String::from_utf8_lossy(e.key()).into_owned())
            .chain(self.odd_accessors.iter().map(|e| e.key().clone()))
            .collect();
        v.sort();
        Ok(v)
    }

    /// The hashed ids of every live service token (once indexed).
    async fn all_keys(&self) -> Result<Vec<Key>> {
        self.loaded().await?;
        Ok(self.skel.iter().map(|e| *e.key()).collect())
    }

    /// Every live service token satisfying `keep`. Entries not in the cache
    /// are read from storage (without caching them): this costs a storage
    /// read per token, and is for administrative listings only.
    pub async fn entries_matching(
        &self,
        mut keep: impl FnMut(&TokenEntry) -> bool,
    ) -> Result<Vec<Arc<TokenEntry>>> {
        let mut out = Vec::new();
        for key in self.all_keys().await? {
            let entry = match self.cache.get(&key) {
                Some(e) => e,
                None => match self.read(&self.ns_of(&key), &hash_of(&key)).await? {
                    Some(e) => Arc::new(e),
                    None => continue,
                },
            };
            if keep(&entry) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// The lease ids (`sys/leases` names) of every live service token.
    pub async fn lease_ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        self.entries_matching(|e| {
            ids.push(e.lease_id());
            false
        })
        .await?;
        Ok(ids)
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
        let current = self
            .lookup_hash(hash)
            .await?
            .ok_or(Error::PermissionDenied)?;
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
        let (_use_guard, _) = self.lock_usable(&entry.id_hash).await?;
        let key = key_of(&entry.id_hash).ok_or(Error::PermissionDenied)?;
        let mut ops = vec![BatchOp::Delete(self.entry_key(entry)?)];
        ops.extend(extra);
        let _guard = self.stripe(&key).lock().await;
        self.view.storage().batch(ops).await?;
        self.forget(&key);
        Ok(())
    }

    /// The children of a token, by hashed id (once every token is indexed).
    pub async fn children_of(&self, hash: &str) -> Result<Vec<String>> {
        self.loaded().await?;
        Ok(self.children_now(hash))
    }

    fn children_now(&self, hash: &str) -> Vec<String> {
        key_of(hash)
            .and_then(|k| {
                self.children
                    .get(&k)
                    .map(|c| c.iter().map(hash_of).collect())
            })
            .unwrap_or_default()
    }

    /// The tree below `hash`, children before their parents, `hash` last
    /// (once every token is indexed, so that no child is missed).
    pub async fn tree_postorder(&self, hash: &str) -> Result<Vec<String>> {
        self.loaded().await?;
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
            for c in self.children_now(&h) {
                stack.push((c, false));
            }
        }
        Ok(out)
    }

    /// Makes the children of `hash` orphans (for `revoke-orphan`).
    pub async fn orphan_children(&self, hash: &str) -> Result<()> {
        for child in self.children_of(hash).await? {
            if let Some(e) = self.get_any(&child).await? {
                let mut next = (*e).clone();
                next.parent = None;
                next.orphan = true;
                self.update(next).await?;
            }
        }
        if let Some(key) = key_of(hash) {
            self.children.remove(&key);
        }
        Ok(())
    }

    /// Deletes one token from storage, then from memory. Idempotent.
    pub async fn delete(&self, hash: &str) -> Result<()> {
        let Some(key) = key_of(hash) else {
            return Ok(());
        };
        let _guard = self.stripe(&key).lock().await;
        if let Some(view) = self.view_for(&self.ns_of(&key)) {
            view.delete(&format!("{ID_PREFIX}{hash}")).await?;
        }
        self.forget(&key);
        Ok(())
    }

    /// Removes a token from the cache, the skeleton, the accessors, the
    /// tree and the timetable. Callers hold its stripe lock.
    fn forget(&self, key: &Key) {
        self.cache.remove(key);
        self.ns_of.remove(key);
        if let Some((_, s)) = self.skel.remove(key) {
            match s.accessor {
                Some(a) => {
                    self.accessors.remove(&a);
                }
                None => self.odd_accessors.retain(|_, k| k != key),
            }
            if let Some(parent) = &s.parent {
                if let Some(mut c) = self.children.get_mut(parent) {
                    c.remove(key);
                }
                self.children.remove_if(parent, |_, c| c.is_empty());
            }
        }
        self.children.remove_if(key, |_, c| c.is_empty());
        let hash = hash_of(key);
        self.use_locks.remove(&hash);
        self.schedule.remove(&Due::Token(hash));
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
            .await?
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
    /// the hashes of tokens whose parent is gone (for `tidy`; once every
    /// token is indexed).
    pub async fn tidy_candidates(&self) -> Result<Vec<String>> {
        self.loaded().await?;
        let mut stale = HashMap::new();
        for c in self.children.iter() {
            if !self.skel.contains_key(c.key()) {
                stale.insert(*c.key(), c.value().clone());
            }
        }
        Ok(stale.into_values().flatten().map(|k| hash_of(&k)).collect())
    }
}

async fn load_or_create_key(view: &View, key: &str, create: bool) -> Result<Zeroizing<Vec<u8>>> {
    Ok(match view.get(key).await? {
        Some(s) => Zeroizing::new(s),
        None if !create => return Err(Error::Standby),
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
///
/// `namespace_path` is the path of the token's namespace, shown (as
/// `namespace_path`) for tokens outside the root namespace;
/// `identity_policies`, those its entity grants, are shown when there are
/// any (with OpenBao's `external_namespace_policies` beside them).
pub fn render(
    id: &str,
    e: &TokenEntry,
    namespace_path: &str,
    identity_policies: &[String],
) -> Map<String, Value> {
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
        "entity_id": e.entity_id,
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
    if !namespace_path.is_empty() {
        v["namespace_path"] = json!(namespace_path);
    }
    if !identity_policies.is_empty() {
        v["external_namespace_policies"] = json!({});
        v["identity_policies"] = json!(identity_policies);
    }
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests;

impl TokenStore {
    /// `vault.token.creation` for a new token, with OpenBao's labels: the
    /// auth method and mount point from its creation path
    /// (`auth/<mount>/...` below its namespace), the TTL bucket, the
    /// namespace (`root`, or its path) and the token type.
    fn record_creation(&self, entry: &TokenEntry) {
        let ns_path = self.places.path_of(&entry.namespace_id).unwrap_or_default();
        let path = entry.path.strip_prefix(&ns_path).unwrap_or(&entry.path);
        let mut parts = path.splitn(3, '/');
        let mount = match (parts.next(), parts.next()) {
            (Some("auth"), Some(mount)) if !mount.is_empty() => mount,
            _ => "token",
        };
        let token_type = match entry.token_type {
            TokenType::Batch => "batch",
            _ => "service",
        };
        strongroom_telemetry::token_creation(
            mount,
            strongroom_telemetry::ttl_bucket(std::time::Duration::from_secs(entry.ttl)),
            crate::namespace::metric_label(&ns_path),
            token_type,
        );
    }
}
