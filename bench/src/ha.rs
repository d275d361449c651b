//! Several nodes of one server on one PostgreSQL database with
//! `ha_enabled`, and the failover measurement. A [`HaCluster`] owns its
//! node processes: one active node (initialised and unsealed by the bench)
//! and the others waiting for the HA lock — OpenBao's as unsealed standbys
//! answering `sys/health` with 429, Strongroom's (until its standby mode
//! lands) as processes that bind no listener before they hold the lock.
//! [`HaCluster::failover`] kills the active node with SIGKILL and times how
//! long until another node answers `sys/health` with 200, then restarts the
//! killed node as a waiting one.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::client;
use crate::servers::{self, Server, Side, Storage, RUN_MARK};

/// The pause between `sys/health` polls while a failover is timed: the
/// measurement's resolution.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// The longest a failover may take before the run fails.
const FAILOVER_LIMIT: Duration = Duration::from_secs(90);
/// How long a restarted node may take to be waiting for the lock.
const WAITING_LIMIT: Duration = Duration::from_secs(30);
/// What a Strongroom node logs once it waits for the HA lock (after it has
/// parsed its config and connected to PostgreSQL).
const STRONGROOM_WAITING: &str = "waiting for the HA lock";

/// One node's fixed place: its ports and folder stay the same across
/// restarts, so its `api_addr` does too.
#[derive(Debug)]
struct Slot {
    addr: SocketAddr,
    cluster_port: u16,
    dir: PathBuf,
    server: Option<Server>,
}

/// Nodes of one server on one PostgreSQL database, one of them active.
#[derive(Debug)]
pub struct HaCluster {
    side: Side,
    url: String,
    slots: Vec<Slot>,
    active: usize,
    root: HeaderValue,
    key: Zeroizing<String>,
}

/// One timed failover.
#[derive(Debug, Clone, Copy)]
pub struct Failover {
    /// From the SIGKILL to the first 200 from `sys/health` on another node.
    pub elapsed: Duration,
    /// Whether the new active node had to be unsealed by the bench within
    /// that time (a Strongroom node that waited without listening).
    pub unsealed: bool,
}

impl HaCluster {
    /// Starts `nodes` nodes (at least one) of `side` on the database at
    /// `url`, with their folders under `dir`: the first is initialised,
    /// unsealed and active; each other one is started and waits for the
    /// lock (see [`HaCluster::restart`]).
    pub async fn start(side: &Side, url: &str, dir: &Path, nodes: usize) -> anyhow::Result<Self> {
        let mut slots = Vec::new();
        for i in 0..nodes.max(1) {
            let (port, cluster_port) = servers::free_port_pair()?;
            let dir = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            slots.push(Slot {
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                cluster_port,
                dir,
                server: None,
            });
        }
        // The first node on the fresh database takes the lock at once.
        let first = Server::start_at(
            side,
            Storage::Postgres(url),
            &slots[0].dir,
            slots[0].addr,
            slots[0].cluster_port,
        )
        .await?;
        let root = first.root().clone();
        let key = first
            .unseal_key()
            .context("the first node was not initialised")?
            .clone();
        slots[0].server = Some(first);
        let mut cluster = HaCluster {
            side: side.clone(),
            url: url.to_string(),
            slots,
            active: 0,
            root,
            key,
        };
        for i in 1..cluster.slots.len() {
            cluster.restart(i).await?;
        }
        Ok(cluster)
    }

    /// The active node's address.
    #[allow(dead_code)] // The standby rows will aim their load with these two.
    pub fn active_addr(&self) -> SocketAddr {
        self.slots[self.active].addr
    }

    /// The addresses of the other nodes (standbys, or Strongroom nodes
    /// waiting without a listener).
    #[allow(dead_code)]
    pub fn standby_addrs(&self) -> Vec<SocketAddr> {
        (0..self.slots.len())
            .filter(|&i| i != self.active)
            .map(|i| self.slots[i].addr)
            .collect()
    }

