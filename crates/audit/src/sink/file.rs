//! The `file` device: `file_path` is a file (appended to, created with
//! `mode`, default 0600, executable bits stripped, reopened on SIGHUP so
//! that rotation works), `stdout`, or `discard`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::Sink;
use crate::options::ConfigError;

/// Where a file device writes.
#[derive(Debug)]
enum Target {
    /// A file, reopened on SIGHUP.
    Path {
        path: PathBuf,
        /// Applied on every open; `None`: leave the mode as it is
        /// (`mode = "0000"`).
        mode: Option<u32>,
        file: Mutex<Option<File>>,
    },
    /// The process's standard output.
    Stdout,
    /// Nowhere (OpenBao's `discard`).
    Discard,
}

/// A `file` device's sink.
#[derive(Debug, Clone)]
pub struct FileSink(Arc<Target>);

/// Locks a mutex, taking over a poisoned one (a panicked writer left no
/// partial state: the file handle is valid or absent).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FileSink {
    /// Opens the sink from the device's options.
    ///
    /// # Errors
    /// No `file_path`, a bad `mode`, or a file that cannot be opened.
    pub fn open(options: &BTreeMap<String, String>) -> Result<FileSink, ConfigError> {
        let path = options
            .get("file_path")
            .or_else(|| options.get("path"))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError::Invalid("file_path is required".into()))?;
        let target = match path {
            "stdout" => Target::Stdout,
            "discard" => Target::Discard,
            path => {
                let mode = match options.get("mode").map(|s| s.trim()) {
                    None | Some("") => Some(0o600),
                    Some(m) => {
                        let bits = u32::from_str_radix(m, 8).map_err(|_| {
                            ConfigError::Invalid(format!("unable to parse 'mode': {m:?}"))
                        })?;
                        // "0000" leaves the file's mode alone (OpenBao).
                        (bits != 0).then_some(bits & 0o666)
                    }
                };
                let path = PathBuf::from(path);
                let file = open_file(&path, mode).map_err(|e| {
                    ConfigError::Unwritable(format!(
                        "sink creation failed: file {}: {e}",
                        path.display()
                    ))
                })?;
                Target::Path {
                    path,
                    mode,
                    file: Mutex::new(Some(file)),
                }
            }
        };
        Ok(FileSink(Arc::new(target)))
    }
}

/// Opens `path` for appending, creating it (and its folder) when missing,
/// and applies `mode`.
fn open_file(path: &std::path::Path, mode: Option<u32>) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(mode.unwrap_or(0o600))
        .open(path)?;
    if let Some(m) = mode {
        file.set_permissions(std::fs::Permissions::from_mode(m))?;
    }
    Ok(file)
}

#[async_trait::async_trait]
impl Sink for FileSink {
    async fn write(&self, batch: &[u8]) -> std::io::Result<()> {
        match &*self.0 {
            Target::Discard => Ok(()),
            Target::Stdout => {
                let batch = batch.to_vec();
                tokio::task::spawn_blocking(move || {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&batch)?;
                    out.flush()
                })
                .await
                .map_err(std::io::Error::other)?
            }
            Target::Path { .. } => {
                let batch = batch.to_vec();
                let this = self.0.clone();
                tokio::task::spawn_blocking(move || {
                    let Target::Path {
                        path, mode, file, ..
                    } = &*this
                    else {
                        return Ok(());
                    };
                    let mut guard = lock(file);
                    if guard.is_none() {
                        *guard = Some(open_file(path, *mode)?);
                    }
                    match guard.as_mut() {
                        // One write(2) for the whole batch in the usual
                        // case; write_all loops on a short write.
                        Some(f) => f.write_all(&batch),
                        None => Err(std::io::Error::other("audit file is not open")),
                    }
                })
                .await
                .map_err(std::io::Error::other)?
            }
        }
    }

    async fn reopen(&self) -> std::io::Result<()> {
        let this = self.0.clone();
        tokio::task::spawn_blocking(move || {
            if let Target::Path { path, mode, file } = &*this {
                let mut guard = lock(file);
                // Dropped first: a failed reopen leaves the device failing
                // (and retrying on the next write), never writing to the
                // rotated-away file.
                *guard = None;
                *guard = Some(open_file(path, *mode)?);
            }
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)?
    }

    fn last_line(&self) -> Option<Vec<u8>> {
        let Target::Path { path, .. } = &*self.0 else {
            return None;
        };
        last_line_of(path).ok().flatten()
    }
}

/// The last complete (newline-terminated) line of the file at `path`.
fn last_line_of(path: &std::path::Path) -> std::io::Result<Option<Vec<u8>>> {
    /// Read from the end; an entry is far shorter in practice, and a line
    /// longer than this only means the chain restarts.
    const TAIL: u64 = 1 << 20;
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(TAIL);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let Some(body) = buf.strip_suffix(b"\n") else {
        return Ok(None);
    };
    let line = match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => &body[i + 1..],
        None if start == 0 => body,
        None => return Ok(None),
    };
    Ok((!line.is_empty()).then(|| line.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    use crate::options::from_pairs as opts;

    #[tokio::test]
    async fn appends_with_the_mode_and_reopens_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.log");
        let p = path.to_str().unwrap();
        let sink = FileSink::open(&opts(&[("file_path", p), ("mode", "0755")])).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        sink.write(b"one\ntwo\n").await.unwrap();
        assert_eq!(sink.last_line().as_deref(), Some(&b"two"[..]));
        std::fs::rename(&path, dir.path().join("sub/audit.log.1")).unwrap();
        sink.write(b"three\n").await.unwrap();
        sink.reopen().await.unwrap();
        sink.write(b"four\n").await.unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sub/audit.log.1")).unwrap(),
            "one\ntwo\nthree\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "four\n");
        let default = FileSink::open(&opts(&[(
            "file_path",
            dir.path().join("d.log").to_str().unwrap(),
        )]))
        .unwrap();
        default.write(b"x\n").await.unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join("d.log")).unwrap().mode() & 0o777,
            0o600
        );
    }

    #[tokio::test]
    async fn stdout_discard_and_refusals() {
        FileSink::open(&opts(&[("file_path", "discard")]))
            .unwrap()
            .write(b"gone\n")
            .await
            .unwrap();
        assert!(FileSink::open(&opts(&[("file_path", "stdout")])).is_ok());
        for (pairs, want) in [
            (&[][..], "file_path is required"),
            (
                &[("file_path", "/tmp/x.log"), ("mode", "rw")][..],
                "unable to parse 'mode'",
            ),
            (
                &[("file_path", "/proc/nope/audit.log")][..],
                "sink creation failed",
            ),
        ] {
            let err = FileSink::open(&opts(pairs)).unwrap_err().to_string();
            assert!(err.starts_with(want), "{pairs:?}: {err}");
        }
    }
}
