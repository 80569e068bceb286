//! Runs a lease store contract check against the model database, over the
//! simulated network, in simulated time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rillflow_adapters::daemon::contract;

use crate::db_host::{self, SessionTimeouts};
use crate::model_db::ModelDb;
use crate::sim_store::SimLeaseStore;
use crate::trace::Trace;

/// Runs the contract check `name`; a breach panics, as it does against
/// Postgres.
pub fn run(name: &str) {
    let check = name.to_owned();
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(60))
        .tick_duration(Duration::from_millis(1))
        .rng_seed(1)
        .build();
    let db = Arc::new(Mutex::new(ModelDb::default()));
    let timeouts = SessionTimeouts {
        lock: Duration::from_millis(500),
        idle_in_transaction: Duration::from_secs(1),
    };
    sim.host("db", move || {
        db_host::serve(db.clone(), Trace::default(), timeouts)
    });
    sim.client("tester", async move {
        contract::run(&check, &SimLeaseStore::default(), "contract").await;
        Ok(())
    });
    sim.run()
        .unwrap_or_else(|e| panic!("contract check {name}: {e}"));
}
