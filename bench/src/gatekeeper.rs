//! Gatekeeper in front of a server under test: the Mesos and ECS emulators
//! that stand in for the schedulers (in the bench's process, for the whole
//! run) and the `strongroom gatekeeper` process the bench starts per server
//! (the same `--strongroom` binary on both sides, so only the Vault-API
//! server behind it differs). A [`Gatekeeper`] owns its child process,
//! killed when the value is dropped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode, Uri};
use strongroom_gatekeeper_scheduler::emulator::{
    EcsEmulator, EmulatedEcsTask, EmulatedMesosTask, MesosEmulator, ECS_ACCESS_KEY_ID, ECS_CLUSTER,
    ECS_DESCRIBE_PATH, ECS_REGION, ECS_SECRET_ACCESS_KEY,
};
use tokio::process::{Child, Command};

use crate::client;
use crate::workloads::{GATEKEEPER_ECS_TASK, GATEKEEPER_TASK};

/// How long after its start the bench task may ask for tokens: longer
/// than any run of the workload (its start is reset for each Gatekeeper).
const TASK_GRACE: &str = "1h";

/// How many times readiness is polled before giving up.
const READY_ATTEMPTS: u32 = 300;
/// The pause between readiness polls (setup only, never measured).
const READY_INTERVAL: Duration = Duration::from_millis(100);

/// The Mesos cluster Gatekeeper asks about the bench task: two emulated
/// masters (master 0 leads) running [`GATEKEEPER_TASK`].
pub struct Mesos {
    emulator: MesosEmulator,
}

impl Mesos {
    /// Starts the emulated masters.
    pub async fn start() -> Mesos {
        let mesos = Mesos {
            emulator: MesosEmulator::start().await,
        };
        mesos.restart_task();
        mesos
    }

    /// The `--mesos-master` value: both masters, comma-separated.
    pub fn url(&self) -> &str {
        &self.emulator.url
    }

    /// (Re)starts the bench task now, so that it is well inside the
    /// task grace for the Gatekeeper about to start.
    pub fn restart_task(&self) {
        let (id, framework, name) = GATEKEEPER_TASK;
        self.emulator
            .add_task(EmulatedMesosTask::running(id, framework, name));
    }

    /// How many state requests the leading master has answered so far.
    pub fn state_requests(&self) -> u64 {
        self.emulator.requests(0, "/master/state")
    }
}

/// The ECS cluster Gatekeeper asks about the ECS bench task: the emulated
/// ECS API, which checks each request's SigV4 signature in full.
pub struct Ecs {
    emulator: EcsEmulator,
}

impl Ecs {
    /// Starts the emulated ECS API.
    pub async fn start() -> Ecs {
        let ecs = Ecs {
            emulator: EcsEmulator::start().await,
        };
        ecs.restart_task();
        ecs
    }

    /// The `--ecs-endpoint` value.
    pub fn url(&self) -> &str {
        &self.emulator.url
    }

    /// (Re)starts the ECS bench task now (an awsvpc task at 127.0.0.1).
    pub fn restart_task(&self) {
        let (id, family) = GATEKEEPER_ECS_TASK;
        self.emulator.add_task(EmulatedEcsTask::running(id, family));
    }

    /// How many `DescribeTasks` it has answered so far.
    pub fn describe_requests(&self) -> u64 {
        self.emulator.requests(ECS_DESCRIBE_PATH)
    }

    /// How many requests it refused for their signature.
    pub fn refused(&self) -> u64 {
        self.emulator.refused()
    }
}

