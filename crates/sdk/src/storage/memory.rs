//! An in-memory logical [`Storage`](super::Storage), for backends' unit
//! tests: a sorted map behind a mutex, with atomic batches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{list_level, BarrierError, BatchOp, Storage, View};

/// Logical storage held in memory (nothing encrypted, nothing persisted).
#[derive(Debug, Default)]
pub struct MemoryStorage {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStorage {
    /// A view of a fresh, empty in-memory storage under `prefix`.
    pub fn view(prefix: &str) -> View {
        View::new(Arc::new(MemoryStorage::default()), prefix)
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock leaves the map consistent (every
        // change is one insert or remove, or a batch applied in one go).
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BarrierError> {
        Ok(self.entries().get(key).cloned())
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), BarrierError> {
        self.entries().insert(key.to_string(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), BarrierError> {
        self.entries().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError> {
        let entries = self.entries();
        let keys = entries
            .range(prefix.to_string()..)
            .map(|(k, _)| k.as_str())
            .take_while(|k| k.starts_with(prefix));
        Ok(list_level(prefix, keys))
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), BarrierError> {
        let mut entries = self.entries();
        for op in ops {
            match op {
                BatchOp::Put(k, v) => {
                    entries.insert(k, v);
                }
                BatchOp::Delete(k) => {
                    entries.remove(&k);
                }
            }
        }
        Ok(())
    }
}
