//! Dynamic partition ownership under faults: the production `OwnerDriver`
//! and `OwnedWorker` on 3–5 worker hosts, live repartitions, and the checks
//! (PROJ-1 exactly once, PROJ-4 one owner at a time, fair ownership after
//! healing, graceful stops). Seeded runs, pinned traps, and each removed
//! protection caught.

use std::time::Duration;

use rillflow_sim::harness::faults::Fault;
use rillflow_sim::scenarios::ownership::summary::OwnershipSummary;
use rillflow_sim::{run, Outcome, Params, Scenario, Without};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn summary(outcome: &Outcome) -> &OwnershipSummary {
    outcome
        .ownership
        .as_ref()
        .expect("an ownership run reports what it did")
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

/// `workers` workers from the start over `partitions` partitions, no
/// repartitions, the given faults; healing at 10 s, the end at 20 s.
fn pinned(workers: usize, partitions: u32, faults: Vec<(Duration, Fault)>) -> Params {
    let mut params = Params::from_seed_with(7, 15, Scenario::Ownership, Some(workers));
    params.ownership.initial_partitions = partitions;
    params.ownership.starts = vec![Duration::ZERO; workers];
    params.ownership.repartitions = Vec::new();
    params.faults = faults;
    params
}

/// The trace lines of `who` containing `what`, with their times.
fn lines<'a>(outcome: &'a Outcome, who: &str, what: &str) -> Vec<(Duration, &'a str)> {
    outcome
        .events
        .iter()
        .filter(|e| e.who == who && e.what.contains(what))
        .map(|e| (e.at, e.what.as_str()))
        .collect()
}

#[test]
fn seeded_runs_keep_every_invariant_and_exercise_the_traps() {
    let mut total = OwnershipSummary::default();
    for seed in [1, 2, 3, 5] {
        let outcome = passing(&Params::from_seed(seed, 20, Scenario::Ownership));
        let s = summary(&outcome);
        assert_eq!(s.applied, s.committed, "seed {seed}: {s}");
        total.claims += s.claims;
        total.batches += s.batches;
        total.applied += s.applied;
        total.carried += s.carried;
        total.fenced += s.fenced;
        total.resizes.extend(&s.resizes);
    }
    // They pass because partitions moved, counts changed and stale batches
    // were refused, not because nothing happened.
    assert!(total.applied > 2_000, "{total}");
    assert!(total.claims >= 20, "{total}");
    assert!(total.resizes.len() >= 4, "{total}");
    assert!(
        total.carried > 0,
        "no event was read again after a repartition: {total}"
    );
    assert!(
        total.fenced > 0,
        "no stale batch reached the fence: {total}"
    );
}

#[test]
fn the_same_ownership_seed_gives_the_same_trace() {
    let params = Params::from_seed(3, 20, Scenario::Ownership);
    let (a, b) = (run(&params), run(&params));
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.events, b.events);
    assert_eq!(a.ownership, b.ownership);
}

/// The trap: a worker stalls between its belief check and its batch (a GC
/// pause, SIGSTOP) for longer than its lease; the other worker takes the
/// partition over; the stalled batch then goes out under the old epoch.
/// The fence refuses it. Without the fence it commits while the lease is
/// the other worker's, and PROJ-4's check reports it.
#[test]
fn without_the_partition_fence_a_paused_worker_commits_after_its_partition_moved() {
    // The thaw falls between two of n2's rounds, so the stale batch goes
    // out before n2 sees n1 back and hands the partition back to it.
    let freeze = vec![
        (
            ms(3_500),
            Fault::Freeze {
                node: "n1".into(),
                length_ms: 6_000,
            },
        ),
        (ms(9_500), Fault::Thaw("n1".into())),
    ];
    // n1 takes the one partition before n2 joins, so nothing moves until
    // the stall (a release racing a running batch is caught too, but
    // that is not this trap).
    let mut params = pinned(2, 1, freeze);
    params.ownership.starts[1] = ms(1_000);
    let outcome = passing(&params);
    let paused = lines(&outcome, "n1", "paused");
    assert_eq!(paused.len(), 1, "the stall landed before a batch");
    let refused = lines(&outcome, "db", "fence refused n1's batch");
    assert!(
        refused.iter().any(|(at, _)| *at >= ms(9_500)),
        "the resumed batch reached the fence: {refused:?}"
    );
    let broken = params.without(Without::PartitionFence);
    let v = run(&broken)
        .violation
        .expect("without the fence the stale batch commits");
    assert_eq!(v.invariant, "PROJ-4", "{v:?}");
    assert!(
        v.detail.contains("n1's batch") && v.detail.contains("held by n2 under epoch"),
        "{v:?}"
    );
    assert!(v.at >= ms(9_500), "{v:?}");
}

