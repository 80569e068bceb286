//! A stream head's archive columns: the state they give and what each
//! archive operation does to them, over every combination.

use rillflow_core::archive::{HeadFlags, Retention, StreamState};

fn head(archived: bool, retention: Retention, reactivated: bool) -> HeadFlags {
    HeadFlags {
        archived,
        retention,
        reactivated,
    }
}

/// (archived, retention, reactivated) → state: all 8 combinations. A cold
/// retention without the archived flag cannot arise (reactivation resets
/// both), and reads as not archived.
const STATES: [(bool, Retention, bool, StreamState); 8] = [
    (false, Retention::Hot, false, StreamState::Hot),
    (false, Retention::Hot, true, StreamState::Reactivated),
    (false, Retention::Cold, false, StreamState::Hot),
    (false, Retention::Cold, true, StreamState::Reactivated),
    (true, Retention::Hot, false, StreamState::Archived),
    (true, Retention::Hot, true, StreamState::Archived),
    (true, Retention::Cold, false, StreamState::Cold),
    (true, Retention::Cold, true, StreamState::Cold),
];

#[test]
fn columns_give_the_state_in_the_table() {
    for (archived, retention, reactivated, want) in STATES {
        assert_eq!(
            head(archived, retention, reactivated).state(),
            want,
            "archived={archived} {retention:?} reactivated={reactivated}"
        );
    }
}

#[test]
fn a_stream_goes_archived_cold_reactivated_and_archived_again() {
    let new = HeadFlags::NEW;
    assert_eq!(new.state(), StreamState::Hot);
    let marked = new.mark();
    assert_eq!(marked.state(), StreamState::Archived);
    let cold = marked.moved_cold();
    assert_eq!(cold.state(), StreamState::Cold);
    let back = cold.reactivate();
    assert_eq!(back.state(), StreamState::Reactivated);
    assert_eq!(back.retention, Retention::Hot, "new events land hot again");
    let again = back.mark();
    assert_eq!(again.state(), StreamState::Archived);
    assert_eq!(again.moved_cold().state(), StreamState::Cold);
}

#[test]
fn operations_are_idempotent() {
    for (archived, retention, reactivated, _) in STATES {
        let h = head(archived, retention, reactivated);
        assert_eq!(h.mark().mark(), h.mark());
        assert_eq!(h.reactivate().reactivate(), h.reactivate());
        assert_eq!(h.moved_cold().moved_cold(), h.moved_cold());
    }
}
