//! The backend framework: a backend is data. It declares a list of paths,
//! each with a pattern, typed fields, the operations it answers and help
//! text; the framework routes a request to the matching path, decodes its
//! fields, warns about unknown ones, runs the existence check that decides
//! create vs update, and generates `?help=1` text and an OpenAPI document
//! from the same declaration.

mod decode;
mod field;
mod pattern;

use std::any::TypeId;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};

pub use decode::{double_option, struct_fields, undeclared_fields};
pub use field::{kv_pairs, parse_go_bool, weak_string, Field, FieldData, FieldType};
pub use pattern::{Captures, Pattern};

use crate::logical::{Operation, Request, Response};
use crate::storage::View;
use crate::{Error, Result};

/// Whether `name` matches OpenBao's generic name rule (`framework.
/// GenericNameRegex`, `\w([\w.-]*\w)?`): word characters, with `-` and
/// `.` allowed inside. Role names of several auth methods follow it.
pub fn is_generic_name(name: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match name.as_bytes() {
        [] => false,
        [one] => word(*one),
        [first, middle @ .., last] => {
            word(*first)
                && word(*last)
                && middle.iter().all(|b| word(*b) || *b == b'-' || *b == b'.')
        }
    }
}

/// The LIST answer of the entries directly under `prefix` in `storage`
/// (folders left out): how auth methods list their roles.
pub async fn list_entries(storage: &View, prefix: &str) -> Result<Response> {
    let keys: Vec<String> = storage
        .list(prefix)
        .await?
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .collect();
    Response::keys(keys)
}

/// What a backend knows about the mount it serves.
#[derive(Debug, Clone, Default)]
pub struct MountContext {
    /// The mount path with trailing slash, e.g. `secret/` or `auth/approle/`.
    pub path: String,
    /// The mount's accessor.
    pub accessor: String,
    /// The backend type, e.g. `kv`.
    pub kind: String,
    /// The effective default lease TTL (mount tune, else system).
    pub default_lease_ttl: Duration,
    /// The effective maximum lease TTL.
    pub max_lease_ttl: Duration,
    /// The mount's options (e.g. `version` for kv).
    pub options: Map<String, Value>,
}

/// A request handed to a backend: the request with its path relative to the
/// mount, the mount's private storage, and the mount's context.
#[derive(Debug, Clone)]
pub struct BackendRequest {
    /// The request; `path` is relative to the mount.
    pub request: Request,
    /// Storage private to this mount.
    pub storage: View,
    /// The mount being served.
    pub mount: Arc<MountContext>,
    /// What the core attaches for its own built-in backends (the token
    /// store's entry of the caller). Backends outside the core cannot name
    /// those types, so they cannot reach into the core's internals.
    pub extensions: http::Extensions,
}

impl BackendRequest {
    /// A request for a backend, with no extensions.
    pub fn new(request: Request, storage: View, mount: Arc<MountContext>) -> Self {
        BackendRequest {
            request,
            storage,
            mount,
            extensions: http::Extensions::new(),
        }
    }
}

/// What a path handler receives.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The request; `path` is relative to the mount.
    pub request: Request,
    /// The request data decoded through the path's fields.
    pub fields: FieldData,
    /// Storage private to this mount.
    pub storage: View,
    /// The mount being served.
    pub mount: Arc<MountContext>,
    /// The core's attachments (see [`BackendRequest::extensions`]).
    pub extensions: http::Extensions,
}

impl Ctx {
    /// Decodes the request through the path's declared fields into `T`
    /// (see [`FieldData::decode`]).
    pub fn decode<T: serde::de::DeserializeOwned + 'static>(&self) -> Result<T> {
        self.fields.decode()
    }

    /// Decodes only what the request gives into `T`, ignoring declared
    /// defaults (see [`FieldData::decode_given`]).
    pub fn decode_given<T: serde::de::DeserializeOwned + 'static>(&self) -> Result<T> {
        self.fields.decode_given()
    }
}

