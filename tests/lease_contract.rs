//! The lease store contract (`rillflow_adapters::daemon::contract`, and
//! `contract_sessions` for leases bound to sessions) against Postgres. The
//! simulation runs the same checks against its model database
//! (`sim/tests/contract.rs`).

use async_trait::async_trait;
use rillflow_adapters::daemon::contract_sessions::{self, SessionHarness};
use rillflow_adapters::daemon::{contract, PgLeaseStore};
use rillflow_testkit::{session_locks, TestDb};
use sqlx::PgPool;

fn check(name: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let mut db = TestDb::migrated().await;
        let store = PgLeaseStore::new(db.pool().await);
        contract::run(name, &store, "contract").await;
    });
}

fn check_sessions(name: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let mut db = TestDb::migrated().await;
        let harness = PgHarness {
            pool: db.pool().await,
        };
        contract_sessions::run(name, &harness, "contract").await;
    });
}

/// Each node's store holds a lease session of its own, as each daemon does.
struct PgHarness {
    pool: PgPool,
}

#[async_trait]
impl SessionHarness for PgHarness {
    type Store = PgLeaseStore;

    fn session_store(&self, _node: &str) -> PgLeaseStore {
        PgLeaseStore::with_session_leases(self.pool.clone())
    }

    fn plain_store(&self) -> PgLeaseStore {
        PgLeaseStore::new(self.pool.clone())
    }

    /// `pg_terminate_backend` of the backend `pg_locks` shows holding the
    /// key, waiting for it to exit.
    async fn end_session(&self, key: i64) {
        session_locks::end_session(&self.pool, key).await;
    }
}

rillflow_adapters::lease_contract_tests!(check);
rillflow_adapters::lease_session_contract_tests!(check_sessions);
