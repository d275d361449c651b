//! The identity model as stored: entities (with their aliases inside, one
//! record per entity) and groups (with their alias inside).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A string map as OpenBao stores metadata.
pub type Meta = BTreeMap<String, String>;

/// One person or service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Its id (`uuid`, with `.<namespace id>` outside root).
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// Policies granted to every token of the entity.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Free metadata (`None` shows as `null`).
    #[serde(default)]
    pub metadata: Option<Meta>,
    /// Disabled: its tokens are refused and it cannot log in.
    #[serde(default)]
    pub disabled: bool,
    /// RFC 3339 creation time.
    pub creation_time: String,
    /// RFC 3339 time of the last change.
    pub last_update_time: String,
    /// The ids of entities merged into this one.
    #[serde(default)]
    pub merged_entity_ids: Option<Vec<String>>,
    /// Its aliases, at most one per auth mount.
    #[serde(default)]
    pub aliases: Vec<EntityAlias>,
}

/// An entity's name at one auth mount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityAlias {
    /// Its id.
    pub id: String,
    /// The entity it belongs to.
    pub canonical_id: String,
    /// The name the auth method reports (unique per mount).
    pub name: String,
    /// The auth mount's accessor.
    pub mount_accessor: String,
    /// Metadata set by the auth method at login.
    #[serde(default)]
    pub metadata: Option<Meta>,
    /// Metadata set by an operator.
    #[serde(default)]
    pub custom_metadata: Option<Meta>,
    /// RFC 3339 creation time.
    pub creation_time: String,
    /// RFC 3339 time of the last change.
    pub last_update_time: String,
    /// Entities this alias belonged to before merges.
    #[serde(default)]
    pub merged_from_canonical_ids: Option<Vec<String>>,
}

/// A group of entities (and of other groups, for internal groups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Its id.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// `internal` (explicit members) or `external` (members come from an
    /// auth method through the group alias).
    #[serde(rename = "type")]
    pub kind: String,
    /// Policies granted to every member.
    #[serde(default)]
    pub policies: Option<Vec<String>>,
    /// Free metadata.
    #[serde(default)]
    pub metadata: Option<Meta>,
    /// Member entities (internal groups).
    #[serde(default)]
    pub member_entity_ids: Option<Vec<String>>,
    /// Member groups (internal groups).
    #[serde(default)]
    pub member_group_ids: Option<Vec<String>>,
    /// The group alias (external groups).
    #[serde(default)]
    pub alias: Option<GroupAlias>,
    /// RFC 3339 creation time.
    pub creation_time: String,
    /// RFC 3339 time of the last change.
    pub last_update_time: String,
    /// Counts the changes of the group.
    #[serde(default)]
    pub modify_index: u64,
}

/// An external group's name at one auth mount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAlias {
    /// Its id.
    pub id: String,
    /// The group it belongs to.
    pub canonical_id: String,
    /// The group name the auth method reports.
    pub name: String,
    /// The auth mount's accessor.
    pub mount_accessor: String,
    /// RFC 3339 creation time.
    pub creation_time: String,
    /// RFC 3339 time of the last change.
    pub last_update_time: String,
}

/// Now as OpenBao renders times (RFC 3339, nanoseconds, UTC).
pub fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}
