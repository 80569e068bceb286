//! A projection's state as the database holds it, for the CLI, the health
//! endpoint and the metrics.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Lag is counted exactly up to this many events per tier; beyond, it is
/// estimated from positions (sql/0019), so a status or a scrape reads at
/// most this many index entries per checkpoint however far behind it is.
pub const EXACT_LAG_LIMIT: i64 = 10_000;

/// One partition's checkpoint and counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionStatus {
    /// Partition key (0 when unpartitioned).
    pub partition: i32,
    /// Checkpoint: transaction id of the last event passed.
    pub tx_id: i64,
    /// Checkpoint: position of the last event passed.
    pub position: i64,
    /// Events of this partition committed after the checkpoint.
    pub lag: i64,
    /// Whether `lag` was counted (false: estimated, being past
    /// [`EXACT_LAG_LIMIT`]).
    pub lag_exact: bool,
    /// Events applied since the projection started (or was rebuilt).
    pub processed_total: i64,
    /// Handler failures.
    pub errors_total: i64,
    /// Events sent to the dead-letter table.
    pub dead_lettered_total: i64,
    /// When the last event was applied.
    pub last_processed_at: Option<DateTime<Utc>>,
    /// The latest handler error.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Node that committed the last batch.
    pub owner_node: Option<String>,
    /// Lease epoch of the last batch (hot/cold mode).
    pub owner_epoch: Option<i64>,
    /// Position of an event waiting to be retried.
    pub retry_position: Option<i64>,
    /// How often it failed so far.
    pub retry_attempts: i32,
}

/// Dynamic partition ownership of one projection (all zero and empty for
/// static partitions).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct OwnershipStatus {
    /// True when workers own partitions through leases (`--partitions auto`).
    pub dynamic: bool,
    /// Live workers and how many partitions each holds now.
    pub workers: Vec<WorkerOwnership>,
    /// Partition leases ever granted: every move of a partition counts one.
    pub rebalances_total: i64,
    /// Partitions with no live lease now.
    pub unowned_partitions: i64,
    /// Time partitions spent without an owner, summed (database clock).
    pub unowned_seconds_total: f64,
}

/// One live worker of a projection under dynamic ownership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerOwnership {
    /// The worker's name.
    pub worker: String,
    /// Partitions it holds now.
    pub partitions_owned: i64,
}

/// One projection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectionStatus {
    /// Name.
    pub name: String,
    /// Paused by an operator or by the stop policy.
    pub paused: bool,
    /// Why the runtime stopped it, if it did.
    pub stopped_reason: Option<String>,
    /// Partition count its workers run with.
    pub total_partitions: i32,
    /// Rows in the dead-letter table (dead or requeued).
    pub dead_letters: i64,
    /// The read-model version readers see.
    pub active_version: i32,
    /// The version a side-by-side rebuild is filling, if any.
    pub building_version: Option<i32>,
    /// Per partition of the active version, by key.
    pub partitions: Vec<PartitionStatus>,
    /// Per partition of the version being built.
    pub building: Vec<PartitionStatus>,
    /// Who owns which partitions, under dynamic ownership.
    pub ownership: OwnershipStatus,
}

impl ProjectionStatus {
    /// Lag over all partitions.
    pub fn lag(&self) -> i64 {
        self.partitions.iter().map(|p| p.lag).sum()
    }

    /// Whether every partition's lag was counted rather than estimated.
    pub fn lag_exact(&self) -> bool {
        self.partitions.iter().all(|p| p.lag_exact)
    }

    /// Events applied over all partitions.
    pub fn processed_total(&self) -> i64 {
        self.partitions.iter().map(|p| p.processed_total).sum()
    }

    /// Handler failures over all partitions.
    pub fn errors_total(&self) -> i64 {
        self.partitions.iter().map(|p| p.errors_total).sum()
    }

    /// The earliest checkpoint position over partitions (what an operator
    /// compares with the head).
    pub fn min_position(&self) -> i64 {
        self.partitions
            .iter()
            .map(|p| p.position)
            .min()
            .unwrap_or(0)
    }

    /// The latest error over partitions.
    pub fn last_error(&self) -> Option<&str> {
        self.partitions
            .iter()
            .filter(|p| p.last_error.is_some())
            .max_by_key(|p| p.last_error_at)
            .and_then(|p| p.last_error.as_deref())
    }
}
