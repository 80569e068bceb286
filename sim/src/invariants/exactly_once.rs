//! PROJ-1 under dynamic ownership: once the faults have healed and the
//! workers caught up, every committed event has been applied exactly once,
//! and each stream's events were applied in version order. Read from the
//! model's application log, which every batch commit appends to in the
//! same atomic step as its checkpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::log::event_log::LogEvent;
use crate::model::log::tiers::Cursor;
use crate::model::ownership::history::Applied;

use super::Violation;

const ID: &str = "PROJ-1";

/// The first double, phantom or out-of-order application in `applied`
/// (commit order), else the first committed event of `committed` never
/// applied by `end`.
pub fn check(committed: &[LogEvent], applied: &[Applied], end: Duration) -> Option<Violation> {
    let stored: BTreeMap<Cursor, &LogEvent> = committed.iter().map(|e| (e.cursor(), e)).collect();
    let mut first: BTreeMap<Cursor, &Applied> = BTreeMap::new();
    let mut last_version: BTreeMap<u32, u64> = BTreeMap::new();
    for a in applied {
        let fail = |detail: String| {
            Some(Violation {
                invariant: ID,
                at: a.at,
                detail,
            })
        };
        let who = format!(
            "{} (p{}/{} epoch {})",
            a.worker, a.partition.0, a.partition.1, a.epoch
        );
        if !stored.contains_key(&a.cursor) {
            return fail(format!(
                "{who} applied {:?}, which was never committed",
                a.cursor
            ));
        }
        if let Some(before) = first.insert(a.cursor, a) {
            return fail(format!(
                "{who} applied stream {} version {} at {:?} again; {} (p{}/{} epoch {}) applied it at {:.3}s",
                a.stream,
                a.version,
                a.cursor,
                before.worker,
                before.partition.0,
                before.partition.1,
                before.epoch,
                before.at.as_secs_f64()
            ));
        }
        let last = last_version.entry(a.stream).or_insert(0);
        if a.version != *last + 1 {
            return fail(format!(
                "{who} applied stream {} version {} after version {}",
                a.stream, a.version, last
            ));
        }
        *last = a.version;
    }
    let missing: Vec<&LogEvent> = committed
        .iter()
        .filter(|e| !first.contains_key(&e.cursor()))
        .collect();
    let earliest = missing.first()?;
    Some(Violation {
        invariant: ID,
        at: end,
        detail: format!(
            "{} of {} committed events were never applied after healing, the first stream {} version {} at {:?}",
            missing.len(),
            committed.len(),
            earliest.stream,
            earliest.version,
            earliest.cursor()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(xid: u64, stream: u32, version: u64) -> LogEvent {
        LogEvent {
            xid,
            position: xid,
            stream,
            version,
        }
    }

    fn applied(at: u64, e: &LogEvent) -> Applied {
        Applied {
            at: Duration::from_secs(at),
            worker: "n1".to_owned(),
            partition: (0, 1),
            epoch: 1,
            cursor: e.cursor(),
            stream: e.stream,
            version: e.version,
        }
    }

    #[test]
    fn once_each_in_order_passes() {
        let log = [event(1, 7, 1), event(2, 8, 1), event(3, 7, 2)];
        let ok: Vec<Applied> = log.iter().map(|e| applied(1, e)).collect();
        assert_eq!(check(&log, &ok, Duration::from_secs(9)), None);
    }

    #[test]
    fn a_double_a_gap_a_phantom_and_a_miss_are_each_caught() {
        let log = [event(1, 7, 1), event(2, 7, 2)];
        let twice = [
            applied(1, &log[0]),
            applied(2, &log[1]),
            applied(3, &log[0]),
        ];
        let v = check(&log, &twice, Duration::from_secs(9)).unwrap();
        assert_eq!((v.at, v.invariant), (Duration::from_secs(3), "PROJ-1"));
        assert!(v.detail.contains("again"), "{v:?}");
        let gap = [applied(1, &log[1])];
        assert!(check(&log, &gap, Duration::from_secs(9))
            .unwrap()
            .detail
            .contains("version 2 after version 0"));
        let phantom = [applied(1, &event(5, 7, 1))];
        assert!(check(&log, &phantom, Duration::from_secs(9))
            .unwrap()
            .detail
            .contains("never committed"));
        let short = [applied(1, &log[0])];
        let v = check(&log, &short, Duration::from_secs(9)).unwrap();
        assert_eq!(v.at, Duration::from_secs(9));
        assert!(v.detail.starts_with("1 of 2"), "{v:?}");
    }
}
