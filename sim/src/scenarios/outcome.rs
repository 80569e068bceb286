//! What a run found, whatever its scenario: the first violation, the trace
//! and its hash, and what the run exercised, for the report line.

use super::archive::summary::ArchiveSummary;
use super::hot_cold::failover_times::Takeover;
use super::operator::OperatorSummary;
use super::ownership::summary::OwnershipSummary;
use crate::harness::trace::TraceEvent;
use crate::invariants::Violation;

/// What a run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The first violated invariant, if any.
    pub violation: Option<Violation>,
    /// The whole trace.
    pub events: Vec<TraceEvent>,
    /// Its hash.
    pub hash: u64,
    /// Takeovers after the hot node crashed or its session ended.
    pub takeovers: Vec<Takeover>,
    /// Grants made.
    pub grants: usize,
    /// Committed writes.
    pub writes: usize,
    /// Writes the fence refused.
    pub refused_writes: usize,
    /// Events the writer committed (projections scenario).
    pub events_committed: usize,
    /// What the archive scenario exercised.
    pub archive: Option<ArchiveSummary>,
    /// What the ownership scenario exercised.
    pub ownership: Option<OwnershipSummary>,
    /// What the operator scenario exercised.
    pub operator: Option<OperatorSummary>,
}

impl Outcome {
    /// (time, node, epoch) of every grant the database traced, in order:
    /// what the pinned scenarios assert on.
    pub fn grants(&self) -> Vec<(std::time::Duration, String, u64)> {
        self.events
            .iter()
            .filter(|e| e.who == "db")
            .filter_map(|e| {
                let rest = e.what.strip_prefix("grant epoch ")?;
                let (epoch, node) = rest.split_once(" to ")?;
                Some((e.at, node.to_owned(), epoch.parse().ok()?))
            })
            .collect()
    }
}
