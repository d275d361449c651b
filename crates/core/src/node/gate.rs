//! The write gate: the one place where the node decides whether it may
//! write to storage. Every view the node hands out (mounts, token store,
//! policies, leases, the node's own tables) is made over the gate, so a
//! node that is not active cannot write, whatever code path tries.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use strongroom_barrier::Barrier;
use strongroom_sdk::storage::{BarrierError, BatchOp, Storage, View};

/// The barrier, refusing writes unless the node is active (or activating).
pub struct Gate {
    barrier: Arc<Barrier>,
    writable: AtomicBool,
}

impl Gate {
    /// A closed gate over `barrier`.
    pub fn new(barrier: Arc<Barrier>) -> Self {
        Gate {
            barrier,
            writable: AtomicBool::new(false),
        }
    }

    /// Opens (activation) or closes (step-down, seal) the gate.
    pub fn set_writable(&self, writable: bool) {
        self.writable.store(writable, Ordering::Release);
    }

    /// Whether writes pass.
    pub fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }

    fn check(&self) -> Result<(), BarrierError> {
        if self.is_writable() {
            Ok(())
        } else {
            Err(BarrierError::NotActive)
        }
    }

    /// A view of the gated barrier under `prefix`.
    pub fn view(self: &Arc<Self>, prefix: &str) -> View {
        View::new(Arc::clone(self) as Arc<dyn Storage>, prefix)
    }
}

#[async_trait::async_trait]
impl Storage for Gate {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BarrierError> {
        self.barrier.get(key).await
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), BarrierError> {
        self.check()?;
        self.barrier.put(key, value).await
    }

    async fn delete(&self, key: &str) -> Result<(), BarrierError> {
        self.check()?;
        self.barrier.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError> {
        self.barrier.list(prefix).await
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), BarrierError> {
        self.check()?;
        self.barrier.batch(ops).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_storage::InmemBackend;

    #[tokio::test]
    async fn a_closed_gate_refuses_every_write_and_serves_reads() {
        let barrier = Arc::new(Barrier::new(Arc::new(InmemBackend::new())));
        let key = Barrier::generate_key();
        barrier.initialize(&key).await.expect("initialize");
        barrier.unseal(&key).await.expect("unseal");
        let gate = Arc::new(Gate::new(barrier));
        let view = gate.view("t/");
        assert!(matches!(
            view.put("a", b"1").await,
            Err(BarrierError::NotActive)
        ));
        gate.set_writable(true);
        view.put("a", b"1").await.expect("put while writable");
        gate.set_writable(false);
        assert!(matches!(
            view.delete("a").await,
            Err(BarrierError::NotActive)
        ));
        assert!(matches!(
            view.batch(vec![BatchOp::Delete("a".into())]).await,
            Err(BarrierError::NotActive)
        ));
        assert_eq!(
            view.get("a").await.expect("read").as_deref(),
            Some(&b"1"[..])
        );
        assert_eq!(view.list("").await.expect("list"), vec!["a".to_string()]);
    }
}
