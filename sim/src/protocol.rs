//! What the nodes' store says to the simulated database host: one JSON line
//! per request and one per reply, over turmoil's TCP.

use rillflow_core::lease::{ClusterTiming, ClusterView, NodeRole};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// Cluster name.
    pub cluster: String,
    /// Node name.
    pub node: String,
    /// The daemon id of this incarnation.
    pub daemon_id: Uuid,
}

/// A request; durations in microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
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
    },
    /// Extend the lease.
    Renew {
        /// Caller.
        caller: Caller,
        /// Epoch held.
        epoch: u64,
        /// Lease length.
        ttl_us: u64,
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
    /// Subscribe to release notices: after a `Done`, the connection
    /// carries one `Released` line per release, as LISTEN does.
    Listen,
    /// Start an append of `events` events to `stream` (the writer host).
    AppendBegin {
        /// Stream number.
        stream: u32,
        /// How many events.
        events: u32,
    },
    /// Commit or roll back an append started by `AppendBegin`.
    AppendEnd {
        /// Its transaction id.
        xid: u64,
        /// Commit (true) or roll back.
        commit: bool,
    },
    /// One projection batch, fenced by `epoch` when given.
    ProjectBatch {
        /// Caller.
        caller: Caller,
        /// Epoch written under (hot/cold mode).
        epoch: Option<u64>,
        /// Most events to apply.
        limit: u32,
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
}

/// A reply; durations in microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Done.
    Done,
    /// The cluster as the database sees it.
    View(ClusterView),
    /// Lease granted.
    Granted {
        /// New epoch.
        epoch: u64,
        /// Validity from the database's execution.
        valid_us: u64,
    },
    /// Lease refused.
    Denied,
    /// Lease extended.
    Renewed {
        /// Validity from the database's execution.
        valid_us: u64,
    },
    /// The lease is gone.
    Lost,
    /// Another daemon owns the node's row.
    Replaced {
        /// The owner.
        by: Uuid,
    },
    /// The write was refused by the fence.
    Fenced,
    /// The request could not be carried out.
    Failed(String),
    /// An append started.
    AppendStarted {
        /// Its transaction id.
        xid: u64,
    },
    /// Another append to the stream is open; try again.
    Busy,
    /// A projection batch committed.
    Batch {
        /// Events it applied (0: nothing to do).
        applied: u32,
    },
    /// A leader of `cluster` released its lease (on a `Listen` connection).
    Released {
        /// The cluster.
        cluster: String,
    },
}