/// A path operation's handler.
pub type Handler<S> =
    Arc<dyn Fn(Arc<S>, Ctx) -> BoxFuture<'static, Result<Response>> + Send + Sync>;

/// An existence check: does the object at this path exist (so a write is an
/// update rather than a create)?
pub type ExistenceCheck<S> =
    Arc<dyn Fn(Arc<S>, Ctx) -> BoxFuture<'static, Result<bool>> + Send + Sync>;

/// Wraps an async function as a [`Handler`].
pub fn handler<S, F, Fut>(f: F) -> Handler<S>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response>> + Send + 'static,
{
    Arc::new(move |s, c| Box::pin(f(s, c)))
}

/// Wraps an async function as an [`ExistenceCheck`].
pub fn existence<S, F, Fut>(f: F) -> ExistenceCheck<S>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<bool>> + Send + 'static,
{
    Arc::new(move |s, c| Box::pin(f(s, c)))
}

/// One declared path of a backend.
pub struct Path<S> {
    pattern: Pattern,
    fields: Arc<[Field]>,
    operations: Vec<(Operation, Handler<S>, &'static str)>,
    existence: Option<ExistenceCheck<S>>,
    arbitrary_input: bool,
    synopsis: &'static str,
    description: &'static str,
    decodes: Vec<Decodes>,
    /// The ids of `decodes` (`None` when empty), shared with each request's
    /// [`FieldData`].
    decode_ids: Option<Arc<[TypeId]>>,
}

/// A struct a path's handlers decode, as declared with [`Path::decodes`].
struct Decodes {
    id: TypeId,
    name: &'static str,
    /// The struct's names the path does not declare, or why it cannot be
    /// decoded at all (checked when the backend is built).
    check: fn(&[Field]) -> std::result::Result<Vec<&'static str>, String>,
}

impl<S> Path<S> {
    /// A path matching `pattern` (see [`Pattern`]).
    pub fn new(pattern: &str) -> Self {
        Path {
            pattern: Pattern::new(pattern),
            fields: Arc::from(Vec::new()),
            operations: Vec::new(),
            existence: None,
            arbitrary_input: false,
            synopsis: "",
            description: "",
            decodes: Vec::new(),
            decode_ids: None,
        }
    }

    /// Declares a struct the path's handlers decode with [`Ctx::decode`]
    /// or [`Ctx::decode_given`] (builder style). [`Backend::new`] checks
    /// that every field of `T` is a declared field of the path, so a
    /// misspelt or undeclared name fails every test that builds the
    /// backend rather than answering a request with a 500. Once a path
    /// declares one struct, debug builds refuse (as an internal error) to
    /// decode an undeclared one through it, so the list stays complete.
    pub fn decodes<T: serde::de::DeserializeOwned + 'static>(mut self) -> Self {
        self.decodes.push(Decodes {
            id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
            check: decode::undeclared_fields::<T>,
        });
        self.decode_ids = Some(self.decodes.iter().map(|d| d.id).collect());
        self
    }

    /// The problems with the structs declared by [`Path::decodes`], one
    /// line each (empty when every struct field is a declared field).
    pub fn decode_problems(&self) -> Vec<String> {
        self.decodes
            .iter()
            .filter_map(|d| match (d.check)(&self.fields) {
                Ok(missing) if missing.is_empty() => None,
                Ok(missing) => Some(format!(
                    "path {:?}: {} decodes undeclared fields {missing:?}",
                    self.pattern.source(),
                    d.name
                )),
                Err(e) => Some(format!("path {:?}: {e}", self.pattern.source())),
            })
            .collect()
    }

    /// Declares the fields (builder style).
    pub fn fields(mut self, fields: Vec<Field>) -> Self {
        self.fields = Arc::from(fields);
        self
    }

