//! The scenarios a run can be, each built on the shared harness
//! (`crate::harness`): the hot/cold runs and their variants, the projection
//! and archive additions to them, and dynamic ownership. A scenario adds
//! its hosts, drives the harness's fault loop and checks its invariants.

pub mod archive;
pub mod hot_cold;
pub mod operator;
pub mod outcome;
pub mod ownership;
pub mod params;
pub mod projections;
pub mod scenario;
pub mod without;

pub use outcome::Outcome;
pub use params::Params;
pub use scenario::Scenario;
pub use without::Without;

use crate::harness::exclusive::exclusive;

/// Runs `params` to the end and checks every invariant of its scenario,
/// alone in the process (see `harness::exclusive`).
pub fn run(params: &Params) -> Outcome {
    let _alone = exclusive();
    if params.scenario == Scenario::Ownership {
        return ownership::run(params);
    }
    hot_cold::run(params)
}
