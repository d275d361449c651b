//! The physical read cache: OpenBao's `cache_size` / `disable_cache`, in
//! front of a durable backend.
//!
//! [`CachedBackend`] keeps recently read values (ciphertext, exactly as the
//! backend stores them; the cache sits below the barrier) in a bounded
//! in-memory map. A hit is answered from memory on the caller's thread; a
//! miss goes to the backend, whose blocking reads run on its own threads
//! (redb's reader pool), never on the async runtime's workers. Absent keys
//! are cached too, so repeated lookups of a missing key cost no read.
//!
//! **Coherence.** Writes go to the backend first; once it has acknowledged
//! them (committed), every written key is removed from the cache before the
//! write returns, so a read that starts after a write was acknowledged
//! never sees the value it replaced. A read that misses may race a write:
//! it could fetch the old value and insert it after the write's removal.
//! To rule that out, keys hash to one of [`STRIPES`] epoch counters; a write
//! bumps its keys' epochs (under the stripe's lock) when it removes them,
//! and a read inserts what it fetched only if its key's epoch did not move
//! while it was reading (checked under the same lock). Listings are not
//! cached. [`CachedBackend::invalidate`] drops one key, for a standby that
//! learns another node wrote it (HA).
//!
//! **Size.** `cache_size` counts entries, as OpenBao's does (default
//! [`DEFAULT_CACHE_SIZE`]); a value larger than [`UNIT_BYTES`] counts once
//! per started `UNIT_BYTES`, so the memory the cache holds is bounded by
//! about `cache_size * UNIT_BYTES` whatever the values' sizes. Values of
//! more than [`MAX_CACHED_VALUE`] bytes are never cached.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use strongroom_sdk::storage::{Backend, BatchOp, StorageError};

/// OpenBao's default `cache_size`: 131,072 entries.
pub const DEFAULT_CACHE_SIZE: usize = 131_072;

/// The size of one cache unit: a value counts once per started unit.
pub const UNIT_BYTES: usize = 4096;

/// Values larger than this are read from the backend every time.
pub const MAX_CACHED_VALUE: usize = 1 << 20;

/// How many epoch stripes the keys hash to.
pub const STRIPES: usize = 4096;

/// A cached value: `None` caches "no such key".
type Cached = Option<Arc<[u8]>>;

/// Weighs an entry in cache units (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
struct Units;

impl quick_cache::Weighter<String, Cached> for Units {
    fn weight(&self, _key: &String, value: &Cached) -> u64 {
        let len = value.as_ref().map_or(0, |v| v.len());
        1 + (len / UNIT_BYTES) as u64
    }
}

/// A [`Backend`] with a bounded read cache in front of another (see the
/// module docs).
pub struct CachedBackend {
    inner: Arc<dyn Backend>,
    cache: quick_cache::sync::Cache<String, Cached, Units>,
    epochs: Box<[Mutex<u64>]>,
}