    /// Starts node `i` (not running) on the shared database and waits until
    /// it waits for the lock: an OpenBao node (or any flavor whose standby
    /// listens) is unsealed and answers `sys/health` with 429; a Strongroom
    /// node has logged that it waits for the lock.
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let slot = &mut self.slots[i];
        if slot.server.is_some() {
            bail!("node {i} is running already");
        }
        let config =
            servers::postgresql_config(self.side.flavor, &self.url, slot.addr, slot.cluster_port);
        let args = servers::write_config(&slot.dir, &config)?;
        let mut server = Server::spawn(&self.side, &slot.dir, slot.addr, &args)?;
        server.adopt(self.root.clone(), self.key.clone());
        if self.side.flavor.standby_listens() {
            server.wait_health(None).await?;
            if !server.unseal().await? {
                bail!("node {i} still sealed after unseal");
            }
            server
                .wait_health(Some(StatusCode::TOO_MANY_REQUESTS))
                .await?;
        } else {
            wait_for_log(&mut server, STRONGROOM_WAITING).await?;
        }
        slot.server = Some(server);
        Ok(())
    }

    /// Kills the active node with SIGKILL, times how long until another
    /// node answers `sys/health` with 200 (unsealing it when it answers
    /// sealed, as an operator's automation would), then restarts the killed
    /// node as a waiting one.
    pub async fn failover(&mut self) -> anyhow::Result<Failover> {
        let killed = self.active;
        let server = self.slots[killed]
            .server
            .take()
            .context("the active node is not running")?;
        let start = Instant::now();
        server.stop().await?;
        let mut unsealed = false;
        let (next, elapsed) = 'poll: loop {
            for i in (0..self.slots.len()).filter(|&i| i != killed) {
                let Some(node) = self.slots[i].server.as_mut() else {
                    continue;
                };
                node.check_running()?;
                match client::call(node.addr(), Method::GET, "sys/health", None, None).await {
                    Ok((StatusCode::OK, _)) => break 'poll (i, start.elapsed()),
                    Ok((_, body)) if body.get("sealed") == Some(&Value::Bool(true)) => {
                        // Retried on the next poll if the node was not ready.
                        unsealed |= node.unseal().await.unwrap_or(false);
                    }
                    _ => {}
                }
            }
            if start.elapsed() > FAILOVER_LIMIT {
                bail!(
                    "no node became active within {FAILOVER_LIMIT:?} of killing node {killed}; \
                     logs under {}",
                    self.slots[killed].dir.display()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        };
        self.active = next;
        self.restart(killed).await?;
        Ok(Failover { elapsed, unsealed })
    }

    /// Kills every node.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        for slot in &mut self.slots {
            if let Some(server) = slot.server.take() {
                server.stop().await?;
            }
        }
        Ok(())
    }
}

/// Waits until `server`'s log contains `needle`; fails when the process
/// exits or [`WAITING_LIMIT`] passes.
async fn wait_for_log(server: &mut Server, needle: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAITING_LIMIT;
    loop {
        server.check_running()?;
        let log = std::fs::read_to_string(server.log()).unwrap_or_default();
        // A restarted node appends to its old log: only a line after the
        // last start counts.
        let this_run = log.rsplit(RUN_MARK).next().unwrap_or(&log);
        if this_run.contains(needle) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "node at {} did not log {needle:?} within {WAITING_LIMIT:?}; its log is {}",
                server.addr(),
                server.log().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The median, minimum and maximum of `times` (`None` when empty).
pub fn summary(times: &[Duration]) -> Option<(Duration, Duration, Duration)> {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let median = match n {
        0 => return None,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    };
    Some((median, sorted[0], sorted[n - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_the_middle_of_sorted_times() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        assert_eq!(summary(&[]), None);
        let (median, min, max) = summary(&ms(&[30, 10, 20])).unwrap();
        assert_eq!(
            (median, min, max),
            (ms(&[20])[0], ms(&[10])[0], ms(&[30])[0])
        );
        let (median, _, _) = summary(&ms(&[40, 10, 30, 20])).unwrap();
        assert_eq!(median, Duration::from_millis(25));
    }
}
