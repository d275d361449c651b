//! The pipeline's seams: stage order as the audit hooks and the observer
//! see it, fail-closed auditing, and denied requests on the record.

use std::sync::Arc;

use serde_json::json;
use strongroom_sdk::logical::{Operation, Response};
use strongroom_sdk::{Error, Result};

use super::{AuditHook, Authorization, Observer, RequestCtx, Stage};
use crate::node::PipelineHooks;
use crate::test_util::{call, dev_core, record, recorded, Events};

/// Records what each hook saw, in order.
struct Recorder {
    events: Events,
    /// Refuse every request in the request hook.
    refuse: bool,
}

#[async_trait::async_trait]
impl AuditHook for Recorder {
    async fn log_request(&self, ctx: &mut RequestCtx, error: Option<&Error>) -> Result<()> {
        let authz = match &ctx.authorization {
            None => "none",
            Some(Authorization::Root) => "root",
            Some(Authorization::Acl(_)) => "acl",
            Some(Authorization::Wrapping) => "wrapping",
            Some(Authorization::Unauthenticated) => "unauthenticated",
        };
        let error = error.map_or("ok".to_string(), |e| e.status().to_string());
        record(
            &self.events,
            format!(
                "audit request {} {} {authz} {error}",
                ctx.operation.as_str(),
                ctx.path
            ),
        );
        if self.refuse {
            return Err(Error::internal("audit device unavailable"));
        }
        Ok(())
    }

    async fn log_response(&self, ctx: &mut RequestCtx, outcome: &Result<Response>) -> Result<()> {
        let what = match outcome {
            Ok(resp) if resp.wrap_info.is_some() => "wrapped".to_string(),
            Ok(_) => "ok".to_string(),
            Err(e) => e.status().to_string(),
        };
        record(&self.events, format!("audit response {} {what}", ctx.path));
        Ok(())
    }
}

impl Observer for Recorder {
    fn request_finished(&self, ctx: &RequestCtx, status: u16) {
        record(
            &self.events,
            format!(
                "finished {} {status} backend-timed={}",
                ctx.path,
                !ctx.timing(Stage::Backend).is_zero()
            ),
        );
    }
}

async fn core_with_recorder(refuse: bool) -> (Arc<crate::node::Core>, Events) {
    let events = Events::default();
    let core = dev_core(events.clone()).await;
    let recorder = Arc::new(Recorder {
        events: events.clone(),
        refuse,
    });
    core.set_pipeline_hooks(PipelineHooks {
        audit: recorder.clone(),
        observer: recorder,
    });
    events.lock().expect("events").clear();
    (core, events)
}

#[tokio::test]
async fn stages_run_in_order_around_the_backend() {
    let (core, events) = core_with_recorder(false).await;
    let resp = call(&core, Operation::Read, "probe/item/a", "root", json!({}))
        .await
        .expect("read");
    assert_eq!(resp.data.expect("data")["path"], json!("item/a"));
    assert_eq!(
        recorded(&events),
        vec![
            "audit request read probe/item/a root ok",
            "backend read",
            "audit response probe/item/a ok",
            "finished probe/item/a 200 backend-timed=true",
        ]
    );
}

#[tokio::test]
async fn the_response_hook_sees_the_final_wrapped_answer() {
    let (core, events) = core_with_recorder(false).await;
    let mut req =
        strongroom_sdk::logical::Request::new(Operation::Read, "probe/item/w").with_token("root");
    req.wrap_ttl = Some(std::time::Duration::from_secs(60));
    let resp = crate::pipeline::RequestHandler::handle_request(&*core, req)
        .await
        .expect("wrapped read");
    assert!(resp.wrap_info.is_some());
    assert!(recorded(&events).contains(&"audit response probe/item/w wrapped".to_string()));
}

#[tokio::test]
async fn a_denied_request_reaches_the_request_hook_with_its_error() {
    let (core, events) = core_with_recorder(false).await;
    let created = call(
        &core,
        Operation::Update,
        "auth/token/create",
        "root",
        json!({"policies": ["default"]}),
    )
    .await
    .expect("token");
    let token = created.auth.expect("auth").client_token;
    events.lock().expect("events").clear();
    let denied = call(
        &core,
        Operation::Read,
        "probe/item/secret",
        &token,
        json!({}),
    )
    .await;
    assert!(matches!(denied, Err(Error::PermissionDenied)), "{denied:?}");
    let seen = recorded(&events);
    assert_eq!(
        seen,
        vec![
            "audit request read probe/item/secret none 403",
            "audit response probe/item/secret 403",
            "finished probe/item/secret 403 backend-timed=false",
        ]
    );
    // An unknown token is refused at authentication, and audited too.
    events.lock().expect("events").clear();
    let unknown = call(&core, Operation::Read, "probe/item/x", "nope", json!({})).await;
    assert!(matches!(unknown, Err(Error::Forbidden(_))), "{unknown:?}");
    assert_eq!(
        recorded(&events)[0],
        "audit request read probe/item/x none 403"
    );
}

#[tokio::test]
async fn a_request_the_hook_refuses_never_reaches_the_backend() {
    let (core, events) = core_with_recorder(true).await;
    let refused = call(
        &core,
        Operation::Update,
        "probe/item/a",
        "root",
        json!({"v": 1}),
    )
    .await;
    assert!(matches!(refused, Err(Error::Internal(_))), "{refused:?}");
    let seen = recorded(&events);
    assert!(!seen.iter().any(|e| e.starts_with("backend")), "{seen:?}");
    assert_eq!(seen[0], "audit request create probe/item/a root ok");
    assert_eq!(seen[1], "audit response probe/item/a 500");
}

#[tokio::test]
async fn the_existence_check_turns_an_update_into_a_create_before_the_acl() {
    let (core, events) = core_with_recorder(false).await;
    call(
        &core,
        Operation::Update,
        "probe/item/new",
        "root",
        json!({"v": 1}),
    )
    .await
    .expect("create");
    call(
        &core,
        Operation::Update,
        "probe/item/old",
        "root",
        json!({"v": 1}),
    )
    .await
    .expect("update");
    let seen = recorded(&events);
    assert_eq!(seen[0], "audit request create probe/item/new root ok");
    assert_eq!(seen[1], "backend create");
    assert_eq!(seen[4], "audit request update probe/item/old root ok");
    assert_eq!(seen[5], "backend update");
}
