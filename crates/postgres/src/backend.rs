//! The storage [`Backend`] on PostgreSQL: reads on a connection pool, writes
//! through one group-committing writer task, optionally fenced by the HA
//! lock.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use strongroom_sdk::storage::{Backend, BatchOp, StorageError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_postgres::IsolationLevel;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::changes::{ChangeLog, Changes, PRUNE_EVERY};
use crate::lock::{Fence, HaLock, LockConfig, LockError, CORE_LOCK_KEY};
use crate::schema::{create_tables, fence_sql, split_key, Statements};
use crate::tls;

/// OpenBao's default data table.
pub const DEFAULT_TABLE: &str = "openbao_kv_store";
/// OpenBao's default lock table.
pub const DEFAULT_HA_TABLE: &str = "openbao_ha_locks";
/// OpenBao's default `max_parallel`.
pub const DEFAULT_MAX_PARALLEL: usize = 128;
/// How many keys one listing query returns at most (further pages follow).
const LIST_PAGE: i64 = 1000;

/// What [`PostgresBackend::connect`] needs (the `storage "postgresql"`
/// stanza, plus tuning knobs with defaults). `Debug` leaves out the
/// connection string (it may hold a password).
#[derive(Clone)]
pub struct PostgresOptions {
    /// A `postgres://` URL or libpq `key=value` words; `sslmode` and
    /// `sslrootcert` are understood as libpq does (see the `tls` notes in
    /// the crate docs).
    pub connection_url: String,
    /// The data table (default [`DEFAULT_TABLE`]).
    pub table: String,
    /// Whether the HA lock is used: the lock table is created too, and
    /// writes are refused until a fence is set ([`PostgresBackend::set_fence`]).
    pub ha_enabled: bool,
    /// The lock table (default [`DEFAULT_HA_TABLE`]).
    pub ha_table: String,
    /// The most connections open at once (default 128, as OpenBao).
    pub max_parallel: usize,
    /// Leave table creation to the operator (OpenBao's documented SQL).
    pub skip_create_table: bool,
    /// The CA certificates (PEM) to verify the server with.
    pub tls_ca_file: Option<PathBuf>,
    /// The most write requests one transaction groups (default 1024).
    pub max_group: usize,
    /// Write requests that may wait for the writer (default 1024); further
    /// writers wait for room.
    pub queue_capacity: usize,
    /// How long one statement or transaction may take before the
    /// connection is discarded and the request fails (default 30 s).
    pub timeout: Duration,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("connection_url", &"<redacted>")
            .field("table", &self.table)
            .field("ha_enabled", &self.ha_enabled)
            .field("ha_table", &self.ha_table)
            .field("max_parallel", &self.max_parallel)
            .field("skip_create_table", &self.skip_create_table)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("max_group", &self.max_group)
            .field("queue_capacity", &self.queue_capacity)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            connection_url: String::new(),
            table: DEFAULT_TABLE.into(),
            ha_enabled: false,
            ha_table: DEFAULT_HA_TABLE.into(),
            max_parallel: DEFAULT_MAX_PARALLEL,
            skip_create_table: false,
            tls_ca_file: None,
            max_group: 1024,
            queue_capacity: 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Whether and how writes are fenced.
#[derive(Debug, Clone)]
enum FenceMode {
    /// HA disabled: writes are not fenced.
    Open,
    /// HA enabled and no lock held: every write is refused.
    Refuse,
    /// Writes commit only while this lock is held (with its check's SQL).
    Holder(Fence, Arc<str>),
}

/// One queued write: its operations and where to send the outcome.
struct WriteRequest {
    ops: Vec<BatchOp>,
    reply: oneshot::Sender<Result<(), StorageError>>,
}

/// What the backend handle and its writer task share.
struct Inner {
    pool: Pool,
    sql: Statements,
    fence: RwLock<FenceMode>,
    commits: AtomicU64,
    timeout: Duration,
    /// With HA: the change log every fenced write records its keys in.
    changes: Option<ChangeLog>,
    /// Told of every write transaction before its writers get their answer.
    observer: RwLock<Option<Arc<dyn CommitObserver>>>,
}

/// Told of the keys of every write transaction this node committed (or
/// may have committed: a timeout), *before* the writers get their answer.
/// An HA active node pushes them to the standbys that serve reads, so that
/// no standby answers older than an acknowledged write.
#[async_trait]
pub trait CommitObserver: Send + Sync {
    /// `keys` were written; returns once the observers that must know do.
    async fn committed(&self, keys: Vec<String>);
}

/// A [`Backend`] on a PostgreSQL table laid out as OpenBao's (see the crate
/// docs). Cheap to share behind an `Arc`; dropping it lets the writer task
/// finish what is queued and end.
pub struct PostgresBackend {
    inner: Arc<Inner>,
    writes: mpsc::Sender<WriteRequest>,
    pg_config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    ha_table: String,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the connection string: it may hold a password.
        f.debug_struct("PostgresBackend")
            .field("commits", &self.commit_count())
            .finish_non_exhaustive()
    }
}

