//! The `identity/` backend: OpenBao's entity, entity-alias, group,
//! group-alias and lookup endpoints over a namespace's [`IdentityStore`],
//! with OpenBao's response shapes and messages, and the OIDC identity
//! token paths of `strongroom-identity-oidc` (`oidc/*`), which learn the
//! caller's entity and namespace from the [`Caller`] the core attaches.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use strongroom_identity_oidc::{Entity as OidcEntity, HasOidc, IdentityHost, Namespace, Oidc};
use strongroom_sdk::framework::{
    handler, Backend, Ctx, Field, FieldType, Mounted, Path, PathSet, SpecialPaths,
};
use strongroom_sdk::identity::Caller;
use strongroom_sdk::logical::{Operation, Response};
use strongroom_sdk::{Error, Result};

use crate::model::{now, Entity, EntityAlias, Group, GroupAlias, Meta};
use crate::store::{Change, IdentityStore, State};

type S = IdentityState;

/// The backend's state: the namespace's store and the OIDC provider over
/// it. Handlers reach the store through `Deref`.
#[derive(Debug)]
pub struct IdentityState {
    store: Arc<IdentityStore>,
    oidc: Oidc,
}

impl std::ops::Deref for IdentityState {
    type Target = IdentityStore;

    fn deref(&self) -> &IdentityStore {
        &self.store
    }
}

impl HasOidc for IdentityState {
    fn oidc(&self) -> &Oidc {
        &self.oidc
    }
}

/// What OIDC tokens need of the identity store and of the request
/// (the caller, told by the core in the request's extensions).
struct Host {
    store: Arc<IdentityStore>,
    api_addr: String,
}

impl Host {
    fn caller(ctx: &Ctx) -> Option<&Caller> {
        ctx.extensions.get::<Caller>()
    }
}

impl IdentityHost for Host {
    fn caller_entity_id(&self, ctx: &Ctx) -> Option<String> {
        Self::caller(ctx)
            .map(|c| c.entity_id.clone())
            .filter(|id| !id.is_empty())
    }

    fn entity(&self, _ctx: &Ctx, entity_id: &str) -> Option<OidcEntity> {
        let facts = self.store.facts(entity_id)?;
        let disabled = self.store.resolve(entity_id).is_some_and(|r| r.disabled);
        Some(OidcEntity { facts, disabled })
    }

    fn namespace(&self, ctx: &Ctx) -> Namespace {
        match Self::caller(ctx) {
            Some(c) => Namespace {
                id: c.namespace_id.clone(),
                path: c.namespace_path.clone(),
            },
            None => Namespace {
                id: self.store.namespace_id().to_string(),
                path: String::new(),
            },
        }
    }

    fn api_addr(&self) -> String {
        self.api_addr.clone()
    }
}

