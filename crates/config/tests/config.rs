//! Behaviour of the config parser as the server binary and operators rely on
//! it: every accepted key, both syntaxes, and every rejection with a message
//! that names what is wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use strongroom_config::{
    load, parse_str, AuditDeviceConfig, ConfigError, Format, ListenerConfig, LogFormat, LogLevel,
    PostgresqlConfig, ServerConfig, StorageConfig, TlsFiles, DEFAULT_HTTP_IDLE_TIMEOUT,
    DEFAULT_HTTP_READ_HEADER_TIMEOUT, DEFAULT_HTTP_READ_TIMEOUT, DEFAULT_LISTENER_ADDRESS,
    DEFAULT_MAX_REQUEST_SIZE, UNLIMITED_REQUEST_SIZE,
};

const FULL_HCL: &str = r#"
# A complete config exercising every key.
storage "redb" {
  path = "/var/lib/strongroom/data.redb"
}

listener "tcp" {
  address          = "0.0.0.0:8200"
  tls_cert_file    = "/etc/strongroom/cert.pem"
  tls_key_file     = "/etc/strongroom/key.pem"
  max_request_size = 1048576
  cluster_address  = "0.0.0.0:8201"
}

listener "tcp" {
  address     = "127.0.0.1:8300"
  tls_disable = true
}

api_addr          = "https://vault.example.com:8200"
cluster_addr      = "https://node1.example.com:8201"
cluster_name      = "prod"
default_lease_ttl = "1h"
max_lease_ttl     = "768h"
log_level         = "Warning"
log_format        = "json"
disable_mlock     = true
ui                = true
cache_size        = 50000
disable_cache     = false

unsafe_allow_api_audit_creation = true
allow_audit_log_prefixing       = "true"

audit "file" "to-file" {
  description = "every request"
  options {
    file_path = "/var/log/strongroom/audit.log"
    mode      = "0640"
    hash_chain = true
  }
}

audit "socket" "siem" {
  local = true
  options {
    address     = "10.0.0.9:9090"
    socket_type = "tcp"
  }
}
"#;

const FULL_JSON: &str = r#"{
  "storage": {"redb": {"path": "/var/lib/strongroom/data.redb"}},
  "listener": [
    {"tcp": {"address": "0.0.0.0:8200", "tls_cert_file": "/etc/strongroom/cert.pem",
             "tls_key_file": "/etc/strongroom/key.pem", "max_request_size": 1048576,
             "cluster_address": "0.0.0.0:8201"}},
    {"tcp": {"address": "127.0.0.1:8300", "tls_disable": "true"}}
  ],
  "api_addr": "https://vault.example.com:8200",
  "cluster_addr": "https://node1.example.com:8201",
  "cluster_name": "prod",
  "default_lease_ttl": 3600,
  "max_lease_ttl": "768h",
  "log_level": "warn",
  "log_format": "JSON",
  "disable_mlock": true,
  "ui": 1,
  "cache_size": "50000",
  "disable_cache": "false",
  "unsafe_allow_api_audit_creation": true,
  "allow_audit_log_prefixing": 1,
  "audit": [
    {"file": {"to-file": {"description": "every request",
      "options": {"file_path": "/var/log/strongroom/audit.log", "mode": "0640", "hash_chain": "true"}}}},
    {"socket": {"siem": {"local": true,
      "options": {"address": "10.0.0.9:9090", "socket_type": "tcp"}}}}
  ]
}"#;

