//! Stage 1, receive: the logical request (made from HTTP by
//! `strongroom-http`'s `parse`) gets its [`RequestCtx`]. Paths with `.` or
//! `..` segments are refused here. The seal-free `sys/` paths (init,
//! seal-status, unseal, health, leader) are answered in every node state,
//! without a token, and leave the pipeline at this stage.

use std::time::Duration;

use strongroom_telemetry::Instant;

use strongroom_sdk::framework::BackendRequest;
use strongroom_sdk::logical::{Operation, Request, Response};
use strongroom_sdk::{Error, Result};

use super::{RequestCtx, StageSet};
use crate::node::Core;

/// Paths answered whatever the node state, without a token.
const SEAL_FREE_PATHS: [&str; 5] = [
    "sys/init",
    "sys/seal-status",
    "sys/unseal",
    "sys/health",
    "sys/leader",
];

/// Checks the request and makes its context; `started` (when the stages
/// are timed) is when the request entered the pipeline.
pub fn receive(req: Request, started: Option<Instant>, clocked: StageSet) -> Result<RequestCtx> {
    if req.path.split('/').any(|s| s == ".." || s == ".") {
        return Err(Error::bad_request(format!(
            "invalid request path {:?}",
            req.path
        )));
    }
    Ok(RequestCtx {
        id: req.id.clone(),
        operation: req.operation,
        path: req.path.clone(),
        tenant: None,
        namespace_in_path: false,
        remote_addr: req.remote_addr,
        wrap_ttl: req.wrap_ttl,
        has_token: req.client_token.is_some(),
        token: None,
        exhausted: false,
        routed: None,
        sudo: false,
        unauthenticated: false,
        authorization: None,
        timings: [Duration::ZERO; 10],
        request: Some(req),
        backend_request: None,
        looked_up: false,
        mark: started,
        clocked,
        audit_entry: None,
        quota_headers: Vec::new(),
        login_role: None,
        rate_limited: false,
        audit_rate_limited: false,
    })
}

/// Whether the request is for a seal-free path.
pub fn is_seal_free(ctx: &RequestCtx) -> bool {
    ctx.operation != Operation::Help && SEAL_FREE_PATHS.contains(&ctx.path.trim_end_matches('/'))
}

/// Whether the request names a namespace other than root in its header
/// (then even the seal-free paths take the namespace stage, which refuses
/// the node-wide ones).
pub fn names_namespace(ctx: &RequestCtx) -> bool {
    ctx.request
        .as_ref()
        .and_then(|r| r.namespace.as_deref())
        .is_some_and(|ns| !crate::namespace::from_header(ns).is_empty())
}

/// Whether the request is an unsupported method on `sys/seal`, which
/// OpenBao refuses before looking at the token.
pub fn is_seal_with_wrong_method(ctx: &RequestCtx) -> bool {
    ctx.path.trim_end_matches('/') == "sys/seal"
        && !matches!(
            ctx.operation,
            Operation::Update | Operation::Create | Operation::Help
        )
}

/// The answer OpenBao's own HTTP handlers (the seal-free paths and
/// `sys/seal`) give an unsupported method: 405 with an empty `errors` list.
pub fn method_not_allowed() -> Response {
    Response::raw(405, serde_json::json!({ "errors": [] }))
}

/// Answers a seal-free path straight from the system backend.
pub async fn seal_free(core: &Core, mut ctx: RequestCtx) -> Result<Response> {
    // Rate-limit quotas apply here too once the node serves (OpenBao
    // exempts `sys/health`, `sys/seal-status` and `sys/unseal` by default
    // configuration, not by construction).
    let mut headers = Vec::new();
    if let Ok(active) = core.active() {
        if active.quotas.any_rate_limits() {
            ctx.tenant = Some(active.root().clone());
            super::quota::check(&active, &mut ctx).await?;
            headers = std::mem::take(&mut ctx.quota_headers);
        }
    }
    let mut request = ctx
        .request
        .take()
        .ok_or_else(|| Error::internal("no request"))?;
    request.path = request
        .path
        .strip_prefix("sys/")
        .unwrap_or(&request.path)
        .to_string();
    let (backend, storage, mount) = core.system_backend();
    let answer = match backend
        .handle(BackendRequest::new(request, storage, mount))
        .await
    {
        Err(Error::UnsupportedOperation) => Ok(method_not_allowed()),
        other => other,
    };
    if headers.is_empty() {
        return answer;
    }
    match answer {
        Ok(mut resp) => {
            resp.headers.extend(headers);
            Ok(resp)
        }
        Err(e) => Err(e.with_headers(headers)),
    }
}

/// `sys/step-down` as a write (what a node without HA answers at once).
pub(crate) fn is_step_down(ctx: &RequestCtx) -> bool {
    ctx.path.trim_end_matches('/') == "sys/step-down"
        && matches!(ctx.operation, Operation::Update | Operation::Create)
}
