//! Storage contracts: the physical backend below the barrier, the logical
//! storage above it, and the prefixed [`View`] every mount gets.
//!
//! A [`Backend`] stores opaque bytes under slash-separated keys. It never sees
//! plaintext: everything but the seal configuration reaches it encrypted by
//! the barrier (`strongroom-barrier`). The contract is the one OpenBao's physical
//! backends keep (get, put, delete, list one level below a prefix), plus
//! atomic batches. High availability (a PostgreSQL backend with a lock table)
//! adds a separate lock capability on top; callers of this trait do not change.

mod memory;
mod view;

use async_trait::async_trait;

pub use memory::MemoryStorage;
pub use view::View;

/// A failure of the physical storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage medium failed (I/O, database, network).
    #[error("{0}")]
    Io(String),
    /// The key is not acceptable to the backend (empty, too long, bad bytes).
    #[error("invalid key {0:?}")]
    InvalidKey(String),
    /// A stored value could not be decoded or decrypted.
    #[error("corrupt entry at {0:?}")]
    Corrupt(String),
    /// The backend was closed (shutdown in progress).
    #[error("storage closed")]
    Closed,
    /// A write refused because this node does not (or no longer) hold the
    /// high-availability lock that fences the storage (PostgreSQL with
    /// `ha_enabled`): another node may be active, so nothing was written.
    #[error("write fenced: {0}")]
    Fenced(String),
}

/// One operation of an atomic [`Backend::batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Store `value` at `key`, replacing what was there.
    Put(String, Vec<u8>),
    /// Remove `key`; removing a missing key is not an error.
    Delete(String),
}

impl BatchOp {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            BatchOp::Put(k, _) | BatchOp::Delete(k) => k,
        }
    }
}

/// Physical storage: a durable, ordered map of keys to bytes.
///
/// Every method that returns `Ok` for a write has made it durable: it
/// survives a crash of the process (`kill -9`) from that moment on.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The value at `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Stores `value` at `key`.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.batch(vec![BatchOp::Put(key.to_string(), value)]).await
    }

    /// Removes `key` (no error if missing).
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.batch(vec![BatchOp::Delete(key.to_string())]).await
    }

    /// The entries directly below `prefix` (which is empty or ends in `/`),
    /// sorted: a key `prefix + "a"` lists as `"a"`, and any key
    /// `prefix + "b/..."` lists once as `"b/"`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;

    /// Applies all `ops` atomically: after a crash either all are visible or
    /// none is.
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), StorageError>;
}

/// A failure of logical storage: the barrier, as a [`View`] sees it.
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    /// The barrier is sealed: no keys are in memory.
    #[error("Vault is sealed")]
    Sealed,
    /// The unseal key is wrong (or not 32 bytes).
    #[error("invalid key")]
    InvalidKey,
    /// The barrier has not been initialised (no keyring/root key stored).
    #[error("Vault is not initialized")]
    NotInitialized,
    /// The barrier was initialised already.
    #[error("Vault is already initialized")]
    AlreadyInitialized,
    /// The key is reserved for the barrier's own use.
    #[error("cannot access reserved key {0:?}")]
    Reserved(String),
    /// The key is not acceptable: it escapes its view (`..`, `.` or a
    /// leading `/`).
    #[error("invalid path {0:?}")]
    InvalidPath(String),
    /// The physical storage failed.
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
    /// A stored entry does not decrypt or decode (tampered, moved to
    /// another path, unknown term, or malformed).
    #[error("corrupt entry: {0}")]
    Corrupt(String),
    /// A write on a node that is not active (a standby, or one stepping
    /// down): only the active node writes to storage.
    #[error("this node is not active: storage is read-only")]
    NotActive,
}

impl From<BarrierError> for crate::Error {
    fn from(err: BarrierError) -> Self {
        match err {
            BarrierError::Sealed => crate::Error::Sealed,
            BarrierError::NotInitialized => crate::Error::NotInitialized,
            BarrierError::InvalidKey => {
                crate::Error::BadRequest("invalid key: the unseal key is incorrect".into())
            }
            BarrierError::InvalidPath(p) => crate::Error::BadRequest(format!("invalid path {p:?}")),
            BarrierError::Storage(e) => crate::Error::Storage(e),
            BarrierError::NotActive => crate::Error::Standby,
            other => crate::Error::Internal(other.to_string()),
        }
    }
}

/// Logical storage: what sits above the physical backend and encrypts
/// everything (the barrier), and what a [`View`] prefixes. The node wraps
/// it once more to refuse writes when it is not active.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Reads and decrypts `key`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BarrierError>;
    /// Encrypts `value` and stores it at `key`.
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), BarrierError>;
    /// Removes `key` (no error if missing).
    async fn delete(&self, key: &str) -> Result<(), BarrierError>;
    /// The entries directly below `prefix` (see [`Backend::list`]).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError>;
    /// Applies `ops` as one atomic batch.
    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), BarrierError>;
}

/// Reduces the full keys found under `prefix` to one listing level: the part
/// after `prefix` up to and including the next `/`, deduplicated, in order.
/// Backends that scan a key range share this.
pub fn list_level<'a>(prefix: &str, keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let item = match rest.find('/') {
            Some(i) => &rest[..=i],
            None => rest,
        };
        if out.last().map(String::as_str) != Some(item) {
            out.push(item.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_level_folds_folders() {
        let keys = ["a/x", "a/y/z", "a/b", "a/y/w", "b/q"];
        assert_eq!(list_level("a/", keys), vec!["b", "x", "y/"]);
        assert_eq!(list_level("", keys), vec!["a/", "b/"]);
    }
}
