//! The factory and registry types: how the binary tells the core which
//! backend types it can mount, and how a mount's backend is built.

use std::collections::HashMap;
use std::sync::Arc;

use crate::framework::{LogicalBackend, MountContext};
use crate::storage::View;
use crate::Result;

/// What a backend factory is given to build a mount's backend.
pub struct FactoryInput {
    /// What the backend is told about its mount.
    pub mount: Arc<MountContext>,
    /// The mount's private storage.
    pub storage: View,
}

/// Builds a backend for a mount; errors (bad options) refuse the mount.
pub type Factory = Arc<dyn Fn(FactoryInput) -> Result<Arc<dyn LogicalBackend>> + Send + Sync>;

/// The backend types the server can mount, by type name.
#[derive(Default, Clone)]
pub struct Registry {
    secrets: HashMap<String, Factory>,
    auth: HashMap<String, Factory>,
}

impl Registry {
    /// An empty registry (the `system` and `token` backends are built in).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secrets engine type (builder style).
    pub fn secrets(mut self, kind: &str, factory: Factory) -> Self {
        self.secrets.insert(kind.to_string(), factory);
        self
    }

    /// Registers an auth method type (builder style).
    pub fn auth(mut self, kind: &str, factory: Factory) -> Self {
        self.auth.insert(kind.to_string(), factory);
        self
    }

    /// The factory of a secrets engine type.
    pub fn secrets_factory(&self, kind: &str) -> Option<&Factory> {
        self.secrets.get(kind)
    }

    /// The factory of an auth method type.
    pub fn auth_factory(&self, kind: &str) -> Option<&Factory> {
        self.auth.get(kind)
    }
}
