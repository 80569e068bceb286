//! The properties a run must keep, one file each (see docs/invariants.md).

pub mod conservation;
pub mod demotions;
pub mod exactly_once;
pub mod fair_ownership;
pub mod graceful_stop;
pub mod handoff;
pub mod liveness;
pub mod no_flapping;
pub mod one_believer;
pub mod projections;
pub mod promotions;
pub mod routing;
pub mod session_takeover;
pub mod single_owner;
pub mod single_writer;
pub mod unique_epochs;
pub mod versions;

use std::time::Duration;

/// A broken invariant: which, when (simulated time), and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's id (LEASE-1, ...).
    pub invariant: &'static str,
    /// Simulated time of the first offending event.
    pub at: Duration,
    /// What happened.
    pub detail: String,
}
