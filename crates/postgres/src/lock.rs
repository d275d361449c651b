//! The high-availability lock: a lease row in the lock table (OpenBao's
//! `openbao_ha_locks`), held by one node at a time.
//!
//! **Taking it.** One statement inserts the row, or takes over an existing
//! one only when it has expired *by the database clock*:
//! `INSERT .. ON CONFLICT (ha_key) DO UPDATE .. WHERE valid_until < now()`.
//! Nodes' clocks never matter. Each successful acquisition gets a fresh
//! random identity, so a node that lost the lock (or a previous process on
//! the same machine) can never renew or write under the new holder's name.
//!
//! **Keeping it.** The holder renews every `renew_interval` with
//! `UPDATE .. SET valid_until = now() + ttl WHERE ha_identity = mine AND
//! valid_until > now()`: renewal never re-creates nor steals a row, and a
//! lock that expired, even unnoticed, stays lost.
//!
//! **Knowing it is lost, before anyone else can take it.** The holder keeps a
//! local, monotonic deadline: the instant it *sent* its last successful
//! renewal (or acquisition) + `ttl` − `margin`. The database computed
//! `valid_until` from its own `now()` at the time it ran the statement,
//! which is after the send, so the row cannot expire by the database clock
//! before the local deadline plus `margin` (clock *rates* agree; offsets
//! do not matter). Each renewal attempt is bounded by the time left to that
//! deadline, and failed attempts are retried until it; when it passes, the
//! lock is lost: [`HeldLock::is_held`] turns false and
//! [`HeldLock::lost`] fires. A reset connection fails the attempt at once;
//! a silently hung one runs into the deadline. A connection that timed out
//! is discarded, never reused.
//!
//! **Defaults** (`ttl` 3 s, `renew_interval` 1 s, `retry_interval` 0.5 s,
//! `margin` 0.5 s): after a `kill -9` of the holder, its row expires at most
//! 3 s after its last renewal and a contender polling every 0.5 s takes it
//! within 3.5 s, inside the 5 s failover budget (the killed process's
//! connections close at once, aborting any open transaction). Only a
//! holder cut off *silently* in the middle of a write transaction can delay
//! the takeover further, by at most `ttl`/3 = 1 s (see the fence in the
//! crate docs): 4.5 s. A live holder gets two renewal attempts (at 1 s and
//! 2 s) before its 2.5 s local deadline, so a database hiccup of about a
//! second is survived without a leader change. (OpenBao: 15 s / 5 s / 1 s,
//! hence its 10-15 s failovers.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::schema::quote_ident;

/// The lock row's `ha_key`, as OpenBao's core names its lock.
pub const CORE_LOCK_KEY: &str = "core/lock";

/// Timings of the lock (see the module docs for the defaults' reasoning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockConfig {
    /// How long a taken or renewed lock stays valid by the database clock.
    pub ttl: Duration,
    /// How often the holder renews it.
    pub renew_interval: Duration,
    /// How often a contender tries to take it.
    pub retry_interval: Duration,
    /// How long before the earliest possible database expiry the holder
    /// considers the lock lost (time to stop acting as active).
    pub margin: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            ttl: Duration::from_secs(3),
            renew_interval: Duration::from_secs(1),
            retry_interval: Duration::from_millis(500),
            margin: Duration::from_millis(500),
        }
    }
}

impl LockConfig {
    /// Checks that the timings can work: a holder must be able to renew
    /// before its local deadline (`renew_interval < ttl - margin`).
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_interval.is_zero() || self.renew_interval.is_zero() {
            return Err("lock_renew_interval and lock_retry_interval must be positive".into());
        }
        if self.ttl < Duration::from_millis(100) {
            return Err("lock_ttl must be at least 100ms".into());
        }
        if self.margin >= self.ttl || self.renew_interval >= self.ttl - self.margin {
            return Err(format!(
                "lock_renew_interval ({:?}) must be shorter than lock_ttl ({:?}) minus the {:?} safety margin",
                self.renew_interval, self.ttl, self.margin
            ));
        }
        Ok(())
    }

    /// How long a write transaction's connection may sit idle before the
    /// database ends it: bounds how long a silent holder can delay a steal.
    pub(crate) fn fence_idle_timeout(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(100))
    }
}

/// A failure to talk to the lock table.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The database failed or did not answer in time.
    #[error("HA lock: {0}")]
    Database(String),
    /// The timings are unusable (see [`LockConfig::validate`]).
    #[error("HA lock configuration: {0}")]
    Config(String),
}

