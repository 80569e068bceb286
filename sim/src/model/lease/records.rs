//! What the lease model records for the checks: every committed fenced
//! write and every grant, with the cluster's state at that moment, so the
//! checks judge the database's history rather than the nodes' claims.

use std::time::Duration;

/// A committed projection write, for the invariant checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    /// Database time of the commit.
    pub at: Duration,
    /// Writer.
    pub node: String,
    /// Epoch it wrote under.
    pub epoch: u64,
    /// The cluster's epoch at the commit.
    pub current_epoch: u64,
    /// Whether the current lease was unexpired at the commit.
    pub lease_valid: bool,
}

/// A grant, for the invariant checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// Database time of the grant.
    pub at: Duration,
    /// Grantee.
    pub node: String,
    /// Epoch granted.
    pub epoch: u64,
    /// Whether it was an automatic failover: the lease was taken from
    /// another node that had not released it (`last_failover_at`, LEASE-4).
    pub failover: bool,
    /// Whether it fulfilled a pending promotion of the grantee (the grant
    /// cleared `promote_node`): the operator's doing, not an automatic
    /// failover.
    pub promoted: bool,
}

/// An operator request as the database applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    /// Database time.
    pub at: Duration,
    /// What was asked.
    pub request: OperatorRequest,
    /// Whether the cluster row was updated.
    pub written: bool,
}

/// What an operator asked the database to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorRequest {
    /// A promotion.
    Promote {
        /// The node.
        node: String,
        /// `--force`.
        force: bool,
    },
    /// A demotion of the node it names (None: the holder of the lease;
    /// `demoted` says whom that was).
    Demote {
        /// The node named, if any.
        node: Option<String>,
        /// The node recorded.
        demoted: Option<String>,
    },
}
