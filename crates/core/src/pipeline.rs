//! The request pipeline: every logical request takes these stages, one
//! module each, in this order.
//!
//! 1. [`receive`]: the logical request (made from HTTP by `strongroom-http`'s
//!    `parse`) is checked and becomes a [`RequestCtx`]; the seal-free
//!    `sys/` paths leave the pipeline here;
//! 2. [`namespace`]: the namespace the request is in (the header joined
//!    with the path), and the path relative to it; locked namespaces and
//!    the root-only `sys/` endpoints are refused here;
//!    then [`quota`]: the rate-limit quotas, before authentication;
//! 3. [`authenticate`]: the token, unless the path is unauthenticated; one
//!    of its uses is spent;
//! 4. [`route`]: the longest mount prefix picks the backend; the backend's
//!    own request is made here, once;
//! 5. [`authorize`]: the existence check (create or update), then the ACL;
//! 6. [`audit`] (request hook): fail-closed, after authorisation; denied
//!    requests reach it too, with their error;
//! 7. [`backend`]: the backend answers (or its help does);
//! 8. [`post`]: a login's token is issued, a secret's lease registered,
//!    the answer wrapped;
//! 9. [`audit`] (response hook): once the response is final;
//! 10. [`respond`]: a used-up token is revoked, the observer is told.
//!
//! A [`RequestCtx`] carries what the stages learn. The audit hooks
//! ([`AuditHook`]) and the metrics observer ([`Observer`]) are traits with
//! no-op defaults, installed with
//! [`Core::set_pipeline_hooks`](crate::node::Core::set_pipeline_hooks);
//! [`Core::set_observer`](crate::node::Core::set_observer) installs an
//! observer and keeps the core's audit hook (the binary installs
//! [`crate::telemetry::MetricsObserver`]).

pub mod audit;
pub mod authenticate;
pub mod authorize;
pub mod backend;
pub mod namespace;
pub mod post;
pub mod quota;
pub mod receive;
pub mod respond;
pub mod route;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use strongroom_telemetry::Instant;

use strongroom_policy::Decision;
use strongroom_sdk::framework::{BackendRequest, MountContext};
use strongroom_sdk::logical::{Data, Operation, Request, RequestHandler, Response};
use strongroom_sdk::{Error, Result};

use crate::node::tenant::Tenant;
use crate::node::Core;
use crate::router::Route;
use crate::token::TokenEntry;

pub use audit::{AuditHook, NoAudit};

/// The stages, in request order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// HTTP made a logical request; it is checked and gets its context.
    Receive,
    /// The namespace is resolved.
    Namespace,
    /// The token is looked up and a use spent.
    Authenticate,
    /// The mount is picked.
    Route,
    /// The existence check and the ACL.
    Authorize,
    /// The request's audit hook.
    AuditRequest,
    /// The backend answers.
    Backend,
    /// Login tokens, leases, wrapping.
    PostProcess,
    /// The response's audit hook.
    AuditResponse,
    /// The answer leaves.
    Respond,
}

impl Stage {
    /// Every stage, in request order.
    pub const ALL: [Stage; 10] = [
        Stage::Receive,
        Stage::Namespace,
        Stage::Authenticate,
        Stage::Route,
        Stage::Authorize,
        Stage::AuditRequest,
        Stage::Backend,
        Stage::PostProcess,
        Stage::AuditResponse,
        Stage::Respond,
    ];

    /// The stage's bit in a [`StageSet`].
    pub const fn bit(self) -> StageSet {
        StageSet(1 << self as u16)
    }

    /// The stage's name, as metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Receive => "receive",
            Stage::Namespace => "namespace",
            Stage::Authenticate => "authenticate",
            Stage::Route => "route",
            Stage::Authorize => "authorize",
            Stage::AuditRequest => "audit_request",
            Stage::Backend => "backend",
            Stage::PostProcess => "post_process",
            Stage::AuditResponse => "audit_response",
            Stage::Respond => "respond",
        }
    }
}

/// A set of stages (a bit each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageSet(u16);

impl StageSet {
    /// Every stage.
    pub const ALL: StageSet = StageSet((1 << Stage::ALL.len()) - 1);

    /// The union of two sets.
    pub const fn with(self, other: StageSet) -> StageSet {
        StageSet(self.0 | other.0)
    }

    /// Whether `stage` is in the set.
    pub const fn contains(self, stage: Stage) -> bool {
        self.0 & stage.bit().0 != 0
    }

    /// The stage boundaries at which the clock must be read for each stage
    /// of `self` to be timed exactly: its own end and the end of the stage
    /// before it; the last stage's end always (so the stages' sum is the
    /// whole request). Time of an unclocked stage counts towards the next
    /// clocked one.
    pub fn clocked(self) -> StageSet {
        let mut out = Stage::Respond.bit();
        for (i, stage) in Stage::ALL.iter().enumerate() {
            if self.contains(*stage) {
                out = out.with(stage.bit());
                if let Some(prev) = i.checked_sub(1).and_then(|p| Stage::ALL.get(p)) {
                    out = out.with(prev.bit());
                }
            }
        }
        out
    }
}

