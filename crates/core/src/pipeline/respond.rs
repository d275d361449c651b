//! Stage 10, respond: a token whose last use this request was is revoked
//! once the request is answered (successfully or not), the observer is
//! told the outcome and the stage timings, and the answer leaves for the
//! HTTP layer to render.

use strongroom_sdk::logical::Response;
use strongroom_sdk::Result;

use super::{Observer, RequestCtx, Stage};
use crate::node::Core;

/// Finishes the request.
pub async fn respond(
    core: &Core,
    observer: &dyn Observer,
    mut ctx: RequestCtx,
    outcome: Result<Response>,
) -> Result<Response> {
    if ctx.exhausted {
        if let Some(token) = &ctx.token {
            // Boxed: rare, and its future is large.
            if let Err(e) = Box::pin(core.revoke_token_tree(&token.id_hash)).await {
                tracing::warn!(error = %e, "revoking a used-up token failed");
            }
        }
    }
    let outcome = match outcome {
        // OpenBao adds the legacy top-level copy for URLs under /v1/sys/.
        Ok(mut resp) if ctx.namespace_in_path => {
            resp.top_level = None;
            Ok(resp)
        }
        other => other,
    };
    ctx.lap(Stage::Respond);
    let status = match &outcome {
        Ok(resp) => resp
            .raw
            .as_ref()
            .map(|r| r.status)
            .or(resp.status)
            .unwrap_or(if resp.is_empty() { 204 } else { 200 }),
        Err(e) => e.status(),
    };
    observer.request_finished(&ctx, status);
    outcome
}
