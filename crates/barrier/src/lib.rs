//! The security barrier: everything stored below it is encrypted.
//!
//! The module owns the key hierarchy and the encrypted view of physical
//! storage. An *unseal key* (32 bytes; with the Shamir seal, what the shares
//! combine to) wraps the *root key*, stored at [`ROOT_KEY_PATH`]. The root key
//! encrypts the *keyring* at [`KEYRING_PATH`]: numbered terms, each a 32-byte
//! AES-256-GCM data key. Data is encrypted under the active (highest) term;
//! older terms keep decrypting. Each entry is bound to its storage path as
//! associated data. Only [`SEAL_CONFIG_PATH`], written by the core straight to
//! the physical backend, is plaintext.
//!
//! Random 96-bit nonces are safe for about 2^32 encryptions per key, so the
//! barrier counts encryptions under the active term and adds a new term
//! automatically at [`Barrier::rotation_threshold`]. The count is persisted
//! with the keyring every [`PERSIST_INTERVAL`] encryptions and on rotation;
//! unsealing assumes the persisted count plus that interval, so a crash never
//! resets the budget. A clean seal ([`Barrier::seal_persisting`]) records the
//! exact count, marked exact, so the next unseal starts from it (and at once
//! writes it back unmarked, so a crash after that unseal still adds the
//! interval): `sys/key-status` stays honest across restarts.
//!
//! Modules: `keyring` (keys, envelope format, keyring encoding) and
//! [`shamir`] (splitting the unseal key into shares). The barrier is the
//! [`Storage`] that [`View`]s are made over.
#![forbid(unsafe_code)]

mod keyring;
pub mod shamir;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use zeroize::Zeroizing;

use keyring::{envelope_term, Key, Keyring, KEY_LEN};
pub use strongroom_sdk::storage::BarrierError;
use strongroom_sdk::storage::{Backend, BatchOp, Storage, View};
use strongroom_telemetry::StorageOp;

/// Physical path of the root key, encrypted under the unseal key.
pub const ROOT_KEY_PATH: &str = "core/root-key";
/// Physical path of the keyring, encrypted under the root key.
pub const KEYRING_PATH: &str = "core/keyring";
/// Physical path of the seal configuration, the one plaintext entry (written
/// by the core directly to the physical backend, never through the barrier).
pub const SEAL_CONFIG_PATH: &str = "core/seal-config";
/// Default number of encryptions under one term before automatic rotation,
/// comfortably below the 2^32 limit for random 96-bit GCM nonces.
pub const DEFAULT_ROTATION_THRESHOLD: u64 = 3_500_000_000;
/// How often (in encryptions) the active term's count is persisted.
pub const PERSIST_INTERVAL: u64 = 1_000_000;
/// Set in a persisted count written by a clean seal: the count is exact.
/// Counts stay far below 2^63, so the bit is free.
const EXACT_COUNT: u64 = 1 << 63;
/// The term number in envelopes encrypted with the root or unseal key.
const WRAP_TERM: u32 = 0;

/// The state of the active data key, as `sys/key-status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStatus {
    /// The active term number.
    pub term: u32,
    /// When the active term was installed.
    pub install_time: SystemTime,
    /// Encryptions counted under the active term (an upper bound after a
    /// restart).
    pub encryptions: u64,
}

/// The keys held while unsealed. Replaced wholesale on rotation.
struct Unsealed {
    root_key: Arc<Key>,
    /// The unseal key that wraps `root_key` in storage. Kept while unsealed
    /// (as OpenBao's Shamir seal keeps it) so that the root key can be
    /// rotated without key shares (`sys/rotate/root`); it unlocks nothing
    /// the root key in memory beside it does not.
    unseal_key: Arc<Key>,
    keyring: Keyring,
    /// Encryptions under `keyring.active()`.
    encryptions: AtomicU64,
}

/// The encryption count to resume from, given the persisted one: whether
/// it was exact (written by a clean seal), and the count. After a clean
/// seal the count is exact; otherwise up to [`PERSIST_INTERVAL`]
/// encryptions may have happened since it was last written.
fn resumed_count(persisted: u64) -> (bool, u64) {
    let exact = persisted & EXACT_COUNT != 0;
    let count = persisted & !EXACT_COUNT;
    if exact {
        (true, count)
    } else {
        (false, count.saturating_add(PERSIST_INTERVAL))
    }
}

