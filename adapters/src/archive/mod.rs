//! Hot/cold archiving on PostgreSQL: settings, stream lifecycle, the mover,
//! monthly partitions, status and counters. Routing and read rules come
//! from `rillflow_core::archive`.

mod error;
mod lifecycle;
mod mover;
mod partitions;
mod settings;
mod stats;
mod status;

pub use error::ArchiveError;
pub use lifecycle::{MarkOutcome, ReactivateOutcome, StreamLifecycle};
pub use mover::{ArchiveMover, Candidate, MoveFilter, MoveLimits, MoveProgress};
/// The mover's batch statement and its planner settings, for the plan
/// tests (tests/large_logs.rs).
#[doc(hidden)]
pub use mover::{BATCH_PLANNER, LOCK_STREAMS};
pub use partitions::{PartitionInfo, PartitionOutcome, Partitions};
pub use settings::ArchiveSettings;
pub use stats::{ArchiveStats, TenantArchiveStats};
pub use status::{ArchiveStatus, Counting, COUNT_CAP};
