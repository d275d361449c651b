//! `sys/namespaces`: listing, creating, reading, patching and deleting the
//! child namespaces of the request's namespace, and locking or unlocking a
//! namespace's API (`sys/namespaces/api-lock/{lock,unlock}[/:path]`). The
//! namespace's life is [`crate::node::namespaces`]'s; this is its API, in
//! OpenBao's shapes.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{obj, SysState, S};
use crate::namespace;
use crate::node::namespaces::Deletion;
use strongroom_sdk::framework::{handler, Ctx, Field, FieldType, Path};
use strongroom_sdk::logical::{Data, Operation, Response};
use strongroom_sdk::{Error, Result};

/// The namespace named in the path.
#[derive(Deserialize)]
struct NamePath {
    #[serde(default)]
    path: String,
}

/// `unlock_key` of an unlock.
#[derive(Deserialize)]
struct UnlockParams {
    #[serde(default)]
    path: String,
    #[serde(default)]
    unlock_key: String,
}

/// The namespaces below the request's that `keep` selects (given the
/// child's path and the request namespace's), keyed by their path relative
/// to the request's, with their details; 404 when there are none.
async fn listing(s: S, ctx: Ctx, keep: fn(&str, &str) -> bool) -> Result<Response> {
    let core = s.core()?;
    let here = core.request_tenant(&ctx.extensions)?;
    let active = core.active()?;
    let mut keys = Vec::new();
    let mut info = Map::new();
    for t in active.namespaces.all() {
        if t.path.len() > here.path.len()
            && t.path.starts_with(&*here.path)
            && keep(&t.path, &here.path)
        {
            let relative = t.path[here.path.len()..].to_string();
            info.insert(relative.clone(), t.entry().render());
            keys.push(relative);
        }
    }
    if keys.is_empty() {
        return Err(Error::NotFound(None));
    }
    Ok(Response::data(obj(json!({"keys": keys, "key_info": info}))))
}

/// `LIST sys/namespaces`: the direct children.
async fn list(s: S, ctx: Ctx) -> Result<Response> {
    listing(s, ctx, |child, here| {
        namespace::parent_of(child) == Some(here)
    })
    .await
}

/// `SCAN sys/namespaces`: every namespace below, recursively.
async fn scan(s: S, ctx: Ctx) -> Result<Response> {
    listing(s, ctx, |_, _| true).await
}

async fn read(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let here = core.request_tenant(&ctx.extensions)?;
    let name = namespace::parse_name(&ctx.decode::<NamePath>()?.path)?;
    let active = core.active()?;
    match active.namespaces.by_path(&format!("{}{name}", here.path)) {
        Some(t) => Ok(Response::data(obj(t.entry().render()))),
        None => Err(Error::NotFound(None)),
    }
}

/// `custom_metadata` as given: an object of strings.
fn metadata(data: &Data) -> Result<BTreeMap<String, String>> {
    match data.get("custom_metadata") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(Error::bad_request("custom_metadata values must be strings")),
            })
            .collect(),
        Some(other) => Err(Error::bad_request(format!(
            "Field validation failed: error converting input for field \"custom_metadata\": '' expected type 'map[string]interface {{}}', got unconvertible type '{}'",
            go_type(other)
        ))),
    }
}

/// Go's name of a JSON value's decoded type (OpenBao's messages).
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(_) => "json.Number",
        Value::Bool(_) => "bool",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "<nil>",
    }
}

async fn write(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let here = core.request_tenant(&ctx.extensions)?;
    let name = namespace::parse_name(&ctx.decode::<NamePath>()?.path)?;
    let metadata = metadata(&ctx.request.data)?;
    let entry = core.put_namespace(&here, &name, metadata).await?;
    Ok(Response::data(obj(entry.render())))
}

async fn patch(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let here = core.request_tenant(&ctx.extensions)?;
    let name = namespace::parse_name(&ctx.decode::<NamePath>()?.path)?;
    let patch = match ctx.request.data.get("custom_metadata") {
        None => {
            return Err(Error::bad_request(
                "missing required field \"custom_metadata\"",
            ))
        }
        Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(other) => {
            return Err(Error::bad_request(format!(
                "Field validation failed: error converting input for field \"custom_metadata\": '' expected type 'map[string]interface {{}}', got unconvertible type '{}'",
                go_type(other)
            )))
        }
    };
    let entry = core.patch_namespace(&here, &name, patch).await?;
    Ok(Response::data(obj(entry.render())))
}

