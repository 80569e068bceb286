//! Unit tests of [`ModelEvents`](super::ModelEvents).

use rillflow_core::archive::StreamState;

use super::*;

fn t(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn append(stream: u32, expected: ExpectedVersion, key: Option<u64>, n: u64) -> AppendRequest {
    AppendRequest {
        stream,
        expected,
        key,
        payloads: (0..n).map(|i| 100 + i).collect(),
    }
}

/// (rows moved, streams made cold) of a batch's outcome.
fn moved(outcome: Outcome) -> (usize, usize) {
    match outcome {
        Outcome::Moved(b) => (b.cursors.len(), b.cold.len()),
        other => panic!("not moved: {other:?}"),
    }
}

fn commit(s: &mut ModelEvents, now: Duration, request: &AppendRequest) -> Outcome {
    let out = s.begin(now, request);
    if let Outcome::Started { xid, .. } = out {
        s.end(now, xid, true).expect("open");
    }
    out
}

#[test]
fn versions_and_keys_hold_across_tiers() {
    let mut s = ModelEvents::new(Backend::DualTable);
    let any = ExpectedVersion::Any;
    assert!(matches!(
        commit(&mut s, t(0), &append(1, any, Some(7), 2)),
        Outcome::Started {
            first: 1,
            last: 2,
            ..
        }
    ));
    assert_eq!(s.mark(t(1), 1), Outcome::Done { changed: true });
    assert_eq!(
        moved(s.move_batch(t(500), &MoveScope::before(t(400), 10))),
        (2, 1)
    );
    assert_eq!(s.heads().state(1), StreamState::Cold);
    // Nothing is hot any more; the head still knows the version and key.
    assert_eq!(
        commit(
            &mut s,
            t(600),
            &append(1, ExpectedVersion::NoStream, None, 1)
        ),
        Outcome::Conflict { actual: 2 }
    );
    assert_eq!(
        commit(
            &mut s,
            t(600),
            &append(1, ExpectedVersion::Exact(0), Some(7), 2)
        ),
        Outcome::Replayed { first: 1, last: 2 },
        "a key replays before the expected version is checked"
    );
    assert!(matches!(
        commit(
            &mut s,
            t(700),
            &append(1, ExpectedVersion::Exact(2), None, 1)
        ),
        Outcome::Started {
            first: 3,
            last: 3,
            ..
        }
    ));
    let versions: Vec<(Tier, u64)> = s
        .read_stream(1, true)
        .iter()
        .map(|(tier, r)| (*tier, r.event.version))
        .collect();
    assert_eq!(versions, [(Tier::Cold, 1), (Tier::Cold, 2), (Tier::Hot, 3)]);
    assert!(
        s.read_stream(1, false).is_empty(),
        "hot reads skip archived streams"
    );
    assert!(s.violations.is_empty(), "{:?}", s.violations);
}

#[test]
fn routing_follows_the_rule_for_the_head_state() {
    let mut dual = ModelEvents::new(Backend::DualTable);
    commit(&mut dual, t(0), &append(1, ExpectedVersion::Any, None, 1));
    dual.mark(t(0), 1);
    assert_eq!(
        dual.set_redirect(t(0), true),
        Outcome::Done { changed: true }
    );
    commit(&mut dual, t(0), &append(1, ExpectedVersion::Any, None, 1));
    dual.reactivate(t(0), 1);
    commit(&mut dual, t(0), &append(1, ExpectedVersion::Any, None, 1));
    let tiers: Vec<Tier> = dual.read_stream(1, true).iter().map(|(t, _)| *t).collect();
    assert_eq!(tiers, [Tier::Hot, Tier::Cold, Tier::Hot]);

    let mut part = ModelEvents::new(Backend::Partitioned);
    part.set_redirect(t(0), true);
    commit(&mut part, t(0), &append(2, ExpectedVersion::Any, None, 1));
    part.mark(t(0), 2);
    commit(&mut part, t(0), &append(2, ExpectedVersion::Any, None, 1));
    part.move_batch(t(1_000), &MoveScope::before(t(1_000), 10));
    commit(
        &mut part,
        t(1_000),
        &append(2, ExpectedVersion::Any, None, 1),
    );
    let targets: Vec<AppendTarget> = part
        .history()
        .entries()
        .iter()
        .filter_map(|e| match e.step {
            Step::Committed { target, .. } => Some(target),
            _ => None,
        })
        .collect();
    assert_eq!(
        targets,
        [
            AppendTarget::Hot,
            AppendTarget::Hot,
            AppendTarget::ColdPartition
        ]
    );
}

#[test]
fn archive_operations_wait_for_an_open_append() {
    let mut s = ModelEvents::new(Backend::DualTable);
    commit(&mut s, t(0), &append(1, ExpectedVersion::Any, None, 1));
    s.mark(t(0), 1);
    let Outcome::Started { xid, .. } = s.begin(t(1_000), &append(1, ExpectedVersion::Any, None, 1))
    else {
        panic!("the append starts");
    };
    let all = MoveScope::before(t(5_000), 10);
    assert_eq!(s.move_batch(t(1_000), &all), Outcome::Busy);
    assert_eq!(s.reactivate(t(1_000), 1), Outcome::Busy);
    assert_eq!(s.set_redirect(t(1_000), true), Outcome::Busy);
    assert_eq!(
        s.begin(t(1_000), &append(1, ExpectedVersion::Any, None, 1)),
        Outcome::Busy
    );
    assert_eq!(s.mark(t(1_000), 2), Outcome::NoStream);
    s.end(t(1_000), xid, true);
    assert_eq!(moved(s.move_batch(t(1_000), &all)), (2, 1));
    assert_eq!(s.horizon(), xid + 1);
}

#[test]
fn a_two_step_move_is_caught_between_its_steps() {
    let mut s = ModelEvents::new(Backend::Partitioned);
    commit(&mut s, t(0), &append(1, ExpectedVersion::Any, None, 2));
    s.mark(t(0), 1);
    let Outcome::Copied(batch) = s.copy_batch(t(1_000), &MoveScope::before(t(1_000), 10)) else {
        panic!("copied");
    };
    assert_eq!(s.violations.len(), 1, "both copies are visible");
    assert!(
        s.violations[0].detail.contains("[1, 1, 2, 2]"),
        "{:?}",
        s.violations
    );
    assert_eq!(moved(s.delete_hot(t(1_001), &batch.cursors)), (2, 1));
    assert_eq!(s.violations.len(), 1, "whole again after the delete");
}

/// (stream, version, cold) of what a read of the whole log returns.
fn read_all(s: &mut ModelEvents, include_archived: bool) -> Vec<(u32, u64, bool)> {
    s.read_all((0, 0), 100, include_archived)
        .iter()
        .map(|(tier, r)| (r.event.stream, r.event.version, *tier == Tier::Cold))
        .collect()
}

#[test]
fn a_read_of_the_whole_log_stops_at_the_horizon_and_plans_its_tiers() {
    let mut s = ModelEvents::new(Backend::DualTable);
    let any = ExpectedVersion::Any;
    commit(&mut s, t(0), &append(1, any, None, 1));
    commit(&mut s, t(0), &append(2, any, None, 1));
    s.mark(t(0), 2);
    moved(s.move_batch(t(1_000), &MoveScope::before(t(1_000), 10)));
    commit(&mut s, t(1_000), &append(3, any, None, 1));
    s.mark(t(1_000), 3);
    let Outcome::Started { xid: open, .. } = s.begin(t(1_000), &append(1, any, None, 1)) else {
        panic!("started");
    };
    commit(&mut s, t(1_000), &append(4, any, None, 1));
    assert_eq!(
        read_all(&mut s, true),
        [(1, 1, false), (2, 1, true), (3, 1, false)],
        "every tier, up to the open append"
    );
    assert_eq!(
        read_all(&mut s, false),
        [(1, 1, false)],
        "hot storage, archived streams left out"
    );
    s.end(t(1_000), open, true);
    let after = read_all(&mut s, true);
    assert_eq!(after[3..], [(1, 2, false), (4, 1, false)], "in xid order");
}

#[test]
fn compact_lists_runs() {
    assert_eq!(compact(&[1, 2, 3, 4, 4, 6]), "[1..=4, 4, 6]");
    assert_eq!(compact(&[1, 1, 2, 2]), "[1, 1, 2, 2]");
    assert_eq!(compact(&[]), "[]");
}
