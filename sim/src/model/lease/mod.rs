//! The hot/cold lease as `rf_clusters` and `rf_nodes` hold it, and the lease
//! sessions whose locks a lease may be bound to (sql/0017).

pub mod leases;
pub mod records;
pub mod sessions;