impl std::fmt::Debug for CachedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedBackend")
            .field("entries", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl CachedBackend {
    /// Caches reads of `inner`, holding at most `size` entries (see the
    /// module docs for how large values count). `size` 0 is taken as 1.
    pub fn new(inner: Arc<dyn Backend>, size: usize) -> Self {
        let size = size.max(1);
        CachedBackend {
            inner,
            cache: quick_cache::sync::Cache::with_weighter(size, size as u64, Units),
            epochs: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
        }
    }

    /// Drops `key` from the cache (another node wrote it).
    pub fn invalidate(&self, key: &str) {
        self.forget(key);
    }

    /// Drops everything cached (an HA node about to become active: other
    /// nodes wrote while it was not). Reads racing with this cache nothing
    /// they fetched before it.
    pub fn clear(&self) {
        let mut guards: Vec<_> = self
            .epochs
            .iter()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
            .collect();
        for epoch in guards.iter_mut() {
            **epoch = epoch.wrapping_add(1);
        }
        self.cache.clear();
    }

    /// How many entries the cache holds now.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    fn stripe(&self, key: &str) -> &Mutex<u64> {
        use std::hash::BuildHasher;
        let h = SEED.hash_one(key);
        // invariant: reduced modulo the (non-zero) number of stripes.
        &self.epochs[(h % self.epochs.len() as u64) as usize]
    }

    /// The epoch of `key`'s stripe now. A poisoned lock (a panic while it
    /// was held, which the plain arithmetic below cannot cause) still
    /// yields the counter.
    fn epoch(&self, key: &str) -> u64 {
        *self.stripe(key).lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes `key` and moves its stripe's epoch on, so that a read in
    /// flight does not put back what it fetched before.
    fn forget(&self, key: &str) {
        let mut epoch = self.stripe(key).lock().unwrap_or_else(|p| p.into_inner());
        *epoch = epoch.wrapping_add(1);
        self.cache.remove(key);
    }

    /// Caches what a read fetched, unless a write touched the key's stripe
    /// since the read began (`epoch` is the stripe's epoch then).
    fn offer(&self, key: &str, epoch: u64, value: Cached) {
        if value.as_ref().is_some_and(|v| v.len() > MAX_CACHED_VALUE) {
            return;
        }
        let current = self.stripe(key).lock().unwrap_or_else(|p| p.into_inner());
        if *current == epoch {
            self.cache.insert(key.to_string(), value);
        }
    }
}

/// The hasher seed the epoch stripes use (fixed for the process).
static SEED: std::sync::LazyLock<std::collections::hash_map::RandomState> =
    std::sync::LazyLock::new(std::collections::hash_map::RandomState::new);

#[async_trait]
impl Backend for CachedBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(hit) = self.cache.get(key) {
            return Ok(hit.map(|v| v.to_vec()));
        }
        let epoch = self.epoch(key);
        let value = self.inner.get(key).await?;
        self.offer(key, epoch, value.as_deref().map(Arc::from));
        Ok(value)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(prefix).await
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), StorageError> {
        let keys: Vec<String> = ops
            .iter()
            .map(|op| match op {
                BatchOp::Put(k, _) | BatchOp::Delete(k) => k.clone(),
            })
            .collect();
        let outcome = self.inner.batch(ops).await;
        // Forget the keys whatever the outcome: a failed batch may still
        // have reached the medium (e.g. the answer was lost).
        for key in &keys {
            self.forget(key);
        }
        outcome
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::InmemBackend;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the reads that reach the backend underneath.
    struct Counting {
        inner: InmemBackend,
        gets: AtomicUsize,
    }

    #[async_trait]
    impl Backend for Counting {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.inner.get(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
            self.inner.list(prefix).await
        }
        async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), StorageError> {
            self.inner.batch(ops).await
        }
    }

    fn counting() -> Arc<Counting> {
        Arc::new(Counting {
            inner: InmemBackend::new(),
            gets: AtomicUsize::new(0),
        })
    }

    #[tokio::test]
    async fn a_second_read_is_served_from_memory_and_a_write_replaces_it() {
        let under = counting();
        let cached = CachedBackend::new(under.clone(), 16);
        cached.put("a", b"1".to_vec()).await.unwrap();
        assert_eq!(cached.get("a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(cached.get("a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(under.gets.load(Ordering::SeqCst), 1);

        cached.put("a", b"2".to_vec()).await.unwrap();
        assert_eq!(cached.get("a").await.unwrap(), Some(b"2".to_vec()));
        cached.delete("a").await.unwrap();
        assert_eq!(cached.get("a").await.unwrap(), None);
        assert_eq!(under.gets.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_missing_key_is_remembered_until_written() {
        let under = counting();
        let cached = CachedBackend::new(under.clone(), 16);
        assert_eq!(cached.get("nope").await.unwrap(), None);
        assert_eq!(cached.get("nope").await.unwrap(), None);
        assert_eq!(under.gets.load(Ordering::SeqCst), 1);
        cached
            .batch(vec![BatchOp::Put("nope".into(), b"x".to_vec())])
            .await
            .unwrap();
        assert_eq!(cached.get("nope").await.unwrap(), Some(b"x".to_vec()));
    }

    #[tokio::test]
    async fn a_read_that_raced_a_write_does_not_cache_the_old_value() {
        let under = counting();
        let cached = CachedBackend::new(under.clone(), 16);
        under.inner.put("k", b"old".to_vec()).await.unwrap();
        // A read begins (takes the epoch) and fetches the old value...
        let epoch = cached.epoch("k");
        let fetched = under.inner.get("k").await.unwrap();
        // ...a write is acknowledged meanwhile...
        cached.put("k", b"new".to_vec()).await.unwrap();
        // ...and the read offers what it fetched: refused.
        cached.offer("k", epoch, fetched.as_deref().map(Arc::from));
        assert_eq!(cached.get("k").await.unwrap(), Some(b"new".to_vec()));
    }

    #[tokio::test]
    async fn invalidate_makes_the_next_read_go_to_the_backend() {
        let under = counting();
        let cached = CachedBackend::new(under.clone(), 16);
        cached.put("k", b"1".to_vec()).await.unwrap();
        cached.get("k").await.unwrap();
        // Another node wrote the key underneath.
        under.inner.put("k", b"2".to_vec()).await.unwrap();
        assert_eq!(cached.get("k").await.unwrap(), Some(b"1".to_vec()));
        cached.invalidate("k");
        assert_eq!(cached.get("k").await.unwrap(), Some(b"2".to_vec()));
    }

    #[tokio::test]
    async fn clear_forgets_every_key_another_node_wrote() {
        let under = counting();
        let cached = CachedBackend::new(under.clone(), 16);
        for k in ["a", "b/c"] {
            cached.put(k, b"1".to_vec()).await.unwrap();
            cached.get(k).await.unwrap();
            under.inner.put(k, b"2".to_vec()).await.unwrap();
        }
        cached.clear();
        assert!(cached.is_empty());
        for k in ["a", "b/c"] {
            assert_eq!(cached.get(k).await.unwrap(), Some(b"2".to_vec()));
        }
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_size() {
        let cached = CachedBackend::new(Arc::new(InmemBackend::new()), 8);
        for i in 0..100 {
            let key = format!("k{i}");
            cached.put(&key, vec![0; 10]).await.unwrap();
            cached.get(&key).await.unwrap();
        }
        assert!(cached.len() <= 8, "{} entries", cached.len());
        // A value of several units counts several times.
        let big = CachedBackend::new(Arc::new(InmemBackend::new()), 8);
        big.put("big", vec![0; 5 * UNIT_BYTES]).await.unwrap();
        big.put("small", vec![0; 10]).await.unwrap();
        big.get("big").await.unwrap();
        big.get("small").await.unwrap();
        assert!(big.cache.weight() <= 8);
    }
}