/// Who holds the lock, as the lock table says (for `sys/leader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The holder's `ha_identity` (fresh per acquisition).
    pub identity: String,
    /// The holder's advertised `ha_value` (OpenBao: the leader's UUID).
    pub value: String,
}

/// The SQL of the lock, with the table name filled in.
#[derive(Debug)]
struct LockSql {
    acquire: String,
    renew: String,
    release: String,
    leader: String,
}

/// A node's handle on the lock: take it with [`acquire`](Self::acquire),
/// ask who holds it with [`leader`](Self::leader).
///
/// Give it a pool of its own (see
/// [`PostgresBackend::lock_pool`](crate::PostgresBackend::lock_pool)), so
/// that renewals never queue behind storage traffic.
#[derive(Debug, Clone)]
pub struct HaLock {
    pool: Pool,
    config: LockConfig,
    ha_table: Arc<str>,
    key: Arc<str>,
    value: Arc<str>,
    sql: Arc<LockSql>,
}

impl HaLock {
    /// A handle on the lock row `key` ([`CORE_LOCK_KEY`] for the core) of
    /// `ha_table`, advertising `value` while held.
    pub fn new(
        pool: Pool,
        ha_table: &str,
        key: &str,
        value: &str,
        config: LockConfig,
    ) -> Result<Self, LockError> {
        config.validate().map_err(LockError::Config)?;
        let t = quote_ident(ha_table);
        let sql = LockSql {
            acquire: format!(
                "INSERT INTO {t} AS h (ha_key, ha_identity, ha_value, valid_until) \
                 VALUES ($1, $2, $3, now() + $4::float8 * interval '1 millisecond') \
                 ON CONFLICT (ha_key) DO UPDATE SET ha_identity = EXCLUDED.ha_identity, \
                   ha_value = EXCLUDED.ha_value, valid_until = EXCLUDED.valid_until \
                 WHERE h.valid_until < now()"
            ),
            renew: format!(
                "UPDATE {t} SET valid_until = now() + $3::float8 * interval '1 millisecond' \
                 WHERE ha_key = $1 AND ha_identity = $2 AND valid_until > now()"
            ),
            release: format!("DELETE FROM {t} WHERE ha_key = $1 AND ha_identity = $2"),
            leader: format!(
                "SELECT ha_identity, coalesce(ha_value, '') FROM {t} \
                 WHERE ha_key = $1 AND valid_until > now()"
            ),
        };
        Ok(HaLock {
            pool,
            config,
            ha_table: ha_table.into(),
            key: key.into(),
            value: value.into(),
            sql: Arc::new(sql),
        })
    }

    /// The timings in use.
    pub fn config(&self) -> &LockConfig {
        &self.config
    }

    /// Waits until this node holds the lock (trying every
    /// `retry_interval`; database errors are logged and retried), then
    /// keeps it renewed in a background task until it is released, dropped
    /// or lost.
    ///
    /// Cancel-safe in effect: if the future is dropped right after the
    /// database took the row, nobody renews it and it expires after `ttl`.
    pub async fn acquire(&self) -> HeldLock {
        loop {
            match self.try_acquire().await {
                Ok(Some(held)) => return held,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not try the HA lock"),
            }
            tokio::time::sleep(self.config.retry_interval).await;
        }
    }

    /// One attempt: the lock if it was free or expired, else `None`.
    pub async fn try_acquire(&self) -> Result<Option<HeldLock>, LockError> {
        let identity = uuid::Uuid::new_v4().to_string();
        let ttl_ms = self.config.ttl.as_secs_f64() * 1000.0;
        let sent = Instant::now();
        // Bounded like a renewal: an answer later than this is worthless
        // (the lease it gives would already be near its end).
        let budget = self.config.ttl - self.config.margin;
        let rows = self
            .execute(
                &self.sql.acquire,
                &[&&*self.key, &identity, &&*self.value, &ttl_ms],
                budget,
            )
            .await?;
        if rows != 1 {
            return Ok(None);
        }
        let deadline = sent + self.config.ttl - self.config.margin;
        let state = Arc::new(LockState {
            deadline: RwLock::new(deadline),
            lost: AtomicBool::new(false),
        });
        let (lost_tx, lost_rx) = watch::channel(false);
        let renewer = tokio::spawn(renew_loop(
            self.clone(),
            identity.clone(),
            Arc::clone(&state),
            lost_tx,
        ));
        tracing::info!(key = %self.key, "acquired the HA lock");
        Ok(Some(HeldLock {
            lock: self.clone(),
            identity,
            state,
            lost: lost_rx,
            renewer: Some(renewer),
        }))
    }

