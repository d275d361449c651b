//! `strongroom operator migrate`: a server's storage copied from redb to
//! PostgreSQL and back, then unsealed with the same keys and found whole
//! (KV v1 and v2, tokens and their leases, AppRole, policies); and the
//! refusals while a server runs on either side, which copy nothing.

use std::path::{Path, PathBuf};

use serde_json::json;
use strongroom_test::postgres::Postgres;
use strongroom_test::server::{
    run, strongroom_path, Call, CmdOutput, Config, Kind, Server, Storage,
};

use crate::races::wait_active;

/// Writes a migration config with the two stanzas and runs the migration.
fn migrate(dir: &Path, source: &str, destination: &str, extra: &[&str]) -> CmdOutput {
    let path = dir.join(format!("migrate-{}.hcl", next_index(dir)));
    std::fs::write(
        &path,
        format!("storage_source {source}\nstorage_destination {destination}\n"),
    )
    .expect("write the migration config");
    let config = format!("-config={}", path.display());
    let mut args = vec!["operator", "migrate", config.as_str()];
    args.extend_from_slice(extra);
    run(&strongroom_path(), &args, &[])
}

/// A name not used yet in `dir` (one config file per run, kept for a
/// failure's post-mortem).
fn next_index(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn redb(path: &Path) -> String {
    format!("\"redb\" {{ path = \"{}\" }}", path.display())
}

fn postgresql(url: &str) -> String {
    format!("\"postgresql\" {{ connection_url = \"{url}\" }}")
}

/// A config for a server on the redb file `dir/strongroom.redb`.
fn redb_config(dir: &Path) -> Config {
    let mut cfg = Config::inmem(dir);
    cfg.storage = Storage::Durable(dir.to_path_buf());
    cfg
}

fn redb_file(dir: &Path) -> PathBuf {
    dir.join("strongroom.redb")
}

/// A config for a server on PostgreSQL (no HA: no lock row to expire).
fn pg_config(dir: &Path, url: &str) -> Config {
    let mut cfg = Config::inmem(dir);
    cfg.storage = Storage::Postgres {
        url: url.to_string(),
        lines: Vec::new(),
    };
    cfg
}

async fn ok(server: &Server, call: Call) -> serde_json::Value {
    let describe = call.describe();
    let r = server.send(&call).await;
    assert!((200..300).contains(&r.status), "{describe}: {r:?}");
    r.body
}

/// What a test wrote, to be found after each migration.
struct Fixture {
    root: String,
    keys: Vec<String>,
    parent: String,
    child: String,
    role_id: String,
    secret_id: String,
}

/// Mounts KV v1 and v2 and AppRole, writes secrets, a policy, a token with
/// a child (both with leases), and a role with a secret-id.
async fn populate(server: &Server) -> Fixture {
    ok(server, Call::post("sys/mounts/kv", json!({"type": "kv"}))).await;
    ok(
        server,
        Call::post("sys/mounts/secret", json!({"type": "kv-v2"})),
    )
    .await;
    ok(
        server,
        Call::post("sys/auth/approle", json!({"type": "approle"})),
    )
    .await;
    ok(server, Call::put("kv/app", json!({"v1": "one"}))).await;
    for version in ["first", "second"] {
        ok(
            server,
            Call::put("secret/data/app", json!({"data": {"password": version}})),
        )
        .await;
    }
    ok(
        server,
        Call::put(
            "sys/policies/acl/reader",
            json!({"policy": "path \"secret/data/*\" { capabilities = [\"read\"] }\n\
                path \"auth/token/create\" { capabilities = [\"update\"] }"}),
        ),
    )
    .await;
    let parent = ok(
        server,
        Call::post(
            "auth/token/create",
            json!({"policies": ["reader"], "ttl": "1h"}),
        ),
    )
    .await["auth"]["client_token"]
        .as_str()
        .expect("parent token")
        .to_string();
    let child = ok(
        server,
        Call::post("auth/token/create", json!({"ttl": "30m"})).token(&parent),
    )
    .await["auth"]["client_token"]
        .as_str()
        .expect("child token")
        .to_string();
    ok(
        server,
        Call::put(
            "auth/approle/role/web",
            json!({"token_policies": ["reader"], "token_ttl": "10m"}),
        ),
    )
    .await;
    let role_id = ok(server, Call::get("auth/approle/role/web/role-id")).await["data"]["role_id"]
        .as_str()
        .expect("role_id")
        .to_string();
    let secret_id = ok(
        server,
        Call::post("auth/approle/role/web/secret-id", json!({})),
    )
    .await["data"]["secret_id"]
        .as_str()
        .expect("secret_id")
        .to_string();
    Fixture {
        root: server.root_token.clone().expect("root token"),
        keys: server.unseal_keys.clone(),
        parent,
        child,
        role_id,
        secret_id,
    }
}

/// Starts a server with `cfg` on migrated storage and unseals it with the
/// fixture's keys.
async fn start_unsealed(cfg: &Config, f: &Fixture) -> Server {
    let mut server = Server::with_config(Kind::Strongroom, cfg);
    server.root_token = Some(f.root.clone());
    server.unseal_keys = f.keys.clone();
    server.unseal().await;
    wait_active(&server).await;
    server
}

/// Everything [`populate`] wrote is there and works.
async fn find_everything(server: &Server, f: &Fixture) {
    let r = ok(server, Call::get("kv/app")).await;
    assert_eq!(r["data"]["v1"], "one");
    let r = ok(server, Call::get("secret/data/app")).await;
    assert_eq!(r["data"]["data"]["password"], "second");
    assert_eq!(r["data"]["metadata"]["version"], 2);
    let r = ok(server, Call::get("secret/data/app?version=1")).await;
    assert_eq!(r["data"]["data"]["password"], "first");
    let r = ok(server, Call::get("sys/policies/acl/reader")).await;
    assert!(
        r["data"]["policy"]
            .as_str()
            .is_some_and(|p| p.contains("secret/data/*")),
        "{r}"
    );
    // Both tokens, the child's parent link and its lease.
    let r = ok(
        server,
        Call::post("auth/token/lookup", json!({"token": f.child})),
    )
    .await;
    assert!(r["data"]["ttl"].as_u64().is_some_and(|t| t > 0), "{r}");
    let r = ok(server, Call::get("auth/token/lookup-self").token(&f.parent)).await;
    assert_eq!(r["data"]["policies"], json!(["default", "reader"]));
    let r = ok(
        server,
        Call::post("auth/token/renew-self", json!({"increment": "20m"})).token(&f.child),
    )
    .await;
    // Renewed from 30m to 20m (Strongroom sometimes answers 1199 where
    // OpenBao answers the increment: a rounding difference outside this
    // test's subject).
    assert!(
        r["auth"]["lease_duration"]
            .as_u64()
            .is_some_and(|d| (1195..=1200).contains(&d)),
        "{r}"
    );
    // The parent's policy reads the secret.
    let r = ok(server, Call::get("secret/data/app").token(&f.parent)).await;
    assert_eq!(r["data"]["data"]["password"], "second");
    // AppRole login with the secret-id issued before the migration.
    let r = ok(
        server,
        Call::post(
            "auth/approle/login",
            json!({"role_id": f.role_id, "secret_id": f.secret_id}),
        )
        .anonymous(),
    )
    .await;
    assert_eq!(r["auth"]["policies"], json!(["default", "reader"]));
    let token = r["auth"]["client_token"].as_str().expect("login token");
    let r = ok(server, Call::get("secret/data/app").token(token)).await;
    assert_eq!(r["data"]["data"]["password"], "second");
}

fn assert_migrated(out: &CmdOutput) {
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("Success! All of the keys have been migrated."),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_moves_from_redb_to_postgresql_and_back_and_finds_everything() {
    let pg = Postgres::start();
    let url = pg.fresh_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, last) = (dir.path().join("first"), dir.path().join("last"));
    for d in [&first, &last] {
        std::fs::create_dir_all(d).expect("mkdir");
    }

    let mut server = Server::with_config(Kind::Strongroom, &redb_config(&first));
    server.init(3, 2).await;
    server.unseal().await;
    let f = populate(&server).await;
    find_everything(&server, &f).await;
    server.kill();

    // redb -> PostgreSQL.
    let out = migrate(
        dir.path(),
        &redb(&redb_file(&first)),
        &postgresql(&url),
        &[],
    );
    assert_migrated(&out);
    assert!(
        out.stderr.contains("copied key") && out.stderr.contains("core/keyring"),
        "progress is logged per key: {out:?}"
    );
    assert!(!out.stderr.contains("initialised already"), "{out:?}");
    let mut server = start_unsealed(&pg_config(dir.path(), &url), &f).await;
    find_everything(&server, &f).await;
    server.kill();
    wait_released(&url).await;

    // PostgreSQL -> a fresh redb file.
    let out = migrate(dir.path(), &postgresql(&url), &redb(&redb_file(&last)), &[]);
    assert_migrated(&out);
    let mut server = start_unsealed(&redb_config(&last), &f).await;
    find_everything(&server, &f).await;
    // The parent-child link came along: revoking the parent revokes the
    // child.
    ok(
        &server,
        Call::post("auth/token/revoke", json!({"token": f.parent})),
    )
    .await;
    let r = server
        .send(&Call::get("auth/token/lookup-self").token(&f.child))
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    server.kill();

    // Into a storage initialised before: copied, with a warning.
    let out = migrate(dir.path(), &redb(&redb_file(&last)), &postgresql(&url), &[]);
    assert_migrated(&out);
    assert!(
        out.stderr
            .contains("the destination was initialised already"),
        "{out:?}"
    );
}

/// Waits until no process holds an advisory lock in `url`'s database: a
/// killed server's session ends (and releases its lock) a moment after
/// the process is gone.
async fn wait_released(url: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let held: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = \
                 (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .await
            .expect("read pg_locks")
            .get(0);
        if held == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a stopped server's advisory lock is still held"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The rows of the data table (0 when it does not exist).
async fn row_count(url: &str) -> i64 {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    match client
        .query_one("SELECT count(*) FROM openbao_kv_store", &[])
        .await
    {
        Ok(row) => row.get(0),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => 0,
        Err(e) => panic!("count rows: {e}"),
    }
}

async fn sql(url: &str, statement: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client.batch_execute(statement).await.expect(statement);
}

fn assert_refused(out: &CmdOutput, needle: &str) {
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("Error migrating:") && out.stderr.contains(needle),
        "expected {needle:?} in {out:?}"
    );
    assert!(!out.stdout.contains("Success!"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_refuses_while_a_server_runs_on_either_side() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (busy, idle) = (dir.path().join("busy"), dir.path().join("idle"));
    for d in [&busy, &idle] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    // An idle redb storage with data (its server stopped).
    let mut server = Server::with_config(Kind::Strongroom, &redb_config(&idle));
    server.init(1, 1).await;
    server.unseal().await;
    server.kill();

    // A server running on redb: neither a source nor a destination.
    let mut on_redb = Server::with_config(Kind::Strongroom, &redb_config(&busy));
    on_redb.init(1, 1).await;
    let empty = pg.fresh_url();
    let out = migrate(
        dir.path(),
        &redb(&redb_file(&busy)),
        &postgresql(&empty),
        &[],
    );
    assert_refused(&out, "is in use by another process");
    assert_eq!(row_count(&empty).await, 0, "nothing copied");
    let out = migrate(
        dir.path(),
        &redb(&redb_file(&idle)),
        &redb(&redb_file(&busy)),
        &[],
    );
    assert_refused(&out, "storage_destination \"redb\"");
    assert_refused(&out, "is in use by another process");
    on_redb.kill();

    // A server running on PostgreSQL (no HA: it holds no lock row).
    let url = pg.fresh_url();
    let on_pg = Server::with_config(Kind::Strongroom, &pg_config(dir.path(), &url));
    let rows = row_count(&url).await;
    let fresh = dir.path().join("never-created.redb");
    let out = migrate(dir.path(), &postgresql(&url), &redb(&fresh), &[]);
    assert_refused(&out, "in use by a running Strongroom server");
    assert!(!fresh.exists(), "the destination was not even opened");
    let out = migrate(dir.path(), &redb(&redb_file(&idle)), &postgresql(&url), &[]);
    assert_refused(&out, "storage_destination \"postgresql\"");
    assert_refused(&out, "in use by a running Strongroom server");
    assert_eq!(row_count(&url).await, rows, "nothing copied");
    drop(on_pg);

    // A node holding the HA lock (as an OpenBao node would, which takes no
    // advisory lock).
    let ha = pg.fresh_url();
    sql(
        &ha,
        "CREATE TABLE openbao_ha_locks (ha_key text COLLATE \"C\" NOT NULL, \
           ha_identity text COLLATE \"C\" NOT NULL, ha_value text COLLATE \"C\", \
           valid_until timestamptz NOT NULL, PRIMARY KEY (ha_key)); \
         INSERT INTO openbao_ha_locks VALUES \
           ('core/lock', 'some-identity', 'other-node', now() + interval '1 hour')",
    )
    .await;
    let out = migrate(dir.path(), &redb(&redb_file(&idle)), &postgresql(&ha), &[]);
    assert_refused(&out, "holds the HA lock");
    assert_refused(&out, "other-node");
    assert_eq!(row_count(&ha).await, 0, "nothing copied");
    // Once no node holds it, the same migration goes through.
    sql(&ha, "DELETE FROM openbao_ha_locks").await;
    let out = migrate(dir.path(), &redb(&redb_file(&idle)), &postgresql(&ha), &[]);
    assert_migrated(&out);
    assert!(row_count(&ha).await > 0);
}

/// Writes the migration lock a migration killed outright leaves behind
/// into the data table at `url`.
async fn leave_lock(url: &str) {
    sql(
        url,
        "INSERT INTO openbao_kv_store (parent_path, path, key, value) \
         VALUES ('/', '/core/', 'migration', '{\"start\":\"2026-01-02T03:04:05Z\"}')",
    )
    .await;
}

/// Runs a server with `cfg` to its exit (it is expected to refuse).
async fn server_refused(cfg: &Config, url: &str) -> CmdOutput {
    let path = cfg.dir.join("server.hcl");
    std::fs::write(
        &path,
        cfg.render(Kind::Strongroom, &[strongroom_test::server::free_port()]),
    )
    .expect("write config");
    let config = format!("-config={}", path.display());
    let out = run(&strongroom_path(), &["server", config.as_str()], &[]);
    wait_released(url).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_left_over_migration_lock_stops_servers_until_reset() {
    let pg = Postgres::start();
    let (url, other) = (pg.fresh_url(), pg.fresh_url());
    let (dir, other_dir) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (cfg, other_cfg) = (
        pg_config(dir.path(), &url),
        pg_config(other_dir.path(), &other),
    );
    let mut server = Server::with_config(Kind::Strongroom, &cfg);
    server.init(1, 1).await;
    server.kill();
    // A server on `other` creates its table.
    drop(Server::with_config(Kind::Strongroom, &other_cfg));
    wait_released(&url).await;
    wait_released(&other).await;
    // A migration from `url` to `other`, killed outright, left its lock in
    // both: no server starts on either.
    leave_lock(&url).await;
    leave_lock(&other).await;
    for (c, u) in [(&cfg, &url), (&other_cfg, &other)] {
        let out = server_refused(c, u).await;
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.contains(
                "Startup is prevented because a storage migration is in progress (started: 2026-01-02T03:04:05Z)"
            ),
            "{out:?}"
        );
    }
    // A second migration refuses too, and leaves the locks in place.
    let out = migrate(dir.path(), &postgresql(&url), &postgresql(&other), &[]);
    assert_refused(
        &out,
        "storage_source: storage migration in progress (started: 2026-01-02T03:04:05Z)",
    );
    let out = server_refused(&cfg, &url).await;
    assert_eq!(out.code, 1, "{out:?}");

    // -reset clears both sides, and the servers start.
    let out = migrate(
        dir.path(),
        &postgresql(&url),
        &postgresql(&other),
        &["-reset"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("Success! Migration lock reset (if it was set)."),
        "{out:?}"
    );
    let server = Server::with_config(Kind::Strongroom, &cfg);
    let r = server.send(&Call::get("sys/seal-status")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["initialized"], true);
    let server = Server::with_config(Kind::Strongroom, &other_cfg);
    let r = server.send(&Call::get("sys/seal-status")).await;
    assert_eq!(r.body["initialized"], false, "{r:?}");
}
