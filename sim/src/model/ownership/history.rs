//! What the partitioned projection did, as the database saw it, for the
//! PROJ-1 and PROJ-4 checks: every event application, every batch commit
//! with the lease row's state at that moment, every repartition. Written in
//! the same atomic step as the change it records.

use std::time::Duration;

use crate::model::log::tiers::Cursor;

/// One event applied to the read model by a committed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Database time of the commit.
    pub at: Duration,
    /// The worker whose batch applied it.
    pub worker: String,
    /// The batch's partition key and count.
    pub partition: (u32, u32),
    /// The epoch the batch ran under.
    pub epoch: u64,
    /// The event.
    pub cursor: Cursor,
    /// Its stream.
    pub stream: u32,
    /// Its version in the stream.
    pub version: u64,
}

/// One committed partition batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCommit {
    /// Database time its transaction began (the fence check).
    pub begun_at: Duration,
    /// Database time it committed.
    pub at: Duration,
    /// The worker.
    pub worker: String,
    /// Partition key.
    pub partition: u32,
    /// The partition count the worker's runner was made for.
    pub total: u32,
    /// The epoch it ran under.
    pub epoch: u64,
    /// The lease row at the commit: owner and epoch (None: never claimed).
    pub lease: Option<(Option<String>, u64)>,
    /// The projection's partition count at the commit.
    pub recorded_total: u32,
    /// Events read.
    pub read: usize,
    /// Events applied (the rest were carried: applied under an earlier
    /// partitioning).
    pub applied: usize,
}

/// One repartition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resize {
    /// Database time.
    pub at: Duration,
    /// The count before.
    pub from: u32,
    /// The count after.
    pub to: u32,
    /// Where every new partition starts.
    pub start: Cursor,
    /// Layers the new partitions carry.
    pub layers: usize,
    /// Leases it freed.
    pub leases_freed: usize,
}
