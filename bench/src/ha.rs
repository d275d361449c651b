//! Several nodes of one server on one PostgreSQL database with
//! `ha_enabled`, and the failover measurement. A [`HaCluster`] owns its
//! node processes: one active node (initialised and unsealed by the bench)
//! and the others unsealed standbys waiting for the HA lock (answering
//! `sys/health` with 429), for both servers.
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
use crate::servers::{self, Server, Side, Storage};

/// The pause between `sys/health` polls while a failover is timed: the
/// measurement's resolution.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// The longest a failover may take before the run fails.
const FAILOVER_LIMIT: Duration = Duration::from_secs(90);

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

    /// The root token (every node's).
    pub fn root(&self) -> &HeaderValue {
        &self.root
    }

    /// The active node's address.
    pub fn active_addr(&self) -> SocketAddr {
        self.slots[self.active].addr
    }

    /// The addresses of the other nodes (the standbys).
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
        // Both servers' standbys listen: unsealed ahead, they answer 429.
        debug_assert!(self.side.flavor.standby_listens());
        server.wait_health(None).await?;
        if !server.unseal().await? {
            bail!("node {i} still sealed after unseal");
        }
        server
            .wait_health(Some(StatusCode::TOO_MANY_REQUESTS))
            .await?;
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
