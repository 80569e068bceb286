//! The properties a run must keep, one file each (see docs/invariants.md).

pub mod liveness;
pub mod one_believer;
pub mod projections;
pub mod single_writer;

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
