//! The `projections` scenario's part of a hot/cold run: a writer host
//! appending with transactions held open and rolled back, so commits land
//! out of position order; and the projection's checks (PROJ-1 to PROJ-3),
//! which the `archive` scenario, whose nodes project too, shares.

use std::time::Duration;

use super::params::Params;
use crate::harness::trace::Trace;
use crate::hosts::writer;
use crate::invariants::{projections, Violation};
use crate::model::log::event_log::ModelLog;

/// Adds the writer host; it stops appending at the heal.
pub fn add_writer(sim: &mut turmoil::Sim<'_>, params: &Params, trace: &Trace) {
    let (seed, stop_at, trace) = (params.seed, params.heal_at, trace.clone());
    sim.host("writer", move || writer::run(seed, stop_at, trace.clone()));
}

/// The first projection invariant the run broke, if its nodes project.
pub fn check(params: &Params, log: &ModelLog, end: Duration) -> Option<Violation> {
    params
        .scenario
        .projects()
        .then(|| projections::check(log, end))
        .flatten()
}
