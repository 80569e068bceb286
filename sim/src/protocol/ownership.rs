//! Dynamic partition ownership: the `OwnershipStore` statements, partition
//! batches, repartitions and change notices.

use serde::{Deserialize, Serialize};

/// A request of the ownership domain; durations in microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OwnershipRequest {
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
    /// Subscribe to ownership change notices (`rf_partition_changes`): after
    /// a `Done`, the connection carries one `OwnershipChanged` line per
    /// join, leave, release or repartition.
    ListenChanges,
}
