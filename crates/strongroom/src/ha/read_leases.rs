//! Read leases: a standby answers reads from its own state without a
//! database round trip, and still never older than an acknowledged write.
//!
//! **The promise.** A standby asks the active node for a read lease (every
//! [`RENEW_EVERY`]). While a lease is granted, the active node pushes the
//! keys of every write transaction to that standby and waits for it to
//! confirm that it dropped what it cached of them, *before* the write is
//! acknowledged ([`CommitObserver`], called by the PostgreSQL writer after
//! the commit and before the answer). So a read that reaches a standby
//! holding a lease after a write was acknowledged finds the write's keys
//! forgotten and reads them again from the database. Without a lease (not
//! granted yet, expired, revoked) the standby falls back to the change-log
//! sync (`HaControl::sync_reads`).
//!
//! **Only reachable standbys.** A new grant is made only after the active
//! node reached the standby with an empty push: a standby it cannot reach
//! (a wrong `cluster_addr`, a one-way partition) gets no lease and costs
//! the writes nothing.
//!
//! **Why a silent standby cannot be served stale.** A push that fails or
//! does not answer in [`PUSH_TIMEOUT`] revokes that grant, and the write
//! waits until the grant's end as the active node counts it before it is
//! acknowledged. The standby counts its lease from *before* it asked
//! (minus [`MARGIN`]), the active node from when it answered, so the
//! standby's lease always ends first (clock rates agree far better than
//! the margin). A revoked grant is never extended: the next request gets a
//! new grant id, and a standby that sees a new id drops its lease and
//! catches up from the change log before it serves from the new one
//! (writes acknowledged before the grant were either pushed to it or
//! committed before the grant, so the change log has them).
//!
//! **Across leader changes.** A lease is never longer than what remains
//! of the active node's own lock deadline, which ends before its lock row
//! can expire: a node that takes the lock over after an expiry finds every
//! lease of its predecessor ended. A node that gives the lock up on
//! purpose (step-down, seal, shutdown) first closes its grants and revokes
//! every lease (a standby that does not confirm is waited out).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The longest lease the active node grants.
pub(super) const LEASE: Duration = Duration::from_secs(2);
/// How often a standby asks for its lease again (well within [`LEASE`]).
pub(super) const RENEW_EVERY: Duration = Duration::from_millis(500);
/// How long the active node waits for a standby to confirm a push (or a
/// revocation) before it revokes the lease and waits it out instead.
pub(super) const PUSH_TIMEOUT: Duration = Duration::from_millis(500);
/// Taken off the standby's end of a lease: scheduling delays between
/// reading the clock and sending; clock *rates* differ by far less.
pub(super) const MARGIN: Duration = Duration::from_millis(50);
/// Leases shorter than this are not granted (the active node's lock is
/// about to run out).
pub(super) const MIN_LEASE: Duration = Duration::from_millis(200);

/// A standby's request for a lease (`/cluster/lease`).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LeaseRequest {
    /// The standby's node id.
    pub node_id: String,
    /// Where the active node pushes to (the standby's `cluster_addr`).
    pub cluster_addr: String,
}

/// The active node's answer: which grant, for how long from the answer.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LeaseAnswer {
    /// The grant's id: the same while the grant is extended, a new one
    /// after a revocation.
    pub grant: u64,
    /// How long the lease lasts, counted by the standby from before it
    /// asked.
    pub valid_ms: u64,
}

/// What the active node pushes to a standby (`/cluster/invalidate`).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Push {
    /// The active node's id (grant ids are its own).
    pub from: String,
    /// The grant the push is sent under.
    pub grant: u64,
    /// The storage keys written.
    #[serde(default)]
    pub keys: Vec<String>,
    /// The lease ends now (the active node is giving the lock up).
    #[serde(default)]
    pub revoke: bool,
}

/// A standby's lease, as it holds it.
#[derive(Default)]
pub(super) struct LeaseSlot {
    state: std::sync::RwLock<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// The lease: the granting node, the grant id, when it ends here.
    held: Option<(String, u64, Instant)>,
    /// The last grant revoked, per granting node: a revocation may arrive
    /// before the answer that granted it, which must then not be trusted.
    revoked: Option<(String, u64)>,
}

/// The outcome of [`LeaseSlot::extend`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Extended {
    /// The same grant, now longer.
    Yes,
    /// Not the grant held: catch up, then [`LeaseSlot::install`].
    NewGrant,
}

impl LeaseSlot {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, SlotState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether reads may rely on the lease now.
    pub fn valid(&self) -> bool {
        let s = self.state.read().unwrap_or_else(PoisonError::into_inner);
        s.held
            .as_ref()
            .is_some_and(|(_, _, until)| Instant::now() < *until)
    }

    /// Extends the lease if `grant` from `leader` is the one held;
    /// otherwise drops it (the caller catches up before installing).
    pub fn extend(&self, leader: &str, grant: u64, until: Instant) -> Extended {
        let mut s = self.write();
        match &mut s.held {
            Some((l, g, end)) if l == leader && *g == grant => {
                *end = (*end).max(until);
                Extended::Yes
            }
            _ => {
                s.held = None;
                Extended::NewGrant
            }
        }
    }

