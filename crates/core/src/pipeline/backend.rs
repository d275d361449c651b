//! Stage 7, backend: the mount's backend answers the request made by the
//! route stage, or, for `?help=1`, its help does.

use strongroom_sdk::logical::{Operation, Response};
use strongroom_sdk::{Error, Result};

use super::{RequestCtx, Stage};

/// Hands the backend its request and returns its answer.
pub async fn call(ctx: &mut RequestCtx) -> Result<Response> {
    let (Some(routed), Some(breq)) = (ctx.routed.clone(), ctx.backend_request.take()) else {
        return Err(Error::internal("an authorised request has no route"));
    };
    let outcome = if breq.request.operation == Operation::Help {
        routed
            .route
            .backend
            .help(&routed.mount, &breq.request.path)
            .map(|body| Response::raw(200, body))
    } else {
        routed.route.backend.handle(breq).await
    };
    ctx.lap(Stage::Backend);
    outcome
}
