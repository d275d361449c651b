//! Strongroom's SDK: what a backend needs, and nothing more.
//!
//! - [`logical`]: the logical request and response every layer speaks;
//! - [`error`]: the boundary error, mapped to Vault's status codes;
//! - [`framework`]: a backend as data (paths, typed fields, operations,
//!   help and OpenAPI);
//! - [`storage`]: the physical and logical storage contracts and the
//!   prefixed [`View`](storage::View) a mount stores through;
//! - [`login`]: the token parameters of auth method roles;
//! - [`lockout`]: OpenBao's user lockout after failed logins;
//! - [`identity`]: the login alias and the identity facts templates read;
//! - [`token_type`]: the token type enum;
//! - [`duration`], [`cidr`], [`glob`]: the value syntaxes Vault's API uses;
//! - [`role_store`]: auth methods' typed role entries, names and locks;
//! - [`registry`]: the factory and registry types the binary fills;
//! - [`lenient_hcl`]: HCL as OpenBao's parser accepts it (config, policies).
//!
//! The SDK depends on no other Strongroom crate; every other crate depends
//! on it.
#![forbid(unsafe_code)]

pub mod cidr;
pub mod duration;
pub mod error;
pub mod framework;
pub mod glob;
pub mod identity;
pub mod json;
pub mod lenient_hcl;
pub mod lockout;
pub mod logical;
pub mod login;
pub mod registry;
pub mod role_store;
pub mod storage;
pub mod token_type;

pub use error::{Error, Result};
