//! Strongroom's HTTP API, compatible with Vault/OpenBao clients.
//!
//! The crate owns the HTTP boundary and nothing below it: [`parse_request`]
//! maps an HTTP call under `/v1/` to a logical
//! [`Request`](strongroom_sdk::logical::Request), [`router`] builds the axum
//! application that hands it to a
//! [`RequestHandler`](strongroom_sdk::logical::RequestHandler) and renders the
//! answer (envelope, raw body, 204, or `{"errors": [...]}`), and [`serve`] /
//! [`load_tls`] run the TCP and TLS listeners under [`ConnLimits`]
//! (timeouts and a connection cap that evicts stalled connections first;
//! see the `conn` module). A panic in a handler answers 500 and affects no
//! other request ([`serve`] documents the panic strategy). Tokens and
//! bodies are never logged.
#![forbid(unsafe_code)]

/// The `http` crate whose types [`parse_request`] takes, re-exported so that
/// callers (the fuzz target) name the same version.
pub use http;

mod cluster;
mod conn;
mod forward;
mod parse;
mod render;
mod router;
mod serve;

pub use cluster::{cluster_tls, ClusterTlsConfig, ClusterTlsError, CLUSTER_SERVER_NAME};
pub use conn::{
    default_max_connections, fd_limit, raise_fd_limit, BodyReadTimeout, ConnLimits, FdLimit,
};
pub use forward::{Decision, Forward, FORWARDED_FOR_HEADER, NO_FORWARDING_HEADER};
pub use parse::{parse_request, NAMESPACE_HEADER, TOKEN_HEADER, WRAP_TTL_HEADER};
pub use router::{router, router_with, HttpOptions, MetricsAccess, RouterExtras};
pub use serve::{
    load_tls, serve, serve_with, HttpError, MAX_HEADERS, MAX_HEADER_BYTES, SHUTDOWN_GRACE,
};
