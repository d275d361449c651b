//! The `Backend` contract, run against both backends, plus the redb
//! backend's durability and group-commit guarantees.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use strongroom_storage::{Backend, BatchOp, InmemBackend, RedbBackend, RedbOptions, StorageError};

fn put(k: &str, v: &[u8]) -> BatchOp {
    BatchOp::Put(k.to_string(), v.to_vec())
}

fn del(k: &str) -> BatchOp {
    BatchOp::Delete(k.to_string())
}

async fn list(b: &impl Backend, prefix: &str) -> Vec<String> {
    b.list(prefix).await.unwrap()
}

/// The contract every backend keeps; run on a fresh, empty backend.
async fn contract(b: &impl Backend) {
    // get / put / overwrite
    assert_eq!(b.get("missing").await.unwrap(), None);
    b.put("foo", b"one".to_vec()).await.unwrap();
    assert_eq!(b.get("foo").await.unwrap().as_deref(), Some(&b"one"[..]));
    b.put("foo", b"two".to_vec()).await.unwrap();
    assert_eq!(b.get("foo").await.unwrap().as_deref(), Some(&b"two"[..]));

    // Values are opaque bytes; an empty value is not a missing one.
    let all_bytes: Vec<u8> = (0..=255).collect();
    b.put("bin", all_bytes.clone()).await.unwrap();
    assert_eq!(b.get("bin").await.unwrap(), Some(all_bytes));
    b.put("empty", Vec::new()).await.unwrap();
    assert_eq!(b.get("empty").await.unwrap(), Some(Vec::new()));

    // delete, and deleting a missing key is fine
    b.delete("foo").await.unwrap();
    assert_eq!(b.get("foo").await.unwrap(), None);
    b.delete("foo").await.unwrap();
    b.delete("never-existed").await.unwrap();
    b.delete("bin").await.unwrap();
    b.delete("empty").await.unwrap();
    assert!(list(b, "").await.is_empty());

    // list: one level, folders once with a trailing slash, sorted
    for k in [
        "z",
        "foo",
        "foo/bar",
        "foo/baz/qux",
        "foo/baz/quux",
        "foo/a/b/c",
        "a/b",
        "foo.x",
        "foo0",
    ] {
        b.put(k, k.as_bytes().to_vec()).await.unwrap();
    }
    assert_eq!(
        list(b, "").await,
        vec!["a/", "foo", "foo.x", "foo/", "foo0", "z"]
    );
    assert_eq!(list(b, "foo/").await, vec!["a/", "bar", "baz/"]);
    assert_eq!(list(b, "foo/baz/").await, vec!["quux", "qux"]);
    assert_eq!(list(b, "foo/a/").await, vec!["b/"]);
    assert!(list(b, "nope/").await.is_empty());
    assert!(list(b, "foo/bar/").await.is_empty());
    // A folder disappears with its last key.
    b.delete("foo/baz/qux").await.unwrap();
    b.delete("foo/baz/quux").await.unwrap();
    assert_eq!(list(b, "foo/").await, vec!["a/", "bar"]);

    // Invalid keys are refused.
    for bad in ["", "nul\0byte"] {
        assert!(matches!(
            b.put(bad, b"x".to_vec()).await,
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(b.get(bad).await, Err(StorageError::InvalidKey(_))));
    }
    // Long keys are fine (Vault allows them).
    let long = format!("long/{}", "k".repeat(8192));
    b.put(&long, b"v".to_vec()).await.unwrap();
    assert_eq!(b.get(&long).await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(list(b, "long/").await, vec!["k".repeat(8192)]);

    // A batch applies all its ops, in order.
    b.batch(vec![
        put("batch/a", b"1"),
        put("batch/b", b"2"),
        del("z"),
        put("batch/c", b"3"),
        del("batch/c"),
        del("batch/d"),
        put("batch/d", b"4"),
    ])
    .await
    .unwrap();
    assert_eq!(list(b, "batch/").await, vec!["a", "b", "d"]);
    assert_eq!(b.get("z").await.unwrap(), None);
    assert_eq!(b.get("batch/d").await.unwrap().as_deref(), Some(&b"4"[..]));

    // A batch with one bad op applies nothing.
    let err = b
        .batch(vec![put("batch/e", b"5"), del("batch/a"), put("", b"6")])
        .await;
    assert!(matches!(err, Err(StorageError::InvalidKey(_))));
    assert_eq!(b.get("batch/e").await.unwrap(), None);
    assert_eq!(b.get("batch/a").await.unwrap().as_deref(), Some(&b"1"[..]));

    // An empty batch is a no-op.
    b.batch(Vec::new()).await.unwrap();
    assert_eq!(list(b, "batch/").await, vec!["a", "b", "d"]);
}

#[tokio::test]
async fn inmem_keeps_the_contract() {
    contract(&InmemBackend::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&RedbBackend::open(dir.path().join("data.redb")).unwrap()).await;
}

/// Reads and writes handed to the redb threads are answered on a
/// current-thread runtime too (the one `#[tokio::test]` uses).
#[tokio::test]
async fn redb_keeps_the_contract_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    contract(&RedbBackend::open(dir.path().join("data.redb")).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.redb");
    {
        let b = RedbBackend::open(&path).unwrap();
        b.put("keep/a", b"alpha".to_vec()).await.unwrap();
        b.batch(vec![put("keep/b/c", b"gamma"), put("gone", b"x")])
            .await
            .unwrap();
        b.delete("gone").await.unwrap();
    }
    let b = RedbBackend::open(&path).unwrap();
    assert_eq!(
        b.get("keep/a").await.unwrap().as_deref(),
        Some(&b"alpha"[..])
    );
    assert_eq!(
        b.get("keep/b/c").await.unwrap().as_deref(),
        Some(&b"gamma"[..])
    );
    assert_eq!(b.get("gone").await.unwrap(), None);
    assert_eq!(list(&b, "").await, vec!["keep/"]);
    assert_eq!(list(&b, "keep/").await, vec!["a", "b/"]);
}

const TASKS: usize = 64;
const KEYS_PER_TASK: usize = 50;

/// 64 tasks each writing 50 distinct keys at once; returns the backend.
async fn concurrent_writes<B: Backend>(b: Arc<B>) -> Arc<B> {
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let b = Arc::clone(&b);
        tasks.spawn(async move {
            for i in 0..KEYS_PER_TASK {
                let key = format!("conc/{t:02}/{i:02}");
                b.put(&key, key.clone().into_bytes()).await.unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    for t in 0..TASKS {
        let prefix = format!("conc/{t:02}/");
        assert_eq!(list(&*b, &prefix).await.len(), KEYS_PER_TASK, "{prefix}");
        for i in 0..KEYS_PER_TASK {
            let key = format!("{prefix}{i:02}");
            assert_eq!(b.get(&key).await.unwrap(), Some(key.clone().into_bytes()));
        }
    }
    assert_eq!(list(&*b, "conc/").await.len(), TASKS);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inmem_concurrent_writers_all_land() {
    concurrent_writes(Arc::new(InmemBackend::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_group_commit_shares_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(RedbBackend::open(dir.path().join("data.redb")).unwrap());
    let b = concurrent_writes(b).await;
    let writes = (TASKS * KEYS_PER_TASK) as u64;
    let commits = b.commit_count();
    assert!(commits >= 1);
    // While one transaction fsyncs, the other 63 writers queue up and are
    // committed together (typically ~30 writes per commit, even on tmpfs);
    // one commit per write would mean no grouping. Demand at least 4x.
    assert!(
        commits * 4 <= writes,
        "{commits} commits for {writes} writes: group commit did not group"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_max_group_bounds_the_grouping() {
    let dir = tempfile::tempdir().unwrap();
    let options = RedbOptions {
        max_group: 1,
        cache_size: Some(1 << 20),
        ..RedbOptions::default()
    };
    let b = Arc::new(RedbBackend::open_with(dir.path().join("data.redb"), options).unwrap());
    let b = concurrent_writes(b).await;
    assert_eq!(b.commit_count(), (TASKS * KEYS_PER_TASK) as u64);
}

/// 64 writers through a queue of 2: most of them wait for room at any
/// moment, and every one is still acknowledged, readable, and grouped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_concurrent_writers_through_a_tiny_queue_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let options = RedbOptions {
        max_group: 4,
        queue_capacity: 2,
        ..RedbOptions::default()
    };
    let b = Arc::new(RedbBackend::open_with(dir.path().join("data.redb"), options).unwrap());
    let b = concurrent_writes(b).await;
    // At most 4 requests per transaction.
    assert!(b.commit_count() * 4 >= (TASKS * KEYS_PER_TASK) as u64);
}

#[tokio::test]
async fn redb_concurrent_writers_on_a_current_thread_runtime_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let options = RedbOptions {
        queue_capacity: 8,
        ..RedbOptions::default()
    };
    let b = Arc::new(RedbBackend::open_with(dir.path().join("data.redb"), options).unwrap());
    concurrent_writes(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_bad_batch_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(RedbBackend::open(dir.path().join("data.redb")).unwrap());
    let mut good = tokio::task::JoinSet::new();
    let mut bad = tokio::task::JoinSet::new();
    for t in 0..32 {
        let gb = Arc::clone(&b);
        good.spawn(async move {
            for i in 0..20 {
                gb.batch(vec![
                    put(&format!("good/{t}/{i}"), b"ok"),
                    put(&format!("good/{t}/{i}-pair"), b"ok"),
                ])
                .await
                .unwrap();
            }
        });
        let bb = Arc::clone(&b);
        bad.spawn(async move {
            bb.batch(vec![
                put(&format!("bad/{t}"), b"no"),
                put("bad\0key", b"no"),
            ])
            .await
        });
    }
    while let Some(done) = good.join_next().await {
        done.unwrap();
    }
    while let Some(done) = bad.join_next().await {
        assert!(matches!(done.unwrap(), Err(StorageError::InvalidKey(_))));
    }
    assert!(list(&*b, "").await.iter().all(|k| k != "bad/"));
    for t in 0..32 {
        assert_eq!(list(&*b, &format!("good/{t}/")).await.len(), 40);
    }
}

/// Environment variable carrying the redb file path to the crash child.
const CRASH_CHILD_ENV: &str = "STRONGROOM_STORAGE_CRASH_CHILD";
const CHILD_WRITERS: usize = 8;

fn crash_value(w: usize, i: usize) -> Vec<u8> {
    format!("value-{w}-{i}-{}", "x".repeat(i % 97)).into_bytes()
}

/// Not a test on its own: the child half of `redb_acknowledged_writes_survive_kill`
/// (ignored, so it only runs when that test re-executes this binary). It
/// writes keys from several tasks forever and prints each acknowledged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of redb_acknowledged_writes_survive_kill"]
async fn crash_child_writer() {
    let path = std::env::var(CRASH_CHILD_ENV).expect("run by the crash test only");
    let b = Arc::new(RedbBackend::open(path).unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..CHILD_WRITERS {
        let b = Arc::clone(&b);
        tasks.spawn(async move {
            // Bounded so that an orphaned child cannot run forever.
            for i in 0..1_000_000 {
                b.put(&format!("crash/{w}/{i}"), crash_value(w, i))
                    .await
                    .unwrap();
                let mut out = std::io::stdout().lock();
                if writeln!(out, "ACK {w} {i}")
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return; // the parent is gone
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[test]
fn redb_acknowledged_writes_survive_kill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());

    let mut acked: BTreeSet<(usize, usize)> = BTreeSet::new();
    while acked.len() < 400 {
        assert!(read_ack(&mut stdout, &mut acked), "child exited early");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Acknowledgements printed before the kill but not yet read count too.
    while read_ack(&mut stdout, &mut acked) {}

    check_acknowledged(&path, &acked);
}

/// Reads one line of the child's output, recording it if it is a complete
/// acknowledgement; false at end of output.
fn read_ack(stdout: &mut impl BufRead, acked: &mut BTreeSet<(usize, usize)>) -> bool {
    let mut line = String::new();
    if stdout.read_line(&mut line).unwrap() == 0 {
        return false;
    }
    // A line cut short by the kill is not an acknowledgement.
    if let Some(rest) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ACK ")) {
        let (w, i) = rest.split_once(' ').unwrap();
        acked.insert((w.parse().unwrap(), i.parse().unwrap()));
    }
    true
}

fn check_acknowledged(path: &Path, acked: &BTreeSet<(usize, usize)>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = RedbBackend::open(path).unwrap();
        for &(w, i) in acked {
            assert_eq!(
                b.get(&format!("crash/{w}/{i}")).await.unwrap(),
                Some(crash_value(w, i)),
                "acknowledged write crash/{w}/{i} lost"
            );
        }
    });
}