/// The trap: repartitions one after another while three workers run.
/// New partitions start at the lowest old checkpoint and skip what the
/// carried layers say was applied: every event once, events read again
/// and skipped. Dropping the layers applies them twice, and PROJ-1's check
/// reports it.
#[test]
fn without_the_carry_a_repartition_applies_events_twice() {
    let mut params = pinned(3, 3, Vec::new());
    params.ownership.repartitions = [(3_000, 8), (4_500, 2), (6_000, 5), (7_500, 1), (9_000, 4)]
        .into_iter()
        .map(|(at, to)| (ms(at), to))
        .collect();
    let outcome = passing(&params);
    let s = summary(&outcome);
    assert_eq!(s.resizes, [(3, 8), (8, 2), (2, 5), (5, 1), (1, 4)], "{s}");
    assert!(s.carried > 20, "{s}");
    let broken = params.without(Without::Carry);
    let v = run(&broken)
        .violation
        .expect("without the carried layers events are applied twice");
    assert_eq!(v.invariant, "PROJ-1", "{v:?}");
    assert!(v.detail.contains("again"), "{v:?}");
}

/// The trap: a worker freezes inside a batch, holding the lease row
/// `FOR SHARE` and its checkpoint row. The database ends the idle
/// transaction after `idle_in_transaction_session_timeout`, so the locks
/// do not outlive it; the partition moves once the lease runs out, and
/// nothing is lost or doubled.
#[test]
fn a_worker_frozen_inside_a_batch_is_cut_off_and_its_partition_moves() {
    let outcome = passing(&pinned(
        2,
        2,
        vec![(
            ms(3_000),
            Fault::FreezeInTransaction {
                node: "n1".into(),
                length_ms: 6_000,
            },
        )],
    ));
    let (frozen_at, what) = *lines(&outcome, "n1", "frozen")
        .first()
        .expect("n1 froze inside a batch");
    let txn = what
        .split("inside batch ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the batch is named");
    let ended = lines(&outcome, "db", &format!("rolled back batch {txn}:"));
    let (ended_at, _) = ended.first().expect("the database ended it");
    assert!(
        *ended_at - frozen_at < ms(1_500),
        "ended {:?} after the freeze",
        *ended_at - frozen_at
    );
    let takeover = lines(&outcome, "db", "claimed by n2");
    assert!(
        takeover
            .iter()
            .any(|(at, _)| *at > frozen_at && *at < frozen_at + ms(5_000)),
        "{takeover:?}"
    );
}

/// The trap: a worker crashes and comes back at once under the same name.
/// Its earlier incarnation's leases are still valid in the database; the
/// new one frees them at its first sync instead of leaving its partitions
/// to wait for the ttl.
#[test]
fn a_restarted_worker_frees_its_earlier_leases_at_once() {
    let outcome = passing(&pinned(
        2,
        4,
        vec![
            (ms(4_000), Fault::Crash("n1".into())),
            (ms(4_300), Fault::Restart("n1".into())),
        ],
    ));
    let freed = lines(&outcome, "db", "released under epoch")
        .into_iter()
        .filter(|(at, _)| *at > ms(4_300) && *at < ms(5_300))
        .count();
    assert_eq!(freed, 2, "n1's two partitions freed within a second");
}

/// A worker stopped while it owns partitions finishes its batch, releases
/// them and leaves; the release notices wake the other, which takes them
/// well within a heartbeat (1 s), not after the ttl.
#[test]
fn a_stopped_worker_hands_its_partitions_over_at_once() {
    let outcome = passing(&pinned(
        2,
        4,
        vec![
            (ms(4_000), Fault::Stop("n1".into())),
            (ms(9_000), Fault::Restart("n1".into())),
        ],
    ));
    let left = lines(&outcome, "n1", "released everything and left");
    let (left_at, _) = *left.first().expect("n1 left");
    assert!(left_at < ms(4_500), "n1 left at {left_at:?}");
    let taken: Vec<Duration> = lines(&outcome, "db", "claimed by n2")
        .into_iter()
        .map(|(at, _)| at)
        .filter(|at| *at > ms(4_000) && *at < ms(9_000))
        .collect();
    assert_eq!(taken.len(), 2, "{taken:?}");
    assert!(taken.iter().all(|at| *at < left_at + ms(400)), "{taken:?}");
}

/// The bug: `OwnedWorker::run` looks at its stop flag only before a batch
/// of a partition it owns, so a worker that owns nothing never stops its
/// batches; `projections run-loop --partitions auto` then waits on it, its
/// driver keeps heartbeating and claiming, and SIGTERM never completes.
/// With one partition among three workers, n3 owns nothing when stopped.
#[test]
fn a_stopped_worker_that_owns_nothing_stops_at_once() {
    passing(&pinned(
        3,
        1,
        vec![
            (ms(4_000), Fault::Stop("n3".into())),
            (ms(9_000), Fault::Restart("n3".into())),
        ],
    ));
}
