//! The change log: which keys each write transaction of the active node
//! touched, so that standbys can serve reads from their caches and still
//! answer with what was just acknowledged anywhere.
//!
//! **The table** `<table>_changes (seq bigint primary key, keys text[])` is
//! Strongroom's own (OpenBao has none): created with the others when HA is
//! enabled, whatever `skip_create_table` says, since it holds no data.
//!
//! **Writing.** Every fenced write transaction (HA, this node holds the
//! lock) inserts one row, `seq` = the largest + 1, with the keys it put or
//! deleted, in the same transaction as the writes. Only the lock holder
//! writes, one transaction at a time (the backend's single writer), so the
//! sequence has no gaps and follows commit order. Every
//! [`PRUNE_EVERY`] commits the same transaction drops rows older than the
//! newest [`KEEP`].
//!
//! **Reading (the ordering argument).** A write is acknowledged to its
//! client only after its transaction, change row included, committed. A
//! standby about to serve a read first reads the rows after the last one it
//! applied ([`changes_since`]), in a query that starts after the read
//! arrived, so after any write whose acknowledgement the client had seen;
//! it drops the cached entries of those keys before serving. A standby
//! whose next row is missing (pruned) starts over from storage.

use deadpool_postgres::Object;
use strongroom_sdk::storage::StorageError;

use crate::schema::quote_ident;

/// Rows kept when pruning.
pub(crate) const KEEP: i64 = 100_000;
/// Prune once per this many commits.
pub(crate) const PRUNE_EVERY: u64 = 1024;
/// Most rows one [`changes_since`] returns.
const PAGE: i64 = 1000;

/// The changes after a point, as a standby reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The newest `seq` in the log (0 when it is empty).
    pub top: u64,
    /// Rows after the point asked for, in order, at most a page: `(seq,
    /// keys)`. Fewer than `top - since` rows means more pages follow, or
    /// that rows were pruned (the first `seq` is not `since + 1`).
    pub rows: Vec<(u64, Vec<String>)>,
}

/// The change log's statements for one data table.
#[derive(Debug, Clone)]
pub(crate) struct ChangeLog {
    pub create: String,
    pub record: String,
    pub prune: String,
    pub since: String,
    table: String,
}

impl ChangeLog {
    pub(crate) fn new(table: &str) -> Self {
        let name = format!("{table}_changes");
        let t = quote_ident(&name);
        ChangeLog {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {t} ( \
                   seq  BIGINT NOT NULL PRIMARY KEY, \
                   keys TEXT[] COLLATE \"C\" NOT NULL);"
            ),
            record: format!(
                "INSERT INTO {t} (seq, keys) \
                 SELECT coalesce(max(seq), 0) + 1, $1::text[] FROM {t}"
            ),
            prune: format!("DELETE FROM {t} WHERE seq <= (SELECT max(seq) - {KEEP} FROM {t})"),
            since: format!(
                "SELECT m.top, c.seq, c.keys \
                 FROM (SELECT coalesce(max(seq), 0) AS top FROM {t}) m \
                 LEFT JOIN LATERAL (SELECT seq, keys FROM {t} WHERE seq > $1 \
                                    ORDER BY seq LIMIT {PAGE}) c ON true \
                 ORDER BY c.seq"
            ),
            table: name,
        }
    }

    /// Creates the table when it is missing.
    pub(crate) async fn create(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<(), tokio_postgres::Error> {
        crate::schema::create_if_missing(client, &self.table, &self.create).await
    }
}

/// The rows after `since` (one query).
pub(crate) async fn changes_since(
    client: &Object,
    log: &ChangeLog,
    since: u64,
) -> Result<Changes, StorageError> {
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let rows = client
        .query(&log.since, &[&since])
        .await
        .map_err(|e| StorageError::Io(crate::backend::pg_error(&e)))?;
    let mut out = Changes::default();
    for row in rows {
        let top: i64 = row.get(0);
        out.top = u64::try_from(top).unwrap_or(0);
        let seq: Option<i64> = row.get(1);
        if let Some(seq) = seq {
            let keys: Vec<String> = row.get(2);
            out.rows.push((u64::try_from(seq).unwrap_or(0), keys));
        }
    }
    Ok(out)
}
