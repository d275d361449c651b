//! The redb backend: an embedded, crash-safe B-tree file with group commit.
//!
//! Layout: one redb table `strongroom` mapping `&str` keys to `&[u8]` values.
//!
//! Writes go through one dedicated writer thread that owns every write
//! transaction. A `put`/`delete`/`batch` sends its operations and a oneshot
//! reply over a channel; the writer takes the first pending request, drains
//! the others already queued (up to [`RedbOptions::max_group`]), applies them
//! in order in ONE write transaction committed with
//! [`Durability::Immediate`] (fsync), and only then answers every waiter. N
//! concurrent writers thus share one fsync, and an acknowledged write
//! survives `kill -9`.
//!
//! Each request stays atomic: keys are validated before a request is queued,
//! and should a grouped transaction still fail, the writer retries each of
//! its requests in a transaction of its own, so one bad request fails alone.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use redb::{Database, DatabaseError, Durability, TableDefinition};
use strongroom_sdk::storage::{Backend, BatchOp, StorageError};
use tokio::sync::oneshot;

use crate::keys::{scan_level, validate_key, validate_ops};

/// The one table holding every entry.
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("strongroom");

/// Tuning knobs for [`RedbBackend::open_with`].
#[derive(Debug, Clone)]
pub struct RedbOptions {
    /// The most write requests one transaction groups (at least 1).
    pub max_group: usize,
    /// redb's page cache size in bytes; `None` keeps redb's default.
    pub cache_size: Option<usize>,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            max_group: 1024,
            cache_size: None,
        }
    }
}

/// One queued write: its operations and where to send the outcome.
struct WriteRequest {
    ops: Vec<BatchOp>,
    reply: oneshot::Sender<Result<(), StorageError>>,
}

/// A [`Backend`] on a redb file, with group commit (see the module docs).
///
/// Dropping it closes the write queue, waits for the writer thread to finish
/// the requests already queued, and releases the file.
pub struct RedbBackend {
    db: Arc<Database>,
    path: PathBuf,
    sender: Option<mpsc::Sender<WriteRequest>>,
    writer: Option<JoinHandle<()>>,
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbBackend")
            .field("path", &self.path)
            .field("commits", &self.commit_count())
            .finish_non_exhaustive()
    }
}

/// Wraps any redb failure as an I/O storage error.
fn io(e: impl Display) -> StorageError {
    StorageError::Io(e.to_string())
}

impl RedbBackend {
    /// Opens the redb file at `path` with default options, creating the file
    /// and its table if missing.
    ///
    /// Fails with [`StorageError::Io`] naming the path when it is a
    /// directory, cannot be created or written, is not a redb file, or is
    /// already open.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        Self::open_with(path, RedbOptions::default())
    }

    /// Like [`open`](Self::open), with explicit [`RedbOptions`].
    pub fn open_with(path: impl AsRef<Path>, options: RedbOptions) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display();
        if path.is_dir() {
            return Err(StorageError::Io(format!(
                "redb storage path {shown} is a directory; expected a file path"
            )));
        }
        let mut builder = Database::builder();
        if let Some(bytes) = options.cache_size {
            builder.set_cache_size(bytes);
        }
        let db = builder.create(&path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => StorageError::Io(format!(
                "redb storage file {shown} is already open (by this or another process)"
            )),
            DatabaseError::Storage(redb::StorageError::Io(io))
                if io.kind() == std::io::ErrorKind::InvalidData =>
            {
                StorageError::Io(format!("{shown} is not a redb database file: {io}"))
            }
            DatabaseError::Storage(redb::StorageError::Io(io)) => {
                StorageError::Io(format!("cannot open redb storage file {shown}: {io}"))
            }
            other => StorageError::Io(format!(
                "{shown} is not a usable redb database file: {other}"
            )),
        })?;
        // Create the table up front so that readers can rely on it existing.
        let txn = db.begin_write().map_err(io)?;
        txn.open_table(TABLE).map_err(io)?;
        txn.commit().map_err(io)?;

        let db = Arc::new(db);
        let commits = Arc::new(AtomicU64::new(0));
        let (sender, receiver) = mpsc::channel();
        let writer = {
            let db = Arc::clone(&db);
            let commits = Arc::clone(&commits);
            let max_group = options.max_group.max(1);
            std::thread::Builder::new()
                .name("strongroom-redb-writer".into())
                .spawn(move || writer_loop(&db, &receiver, &commits, max_group))
                .map_err(|e| StorageError::Io(format!("cannot start redb writer: {e}")))?
        };
        tracing::debug!(path = %shown, "opened redb storage");
        Ok(RedbBackend {
            db,
            path,
            sender: Some(sender),
            writer: Some(writer),
            commits,
        })
    }

    /// How many write transactions the writer has committed since open.
    ///
    /// For observability: with concurrent writers this grows more slowly than
    /// the number of acknowledged writes, which is group commit at work.
    pub fn commit_count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// The file this backend stores into.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RedbBackend {
    fn drop(&mut self) {
        // Closing the channel makes the writer finish what is queued and exit;
        // joining it means the file is released when `drop` returns (so it
        // can be reopened at once). This waits for at most one commit.
        drop(self.sender.take());
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!("redb writer thread panicked");
            }
        }
    }
}

