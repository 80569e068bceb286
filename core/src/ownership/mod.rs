//! Dynamic partition ownership (issue 8): which worker of a projection
//! group should own which partitions. Pure rules; the adapters bind them to
//! per-partition fenced leases in Postgres.

pub mod fair_share;

pub use fair_share::{decide, quotas, Move};
