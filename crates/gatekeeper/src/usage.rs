//! Usage stores: how many tokens each task has had. A use is taken
//! atomically before a login and given back when the login fails, so a
//! task gets at most `num_uses` tokens and never loses one to a server
//! error. `memory` serves one instance; `vault` keeps one KV v2 entry per
//! task, written with check-and-set, so that peers share the counts, and
//! [`VaultStore::sweep`] deletes the entries whose expiry has passed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::vault::{CasOutcome, Token, VaultClient, VaultError};

/// The answer of [`UsageStore::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// A use was taken.
    Granted,
    /// The task has had all its uses.
    LimitReached,
}

/// Why a store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The Vault-API server failed.
    #[error("usage store: {0}")]
    Vault(#[from] VaultError),
    /// Concurrent writers kept winning the check-and-set.
    #[error("usage store: too many concurrent updates of {0}")]
    Contended(String),
    /// Gatekeeper is sealed: the store has no token.
    #[error("usage store: sealed")]
    Sealed,
    /// An entry in the store is not what Gatekeeper writes.
    #[error("usage store: malformed entry at {0}")]
    Malformed(String),
}

/// Counts uses per task key (`<scheduler>:<task id>`).
#[async_trait::async_trait]
pub trait UsageStore: Send + Sync {
    /// Takes one use of `key`, which allows `num_uses` in all; the count
    /// is forgotten `ttl` after the first use.
    async fn acquire(&self, key: &str, num_uses: u32, ttl: Duration)
        -> Result<Acquire, UsageError>;
    /// Gives one use of `key` back (the token was never delivered).
    async fn release(&self, key: &str) -> Result<(), UsageError>;
}

#[derive(Debug, Clone, Copy)]
struct MemEntry {
    uses: u32,
    expires: Instant,
}

/// The in-process store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, MemEntry>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, MemEntry>> {
        // A panic while holding the lock cannot leave a half-written entry
        // (every update is one insert), so a poisoned map is still sound.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn acquire_at(&self, key: &str, num_uses: u32, ttl: Duration, now: Instant) -> Acquire {
        let mut map = self.lock();
        // Expired entries go on every call: O(n) but n is bounded by the
        // tasks started in one grace period.
        map.retain(|_, e| e.expires > now);
        let entry = map.entry(key.to_string()).or_insert(MemEntry {
            uses: 0,
            expires: now + ttl,
        });
        if entry.uses >= num_uses {
            return Acquire::LimitReached;
        }
        entry.uses += 1;
        Acquire::Granted
    }

    fn release_at(&self, key: &str, now: Instant) {
        let mut map = self.lock();
        if let Some(e) = map.get_mut(key) {
            if e.expires > now {
                e.uses = e.uses.saturating_sub(1);
            }
        }
    }
}

#[async_trait::async_trait]
impl UsageStore for MemoryStore {
    async fn acquire(
        &self,
        key: &str,
        num_uses: u32,
        ttl: Duration,
    ) -> Result<Acquire, UsageError> {
        Ok(self.acquire_at(key, num_uses, ttl, Instant::now()))
    }

    async fn release(&self, key: &str) -> Result<(), UsageError> {
        self.release_at(key, Instant::now());
        Ok(())
    }
}

/// Gives the store the current Gatekeeper token (`None` when sealed).
pub type TokenSource = Arc<dyn Fn() -> Option<Arc<Token>> + Send + Sync>;

/// How many times a check-and-set is retried before giving up.
pub const CAS_ATTEMPTS: u32 = 8;

/// The shared store: `<path>/<escaped key>` holds `{uses, max, expires}`
/// (expires in Unix seconds) in KV v2.
pub struct VaultStore {
    vault: VaultClient,
    path: String,
    token: TokenSource,
    /// The last key a sweep looked at: the next sweep goes on after it.
    sweep_cursor: Mutex<String>,
}

/// What one [`VaultStore::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Entries read.
    pub examined: usize,
    /// Expired entries deleted.
    pub deleted: usize,
}

