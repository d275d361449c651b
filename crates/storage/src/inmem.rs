//! The in-memory backend: an ordered map behind a reader-writer lock. Nothing
//! survives the process; meant for tests and `dev` mode.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;
use strongroom_sdk::storage::{Backend, BatchOp, StorageError};

use crate::keys::{scan_level, validate_key, validate_ops};

/// A [`Backend`] holding everything in a `BTreeMap` in memory.
///
/// Reads take a shared lock and do not block each other; a batch takes the
/// exclusive lock once, so it is atomic to every reader.
#[derive(Debug, Default)]
pub struct InmemBackend {
    map: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl InmemBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

// No code panics while holding the lock (map operations on owned data do not
// panic short of allocation failure), so a poisoned lock still guards a
// consistent map: recover it with `PoisonError::into_inner`.

#[async_trait]
impl Backend for InmemBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_key(key)?;
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(key).cloned())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let listed = scan_level(prefix, |start| {
            Ok::<_, Infallible>(
                map.range::<str, _>((Bound::Included(start), Bound::Unbounded))
                    .map(|(k, _)| Ok(k.clone())),
            )
        });
        match listed {
            Ok(v) => Ok(v),
            Err(never) => match never {},
        }
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), StorageError> {
        validate_ops(&ops)?;
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        for op in ops {
            match op {
                BatchOp::Put(k, v) => {
                    map.insert(k, v);
                }
                BatchOp::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }
}
