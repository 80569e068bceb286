//! Failover rules for leases bound to the holder's database session
//! (sql/0017): an ended session frees the lease without grace.

mod failover_views;

use failover_views::*;
use rillflow_core::lease::failover::*;
use rillflow_core::lease::*;

use NodeRole::{Cold, Hot};

/// A lease whose holder's session ended is free at once: no grace, the
/// candidate first, the failover interval still applies; the holder, if it
/// still runs, steps down; a lease whose session is open is judged by its
/// ttl as before.
#[test]
fn an_ended_session_frees_the_lease_without_grace() {
    let nodes = || {
        vec![
            node("a", Hot, 500),
            node("b", Cold, 0),
            node("c", Cold, 900),
        ]
    };
    let held = view(Some("a"), Some(25_000), nodes());

    let ended = session(held.clone(), false);
    assert!(ended.leader_session_ended());
    assert!(!ended.holds_valid_lease("a"));
    assert_eq!(lease_free_for_ms(&ended), Some(0));
    assert!(
        should_try_acquire(&ended, "b", &rules()),
        "the freshest standby"
    );
    assert!(
        !should_try_acquire(&ended, "c", &rules()),
        "not before b had two beats"
    );
    assert_eq!(
        should_step_down(&ended, "a", &rules()),
        Some(StepDown::SessionEnded)
    );
    assert_eq!(ended.live_leader_session(), None);
    let recent = since_failover(ended.clone(), 1_000);
    assert!(
        !should_try_acquire(&recent, "b", &rules()),
        "LEASE-4 still holds"
    );

    let alive = session(held.clone(), true);
    assert!(alive.holds_valid_lease("a"));
    assert!(!should_try_acquire(&alive, "b", &rules()));
    assert_eq!(should_step_down(&alive, "a", &rules()), None);
    assert_eq!(alive.live_leader_session(), Some(42));

    // A released lease names no session: as before.
    let released = session(view(None, Some(-10), nodes()), false);
    assert!(!released.leader_session_ended());
    assert!(should_try_acquire(&released, "c", &rules()));
}

/// The former holder, once it reports cold, may take the lease back.
#[test]
fn a_holder_whose_session_ended_may_compete_again() {
    let v = session(
        view(
            Some("a"),
            Some(25_000),
            vec![node("a", Cold, 0), node("b", Cold, 700)],
        ),
        false,
    );
    assert_eq!(
        choose_candidate(&v, &rules()).map(|n| n.name.as_str()),
        Some("a")
    );
    assert!(should_try_acquire(&v, "a", &rules()));
}
