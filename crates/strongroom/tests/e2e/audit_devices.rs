//! Audit devices other than `file`, end to end (issue 18): the real
//! `strongroom server -dev` writing to receivers these tests run.
//!
//! - `socket` over TCP, UDP and a unix stream socket; `syslog` to a unix
//!   datagram socket standing in for the daemon; `http` to an axum server:
//!   whole JSON lines (one message or POST per entry), the request and
//!   response entries of a KV write, the secret hashed as
//!   `sys/audit-hash` says and never in clear;
//! - fail-closed when the only device's receiver is gone (the refused
//!   write never happens), and an enable refused when the test write
//!   fails; a dead socket device tolerated beside a working file device,
//!   named in the log;
//! - audited request headers, their config endpoints answering as
//!   OpenBao's do.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap is a failed test.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::audit_support::{audit_hash, dev_with_file, eventually, ok, SECRET};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{json, Value};
use strongroom_test::diff::assert_same_reply;
use strongroom_test::server::{Call, Kind, Reply, Server};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::net::{TcpListener, TcpSocket, UdpSocket, UnixDatagram, UnixListener};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// Starts `kind`'s `server -dev` with `config` (settings only) written to
/// `dir/<kind>.hcl`.
async fn dev_with(kind: Kind, dir: &Path, config: &str) -> Server {
    dev_with_file(kind, &dir.join(format!("{}.hcl", kind.label())), config).await
}

/// Strongroom with devices allowed over the API.
async fn strongroom(dir: &Path) -> Server {
    dev_with(
        Kind::Strongroom,
        dir,
        "unsafe_allow_api_audit_creation = true\n",
    )
    .await
}

/// Enables the device `path` of `kind` with `options` over the API.
async fn enable(server: &Server, path: &str, kind: &str, options: Value) {
    ok(
        server,
        Call::put(
            &format!("sys/audit/{path}"),
            json!({"type": kind, "options": options}),
        ),
    )
    .await;
}

/// The first entry of `kind` (`request`/`response`) on `path` whose
/// operation is `op`.
fn find<'a>(entries: &'a [Value], kind: &str, path: &str, op: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| {
            e["type"] == kind && e["request"]["path"] == path && e["request"]["operation"] == op
        })
        .unwrap_or_else(|| panic!("no {kind} entry for {op} {path} in {entries:#?}"))
}

/// Whether `entries` hold the response entry of the marker write.
fn has_marker(entries: &[Value]) -> bool {
    entries
        .iter()
        .any(|e| e["type"] == "response" && e["request"]["path"] == "secret/data/marker")
}

/// What a receiver got: one element per connection (its bytes, in order)
/// for a stream, per datagram, or per HTTP request.
type Chunks = Arc<Mutex<Vec<Vec<u8>>>>;

/// A receiver the test runs, stopped (its sockets closed) by [`Receiver::stop`]
/// or when dropped.
struct Receiver {
    chunks: Chunks,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Runs `serve` (which ends when its stop channel fires, closing every
    /// socket it holds).
    fn spawn<F, Fut>(serve: F) -> Receiver
    where
        F: FnOnce(Chunks, oneshot::Receiver<()>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let chunks = Chunks::default();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve(chunks.clone(), rx));
        Receiver {
            chunks,
            stop: Some(tx),
            task,
        }
    }

    /// Closes the listener and every connection, and waits until they are.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap();
    }

    fn chunks(&self) -> Vec<Vec<u8>> {
        self.chunks.lock().unwrap().clone()
    }

    /// Everything received, as text.
    fn text(&self) -> String {
        String::from_utf8(self.chunks().concat()).unwrap()
    }

    /// The entries of a stream: every connection's bytes are whole lines,
    /// each a JSON object (call once no more is being written).
    fn stream_entries(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for chunk in self.chunks() {
            let text = String::from_utf8(chunk).unwrap();
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "a partial line: {text:?}"
            );
            out.extend(text.lines().map(parse_line));
        }
        out
    }

    /// The entries of datagrams or requests: each one line, newline-ended.
    fn line_entries(&self) -> Vec<Value> {
        self.chunks()
            .into_iter()
            .map(|c| {
                let text = String::from_utf8(c).unwrap();
                let line = text
                    .strip_suffix('\n')
                    .unwrap_or_else(|| panic!("not one newline-ended line: {text:?}"));
                parse_line(line)
            })
            .collect()
    }
}

/// One JSON object, the whole line.
fn parse_line(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert!(v.is_object(), "{line}");
    v
}

