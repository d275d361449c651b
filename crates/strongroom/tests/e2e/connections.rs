//! Connection limits of the real binary: attackers that hold every
//! connection slot (idle, slow request head, slow body) cannot lock other
//! clients out, idle and slow connections are closed after the configured
//! timeouts, and the startup banner and log report what is in force.
//!
//! The cap and the timeouts are configured small so that each test takes
//! a few seconds; bounds on how long a client waits are the assertions, not
//! sleeps.

use std::time::{Duration, Instant};

use serde_json::json;
use strongroom_test::server::{Call, Config, Kind, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a legitimate client may take for one request under attack.
const CLIENT_BOUND: Duration = Duration::from_secs(2);

/// `host:port` of a server's first listener.
fn host_port(server: &Server) -> String {
    server
        .addr
        .strip_prefix("http://")
        .expect("a plain-HTTP listener")
        .to_string()
}

/// A fresh client that opens a new connection for every request and gives
/// up after [`CLIENT_BOUND`].
fn bounded_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(CLIENT_BOUND)
        .build()
        .expect("client")
}

/// The three kinds of attacker connection.
#[derive(Clone, Copy, Debug)]
enum Attack {
    /// Connects and sends nothing.
    Idle,
    /// Sends a request head one byte at a time, never finishing it.
    SlowHeader,
    /// Sends a complete head announcing a body, then the body one byte at a
    /// time.
    SlowBody,
}

/// Opens one attacker connection and sends its opening bytes.
async fn open_attacker(addr: &str, attack: Attack) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let opening: &[u8] = match attack {
        Attack::Idle => b"",
        Attack::SlowHeader => b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        Attack::SlowBody => {
            b"PUT /v1/kv/attack HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"v\":\""
        }
    };
    // A write may fail if the connection was already evicted.
    let _ = s.write_all(opening).await;
    s
}

/// Keeps trickling one byte every 200 ms into the slow attackers until the
/// task is aborted (writes to closed connections are ignored).
fn trickle(mut conns: Vec<TcpStream>) -> tokio::task::JoinHandle<Vec<TcpStream>> {
    tokio::spawn(async move {
        loop {
            for c in &mut conns {
                let _ = c.write_all(b"a").await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

#[tokio::test]
async fn attackers_holding_the_connection_cap_do_not_lock_out_clients() {
    const CAP: usize = 24;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::inmem(dir.path());
    // Timeouts far beyond the test: only eviction at the cap frees slots.
    cfg.listener_lines = vec![
        format!("max_connections = {CAP}"),
        "http_idle_timeout = \"5m\"".into(),
        "http_read_header_timeout = \"5m\"".into(),
        "http_read_timeout = \"5m\"".into(),
    ];
    let mut server = Server::with_config(Kind::Strongroom, &cfg);
    assert!(
        server
            .output
            .text()
            .contains(&format!("max_connections: \"{CAP}\"")),
        "the banner shows the cap:\n{}",
        server.output.text()
    );
    server.init(1, 1).await;
    server.unseal().await;
    let r = server
        .send(&Call::post(
            "sys/mounts/kv",
            json!({"type": "kv", "options": {"version": "1"}}),
        ))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = server
        .send(&Call::put("kv/app", json!({"password": "s3cret"})))
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let root = server.root_token.clone().expect("root token");
    let addr = host_port(&server);

    // Three times the cap, the kinds interleaved: the listener admits each
    // by evicting the stalest, so the last CAP of them hold every slot.
    let mut idle = Vec::new();
    let mut slow = Vec::new();
    for i in 0..3 * CAP {
        let attack = [Attack::Idle, Attack::SlowHeader, Attack::SlowBody][i % 3];
        let conn = open_attacker(&addr, attack).await;
        match attack {
            Attack::Idle => idle.push(conn),
            _ => slow.push(conn),
        }
    }
    let trickler = trickle(slow);

    let client = bounded_client();
    for round in 0..5 {
        let started = Instant::now();
        let health = client
            .get(format!("{}/v1/sys/health", server.addr))
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: sys/health under attack: {e}"));
        assert_eq!(health.status(), 200, "round {round}");
        let read = client
            .get(format!("{}/v1/kv/app", server.addr))
            .header("X-Vault-Token", &root)
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: KV read under attack: {e}"));
        assert_eq!(read.status(), 200, "round {round}");
        let body: serde_json::Value = read.json().await.expect("json");
        assert_eq!(body["data"]["password"], "s3cret");
        assert!(
            started.elapsed() < 2 * CLIENT_BOUND,
            "round {round} took {:?}",
            started.elapsed()
        );
        // The attackers come back: CAP more, all of them newer than the
        // client's next connection will be when it arrives.
        for i in 0..CAP {
            let attack = [Attack::Idle, Attack::SlowHeader, Attack::SlowBody][i % 3];
            idle.push(open_attacker(&addr, attack).await);
        }
    }
    trickler.abort();

    // The server closed the evicted attackers: of those checked, at most
    // CAP can still be open.
    let checked = idle.len();
    let checks: Vec<_> = idle
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                matches!(
                    tokio::time::timeout(Duration::from_secs(3), c.read(&mut buf)).await,
                    Ok(Ok(0)) | Ok(Err(_))
                )
            })
        })
        .collect();
    let mut closed = 0usize;
    for check in checks {
        closed += usize::from(check.await.expect("check task"));
    }
    assert!(
        closed + CAP >= checked,
        "only {closed} of {checked} attacker connections were closed (cap {CAP})"
    );
}

/// Reads from `conn` until it is closed or `bound` passes; returns what was
/// read and whether it was closed.
async fn read_until_closed(conn: &mut TcpStream, bound: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + bound;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), false),
        }
    }
}

