//! A throw-away PostgreSQL cluster for tests: `initdb` in a temporary
//! folder, `postgres` on a free loopback port (its unix socket in that
//! folder too), stopped and deleted on drop.
//!
//! The binaries are found on `PATH` or in `/usr/lib/postgresql/*/bin`
//! (Debian's `postgresql` package does not put `initdb` on `PATH`). When
//! none is installed, [`Postgres::start`] fails with one line naming the
//! install command. PostgreSQL refuses to run as root: as root, `initdb` and
//! `postgres` run through `setpriv` as the `postgres` user (made by the
//! Debian package), or `nobody`, owning the temporary folder.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The superuser the cluster is made with (trust authentication on
/// loopback).
pub const USER: &str = "strongroom";

/// A running PostgreSQL cluster; stopped (immediate shutdown) and its
/// folder deleted when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
    databases: AtomicU32,
    /// `(uid, gid)` the server runs as, when the tests run as root.
    run_as: Option<(u32, u32)>,
    /// CPUs every process of the cluster is pinned to (`taskset -c`).
    cpus: Option<String>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// How a cluster is started beyond the test defaults (see
/// [`Postgres::start_with_options`]).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Pin the cluster (the postmaster, hence every backend it forks) to
    /// these CPUs, in `taskset -c` syntax.
    pub cpus: Option<String>,
    /// Settings passed as `-c name=value` after the test defaults, which
    /// they override (e.g. `fsync=on` for a benchmark).
    pub settings: Vec<(String, String)>,
}

/// The folder holding `initdb`, `postgres` and `createdb`, if installed.
pub fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("initdb"))
            .collect::<Vec<_>>()
    });
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join("initdb"))
        .collect();
    // Highest major version first.
    debian.sort_by_key(|p| {
        std::cmp::Reverse(
            p.parent()
                .and_then(Path::parent)
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0),
        )
    });
    on_path
        .chain(debian)
        .filter(|initdb| initdb.is_file())
        // A symlink on PATH: the folder that really holds the binaries.
        .map(|initdb| std::fs::canonicalize(&initdb).unwrap_or(initdb))
        .filter_map(|initdb| initdb.parent().map(Path::to_path_buf))
        .find(|dir| dir.join("postgres").is_file())
}

/// The unprivileged `(uid, gid)` to run PostgreSQL as when we are root.
fn unprivileged() -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let lookup = |name: &str| {
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == name)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
    };
    Some(
        lookup("postgres")
            .or_else(|| lookup("nobody"))
            .unwrap_or((65534, 65534)),
    )
}

impl Postgres {
    /// Starts a fresh cluster. Panics with one clear line when PostgreSQL
    /// is not installed, or with the server's output when it fails.
    #[track_caller]
    pub fn start() -> Postgres {
        Postgres::start_with(false, &Options::default())
    }

    /// A fresh cluster started with `options` (CPU pinning, settings over
    /// the test defaults); panics as [`Postgres::start`] does.
    #[track_caller]
    pub fn start_with_options(options: &Options) -> Postgres {
        Postgres::start_with(false, options)
    }

    /// A cluster that also serves TLS (`ssl = on`), with a certificate for
    /// the name `localhost` only (not `127.0.0.1`), issued by a fresh CA
    /// whose PEM file is [`Postgres::ca_file`].
    #[track_caller]
    pub fn start_tls() -> Postgres {
        Postgres::start_with(true, &Options::default())
    }

