//! The lease store contract against the model database: the same checks
//! `tests/lease_contract.rs` runs against Postgres (SIM-1), the session
//! rules (sql/0017) included.

use rillflow_sim::contracts::lease;

fn check(name: &str) {
    lease::run(name);
}

fn check_sessions(name: &str) {
    lease::run_sessions(name);
}

rillflow_adapters::lease_contract_tests!(check);
rillflow_adapters::lease_session_contract_tests!(check_sessions);
