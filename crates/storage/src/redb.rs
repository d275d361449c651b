//! The redb backend: an embedded, crash-safe B-tree file with group commit.
//!
//! Layout: one redb table `strongroom` mapping `&str` keys to `&[u8]` values.
//!
//! **Writes** go through one dedicated writer thread that owns every write
//! transaction. A `put`/`delete`/`batch` sends its operations and a oneshot
//! reply into a *bounded* queue ([`RedbOptions::queue_capacity`] requests).
//! The writer takes everything queued (up to [`RedbOptions::max_group`]
//! requests), applies it in order in ONE write transaction committed with
//! [`Durability::Immediate`] (fsync), and only then answers every waiter. N
//! concurrent writers thus share one fsync, and an acknowledged write
//! survives `kill -9`.
//!
//! When the queue is full, the next writer *waits* for room (asynchronously,
//! in arrival order) instead of failing or growing the queue: that is the
//! backpressure that keeps memory bounded under overload. A writer dropped
//! while it waits for room has queued nothing, so its write never happens;
//! once queued, a write is committed even if its waiter goes away.
//!
//! Each request stays atomic: keys are validated before a request is queued,
//! and should a grouped transaction still fail, the writer retries each of
//! its requests in a transaction of its own, so one bad request fails alone.
//!
//! **Reads** (`get` and `list`) run on a small pool of dedicated reader
//! threads ([`RedbOptions::reader_threads`]), never on the async runtime's
//! worker threads: a read that has to wait for the disk stalls a reader,
//! not the requests sharing a runtime worker. The hand-off costs a few
//! microseconds (a context switch when the server has one core), so the
//! server puts a [`CachedBackend`](crate::CachedBackend) in front (OpenBao's
//! `cache_size`): hot keys are answered from memory. Readers see the last committed
//! transaction; they never wait for the writer.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use redb::{Database, DatabaseError, Durability, TableDefinition};
use strongroom_sdk::storage::{Backend, BatchOp, StorageError};
use tokio::sync::{mpsc, oneshot};

use crate::keys::{scan_level, validate_key, validate_ops};

/// The one table holding every entry.
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("strongroom");

/// Tuning knobs for [`RedbBackend::open_with`].
///
/// The defaults suit a server; `0` is taken as `1` for every count.
#[derive(Debug, Clone)]
pub struct RedbOptions {
    /// The most write requests one transaction groups (default 1024).
    pub max_group: usize,
    /// How many write requests may wait in the queue to the writer thread
    /// (default 1024). When it is full, further writers wait for room
    /// (backpressure), so at most `queue_capacity + max_group` requests are
    /// held in memory at once: those queued plus those being committed.
    /// Counted in requests, not bytes: a request is one `put`, `delete` or
    /// `batch` with its values.
    pub queue_capacity: usize,
    /// How many dedicated threads run read transactions (default: the
    /// number of CPUs, at least 4 and at most 16, so that a few reads
    /// waiting on the disk can overlap even on a small machine).
    pub reader_threads: usize,
    /// redb's page cache size in bytes; `None` keeps redb's default.
    pub cache_size: Option<usize>,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            max_group: 1024,
            queue_capacity: 1024,
            reader_threads: std::thread::available_parallelism()
                .map_or(4, |n| n.get())
                .clamp(4, 16),
            cache_size: None,
        }
    }
}

/// One queued write: its operations and where to send the outcome.
struct WriteRequest {
    ops: Vec<BatchOp>,
    reply: oneshot::Sender<Result<(), StorageError>>,
}

/// One read handed to the reader pool, with where to send its result.
enum ReadJob {
    Get {
        key: String,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, StorageError>>,
    },
    List {
        prefix: String,
        reply: oneshot::Sender<Result<Vec<String>, StorageError>>,
    },
}

