//! The bucket table: one bucket per (quota, client address), as OpenBao's
//! rate limiter keeps them. A bucket holds `rate` tokens, refilled whole at
//! each interval since the bucket was made; a request takes one. A client
//! refused by a quota with a `block_interval` stays refused until it ends.
//!
//! Memory stays bounded: the table is sharded (one lock per shard, no
//! global lock), each shard holds at most its share of the capacity, and a
//! full shard first drops its idle buckets (a bucket that would be full
//! again and blocks nobody: dropping it changes no answer), then, if that
//! is not enough, the least recently seen quarter.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The default capacity of the bucket table.
pub const DEFAULT_MAX_BUCKETS: usize = 65_536;

/// The number of shards (each with its own lock).
const SHARDS: usize = 16;

/// A bucket's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// The bucket's size (`X-RateLimit-Limit`); `None` while the client is
    /// blocked (OpenBao then sends only `Retry-After`).
    pub limit: Option<u64>,
    /// The tokens left (`X-RateLimit-Remaining`).
    pub remaining: u64,
    /// The time until the bucket is refilled (`X-RateLimit-Reset`).
    pub reset: Duration,
    /// When refused, the time until a request may succeed (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// The response headers OpenBao sends for this decision, in seconds
    /// (rounded down).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(limit) = self.limit {
            out.push(("X-RateLimit-Limit", limit.to_string()));
            out.push(("X-RateLimit-Remaining", self.remaining.to_string()));
            out.push(("X-RateLimit-Reset", self.reset.as_secs().to_string()));
        }
        if let Some(retry) = self.retry_after {
            out.push(("Retry-After", retry.as_secs().to_string()));
        }
        out
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    /// When the bucket was made: intervals count from here.
    start: Instant,
    interval: Duration,
    /// The interval the tokens were last refilled in.
    tick: u64,
    tokens: u64,
    /// When the client was last seen.
    seen: Instant,
    /// Refused until then (a quota with a block interval).
    blocked_until: Option<Instant>,
}

impl Bucket {
    fn tick_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        // `interval` is at least one second: no division by zero.
        u64::try_from(elapsed / self.interval.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    /// The end of the interval `tick`.
    fn window_end(&self, tick: u64) -> Instant {
        let ends = self
            .interval
            .checked_mul(u32::try_from(tick.saturating_add(1)).unwrap_or(u32::MAX));
        ends.and_then(|d| self.start.checked_add(d))
            .unwrap_or(self.seen + self.interval)
    }

    /// Whether dropping the bucket changes no answer: its tokens would be
    /// refilled and it blocks nobody.
    fn idle(&self, now: Instant) -> bool {
        self.tick_at(now) > self.tick && self.blocked_until.is_none_or(|b| now >= b)
    }
}

type Key = (u64, IpAddr);

/// The buckets of all rate-limit quotas (see the module doc).
#[derive(Debug)]
pub struct Limiter {
    shards: Vec<Mutex<HashMap<Key, Bucket>>>,
    per_shard: usize,
    len: AtomicUsize,
}

impl Limiter {
    /// A table of at most `max_buckets` buckets (at least one per shard).
    pub fn new(max_buckets: usize) -> Self {
        Limiter {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_buckets.div_ceil(SHARDS).max(1),
            len: AtomicUsize::new(0),
        }
    }

