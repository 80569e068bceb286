//! Deterministic simulation of rillflow: the production driver loops
//! (`rillflow_adapters::daemon::Driver`, and `ownership::OwnerDriver` with
//! `OwnedWorker`) on turmoil hosts, talking over a simulated network to a
//! model of the database, under seeded faults, with invariant checks after
//! every run (SIM-1, SIM-2).

pub mod append_attempt;
pub mod archive_run;
pub mod archive_summary;
pub mod archive_writer;
pub mod archivist_host;
pub mod change_notices;
pub mod client_faults;
pub mod contract_run;
pub mod db;
pub mod db_conn;
pub mod exclusive;
pub mod failover_times;
pub mod faults;
pub mod invariants;
pub mod ledger;
pub mod model;
pub mod mover_host;
pub mod node_host;
pub mod operator_host;
pub mod ownership_plan;
pub mod ownership_run;
pub mod ownership_summary;
pub mod protocol;
pub mod sim_batches;
pub mod sim_lease_session;
pub mod sim_ownership_store;
pub mod sim_partition_batches;
pub mod sim_session_watch;
pub mod sim_store;
pub mod trace;
pub mod worker_host;
pub mod world;
pub mod writer_host;

pub use faults::Scenario;
pub use world::{run, Outcome, Params};
