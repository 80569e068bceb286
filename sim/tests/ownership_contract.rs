//! The ownership contract against the model database: the same checks
//! `tests/ownership_contract.rs` runs against Postgres.

use rillflow_sim::contracts::ownership;

fn check(name: &str) {
    ownership::run(name);
}

rillflow_adapters::ownership_contract_tests!(check);
