//! Marking a data table as in use, so that `strongroom operator migrate`
//! never copies from or into a table a running server uses.
//!
//! A running server holds a **shared** session-level advisory lock
//! (`pg_try_advisory_lock_shared`) on a key derived from the data table's
//! name ([`advisory_key`]), on one dedicated connection, for as long as it
//! runs ([`InUse::claim_for_server`]); every node of an HA cluster holds it
//! at once, standbys included. A migration takes the same key
//! **exclusively** (`pg_try_advisory_lock`, [`InUse::claim_for_migration`]),
//! which fails while any server holds it. (A server that starts during a
//! migration is stopped by the migration lock the migration writes into
//! the storage before claiming it, not by this claim: see
//! [`InUse::claim_for_server`].) The migration also refuses while
//! the lock table holds an unexpired `core/lock` row (an active HA node,
//! e.g. an OpenBao server, which takes no advisory lock): the same query as
//! [`HaLock::leader`](crate::HaLock::leader).
//!
//! Advisory locks live in PostgreSQL's memory and belong to the session: a
//! server killed with `kill -9` drops its connection and with it the lock.
//! Should a server's dedicated connection break, the server takes the lock
//! again on a new connection as soon as it can (logging the gap).
//!
//! **Poolers.** Session advisory locks need a real session. Through a pooler
//! in *transaction* mode (PgBouncer's `pool_mode = transaction`) the lock is
//! taken on whichever server connection ran the statement, which is then
//! handed to other clients; unlocking may run on yet another one. The
//! lock may then be missing for the migration's check, or linger on a
//! pooled server connection after its holder stopped: a server's shared
//! lock makes a migration refuse, even through a direct connection, until
//! PgBouncer closes that server connection (`RECONNECT` on its admin
//! console, or its `server_idle_timeout`); a migration's exclusive lock
//! only delays a starting server's claim, which is why a server never
//! refuses to start over it. With such a pooler, give the servers (for
//! the mark to be held) and the migration a direct or session-mode
//! connection, or make sure by hand that every server is stopped. The HA
//! lock and the migration lock are rows and work through any pooler.
//!
//! The key is derived from the table name only (advisory locks are scoped
//! to one database), so two tables of the same name in different schemas of
//! one database share it: a migration of one refuses while a server runs on
//! the other, never the reverse mistake.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::backend::pg_error;
use crate::schema::quote_ident;
use crate::{PostgresOptions, CORE_LOCK_KEY};

/// How long a server waits between attempts to take the lock again after
/// its dedicated connection broke.
const RECLAIM_INTERVAL: Duration = Duration::from_secs(5);

/// Why a table could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum InUseError {
    /// A migration wanted the table, but a server (or another migration)
    /// holds it.
    #[error("PostgreSQL table {table:?} is in use by a running Strongroom server (or another migration): stop every server on it first")]
    ServerRunning {
        /// The data table.
        table: String,
    },
    /// A migration wanted the table, but a node holds the HA lock.
    #[error("PostgreSQL table {table:?} is in use: a server holds the HA lock in {ha_table:?} (ha_value {holder:?}); stop every server on it first")]
    ActiveNode {
        /// The data table.
        table: String,
        /// The lock table.
        ha_table: String,
        /// The holder's advertised `ha_value`.
        holder: String,
    },
    /// A server wanted the table, but a migration holds it.
    #[error("a storage migration is running on PostgreSQL table {table:?}: start the server when it has finished")]
    MigrationRunning {
        /// The data table.
        table: String,
    },
    /// PostgreSQL failed, refused the connection or did not answer in time.
    #[error("{0}")]
    Database(String),
}

/// The advisory lock key of data table `table`: FNV-1a (64 bits) of a fixed
/// prefix and the name, the same on every machine and in every version
/// (servers and the migration must agree).
pub fn advisory_key(table: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"strongroom/in-use/".iter().chain(table.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_be_bytes(hash.to_be_bytes())
}

/// Whether the claim is a server's (shared) or a migration's (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Shared,
    Exclusive,
}

/// Where to claim: what [`PostgresOptions`] says about the connection and
/// the tables.
#[derive(Clone)]
struct Target {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    table: String,
    ha_table: String,
    timeout: Duration,
    key: i64,
}

