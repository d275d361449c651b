//! The router: the longest mounted prefix of a request path picks the
//! backend. The table is immutable and swapped whole on every mount change,
//! so the hot path reads it without a lock.

use std::sync::Arc;

use crate::mount::MountEntry;
use strongroom_sdk::framework::{LogicalBackend, MountContext};
use strongroom_sdk::storage::View;

/// One mounted backend, ready to serve.
pub struct Route {
    /// The full routed prefix, e.g. `secret/` or `auth/token/`.
    pub prefix: String,
    /// The mount's table entry.
    pub entry: MountEntry,
    /// The backend.
    pub backend: Arc<dyn LogicalBackend>,
    /// The mount's private storage.
    pub storage: View,
    /// What the backend is told about its mount.
    pub mount: Arc<MountContext>,
}

/// All routes, longest prefix first.
#[derive(Default)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    /// A table over `routes`.
    pub fn new(mut routes: Vec<Arc<Route>>) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        RouteTable { routes }
    }

    /// The route serving `path` and the path relative to it. A path equal to
    /// a mount without its trailing slash (`secret`) routes to the mount.
    pub fn lookup<'p>(&self, path: &'p str) -> Option<(&Arc<Route>, &'p str)> {
        self.routes.iter().find_map(|r| {
            if let Some(rel) = path.strip_prefix(r.prefix.as_str()) {
                Some((r, rel))
            } else if r.prefix.strip_suffix('/') == Some(path) {
                Some((r, ""))
            } else {
                None
            }
        })
    }

    /// Every route.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }
}
