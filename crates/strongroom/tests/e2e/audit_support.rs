//! What the audit end-to-end suites (`audit.rs`, `audit_devices.rs`)
//! share: a dev server started with a settings-only config file, requests
//! that must succeed, `sys/audit-hash`, and polling with a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use strongroom_test::server::{Call, Kind, Reply, Server};

/// A secret value written in the tests; never in a hashed device's output.
pub const SECRET: &str = "hunter2-correct-horse";

/// Starts `kind`'s `server -dev` with `config` (settings only) written to
/// `path`.
pub async fn dev_with_file(kind: Kind, path: &Path, config: &str) -> Server {
    std::fs::write(path, config).unwrap();
    let arg = format!("-config={}", path.display());
    tokio::task::spawn_blocking(move || {
        Server::dev_command(kind, &["server", "-dev", "-dev-no-store-token", &arg])
    })
    .await
    .unwrap()
}

/// Sends `call` and asserts a 2xx answer.
pub async fn ok(server: &Server, call: Call) -> Reply {
    let what = call.describe();
    let r = server.send(&call).await;
    assert!(
        (200..300).contains(&r.status),
        "{what}: {r:?}\n{}",
        server.output.text()
    );
    r
}

/// `sys/audit-hash/<device>` of `input`.
pub async fn audit_hash(server: &Server, device: &str, input: &str) -> String {
    let r = ok(
        server,
        Call::post(
            &format!("sys/audit-hash/{device}"),
            json!({ "input": input }),
        ),
    )
    .await;
    r.data("hash").as_str().unwrap().to_string()
}

/// Polls `cond` every 50 ms until it holds, failing after 10 s.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
