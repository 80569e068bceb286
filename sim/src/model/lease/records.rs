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
}
