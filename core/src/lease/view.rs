//! A cluster as the database sees it, the input of every cluster-wide rule.
//!
//! Ages and remaining times are computed by the database from its own clock
//! in the same query that read the rows, so they are comparable with each
//! other and with nothing else (LEASE-2). Negative remaining time means
//! "expired that long ago".

use serde::{Deserialize, Serialize};

use super::config::LeaseConfig;
use super::health::millis;

/// What a node row says the node is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NodeRole {
    /// Holds (or believes it holds) the lease and runs projections.
    Hot,
    /// A standby.
    Cold,
    /// Stopping its projections to give the lease up.
    Demoting,
    /// Shut down cleanly.
    Stopped,
}

impl NodeRole {
    /// The name stored in `rf_daemon_nodes.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Hot => "hot",
            NodeRole::Cold => "cold",
            NodeRole::Demoting => "demoting",
            NodeRole::Stopped => "stopped",
        }
    }

    /// Parses a stored role name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hot" => Some(NodeRole::Hot),
            "cold" => Some(NodeRole::Cold),
            "demoting" => Some(NodeRole::Demoting),
            "stopped" => Some(NodeRole::Stopped),
            _ => None,
        }
    }
}

/// One node row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// The node's name, unique within its cluster.
    pub name: String,
    /// The role it last reported.
    pub role: NodeRole,
    /// The epoch it last reported.
    pub epoch: u64,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: i64,
}

/// An operator's request to move the lease to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoteRequest {
    /// The node that should become hot.
    pub node: String,
    /// Set by `--force`: promote even a lagging node.
    pub force: bool,
}

/// The timing a cluster's daemons run with, in milliseconds, as the most
/// recent node to join recorded it. Tools that only read the cluster (status,
/// promote, metrics) judge liveness by it instead of asking the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterTiming {
    /// Interval between heartbeats.
    pub heartbeat_ms: i64,
    /// Lease length.
    pub lease_ttl_ms: i64,
    /// Grace after expiry before a standby may take over.
    pub lease_grace_ms: i64,
}

impl Default for ClusterTiming {
    /// The run-loop defaults: heartbeat 5 s, ttl 30 s, grace 5 s.
    fn default() -> Self {
        ClusterTiming {
            heartbeat_ms: 5_000,
            lease_ttl_ms: 30_000,
            lease_grace_ms: 5_000,
        }
    }
}

impl From<&LeaseConfig> for ClusterTiming {
    fn from(cfg: &LeaseConfig) -> Self {
        ClusterTiming {
            heartbeat_ms: millis(cfg.heartbeat),
            lease_ttl_ms: millis(cfg.lease_ttl),
            lease_grace_ms: millis(cfg.lease_grace),
        }
    }
}

/// One cluster row and all its node rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// Cluster name.
    pub cluster: String,
    /// Fencing epoch of the current (or last) grant.
    pub epoch: u64,
    /// Holder of the current (or last) grant; None after a release.
    pub leader: Option<String>,
    /// Lease time left by the database clock (negative: expired that long
    /// ago); None when no lease was ever granted.
    pub lease_remaining_ms: Option<i64>,
    /// Standbys the operator wants online.
    pub min_cold_standbys: u32,
    /// The timing its daemons run with.
    pub timing: ClusterTiming,
    /// Milliseconds since the last automatic failover, if there was one.
    pub since_last_failover_ms: Option<i64>,
    /// Pending manual promotion.
    pub promote: Option<PromoteRequest>,
    /// Pending manual demotion of this node.
    pub demote: Option<String>,
    /// Node rows, sorted by name.
    pub nodes: Vec<NodeView>,
    /// The database session the current lease is bound to; None for a
    /// lease bound to its ttl alone (`--session-leases off`, a pooler, or no
    /// lease).
    #[serde(default)]
    pub lease_session: Option<LeaseSession>,
}

/// The database session a lease is bound to, as the database sees it.
///
/// The holder keeps an exclusive advisory lock on a session of its own for
/// as long as it runs; the lease names that lock. When the session ends
/// (the holder's process died and the kernel closed its socket, or the
/// server ended the backend) the lock is gone at once, and so is the lease:
/// nobody has to wait for its ttl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseSession {
    /// The advisory lock key that names the holder's session.
    pub key: i64,
    /// Whether a session still holds that lock.
    pub alive: bool,
}

impl ClusterView {
    /// The row of `name`.
    pub fn node(&self, name: &str) -> Option<&NodeView> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// True when `name` holds a lease that has not expired and whose
    /// session, if it is bound to one, is still open.
    pub fn holds_valid_lease(&self, name: &str) -> bool {
        self.leader.as_deref() == Some(name)
            && self.lease_remaining_ms.is_some_and(|ms| ms > 0)
            && !self.leader_session_ended()
    }

    /// True when a leader is named and the session its lease is bound to
    /// has ended: the lease is free although its ttl has not run out.
    pub fn leader_session_ended(&self) -> bool {
        self.leader.is_some() && self.lease_session.is_some_and(|s| !s.alive)
    }

    /// The key of the leader's session lock while that session is open: a
    /// standby waits on it to learn of the leader's death at once.
    pub fn live_leader_session(&self) -> Option<i64> {
        match self.lease_session {
            Some(s) if s.alive && self.leader.is_some() => Some(s.key),
            _ => None,
        }
    }
}