impl Unsealed {
    /// The same keys with `keyring` (reloaded from storage) and a count.
    fn with_keyring(&self, keyring: Keyring, encryptions: u64) -> Unsealed {
        Unsealed {
            root_key: self.root_key.clone(),
            unseal_key: self.unseal_key.clone(),
            keyring,
            encryptions: AtomicU64::new(encryptions),
        }
    }
}

impl std::fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsealed")
            .field("active_term", &self.keyring.active().number)
            .field("encryptions", &self.encryptions.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The encrypting barrier over a physical backend.
///
/// Reads and writes are lock-free: the unsealed keys live in an
/// [`ArcSwapOption`]. Initialisation, unsealing, rotation and keyring
/// persistence are serialised by an async mutex.
pub struct Barrier {
    physical: Arc<dyn Backend>,
    state: ArcSwapOption<Unsealed>,
    rotation_threshold: AtomicU64,
    keyring_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("sealed", &self.is_sealed())
            .field("rotation_threshold", &self.rotation_threshold())
            .finish_non_exhaustive()
    }
}

/// 32 fresh random bytes, for an unseal key.
pub fn generate_key() -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(vec![0u8; KEY_LEN]);
    keyring::fill_random(&mut key);
    key
}

/// Whether the barrier keeps `key` for itself.
fn is_reserved(key: &str) -> bool {
    key == KEYRING_PATH || key == ROOT_KEY_PATH || key == SEAL_CONFIG_PATH
}

/// Refuses reserved keys.
fn check_key(key: &str) -> Result<(), BarrierError> {
    if is_reserved(key) {
        Err(BarrierError::Reserved(key.to_string()))
    } else {
        Ok(())
    }
}

