//! OpenBao's table layout: how a storage key maps onto the data table's
//! `(parent_path, path, key)` columns, the SQL run against it, and creating
//! the tables when they are missing.
//!
//! A key `a/b/c` is stored as `parent_path = "/a/"`, `path = "/a/b/"`,
//! `key = "c"`; `a/b` as `("/", "/a/", "b")`; `a` as `("", "/", "a")`, exactly
//! as OpenBao splits it, so a table written by OpenBao reads here and back.

use tokio_postgres::error::SqlState;

/// Splits a storage key into OpenBao's `(parent_path, path, key)`.
pub(crate) fn split_key(full: &str) -> (String, String, &str) {
    let (dir, key) = match full.rfind('/') {
        Some(i) => (&full[..i], &full[i + 1..]),
        None => return (String::new(), "/".to_string(), full),
    };
    let path = format!("/{dir}/");
    let parent = match dir.rfind('/') {
        Some(i) => format!("/{}/", &dir[..i]),
        None => "/".to_string(),
    };
    (parent, path, key)
}

/// `name` as a quoted SQL identifier (`"a""b"` for `a"b`), as OpenBao quotes
/// its table names.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SQL text of every statement, with the table names filled in.
#[derive(Debug)]
pub(crate) struct Statements {
    pub get: String,
    pub upsert: String,
    pub delete: String,
    pub list_keys: String,
    pub list_folders: String,
}

impl Statements {
    pub(crate) fn new(table: &str) -> Self {
        let t = quote_ident(table);
        Statements {
            get: format!("SELECT value FROM {t} WHERE path = $1 AND key = $2"),
            // Arrays of one row per key: one statement for the whole group.
            upsert: format!(
                "INSERT INTO {t} (parent_path, path, key, value) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) \
                 ON CONFLICT (path, key) DO UPDATE \
                 SET parent_path = EXCLUDED.parent_path, value = EXCLUDED.value"
            ),
            delete: format!(
                "DELETE FROM {t} AS t USING unnest($1::text[], $2::text[]) AS d(path, key) \
                 WHERE t.path = d.path AND t.key = d.key"
            ),
            // The direct children of a folder, a page at a time ($2: after).
            list_keys: format!(
                "SELECT key FROM {t} WHERE path = $1 AND key > $2 ORDER BY key LIMIT $3"
            ),
            // The sub-folders, by a loose index scan on the primary key's
            // `path` order: find the first path below the folder, take its
            // first segment, then seek past every path inside that segment
            // (`segment || '0'`, '0' being the byte after '/') and repeat.
            // One index seek per sub-folder, however many keys they hold.
            // $2 is the folder's upper bound (its last '/' replaced by '0').
            list_folders: format!(
                "WITH RECURSIVE f(name) AS ( \
                   (SELECT split_part(substr(path, char_length($1) + 1), '/', 1) FROM {t} \
                    WHERE path > $1 AND path < $2 ORDER BY path LIMIT 1) \
                   UNION ALL \
                   SELECT (SELECT split_part(substr(t.path, char_length($1) + 1), '/', 1) \
                           FROM {t} AS t \
                           WHERE t.path >= $1 || f.name || '0' AND t.path < $2 \
                           ORDER BY t.path LIMIT 1) \
                   FROM f WHERE f.name IS NOT NULL) \
                 SELECT name FROM f WHERE name IS NOT NULL"
            ),
        }
    }
}

/// The fence check run first in every fenced write transaction (see the
/// crate docs): the row lock taken here makes a steal of the lock wait until
/// this transaction ends, and the idle timeout ($3, milliseconds) ends a
/// transaction whose client went silent, so that the wait is short.
pub(crate) fn fence_sql(ha_table: &str) -> String {
    format!(
        "SELECT set_config('idle_in_transaction_session_timeout', $3, true) FROM {} \
         WHERE ha_key = $1 AND ha_identity = $2 AND valid_until > clock_timestamp() \
         FOR SHARE",
        quote_ident(ha_table)
    )
}

/// Creates the data table (with its index) and the lock table when they do
/// not exist. A table that exists is left exactly as it is, whatever its
/// constraint and index names (OpenBao's documented SQL names them `pkey`,
/// `parent_path_idx` and `ha_key`; its automatic creation
/// `<table>_pkey`, `<table>_idx`).
pub(crate) async fn create_tables(
    client: &tokio_postgres::Client,
    table: &str,
    ha_table: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    let t = quote_ident(table);
    let data = format!(
        "CREATE TABLE IF NOT EXISTS {t} ( \
           parent_path TEXT COLLATE \"C\" NOT NULL, \
           path        TEXT COLLATE \"C\", \
           key         TEXT COLLATE \"C\", \
           value       BYTEA, \
           CONSTRAINT {pkey} PRIMARY KEY (path, key)); \
         CREATE INDEX IF NOT EXISTS {idx} ON {t} (parent_path);",
        pkey = quote_ident(&format!("{table}_pkey")),
        idx = quote_ident(&format!("{table}_idx")),
    );
    create_if_missing(client, table, &data).await?;
    if let Some(ha_table) = ha_table {
        let ha = format!(
            "CREATE TABLE IF NOT EXISTS {ha} ( \
               ha_key      TEXT COLLATE \"C\" NOT NULL, \
               ha_identity TEXT COLLATE \"C\" NOT NULL, \
               ha_value    TEXT COLLATE \"C\", \
               valid_until TIMESTAMP WITH TIME ZONE NOT NULL, \
               CONSTRAINT {pkey} PRIMARY KEY (ha_key));",
            ha = quote_ident(ha_table),
            pkey = quote_ident(&format!("{ha_table}_pkey")),
        );
        create_if_missing(client, ha_table, &ha).await?;
    }
    Ok(())
}

/// Runs `ddl` unless a relation named `table` is visible already; two nodes
/// racing to create it is not an error (the loser sees a unique violation
/// on the catalog), nor is a read-only replica.
pub(crate) async fn create_if_missing(
    client: &tokio_postgres::Client,
    table: &str,
    ddl: &str,
) -> Result<(), tokio_postgres::Error> {
    let exists = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&quote_ident(table)])
        .await?
        .get::<_, bool>(0);
    if exists {
        return Ok(());
    }
    match client.batch_execute(&format!("BEGIN; {ddl} COMMIT;")).await {
        Ok(()) => Ok(()),
        Err(e)
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                || e.code() == Some(&SqlState::DUPLICATE_TABLE)
                || e.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION) =>
        {
            // The failed transaction must not stay open on the connection.
            let _ = client.batch_execute("ROLLBACK").await;
            tracing::warn!(table, error = %e, "did not create the table");
            Ok(())
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_keys_as_openbao() {
        assert_eq!(split_key("a"), (String::new(), "/".into(), "a"));
        assert_eq!(split_key("a/b"), ("/".into(), "/a/".into(), "b"));
        assert_eq!(split_key("a/b/c"), ("/a/".into(), "/a/b/".into(), "c"));
        assert_eq!(
            split_key("sys/token/id/h"),
            ("/sys/token/".into(), "/sys/token/id/".into(), "h")
        );
        assert_eq!(split_key("a/"), ("/".into(), "/a/".into(), ""));
    }

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("openbao_kv_store"), "\"openbao_kv_store\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
