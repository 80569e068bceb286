//! What an ownership run exercised, for the report line: a seed that passed
//! without moving a partition, repartitioning or fencing a batch off
//! proves little.

use std::fmt;

use crate::model::ownership::requests::ModelOwnership;

/// Counts from one ownership run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnershipSummary {
    /// Worker hosts.
    pub workers: usize,
    /// Partition claims granted.
    pub claims: usize,
    /// Batches committed.
    pub batches: usize,
    /// Events applied.
    pub applied: usize,
    /// Events read again after a repartition and skipped as carried.
    pub carried: usize,
    /// Batches the fence refused.
    pub fenced: usize,
    /// Repartitions, from and to.
    pub resizes: Vec<(u32, u32)>,
    /// Events committed by the writer.
    pub committed: usize,
}

impl OwnershipSummary {
    /// Counts `model` after a run with `workers` workers and `committed`
    /// events.
    pub fn of(model: &ModelOwnership, workers: usize, committed: usize) -> Self {
        let p = &model.projection;
        OwnershipSummary {
            workers,
            claims: model.claims,
            batches: p.commits.len(),
            applied: p.applied.len(),
            carried: p.commits.iter().map(|c| c.read - c.applied).sum(),
            fenced: model.refused_batches,
            resizes: p.resizes.iter().map(|r| (r.from, r.to)).collect(),
            committed,
        }
    }
}

impl fmt::Display for OwnershipSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resizes: Vec<String> = self
            .resizes
            .iter()
            .map(|(from, to)| format!("{from}->{to}"))
            .collect();
        write!(
            f,
            "{} workers: {} claims, {} batches, {} of {} events applied, {} skipped as carried, {} batches fenced off, repartitions [{}]",
            self.workers,
            self.claims,
            self.batches,
            self.applied,
            self.committed,
            self.carried,
            self.fenced,
            resizes.join(" ")
        )
    }
}
