//! The composition of the `strongroom` binary as a library: its command
//! line ([`cli`]), and the server it runs ([`server`]), including the
//! [`server::registry`] of backends it mounts. The binary (`main.rs`) is a
//! thin wrapper over this crate, and in-process tests build their cores
//! from the same registry, so they exercise exactly what the binary serves.
#![forbid(unsafe_code)]

pub mod cli;
pub mod server;

pub use server::registry;
