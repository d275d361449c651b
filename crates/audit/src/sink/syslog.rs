//! The `syslog` device: each line is one message, at INFO, to the local
//! syslog daemon (OpenBao's `syslog` audit device), through the `syslog`
//! crate.
//!
//! Options:
//! - `facility` (default `AUTH`): `KERN`, `USER`, `MAIL`, `DAEMON`, `AUTH`,
//!   `SYSLOG`, `LPR`, `NEWS`, `UUCP`, `CRON`, `AUTHPRIV`, `FTP`, `LOCAL0` to
//!   `LOCAL7`, in any case (OpenBao's list; anything else gets its
//!   `invalid syslog facility: X`).
//! - `tag` (default `strongroom`): OpenBao's default is a product's name
//!   (`vault` in its code, `openbao` in its documentation), so Strongroom
//!   uses its own.
//! - `socket_path` (Strongroom's): the daemon's socket, datagram or stream,
//!   whichever it is. Default: the first of `/dev/log`, `/var/run/syslog`,
//!   `/var/run/log` that exists.
//!
//! A message is what syslog(3) sends to the local socket:
//! `<PRI>Mmm dd hh:mm:ss tag[pid]: line`, without the line's newline (the
//! stamp is UTC; daemons stamp local messages themselves).
//!
//! Opening the device does not connect, so a daemon that is not up yet does
//! not refuse it (enabling's test write does). A write that fails is tried
//! once more on a new connection (a restarted daemon), resuming at the
//! message that failed; then the batch fails. The crate blocks, so writes
//! run on the blocking pool, with the socket's send timeout set to
//! `write_timeout`. SIGHUP drops the connection.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use syslog::{Facility, Formatter3164, LoggerBackend};

use super::Sink;
use crate::options::{CommonOptions, ConfigError};

/// The crate's logger as this sink uses it.
type Logger = syslog::Logger<LoggerBackend, Formatter3164>;

/// What a connection is made from.
#[derive(Debug)]
struct Settings {
    facility: Facility,
    tag: String,
    /// `None`: the system's socket.
    path: Option<PathBuf>,
    /// The socket's send timeout; `None` for a zero `write_timeout`.
    timeout: Option<Duration>,
}

/// A `syslog` device's sink.
pub struct SyslogSink {
    settings: Arc<Settings>,
    /// The kept connection; taken out while a write runs.
    logger: Arc<Mutex<Option<Logger>>>,
}

impl std::fmt::Debug for SyslogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogSink")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// OpenBao's facility names (go-syslog's), any case.
fn facility(name: &str) -> Option<Facility> {
    Some(match name.to_ascii_uppercase().as_str() {
        "KERN" => Facility::LOG_KERN,
        "USER" => Facility::LOG_USER,
        "MAIL" => Facility::LOG_MAIL,
        "DAEMON" => Facility::LOG_DAEMON,
        "AUTH" => Facility::LOG_AUTH,
        "SYSLOG" => Facility::LOG_SYSLOG,
        "LPR" => Facility::LOG_LPR,
        "NEWS" => Facility::LOG_NEWS,
        "UUCP" => Facility::LOG_UUCP,
        "CRON" => Facility::LOG_CRON,
        "AUTHPRIV" => Facility::LOG_AUTHPRIV,
        "FTP" => Facility::LOG_FTP,
        "LOCAL0" => Facility::LOG_LOCAL0,
        "LOCAL1" => Facility::LOG_LOCAL1,
        "LOCAL2" => Facility::LOG_LOCAL2,
        "LOCAL3" => Facility::LOG_LOCAL3,
        "LOCAL4" => Facility::LOG_LOCAL4,
        "LOCAL5" => Facility::LOG_LOCAL5,
        "LOCAL6" => Facility::LOG_LOCAL6,
        "LOCAL7" => Facility::LOG_LOCAL7,
        _ => return None,
    })
}

impl SyslogSink {
    /// Reads the options; does not connect.
    ///
    /// # Errors
    /// An unknown `facility`, a bad `write_timeout`.
    pub fn open(options: &BTreeMap<String, String>) -> Result<SyslogSink, ConfigError> {
        let name = options
            .get("facility")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .unwrap_or("AUTH");
        let facility = facility(name).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "invalid syslog facility: {}",
                name.to_ascii_uppercase()
            ))
        })?;
        let tag = options
            .get("tag")
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| "strongroom".to_string());
        let path = options
            .get("socket_path")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        // The device parses the shared options too; the prefix permission
        // is its to check.
        let timeout = CommonOptions::parse(options, true)?.write_timeout;
        Ok(SyslogSink {
            settings: Arc::new(Settings {
                facility,
                tag,
                path,
                timeout: (!timeout.is_zero()).then_some(timeout),
            }),
            logger: Arc::new(Mutex::new(None)),
        })
    }
}

/// A syslog error as an I/O error, in OpenBao's words.
fn delivery_error(e: syslog::Error) -> io::Error {
    let kind = match &e {
        syslog::Error::Io(e) | syslog::Error::Write(e) => e.kind(),
        syslog::Error::Initialization(_) => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("Unix syslog delivery error: {e}"))
}

