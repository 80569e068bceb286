//! The lease store contract against the model database: the same checks
//! `tests/lease_contract.rs` runs against Postgres (SIM-1).

use rillflow_sim::contract_run;

fn check(name: &str) {
    contract_run::run(name);
}

rillflow_adapters::lease_contract_tests!(check);
