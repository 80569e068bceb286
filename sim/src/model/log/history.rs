//! What the event store decided, step by step, in the order it decided it:
//! the record the archive checks replay against a reference of their own
//! (the model's internal state is what they check, so they do not read it).

use std::time::Duration;

use rillflow_core::archive::AppendTarget;
use rillflow_core::ExpectedVersion;

use crate::model::log::tiers::Cursor;

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An append committed versions `first..=last` of `stream`.
    Committed {
        /// Stream.
        stream: u32,
        /// First version written.
        first: u64,
        /// Last version written.
        last: u64,
        /// Its idempotency key.
        key: Option<u64>,
        /// Where its rows went, decided when they were inserted.
        target: AppendTarget,
        /// Its rows, in version order.
        cursors: Vec<Cursor>,
    },
    /// An append was refused: the head was at `actual`.
    Conflict {
        /// Stream.
        stream: u32,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The head's version.
        actual: u64,
    },
    /// An append's key had been used: the first result was returned and
    /// nothing written.
    Replayed {
        /// Stream.
        stream: u32,
        /// The key.
        key: u64,
        /// Versions returned.
        first: u64,
        /// Versions returned.
        last: u64,
    },
    /// `archive mark` changed the stream.
    Marked(u32),
    /// `archive reactivate` changed the stream.
    Reactivated(u32),
    /// The operator switched the redirect.
    Redirect(bool),
    /// One move batch: rows to cold storage, and the streams left with no
    /// hot rows, whose retention became cold, in one step.
    Moved {
        /// The rows moved.
        cursors: Vec<Cursor>,
        /// Streams made cold.
        cold: Vec<u32>,
    },
    /// The copy of a two-transaction move (only with `--without
    /// atomic-move`): rows written to cold storage, still hot.
    Copied(Vec<Cursor>),
    /// The delete of a two-transaction move.
    Deleted {
        /// The hot rows deleted.
        cursors: Vec<Cursor>,
        /// Streams made cold.
        cold: Vec<u32>,
    },
}

/// A step and the database time it was taken at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Database time.
    pub at: Duration,
    /// The step.
    pub step: Step,
}

/// Every step, in order.
#[derive(Debug, Clone, Default)]
pub struct History {
    entries: Vec<Entry>,
}

impl History {
    /// Records a step taken at `at`.
    pub fn push(&mut self, at: Duration, step: Step) {
        self.entries.push(Entry { at, step });
    }

    /// Every step so far.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// How many steps so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was decided yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
