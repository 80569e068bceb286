//! The lease store contract against the model database: the same checks
//! `tests/lease_contract.rs` runs against Postgres (SIM-1).

use rillflow_adapters::daemon::contract;
use rillflow_sim::contract_run;

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                contract_run::run(stringify!($name));
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
