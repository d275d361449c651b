//! Measures how to hand a small redb point read off the async runtime's
//! worker threads: inline (for reference: it blocks the worker), through
//! `tokio::task::spawn_blocking`, or through a dedicated pool of threads fed
//! by a crossbeam channel (what `RedbBackend` does; see `RedbBackend::read`).
//!
//! Run with `cargo run --release -p strongroom-storage --example read_dispatch [POOL_THREADS]`.
#![allow(clippy::unwrap_used)] // a benchmark: any failure should stop it

use std::sync::Arc;
use std::time::Instant;

use redb::{Database, TableDefinition};
use tokio::sync::oneshot;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("t");
const KEYS: usize = 10_000;
const READS: usize = 50_000;
const TASKS: usize = 64;

fn get(db: &Database, k: &str) -> Option<Vec<u8>> {
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(TABLE).unwrap();
    t.get(k).unwrap().map(|v| v.value().to_vec())
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of threads taking jobs from one crossbeam channel.
struct Pool(crossbeam_channel::Sender<Job>);

impl Pool {
    fn new(threads: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        for _ in 0..threads {
            let rx = rx.clone();
            std::thread::spawn(move || rx.into_iter().for_each(|job| job()));
        }
        Pool(tx)
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = oneshot::channel();
        self.0
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .unwrap();
        rx.await.unwrap()
    }
}

#[derive(Clone, Copy, Debug)]
enum How {
    Inline,
    SpawnBlocking,
    Pool,
}

async fn one(db: &Arc<Database>, pool: &Pool, how: How, i: usize) {
    let k = format!("key/{:05}", i % KEYS);
    let v = match how {
        How::Inline => get(db, &k),
        How::SpawnBlocking => {
            let db = Arc::clone(db);
            tokio::task::spawn_blocking(move || get(&db, &k))
                .await
                .unwrap()
        }
        How::Pool => {
            let db = Arc::clone(db);
            pool.run(move || get(&db, &k)).await
        }
    };
    assert!(v.is_some());
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("bench.redb")).unwrap();
    let w = db.begin_write().unwrap();
    {
        let mut t = w.open_table(TABLE).unwrap();
        for i in 0..KEYS {
            t.insert(format!("key/{i:05}").as_str(), &[7u8; 200][..])
                .unwrap();
        }
    }
    w.commit().unwrap();
    let db = Arc::new(db);
    let threads = std::env::args().nth(1).map_or(4, |s| s.parse().unwrap());
    let pool = Arc::new(Pool::new(threads));
    for flavor in ["current-thread", "multi-thread"] {
        let rt = match flavor {
            "current-thread" => tokio::runtime::Builder::new_current_thread().build(),
            _ => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build(),
        }
        .unwrap();
        for how in [How::Inline, How::SpawnBlocking, How::Pool] {
            let t0 = Instant::now();
            rt.block_on(async {
                for i in 0..READS {
                    one(&db, &pool, how, i).await;
                }
            });
            let sequential = t0.elapsed().as_secs_f64() * 1e6 / READS as f64;
            let t0 = Instant::now();
            rt.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for t in 0..TASKS {
                    let (db, pool) = (Arc::clone(&db), Arc::clone(&pool));
                    set.spawn(async move {
                        for i in 0..READS / TASKS {
                            one(&db, &pool, how, t * 1000 + i).await;
                        }
                    });
                }
                while set.join_next().await.is_some() {}
            });
            let concurrent = t0.elapsed().as_secs_f64() * 1e6 / READS as f64;
            println!(
                "{flavor:14} {how:13?} one at a time {sequential:6.2} µs/read, \
                 {TASKS} tasks {concurrent:6.2} µs/read"
            );
        }
    }
}