/// How long after its expiry an entry is deleted: slack for clocks of
/// peers that disagree a little.
pub const SWEEP_SLACK: Duration = Duration::from_secs(60);
/// How many entries one sweep reads at most.
pub const SWEEP_BATCH: usize = 100;
/// How often Gatekeeper sweeps the `vault` usage store.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl std::fmt::Debug for VaultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Escapes a task key into one path segment: letters, digits, `-`, `_`,
/// `.` and `:` stay, every other byte (`/`, `~`, spaces, `%`) becomes
/// `~XX`, which no URL decoding along the way changes. The key starts with
/// the scheduler's name, so it is never `.` or `..`.
pub fn escape_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Backoff before CAS retry `attempt` (0-based): 10ms doubling, with
/// jitter so that peers racing on one task do not stay in step.
fn cas_backoff(attempt: u32) -> Duration {
    let base = 10u64 << attempt.min(6);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % base.max(1);
    Duration::from_millis(base + jitter)
}

impl VaultStore {
    /// A store below `path` (a KV v2 `data/` path).
    pub fn new(vault: VaultClient, path: &str, token: TokenSource) -> Self {
        VaultStore {
            vault,
            path: path.trim_end_matches('/').to_string(),
            token,
            sweep_cursor: Mutex::new(String::new()),
        }
    }

    /// Deletes expired entries, reading at most `batch` of them, starting
    /// after the key the previous sweep stopped at (and wrapping around),
    /// so that every entry is looked at over successive sweeps however
    /// many there are.
    ///
    /// An entry expires `task_grace + 1m` after the task's first token,
    /// so once it has expired the task is too old to be served and no
    /// instance writes it again: deleting it (all versions, without
    /// check-and-set, which KV v2 deletes lack) loses no count. Entries
    /// are deleted only [`SWEEP_SLACK`] after their expiry, for clock
    /// skew. Entries that are not Gatekeeper's (malformed) and folders are
    /// left alone.
    pub async fn sweep(&self, batch: usize) -> Result<Sweep, UsageError> {
        let token = (self.token)().ok_or(UsageError::Sealed)?;
        let mut keys: Vec<String> = self
            .vault
            .kv_list(&token, &self.path, 2)
            .await?
            .into_iter()
            .filter(|k| !k.ends_with('/'))
            .collect();
        keys.sort();
        let cursor = self
            .sweep_cursor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let start = keys.partition_point(|k| k.as_str() <= cursor.as_str());
        let order = keys[start..].iter().chain(keys[..start].iter());
        let mut done = Sweep::default();
        let mut last = None;
        for key in order.take(batch) {
            last = Some(key.clone());
            done.examined += 1;
            let path = format!("{}/{key}", self.path);
            let expires = match self.read(&token, &path).await {
                Ok((_, expires, version)) if version > 0 => expires,
                Ok(_) => continue,
                Err(UsageError::Malformed(p)) => {
                    tracing::debug!(path = %p, "usage sweep: not a Gatekeeper entry, kept");
                    continue;
                }
                Err(e) => return Err(e),
            };
            if expires.saturating_add(SWEEP_SLACK.as_secs()) <= unix_now() {
                self.vault.kv2_delete_all(&token, &path).await?;
                done.deleted += 1;
            }
        }
        if let Some(last) = last {
            *self.sweep_cursor.lock().unwrap_or_else(|e| e.into_inner()) = last;
        }
        Ok(done)
    }

    /// Sweeps every `every` while `store` lives (skipped while sealed).
    pub fn spawn_sweeper(
        store: &Arc<VaultStore>,
        every: Duration,
        batch: usize,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(store);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(s) = me.upgrade() else { return };
                match s.sweep(batch).await {
                    Ok(Sweep { deleted: 0, .. }) | Err(UsageError::Sealed) => {}
                    Ok(done) => tracing::info!(
                        deleted = done.deleted,
                        examined = done.examined,
                        "expired usage entries deleted"
                    ),
                    Err(e) => tracing::warn!(error = %e, "usage sweep failed"),
                }
            }
        })
    }

    fn entry_path(&self, key: &str) -> String {
        format!("{}/{}", self.path, escape_key(key))
    }

    /// Reads an entry: (uses, max, expires, version).
    async fn read(&self, token: &Token, path: &str) -> Result<(u32, u64, u64), UsageError> {
        match self.vault.kv_read(token, path, 2).await? {
            None => Ok((0, 0, 0)),
            Some(e) => {
                let num = |k: &str| e.data.get(k).and_then(Value::as_u64);
                match (num("uses"), num("expires")) {
                    (Some(uses), Some(expires)) => {
                        Ok((u32::try_from(uses).unwrap_or(u32::MAX), expires, e.version))
                    }
                    _ => Err(UsageError::Malformed(path.to_string())),
                }
            }
        }
    }

    /// Read-modify-write with check-and-set, retried a bounded number of
    /// times. `update` gets (uses, live) and answers the new uses, or
    /// `None` to write nothing.
    async fn update(
        &self,
        key: &str,
        ttl: Duration,
        update: impl Fn(u32, bool) -> Option<u32>,
    ) -> Result<bool, UsageError> {
        let token = (self.token)().ok_or(UsageError::Sealed)?;
        let path = self.entry_path(key);
        for attempt in 0..CAS_ATTEMPTS {
            let (uses, expires, version) = self.read(&token, &path).await?;
            let now = unix_now();
            let live = version > 0 && expires > now;
            let uses = if live { uses } else { 0 };
            let Some(new_uses) = update(uses, live) else {
                return Ok(false);
            };
            let expires = if live { expires } else { now + ttl.as_secs() };
            let mut data = Map::new();
            data.insert("uses".into(), json!(new_uses));
            data.insert("expires".into(), json!(expires));
            match self
                .vault
                .kv2_write_cas(&token, &path, &data, version)
                .await?
            {
                CasOutcome::Written => return Ok(true),
                CasOutcome::Conflict => tokio::time::sleep(cas_backoff(attempt)).await,
            }
        }
        Err(UsageError::Contended(key.to_string()))
    }
}

