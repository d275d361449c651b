//! The table-in-use claims against a real PostgreSQL: servers share a
//! table, a migration is excluded by them (and a server started during a
//! migration holds no mark), a node holding the HA lock keeps a migration
//! off, and a released claim frees the table at once.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use strongroom_postgres::{InUse, InUseError, PostgresOptions};
use strongroom_test::postgres::Postgres;

fn options(url: &str, table: &str) -> PostgresOptions {
    PostgresOptions {
        connection_url: url.to_string(),
        table: table.to_string(),
        ..PostgresOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_share_a_table_and_a_migration_excludes_them() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let kv = options(&url, "openbao_kv_store");

    let first = InUse::claim_for_server(&kv).await.unwrap();
    let second = InUse::claim_for_server(&kv).await.unwrap();
    assert!(first.is_held() && second.is_held());
    let err = InUse::claim_for_migration(&kv).await.unwrap_err();
    assert!(
        matches!(&err, InUseError::ServerRunning { table } if table == "openbao_kv_store"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "PostgreSQL table \"openbao_kv_store\" is in use by a running Strongroom server (or another migration): stop every server on it first"
    );
    // Another table is free.
    drop(
        InUse::claim_for_migration(&options(&url, "other"))
            .await
            .unwrap(),
    );

    // Released explicitly, the lock is free at once (a dropped claim frees
    // it once PostgreSQL notices the closed connection).
    first.release().await;
    assert!(matches!(
        InUse::claim_for_migration(&kv).await.unwrap_err(),
        InUseError::ServerRunning { .. }
    ));
    second.release().await;
    let migration = InUse::claim_for_migration(&kv).await.unwrap();
    assert!(migration.is_held());
    // A server starting now is not refused by the claim (the migration
    // lock in storage does that), but does not hold its mark.
    let late = InUse::claim_for_server(&kv).await.unwrap();
    assert!(!late.is_held());
    migration.release().await;
    let next = InUse::claim_for_server(&kv).await.unwrap();
    assert!(next.is_held());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpired_ha_lock_row_keeps_a_migration_off() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE locks (ha_key text PRIMARY KEY, ha_identity text NOT NULL, \
               ha_value text, valid_until timestamptz NOT NULL); \
             INSERT INTO locks VALUES ('core/lock', 'id', 'node-a', now() - interval '1 second')",
        )
        .await
        .unwrap();
    let mut opts = options(&url, "kv");
    opts.ha_table = "locks".into();
    // Expired: nobody is active. (Released, not dropped: a dropped claim
    // frees the advisory lock only once PostgreSQL notices the closed
    // connection, and the next claim would race with that.)
    InUse::claim_for_migration(&opts)
        .await
        .unwrap()
        .release()
        .await;
    client
        .batch_execute("UPDATE locks SET valid_until = now() + interval '1 hour'")
        .await
        .unwrap();
    let err = InUse::claim_for_migration(&opts).await.unwrap_err();
    assert!(
        matches!(&err, InUseError::ActiveNode { holder, .. } if holder == "node-a"),
        "{err:?}"
    );
    // Refused, it holds nothing: a server may start.
    drop(InUse::claim_for_server(&opts).await.unwrap());
}
