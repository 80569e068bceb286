//! The archive scenario's part of a hot/cold run: its client hosts
//! (writers, the operator, the mover), their faults, and its checks.

pub mod client_faults;
pub mod summary;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use super::params::Params;
use super::without::Without;
use crate::harness::trace::Trace;
use crate::hosts::archive::archivist;
use crate::hosts::archive::ledger::Ledger;
use crate::hosts::archive::mover::{self, MoverSpec};
use crate::hosts::archive::writer::{self, WriterSpec};
use crate::invariants::{conservation, routing, versions, Violation};
use crate::model::log::event_log::ModelLog;
use crate::scenarios::archive::client_faults::MOVER;

/// The application hosts.
const WRITER_HOSTS: [&str; 2] = ["w1", "w2"];
/// The operator's host.
const ARCHIVIST: &str = "archivist";

/// Every client host, for the fault schedule and the heal.
pub fn clients() -> Vec<String> {
    WRITER_HOSTS
        .iter()
        .chain(&[ARCHIVIST, MOVER])
        .map(|c| (*c).to_owned())
        .collect()
}

/// Adds the client hosts; they report to `ledger` and `trace`.
pub fn add_clients(sim: &mut turmoil::Sim<'_>, params: &Params, ledger: &Ledger, trace: &Trace) {
    for (i, name) in WRITER_HOSTS.iter().enumerate() {
        let spec = WriterSpec {
            name: (*name).to_owned(),
            seed: params.seed ^ ((i as u64 + 1) << 48),
            stop_at: params.heal_at,
            boots: Arc::new(AtomicU64::new(0)),
        };
        let (ledger, trace) = (ledger.clone(), trace.clone());
        sim.host(*name, move || {
            writer::run(spec.clone(), ledger.clone(), trace.clone())
        });
    }
    let (seed, stop_at) = (params.seed, params.heal_at);
    let (archivist_ledger, archivist_trace) = (ledger.clone(), trace.clone());
    sim.host(ARCHIVIST, move || {
        archivist::run(
            seed,
            stop_at,
            archivist_ledger.clone(),
            archivist_trace.clone(),
        )
    });
    let spec = MoverSpec {
        seed,
        stop_at,
        boots: Arc::new(AtomicU64::new(0)),
        two_step: params.lacks(Without::AtomicMove),
    };
    let trace = trace.clone();
    sim.host(MOVER, move || mover::run(spec.clone(), trace.clone()));
}

/// The earliest ARCH-1, ARCH-2 or ARCH-4 violation of a run that ended at
/// `end`.
pub fn check(params: &Params, log: &ModelLog, ledger: &Ledger, end: Duration) -> Option<Violation> {
    let intents = ledger.intents();
    [
        conservation::check(log, &intents, &ledger.violations(), end),
        versions::check(log.events(), &intents, end),
        routing::check(params.backend, log.events().history()),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|v| v.at)
}
