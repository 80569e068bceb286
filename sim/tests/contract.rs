//! The lease store contract against the model database: the same checks
//! `tests/lease_contract.rs` runs against Postgres (SIM-1), the session
//! rules (sql/0017) included.

use rillflow_sim::harness::contract_run;

fn check(name: &str) {
    contract_run::run(name);
}

fn check_sessions(name: &str) {
    contract_run::run_sessions(name);
}

rillflow_adapters::lease_contract_tests!(check);
rillflow_adapters::lease_session_contract_tests!(check_sessions);
