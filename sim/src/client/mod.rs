//! The client side of the simulated database: the production traits
//! (`LeaseStore`, `LeaseSession`, `SessionWatch`, `Batches`,
//! `PartitionBatches`, `OwnershipStore`, `ChangeNotices`) implemented as
//! requests to the `db` host over turmoil's network, so the production
//! loops run unchanged and meet partitions and lost replies as a real
//! client would. Together, because they share the connection and the wire
//! format, and differ only in which statements they send.

pub mod change_notices;
pub mod db_conn;
pub mod sim_batches;
pub mod sim_lease_session;
pub mod sim_ownership_store;
pub mod sim_partition_batches;
pub mod sim_session_watch;
pub mod sim_store;
