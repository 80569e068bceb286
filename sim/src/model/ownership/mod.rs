//! Dynamic partition ownership as the database holds it: worker
//! registrations and per-partition leases, the partitioned projection with
//! its checkpoints, carry and open batches, and what it did, for the checks.

pub mod history;
pub mod partition_leases;
pub mod partition_read;
pub mod partitioned_projection;
pub mod requests;
