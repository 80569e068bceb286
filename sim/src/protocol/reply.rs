//! The database host's answers, shared by every domain: a lease grant, an
//! append's versions, a batch's count, or the generic `Done`, `Busy` and
//! `Failed`.

use rillflow_core::lease::ClusterView;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    /// An append is open (on this connection).
    Appended {
        /// Its transaction id.
        xid: u64,
        /// First version it writes.
        first: u64,
        /// Last version it writes.
        last: u64,
    },
    /// The idempotency key was used before: the first result, nothing
    /// written.
    Replayed {
        /// First version.
        first: u64,
        /// Last version.
        last: u64,
    },
    /// Wrong expected version.
    Conflict {
        /// The head's version.
        actual: u64,
    },
    /// An archive operation ran; `changed` is false when there was nothing
    /// to do.
    Changed {
        /// Whether anything changed.
        changed: bool,
    },
    /// The stream does not exist.
    NoStream,
    /// Where a mover's pass starts.
    MovePlan {
        /// Its cutoff, database time.
        before_us: u64,
        /// The last position given out.
        upto: u64,
    },
    /// A move batch (or its delete half) committed.
    Moved {
        /// Streams whose heads it locked (none: the pass is over).
        locked: Vec<u32>,
        /// Events moved.
        events: u32,
        /// Stream of the last event moved.
        last_stream: Option<u32>,
        /// Streams whose retention became cold.
        cold: u32,
    },
    /// The copy half of a two-step move committed.
    Copied {
        /// Streams whose heads it locked.
        locked: Vec<u32>,
        /// The rows copied.
        cursors: Vec<(u64, u64)>,
        /// Stream of the last row copied.
        last_stream: Option<u32>,
    },
    /// A stream read.
    Stream {
        /// Its events, by version.
        events: Vec<StreamRow>,
    },
    /// A read of the whole log.
    Feed {
        /// Its events, in (xid, position) order.
        events: Vec<FeedRow>,
    },
    /// What a worker of a projection sees (`OwnershipView`).
    OwnershipView {
        /// The partition count (0: not registered).
        partitions: u32,
        /// Live workers, by name.
        workers: Vec<String>,
        /// (partition, worker, epoch) of every unexpired lease.
        holders: Vec<(u32, String, u64)>,
    },
    /// A claim's answer: the new epoch, or None when the lease is held.
    Claimed {
        /// The epoch granted.
        epoch: Option<u64>,
    },
    /// A renewal's answer.
    Held {
        /// False when the lease is not held under that epoch any more.
        held: bool,
    },
    /// A partition batch is open on this connection.
    BatchOpened {
        /// Its transaction.
        txn: u64,
        /// Events read (some may be skipped as carried).
        read: u32,
    },
    /// Nothing to read below the horizon; no transaction stays open.
    BatchIdle,
    /// As `BatchIdle`, but committed events wait above the horizon.
    BatchHeldBack,
    /// The projection's partition count is not the runner's.
    CountChanged {
        /// The count recorded now.
        recorded: u32,
    },
    /// The projection has no checkpoint row for this partition.
    Unregistered,
    /// A repartition ran.
    Resized {
        /// The count before.
        from: u32,
        /// The count now.
        to: u32,
        /// False when the count was already `to`.
        changed: bool,
    },
    /// A worker of `projection` joined or left, a partition was released, or
    /// the projection was repartitioned (on a `ListenChanges` connection).
    OwnershipChanged {
        /// The projection.
        projection: String,
    },
    /// A lease session is open on this connection.
    SessionOpened {
        /// The session, for statements to name.
        id: u64,
        /// The key of the lock it holds.
        key: i64,
    },
    /// The statement named a lease session that has ended: on Postgres it
    /// would have failed with its connection.
    SessionGone,
    /// The end of a wait on a session lock.
    Waited {
        /// True when no session holds the lock any more; false when it was
        /// still held at the lock timeout.
        ended: bool,
    },
    /// A leader of `cluster` released its lease (on a `Listen` connection).
    Released {
        /// The cluster.
        cluster: String,
    },
    /// The cluster asked for does not exist.
    NoCluster,
    /// An operator request's row (`REQUEST_PROMOTE`, `REQUEST_DEMOTE`).
    Requested {
        /// Whether the cluster row was updated.
        written: bool,
        /// Whether the cluster exists.
        cluster_exists: bool,
    },
}

/// One event of a stream read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRow {
    /// Version.
    pub version: u64,
    /// What the writer sent.
    pub payload: u64,
    /// Read from cold storage.
    pub cold: bool,
}

/// One event of a read of the whole log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRow {
    /// Its place in the log: (xid, position).
    pub cursor: (u64, u64),
    /// Stream.
    pub stream: u32,
    /// Version.
    pub version: u64,
    /// What the writer sent.
    pub payload: u64,
    /// Read from cold storage.
    pub cold: bool,
}
