//! The public-key cache: keys that verify service-account JWTs, keyed by
//! (`sub`, `kid`) with an expiry, so warm logins skip Google. Also owns the
//! per-key fetch guard (single-flight: concurrent logins with a cold cache
//! for the same key wait for one fetch) and the conversion of a PEM
//! X.509 certificate into a verification key. Time is passed in, so the
//! expiry rules are testable without waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use jsonwebtoken::DecodingKey;

/// The longest a key stays cached, whatever Google says.
pub const MAX_KEY_TTL: Duration = Duration::from_secs(3600);

/// How many entries the cache holds before expired ones are swept.
const SWEEP_AT: usize = 4096;

type KeyId = (String, String);

struct Entry {
    key: Arc<DecodingKey>,
    expires: SystemTime,
}

/// Verification keys by (`sub`, `kid`), each until its expiry.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<KeyId, Entry>>,
    fetching: Mutex<HashMap<KeyId, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyCache {
    /// The cached key for (`sub`, `kid`) if it has not expired at `now`.
    pub fn get(&self, sub: &str, kid: &str, now: SystemTime) -> Option<Arc<DecodingKey>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&(sub.to_string(), kid.to_string()))
            .filter(|e| now < e.expires)
            .map(|e| e.key.clone())
    }

    /// Caches `key` for (`sub`, `kid`) until `min(valid_before, now + 1h)`.
    pub fn insert(
        &self,
        sub: &str,
        kid: &str,
        key: Arc<DecodingKey>,
        valid_before: Option<SystemTime>,
        now: SystemTime,
    ) {
        let cap = now + MAX_KEY_TTL;
        let expires = valid_before.map_or(cap, |v| v.min(cap));
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, e| now < e.expires);
        }
        entries.insert((sub.to_string(), kid.to_string()), Entry { key, expires });
    }

    /// Forgets every key (configuration changed).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The guard that serialises fetches of (`sub`, `kid`): lock it, look
    /// in the cache again, fetch only if still missing.
    pub fn fetch_guard(&self, sub: &str, kid: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        if fetching.len() >= SWEEP_AT {
            // Drop guards nobody holds any more.
            fetching.retain(|_, g| Arc::strong_count(g) > 1);
        }
        fetching
            .entry((sub.to_string(), kid.to_string()))
            .or_default()
            .clone()
    }

    /// Releases the guard's slot once the fetch is done.
    pub fn fetch_done(&self, sub: &str, kid: &str) {
        let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        fetching.remove(&(sub.to_string(), kid.to_string()));
    }
}

/// The verification key of a PEM X.509 certificate (or PEM RSA public key).
pub fn key_from_pem(pem: &str) -> Option<DecodingKey> {
    DecodingKey::from_rsa_pem(pem.as_bytes()).ok()
}

/// Parses an RFC 3339 time as Google writes it (`2028-01-01T00:00:00Z`,
/// with optional fractional seconds).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.trim()).ok()
}

/// The `max-age` of a `Cache-Control` header, capped at [`MAX_KEY_TTL`].
pub fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        if k.trim().eq_ignore_ascii_case("max-age") {
            let secs: u64 = v.trim().trim_matches('"').parse().ok()?;
            Some(Duration::from_secs(secs).min(MAX_KEY_TTL))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Arc<DecodingKey> {
        Arc::new(DecodingKey::from_secret(b"k"))
    }

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn keys_expire_at_valid_before_or_one_hour() {
        let c = KeyCache::default();
        c.insert("sa", "k1", key(), Some(t(1_000 + 60)), t(1_000));
        assert!(c.get("sa", "k1", t(1_059)).is_some());
        assert!(c.get("sa", "k1", t(1_060)).is_none());
        // A far validBeforeTime is capped at one hour.
        c.insert("sa", "k2", key(), Some(t(1_000_000)), t(1_000));
        assert!(c.get("sa", "k2", t(1_000 + 3_599)).is_some());
        assert!(c.get("sa", "k2", t(1_000 + 3_600)).is_none());
        // None: one hour.
        c.insert("sa", "k3", key(), None, t(1_000));
        assert!(c.get("sa", "k3", t(4_599)).is_some());
        assert!(c.get("sa", "k3", t(4_600)).is_none());
    }

    #[test]
    fn keys_are_per_subject_and_kid() {
        let c = KeyCache::default();
        c.insert("a", "k", key(), None, t(0));
        assert!(c.get("a", "k", t(1)).is_some());
        assert!(c.get("b", "k", t(1)).is_none());
        assert!(c.get("a", "other", t(1)).is_none());
        c.clear();
        assert!(c.get("a", "k", t(1)).is_none());
    }

    #[test]
    fn fetch_guard_is_shared_per_key() {
        let c = KeyCache::default();
        let g1 = c.fetch_guard("a", "k");
        let g2 = c.fetch_guard("a", "k");
        assert!(Arc::ptr_eq(&g1, &g2));
        assert!(!Arc::ptr_eq(&g1, &c.fetch_guard("a", "other")));
    }

    #[test]
    fn cache_control_max_age_is_capped() {
        assert_eq!(
            max_age("public, max-age=120, must-revalidate"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(max_age("max-age=999999"), Some(MAX_KEY_TTL));
        assert_eq!(max_age("no-cache"), None);
    }

    #[test]
    fn google_times_parse() {
        assert_eq!(parse_rfc3339("1970-01-01T00:01:00Z"), Some(t(60)));
        assert_eq!(
            parse_rfc3339("1970-01-01T00:01:00.5Z").map(|x| x > t(60)),
            Some(true)
        );
        assert_eq!(parse_rfc3339("soon"), None);
    }
}
