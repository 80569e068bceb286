//! The projection runtime: read models kept exactly once from the event log.

mod batch_arrays;
mod batch_error;
mod batch_sql;
pub mod batches;
mod budget;
pub mod catalog;
mod declared_batch;
pub mod fence;
pub mod handler;
pub mod handler_roles;
pub(crate) mod hold;
pub mod metrics;
mod ownership_status;
pub mod processor;
pub mod runner;
pub mod sql_projection;
pub mod status;
pub mod versions;
pub mod wakeup;
pub mod worker;

pub use batch_error::BatchError;
pub use batch_sql::BatchOwner;
pub use batches::{Batches, PgBatches};
pub use catalog::{CatalogError, DeadLetter, ProjectionCatalog, Rebuild};
pub use fence::WriteFence;
pub use handler::{BatchFailure, HandlerError, Projection, ProjectionOptions};
pub use handler_roles::{HandlerRole, HandlerRoleError, HandlerRoles};
pub use metrics::RuntimeMetrics;
pub use processor::ProjectionProcessor;
pub use runner::{BatchOutcome, ProjectionRunner};
pub use sql_projection::SqlProjection;
pub use status::{OwnershipStatus, PartitionStatus, ProjectionStatus, WorkerOwnership};
pub use worker::{LeaseCheck, ProjectionWorker, WorkerExit, WorkerTiming};
