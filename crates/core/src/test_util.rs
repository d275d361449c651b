//! Helpers for the core's unit tests.

use std::sync::Arc;

use strongroom_barrier::Barrier;
use strongroom_sdk::storage::View;
use strongroom_storage::InmemBackend;

/// A view over a fresh, initialised and unsealed in-memory barrier.
pub(crate) async fn unsealed_view() -> View {
    let barrier = Arc::new(Barrier::new(Arc::new(InmemBackend::new())));
    let key = Barrier::generate_key();
    barrier.initialize(&key).await.expect("initialize");
    barrier.unseal(&key).await.expect("unseal");
    barrier.view("test/")
}
