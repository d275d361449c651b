//! Helpers for the core's unit tests: a barrier view, and a dev core with a
//! `probe` secrets engine that records what reaches it and its lifecycle.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use strongroom_barrier::Barrier;
use strongroom_sdk::framework::{existence, handler, hook, Backend, Ctx, LogicalBackend, Path};
use strongroom_sdk::logical::{Data, Operation, Request, RequestHandler, Response};
use strongroom_sdk::registry::{Factory, FactoryInput, Registry};
use strongroom_sdk::storage::View;
use strongroom_sdk::Result;
use strongroom_storage::InmemBackend;

use crate::node::{Core, CoreConfig};

/// A view over a fresh, initialised and unsealed in-memory barrier.
pub(crate) async fn unsealed_view() -> View {
    let barrier = Arc::new(Barrier::new(Arc::new(InmemBackend::new())));
    let key = Barrier::generate_key();
    barrier.initialize(&key).await.expect("initialize");
    barrier.unseal(&key).await.expect("unseal");
    barrier.view("test/")
}

/// A shared, ordered record of events.
pub(crate) type Events = Arc<Mutex<Vec<String>>>;

/// Appends `event` to `events`.
pub(crate) fn record(events: &Events, event: impl Into<String>) {
    events.lock().expect("events lock").push(event.into());
}

/// The events recorded so far.
pub(crate) fn recorded(events: &Events) -> Vec<String> {
    events.lock().expect("events lock").clone()
}

struct Probe {
    events: Events,
    /// Which backend instance this is (a rebuild makes a new one).
    generation: usize,
}

/// The `probe` engine: `item/:name` read and write record `backend <op>`
/// (names starting with `old` exist, others are created);
/// `ttl` answers the mount's default lease TTL; the lifecycle hooks record
/// `initialize <n>`, `periodic <n>`, `invalidate <n> <key>`, `cleanup <n>`
/// with the instance number `n`.
pub(crate) fn probe_factory(events: Events) -> Factory {
    let built = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Arc::new(move |_input: FactoryInput| {
        let generation = built.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let state = Arc::new(Probe {
            events: events.clone(),
            generation,
        });
        let backend = Backend::new(
            state,
            vec![
                Path::new("item/{name+}")
                    .op(Operation::Read, handler(item), "Read.")
                    .op(Operation::Update, handler(item), "Write.")
                    .op(Operation::Create, handler(item), "Create.")
                    .exists(existence(|_s: Arc<Probe>, ctx: Ctx| async move {
                        Ok(ctx.request.path.starts_with("item/old"))
                    }))
                    .arbitrary_input(),
                Path::new("ttl").op(Operation::Read, handler(ttl), "The default TTL."),
            ],
            "A probe.",
        )
        .on_initialize(hook(|s: Arc<Probe>, _m| async move {
            record(&s.events, format!("initialize {}", s.generation));
            Ok(())
        }))
        .on_periodic(hook(|s: Arc<Probe>, _m| async move {
            record(&s.events, format!("periodic {}", s.generation));
            Ok(())
        }))
        .on_invalidate(|s: &Probe, key| {
            record(&s.events, format!("invalidate {} {key}", s.generation))
        })
        .on_cleanup(|s: &Probe| record(&s.events, format!("cleanup {}", s.generation)));
        Ok(Arc::new(backend) as Arc<dyn LogicalBackend>)
    })
}

async fn item(s: Arc<Probe>, ctx: Ctx) -> Result<Response> {
    record(
        &s.events,
        format!("backend {}", ctx.request.operation.as_str()),
    );
    let mut data = Data::new();
    data.insert("path".into(), json!(ctx.request.path));
    Ok(Response::data(data))
}

async fn ttl(_s: Arc<Probe>, ctx: Ctx) -> Result<Response> {
    let mut data = Data::new();
    data.insert(
        "default_lease_ttl".into(),
        json!(ctx.mount.default_lease_ttl.as_secs()),
    );
    Ok(Response::data(data))
}

/// A dev core (unsealed, active, root token `root`) with `probe/` mounted
/// (and the dev `secret/` mount, which is a probe too: the core cannot
/// depend on the KV crate).
pub(crate) async fn dev_core(events: Events) -> Arc<Core> {
    let core = Core::new(
        Arc::new(InmemBackend::new()),
        CoreConfig::default(),
        Registry::new()
            .secrets("probe", probe_factory(events.clone()))
            .secrets("kv", probe_factory(Events::default())),
    );
    core.init_dev(Some("root".into())).await.expect("dev init");
    call(
        &core,
        Operation::Update,
        "sys/mounts/probe",
        "root",
        json!({"type": "probe"}),
    )
    .await
    .expect("mount probe");
    core
}

/// Sends one request with `token` and `data` through the pipeline.
pub(crate) async fn call(
    core: &Core,
    op: Operation,
    path: &str,
    token: &str,
    data: Value,
) -> Result<Response> {
    let Value::Object(data) = data else {
        panic!("data must be an object")
    };
    core.handle_request(Request::new(op, path).with_data(data).with_token(token))
        .await
}
