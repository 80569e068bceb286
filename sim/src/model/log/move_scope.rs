//! Which rows one batch of the mover takes, as `ArchiveMover::batch`
//! (`adapters/src/archive/mover.rs`) picks them: the archived streams from
//! the pass's place on that hold the next `limit` eligible hot rows, in
//! (stream, version) order, where eligible means created before the pass's
//! cutoff and at or below the last position that existed when the pass
//! began. The pass itself is `rillflow_core::archive::MovePass`, run by the
//! mover host.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::model::log::stream_heads::Heads;
use crate::model::log::tiers::{Cursor, Tiers};

/// What one batch may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveScope {
    /// Lowest stream to consider: where the pass stands.
    pub from: Option<u32>,
    /// Only rows created before this database time.
    pub before: Duration,
    /// Only rows at or below this position.
    pub upto: u64,
    /// Most rows.
    pub limit: usize,
}

impl MoveScope {
    /// Everything of archived streams created before `before`, up to
    /// `limit` rows: a first batch with no position bound.
    pub fn before(before: Duration, limit: usize) -> MoveScope {
        MoveScope {
            from: None,
            before,
            upto: u64::MAX,
            limit,
        }
    }
}

/// What a batch did (or, for a copy, would move).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The streams whose heads it locked, in id order (none: nothing left
    /// in scope, the pass is over).
    pub locked: Vec<u32>,
    /// The rows it took, in (stream, version) order.
    pub cursors: Vec<Cursor>,
    /// Streams whose retention it made cold.
    pub cold: Vec<u32>,
}

impl Batch {
    /// The stream of the last row taken.
    pub fn last_stream(&self, rows: &Tiers) -> Option<u32> {
        self.cursors
            .last()
            .and_then(|c| rows.get(c))
            .map(|r| r.event.stream)
    }
}

/// The rows `scope` takes now, or None when a head it must lock is held by
/// an open append in `busy` (the batch waits for it).
pub fn pick(rows: &Tiers, heads: &Heads, busy: &BTreeSet<u32>, scope: &MoveScope) -> Option<Batch> {
    let mut eligible: Vec<(u32, u64, Cursor)> = rows
        .hot()
        .filter(|r| scope.from.is_none_or(|from| r.event.stream >= from))
        .filter(|r| r.created_at < scope.before && r.event.position <= scope.upto)
        .filter(|r| heads.state(r.event.stream).is_archived())
        .map(|r| (r.event.stream, r.event.version, r.event.cursor()))
        .collect();
    eligible.sort_unstable();
    eligible.truncate(scope.limit);
    let locked: BTreeSet<u32> = eligible.iter().map(|(s, _, _)| *s).collect();
    if locked.iter().any(|s| busy.contains(s)) {
        return None;
    }
    Some(Batch {
        locked: locked.into_iter().collect(),
        cursors: eligible.into_iter().map(|(_, _, c)| c).collect(),
        cold: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use rillflow_core::archive::HeadFlags;

    use super::*;
    use crate::model::log::event_log::LogEvent;
    use crate::model::log::tiers::{Row, Tier};

    fn store() -> (Tiers, Heads) {
        let (mut rows, mut heads) = (Tiers::default(), Heads::default());
        // Streams 1..=3, two events each, positions interleaved.
        for (position, (stream, version)) in [(3, 1), (1, 1), (2, 1), (3, 2), (1, 2), (2, 2)]
            .into_iter()
            .enumerate()
        {
            let position = position as u64 + 1;
            rows.insert(
                Tier::Hot,
                Row {
                    event: LogEvent {
                        xid: position,
                        position,
                        stream,
                        version,
                    },
                    payload: 0,
                    created_at: Duration::from_millis(position * 100),
                },
            );
            heads.commit(stream, (version, version), None, &[]);
        }
        heads.update(1, HeadFlags::mark);
        heads.update(3, HeadFlags::mark);
        (rows, heads)
    }

    fn scope(from: Option<u32>, limit: usize) -> MoveScope {
        MoveScope {
            from,
            before: Duration::from_secs(1),
            upto: u64::MAX,
            limit,
        }
    }

    #[test]
    fn batches_take_archived_streams_in_id_and_version_order() {
        let (rows, heads) = store();
        let none = BTreeSet::new();
        let b = pick(&rows, &heads, &none, &scope(None, 3)).expect("nothing locked");
        assert_eq!(b.locked, [1, 3], "stream 2 is not archived");
        assert_eq!(b.cursors, [(2, 2), (5, 5), (1, 1)]);
        assert_eq!(b.last_stream(&rows), Some(3));
        let rest = pick(&rows, &heads, &none, &scope(Some(3), 10)).expect("nothing locked");
        assert_eq!(rest.cursors, [(1, 1), (4, 4)]);
    }

    #[test]
    fn the_cutoff_and_the_pass_start_bound_a_batch_and_locks_hold_it() {
        let (rows, heads) = store();
        let none = BTreeSet::new();
        let early = MoveScope {
            before: Duration::from_millis(300),
            ..scope(None, 10)
        };
        assert_eq!(
            pick(&rows, &heads, &none, &early).unwrap().cursors,
            [(2, 2), (1, 1)]
        );
        let bounded = MoveScope {
            upto: 2,
            ..scope(None, 10)
        };
        assert_eq!(
            pick(&rows, &heads, &none, &bounded).unwrap().cursors,
            [(2, 2), (1, 1)]
        );
        assert_eq!(
            pick(&rows, &heads, &BTreeSet::from([3]), &scope(None, 10)),
            None
        );
        assert!(
            pick(&rows, &heads, &BTreeSet::from([2]), &scope(None, 10)).is_some(),
            "a stream the batch does not take does not hold it up"
        );
    }
}
