//! The method's in-memory state, one per mount: the users' store and
//! locks, the bounded password hasher and the login lockout.
//!
//! Storage, in the mount's view: `user/<lowercased name>`, a
//! [`UserEntry`](crate::users::UserEntry).

use strongroom_sdk::lockout::Lockout;
use strongroom_sdk::role_store::RoleStore;

use crate::hash::Hasher;
use crate::users::UserEntry;

/// Prefix of the users.
pub const USER_PREFIX: &str = "user/";

/// The userpass method's state.
pub struct Userpass {
    /// The users under `user/`, with per-name lock stripes.
    pub users: RoleStore<UserEntry>,
    /// Hashes and checks passwords off the async workers, bounded.
    pub hasher: Hasher,
    /// Failed logins per (lowercased) username, for OpenBao's lockout.
    pub lockout: Lockout,
}

impl Default for Userpass {
    fn default() -> Self {
        Userpass::with_hasher(Hasher::default())
    }
}

impl Userpass {
    /// The state with a given hasher (tests use a cheap bcrypt cost).
    pub fn with_hasher(hasher: Hasher) -> Self {
        Userpass {
            users: RoleStore::new(USER_PREFIX),
            hasher,
            lockout: Lockout::default(),
        }
    }
}
