//! What an archive run exercised, for the report line: a seed that passed
//! without moving anything or conflicting proves little.

use std::fmt;

use rillflow_core::archive::{AppendTarget, Backend};

use crate::hosts::archive::ledger::{Fate, Intent};
use crate::model::log::history::{History, Step};

/// Counts from one archive run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArchiveSummary {
    /// The backend the run drew.
    pub backend: Option<Backend>,
    /// Appends committed.
    pub commits: usize,
    /// Of which routed straight to cold storage.
    pub cold_appends: usize,
    /// Conflicts reported.
    pub conflicts: usize,
    /// Keys replayed.
    pub replays: usize,
    /// Marks, reactivations and redirect switches that changed something.
    pub operations: usize,
    /// Events moved cold.
    pub moved: usize,
    /// Streams made cold by a move.
    pub made_cold: usize,
    /// Appends whose writer never learnt the outcome.
    pub unknown: usize,
    /// Reads checked by clients.
    pub reads: usize,
    /// Retries after lost replies.
    pub retries: usize,
}

impl ArchiveSummary {
    /// Counts `history` and the clients' `intents`.
    pub fn of<'a>(
        backend: Backend,
        history: &History,
        intents: impl IntoIterator<Item = &'a Intent>,
        (reads, retries): (usize, usize),
    ) -> Self {
        let mut s = ArchiveSummary {
            backend: Some(backend),
            reads,
            retries,
            ..ArchiveSummary::default()
        };
        for e in history.entries() {
            match &e.step {
                Step::Committed { target, .. } => {
                    s.commits += 1;
                    s.cold_appends += usize::from(*target != AppendTarget::Hot);
                }
                Step::Conflict { .. } => s.conflicts += 1,
                Step::Replayed { .. } => s.replays += 1,
                Step::Marked(_) | Step::Reactivated(_) | Step::Redirect(_) => s.operations += 1,
                Step::Moved { cursors, cold } | Step::Deleted { cursors, cold } => {
                    s.moved += cursors.len();
                    s.made_cold += cold.len();
                }
                Step::Copied(_) => {}
            }
        }
        s.unknown = intents
            .into_iter()
            .filter(|i| i.fate == Fate::Pending)
            .count();
        s
    }
}

impl fmt::Display for ArchiveSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = self.backend.map_or("?".to_owned(), |b| b.to_string());
        write!(
            f,
            "{backend}: {} commits ({} straight to cold), {} conflicts, {} replays, {} archive ops, {} events moved, {} streams made cold, {} reads, {} retries, {} unknown",
            self.commits,
            self.cold_appends,
            self.conflicts,
            self.replays,
            self.operations,
            self.moved,
            self.made_cold,
            self.reads,
            self.retries,
            self.unknown
        )
    }
}
