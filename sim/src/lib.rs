//! Deterministic simulation of rillflow: the production driver loops
//! (`rillflow_adapters::daemon::Driver`, and `ownership::OwnerDriver` with
//! `OwnedWorker`) on turmoil hosts, talking over a simulated network to a
//! model of the database, under seeded faults, with invariant checks after
//! every run (SIM-1, SIM-2).
//!
//! By layer: `scenarios` wire hosts, faults and checks on the shared
//! `harness`; `hosts` are the processes of a run, over the `client` stores,
//! which speak the `protocol` to the `db` host, which applies it to the
//! `model`; `invariants` check what the model and trace recorded. Beside
//! them, `contracts` hold the model to the adapters' contract suites.

pub mod client;
pub mod contracts;
pub mod db;
pub mod harness;
pub mod hosts;
pub mod invariants;
pub mod model;
pub mod protocol;
pub mod scenarios;

pub use scenarios::{run, Outcome, Params, Scenario, Without};
