//! The `strongroom operator migrate` config file: OpenBao's shape
//! (`storage_source` and `storage_destination`, each a server `storage`
//! block), both required exactly once, anything else refused by name.

use std::path::PathBuf;

use strongroom_config::{
    load_migration, parse_migration_str, ConfigError, Format, MigrationConfig, StorageConfig,
    DEFAULT_PG_TABLE,
};

fn hcl(text: &str) -> Result<MigrationConfig, ConfigError> {
    parse_migration_str(text, Format::Hcl)
}

fn message(text: &str) -> String {
    hcl(text).expect_err("must be refused").to_string()
}

#[test]
fn both_directions_parse_in_hcl_and_json() {
    let config = hcl(r#"
        storage_source "redb" { path = "/var/lib/strongroom/data.redb" }
        storage_destination "postgresql" {
          connection_url = "postgres://strongroom@db/strongroom"
          table          = "kv"
        }
        cluster_addr = "https://127.0.0.1:8201"
    "#)
    .expect("valid");
    assert_eq!(
        config.source,
        StorageConfig::Redb {
            path: PathBuf::from("/var/lib/strongroom/data.redb")
        }
    );
    let StorageConfig::Postgresql(pg) = &config.destination else {
        panic!("destination: {:?}", config.destination)
    };
    assert_eq!(pg.connection_url, "postgres://strongroom@db/strongroom");
    assert_eq!(pg.table, "kv");

    let json = parse_migration_str(
        r#"{"storage_source": {"postgresql": {"connection_url": "postgres://db/x"}},
            "storage_destination": [{"redb": {"path": "/tmp/new.redb"}}]}"#,
        Format::Json,
    )
    .expect("valid JSON");
    let StorageConfig::Postgresql(pg) = &json.source else {
        panic!("source: {:?}", json.source)
    };
    assert_eq!(pg.table, DEFAULT_PG_TABLE);
    assert_eq!(
        json.destination,
        StorageConfig::Redb {
            path: PathBuf::from("/tmp/new.redb")
        }
    );
}

#[test]
fn each_stanza_is_required_exactly_once() {
    assert_eq!(
        message(r#"storage_destination "redb" { path = "/b" }"#),
        r#"exactly one "storage_source" block is required, found 0"#
    );
    assert_eq!(
        message(r#"storage_source "redb" { path = "/a" }"#),
        r#"exactly one "storage_destination" block is required, found 0"#
    );
    assert_eq!(
        message(
            r#"
            storage_source "redb" { path = "/a" }
            storage_source "redb" { path = "/c" }
            storage_destination "redb" { path = "/b" }
            "#
        ),
        r#"exactly one "storage_source" block is required, found 2"#
    );
    // A server's `storage` block is not a migration's.
    assert_eq!(
        message(
            r#"
            storage "redb" { path = "/a" }
            storage_destination "redb" { path = "/b" }
            "#
        ),
        r#"unknown key "storage" in migration config file"#
    );
}

#[test]
fn unknown_keys_are_refused_by_name() {
    assert_eq!(
        message(
            r#"
            storage_source "redb" { path = "/a" }
            storage_destination "redb" { path = "/b" }
            listener "tcp" { address = "127.0.0.1:8200" }
            max_parallel = 4
            "#
        ),
        r#"unknown keys "listener", "max_parallel" in migration config file"#
    );
    assert_eq!(
        message(
            r#"
            storage_source "redb" { path = "/a"  paht = "/x" }
            storage_destination "redb" { path = "/b" }
            "#
        ),
        r#"unknown key "paht" in storage_source "redb""#
    );
    assert_eq!(
        message(
            r#"
            storage_source "redb" { path = "/a" }
            storage_destination "postgresql" { connection_url = "postgres://db/x"  tabel = "t" }
            "#
        ),
        r#"unknown key "tabel" in storage_destination "postgresql""#
    );
    assert_eq!(
        message(
            r#"
            storage_source "consul" { address = "127.0.0.1:8500" }
            storage_destination "redb" { path = "/b" }
            "#
        ),
        r#"unknown storage type "consul" (supported: "inmem", "redb", "postgresql")"#
    );
    assert_eq!(
        message(
            r#"
            storage_source "redb" {}
            storage_destination "redb" { path = "/b" }
            "#
        ),
        r#"storage_source "redb" is missing "path" (the database file, e.g. path = "/var/lib/strongroom/data.redb")"#
    );
}

#[test]
fn a_file_error_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("migrate.hcl");
    std::fs::write(&path, "storage_source \"redb\" { path = \"/a\" }\n").expect("write");
    let err = load_migration(&path).expect_err("no destination");
    assert!(
        matches!(err.root(), ConfigError::MigrationStanza { stanza, found: 0 } if stanza == "storage_destination"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "error in config file {path:?}: exactly one \"storage_destination\" block is required, found 0"
        )
    );
}