/// A running Gatekeeper, unsealed and serving `/token`.
#[derive(Debug)]
pub struct Gatekeeper {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Gatekeeper {
    /// Starts `strongroom gatekeeper` from `binary` (under `taskset -c
    /// cpus` when given) in front of the server at `vault`, unsealed with
    /// `token` at start, asking `mesos_url` (Mesos, the default) and
    /// `ecs_url` (ECS) about tasks; its log goes to `dir/gatekeeper.log`.
    /// Returns once `/status` says it is unsealed.
    pub async fn start(
        binary: &Path,
        cpus: Option<&str>,
        vault: SocketAddr,
        token: &HeaderValue,
        mesos_url: &str,
        ecs_url: &str,
        dir: &Path,
    ) -> anyhow::Result<Gatekeeper> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let log = dir.join("gatekeeper.log");
        let log_file = std::fs::File::create(&log)?;
        let token = token.to_str().context("the Gatekeeper token is not text")?;
        let mut cmd = command(binary, cpus, vault, token, mesos_url, ecs_url, addr);
        cmd.stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .current_dir(dir)
            .env("HOME", dir)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} gatekeeper", binary.display()))?;
        let mut gatekeeper = Gatekeeper { child, addr, log };
        gatekeeper.wait_unsealed().await?;
        Ok(gatekeeper)
    }

    /// The address Gatekeeper listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills Gatekeeper and waits for it to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("stopping gatekeeper")
    }

    /// Polls `/status` until it answers 200 (unsealed, policies loaded).
    /// Fails when the process exits or the attempts run out.
    async fn wait_unsealed(&mut self) -> anyhow::Result<()> {
        let status_uri = Uri::from_static("/status");
        let mut last = String::from("no answer");
        for _ in 0..READY_ATTEMPTS {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "gatekeeper exited with {status} before it was ready; its log is {} \
                     (kept only with --work-dir)",
                    self.log.display()
                );
            }
            match client::call_uri(self.addr, Method::GET, status_uri.clone(), None, None).await {
                Ok((StatusCode::OK, _)) => return Ok(()),
                Ok((status, _)) => last = format!("/status answered {status}"),
                Err(err) => last = format!("{err:#}"),
            }
            tokio::time::sleep(READY_INTERVAL).await;
        }
        Err(anyhow!(
            "gatekeeper at {} not unsealed after {READY_ATTEMPTS} attempts ({last}); its log \
             is {} (kept only with --work-dir)",
            self.addr,
            self.log.display()
        ))
    }
}

/// The command line and environment of a Gatekeeper in front of `vault`.
/// The environment starts empty, since every flag is also read from an
/// environment variable with a common name (`PEERS`, `LISTEN_ADDR`, ...);
/// the token goes in `VAULT_TOKEN` and the ECS emulator's key in the AWS
/// variables, so they are not on the command line that `ps` shows. The
/// ECS cluster and region are given, so nothing asks a metadata service
/// or an ECS agent. Usage counts stay in memory, and the log level is `warn`, so
/// that neither adds requests or writes beside the ones measured.
fn command(
    binary: &Path,
    cpus: Option<&str>,
    vault: SocketAddr,
    token: &str,
    mesos_url: &str,
    ecs_url: &str,
    listen: SocketAddr,
) -> Command {
    let mut cmd = match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    cmd.env_clear();
    cmd.arg("gatekeeper");
    cmd.args(["--listen-addr", &listen.to_string()]);
    cmd.args(["--vault-addr", &format!("http://{vault}")]);
    cmd.args(["--schedulers", "mesos,ecs", "--mesos-master", mesos_url]);
    cmd.args(["--ecs-endpoint", ecs_url, "--ecs-cluster", ECS_CLUSTER]);
    cmd.args(["--task-grace", TASK_GRACE]);
    cmd.args(["--usage-store", "memory", "--log-level", "warn"]);
    cmd.env("VAULT_TOKEN", token);
    cmd.env("AWS_REGION", ECS_REGION);
    cmd.env("AWS_ACCESS_KEY_ID", ECS_ACCESS_KEY_ID);
    cmd.env("AWS_SECRET_ACCESS_KEY", ECS_SECRET_ACCESS_KEY);
    cmd
}

