//! Rate-limit and lease-count quotas end to end, in the real binary over
//! HTTP: a burst over a quota gets OpenBao's 429, exempt paths and a more
//! specific (mount) quota are not held back by the global one, the
//! `X-RateLimit-*` and `Retry-After` headers appear when enabled, a
//! lease-count quota refuses the n+1th login, and 100,000 distinct client
//! addresses (loopback aliases) leave the server answering with bounded
//! memory.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;
use strongroom_test::server::{Call, Kind, Reply, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[track_caller]
fn expect(r: Reply, status: u16, what: &str) -> Reply {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    r
}

/// A GET of `path` with the root token, raw (for the headers).
async fn get(server: &Server, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/v1/{path}", server.addr))
        .header("X-Vault-Token", server.root_token.clone().unwrap())
        .send()
        .await
        .unwrap()
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_a_rate_limit_quota_gets_429_with_headers_and_exempt_paths_pass() {
    let server = Server::dev(Kind::Strongroom);
    // A partial write of the configuration keeps the other fields (the
    // issue's choice; OpenBao empties them, which would drop the default
    // exempt paths when only the headers are switched on).
    expect(
        server
            .send(&Call::post(
                "sys/quotas/config",
                json!({"enable_rate_limit_response_headers": true}),
            ))
            .await,
        204,
        "enable the headers",
    );
    let config = expect(
        server.send(&Call::get("sys/quotas/config")).await,
        200,
        "read",
    );
    assert_eq!(
        config.data("enable_rate_limit_response_headers"),
        &json!(true)
    );
    assert_eq!(
        config.data("rate_limit_exempt_paths"),
        &json!([
            "sys/generate-recovery-token/attempt",
            "sys/generate-recovery-token/update",
            "sys/generate-root/attempt",
            "sys/generate-root/update",
            "sys/health",
            "sys/seal-status",
            "sys/unseal"
        ])
    );
    // Managing quotas and reading the mounts stay possible once over.
    expect(
        server
            .send(&Call::post(
                "sys/quotas/config",
                json!({"rate_limit_exempt_paths": ["sys/quotas/", "sys/mounts"]}),
            ))
            .await,
        204,
        "exempt paths",
    );
    let config = expect(
        server.send(&Call::get("sys/quotas/config")).await,
        200,
        "read",
    );
    assert_eq!(
        config.data("enable_rate_limit_response_headers"),
        &json!(true)
    );
    // A generous mount quota on cubbyhole/: more specific than the global.
    expect(
        server
            .send(&Call::post(
                "sys/quotas/rate-limit/cubby",
                json!({"path": "cubbyhole", "rate": 1000, "interval": "1m"}),
            ))
            .await,
        204,
        "mount quota",
    );
    expect(
        server
            .send(&Call::post(
                "sys/quotas/rate-limit/global",
                json!({"rate": 5, "interval": "1h"}),
            ))
            .await,
        204,
        "global quota",
    );
    let q = expect(
        server.send(&Call::get("sys/quotas/rate-limit/cubby")).await,
        200,
        "read",
    );
    assert_eq!(q.data("path"), &json!("cubbyhole/"));
    assert_eq!(q.data("interval"), &json!(60));
    assert_eq!(q.data("inheritable"), &json!(false));

    // The first request: the bucket's state in the headers.
    let first = get(&server, "secret/data/nothing").await;
    assert_eq!(first.status(), 404);
    assert_eq!(header(&first, "x-ratelimit-limit").as_deref(), Some("5"));
    assert_eq!(
        header(&first, "x-ratelimit-remaining").as_deref(),
        Some("4")
    );
    let reset: u64 = header(&first, "x-ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset <= 3600, "reset {reset}");
    assert_eq!(header(&first, "retry-after"), None);

    // A concurrent burst of 12: exactly the 4 tokens left go through.
    let server = Arc::new(server);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            server.send(&Call::get("secret/data/nothing")).await
        }));
    }
    let mut refused = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            404 => {}
            429 => {
                assert_eq!(
                    r.errors(),
                    vec![
                        r#"request path "secret/data/nothing": rate limit quota exceeded"#
                            .to_string()
                    ]
                );
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(refused, 8);

    // A refusal carries Retry-After.
    let over = get(&server, "secret/data/nothing").await;
    assert_eq!(over.status(), 429);
    assert_eq!(header(&over, "x-ratelimit-remaining").as_deref(), Some("0"));
    let retry: u64 = header(&over, "retry-after").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 3600, "retry {retry}");

    // Exempt paths and the more specific mount quota still answer.
    expect(server.send(&Call::get("sys/mounts")).await, 200, "exempt");
    expect(
        server
            .send(&Call::get("sys/quotas/rate-limit/global"))
            .await,
        200,
        "exempt prefix",
    );
    let cubby = get(&server, "cubbyhole/x").await;
    assert_eq!(cubby.status(), 404);
    assert_eq!(header(&cubby, "x-ratelimit-limit").as_deref(), Some("1000"));
    // Before authentication: a request with no token is refused by the
    // quota, not the ACL.
    expect(
        server
            .send(&Call::get("secret/data/nothing").anonymous())
            .await,
        429,
        "anonymous",
    );

    // Deleting the quota lifts the limit; headers off removes them.
    expect(
        server
            .send(&Call::delete("sys/quotas/rate-limit/global"))
            .await,
        204,
        "delete",
    );
    expect(
        server
            .send(&Call::post(
                "sys/quotas/config",
                json!({"enable_rate_limit_response_headers": false}),
            ))
            .await,
        204,
        "headers off",
    );
    let after = get(&server, "secret/data/nothing").await;
    assert_eq!(after.status(), 404);
    let cubby = get(&server, "cubbyhole/x").await;
    assert_eq!(header(&cubby, "x-ratelimit-limit"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_count_quota_refuses_the_login_past_its_max() {
    let server = Server::dev(Kind::Strongroom);
    expect(
        server
            .send(&Call::post("sys/auth/approle", json!({"type": "approle"})))
            .await,
        204,
        "enable approle",
    );
    expect(
        server
            .send(&Call::post(
                "auth/approle/role/web",
                json!({"token_ttl": "1h"}),
            ))
            .await,
        204,
        "role",
    );
    let role_id = expect(
        server
            .send(&Call::get("auth/approle/role/web/role-id"))
            .await,
        200,
        "role id",
    )
    .data("role_id")
    .as_str()
    .unwrap()
    .to_string();
    expect(
        server
            .send(&Call::post(
                "sys/quotas/lease-count/logins",
                json!({"path": "auth/approle", "max_leases": 2}),
            ))
            .await,
        204,
        "lease-count quota",
    );
    let q = expect(
        server
            .send(&Call::get("sys/quotas/lease-count/logins"))
            .await,
        200,
        "read",
    );
    assert_eq!(q.data("path"), &json!("auth/approle/"));
    assert_eq!(q.data("max_leases"), &json!(2));
    assert_eq!(q.data("type"), &json!("lease-count"));
    let login = |secret_id: String| {
        Call::post(
            "auth/approle/login",
            json!({"role_id": role_id, "secret_id": secret_id}),
        )
        .anonymous()
    };
    let mut tokens = Vec::new();
    for i in 0..3 {
        let secret_id = expect(
            server
                .send(&Call::post("auth/approle/role/web/secret-id", json!({})))
                .await,
            200,
            "secret id",
        )
        .data("secret_id")
        .as_str()
        .unwrap()
        .to_string();
        let r = server.send(&login(secret_id)).await;
        if i < 2 {
            let r = expect(r, 200, "login within the quota");
            tokens.push(r.body["auth"]["client_token"].as_str().unwrap().to_string());
        } else {
            let r = expect(r, 429, "the third login");
            assert_eq!(
                r.errors(),
                vec![
                    r#"request path "auth/approle/login": lease count quota exceeded"#.to_string()
                ]
            );
        }
    }
    // Revoking one makes room for one more.
    expect(
        server
            .send(&Call::post(
                "auth/token/revoke",
                json!({"token": tokens[0]}),
            ))
            .await,
        204,
        "revoke",
    );
    let secret_id = expect(
        server
            .send(&Call::post("auth/approle/role/web/secret-id", json!({})))
            .await,
        200,
        "secret id",
    )
    .data("secret_id")
    .as_str()
    .unwrap()
    .to_string();
    expect(
        server.send(&login(secret_id)).await,
        200,
        "login after a revoke",
    );
}

/// An AppRole role, its role id and a fresh secret id.
async fn approle_role(server: &Server, name: &str) -> (String, String) {
    expect(
        server
            .send(&Call::post(
                &format!("auth/approle/role/{name}"),
                json!({"token_ttl": "1h"}),
            ))
            .await,
        204,
        "role",
    );
    let role_id = expect(
        server
            .send(&Call::get(&format!("auth/approle/role/{name}/role-id")))
            .await,
        200,
        "role id",
    )
    .data("role_id")
    .as_str()
    .unwrap()
    .to_string();
    let secret_id = expect(
        server
            .send(&Call::post(
                &format!("auth/approle/role/{name}/secret-id"),
                json!({}),
            ))
            .await,
        200,
        "secret id",
    )
    .data("secret_id")
    .as_str()
    .unwrap()
    .to_string();
    (role_id, secret_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_quota_limits_only_the_logins_of_its_role() {
    let server = Server::dev(Kind::Strongroom);
    expect(
        server
            .send(&Call::post("sys/auth/approle", json!({"type": "approle"})))
            .await,
        204,
        "enable approle",
    );
    let (web_id, web_secret) = approle_role(&server, "web").await;
    let (db_id, db_secret) = approle_role(&server, "db").await;
    expect(
        server
            .send(&Call::post(
                "sys/quotas/rate-limit/web-logins",
                json!({"path": "auth/approle", "role": "web", "rate": 2, "interval": "1h"}),
            ))
            .await,
        204,
        "role quota",
    );
    let q = expect(
        server
            .send(&Call::get("sys/quotas/rate-limit/web-logins"))
            .await,
        200,
        "read",
    );
    assert_eq!(q.data("role"), &json!("web"));
    let login = |role_id: &str, secret_id: &str| {
        Call::post(
            "auth/approle/login",
            json!({"role_id": role_id, "secret_id": secret_id}),
        )
        .anonymous()
    };
    for _ in 0..2 {
        expect(
            server.send(&login(&web_id, &web_secret)).await,
            200,
            "a web login within the quota",
        );
    }
    let refused = expect(
        server.send(&login(&web_id, &web_secret)).await,
        429,
        "the third web login",
    );
    assert_eq!(
        refused.errors(),
        vec![r#"request path "auth/approle/login": rate limit quota exceeded"#.to_string()]
    );
    // The other role, and the rest of the mount, are not held back.
    for _ in 0..4 {
        expect(
            server.send(&login(&db_id, &db_secret)).await,
            200,
            "a db login",
        );
    }
    expect(
        server.send(&Call::get("auth/approle/role/web")).await,
        200,
        "reading the role",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_quota_also_limits_the_paths_answered_in_any_state() {
    let server = Server::dev(Kind::Strongroom);
    expect(
        server
            .send(&Call::post(
                "sys/quotas/rate-limit/global",
                json!({"rate": 3, "interval": "1h"}),
            ))
            .await,
        204,
        "global quota",
    );
    // `sys/leader` is not exempt by default: its fourth call in the hour
    // is refused; `sys/health` is exempt and keeps answering.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(server.send(&Call::get("sys/leader")).await.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    let r = reqwest::get(format!("{}/v1/sys/health", server.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One request from `local` (a loopback alias): its status.
async fn from_address(server: SocketAddr, local: Ipv4Addr) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((local, 0))).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    stream
        .write_all(b"GET /v1/sys/mounts HTTP/1.1\r\nHost: quota\r\nX-Vault-Token: harness-root-token\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..buf.len().min(12)]).to_string();
    head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The `n`th loopback alias from 127.0.1.0 on (never 127.0.0.1).
fn alias(n: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x7f00_0100 + n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg(target_os = "linux")]
async fn a_hundred_thousand_client_addresses_leave_memory_bounded() {
    const CLIENTS: u32 = 100_000;
    let server = Server::dev(Kind::Strongroom);
    expect(
        server
            .send(&Call::post(
                "sys/quotas/rate-limit/global",
                json!({"rate": 1, "interval": "1h"}),
            ))
            .await,
        204,
        "global quota",
    );
    let pid = server.pid().unwrap();
    let addr: SocketAddr = server.addr.trim_start_matches("http://").parse().unwrap();
    // Warm up (allocator arenas, connection handling) from a few clients.
    for n in 0..1_000 {
        assert_eq!(from_address(addr, alias(CLIENTS + n)).await, 200);
    }
    let before = rss_kib(pid);
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (next, ok) = (next.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= CLIENTS as usize {
                    return;
                }
                if from_address(addr, alias(n as u32)).await == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Every address had its own full bucket ...
    assert_eq!(ok.load(Ordering::Relaxed), CLIENTS as usize);
    // ... and a second request from a recent one is over its rate.
    assert_eq!(from_address(addr, alias(CLIENTS - 1)).await, 429);
    let after = rss_kib(pid);
    // The bucket table is capped (65,536 buckets, ~10 MiB at most); the
    // whole process may grow by allocator slack, not by the clients.
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}
