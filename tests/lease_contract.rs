//! The lease store contract (`rillflow_adapters::daemon::contract`) against
//! Postgres. The simulation runs the same checks against its model
//! database (`sim/tests/contract.rs`).

use rillflow_adapters::daemon::{contract, PgLeaseStore};
use rillflow_testkit::TestDb;

async fn check(name: &str) {
    let mut db = TestDb::migrated().await;
    let store = PgLeaseStore::new(db.pool().await);
    contract::run(name, &store, "contract").await;
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                check(stringify!($name)).await;
            }
        )*

        #[test]
        fn every_check_is_run() {
            let here: &[&str] = &[$(stringify!($name)),*];
            assert_eq!(here, contract::CHECKS);
        }
    };
}

contract_tests!(
    grants_follow_expiry_and_grace,
    renewal_extends_only_the_current_lease,
    release_frees_the_lease_at_once,
    the_fence_admits_only_the_current_lease,
    heartbeats_return_the_cluster,
    a_restart_replaces_the_old_incarnation,
);