/// A PostgreSQL failure as a storage error (the server's message when it
/// sent one; never the connection string).
pub(crate) fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("PostgreSQL: {} ({})", db.message(), db.code().code()),
        None => {
            let source = std::error::Error::source(e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!("PostgreSQL: {e}{source}")
        }
    }
}

fn io(e: &tokio_postgres::Error) -> StorageError {
    StorageError::Io(pg_error(e))
}

fn pool_error(e: deadpool_postgres::PoolError) -> StorageError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => io(&e),
        other => StorageError::Io(format!("PostgreSQL connection pool: {other}")),
    }
}

fn timed_out() -> StorageError {
    StorageError::Io("PostgreSQL did not answer in time".into())
}

fn build_pool(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    size: usize,
) -> Result<Pool, StorageError> {
    let manager = Manager::from_config(
        config.clone(),
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .build()
        .map_err(|e| StorageError::Io(format!("PostgreSQL connection pool: {e}")))
}

impl PostgresBackend {
    /// Connects, checks the server (PostgreSQL 9.5 or newer), creates the
    /// tables when missing (unless `skip_create_table`) and starts the
    /// writer task. Must run inside a tokio runtime.
    pub async fn connect(options: PostgresOptions) -> Result<Self, StorageError> {
        if options.connection_url.trim().is_empty() {
            return Err(StorageError::Io(
                "connection_url is empty: set it in the storage \"postgresql\" block or in BAO_PG_CONNECTION_URL".into(),
            ));
        }
        let conn = tls::parse_connection(&options.connection_url, options.tls_ca_file.as_deref())
            .map_err(StorageError::Io)?;
        let tls = MakeRustlsConnect::new(tls::client_config(&conn).map_err(StorageError::Io)?);
        let mut pg_config = conn.config;
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(Duration::from_secs(10));
        }
        let pool = build_pool(&pg_config, &tls, options.max_parallel)?;
        {
            let client = tokio::time::timeout(options.timeout, pool.get())
                .await
                .map_err(|_| timed_out())?
                .map_err(pool_error)?;
            let version: i32 = client
                .query_one("SELECT current_setting('server_version_num')::int", &[])
                .await
                .map_err(|e| io(&e))?
                .get(0);
            if version < 90500 {
                return Err(StorageError::Io(
                    "PostgreSQL version must be at least 9.5".into(),
                ));
            }
            if !options.skip_create_table {
                let ha = options.ha_enabled.then_some(options.ha_table.as_str());
                create_tables(&client, &options.table, ha)
                    .await
                    .map_err(|e| io(&e))?;
            }
            if options.ha_enabled {
                // Strongroom's own table: created whatever
                // `skip_create_table` says (see `crate::changes`).
                ChangeLog::new(&options.table)
                    .create(&client)
                    .await
                    .map_err(|e| io(&e))?;
            }
        }
        let inner = Arc::new(Inner {
            pool,
            sql: Statements::new(&options.table),
            fence: RwLock::new(if options.ha_enabled {
                FenceMode::Refuse
            } else {
                FenceMode::Open
            }),
            commits: AtomicU64::new(0),
            timeout: options.timeout,
            changes: options.ha_enabled.then(|| ChangeLog::new(&options.table)),
            observer: RwLock::new(None),
        });
        let (writes, queue) = mpsc::channel(options.queue_capacity.max(1));
        tokio::spawn(writer_loop(
            Arc::clone(&inner),
            queue,
            options.max_group.max(1),
        ));
        Ok(PostgresBackend {
            inner,
            writes,
            pg_config,
            tls,
            ha_table: options.ha_table,
        })
    }

    /// The storage's connection pool (`max_parallel` connections).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// A new, small pool to the same database for the HA lock, so that
    /// renewals never wait behind storage traffic.
    pub fn lock_pool(&self) -> Result<Pool, StorageError> {
        build_pool(&self.pg_config, &self.tls, 2)
    }

    /// The core's HA lock ([`CORE_LOCK_KEY`] in the lock table), on a pool
    /// of its own, advertising `value` (e.g. the node's id) while held.
    pub fn ha_lock(&self, value: &str, config: LockConfig) -> Result<HaLock, LockError> {
        let pool = self
            .lock_pool()
            .map_err(|e| LockError::Database(e.to_string()))?;
        HaLock::new(pool, &self.ha_table, CORE_LOCK_KEY, value, config)
    }

    /// Fences writes on `fence` (a held lock): from now on every write
    /// transaction commits only while that lock is held. `None` refuses
    /// every write (HA enabled, lock not held: a standby, or after a loss).
    ///
    /// Writes already queued are checked against the fence in force when
    /// their transaction starts.
    pub fn set_fence(&self, fence: Option<Fence>) {
        let mode = match fence {
            Some(f) => {
                let sql = fence_sql(f.ha_table());
                FenceMode::Holder(f, sql.into())
            }
            None => FenceMode::Refuse,
        };
        *self
            .inner
            .fence
            .write()
            .unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// Sets (or with `None` removes) the observer every write transaction
    /// reports to before it is acknowledged.
    pub fn set_commit_observer(&self, observer: Option<Arc<dyn CommitObserver>>) {
        *self
            .inner
            .observer
            .write()
            .unwrap_or_else(PoisonError::into_inner) = observer;
    }

    /// Drops every idle pooled connection (the pool opens fresh ones on
    /// demand). After the HA lock was lost to a broken or silent link, the
    /// idle connections may be dead without knowing it; the next requests
    /// must not each wait for one to time out.
    pub fn drop_idle_connections(&self) {
        self.inner.pool.retain(|_, _| false);
    }

    /// The change log after `since` (HA: what a standby must invalidate
    /// before serving a read; see [`crate::changes`]). Empty without HA.
    pub async fn changes_since(&self, since: u64) -> Result<Changes, StorageError> {
        let Some(log) = &self.inner.changes else {
            return Ok(Changes::default());
        };
        let (client, _) = self.client().await?;
        let left = self.inner.timeout;
        match tokio::time::timeout(left, crate::changes::changes_since(&client, log, since)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                drop(Object::take(client));
                Err(timed_out())
            }
        }
    }

    /// How many write transactions have committed since connect (grows
    /// more slowly than acknowledged writes under concurrency: group
    /// commit).
    pub fn commit_count(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// A pooled connection, waited for at most the configured timeout.
    async fn client(&self) -> Result<(Object, Instant), StorageError> {
        let start = Instant::now();
        let client = tokio::time::timeout(self.inner.timeout, self.inner.pool.get())
            .await
            .map_err(|_| timed_out())?
            .map_err(pool_error)?;
        Ok((client, start))
    }

    /// Lists the direct entries of `folder` (OpenBao's `path` form, `/` or
    /// `/a/b/`) in one repeatable-read snapshot.
    async fn list_folder(&self, folder: &str) -> Result<Vec<String>, StorageError> {
        let (mut client, start) = self.client().await?;
        let left = self.inner.timeout.saturating_sub(start.elapsed());
        let sql = &self.inner.sql;
        let work = async {
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            // The folder's upper bound: its last '/' replaced by '0'.
            let upper = format!("{}0", &folder[..folder.len() - 1]);
            let folders = tx.prepare_cached(&sql.list_folders).await?;
            let mut out: Vec<String> = tx
                .query(&folders, &[&folder, &upper])
                .await?
                .iter()
                .map(|row| format!("{}/", row.get::<_, &str>(0)))
                .collect();
            let keys = tx.prepare_cached(&sql.list_keys).await?;
            let mut after = String::new();
            loop {
                let rows = tx.query(&keys, &[&folder, &after, &LIST_PAGE]).await?;
                let n = rows.len();
                for row in rows {
                    out.push(row.get(0));
                }
                match out.last() {
                    Some(last) if n as i64 == LIST_PAGE => after = last.clone(),
                    _ => break,
                }
            }
            tx.commit().await?;
            Ok::<_, tokio_postgres::Error>(out)
        };
        match tokio::time::timeout(left, work).await {
            Ok(Ok(mut out)) => {
                out.sort();
                out.dedup();
                Ok(out)
            }
            Ok(Err(e)) => Err(io(&e)),
            Err(_) => {
                drop(Object::take(client));
                Err(timed_out())
            }
        }
    }
}

/// Checks a key as the other backends do: not empty, no NUL byte (which
/// PostgreSQL's `text` cannot hold anyway).
fn validate_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() || key.contains('\0') {
        return Err(StorageError::InvalidKey(key.to_string()));
    }
    Ok(())
}

