//! The turmoil simulation every run uses, and the `db` host in it: the
//! same tick, latencies and epoch for every scenario, so a scenario differs
//! only in its hosts and faults.

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use rillflow_adapters::daemon::daemon_pool_config;
use rillflow_core::lease::LeaseConfig;

use crate::db::{self, SessionTimeouts};
use crate::harness::trace::Trace;
use crate::model::db::ModelDb;

/// The simulation's step.
pub const TICK: Duration = Duration::from_millis(10);
/// The longest a message takes on the network.
pub const MAX_LATENCY: Duration = Duration::from_millis(20);

/// The simulation of a run of `seed` ending at `end_at`: 10 ms ticks,
/// messages taking 1–20 ms, its randomness from the seed.
pub fn simulation<'a>(seed: u64, end_at: Duration) -> turmoil::Sim<'a> {
    turmoil::Builder::new()
        .simulation_duration(end_at + Duration::from_secs(60))
        .tick_duration(TICK)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(MAX_LATENCY)
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
        .build()
}

/// Adds the `db` host serving `db`, with the session timeouts the daemon
/// derives from `config`; without `idle_timeout` the database never ends
/// an idle transaction (to show the checks catch what it prevents).
pub fn serve_db(
    sim: &mut turmoil::Sim<'_>,
    config: &LeaseConfig,
    idle_timeout: bool,
    db: &Arc<Mutex<ModelDb>>,
    trace: &Trace,
) {
    let (db, trace) = (db.clone(), trace.clone());
    let pool = daemon_pool_config(config);
    let idle = if idle_timeout {
        pool.idle_in_transaction_timeout
    } else {
        Duration::from_secs(86_400)
    };
    let timeouts = SessionTimeouts {
        lock: pool.lock_timeout,
        idle_in_transaction: idle,
    };
    sim.host("db", move || db::serve(db.clone(), trace.clone(), timeouts));
}
