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
    /// Subscribe to ownership change notices (`rf_partition_changes`): after
    /// a `Done`, the connection carries one `OwnershipChanged` line per
    /// join, leave, release or repartition.
    ListenChanges,
    /// Start an append of `events` events to `stream` (the writer host).
    AppendBegin {
        /// Stream number.
        stream: u32,
        /// How many events.
        events: u32,
    },
    /// Open a transaction that writes other tables first (it takes its id
    /// now, unregistered); ended by `AppendEnd`, appended to by
    /// `AppendInWork`. Replies `AppendStarted`.
    WorkBegin,
    /// Append inside a `WorkBegin` transaction: `Done`, `Busy` (the head is
    /// held), or `Failed` when readers have passed it (RF007).
    AppendInWork {
        /// Its transaction id.
        xid: u64,
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
    /// An append (`rf_append`) in a transaction bound to this connection:
    /// it stays open, holding the stream's head, until `AppendEnd` on the
    /// same connection, and is rolled back if the connection ends or sits
    /// idle past the idle-in-transaction timeout, as a session's would.
    Append {
        /// Stream number.
        stream: u32,
        /// Expected version as the CLI spells it (`any`, `no-stream`,
        /// `exists` or a number).
        expected: String,
        /// Idempotency key.
        idem_key: Option<u64>,
        /// One payload per event.
        payloads: Vec<u64>,
    },
    /// Read a stream, by version.
    ReadStream {
        /// Stream number.
        stream: u32,
        /// Include archived data (every tier).
        include_archived: bool,
    },
    /// `archive mark`.
    Mark {
        /// Stream number.
        stream: u32,
    },
    /// `archive reactivate`.
    Reactivate {
        /// Stream number.
        stream: u32,
    },
    /// `archive redirect --enable`.
    SetRedirect {
        /// On or off.
        on: bool,
    },
    /// Start a mover's pass: its cutoff and position bound.
    MoveStart {
        /// Only events older than this.
        older_than_ms: u64,
    },
    /// One batch of a mover's pass, in one transaction.
    MoveBatch {
        /// Lowest stream to consider.
        from: Option<u32>,
        /// Only events created before this database time.
        before_us: u64,
        /// Only events at or below this position.
        upto: u64,
        /// Most events.
        limit: u32,
    },
    /// The copy half of a move batch done as two transactions (only with
    /// `--without atomic-move`).
    CopyBatch {
        /// Lowest stream to consider.
        from: Option<u32>,
        /// Only events created before this database time.
        before_us: u64,
        /// Only events at or below this position.
        upto: u64,
        /// Most events.
        limit: u32,
    },
    /// The delete half: the hot rows the copy wrote cold.
    DeleteCopied {
        /// Their cursors (transaction id, position).
        cursors: Vec<(u64, u64)>,
    },
    /// Dynamic ownership (`OwnershipStore::sync`): record `worker` as
    /// alive, then read the partition count, the live workers and the
    /// unexpired leases.
    OwnerSync {
        /// Projection.
        projection: String,
        /// Worker.
        worker: String,
        /// How long a heartbeat counts as live.
        ttl_us: u64,
    },
    /// Take a partition nobody holds (`OwnershipStore::claim`).
    OwnerClaim {
        /// Projection.
        projection: String,
        /// Partition.
        partition: u32,
        /// Worker.
        worker: String,
        /// Lease length.
        ttl_us: u64,
    },
    /// Extend a partition lease (`OwnershipStore::renew`).
    OwnerRenew {
        /// Projection.
        projection: String,
        /// Partition.
        partition: u32,
        /// Epoch held.
        epoch: u64,
        /// Lease length.
        ttl_us: u64,
    },
    /// Give a partition lease up (`OwnershipStore::release`).
    OwnerRelease {
        /// Projection.
        projection: String,
        /// Partition.
        partition: u32,
        /// Epoch held.
        epoch: u64,
    },
    /// Remove a worker's registration (`OwnershipStore::leave`).
    OwnerLeave {
        /// Projection.
        projection: String,
        /// Worker.
        worker: String,
    },
    /// Open a batch of one partition in a transaction bound to this
    /// connection, as `ProjectionRunner::open` does through
    /// `WriteFence::Partition`: the fence (the lease row read `FOR SHARE`,
    /// held until the transaction ends), the checkpoint row locked, the
    /// partition count compared, the events read. `PartitionCommit` on the
    /// same connection applies them; the transaction rolls back if the
    /// connection ends or sits idle past the idle-in-transaction timeout.
    PartitionBegin {
        /// Projection.
        projection: String,
        /// Worker (recorded with the commit, for the checks).
        worker: String,
        /// Partition key.
        partition: u32,
        /// The partition count the runner was made for.
        total: u32,
        /// Epoch the partition is held under.
        epoch: u64,
        /// Most events to read.
        limit: u32,
    },
    /// Apply what `PartitionBegin` read, move the checkpoint, prune the
    /// carry, commit.
    PartitionCommit {
        /// The batch's transaction.
        txn: u64,
    },
    /// `projections repartition`: one transaction that waits up to
    /// `wait_us` for running batches (`Repartitioner`).
    Repartition {
        /// Projection.
        projection: String,
        /// The new partition count.
        to: u32,
        /// How long to wait for running batches.
        wait_us: u64,
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