async fn delete(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let here = core.request_tenant(&ctx.extensions)?;
    let name = namespace::parse_name(&ctx.decode::<NamePath>()?.path)?;
    match core.delete_namespace(&here, &name).await? {
        Deletion::Absent => {
            Ok(Response::empty().with_warning("requested namespace does not exist"))
        }
        Deletion::InProgress => Ok(Response::data(obj(json!({"status": "in-progress"})))),
    }
}

async fn lock(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let here = core.request_tenant(&ctx.extensions)?;
    let NamePath { path } = ctx.decode()?;
    let key = core.lock_namespace(&here, &path).await?;
    Ok(Response::data(obj(json!({"unlock_key": key}))))
}

async fn unlock(s: S, ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let here = core.request_tenant(&ctx.extensions)?;
    let UnlockParams { path, unlock_key } = ctx.decode()?;
    if unlock_key.is_empty() {
        // Without the key, only a caller with sudo on this path (OpenBao).
        let active = core.active()?;
        let token = match ctx.request.client_token.as_ref() {
            Some(t) => active.tokens.lookup(&t.0).await?,
            None => None,
        };
        let sudo = match token {
            Some(entry) => core
                .token_scope(&active, &entry, &here)
                .await?
                .is_some_and(|scope| {
                    let caps =
                        scope.capabilities(&format!("{}{}", ctx.mount.path, ctx.request.path));
                    caps.iter().any(|c| c == "sudo" || c == "root")
                }),
            None => false,
        };
        if !sudo {
            return Err(Error::bad_request("provided empty key"));
        }
        core.unlock_namespace(&here, &path, None).await?;
        return Ok(Response::empty().with_warning("Namespace unlocked using sudo capabilities"));
    }
    core.unlock_namespace(&here, &path, Some(&unlock_key))
        .await?;
    Ok(Response::empty())
}

fn path_field() -> Field {
    Field::new("path", FieldType::String, "The path of the namespace.")
}

/// The `sys/namespaces` paths.
pub(super) fn paths() -> Vec<Path<SysState>> {
    let lock_fields = || vec![path_field()];
    let unlock_fields = || {
        vec![
            path_field(),
            Field::new(
                "unlock_key",
                FieldType::String,
                "The key the lock handed out (a caller with sudo may omit it).",
            ),
        ]
    };
    vec![
        Path::new("namespaces/?")
            .op(Operation::List, handler(list), "List the child namespaces of the current namespace.")
            .op(Operation::Scan, handler(scan), "List every namespace below the current namespace, recursively.")
            .help("List namespaces.", "Lists the direct children of the request's namespace, relative to it, with their details in key_info."),
        Path::new("namespaces/api-lock/lock")
            .fields(lock_fields())
            .decodes::<NamePath>()
            .op(Operation::Update, handler(lock), "Lock the API of the current namespace.")
            .help("Lock a namespace's API.", "Locks the API of the request's namespace: it and its descendants answer 503 to everything but an unlock. Answers the unlock key."),
        Path::new("namespaces/api-lock/lock/{path+}")
            .fields(lock_fields())
            .decodes::<NamePath>()
            .op(Operation::Update, handler(lock), "Lock the API of a descendant namespace.")
            .help("Lock a namespace's API.", "Locks the API of the namespace at this path below the request's namespace. Answers the unlock key."),
        Path::new("namespaces/api-lock/unlock")
            .fields(unlock_fields())
            .decodes::<UnlockParams>()
            .op(Operation::Update, handler(unlock), "Unlock the API of the current namespace.")
            .help("Unlock a namespace's API.", "Unlocks the request's namespace with its unlock key, or without one for a caller with sudo."),
        Path::new("namespaces/api-lock/unlock/{path+}")
            .fields(unlock_fields())
            .decodes::<UnlockParams>()
            .op(Operation::Update, handler(unlock), "Unlock the API of a descendant namespace.")
            .help("Unlock a namespace's API.", "Unlocks the namespace at this path with its unlock key, or without one for a caller with sudo."),
        Path::new("namespaces/{path+}")
            .fields(vec![
                path_field(),
                Field::new("custom_metadata", FieldType::Map, "Free string metadata of the namespace."),
            ])
            .decodes::<NamePath>()
            .op(Operation::Read, handler(read), "Look up a namespace.")
            .op(Operation::Update, handler(write), "Create a namespace, or replace its custom metadata.")
            .op(Operation::Patch, handler(patch), "Patch a namespace's custom metadata (RFC 7396 merge patch).")
            .op(Operation::Delete, handler(delete), "Delete a namespace and everything in it.")
            .help("Manage a namespace.", "Creates (POST), reads, patches (PATCH, application/merge-patch+json) or deletes (asynchronously) the child namespace of this name."),
    ]
}