#[async_trait]
impl Backend for PostgresBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        validate_key(key)?;
        let (_, path, k) = split_key(key);
        let (client, start) = self.client().await?;
        let left = self.inner.timeout.saturating_sub(start.elapsed());
        let work = async {
            let stmt = client.prepare_cached(&self.inner.sql.get).await?;
            client.query_opt(&stmt, &[&path, &k]).await
        };
        match tokio::time::timeout(left, work).await {
            Ok(Ok(row)) => Ok(row.map(|r| r.get::<_, Option<Vec<u8>>>(0).unwrap_or_default())),
            Ok(Err(e)) => Err(io(&e)),
            Err(_) => {
                drop(Object::take(client));
                Err(timed_out())
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        // The trait's prefixes end in '/'; any other is served as the
        // in-memory backend does: list its folder, keep what starts with
        // the rest.
        let (dir, partial) = match prefix.rfind('/') {
            Some(i) => prefix.split_at(i + 1),
            None => ("", prefix),
        };
        let entries = self.list_folder(&format!("/{dir}")).await?;
        if partial.is_empty() {
            return Ok(entries);
        }
        Ok(entries
            .into_iter()
            .filter_map(|e| e.strip_prefix(partial).map(str::to_string))
            .filter(|e| !e.is_empty())
            .collect())
    }

    async fn batch(&self, ops: Vec<BatchOp>) -> Result<(), StorageError> {
        ops.iter().try_for_each(|op| validate_key(op.key()))?;
        if ops.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        // Waits for room when the queue is full (backpressure); dropped
        // while waiting, nothing is queued.
        self.writes
            .send(WriteRequest { ops, reply })
            .await
            .map_err(|_| StorageError::Closed)?;
        answer.await.map_err(|_| StorageError::Closed)?
    }
}

