//! Where a partition's checkpoint goes after a read: table cases for each
//! rule and properties that hold for every read.

use proptest::prelude::*;
use rillflow_core::projection::CheckpointPlacement;
use rillflow_core::GlobalCursor;

fn c(tx_id: i64, position: i64) -> GlobalCursor {
    GlobalCursor::new(tx_id, position)
}

struct Case {
    name: &'static str,
    limit: usize,
    from: GlobalCursor,
    read: usize,
    passed: Option<GlobalCursor>,
    expected: GlobalCursor,
}

#[test]
fn placement_table() {
    let cases = [
        Case {
            name: "a short read moves to how far it looked",
            limit: 10,
            from: c(5, 5),
            read: 3,
            passed: Some(c(9, 40)),
            expected: c(9, 40),
        },
        Case {
            name: "a full batch stops at its last event, however far the read looked",
            limit: 10,
            from: c(5, 5),
            read: 10,
            passed: Some(c(9, 40)),
            expected: c(5, 5),
        },
        Case {
            name: "a short read whose last event is the furthest stays there",
            limit: 10,
            from: c(9, 40),
            read: 3,
            passed: Some(c(9, 40)),
            expected: c(9, 40),
        },
        Case {
            name: "a read that does not say how far it looked stays at its last event",
            limit: 10,
            from: c(5, 5),
            read: 3,
            passed: None,
            expected: c(5, 5),
        },
        Case {
            name: "an idle read moves once a batch's worth of positions went by",
            limit: 10,
            from: c(5, 5),
            read: 0,
            passed: Some(c(9, 15)),
            expected: c(9, 15),
        },
        Case {
            name: "an idle read stays while less than a batch's worth went by",
            limit: 10,
            from: c(5, 5),
            read: 0,
            passed: Some(c(9, 14)),
            expected: c(5, 5),
        },
        Case {
            name: "an idle read stays when a later transaction wrote lower positions",
            limit: 10,
            from: c(5, 50),
            read: 0,
            passed: Some(c(9, 14)),
            expected: c(5, 50),
        },
        Case {
            name: "an idle read with nothing below the horizon stays",
            limit: 10,
            from: c(5, 5),
            read: 0,
            passed: None,
            expected: c(5, 5),
        },
        Case {
            name: "a limit of 0 counts as 1: one event is a full batch",
            limit: 0,
            from: c(5, 5),
            read: 1,
            passed: Some(c(9, 40)),
            expected: c(5, 5),
        },
        Case {
            name: "a limit of 0 counts as 1: an idle read moves one position on",
            limit: 0,
            from: c(5, 5),
            read: 0,
            passed: Some(c(6, 6)),
            expected: c(6, 6),
        },
    ];
    for case in cases {
        let placement = CheckpointPlacement::new(case.limit);
        assert_eq!(
            placement.place(case.from, case.read, case.passed),
            case.expected,
            "{}",
            case.name
        );
    }
}

#[test]
fn an_idle_move_is_some_only_when_the_checkpoint_moves() {
    let placement = CheckpointPlacement::new(10);
    assert_eq!(placement.limit(), 10);
    assert_eq!(placement.idle_move(c(5, 5), Some(c(9, 15))), Some(c(9, 15)));
    assert_eq!(placement.idle_move(c(5, 5), Some(c(9, 14))), None);
    assert_eq!(placement.idle_move(c(5, 5), Some(c(5, 5))), None);
    assert_eq!(placement.idle_move(c(5, 5), Some(c(4, 90))), None);
    assert_eq!(placement.idle_move(c(5, 5), None), None);
}

fn cursor() -> impl Strategy<Value = GlobalCursor> {
    (0i64..1_000, 0i64..1_000).prop_map(|(tx_id, position)| c(tx_id, position))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn placement_never_goes_back_nor_past_how_far_the_read_looked(
        limit in 0usize..50,
        from in cursor(),
        read in 0usize..60,
        passed in prop::option::of(cursor()),
    ) {
        let placement = CheckpointPlacement::new(limit);
        let to = placement.place(from, read, passed);
        prop_assert!(to >= from, "went back from {from} to {to}");
        // Either it stays or it goes exactly to `passed`: nothing in
        // between is known, nothing beyond is below the horizon.
        prop_assert!(to == from || Some(to) == passed, "{to} is neither {from} nor {passed:?}");
        if read >= placement.limit() {
            prop_assert_eq!(to, from, "a full batch ends at its last event");
        }
        if read == 0 && to != from {
            let p = passed.expect("it moved to passed");
            prop_assert!(p.position - from.position >= placement.limit() as i64);
        }
        if read > 0 && read < placement.limit() {
            prop_assert_eq!(to, passed.filter(|p| *p > from).unwrap_or(from));
        }
        prop_assert_eq!(placement.idle_move(from, passed), (placement.place(from, 0, passed) != from).then(|| placement.place(from, 0, passed)));
    }
}
