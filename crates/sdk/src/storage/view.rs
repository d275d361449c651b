//! Prefixed views of logical storage: what a mount or subsystem gets as its
//! storage.
//!
//! A [`View`] prepends its prefix to every key, and refuses keys that could
//! leave it: a leading `/`, or a `.` or `..` path segment. Listings come back
//! relative to the view.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{BarrierError, BatchOp, Storage};

/// Logical storage restricted to the keys under a prefix. Cheap to clone.
#[derive(Clone, Debug)]
pub struct View {
    storage: Arc<dyn Storage>,
    prefix: Arc<str>,
}

impl std::fmt::Debug for dyn Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Storage")
    }
}

impl View {
    /// A view of `storage` under `prefix` (used verbatim, so it normally ends
    /// in `/`).
    pub fn new(storage: Arc<dyn Storage>, prefix: &str) -> Self {
        View {
            storage,
            prefix: prefix.into(),
        }
    }

    /// The full prefix of this view.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The storage underneath (for batches that span views).
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// A view under `prefix + more_prefix` (concatenated verbatim). A
    /// prefix that would escape makes every operation of the new view fail
    /// with [`BarrierError::InvalidPath`].
    pub fn sub_view(&self, more_prefix: &str) -> View {
        View {
            storage: Arc::clone(&self.storage),
            prefix: format!("{}{}", self.prefix, more_prefix).into(),
        }
    }

    /// The barrier key for `key`, or [`BarrierError::InvalidPath`] when it
    /// would not stay under the prefix.
    fn full_key(&self, key: &str) -> Result<String, BarrierError> {
        let full = format!("{}{}", self.prefix, key);
        let escapes = key.starts_with('/')
            || full.starts_with('/')
            || full.split('/').any(|seg| seg == ".." || seg == ".");
        if escapes {
            return Err(BarrierError::InvalidPath(full));
        }
        Ok(full)
    }

    /// Reads and decrypts `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BarrierError> {
        self.storage.get(&self.full_key(key)?).await
    }

    /// Encrypts and stores `value` at `key`.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<(), BarrierError> {
        self.storage.put(&self.full_key(key)?, value).await
    }

    /// Removes `key` (no error if missing).
    pub async fn delete(&self, key: &str) -> Result<(), BarrierError> {
        self.storage.delete(&self.full_key(key)?).await
    }

    /// The entries directly below `prefix` (empty or ending in `/`),
    /// relative to it.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError> {
        self.storage.list(&self.full_key(prefix)?).await
    }

    /// Applies `ops` (keys relative to the view) as one atomic batch.
    pub async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), BarrierError> {
        let ops = ops
            .into_iter()
            .map(|op| {
                Ok(match op {
                    BatchOp::Put(key, value) => BatchOp::Put(self.full_key(&key)?, value),
                    BatchOp::Delete(key) => BatchOp::Delete(self.full_key(&key)?),
                })
            })
            .collect::<Result<Vec<_>, BarrierError>>()?;
        self.storage.batch(ops).await
    }

    /// Reads `key` and decodes it from JSON; a value that does not decode
    /// is [`BarrierError::Corrupt`].
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, BarrierError> {
        let Some(bytes) = self.get(key).await? else {
            return Ok(None);
        };
        crate::json::from_stored(&bytes)
            .map(Some)
            .map_err(|e| BarrierError::Corrupt(format!("{}{key}: {e}", self.prefix)))
    }

    /// Encodes `value` as JSON and stores it at `key`.
    pub async fn put_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), BarrierError> {
        let bytes = serde_json::to_vec(value).map_err(|e| {
            BarrierError::Corrupt(format!("{}{key}: cannot encode: {e}", self.prefix))
        })?;
        self.put(key, &bytes).await
    }
}
