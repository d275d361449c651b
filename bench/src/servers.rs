//! Starting, preparing and stopping the servers under test. A [`Server`]
//! owns its child process (killed when the value is dropped, so also on
//! error and on Ctrl-C), knows its loopback address and root token, and reads
//! its peak RSS from `/proc`.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use zeroize::Zeroizing;

use crate::client;

/// How many times readiness is polled before giving up.
const READY_ATTEMPTS: u32 = 300;
/// The pause between readiness polls (setup only, never measured).
const READY_INTERVAL: Duration = Duration::from_millis(100);

/// Which command line and storage a binary is started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Strongroom: `-dev`, or a config with `storage "redb"` or
    /// `"postgresql"`.
    Strongroom,
    /// OpenBao: `-dev`, or a config with `storage "raft"` or
    /// `"postgresql"`.
    OpenBao,
}

impl Flavor {
    /// Whether a node of this flavor that waits for the HA lock listens
    /// meanwhile, so that it can be unsealed ahead and answers
    /// `sys/health` with 429 as a standby: both do.
    pub fn standby_listens(self) -> bool {
        match self {
            Flavor::Strongroom | Flavor::OpenBao => true,
        }
    }
}

/// One side of a comparison: a label, a binary, and how to start it.
#[derive(Debug, Clone)]
pub struct Side {
    /// The name shown in the table (`strongroom`, `openbao`).
    pub label: String,
    /// The executable.
    pub binary: PathBuf,
    /// How to start it.
    pub flavor: Flavor,
    /// True for the Strongroom side, whose row carries the ratios.
    pub is_strongroom: bool,
    /// CPUs to pin the server to (`taskset -c` syntax), if any.
    pub cpus: Option<String>,
    /// Extra environment variables for the server process (e.g.
    /// `SSL_CERT_FILE`, so that it trusts the bench's fake Google).
    pub env: Vec<(String, OsString)>,
}

/// The line written to a server's log before each start of its process.
pub const RUN_MARK: &str = "==== strongroom-bench: server process started ====\n";

/// Where a server keeps its data.
#[derive(Debug, Clone, Copy)]
pub enum Storage<'a> {
    /// `-dev`: in memory, unsealed, with a random root token.
    Dev,
    /// Strongroom on redb, OpenBao on single-node raft, in its own folder.
    Durable,
    /// `storage "postgresql"` with `ha_enabled` on the database at this
    /// URL (one database per server).
    Postgres(&'a str),
    /// `-dev` with a config file declaring one `file` audit device writing
    /// to `audit.log` in the server's folder.
    DevAudit,
}

/// A running server process; from [`Server::start`], unsealed and ready.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    root: HeaderValue,
    /// The unseal key, when this process initialised the server.
    unseal_key: Option<Zeroizing<String>>,
    log: PathBuf,
}

impl Server {
    /// Starts `side` on `storage`, with its working files under `dir`, and
    /// waits until it is initialised, unsealed and answers `sys/health`
    /// with 200.
    pub async fn start(side: &Side, storage: Storage<'_>, dir: &Path) -> anyhow::Result<Server> {
        let (port, cluster_port) = free_port_pair()?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        Server::start_at(side, storage, dir, addr, cluster_port).await
    }

