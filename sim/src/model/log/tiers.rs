//! Where committed events are stored: hot storage and cold storage (the
//! archive table on the dual-table backend, the cold partition on the
//! partitioned one). Rows are keyed by their cursor (transaction id,
//! position), which they keep when they move, so the global feed reads both
//! tiers in one order.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::Duration;

use rillflow_core::archive::{AppendTarget, ReadPlan};

use crate::model::log::event_log::LogEvent;

/// An event's place in the global feed: (transaction id, position).
pub type Cursor = (u64, u64);

/// A storage tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// `events`, or its hot partition.
    Hot,
    /// `events_archive`, or the cold partition.
    Cold,
}

impl Tier {
    /// The tier an append routed to `target` writes into.
    pub fn of(target: AppendTarget) -> Tier {
        match target {
            AppendTarget::Hot => Tier::Hot,
            AppendTarget::ArchiveTable | AppendTarget::ColdPartition => Tier::Cold,
        }
    }
}

/// One stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Cursor, stream and version.
    pub event: LogEvent,
    /// What the writer sent.
    pub payload: u64,
    /// Database time of the append (what a move's cutoff compares).
    pub created_at: Duration,
}

/// Both tiers.
#[derive(Debug, Clone, Default)]
pub struct Tiers {
    hot: BTreeMap<Cursor, Row>,
    cold: BTreeMap<Cursor, Row>,
    /// (stream, version, cursor, tier) of every stored row, so reading one
    /// stream (done after every step, for the checks) does not scan all.
    by_stream: BTreeSet<(u32, u64, Cursor, Tier)>,
}

impl Tiers {
    fn tier(&self, tier: Tier) -> &BTreeMap<Cursor, Row> {
        match tier {
            Tier::Hot => &self.hot,
            Tier::Cold => &self.cold,
        }
    }

    fn key(tier: Tier, row: &Row) -> (u32, u64, Cursor, Tier) {
        (
            row.event.stream,
            row.event.version,
            row.event.cursor(),
            tier,
        )
    }

    /// Stores a committed row.
    pub fn insert(&mut self, tier: Tier, row: Row) {
        let map = match tier {
            Tier::Hot => &mut self.hot,
            Tier::Cold => &mut self.cold,
        };
        if let Some(old) = map.insert(row.event.cursor(), row) {
            self.by_stream.remove(&Self::key(tier, &old));
        }
        self.by_stream.insert(Self::key(tier, &row));
    }

    fn remove_hot(&mut self, cursor: &Cursor) -> Option<Row> {
        let row = self.hot.remove(cursor)?;
        self.by_stream.remove(&Self::key(Tier::Hot, &row));
        Some(row)
    }

    /// Moves hot rows to cold storage in one step, as one transaction's
    /// insert and delete commit together; returns how many moved.
    pub fn move_cold(&mut self, cursors: &[Cursor]) -> usize {
        let mut moved = 0;
        for c in cursors {
            if let Some(row) = self.remove_hot(c) {
                self.insert(Tier::Cold, row);
                moved += 1;
            }
        }
        moved
    }

    /// The first half of a move done as two transactions: copies hot rows
    /// to cold storage and leaves them hot too.
    pub fn copy_cold(&mut self, cursors: &[Cursor]) -> usize {
        let rows: Vec<Row> = cursors
            .iter()
            .filter_map(|c| self.hot.get(c))
            .copied()
            .collect();
        for row in &rows {
            self.insert(Tier::Cold, *row);
        }
        rows.len()
    }

    /// The second half: deletes the hot copies.
    pub fn delete_hot(&mut self, cursors: &[Cursor]) -> usize {
        cursors
            .iter()
            .filter(|c| self.remove_hot(c).is_some())
            .count()
    }

    /// The row at `cursor`, from either tier.
    pub fn get(&self, cursor: &Cursor) -> Option<&Row> {
        self.hot.get(cursor).or_else(|| self.cold.get(cursor))
    }