    /// Holds `grant` from `leader` until `until`, unless it was revoked
    /// already.
    pub fn install(&self, leader: &str, grant: u64, until: Instant) -> bool {
        let mut s = self.write();
        let revoked = s
            .revoked
            .as_ref()
            .is_some_and(|(l, g)| l == leader && grant <= *g);
        if revoked {
            return false;
        }
        s.held = Some((leader.to_string(), grant, until));
        true
    }

    /// Ends `grant` from `leader` (and any earlier one from it).
    pub fn revoke(&self, leader: &str, grant: u64) {
        let mut s = self.write();
        if s.held
            .as_ref()
            .is_some_and(|(l, g, _)| l == leader && *g <= grant)
        {
            s.held = None;
        }
        let later = match &s.revoked {
            Some((l, g)) if l == leader => grant > *g,
            _ => true,
        };
        if later {
            s.revoked = Some((leader.to_string(), grant));
        }
    }

    /// Drops the lease (not serving reads, or a push not applied).
    pub fn clear(&self) {
        self.write().held = None;
    }
}

/// One standby's grant, as the active node keeps it.
struct Grant {
    id: u64,
    until: Instant,
    revoked: bool,
    target: Target,
}

/// Where to push to: the client (mutual TLS, resolving the cluster server
/// name to the standby's address) and the base URL.
#[derive(Clone)]
pub(super) struct Target {
    /// The HTTP client for this standby.
    pub client: reqwest::Client,
    /// `https://<cluster server name>:<port>`.
    pub base: String,
}

/// A live grant to push to.
pub(super) struct Live {
    pub node_id: String,
    pub grant: u64,
    pub target: Target,
}

/// The leases the active node granted.
#[derive(Default)]
pub(super) struct Grants {
    state: Mutex<GrantState>,
    next: AtomicU64,
}

#[derive(Default)]
struct GrantState {
    /// Granting is open only while this node is active.
    open: bool,
    by_node: HashMap<String, Grant>,
}

impl Grants {
    /// Starts granting (this node just became active): no grant of an
    /// earlier term survives.
    pub fn open(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.by_node.clear();
        s.open = true;
    }

    /// Extends `node_id`'s live grant to `validity` from now, if it has
    /// one (and granting is open).
    pub fn extend(&self, node_id: &str, validity: Duration) -> Option<LeaseAnswer> {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !s.open {
            return None;
        }
        let g = s.by_node.get_mut(node_id)?;
        if g.revoked || g.until <= now {
            return None;
        }
        g.until = g.until.max(now + validity);
        Some(LeaseAnswer {
            grant: g.id,
            valid_ms: millis(validity),
        })
    }