/// The backend serving `identity/` over `store`; OIDC issuers default to
/// `api_addr`.
pub fn backend(store: Arc<IdentityStore>, api_addr: &str) -> Backend<IdentityState> {
    let state = Arc::new(IdentityState {
        oidc: Oidc::new(Arc::new(Host {
            store: store.clone(),
            api_addr: api_addr.to_string(),
        })),
        store,
    });
    let entity_fields = || {
        vec![
            Field::new("id", FieldType::String, "ID of the entity. If set, updates the corresponding existing entity."),
            Field::new("name", FieldType::String, "Name of the entity"),
            Field::new("metadata", FieldType::KvPairs, "Metadata to be associated with the entity."),
            Field::new("policies", FieldType::CommaStringSlice, "Policies to be tied to the entity."),
            Field::new("disabled", FieldType::Bool, "If set true, tokens tied to this identity will not be able to be used (but will not be revoked)."),
        ]
    };
    let alias_fields = || {
        vec![
            Field::new(
                "id",
                FieldType::String,
                "ID of the entity alias. If set, updates the corresponding entity alias.",
            ),
            Field::new(
                "canonical_id",
                FieldType::String,
                "Entity ID to which this alias belongs to",
            ),
            Field::new(
                "entity_id",
                FieldType::String,
                "Entity ID to which this alias belongs to (deprecated: use canonical_id)",
            ),
            Field::new(
                "mount_accessor",
                FieldType::String,
                "Mount accessor to which this alias belongs to",
            ),
            Field::new("name", FieldType::String, "Name of the alias"),
            Field::new(
                "custom_metadata",
                FieldType::KvPairs,
                "User provided key-value pairs",
            ),
        ]
    };
    let group_fields = || {
        vec![
            Field::new(
                "id",
                FieldType::String,
                "ID of the group. If set, updates the corresponding existing group.",
            ),
            Field::new(
                "type",
                FieldType::String,
                "Type of the group, 'internal' or 'external'. Defaults to 'internal'",
            ),
            Field::new("name", FieldType::String, "Name of the group."),
            Field::new(
                "metadata",
                FieldType::KvPairs,
                "Metadata to be associated with the group.",
            ),
            Field::new(
                "policies",
                FieldType::CommaStringSlice,
                "Policies to be tied to the group.",
            ),
            Field::new(
                "member_group_ids",
                FieldType::CommaStringSlice,
                "Group IDs to be assigned as group members.",
            ),
            Field::new(
                "member_entity_ids",
                FieldType::CommaStringSlice,
                "Entity IDs to be assigned as group members.",
            ),
        ]
    };
    let group_alias_fields = || {
        vec![
            Field::new("id", FieldType::String, "ID of the group alias."),
            Field::new("name", FieldType::String, "Alias of the group."),
            Field::new(
                "mount_accessor",
                FieldType::String,
                "Mount accessor to which this alias belongs to.",
            ),
            Field::new(
                "canonical_id",
                FieldType::String,
                "ID of the group to which this is an alias.",
            ),
        ]
    };
    let lookup_fields = || {
        vec![
            Field::new("type", FieldType::String, "Type of lookup (deprecated)."),
            Field::new("id", FieldType::String, "ID of the object."),
            Field::new("name", FieldType::String, "Name of the object."),
            Field::new("alias_id", FieldType::String, "ID of the alias."),
            Field::new("alias_name", FieldType::String, "Name of the alias. This should be supplied in conjunction with 'alias_mount_accessor'."),
            Field::new("alias_mount_accessor", FieldType::String, "Accessor of the mount to which the alias belongs to. This should be supplied in conjunction with 'alias_name'."),
        ]
    };
    let paths: Vec<Path<S>> = vec![
        Path::new("entity")
            .fields(entity_fields())
            .op(Operation::Update, handler(|s, c| entity_write(s, c, Target::Body)), "Create a new entity or update one.")
            .help("Create a new entity", "Creates an entity, or updates the one named by id or name."),
        Path::new("entity/name/{name}")
            .fields(entity_fields())
            .op(Operation::Update, handler(|s, c| entity_write(s, c, Target::Name)), "Update an entity by its name, creating it if needed.")
            .op(Operation::Read, handler(|s, c| entity_read(s, c, Target::Name)), "Read an entity by its name.")
            .op(Operation::Delete, handler(|s, c| entity_delete(s, c, Target::Name)), "Delete an entity by its name.")
            .help("Entities by name", "Create, read, update or delete an entity by its name."),
        Path::new("entity/id/{id}")
            .fields(entity_fields())
            .op(Operation::Update, handler(|s, c| entity_write(s, c, Target::Id)), "Update an entity by its id.")
            .op(Operation::Read, handler(|s, c| entity_read(s, c, Target::Id)), "Read an entity by its id.")
            .op(Operation::Delete, handler(|s, c| entity_delete(s, c, Target::Id)), "Delete an entity by its id.")
            .help("Entities by id", "Read, update or delete an entity by its id."),
        Path::new("entity/id/?")
            .op(Operation::List, handler(entity_list_ids), "List the ids of all entities.")
            .help("List entities by id", "Lists the entity ids with each one's name and aliases."),
        Path::new("entity/name/?")
            .op(Operation::List, handler(entity_list_names), "List the names of all entities.")
            .help("List entities by name", "Lists the entity names."),
        Path::new("entity/batch-delete")
            .fields(vec![Field::new("entity_ids", FieldType::CommaStringSlice, "Entity IDs to delete")])
            .op(Operation::Update, handler(entity_batch_delete), "Delete several entities.")
            .help("Delete entities in bulk", "Deletes every entity listed in entity_ids."),
        Path::new("entity/merge")
            .fields(vec![
                Field::new("from_entity_ids", FieldType::CommaStringSlice, "Entity IDs which need to get merged"),
                Field::new("to_entity_id", FieldType::String, "Entity ID into which all the other entities need to get merged"),
                Field::new("force", FieldType::Bool, "Setting this will follow the 'mine' strategy for merging MFA secrets."),
                Field::new("conflicting_alias_ids_to_keep", FieldType::CommaStringSlice, "Alias IDs to keep in case of conflicting aliases. Ignored if no conflicting aliases found"),
            ])
            .op(Operation::Update, handler(entity_merge), "Merge entities.")
            .help("Merge entities", "Merges the entities of from_entity_ids into to_entity_id; their aliases move to it."),
        Path::new("entity-alias")
            .fields(alias_fields())
            .op(Operation::Update, handler(|s, c| alias_write(s, c, false)), "Create a new alias or update one.")
            .help("Create a new entity alias", "Creates an entity alias, or updates the one named by id."),
        Path::new("entity-alias/id/{id}")
            .fields(alias_fields())
            .op(Operation::Update, handler(|s, c| alias_write(s, c, true)), "Update an entity alias by its id.")
            .op(Operation::Read, handler(alias_read), "Read an entity alias by its id.")
            .op(Operation::Delete, handler(alias_delete), "Delete an entity alias by its id.")
            .help("Entity aliases by id", "Read, update or delete an entity alias."),
        Path::new("entity-alias/id/?")
            .op(Operation::List, handler(alias_list), "List the ids of all entity aliases.")
            .help("List entity aliases", "Lists the entity alias ids with their details."),
        Path::new("group")
            .fields(group_fields())
            .op(Operation::Update, handler(|s, c| group_write(s, c, Target::Body)), "Create a new group or update one.")
            .help("Create a new group", "Creates a group, or updates the one named by id or name."),
        Path::new("group/id/{id}")
            .fields(group_fields())
            .op(Operation::Update, handler(|s, c| group_write(s, c, Target::Id)), "Update a group by its id.")
            .op(Operation::Read, handler(|s, c| group_read(s, c, Target::Id)), "Read a group by its id.")
            .op(Operation::Delete, handler(|s, c| group_delete(s, c, Target::Id)), "Delete a group by its id.")
            .help("Groups by id", "Read, update or delete a group by its id."),
        Path::new("group/name/{name}")
            .fields(group_fields())
            .op(Operation::Update, handler(|s, c| group_write(s, c, Target::Name)), "Update a group by its name, creating it if needed.")
            .op(Operation::Read, handler(|s, c| group_read(s, c, Target::Name)), "Read a group by its name.")
            .op(Operation::Delete, handler(|s, c| group_delete(s, c, Target::Name)), "Delete a group by its name.")
            .help("Groups by name", "Create, read, update or delete a group by its name."),
        Path::new("group/id/?")
            .op(Operation::List, handler(group_list_ids), "List the ids of all groups.")
            .help("List groups by id", "Lists the group ids with their names and member counts."),
        Path::new("group/name/?")
            .op(Operation::List, handler(group_list_names), "List the names of all groups.")
            .help("List groups by name", "Lists the group names."),
        Path::new("group-alias")
            .fields(group_alias_fields())
            .op(Operation::Update, handler(|s, c| group_alias_write(s, c, false)), "Create a new group alias or update one.")
            .help("Create a new group alias", "Creates the alias of an external group."),
        Path::new("group-alias/id/{id}")
            .fields(group_alias_fields())
            .op(Operation::Update, handler(|s, c| group_alias_write(s, c, true)), "Update a group alias by its id.")
            .op(Operation::Read, handler(group_alias_read), "Read a group alias by its id.")
            .op(Operation::Delete, handler(group_alias_delete), "Delete a group alias by its id.")
            .help("Group aliases by id", "Read, update or delete a group alias."),
        Path::new("group-alias/id/?")
            .op(Operation::List, handler(group_alias_list), "List the ids of all group aliases.")
            .help("List group aliases", "Lists the group alias ids with their details."),
        Path::new("lookup/entity")
            .fields(lookup_fields())
            .op(Operation::Update, handler(lookup_entity), "Look an entity up.")
            .help("Look up an entity", "Finds an entity by id, name, alias id, or alias name and mount accessor."),
        Path::new("lookup/group")
            .fields(lookup_fields())
            .op(Operation::Update, handler(lookup_group), "Look a group up.")
            .help("Look up a group", "Finds a group by id, name, alias id, or alias name and mount accessor."),
    ];
    let mut paths = paths;
    paths.extend(strongroom_identity_oidc::paths::<IdentityState>());
    Backend::new(
        state,
        paths,
        "The identity store: entities, aliases and groups, and OIDC identity tokens.",
    )
    .special_paths(SpecialPaths {
        unauthenticated: PathSet::new(&strongroom_identity_oidc::UNAUTHENTICATED_PATHS),
        root: PathSet::default(),
    })
    .on_invalidate(|state: &IdentityState, key: &str| state.invalidated(key))
    .on_initialize(Arc::new(|_state: Arc<IdentityState>, mounted: Mounted| {
        Box::pin(
            async move { strongroom_identity_oidc::ensure_default_key(&mounted.storage).await },
        )
    }))
    .on_periodic(Arc::new(|state: Arc<IdentityState>, mounted: Mounted| {
        Box::pin(async move { strongroom_identity_oidc::periodic(&*state, &mounted.storage).await })
    }))
}

