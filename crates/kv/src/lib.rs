//! The key/value secrets engine. Version 1 (`kv` with `version=1`, and the
//! older `generic`) stores arbitrary JSON objects at arbitrary paths, as
//! OpenBao's pass-through backend does; version 2 (`version=2`) keeps
//! versions of each secret, with metadata, soft deletes and check-and-set.
#![forbid(unsafe_code)]

mod v1;
mod v2;

use std::sync::Arc;

use strongroom_sdk::framework::LogicalBackend;
use strongroom_sdk::registry::{Factory, FactoryInput};
use strongroom_sdk::{Error, Result};

/// The factory for the `kv` and `generic` types: picks the version from the
/// mount's `version` option (absent means 1, as in Vault).
pub fn factory() -> Factory {
    Arc::new(|input: FactoryInput| -> Result<Arc<dyn LogicalBackend>> {
        let version = input
            .mount
            .options
            .get("version")
            .and_then(|v| v.as_str())
            .unwrap_or("1")
            .to_string();
        match version.as_str() {
            "" | "1" => Ok(Arc::new(v1::backend())),
            "2" => Ok(Arc::new(v2::backend())),
            other => Err(Error::bad_request(format!(
                "invalid kv version {other:?}: must be 1 or 2"
            ))),
        }
    })
}
