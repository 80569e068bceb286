//! The lease store contract (`rillflow_adapters::daemon::contract`,
//! `contract_sessions`) against the model database.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rillflow_adapters::daemon::contract;
use rillflow_adapters::daemon::contract_sessions::{self, SessionHarness};

use crate::client::sim_store::SimLeaseStore;
use crate::contracts::in_sim;
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