/// How the request was authorised.
#[derive(Debug, Clone)]
pub enum Authorization {
    /// The path needs no token (logins, unwrap with the token in the body).
    Unauthenticated,
    /// A root token: everything is allowed.
    Root,
    /// A response-wrapping token, on one of the paths it may use.
    Wrapping,
    /// The ACL of the token's policies allowed it.
    Acl(Decision),
}

/// The route a request took.
#[derive(Clone)]
pub struct Routed {
    /// The mount's route.
    pub route: Arc<Route>,
    /// The path relative to the mount.
    pub relative: String,
    /// The mount's context for this request (one snapshot: a concurrent
    /// tune does not change it mid-request).
    pub mount: Arc<MountContext>,
}

/// What the stages learn about one request.
pub struct RequestCtx {
    /// The request id (`request_id` of the answer).
    pub id: String,
    /// The operation; the existence check may turn an update into a create.
    pub operation: Operation,
    /// The path below `/v1/`, without leading slash: as the client sent it
    /// until the namespace stage, then relative to the namespace.
    pub path: String,
    /// The namespace the request is in (set by the namespace stage).
    pub tenant: Option<Arc<Tenant>>,
    /// Whether the request path named (part of) the namespace: then, as in
    /// OpenBao, whose HTTP layer matches them on the URL, the legacy `sys/`
    /// endpoints do not repeat their data at the top level.
    pub namespace_in_path: bool,
    /// The client's address.
    pub remote_addr: Option<IpAddr>,
    /// The requested wrapping TTL.
    pub wrap_ttl: Option<Duration>,
    /// Whether the request named a token.
    pub has_token: bool,
    /// The authenticated token (`None` on unauthenticated paths).
    pub token: Option<Arc<TokenEntry>>,
    /// The request spent the token's last use: revoke it when answered.
    pub exhausted: bool,
    /// The mount and relative path (`None`: no mount serves the path).
    pub routed: Option<Routed>,
    /// Whether the path needs `sudo` (the mount's root paths).
    pub sudo: bool,
    /// Whether the path needs no token.
    pub unauthenticated: bool,
    /// The ACL's answer, once authorised.
    pub authorization: Option<Authorization>,
    /// Time spent in each stage (indexed like [`Stage::ALL`]); all zero
    /// when the observer does not ask for timings ([`Observer::timed`]).
    pub timings: [Duration; 10],
    /// The wire request until the route stage moves it into the backend's
    /// request.
    request: Option<Request>,
    /// The backend's request, made by the route stage.
    backend_request: Option<BackendRequest>,
    /// Whether the mount lookup was done (for the special-path check of
    /// authentication, before the route stage).
    looked_up: bool,
    /// The end of the last timed stage; `None` when nothing is timed.
    mark: Option<Instant>,
    /// The stage ends at which the clock is read (see
    /// [`StageSet::clocked`]).
    clocked: StageSet,
    /// The request's audit entry, kept by the request hook for the
    /// response entry (the backend consumes the request meanwhile).
    pub audit_entry: Option<Box<strongroom_audit::Entry>>,
    /// The rate-limit headers the answer carries (when enabled).
    pub quota_headers: Vec<(String, String)>,
    /// The role a login names, resolved when its mount has role quotas.
    pub login_role: Option<String>,
    /// A rate-limit quota refused the request.
    pub rate_limited: bool,
    /// ... and the refusal is audited (`enable_rate_limit_audit_logging`).
    pub audit_rate_limited: bool,
}

impl RequestCtx {
    /// The request data: the wire request's until the route stage, then the
    /// backend request's.
    pub fn data(&self) -> &Data {
        static EMPTY: std::sync::OnceLock<Data> = std::sync::OnceLock::new();
        match (&self.backend_request, &self.request) {
            (Some(b), _) => &b.request.data,
            (None, Some(r)) => &r.data,
            (None, None) => EMPTY.get_or_init(Data::new),
        }
    }

    /// The request as the client sent it (its token, headers, address),
    /// until the backend consumes it; its path is the route's relative one
    /// once routed: use [`RequestCtx::path`] for the full path.
    pub fn wire_request(&self) -> Option<&Request> {
        match (&self.backend_request, &self.request) {
            (Some(b), _) => Some(&b.request),
            (None, Some(r)) => Some(r),
            (None, None) => None,
        }
    }

    /// The request's namespace (once the namespace stage resolved it).
    pub fn tenant(&self) -> Result<&Arc<Tenant>> {
        self.tenant
            .as_ref()
            .ok_or_else(|| Error::internal("the namespace was not resolved"))
    }

    /// The request's path from the root namespace (`ns1/secret/foo`).
    pub fn full_path(&self) -> String {
        match &self.tenant {
            Some(t) if !t.is_root() => t.full_path(&self.path),
            _ => self.path.clone(),
        }
    }

    /// The time spent in `stage`.
    pub fn timing(&self, stage: Stage) -> Duration {
        self.timings[stage as usize]
    }

