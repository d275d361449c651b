//! OpenBao's user lockout for auth method logins, kept per mount and per
//! node in memory. Shared by AppRole (keyed by the HMAC of a role id) and
//! userpass (keyed by the lowercased username).
//!
//! The method decides which failures count (OpenBao counts only
//! `ErrInvalidCredentials`: AppRole's unknown secret id for an existing
//! role id, userpass's wrong password for an existing user). After
//! [`THRESHOLD`] failures within [`COUNTER_RESET`] of each other, the key
//! is locked for [`DURATION`] after the last one: every login is then
//! refused with 403 `permission denied`, even with the right credentials.
//! A successful login forgets the failures.
//!
//! The count is exact under any concurrency. A login takes an [`Attempt`]
//! before it runs ([`Lockout::begin`], refused if the key is locked).
//! When it fails, [`Attempt::failed`] checks the lock and counts the failure
//! in one step under the key's shard lock: of N logins racing to fail,
//! exactly `THRESHOLD` are counted (answered 400) and the rest find the key
//! locked (403). When it succeeds, [`Attempt::succeeded`] forgets only
//! the failures counted before the attempt began, so a success cannot wipe
//! out failures that raced past it.
//!
//! Failures carry numbers from one per-mount clock. The successful-login
//! path takes no lock while its shard has no failures: it reads the clock
//! and the shard's entry count, two atomic loads.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Failed logins that lock a key out (OpenBao's default).
pub const THRESHOLD: usize = 5;
/// How long a locked key stays locked after its last failure.
pub const DURATION: Duration = Duration::from_secs(15 * 60);
/// How long failures are remembered without a new one.
pub const COUNTER_RESET: Duration = Duration::from_secs(15 * 60);

/// How many shards the keys are spread over.
const SHARDS: usize = 64;

/// The failures of one key.
#[derive(Debug)]
struct Failures {
    /// Clock numbers of the counted failures, ascending; never more than
    /// [`THRESHOLD`].
    seqs: Vec<u64>,
    /// When the last one was counted.
    last: Instant,
}

impl Failures {
    /// Whether these failures lock the key out at `now`.
    fn locks(&self, now: Instant) -> bool {
        self.seqs.len() >= THRESHOLD && now < self.last + DURATION
    }

    /// Whether these failures no longer count at `now`: the lockout ended
    /// or the counter reset passed.
    fn stale(&self, now: Instant) -> bool {
        (self.seqs.len() >= THRESHOLD && now >= self.last + DURATION)
            || now > self.last + COUNTER_RESET
    }
}

/// One shard of keys.
#[derive(Default)]
struct Shard {
    /// Entries in `map`, readable without the lock.
    tracked: AtomicUsize,
    map: Mutex<HashMap<String, Failures>>,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Failures>> {
        // A panic while holding this lock cannot leave the map half
        // updated in a way that matters: each update is one insert,
        // push or removal.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes `key`'s entry, keeping `tracked` in step.
    fn remove(&self, map: &mut HashMap<String, Failures>, key: &str) {
        if map.remove(key).is_some() {
            self.tracked.fetch_sub(1, SeqCst);
        }
    }
}

/// The lockout state of one auth mount.
pub struct Lockout {
    /// The failure clock: the number of the last counted failure.
    clock: AtomicU64,
    shards: Vec<Shard>,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout {
            clock: AtomicU64::new(0),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

/// A login's refusal because its key is locked out.
#[derive(Debug, PartialEq, Eq)]
pub struct Locked;

/// What a failed login is answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The failure was counted: answer the login's own error.
    Counted,
    /// The key was locked out meanwhile: answer 403, nothing counted.
    Locked,
}

/// A login in progress for one key.
pub struct Attempt<'a> {
    lockout: &'a Lockout,
    key: &'a str,
    /// The clock when the attempt began.
    start: u64,
}

impl Lockout {
    fn shard(&self, key: &str) -> &Shard {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        // invariant: the index is reduced modulo `SHARDS == shards.len()`.
        &self.shards[(h.finish() % SHARDS as u64) as usize]
    }

    /// Begins a login for `key` (e.g. a role id's HMAC or a username) at
    /// `now`, refused if the key is locked out.
    pub fn begin<'a>(&'a self, key: &'a str, now: Instant) -> Result<Attempt<'a>, Locked> {
        // The clock is read before the entry count: a failure raises the
        // count before it takes a number, so a failure numbered up to
        // `start` is seen below.
        let start = self.clock.load(SeqCst);
        let shard = self.shard(key);
        if shard.tracked.load(SeqCst) != 0 {
            let mut map = shard.lock();
            match map.get(key) {
                Some(f) if f.locks(now) => return Err(Locked),
                Some(f) if f.stale(now) => shard.remove(&mut map, key),
                _ => {}
            }
        }
        Ok(Attempt {
            lockout: self,
            key,
            start,
        })
    }

