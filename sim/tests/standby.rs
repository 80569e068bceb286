//! Projections reading from a hot standby, and a lossy promotion of it
//! (docs/deployment.md, "A lossy failover"): seeded runs keep every
//! invariant, two pinned stories, and the protections that make them hold
//! shown to matter (the standby's xmin horizon; the timeline's epoch
//! floor).

use std::time::Duration;

use rillflow_sim::harness::faults::Fault;
use rillflow_sim::model::standby::replay_lag::ReplayLag;
use rillflow_sim::{run, Outcome, Params, Scenario, Without};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Two nodes on seed 7, 30 s (healing at 20 s), the standby `lag` behind,
/// the given faults.
fn pinned(scenario: Scenario, lag: u64, faults: Vec<(Duration, Fault)>) -> Params {
    let mut params = Params::from_seed_with(7, 30, scenario, Some(2));
    params.replay_lag = ReplayLag::constant(ms(lag));
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

/// The database's trace lines starting with `prefix`, with their times.
fn db_lines(outcome: &Outcome, prefix: &str) -> Vec<(Duration, String)> {
    outcome
        .events
        .iter()
        .filter(|e| e.who == "db" && e.what.starts_with(prefix))
        .map(|e| (e.at, e.what.clone()))
        .collect()
}

/// Batches that applied something (each commits a write record) within
/// `from..until`.
fn batches_within(outcome: &Outcome, from: Duration, until: Duration) -> usize {
    db_lines(outcome, "write by")
        .iter()
        .filter(|(at, _)| (from..until).contains(at))
        .count()
}

#[test]
fn seeded_runs_keep_every_invariant_and_promote_with_losses() {
    let mut lost = 0;
    for seed in 1..=12 {
        let params = Params::from_seed(seed, 30, Scenario::Standby);
        let outcome = passing(&params);
        assert!(outcome.events_committed > 100, "seed {seed}: {outcome:?}");
        lost += db_lines(&outcome, "promoted the standby")
            .iter()
            .filter(|(_, l)| !l.contains("lost 0 commits"))
            .count();
    }
    assert!(lost >= 2, "lossy promotions happen: {lost}");
}

#[test]
fn the_same_standby_seed_gives_the_same_trace() {
    let params = Params::from_seed(5, 30, Scenario::Standby);
    let (a, b) = (run(&params), run(&params));
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.events, b.events);
}

/// A client holds a transaction open on the primary (it wrote another
/// table first, so it never registered as an appender) and appends at the
/// end. The primary's readers pass it once their floor covers it and its
/// late append is refused (RF007); a standby cannot see registrations and
/// keeps to its xmin, so reads from it stop behind the transaction until
/// it ends, and its late append is then projected once.
#[test]
fn a_standby_reader_waits_behind_a_transaction_held_open_on_the_primary() {
    let faults = vec![
        (ms(2_000), Fault::OpenTransaction),
        (ms(6_000), Fault::CommitTransaction { stream: 8 }),
    ];
    let outcome = passing(&pinned(Scenario::Standby, 200, faults.clone()));
    let held = db_lines(&outcome, "transaction ");
    assert!(
        held.iter()
            .any(|(_, l)| l.contains("Started") && l.ends_with("committed")),
        "{held:?}"
    );
    // Appends before it commit within 80 ms and replay within 200 ms.
    assert_eq!(batches_within(&outcome, ms(2_500), ms(6_000)), 0);
    assert!(batches_within(&outcome, ms(6_000), ms(7_000)) > 0);

    // Read from the primary, the same transaction is passed, not waited for.
    let primary = passing(&pinned(Scenario::Projections, 200, faults.clone()));
    assert!(batches_within(&primary, ms(2_500), ms(6_000)) > 10);
    let held = db_lines(&primary, "transaction ");
    assert!(
        held.iter()
            .any(|(_, l)| l.contains("Passed") && l.ends_with("rolled back")),
        "{held:?}"
    );

    // A standby horizon that passes open transactions (an in-progress
    // list) leaves a late commit behind the checkpoint: the writers' own
    // appends, held up to 80 ms, are caught before the held one.
    let params = pinned(Scenario::Standby, 200, faults).without(Without::StandbyXmin);
    let v = run(&params).violation.expect("caught");
    assert_eq!(v.invariant, "PROJ-2", "{v:?}");
}

/// The hot node's session ends; the standby node is granted the next epoch,
/// and the primary dies before the standby replayed that grant. The
/// promoted server has lost the grant, the batches after it and the events
/// behind them: the checkpoint and read model roll back with them, and the
/// node still holding the lost epoch must be fenced, however the epochs
/// are counted on.
#[test]
fn a_lossy_promotion_loses_a_grant_and_never_grants_its_epoch_again() {
    let faults = vec![
        (ms(4_000), Fault::EndSession("n2".into())),
        (ms(4_300), Fault::CrashDb),
        (ms(5_000), Fault::Promote),
        (ms(5_000), Fault::RestartDb),
    ];
    let params = pinned(Scenario::Standby, 500, faults);
    let outcome = passing(&params);
    let grants = outcome.grants();
    assert_eq!(grants[0].1, "n2", "{grants:?}");
    let lost = grants
        .iter()
        .find(|(at, _, _)| (ms(4_000)..ms(4_300)).contains(at))
        .expect("a grant the standby never replays")
        .clone();
    let promoted = db_lines(&outcome, "promoted the standby");
    assert_eq!(promoted.len(), 1);
    assert!(
        promoted[0]
            .1
            .starts_with("promoted the standby to timeline 2")
            && !promoted[0].1.contains("lost 0 commits"),
        "{promoted:?}"
    );
    let after: Vec<_> = grants
        .iter()
        .filter(|(at, _, _)| *at >= ms(5_000))
        .collect();
    assert!(!after.is_empty(), "{grants:?}");
    assert!(
        after
            .iter()
            .all(|(_, _, epoch)| *epoch >= 1 << 32 && *epoch != lost.2),
        "epochs on timeline 2 start at its floor: {after:?}"
    );

    // Counted on from the surviving row, the lost epoch is granted again.
    let v = run(&params.without(Without::EpochFloor))
        .violation
        .expect("caught");
    assert_eq!(v.invariant, "LEASE-1", "{v:?}");
    assert!(v.detail.contains(&format!("epoch {} ", lost.2)), "{v:?}");
}

/// A promotion mid-run that loses events the projection had applied: the
/// read model goes back with them and ends matching the surviving log
/// exactly (the check counts strays and shortfalls), with ids handed out
/// again after the replayed point.
#[test]
fn a_lossy_promotion_mid_run_keeps_the_read_model_exact() {
    let faults = vec![
        (ms(10_000), Fault::CrashDb),
        (ms(10_400), Fault::Promote),
        (ms(10_400), Fault::RestartDb),
    ];
    let outcome = passing(&pinned(Scenario::Standby, 400, faults));
    let promoted = db_lines(&outcome, "promoted the standby");
    let line = &promoted[0].1;
    let (next, was) = line
        .rsplit_once("next xid ")
        .and_then(|(_, t)| t.trim_end_matches(')').split_once(" (was "))
        .expect("ids in the line");
    assert!(
        next.parse::<u64>().unwrap() < was.parse::<u64>().unwrap(),
        "ids are handed out again: {line}"
    );
    assert!(!line.contains("(0 events)"), "events were lost: {line}");
}
