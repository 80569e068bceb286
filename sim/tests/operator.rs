//! Pinned runs of the `operator` scenario: an operator promoting and
//! demoting through the CLI's own functions while nodes fail (issue 23).
//! Seeds that once failed, and two hand-written stories: a promoted node
//! that crashes before it takes over, and a demotion the hot node cannot
//! hear because it is cut off.

use std::time::Duration;

use rillflow_sim::harness::faults::Fault;
use rillflow_sim::scenarios::operator::plan::Step;
use rillflow_sim::{run, Outcome, Params, Scenario};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
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

/// Three nodes, timing 1 s / 3 s / 1 s, healing at 20 s; the given faults
/// and commands only.
fn story(faults: Vec<(Duration, Fault)>, steps: Vec<(Duration, Step)>) -> Params {
    let mut params = Params::from_seed_with(7, 30, Scenario::Operator, Some(3));
    params.faults = faults;
    params.operator.steps = steps;
    params
}

/// (time, node, epoch) of every grant.
fn grants(outcome: &Outcome) -> Vec<(Duration, String, u64)> {
    outcome.grants()
}

fn leader_at(outcome: &Outcome, at: Duration) -> String {
    grants(outcome)
        .into_iter()
        .rfind(|(t, _, _)| *t <= at)
        .map(|(_, n, _)| n)
        .expect("a grant before")
}

fn others(node: &str) -> Vec<String> {
    ["n1", "n2", "n3"]
        .into_iter()
        .filter(|n| *n != node)
        .map(str::to_owned)
        .collect()
}

/// Seeds whose runs found the bugs this scenario was built to trap: 38, a
/// node demoted and promoted back was held off while the other standby
/// deferred to the promotion, so a graceful stop went untaken for seconds
/// (fixed in `NodeMachine`); 15, the stand-by check before it exempted
/// that promotion; 18, a graceful stop with the only standby held off
/// after its demotion (by design; LEASE-3's check now knows); 8, a hot node
/// whose write was stuck on a lost reply, which hands over only when its
/// lease runs out; 1269361102 (found by CI's fresh seeds), the hot node
/// crashed while a promotion named a standby just back from a partition:
/// the watching standby left the lease to it, as it must, and LEASE-3's
/// session bound now waits for the promoted node's own.
#[test]
fn seeded_runs_keep_every_invariant_and_exercise_refusals() {
    let mut refused = 0;
    let mut promoted_grants = 0;
    let mut handoffs = 0;
    for seed in [8, 15, 18, 38, 1_269_361_102] {
        let params = Params::from_seed(seed, 60, Scenario::Operator);
        let outcome = passing(&params);
        let summary = outcome.operator.expect("an operator summary");
        refused += summary.refused.iter().sum::<usize>();
        promoted_grants += summary.promoted_grants;
        handoffs += summary.handoffs.len();
    }
    assert!(refused > 0 && promoted_grants > 0 && handoffs > 0);
}

#[test]
fn the_same_operator_seed_gives_the_same_trace() {
    let params = Params::from_seed(38, 30, Scenario::Operator);
    assert_eq!(run(&params).hash, run(&params).hash);
}

/// The target of a promotion crashes right after the request is recorded.
/// The hot node still sees a live standby named (its last heartbeat is
/// younger than the ttl) and hands over; the other standby defers to the
/// promotion until the target is no longer live, then takes over. When the
/// target comes back, the request still pending, the lease moves to it once,
/// and stays.
#[test]
fn a_promoted_node_that_crashes_before_taking_over_is_passed_over_then_honoured() {
    let probe = passing(&story(vec![], vec![]));
    let hot = leader_at(&probe, ms(4_000));
    let target = others(&hot)[0].clone();
    let params = story(
        vec![
            (ms(5_150), Fault::Crash(target.clone())),
            (ms(12_000), Fault::Restart(target.clone())),
        ],
        vec![(
            ms(5_000),
            Step::Promote {
                node: target.clone(),
                force: false,
            },
        )],
    );
    let outcome = passing(&params);
    let all = grants(&outcome);
    let after: Vec<_> = all.iter().filter(|(t, _, _)| *t > ms(5_000)).collect();
    // Someone other than the dead target leads before it is back: within
    // the ttl of its last heartbeat, a beat and a grant.
    let (taken, by, _) = after.first().expect("the lease moves on");
    assert_ne!(*by, target);
    assert!(*taken <= ms(5_150 + 3_000 + 1_500), "taken at {taken:?}");
    // Back at 12 s, the target is promoted within a few beats, once.
    let to_target: Vec<_> = after.iter().filter(|(_, n, _)| *n == target).collect();
    assert_eq!(to_target.len(), 1, "{after:?}");
    assert!(to_target[0].0 > ms(12_000) && to_target[0].0 <= ms(12_000 + 4_000));
    let (last, _, _) = all.last().expect("grants");
    assert_eq!(*last, to_target[0].0, "the lease stays with the target");
    let summary = outcome.operator.expect("an operator summary");
    assert_eq!(summary.promoted_grants, 1);
}

/// A demotion recorded while the hot node is cut off: it never hears it,
/// its lease runs out, and a standby takes over in an automatic failover,
/// whose grant clears the demotion. The old holder writes nothing after
/// that; back on the network it stands by, and an operator's promotion of
/// it later holds (a stale demotion would make it step down at once).
#[test]
fn a_demotion_under_a_partition_is_moot_once_another_node_takes_over() {
    let probe = passing(&story(vec![], vec![]));
    let hot = leader_at(&probe, ms(4_000));
    let params = story(
        vec![
            (ms(5_000), Fault::Partition(hot.clone())),
            (ms(12_000), Fault::Repair(hot.clone())),
        ],
        vec![
            (ms(5_500), Step::Demote { node: None }),
            (
                ms(15_000),
                Step::Promote {
                    node: hot.clone(),
                    force: false,
                },
            ),
        ],
    );
    let outcome = passing(&params);
    let demoted = outcome
        .events
        .iter()
        .find(|e| e.who == "operator" && e.what.starts_with("Demote"))
        .expect("the demotion");
    assert!(
        demoted
            .what
            .ends_with(&format!("Accepted {{ node: \"{hot}\" }}")),
        "{}",
        demoted.what
    );
    let all = grants(&outcome);
    let (taken, by, epoch) = all
        .iter()
        .find(|(t, _, _)| *t > ms(5_000))
        .cloned()
        .expect("a takeover");
    assert_ne!(by, hot);
    // The ttl from its last renewal, the grace, a beat and a grant.
    assert!(
        taken <= ms(5_000 + 3_000 + 1_000 + 1_500),
        "taken at {taken:?}"
    );
    let stale = format!("write by {hot} under epoch ");
    assert!(
        !outcome.events.iter().any(|e| e.who == "db"
            && e.at > taken
            && e.at < ms(15_000)
            && e.what.starts_with(&stale)),
        "the cut-off node wrote after the takeover"
    );
    let back = all
        .iter()
        .filter(|(t, n, _)| *t > taken && *n == hot)
        .collect::<Vec<_>>();
    assert_eq!(back.len(), 1, "{all:?}");
    assert!(back[0].0 > ms(15_000) && back[0].2 > epoch);
    assert_eq!(all.last().map(|g| &g.1), Some(&hot), "and it stays hot");
}