    /// Adds an operation with a one-line summary (builder style).
    pub fn op(mut self, op: Operation, h: Handler<S>, summary: &'static str) -> Self {
        self.operations.push((op, h, summary));
        self
    }

    /// Sets the existence check (builder style).
    pub fn exists(mut self, check: ExistenceCheck<S>) -> Self {
        self.existence = Some(check);
        self
    }

    /// Accepts any data without unknown-field warnings (builder style).
    pub fn arbitrary_input(mut self) -> Self {
        self.arbitrary_input = true;
        self
    }

    /// Sets the help text (builder style).
    pub fn help(mut self, synopsis: &'static str, description: &'static str) -> Self {
        self.synopsis = synopsis;
        self.description = description;
        self
    }

    fn handler_for(&self, op: Operation) -> Option<&Handler<S>> {
        self.operations
            .iter()
            .find(|(o, _, _)| *o == op)
            .map(|(_, h, _)| h)
    }
}

/// Paths matched by prefix (`login*`) or exactly, relative to the mount.
#[derive(Debug, Clone, Default)]
pub struct PathSet(Vec<String>);

impl PathSet {
    /// Builds a set; an entry ending in `*` matches by prefix.
    pub fn new(entries: &[&str]) -> Self {
        PathSet(entries.iter().map(|s| s.to_string()).collect())
    }

    /// Whether `path` is in the set.
    pub fn contains(&self, path: &str) -> bool {
        self.0.iter().any(|e| match e.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => e == path,
        })
    }
}

/// Paths that get special treatment by the core.
#[derive(Debug, Clone, Default)]
pub struct SpecialPaths {
    /// Reachable without a token (login endpoints).
    pub unauthenticated: PathSet,
    /// Require `sudo` (root) capability.
    pub root: PathSet,
}

/// The object-safe face of a backend, which the router holds.
#[async_trait::async_trait]
pub trait LogicalBackend: Send + Sync + 'static {
    /// Answers a request (path relative to the mount).
    async fn handle(&self, req: BackendRequest) -> Result<Response>;

    /// Runs the matching path's existence check: `None` when the path has
    /// none (the write stays an update).
    async fn exists(&self, req: &BackendRequest) -> Result<Option<bool>>;

    /// The `?help=1` answer for a path relative to the mount.
    fn help(&self, mount: &MountContext, path: &str) -> Result<Value>;

    /// The OpenAPI `paths` object of this backend mounted at `mount_path`.
    fn openapi_paths(&self, mount_path: &str) -> Map<String, Value>;

    /// The paths that skip authentication or need sudo.
    fn special_paths(&self) -> &SpecialPaths;

    /// Undoes a secret this backend leased, when its lease ends. The
    /// request's data is the `internal` data the backend put in the lease;
    /// its path is the read path, relative to the mount. Backends that
    /// lease nothing keep the default.
    async fn revoke_secret(&self, _req: BackendRequest) -> Result<()> {
        Ok(())
    }

    /// Lifecycle: called once when the mount starts serving on an active
    /// node (mounted, or restored at activation), before its first request.
    async fn initialize(&self, _mount: &Mounted) -> Result<()> {
        Ok(())
    }

    /// Lifecycle: another node wrote `key` (relative to the mount's
    /// storage); a standby drops what it cached of it.
    fn invalidate(&self, _key: &str) {}

    /// Lifecycle: called about once a minute while the node is active
    /// (tidying, rotations). An error is logged; the next tick runs anyway.
    async fn periodic(&self, _mount: &Mounted) -> Result<()> {
        Ok(())
    }

    /// Lifecycle: the mount stops serving (unmounted, sealed, or the node
    /// stepped down): stop background work and drop caches.
    async fn cleanup(&self) {}

    /// The role a login request names (OpenBao's `ResolveRoleOperation`),
    /// for role-based quotas: `None` when the request names none or the
    /// method has no roles. Asked before authentication, only when a quota
    /// for a role of this mount exists.
    async fn resolve_role(&self, _req: &BackendRequest) -> Result<Option<String>> {
        Ok(None)
    }
}

