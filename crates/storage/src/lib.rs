//! Strongroom's physical storage backends: the implementations of
//! [`strongroom_sdk::storage::Backend`].
//!
//! This crate owns how bytes reach a medium, below the barrier (it only ever
//! sees ciphertext, except the seal configuration):
//!
//! - [`InmemBackend`]: an ordered map in memory, for tests and `dev` mode.
//! - [`RedbBackend`]: an embedded, crash-safe [redb](https://docs.rs/redb)
//!   database with a dedicated writer thread doing *group commit*: concurrent
//!   writers share one write transaction and one fsync. Writes reach it
//!   through a bounded queue (writers wait when it is full); reads run on a
//!   small pool of reader threads, off the async runtime's workers.
//! - [`CachedBackend`]: a bounded read cache in front of a durable backend
//!   (OpenBao's `cache_size`), so hot keys cost no hand-off.
//!
//! Both validate keys the same way (see [`validate_key`]) and list one level
//! below a prefix by seeking past sub-folders instead of scanning them.
#![forbid(unsafe_code)]

mod cache;
mod inmem;
mod keys;
mod metered;
mod redb;

pub use crate::cache::{CachedBackend, DEFAULT_CACHE_SIZE};
pub use crate::inmem::InmemBackend;
pub use crate::keys::validate_key;
pub use crate::metered::MeteredBackend;
pub use crate::redb::{RedbBackend, RedbOptions};
pub use strongroom_sdk::storage::{Backend, BatchOp, StorageError};
