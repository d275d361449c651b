//! The shared test harness of the Strongroom workspace.
//!
//! - [`server`]: server processes (`strongroom` or OpenBao's `bao`) on free
//!   loopback ports, the Vault-API client ([`server::Call`],
//!   [`server::Reply`]), config files, and CLI runs.
//! - [`diff`]: the value comparison of OpenBao and Strongroom replies and
//!   the [`diff::Pair`] the differential suites drive.
//! - [`inprocess`]: a core built from the binary's own registry
//!   ([`strongroom::registry`]) plus test engines, behind the real HTTP
//!   router, called without sockets.
//! - [`kube`]: a fake Kubernetes API (TokenReview) and service-account JWTs.
//! - [`gcp`]: a Google API emulator (OAuth2, IAM, certificates, metadata)
//!   and signed login JWTs.
//! - [`postgres`]: a throw-away PostgreSQL cluster (`initdb` in a temporary
//!   folder, a free loopback port), for the `postgresql` storage.
//! - [`pgp`]: OpenPGP key pairs to receive PGP-encrypted shares and root
//!   tokens, and decryption of them.
//! - [`zookeeper`]: a throw-away ZooKeeper server (Debian's jars, a free
//!   loopback port, a temporary folder) and a test session to write to it.
//!
//! A failed setup panics: in a test harness that is how a test reports it.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod diff;
pub mod gcp;
pub mod inprocess;
pub mod kube;
pub mod pgp;
pub mod postgres;
pub mod server;
pub mod zookeeper;