    /// [`Server::start`] on the given API address and cluster port.
    pub async fn start_at(
        side: &Side,
        storage: Storage<'_>,
        dir: &Path,
        addr: SocketAddr,
        cluster_port: u16,
    ) -> anyhow::Result<Server> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut args: Vec<OsString> = Vec::new();
        let dev_token = match storage {
            Storage::Dev | Storage::DevAudit => {
                if matches!(storage, Storage::DevAudit) {
                    args.extend(write_config(dir, &audit_config(&dir.join("audit.log")))?);
                }
                let token = random_token()?;
                args.extend(["-dev", "-dev-listen-address", &addr.to_string()].map(OsString::from));
                args.extend(["-dev-root-token-id", token.as_str()].map(OsString::from));
                // Keep either server from writing the token into ~/.vault-token.
                args.push("-dev-no-store-token".into());
                Some(token)
            }
            Storage::Durable => {
                let text = match side.flavor {
                    Flavor::Strongroom => redb_config(&dir.join("data"), addr),
                    Flavor::OpenBao => raft_config(&dir.join("raft"), addr, cluster_port),
                };
                std::fs::create_dir_all(dir.join("data"))?;
                std::fs::create_dir_all(dir.join("raft"))?;
                args.extend(write_config(dir, &text)?);
                None
            }
            Storage::Postgres(url) => {
                let text = postgresql_config(side.flavor, url, addr, cluster_port);
                args.extend(write_config(dir, &text)?);
                None
            }
        };
        let mut server = Server::spawn(side, dir, addr, &args)?;
        server.wait_health(None).await?;
        server.root = match dev_token {
            Some(token) => client::token_header(&token)?,
            None => server.init_and_unseal().await?,
        };
        server.wait_health(Some(StatusCode::OK)).await?;
        Ok(server)
    }

    /// Starts `side` as `server` with `args`, its output appended to
    /// `dir/server.log`, and returns at once (nothing is waited for; the
    /// root token is a placeholder until set).
    pub fn spawn(
        side: &Side,
        dir: &Path,
        addr: SocketAddr,
        args: &[OsString],
    ) -> anyhow::Result<Server> {
        let log = dir.join("server.log");
        // `taskset` execs the server, so the pid (for peak RSS) is the
        // server's own.
        let mut cmd = match &side.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(&side.binary);
                c
            }
            None => Command::new(&side.binary),
        };
        cmd.arg("server").args(args);
        // Appended: a restarted node (failover) keeps its earlier log, after
        // which the mark starts this run's.
        let mut log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        std::io::Write::write_all(&mut log_file, RUN_MARK.as_bytes())?;
        cmd.stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .current_dir(dir)
            // Neither the user's home nor their VAULT_*/BAO_* settings leak in.
            .env("HOME", dir)
            .kill_on_drop(true);
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("VAULT_") || key_text.starts_with("BAO_") {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(side.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", side.binary.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("{} exited at once", side.binary.display()))?;
        Ok(Server {
            child,
            pid,
            addr,
            root: client::token_header("pending")?,
            unseal_key: None,
            log,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The root token, as a sensitive header value.
    pub fn root(&self) -> &HeaderValue {
        &self.root
    }

    /// The executable the server process is running now (after any wrapper
    /// scripts exec'd into it), for the run's header.
    pub fn exe(&self) -> Option<PathBuf> {
        std::fs::read_link(format!("/proc/{}/exe", self.pid)).ok()
    }

    /// Resets the kernel's peak-RSS mark of the server process so that the
    /// next [`Server::peak_rss_kib`] covers only what follows. Returns false
    /// when the kernel refused; the peak then covers the process's life.
    pub fn reset_peak_rss(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// The process's peak resident set size (`VmHWM`) in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        parse_vm_hwm(&status)
    }

    /// Kills the server (SIGKILL, as `kill -9`) and waits for it to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("stopping server")
    }

    /// The unseal key, when [`Server::start`] initialised this server (not
    /// in dev mode).
    pub fn unseal_key(&self) -> Option<&Zeroizing<String>> {
        self.unseal_key.as_ref()
    }

    /// Sets the root token and unseal key of a node that joins a server
    /// another process initialised.
    pub fn adopt(&mut self, root: HeaderValue, key: Zeroizing<String>) {
        self.root = root;
        self.unseal_key = Some(key);
    }

    /// Fails when the process has exited, naming its status and log.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "server at {} exited with {status}; its log is {} (kept only with --work-dir)",
                self.addr,
                self.log.display()
            );
        }
        Ok(())
    }

    /// Sends the unseal key; returns whether the answer says unsealed.
    pub async fn unseal(&self) -> anyhow::Result<bool> {
        let key = self
            .unseal_key
            .as_ref()
            .context("no unseal key for this server")?;
        // The JSON body holds a plain copy of the key until the call returns.
        let body = json!({ "key": key.as_str() });
        let (_, answer) = client::call(self.addr, Method::PUT, "sys/unseal", None, Some(&body))
            .await
            .context("sys/unseal")?;
        Ok(answer.get("sealed") == Some(&Value::Bool(false)))
    }

    /// Polls `sys/health` until it answers (with `want`, when given). Fails
    /// when the process exits or the attempts run out.
    pub async fn wait_health(&mut self, want: Option<StatusCode>) -> anyhow::Result<()> {
        let mut last = String::from("no answer");
        for _ in 0..READY_ATTEMPTS {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "server exited with {status} before it was ready; its log is {} \
                     (kept only with --work-dir)",
                    self.log.display()
                );
            }
            match client::call(self.addr, Method::GET, "sys/health", None, None).await {
                Ok((status, _)) if want.is_none_or(|w| w == status) => return Ok(()),
                Ok((status, _)) => last = format!("sys/health answered {status}"),
                Err(err) => last = format!("{err:#}"),
            }
            tokio::time::sleep(READY_INTERVAL).await;
        }
        bail!(
            "server at {} not ready after {READY_ATTEMPTS} attempts ({last}); its log is {} \
             (kept only with --work-dir)",
            self.addr,
            self.log.display()
        )
    }

    /// Initialises with one key share, unseals with it, keeps the key, and
    /// returns the root token. The key and token are held in zeroizing
    /// buffers.
    async fn init_and_unseal(&mut self) -> anyhow::Result<HeaderValue> {
        let mut init = client::call_ok(
            self.addr,
            Method::PUT,
            "sys/init",
            None,
            Some(&json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await?;
        self.unseal_key = Some(take_string(&mut init, "/keys_base64/0")?);
        let root = take_string(&mut init, "/root_token")?;
        if !self.unseal().await? {
            bail!("server still sealed after unseal");
        }
        client::token_header(&root)
    }
}

/// Moves the string at `pointer` out of `value` into a zeroizing buffer.
fn take_string(value: &mut Value, pointer: &str) -> anyhow::Result<Zeroizing<String>> {
    match value.pointer_mut(pointer) {
        Some(Value::String(s)) => Ok(Zeroizing::new(std::mem::take(s))),
        _ => bail!("sys/init answer has no {pointer}"),
    }
}

/// The settings-only config file of a dev server with one declared `file`
/// audit device (OpenBao 2.x's declarative form, taken by both servers).
pub fn audit_config(log: &Path) -> String {
    format!(
        "audit \"file\" \"bench\" {{\n  options {{\n    file_path = {}\n  }}\n}}\n",
        hcl_string(log)
    )
}

/// The config file of a durable Strongroom: redb storage, plain-HTTP listener.
pub fn redb_config(data_dir: &Path, addr: SocketAddr) -> String {
    format!(
        "storage \"redb\" {{\n  path = {path}\n}}\n\n\
         listener \"tcp\" {{\n  address = \"{addr}\"\n  tls_disable = true\n}}\n",
        path = hcl_string(&data_dir.join("strongroom.redb")),
    )
}

/// The config file of a durable OpenBao: single-node raft, plain-HTTP
/// listener with its cluster port pinned, no mlock.
pub fn raft_config(raft_dir: &Path, addr: SocketAddr, cluster_port: u16) -> String {
    let cluster = SocketAddr::from((addr.ip(), cluster_port));
    format!(
        "storage \"raft\" {{\n  path = {path}\n  node_id = \"bench\"\n}}\n\n\
         listener \"tcp\" {{\n  address = \"{addr}\"\n  cluster_address = \"{cluster}\"\n  tls_disable = true\n}}\n\n\
         api_addr = \"http://{addr}\"\n\
         cluster_addr = \"http://{cluster}\"\n\
         disable_mlock = true\n",
        path = hcl_string(raft_dir),
    )
}

/// The config file of a node on PostgreSQL, for either flavor: the
/// database at `url`, HA on (the lock table next to the data; OpenBao
/// makes both tables itself, as Strongroom does), a plain-HTTP listener,
/// and `api_addr`, and the cluster listener standbys forward to
/// (`cluster_address`, `cluster_addr`). Lock timings are each server's
/// defaults. The same text for both flavors.
pub fn postgresql_config(
    _flavor: Flavor,
    url: &str,
    addr: SocketAddr,
    cluster_port: u16,
) -> String {
    let cluster = SocketAddr::from((addr.ip(), cluster_port));
    let url = Value::String(url.to_string());
    let listener_extra = format!("  cluster_address = \"{cluster}\"\n");
    let top_extra = format!("cluster_addr = \"https://{cluster}\"\n");
    format!(
        "storage \"postgresql\" {{\n  connection_url = {url}\n  ha_enabled = \"true\"\n}}\n\n\
         listener \"tcp\" {{\n  address = \"{addr}\"\n{listener_extra}  tls_disable = true\n}}\n\n\
         api_addr = \"http://{addr}\"\n\
         {top_extra}\
         disable_mlock = true\n"
    )
}

/// Writes `text` as `dir/config.hcl` and returns the `-config` arguments.
pub fn write_config(dir: &Path, text: &str) -> anyhow::Result<[OsString; 2]> {
    let config = dir.join("config.hcl");
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    Ok(["-config".into(), config.into_os_string()])
}

/// A path as an HCL string literal (JSON string escaping is valid HCL).
fn hcl_string(path: &Path) -> String {
    Value::String(path.display().to_string()).to_string()
}

/// Two free loopback ports, `p` and `p + 1`: the API port and the cluster
/// port (`bao server -dev` takes `p + 1` for its cluster listener by itself).
pub fn free_port_pair() -> anyhow::Result<(u16, u16)> {
    for _ in 0..50 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = first.local_addr()?.port();
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, next)).is_ok() {
            return Ok((port, next));
        }
    }
    bail!("found no two adjacent free loopback ports")
}