    /// Records the time since the previous mark as `stage`'s (when the
    /// observer's stages need this boundary).
    fn lap(&mut self, stage: Stage) {
        if !self.clocked.contains(stage) {
            return;
        }
        if let Some(mark) = self.mark {
            let now = Instant::now();
            self.timings[stage as usize] += now - mark;
            self.mark = Some(now);
        }
    }

    /// The wire request (present until the route stage).
    fn request(&self) -> Result<&Request> {
        self.request
            .as_ref()
            .ok_or_else(|| Error::internal("the request was already handed to the backend"))
    }
}

/// Told what each request did; a metrics exporter implements it.
pub trait Observer: Send + Sync + 'static {
    /// Whether the stages should be timed for this observer. Timing reads
    /// the clock at every stage boundary; an observer that ignores
    /// `ctx.timings` answers `false` and the pipeline skips the clock.
    fn timed(&self) -> bool {
        true
    }

    /// The stages whose times the observer reads (when [`timed`](
    /// Observer::timed)); the pipeline reads the clock only at the
    /// boundaries these need. `audited`: whether an audit device is
    /// enabled (the audit stages do work only then).
    fn stages(&self, audited: bool) -> StageSet {
        let _ = audited;
        StageSet::ALL
    }

    /// A request finished with `status` (its HTTP status); `ctx.timings`
    /// holds each stage's time.
    fn request_finished(&self, ctx: &RequestCtx, status: u16);
}

/// The default observer: ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn timed(&self) -> bool {
        false
    }

    fn request_finished(&self, _ctx: &RequestCtx, _status: u16) {}
}

#[async_trait::async_trait]
impl RequestHandler for Core {
    fn wants_headers(&self) -> bool {
        self.audit().broker().is_enabled() && !self.audit().headers().is_empty()
    }

    fn metrics(&self, format: &str) -> Result<Response> {
        self.metrics_response(format)
    }

    async fn handle_request(&self, req: Request) -> Result<Response> {
        let now = Instant::now();
        let _in_flight = self.in_flight().enter_request(&req, now);
        let hooks = self.pipeline_hooks();
        let (started, clocked) = if hooks.observer.timed() {
            let audited = hooks.audit.is_enabled();
            (Some(now), hooks.observer.stages(audited).clocked())
        } else {
            (None, StageSet::default())
        };
        let mut ctx = receive::receive(req, started, clocked)?;
        if receive::is_seal_free(&ctx) && !receive::names_namespace(&ctx) {
            // Boxed: the common path's future does not carry this one.
            return Box::pin(receive::seal_free(self, ctx)).await;
        }
        if receive::is_seal_with_wrong_method(&ctx) && !receive::names_namespace(&ctx) {
            return Ok(receive::method_not_allowed());
        }
        if self.ha().is_none() && receive::is_step_down(&ctx) && !receive::names_namespace(&ctx) {
            // OpenBao: stepping down a node without HA is a no-op that
            // succeeds before any token is checked.
            return Ok(Response::empty());
        }
        let active = match self.active() {
            Ok(active) => active,
            // An HA standby answers reads from its read-only state once it
            // has applied every change acknowledged before this request
            // arrived; anything that would write fails at the gate with
            // `Standby`, and the HTTP layer forwards the request instead.
            Err(Error::Standby) => self.serving_standby(&ctx).await?,
            Err(e) => return Err(e),
        };
        ctx.lap(Stage::Receive);
        // Stages 2–5: any failure is still audited (stage 6) with its error.
        let admitted = admit(&active, &mut ctx).await;
        let headers = std::mem::take(&mut ctx.quota_headers);
        if ctx.rate_limited && !ctx.audit_rate_limited {
            // OpenBao audits a rate-limit refusal only when asked to.
            let refused = admitted.map(|()| Response::empty());
            return respond::respond(self, &*hooks.observer, ctx, refused).await;
        }
        let admitted = audit::request(&*hooks.audit, &mut ctx, admitted).await;
        let outcome = match admitted {
            Ok(()) => match backend::call(&mut ctx).await {
                Ok(resp) => post::process(self, &active, &mut ctx, resp).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let outcome = audit::response(&*hooks.audit, &mut ctx, outcome).await;
        let answer = respond::respond(self, &*hooks.observer, ctx, outcome).await;
        if headers.is_empty() {
            return answer;
        }
        match answer {
            Ok(mut resp) => {
                resp.headers.extend(headers);
                Ok(resp)
            }
            // A standby's refusal is forwarded: the HTTP layer matches it.
            Err(Error::Standby) => Err(Error::Standby),
            Err(e) => Err(e.with_headers(headers)),
        }
    }
}

/// Stages 2 to 5: namespace, authentication, route, authorisation.
async fn admit(active: &crate::node::Active, ctx: &mut RequestCtx) -> Result<()> {
    namespace::resolve(active, ctx)?;
    quota::check(active, ctx).await?;
    ctx.lap(Stage::Namespace);
    authenticate::authenticate(active, ctx).await?;
    ctx.lap(Stage::Authenticate);
    route::route(ctx)?;
    ctx.lap(Stage::Route);
    authorize::authorize(active, ctx).await?;
    ctx.lap(Stage::Authorize);
    Ok(())
}

#[cfg(test)]
mod tests;
