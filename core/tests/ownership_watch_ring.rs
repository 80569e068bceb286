//! The watch ring: each live worker with a session waits on the next one's,
//! in name order, wrapping around, never on itself.

use std::collections::BTreeMap;

use rillflow_core::ownership::{session_to_watch, watcher_of};

fn sessions(list: &[(&str, i64)]) -> BTreeMap<String, i64> {
    list.iter().map(|(n, k)| (n.to_string(), *k)).collect()
}

#[test]
fn each_worker_watches_the_next_by_name_and_the_last_wraps_around() {
    let ring = sessions(&[("a", 1), ("b", 2), ("c", 3)]);
    let cases: &[(&str, Option<i64>)] = &[
        ("a", Some(2)),
        ("b", Some(3)),
        ("c", Some(1)),
        // Not (yet) in the view, e.g. before its own heartbeat showed.
        ("0", Some(1)),
        ("bb", Some(3)),
        ("z", Some(1)),
    ];
    for (me, want) in cases {
        assert_eq!(session_to_watch(me, &ring), *want, "{me}");
    }
}

#[test]
fn every_worker_is_watched_by_exactly_one_other() {
    let ring = sessions(&[("w1", 11), ("w2", 12), ("w3", 13), ("w4", 14)]);
    let mut watched: Vec<i64> = ring
        .keys()
        .filter_map(|me| session_to_watch(me, &ring))
        .collect();
    watched.sort();
    assert_eq!(watched, vec![11, 12, 13, 14]);
}

#[test]
fn alone_or_without_sessions_nobody_is_watched() {
    assert_eq!(session_to_watch("a", &sessions(&[])), None);
    assert_eq!(session_to_watch("a", &sessions(&[("a", 1)])), None);
    assert_eq!(session_to_watch("a", &sessions(&[("b", 2)])), Some(2));
    assert_eq!(
        session_to_watch("b", &sessions(&[("a", 1), ("b", 2)])),
        Some(1)
    );
}

#[test]
fn the_watcher_of_a_worker_is_the_last_live_one_before_it_by_name() {
    let live = sessions(&[("a", 1), ("b", 2), ("d", 4)]);
    let cases: &[(&str, Option<&str>)] = &[
        ("c", Some("b")),
        ("b", Some("a")),
        ("a", Some("d")),
        ("0", Some("d")),
        ("e", Some("d")),
    ];
    for (target, want) in cases {
        assert_eq!(watcher_of(target, &live), *want, "{target}");
    }
    assert_eq!(watcher_of("a", &sessions(&[("a", 1)])), None);
    assert_eq!(watcher_of("b", &sessions(&[("a", 1)])), Some("a"));
}

proptest::proptest! {
    /// The watcher of any worker is the one whose next it would be.
    #[test]
    fn watcher_of_agrees_with_the_ring(
        names in proptest::collection::btree_set("[a-z]{1,3}", 1..10),
        target in "[a-z]{1,3}",
    ) {
        let live: BTreeMap<String, i64> = names
            .iter()
            .filter(|n| **n != target)
            .enumerate()
            .map(|(i, n)| (n.clone(), i as i64))
            .collect();
        let mut with_target = live.clone();
        with_target.insert(target.clone(), -1);
        let watchers: Vec<&String> = live
            .keys()
            .filter(|me| session_to_watch(me, &with_target) == Some(-1))
            .collect();
        let want: Vec<&str> = watchers.iter().map(|s| s.as_str()).collect();
        let got: Vec<&str> = watcher_of(&target, &live).into_iter().collect();
        proptest::prop_assert_eq!(got, want);
    }

    /// Whatever the names, with two or more workers every one is watched by
    /// exactly one other, and nobody watches itself.
    #[test]
    fn the_ring_watches_every_worker_once(names in proptest::collection::btree_set("[a-z]{1,4}", 2..12)) {
        let ring: BTreeMap<String, i64> =
            names.iter().enumerate().map(|(i, n)| (n.clone(), i as i64)).collect();
        let mut watched = Vec::new();
        for (me, key) in &ring {
            let target = session_to_watch(me, &ring).expect("a peer to watch");
            proptest::prop_assert_ne!(target, *key);
            watched.push(target);
        }
        watched.sort();
        proptest::prop_assert_eq!(watched, (0..ring.len() as i64).collect::<Vec<_>>());
    }
}
