//! Deterministic simulation of rillflow: the production driver loops
//! (`rillflow_adapters::daemon::Driver`, and `ownership::OwnerDriver` with
//! `OwnedWorker`) on turmoil hosts, talking over a simulated network to a
//! model of the database, under seeded faults, with invariant checks after
//! every run (SIM-1, SIM-2).

pub mod archive_run;
pub mod archive_summary;
pub mod client;
pub mod client_faults;
pub mod contract_run;
pub mod db;
pub mod exclusive;
pub mod failover_times;
pub mod faults;
pub mod hosts;
pub mod invariants;
pub mod model;
pub mod ownership_plan;
pub mod ownership_run;
pub mod ownership_summary;
pub mod protocol;
pub mod trace;
pub mod world;

pub use faults::Scenario;
pub use world::{run, Outcome, Params};