    /// How many buckets the table holds.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether the table holds no bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most buckets the table holds.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    fn shard(&self, key: &Key) -> std::sync::MutexGuard<'_, HashMap<Key, Bucket>> {
        use std::hash::{Hash, Hasher};
        // A fixed hasher: the shard of a key never changes.
        let mut fixed = std::hash::DefaultHasher::new();
        key.hash(&mut fixed);
        let i = (fixed.finish() as usize) % SHARDS;
        match self.shards[i].lock() {
            Ok(g) => g,
            // A panic while holding the lock left whole buckets behind.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes a token from `client`'s bucket of quota `quota` (made full
    /// when absent) at `now`; `tokens`, `interval` and `block` are the
    /// quota's.
    pub fn take(
        &self,
        quota: u64,
        client: IpAddr,
        tokens: u64,
        interval: Duration,
        block: Duration,
        now: Instant,
    ) -> Decision {
        let key = (quota, client);
        let mut shard = self.shard(&key);
        if !shard.contains_key(&key) && shard.len() >= self.per_shard {
            self.make_room(&mut shard, now);
        }
        let bucket = shard.entry(key).or_insert_with(|| {
            self.len.fetch_add(1, Ordering::Relaxed);
            Bucket {
                start: now,
                interval: interval.max(Duration::from_secs(1)),
                tick: 0,
                tokens,
                seen: now,
                blocked_until: None,
            }
        });
        bucket.seen = bucket.seen.max(now);
        if let Some(until) = bucket.blocked_until {
            if now < until {
                return Decision {
                    allowed: false,
                    limit: None,
                    remaining: 0,
                    reset: until - now,
                    retry_after: Some(until - now),
                };
            }
            bucket.blocked_until = None;
        }
        let tick = bucket.tick_at(now);
        if tick > bucket.tick {
            bucket.tick = tick;
            bucket.tokens = tokens;
        }
        let reset = bucket
            .window_end(bucket.tick)
            .saturating_duration_since(now);
        if bucket.tokens > 0 {
            bucket.tokens -= 1;
            return Decision {
                allowed: true,
                limit: Some(tokens),
                remaining: bucket.tokens,
                reset,
                retry_after: None,
            };
        }
        let retry_after = if block.is_zero() {
            reset
        } else {
            bucket.blocked_until = Some(now + block);
            block
        };
        Decision {
            allowed: false,
            limit: Some(tokens),
            remaining: 0,
            reset,
            retry_after: Some(retry_after),
        }
    }

    /// Makes room in a full shard: drops the idle buckets, then if the
    /// shard is still over three quarters full, the least recently seen
    /// quarter (so a flood of new clients costs O(log n) per request);
    /// blocked clients go last (they count from the end of their block).
    fn make_room(&self, shard: &mut HashMap<Key, Bucket>, now: Instant) {
        let before = shard.len();
        shard.retain(|_, b| !b.idle(now));
        if shard.len() * 4 > self.per_shard * 3 {
            let last = |b: &Bucket| b.blocked_until.filter(|u| *u > now).unwrap_or(b.seen);
            let mut seen: Vec<Instant> = shard.values().map(last).collect();
            let drop = (shard.len() - self.per_shard * 3 / 4).max(1);
            seen.select_nth_unstable(drop - 1);
            let cutoff = seen[drop - 1];
            let mut dropped = 0;
            shard.retain(|_, b| {
                if dropped < drop && last(b) <= cutoff {
                    dropped += 1;
                    false
                } else {
                    true
                }
            });
        }
        self.len.fetch_sub(before - shard.len(), Ordering::Relaxed);
    }

    /// Drops the buckets of every quota but `keep`.
    pub fn retain_quotas(&self, keep: &[u64]) {
        for shard in &self.shards {
            let mut shard = match shard.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let before = shard.len();
            shard.retain(|(q, _), _| keep.contains(q));
            self.len.fetch_sub(before - shard.len(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const SEC: Duration = Duration::from_secs(1);

    fn addr(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x7f00_0000 + i))
    }

    #[test]
    fn a_bucket_allows_rate_requests_per_interval_then_refills() {
        let l = Limiter::new(64);
        let t0 = Instant::now();
        let take = |at: Duration| l.take(1, addr(1), 3, 10 * SEC, Duration::ZERO, t0 + at);
        let d = take(Duration::ZERO);
        assert_eq!(
            (d.allowed, d.limit, d.remaining, d.reset),
            (true, Some(3), 2, 10 * SEC)
        );
        assert_eq!(take(SEC).remaining, 1);
        let d = take(2 * SEC);
        assert_eq!((d.allowed, d.remaining, d.reset), (true, 0, 8 * SEC));
        let d = take(3 * SEC);
        assert_eq!(
            (d.allowed, d.retry_after, d.reset),
            (false, Some(7 * SEC), 7 * SEC)
        );
        assert_eq!(
            d.headers(),
            vec![
                ("X-RateLimit-Limit", "3".to_string()),
                ("X-RateLimit-Remaining", "0".to_string()),
                ("X-RateLimit-Reset", "7".to_string()),
                ("Retry-After", "7".to_string()),
            ]
        );
        // The next interval starts full.
        let d = take(10 * SEC);
        assert_eq!((d.allowed, d.remaining, d.reset), (true, 2, 10 * SEC));
        // Another client has its own bucket.
        assert!(l.take(1, addr(2), 3, 10 * SEC, Duration::ZERO, t0).allowed);
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn a_refused_client_stays_blocked_for_the_block_interval() {
        let l = Limiter::new(64);
        let t0 = Instant::now();
        let take = |at: Duration| l.take(1, addr(1), 1, SEC, 20 * SEC, t0 + at);
        assert!(take(Duration::ZERO).allowed);
        let d = take(Duration::ZERO);
        assert_eq!((d.allowed, d.retry_after), (false, Some(20 * SEC)));
        // Blocked past the refill: only Retry-After, counting down.
        let d = take(5 * SEC);
        assert_eq!(
            (d.allowed, d.limit, d.retry_after),
            (false, None, Some(15 * SEC))
        );
        assert_eq!(d.headers(), vec![("Retry-After", "15".to_string())]);
        assert!(take(20 * SEC).allowed);
    }

    #[test]
    fn the_table_stays_bounded_under_a_flood_of_clients() {
        let l = Limiter::new(1024);
        let t0 = Instant::now();
        // 100,000 clients within one interval: none is idle, the least
        // recently seen are evicted.
        for i in 0..100_000 {
            let d = l.take(
                1,
                addr(i),
                5,
                60 * SEC,
                Duration::ZERO,
                t0 + Duration::from_micros(u64::from(i)),
            );
            assert!(d.allowed);
            assert!(l.len() <= l.capacity(), "{} buckets", l.len());
        }
        assert!(l.len() <= 1024);
        // A recent client kept its bucket (the evicted are the oldest).
        let d = l.take(1, addr(99_999), 5, 60 * SEC, Duration::ZERO, t0 + SEC);
        assert_eq!(d.remaining, 3);
    }

    #[test]
    fn idle_buckets_are_dropped_first() {
        let l = Limiter::new(160);
        let t0 = Instant::now();
        // Fill the table with clients that will be idle.
        for i in 0..1000 {
            l.take(1, addr(i), 1, SEC, Duration::ZERO, t0);
        }
        assert!(l.len() <= l.capacity());
        // A blocked client is not idle, even after its interval.
        let blocked = addr(5000);
        l.take(1, blocked, 1, SEC, 100 * SEC, t0);
        l.take(1, blocked, 1, SEC, 100 * SEC, t0);
        for i in 1000..2000 {
            l.take(1, addr(i), 1, SEC, Duration::ZERO, t0 + 2 * SEC);
        }
        assert!(l.len() <= l.capacity());
        let d = l.take(1, blocked, 1, SEC, 100 * SEC, t0 + 3 * SEC);
        assert!(!d.allowed, "the blocked client was forgotten");
    }

    #[test]
    fn dropping_a_quota_drops_its_buckets() {
        let l = Limiter::new(64);
        let t0 = Instant::now();
        l.take(1, addr(1), 1, SEC, Duration::ZERO, t0);
        l.take(2, addr(1), 1, SEC, Duration::ZERO, t0);
        l.retain_quotas(&[2]);
        assert_eq!(l.len(), 1);
        assert!(l.take(1, addr(1), 1, SEC, Duration::ZERO, t0).allowed);
    }
}
