//! The event log contract against the model database: the same checks
//! `tests/log_contract.rs` runs against Postgres.

use rillflow_sim::contracts::log;

fn check(name: &str) {
    log::run(name);
}

rillflow_adapters::log_contract_tests!(check);