/// The role resolver of methods whose logins name their role in a `role`
/// field (Kubernetes, GCP).
pub fn role_field<S: Send + Sync + 'static>() -> RoleResolver<S> {
    Arc::new(|_, req| {
        Box::pin(async move {
            Ok(req
                .request
                .data
                .get("role")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty())
                .map(str::to_string))
        })
    })
}

/// A framework backend's role resolver (see
/// [`LogicalBackend::resolve_role`]).
pub type RoleResolver<S> = Arc<
    dyn for<'a> Fn(&'a S, &'a BackendRequest) -> BoxFuture<'a, Result<Option<String>>>
        + Send
        + Sync,
>;

/// What the lifecycle hooks are given: the mount's storage and its current
/// context (which a tune may have replaced since the backend was built).
#[derive(Debug, Clone)]
pub struct Mounted {
    /// Storage private to this mount.
    pub storage: View,
    /// The mount, as currently tuned.
    pub mount: Arc<MountContext>,
}

/// A lifecycle hook of a framework backend (initialize, periodic).
pub type Hook<S> = Arc<dyn Fn(Arc<S>, Mounted) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Wraps an async function as a [`Hook`].
pub fn hook<S, F, Fut>(f: F) -> Hook<S>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Mounted) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    Arc::new(move |s, m| Box::pin(f(s, m)))
}

/// The invalidation hook of a framework backend: the state and the key.
type InvalidateHook<S> = Arc<dyn Fn(&S, &str) + Send + Sync>;

/// The cleanup hook of a framework backend.
type CleanupHook<S> = Arc<dyn Fn(&S) + Send + Sync>;

/// The lifecycle hooks a framework backend declares (all optional).
struct Hooks<S> {
    initialize: Option<Hook<S>>,
    periodic: Option<Hook<S>>,
    invalidate: Option<InvalidateHook<S>>,
    cleanup: Option<CleanupHook<S>>,
    resolve_role: Option<RoleResolver<S>>,
}

impl<S> Default for Hooks<S> {
    fn default() -> Self {
        Hooks {
            initialize: None,
            periodic: None,
            invalidate: None,
            cleanup: None,
            resolve_role: None,
        }
    }
}

/// A framework backend over state `S`.
pub struct Backend<S> {
    state: Arc<S>,
    paths: Vec<Path<S>>,
    special: SpecialPaths,
    help: &'static str,
    hooks: Hooks<S>,
}

