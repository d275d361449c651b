//! End-to-end tests of the `strongroom` binary as a process: connection
//! limits under attack, durability across kills and restarts, exact
//! outcomes of 1,000-way races, the HTTP contract (listeners, TLS, limits,
//! the CLI), the GCP auth method against the Google emulator,
//! Gatekeeper with its scheduler emulators, and PGP-encrypted shares and
//! root tokens (init, rekey with backup, generate-root), and the
//! `postgresql` storage (ciphertext only in the table, kill -9, the HA lock),
//! high availability on it (three nodes: forwarding, read-after-write,
//! step-down, kill -9 and partitions of the active node), and
//! `operator migrate` between redb and PostgreSQL, and namespaces
//! (Kubernetes and GCP logins inside one, deletion revoking its tokens
//! and leases, a concurrency run of creates, deletes, mounts and requests).
//!
//! Single-target suites run against OpenBao instead with
//! `STRONGROOM_TEST_TARGET=bao cargo test -p strongroom --test e2e`.

mod audit;
mod audit_devices;
mod audit_support;
mod connections;
mod durability;
mod gatekeeper;
mod gatekeeper_cli;
mod gatekeeper_support;
mod gatekeeper_zk;
mod gcp;
mod ha;
mod http_contract;
mod identity;
mod migrate;
mod namespaces;
mod operators;
mod pgp;
mod postgres;
mod quotas;
mod races;
mod telemetry;
mod userpass;
