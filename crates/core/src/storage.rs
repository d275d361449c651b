//! The physical storage contract, below the barrier.
//!
//! A [`Backend`] stores opaque bytes under slash-separated keys. It never sees
//! plaintext: everything but the seal configuration reaches it encrypted by
//! the [`barrier`](crate::barrier). The contract is the one OpenBao's physical
//! backends keep (get, put, delete, list one level below a prefix), plus
//! atomic batches. High availability (a PostgreSQL backend with a lock table)
//! adds a separate lock capability on top; callers of this trait do not change.

use async_trait::async_trait;

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
