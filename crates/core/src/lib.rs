//! Strongroom's core: the pieces every other crate builds on.
//!
//! The crate owns the logical request model ([`logical`]), the boundary error
//! ([`error`]), the physical storage contract ([`storage`]), the encrypting
//! barrier ([`barrier`]) and its Shamir seal ([`shamir`]), the backend
//! framework ([`framework`]), and the [`Core`](core::Core) that ties them into
//! a sealed/unsealed server answering logical requests.
#![forbid(unsafe_code)]

pub mod barrier;
pub mod core;
pub mod cubbyhole;
pub mod duration;
pub mod error;
pub mod expiration;
pub mod framework;
pub mod lenient_hcl;
pub mod logical;
pub mod login;
pub mod mount;
pub mod policy;
pub mod router;
pub mod shamir;
pub mod storage;
pub mod sys;
pub mod token;
pub mod wrapping;

pub use crate::core::{Core, CoreConfig, Registry};
pub use error::{Error, Result};
