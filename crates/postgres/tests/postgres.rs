//! The PostgreSQL backend against a real, throw-away PostgreSQL
//! (`strongroom_test::postgres`): the `Backend` contract with list results
//! compared to the in-memory backend's, OpenBao's table layout and
//! documented SQL, group commit, and the HA lock with fencing.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use strongroom_postgres::{
    HaLock, LockConfig, PostgresBackend, PostgresOptions, CORE_LOCK_KEY, DEFAULT_HA_TABLE,
};
use strongroom_sdk::storage::{Backend, BatchOp, StorageError};
use strongroom_storage::InmemBackend;
use strongroom_test::postgres::{Postgres, Proxy};
use tokio::time::Instant;

fn options(url: &str) -> PostgresOptions {
    PostgresOptions {
        connection_url: url.to_string(),
        max_parallel: 8,
        ..PostgresOptions::default()
    }
}

async fn open(url: &str) -> PostgresBackend {
    PostgresBackend::connect(options(url)).await.unwrap()
}

/// A direct client for inspecting the tables.
async fn psql(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

fn put(k: &str, v: &[u8]) -> BatchOp {
    BatchOp::Put(k.to_string(), v.to_vec())
}

fn del(k: &str) -> BatchOp {
    BatchOp::Delete(k.to_string())
}

/// Keys whose listings exercise folders, look-alike names around '/'
/// ('.' sorts before it, '0' right after), empty segments and non-ASCII.
const KEYS: &[&str] = &[
    "z",
    "foo",
    "foo/bar",
    "foo/baz/qux",
    "foo/baz/quux",
    "foo/a/b/c",
    "a/b",
    "foo.x",
    "foo.x/y",
    "foo0",
    "foo0/q",
    "foo-/r",
    "sys/token/id/h1",
    "sys/token/id/h2",
    "sys/token/accessor/a1",
    "logical/uuid/data/x",
    "a//b",
    "a/",
    "é/ü",
    "é",
    "%/_",
    "%a",
];

const PREFIXES: &[&str] = &[
    "",
    "foo/",
    "foo/baz/",
    "foo/a/",
    "foo/a/b/",
    "a/",
    "a//",
    "nope/",
    "foo/bar/",
    "sys/",
    "sys/token/",
    "sys/token/id/",
    "é/",
    "%/",
    "fo",
    "foo/b",
    "sys/token/i",
];

/// Runs the same operations on `pg` and on an in-memory backend, and
/// compares every answer.
async fn same_as_inmem(pg: &PostgresBackend) {
    let mem = InmemBackend::new();
    let both = |ops: Vec<BatchOp>| {
        let ops2 = ops.clone();
        let mem = &mem;
        async move {
            pg.batch(ops).await.unwrap();
            mem.batch(ops2).await.unwrap();
        }
    };
    let check = |label: &'static str| {
        let mem = &mem;
        async move {
            for prefix in PREFIXES {
                assert_eq!(
                    pg.list(prefix).await.unwrap(),
                    mem.list(prefix).await.unwrap(),
                    "{label}: list({prefix:?})"
                );
            }
            for key in KEYS {
                assert_eq!(
                    pg.get(key).await.unwrap(),
                    mem.get(key).await.unwrap(),
                    "{label}: get({key:?})"
                );
            }
        }
    };
    check("empty").await;
    for k in KEYS {
        both(vec![put(k, k.as_bytes())]).await;
    }
    check("all keys").await;
    both(vec![del("foo/baz/qux"), del("foo/baz/quux"), del("a//b")]).await;
    check("after deletes").await;
    // A batch applies its operations in order: the last one on a key wins.
    both(vec![
        put("batch/a", b"1"),
        put("batch/b", b"2"),
        del("z"),
        put("batch/c", b"3"),
        del("batch/c"),
        del("batch/d"),
        put("batch/d", b"4"),
        put("batch/a", b"5"),
    ])
    .await;
    check("after a batch").await;
    assert_eq!(pg.list("batch/").await.unwrap(), vec!["a", "b", "d"]);
    assert_eq!(pg.get("batch/a").await.unwrap(), Some(b"5".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_the_backend_contract_and_lists_as_inmem() {
    let pg = Postgres::start();
    let b = open(&pg.fresh_url()).await;
    same_as_inmem(&b).await;

    // Values are opaque bytes; an empty value is not a missing one.
    let all: Vec<u8> = (0..=255).collect();
    b.put("bin", all.clone()).await.unwrap();
    assert_eq!(b.get("bin").await.unwrap(), Some(all));
    b.put("empty", Vec::new()).await.unwrap();
    assert_eq!(b.get("empty").await.unwrap(), Some(Vec::new()));
    b.delete("never-existed").await.unwrap();

    // Invalid keys are refused and a batch holding one applies nothing.
    for bad in ["", "nul\0byte"] {
        assert!(matches!(
            b.put(bad, b"x".to_vec()).await,
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(b.get(bad).await, Err(StorageError::InvalidKey(_))));
    }
    let err = b
        .batch(vec![put("batch/e", b"5"), del("batch/a"), put("", b"6")])
        .await;
    assert!(matches!(err, Err(StorageError::InvalidKey(_))));
    assert_eq!(b.get("batch/e").await.unwrap(), None);
    assert_eq!(b.get("batch/a").await.unwrap(), Some(b"5".to_vec()));

    // Long keys, and listings longer than one page (1000 keys).
    let long = format!("long/{}", "k".repeat(8192));
    b.put(&long, b"v".to_vec()).await.unwrap();
    assert_eq!(b.list("long/").await.unwrap(), vec!["k".repeat(8192)]);
    let many: Vec<BatchOp> = (0..2500)
        .map(|i| put(&format!("many/{i:05}"), b"x"))
        .chain((0..30).map(|i| put(&format!("many/d{i:02}/deep/er"), b"x")))
        .collect();
    b.batch(many).await.unwrap();
    let listed = b.list("many/").await.unwrap();
    assert_eq!(listed.len(), 2530);
    assert_eq!(listed[0], "00000");
    assert_eq!(listed[2499], "02499");
    assert_eq!(listed[2500], "d00/");
    assert!(listed.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_rows_as_openbao_and_works_on_tables_made_by_its_documented_sql() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let sql = psql(&url).await;
    // OpenBao's "Manually creating tables", verbatim.
    sql.batch_execute(
        r#"CREATE TABLE openbao_kv_store (
  parent_path TEXT COLLATE "C" NOT NULL,
  path        TEXT COLLATE "C",
  key         TEXT COLLATE "C",
  value       BYTEA,
  CONSTRAINT pkey PRIMARY KEY (path, key)
);

CREATE INDEX parent_path_idx ON openbao_kv_store (parent_path);

CREATE TABLE openbao_ha_locks (
  ha_key                                      TEXT COLLATE "C" NOT NULL,
  ha_identity                                 TEXT COLLATE "C" NOT NULL,
  ha_value                                    TEXT COLLATE "C",
  valid_until                                 TIMESTAMP WITH TIME ZONE NOT NULL,
  CONSTRAINT ha_key PRIMARY KEY (ha_key)
);"#,
    )
    .await
    .unwrap();
    let b = PostgresBackend::connect(PostgresOptions {
        skip_create_table: true,
        ha_enabled: true,
        ..options(&url)
    })
    .await
    .unwrap();
    // HA enabled and no lock held: writes are refused.
    let refused = b.put("a/b/c", b"v".to_vec()).await;
    assert!(
        matches!(&refused, Err(StorageError::Fenced(m)) if m.contains("does not hold the HA lock")),
        "{refused:?}"
    );
    let lock = b.ha_lock("node-1", fast_lock()).unwrap();
    let held = lock.acquire().await;
    b.set_fence(Some(held.fence()));
    b.batch(vec![
        put("a/b/c", b"v1"),
        put("a/b", b"v2"),
        put("top", b"v3"),
    ])
    .await
    .unwrap();
    assert_eq!(b.list("a/").await.unwrap(), vec!["b", "b/"]);
    assert_eq!(b.get("a/b/c").await.unwrap(), Some(b"v1".to_vec()));
    // The rows are split exactly as OpenBao splits keys.
    let rows = sql
        .query(
            "SELECT parent_path, path, key FROM openbao_kv_store ORDER BY path, key",
            &[],
        )
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let row = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        rows,
        vec![
            row("", "/", "top"),
            row("/", "/a/", "b"),
            row("/a/", "/a/b/", "c")
        ]
    );
    // The lock row advertises the holder's value.
    let leader = lock.leader().await.unwrap().unwrap();
    assert_eq!(leader.value, "node-1");
    assert_eq!(leader.identity, held.identity());
    // No other table was made but Strongroom's own change log (HA: what
    // standbys invalidate; see `strongroom_postgres::changes`).
    let tables: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_missing_tables_once_and_refuses_a_bad_url_without_echoing_it() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let opts = PostgresOptions {
        table: "my \"kv\"".into(),
        ha_enabled: true,
        ha_table: "my_locks".into(),
        ..options(&url)
    };
    let first = PostgresBackend::connect(opts.clone()).await.unwrap();
    drop(first);
    // A second node opening the same database finds the tables made.
    let _second = PostgresBackend::connect(opts).await.unwrap();
    let sql = psql(&url).await;
    let names: Vec<String> = sql
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, vec!["my \"kv\"", "my \"kv\"_changes", "my_locks"]);

    let err = PostgresBackend::connect(options(&format!(
        "postgres://strongroom:hunter2@127.0.0.1:{}/nosuchdb?sslmode=disable",
        pg.port()
    )))
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("database \"nosuchdb\" does not exist"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_group_committed_and_all_land() {
    let pg = Postgres::start();
    let b = Arc::new(open(&pg.fresh_url()).await);
    let writers: Vec<_> = (0..1000)
        .map(|i| {
            let b = Arc::clone(&b);
            tokio::spawn(async move {
                b.put(&format!("w/{i:04}"), i.to_string().into_bytes())
                    .await
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap().unwrap();
    }
    let listed = b.list("w/").await.unwrap();
    assert_eq!(listed.len(), 1000);
    for i in [0, 1, 499, 999] {
        assert_eq!(
            b.get(&format!("w/{i:04}")).await.unwrap(),
            Some(i.to_string().into_bytes())
        );
    }
    // Writers shared transactions.
    assert!(b.commit_count() < 1000, "{} commits", b.commit_count());
}

/// Short timings so that the lock tests run in seconds.
fn fast_lock() -> LockConfig {
    LockConfig {
        ttl: Duration::from_millis(1500),
        renew_interval: Duration::from_millis(300),
        retry_interval: Duration::from_millis(100),
        margin: Duration::from_millis(300),
    }
}

async fn lock_on(url: &str, value: &str, config: LockConfig) -> (PostgresBackend, HaLock) {
    let b = PostgresBackend::connect(PostgresOptions {
        ha_enabled: true,
        ..options(url)
    })
    .await
    .unwrap();
    let lock = b.ha_lock(value, config).unwrap();
    (b, lock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_and_release_hands_over_at_once() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let (_a, lock_a) = lock_on(&url, "a", fast_lock()).await;
    let (_b, lock_b) = lock_on(&url, "b", fast_lock()).await;
    assert_eq!(lock_a.leader().await.unwrap(), None);
    let held_a = lock_a.acquire().await;
    assert!(held_a.is_held());
    // The other contender cannot take it while it is renewed.
    for _ in 0..3 {
        assert!(lock_b.try_acquire().await.unwrap().is_none());
    }
    assert_eq!(lock_b.leader().await.unwrap().unwrap().value, "a");
    held_a.release().await.unwrap();
    assert_eq!(lock_b.leader().await.unwrap(), None);
    let held_b = lock_b
        .try_acquire()
        .await
        .unwrap()
        .expect("free after release");
    assert_eq!(lock_a.leader().await.unwrap().unwrap().value, "b");
    assert!(held_b.is_held());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_is_replaced_within_ttl_and_retry() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let cfg = fast_lock();
    // The holder lives on a runtime of its own; shutting that runtime down
    // stops it dead, as kill -9 does: no release, no more renewals.
    let holder_rt = tokio::runtime::Runtime::new().unwrap();
    let url2 = url.clone();
    let (held, backend) = holder_rt
        .spawn(async move {
            let (b, lock) = lock_on(&url2, "doomed", fast_lock()).await;
            (lock.acquire().await, b)
        })
        .await
        .unwrap();
    let identity = held.identity().to_string();
    std::mem::forget(held);
    std::mem::forget(backend);
    holder_rt.shutdown_background();
    let killed = Instant::now();

    let (_b, lock) = lock_on(&url, "survivor", cfg.clone()).await;
    let held = lock.acquire().await;
    let took = killed.elapsed();
    assert_ne!(held.identity(), identity);
    assert!(
        took <= cfg.ttl + cfg.retry_interval + Duration::from_millis(700),
        "took over after {took:?}"
    );
    assert_eq!(lock.leader().await.unwrap().unwrap().value, "survivor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_connection_hangs_steps_down_before_the_database_expiry_and_cannot_write() {
    partitioned_holder(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_connection_is_reset_steps_down_before_the_database_expiry_and_cannot_write()
{
    partitioned_holder(true).await;
}

/// The holder's link to PostgreSQL fails: silently (`cut` false: nothing
/// flows, nothing is closed) or loudly (`cut`: every connection closed).
async fn partitioned_holder(cut: bool) {
    let pg = Postgres::start();
    let db = pg.create_database();
    let url = pg.url_for(&db);
    let cfg = fast_lock();
    let proxy = Proxy::start(([127, 0, 0, 1], pg.port()).into()).await;
    let via_proxy = pg.url_via(&proxy.addr.to_string(), &db);
    let (old_backend, old_lock) = lock_on(&via_proxy, "old", cfg.clone()).await;
    let held = old_lock.acquire().await;
    old_backend.set_fence(Some(held.fence()));
    old_backend.put("k", b"before".to_vec()).await.unwrap();

    if cut {
        proxy.cut();
    } else {
        // A silent partition: nothing flows, nothing is reset.
        proxy.freeze();
    }
    held.lost().await;
    assert!(!held.is_held());
    // At that moment the database still holds the lock for the old node:
    // it knew before anyone else could take over.
    let sql = psql(&url).await;
    let live: i64 = sql
        .query_one(
            &format!(
                "SELECT count(*) FROM {DEFAULT_HA_TABLE} \
                 WHERE ha_key = $1 AND ha_identity = $2 AND valid_until > now()"
            ),
            &[&CORE_LOCK_KEY, &held.identity()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        live, 1,
        "the old holder noticed only after the lock expired"
    );

    // Another node takes over once the row expires.
    let (new_backend, new_lock) = lock_on(&url, "new", cfg.clone()).await;
    let new_held = new_lock.acquire().await;
    new_backend.set_fence(Some(new_held.fence()));
    new_backend.put("k", b"after".to_vec()).await.unwrap();

    // The link heals; the old node's write is refused (it knows it lost).
    proxy.heal();
    let err = old_backend.put("k", b"zombie".to_vec()).await;
    assert!(
        matches!(&err, Err(StorageError::Fenced(m)) if m.contains("lost the HA lock")),
        "{err:?}"
    );
    assert_eq!(new_backend.get("k").await.unwrap(), Some(b"after".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_write_from_a_holder_that_lost_the_row_is_refused_inside_the_transaction() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    // The old holder renews rarely, so it still believes it holds the lock
    // when the row is taken from it: only the in-transaction check stands
    // between it and the data.
    let slow = LockConfig {
        ttl: Duration::from_secs(60),
        renew_interval: Duration::from_secs(20),
        retry_interval: Duration::from_secs(1),
        margin: Duration::from_secs(1),
    };
    let (old_backend, old_lock) = lock_on(&url, "old", slow).await;
    let old = old_lock.acquire().await;
    old_backend.set_fence(Some(old.fence()));
    old_backend.put("k", b"v1".to_vec()).await.unwrap();

    // The row expires (here: by hand) and another node takes it.
    let sql = psql(&url).await;
    sql.execute(
        &format!("UPDATE {DEFAULT_HA_TABLE} SET valid_until = now() - interval '1 second'"),
        &[],
    )
    .await
    .unwrap();
    let (new_backend, new_lock) = lock_on(&url, "new", fast_lock()).await;
    let new = new_lock
        .try_acquire()
        .await
        .unwrap()
        .expect("expired row taken");
    new_backend.set_fence(Some(new.fence()));
    assert!(old.is_held(), "the old holder has not noticed yet");

    let err = old_backend
        .batch(vec![put("k", b"zombie"), put("other", b"x")])
        .await;
    assert!(
        matches!(&err, Err(StorageError::Fenced(m)) if m.contains("no longer held")),
        "{err:?}"
    );
    assert_eq!(new_backend.get("k").await.unwrap(), Some(b"v1".to_vec()));
    assert_eq!(new_backend.get("other").await.unwrap(), None);
    // Clearing the fence refuses every write.
    new_backend.set_fence(None);
    assert!(matches!(
        new_backend.put("x", b"y".to_vec()).await,
        Err(StorageError::Fenced(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_follows_libpq_sslmodes_with_a_ca_file() {
    let pg = Postgres::start_tls();
    let db = pg.create_database();
    let port = pg.port();
    let ca = pg.ca_file();
    let url =
        |host: &str, mode: &str| format!("postgres://strongroom@{host}:{port}/{db}?sslmode={mode}");
    let connect = |url: String, ca: Option<std::path::PathBuf>| async move {
        PostgresBackend::connect(PostgresOptions {
            tls_ca_file: ca,
            ..options(&url)
        })
        .await
    };
    let encrypted = |b: PostgresBackend| async move {
        // The server's view of this very connection.
        let client = b.pool().get().await.unwrap();
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, bool>(0)
    };
    // The certificate names `localhost` and chains to the test CA.
    let b = connect(url("localhost", "verify-full"), Some(ca.clone()))
        .await
        .unwrap();
    b.put("k", b"v".to_vec()).await.unwrap();
    assert!(encrypted(b).await);
    // verify-full checks the name: 127.0.0.1 is not on the certificate.
    let err = connect(url("127.0.0.1", "verify-full"), Some(ca.clone()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate"), "{err}");
    // verify-ca checks the chain only.
    let b = connect(url("127.0.0.1", "verify-ca"), Some(ca.clone()))
        .await
        .unwrap();
    assert!(encrypted(b).await);
    // Without the CA file, the chain is unknown.
    let err = connect(url("localhost", "verify-full"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate"), "{err}");
    // require and prefer encrypt without checking (libpq's meaning).
    for mode in ["require", "prefer"] {
        let b = connect(url("127.0.0.1", mode), None).await.unwrap();
        assert!(encrypted(b).await, "{mode}");
    }
    // disable does not encrypt.
    let b = connect(url("127.0.0.1", "disable"), None).await.unwrap();
    assert!(!encrypted(b).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_racing_a_takeover_waits_for_it_and_is_then_refused() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let slow = LockConfig {
        ttl: Duration::from_secs(60),
        renew_interval: Duration::from_secs(20),
        retry_interval: Duration::from_secs(1),
        margin: Duration::from_secs(1),
    };
    let (backend, lock) = lock_on(&url, "old", slow).await;
    let held = lock.acquire().await;
    backend.set_fence(Some(held.fence()));
    // A takeover in progress: another session has changed the row's owner
    // but not committed yet.
    let mut thief = psql(&url).await;
    let tx = thief.transaction().await.unwrap();
    tx.execute(
        &format!("UPDATE {DEFAULT_HA_TABLE} SET ha_identity = 'thief' WHERE ha_key = $1"),
        &[&CORE_LOCK_KEY],
    )
    .await
    .unwrap();
    let backend = Arc::new(backend);
    let write = {
        let b = Arc::clone(&backend);
        tokio::spawn(async move { b.put("k", b"racing".to_vec()).await })
    };
    // Wait until the write's fence check is blocked on the row lock.
    let observer = psql(&url).await;
    loop {
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND query LIKE '%FOR SHARE%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!write.is_finished());
    tx.commit().await.unwrap();
    let err = write.await.unwrap();
    assert!(
        matches!(&err, Err(StorageError::Fenced(m)) if m.contains("no longer held")),
        "{err:?}"
    );
    let sql = psql(&url).await;
    let rows: i64 = sql
        .query_one("SELECT count(*) FROM openbao_kv_store", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "the racing write landed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_writes_log_their_keys_in_commit_order_for_standbys() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let (active, lock) = lock_on(&url, "a", fast_lock()).await;
    let (standby, _) = lock_on(&url, "b", fast_lock()).await;
    let held = lock.acquire().await;
    active.set_fence(Some(held.fence()));
    let start = standby.changes_since(u64::MAX).await.unwrap().top;

    active.put("a/1", b"x".to_vec()).await.unwrap();
    active
        .batch(vec![
            BatchOp::Put("b/2".into(), b"y".to_vec()),
            BatchOp::Delete("a/1".into()),
        ])
        .await
        .unwrap();
    // Concurrent writers: each one's keys are in the log once the write
    // is acknowledged, whatever group it was committed in.
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let key = format!("c/{i}");
            let b = &active;
            async move { b.put(&key, vec![1]).await.unwrap() }
        })
        .collect();
    futures::future::join_all(writes).await;

    let changes = standby.changes_since(start).await.unwrap();
    assert_eq!(changes.top, start + changes.rows.len() as u64);
    let seqs: Vec<u64> = changes.rows.iter().map(|(s, _)| *s).collect();
    let expected: Vec<u64> = (start + 1..=changes.top).collect();
    assert_eq!(seqs, expected, "no gaps, in order");
    assert_eq!(changes.rows[0].1, vec!["a/1".to_string()]);
    let mut second = changes.rows[1].1.clone();
    second.sort();
    assert_eq!(second, vec!["a/1".to_string(), "b/2".to_string()]);
    let mut rest: Vec<String> = changes.rows[2..]
        .iter()
        .flat_map(|(_, keys)| keys.clone())
        .collect();
    rest.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("c/{i}")).collect();
    want.sort();
    assert_eq!(rest, want);
    // Asked from the top: nothing, and the same top.
    let none = standby.changes_since(changes.top).await.unwrap();
    assert!(none.rows.is_empty());
    assert_eq!(none.top, changes.top);
    // A backend without HA logs nothing.
    let plain = open(&pg.fresh_url()).await;
    plain.put("k", vec![1]).await.unwrap();
    assert_eq!(plain.changes_since(0).await.unwrap().top, 0);
}

/// Records what it is told; answers only once `gate` opens.
struct Recorder {
    seen: std::sync::Mutex<Vec<String>>,
    gate: tokio::sync::watch::Receiver<bool>,
}

#[async_trait::async_trait]
impl strongroom_postgres::CommitObserver for Recorder {
    async fn committed(&self, keys: Vec<String>) {
        self.seen.lock().unwrap().extend(keys);
        let _ = self.gate.clone().wait_for(|open| *open).await;
    }
}

/// The commit observer (an HA active node's pushes to its standbys) hears
/// of a write's keys before the write is acknowledged, and a write the
/// fence refused is not reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_acknowledged_only_after_the_commit_observer_returns() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let (active, lock) = lock_on(&url, "a", fast_lock()).await;
    let active = Arc::new(active);
    let held = lock.acquire().await;
    active.set_fence(Some(held.fence()));
    let (open, gate) = tokio::sync::watch::channel(false);
    let recorder = Arc::new(Recorder {
        seen: std::sync::Mutex::new(Vec::new()),
        gate,
    });
    active.set_commit_observer(Some(recorder.clone()));

    let mut writer = {
        let active = Arc::clone(&active);
        tokio::spawn(async move {
            active
                .batch(vec![put("k/2", b"y"), put("k/1", b"x"), put("k/2", b"z")])
                .await
        })
    };
    // The observer was told; the write waits for it to return.
    let deadline = Instant::now() + Duration::from_secs(10);
    while recorder.seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the observer was never told");
        tokio::task::yield_now().await;
    }
    assert_eq!(*recorder.seen.lock().unwrap(), vec!["k/1", "k/2"]);
    let early = tokio::time::timeout(Duration::from_millis(300), &mut writer).await;
    assert!(early.is_err(), "acknowledged before the observer returned");
    open.send_replace(true);
    writer.await.unwrap().unwrap();
    assert_eq!(active.get("k/2").await.unwrap(), Some(b"z".to_vec()));

    // Fenced out: nothing written, nothing reported.
    active.set_fence(None);
    recorder.seen.lock().unwrap().clear();
    let refused = active.put("k/3", b"w".to_vec()).await;
    assert!(
        matches!(refused, Err(StorageError::Fenced(_))),
        "{refused:?}"
    );
    assert!(recorder.seen.lock().unwrap().is_empty());
}
