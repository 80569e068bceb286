//! How a partition batch reads the event log, as
//! `EventStore::read_partition_in` does inside the batch's transaction.

use rillflow_core::{partition_hash, partition_of};
use uuid::Uuid;

use crate::model::log::event_log::LogEvent;
use crate::model::log::events::ModelEvents;
use crate::model::log::tiers::Cursor;

/// The partition hash of a simulated stream: core's hash of a UUID made
/// from the stream number, so streams spread over partitions as real ones
/// do.
pub fn stream_hash(stream: u32) -> i32 {
    let mixed = u64::from(stream).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    partition_hash(Uuid::from_u64_pair(mixed, u64::from(stream)))
}

/// What a batch read: its partition's next events and how far it looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRead {
    /// The partition's next events, in global order.
    pub events: Vec<LogEvent>,
    /// The furthest event below the horizon, of any partition: when fewer
    /// events than asked came back, nothing of the partition lies between
    /// the last of them and this.
    pub passed: Option<Cursor>,
    /// Whether committed events wait at or above the horizon.
    pub held_back: bool,
}

/// Events of partition `key` of `total` after `after`, in (xid, position)
/// order, only below the horizon (the oldest open append), at most
/// `limit`, from every tier; and the furthest event below the horizon, of
/// any partition, from the same state.
pub fn read_partition(
    events: &ModelEvents,
    after: Cursor,
    key: u32,
    total: u32,
    limit: usize,
) -> PartitionRead {
    let horizon = events.horizon();
    let read = events
        .rows()
        .iter_after(after)
        .map(|r| r.event)
        // In cursor order everything below the horizon comes first.
        .take_while(|e| e.xid < horizon)
        .filter(|e| partition_of(stream_hash(e.stream), total) == key)
        .take(limit)
        .collect();
    let newest = events.rows().last_below(u64::MAX);
    PartitionRead {
        events: read,
        passed: events.rows().last_below(horizon),
        held_back: newest.is_some_and(|(xid, _)| xid >= horizon),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rillflow_core::ExpectedVersion;

    use super::*;
    use crate::model::log::events::{AppendRequest, Outcome};

    #[test]
    fn a_read_takes_its_partition_below_the_horizon_and_says_how_far_it_looked() {
        let mut events = ModelEvents::default();
        let mut begin = |stream: u32| {
            let append = AppendRequest {
                stream,
                expected: ExpectedVersion::Any,
                key: None,
                payloads: vec![0, 0],
            };
            match events.begin(Duration::ZERO, &append) {
                Outcome::Started { xid, .. } => xid,
                other => panic!("{other:?}"),
            }
        };
        let xids: Vec<u64> = (0..16).map(&mut begin).collect();
        for xid in &xids[..12] {
            events.end(Duration::ZERO, *xid, true);
        }
        // Appends 12..16 are open: the horizon is the 13th.
        let mine = |e: &LogEvent| partition_of(stream_hash(e.stream), 3) == 1;
        let read = read_partition(&events, (0, 0), 1, 3, 100);
        let expected: Vec<LogEvent> = events
            .rows()
            .all()
            .map(|(_, r)| r.event)
            .filter(|e| mine(e) && e.xid < xids[12])
            .collect();
        assert!(
            !expected.is_empty(),
            "some of the twelve streams land in 1 of 3"
        );
        assert_eq!(read.events, expected);
        assert_eq!(
            read.passed.map(|c| c.0),
            Some(xids[11]),
            "the last below the horizon"
        );
        let two = read_partition(&events, (0, 0), 1, 3, 2);
        assert_eq!(two.events, expected[..2]);
    }
}
