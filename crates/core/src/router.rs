//! The router: the longest mounted prefix of a request path picks the
//! backend. The table is immutable and swapped whole when a mount is added
//! or removed, so the hot path reads it without a lock. A tune swaps a
//! route's entry and context in place: the backend (and whatever it holds
//! in memory: lock stripes, lockout counters, caches) is kept.

use std::sync::Arc;

use arc_swap::ArcSwap;
use strongroom_sdk::framework::Mounted;

use crate::mount::{MountEntry, Table};
use strongroom_sdk::framework::{LogicalBackend, MountContext};
use strongroom_sdk::storage::View;

/// One mounted backend, ready to serve.
pub struct Route {
    /// The full routed prefix, e.g. `secret/` or `auth/token/`.
    pub prefix: String,
    /// The table the mount is in.
    pub table: Table,
    /// The mount's table entry, as last tuned.
    pub entry: ArcSwap<MountEntry>,
    /// The backend.
    pub backend: Arc<dyn LogicalBackend>,
    /// The mount's private storage.
    pub storage: View,
    /// What the backend is told about its mount, as last tuned.
    pub mount: ArcSwap<MountContext>,
    /// Whether the backend is one of the core's own that reads the
    /// caller's token entry from the request's extensions (token store,
    /// cubbyhole); other backends get no extensions, and the request
    /// saves their allocation.
    pub builtin_caller: bool,
    /// The mount's `vault.route.<op>.<mount>` timers.
    pub timers: strongroom_telemetry::RouteTimers,
}

impl Route {
    /// The mount as the lifecycle hooks see it now.
    pub fn mounted(&self) -> Mounted {
        Mounted {
            storage: self.storage.clone(),
            mount: self.mount.load_full(),
        }
    }
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
