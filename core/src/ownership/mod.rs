//! Dynamic partition ownership (issue 8): which worker of a projection
//! group should own which partitions. Pure rules; the adapters bind them to
//! per-partition fenced leases in Postgres.

pub mod carry;
pub mod fair_share;
pub mod owner;
pub mod watch_ring;

pub use carry::{carry_over, Carry, Layer, PartitionState};
pub use fair_share::{decide, quotas, Move};
pub use owner::{Action, Holder, Input, OwnerTiming, OwnerTimingError, PartitionOwner};
pub use watch_ring::{session_to_watch, watcher_of};
