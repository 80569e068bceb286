//! The contract suites of `rillflow_adapters` run against the model
//! database: each check as a client of a `db` host serving a fresh model,
//! over the simulated network, in simulated time, with the same assertions
//! the Postgres side runs (SIM-1). One module per suite: `lease` (leases
//! and lease sessions), `ownership` (partition ownership), `log` (the
//! event log and its archive).
//!
//! They sit beside `harness`, not in it: a contract check is not a run of
//! the simulation (no scenario, no faults, no invariants afterwards), only
//! the model's side of a suite whose other side is Postgres.

pub mod lease;
pub mod log;
pub mod ownership;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::db::{self, SessionTimeouts};
use crate::harness::exclusive::exclusive;
use crate::harness::trace::Trace;
use crate::model::db::ModelDb;

/// Runs `check` as a client of a `db` host serving a fresh model; a breach
/// panics, as it does against Postgres.
pub(crate) fn in_sim<F, Fut>(name: &str, check: F)
where
    F: FnOnce(Arc<Mutex<ModelDb>>) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let _alone = exclusive();
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(60))
        .tick_duration(Duration::from_millis(1))
        // A nearby database, as the Postgres side has: the checks time
        // statements against its clock, which turmoil's default latency
        // (up to 100 ms a message) would blur. Network faults are the
        // scenarios' business, not the contract's.
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(1))
        .rng_seed(1)
        .build();
    let db = Arc::new(Mutex::new(ModelDb::default()));
    let timeouts = SessionTimeouts {
        lock: Duration::from_millis(500),
        idle_in_transaction: Duration::from_secs(1),
    };
    let served = db.clone();
    sim.host("db", move || {
        db::serve(served.clone(), Trace::default(), timeouts)
    });
    sim.client("tester", async move {
        check(db).await;
        Ok(())
    });
    sim.run()
        .unwrap_or_else(|e| panic!("contract check {name}: {e}"));
}