impl Barrier {
    /// A sealed barrier over `physical`.
    pub fn new(physical: Arc<dyn Backend>) -> Self {
        Barrier {
            physical,
            state: ArcSwapOption::empty(),
            rotation_threshold: AtomicU64::new(DEFAULT_ROTATION_THRESHOLD),
            keyring_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// 32 fresh random bytes, for an unseal key (same as [`generate_key`]).
    pub fn generate_key() -> Zeroizing<Vec<u8>> {
        generate_key()
    }

    /// A sealed barrier that rotates after `threshold` encryptions per term.
    pub fn with_rotation_threshold(physical: Arc<dyn Backend>, threshold: u64) -> Self {
        let barrier = Barrier::new(physical);
        barrier.set_rotation_threshold(threshold);
        barrier
    }

    /// Sets the number of encryptions after which a new term is added
    /// (at least 1).
    pub fn set_rotation_threshold(&self, threshold: u64) {
        self.rotation_threshold
            .store(threshold.max(1), Ordering::Relaxed);
    }

    /// The number of encryptions after which a new term is added.
    pub fn rotation_threshold(&self) -> u64 {
        self.rotation_threshold.load(Ordering::Relaxed)
    }

    /// The physical backend underneath (for the plaintext seal config).
    pub fn physical(&self) -> &Arc<dyn Backend> {
        &self.physical
    }

    /// A view of this barrier under `prefix` (e.g. `logical/<uuid>/`).
    pub fn view(self: &Arc<Self>, prefix: &str) -> View {
        View::new(Arc::clone(self) as Arc<dyn Storage>, prefix)
    }

    /// Whether the barrier has been initialised (a keyring is stored).
    pub async fn initialized(&self) -> Result<bool, BarrierError> {
        Ok(self.physical.get(KEYRING_PATH).await?.is_some())
    }

    /// Generates the root key and keyring term 1, and stores them wrapped
    /// under `unseal_key` (32 bytes). The barrier stays sealed.
    pub async fn initialize(&self, unseal_key: &[u8]) -> Result<(), BarrierError> {
        let unseal = Key::from_bytes(unseal_key).ok_or(BarrierError::InvalidKey)?;
        let _guard = self.keyring_lock.lock().await;
        if self.physical.get(KEYRING_PATH).await?.is_some()
            || self.physical.get(ROOT_KEY_PATH).await?.is_some()
        {
            return Err(BarrierError::AlreadyInitialized);
        }
        let root = Key::generate();
        let keyring = Keyring::first();
        let wrapped_root = unseal.seal(WRAP_TERM, ROOT_KEY_PATH, root.raw());
        // A new keyring has made no encryptions: its count is exact.
        let wrapped_ring = root.seal(WRAP_TERM, KEYRING_PATH, &keyring.encode(EXACT_COUNT));
        self.physical
            .batch(vec![
                BatchOp::Put(ROOT_KEY_PATH.to_string(), wrapped_root),
                BatchOp::Put(KEYRING_PATH.to_string(), wrapped_ring),
            ])
            .await?;
        Ok(())
    }

    /// Unwraps the root key with `unseal_key`, loads the keyring and
    /// unseals. Already unsealed: checks the key and keeps the current state.
    pub async fn unseal(&self, unseal_key: &[u8]) -> Result<(), BarrierError> {
        self.unseal_with(unseal_key, true).await
    }

    /// [`Barrier::unseal`] for a node that may not write (an HA standby):
    /// the encryption count is not touched until [`Barrier::resume_counting`].
    pub async fn unseal_read_only(&self, unseal_key: &[u8]) -> Result<(), BarrierError> {
        self.unseal_with(unseal_key, false).await
    }

    /// The node became the one that writes (HA activation): reloads the
    /// keyring, which the previous active node may have rotated, and takes
    /// over the encryption count it persisted, as an unseal does (exact
    /// after a clean seal, unmarked at once; otherwise plus the persist
    /// interval).
    pub async fn resume_counting(&self) -> Result<(), BarrierError> {
        let _guard = self.keyring_lock.lock().await;
        let current = self.current()?;
        let (keyring, persisted) = self.read_keyring(&current.root_key).await?;
        let (exact, encryptions) = resumed_count(persisted);
        let state = current.with_keyring(keyring, encryptions);
        if exact {
            self.write_keyring(&state, encryptions).await?;
        }
        self.state.store(Some(Arc::new(state)));
        Ok(())
    }

    /// Reloads the keyring from storage, keeping the count: another node
    /// (the HA active one) may have added a term.
    pub async fn reload_keyring(&self) -> Result<(), BarrierError> {
        let _guard = self.keyring_lock.lock().await;
        let current = self.current()?;
        let (keyring, _) = self.read_keyring(&current.root_key).await?;
        let state = current.with_keyring(keyring, current.encryptions.load(Ordering::Relaxed));
        self.state.store(Some(Arc::new(state)));
        Ok(())
    }

    /// Reads and unwraps the stored keyring and its persisted count.
    async fn read_keyring(&self, root: &Key) -> Result<(Keyring, u64), BarrierError> {
        let wrapped_ring = self
            .physical
            .get(KEYRING_PATH)
            .await?
            .ok_or_else(|| BarrierError::Corrupt(format!("{KEYRING_PATH} is missing")))?;
        if envelope_term(&wrapped_ring) != Some(WRAP_TERM) {
            return Err(BarrierError::Corrupt(KEYRING_PATH.into()));
        }
        let ring_bytes = Zeroizing::new(
            root.open(KEYRING_PATH, wrapped_ring)
                .map_err(|_| BarrierError::Corrupt(KEYRING_PATH.into()))?,
        );
        Keyring::decode(&ring_bytes)
            .map_err(|e| BarrierError::Corrupt(format!("{KEYRING_PATH}: {e}")))
    }

    async fn unseal_with(&self, unseal_key: &[u8], may_write: bool) -> Result<(), BarrierError> {
        let unseal = Key::from_bytes(unseal_key).ok_or(BarrierError::InvalidKey)?;
        let _guard = self.keyring_lock.lock().await;
        let root = self.open_root(&unseal).await?;
        if !self.is_sealed() {
            return Ok(());
        }
        let (keyring, persisted) = self.read_keyring(&root).await?;
        let (exact, encryptions) = resumed_count(persisted);
        let state = Unsealed {
            root_key: Arc::new(root),
            unseal_key: Arc::new(unseal),
            keyring,
            encryptions: AtomicU64::new(encryptions),
        };
        if exact && may_write {
            // Unmark it before anything is encrypted: a crash from here on
            // must add the interval again.
            self.write_keyring(&state, encryptions).await?;
        }
        self.state.store(Some(Arc::new(state)));
        Ok(())
    }

    /// Checks that `unseal_key` unwraps the stored root key, without
    /// changing any state (generate-root and rekey authenticate with it).
    pub async fn check_unseal_key(&self, unseal_key: &[u8]) -> Result<(), BarrierError> {
        let unseal = Key::from_bytes(unseal_key).ok_or(BarrierError::InvalidKey)?;
        self.open_root(&unseal).await.map(drop)
    }

    /// Reads the stored root key and unwraps it with `unseal`:
    /// [`BarrierError::InvalidKey`] when the key does not open it.
    async fn open_root(&self, unseal: &Key) -> Result<Key, BarrierError> {
        let wrapped_root = self
            .physical
            .get(ROOT_KEY_PATH)
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        if envelope_term(&wrapped_root) != Some(WRAP_TERM) {
            return Err(BarrierError::Corrupt(ROOT_KEY_PATH.into()));
        }
        let root_bytes = Zeroizing::new(
            unseal
                .open(ROOT_KEY_PATH, wrapped_root)
                .map_err(|_| BarrierError::InvalidKey)?,
        );
        Key::from_bytes(&root_bytes).ok_or_else(|| BarrierError::Corrupt(ROOT_KEY_PATH.into()))
    }

    /// Rekeys: generates a new root key, re-encrypts the keyring under it
    /// and wraps it under `new_unseal_key`, storing both in one physical
    /// batch with `extra` (plaintext operations, e.g. the new seal
    /// configuration) so the new key and its configuration become durable
    /// together. The old unseal key opens nothing afterwards.
    pub async fn rekey(
        &self,
        new_unseal_key: &[u8],
        extra: Vec<BatchOp>,
    ) -> Result<(), BarrierError> {
        let unseal = Key::from_bytes(new_unseal_key).ok_or(BarrierError::InvalidKey)?;
        self.rekey_with(Arc::new(unseal), extra).await
    }

    /// [`rekey`](Self::rekey) with the unseal key as a [`Key`].
    async fn rekey_with(&self, unseal: Arc<Key>, extra: Vec<BatchOp>) -> Result<(), BarrierError> {
        let _guard = self.keyring_lock.lock().await;
        let state = self.current()?;
        let root = Arc::new(Key::generate());
        let next = Arc::new(Unsealed {
            root_key: Arc::clone(&root),
            unseal_key: unseal,
            keyring: state.keyring.clone(),
            encryptions: AtomicU64::new(state.encryptions.load(Ordering::Relaxed)),
        });
        let count = next.encryptions.load(Ordering::Relaxed);
        let wrapped_ring = root.seal(WRAP_TERM, KEYRING_PATH, &next.keyring.encode(count));
        let wrapped_root = next.unseal_key.seal(WRAP_TERM, ROOT_KEY_PATH, root.raw());
        let mut ops = vec![
            BatchOp::Put(ROOT_KEY_PATH.to_string(), wrapped_root),
            BatchOp::Put(KEYRING_PATH.to_string(), wrapped_ring),
        ];
        ops.extend(extra);
        self.physical.batch(ops).await?;
        let previous = self
            .state
            .compare_and_swap(&Some(Arc::clone(&state)), Some(next));
        match &*previous {
            Some(p) if Arc::ptr_eq(p, &state) => Ok(()),
            _ => Err(BarrierError::Sealed),
        }
    }

    /// Rotates the root key without key shares (OpenBao's
    /// `sys/rotate/root`): a new root key, the keyring re-encrypted under
    /// it, wrapped under the unseal key in force, stored in one physical
    /// batch. The unseal key shares stay valid.
    pub async fn rotate_root(&self) -> Result<(), BarrierError> {
        let unseal = {
            let state = self.current()?;
            Arc::clone(&state.unseal_key)
        };
        self.rekey_with(unseal, Vec::new()).await
    }

    /// Records the exact encryption count, then drops the keys from memory
    /// (a clean seal: the next unseal starts from the exact count). Call it
    /// once nothing writes any more. If an encryption still raced past the
    /// recorded count, the count is written again unmarked, so the next
    /// unseal adds the whole interval.
    pub async fn seal_persisting(&self) -> Result<(), BarrierError> {
        let _guard = self.keyring_lock.lock().await;
        let Some(state) = self.state.load_full() else {
            return Ok(());
        };
        let count = state.encryptions.load(Ordering::Relaxed);
        let written = self.write_keyring(&state, count | EXACT_COUNT).await;
        self.state.store(None);
        written?;
        let after = state.encryptions.load(Ordering::Relaxed);
        if after != count {
            self.write_keyring(&state, after).await?;
        }
        Ok(())
    }

    /// Drops the keys from memory. The encryption count is not written here
    /// (this is synchronous); the next unseal's allowance covers it.
    pub fn seal(&self) {
        self.state.store(None);
    }

    /// Whether the barrier is sealed.
    pub fn is_sealed(&self) -> bool {
        self.state.load().is_none()
    }

    /// The active term, its install time and encryption count; `None` when
    /// sealed.
    pub fn key_status(&self) -> Option<KeyStatus> {
        let state = self.state.load();
        let state = state.as_ref()?;
        let active = state.keyring.active();
        Some(KeyStatus {
            term: active.number,
            install_time: active.install_time,
            encryptions: state.encryptions.load(Ordering::Relaxed),
        })
    }

    /// The unsealed state, or [`BarrierError::Sealed`].
    fn current(&self) -> Result<Arc<Unsealed>, BarrierError> {
        self.state.load_full().ok_or(BarrierError::Sealed)
    }

    /// Reads and decrypts `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BarrierError> {
        let started = strongroom_telemetry::Instant::now();
        let r = self.get_inner(key).await;
        strongroom_telemetry::barrier(StorageOp::Get, started.elapsed());
        r
    }

    async fn get_inner(&self, key: &str) -> Result<Option<Vec<u8>>, BarrierError> {
        check_key(key)?;
        self.current()?;
        let Some(envelope) = self.physical.get(key).await? else {
            return Ok(None);
        };
        // Reload: the keyring may have gained a term while reading.
        let mut state = self.current()?;
        let number = envelope_term(&envelope);
        if number.is_some_and(|n| state.keyring.term(n).is_none()) {
            // A term this node has not seen: another node (HA) rotated.
            self.reload_keyring().await?;
            state = self.current()?;
        }
        let term = number
            .and_then(|n| state.keyring.term(n))
            .ok_or_else(|| BarrierError::Corrupt(format!("{key}: unknown key term")))?;
        term.key
            .open(key, envelope)
            .map(Some)
            .map_err(|_| BarrierError::Corrupt(format!("{key}: does not decrypt")))
    }

    /// Encrypts `value` and stores it at `key`.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), BarrierError> {
        let started = strongroom_telemetry::Instant::now();
        check_key(key)?;
        let envelope = self.encrypt(key, value).await?;
        self.physical.put(key, envelope).await?;
        strongroom_telemetry::barrier(StorageOp::Put, started.elapsed());
        Ok(())
    }

