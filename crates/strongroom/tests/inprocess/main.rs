//! In-process tests of the server composition: a core built from the
//! binary's registry (plus test engines) behind the real HTTP router,
//! without sockets: init, seal and unseal, mounts, policies, and the token
//! store with its leases. Backend-specific in-process tests live in each
//! backend's crate (`crates/kv/tests`, `crates/approle/tests`, ...).

mod bad_input;
mod core;
mod namespaces;
mod quotas;
mod tokens;
