//! End-to-end checks of the HTTP and process contract over the real binary:
//! TLS listeners, `max_request_size`, several listeners, config errors and
//! the `version`/`--help` commands.
//!
//! The listener tests honour `STRONGROOM_TEST_TARGET=bao`; the command-line
//! ones are Strongroom's own (OpenBao only warns about unknown config keys).

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use strongroom_test::server::{target, Call, Config, Listener, Server};

/// Writes a test CA and a `localhost`/`127.0.0.1` certificate it signed into
/// `dir`; returns (CA PEM, cert path, key path).
fn make_certs(dir: &Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "strongroom test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA cert");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("leaf params");
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("leaf cert");
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    std::fs::write(&cert, leaf.pem()).expect("write cert");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("write key");
    (ca.pem(), cert, key)
}

#[tokio::test]
async fn tls_listener_serves_the_api_with_the_configured_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca_pem, cert, key) = make_certs(dir.path());
    let mut cfg = Config::inmem(dir.path());
    cfg.listeners = vec![Listener {
        tls: Some((cert, key)),
        max_request_size: None,
        ..Default::default()
    }];
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("client");
    let server = Server::with_config_client(target(), &cfg, client);
    assert!(server.addr.starts_with("https://"));
    let r = server.send(&Call::get("sys/seal-status")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["initialized"], false);

    // A client that does not trust the test CA refuses the connection.
    let untrusting = reqwest::Client::new();
    let err = untrusting
        .get(format!("{}/v1/sys/seal-status", server.addr))
        .send()
        .await;
    let err = err.expect_err("certificate accepted without the CA");
    assert!(err.is_connect(), "a TLS verification failure: {err:?}");

    // Plain HTTP on the TLS port gets no API answer.
    let plain = server.addr.replace("https://localhost", "http://127.0.0.1");
    let resp = reqwest::Client::new()
        .get(format!("{plain}/v1/sys/seal-status"))
        .send()
        .await;
    assert!(
        resp.as_ref()
            .map(|r| !r.status().is_success())
            .unwrap_or(true),
        "plain HTTP answered on a TLS listener: {resp:?}"
    );
}

#[tokio::test]
async fn bodies_over_max_request_size_get_413() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::inmem(dir.path());
    cfg.listeners = vec![Listener {
        tls: None,
        max_request_size: Some(1024),
        ..Default::default()
    }];
    let mut server = Server::with_config(target(), &cfg);
    let big = json!({"secret_shares": 1, "secret_threshold": 1, "pad": "p".repeat(2048)});
    let r = server.send(&Call::put("sys/init", big)).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert!(!r.errors().is_empty(), "{r:?}");
    // Still uninitialised: the oversized request did nothing.
    let r = server.send(&Call::get("sys/init")).await;
    assert_eq!(r.body, json!({"initialized": false}));
    // A body under the limit is processed.
    server.init(1, 1).await;
    server.unseal().await;
    let r = server
        .send(&Call::post(
            "sys/mounts/kv1",
            json!({"type": "kv", "options": {"version": "1"}}),
        ))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = server
        .send(&Call::put("kv1/big", json!({"v": "x".repeat(4096)})))
        .await;
    assert_eq!(r.status, 413, "{r:?}");
    let r = server.send(&Call::get("kv1/big")).await;
    assert_eq!(
        r.status, 404,
        "an oversized write must not be stored: {r:?}"
    );
    let r = server
        .send(&Call::put("kv1/small", json!({"v": "x"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
}

#[tokio::test]
async fn two_listeners_serve_the_same_core() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::inmem(dir.path());
    cfg.listeners = vec![Listener::default(), Listener::default()];
    let mut server = Server::with_config(target(), &cfg);
    assert_eq!(server.listeners.len(), 2);
    let second = server.listeners[1].clone();
    let r = server.send_to(&second, &Call::get("sys/init")).await;
    assert_eq!(r.body, json!({"initialized": false}), "{r:?}");
    server.init(1, 1).await;
    let r = server.send_to(&second, &Call::get("sys/init")).await;
    assert_eq!(
        r.body,
        json!({"initialized": true}),
        "init on one listener, seen on the other"
    );
    let key = server.unseal_keys[0].clone();
    let r = server
        .send_to(&second, &Call::put("sys/unseal", json!({ "key": key })))
        .await;
    assert_eq!(r.body["sealed"], false, "{r:?}");
    let r = server.send(&Call::get("sys/mounts")).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// Runs the strongroom binary with `args`, bounded by a timeout so that a
/// server that wrongly starts fails the test instead of hanging it.
async fn strongroom(args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_strongroom"));
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("strongroom {args:?} did not exit within 30 s"))
        .expect("run strongroom");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts a config problem is reported as one stderr line (containing
/// `needle`, if given), with a non-zero exit.
async fn assert_config_error(config: &Path, needle: Option<&str>) {
    let arg = format!("-config={}", config.display());
    let (code, stdout, stderr) = strongroom(&["server", &arg]).await;
    assert_ne!(code, 0, "started with a bad config; stdout: {stdout}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected ONE line on stderr, got: {stderr:?}"
    );
    if let Some(needle) = needle {
        assert!(
            lines[0].contains(needle),
            "stderr should name {needle:?}: {stderr:?}"
        );
    }
}

#[tokio::test]
async fn bad_config_files_fail_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("does-not-exist.hcl");
    assert_config_error(&missing, Some("does-not-exist.hcl")).await;

    let unknown = dir.path().join("unknown.hcl");
    std::fs::write(
        &unknown,
        "storage \"inmem\" {}\nlistener \"tcp\" {\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}\nfrobnicate_level = 3\n",
    )
    .expect("write");
    assert_config_error(&unknown, Some("frobnicate_level")).await;

    let syntax = dir.path().join("syntax.hcl");
    std::fs::write(&syntax, "storage \"inmem\" {\nlistener \"tcp\" {\n").expect("write");
    assert_config_error(&syntax, None).await;

    let json_cfg = dir.path().join("bad.json");
    std::fs::write(&json_cfg, "{\"storage\": {\"inmem\": {}}, ").expect("write");
    assert_config_error(&json_cfg, None).await;

    // Every unknown key is named, and the cause is printed once.
    let several = dir.path().join("several.hcl");
    std::fs::write(
        &several,
        "storage \"inmem\" {}\nlistner \"tcp\" {}\nfoo = 1\nbar = 2\n",
    )
    .expect("write");
    assert_config_error(&several, Some(r#"unknown keys "listner", "foo", "bar""#)).await;
    let arg = format!("-config={}", several.display());
    let (_, _, stderr) = strongroom(&["server", &arg]).await;
    assert_eq!(stderr.matches("unknown keys").count(), 1, "{stderr}");
}

#[tokio::test]
async fn version_and_help_commands() {
    let (code, stdout, _) = strongroom(&["version"]).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains(env!("CARGO_PKG_VERSION")),
        "`strongroom version` should print {}: {stdout:?}",
        env!("CARGO_PKG_VERSION")
    );
    let (code, stdout, _) = strongroom(&["--help"]).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("server"), "{stdout}");
    let (code, stdout, _) = strongroom(&["server", "--help"]).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("-dev") && stdout.contains("-config"),
        "{stdout}"
    );
}