/// A [`Backend`] on a redb file, with group commit (see the module docs).
///
/// Dropping it closes the write and read queues, waits for the writer and
/// reader threads to finish the requests already queued, and releases the
/// file.
pub struct RedbBackend {
    db: Arc<Database>,
    path: PathBuf,
    writes: Option<mpsc::Sender<WriteRequest>>,
    reads: Option<crossbeam_channel::Sender<ReadJob>>,
    threads: Vec<JoinHandle<()>>,
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
        prepare_location(&path)?;
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
        restrict_file(&path)?;
        // Create the table up front so that readers can rely on it existing.
        let txn = db.begin_write().map_err(io)?;
        txn.open_table(TABLE).map_err(io)?;
        txn.commit().map_err(io)?;

        let (write_sender, write_receiver) = mpsc::channel(options.queue_capacity.max(1));
        let (read_sender, read_receiver) = crossbeam_channel::unbounded();
        let mut backend = RedbBackend {
            db: Arc::new(db),
            path,
            writes: Some(write_sender),
            reads: Some(read_sender),
            threads: Vec::new(),
            commits: Arc::new(AtomicU64::new(0)),
        };
        // Should a thread fail to start, returning drops `backend`, whose
        // `Drop` closes the queues and joins the threads already started.
        let writer = {
            let db = Arc::clone(&backend.db);
            let commits = Arc::clone(&backend.commits);
            let max_group = options.max_group.max(1);
            std::thread::Builder::new()
                .name("strongroom-redb-writer".into())
                .spawn(move || writer_loop(&db, write_receiver, &commits, max_group))
                .map_err(|e| StorageError::Io(format!("cannot start redb writer: {e}")))?
        };
        backend.threads.push(writer);
        for _ in 0..options.reader_threads.max(1) {
            let db = Arc::clone(&backend.db);
            let jobs = read_receiver.clone();
            let reader = std::thread::Builder::new()
                .name("strongroom-redb-reader".into())
                .spawn(move || reader_loop(&db, &jobs))
                .map_err(|e| StorageError::Io(format!("cannot start redb reader: {e}")))?;
            backend.threads.push(reader);
        }
        tracing::debug!(path = %backend.path.display(), "opened redb storage");
        Ok(backend)
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

    /// Runs a read on the reader pool and waits for its result.
    ///
    /// Why a dedicated pool rather than `tokio::task::spawn_blocking`: for
    /// small point reads it is faster. Measured with
    /// `examples/read_dispatch.rs` (redb, 200-byte values from the page
    /// cache, release build, a busy 2-CPU machine, so ranges over runs):
    /// one read at a time took ~7-19 µs through the pool against ~17-50 µs
    /// through `spawn_blocking`, and 64 concurrent readers ~1.2-7 µs per
    /// read against ~6-18 µs; the pool was never the slower one. Its threads
    /// stay awake while work is queued (crossbeam's channel spins briefly
    /// before parking), whereas `spawn_blocking` pays tokio's blocking-pool
    /// hand-off per call and grows to hundreds of threads under load. The
    /// pool also bounds how many read transactions run at once and works on
    /// any runtime, current-thread included. (Inline reads, ~1 µs, are
    /// faster still, but stall a runtime worker whenever a read has to wait
    /// for the disk.)
    async fn read<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StorageError>>) -> ReadJob,
    ) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel();
        let reads = self.reads.as_ref().ok_or(StorageError::Closed)?;
        // The queue holds at most one job per caller waiting on its answer
        // (plus abandoned ones, skipped cheaply), and no values: unbounded
        // is safe here, unlike the write queue.
        reads.send(job(reply)).map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }
}

impl Drop for RedbBackend {
    fn drop(&mut self) {
        // Closing the queues makes the threads finish what is queued and
        // exit; joining them means the file is released when `drop` returns
        // (so it can be reopened at once). This waits for at most one commit.
        drop(self.writes.take());
        drop(self.reads.take());
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("redb storage thread panicked");
            }
        }
    }
}

