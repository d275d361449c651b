//! The identity store of OpenBao's API: entities, entity aliases, groups
//! (internal and external), group aliases and lookups, served under
//! `identity/` in every namespace, and the resolution of a login's alias
//! to an entity that the core does at every login.
//!
//! - [`model`]: the stored records;
//! - [`store`]: one namespace's store, in memory with its indexes, and
//!   what the request path asks of it ([`IdentityStore::resolve`] for the
//!   identity policies and the disabled flag, [`IdentityStore::facts`]
//!   for templates);
//! - [`backend`]: the logical backend serving the HTTP API.
#![forbid(unsafe_code)]

pub mod backend;
pub mod model;
pub mod store;

pub use backend::backend;
pub use model::{Entity, EntityAlias, Group, GroupAlias};
pub use store::{Change, IdentityStore, MountInfo, MountLookup, Resolved};

#[cfg(test)]
mod tests;
