//! Strongroom's HTTP API, compatible with Vault/OpenBao clients.
//!
//! The crate owns the HTTP boundary and nothing below it: [`parse_request`]
//! maps an HTTP call under `/v1/` to a logical
//! [`Request`](strongroom_sdk::logical::Request), [`router`] builds the axum
//! application that hands it to a
//! [`RequestHandler`](strongroom_sdk::logical::RequestHandler) and renders the
//! answer (envelope, raw body, 204, or `{"errors": [...]}`), and [`serve`] /
//! [`load_tls`] run the TCP and TLS listeners. Tokens and bodies are never
//! logged.
#![forbid(unsafe_code)]

/// The `http` crate whose types [`parse_request`] takes, re-exported so that
/// callers (the fuzz target) name the same version.
pub use http;

mod parse;
mod render;
mod router;
mod serve;

pub use parse::{parse_request, NAMESPACE_HEADER, TOKEN_HEADER, WRAP_TTL_HEADER};
pub use router::{router, HttpOptions};
pub use serve::{load_tls, serve, HttpError, SHUTDOWN_GRACE};