    /// The CA file of a [`Postgres::start_tls`] cluster.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    #[track_caller]
    fn start_with(tls: bool, options: &Options) -> Postgres {
        let Some(bin) = find_bin() else {
            panic!(
                "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): \
                 run `apt-get install -y postgresql`"
            );
        };
        let run_as = unprivileged();
        // As root, a folder the unprivileged user can reach: /tmp itself
        // is open to all, a $TMPDIR below /root may not be.
        let dir = match run_as {
            Some(_) => tempfile::Builder::new()
                .prefix("strongroom-pg")
                .tempdir_in("/tmp"),
            None => tempfile::Builder::new().prefix("strongroom-pg").tempdir(),
        }
        .expect("create a temporary folder for PostgreSQL");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("give the PostgreSQL folder to its user");
        }
        let data = dir.path().join("data");
        let mut pg = Postgres {
            dir,
            bin,
            port: 0,
            child: None,
            databases: AtomicU32::new(0),
            run_as,
            cpus: options.cpus.clone(),
            log: Default::default(),
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "-A", "trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut extra_args = if tls {
            pg.write_certificates()
        } else {
            Vec::new()
        };
        for (name, value) in &options.settings {
            extra_args.push("-c".into());
            extra_args.push(format!("{name}={value}"));
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = crate::server::free_port();
            match pg.launch(&data, port, &extra_args) {
                Ok(()) => return pg,
                Err(e) => last = e,
            }
        }
        panic!("could not start PostgreSQL: {last}");
    }

    /// Writes a CA, and a server certificate and key for `localhost`
    /// readable by the server only; returns the `postgres` arguments.
    fn write_certificates(&self) -> Vec<String> {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test PostgreSQL CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let cert_file = self.dir.path().join("server.crt");
        let key_file = self.dir.path().join("server.key");
        std::fs::write(self.ca_file(), ca.pem()).unwrap();
        std::fs::write(&cert_file, leaf.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some((uid, gid)) = self.run_as {
            for f in [&cert_file, &key_file] {
                std::os::unix::fs::chown(f, Some(uid), Some(gid)).unwrap();
            }
        }
        vec![
            "-c".into(),
            "ssl=on".into(),
            "-c".into(),
            format!("ssl_cert_file={}", cert_file.display()),
            "-c".into(),
            format!("ssl_key_file={}", key_file.display()),
        ]
    }

    /// Runs `postgres` on `port` and waits for its ready line.
    fn launch(&mut self, data: &Path, port: u16, extra: &[String]) -> Result<(), String> {
        let mut child = self
            .command("postgres")
            .arg("-D")
            .arg(data)
            .arg("-k")
            .arg(self.dir.path())
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=300", "-c", "shared_buffers=16MB"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run postgres: {e}"))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        let log = std::sync::Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("ready to accept connections") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("postgres did not start:\n{}", self.log_text()));
                }
            }
        }
        self.port = port;
        self.child = Some(child);
        Ok(())
    }

    /// A command for one of the cluster's binaries, as the unprivileged
    /// user when we are root, on the cluster's CPUs when it is pinned
    /// (`taskset` and `setpriv` both exec, so the affinity reaches the
    /// binary and every process it forks).
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(cpus) = &self.cpus {
            argv.extend(["taskset".into(), "-c".into(), cpus.into()]);
        }
        if let Some((uid, gid)) = self.run_as {
            argv.extend([
                "setpriv".into(),
                format!("--reuid={uid}").into(),
                format!("--regid={gid}").into(),
                "--clear-groups".into(),
            ]);
        }
        argv.push(path.into_os_string());
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    }

    /// The server's version as `PostgreSQL 15.10` (from `postgres
    /// --version`), if it can be read.
    pub fn version(&self) -> Option<String> {
        let out = Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let version = text.trim().strip_prefix("postgres (PostgreSQL) ")?;
        Some(format!("PostgreSQL {version}"))
    }

    /// The postmaster's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` (no TLS).
    pub fn url_for(&self, db: &str) -> String {
        format!(
            "postgres://{USER}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// The URL of database `db` through another address (a proxy in front
    /// of [`Postgres::port`]).
    pub fn url_via(&self, addr: &str, db: &str) -> String {
        format!("postgres://{USER}@{addr}/{db}?sslmode=disable")
    }

    /// Creates a fresh, empty database and returns its name.
    #[track_caller]
    pub fn create_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("test{n}");
        let createdb = self.bin.join("createdb");
        let out = Command::new(createdb)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .arg(&name)
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        name
    }

    /// A fresh database's URL.
    #[track_caller]
    pub fn fresh_url(&self) -> String {
        let db = self.create_database();
        self.url_for(&db)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGQUIT: PostgreSQL's immediate shutdown, which still removes
            // its shared memory; SIGKILL if it is not gone in time.
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::QUIT);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP proxy in front of a server (e.g. PostgreSQL) that a test can
/// *freeze*: from then on it forwards nothing in either direction but keeps
/// every connection open, as a silent network partition does; or *cut*:
/// every connection is reset. Runs on the current tokio runtime.
pub struct Proxy {
    /// The address to connect to instead of the upstream one.
    pub addr: std::net::SocketAddr,
    mode: tokio::sync::watch::Sender<ProxyMode>,
    task: tokio::task::JoinHandle<()>,
}

/// What a [`Proxy`] does with its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProxyMode {
    Forward,
    Freeze,
    Cut,
}

/// Waits until the mode satisfies `pred` (or the proxy is gone).
async fn wait_until(
    watch: &mut tokio::sync::watch::Receiver<ProxyMode>,
    pred: impl Fn(ProxyMode) -> bool,
) {
    let _ = watch.wait_for(|m| pred(*m)).await.map(|_| ());
}

impl Proxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream`.
    pub async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, watch) = tokio::sync::watch::channel(ProxyMode::Forward);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut watch = watch.clone();
                tokio::spawn(async move {
                    let mut client = client;
                    let mode = *watch.borrow();
                    if mode != ProxyMode::Forward {
                        // Frozen: hold the connection, answer nothing.
                        wait_until(&mut watch, |m| m == ProxyMode::Cut).await;
                        return;
                    }
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = wait_until(&mut watch, |m| m != ProxyMode::Forward) => {
                            // Keep both sockets open, forward nothing, until cut.
                            wait_until(&mut watch, |m| m == ProxyMode::Cut).await;
                        }
                    }
                    // Both sockets close here.
                });
            }
        });
        Proxy { addr, mode, task }
    }

    /// Stops forwarding in both directions, keeping connections open.
    pub fn freeze(&self) {
        self.mode.send_replace(ProxyMode::Freeze);
    }

    /// Closes every connection, and every later one at once.
    pub fn cut(&self) {
        self.mode.send_replace(ProxyMode::Cut);
    }

    /// Forwards again (new connections only: frozen ones stay frozen).
    pub fn heal(&self) {
        self.mode.send_replace(ProxyMode::Forward);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.mode.send_replace(ProxyMode::Cut);
        self.task.abort();
    }
}
