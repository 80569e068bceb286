//! Pinned scenarios of session-bound leases (sql/0017), on the seed and
//! hand-written faults of `tests/pinned.rs`: two nodes, timing 1 s / 3 s /
//! 1 s, healing at 20 s.

use std::time::Duration;

use rillflow_sim::harness::faults::Fault;
use rillflow_sim::harness::trace::TraceEvent;
use rillflow_sim::scenarios::hot_cold::session_takeover;
use rillflow_sim::{run, Outcome, Params, Scenario, Without};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn params(faults: Vec<(Duration, Fault)>) -> Params {
    let mut params = Params::from_seed_with(7, 30, Scenario::Chaos, Some(2));
    params.faults = faults;
    params
}

fn passing(params: &Params) -> Outcome {
    let outcome = run(params);
    assert!(
        outcome.violation.is_none(),
        "{:?}\n{}",
        outcome.violation,
        params.describe()
    );
    outcome
}

/// (time, node, epoch) of every grant.
fn grants(outcome: &Outcome) -> Vec<(Duration, String, u64)> {
    outcome.grants()
}

fn leader_at(outcome: &Outcome, at: Duration) -> (String, u64) {
    let (_, node, epoch) = grants(outcome)
        .into_iter()
        .rfind(|(t, _, _)| *t <= at)
        .expect("a grant before");
    (node, epoch)
}

fn other(node: &str) -> String {
    if node == "n1" { "n2" } else { "n1" }.to_owned()
}

fn said<'a>(outcome: &'a Outcome, who: &'a str) -> impl Iterator<Item = &'a TraceEvent> {
    outcome.events.iter().filter(move |e| e.who == who)
}

/// The trap: a hot node whose lease session the database ends while it
/// runs (`pg_terminate_backend`, a pooler or failover proxy cutting it
/// off). Its lease is free at once and the standby takes it; the old
/// holder, still running and still believing for a moment, must be fenced
/// off, learn at its next beat, stand by, and be able to lead again later.
#[test]
fn a_leader_whose_session_was_ended_is_fenced_stands_by_and_may_lead_again() {
    let probe = passing(&params(vec![]));
    let (first, epoch) = leader_at(&probe, ms(4_000));
    let second = other(&first);
    // The standby takes over at 5 s; the failover interval (3 s) has run
    // out when the second session end comes at 9 s.
    let params = params(vec![
        (ms(5_000), Fault::EndSession(first.clone())),
        (ms(9_000), Fault::EndSession(second.clone())),
    ]);
    let outcome = passing(&params);
    let tight = session_takeover(&params).tight();

    let all = grants(&outcome);
    let (taken_at, _, taken_epoch) = all
        .iter()
        .find(|(t, n, _)| *t > ms(5_000) && *n == second)
        .cloned()
        .expect("the standby takes over");
    assert!(
        taken_at <= ms(5_000) + tight,
        "taken at {taken_at:?}, {tight:?} allowed"
    );
    assert!(taken_epoch > epoch);

    // One effective writer: nothing under the old epoch commits after the
    // new grant; the old holder stops believing within a beat and reports
    // itself cold again.
    let stale = format!("write by {first} under epoch {epoch} ");
    assert!(
        !said(&outcome, "db").any(|e| e.at > taken_at && e.what.starts_with(&stale)),
        "a write under the old epoch committed after the takeover"
    );
    let learned = said(&outcome, &first)
        .find(|e| e.at > ms(5_000) && e.what.starts_with("believes nothing"))
        .map(|e| e.at)
        .expect("the old holder stops believing");
    assert!(learned <= ms(5_000 + 2_000), "learned at {learned:?}");

    // It stood by on a new session, and leads again when the other
    // node's session ends in turn.
    assert!(
        said(&outcome, "db").any(|e| e.at > ms(5_000)
            && e.what.starts_with("lease session")
            && e.what.contains(&format!(" of {first} holds key"))),
        "a new lease session for {first}"
    );
    let back = all
        .iter()
        .find(|(t, n, _)| *t > ms(9_000) && *n == first)
        .expect("the old holder takes the lease back");
    assert!(back.0 <= ms(9_000) + tight, "back at {:?}", back.0);
}

/// A crash now frees the lease at once: the dead node's socket closes, its
/// session and lock go, the standby's wait on that lock returns, and it is
/// granted the lease within the bound derived from the protocol, where it
/// used to wait for the ttl and the grace. Without session leases the same
/// faults leave the lease to its ttl, and the check reports it.
#[test]
fn a_crash_of_the_hot_node_fails_over_within_the_tight_bound() {
    let probe = passing(&params(vec![]));
    let (first, _) = leader_at(&probe, ms(4_000));
    let faults = vec![
        (ms(5_000), Fault::Crash(first.clone())),
        (ms(9_000), Fault::Restart(first.clone())),
    ];
    let params = params(faults);
    let outcome = passing(&params);
    let tight = session_takeover(&params).tight();
    assert!(tight < ms(500), "{tight:?}");
    let (at, node, _) = grants(&outcome)
        .into_iter()
        .find(|(t, _, _)| *t > ms(5_000))
        .expect("a takeover");
    assert_eq!(node, other(&first));
    assert!(at <= ms(5_000) + tight, "taken over at {at:?}");
    assert!(
        said(&outcome, "db").any(|e| e.at >= ms(5_000)
            && e.at < at
            && e.what.ends_with("ended with its connection")),
        "the crash ended the session"
    );

    let without = params.without(Without::SessionLeases);
    let slow = run(&without);
    let v = slow
        .violation
        .as_ref()
        .expect("the check reports the slow takeover");
    assert_eq!(v.invariant, "LEASE-3", "{v:?}");
    let (at, _, _) = grants(&slow)
        .into_iter()
        .find(|(t, _, _)| *t > ms(5_000))
        .expect("a takeover after the ttl");
    assert!(at >= ms(5_000 + 3_000), "taken over at {at:?}");
}

/// A database restart ends every session: the lease is free the moment the
/// database is back, and the hot node, whose belief may outlast the
/// outage, learns within a beat that it lost it.
#[test]
fn a_database_restart_frees_the_lease_and_the_holder_learns_within_a_beat() {
    let probe = passing(&params(vec![]));
    let (first, epoch) = leader_at(&probe, ms(4_000));
    let outcome = passing(&params(vec![
        (ms(5_000), Fault::CrashDb),
        (ms(5_300), Fault::RestartDb),
    ]));
    let (at, _, taken) = grants(&outcome)
        .into_iter()
        .find(|(t, _, _)| *t > ms(5_000))
        .expect("a grant after the restart");
    assert!(taken > epoch);
    assert!(at < ms(5_300 + 1_500), "granted at {at:?}");
    let learned = said(&outcome, &first)
        .find(|e| e.at > ms(5_300) && e.what.starts_with("believes"))
        .expect("the old holder hears of it");
    assert!(learned.at <= ms(5_300 + 2_000), "{learned:?}");
}