/// A stream listener of either family.
enum StreamListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl StreamListener {
    async fn accept(&self) -> std::io::Result<Box<dyn AsyncRead + Unpin + Send>> {
        Ok(match self {
            StreamListener::Tcp(l) => Box::new(l.accept().await?.0),
            StreamListener::Unix(l) => Box::new(l.accept().await?.0),
        })
    }
}

/// Accepts connections on `listener`, keeping each one's bytes.
fn stream_receiver(listener: StreamListener) -> Receiver {
    Receiver::spawn(|chunks, mut stop| async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => {
                    let Ok(mut stream) = accepted else { continue };
                    let index = {
                        let mut c = chunks.lock().unwrap();
                        c.push(Vec::new());
                        c.len() - 1
                    };
                    let chunks = chunks.clone();
                    conns.spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n @ 1..) = stream.read(&mut buf).await {
                            chunks.lock().unwrap()[index].extend_from_slice(&buf[..n]);
                        }
                    });
                }
            }
        }
        // Every connection closed before `stop` returns.
        conns.shutdown().await;
        drop(listener);
    })
}

/// A TCP socket bound to `127.0.0.1:port` (0: any), not listening yet: it
/// holds the port, and connections to it are refused. Rebindable at once.
fn tcp_socket(port: u16) -> TcpSocket {
    tcp_socket_at(port).unwrap_or_else(|| panic!("port {port} taken"))
}

/// [`tcp_socket`], or `None` while `port` is taken.
fn tcp_socket_at(port: u16) -> Option<TcpSocket> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .ok()
        .map(|()| socket)
}

/// A TCP listener on `127.0.0.1:port` (0: any).
fn tcp_listener(port: u16) -> TcpListener {
    tcp_socket(port).listen(64).unwrap()
}

/// A datagram socket of either family.
enum DatagramSocket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

/// Keeps every datagram received on `socket`.
fn datagram_receiver(socket: DatagramSocket) -> Receiver {
    Receiver::spawn(|chunks, mut stop| async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = tokio::select! {
                _ = &mut stop => break,
                n = async {
                    match &socket {
                        DatagramSocket::Udp(s) => s.recv(&mut buf).await,
                        DatagramSocket::Unix(s) => s.recv(&mut buf).await,
                    }
                } => n,
            };
            if let Ok(n) = n {
                chunks.lock().unwrap().push(buf[..n].to_vec());
            }
        }
    })
}

/// The KV traffic every device test records: a write of [`SECRET`] and a
/// read of it, then a marker write whose response entry ends the traffic.
/// Answers, for each of `devices`, the hashes of the secret and of the
/// root token (asked before the marker).
async fn kv_traffic(server: &Server, devices: &[&str]) -> Vec<(String, String)> {
    ok(
        server,
        Call::put(
            "secret/data/app",
            json!({"data": {"password": SECRET, "port": 5432}}),
        ),
    )
    .await;
    let read = ok(server, Call::get("secret/data/app")).await;
    assert_eq!(read.body["data"]["data"]["password"], SECRET);
    let mut hashes = Vec::new();
    for device in devices {
        hashes.push((
            audit_hash(server, device, SECRET).await,
            audit_hash(server, device, server.root_token.as_ref().unwrap()).await,
        ));
    }
    ok(
        server,
        Call::put("secret/data/marker", json!({"data": {"n": 1}})),
    )
    .await;
    hashes
}

