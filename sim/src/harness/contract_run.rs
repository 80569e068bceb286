//! Runs a lease store contract check against the model database, over the
//! simulated network, in simulated time.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rillflow_adapters::daemon::contract;
use rillflow_adapters::daemon::contract_sessions::{self, SessionHarness};

use crate::client::sim_store::SimLeaseStore;
use crate::db::{self, SessionTimeouts};
use crate::harness::exclusive::exclusive;
use crate::harness::trace::Trace;
use crate::model::db::ModelDb;

/// Runs the contract check `name`; a breach panics, as it does against
/// Postgres.
pub fn run(name: &str) {
    let check = name.to_owned();
    in_sim(name, move |_| async move {
        contract::run(&check, &SimLeaseStore::default(), "contract").await;
    });
}

/// Runs the session contract check `name` (see `contract_sessions`).
pub fn run_sessions(name: &str) {
    let check = name.to_owned();
    in_sim(name, move |db| async move {
        contract_sessions::run(&check, &ModelHarness { db }, "contract").await;
    });
}

/// The model database's side of the session checks: stores with and
/// without lease sessions, and the database ending a session.
struct ModelHarness {
    db: Arc<Mutex<ModelDb>>,
}

#[async_trait]
impl SessionHarness for ModelHarness {
    type Store = SimLeaseStore;

    fn session_store(&self, node: &str) -> SimLeaseStore {
        SimLeaseStore::default().with_session_leases(node)
    }

    fn plain_store(&self) -> SimLeaseStore {
        SimLeaseStore::default()
    }

    async fn end_session(&self, key: i64) {
        let ended = self.db.lock().expect("db lock").sessions.end_key(key);
        assert!(ended, "a session holds the lease lock {key:#x}");
    }
}

/// Runs `check` as a client of a `db` host serving a fresh model.
fn in_sim<F, Fut>(name: &str, check: F)
where
    F: FnOnce(Arc<Mutex<ModelDb>>) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let _alone = exclusive();
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