#[tokio::test]
async fn idle_slow_header_and_slow_body_connections_are_closed_after_the_timeouts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::inmem(dir.path());
    cfg.listener_lines = vec![
        "http_idle_timeout = \"1s\"".into(),
        "http_read_header_timeout = \"1s\"".into(),
        "http_read_timeout = \"1s\"".into(),
    ];
    let server = Server::with_config(Kind::Strongroom, &cfg);
    assert!(
        server.output.text().contains("file-descriptor limit"),
        "the fd limit is logged at startup:\n{}",
        server.output.text()
    );
    let addr = host_port(&server);
    // Generous against a loaded CI machine, far below "never".
    let bound = Duration::from_secs(6);

    let fresh = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut c = TcpStream::connect(&addr).await.expect("connect");
            let started = Instant::now();
            let (got, closed) = read_until_closed(&mut c, bound).await;
            (got, closed, started.elapsed())
        })
    };
    let kept_alive = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut c = TcpStream::connect(&addr).await.expect("connect");
            c.write_all(b"GET /v1/sys/init HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            // The answer arrives, then the connection idles until closed.
            let started = Instant::now();
            let (got, closed) = read_until_closed(&mut c, bound).await;
            (got, closed, started.elapsed())
        })
    };
    let slow_header = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut c = TcpStream::connect(&addr).await.expect("connect");
            let started = Instant::now();
            c.write_all(b"GET /v1/sys/init HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .expect("write");
            let mut got = String::new();
            let mut closed = false;
            while started.elapsed() < bound && !closed {
                // A write may fail once the server has closed; what it sent
                // before is still read below.
                let _ = c.write_all(b"a").await;
                let (more, eof) = read_until_closed(&mut c, Duration::from_millis(200)).await;
                got.push_str(&more);
                closed = eof;
            }
            (got, closed, started.elapsed())
        })
    };
    let slow_body = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut c = TcpStream::connect(&addr).await.expect("connect");
            let started = Instant::now();
            c.write_all(
                b"PUT /v1/sys/init HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"secret_shares\":",
            )
            .await
            .expect("write");
            let mut got = String::new();
            let mut closed = false;
            while started.elapsed() < bound && !closed {
                // A write may fail once the server has closed; what it sent
                // before is still read below.
                let _ = c.write_all(b" ").await;
                let (more, eof) = read_until_closed(&mut c, Duration::from_millis(200)).await;
                got.push_str(&more);
                closed = eof;
            }
            (got, closed, started.elapsed())
        })
    };

    let (got, closed, took) = fresh.await.expect("task");
    assert!(
        closed && got.is_empty(),
        "silent new connection: {got:?} after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "closed before the timeout: {took:?}"
    );

    let (got, closed, took) = kept_alive.await.expect("task");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        closed,
        "idle kept-alive connection still open after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "closed before the timeout: {took:?}"
    );

    let (got, closed, took) = slow_header.await.expect("task");
    assert!(closed, "slow-header connection still open after {took:?}");
    assert!(got.is_empty(), "no answer to an unfinished head: {got}");

    let (got, closed, took) = slow_body.await.expect("task");
    assert!(closed, "slow-body connection still open after {took:?}");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        got.ends_with(r#"{"errors":["timed out reading the request body"]}"#),
        "{got}"
    );

    // The server is untouched by all this: still uninitialised, still serving.
    let r = server.send(&Call::get("sys/init")).await;
    assert_eq!(r.body, json!({"initialized": false}), "{r:?}");
}

#[tokio::test]
async fn the_banner_shows_the_log_level_from_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::inmem(dir.path());
    cfg.lines = vec!["log_level = \"warn\"".into()];
    let server = Server::with_config(Kind::Strongroom, &cfg);
    assert_eq!(
        server.output.value_after("Log Level:").as_deref(),
        Some("warn"),
        "{}",
        server.output.text()
    );
}

/// Log lines on stderr (the harness prefixes them with `[stderr] `).
fn stderr_lines(server: &Server) -> Vec<String> {
    server
        .output
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("[stderr] ").map(str::to_string))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

#[tokio::test]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::with_config(Kind::Strongroom, &Config::inmem(dir.path()));
    let lines = stderr_lines(&server);
    assert!(!lines.is_empty(), "{}", server.output.text());
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "ANSI escape in {line:?}");
    }
}

#[tokio::test]
async fn log_format_json_writes_one_json_object_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = Config::inmem(dir.path());
    cfg.lines = vec!["log_format = \"json\"".into()];
    let server = Server::with_config(Kind::Strongroom, &cfg);
    let lines = stderr_lines(&server);
    assert!(!lines.is_empty(), "{}", server.output.text());
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{v}");
    }
}