/// The writer thread: one grouped, fsynced transaction per wake-up until the
/// channel closes.
fn writer_loop(
    db: &Database,
    receiver: &mpsc::Receiver<WriteRequest>,
    commits: &AtomicU64,
    max_group: usize,
) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while group.len() < max_group {
            match receiver.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        match commit(db, &group) {
            Ok(()) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for req in group {
                    // The waiter may have gone away (future dropped): the
                    // write is committed anyway, nothing to tell.
                    let _ = req.reply.send(Ok(()));
                }
            }
            Err(e) if group.len() == 1 => {
                tracing::warn!(error = %e, "redb write transaction failed");
                if let Some(req) = group.pop() {
                    let _ = req.reply.send(Err(e));
                }
            }
            Err(e) => {
                // Isolate the culprit: each request alone in its transaction.
                tracing::warn!(error = %e, requests = group.len(),
                    "grouped redb transaction failed; retrying requests one by one");
                for req in group {
                    let outcome = commit(db, std::slice::from_ref(&req));
                    if outcome.is_ok() {
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = req.reply.send(outcome);
                }
            }
        }
    }
}

/// Applies every request of `group`, in order, in one durable transaction.
/// On error nothing is committed (the dropped transaction aborts).
fn commit(db: &Database, group: &[WriteRequest]) -> Result<(), StorageError> {
    let mut txn = db.begin_write().map_err(io)?;
    txn.set_durability(Durability::Immediate);
    {
        let mut table = txn.open_table(TABLE).map_err(io)?;
        for op in group.iter().flat_map(|req| &req.ops) {
            match op {
                BatchOp::Put(k, v) => {
                    table.insert(k.as_str(), v.as_slice()).map_err(io)?;
                }
                BatchOp::Delete(k) => {
                    table.remove(k.as_str()).map_err(io)?;
                }
            }
        }
    }
    txn.commit().map_err(io)
}

/// Lists one level below `prefix` in a read transaction (keys only: the
/// range iterator hands out guards, values are never copied).
fn list_blocking(db: &Database, prefix: &str) -> Result<Vec<String>, StorageError> {
    let txn = db.begin_read().map_err(io)?;
    let table = txn.open_table(TABLE).map_err(io)?;
    scan_level(prefix, |start| {
        Ok(table
            .range(start..)
            .map_err(io)?
            .map(|entry| entry.map(|(k, _)| k.value().to_string()).map_err(io)))
    })
}

#[async_trait]
impl Backend for RedbBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_key(key)?;
        // Inline rather than `spawn_blocking`: a point read is one B-tree
        // descent, normally from redb's page cache, a few microseconds, well
        // under the cost of handing the work to the blocking pool and back.
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(TABLE).map_err(io)?;
        let value = table.get(key).map_err(io)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        // On the blocking pool: a listing visits every direct child of the
        // prefix, which is unbounded (and may read many pages from disk).
        let db = Arc::clone(&self.db);
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || list_blocking(&db, &prefix))
            .await
            .map_err(|e| StorageError::Io(format!("redb list task failed: {e}")))?
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), StorageError> {
        validate_ops(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        let sender = self.sender.as_ref().ok_or(StorageError::Closed)?;
        sender
            .send(WriteRequest { ops, reply })
            .map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn open_err(path: &Path) -> String {
        match RedbBackend::open(path) {
            Ok(_) => panic!("opening {} should fail", path.display()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let msg = open_err(dir.path());
        assert!(msg.contains("is a directory"), "{msg}");
    }

    #[test]
    fn refuses_a_missing_parent_directory() {
        let dir = tempfile::tempdir().unwrap();
        let msg = open_err(&dir.path().join("missing/sub/data.redb"));
        assert!(msg.contains("cannot open"), "{msg}");
    }

    #[test]
    fn refuses_a_file_that_is_not_redb_and_leaves_it_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        for content in ["this is not a database ".repeat(100), "hi".to_string()] {
            std::fs::write(&path, &content).unwrap();
            let msg = open_err(&path);
            assert!(msg.contains("not a redb database file"), "{msg}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        }
    }

    #[test]
    fn refuses_a_second_open_of_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let _first = RedbBackend::open(&path).unwrap();
        let msg = open_err(&path);
        assert!(msg.contains("already open"), "{msg}");
    }

    #[test]
    fn creates_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.redb");
        let backend = RedbBackend::open(&path).unwrap();
        assert!(path.is_file());
        assert_eq!(backend.path(), path);
        assert_eq!(backend.commit_count(), 0);
    }
}