/// A random dev root token (128 bits from the kernel, hex). OpenBao refuses
/// custom token ids containing a dot.
fn random_token() -> anyhow::Result<Zeroizing<String>> {
    use std::io::Read;
    let mut bytes = Zeroizing::new([0u8; 16]);
    std::fs::File::open("/dev/urandom")?.read_exact(bytes.as_mut())?;
    let mut token = Zeroizing::new(String::with_capacity(40));
    token.push_str("bench-");
    for b in bytes.iter() {
        token.push_str(&format!("{b:02x}"));
    }
    Ok(token)
}

/// Reads `VmHWM:  1234 kB` out of a `/proc/<pid>/status` text.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_kib() {
        let status = "Name:\tbao\nVmPeak:\t 2000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(123456));
        assert_eq!(parse_vm_hwm("Name:\tbao\n"), None);
    }

    #[test]
    fn own_peak_rss_is_readable() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(parse_vm_hwm(&status).unwrap() > 0);
    }

    #[test]
    fn port_pair_is_adjacent_and_bindable() {
        let (a, b) = free_port_pair().unwrap();
        assert_eq!(b, a + 1);
        TcpListener::bind((Ipv4Addr::LOCALHOST, a)).unwrap();
        TcpListener::bind((Ipv4Addr::LOCALHOST, b)).unwrap();
    }

    #[test]
    fn raft_config_pins_both_ports_and_disables_tls_and_mlock() {
        let addr: SocketAddr = "127.0.0.1:41000".parse().unwrap();
        let text = raft_config(Path::new("/tmp/x y/raft"), addr, 41001);
        assert!(text.contains("storage \"raft\""));
        assert!(text.contains("path = \"/tmp/x y/raft\""));
        assert!(text.contains("node_id = \"bench\""));
        assert!(text.contains("address = \"127.0.0.1:41000\""));
        assert!(text.contains("cluster_address = \"127.0.0.1:41001\""));
        assert!(text.contains("api_addr = \"http://127.0.0.1:41000\""));
        assert!(text.contains("cluster_addr = \"http://127.0.0.1:41001\""));
        assert!(text.contains("tls_disable = true"));
        assert!(text.contains("disable_mlock = true"));
    }

    #[test]
    fn postgresql_config_enables_ha_on_the_url_for_both_flavors() {
        let addr: SocketAddr = "127.0.0.1:41000".parse().unwrap();
        let url = "postgres://u@127.0.0.1:5432/test0?sslmode=disable";
        for flavor in [Flavor::Strongroom, Flavor::OpenBao] {
            let text = postgresql_config(flavor, url, addr, 41001);
            assert!(text.contains("storage \"postgresql\""), "{text}");
            assert!(
                text.contains(&format!("connection_url = \"{url}\"")),
                "{text}"
            );
            assert!(text.contains("ha_enabled = \"true\""), "{text}");
            assert!(text.contains("address = \"127.0.0.1:41000\""), "{text}");
            assert!(
                text.contains("api_addr = \"http://127.0.0.1:41000\""),
                "{text}"
            );
            assert!(text.contains("tls_disable = true"), "{text}");
            assert!(
                text.contains("cluster_addr = \"https://127.0.0.1:41001\"")
                    && text.contains("cluster_address = \"127.0.0.1:41001\""),
                "{text}"
            );
        }
    }

    #[test]
    fn audit_config_declares_one_file_device() {
        let text = audit_config(Path::new("/tmp/x y/audit.log"));
        assert!(text.starts_with("audit \"file\" \"bench\" {"), "{text}");
        assert!(
            text.contains("file_path = \"/tmp/x y/audit.log\""),
            "{text}"
        );
    }

    #[test]
    fn redb_config_names_storage_and_listener() {
        let addr: SocketAddr = "127.0.0.1:41000".parse().unwrap();
        let text = redb_config(Path::new("/tmp/d"), addr);
        assert!(text.contains("storage \"redb\""));
        assert!(text.contains("path = \"/tmp/d/strongroom.redb\""));
        assert!(text.contains("address = \"127.0.0.1:41000\""));
        assert!(text.contains("tls_disable = true"));
    }

    #[test]
    fn init_secrets_are_moved_out_of_the_answer() {
        let mut init = json!({"keys_base64": ["a2V5"], "root_token": "s.root"});
        assert_eq!(
            take_string(&mut init, "/keys_base64/0").unwrap().as_str(),
            "a2V5"
        );
        assert_eq!(
            take_string(&mut init, "/root_token").unwrap().as_str(),
            "s.root"
        );
        assert_eq!(init["root_token"], "", "no copy left behind");
        assert_eq!(
            take_string(&mut init, "/missing")
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("sys/init answer has no /missing")
        );
    }

    #[test]
    fn dev_tokens_are_random() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(a.len(), "bench-".len() + 32);
    }
}
