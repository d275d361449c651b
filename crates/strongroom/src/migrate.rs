//! `strongroom operator migrate`: copies every storage entry from one
//! storage to another, as OpenBao's `bao operator migrate` does.
//!
//! The module owns the command (config, opening both sides, the copy, its
//! exit codes) and the migration lock, which the server checks at start
//! ([`refuse_while_migrating`]).
//!
//! What it does, as OpenBao:
//! - The entries are copied as stored, barrier-encrypted: no unseal, no
//!   key. The destination is then unsealed with the source's keys.
//! - While it runs, the migration lock, the key [`MIGRATION_LOCK_KEY`]
//!   (`{"start": "<RFC 3339 time>"}`, not encrypted), is in the source
//!   (and, beyond OpenBao, in the destination too); a server refuses to
//!   start on a storage holding it, and a second migration refuses too. It
//!   is removed at the end, also after a failure; a migration killed
//!   outright leaves it behind, and `-reset` removes it (from both sides).
//! - Keys are walked depth first in byte order, one folder listing at a
//!   time (the key list is streamed, never held whole), and copied
//!   `-max-parallel` at a time (default 10). `-start` skips the keys before
//!   it (resuming an interrupted migration). The migration lock and the HA
//!   lock key (`core/lock`) are never copied.
//! - Destination keys absent from the source are left alone; keys present
//!   in both are overwritten. Copy into an empty storage (a destination
//!   initialised already gets a warning, unless `-start` resumes).
//! - Exit status 0 with `Success! All of the keys have been migrated.`;
//!   1 for a config error; 2 when the migration failed.
//!
//! Beyond OpenBao, it refuses to run while a server uses either side:
//! redb files are opened exclusively (a running server's open file makes
//! the open fail), and a PostgreSQL table is claimed exclusively
//! ([`strongroom_postgres::inuse`]), which fails while a server holds its
//! shared claim or a node holds the HA lock. Each side gets the migration
//! lock *before* its claim, and a server takes its claim *before* reading
//! the lock: a server either started in time to make the claim fail, or
//! finds the lock and refuses to start. Redb files stay open (locked) for
//! the whole copy. Memory
//! storage and a copy onto the source itself are refused. On SIGINT or
//! SIGTERM the copy stops, the lock is removed and the exit status is 2
//! (OpenBao exits 0 there).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use strongroom_config::{MigrationConfig, StorageConfig};
use strongroom_postgres::{InUse, PostgresBackend, PostgresOptions, CORE_LOCK_KEY};
use strongroom_sdk::storage::Backend;
use strongroom_storage::RedbBackend;
use tokio::task::JoinSet;

use crate::cli::MigrateArgs;

/// The source key that marks a migration in progress (OpenBao's
/// `core/migration`).
pub const MIGRATION_LOCK_KEY: &str = "core/migration";

/// Where an initialised storage keeps its seal configuration (the
/// barrier's `SEAL_CONFIG_PATH`): present in a destination that was
/// initialised before the migration.
const SEAL_CONFIG_KEY: &str = "core/seal-config";

