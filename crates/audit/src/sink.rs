//! Where a device's lines go. A [`Sink`] takes a batch of whole lines
//! (each ending in `\n`) and hands them to the operating system in as few
//! calls as it can; the device's writer calls it from one task, in order.
//!
//! - [`file`](mod@file): `file_path` (a path, `stdout` or `discard`), `mode`.
//! - [`socket`]: `address`, `socket_type` (`tcp`, default, `udp`, `unix`,
//!   `unixgram`); a kept connection, reconnected once when a write fails.
//! - [`syslog`]: `facility` (default `AUTH`), `tag` (default `strongroom`),
//!   `socket_path` (Strongroom's; default the system's `/dev/log`); one
//!   message per line, at INFO.
//! - [`http`]: `uri`, `headers` (a JSON object of lists); one POST per line.
//!
//! Every type also takes `write_timeout` (default `2s`), which the device
//! applies around each write; the socket, syslog and http sinks bound
//! connecting with it too. Those three do not connect when opened: a
//! receiver that is down fails the first write (the enable's test write),
//! not the open.

pub mod file;
pub mod http;
pub mod socket;
pub mod syslog;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::options::ConfigError;

/// A destination for audit lines.
#[async_trait::async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Writes `batch` (whole lines) entirely, or fails.
    async fn write(&self, batch: &[u8]) -> std::io::Result<()>;

    /// Reopens the destination (SIGHUP, for log rotation). The default
    /// does nothing.
    async fn reopen(&self) -> std::io::Result<()> {
        Ok(())
    }

    /// The last complete line already at the destination, if the sink can
    /// read it back (a file): a hash chain resumes from it.
    fn last_line(&self) -> Option<Vec<u8>> {
        None
    }
}

/// Opens the sink of a device of type `kind` with `options`.
///
/// # Errors
/// An unknown type, a missing or invalid option, or a destination that
/// cannot be opened.
pub fn open(kind: &str, options: &BTreeMap<String, String>) -> Result<Arc<dyn Sink>, ConfigError> {
    match kind {
        "file" => Ok(Arc::new(file::FileSink::open(options)?)),
        "socket" => Ok(Arc::new(socket::SocketSink::open(options)?)),
        "syslog" => Ok(Arc::new(syslog::SyslogSink::open(options)?)),
        "http" => Ok(Arc::new(http::HttpSink::open(options)?)),
        other => Err(ConfigError::UnknownType(other.to_string())),
    }
}
