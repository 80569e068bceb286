//! The lease store contract (`rillflow_adapters::daemon::contract`) against
//! Postgres. The simulation runs the same checks against its model
//! database (`sim/tests/contract.rs`).

use rillflow_adapters::daemon::{contract, PgLeaseStore};
use rillflow_testkit::TestDb;

fn check(name: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let mut db = TestDb::migrated().await;
        let store = PgLeaseStore::new(db.pool().await);
        contract::run(name, &store, "contract").await;
    });
}

rillflow_adapters::lease_contract_tests!(check);
