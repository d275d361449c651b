//! Password hashing: bcrypt at OpenBao's cost, run off the async workers
//! and bounded.
//!
//! A hash or a check runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]) behind a semaphore with one permit
//! per CPU, so a login flood queues here instead of starving other
//! clients' requests or spawning unbounded blocking threads. A check for a
//! user that does not exist runs against a fixed dummy hash of the same
//! cost, so it costs what a real check costs. Clear passwords live in
//! [`Zeroizing`] buffers and are never logged.

use tokio::sync::{OnceCell, Semaphore};
use zeroize::Zeroizing;

use strongroom_sdk::{Error, Result};

/// OpenBao's bcrypt cost (`bcrypt.DefaultCost`).
pub const COST: u32 = 10;

/// bcrypt reads at most this many bytes of a password.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// The password the dummy hash is made of (never accepted: a missing
/// user's check is a failure whatever it returns).
const DUMMY_PASSWORD: &str = "strongroom-userpass-dummy-password";

/// The bounded bcrypt worker of one mount.
pub struct Hasher {
    cost: u32,
    permits: Semaphore,
    dummy: OnceCell<String>,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::with_cost(COST)
    }
}

impl Hasher {
    /// A hasher making hashes of `cost` (tests use bcrypt's minimum, 4).
    pub fn with_cost(cost: u32) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Hasher {
            cost,
            permits: Semaphore::new(cpus),
            dummy: OnceCell::new(),
        }
    }

    /// Runs `work` on the blocking pool under a permit.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::internal("password hasher closed"))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| Error::internal("password hashing failed"))
    }

    /// The bcrypt hash of `password` (refused when bcrypt would silently
    /// drop its tail).
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(Error::bad_request(format!(
                "password is longer than {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        let cost = self.cost;
        // bcrypt's own truncation cannot drop anything now (Go's bcrypt,
        // OpenBao's, takes up to 72 bytes the same way).
        self.run(move || bcrypt::hash(password.as_bytes(), cost))
            .await?
            .map_err(|_| Error::internal("password hashing failed"))
    }

    /// The dummy hash a missing user's check runs against.
    async fn dummy(&self) -> Result<&str> {
        let hash = self
            .dummy
            .get_or_try_init(|| self.hash(Zeroizing::new(DUMMY_PASSWORD.to_string())))
            .await?;
        Ok(hash.as_str())
    }

    /// Whether `password` matches `hash`; with no hash (no such user), a
    /// check of the same cost against the dummy hash that always fails.
    /// A malformed stored hash or an over-long password never matches.
    pub async fn verify(&self, password: Zeroizing<String>, hash: Option<&str>) -> Result<bool> {
        let (hash, real) = match hash {
            Some(h) => (h.to_string(), true),
            None => (self.dummy().await?.to_string(), false),
        };
        let matched = self
            .run(move || {
                password.len() <= MAX_PASSWORD_BYTES
                    && bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
            })
            .await?;
        Ok(real && matched)
    }
}

/// The lowest cost OpenBao accepts in a `password_hash`.
pub const MIN_IMPORTED_COST: u32 = 5;

/// The highest cost OpenBao accepts in a `password_hash`: each login
/// checks at the hash's cost, so a costlier hash would make logins a
/// denial of service.
pub const MAX_IMPORTED_COST: u32 = 12;

/// Checks a `password_hash` as OpenBao does: a bcrypt hash whose cost
/// lies in [`MIN_IMPORTED_COST`]..=[`MAX_IMPORTED_COST`]; the error is
/// OpenBao's message.
pub fn check_imported_hash(hash: &str) -> std::result::Result<(), String> {
    let parts = hash
        .parse::<bcrypt::HashParts>()
        .map_err(|_| "password_hash is not a valid bcrypt hash".to_string())?;
    let cost = parts.get_cost();
    if cost < MIN_IMPORTED_COST {
        return Err(format!(
            "bcrypt cost of {cost} is too low, want {MIN_IMPORTED_COST} at minimum"
        ));
    }
    if cost > MAX_IMPORTED_COST {
        return Err(format!(
            "bcrypt cost of {cost} exceeds maximum cost of {MAX_IMPORTED_COST}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Zeroizing<String> {
        Zeroizing::new(s.to_string())
    }

    #[tokio::test]
    async fn a_hash_checks_its_password_only() {
        let h = Hasher::with_cost(4);
        let hash = h.hash(pw("correct horse")).await.unwrap();
        assert!(hash.starts_with("$2b$04$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(h.verify(pw("correct horse"), Some(&hash)).await.unwrap());
        assert!(!h.verify(pw("correct hors"), Some(&hash)).await.unwrap());
        assert!(!h.verify(pw("x"), Some("not a hash")).await.unwrap());
    }

    #[tokio::test]
    async fn a_missing_user_never_matches_even_with_the_dummy_password() {
        let h = Hasher::with_cost(4);
        assert!(!h.verify(pw(DUMMY_PASSWORD), None).await.unwrap());
        assert!(h.dummy.get().is_some(), "the dummy hash was computed");
    }

    #[tokio::test]
    async fn passwords_bcrypt_would_truncate_are_refused() {
        let h = Hasher::with_cost(4);
        let long = "a".repeat(MAX_PASSWORD_BYTES + 1);
        let err = h.hash(pw(&long)).await.unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.to_string(), "password is longer than 72 bytes");
        let ok = h.hash(pw(&long[..MAX_PASSWORD_BYTES])).await.unwrap();
        assert!(!h.verify(pw(&long), Some(&ok)).await.unwrap());
    }

    #[test]
    fn imported_hashes_are_checked_as_openbao_does() {
        // A Go bcrypt hash as OpenBao stores it ($2a$, cost 10).
        let go = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
        assert_eq!(check_imported_hash(go), Ok(()));
        let bad = "password_hash is not a valid bcrypt hash".to_string();
        assert_eq!(check_imported_hash("nothash"), Err(bad.clone()));
        assert_eq!(check_imported_hash(""), Err(bad));
        let cheap = bcrypt::hash("pw", 4).unwrap();
        assert_eq!(
            check_imported_hash(&cheap),
            Err("bcrypt cost of 4 is too low, want 5 at minimum".into())
        );
        let dear = go.replace("$10$", "$13$");
        assert_eq!(
            check_imported_hash(&dear),
            Err("bcrypt cost of 13 exceeds maximum cost of 12".into())
        );
    }
}