impl<S: Send + Sync + 'static> Backend<S> {
    /// The help of the whole backend: its description and every path with
    /// its synopsis, laid out as OpenBao's `path-help` on a mount root.
    fn root_help(&self) -> String {
        let mut text = format!(
            "## DESCRIPTION\n\n{}\n\n## PATHS\n\n\
             The following paths are supported by this backend. To view help for\n\
             any of the paths below, use the help command with any route matching\n\
             the path pattern. Note that depending on the policy of your auth token,\n\
             you may or may not be able to access certain paths.\n\n",
            self.help.trim()
        );
        let mut paths: Vec<_> = self.paths.iter().collect();
        paths.sort_by(|a, b| a.pattern.source().cmp(b.pattern.source()));
        for p in paths {
            text.push_str(&format!(
                "    {}\n        {}\n\n",
                p.pattern.source(),
                p.synopsis.trim()
            ));
        }
        text
    }

    /// A backend with its state, paths and general help.
    ///
    /// # Panics
    ///
    /// When a struct declared with [`Path::decodes`] names a field its
    /// path does not declare (or is not a plain struct). That is a
    /// programming error, independent of any input or configuration: it
    /// fails every test that builds the backend, so it never ships.
    pub fn new(state: Arc<S>, paths: Vec<Path<S>>, help: &'static str) -> Self {
        let problems: Vec<String> = paths.iter().flat_map(Path::decode_problems).collect();
        assert!(
            problems.is_empty(),
            "backend declares structs that read undeclared fields:\n{}",
            problems.join("\n")
        );
        Backend {
            state,
            paths,
            special: SpecialPaths::default(),
            help,
            hooks: Hooks::default(),
        }
    }

    /// Runs `f` when the mount starts serving (builder style).
    pub fn on_initialize(mut self, f: Hook<S>) -> Self {
        self.hooks.initialize = Some(f);
        self
    }

    /// Runs `f` about once a minute on an active node (builder style).
    pub fn on_periodic(mut self, f: Hook<S>) -> Self {
        self.hooks.periodic = Some(f);
        self
    }

    /// Runs `f` when another node wrote a key of this mount (builder style).
    pub fn on_invalidate(mut self, f: impl Fn(&S, &str) + Send + Sync + 'static) -> Self {
        self.hooks.invalidate = Some(Arc::new(f));
        self
    }

    /// Runs `f` when the mount stops serving (builder style).
    pub fn on_cleanup(mut self, f: impl Fn(&S) + Send + Sync + 'static) -> Self {
        self.hooks.cleanup = Some(Arc::new(f));
        self
    }

    /// Answers [`LogicalBackend::resolve_role`] with `f` (builder style).
    pub fn on_resolve_role(mut self, f: RoleResolver<S>) -> Self {
        self.hooks.resolve_role = Some(f);
        self
    }

    /// Declares special paths (builder style).
    pub fn special_paths(mut self, special: SpecialPaths) -> Self {
        self.special = special;
        self
    }

    /// The backend's state.
    pub fn state(&self) -> &Arc<S> {
        &self.state
    }

    fn route(&self, path: &str) -> Option<(&Path<S>, Captures)> {
        self.paths
            .iter()
            .find_map(|p| p.pattern.matches(path).map(|c| (p, c)))
    }

    fn ctx(&self, path: &Path<S>, caps: Captures, req: &BackendRequest) -> Ctx {
        Ctx {
            fields: FieldData::new(
                crate::json::clone_map(&req.request.data),
                caps,
                path.fields.clone(),
            )
            .with_decodes(path.decode_ids.clone()),
            request: req.request.clone(),
            storage: req.storage.clone(),
            mount: req.mount.clone(),
            extensions: req.extensions.clone(),
        }
    }
}

