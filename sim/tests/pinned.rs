//! Pinned scenarios, each named after a bug systems like this one shipped.
//! Hand-written fault lists on a fixed seed: they stay meaningful however
//! the random schedules evolve.

use std::time::Duration;

use rillflow_sim::harness::faults::Fault;
use rillflow_sim::{run, Outcome, Params, Scenario, Without};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Two nodes, timing 1 s / 3 s / 1 s, the given faults, healing at 20 s.
fn pinned(faults: Vec<(Duration, Fault)>) -> (Params, Outcome) {
    pinned_in(Scenario::Chaos, faults)
}

/// Like [`pinned`], with the nodes projecting while the writer appends.
fn pinned_projection(faults: Vec<(Duration, Fault)>) -> (Params, Outcome) {
    pinned_in(Scenario::Projections, faults)
}

/// The scenario decides what the nodes run; the faults are the given ones.
fn pinned_in(scenario: Scenario, faults: Vec<(Duration, Fault)>) -> (Params, Outcome) {
    pinned_with(scenario, faults, false)
}

/// Like [`pinned_in`], the nodes running with `--session-leases off` when
/// `off`: for traps that session-bound leases would cover up, which still
/// matter behind a transaction pooler.
fn pinned_with(scenario: Scenario, faults: Vec<(Duration, Fault)>, off: bool) -> (Params, Outcome) {
    let mut params = Params::from_seed_with(7, 30, scenario, Some(2));
    params.faults = faults;
    if off {
        params.off.insert(Without::SessionLeases);
    }
    let outcome = run(&params);
    assert!(
        outcome.violation.is_none(),
        "{:?}\n{}",
        outcome.violation,
        params.describe()
    );
    (params, outcome)
}

fn first_leader(outcome: &Outcome) -> String {
    let grant = outcome
        .events
        .iter()
        .find(|e| e.what.starts_with("grant epoch 1 to "))
        .expect("a first grant");
    grant
        .what
        .trim_start_matches("grant epoch 1 to ")
        .to_owned()
}

fn grants_after(outcome: &Outcome, at: Duration) -> Vec<(Duration, String)> {
    outcome
        .events
        .iter()
        .filter(|e| e.who == "db" && e.what.starts_with("grant epoch") && e.at > at)
        .map(|e| (e.at, e.what.clone()))
        .collect()
}

#[test]
fn paused_leader_writes_after_takeover() {
    // n1 leads first (see the assertion); it freezes with a write in hand,
    // past its lease, and resumes after n2 took over.
    let (_, outcome) = pinned(vec![
        (
            ms(2_000),
            Fault::Freeze {
                node: "n1".into(),
                length_ms: 7_000,
            },
        ),
        (ms(9_000), Fault::Thaw("n1".into())),
    ]);
    assert_eq!(first_leader(&outcome), "n1");
    let takeovers = grants_after(&outcome, ms(2_000));
    assert!(
        takeovers
            .iter()
            .any(|(at, g)| g.ends_with("to n2") && *at < ms(9_000)),
        "{takeovers:?}"
    );
    assert!(
        outcome.refused_writes >= 1,
        "the resumed write reached the fence and was refused"
    );
}

#[test]
fn graceful_release_during_a_partition() {
    // The leader is told to stop while cut off: its release never arrives,
    // so the lease has to run out before n2 may take it.
    let (_, outcome) = pinned(vec![
        (ms(2_000), Fault::Partition("n1".into())),
        (ms(2_500), Fault::Stop("n1".into())),
        (ms(5_000), Fault::Repair("n1".into())),
        (ms(9_000), Fault::Restart("n1".into())),
    ]);
    assert_eq!(first_leader(&outcome), "n1");
    let takeovers = grants_after(&outcome, ms(2_000));
    let (at, _) = takeovers
        .iter()
        .find(|(_, g)| g.ends_with("to n2"))
        .expect("n2 takes over");
    assert!(*at <= ms(2_000 + 6_000), "takeover at {at:?}");
    assert!(
        outcome
            .events
            .iter()
            .any(|e| e.who == "n1" && e.what == "boot 1"),
        "n1 rejoins"
    );
}

