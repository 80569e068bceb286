//! Reading the log from a hot standby: events are read there, while
//! checkpoints, leases, read models and appends stay on the primary.
//!
//! Gap safety holds on a standby with its own horizon alone: its snapshots
//! list no in-progress transactions (`pg_current_snapshot()` shows an empty
//! xip list there), but their xmin is right, and `rf_read_horizon()` keeps
//! to it in recovery (sql/0016). Every transaction below a standby
//! snapshot's xmin has ended in that snapshot's view, so a read below it
//! never passes a transaction that may still commit events.

mod conflicts;
mod error;
mod lag;
mod lag_watch;
mod read_replica;

pub use conflicts::{is_recovery_conflict, retry_conflicts, AsSqlx, CONFLICT_RETRIES};
pub use error::ReplicaError;
pub use lag::{ReplicaLag, WalPosition};
pub use lag_watch::ReplicaWatch;
pub use read_replica::ReadReplica;