    /// The rows `plan` scans after `after`, in feed order; a row stored in
    /// both tiers comes twice, as a `UNION ALL` would return it.
    pub fn feed_after(&self, after: Cursor, plan: ReadPlan) -> Vec<Row> {
        self.tiered_feed_after(after, plan)
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    /// [`feed_after`](Self::feed_after), each row with the tier it was read
    /// from (a row in both tiers: hot first).
    pub fn tiered_feed_after(&self, after: Cursor, plan: ReadPlan) -> Vec<(Tier, Row)> {
        let range = (Bound::Excluded(after), Bound::Unbounded);
        let mut rows: Vec<(Tier, Row)> = self
            .hot
            .range(range)
            .map(|(_, r)| (Tier::Hot, *r))
            .collect();
        if plan.cold {
            rows.extend(self.cold.range(range).map(|(_, r)| (Tier::Cold, *r)));
        }
        // Stable: of a row in both tiers, the hot copy stays first.
        rows.sort_by_key(|(_, r)| r.event.cursor());
        rows
    }

    /// [`feed_after`](Self::feed_after) over both tiers, lazily: a reader
    /// that stops after a few rows does not pay for the whole log.
    pub fn iter_after(&self, after: Cursor) -> impl Iterator<Item = &Row> {
        let range = (Bound::Excluded(after), Bound::Unbounded);
        let mut hot = self.hot.range(range).peekable();
        let mut cold = self.cold.range(range).peekable();
        std::iter::from_fn(move || {
            let next = match (hot.peek(), cold.peek()) {
                (Some((h, _)), Some((c, _))) if c < h => cold.next(),
                (Some(_), _) => hot.next(),
                (None, _) => cold.next(),
            };
            next.map(|(_, row)| row)
        })
    }

    /// The furthest row of either tier written by a transaction below
    /// `xid`.
    pub fn last_below(&self, xid: u64) -> Option<Cursor> {
        let below = ..(xid, 0);
        let hot = self.hot.range(below).next_back().map(|(c, _)| *c);
        let cold = self.cold.range(below).next_back().map(|(c, _)| *c);
        hot.max(cold)
    }

    /// Every row of both tiers after `after` and at or before `upto`.
    pub fn between(&self, after: Cursor, upto: Cursor) -> impl Iterator<Item = &Row> {
        let range = (Bound::Excluded(after), Bound::Included(upto));
        self.hot
            .range(range)
            .chain(self.cold.range(range))
            .map(|(_, r)| r)
    }

    /// Every row of both tiers with its tier.
    pub fn all(&self) -> impl Iterator<Item = (Tier, &Row)> {
        self.hot
            .values()
            .map(|r| (Tier::Hot, r))
            .chain(self.cold.values().map(|r| (Tier::Cold, r)))
    }

    fn of_stream(&self, stream: u32) -> impl Iterator<Item = &(u32, u64, Cursor, Tier)> {
        self.by_stream.range(
            (stream, 0, (0, 0), Tier::Hot)..=(stream, u64::MAX, (u64::MAX, u64::MAX), Tier::Cold),
        )
    }

    /// The rows of `stream` in the tiers `plan` scans, by version.
    pub fn stream(&self, stream: u32, plan: ReadPlan) -> Vec<(Tier, Row)> {
        self.of_stream(stream)
            .filter(|(_, _, _, tier)| match tier {
                Tier::Hot => plan.hot,
                Tier::Cold => plan.cold,
            })
            .map(|(_, _, cursor, tier)| (*tier, self.tier(*tier)[cursor]))
            .collect()
    }

    /// Hot rows, in cursor order.
    pub fn hot(&self) -> impl Iterator<Item = &Row> {
        self.hot.values()
    }

    /// Whether `stream` has a row in hot storage.
    pub fn has_hot(&self, stream: u32) -> bool {
        self.of_stream(stream)
            .any(|(_, _, _, tier)| *tier == Tier::Hot)
    }

    /// Rows stored, both tiers (a row in both counts twice).
    pub fn len(&self) -> usize {
        self.hot.len() + self.cold.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use rillflow_core::archive::read_plan;

    use super::*;

    fn row(xid: u64, position: u64, stream: u32, version: u64) -> Row {
        Row {
            event: LogEvent {
                xid,
                position,
                stream,
                version,
            },
            payload: position * 10,
            created_at: Duration::ZERO,
        }
    }

    #[test]
    fn a_moved_row_keeps_its_cursor_and_is_read_once() {
        let mut t = Tiers::default();
        t.insert(Tier::Hot, row(1, 1, 7, 1));
        t.insert(Tier::Hot, row(2, 2, 7, 2));
        t.insert(Tier::Cold, row(3, 3, 8, 1));
        assert_eq!(t.move_cold(&[(1, 1)]), 1);
        let feed: Vec<Cursor> = t
            .feed_after((0, 0), read_plan(true))
            .iter()
            .map(|r| r.event.cursor())
            .collect();
        assert_eq!(feed, [(1, 1), (2, 2), (3, 3)]);
        let lazy: Vec<Cursor> = t.iter_after((1, 1)).map(|r| r.event.cursor()).collect();
        assert_eq!(lazy, [(2, 2), (3, 3)], "both tiers, in feed order");
        assert_eq!(t.last_below(3), Some((2, 2)));
        assert_eq!(t.last_below(9), Some((3, 3)), "the cold tier counts");
        assert_eq!(t.last_below(1), None);
        let hot_only = t.feed_after((0, 0), read_plan(false));
        assert_eq!(hot_only.len(), 1, "a hot read scans no cold storage");
        let versions: Vec<(Tier, u64)> = t
            .stream(7, read_plan(true))
            .iter()
            .map(|(tier, r)| (*tier, r.event.version))
            .collect();
        assert_eq!(versions, [(Tier::Cold, 1), (Tier::Hot, 2)]);
        assert!(t.has_hot(7) && !t.has_hot(8));
    }

    #[test]
    fn a_two_step_move_shows_the_row_twice_in_between() {
        let mut t = Tiers::default();
        t.insert(Tier::Hot, row(1, 1, 7, 1));
        assert_eq!(t.copy_cold(&[(1, 1)]), 1);
        assert_eq!(t.feed_after((0, 0), read_plan(true)).len(), 2);
        assert_eq!(t.stream(7, read_plan(true)).len(), 2);
        assert_eq!(t.delete_hot(&[(1, 1)]), 1);
        assert_eq!(t.stream(7, read_plan(true)).len(), 1);
        assert_eq!(t.len(), 1);
    }
}