/// The writer task: one grouped transaction per wake-up until the queue
/// closes (the backend was dropped).
async fn writer_loop(inner: Arc<Inner>, mut queue: mpsc::Receiver<WriteRequest>, max_group: usize) {
    let mut group = Vec::new();
    while queue.recv_many(&mut group, max_group).await > 0 {
        let requests = std::mem::take(&mut group);
        let outcome = commit(&inner, requests.iter().flat_map(|r| &r.ops)).await;
        observe(&inner, &outcome, &requests).await;
        match outcome {
            Ok(()) => {
                inner.commits.fetch_add(1, Ordering::Relaxed);
                for r in requests {
                    let _ = r.reply.send(Ok(()));
                }
            }
            Err(f) if requests.len() == 1 || !f.alone_may_succeed => {
                for r in requests {
                    let copy = match &f.error {
                        StorageError::Fenced(m) => StorageError::Fenced(m.clone()),
                        other => StorageError::Io(other.to_string()),
                    };
                    let _ = r.reply.send(Err(copy));
                }
            }
            Err(f) => {
                tracing::warn!(error = %f.error, requests = requests.len(),
                    "grouped PostgreSQL write failed; retrying requests one by one");
                for r in requests {
                    let outcome = commit(&inner, r.ops.iter()).await;
                    observe(&inner, &outcome, std::slice::from_ref(&r)).await;
                    let outcome = outcome.map_err(|f| f.error);
                    if outcome.is_ok() {
                        inner.commits.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = r.reply.send(outcome);
                }
            }
        }
    }
}

/// Tells the commit observer (if any) of the keys of `requests` after a
/// transaction that reached the database (committed, or unknown after a
/// timeout), before anyone is answered. Observers are idempotent, so
/// telling one of a rolled-back transaction is harmless; one refused by
/// the fence wrote nothing.
async fn observe(inner: &Inner, outcome: &Result<(), Failure>, requests: &[WriteRequest]) {
    if matches!(outcome, Err(f) if matches!(f.error, StorageError::Fenced(_))) {
        return;
    }
    let observer = inner
        .observer
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let Some(observer) = observer else {
        return;
    };
    let mut keys: Vec<String> = requests
        .iter()
        .flat_map(|r| r.ops.iter().map(|op| op.key().to_string()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    observer.committed(keys).await;
}

/// Applies `ops` in one transaction, fenced as set. The last operation on
/// a key wins, so the ops collapse to one upsert and one delete statement.
async fn commit<'a>(inner: &Inner, ops: impl Iterator<Item = &'a BatchOp>) -> Result<(), Failure> {
    let fence = inner
        .fence
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match &fence {
        FenceMode::Refuse => {
            return Err(StorageError::Fenced("this node does not hold the HA lock".into()).into())
        }
        FenceMode::Holder(f, _) if !f.is_held() => {
            return Err(StorageError::Fenced("this node lost the HA lock".into()).into())
        }
        _ => {}
    }
    let mut last: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
    for op in ops {
        match op {
            BatchOp::Put(k, v) => last.insert(k, Some(v)),
            BatchOp::Delete(k) => last.insert(k, None),
        };
    }
    let (mut put_parent, mut put_path, mut put_key, mut put_value) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut del_path, mut del_key) = (Vec::new(), Vec::new());
    // The keys this transaction touches, for the change log (HA).
    let mut touched: Vec<&str> = Vec::new();
    for (key, value) in last {
        touched.push(key);
        let (parent, path, k) = split_key(key);
        match value {
            Some(v) => {
                put_parent.push(parent);
                put_path.push(path);
                put_key.push(k);
                put_value.push(v);
            }
            None => {
                del_path.push(path);
                del_key.push(k);
            }
        }
    }
    let start = Instant::now();
    let mut client = tokio::time::timeout(inner.timeout, inner.pool.get())
        .await
        .map_err(|_| Failure::from(timed_out()))?
        .map_err(|e| Failure::from(pool_error(e)))?;
    let left = inner.timeout.saturating_sub(start.elapsed());
    let work = async {
        let tx = client.transaction().await.map_err(failure)?;
        if let FenceMode::Holder(f, sql) = &fence {
            let held = tx
                .query(
                    &**sql,
                    &[
                        &f.key.as_ref(),
                        &f.identity.as_ref(),
                        &f.idle_timeout_ms.as_ref(),
                    ],
                )
                .await
                .map_err(failure)?;
            if held.is_empty() {
                return Err(StorageError::Fenced(
                    "the HA lock is no longer held by this node".into(),
                )
                .into());
            }
        }
        if !put_key.is_empty() {
            let stmt = tx
                .prepare_cached(&inner.sql.upsert)
                .await
                .map_err(failure)?;
            tx.execute(&stmt, &[&put_parent, &put_path, &put_key, &put_value])
                .await
                .map_err(failure)?;
        }
        if !del_key.is_empty() {
            let stmt = tx
                .prepare_cached(&inner.sql.delete)
                .await
                .map_err(failure)?;
            tx.execute(&stmt, &[&del_path, &del_key])
                .await
                .map_err(failure)?;
        }
        if let (FenceMode::Holder(..), Some(log)) = (&fence, &inner.changes) {
            let stmt = tx.prepare_cached(&log.record).await.map_err(failure)?;
            tx.execute(&stmt, &[&touched]).await.map_err(failure)?;
            if inner.commits.load(Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
                tx.execute(&log.prune, &[]).await.map_err(failure)?;
            }
        }
        tx.commit().await.map_err(failure)
    };
    match tokio::time::timeout(left, work).await {
        Ok(outcome) => outcome,
        Err(_) => {
            drop(Object::take(client));
            Err(StorageError::Io(
                "PostgreSQL did not answer in time; the write may not have been applied".into(),
            )
            .into())
        }
    }
}

/// Why a write transaction failed, and whether its requests might succeed
/// one by one: only when the database refused something in them, never for
/// a fence, a timeout or a lost connection (retrying those alone would only
/// multiply the wait).
struct Failure {
    error: StorageError,
    alone_may_succeed: bool,
}

impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Self {
        Failure {
            error,
            alone_may_succeed: false,
        }
    }
}

fn failure(e: tokio_postgres::Error) -> Failure {
    Failure {
        alone_may_succeed: e.as_db_error().is_some(),
        error: io(&e),
    }
}