#[async_trait::async_trait]
impl<S: Send + Sync + 'static> LogicalBackend for Backend<S> {
    async fn handle(&self, req: BackendRequest) -> Result<Response> {
        let (path, caps) = self
            .route(&req.request.path)
            .ok_or(Error::UnsupportedPath)?;
        let op = req.request.operation;
        // A path without a create handler answers creates with its update
        // handler, as Vault's framework does.
        let handler = path
            .handler_for(op)
            .or_else(|| (op == Operation::Create).then(|| path.handler_for(Operation::Update))?)
            .ok_or(Error::UnsupportedOperation)?;
        // The request moves into the context: one copy of the data (for the
        // decoded fields) per request, not two.
        let BackendRequest {
            request,
            storage,
            mount,
            extensions,
        } = req;
        let ctx = Ctx {
            fields: FieldData::new(
                crate::json::clone_map(&request.data),
                caps,
                path.fields.clone(),
            )
            .with_decodes(path.decode_ids.clone()),
            request,
            storage,
            mount,
            extensions,
        };
        let unknown = if path.arbitrary_input {
            Vec::new()
        } else {
            ctx.fields.validate()?;
            ctx.fields.unknown_fields()
        };
        let mut resp = handler(self.state.clone(), ctx).await?;
        // OpenBao attaches the warning only to answers that have a body: a
        // write answered with 204 stays a 204.
        if !unknown.is_empty() && !resp.is_empty() {
            resp.warnings.push(format!(
                "Endpoint ignored these unrecognized parameters: [{}]",
                unknown.join(" ")
            ));
        }
        Ok(resp)
    }

    async fn exists(&self, req: &BackendRequest) -> Result<Option<bool>> {
        let Some((path, caps)) = self.route(&req.request.path) else {
            return Ok(None);
        };
        let Some(check) = &path.existence else {
            return Ok(None);
        };
        let ctx = self.ctx(path, caps, req);
        check(self.state.clone(), ctx).await.map(Some)
    }

    fn help(&self, mount: &MountContext, rel: &str) -> Result<Value> {
        // The mount root gets the backend's own help, as in OpenBao, even
        // when a catch-all route would match the empty path.
        let route = if rel.trim_matches('/').is_empty() {
            None
        } else {
            self.route(rel)
        };
        let Some((path, _)) = route else {
            return Ok(json!({
                "help": self.root_help(),
                "openapi": openapi_document(self.openapi_paths(&mount.path)),
                "see_also": null,
            }));
        };
        let mut text = format!(
            "Request:        {rel}\nMatching Route: {}\n\n{}\n\n",
            path.pattern.source(),
            path.synopsis.trim()
        );
        if !path.fields.is_empty() {
            text.push_str("## PARAMETERS\n\n");
            for f in path.fields.iter() {
                text.push_str(&format!(
                    "    {} ({})\n\n        {}\n\n",
                    f.name,
                    f.ty.help_name(),
                    f.description
                ));
                if let Some(values) = f.allowed {
                    text.push_str(&format!(
                        "        Allowed values: {}\n\n",
                        values.join(", ")
                    ));
                }
            }
        }
        text.push_str("## DESCRIPTION\n\n");
        text.push_str(path.description.trim());
        // As in OpenBao, a help answer's document names the path relative
        // to its mount; the whole-server document uses full paths.
        let mut paths = Map::new();
        paths.insert(path.pattern.openapi_path(), path_openapi(path));
        Ok(json!({
            "help": text,
            "openapi": openapi_document(paths),
            "see_also": null,
        }))
    }

    fn openapi_paths(&self, mount_path: &str) -> Map<String, Value> {
        self.paths
            .iter()
            .map(|p| {
                (
                    format!("/{mount_path}{}", &p.pattern.openapi_path()[1..]),
                    path_openapi(p),
                )
            })
            .collect()
    }

    fn special_paths(&self) -> &SpecialPaths {
        &self.special
    }

    async fn initialize(&self, mount: &Mounted) -> Result<()> {
        match &self.hooks.initialize {
            Some(f) => f(self.state.clone(), mount.clone()).await,
            None => Ok(()),
        }
    }

    fn invalidate(&self, key: &str) {
        if let Some(f) = &self.hooks.invalidate {
            f(&self.state, key);
        }
    }

    async fn periodic(&self, mount: &Mounted) -> Result<()> {
        match &self.hooks.periodic {
            Some(f) => f(self.state.clone(), mount.clone()).await,
            None => Ok(()),
        }
    }

    async fn cleanup(&self) {
        if let Some(f) = &self.hooks.cleanup {
            f(&self.state);
        }
    }

    async fn resolve_role(&self, req: &BackendRequest) -> Result<Option<String>> {
        match &self.hooks.resolve_role {
            Some(f) => f(&self.state, req).await,
            None => Ok(None),
        }
    }
}

