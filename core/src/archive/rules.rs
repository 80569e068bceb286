//! Where an append lands and what a read scans, for both archive backends
//! (ARCH-3, ARCH-4). Pure functions of the configuration and the stream's
//! state: the store and the simulation both ask these.

use std::fmt;
use std::str::FromStr;

/// How cold events are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    /// Hot events in `events`, cold ones in `events_archive`.
    DualTable,
    /// One `events` table partitioned by retention class (`events_hot`,
    /// `events_cold`), each by month.
    Partitioned,
}

/// A stream's archive lifecycle, from its `rf_streams` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamState {
    /// Never archived.
    Hot,
    /// Marked archived; its events have not been moved yet.
    Archived,
    /// Archived and moved: its retention class is cold.
    Cold,
    /// Archived once, then reactivated: new events are hot again, while
    /// what was moved stays cold.
    Reactivated,
}

impl StreamState {
    /// Whether the stream is archived now (marked, moved or not).
    pub fn is_archived(self) -> bool {
        matches!(self, StreamState::Archived | StreamState::Cold)
    }
}

/// Where an append's rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AppendTarget {
    /// Hot storage: `events` (dual-table) or its hot partition.
    Hot,
    /// `events_archive`, through the redirect trigger (dual-table).
    ArchiveTable,
    /// The cold partition of `events` (partitioned).
    ColdPartition,
}

/// Where an append to a stream in `state` lands (ARCH-4).
///
/// Dual-table: with redirect on, appends to an archived stream go to the
/// archive table; otherwise, and after reactivation, to the hot table. The
/// redirect is an operator's switch, never changed by starting a program.
/// Partitioned: rows follow the stream's retention class, so a stream moved
/// cold keeps growing in the cold partition and the redirect switch plays no
/// part; a stream marked but not yet moved stays hot until the mover takes
/// it, and reactivation makes it hot again.
pub fn append_target(backend: Backend, redirect: bool, state: StreamState) -> AppendTarget {
    match backend {
        Backend::DualTable if redirect && state.is_archived() => AppendTarget::ArchiveTable,
        Backend::DualTable => AppendTarget::Hot,
        Backend::Partitioned if state == StreamState::Cold => AppendTarget::ColdPartition,
        Backend::Partitioned => AppendTarget::Hot,
    }
}

/// What a read scans and returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadPlan {
    /// Scan hot storage.
    pub hot: bool,
    /// Scan cold storage (the archive table and, partitioned, the cold
    /// partition).
    pub cold: bool,
    /// Leave out events of streams that are archived now, even where they
    /// still sit in hot storage waiting for the mover.
    pub skip_archived_streams: bool,
}

/// The plan of a read (ARCH-3): without archived data, hot storage only
/// and no archived stream's events; with it, every tier in global order.
/// Projections always read with archived data, so they never miss an
/// event because it moved.
pub fn read_plan(include_archived: bool) -> ReadPlan {
    ReadPlan {
        hot: true,
        cold: include_archived,
        skip_archived_streams: !include_archived,
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::DualTable => "dual-table",
            Backend::Partitioned => "partitioned",
        })
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dual-table" => Ok(Backend::DualTable),
            "partitioned" => Ok(Backend::Partitioned),
            other => Err(format!(
                "unknown archive backend {other:?} (dual-table or partitioned)"
            )),
        }
    }
}