/// Connects to the daemon's socket.
fn connect(settings: &Settings) -> io::Result<Logger> {
    let formatter = Formatter3164 {
        facility: settings.facility,
        // Local messages carry no host name (as syslog(3)'s).
        hostname: None,
        process: settings.tag.clone(),
        pid: std::process::id(),
    };
    let logger = match &settings.path {
        Some(path) => syslog::unix_custom(formatter, path),
        None => syslog::unix(formatter),
    }
    .map_err(delivery_error)?;
    match &logger.backend {
        LoggerBackend::Unix(socket) => socket.set_write_timeout(settings.timeout)?,
        LoggerBackend::UnixStream(writer) => {
            writer.get_ref().set_write_timeout(settings.timeout)?
        }
        LoggerBackend::Udp(..) | LoggerBackend::Tcp(_) => {}
    }
    Ok(logger)
}

/// One try: the kept connection or a new one, then the messages from
/// `sent` on.
fn attempt(
    settings: &Settings,
    slot: &mut Option<Logger>,
    batch: &[u8],
    sent: &mut usize,
) -> io::Result<()> {
    let mut logger = match slot.take() {
        Some(logger) => logger,
        None => connect(settings)?,
    };
    for line in batch.split_inclusive(|b| *b == b'\n').skip(*sent) {
        let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line));
        logger.info(&*text).map_err(delivery_error)?;
        *sent += 1;
    }
    *slot = Some(logger);
    Ok(())
}

/// Writes a batch, reconnecting once.
fn write_batch(settings: &Settings, slot: &mut Option<Logger>, batch: &[u8]) -> io::Result<()> {
    let mut sent = 0;
    let first = match attempt(settings, slot, batch, &mut sent) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    attempt(settings, slot, batch, &mut sent)
        .map_err(|e| io::Error::new(e.kind(), format!("{first}; after reconnecting: {e}")))
}

#[async_trait::async_trait]
impl Sink for SyslogSink {
    async fn write(&self, batch: &[u8]) -> io::Result<()> {
        let batch = batch.to_vec();
        let settings = self.settings.clone();
        let logger = self.logger.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = match logger.try_lock() {
                Ok(slot) => slot,
                // A panicked write left the slot empty or whole.
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                // A write the device gave up on is still blocked in the
                // kernel: fail now rather than queue behind it.
                Err(TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the previous write to syslog has not finished",
                    ))
                }
            };
            write_batch(&settings, &mut slot, &batch)
        })
        .await
        .map_err(io::Error::other)?
    }

    async fn reopen(&self) -> io::Result<()> {
        // A write in progress drops its connection itself if it fails.
        match self.logger.try_lock() {
            Ok(mut slot) => *slot = None,
            Err(TryLockError::Poisoned(p)) => *p.into_inner() = None,
            Err(TryLockError::WouldBlock) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixDatagram;

    use crate::options::from_pairs as opts;

    /// Receives one datagram as text.
    async fn recv(socket: &UnixDatagram) -> String {
        let mut buf = vec![0u8; 64 * 1024];
        let n = socket.recv(&mut buf).await.unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// Checks `<PRI>Mmm dd hh:mm:ss tag[pid]: body` and returns the body.
    fn body<'a>(message: &'a str, pri: u8, tag: &str) -> &'a str {
        let rest = message
            .strip_prefix(&format!("<{pri}>"))
            .unwrap_or_else(|| panic!("priority: {message}"));
        // "Dec  5 11:41:32" or "Dec 15 11:41:32": 15 characters.
        let (stamp, rest) = rest.split_at(15);
        assert_eq!(stamp.as_bytes()[3], b' ', "{message}");
        assert_eq!(&stamp[9..10], ":", "{message}");
        rest.strip_prefix(&format!(" {tag}[{}]: ", std::process::id()))
            .unwrap_or_else(|| panic!("tag: {message}"))
    }

    #[tokio::test]
    async fn each_line_is_one_message_and_a_restarted_daemon_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let sink = SyslogSink::open(&opts(&[("socket_path", path.to_str().unwrap())])).unwrap();
        sink.write(b"{\"n\":1}\n{\"n\":2}\n").await.unwrap();
        sink.write(b"{\"n\":3}\n").await.unwrap();
        // AUTH (4) at INFO (6): 4 * 8 + 6.
        for want in ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"] {
            assert_eq!(body(&recv(&daemon).await, 38, "strongroom"), want);
        }

        // The daemon is gone: the write fails.
        drop(daemon);
        std::fs::remove_file(&path).unwrap();
        let err = sink.write(b"{\"n\":4}\n").await.unwrap_err();
        assert!(
            err.to_string().starts_with("Unix syslog delivery error: "),
            "{err}"
        );
        assert!(err.to_string().contains("after reconnecting"), "{err}");

        // It comes back: the next write reaches it.
        let daemon = UnixDatagram::bind(&path).unwrap();
        sink.write(b"{\"n\":5}\n").await.unwrap();
        assert_eq!(body(&recv(&daemon).await, 38, "strongroom"), "{\"n\":5}");
    }

    #[tokio::test]
    async fn facility_and_tag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let daemon = UnixDatagram::bind(&path).unwrap();
        let sink = SyslogSink::open(&opts(&[
            ("socket_path", path.to_str().unwrap()),
            ("facility", "local3"),
            ("tag", "vault-audit"),
        ]))
        .unwrap();
        sink.write(b"PREFIX{\"a\":\"b c\"}\n").await.unwrap();
        // LOCAL3 (19) at INFO (6).
        assert_eq!(
            body(&recv(&daemon).await, 19 * 8 + 6, "vault-audit"),
            "PREFIX{\"a\":\"b c\"}"
        );
    }

    #[test]
    fn refusals() {
        let err = SyslogSink::open(&opts(&[("facility", "nope")]))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "invalid syslog facility: NOPE");
        let err = SyslogSink::open(&opts(&[("write_timeout", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("unable to parse 'write_timeout'"), "{err}");
    }
}