    /// Grants (or extends) `node_id`'s lease for `validity` from now;
    /// `None` while closed. `target` is used for a new grant only.
    pub fn grant(
        &self,
        node_id: &str,
        validity: Duration,
        target: impl FnOnce() -> Target,
    ) -> Option<LeaseAnswer> {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !s.open {
            return None;
        }
        let until = now + validity;
        if let Some(g) = s.by_node.get_mut(node_id) {
            if !g.revoked && g.until > now {
                g.until = g.until.max(until);
                return Some(LeaseAnswer {
                    grant: g.id,
                    valid_ms: millis(validity),
                });
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        s.by_node.insert(
            node_id.to_string(),
            Grant {
                id,
                until,
                revoked: false,
                target: target(),
            },
        );
        Some(LeaseAnswer {
            grant: id,
            valid_ms: millis(validity),
        })
    }

    /// The grants a write must be pushed under: not revoked, not ended.
    pub fn live(&self) -> Vec<Live> {
        let now = Instant::now();
        let s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.by_node
            .iter()
            .filter(|(_, g)| !g.revoked && g.until > now)
            .map(|(node, g)| Live {
                node_id: node.clone(),
                grant: g.id,
                target: g.target.clone(),
            })
            .collect()
    }

    /// Revokes `node_id`'s grant `grant` (a push it did not confirm);
    /// returns when that lease ends as the active node counts it.
    pub fn revoke(&self, node_id: &str, grant: u64) -> Option<Instant> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let g = s.by_node.get_mut(node_id)?;
        if g.id != grant {
            // Replaced by a new grant after an earlier revocation: the
            // revoked one's end was waited for then.
            return None;
        }
        g.revoked = true;
        Some(g.until)
    }

    /// Stops granting and revokes every grant; returns the live ones
    /// (to tell) with their ends (to wait for if telling fails).
    pub fn close(&self) -> Vec<(Live, Instant)> {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.open = false;
        let live = s
            .by_node
            .iter_mut()
            .filter(|(_, g)| !g.revoked && g.until > now)
            .map(|(node, g)| {
                g.revoked = true;
                (
                    Live {
                        node_id: node.clone(),
                        grant: g.id,
                        target: g.target.clone(),
                    },
                    g.until,
                )
            })
            .collect();
        live
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Sends every push at once; the indices of those not confirmed in time
/// (a task that failed counts as not confirmed).
pub(super) async fn send_all(pushes: Vec<(Target, Push)>) -> Vec<usize> {
    let mut confirmed = vec![false; pushes.len()];
    let mut sends = tokio::task::JoinSet::new();
    for (i, (target, push)) in pushes.into_iter().enumerate() {
        sends.spawn(async move { (i, send(&target, &push).await) });
    }
    while let Some(done) = sends.join_next().await {
        if let Ok((i, true)) = done {
            confirmed[i] = true;
        }
    }
    confirmed
        .iter()
        .enumerate()
        .filter(|(_, ok)| !**ok)
        .map(|(i, _)| i)
        .collect()
}

/// Waits until `end` (a lease that was not confirmed ended), if any.
pub(super) async fn wait_out(end: Option<Instant>) {
    if let Some(end) = end {
        tokio::time::sleep_until(end.into()).await;
    }
}

/// Sends `push` to `target`; whether the standby confirmed it in time.
pub(super) async fn send(target: &Target, push: &Push) -> bool {
    let sent = target
        .client
        .post(format!("{}/cluster/invalidate", target.base))
        .json(push)
        .timeout(PUSH_TIMEOUT)
        .send()
        .await;
    match sent {
        Ok(r) if r.status() == http::StatusCode::NO_CONTENT => true,
        Ok(r) => {
            tracing::warn!(status = %r.status(), "HA: a standby refused a read-lease push");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "HA: a standby did not confirm a read-lease push");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            client: reqwest::Client::new(),
            base: "https://strongroom-cluster:1".into(),
        }
    }

    /// Nothing is granted before the node is active or after it closed
    /// its grants; a renewal keeps the id, a revoked grant is never
    /// extended (the next request gets a new id).
    #[test]
    fn grants_are_extended_until_revoked_and_only_while_open() {
        let g = Grants::default();
        assert!(g.grant("a", LEASE, target).is_none(), "closed at first");
        g.open();
        assert!(g.extend("a", LEASE).is_none(), "nothing to extend yet");
        let first = g.grant("a", LEASE, target).expect("granted");
        let again = g.grant("a", LEASE, target).expect("renewed");
        assert_eq!(first.grant, again.grant);
        assert_eq!(g.extend("a", LEASE).expect("extended").grant, first.grant);
        assert_eq!(g.live().len(), 1);

        let end = g.revoke("a", first.grant).expect("revoked");
        assert!(end > Instant::now());
        assert!(g.live().is_empty(), "a revoked grant gets no pushes");
        assert!(
            g.extend("a", LEASE).is_none(),
            "a revoked grant is not extended"
        );
        let new = g.grant("a", LEASE, target).expect("granted anew");
        assert_ne!(new.grant, first.grant, "a revoked grant is not extended");
        assert_eq!(g.revoke("a", first.grant), None, "the old grant is gone");

        let closed = g.close();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].0.grant, new.grant);
        assert!(g.live().is_empty());
        assert!(g.grant("a", LEASE, target).is_none(), "closed again");
        g.open();
        assert!(g.live().is_empty(), "a new term starts with no grants");
    }

    /// The pushed message names its grant and keys; a revocation needs no
    /// keys.
    #[test]
    fn pushes_read_back() {
        let p: Push =
            serde_json::from_str(r#"{"from":"n","grant":3,"revoke":true}"#).expect("push");
        assert!(p.revoke && p.keys.is_empty() && p.grant == 3);
    }

    /// A standby trusts a lease only once installed, extends only the
    /// grant it holds, and never installs a grant already revoked (the
    /// revocation may overtake the answer that granted it).
    #[test]
    fn a_standby_trusts_only_unrevoked_installed_grants() {
        let slot = LeaseSlot::default();
        let later = Instant::now() + LEASE;
        assert!(!slot.valid());
        assert_eq!(slot.extend("a", 1, later), Extended::NewGrant);
        assert!(slot.install("a", 1, later));
        assert!(slot.valid());
        assert_eq!(slot.extend("a", 1, later), Extended::Yes);
        assert_eq!(slot.extend("a", 2, later), Extended::NewGrant);
        assert!(!slot.valid(), "a new grant drops the old lease");

        slot.revoke("a", 3);
        assert!(!slot.install("a", 3, later), "revoked before installed");
        assert!(!slot.install("a", 2, later), "older grants are revoked too");
        assert!(slot.install("a", 4, later));
        slot.revoke("b", 4);
        assert!(slot.valid(), "another node's revocation is not ours");
        slot.revoke("a", 4);
        assert!(!slot.valid());
        assert!(
            slot.install("b", 1, later),
            "another node's ids are its own"
        );
        slot.clear();
        assert!(!slot.valid());
        assert!(slot.install("a", 5, Instant::now()));
        assert!(!slot.valid(), "an ended lease is not valid");
    }
}