/// Which object a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The body's `id` or `name`.
    Body,
    /// The path's `{id}`.
    Id,
    /// The path's `{name}`.
    Name,
}

fn data(v: Value) -> Response {
    match v {
        Value::Object(m) => Response::data(m),
        _ => Response::empty(),
    }
}

fn sorted_policies(p: Vec<String>) -> Vec<String> {
    let set: BTreeSet<String> = p
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    set.into_iter().collect()
}

fn meta(ctx: &Ctx, name: &str) -> Result<Option<Meta>> {
    Ok(ctx
        .fields
        .get_kv_pairs(name)?
        .map(|m| m.into_iter().collect()))
}

fn non_empty(ctx: &Ctx, name: &str) -> Result<Option<String>> {
    Ok(ctx.fields.get_str(name)?.filter(|s| !s.is_empty()))
}

// ---------------------------------------------------------------- rendering

fn render_alias(store: &S, a: &EntityAlias, standalone: bool) -> Value {
    let mount = store.mount(&a.mount_accessor);
    let mut v = json!({
        "canonical_id": a.canonical_id,
        "creation_time": a.creation_time,
        "custom_metadata": a.custom_metadata,
        "id": a.id,
        "last_update_time": a.last_update_time,
        "local": false,
        "merged_from_canonical_ids": a.merged_from_canonical_ids,
        "metadata": a.metadata,
        "mount_accessor": a.mount_accessor,
        "mount_path": mount.as_ref().map(|m| m.path.clone()).unwrap_or_default(),
        "mount_type": mount.as_ref().map(|m| m.kind.clone()).unwrap_or_default(),
        "name": a.name,
    });
    if standalone {
        v["namespace_id"] = json!(store.namespace_id());
    }
    v
}

fn render_entity(store: &S, state: &State, e: &Entity) -> Value {
    let (direct, inherited) = state.entity_group_ids(&e.id);
    let all: Vec<&String> = direct.iter().chain(inherited.iter()).collect();
    json!({
        "aliases": e.aliases.iter().map(|a| render_alias(store, a, false)).collect::<Vec<_>>(),
        "creation_time": e.creation_time,
        "direct_group_ids": direct,
        "disabled": e.disabled,
        "group_ids": all,
        "id": e.id,
        "inherited_group_ids": inherited,
        "last_update_time": e.last_update_time,
        "merged_entity_ids": e.merged_entity_ids,
        "metadata": e.metadata,
        "name": e.name,
        "namespace_id": store.namespace_id(),
        "policies": e.policies,
    })
}

fn render_group_alias(store: &S, a: &GroupAlias, standalone: bool) -> Value {
    let mount = store.mount(&a.mount_accessor);
    let mut v = json!({
        "canonical_id": a.canonical_id,
        "creation_time": a.creation_time,
        "id": a.id,
        "last_update_time": a.last_update_time,
        "merged_from_canonical_ids": null,
        "metadata": null,
        "mount_accessor": a.mount_accessor,
        "mount_path": mount.as_ref().map(|m| m.path.clone()).unwrap_or_default(),
        "mount_type": mount.as_ref().map(|m| m.kind.clone()).unwrap_or_default(),
        "name": a.name,
    });
    if standalone {
        v["custom_metadata"] = Value::Null;
        v["local"] = json!(false);
        v["namespace_id"] = json!(store.namespace_id());
    }
    v
}

fn render_group(store: &S, state: &State, g: &Group) -> Value {
    let parents = state.parent_groups(&g.id);
    json!({
        "alias": g.alias.as_ref().map_or(json!({}), |a| render_group_alias(store, a, false)),
        "creation_time": g.creation_time,
        "id": g.id,
        "last_update_time": g.last_update_time,
        "member_entity_ids": g.member_entity_ids,
        "member_group_ids": g.member_group_ids,
        "metadata": g.metadata,
        "modify_index": g.modify_index,
        "name": g.name,
        "namespace_id": store.namespace_id(),
        "parent_group_ids": if parents.is_empty() { Value::Null } else { json!(parents) },
        "policies": g.policies,
        "type": g.kind,
    })
}

