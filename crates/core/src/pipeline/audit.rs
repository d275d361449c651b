//! Stages 6 and 9, audit: the hooks an audit broker plugs into. The request
//! hook runs after authorisation, before the backend, and is fail-closed: a
//! request it refuses fails without reaching the backend. Requests refused
//! earlier (no token, denied by the ACL, no route) reach it too, with their
//! error. The response hook runs once the response is final (wrapped, with
//! its token issued); when it fails the client gets its error instead of
//! the answer, as OpenBao does.

use strongroom_sdk::logical::Response;
use strongroom_sdk::{Error, Result};

use super::{RequestCtx, Stage};

/// Audit's seams in the pipeline. The default methods record nothing.
#[async_trait::async_trait]
pub trait AuditHook: Send + Sync + 'static {
    /// Whether there is anything to record: the pipeline skips a disabled
    /// hook altogether (no call, no allocation on the hot path).
    fn is_enabled(&self) -> bool {
        true
    }

    /// The request, after authorisation (`error`: why it was refused). An
    /// error refuses the request. The hook may keep what the response
    /// entry needs in the context ([`RequestCtx::audit_entry`]).
    async fn log_request(&self, _ctx: &mut RequestCtx, _error: Option<&Error>) -> Result<()> {
        Ok(())
    }

    /// The final outcome of the request. An error replaces the answer.
    async fn log_response(&self, _ctx: &mut RequestCtx, _outcome: &Result<Response>) -> Result<()> {
        Ok(())
    }
}

/// The default hook: no audit device.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAudit;

impl AuditHook for NoAudit {
    fn is_enabled(&self) -> bool {
        false
    }
}

/// Stage 6: the request hook, given what the earlier stages concluded.
pub async fn request(
    hook: &dyn AuditHook,
    ctx: &mut RequestCtx,
    admitted: Result<()>,
) -> Result<()> {
    if !hook.is_enabled() {
        ctx.lap(Stage::AuditRequest);
        return admitted;
    }
    let mut logged = true;
    let outcome = match admitted {
        Ok(()) => {
            let r = hook.log_request(ctx, None).await;
            logged = r.is_ok();
            r
        }
        Err(e) => {
            if let Err(audit) = hook.log_request(ctx, Some(&e)).await {
                logged = false;
                tracing::error!(error = %audit, "audit: logging a refused request failed");
            }
            Err(e)
        }
    };
    ctx.lap(Stage::AuditRequest);
    strongroom_telemetry::audit_log_request(ctx.timing(Stage::AuditRequest), logged);
    outcome
}

/// Stage 9: the response hook, on the final outcome.
pub async fn response(
    hook: &dyn AuditHook,
    ctx: &mut RequestCtx,
    outcome: Result<Response>,
) -> Result<Response> {
    if !hook.is_enabled() {
        ctx.lap(Stage::AuditResponse);
        return outcome;
    }
    let logged = hook.log_response(ctx, &outcome).await;
    ctx.lap(Stage::AuditResponse);
    strongroom_telemetry::audit_log_response(ctx.timing(Stage::AuditResponse), logged.is_ok());
    match logged {
        Ok(()) => outcome,
        Err(e) => {
            tracing::error!(error = %e, "audit: logging a response failed; the answer is withheld");
            Err(e)
        }
    }
}
