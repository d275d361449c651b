//! `sys/remount` and `sys/remount/status/:migration_id`: moving a secrets
//! engine or auth method to another path, as OpenBao does. The move is done
//! before the answer (OpenBao queues it), so its status is always
//! `success`; the migration ids live in memory until the node restarts.

use serde::Deserialize;
use serde_json::json;

use super::{legacy, obj, SysState, S};
use strongroom_sdk::framework::{handler, Ctx, Field, FieldType, Path};
use strongroom_sdk::logical::{Operation, Response};
use strongroom_sdk::{Error, Result};

/// The parameters of `sys/remount`.
#[derive(Deserialize)]
struct RemountParams {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The migration id of `sys/remount/status/:migration_id`.
#[derive(Deserialize)]
struct MigrationId {
    #[serde(default)]
    migration_id: String,
}

async fn remount(s: S, ctx: Ctx) -> Result<Response> {
    let RemountParams { from, to } = ctx.decode()?;
    if from.is_empty() || to.is_empty() {
        return Err(Error::bad_request(
            "both 'from' and 'to' path must be specified as a string",
        ));
    }
    let core = s.core()?;
    let tenant = core.request_tenant(&ctx.extensions)?;
    core.remount(&tenant, &from, &to).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let norm = |p: &str| format!("{}/", p.trim_matches('/'));
    if let Ok(mut m) = s.migrations.lock() {
        m.insert(id.clone(), (norm(&from), norm(&to)));
    }
    Ok(legacy(obj(json!({ "migration_id": id }))).with_warning(
        "Mount move has been queued. Progress will be reported in OpenBao's server log, tagged with the returned migration_id",
    ))
}

async fn status(s: S, ctx: Ctx) -> Result<Response> {
    let MigrationId { migration_id: id } = ctx.decode()?;
    let found = s.migrations.lock().ok().and_then(|m| m.get(&id).cloned());
    let Some((source, target)) = found else {
        return Ok(Response::raw(404, json!({ "errors": [] })));
    };
    Ok(Response::data(obj(json!({
        "migration_id": id,
        "migration_info": {
            "source_mount": source,
            "target_mount": target,
            "status": "success",
        },
    }))))
}

/// The remount paths.
pub(super) fn paths() -> Vec<Path<SysState>> {
    vec![
        Path::new("remount")
            .fields(vec![
                Field::new("from", FieldType::String, "The previous mount point."),
                Field::new("to", FieldType::String, "The new mount point."),
            ])
            .decodes::<RemountParams>()
            .op(Operation::Update, handler(remount), "Initiate a mount migration.")
            .help("Move the mount point of an already-mounted backend, within or across namespaces.", "POST with from and to moves a secrets engine (or, with auth/ paths, an auth method) with its data, configuration and leases; the old path answers 404 afterwards."),
        Path::new("remount/status/{migration_id}")
            .fields(vec![Field::new("migration_id", FieldType::String, "The ID of the migration operation.")])
            .decodes::<MigrationId>()
            .op(Operation::Read, handler(status), "Check status of a mount migration.")
            .help("Check the status of a mount move.", "Reports the source, target and status of a move started by sys/remount."),
    ]
}
