//! The boundary error: one type that every layer returns and that the HTTP
//! layer renders as Vault does, a status code and `{"errors": [...]}`.

use crate::storage::StorageError;

/// Everything a request can fail with, each variant mapped to the HTTP status
/// Vault/OpenBao uses for it (see [`Error::status`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or its data is invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// The token is missing, invalid, or not allowed to do this (403).
    #[error("permission denied")]
    PermissionDenied,
    /// Forbidden, with a specific message (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing is stored at the path (404). `None` renders as an empty
    /// `errors` list, the way Vault answers a read of a missing secret.
    #[error("{}", .0.as_deref().unwrap_or("not found"))]
    NotFound(Option<String>),
    /// No mount or backend path matches the request path (404).
    #[error("unsupported path")]
    UnsupportedPath,
    /// The path exists but does not support the operation (405).
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// The request body's media type is not the one the method needs
    /// (415: PATCH wants `application/merge-patch+json`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request conflicts with the current state (409: deleting a
    /// namespace that still has children).
    #[error("{0}")]
    Conflict(String),
    /// The request body exceeds the listener's `max_request_size` (413).
    #[error("http: request body too large")]
    PayloadTooLarge,
    /// Too many requests, or a standby node's health answer (429).
    #[error("{0}")]
    TooManyRequests(String),
    /// What the request addresses is unavailable for now, with a message
    /// (503: a namespace whose API is locked).
    #[error("{0}")]
    Unavailable(String),
    /// The server is sealed (503).
    #[error("Vault is sealed")]
    Sealed,
    /// This node is a standby (or is stepping down): it neither writes nor
    /// answers requests that need the active node (503).
    #[error("this node is not active")]
    Standby,
    /// The server is not initialised yet (503 for everything but sys/init).
    #[error("Vault is not initialized")]
    NotInitialized,
    /// A third party Strongroom called answered with an error (502).
    #[error("{0}")]
    Upstream(String),
    /// Storage failed underneath the barrier (500).
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
    /// An internal invariant failed (500). The message is logged, not hidden.
    #[error("{0}")]
    Internal(String),
    /// Another error, answered with extra HTTP headers (a request refused
    /// by a rate-limit quota carries `Retry-After` and `X-RateLimit-*`).
    /// Its status and messages are the inner error's.
    #[error("{error}")]
    WithHeaders {
        /// The error answered.
        error: Box<Error>,
        /// The headers added to the answer (name, value).
        headers: Vec<(String, String)>,
    },
}

impl Error {
    /// Shorthand for [`Error::BadRequest`].
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }

    /// `self` answered with `headers` (unchanged when there are none).
    pub fn with_headers(self, headers: Vec<(String, String)>) -> Self {
        if headers.is_empty() {
            return self;
        }
        match self {
            Error::WithHeaders {
                error,
                headers: mut had,
            } => {
                had.extend(headers);
                Error::WithHeaders {
                    error,
                    headers: had,
                }
            }
            error => Error::WithHeaders {
                error: Box::new(error),
                headers,
            },
        }
    }

    /// The error without the headers [`Error::WithHeaders`] added.
    pub fn inner(&self) -> &Error {
        match self {
            Error::WithHeaders { error, .. } => error.inner(),
            other => other,
        }
    }

    /// The extra headers of the answer ([`Error::WithHeaders`]).
    pub fn headers(&self) -> &[(String, String)] {
        match self {
            Error::WithHeaders { headers, .. } => headers,
            _ => &[],
        }
    }

    /// The HTTP status code Vault answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            Error::WithHeaders { error, .. } => error.status(),
            Error::BadRequest(_) => 400,
            Error::PermissionDenied | Error::Forbidden(_) => 403,
            Error::NotFound(_) | Error::UnsupportedPath => 404,
            Error::UnsupportedOperation => 405,
            Error::Conflict(_) => 409,
            Error::PayloadTooLarge => 413,
            Error::UnsupportedMediaType(_) => 415,
            Error::TooManyRequests(_) => 429,
            Error::Sealed | Error::NotInitialized | Error::Standby | Error::Unavailable(_) => 503,
            Error::Upstream(_) => 502,
            // A key the storage refuses (a NUL byte, say) came from the
            // request path: the client's fault, not the server's.
            Error::Storage(StorageError::InvalidKey(_)) => 400,
            // The node lost the HA lock while answering: it is a standby
            // now, and the client may retry (it will be forwarded).
            Error::Storage(StorageError::Fenced(_)) => 503,
            Error::Storage(_) | Error::Internal(_) => 500,
        }
    }

    /// The messages of the `errors` list in the response body.
    pub fn messages(&self) -> Vec<String> {
        match self {
            Error::WithHeaders { error, .. } => error.messages(),
            Error::NotFound(None) => Vec::new(),
            // Vault wraps permission errors in a multierror; clients match on
            // the "permission denied" substring, so keep it verbatim.
            Error::PermissionDenied => {
                vec!["1 error occurred:\n\t* permission denied\n\n".to_string()]
            }
            // Storage details (keys, backend messages) stay in the log.
            Error::Storage(e) => {
                tracing::warn!(error = %e, "storage error answered to a client");
                vec![match e {
                    StorageError::InvalidKey(_) => "invalid request path".to_string(),
                    StorageError::Fenced(_) => {
                        "this node is no longer the active node; retry the request".to_string()
                    }
                    _ => "internal error".to_string(),
                }]
            }
            other => vec![other.to_string()],
        }
    }

    /// The JSON body Vault sends for this error.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "errors": self.messages() })
    }
}

/// Result with the boundary [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A write refused by the HA fence is the client's cue to retry, with
    /// a message that names no key and no backend detail.
    #[test]
    fn a_fenced_write_answers_503_and_asks_for_a_retry() {
        let e = Error::Storage(StorageError::Fenced("lost the lock at key x".into()));
        assert_eq!(e.status(), 503);
        assert_eq!(
            e.messages(),
            vec!["this node is no longer the active node; retry the request".to_string()]
        );
    }
}