fn keys_with_info(mut items: Vec<(String, Value)>) -> Result<Response> {
    if items.is_empty() {
        return Err(Error::NotFound(None));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    let info: Map<String, Value> = items.into_iter().collect();
    Ok(data(json!({ "key_info": info, "keys": keys })))
}

// ---------------------------------------------------------------- entities

fn find_entity(state: &State, ctx: &Ctx, target: Target) -> Result<Option<Arc<Entity>>> {
    Ok(match target {
        Target::Id => state.entity(&ctx.fields.str_or_empty("id")?).cloned(),
        Target::Name => state
            .entity_by_name(&ctx.fields.str_or_empty("name")?)
            .cloned(),
        Target::Body => None,
    })
}

async fn entity_read(s: Arc<S>, ctx: Ctx, target: Target) -> Result<Response> {
    let state = s.state();
    match find_entity(&state, &ctx, target)? {
        Some(e) => Ok(data(render_entity(&s, &state, &e))),
        None => Err(Error::NotFound(None)),
    }
}

async fn entity_write(s: Arc<S>, ctx: Ctx, target: Target) -> Result<Response> {
    let _lock = s.lock().await;
    let body_id = non_empty(&ctx, "id")?;
    let existing = {
        let state = s.state();
        match target {
            Target::Id => Some(
                find_entity(&state, &ctx, target)?
                    .ok_or_else(|| Error::bad_request("entity not found from id"))?,
            ),
            Target::Name => find_entity(&state, &ctx, target)?,
            Target::Body => match &body_id {
                Some(id) => Some(
                    state
                        .entity(id)
                        .cloned()
                        .ok_or_else(|| Error::bad_request("entity not found from id"))?,
                ),
                None => match non_empty(&ctx, "name")? {
                    Some(n) => state.entity_by_name(&n).cloned(),
                    None => None,
                },
            },
        }
    };
    let name = match target {
        Target::Name => Some(ctx.fields.str_or_empty("name")?),
        _ => non_empty(&ctx, "name")?,
    };
    let policies = ctx.fields.get_strings("policies")?.map(sorted_policies);
    let metadata = meta(&ctx, "metadata")?;
    let disabled = ctx.fields.get_bool("disabled")?;
    let at = now();
    match existing {
        Some(old) => {
            let mut e = (*old).clone();
            if let Some(n) = name.filter(|n| *n != e.name) {
                if s.state().entity_by_name(&n).is_some() {
                    return Err(Error::bad_request("entity name is already in use"));
                }
                e.name = n;
            }
            if let Some(p) = policies {
                e.policies = p;
            }
            if let Some(m) = metadata {
                e.metadata = Some(m);
            }
            if let Some(d) = disabled {
                e.disabled = d;
            }
            e.last_update_time = at;
            s.commit(vec![Change::PutEntity(e)]).await?;
            Ok(Response::empty())
        }
        None => {
            let id = s.new_id();
            let name = match name {
                Some(n) => n,
                None => {
                    let short = uuid::Uuid::new_v4().simple().to_string();
                    format!("entity_{}.{}", &short[..8], s.namespace_id())
                }
            };
            let e = Entity {
                id: id.clone(),
                name: name.clone(),
                policies: policies.unwrap_or_default(),
                metadata,
                disabled: disabled.unwrap_or(false),
                creation_time: at.clone(),
                last_update_time: at,
                merged_entity_ids: None,
                aliases: Vec::new(),
            };
            s.commit(vec![Change::PutEntity(e)]).await?;
            Ok(data(json!({ "aliases": null, "id": id, "name": name })))
        }
    }
}

/// The changes that delete the entities `ids` and take them out of the
/// groups that list them.
fn entity_deletion(state: &State, ids: &[String]) -> Vec<Change> {
    let mut changes: Vec<Change> = Vec::new();
    let mut groups: std::collections::BTreeMap<String, Group> = Default::default();
    for id in ids {
        if state.entity(id).is_none() {
            continue;
        }
        for gid in state.direct_groups(id) {
            if let Some(g) = state.group(&gid) {
                let g = groups.entry(gid).or_insert_with(|| (**g).clone());
                if let Some(m) = g.member_entity_ids.as_mut() {
                    m.retain(|e| e != id);
                }
                if g.member_entity_ids.as_ref().is_some_and(Vec::is_empty) {
                    g.member_entity_ids = None;
                }
            }
        }
        changes.push(Change::DeleteEntity(id.clone()));
    }
    changes.extend(groups.into_values().map(Change::PutGroup));
    changes
}

async fn entity_delete(s: Arc<S>, ctx: Ctx, target: Target) -> Result<Response> {
    let _lock = s.lock().await;
    let changes = {
        let state = s.state();
        match find_entity(&state, &ctx, target)? {
            Some(e) => entity_deletion(&state, std::slice::from_ref(&e.id)),
            None => Vec::new(),
        }
    };
    if !changes.is_empty() {
        s.commit(changes).await?;
    }
    Ok(Response::empty())
}

async fn entity_batch_delete(s: Arc<S>, ctx: Ctx) -> Result<Response> {
    let ids = ctx.fields.get_strings("entity_ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(Error::bad_request("missing entity ids to delete"));
    }
    let _lock = s.lock().await;
    let changes = entity_deletion(&s.state(), &ids);
    if !changes.is_empty() {
        s.commit(changes).await?;
    }
    Ok(Response::empty())
}

async fn entity_list_ids(s: Arc<S>, _ctx: Ctx) -> Result<Response> {
    let state = s.state();
    let items = state
        .entities()
        .map(|e| {
            let aliases: Vec<Value> = e
                .aliases
                .iter()
                .map(|a| {
                    let m = s.mount(&a.mount_accessor);
                    json!({
                        "id": a.id,
                        "mount_accessor": a.mount_accessor,
                        "mount_path": m.as_ref().map(|m| m.path.clone()).unwrap_or_default(),
                        "mount_type": m.as_ref().map(|m| m.kind.clone()).unwrap_or_default(),
                        "name": a.name,
                    })
                })
                .collect();
            (e.id.clone(), json!({ "aliases": aliases, "name": e.name }))
        })
        .collect();
    keys_with_info(items)
}

async fn entity_list_names(s: Arc<S>, _ctx: Ctx) -> Result<Response> {
    let mut names: Vec<String> = s.state().entities().map(|e| e.name.clone()).collect();
    names.sort();
    Response::keys(names)
}

async fn entity_merge(s: Arc<S>, ctx: Ctx) -> Result<Response> {
    let from = ctx
        .fields
        .get_strings("from_entity_ids")?
        .unwrap_or_default();
    if from.is_empty() {
        return Err(Error::bad_request("missing entity ids to merge from"));
    }
    let to = non_empty(&ctx, "to_entity_id")?
        .ok_or_else(|| Error::bad_request("missing entity id to merge to"))?;
    let keep: Vec<String> = ctx
        .fields
        .get_strings("conflicting_alias_ids_to_keep")?
        .unwrap_or_default();
    let _lock = s.lock().await;
    let changes = {
        let state = s.state();
        let target = state
            .entity(&to)
            .cloned()
            .ok_or_else(|| Error::bad_request("entity id to merge to is invalid"))?;
        if from.contains(&to) {
            return Err(Error::bad_request(
                "to_entity_id should not be present in from_entity_ids",
            ));
        }
        let mut merged = (*target).clone();
        let mut groups: std::collections::BTreeMap<String, Group> = Default::default();
        let mut changes = Vec::new();
        let at = now();
        let mut seen = BTreeSet::new();
        for fid in &from {
            if !seen.insert(fid.clone()) {
                continue;
            }
            let source = state
                .entity(fid)
                .cloned()
                .ok_or_else(|| Error::bad_request("entity id to merge from is invalid"))?;
            // Aliases on a mount where the target has one already.
            let clashes: Vec<(&EntityAlias, EntityAlias)> = source
                .aliases
                .iter()
                .filter_map(|a| {
                    merged
                        .aliases
                        .iter()
                        .find(|t| t.mount_accessor == a.mount_accessor)
                        .map(|t| (a, t.clone()))
                })
                .collect();
            if !clashes.is_empty() && keep.is_empty() {
                return Ok(clash_response(&s, &merged, &source, &clashes));
            }
            let mut dropped: BTreeSet<String> = BTreeSet::new();
            for (fa, ta) in &clashes {
                if keep.contains(&fa.id) {
                    merged.aliases.retain(|a| a.id != ta.id);
                } else if keep.contains(&ta.id) {
                    dropped.insert(fa.id.clone());
                } else {
                    return Err(Error::bad_request(format!(
                        "conflicting mount accessors in following alias IDs and neither were present in conflicting_alias_ids_to_keep: {}, {}",
                        fa.id, ta.id
                    )));
                }
            }
            for a in &source.aliases {
                if dropped.contains(&a.id) {
                    continue;
                }
                let mut a = a.clone();
                a.canonical_id = merged.id.clone();
                a.merged_from_canonical_ids
                    .get_or_insert_with(Vec::new)
                    .push(source.id.clone());
                a.last_update_time = at.clone();
                merged.aliases.push(a);
            }
            merged.policies = sorted_policies(
                merged
                    .policies
                    .iter()
                    .chain(source.policies.iter())
                    .cloned()
                    .collect(),
            );
            merged
                .merged_entity_ids
                .get_or_insert_with(Vec::new)
                .push(source.id.clone());
            // Its group memberships pass to the target.
            for gid in state.direct_groups(&source.id) {
                if let Some(g) = state.group(&gid) {
                    let g = groups.entry(gid).or_insert_with(|| (**g).clone());
                    if let Some(m) = g.member_entity_ids.as_mut() {
                        m.retain(|e| e != &source.id);
                        if !m.contains(&merged.id) {
                            m.push(merged.id.clone());
                        }
                    }
                }
            }
            changes.push(Change::DeleteEntity(source.id.clone()));
        }
        merged.last_update_time = at;
        changes.push(Change::PutEntity(merged));
        changes.extend(groups.into_values().map(Change::PutGroup));
        changes
    };
    s.commit(changes).await?;
    Ok(Response::empty())
}

/// OpenBao's refusal of a merge whose entities have aliases on the same
/// mount, with the clashing aliases in `data`.
fn clash_response(
    s: &S,
    target: &Entity,
    source: &Entity,
    clashes: &[(&EntityAlias, EntityAlias)],
) -> Response {
    let mut lines = vec!["toEntity and at least one fromEntity have aliases with the same mount accessor, repeat the merge request specifying exactly one fromEntity, clashes: ".to_string()];
    let mut rows = Vec::new();
    for (fa, ta) in clashes {
        lines.push(format!(
            "mountAccessor: {}, toEntity ID: {}, fromEntity ID: {}, conflicting toEntity alias ID: {}, conflicting fromEntity alias ID: {}",
            fa.mount_accessor, target.id, source.id, ta.id, fa.id
        ));
        let m = s.mount(&fa.mount_accessor);
        let kind = m.as_ref().map(|m| m.kind.clone()).unwrap_or_default();
        let path = m.as_ref().map(|m| m.path.clone()).unwrap_or_default();
        rows.push(json!({"alias": ta.name, "entity": target.name, "entity_id": target.id, "mount": kind, "mount_path": path}));
        rows.push(json!({"alias": fa.name, "entity": source.name, "entity_id": source.id, "mount": kind, "mount_path": path}));
    }
    let n = lines.len();
    let msg = format!(
        "{n} error{} occurred:\n{}\n\n",
        if n == 1 { "" } else { "s" },
        lines
            .iter()
            .map(|l| format!("\t* {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Response::raw(400, json!({ "errors": [msg], "data": rows }))
}

// ---------------------------------------------------------------- entity aliases

async fn alias_read(s: Arc<S>, ctx: Ctx) -> Result<Response> {
    let state = s.state();
    match state.alias(&ctx.fields.str_or_empty("id")?) {
        Some((_, a)) => Ok(data(render_alias(&s, a, true))),
        None => Err(Error::NotFound(None)),
    }
}

async fn alias_write(s: Arc<S>, ctx: Ctx, by_path: bool) -> Result<Response> {
    let id = non_empty(&ctx, "id")?;
    let name = non_empty(&ctx, "name")?;
    let accessor = non_empty(&ctx, "mount_accessor")?;
    let canonical = match non_empty(&ctx, "canonical_id")? {
        Some(c) => Some(c),
        None => non_empty(&ctx, "entity_id")?,
    };
    let custom = meta(&ctx, "custom_metadata")?;
    if !by_path && id.is_none() && (name.is_none() || accessor.is_none()) {
        return Err(Error::bad_request(
            "'id' or 'mount_accessor' and 'name' must be provided",
        ));
    }
    if let Some(acc) = &accessor {
        if s.mount(acc).is_none() {
            return Err(Error::bad_request(format!(
                "invalid mount accessor {acc:?}"
            )));
        }
    }
    let _lock = s.lock().await;
    let (changes, alias_id, entity_id) = {
        let state = s.state();
        // The alias to update: by id, else the one with this name and mount.
        let existing = match &id {
            Some(id) => Some(
                state
                    .alias(id)
                    .map(|(e, a)| (e.clone(), a.clone()))
                    .ok_or_else(|| Error::bad_request("invalid alias ID provided"))?,
            ),
            None => match (&accessor, &name) {
                (Some(acc), Some(n)) => state
                    .alias_by_key(acc, n)
                    .map(|(e, a)| (e.clone(), a.clone())),
                _ => None,
            },
        };
        let at = now();
        let target = match &canonical {
            Some(c) => Some(state.entity(c).cloned().ok_or_else(|| {
                Error::bad_request("given 'canonical_id' is not associated with an entity")
            })?),
            None => None,
        };
        let mut changes = Vec::new();
        let (alias_id, entity_id) = match existing {
            Some((owner, old)) => {
                let mut alias = old.clone();
                if let Some(n) = name {
                    alias.name = n;
                }
                if let Some(acc) = accessor {
                    alias.mount_accessor = acc;
                }
                if let Some(c) = custom {
                    alias.custom_metadata = Some(c);
                }
                alias.last_update_time = at;
                if (alias.mount_accessor != old.mount_accessor || alias.name != old.name)
                    && state
                        .alias_by_key(&alias.mount_accessor, &alias.name)
                        .is_some_and(|(_, a)| a.id != alias.id)
                {
                    return Err(Error::bad_request(
                        "alias with combination of mount accessor and name already exists",
                    ));
                }
                let mut from = (*owner).clone();
                from.aliases.retain(|a| a.id != alias.id);
                match target.filter(|t| t.id != owner.id) {
                    Some(t) => {
                        if t.aliases
                            .iter()
                            .any(|a| a.mount_accessor == alias.mount_accessor)
                        {
                            return Err(Error::bad_request(
                                "Alias already exists for requested entity and mount accessor",
                            ));
                        }
                        let mut to = (*t).clone();
                        alias.canonical_id = to.id.clone();
                        to.aliases.push(alias.clone());
                        changes.push(Change::PutEntity(from));
                        changes.push(Change::PutEntity(to));
                    }
                    None => {
                        if from
                            .aliases
                            .iter()
                            .any(|a| a.mount_accessor == alias.mount_accessor)
                        {
                            return Err(Error::bad_request(
                                "Alias already exists for requested entity and mount accessor",
                            ));
                        }
                        from.aliases.push(alias.clone());
                        changes.push(Change::PutEntity(from));
                    }
                }
                (alias.id, alias.canonical_id)
            }
            None => {
                let (Some(name), Some(accessor)) = (name, accessor) else {
                    return Err(Error::bad_request(
                        "'id' or 'mount_accessor' and 'name' must be provided",
                    ));
                };
                let mut owner = match target {
                    Some(t) => (*t).clone(),
                    None => {
                        let short = uuid::Uuid::new_v4().simple().to_string();
                        Entity {
                            id: s.new_id(),
                            name: format!("entity_{}.{}", &short[..8], s.namespace_id()),
                            policies: Vec::new(),
                            metadata: None,
                            disabled: false,
                            creation_time: at.clone(),
                            last_update_time: at.clone(),
                            merged_entity_ids: None,
                            aliases: Vec::new(),
                        }
                    }
                };
                if owner.aliases.iter().any(|a| a.mount_accessor == accessor) {
                    return Err(Error::bad_request(
                        "Alias already exists for requested entity and mount accessor",
                    ));
                }
                let alias = EntityAlias {
                    id: s.new_id(),
                    canonical_id: owner.id.clone(),
                    name,
                    mount_accessor: accessor,
                    metadata: None,
                    custom_metadata: Some(custom.unwrap_or_default()),
                    creation_time: at.clone(),
                    last_update_time: at,
                    merged_from_canonical_ids: None,
                };
                let ids = (alias.id.clone(), owner.id.clone());
                owner.aliases.push(alias);
                changes.push(Change::PutEntity(owner));
                ids
            }
        };
        (changes, alias_id, entity_id)
    };
    s.commit(changes).await?;
    Ok(data(json!({ "canonical_id": entity_id, "id": alias_id })))
}

async fn alias_delete(s: Arc<S>, ctx: Ctx) -> Result<Response> {
    let _lock = s.lock().await;
    let change = {
        let state = s.state();
        state.alias(&ctx.fields.str_or_empty("id")?).map(|(e, a)| {
            let mut e = (**e).clone();
            let id = a.id.clone();
            e.aliases.retain(|x| x.id != id);
            Change::PutEntity(e)
        })
    };
    if let Some(c) = change {
        s.commit(vec![c]).await?;
    }
    Ok(Response::empty())
}

async fn alias_list(s: Arc<S>, _ctx: Ctx) -> Result<Response> {
    let state = s.state();
    let items = state
        .entities()
        .flat_map(|e| e.aliases.iter())
        .map(|a| {
            let m = s.mount(&a.mount_accessor);
            (
                a.id.clone(),
                json!({
                    "canonical_id": a.canonical_id,
                    "custom_metadata": a.custom_metadata,
                    "local": false,
                    "metadata": a.metadata,
                    "mount_accessor": a.mount_accessor,
                    "mount_path": m.as_ref().map(|m| m.path.clone()).unwrap_or_default(),
                    "mount_type": m.as_ref().map(|m| m.kind.clone()).unwrap_or_default(),
                    "name": a.name,
                }),
            )
        })
        .collect();
    keys_with_info(items)
}

// ---------------------------------------------------------------- groups

fn find_group(state: &State, ctx: &Ctx, target: Target) -> Result<Option<Arc<Group>>> {
    Ok(match target {
        Target::Id => state.group(&ctx.fields.str_or_empty("id")?).cloned(),
        Target::Name => state
            .group_by_name(&ctx.fields.str_or_empty("name")?)
            .cloned(),
        Target::Body => None,
    })
}

async fn group_read(s: Arc<S>, ctx: Ctx, target: Target) -> Result<Response> {
    let state = s.state();
    match find_group(&state, &ctx, target)? {
        Some(g) => Ok(data(render_group(&s, &state, &g))),
        None => Err(Error::NotFound(None)),
    }
}

fn multi_error(msg: String) -> Error {
    Error::bad_request(format!("1 error occurred:\n\t* {msg}\n\n"))
}

async fn group_write(s: Arc<S>, ctx: Ctx, target: Target) -> Result<Response> {
    let kind = non_empty(&ctx, "type")?;
    if let Some(k) = &kind {
        if k != "internal" && k != "external" {
            return Err(Error::bad_request(format!("invalid group type {k:?}")));
        }
    }
    let _lock = s.lock().await;
    let (g, id, name, created, mut touched) = {
        let state = s.state();
        let mut touched = Vec::new();
        let existing = match target {
            Target::Id => Some(
                find_group(&state, &ctx, target)?
                    .ok_or_else(|| Error::bad_request("group not found from id"))?,
            ),
            Target::Name => find_group(&state, &ctx, target)?,
            Target::Body => match non_empty(&ctx, "id")? {
                Some(id) => Some(
                    state
                        .group(&id)
                        .cloned()
                        .ok_or_else(|| Error::bad_request("group not found from id"))?,
                ),
                None => match non_empty(&ctx, "name")? {
                    Some(n) => state.group_by_name(&n).cloned(),
                    None => None,
                },
            },
        };
        let name = match target {
            Target::Name => Some(ctx.fields.str_or_empty("name")?),
            _ => non_empty(&ctx, "name")?,
        };
        let at = now();
        let created = existing.is_none();
        let mut g = match existing {
            Some(g) => {
                if kind.as_ref().is_some_and(|k| *k != g.kind) {
                    return Err(Error::bad_request("group type cannot be changed"));
                }
                (*g).clone()
            }
            None => {
                let id = s.new_id();
                Group {
                    id,
                    name: String::new(),
                    kind: kind.clone().unwrap_or_else(|| "internal".into()),
                    policies: None,
                    metadata: None,
                    member_entity_ids: None,
                    member_group_ids: None,
                    alias: None,
                    creation_time: at.clone(),
                    last_update_time: at.clone(),
                    modify_index: 0,
                }
            }
        };
        if let Some(n) = name {
            if n != g.name {
                if state.group_by_name(&n).is_some() {
                    return Err(Error::bad_request("group name is already in use"));
                }
                g.name = n;
            }
        }
        if g.name.is_empty() {
            let short = uuid::Uuid::new_v4().simple().to_string();
            g.name = format!("group_{}", &short[..8]);
        }
        if let Some(p) = ctx.fields.get_strings("policies")? {
            g.policies = Some(sorted_policies(p));
        }
        if let Some(m) = meta(&ctx, "metadata")? {
            g.metadata = Some(m);
        }
        if let Some(members) = ctx.fields.get_strings("member_entity_ids")? {
            if g.kind == "external" {
                return Err(Error::bad_request(
                    "member entities can't be set manually for external groups",
                ));
            }
            let members = sorted_policies(members);
            for m in &members {
                if state.entity(m).is_none() {
                    return Err(multi_error(format!("invalid entity ID {m:?}")));
                }
            }
            g.member_entity_ids = Some(members);
        }
        if let Some(members) = ctx.fields.get_strings("member_group_ids")? {
            if g.kind == "external" {
                return Err(Error::bad_request(
                    "member groups can't be set for external groups",
                ));
            }
            let members = sorted_policies(members);
            for m in &members {
                if state.group(m).is_none() {
                    return Err(multi_error(format!("invalid member group ID {m:?}")));
                }
                if state.would_cycle(&g.id, m) {
                    return Err(Error::bad_request(format!(
                        "cyclic relationship detected for member group ID {m:?}"
                    )));
                }
            }
            // As OpenBao, which stores a group's parents on it: a group
            // that gains or loses this parent changes too.
            let before: BTreeSet<&String> = g.member_group_ids.iter().flatten().collect();
            let after: BTreeSet<&String> = members.iter().collect();
            for changed in before.symmetric_difference(&after) {
                if let Some(m) = state.group(changed) {
                    let mut m = (**m).clone();
                    m.modify_index += 1;
                    touched.push(Change::PutGroup(m));
                }
            }
            g.member_group_ids = Some(members);
        }
        g.modify_index += 1;
        g.last_update_time = at;
        let (id, name) = (g.id.clone(), g.name.clone());
        (g, id, name, created, touched)
    };
    touched.push(Change::PutGroup(g));
    s.commit(touched).await?;
    if created {
        Ok(data(json!({ "id": id, "name": name })))
    } else {
        Ok(Response::empty())
    }
}

async fn group_delete(s: Arc<S>, ctx: Ctx, target: Target) -> Result<Response> {
    let _lock = s.lock().await;
    let changes = {
        let state = s.state();
        match find_group(&state, &ctx, target)? {
            None => Vec::new(),
            Some(g) => {
                let mut changes = vec![Change::DeleteGroup(g.id.clone())];
                for pid in state.parent_groups(&g.id) {
                    if let Some(p) = state.group(&pid) {
                        let mut p = (**p).clone();
                        if let Some(m) = p.member_group_ids.as_mut() {
                            m.retain(|x| x != &g.id);
                        }
                        if p.member_group_ids.as_ref().is_some_and(Vec::is_empty) {
                            p.member_group_ids = None;
                        }
                        changes.push(Change::PutGroup(p));
                    }
                }
                changes
            }
        }
    };
    if !changes.is_empty() {
        s.commit(changes).await?;
    }
    Ok(Response::empty())
}

async fn group_list_ids(s: Arc<S>, _ctx: Ctx) -> Result<Response> {
    let state = s.state();
    let items = state
        .groups()
        .map(|g| {
            (
                g.id.clone(),
                json!({
                    "name": g.name,
                    "num_member_entities": g.member_entity_ids.as_ref().map_or(0, Vec::len),
                    "num_parent_groups": state.parent_groups(&g.id).len(),
                }),
            )
        })
        .collect();
    keys_with_info(items)
}

async fn group_list_names(s: Arc<S>, _ctx: Ctx) -> Result<Response> {
    let mut names: Vec<String> = s.state().groups().map(|g| g.name.clone()).collect();
    names.sort();
    Response::keys(names)
}

// ---------------------------------------------------------------- group aliases

async fn group_alias_read(s: Arc<S>, ctx: Ctx) -> Result<Response> {
    let state = s.state();
    let id = ctx.fields.str_or_empty("id")?;
    match state.group_of_alias(&id).and_then(|g| g.alias.clone()) {
        Some(a) => Ok(data(render_group_alias(&s, &a, true))),
        None => Err(Error::NotFound(None)),
    }
}

async fn group_alias_write(s: Arc<S>, ctx: Ctx, by_path: bool) -> Result<Response> {
    let id = non_empty(&ctx, "id")?;
    let name = non_empty(&ctx, "name")?;
    let accessor = non_empty(&ctx, "mount_accessor")?;
    let canonical = non_empty(&ctx, "canonical_id")?;
    if !by_path && id.is_none() && (name.is_none() || accessor.is_none()) {
        return Err(Error::bad_request(
            "'id' or 'mount_accessor' and 'name' must be provided",
        ));
    }
    if let Some(acc) = &accessor {
        if s.mount(acc).is_none() {
            return Err(Error::bad_request(format!(
                "invalid mount accessor {acc:?}"
            )));
        }
    }
    let _lock = s.lock().await;
    let (changes, alias) = {
        let state = s.state();
        let at = now();
        let existing = match &id {
            Some(id) => Some(
                state
                    .group_of_alias(id)
                    .cloned()
                    .ok_or_else(|| Error::bad_request("invalid group alias ID provided"))?,
            ),
            None => None,
        };
        let target = match &canonical {
            Some(c) => {
                let g = state.group(c).cloned().ok_or_else(|| {
                    Error::bad_request("invalid group ID given in 'canonical_id'")
                })?;
                if g.kind != "external" {
                    return Err(Error::bad_request(
                        "alias can't be set on an internal group",
                    ));
                }
                Some(g)
            }
            None => None,
        };
        let mut changes = Vec::new();
        let mut alias = match &existing {
            Some(g) => g
                .alias
                .clone()
                .ok_or_else(|| Error::internal("group alias without alias"))?,
            None => GroupAlias {
                id: s.new_id(),
                canonical_id: String::new(),
                name: String::new(),
                mount_accessor: String::new(),
                creation_time: at.clone(),
                last_update_time: at.clone(),
            },
        };
        if let Some(n) = name {
            alias.name = n;
        }
        if let Some(a) = accessor {
            alias.mount_accessor = a;
        }
        alias.last_update_time = at.clone();
        if state
            .group_by_alias_key(&alias.mount_accessor, &alias.name)
            .is_some_and(|g| g.alias.as_ref().is_some_and(|a| a.id != alias.id))
        {
            return Err(Error::bad_request(
                "combination of mount and group alias name is already in use",
            ));
        }
        let mut owner = match (target, &existing) {
            (Some(t), Some(old)) if t.id != old.id => {
                let mut old = (**old).clone();
                old.alias = None;
                changes.push(Change::PutGroup(old));
                (*t).clone()
            }
            (Some(t), _) => (*t).clone(),
            (None, Some(old)) => (**old).clone(),
            (None, None) => {
                let short = uuid::Uuid::new_v4().simple().to_string();
                Group {
                    id: s.new_id(),
                    name: format!("group_{}", &short[..8]),
                    kind: "external".into(),
                    policies: None,
                    metadata: None,
                    member_entity_ids: None,
                    member_group_ids: None,
                    alias: None,
                    creation_time: at.clone(),
                    last_update_time: at.clone(),
                    modify_index: 0,
                }
            }
        };
        if owner.alias.as_ref().is_some_and(|a| a.id != alias.id) {
            return Err(Error::bad_request("group already has an alias"));
        }
        alias.canonical_id = owner.id.clone();
        owner.alias = Some(alias.clone());
        owner.modify_index += 1;
        owner.last_update_time = at;
        changes.push(Change::PutGroup(owner));
        (changes, alias)
    };
    s.commit(changes).await?;
    Ok(data(
        json!({ "canonical_id": alias.canonical_id, "id": alias.id }),
    ))
}

async fn group_alias_delete(s: Arc<S>, ctx: Ctx) -> Result<Response> {
    let _lock = s.lock().await;
    let change = {
        let state = s.state();
        state
            .group_of_alias(&ctx.fields.str_or_empty("id")?)
            .map(|g| {
                let mut g = (**g).clone();
                g.alias = None;
                Change::PutGroup(g)
            })
    };
    if let Some(c) = change {
        s.commit(vec![c]).await?;
    }
    Ok(Response::empty())
}

async fn group_alias_list(s: Arc<S>, _ctx: Ctx) -> Result<Response> {
    let state = s.state();
    let items = state
        .groups()
        .filter_map(|g| g.alias.as_ref())
        .map(|a| {
            let m = s.mount(&a.mount_accessor);
            (
                a.id.clone(),
                json!({
                    "canonical_id": a.canonical_id,
                    "custom_metadata": null,
                    "local": false,
                    "metadata": null,
                    "mount_accessor": a.mount_accessor,
                    "mount_path": m.as_ref().map(|m| m.path.clone()).unwrap_or_default(),
                    "mount_type": m.as_ref().map(|m| m.kind.clone()).unwrap_or_default(),
                    "name": a.name,
                }),
            )
        })
        .collect();
    keys_with_info(items)
}

// ---------------------------------------------------------------- lookups

/// What a lookup asks for.
enum Query {
    Id(String),
    Name(String),
    AliasId(String),
    Alias(String, String),
}

fn lookup_query(ctx: &Ctx) -> Result<Query> {
    let id = non_empty(ctx, "id")?;
    let name = non_empty(ctx, "name")?;
    let alias_id = non_empty(ctx, "alias_id")?;
    let alias_name = non_empty(ctx, "alias_name")?;
    let alias_acc = non_empty(ctx, "alias_mount_accessor")?;
    let alias = alias_name.is_some() || alias_acc.is_some();
    let count = [id.is_some(), name.is_some(), alias_id.is_some(), alias]
        .iter()
        .filter(|b| **b)
        .count();
    if count == 0 {
        return Err(Error::bad_request("query parameter not supplied"));
    }
    if count > 1 {
        return Err(Error::bad_request(
            "query parameter conflict; please supply distinct set of query parameters",
        ));
    }
    Ok(match (id, name, alias_id, alias_name, alias_acc) {
        (Some(id), ..) => Query::Id(id),
        (_, Some(n), ..) => Query::Name(n),
        (_, _, Some(a), ..) => Query::AliasId(a),
        (_, _, _, Some(n), Some(acc)) => Query::Alias(acc, n),
        _ => {
            return Err(Error::bad_request(
                "both 'alias_name' and 'alias_mount_accessor' needs to be set",
            ))
        }
    })
}

async fn lookup_entity(s: Arc<S>, ctx: Ctx) -> Result<Response> {
    let query = lookup_query(&ctx)?;
    let state = s.state();
    let found = match query {
        Query::Id(id) => state.entity(&id).cloned(),
        Query::Name(n) => state.entity_by_name(&n).cloned(),
        Query::AliasId(a) => state.alias(&a).map(|(e, _)| e.clone()),
        Query::Alias(acc, n) => state.alias_by_key(&acc, &n).map(|(e, _)| e.clone()),
    };
    Ok(match found {
        Some(e) => data(render_entity(&s, &state, &e)),
        None => Response::empty(),
    })
}

async fn lookup_group(s: Arc<S>, ctx: Ctx) -> Result<Response> {
    let query = lookup_query(&ctx)?;
    let state = s.state();
    let found = match query {
        Query::Id(id) => state.group(&id).cloned(),
        Query::Name(n) => state.group_by_name(&n).cloned(),
        Query::AliasId(a) => state.group_of_alias(&a).cloned(),
        Query::Alias(acc, n) => state.group_by_alias_key(&acc, &n).cloned(),
    };
    Ok(match found {
        Some(g) => data(render_group(&s, &state, &g)),
        None => Response::empty(),
    })
}