    /// Who holds the lock now (a row not expired by the database clock),
    /// or `None`.
    pub async fn leader(&self) -> Result<Option<LeaderInfo>, LockError> {
        let client = self.client(self.config.ttl).await?;
        let key: &str = &self.key;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&key];
        let fut = client.query_opt(&self.sql.leader, &params);
        match tokio::time::timeout(self.config.ttl, fut).await {
            Ok(Ok(row)) => Ok(row.map(|r| LeaderInfo {
                identity: r.get(0),
                value: r.get(1),
            })),
            Ok(Err(e)) => Err(LockError::Database(e.to_string())),
            Err(_) => {
                drop(Object::take(client));
                Err(LockError::Database(
                    "the lock table did not answer in time".into(),
                ))
            }
        }
    }

    /// A pooled connection, waited for at most `limit`.
    async fn client(&self, limit: Duration) -> Result<Object, LockError> {
        match tokio::time::timeout(limit, self.pool.get()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(LockError::Database(e.to_string())),
            Err(_) => Err(LockError::Database("no database connection in time".into())),
        }
    }

    /// Runs one statement within `limit` (connection included), discarding
    /// the connection when it did not answer in time.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        limit: Duration,
    ) -> Result<u64, LockError> {
        let start = Instant::now();
        let client = self.client(limit).await?;
        let left = limit.saturating_sub(start.elapsed());
        let outcome = tokio::time::timeout(left, client.execute(sql, params)).await;
        match outcome {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(LockError::Database(e.to_string())),
            Err(_) => {
                // A connection that hangs must not serve the next attempt.
                drop(Object::take(client));
                Err(LockError::Database(
                    "the lock table did not answer in time".into(),
                ))
            }
        }
    }
}

/// What the holder and the storage fence share: the local deadline and
/// whether the lock is known lost.
#[derive(Debug)]
pub(crate) struct LockState {
    /// Read on every request of an active node (`is_held`), written once
    /// per renewal: a read-write lock.
    deadline: RwLock<Instant>,
    lost: AtomicBool,
}

impl LockState {
    /// Still held: not declared lost and the local deadline not passed.
    pub(crate) fn is_held(&self) -> bool {
        !self.lost.load(Ordering::Acquire) && Instant::now() < self.deadline()
    }

