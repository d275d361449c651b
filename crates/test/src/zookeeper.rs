//! A throw-away ZooKeeper server for tests: Debian's `zookeeper` jars run
//! standalone (`ZooKeeperServerMain`) on a free loopback port, with its
//! `zoo.cfg` and data in a temporary folder; killed and deleted on drop.
//!
//! The server is ready once a ZooKeeper session can be established with
//! it (through the `zookeeper-client` crate, the one Gatekeeper uses), not
//! after a fixed wait. The admin HTTP server and the four-letter commands
//! are off. When Java or the jars are missing, [`ZooKeeper::start`] fails
//! with one line naming the install command. [`Session`] is a client for
//! the tests' own writes (a Mesos master registering itself).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zookeeper_client as zk;

/// Debian's ZooKeeper server jar (package `libzookeeper-java`, pulled in by
/// `zookeeper`); its manifest names every jar it needs.
pub const JAR: &str = "/usr/share/java/zookeeper.jar";

/// An SLF4J binding that prints to stderr (package `libslf4j-java`): with
/// it the server's log is captured, without it the server logs nothing.
const SLF4J_SIMPLE: &str = "/usr/share/java/slf4j-simple.jar";

/// How long a start may take until a session is established.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running ZooKeeper server; killed and its folder deleted when dropped.
pub struct ZooKeeper {
    dir: tempfile::TempDir,
    java: PathBuf,
    port: u16,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

/// The `java` binary: on `PATH`, else the newest in `/usr/lib/jvm`.
fn find_java() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("java"))
            .collect::<Vec<_>>()
    });
    let mut jvms: Vec<PathBuf> = std::fs::read_dir("/usr/lib/jvm")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join("java"))
        .collect();
    jvms.sort();
    jvms.reverse();
    on_path.chain(jvms).find(|java| java.is_file())
}

impl ZooKeeper {
    /// Starts a fresh standalone server. Panics with one clear line when
    /// ZooKeeper is not installed, or with the server's output when it
    /// does not come up.
    pub async fn start() -> ZooKeeper {
        let (Some(java), true) = (find_java(), Path::new(JAR).is_file()) else {
            panic!(
                "ZooKeeper is not installed (no java, or no {JAR}): run `apt-get install -y zookeeper`"
            );
        };
        let dir = tempfile::Builder::new()
            .prefix("strongroom-zk")
            .tempdir()
            .expect("create a temporary folder for ZooKeeper");
        let mut zk = ZooKeeper {
            dir,
            java,
            port: 0,
            child: None,
            log: Default::default(),
        };
        let mut last = String::new();
        for _ in 0..5 {
            match zk.launch(crate::server::free_port()).await {
                Ok(()) => return zk,
                Err(e) => last = e,
            }
        }
        panic!("could not start ZooKeeper: {last}");
    }