/// A claim on a data table, held on its own connection until dropped
/// (dropping closes the connection, which releases the lock).
#[derive(Debug)]
pub struct InUse {
    held: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    release: Option<oneshot::Sender<oneshot::Sender<()>>>,
    timeout: Duration,
}

impl InUse {
    /// A server's claim: the shared lock on `options.table`, kept (and
    /// taken again after a broken connection) until dropped. Fails only
    /// when PostgreSQL cannot be reached. While the table is claimed
    /// exclusively (a migration, or a session a transaction-mode pooler
    /// keeps open after the migration ended: see the module docs), the
    /// claim is not held ([`InUse::is_held`]), a warning says so, and it is
    /// tried again in the background. What stops a server from starting
    /// during a migration is the migration lock in storage, which the
    /// server reads *after* this claim (the migration writes it *before*
    /// its own). Must run inside a tokio runtime.
    pub async fn claim_for_server(options: &PostgresOptions) -> Result<InUse, InUseError> {
        Self::claim(options, Mode::Shared).await
    }

    /// A migration's claim: the exclusive lock on `options.table`, after
    /// checking that no node holds the HA lock in `options.ha_table`. Fails
    /// with [`InUseError::ServerRunning`] or [`InUseError::ActiveNode`]
    /// while a server uses the table. Not taken again if its connection
    /// breaks: check [`InUse::is_held`] when done.
    pub async fn claim_for_migration(options: &PostgresOptions) -> Result<InUse, InUseError> {
        Self::claim(options, Mode::Exclusive).await
    }

    /// Whether the lock is held now (false after its connection broke,
    /// until a server's claim takes it again).
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }

    /// Gives the lock back and waits until PostgreSQL has released it (at
    /// most the connection timeout), so that whatever runs next (a server
    /// after a migration) finds the table free. Dropping the claim releases
    /// it too, but only once PostgreSQL notices the closed connection.
    pub async fn release(mut self) {
        let Some(ask) = self.release.take() else {
            return;
        };
        let (done, released) = oneshot::channel();
        if ask.send(done).is_ok() {
            let _ = tokio::time::timeout(self.timeout, released).await;
        }
    }

    /// Keeps the claim for as long as the returned future runs (spawn it
    /// to hold the claim until the runtime shuts down).
    pub async fn keep(self) {
        std::future::pending::<()>().await;
        drop(self);
    }

    async fn claim(options: &PostgresOptions, mode: Mode) -> Result<InUse, InUseError> {
        let conn =
            crate::tls::parse_connection(&options.connection_url, options.tls_ca_file.as_deref())
                .map_err(InUseError::Database)?;
        let tls =
            MakeRustlsConnect::new(crate::tls::client_config(&conn).map_err(InUseError::Database)?);
        let mut config = conn.config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("strongroom (table in use)");
        let target = Target {
            config,
            tls,
            table: options.table.clone(),
            ha_table: options.ha_table.clone(),
            timeout: options.timeout,
            key: advisory_key(&options.table),
        };
        let session = match bounded(target.timeout, take(&target, mode)).await {
            Ok(session) => Some(session),
            Err(e @ InUseError::MigrationRunning { .. }) => {
                tracing::warn!(error = %e, "cannot mark the PostgreSQL table in use yet; trying again in the background");
                None
            }
            Err(e) => return Err(e),
        };
        let held = Arc::new(AtomicBool::new(session.is_some()));
        let (release, asked) = oneshot::channel();
        let timeout = target.timeout;
        let task = tokio::spawn(hold(target, mode, session, Arc::clone(&held), asked));
        Ok(InUse {
            held,
            task,
            release: Some(release),
            timeout,
        })
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        // Drops the client, which closes the connection: the session ends
        // and PostgreSQL releases its advisory locks.
        self.task.abort();
    }
}

/// A connection holding the lock: its client, and a signal that fires
/// when the connection ends.
struct Session {
    client: tokio_postgres::Client,
    ended: oneshot::Receiver<()>,
}

/// Runs `work` within `limit`.
async fn bounded<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, InUseError>>,
) -> Result<T, InUseError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(InUseError::Database(
            "PostgreSQL did not answer in time".into(),
        ))
    })
}

fn db(e: &tokio_postgres::Error) -> InUseError {
    InUseError::Database(pg_error(e))
}

