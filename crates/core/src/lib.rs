//! Strongroom's core: the server's state machine and its request pipeline.
//!
//! The core owns the node state (sealed, standby, active), the mount tables
//! and the router built from them, the token store, expiration (token and
//! lease expiry), cubbyhole, response wrapping, the system backend, and the
//! request path every call takes. What a backend needs lives in
//! `strongroom-sdk`; the barrier in `strongroom-barrier`; policies in
//! `strongroom-policy`.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cubbyhole;
pub mod expiration;
pub mod login;
pub mod mount;
pub mod namespace;
pub mod node;
pub mod pipeline;
pub mod router;
pub mod sys;
pub mod telemetry;
pub mod token;
pub mod wrapping;

#[cfg(test)]
pub(crate) mod test_util;

pub use node::{Core, CoreConfig};
pub use strongroom_sdk::{Error, Result};