    /// How many failures of `key` count now.
    #[cfg(test)]
    fn count(&self, key: &str) -> usize {
        self.shard(key).lock().get(key).map_or(0, |f| f.seqs.len())
    }
}

impl Attempt<'_> {
    /// The login failed with bad credentials at `now`: counts it unless
    /// the key is locked out by now, in one step.
    pub fn failed(self, now: Instant) -> Verdict {
        let shard = self.lockout.shard(self.key);
        let mut map = shard.lock();
        let f = map.entry(self.key.to_string()).or_insert_with(|| {
            shard.tracked.fetch_add(1, SeqCst);
            Failures {
                seqs: Vec::with_capacity(THRESHOLD),
                last: now,
            }
        });
        if f.locks(now) {
            return Verdict::Locked;
        }
        if f.stale(now) {
            f.seqs.clear();
        }
        let seq = self.lockout.clock.fetch_add(1, SeqCst) + 1;
        f.seqs.push(seq);
        f.last = now;
        Verdict::Counted
    }

    /// The login succeeded: forgets the failures counted before it began
    /// (later ones raced past it and still count).
    pub fn succeeded(self) {
        let shard = self.lockout.shard(self.key);
        if shard.tracked.load(SeqCst) == 0 {
            return;
        }
        let mut map = shard.lock();
        if let Some(f) = map.get_mut(self.key) {
            f.seqs.retain(|seq| *seq > self.start);
            if f.seqs.is_empty() {
                shard.remove(&mut map, self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    const KEY: &str = "ab12";

    fn fail(l: &Lockout, now: Instant) -> Result<Verdict, Locked> {
        Ok(l.begin(KEY, now)?.failed(now))
    }

    #[test]
    fn threshold_failures_lock_the_key_out() {
        let l = Lockout::default();
        let now = Instant::now();
        for _ in 0..THRESHOLD {
            assert_eq!(fail(&l, now), Ok(Verdict::Counted));
        }
        assert_eq!(fail(&l, now).err(), Some(Locked));
        // Another key is not locked.
        assert!(l.begin("ab99", now).is_ok());
    }

    #[test]
    fn a_success_forgets_earlier_failures() {
        let l = Lockout::default();
        let now = Instant::now();
        for _ in 0..THRESHOLD - 1 {
            assert_eq!(fail(&l, now), Ok(Verdict::Counted));
        }
        l.begin(KEY, now).expect("not locked").succeeded();
        assert_eq!(l.count(KEY), 0);
        for _ in 0..THRESHOLD - 1 {
            assert_eq!(fail(&l, now), Ok(Verdict::Counted));
        }
        assert!(l.begin(KEY, now).is_ok(), "four failures do not lock");
    }

    #[test]
    fn a_success_keeps_failures_that_raced_past_it() {
        let l = Lockout::default();
        let now = Instant::now();
        let success = l.begin(KEY, now).expect("not locked");
        for _ in 0..THRESHOLD {
            assert_eq!(fail(&l, now), Ok(Verdict::Counted));
        }
        success.succeeded();
        assert_eq!(l.count(KEY), THRESHOLD);
        assert_eq!(fail(&l, now).err(), Some(Locked));
    }

    #[test]
    fn a_failure_that_began_before_the_lock_is_not_counted_after_it() {
        let l = Lockout::default();
        let now = Instant::now();
        let slow = l.begin(KEY, now).expect("not locked");
        for _ in 0..THRESHOLD {
            assert_eq!(fail(&l, now), Ok(Verdict::Counted));
        }
        assert_eq!(slow.failed(now), Verdict::Locked);
        assert_eq!(l.count(KEY), THRESHOLD);
    }

    #[test]
    fn the_lock_ends_after_its_duration_and_counting_starts_afresh() {
        let l = Lockout::default();
        let t0 = Instant::now();
        for _ in 0..THRESHOLD {
            assert_eq!(fail(&l, t0), Ok(Verdict::Counted));
        }
        assert!(l
            .begin(KEY, t0 + DURATION - Duration::from_secs(1))
            .is_err());
        let later = t0 + DURATION;
        assert_eq!(fail(&l, later), Ok(Verdict::Counted));
        assert_eq!(l.count(KEY), 1);
    }

    #[test]
    fn failures_further_apart_than_the_counter_reset_do_not_add_up() {
        let l = Lockout::default();
        let t0 = Instant::now();
        for _ in 0..THRESHOLD - 1 {
            assert_eq!(fail(&l, t0), Ok(Verdict::Counted));
        }
        let later = t0 + COUNTER_RESET + Duration::from_secs(1);
        assert_eq!(fail(&l, later), Ok(Verdict::Counted));
        assert_eq!(l.count(KEY), 1);
        assert!(l.begin(KEY, later).is_ok());
    }

    /// Of many threads that all began before any failure and all fail,
    /// exactly `THRESHOLD` are counted.
    #[test]
    fn racing_failures_are_counted_exactly() {
        const N: usize = 64;
        let l = Arc::new(Lockout::default());
        let now = Instant::now();
        let gate = Arc::new(Barrier::new(N));
        let threads: Vec<_> = (0..N)
            .map(|_| {
                let (l, gate) = (l.clone(), gate.clone());
                std::thread::spawn(move || {
                    let attempt = l.begin(KEY, now);
                    gate.wait();
                    attempt.map(|a| a.failed(now))
                })
            })
            .collect();
        let verdicts: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        let counted = verdicts
            .iter()
            .filter(|v| **v == Ok(Verdict::Counted))
            .count();
        let locked = verdicts
            .iter()
            .filter(|v| **v == Ok(Verdict::Locked))
            .count();
        assert_eq!((counted, locked), (THRESHOLD, N - THRESHOLD));
    }
}