/// A free loopback port (released again for Gatekeeper to bind).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn args(cmd: &Command) -> Vec<String> {
        let std = cmd.as_std();
        std::iter::once(std.get_program())
            .chain(std.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn gatekeeper_points_at_the_server_and_the_emulator_with_the_token_off_the_command_line() {
        let vault: SocketAddr = "127.0.0.1:8200".parse().unwrap();
        let listen: SocketAddr = "127.0.0.1:9201".parse().unwrap();
        let mesos = "http://127.0.0.1:5050,http://127.0.0.1:5051";
        let ecs = "http://127.0.0.1:4566";
        let cmd = command(
            Path::new("/bin/strongroom"),
            None,
            vault,
            "s.root-secret",
            mesos,
            ecs,
            listen,
        );
        let line = args(&cmd);
        assert_eq!(line[..2], ["/bin/strongroom", "gatekeeper"]);
        let flag = |name: &str| {
            let at = line.iter().position(|a| a == name).unwrap();
            line[at + 1].clone()
        };
        assert_eq!(flag("--vault-addr"), "http://127.0.0.1:8200");
        assert_eq!(flag("--listen-addr"), "127.0.0.1:9201");
        assert_eq!(flag("--schedulers"), "mesos,ecs");
        assert_eq!(flag("--mesos-master"), mesos);
        assert_eq!(flag("--ecs-endpoint"), ecs);
        assert_eq!(flag("--ecs-cluster"), ECS_CLUSTER);
        assert_eq!(flag("--task-grace"), "1h");
        assert_eq!(flag("--usage-store"), "memory");
        assert!(!line.iter().any(|a| a.contains("root-secret")), "{line:?}");
        assert!(
            !line.iter().any(|a| a.contains(ECS_SECRET_ACCESS_KEY)),
            "{line:?}"
        );
        let mut envs: Vec<_> = cmd.as_std().get_envs().collect();
        envs.sort();
        assert_eq!(
            envs,
            [
                (
                    OsStr::new("AWS_ACCESS_KEY_ID"),
                    Some(OsStr::new(ECS_ACCESS_KEY_ID))
                ),
                (OsStr::new("AWS_REGION"), Some(OsStr::new(ECS_REGION))),
                (
                    OsStr::new("AWS_SECRET_ACCESS_KEY"),
                    Some(OsStr::new(ECS_SECRET_ACCESS_KEY))
                ),
                (OsStr::new("VAULT_TOKEN"), Some(OsStr::new("s.root-secret"))),
            ]
        );
    }

    #[test]
    fn pinned_gatekeeper_runs_under_taskset_on_the_given_cpus() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let cmd = command(
            Path::new("/bin/strongroom"),
            Some("0"),
            addr,
            "t",
            "m",
            "e",
            addr,
        );
        assert_eq!(
            args(&cmd)[..5],
            ["taskset", "-c", "0", "/bin/strongroom", "gatekeeper"]
        );
    }

    #[tokio::test]
    async fn the_emulated_cluster_runs_the_bench_task() {
        let mesos = Mesos::start().await;
        assert!(mesos.url().contains(','), "two masters: {}", mesos.url());
        let leader = mesos.url().split(',').next().unwrap();
        let addr: SocketAddr = leader.trim_start_matches("http://").parse().unwrap();
        let uri = Uri::from_static("/master/state");
        let (status, state) = client::call_uri(addr, Method::GET, uri, None, None)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        let framework = state["frameworks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "bench")
            .unwrap();
        let task = &framework["tasks"][0];
        assert_eq!(
            (&task["id"], &task["name"], &task["state"]),
            (
                &serde_json::json!("bench-task"),
                &serde_json::json!("bench"),
                &serde_json::json!("TASK_RUNNING")
            )
        );
        assert_eq!(mesos.state_requests(), 1);
    }

    #[tokio::test]
    async fn the_emulated_ecs_api_runs_the_bench_task_and_refuses_unsigned_requests() {
        let ecs = Ecs::start().await;
        let addr: SocketAddr = ecs.url().trim_start_matches("http://").parse().unwrap();
        let body = serde_json::json!({"cluster": ECS_CLUSTER, "tasks": [GATEKEEPER_ECS_TASK.0]});
        let uri = Uri::from_static("/");
        let (status, answer) = client::call_uri(addr, Method::POST, uri, None, Some(&body))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "unsigned: {answer}");
        assert_eq!(answer["__type"], "MissingAuthenticationTokenException");
        assert_eq!(ecs.refused(), 1);
        assert_eq!(ecs.describe_requests(), 0, "no DescribeTasks was made");
    }
}
