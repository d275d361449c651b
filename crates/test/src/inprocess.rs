//! Shared harness of the in-process tests: a core behind the real HTTP
//! router (axum `oneshot`, no sockets), JSON calls, init/unseal, and a
//! leasing test engine whose revocations can be observed.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use strongroom_core::{Core, CoreConfig};
use strongroom_http::{router, HttpOptions};
use strongroom_sdk::framework::{
    handler, Backend as FrameworkBackend, BackendRequest, Ctx, LogicalBackend, MountContext, Path,
    SpecialPaths,
};
use strongroom_sdk::logical::{Lease, Operation, Response};
use strongroom_sdk::registry::{FactoryInput, Registry};
use strongroom_sdk::storage::Backend;
use tower::ServiceExt;

/// Secrets revoked by the `leasing` engine, by their `id`.
pub type Revoked = Arc<Mutex<Vec<String>>>;

/// The registry every in-process core gets: the binary's own
/// ([`strongroom::registry`]: KV, AppRole, Kubernetes, GCP) plus test
/// engines: `leasing` reporting its revocations to `revoked`, the
/// `test-login` auth method, and `test-auth`, an auth type backed by KV
/// (to exercise the auth table with a plain backend).
pub fn registry_with(revoked: Revoked) -> Registry {
    let leasing: strongroom_sdk::registry::Factory = Arc::new(move |_input: FactoryInput| {
        Ok(Arc::new(Leasing {
            inner: leasing_backend(),
            revoked: revoked.clone(),
        }) as Arc<dyn LogicalBackend>)
    });
    let login: strongroom_sdk::registry::Factory =
        Arc::new(|_input: FactoryInput| Ok(Arc::new(login_backend()) as Arc<dyn LogicalBackend>));
    let registry = strongroom::registry();
    let kv = registry
        .secrets_factory("kv")
        .cloned()
        .expect("the binary mounts kv");
    registry
        .secrets("leasing", leasing)
        .auth("test-auth", kv)
        .auth("test-login", login)
}

/// A sealed, uninitialised core over `physical`.
pub fn core_on(physical: Arc<dyn Backend>) -> Arc<Core> {
    Core::new(
        physical,
        CoreConfig::default(),
        registry_with(Revoked::default()),
    )
}

/// A sealed, uninitialised in-memory core mounting from `registry` (for
/// tests that add a backend type of their own to [`registry_with`]'s).
pub fn inmem_core_from(registry: Registry) -> Arc<Core> {
    Core::new(
        Arc::new(strongroom_storage::InmemBackend::new()),
        CoreConfig::default(),
        registry,
    )
}

/// A core whose `leasing` engine reports revocations to `revoked`.
pub fn core_with(physical: Arc<dyn Backend>, revoked: Revoked) -> Arc<Core> {
    Core::new(physical, CoreConfig::default(), registry_with(revoked))
}

/// One HTTP call through the router: (status, JSON body or null).
pub async fn call(
    core: &Arc<Core>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    call_with(core, method, path, token, body, &[]).await
}

/// [`call`] with extra headers.
pub async fn call_with(
    core: &Arc<Core>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let body = body.map(|b| b.to_string().into_bytes());
    call_raw(core, method, path, token, body, headers).await
}

/// [`call_with`] with the body as raw bytes (which need not be JSON, nor
/// UTF-8).
pub async fn call_raw(
    core: &Arc<Core>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let app = router(core.clone(), HttpOptions::default());
    let mut req = http::Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.map(Body::from).unwrap_or_else(Body::empty);
    let resp = app.oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, value)
}

/// What `sys/init` handed out.
pub struct Init {
    /// Key shares, hex.
    pub keys_hex: Vec<String>,
    /// Key shares, base64.
    pub keys_b64: Vec<String>,
    /// The root token.
    pub root: String,
}