    /// Writes `zoo.cfg` for `port` and runs the server; answers once a
    /// session is established, or the server's output when it exits or
    /// does not answer in time.
    async fn launch(&mut self, port: u16) -> Result<(), String> {
        let data = self.dir.path().join("data");
        std::fs::create_dir_all(&data).map_err(|e| format!("create {}: {e}", data.display()))?;
        let cfg = self.dir.path().join("zoo.cfg");
        // tickTime 500 ms: sessions of 1 s to 60 s are accepted.
        let text = format!(
            "tickTime=500\n\
             minSessionTimeout=1000\n\
             maxSessionTimeout=60000\n\
             dataDir={}\n\
             clientPort={port}\n\
             clientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=\n\
             forceSync=no\n\
             preAllocSize=1024\n",
            data.display()
        );
        std::fs::write(&cfg, text).map_err(|e| format!("write {}: {e}", cfg.display()))?;
        let mut classpath = JAR.to_owned();
        if Path::new(SLF4J_SIMPLE).is_file() {
            classpath.push(':');
            classpath.push_str(SLF4J_SIMPLE);
        }
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let mut child = Command::new(&self.java)
            // A small, quickly started JVM.
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-Dzookeeper.4lw.commands.whitelist=")
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=info")
            .arg("-cp")
            .arg(&classpath)
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(&cfg)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.java.display()))?;
        self.follow(Box::new(child.stdout.take().expect("piped stdout")));
        self.follow(Box::new(child.stderr.take().expect("piped stderr")));
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(client) = connect(&address, Duration::from_secs(5)).await {
                drop(client);
                self.port = port;
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "ZooKeeper exited ({status}) on port {port}:\n{}",
                    self.log_text()
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "ZooKeeper did not accept a session within {START_TIMEOUT:?}:\n{}",
                    self.log_text()
                ));
            }
            // The connect attempt failed at once (refused): poll again.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn follow(&self, pipe: Box<dyn Read + Send>) {
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, a ZooKeeper connect string.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the server logged so far (since its last start).
    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// Kills the server (SIGKILL, as a crash) and reaps it; its data stays,
    /// so [`ZooKeeper::restart`] brings the same tree back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same port with the same
    /// data. Panics with the server's output when it does not come up.
    pub async fn restart(&mut self) {
        self.stop();
        let port = self.port;
        if let Err(e) = self.launch(port).await {
            panic!("could not restart ZooKeeper: {e}");
        }
    }

    /// A new session with the server, for the test's own reads and writes.
    pub async fn session(&self) -> Session {
        let client = connect(&self.address(), Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("connect to ZooKeeper: {e}\n{}", self.log_text()));
        Session { client }
    }

    /// A new session authenticated with ZooKeeper's `digest` scheme as
    /// `user:password`: the nodes it makes with [`Session::create_private`]
    /// only such sessions can read.
    pub async fn session_as(&self, user_password: &str) -> Session {
        let client = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_fail_eagerly()
            .with_auth("digest", user_password.as_bytes())
            .connect(&self.address())
            .await
            .unwrap_or_else(|e| panic!("connect to ZooKeeper: {e}\n{}", self.log_text()));
        Session { client }
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Establishes a session; fails at once when the server refuses the
/// connection.
async fn connect(address: &str, session_timeout: Duration) -> Result<zk::Client, zk::Error> {
    zk::Client::connector()
        .with_session_timeout(session_timeout)
        .with_fail_eagerly()
        .connect(address)
        .await
}

/// A ZooKeeper session of the test; its ephemeral nodes go when it is
/// closed or dropped.
pub struct Session {
    client: zk::Client,
}

impl Session {
    /// Creates `path` and its missing parents as persistent nodes with no
    /// data; an existing node is fine.
    pub async fn create_path(&self, path: &str) {
        let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        match self.client.mkdir(path, &options).await {
            Ok(()) | Err(zk::Error::NodeExists) => {}
            Err(e) => panic!("create {path} in ZooKeeper: {e}"),
        }
    }

    /// Creates an ephemeral sequential node `<parent>/<prefix><sequence>`
    /// holding `data` (as a Mesos master registers itself under its
    /// ZooKeeper path, with prefix `json.info_`), creating `parent` when
    /// missing; answers the node's full path.
    pub async fn register_sequential(&self, parent: &str, prefix: &str, data: &[u8]) -> String {
        self.create_path(parent).await;
        let options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let path = format!("{}/{prefix}", parent.trim_end_matches('/'));
        let (_, sequence) = self
            .client
            .create(&path, data, &options)
            .await
            .unwrap_or_else(|e| panic!("create {path} in ZooKeeper: {e}"));
        format!("{path}{sequence}")
    }

    /// Creates a persistent node `path` holding `data` (parents must exist).
    pub async fn create(&self, path: &str, data: &[u8]) {
        let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        self.client
            .create(path, data, &options)
            .await
            .unwrap_or_else(|e| panic!("create {path} in ZooKeeper: {e}"));
    }

    /// Creates a persistent node `path` holding `data` that only sessions
    /// with this session's credentials may use (ACL `auth`, all rights).
    pub async fn create_private(&self, path: &str, data: &[u8]) {
        let options = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
        self.client
            .create(path, data, &options)
            .await
            .unwrap_or_else(|e| panic!("create {path} in ZooKeeper: {e}"));
    }

    /// Deletes the node at `path` (any version).
    pub async fn delete(&self, path: &str) {
        self.client
            .delete(path, None)
            .await
            .unwrap_or_else(|e| panic!("delete {path} in ZooKeeper: {e}"));
    }

    /// The names of the children of `path`.
    pub async fn children(&self, path: &str) -> Vec<String> {
        self.client
            .list_children(path)
            .await
            .unwrap_or_else(|e| panic!("list {path} in ZooKeeper: {e}"))
    }
}