fn path_openapi<S>(path: &Path<S>) -> Value {
    let captures = path.pattern.capture_names();
    let params: Vec<Value> = captures
        .iter()
        .map(|name| {
            let desc = path
                .fields
                .iter()
                .find(|f| f.name == *name)
                .map(|f| f.description)
                .unwrap_or("");
            json!({"name": name, "description": desc, "in": "path",
                   "schema": {"type": "string"}, "required": true})
        })
        .collect();
    let body_fields: Map<String, Value> = path
        .fields
        .iter()
        .filter(|f| !captures.contains(&f.name))
        .map(|f| {
            let mut schema = f.openapi_schema();
            if let Some(obj) = schema.as_object_mut() {
                obj.insert("description".into(), Value::from(f.description));
                if let Some(d) = &f.default {
                    obj.insert("default".into(), d.clone());
                }
            }
            (f.name.to_string(), schema)
        })
        .collect();
    let mut item = Map::new();
    item.insert("description".into(), Value::from(path.synopsis.trim()));
    item.insert("parameters".into(), Value::from(params));
    let ops: HashMap<Operation, &'static str> =
        path.operations.iter().map(|(o, _, s)| (*o, *s)).collect();
    if ops.contains_key(&Operation::Create) || path.existence.is_some() {
        item.insert("x-vault-createSupported".into(), Value::Bool(true));
    }
    let body = || json!({"content": {"application/json": {"schema": {"type": "object", "properties": body_fields}}}});
    let mut add = |method: &str, summary: &str, with_body: bool, list: bool| {
        let mut op = json!({"summary": summary, "responses": {"200": {"description": "OK"}}});
        if with_body && !body_fields.is_empty() {
            op["requestBody"] = body();
        }
        if list {
            op["parameters"] = json!([{"name": "list", "in": "query", "required": true,
                "schema": {"type": "string", "enum": ["true"]}}]);
        }
        item.insert(method.into(), op);
    };
    if let Some(s) = ops.get(&Operation::Read) {
        add("get", s, false, false);
    } else if let Some(s) = ops.get(&Operation::List) {
        add("get", s, false, true);
    }
    if let Some(s) = ops
        .get(&Operation::Update)
        .or_else(|| ops.get(&Operation::Create))
    {
        add("post", s, true, false);
    }
    if let Some(s) = ops.get(&Operation::Patch) {
        add("patch", s, true, false);
    }
    if let Some(s) = ops.get(&Operation::Delete) {
        add("delete", s, false, false);
    }
    Value::Object(item)
}