/// Connects and takes the lock (after the HA check, for a migration).
async fn take(target: &Target, mode: Mode) -> Result<Session, InUseError> {
    let (client, connection) = target
        .config
        .connect(target.tls.clone())
        .await
        .map_err(|e| db(&e))?;
    let (ended_tx, ended) = oneshot::channel();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %pg_error(&e), "table-in-use connection ended");
        }
        let _ = ended_tx.send(());
    });
    let sql = match mode {
        Mode::Shared => "SELECT pg_try_advisory_lock_shared($1)",
        Mode::Exclusive => "SELECT pg_try_advisory_lock($1)",
    };
    let taken: bool = client
        .query_one(sql, &[&target.key])
        .await
        .map_err(|e| db(&e))?
        .get(0);
    if !taken {
        return Err(match mode {
            Mode::Shared => InUseError::MigrationRunning {
                table: target.table.clone(),
            },
            Mode::Exclusive => InUseError::ServerRunning {
                table: target.table.clone(),
            },
        });
    }
    if mode == Mode::Exclusive {
        // Checked while holding the advisory lock: a Strongroom server
        // starting now fails; an OpenBao node shows in the lock table.
        let sql = format!(
            "SELECT coalesce(ha_value, '') FROM {} WHERE ha_key = $1 AND valid_until > now()",
            quote_ident(&target.ha_table)
        );
        let refusal = match client.query_opt(&sql, &[&CORE_LOCK_KEY]).await {
            Ok(Some(row)) => Some(InUseError::ActiveNode {
                table: target.table.clone(),
                ha_table: target.ha_table.clone(),
                holder: row.get(0),
            }),
            Ok(None) => None,
            // No lock table: no HA node ever ran here.
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => None,
            Err(e) => Some(db(&e)),
        };
        if let Some(refusal) = refusal {
            // Released now rather than when the server notices the closed
            // connection: a server may start at once.
            let _ = client
                .execute("SELECT pg_advisory_unlock($1)", &[&target.key])
                .await;
            return Err(refusal);
        }
    }
    Ok(Session { client, ended })
}

/// Keeps the session (and with it the lock) until aborted or asked to
/// release it; a server's claim is taken (again) on a new connection while
/// it has none.
async fn hold(
    target: Target,
    mode: Mode,
    mut session: Option<Session>,
    held: Arc<AtomicBool>,
    mut release: oneshot::Receiver<oneshot::Sender<()>>,
) {
    loop {
        if let Some(current) = session.as_mut() {
            tokio::select! {
                _ = &mut current.ended => {
                    held.store(false, Ordering::Release);
                    tracing::warn!(table = %target.table,
                        "lost the connection that marks the PostgreSQL table in use; a migration could start meanwhile");
                    if mode == Mode::Exclusive {
                        return;
                    }
                }
                asked = &mut release => {
                    let unlock = match mode {
                        Mode::Shared => "SELECT pg_advisory_unlock_shared($1)",
                        Mode::Exclusive => "SELECT pg_advisory_unlock($1)",
                    };
                    let _ = current.client.execute(unlock, &[&target.key]).await;
                    held.store(false, Ordering::Release);
                    if let Ok(done) = asked {
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
        session = None;
        tokio::select! {
            () = tokio::time::sleep(RECLAIM_INTERVAL) => {}
            asked = &mut release => {
                if let Ok(done) = asked {
                    let _ = done.send(());
                }
                return;
            }
        }
        match bounded(target.timeout, take(&target, mode)).await {
            Ok(s) => {
                session = Some(s);
                held.store(true, Ordering::Release);
                tracing::info!(table = %target.table, "the PostgreSQL table is marked in use");
            }
            Err(e) => tracing::warn!(table = %target.table, error = %e,
                "cannot mark the PostgreSQL table in use; trying again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_depends_on_the_table_name_only_and_is_stable() {
        assert_eq!(
            advisory_key("openbao_kv_store"),
            advisory_key("openbao_kv_store")
        );
        assert_ne!(
            advisory_key("openbao_kv_store"),
            advisory_key("other_table")
        );
        // Servers of every version and the migration must agree: pinned.
        assert_eq!(advisory_key("openbao_kv_store"), -3_323_776_967_802_474_124);
    }
}