/// Runs `strongroom operator migrate` and returns its exit status.
pub fn main(args: MigrateArgs) -> ExitCode {
    crate::server::init_logging(&args.log_level, Default::default());
    let config = match strongroom_config::load_migration(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error loading configuration: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error migrating: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(config, &args)) {
        Ok(()) => {
            if args.reset {
                println!("Success! Migration lock reset (if it was set).");
            } else {
                println!("Success! All of the keys have been migrated.");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("Error migrating: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Fails when `storage` holds the migration lock: a server must not start
/// on a storage being migrated (OpenBao's start-up check, same advice).
pub async fn refuse_while_migrating(storage: &dyn Backend) -> anyhow::Result<()> {
    let Some(lock) = storage
        .get(MIGRATION_LOCK_KEY)
        .await
        .context("checking for a storage migration in progress")?
    else {
        return Ok(());
    };
    bail!(
        "Startup is prevented because a storage migration is in progress (started: {}). \
         Use 'strongroom operator migrate -reset' to force clear the migration lock.",
        started(&lock)
    )
}

/// The `start` time a migration lock value names (as written).
fn started(lock: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(lock)
        .ok()
        .and_then(|v| v["start"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Which side of the migration a storage is (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Destination,
}

impl Side {
    fn stanza(self) -> &'static str {
        match self {
            Side::Source => "storage_source",
            Side::Destination => "storage_destination",
        }
    }
}

/// What the migration holds while it runs: its PostgreSQL claims, and
/// the storages it wrote the migration lock into.
#[derive(Default)]
struct Held {
    claims: Vec<(Side, InUse)>,
    locked: Vec<Arc<dyn Backend>>,
}

async fn run(config: MigrationConfig, args: &MigrateArgs) -> anyhow::Result<()> {
    let mut held = Held::default();
    let outcome = run_held(config, args, &mut held).await;
    for storage in &held.locked {
        if let Err(e) = storage.delete(MIGRATION_LOCK_KEY).await {
            tracing::error!(error = %e, "could not remove the migration lock; use -reset");
        }
    }
    // Given back explicitly (not left to the connection's close), so that
    // a server started right after this process finds the tables free.
    for (_, claim) in held.claims {
        claim.release().await;
    }
    outcome
}

async fn run_held(
    config: MigrationConfig,
    args: &MigrateArgs,
    held: &mut Held,
) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let with_env = |s: StorageConfig| match s {
        StorageConfig::Postgresql(pg) => StorageConfig::Postgresql(pg.with_env_overrides(env)),
        other => other,
    };
    let source_config = with_env(config.source);
    let destination_config = with_env(config.destination);
    if same_storage(&source_config, &destination_config) {
        bail!("storage_source and storage_destination are the same storage");
    }
    if args.reset {
        // Both sides: a migration killed outright leaves the lock in both.
        for (side, config) in [
            (Side::Source, &source_config),
            (Side::Destination, &destination_config),
        ] {
            let (storage, pg) = open(side, config, args.max_parallel).await?;
            claim(side, pg, held).await?;
            storage
                .delete(MIGRATION_LOCK_KEY)
                .await
                .with_context(|| format!("error resetting migration lock in {}", side.stanza()))?;
        }
        return Ok(());
    }

    let lock = serde_json::json!({
        "start": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
    })
    .to_string();
    let mut sides = Vec::new();
    for (side, config) in [
        (Side::Source, &source_config),
        (Side::Destination, &destination_config),
    ] {
        let (storage, pg) = open(side, config, args.max_parallel).await?;
        if let Some(lock) = storage
            .get(MIGRATION_LOCK_KEY)
            .await
            .context("error checking migration status")?
        {
            bail!(
                "{}: storage migration in progress (started: {}); if no migration runs, clear \
                 the lock with -reset",
                side.stanza(),
                started(&lock)
            );
        }
        // The lock first, the claim second. A server starts by taking its
        // claim, then reading the lock: one that read no lock holds its
        // claim already, so ours fails; one that starts later finds the
        // lock. Whatever the timing, no server runs on a side while we copy.
        held.locked.push(Arc::clone(&storage));
        storage
            .put(MIGRATION_LOCK_KEY, lock.clone().into_bytes())
            .await
            .context("error setting migration lock")?;
        claim(side, pg, held).await?;
        sides.push(storage);
    }
    let (source, destination) = match <[_; 2]>::try_from(sides) {
        Ok([s, d]) => (s, d),
        Err(_) => bail!("internal error: not two storages"),
    };

    if args.start.is_empty()
        && destination
            .get(SEAL_CONFIG_KEY)
            .await
            .context("error reading the destination")?
            .is_some()
    {
        tracing::warn!(
            "the destination was initialised already: its keys are overwritten where the source \
             has them, and the others stay (OpenBao's behaviour); migrate into an empty storage"
        );
    }
    let copy = copy_all(source, destination, &args.start, args.max_parallel as usize);
    let copied = tokio::select! {
        outcome = copy => outcome?,
        () = crate::server::shutdown_signal() => {
            println!("==> Migration shutdown triggered\n");
            bail!("migration aborted: not every key was copied");
        }
    };
    if let Some((side, _)) = held.claims.iter().find(|(_, c)| !c.is_held()) {
        bail!(
            "{}: the connection that kept servers off the PostgreSQL table broke during \
             the migration; make sure no server ran on it, then migrate again",
            side.stanza()
        );
    }
    tracing::info!(keys = copied, "migration finished");
    Ok(())
}

/// Claims a PostgreSQL side for the migration (`pg`: its options; `None`
/// for redb, which the open itself holds exclusively).
async fn claim(side: Side, pg: Option<PostgresOptions>, held: &mut Held) -> anyhow::Result<()> {
    if let Some(options) = pg {
        let claim = InUse::claim_for_migration(&options)
            .await
            .with_context(|| format!("{} \"postgresql\"", side.stanza()))?;
        held.claims.push((side, claim));
    }
    Ok(())
}

/// Whether both sides name the same storage (the same redb file, or the
/// same table through the same connection string).
fn same_storage(a: &StorageConfig, b: &StorageConfig) -> bool {
    match (a, b) {
        (StorageConfig::Redb { path: x }, StorageConfig::Redb { path: y }) => {
            let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            canonical(x) == canonical(y)
        }
        (StorageConfig::Postgresql(x), StorageConfig::Postgresql(y)) => {
            x.connection_url == y.connection_url && x.table == y.table
        }
        _ => false,
    }
}

/// Opens one side (a redb file exclusively: a running server's open
/// makes it fail), with the options to claim a PostgreSQL side with.
async fn open(
    side: Side,
    config: &StorageConfig,
    max_parallel: u32,
) -> anyhow::Result<(Arc<dyn Backend>, Option<PostgresOptions>)> {
    let stanza = side.stanza();
    match config {
        StorageConfig::Inmem => bail!(
            "{stanza} \"inmem\" cannot be migrated: memory storage lives only inside a running server"
        ),
        StorageConfig::Redb { path } => {
            if side == Side::Source && !path.exists() {
                bail!("{stanza} \"redb\": {} does not exist", path.display());
            }
            let storage = RedbBackend::open(path).map_err(|e| {
                let e = e.to_string();
                if e.contains("already open") {
                    anyhow!(
                        "{stanza} \"redb\": {} is in use by another process (is a server running on it? stop it first)",
                        path.display()
                    )
                } else {
                    anyhow!("{stanza} \"redb\": {e}")
                }
            })?;
            Ok((Arc::new(storage), None))
        }
        StorageConfig::Postgresql(pg) => {
            let options = PostgresOptions {
                connection_url: pg.connection_url.clone(),
                table: pg.table.clone(),
                // The migration writes unfenced: servers are kept off.
                ha_enabled: false,
                ha_table: pg.ha_table.clone(),
                max_parallel: pg.max_parallel.min(max_parallel as usize + 2),
                // Never create a table on the source side.
                skip_create_table: side == Side::Source || pg.skip_create_table,
                tls_ca_file: pg.tls_ca_file.clone(),
                ..PostgresOptions::default()
            };
            if options.connection_url.trim().is_empty() {
                bail!("{stanza} \"postgresql\": connection_url is empty (set it, or BAO_PG_CONNECTION_URL)");
            }
            let storage = PostgresBackend::connect(options.clone())
                .await
                .with_context(|| format!("{stanza} \"postgresql\""))?;
            Ok((Arc::new(storage), Some(options)))
        }
    }
}

/// Copies every key of `from` at or after `start` to `to`, `max_parallel`
/// at a time, walking `from` depth first in byte order (OpenBao's
/// `dfsScan`). Returns how many keys were copied.
async fn copy_all(
    from: Arc<dyn Backend>,
    to: Arc<dyn Backend>,
    start: &str,
    max_parallel: usize,
) -> anyhow::Result<u64> {
    let mut pending = vec![String::new()];
    let mut copies: JoinSet<anyhow::Result<u64>> = JoinSet::new();
    let mut copied = 0u64;
    while let Some(key) = pending.pop() {
        // A failed copy stops the walk at once.
        while let Some(done) = copies.try_join_next() {
            copied += done??;
        }
        if key.is_empty() || key.ends_with('/') {
            // A folder all of whose keys sort before `start` is skipped.
            if key.as_str() < start && !start.starts_with(key.as_str()) {
                continue;
            }
            let mut children = from
                .list(&key)
                .await
                .with_context(|| format!("failed to scan for children of {key:?}"))?;
            children.sort();
            pending.extend(
                children
                    .into_iter()
                    .rev()
                    .filter(|c| !c.is_empty())
                    .map(|c| format!("{key}{c}")),
            );
            continue;
        }
        if key.as_str() < start || key == MIGRATION_LOCK_KEY || key == CORE_LOCK_KEY {
            continue;
        }
        if copies.len() >= max_parallel {
            if let Some(done) = copies.join_next().await {
                copied += done??;
            }
        }
        let (from, to) = (Arc::clone(&from), Arc::clone(&to));
        copies.spawn(async move {
            let Some(value) = from
                .get(&key)
                .await
                .with_context(|| format!("error reading entry {key:?}"))?
            else {
                return Ok(0); // listed, then gone
            };
            to.put(&key, value)
                .await
                .with_context(|| format!("error writing entry {key:?}"))?;
            tracing::info!("copied key: {key}");
            Ok(1)
        });
    }
    while let Some(done) = copies.join_next().await {
        copied += done??;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strongroom_storage::InmemBackend;

    async fn store(keys: &[&str]) -> Arc<dyn Backend> {
        let s = InmemBackend::new();
        for k in keys {
            s.put(k, format!("value of {k}").into_bytes())
                .await
                .expect("put");
        }
        Arc::new(s)
    }

    async fn all_keys(s: &dyn Backend) -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(p) = pending.pop() {
            for c in s.list(&p).await.expect("list") {
                let k = format!("{p}{c}");
                if k.ends_with('/') {
                    pending.push(k);
                } else {
                    out.push(k);
                }
            }
        }
        out.sort();
        out
    }

    const KEYS: &[&str] = &[
        "core/keyring",
        "core/lock",
        "core/migration",
        "a",
        "a/b",
        "a/b/c",
        "logical/x/1",
        "logical/x/2",
        "logical/y",
        "sys/token/id/h1",
        "z",
    ];

    #[tokio::test]
    async fn every_key_is_copied_but_the_two_locks_and_others_are_left_alone() {
        let from = store(KEYS).await;
        let to = store(&["only/in/destination"]).await;
        to.put("a", b"older".to_vec()).await.expect("put");
        let n = copy_all(Arc::clone(&from), Arc::clone(&to), "", 3)
            .await
            .expect("copy");
        assert_eq!(n, 9);
        let mut want: Vec<String> = KEYS
            .iter()
            .filter(|k| !["core/lock", "core/migration"].contains(k))
            .map(|k| k.to_string())
            .chain(["only/in/destination".to_string()])
            .collect();
        want.sort();
        assert_eq!(all_keys(&*to).await, want);
        assert_eq!(
            to.get("a/b/c").await.expect("get"),
            Some(b"value of a/b/c".to_vec())
        );
        // Overwritten with the source's value.
        assert_eq!(
            to.get("a").await.expect("get"),
            Some(b"value of a".to_vec())
        );
    }

    #[tokio::test]
    async fn start_skips_the_keys_before_it() {
        let from = store(KEYS).await;
        let to = store(&[]).await;
        let n = copy_all(from, Arc::clone(&to), "logical/x/2", 1)
            .await
            .expect("copy");
        assert_eq!(
            all_keys(&*to).await,
            ["logical/x/2", "logical/y", "sys/token/id/h1", "z"]
        );
        assert_eq!(n, 4);
    }
}