/// Wraps OpenAPI `paths` into a whole OpenAPI 3 document.
pub fn openapi_document(paths: Map<String, Value>) -> Value {
    json!({
        "openapi": "3.0.2",
        "info": {
            "title": "Strongroom API",
            "description": "HTTP API compatible with OpenBao and Vault. All API routes are prefixed with `/v1/`.",
            "version": env!("CARGO_PKG_VERSION"),
            "license": {"name": "Mozilla Public License 2.0", "url": "https://www.mozilla.org/en-US/MPL/2.0"}
        },
        "paths": paths,
        "components": {"schemas": {}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_names_follow_openbaos_rule() {
        for ok in ["a", "_", "dev-role", "My.Role_1", "a-b.c"] {
            assert!(is_generic_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", ".a", "a.", "a/b", "a b", "é", "a*"] {
            assert!(!is_generic_name(bad), "{bad}");
        }
    }

    #[test]
    fn allowed_values_show_in_help_and_openapi() {
        async fn read(_: Arc<()>, _: Ctx) -> Result<Response> {
            Ok(Response::empty())
        }
        let b = Backend::new(
            Arc::new(()),
            vec![Path::new("role/{name}")
                .fields(vec![
                    Field::new("name", FieldType::String, "Name."),
                    Field::new("kind", FieldType::String, "Kind.").allowed(&["a", "b"]),
                ])
                .op(Operation::Update, handler(read), "Write.")],
            "Test.",
        );
        let mount = MountContext {
            path: "auth/x/".into(),
            ..Default::default()
        };
        let help = b.help(&mount, "role/r").unwrap();
        let text = help["help"].as_str().unwrap();
        assert!(
            text.contains("kind (string)\n\n        Kind.\n\n        Allowed values: a, b"),
            "{text}"
        );
        let paths = b.openapi_paths(&mount.path);
        let schema = &paths["/auth/x/role/{name}"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"]["properties"]["kind"];
        assert_eq!(schema["enum"], json!(["a", "b"]), "{schema}");
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct NameParam {
        name: String,
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Misspelt {
        nmae: Option<String>,
    }

    async fn decode_name(_: Arc<()>, ctx: Ctx) -> Result<Response> {
        let NameParam { name } = ctx.decode()?;
        Ok(Response::data(
            json!({ "name": name })
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ))
    }

    fn named_path() -> Path<()> {
        Path::new("role/{name}")
            .fields(vec![Field::new("name", FieldType::String, "Name.")])
            .op(Operation::Update, handler(decode_name), "Write.")
    }

    #[test]
    fn declared_structs_are_checked_against_the_fields() {
        assert!(named_path()
            .decodes::<NameParam>()
            .decode_problems()
            .is_empty());
        // The declaration may come before the fields: checked as built.
        let p = Path::<()>::new("role/{name}")
            .decodes::<Misspelt>()
            .fields(vec![Field::new("name", FieldType::String, "Name.")]);
        assert_eq!(
            p.decode_problems(),
            [format!(
                "path \"role/{{name}}\": {} decodes undeclared fields [\"nmae\"]",
                std::any::type_name::<Misspelt>()
            )]
        );
        let p = named_path().decodes::<HashMap<String, String>>();
        assert_eq!(p.decode_problems().len(), 1, "a map is not a struct");
    }

    #[test]
    #[should_panic(expected = "decodes undeclared fields [\"nmae\"]")]
    fn a_backend_with_an_undeclared_decoded_field_cannot_be_built() {
        let _ = Backend::new(
            Arc::new(()),
            vec![named_path().decodes::<NameParam>().decodes::<Misspelt>()],
            "Test.",
        );
    }

    fn write(path: &str, data: Value) -> BackendRequest {
        let Value::Object(data) = data else {
            panic!("test data must be an object")
        };
        let mut req = Request::new(Operation::Update, path);
        req.data = data;
        BackendRequest::new(
            req,
            crate::storage::MemoryStorage::view("auth/x/"),
            Arc::new(MountContext::default()),
        )
    }

    #[tokio::test]
    async fn a_declared_struct_decodes_through_the_backend() {
        let b = Backend::new(
            Arc::new(()),
            vec![named_path().decodes::<NameParam>()],
            "Test.",
        );
        let resp = b.handle(write("role/web", json!({}))).await.unwrap();
        assert_eq!(resp.data.unwrap()["name"], json!("web"));
    }

    #[cfg(debug_assertions)]
    #[tokio::test]
    async fn a_path_that_declares_structs_refuses_others_in_debug_builds() {
        #[derive(serde::Deserialize)]
        struct Other {
            #[allow(dead_code)]
            name: String,
        }
        async fn decode_other(_: Arc<()>, ctx: Ctx) -> Result<Response> {
            ctx.decode::<Other>()?;
            Ok(Response::empty())
        }
        let b = Backend::new(
            Arc::new(()),
            vec![Path::new("role/{name}")
                .fields(vec![Field::new("name", FieldType::String, "Name.")])
                .op(Operation::Update, handler(decode_other), "Write.")
                .decodes::<NameParam>()],
            "Test.",
        );
        let err = b.handle(write("role/web", json!({}))).await.unwrap_err();
        assert!(
            matches!(&err, Error::Internal(m) if m.contains("not declared with Path::decodes")),
            "{err}"
        );
    }

    #[test]
    fn an_empty_listing_is_a_404() {
        let err = Response::keys(Vec::<String>::new()).unwrap_err();
        assert_eq!(err.status(), 404);
        let r = Response::keys(vec!["a", "b/"]).unwrap();
        assert_eq!(r.data.unwrap()["keys"], json!(["a", "b/"]));
    }
}