    /// Removes `key` (no error if missing).
    pub async fn delete(&self, key: &str) -> Result<(), BarrierError> {
        let started = strongroom_telemetry::Instant::now();
        check_key(key)?;
        self.current()?;
        self.physical.delete(key).await?;
        strongroom_telemetry::barrier(StorageOp::Delete, started.elapsed());
        Ok(())
    }

    /// The entries directly below `prefix`, as [`Backend::list`] returns them.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError> {
        let started = strongroom_telemetry::Instant::now();
        self.current()?;
        let r = self.physical.list(prefix).await?;
        strongroom_telemetry::barrier(StorageOp::List, started.elapsed());
        Ok(r)
    }

    /// Encrypts the puts and applies all `ops` as one atomic physical batch.
    pub async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), BarrierError> {
        let started = strongroom_telemetry::Instant::now();
        let r = self.batch_inner(ops).await;
        strongroom_telemetry::barrier(StorageOp::Batch, started.elapsed());
        r
    }

    async fn batch_inner(&self, ops: Vec<BatchOp>) -> Result<(), BarrierError> {
        for op in &ops {
            check_key(op.key())?;
        }
        self.current()?;
        let mut physical_ops = Vec::with_capacity(ops.len());
        for op in ops {
            physical_ops.push(match op {
                BatchOp::Put(key, value) => {
                    let envelope = self.encrypt(&key, &value).await?;
                    BatchOp::Put(key, envelope)
                }
                delete @ BatchOp::Delete(_) => delete,
            });
        }
        self.physical.batch(physical_ops).await?;
        Ok(())
    }

    /// Adds a new term with a fresh data key, persists the keyring, and
    /// makes the term active. Returns the new term number.
    pub async fn rotate(&self) -> Result<u32, BarrierError> {
        let _guard = self.keyring_lock.lock().await;
        self.rotate_locked().await
    }

    /// Encrypts `plaintext` for `path` under the active term, counting the
    /// encryption and rotating or persisting the count when due.
    async fn encrypt(&self, path: &str, plaintext: &[u8]) -> Result<Vec<u8>, BarrierError> {
        loop {
            let state = self.current()?;
            let threshold = self.rotation_threshold();
            let count = state.encryptions.fetch_add(1, Ordering::Relaxed) + 1;
            let active = state.keyring.active();
            if count > threshold {
                // Budget spent (e.g. concurrent writers raced past the
                // rotation point, or the allowance after unseal used it).
                self.rotate_from(active.number).await?;
                continue;
            }
            let envelope = active.key.seal(active.number, path, plaintext);
            if count == threshold {
                self.rotate_from(active.number).await?;
            } else if count % PERSIST_INTERVAL == 0 {
                self.persist_count(&state).await?;
            }
            return Ok(envelope);
        }
    }

    /// Rotates unless the active term has moved past `term` already.
    async fn rotate_from(&self, term: u32) -> Result<(), BarrierError> {
        let _guard = self.keyring_lock.lock().await;
        if self.current()?.keyring.active().number == term {
            self.rotate_locked().await?;
        }
        Ok(())
    }

    /// Rotation proper; the caller holds `keyring_lock`.
    async fn rotate_locked(&self) -> Result<u32, BarrierError> {
        let state = self.current()?;
        let keyring = state
            .keyring
            .with_new_term()
            .ok_or_else(|| BarrierError::Corrupt("keyring term counter overflow".into()))?;
        let next = Arc::new(Unsealed {
            root_key: Arc::clone(&state.root_key),
            unseal_key: Arc::clone(&state.unseal_key),
            keyring,
            encryptions: AtomicU64::new(0),
        });
        // The new term must be durable before anything is encrypted with it.
        self.write_keyring(&next, 0).await?;
        let previous = self
            .state
            .compare_and_swap(&Some(Arc::clone(&state)), Some(Arc::clone(&next)));
        match &*previous {
            Some(p) if Arc::ptr_eq(p, &state) => Ok(next.keyring.active().number),
            // Sealed (or re-unsealed) while the keyring was being written.
            _ => Err(BarrierError::Sealed),
        }
    }

    /// Persists the encryption count of `state` if it is still current.
    async fn persist_count(&self, state: &Arc<Unsealed>) -> Result<(), BarrierError> {
        let _guard = self.keyring_lock.lock().await;
        let current = self.current()?;
        if Arc::ptr_eq(&current, state) {
            let count = current.encryptions.load(Ordering::Relaxed);
            self.write_keyring(&current, count).await?;
        }
        Ok(())
    }

    /// Encrypts the keyring of `state` under its root key and stores it.
    async fn write_keyring(&self, state: &Unsealed, count: u64) -> Result<(), BarrierError> {
        let encoded = state.keyring.encode(count);
        let envelope = state.root_key.seal(WRAP_TERM, KEYRING_PATH, &encoded);
        self.physical.put(KEYRING_PATH, envelope).await?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;

#[async_trait::async_trait]
impl Storage for Barrier {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BarrierError> {
        Barrier::get(self, key).await
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), BarrierError> {
        Barrier::put(self, key, value).await
    }

    async fn delete(&self, key: &str) -> Result<(), BarrierError> {
        Barrier::delete(self, key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError> {
        Barrier::list(self, prefix).await
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), BarrierError> {
        Barrier::batch(self, ops).await
    }
}
