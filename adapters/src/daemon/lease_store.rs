//! What the lease state machine needs from a database.
//!
//! Postgres implements this in `pg_lease_store.rs`; the simulation implements
//! it against its model of a database host. Every time judgement happens on
//! the database side (LEASE-2): implementations compute expiry, ages and
//! validity with the database clock and report durations, never timestamps.

use std::time::Duration;

use async_trait::async_trait;
use rillflow_core::lease::{AcquireOutcome, ClusterTiming, ClusterView, NodeRole, RenewOutcome};
use uuid::Uuid;

/// Who a daemon is within its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// Cluster name (bound as a value, never spliced into SQL).
    pub cluster: String,
    /// Node name, unique within the cluster; a restart with the same name
    /// reuses the row (LEASE-5).
    pub node: String,
    /// Stable id of this daemon; `--daemon-id` reuses a row across renames.
    pub daemon_id: Uuid,
}

/// Failures of lease operations.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The database could not be reached or the statement failed; the
    /// request's outcome is unknown.
    #[error("lease store unavailable: {0}")]
    Unavailable(String),
    /// The statement timed out (statement or lock timeout).
    #[error("lease statement timed out: {0}")]
    Timeout(String),
    /// Another live daemon now owns this node's row (same name or id).
    #[error("node {node} of cluster {cluster} was taken over by daemon {by}")]
    Replaced {
        /// Cluster.
        cluster: String,
        /// Node name.
        node: String,
        /// The daemon id that owns the row now.
        by: Uuid,
    },
    /// The cluster or node name is unusable.
    #[error("invalid name: {0}")]
    InvalidName(String),
}

/// Lease and membership operations, each one statement judged by the
/// database clock.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Creates or reclaims this node's row as a cold standby (a restart never
    /// fails on its own leftover row), creating the cluster row if needed and
    /// recording the standbys wanted and the timing the node runs with.
    async fn register(
        &self,
        node: &NodeIdentity,
        min_cold_standbys: u32,
        timing: &ClusterTiming,
    ) -> Result<(), LeaseError>;

    /// Records a heartbeat with the node's current role and epoch and returns
    /// the whole cluster as the database sees it.
    async fn heartbeat(
        &self,
        node: &NodeIdentity,
        role: NodeRole,
        epoch: u64,
    ) -> Result<ClusterView, LeaseError>;

    /// Grants the lease to `node` with a new, larger epoch if nobody holds a
    /// lease that is valid or within `grace` of its expiry (a lease this node
    /// itself holds is re-granted under a new epoch).
    async fn try_acquire(
        &self,
        node: &NodeIdentity,
        ttl: Duration,
        grace: Duration,
    ) -> Result<AcquireOutcome, LeaseError>;

    /// Extends the lease of `epoch` if this node still holds it and it has
    /// not expired.
    async fn renew(
        &self,
        node: &NodeIdentity,
        epoch: u64,
        ttl: Duration,
    ) -> Result<RenewOutcome, LeaseError>;

    /// Gives the lease of `epoch` up at once and wakes the standbys; a no-op
    /// when the lease has moved on.
    async fn release(&self, node: &NodeIdentity, epoch: u64) -> Result<(), LeaseError>;

    /// Marks the node stopped (clean shutdown) so it no longer counts as a
    /// standby.
    async fn mark_stopped(&self, node: &NodeIdentity) -> Result<(), LeaseError>;
}

/// The write path every projection write takes: one transaction that
/// commits only under the current, unexpired lease (LEASE-1).
#[async_trait]
pub trait FencedWrites: Send + Sync {
    /// Commits the node's write-path probe under the fence of `epoch`.
    /// Ok(false) when the fence refused it: the lease has moved on.
    async fn fenced_write(&self, node: &NodeIdentity, epoch: u64) -> Result<bool, LeaseError>;
}