/// Checks what `device` recorded of [`kv_traffic`]: the write's request and
/// response entries sharing their id, the secret and the root token hashed
/// with the device's salt, never in clear.
fn check_kv_entries(
    server: &Server,
    device: &str,
    entries: &[Value],
    raw: &str,
    (secret, root): &(String, String),
) {
    // The enable's test entry comes first.
    assert_eq!(entries[0]["request"]["path"], "sys/audit/test", "{device}");
    let write = entries
        .iter()
        .find(|e| {
            e["type"] == "request"
                && e["request"]["path"] == "secret/data/app"
                && e["request"]["operation"] != "read"
        })
        .unwrap_or_else(|| panic!("{device}: no write request in {entries:#?}"));
    let id = write["request"]["id"].as_str().unwrap();
    assert!(!id.is_empty());
    let answer = entries
        .iter()
        .find(|e| e["type"] == "response" && e["request"]["id"] == id)
        .unwrap_or_else(|| panic!("{device}: no response entry for {id}"));
    assert_eq!(answer["request"]["path"], "secret/data/app");
    assert_eq!(answer["response"]["data"]["version"], 1, "{device}");
    assert_eq!(
        write["request"]["data"]["data"]["password"],
        secret.as_str(),
        "{device}"
    );
    assert_eq!(write["request"]["data"]["data"]["port"], 5432);
    assert_eq!(write["auth"]["client_token"], root.as_str(), "{device}");
    let read = find(entries, "response", "secret/data/app", "read");
    assert_eq!(
        read["response"]["data"]["data"]["password"],
        secret.as_str(),
        "{device}"
    );
    assert!(!raw.contains(SECRET), "{device} holds the secret in clear");
    assert!(
        !raw.contains(server.root_token.as_deref().unwrap()),
        "{device} holds the root token in clear"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_devices_send_whole_hashed_lines_over_tcp_udp_and_unix() {
    let dir = tempfile::tempdir().unwrap();
    let server = strongroom(dir.path()).await;

    let tcp = tcp_listener(0);
    let tcp_addr = tcp.local_addr().unwrap();
    let tcp = stream_receiver(StreamListener::Tcp(tcp));
    let udp_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp_addr = udp_socket.local_addr().unwrap();
    let udp = datagram_receiver(DatagramSocket::Udp(udp_socket));
    let unix_path = dir.path().join("audit.sock");
    let unix = stream_receiver(StreamListener::Unix(
        UnixListener::bind(&unix_path).unwrap(),
    ));

    enable(
        &server,
        "tcp",
        "socket",
        json!({"address": tcp_addr.to_string(), "socket_type": "tcp"}),
    )
    .await;
    enable(
        &server,
        "udp",
        "socket",
        json!({"address": udp_addr.to_string(), "socket_type": "udp", "write_timeout": "5s"}),
    )
    .await;
    enable(
        &server,
        "unix",
        "socket",
        json!({"address": unix_path, "socket_type": "unix"}),
    )
    .await;
    let listed = ok(&server, Call::get("sys/audit")).await;
    assert_eq!(listed.data("udp/")["type"], "socket", "{listed:?}");
    assert_eq!(listed.data("udp/")["options"]["socket_type"], "udp");

    let hashes = kv_traffic(&server, &["tcp", "udp", "unix"]).await;
    for ((device, receiver), hashes) in [("tcp", &tcp), ("udp", &udp), ("unix", &unix)]
        .into_iter()
        .zip(&hashes)
    {
        let entries = || {
            if device == "udp" {
                receiver.line_entries()
            } else {
                receiver.stream_entries()
            }
        };
        eventually(&format!("{device}: the marker"), || async {
            // The last line may be partial until the marker is in.
            let whole: Vec<Value> = receiver
                .text()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            has_marker(&whole)
        })
        .await;
        check_kv_entries(&server, device, &entries(), &receiver.text(), hashes);
    }
    // TCP: one connection kept for every entry.
    assert_eq!(tcp.chunks().len(), 1);
    // Each device has its own salt.
    assert_ne!(hashes[0].0, hashes[1].0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_device_sends_one_tagged_message_per_entry_to_the_given_socket() {
    let dir = tempfile::tempdir().unwrap();
    let server = strongroom(dir.path()).await;
    let path = dir.path().join("log.sock");
    let syslog = datagram_receiver(DatagramSocket::Unix(UnixDatagram::bind(&path).unwrap()));
    enable(
        &server,
        "syslog",
        "syslog",
        json!({"socket_path": path, "facility": "local3", "tag": "sr-audit"}),
    )
    .await;
    let hashes = kv_traffic(&server, &["syslog"]).await.remove(0);
    let pid = server.pid().unwrap();
    // LOCAL3 (19) at INFO (6).
    let head = "<158>";
    let tag = format!(" sr-audit[{pid}]: ");
    let entries = || -> Vec<Value> {
        syslog
            .chunks()
            .into_iter()
            .map(|m| {
                let m = String::from_utf8(m).unwrap();
                assert!(m.starts_with(head), "{m}");
                let at = m.find(&tag).unwrap_or_else(|| panic!("no tag: {m}"));
                // One entry per message, without its newline.
                parse_line(&m[at + tag.len()..])
            })
            .collect()
    };
    eventually("the marker", || async { has_marker(&entries()) }).await;
    check_kv_entries(&server, "syslog", &entries(), &syslog.text(), &hashes);
}

/// What the HTTP receiver got: headers and body of each POST.
type Posts = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

async fn record(State(posts): State<Posts>, headers: HeaderMap, body: Bytes) {
    posts.lock().unwrap().push((headers, body.to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_device_posts_each_entry_with_the_configured_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = strongroom(dir.path()).await;
    let posts = Posts::default();
    let app = axum::Router::new()
        .route("/audit", axum::routing::post(record))
        .with_state(posts.clone());
    let listener = tcp_listener(0);
    let addr = listener.local_addr().unwrap();
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let headers = json!({"X-Audit-Token": ["tok-1"], "X-Multi": ["a", "b"]});
    enable(
        &server,
        "http",
        "http",
        json!({"uri": format!("http://{addr}/audit"), "headers": headers.to_string()}),
    )
    .await;
    let hashes = kv_traffic(&server, &["http"]).await.remove(0);
    let entries = || -> Vec<Value> {
        posts
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| {
                let text = String::from_utf8(body.clone()).unwrap();
                // One entry per POST, the line with its newline.
                parse_line(
                    text.strip_suffix('\n')
                        .unwrap_or_else(|| panic!("{text:?}")),
                )
            })
            .collect()
    };
    eventually("the marker", || async { has_marker(&entries()) }).await;
    let raw: String = posts
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    check_kv_entries(&server, "http", &entries(), &raw, &hashes);
    for (h, _) in posts.lock().unwrap().iter() {
        assert_eq!(h["x-audit-token"], "tok-1");
        let multi: Vec<_> = h.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["a", "b"], "{h:?}");
    }
    receiver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_device_whose_receiver_is_gone_fails_requests_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = strongroom(dir.path()).await;

    // Nobody listens: the enable's test write fails, nothing is enabled.
    // Bound, never listening: connections are refused.
    let dead = tcp_socket(0);
    let dead_addr = dead.local_addr().unwrap();
    let r = server
        .send(&Call::put(
            "sys/audit/dead",
            json!({"type": "socket", "options": {"address": dead_addr.to_string()}}),
        ))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.errors()[0].starts_with("audit backend failed test message: "),
        "{r:?}"
    );
    let listed = ok(&server, Call::get("sys/audit")).await;
    assert!(listed.data("dead/").is_null(), "{listed:?}");

    let listener = tcp_listener(0);
    let addr = listener.local_addr().unwrap();
    let receiver = stream_receiver(StreamListener::Tcp(listener));
    enable(
        &server,
        "sock",
        "socket",
        json!({"address": addr.to_string()}),
    )
    .await;
    ok(
        &server,
        Call::put("secret/data/kept", json!({"data": {"v": SECRET}})),
    )
    .await;
    eventually("the write on record", || async {
        receiver.text().contains("secret/data/kept")
    })
    .await;

    // The receiver goes away. Its port stays held (bound, not listening):
    // connections are refused, and nothing else can take it meanwhile.
    // (Holding it can take a moment: a server process another test is
    // spawning may have a copy of the listener until it execs.)
    receiver.stop().await;
    let mut held = None;
    eventually("the port free again", || {
        held = tcp_socket_at(addr.port());
        std::future::ready(held.is_some())
    })
    .await;
    let held = held.unwrap();
    if let Ok(c) = tokio::net::TcpStream::connect(addr).await {
        panic!(
            "the port still accepts: {:?} -> {:?}",
            c.local_addr(),
            c.peer_addr()
        );
    }
    let r = server
        .send(&Call::put(
            "secret/data/lost",
            json!({"data": {"v": SECRET}}),
        ))
        .await;
    assert_eq!(r.status, 500, "{r:?}");
    assert!(!r.errors().is_empty());
    let r = server.send(&Call::get("secret/data/kept")).await;
    assert_eq!(r.status, 500, "{r:?}");

    // Back on the same port: the device reconnects, and the refused write
    // never happened.
    let receiver = stream_receiver(StreamListener::Tcp(held.listen(64).unwrap()));
    assert_eq!(
        server.send(&Call::get("secret/data/lost")).await.status,
        404
    );
    let kept = ok(&server, Call::get("secret/data/kept")).await;
    assert_eq!(kept.body["data"]["data"]["v"], SECRET);
    eventually("the new connection's entries", || async {
        receiver.text().contains("secret/data/lost")
    })
    .await;
    assert!(
        !server.output.text().contains(SECRET),
        "the log holds the secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_socket_device_beside_a_working_file_device_is_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    let server = strongroom(dir.path()).await;
    let log = dir.path().join("audit.log");
    enable(&server, "file", "file", json!({"file_path": log})).await;
    // Bound, never listening: connections are refused.
    let dead = tcp_socket(0);
    let dead_addr = dead.local_addr().unwrap();
    // skip_test: enabled although nobody listens.
    enable(
        &server,
        "sock",
        "socket",
        json!({"address": dead_addr.to_string(), "skip_test": true}),
    )
    .await;

    ok(
        &server,
        Call::put("secret/data/app", json!({"data": {"password": SECRET}})),
    )
    .await;
    let read = ok(&server, Call::get("secret/data/app")).await;
    assert_eq!(read.body["data"]["data"]["password"], SECRET);

    let text = std::fs::read_to_string(&log).unwrap();
    let entries: Vec<Value> = text.lines().map(parse_line).collect();
    let write = entries
        .iter()
        .find(|e| e["type"] == "response" && e["request"]["path"] == "secret/data/app")
        .expect("the write's answer");
    assert_eq!(write["response"]["data"]["version"], 1);
    find(&entries, "response", "secret/data/app", "read");
    assert!(!text.contains(SECRET));

    eventually("the log names the failing device", || async {
        server.output.text().contains("sock/")
    })
    .await;
    let output = server.output.text();
    assert!(!output.contains(SECRET), "the log holds the secret");
}

/// Configures two audited headers, sends them on a KV write and returns
/// the config endpoints' answers and the write's `request.headers`, checked
/// against `sys/audit-hash` on the way.
async fn audited_headers(server: &Server, dir: &Path) -> Vec<(String, Reply)> {
    let base = "sys/config/auditing/request-headers";
    let log = dir.join(format!("{}.log", server.kind.label()));
    enable(server, "file", "file", json!({"file_path": log})).await;
    let mut answers = Vec::new();
    let send = |call: Call| async move { (call.describe(), server.send(&call).await) };
    answers.push(
        send(Call::post(
            &format!("{base}/X-Custom"),
            json!({"hmac": true}),
        ))
        .await,
    );
    answers.push(
        send(Call::post(
            &format!("{base}/X-Plain"),
            json!({"hmac": false}),
        ))
        .await,
    );
    answers.push(send(Call::get(base)).await);
    answers.push(send(Call::get(&format!("{base}/X-Custom"))).await);
    answers.push(send(Call::get(&format!("{base}/x-plain"))).await);
    answers.push(send(Call::get(&format!("{base}/missing"))).await);
    answers.push(send(Call::list(base)).await);

    let custom = "custom-header-value";
    ok(
        server,
        Call::put("secret/data/h", json!({"data": {"v": 1}}))
            .header("X-Custom", custom)
            .header("X-Plain", "plain-value")
            .header("X-Other", "not-audited"),
    )
    .await;
    let hashed = audit_hash(server, "file", custom).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let entries: Vec<Value> = text.lines().map(parse_line).collect();
    let write = entries
        .iter()
        .find(|e| e["type"] == "request" && e["request"]["path"] == "secret/data/h")
        .expect("the write");
    assert_eq!(
        write["request"]["headers"],
        json!({"x-custom": [hashed], "x-plain": ["plain-value"]}),
        "{}",
        server.kind.label()
    );
    assert!(!text.contains(custom));

    answers.push(send(Call::delete(&format!("{base}/X-Custom"))).await);
    answers.push(send(Call::delete(&format!("{base}/missing"))).await);
    answers.push(send(Call::get(base)).await);

    // No longer audited: X-Custom is left out of the next entry.
    ok(
        server,
        Call::get("secret/data/h")
            .header("X-Custom", custom)
            .header("X-Plain", "plain-again"),
    )
    .await;
    let entries: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(parse_line)
        .collect();
    let read = find(&entries, "request", "secret/data/h", "read");
    assert_eq!(
        read["request"]["headers"],
        json!({"x-plain": ["plain-again"]}),
        "{}",
        server.kind.label()
    );
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audited_request_headers_are_recorded_and_configured_as_in_openbao() {
    let dir = tempfile::tempdir().unwrap();
    let config = "unsafe_allow_api_audit_creation = true\n";
    let (ours, bao) = tokio::join!(
        dev_with(Kind::Strongroom, dir.path(), config),
        dev_with(Kind::Bao, dir.path(), config),
    );
    let ours = audited_headers(&ours, dir.path()).await;
    let bao = audited_headers(&bao, dir.path()).await;
    assert_eq!(ours.len(), bao.len());
    for ((what, theirs), (_, ours)) in bao.iter().zip(&ours) {
        assert_same_reply(what, theirs, ours, &[]);
    }
}