/// The writer thread: one grouped, fsynced transaction per wake-up until the
/// queue closes.
fn writer_loop(
    db: &Database,
    mut receiver: mpsc::Receiver<WriteRequest>,
    commits: &AtomicU64,
    max_group: usize,
) {
    let mut group = Vec::new();
    // Waits for the first request, then takes every other one already
    // queued (up to `max_group`); taking them frees their queue slots, so
    // new writers can queue while this group commits. Returns 0 only once
    // the queue is closed and empty (`max_group` is at least 1). This is a
    // plain thread, outside any runtime, where blocking is allowed.
    while receiver.blocking_recv_many(&mut group, max_group) > 0 {
        commit_group(db, std::mem::take(&mut group), commits);
    }
}

/// Commits `group` as one transaction and answers its waiters; on failure,
/// retries each request alone so that only the culprit fails.
fn commit_group(db: &Database, mut group: Vec<WriteRequest>, commits: &AtomicU64) {
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

/// Warns when the folder of the database file may be entered by other
/// users (0700 is recommended). The folder is the operator's: it is left as
/// it is, and a missing one is refused when the file is created (a typo in
/// `path` should not make a new tree somewhere).
fn prepare_location(path: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(meta) = dir.and_then(|d| std::fs::metadata(d).ok()) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    folder = %dir.map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
                    mode = format!("{mode:o}"),
                    "the storage folder is open to other users; 0700 is recommended"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Makes the database file readable and writable by the server's user only
/// (0600), whoever created it: it holds the sealed data.
fn restrict_file(path: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            StorageError::Io(format!(
                "cannot restrict {} to mode 0600: {e}",
                path.display()
            ))
        })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A reader thread: runs read jobs until the queue closes. A job whose
/// caller has gone away (future dropped) is skipped.
fn reader_loop(db: &Database, jobs: &crossbeam_channel::Receiver<ReadJob>) {
    for job in jobs {
        match job {
            ReadJob::Get { key, reply } => {
                if !reply.is_closed() {
                    let _ = reply.send(get_blocking(db, &key));
                }
            }
            ReadJob::List { prefix, reply } => {
                if !reply.is_closed() {
                    let _ = reply.send(list_blocking(db, &prefix));
                }
            }
        }
    }
}

/// Reads `key` in a read transaction: one B-tree descent.
fn get_blocking(db: &Database, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
    let txn = db.begin_read().map_err(io)?;
    let table = txn.open_table(TABLE).map_err(io)?;
    let value = table.get(key).map_err(io)?;
    Ok(value.map(|v| v.value().to_vec()))
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
        let key = key.to_string();
        self.read(|reply| ReadJob::Get { key, reply }).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let prefix = prefix.to_string();
        self.read(|reply| ReadJob::List { prefix, reply }).await
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), StorageError> {
        validate_ops(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        let writes = self.writes.as_ref().ok_or(StorageError::Closed)?;
        // Waits for room when the queue is full (backpressure); cancel-safe:
        // dropped while waiting, nothing is queued.
        writes
            .send(WriteRequest { ops, reply })
            .await
            .map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    type Write<'a> = Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>>;

    /// Polls `fut` once, without waiting: whether it finished, and how.
    fn poll_once<T>(fut: &mut Pin<Box<dyn Future<Output = T> + Send + '_>>) -> Poll<T> {
        fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    fn open_small(dir: &tempfile::TempDir, max_group: usize, queue_capacity: usize) -> RedbBackend {
        let options = RedbOptions {
            max_group,
            queue_capacity,
            ..RedbOptions::default()
        };
        RedbBackend::open_with(dir.path().join("data.redb"), options).unwrap()
    }

    // The tests below hold the commit path by holding a write transaction
    // of their own: redb allows one at a time, so the writer thread blocks
    // in `begin_write` until the test drops it. No timing is involved.

    #[cfg(unix)]
    #[test]
    fn the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.redb");
        let b = RedbBackend::open(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        drop(b);
        // A file made by someone else with a looser mode is tightened.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _b = RedbBackend::open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_next_writer_wait_until_it_drains() {
        let dir = tempfile::tempdir().unwrap();
        // One request in the queue, one being committed: two at most.
        let b = open_small(&dir, 1, 1);
        let hold = b.db.begin_write().unwrap();
        let mut writes: Vec<Write<'_>> = ["w0", "w1", "w2", "w3"]
            .into_iter()
            .map(|k| b.put(k, k.as_bytes().to_vec()))
            .collect();
        // Nobody fails and nobody is answered: w0 (and perhaps w1) are
        // queued or committing; w2 and w3 find the queue full and wait.
        for w in &mut writes {
            assert!(poll_once(w).is_pending());
        }
        // A writer dropped while it waits for room has queued nothing: w3
        // never happens. (With an unbounded queue it would be queued, and
        // the writer commits queued writes whatever becomes of their waiter.)
        drop(writes.pop());
        drop(hold);
        // The queue drains: every waiting writer gets in and is acknowledged.
        for w in writes {
            w.await.unwrap();
        }
        // The queue is first in, first out: once a later write is
        // acknowledged, anything queued before it has been committed.
        b.put("w4", b"w4".to_vec()).await.unwrap();
        for k in ["w0", "w1", "w2", "w4"] {
            assert_eq!(b.get(k).await.unwrap(), Some(k.as_bytes().to_vec()));
        }
        assert_eq!(b.get("w3").await.unwrap(), None);
        assert_eq!(b.list("").await.unwrap(), vec!["w0", "w1", "w2", "w4"]);
    }

    #[tokio::test]
    async fn the_writer_commits_everything_queued_in_one_transaction_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let b = open_small(&dir, 1024, 16);
        let hold = b.db.begin_write().unwrap();
        // Queued in this order while the writer is held: later ones win.
        let mut writes: Vec<Write<'_>> = vec![
            b.put("k", b"1".to_vec()),
            b.batch(vec![
                BatchOp::Put("k".into(), b"2".to_vec()),
                BatchOp::Put("other".into(), b"x".to_vec()),
            ]),
            b.delete("k"),
            b.put("k", b"3".to_vec()),
            b.batch(vec![
                BatchOp::Delete("other".into()),
                BatchOp::Put("last".into(), b"y".to_vec()),
            ]),
        ];
        for w in &mut writes {
            assert!(poll_once(w).is_pending());
        }
        drop(hold);
        for w in writes {
            w.await.unwrap();
        }
        // The writer may have taken the first request before the others
        // were queued; everything queued behind it goes in one transaction.
        assert!(b.commit_count() <= 2, "{} commits", b.commit_count());
        assert_eq!(b.get("k").await.unwrap(), Some(b"3".to_vec()));
        assert_eq!(b.get("other").await.unwrap(), None);
        assert_eq!(b.get("last").await.unwrap(), Some(b"y".to_vec()));
    }

    #[tokio::test]
    async fn a_read_sees_the_last_commit_while_the_writer_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let b = open_small(&dir, 1024, 16);
        b.put("k", b"old".to_vec()).await.unwrap();
        let hold = b.db.begin_write().unwrap();
        let mut pending: Write<'_> = b.put("k", b"new".to_vec());
        assert!(poll_once(&mut pending).is_pending());
        // Readers do not wait for the writer, nor see unacknowledged writes.
        assert_eq!(b.get("k").await.unwrap(), Some(b"old".to_vec()));
        assert_eq!(b.list("").await.unwrap(), vec!["k"]);
        drop(hold);
        pending.await.unwrap();
        assert_eq!(b.get("k").await.unwrap(), Some(b"new".to_vec()));
    }

    #[test]
    fn zero_counts_in_options_are_taken_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let options = RedbOptions {
            max_group: 0,
            queue_capacity: 0,
            reader_threads: 0,
            cache_size: None,
        };
        let b = RedbBackend::open_with(dir.path().join("data.redb"), options).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            b.put("k", b"v".to_vec()).await.unwrap();
            assert_eq!(b.get("k").await.unwrap(), Some(b"v".to_vec()));
        });
        assert_eq!(b.commit_count(), 1);
    }

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
