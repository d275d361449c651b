//! Strongroom's PostgreSQL storage (`storage "postgresql"`, a drop-in for
//! OpenBao's) and the high-availability lock it provides.
//!
//! # Tables
//! OpenBao's layout, so a database prepared with OpenBao's documented SQL
//! (or written by OpenBao) works as it is: the data table
//! `(parent_path, path, key, value bytea)`, all text `COLLATE "C"`, primary
//! key `(path, key)`, index on `parent_path`; the lock table
//! `(ha_key primary key, ha_identity, ha_value, valid_until timestamptz)`.
//! Both are created when absent unless `skip_create_table`. Values arrive
//! barrier-encrypted; only keys are readable in the table.
//!
//! # Reads
//! `get` is one primary-key lookup. `list` is one read-only snapshot
//! (repeatable read) running one indexed query for the sub-folders (a loose
//! index scan on the primary key's `path` order: one index seek per
//! sub-folder, never a walk over the keys inside them) and the direct
//! children by `path = folder`, a page of 1000 keys at a time. OpenBao's
//! list query walks every key below the prefix (`parent_path LIKE ..%`);
//! the `parent_path` column is still maintained for OpenBao's sake.
//!
//! # Writes: group commit
//! As the redb backend: `put`/`delete`/`batch` queue their operations in a
//! bounded queue (writers wait for room when it is full); one writer task
//! takes everything queued (up to `max_group` requests) and applies it in
//! ONE transaction (one upsert of all puts, one delete of all deletes, the
//! last operation on a key winning), then answers every waiter. Should the
//! database refuse a grouped transaction, each request is retried alone, so
//! one bad request fails alone; a fence, a timeout or a lost connection
//! fails the whole group at once (retrying alone would only multiply the
//! wait). Each transaction (and each read) is bounded by
//! [`PostgresOptions::timeout`]; a connection that timed out is discarded.
//! Reads use the pool (`max_parallel` connections).
//!
//! # Fencing
//! With `ha_enabled`, writes are refused until the node sets a fence
//! ([`PostgresBackend::set_fence`] with [`HeldLock::fence`]). Then every
//! write transaction first runs, *in the same transaction*,
//! `SELECT .. FROM ha_table WHERE ha_key = $1 AND ha_identity = $2 AND
//! valid_until > clock_timestamp() FOR SHARE` and writes nothing (error
//! [`StorageError::Fenced`](strongroom_sdk::storage::StorageError::Fenced))
//! when no row comes back.
//!
//! Why an identity check under a row lock rather than an epoch column:
//! OpenBao's lock table has no epoch column and must work unchanged, and the
//! identity is already an epoch (a fresh random one per acquisition, never
//! reused). The `FOR SHARE` row lock closes the window between check and
//! write: taking the lock over (`INSERT .. ON CONFLICT DO UPDATE`) must
//! lock the same row exclusively, so it waits until the write transaction
//! ends. Either the write commits while the old holder still owns the row
//! (and is ordered before the takeover: the new holder sees it), or the
//! takeover committed first and the check finds another identity. A node
//! that lost the lock can never write. The check also sets
//! `idle_in_transaction_session_timeout` (ttl/3) for the transaction, so a
//! holder whose connection hangs silently mid-transaction cannot hold the
//! row lock (and delay a takeover) for longer than that: the server ends
//! the session and rolls back. Before any of that, a fence whose lock the
//! node already knows lost ([`HeldLock::is_held`] false) refuses at once.
//!
//! # HA lock
//! See [`lock`]: a lease row, taken only when absent or expired by the
//! database clock, renewed by its holder, declared lost locally before it
//! can expire in the database. How the core uses it (the lead wires this):
//!
//! ```text
//! let backend = PostgresBackend::connect(options).await?;        // writes refused (ha_enabled)
//! let lock = backend.ha_lock(&node_id, LockConfig::default())?;
//! let held = lock.acquire().await;                                 // standby until here
//! backend.set_fence(Some(held.fence()));                          // now writes commit only while held
//! // serve as active while held.is_held(); on held.lost(): stop serving as active,
//! backend.set_fence(None);                                         // and go back to standby
//! // step-down / seal: backend.set_fence(None); held.release().await
//! // standbys: lock.leader().await -> LeaderInfo { identity, value } (sys/leader)
//! ```
//!
//! # In use
//! See [`inuse`]: a running server marks its data table in use (a shared
//! advisory lock on a dedicated connection), so that `strongroom operator
//! migrate` refuses to copy from or into it.
//!
//! # TLS
//! rustls, with libpq's `sslmode` meanings (`disable`, `prefer` (default),
//! `require`, `verify-ca`, `verify-full`) and a CA file (`tls_ca_file`, or
//! the URL's `sslrootcert`); see the table in the `tls` module source.
//! libpq's environment variables (`PGHOST`, ...) are not read.
#![forbid(unsafe_code)]

mod backend;
pub mod changes;
pub mod inuse;
pub mod lock;
mod schema;
mod tls;

pub use crate::backend::{
    CommitObserver, PostgresBackend, PostgresOptions, DEFAULT_HA_TABLE, DEFAULT_MAX_PARALLEL,
    DEFAULT_TABLE,
};
pub use crate::changes::Changes;
pub use crate::inuse::{InUse, InUseError};
pub use crate::lock::{Fence, HaLock, HeldLock, LeaderInfo, LockConfig, LockError, CORE_LOCK_KEY};
pub use crate::tls::SslMode;
pub use deadpool_postgres::Pool;