fn expected_full() -> ServerConfig {
    ServerConfig {
        storage: StorageConfig::Redb {
            path: PathBuf::from("/var/lib/strongroom/data.redb"),
        },
        listeners: vec![
            ListenerConfig {
                address: "0.0.0.0:8200".to_string(),
                tls: Some(TlsFiles {
                    cert_file: PathBuf::from("/etc/strongroom/cert.pem"),
                    key_file: PathBuf::from("/etc/strongroom/key.pem"),
                }),
                max_request_size: 1_048_576,
                cluster_address: Some("0.0.0.0:8201".to_string()),
                ..ListenerConfig::default()
            },
            ListenerConfig {
                address: "127.0.0.1:8300".to_string(),
                tls: None,
                max_request_size: DEFAULT_MAX_REQUEST_SIZE,
                ..ListenerConfig::default()
            },
        ],
        api_addr: Some("https://vault.example.com:8200".to_string()),
        cluster_addr: Some("https://node1.example.com:8201".to_string()),
        cluster_name: Some("prod".to_string()),
        default_lease_ttl: Some(Duration::from_secs(3600)),
        max_lease_ttl: Some(Duration::from_secs(768 * 3600)),
        log_level: Some(LogLevel::Warn),
        log_format: Some(LogFormat::Json),
        disable_mlock: true,
        ui: true,
        cache_size: Some(50_000),
        disable_cache: false,
        audit: vec![
            AuditDeviceConfig {
                kind: "file".into(),
                path: "to-file".into(),
                description: "every request".into(),
                local: false,
                options: [
                    ("file_path", "/var/log/strongroom/audit.log"),
                    ("mode", "0640"),
                    ("hash_chain", "true"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            },
            AuditDeviceConfig {
                kind: "socket".into(),
                path: "siem".into(),
                description: String::new(),
                local: true,
                options: [("address", "10.0.0.9:9090"), ("socket_type", "tcp")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        ],
        unsafe_allow_api_audit_creation: true,
        allow_audit_log_prefixing: true,
        telemetry: Default::default(),
    }
}

fn hcl(text: &str) -> Result<ServerConfig, ConfigError> {
    parse_str(text, Format::Hcl)
}

fn json(text: &str) -> Result<ServerConfig, ConfigError> {
    parse_str(text, Format::Json)
}

/// Parses `text` as HCL expecting an error; returns its message.
fn hcl_err(text: &str) -> String {
    match hcl(text) {
        Ok(c) => panic!("expected an error for {text:?}, got {c:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "multi-line message: {msg:?}");
            msg
        }
    }
}

fn listener_hcl(body: &str) -> String {
    format!("storage \"inmem\" {{}}\nlistener \"tcp\" {{\n{body}\n}}\n")
}

fn one_listener(body: &str) -> ListenerConfig {
    let config = hcl(&listener_hcl(body)).expect("valid listener");
    assert_eq!(config.listeners.len(), 1);
    config.listeners.into_iter().next().expect("one listener")
}

#[test]
fn full_hcl_config_parses_every_key() {
    assert_eq!(hcl(FULL_HCL).expect("valid"), expected_full());
}

#[test]
fn full_json_config_equals_the_hcl_one() {
    assert_eq!(json(FULL_JSON).expect("valid"), expected_full());
    assert_eq!(
        json(FULL_JSON).expect("valid"),
        hcl(FULL_HCL).expect("valid")
    );
}

#[test]
fn minimal_config_gets_vault_defaults() {
    let config = hcl(r#"storage "inmem" {}"#).expect("valid");
    assert_eq!(config.storage, StorageConfig::Inmem);
    assert!(config.listeners.is_empty());
    assert_eq!(config.api_addr, None);
    assert_eq!(config.cluster_name, None);
    assert_eq!(config.default_lease_ttl, None);
    assert_eq!(config.max_lease_ttl, None);
    assert_eq!(config.log_level, None);
    assert!(!config.disable_mlock);
    assert!(!config.ui);
    assert_eq!(
        config.effective_default_lease_ttl(),
        Duration::from_secs(768 * 3600)
    );
    assert_eq!(
        config.effective_max_lease_ttl(),
        Duration::from_secs(768 * 3600)
    );
}

#[test]
fn listener_defaults() {
    let l = one_listener("tls_disable = true");
    assert_eq!(l.address, DEFAULT_LISTENER_ADDRESS);
    assert_eq!(l.address, "127.0.0.1:8200");
    assert_eq!(l.max_request_size, 33_554_432);
    assert_eq!(l.http_idle_timeout, Some(Duration::from_secs(300)));
    assert_eq!(l.http_read_header_timeout, Some(Duration::from_secs(10)));
    assert_eq!(l.http_read_timeout, Some(Duration::from_secs(30)));
    assert_eq!(l.http_write_timeout, None);
    assert_eq!(l.max_connections, None);
    assert_eq!(l, ListenerConfig::default());
}

#[test]
fn connection_timeouts_and_cap_use_openbao_names() {
    let l = one_listener(concat!(
        "tls_disable = 1\n",
        "http_idle_timeout = \"2m\"\n",
        "http_read_header_timeout = 5\n",
        "http_read_timeout = \"1m30s\"\n",
        "http_write_timeout = \"45s\"\n",
        "max_connections = 500",
    ));
    assert_eq!(l.http_idle_timeout, Some(Duration::from_secs(120)));
    assert_eq!(l.http_read_header_timeout, Some(Duration::from_secs(5)));
    assert_eq!(l.http_read_timeout, Some(Duration::from_secs(90)));
    assert_eq!(l.http_write_timeout, Some(Duration::from_secs(45)));
    assert_eq!(l.max_connections, Some(500));

    // 0 disables a timeout; a 0 cap means "derive it from the fd limit".
    let l = one_listener(concat!(
        "tls_disable = 1\n",
        "http_idle_timeout = 0\n",
        "http_read_header_timeout = \"0s\"\n",
        "http_read_timeout = 0\n",
        "max_connections = 0",
    ));
    assert_eq!(l.http_idle_timeout, None);
    assert_eq!(l.http_read_header_timeout, None);
    assert_eq!(l.http_read_timeout, None);
    assert_eq!(l.max_connections, None);
    assert_eq!(
        (
            DEFAULT_HTTP_IDLE_TIMEOUT,
            DEFAULT_HTTP_READ_HEADER_TIMEOUT,
            DEFAULT_HTTP_READ_TIMEOUT
        ),
        (
            Duration::from_secs(300),
            Duration::from_secs(10),
            Duration::from_secs(30)
        )
    );

    for (key, bad) in [
        ("http_idle_timeout", "\"soon\""),
        ("http_read_timeout", "true"),
        ("max_connections", "-5"),
        ("max_connections", "\"many\""),
    ] {
        let msg = hcl_err(&listener_hcl(&format!("tls_disable = 1\n{key} = {bad}")));
        assert!(msg.contains(&format!("\"{key}\"")), "{msg}");
    }
}

#[test]
fn repeated_listener_blocks_keep_file_order() {
    let text = r#"
        storage "inmem" {}
        listener "tcp" { address = "127.0.0.1:1"  tls_disable = true }
        listener "tcp" { address = "127.0.0.1:2"  tls_disable = true }
        listener "tcp" { address = "127.0.0.1:3"  tls_disable = true }
    "#;
    let addrs: Vec<String> = hcl(text)
        .expect("valid")
        .listeners
        .into_iter()
        .map(|l| l.address)
        .collect();
    assert_eq!(addrs, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]);
}

#[test]
fn json_listener_may_be_an_object_or_an_array() {
    let as_object = json(
        r#"{"storage": {"inmem": {}}, "listener": {"tcp": {"address": "127.0.0.1:9", "tls_disable": 1}}}"#,
    )
    .expect("object form");
    let as_array = json(
        r#"{"storage": {"inmem": {}}, "listener": [{"tcp": {"address": "127.0.0.1:9", "tls_disable": 1}}]}"#,
    )
    .expect("array form");
    let as_label_array = json(
        r#"{"storage": {"inmem": {}}, "listener": {"tcp": [{"address": "127.0.0.1:9", "tls_disable": 1}]}}"#,
    )
    .expect("array under the label");
    assert_eq!(as_object, as_array);
    assert_eq!(as_object, as_label_array);
    assert_eq!(as_object.listeners[0].address, "127.0.0.1:9");
}

#[test]
fn tls_disable_accepts_vault_boolean_forms() {
    for yes in ["true", "\"true\"", "1", "\"1\"", "\"TRUE\"", "\"t\""] {
        let l = one_listener(&format!("tls_disable = {yes}"));
        assert_eq!(l.tls, None, "tls_disable = {yes}");
    }
    for no in ["false", "\"false\"", "0", "\"0\"", "\"False\""] {
        let l = one_listener(&format!(
            "tls_disable = {no}\ntls_cert_file = \"c.pem\"\ntls_key_file = \"k.pem\""
        ));
        assert_eq!(
            l.tls,
            Some(TlsFiles {
                cert_file: PathBuf::from("c.pem"),
                key_file: PathBuf::from("k.pem")
            }),
            "tls_disable = {no}"
        );
    }
    for bad in ["\"yes\"", "2", "\"\"", "[true]"] {
        let msg = hcl_err(&listener_hcl(&format!("tls_disable = {bad}")));
        assert!(msg.contains("\"tls_disable\""), "{msg}");
        assert!(msg.contains("listener #1"), "{msg}");
    }
}

#[test]
fn tls_files_are_ignored_when_tls_is_disabled() {
    let l = one_listener("tls_disable = true\ntls_cert_file = \"c.pem\"");
    assert_eq!(l.tls, None);
}

#[test]
fn tls_requires_both_files_and_names_the_listener_and_key() {
    let msg = hcl_err(&listener_hcl("address = \"0.0.0.0:8200\""));
    assert!(msg.contains("\"tls_cert_file\""), "{msg}");
    assert!(msg.contains("listener #1"), "{msg}");
    assert!(msg.contains("0.0.0.0:8200"), "{msg}");

    let msg = hcl_err(&listener_hcl("tls_cert_file = \"c.pem\""));
    assert!(msg.contains("\"tls_key_file\""), "{msg}");

    let msg = hcl_err(&listener_hcl("tls_key_file = \"k.pem\""));
    assert!(msg.contains("\"tls_cert_file\""), "{msg}");

    // The second listener is the faulty one: the message says so.
    let text = r#"
        storage "inmem" {}
        listener "tcp" { tls_disable = true }
        listener "tcp" { address = "127.0.0.1:8201" }
    "#;
    let msg = hcl_err(text);
    assert!(msg.contains("listener #2"), "{msg}");
    assert!(
        matches!(hcl(text), Err(ConfigError::MissingKey { ref key, .. }) if key == "tls_cert_file")
    );
}

#[test]
fn max_request_size_follows_vault() {
    let size = |v: &str| {
        one_listener(&format!("tls_disable = 1\nmax_request_size = {v}")).max_request_size
    };
    assert_eq!(size("1024"), 1024);
    assert_eq!(size("\"2048\""), 2048);
    assert_eq!(size("0"), DEFAULT_MAX_REQUEST_SIZE);
    assert_eq!(size("-1"), UNLIMITED_REQUEST_SIZE);
    assert_eq!(size("\"-1\""), u64::MAX);
    assert_eq!(size("33554432"), 33_554_432);
    for bad in ["\"lots\"", "1.5", "true"] {
        let msg = hcl_err(&listener_hcl(&format!(
            "tls_disable = 1\nmax_request_size = {bad}"
        )));
        assert!(msg.contains("\"max_request_size\""), "{msg}");
    }
}

#[test]
fn listener_types_other_than_tcp_are_refused() {
    let msg = hcl_err("storage \"inmem\" {}\nlistener \"unix\" { address = \"/run/s.sock\" }");
    assert!(msg.contains("\"unix\""), "{msg}");
    assert!(matches!(
        hcl("storage \"inmem\" {}\nlistener \"unix\" {}"),
        Err(ConfigError::UnknownListener { ref kind }) if kind == "unix"
    ));
}

#[test]
fn unlabelled_listener_is_refused() {
    let msg = hcl_err("storage \"inmem\" {}\nlistener { address = \"127.0.0.1:1\" }");
    assert!(msg.contains("listener"), "{msg}");
}

#[test]
fn durations_accept_strings_and_seconds() {
    let ttl = |v: &str| {
        hcl(&format!("storage \"inmem\" {{}}\ndefault_lease_ttl = {v}"))
            .expect("valid")
            .default_lease_ttl
    };
    assert_eq!(ttl("\"768h\""), Some(Duration::from_secs(768 * 3600)));
    assert_eq!(ttl("\"1h30m\""), Some(Duration::from_secs(5400)));
    assert_eq!(ttl("60"), Some(Duration::from_secs(60)));
    assert_eq!(ttl("\"60\""), Some(Duration::from_secs(60)));
    // Vault: 0 means "use the default".
    assert_eq!(ttl("0"), None);
    let max = hcl("storage \"inmem\" {}\nmax_lease_ttl = \"1000h\"")
        .expect("valid")
        .max_lease_ttl;
    assert_eq!(max, Some(Duration::from_secs(1000 * 3600)));
    for bad in ["\"soon\"", "-5", "true", "\"1x\""] {
        let msg = hcl_err(&format!("storage \"inmem\" {{}}\nmax_lease_ttl = {bad}"));
        assert!(msg.contains("\"max_lease_ttl\""), "{msg}");
    }
}

#[test]
fn default_lease_ttl_above_max_is_refused_like_openbao() {
    let msg = hcl_err("storage \"inmem\" {}\ndefault_lease_ttl = \"2h\"\nmax_lease_ttl = \"1h\"");
    assert!(
        msg.contains("default_lease_ttl") && msg.contains("max_lease_ttl"),
        "{msg}"
    );
    // The unset default is 768h, so a small max alone is refused too.
    assert!(matches!(
        hcl("storage \"inmem\" {}\nmax_lease_ttl = \"1h\""),
        Err(ConfigError::LeaseTtl {
            default_secs: 2_764_800,
            max_secs: 3600
        })
    ));
    assert!(
        hcl("storage \"inmem\" {}\nmax_lease_ttl = \"1h\"\ndefault_lease_ttl = \"1h\"").is_ok()
    );
}

#[test]
fn log_levels() {
    let level = |v: &str| {
        hcl(&format!("storage \"inmem\" {{}}\nlog_level = \"{v}\""))
            .expect("valid")
            .log_level
    };
    assert_eq!(level("trace"), Some(LogLevel::Trace));
    assert_eq!(level("DEBUG"), Some(LogLevel::Debug));
    assert_eq!(level("Info"), Some(LogLevel::Info));
    assert_eq!(level("warn"), Some(LogLevel::Warn));
    assert_eq!(level("warning"), Some(LogLevel::Warn));
    assert_eq!(level("error"), Some(LogLevel::Error));
    assert_eq!(LogLevel::Warn.as_str(), "warn");
    let msg = hcl_err("storage \"inmem\" {}\nlog_level = \"loud\"");
    assert!(
        msg.contains("\"log_level\"") && msg.contains("loud"),
        "{msg}"
    );
}

#[test]
fn top_level_booleans_and_strings() {
    let c = hcl("storage \"inmem\" {}\ndisable_mlock = \"true\"\nui = 0\napi_addr = \"\"")
        .expect("valid");
    assert!(c.disable_mlock);
    assert!(!c.ui);
    assert_eq!(c.api_addr, None, "an empty api_addr is unset");
    let msg = hcl_err("storage \"inmem\" {}\nui = \"maybe\"");
    assert!(msg.contains("\"ui\""), "{msg}");
    let msg = hcl_err("storage \"inmem\" {}\napi_addr = 8200");
    assert!(msg.contains("\"api_addr\""), "{msg}");
    let msg = hcl_err("storage \"inmem\" {}\ncluster_name = [\"a\"]");
    assert!(msg.contains("\"cluster_name\""), "{msg}");
}

#[test]
fn exactly_one_storage_block() {
    let msg = hcl_err("listener \"tcp\" { tls_disable = true }");
    assert!(msg.contains("storage"), "{msg}");
    assert!(matches!(hcl("ui = true"), Err(ConfigError::NoStorage)));
    assert!(matches!(json("{}"), Err(ConfigError::NoStorage)));

    let msg = hcl_err("storage \"inmem\" {}\nstorage \"redb\" { path = \"/x\" }");
    assert!(msg.contains("only one storage block"), "{msg}");
    // Two blocks of the same type also count as two.
    assert!(matches!(
        hcl("storage \"redb\" { path = \"/a\" }\nstorage \"redb\" { path = \"/b\" }"),
        Err(ConfigError::MultipleStorage { ref kinds }) if kinds.len() == 2
    ));
    // The deprecated name `backend` is accepted, but not beside `storage`.
    assert_eq!(
        hcl("backend \"inmem\" {}").expect("valid").storage,
        StorageConfig::Inmem
    );
    assert!(matches!(
        hcl("backend \"inmem\" {}\nstorage \"inmem\" {}"),
        Err(ConfigError::MultipleStorage { .. })
    ));
}

#[test]
fn redb_storage_requires_a_path() {
    let msg = hcl_err("storage \"redb\" {}");
    assert!(
        msg.contains("\"path\"") && msg.contains("storage \"redb\""),
        "{msg}"
    );
    let msg = hcl_err("storage \"redb\" { path = \"\" }");
    assert!(msg.contains("\"path\""), "{msg}");
    let msg = hcl_err("storage \"redb\" { path = 5 }");
    assert!(msg.contains("\"path\""), "{msg}");
}

#[test]
fn unknown_storage_type_is_named() {
    let msg = hcl_err("storage \"consul\" { address = \"x\" }");
    assert!(msg.contains("\"consul\""), "{msg}");
    assert!(matches!(
        hcl("storage \"consul\" {}"),
        Err(ConfigError::UnknownStorage { ref kind }) if kind == "consul"
    ));
}

#[test]
fn unknown_keys_are_named_everywhere() {
    let msg = hcl_err("storage \"inmem\" {}\nlistner \"tcp\" { tls_disable = true }");
    assert_eq!(msg, "unknown key \"listner\" in config file");

    let msg = hcl_err("storage \"redb\" { path = \"/x\"  paht = \"/y\" }");
    assert!(
        msg.contains("\"paht\"") && msg.contains("storage \"redb\""),
        "{msg}"
    );

    let msg = hcl_err("storage \"inmem\" { path = \"/x\" }");
    assert!(
        msg.contains("\"path\"") && msg.contains("storage \"inmem\""),
        "{msg}"
    );

    let msg = hcl_err(&listener_hcl(
        "tls_disable = true\ntls_min_version = \"tls12\"",
    ));
    assert!(
        msg.contains("\"tls_min_version\"") && msg.contains("listener #1"),
        "{msg}"
    );

    let msg = json(r#"{"storage": {"inmem": {}}, "seal": {"shamir": {}}}"#)
        .expect_err("unknown key")
        .to_string();
    assert_eq!(msg, "unknown key \"seal\" in config file");

    // Every unknown key of a block is named, in the file's order, not only
    // the first.
    let msg = hcl_err("storage \"inmem\" {}\nlistner \"tcp\" {}\nfoo = 1\nui = true\nbar = 2");
    assert_eq!(
        msg,
        "unknown keys \"listner\", \"foo\", \"bar\" in config file"
    );
}

#[test]
fn a_file_error_prints_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.hcl");
    std::fs::write(&path, "storage \"inmem\" {}\nlistner \"tcp\" {}\n").unwrap();
    let err = load(&path).unwrap_err();
    // What the binary prints: the whole chain, as anyhow's `{:#}` does.
    let chain = format!("{:#}", anyhow::Error::from(err));
    assert_eq!(chain.matches("unknown key").count(), 1, "{chain}");
    assert!(chain.contains("bad.hcl"), "{chain}");
    let missing = load(&dir.path().join("none.hcl")).unwrap_err();
    let chain = format!("{:#}", anyhow::Error::from(missing));
    assert_eq!(chain.matches("No such file").count(), 1, "{chain}");
}

#[test]
fn syntax_errors_carry_line_numbers_on_one_line() {
    let err = hcl("storage \"inmem\" {}\nlistener \"tcp\" {\n  address = \n}\n").expect_err("bad");
    match &err {
        ConfigError::Syntax { format, line, .. } => {
            assert_eq!(*format, Format::Hcl);
            assert!(line.is_some(), "{err:?}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("invalid HCL syntax at line"), "{msg}");
    assert!(!msg.contains('\n'), "{msg:?}");

    let err = json("{\n\"storage\": {\"inmem\": {}},\n\"ui\": 1 2\n}").expect_err("bad");
    assert!(
        matches!(err, ConfigError::Syntax { line: Some(3), .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("invalid JSON syntax at line 3"),
        "{err}"
    );

    let msg = json("[1, 2]").expect_err("not an object").to_string();
    assert!(msg.contains("object"), "{msg}");
}

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

#[test]
fn load_detects_the_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let from_hcl = load(&write(dir.path(), "server.hcl", FULL_HCL.as_bytes())).expect("hcl file");
    let from_json =
        load(&write(dir.path(), "server.json", FULL_JSON.as_bytes())).expect("json file");
    // JSON content in a file not named .json is recognised by its leading `{`.
    let from_sniffed =
        load(&write(dir.path(), "server.conf", FULL_JSON.as_bytes())).expect("sniffed");
    assert_eq!(from_hcl, expected_full());
    assert_eq!(from_json, expected_full());
    assert_eq!(from_sniffed, expected_full());
    assert_eq!(Format::detect(Path::new("x.JSON"), "storage"), Format::Json);
    assert_eq!(Format::detect(Path::new("x.hcl"), "  {}"), Format::Json);
    assert_eq!(
        Format::detect(Path::new("x.hcl"), "storage {}"),
        Format::Hcl
    );
}

#[test]
fn load_errors_are_one_line_and_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = |path: &Path| -> ConfigError {
        let err = load(path).expect_err("must fail");
        let msg = err.to_string();
        assert!(!msg.contains('\n'), "{msg:?}");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        assert!(msg.contains(name), "{msg}");
        err
    };

    let missing = dir.path().join("missing.hcl");
    let err = check(&missing);
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");

    let err = check(dir.path()); // a directory cannot be read as a file
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");

    let bad = write(
        dir.path(),
        "bad.hcl",
        b"storage \"inmem\" {\n\nlistener \"tcp\" {\n",
    );
    let err = check(&bad);
    assert!(
        matches!(err.root(), ConfigError::Syntax { line: Some(_), .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("line"), "{err}");

    let typo = write(
        dir.path(),
        "typo.hcl",
        b"storage \"inmem\" {}\nlistner \"tcp\" {}\n",
    );
    let err = check(&typo);
    assert!(err.to_string().contains("unknown key \"listner\""), "{err}");
    assert!(matches!(err.root(), ConfigError::UnknownKey { .. }));

    let binary = write(dir.path(), "binary.hcl", &[0xff, 0xfe, 0x00, 0x80]);
    let err = check(&binary);
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn hcl_comments_and_bom_are_accepted() {
    let text = "\u{feff}// comment\n/* block */ storage \"inmem\" {} # trailing\n";
    assert_eq!(hcl(text).expect("valid").storage, StorageConfig::Inmem);
}

#[test]
fn error_messages_never_echo_string_values_of_paths_and_addresses() {
    // A future connection_url may hold a password; the type errors we raise
    // describe the expected type rather than repeating the value.
    let msg = hcl_err(&listener_hcl(
        "tls_disable = 1\nmax_request_size = \"hunter2\"",
    ));
    assert!(!msg.contains("hunter2"), "{msg}");
    let msg = hcl_err("storage \"inmem\" {}\nui = \"hunter2\"");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[test]
fn hcl1_one_line_blocks_as_vault_writes_them() {
    // Vault/OpenBao read HCL1, which allows several attributes on one line,
    // separated by spaces or commas; hcl-rs alone (HCL2) would refuse these.
    let text = r#"
storage "redb" { path = "/var/lib/strongroom/data.redb" }
listener "tcp" { address = "127.0.0.1:8200"  tls_disable = true  tls_cert_file = "c.pem"  tls_key_file = "k.pem"  max_request_size = 33554432 }
listener "tcp" { address = "0.0.0.0:8201", tls_cert_file = "a, b.pem", tls_key_file = "k.pem", }
api_addr = "https://127.0.0.1:8200"  cluster_name = "c1"
"#;
    let config = hcl(text).expect("valid");
    assert_eq!(config.listeners.len(), 2);
    assert_eq!(config.listeners[0].address, "127.0.0.1:8200");
    assert_eq!(config.listeners[0].tls, None);
    assert_eq!(config.listeners[0].max_request_size, 33_554_432);
    assert_eq!(
        config.listeners[1].tls,
        Some(TlsFiles {
            cert_file: PathBuf::from("a, b.pem"),
            key_file: PathBuf::from("k.pem"),
        })
    );
    assert_eq!(config.cluster_name.as_deref(), Some("c1"));
    // A real error after such a line is still reported at its own line.
    let err = hcl(&format!("{text}\nui = = true\n")).expect_err("bad");
    assert!(
        matches!(err, ConfigError::Syntax { line: Some(7), .. }),
        "{err:?}"
    );
}

#[test]
fn cache_size_zero_is_the_default_and_negative_is_refused() {
    let base = "storage \"inmem\" {}\n";
    assert_eq!(
        hcl(&format!("{base}cache_size = 0")).unwrap().cache_size,
        None
    );
    assert!(
        hcl(&format!("{base}disable_cache = true"))
            .unwrap()
            .disable_cache
    );
    let err = hcl(&format!("{base}cache_size = -1")).unwrap_err();
    assert!(
        matches!(&err, ConfigError::InvalidValue { key, .. } if key == "cache_size"),
        "{err:?}"
    );
}

#[test]
fn postgresql_stanza_takes_openbaos_keys_and_ours() {
    let c = hcl(r#"
storage "postgresql" {
  connection_url      = "postgres://u:p@db:5432/vault?sslmode=verify-full"
  table               = "kv"
  ha_enabled          = "true"
  ha_table            = "locks"
  max_parallel        = "16"
  skip_create_table   = "true"
  max_idle_connections = 8
  tls_ca_file         = "/etc/ssl/pg-ca.pem"
  lock_ttl            = "4s"
  lock_renew_interval = "1s"
  lock_retry_interval = "250ms"
}
"#)
    .unwrap();
    assert_eq!(
        c.storage,
        StorageConfig::Postgresql(PostgresqlConfig {
            connection_url: "postgres://u:p@db:5432/vault?sslmode=verify-full".into(),
            table: "kv".into(),
            ha_enabled: true,
            ha_table: "locks".into(),
            max_parallel: 16,
            skip_create_table: true,
            tls_ca_file: Some(PathBuf::from("/etc/ssl/pg-ca.pem")),
            lock_ttl: Some(Duration::from_secs(4)),
            lock_renew_interval: Some(Duration::from_secs(1)),
            lock_retry_interval: Some(Duration::from_millis(250)),
        })
    );
    assert_eq!(c.storage.kind(), "postgresql");
    // JSON, as OpenBao's docs show it, with booleans and numbers unquoted.
    let j = json(r#"{"storage": {"postgresql": {"connection_url": "postgres://u:p@db:5432/vault?sslmode=verify-full",
        "table": "kv", "ha_enabled": true, "ha_table": "locks", "max_parallel": 16, "skip_create_table": true,
        "tls_ca_file": "/etc/ssl/pg-ca.pem", "lock_ttl": "4s", "lock_renew_interval": 1, "lock_retry_interval": "250ms"}}}"#)
    .unwrap();
    assert_eq!(j.storage, c.storage);
}

#[test]
fn postgresql_defaults_are_openbaos() {
    let c = hcl(r#"storage "postgresql" { connection_url = "postgres://db/vault" }"#).unwrap();
    assert_eq!(
        c.storage,
        StorageConfig::Postgresql(PostgresqlConfig {
            connection_url: "postgres://db/vault".into(),
            table: "openbao_kv_store".into(),
            ha_enabled: false,
            ha_table: "openbao_ha_locks".into(),
            max_parallel: 128,
            skip_create_table: false,
            tls_ca_file: None,
            lock_ttl: None,
            lock_renew_interval: None,
            lock_retry_interval: None,
        })
    );
    // An empty block is allowed (the URL may come from the environment).
    let StorageConfig::Postgresql(empty) = hcl(r#"storage "postgresql" {}"#).unwrap().storage
    else {
        panic!("postgresql expected")
    };
    assert_eq!(empty.connection_url, "");
}

#[test]
fn postgresql_connection_url_is_overridden_by_the_environment() {
    let StorageConfig::Postgresql(pg) =
        hcl(r#"storage "postgresql" { connection_url = "postgres://file/db" }"#)
            .unwrap()
            .storage
    else {
        panic!("postgresql expected")
    };
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let bao = pg.clone().with_env_overrides(env(&[
        ("VAULT_PG_CONNECTION_URL", "postgres://vault/db"),
        ("BAO_PG_CONNECTION_URL", "postgres://bao/db"),
    ]));
    assert_eq!(bao.connection_url, "postgres://bao/db");
    let vault = pg
        .clone()
        .with_env_overrides(env(&[("VAULT_PG_CONNECTION_URL", "postgres://vault/db")]));
    assert_eq!(vault.connection_url, "postgres://vault/db");
    let unset = pg
        .clone()
        .with_env_overrides(env(&[("BAO_PG_CONNECTION_URL", "")]));
    assert_eq!(unset.connection_url, "postgres://file/db");
}

#[test]
fn postgresql_bad_keys_and_values_are_named() {
    let e = hcl_err(r#"storage "postgresql" { connection_url = "x"  max_idle = 3 }"#);
    assert!(
        e.contains("max_idle") && e.contains("storage \"postgresql\""),
        "{e}"
    );
    let e = hcl_err(r#"storage "postgresql" { max_parallel = -1 }"#);
    assert!(
        e.contains("max_parallel") && e.contains("positive integer"),
        "{e}"
    );
    let e = hcl_err(r#"storage "postgresql" { max_idle_connections = "many" }"#);
    assert!(
        e.contains("max_idle_connections") && e.contains("non-negative integer"),
        "{e}"
    );
    let e = hcl_err(r#"storage "postgresql" { lock_ttl = "soon" }"#);
    assert!(e.contains("lock_ttl"), "{e}");
    let e = hcl_err(r#"storage "postgresql" { lock_ttl = "0s" }"#);
    assert!(
        e.contains("lock_ttl") && e.contains("longer than zero"),
        "{e}"
    );
    let e = hcl_err(r#"storage "postgresql" { lock_ttl = "2s"  lock_renew_interval = "2s" }"#);
    assert!(
        e.contains("lock_renew_interval") && e.contains("shorter than lock_ttl"),
        "{e}"
    );
    let e = hcl_err(r#"storage "postgresql" { ha_enabled = "maybe" }"#);
    assert!(e.contains("ha_enabled") && e.contains("boolean"), "{e}");
    let e = hcl_err(r#"storage "mysql" {}"#);
    assert!(e.contains("\"postgresql\""), "{e}");
}

#[test]
fn postgresql_debug_output_hides_the_connection_url() {
    let c = hcl(r#"storage "postgresql" { connection_url = "postgres://u:hunter2@db/vault" }"#)
        .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("openbao_kv_store"), "{shown}");
}

#[test]
fn telemetry_stanza_takes_openbao_keys() {
    let config = hcl(
        "storage \"inmem\" {}\ntelemetry {\n  prometheus_retention_time = \"30s\"\n  disable_hostname = true\n  metrics_prefix = \"strongroom\"\n  usage_gauge_period = \"none\"\n  maximum_gauge_cardinality = 100\n}\n",
    )
    .expect("valid telemetry stanza");
    let t = config.telemetry;
    assert_eq!(t.prometheus_retention_time, Duration::from_secs(30));
    assert!(t.disable_hostname);
    assert_eq!(t.metrics_prefix, "strongroom");
    assert_eq!(t.usage_gauge_period, None);
    assert_eq!(t.maximum_gauge_cardinality, 100);
    let defaults = hcl("storage \"inmem\" {}\n").expect("valid").telemetry;
    assert_eq!(defaults.metrics_prefix, "vault");
    assert_eq!(defaults.usage_gauge_period, Some(Duration::from_secs(600)));
    assert!(
        hcl_err("storage \"inmem\" {}\ntelemetry {\n  statsite_addres = \"x\"\n}\n")
            .contains("statsite_addres")
    );
    assert!(
        hcl_err("storage \"inmem\" {}\ntelemetry {\n  metrics_prefix = \"a b\"\n}\n")
            .contains("metrics_prefix")
    );
}

#[test]
fn listener_telemetry_block_takes_openbao_keys() {
    let l = one_listener(
        "address = \"127.0.0.1:8200\"\ntls_disable = true\ntelemetry {\n  unauthenticated_metrics_access = true\n  metrics_only = true\n}",
    );
    assert!(l.telemetry.unauthenticated_metrics_access);
    assert!(l.telemetry.metrics_only);
    assert!(!l.telemetry.disallow_metrics);
    let l = one_listener("tls_disable = true\ntelemetry {\n  disallow_metrics = \"true\"\n}");
    assert!(l.telemetry.disallow_metrics);
    let err = hcl_err(&listener_hcl(
        "tls_disable = true\ntelemetry {\n  nope = 1\n}",
    ));
    assert!(err.contains("nope"), "{err}");
}