#[async_trait::async_trait]
impl UsageStore for VaultStore {
    async fn acquire(
        &self,
        key: &str,
        num_uses: u32,
        ttl: Duration,
    ) -> Result<Acquire, UsageError> {
        let written = self
            .update(key, ttl, |uses, _| (uses < num_uses).then_some(uses + 1))
            .await?;
        Ok(if written {
            Acquire::Granted
        } else {
            Acquire::LimitReached
        })
    }

    async fn release(&self, key: &str) -> Result<(), UsageError> {
        self.update(key, Duration::ZERO, |uses, live| {
            (live && uses > 0).then(|| uses - 1)
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_counts_up_to_the_limit_and_gives_back() {
        let s = MemoryStore::new();
        let now = Instant::now();
        let ttl = Duration::from_secs(180);
        assert_eq!(s.acquire_at("mesos:t1", 2, ttl, now), Acquire::Granted);
        assert_eq!(s.acquire_at("mesos:t1", 2, ttl, now), Acquire::Granted);
        assert_eq!(s.acquire_at("mesos:t1", 2, ttl, now), Acquire::LimitReached);
        // Another task has its own count.
        assert_eq!(s.acquire_at("mesos:t2", 1, ttl, now), Acquire::Granted);
        // A use given back can be taken again, once.
        s.release_at("mesos:t1", now);
        assert_eq!(s.acquire_at("mesos:t1", 2, ttl, now), Acquire::Granted);
        assert_eq!(s.acquire_at("mesos:t1", 2, ttl, now), Acquire::LimitReached);
    }

    #[test]
    fn memory_entries_expire() {
        let s = MemoryStore::new();
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        assert_eq!(s.acquire_at("k", 1, ttl, now), Acquire::Granted);
        let later = now + Duration::from_secs(59);
        assert_eq!(s.acquire_at("k", 1, ttl, later), Acquire::LimitReached);
        let expired = now + Duration::from_secs(61);
        assert_eq!(s.acquire_at("k", 1, ttl, expired), Acquire::Granted);
        assert_eq!(s.lock().len(), 1);
    }

    #[test]
    fn release_never_goes_below_zero() {
        let s = MemoryStore::new();
        let now = Instant::now();
        s.release_at("k", now);
        assert_eq!(
            s.acquire_at("k", 1, Duration::from_secs(1), now),
            Acquire::Granted
        );
        s.release_at("k", now);
        s.release_at("k", now);
        assert_eq!(
            s.acquire_at("k", 1, Duration::from_secs(1), now),
            Acquire::Granted
        );
        assert_eq!(
            s.acquire_at("k", 1, Duration::from_secs(1), now),
            Acquire::LimitReached
        );
    }

    #[test]
    fn keys_escape_into_one_segment() {
        assert_eq!(escape_key("mesos:app.1a2b"), "mesos:app.1a2b");
        assert_eq!(escape_key("kubernetes:ns/p~d"), "kubernetes:ns~2Fp~7Ed");
        assert_eq!(escape_key("m:a%2Fb"), "m:a~252Fb");
    }
}
