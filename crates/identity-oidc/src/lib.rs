//! OIDC identity tokens (`identity/oidc/*`), as OpenBao serves them: the
//! issuer configuration, named signing keys with rotation, roles with
//! claim templates, signed ID tokens for the calling entity,
//! introspection, and the unauthenticated discovery document and JWKS.
//!
//! The crate does not own the identity store. The identity backend mounts
//! [`paths`] (patterns relative to its mount, all under `oidc/`) in its own
//! framework backend, whose state implements [`IdentityHost`]: the seam
//! through which this crate learns the caller's entity, an entity's
//! [`IdentityFacts`], the namespace served and the server's `api_addr`.
//! The identity backend also declares [`UNAUTHENTICATED_PATHS`] as
//! unauthenticated, calls [`ensure_default_key`] from its initialize hook
//! and [`periodic`] from its periodic hook, which rotates keys whose
//! period ended and drops public keys past their verification TTL.
//!
//! Storage (the identity mount's view, behind the barrier):
//! `oidc_tokens/config`, `oidc_tokens/named_keys/<name>` (private keys as
//! PKCS#8), `oidc_tokens/public_keys/<kid>` (JWKs),
//! `oidc_tokens/roles/<name>`.
#![forbid(unsafe_code)]

pub mod keys;
mod paths;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use strongroom_sdk::framework::Ctx;
use strongroom_sdk::identity::IdentityFacts;
use strongroom_sdk::storage::View;
use strongroom_sdk::{Error, Result};

pub use paths::{ensure_default_key, paths, periodic};

/// The paths reachable without a token, relative to the identity mount.
pub const UNAUTHENTICATED_PATHS: [&str; 1] = ["oidc/.well-known/*"];

/// An entity as OIDC sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entity {
    /// What templates read.
    pub facts: IdentityFacts,
    /// A disabled entity's tokens introspect as inactive.
    pub disabled: bool,
}

/// The namespace a request is served in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    /// Its id (`root` for the root namespace): the `namespace` claim.
    pub id: String,
    /// Its path with a trailing slash (empty for root), which goes into
    /// the issuer: `<api_addr>/v1/<path>identity/oidc`.
    pub path: String,
}

/// What the identity backend provides (implemented by its state).
pub trait IdentityHost: Send + Sync + 'static {
    /// The entity id of the token that made the request, if it has one.
    fn caller_entity_id(&self, ctx: &Ctx) -> Option<String>;
    /// The entity with this id in the namespace of the request, if any.
    fn entity(&self, ctx: &Ctx, entity_id: &str) -> Option<Entity>;
    /// The namespace of the request.
    fn namespace(&self, ctx: &Ctx) -> Namespace;
    /// The server's `api_addr` (the issuer when none is configured).
    fn api_addr(&self) -> String;
}

/// The OIDC part of an identity backend's state: a lock serialising key
/// and role changes (as OpenBao's `oidcLock`), and the host.
pub struct Oidc {
    host: Arc<dyn IdentityHost>,
    lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").finish_non_exhaustive()
    }
}

impl Oidc {
    /// The OIDC state over `host`.
    pub fn new(host: Arc<dyn IdentityHost>) -> Self {
        Oidc {
            host,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

/// Gives [`paths`] their [`Oidc`] from the backend's state.
pub trait HasOidc: Send + Sync + 'static {
    /// The OIDC state.
    fn oidc(&self) -> &Oidc;
}

impl HasOidc for Oidc {
    fn oidc(&self) -> &Oidc {
        self
    }
}

/// The stored issuer configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Config {
    #[serde(default)]
    issuer: String,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(e.to_string())
}

async fn get_json<T: serde::de::DeserializeOwned>(view: &View, key: &str) -> Result<Option<T>> {
    match view.get(key).await? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(internal),
    }
}

async fn put_json<T: Serialize>(view: &View, key: &str, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(internal)?;
    view.put(key, &bytes).await?;
    Ok(())
}
