//! The forwarding seam: a standby node hands the requests it does not
//! answer itself to the active node.
//!
//! The router asks a [`Forward`] (installed by the HA coordinator) what to
//! do with each request once its body is read and before it is parsed:
//! answer here, forward it (the implementation sends it over the cluster
//! link and returns the active node's answer unchanged), or redirect the
//! client to the active node (`X-Vault-No-Request-Forwarding`). A request
//! that arrives over the cluster link itself is never forwarded again, and
//! only there is the client address carried in [`FORWARDED_FOR_HEADER`]
//! believed.

use std::net::IpAddr;

use axum::body::Body;
use bytes::Bytes;
use strongroom_sdk::Error;

/// The header a forwarding standby puts the client's address in. Only
/// the cluster listener (mutual TLS between nodes) believes it.
pub const FORWARDED_FOR_HEADER: &str = "x-strongroom-forwarded-for";

/// Vault's header asking a standby to redirect instead of forwarding.
pub const NO_FORWARDING_HEADER: &str = "x-vault-no-request-forwarding";

/// What a node does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer it here.
    Local,
    /// Answer it here if this node can (a read on a standby); when the
    /// answer is `Standby` (it would have to write, or the node cannot
    /// serve it), forward it, or with `redirect` answer 307 there.
    TryLocal {
        /// Where to redirect instead of forwarding (the client asked for
        /// no forwarding).
        redirect: Option<String>,
    },
    /// Send it to the active node.
    Forward,
    /// Answer 307 to this URL (the active node's `api_addr` with the
    /// request's path and query).
    Redirect(String),
}

/// Decides, and forwards, for a standby node.
#[async_trait::async_trait]
pub trait Forward: Send + Sync {
    /// What to do with the request whose head is `parts`.
    fn decide(&self, parts: &http::request::Parts) -> Decision;

    /// Sends the request to the active node and returns its answer; the
    /// error is answered to the client when no active node can be reached.
    async fn forward(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        client: Option<IpAddr>,
    ) -> Result<http::Response<Body>, Error>;
}