#[test]
fn reply_lost_after_the_renewal_committed() {
    // Renewals commit but their replies are lost: the leader stops believing
    // at its own deadline while the database still counts it as leader, and
    // n2 must wait for the lease the database knows of.
    let (_, outcome) = pinned(vec![
        (ms(2_000), Fault::PartitionFromDb("n1".into())),
        (ms(9_000), Fault::Repair("n1".into())),
    ]);
    assert_eq!(first_leader(&outcome), "n1");
    assert!(grants_after(&outcome, ms(2_000))
        .iter()
        .any(|(_, g)| g.ends_with("to n2")));
}

#[test]
fn a_frozen_leader_holding_the_row_lock_does_not_block_failover() {
    let (_, outcome) = pinned(vec![(
        ms(2_000),
        Fault::FreezeInTransaction {
            node: "n1".into(),
            length_ms: 8_000,
        },
    )]);
    assert_eq!(first_leader(&outcome), "n1");
    assert!(outcome
        .events
        .iter()
        .any(|e| e.what.starts_with("ended the idle transaction of n1")));
    let takeovers = grants_after(&outcome, ms(2_000));
    assert!(
        takeovers
            .iter()
            .any(|(at, g)| g.ends_with("to n2") && *at <= ms(8_200)),
        "{takeovers:?}"
    );
}

/// The trap: a batch's reply is lost while the node keeps renewing its
/// lease on other connections; a worker waiting for that reply forever
/// would hold the lease with the projection stalled. Replies to each node
/// in turn vanish for 600 ms; the final check finds every event applied.
#[test]
fn a_batch_whose_reply_is_lost_does_not_stall_the_projection() {
    let (_, outcome) = pinned_projection(vec![
        (ms(5_000), Fault::PartitionFromDb("n1".into())),
        (ms(5_600), Fault::Repair("n1".into())),
        (ms(9_000), Fault::PartitionFromDb("n2".into())),
        (ms(9_600), Fault::Repair("n2".into())),
    ]);
    assert!(
        outcome.events_committed > 300,
        "{}",
        outcome.events_committed
    );
}

/// The trap: a leader cut off from the database lets its lease lapse on
/// its own clock, gets the link back, and is then stopped while the
/// database still counts its lease. It must give that lease back, so the
/// standby takes over within a second instead of waiting for the expiry.
/// With session leases its exit would free the lease anyway, so the trap
/// is set with them off.
#[test]
fn a_node_stopped_after_its_lease_lapsed_hands_over_at_once() {
    let probe = pinned_with(Scenario::Projections, vec![], true).1;
    let leader = first_leader(&probe);
    let (_, outcome) = pinned_with(
        Scenario::Projections,
        vec![
            (ms(4_500), Fault::PartitionToDb(leader.clone())),
            (ms(6_850), Fault::Repair(leader.clone())),
            (ms(7_000), Fault::Stop(leader.clone())),
        ],
        true,
    );
    let lapsed = outcome.events.iter().any(|e| {
        e.who == leader
            && e.what.starts_with("believes nothing")
            && e.at > ms(6_000)
            && e.at < ms(7_000)
    });
    assert!(lapsed, "the leader's belief lapsed before the stop");
    let takeover = grants_after(&outcome, ms(7_000));
    assert!(
        takeover.first().is_some_and(|(at, _)| *at < ms(8_000)),
        "{takeover:?}"
    );
}

/// A release notice sent just after a database restart must still wake the
/// standbys: a daemon that waited a full retry interval before listening
/// again left them to find the free lease at their next heartbeat.
///
/// With session-bound leases the restart itself frees the lease (see
/// `tests/sessions.rs`), so the trap is set with them off.
#[test]
fn a_release_right_after_a_database_restart_wakes_the_standby() {
    let probe = pinned_with(Scenario::Chaos, vec![], true).1;
    let leader = first_leader(&probe);
    let (_, outcome) = pinned_with(
        Scenario::Chaos,
        vec![
            (ms(5_000), Fault::CrashDb),
            (ms(5_200), Fault::RestartDb),
            (ms(5_450), Fault::Stop(leader.clone())),
        ],
        true,
    );
    let released = outcome
        .events
        .iter()
        .find(|e| e.who == leader && e.what.starts_with("releases epoch") && e.at >= ms(5_450))
        .map(|e| e.at)
        .expect("the stopped leader released its lease");
    let takeover = grants_after(&outcome, released);
    assert!(
        takeover
            .first()
            .is_some_and(|(at, _)| *at < released + ms(300)),
        "released at {released:?}, then {takeover:?}"
    );
}
