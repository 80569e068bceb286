//! The hot/cold lease's statements (`adapters/src/daemon/pg_lease_store.rs`),
//! its fenced writes, its lease sessions (sql/0017) and release notices.

use rillflow_core::lease::{ClusterTiming, NodeRole};
use serde::{Deserialize, Serialize};

use super::Caller;

/// A request of the lease domain; durations in microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseRequest {
    /// Join as a cold standby.
    Register {
        /// Caller.
        caller: Caller,
        /// Standbys wanted.
        min_cold_standbys: u32,
        /// Timing recorded on the cluster.
        timing: ClusterTiming,
    },
    /// Record role and epoch, read the cluster.
    Heartbeat {
        /// Caller.
        caller: Caller,
        /// Role reported.
        role: NodeRole,
        /// Epoch reported.
        epoch: u64,
    },
    /// Ask for the lease.
    TryAcquire {
        /// Caller.
        caller: Caller,
        /// Lease length.
        ttl_us: u64,
        /// Grace after expiry.
        grace_us: u64,
        /// The lease session the statement runs on (see `OpenSession`):
        /// a grant binds the lease to its lock. None: a plain connection,
        /// a lease judged by its ttl alone (`--session-leases off`).
        session: Option<u64>,
    },
    /// Extend the lease.
    Renew {
        /// Caller.
        caller: Caller,
        /// Epoch held.
        epoch: u64,
        /// Lease length.
        ttl_us: u64,
        /// The lease session the statement runs on: a lease bound to a
        /// lock is renewed only on the session that holds it.
        session: Option<u64>,
    },
    /// Give the lease up.
    Release {
        /// Caller.
        caller: Caller,
        /// Epoch held.
        epoch: u64,
    },
    /// Clean shutdown.
    MarkStopped {
        /// Caller.
        caller: Caller,
    },
    /// A projection write under the fence of `epoch`.
    FencedWrite {
        /// Caller.
        caller: Caller,
        /// Epoch written under.
        epoch: u64,
    },
    /// A fenced write whose client freezes inside its transaction, right
    /// after the fence check, for `freeze_us`: it holds the lock on the
    /// cluster row, and the database host cuts the client off the network
    /// for as long, as a frozen process would be.
    FrozenFencedWrite {
        /// Caller.
        caller: Caller,
        /// Epoch written under.
        epoch: u64,
        /// How long the client stays frozen.
        freeze_us: u64,
    },
    /// Open a lease session (sql/0017): the host takes an exclusive lock
    /// under a fresh key for it and answers `SessionOpened`. From then on
    /// the connection carries nothing; the session, and its lock, end when
    /// the connection ends, the database restarts, or the database ends the
    /// session. Statements name it to run "on" it: turmoil never resends a
    /// lost segment, so a connection that carried traffic through a
    /// partition would be dead for good, where TCP would resend and keep the
    /// session; a quiet connection survives partitions as TCP's does.
    OpenSession {
        /// The node it belongs to (for the fault that ends it).
        node: String,
    },
    /// Wait, up to the lock timeout, for no session to hold the lock `key`
    /// (`pg_advisory_lock_shared` under `lock_timeout`); answers `Waited`.
    WaitSessionEnd {
        /// The lock.
        key: i64,
    },
    /// Subscribe to release notices: after a `Done`, the connection
    /// carries one `Released` line per release, as LISTEN does.
    Listen,
    /// Read a cluster as the operator's tools do (`CLUSTER_VIEWS`); answers
    /// `View`, or `NoCluster`.
    ClusterView {
        /// Cluster name.
        cluster: String,
    },
    /// Record an operator's promotion (`REQUEST_PROMOTE`); answers
    /// `Requested`.
    RequestPromote {
        /// Cluster name.
        cluster: String,
        /// The node to promote.
        node: String,
        /// `--force`.
        force: bool,
    },
    /// Record an operator's demotion (`REQUEST_DEMOTE`) of `node`, or of
    /// the holder of the unexpired lease; answers `Requested`.
    RequestDemote {
        /// Cluster name.
        cluster: String,
        /// The node to demote; None: the holder.
        node: Option<String>,
    },
}
