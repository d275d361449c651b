//! Stage 2, namespace: which namespace the request is in. Only the root
//! namespace exists for now; the stage is where the `X-Vault-Namespace`
//! header and path prefixes will be resolved, so every later stage already
//! reads the namespace from the context.

use strongroom_sdk::Result;

use super::RequestCtx;

/// A namespace, by its path (`""` for root, else `ns1/ns2/`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace {
    /// The namespace's path, with a trailing slash; empty for root.
    pub path: String,
}

impl Namespace {
    /// The root namespace.
    pub fn root() -> Self {
        Namespace::default()
    }

    /// Whether this is the root namespace.
    pub fn is_root(&self) -> bool {
        self.path.is_empty()
    }
}

/// Resolves the request's namespace: root, the only one there is.
pub fn resolve(ctx: &mut RequestCtx) -> Result<()> {
    ctx.namespace = Namespace::root();
    Ok(())
}