/// Initialises with `shares`/`threshold` (the core stays sealed).
pub async fn init(core: &Arc<Core>, shares: u64, threshold: u64) -> Init {
    let (s, v) = call(
        core,
        "PUT",
        "/v1/sys/init",
        None,
        Some(json!({"secret_shares": shares, "secret_threshold": threshold})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let strings = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    Init {
        keys_hex: strings("keys"),
        keys_b64: strings("keys_base64"),
        root: v["root_token"].as_str().unwrap().to_string(),
    }
}

/// Submits one unseal key share.
pub async fn unseal(core: &Arc<Core>, key: &str) -> (u16, Value) {
    call(
        core,
        "PUT",
        "/v1/sys/unseal",
        None,
        Some(json!({"key": key})),
    )
    .await
}

/// An in-memory core, initialised with one share and unsealed; returns the
/// core, its root token and its unseal key.
pub async fn unsealed_inmem() -> (Arc<Core>, String, String) {
    let core = core_on(Arc::new(strongroom_storage::InmemBackend::new()));
    let init = init(&core, 1, 1).await;
    let (s, _) = unseal(&core, &init.keys_b64[0]).await;
    assert_eq!(s, 200);
    (core, init.root, init.keys_b64[0].clone())
}

/// An in-memory core with the auth method `kind` enabled at its own name;
/// returns the core and its root token.
pub async fn with_auth_method(kind: &str) -> (Arc<Core>, String) {
    let (core, root, _) = unsealed_inmem().await;
    let (s, v) = call(
        &core,
        "POST",
        &format!("/v1/sys/auth/{kind}"),
        Some(&root),
        Some(json!({ "type": kind })),
    )
    .await;
    assert_eq!(s, 204, "{v}");
    (core, root)
}

/// The `leasing` engine: reading `<name>?ttl=<secs>` answers a secret
/// leased for that long, whose revocation is recorded.
struct Leasing {
    inner: FrameworkBackend<()>,
    revoked: Revoked,
}

fn leasing_backend() -> FrameworkBackend<()> {
    async fn read(_s: Arc<()>, ctx: Ctx) -> strongroom_sdk::Result<Response> {
        let ttl = ctx
            .request
            .data
            .get("ttl")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut internal = serde_json::Map::new();
        internal.insert("id".into(), json!(ctx.request.path));
        let mut data = serde_json::Map::new();
        data.insert("secret".into(), json!("s3cr3t"));
        let mut resp = Response::data(data);
        resp.lease = Some(Lease {
            lease_id: String::new(),
            lease_duration: ttl,
            renewable: true,
            internal: Some(internal),
        });
        Ok(resp)
    }
    FrameworkBackend::new(
        Arc::new(()),
        vec![Path::new("{name+}").arbitrary_input().op(
            Operation::Read,
            handler(read),
            "Read a leased secret.",
        )],
        "Test engine issuing leased secrets.",
    )
}

/// The `test-login` auth method: `login` (unauthenticated) asks for a token
/// with the request's `policies`, `ttl`, `num_uses`, `bound_cidrs` and
/// `token_type` and `strictly_bind_ip`, as a real method would after checking credentials.
fn login_backend() -> FrameworkBackend<()> {
    async fn login(_s: Arc<()>, ctx: Ctx) -> strongroom_sdk::Result<Response> {
        let d = &ctx.request.data;
        let strings = |k: &str| -> Vec<String> {
            d.get(k)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut metadata = serde_json::Map::new();
        metadata.insert("user".into(), json!("tester"));
        Ok(Response {
            issue: Some(strongroom_sdk::logical::TokenIssue {
                policies: strings("policies"),
                metadata,
                display_name: "tester".into(),
                ttl: std::time::Duration::from_secs(
                    d.get("ttl").and_then(|v| v.as_u64()).unwrap_or(0),
                ),
                num_uses: d.get("num_uses").and_then(|v| v.as_u64()).unwrap_or(0),
                bound_cidrs: strings("bound_cidrs"),
                token_type: d
                    .get("token_type")
                    .and_then(|v| v.as_str())
                    .and_then(strongroom_sdk::token_type::TokenType::parse)
                    .unwrap_or_default(),
                strictly_bind_ip: d
                    .get("strictly_bind_ip")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
                ..Default::default()
            }),
            ..Default::default()
        })
    }
    FrameworkBackend::new(
        Arc::new(()),
        vec![Path::new("login")
            .arbitrary_input()
            .op(Operation::Update, handler(login), "Log in.")],
        "Test auth method issuing tokens.",
    )
    .special_paths(SpecialPaths {
        unauthenticated: strongroom_sdk::framework::PathSet::new(&["login"]),
        root: strongroom_sdk::framework::PathSet::default(),
    })
}

#[async_trait::async_trait]
impl LogicalBackend for Leasing {
    async fn handle(&self, req: BackendRequest) -> strongroom_sdk::Result<Response> {
        self.inner.handle(req).await
    }
    async fn exists(&self, req: &BackendRequest) -> strongroom_sdk::Result<Option<bool>> {
        self.inner.exists(req).await
    }
    fn help(&self, mount: &MountContext, path: &str) -> strongroom_sdk::Result<Value> {
        self.inner.help(mount, path)
    }
    fn openapi_paths(&self, mount_path: &str) -> serde_json::Map<String, Value> {
        self.inner.openapi_paths(mount_path)
    }
    fn special_paths(&self) -> &SpecialPaths {
        LogicalBackend::special_paths(&self.inner)
    }
    async fn revoke_secret(&self, req: BackendRequest) -> strongroom_sdk::Result<()> {
        let id = req.request.data["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.revoked.lock().unwrap().push(id);
        Ok(())
    }
}