    fn deadline(&self) -> Instant {
        *self.deadline.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn mark_lost(&self) {
        self.lost.store(true, Ordering::Release);
    }
}

/// The lock, held. Renewed in the background until [`release`](Self::release)
/// or drop (dropping stops renewing and deletes the row in the background,
/// best effort; it expires after `ttl` anyway).
#[derive(Debug)]
pub struct HeldLock {
    lock: HaLock,
    identity: String,
    state: Arc<LockState>,
    lost: watch::Receiver<bool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl HeldLock {
    /// This acquisition's `ha_identity`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whether this node may still act as the lock holder: the lock was not
    /// lost and its local deadline (earlier than any database expiry) has
    /// not passed. Check it before acting as active.
    pub fn is_held(&self) -> bool {
        self.state.is_held()
    }

    /// Resolves once the lock is lost (at the latest at the local deadline
    /// after the last successful renewal).
    pub async fn lost(&self) {
        let mut rx = self.lost.clone();
        // An error means the renewer ended: only after marking lost or on
        // release/drop, when nobody waits on this any more.
        let _ = rx.wait_for(|lost| *lost).await;
    }

    /// A watch that turns `true` when the lock is lost.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// The fence to give the storage
    /// ([`PostgresBackend::set_fence`](crate::PostgresBackend::set_fence)):
    /// its writes then commit only while this lock is held.
    pub fn fence(&self) -> Fence {
        Fence {
            ha_table: Arc::clone(&self.lock.ha_table),
            key: Arc::clone(&self.lock.key),
            identity: self.identity.clone().into(),
            idle_timeout_ms: self
                .lock
                .config
                .fence_idle_timeout()
                .as_millis()
                .to_string()
                .into(),
            state: Arc::clone(&self.state),
        }
    }

    /// Stops renewing and deletes the row, so that another node can take
    /// the lock at once (a step-down or a clean shutdown).
    pub async fn release(mut self) -> Result<(), LockError> {
        self.stop();
        let limit = self.lock.config.ttl;
        self.lock
            .execute(
                &self.lock.sql.release,
                &[&&*self.lock.key, &self.identity],
                limit,
            )
            .await
            .map(|rows| tracing::debug!(key = %self.lock.key, rows, "released the HA lock"))
    }

    fn stop(&mut self) {
        self.state.mark_lost();
        if let Some(task) = self.renewer.take() {
            task.abort();
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if self.renewer.is_none() {
            return; // released
        }
        self.stop();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let lock = self.lock.clone();
            let identity = std::mem::take(&mut self.identity);
            rt.spawn(async move {
                let limit = lock.config.ttl;
                let _ = lock
                    .execute(&lock.sql.release, &[&&*lock.key, &identity], limit)
                    .await;
            });
        }
    }
}

/// The renewal task: renews every `renew_interval`, retries failed attempts
/// until the local deadline, and declares the lock lost at that deadline
/// or as soon as the row is no longer ours.
async fn renew_loop(
    lock: HaLock,
    identity: String,
    state: Arc<LockState>,
    lost: watch::Sender<bool>,
) {
    let cfg = lock.config.clone();
    let ttl_ms = cfg.ttl.as_secs_f64() * 1000.0;
    let mut next = Instant::now() + cfg.renew_interval;
    loop {
        let deadline = state.deadline();
        tokio::time::sleep_until(next.min(deadline)).await;
        let sent = Instant::now();
        if sent >= deadline {
            tracing::error!(key = %lock.key, "HA lock lost: not renewed before its deadline");
            break;
        }
        let left = deadline - sent;
        match lock
            .execute(&lock.sql.renew, &[&&*lock.key, &identity, &ttl_ms], left)
            .await
        {
            Ok(1) => {
                let renewed = sent + cfg.ttl - cfg.margin;
                *state
                    .deadline
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = renewed;
                next = sent + cfg.renew_interval;
            }
            Ok(_) => {
                tracing::error!(key = %lock.key, "HA lock lost: the row is no longer ours (expired or taken)");
                break;
            }
            Err(e) => {
                tracing::warn!(key = %lock.key, error = %e, "HA lock renewal failed; retrying until the deadline");
                // Retry soon, but not in a tight loop.
                next = Instant::now() + cfg.retry_interval.min(cfg.renew_interval);
            }
        }
    }
    state.mark_lost();
    let _ = lost.send(true);
}

/// A storage fence: the identity of a held lock. While set on a
/// [`PostgresBackend`](crate::PostgresBackend), every write transaction
/// first locks the lock row `FOR SHARE` where it still carries this
/// identity and has not expired; otherwise it writes nothing and fails with
/// [`StorageError::Fenced`](strongroom_sdk::storage::StorageError::Fenced).
#[derive(Debug, Clone)]
pub struct Fence {
    pub(crate) ha_table: Arc<str>,
    pub(crate) key: Arc<str>,
    pub(crate) identity: Arc<str>,
    pub(crate) idle_timeout_ms: Arc<str>,
    pub(crate) state: Arc<LockState>,
}

impl Fence {
    /// The lock identity the writes are fenced on.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The lock table the fence checks.
    pub fn ha_table(&self) -> &str {
        &self.ha_table
    }

    /// Whether the lock still looks held locally (no database round trip).
    pub fn is_held(&self) -> bool {
        self.state.is_held()
    }

    /// How long the lock stays held locally without another renewal
    /// (`None` once lost). The row expires in the database later than that
    /// (by the margin), so a promise bounded by it ends before any other
    /// node can take the lock.
    pub fn remaining(&self) -> Option<Duration> {
        if !self.state.is_held() {
            return None;
        }
        Some(
            self.state
                .deadline()
                .saturating_duration_since(Instant::now()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_timings_are_named() {
        assert_eq!(LockConfig::default().validate(), Ok(()));
        let bad = LockConfig {
            renew_interval: Duration::from_secs(3),
            ..LockConfig::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.contains("must be shorter than lock_ttl"), "{err}");
        let zero = LockConfig {
            retry_interval: Duration::ZERO,
            ..LockConfig::default()
        };
        assert!(zero.validate().unwrap_err().contains("must be positive"));
    }
}
