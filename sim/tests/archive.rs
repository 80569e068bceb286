//! The archive scenario: hot/cold archiving (mark, move, reactivate,
//! redirect) racing appends, lost replies, client crashes and failovers,
//! checked for ARCH-1, ARCH-2 and ARCH-4 on both backends; and the checks
//! shown to catch a mover that does not move atomically.

use std::time::Duration;

use rillflow_core::archive::Backend;
use rillflow_sim::harness::faults::Fault;
use rillflow_sim::scenarios::archive::summary::ArchiveSummary;
use rillflow_sim::{run, Outcome, Params, Scenario, Without};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn summary(outcome: &Outcome) -> ArchiveSummary {
    outcome.archive.expect("an archive run reports what it did")
}

/// Runs `params` and fails, with them, on a violation.
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

#[test]
fn archiving_keeps_every_event_once_on_both_backends() {
    let mut backends = Vec::new();
    let mut total = ArchiveSummary::default();
    for seed in 1..=12 {
        let params = Params::from_seed(seed, 30, Scenario::Archive);
        let s = summary(&passing(&params));
        backends.push(params.backend);
        total.commits += s.commits;
        total.cold_appends += s.cold_appends;
        total.conflicts += s.conflicts;
        total.replays += s.replays;
        total.moved += s.moved;
        total.made_cold += s.made_cold;
        total.reads += s.reads;
        total.retries += s.retries;
    }
    // The seeds pass because the races happened and were survived, not
    // because nothing happened.
    assert!(backends.contains(&Backend::DualTable), "{backends:?}");
    assert!(backends.contains(&Backend::Partitioned), "{backends:?}");
    for (what, n) in [
        ("commits", total.commits),
        ("appends routed cold", total.cold_appends),
        ("conflicts", total.conflicts),
        ("replays", total.replays),
        ("events moved", total.moved),
        ("streams made cold", total.made_cold),
        ("reads checked", total.reads),
        ("retries after lost replies", total.retries),
    ] {
        assert!(n >= 10, "only {n} {what} in 12 runs: {total}");
    }
}

#[test]
fn the_same_archive_seed_gives_the_same_trace() {
    let params = Params::from_seed(5, 30, Scenario::Archive);
    let (a, b) = (run(&params), run(&params));
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.events, b.events);
    assert_eq!(a.archive, b.archive);
}

/// The trap: a mover that copies a batch cold in one transaction and
/// deletes the hot rows in a second. Between the two, readers and
/// projections see the events twice, and a crash of the mover there leaves
/// them twice for good. The same seeds pass with the one-transaction move.
#[test]
fn without_the_atomic_move_a_copied_event_is_caught() {
    for seed in 1..=3 {
        let params = Params::from_seed(seed, 30, Scenario::Archive);
        passing(&params);
        let broken = params.without(Without::AtomicMove);
        let v = run(&broken)
            .violation
            .unwrap_or_else(|| panic!("seed {seed}: the two-step move went unnoticed"));
        assert_eq!(v.invariant, "ARCH-1", "seed {seed}: {v:?}");
        assert!(v.detail.contains("stored versions"), "seed {seed}: {v:?}");
    }
}

/// Two nodes, the archive workload, the given faults, healing at 20 s.
fn pinned(faults: Vec<(Duration, Fault)>) -> (Params, Outcome) {
    let mut params = Params::from_seed_with(7, 30, Scenario::Archive, Some(2));
    params.faults = faults;
    let outcome = passing(&params);
    (params, outcome)
}

/// The trap: a mover killed over and over, at whatever point of a batch it
/// was in. A move batch is one transaction, so no kill leaves an event in
/// both tiers or in neither, and the restarted mover just carries on.
#[test]
fn a_mover_killed_mid_batch_loses_and_duplicates_nothing() {
    let mut faults = Vec::new();
    for i in 0..12 {
        let at = 2_000 + i * 1_400;
        faults.push((ms(at), Fault::Crash("mover".into())));
        faults.push((ms(at + 300 + i * 37), Fault::Restart("mover".into())));
    }
    let (_, outcome) = pinned(faults);
    let boots = outcome
        .events
        .iter()
        .filter(|e| e.who == "mover" && e.what.starts_with("boot"))
        .count();
    assert_eq!(boots, 13);
    assert!(summary(&outcome).moved > 50, "{}", summary(&outcome));
}

/// The trap: commit replies lost while events move cold. A writer retrying
/// with its key must get its first result back from the head, wherever the
/// events are by then, and never write them twice.
#[test]
fn a_lost_commit_reply_is_retried_without_writing_twice() {
    let mut faults = Vec::new();
    for i in 0..8 {
        let at = 2_000 + i * 2_000;
        let writer = if i % 2 == 0 { "w1" } else { "w2" };
        faults.push((ms(at), Fault::PartitionFromDb(writer.into())));
        faults.push((ms(at + 700), Fault::Repair(writer.into())));
    }
    let (_, outcome) = pinned(faults);
    let s = summary(&outcome);
    assert!(s.retries > 0 && s.replays > 0, "{s}");
    let retried_with_key = outcome
        .events
        .iter()
        .any(|e| e.what.contains("outcome unknown") && e.what.contains("retrying with its key"));
    assert!(retried_with_key, "no commit reply was lost: {s}");
}

/// The trap: the database restarting under open appends, a move batch and
/// the operator. Open appends roll back (their writers try again), and
/// nothing committed is lost or doubled.
#[test]
fn a_database_restart_under_archiving_loses_nothing() {
    let (_, outcome) = pinned(vec![
        (ms(4_000), Fault::CrashDb),
        (ms(4_600), Fault::RestartDb),
        (ms(9_000), Fault::CrashDb),
        (ms(9_200), Fault::RestartDb),
        (ms(14_000), Fault::CrashDb),
        (ms(15_500), Fault::RestartDb),
    ]);
    assert!(summary(&outcome).commits > 50, "{}", summary(&outcome));
    let cut = outcome
        .events
        .iter()
        .filter(|e| e.what.contains("not made"))
        .count();
    assert!(cut > 0, "no append was caught by a restart");
}
