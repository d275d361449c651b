//! What the identity store tells the rest of the server about a caller.
//!
//! An auth method names the [`LoginAlias`] of a successful login (AppRole's
//! role id, a Kubernetes service account uid, a userpass username); the
//! core resolves it to an entity through the identity store. Policy
//! templates (`{{identity.entity.id}}`) and OIDC identity-token templates
//! are evaluated against [`IdentityFacts`], a read-only snapshot of one
//! entity, its aliases and its groups, built in memory by the store.

use std::collections::BTreeMap;

/// The alias an auth method reports for a successful login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginAlias {
    /// The alias name, unique per mount (e.g. a username or role id).
    pub name: String,
    /// Metadata the method attaches to the alias (e.g. `role_name`).
    pub metadata: BTreeMap<String, String>,
}

/// One entity alias as templates see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AliasFacts {
    /// The alias id.
    pub id: String,
    /// The accessor of the auth mount the alias belongs to.
    pub mount_accessor: String,
    /// The alias name.
    pub name: String,
    /// Metadata set by the auth method.
    pub metadata: BTreeMap<String, String>,
    /// Metadata set by an operator.
    pub custom_metadata: BTreeMap<String, String>,
}

/// One group as templates see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFacts {
    /// The group id.
    pub id: String,
    /// The group name.
    pub name: String,
    /// The group's metadata.
    pub metadata: BTreeMap<String, String>,
}

/// A snapshot of one entity for template evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityFacts {
    /// The entity id.
    pub entity_id: String,
    /// The entity name.
    pub entity_name: String,
    /// The entity's metadata.
    pub entity_metadata: BTreeMap<String, String>,
    /// The entity's aliases, one per auth mount.
    pub aliases: Vec<AliasFacts>,
    /// The groups the entity belongs to, directly or through nested
    /// groups.
    pub groups: Vec<GroupFacts>,
}

/// What the core tells its identity backend about a request: the entity of
/// the calling token and the namespace the request is in. Put in the
/// request's extensions for the `identity/` mount only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The calling token's entity id (`""`: none).
    pub entity_id: String,
    /// The namespace's id (`root` for the root namespace).
    pub namespace_id: String,
    /// The namespace's path with its trailing slash (`""` for root).
    pub namespace_path: String,
}
