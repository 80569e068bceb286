//! Dynamic partition ownership on PostgreSQL: worker registration,
//! per-partition fenced leases, the driver that runs core's
//! [`rillflow_core::ownership::PartitionOwner`], the worker that runs the
//! partitions it owns, and live repartitioning. The fair-share and
//! carry-over rules are `rillflow_core::ownership`.

mod contract;
pub mod contract_harness;
mod driver;
mod notices;
mod owned_worker;
mod repartition;
mod store;
pub mod store_contract;
mod store_sql;

pub use contract::OwnershipStore;
pub use contract_harness::{Fence, OwnershipHarness, Resize};
pub use driver::{OwnedPartition, OwnerDriver, OwnerSignal, Ownership};
pub use notices::{announce_session_ends, forward_changes, ChangeNotices, PgChangeNotices};
pub use owned_worker::{OwnedWorker, PartitionBatches};
pub use repartition::{RepartitionError, RepartitionReport, Repartitioner};
pub use store::{OwnershipError, OwnershipView, PgOwnershipStore, WorkerSessions, CHANGES_CHANNEL};
