//! [`MeteredBackend`]: times every operation of a physical backend as
//! OpenBao's per-backend metrics (`vault.<backend>.get`, `put`, `delete`,
//! `list`, and `batch` for atomic batches), through the metrics facade.

use std::sync::Arc;
use strongroom_telemetry::Instant;

use async_trait::async_trait;
use strongroom_sdk::storage::{Backend, BatchOp, StorageError};
use strongroom_telemetry::{StorageOp, StorageTimers};

/// A backend whose operations are timed; the handles are registered once.
pub struct MeteredBackend {
    inner: Arc<dyn Backend>,
    timers: StorageTimers,
}

impl MeteredBackend {
    /// Times `inner`'s operations as `vault.<name>.<op>`.
    pub fn new(inner: Arc<dyn Backend>, name: &str) -> MeteredBackend {
        MeteredBackend {
            inner,
            timers: StorageTimers::new(name),
        }
    }
}

#[async_trait]
impl Backend for MeteredBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let started = Instant::now();
        let r = self.inner.get(key).await;
        self.timers.record(StorageOp::Get, started.elapsed());
        r
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        let started = Instant::now();
        let r = self.inner.put(key, value).await;
        self.timers.record(StorageOp::Put, started.elapsed());
        r
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let started = Instant::now();
        let r = self.inner.delete(key).await;
        self.timers.record(StorageOp::Delete, started.elapsed());
        r
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let started = Instant::now();
        let r = self.inner.list(prefix).await;
        self.timers.record(StorageOp::List, started.elapsed());
        r
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), StorageError> {
        let started = Instant::now();
        let r = self.inner.batch(ops).await;
        self.timers.record(StorageOp::Batch, started.elapsed());
        r
    }
}
