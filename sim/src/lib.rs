//! Deterministic simulation of rillflow: the production driver loop
//! (`rillflow_adapters::daemon::Driver`) on turmoil hosts, talking over a
//! simulated network to a model of the database, under seeded faults, with
//! invariant checks after every run (SIM-1, SIM-2).

pub mod contract_run;
pub mod db_host;
pub mod faults;
pub mod invariants;
pub mod model_db;
pub mod model_log;
pub mod node_host;
pub mod protocol;
pub mod sim_batches;
pub mod sim_store;
pub mod trace;
pub mod world;
pub mod writer_host;

pub use faults::Scenario;
pub use world::{run, Outcome, Params};
