//! The simulation keeps its promises: seeds pass, runs repeat bit for bit,
//! and the checks are not vacuous.

use rillflow_sim::{run, Outcome, Params, Scenario, Without};

/// Runs `seed` of `scenario` and fails, with its parameters, on a violation.
fn passing(seed: u64, scenario: Scenario) -> Outcome {
    let params = Params::from_seed(seed, 30, scenario);
    let outcome = run(&params);
    assert!(
        outcome.violation.is_none(),
        "{} seed {seed}: {:?}\n{}",
        scenario.name(),
        outcome.violation,
        params.describe()
    );
    outcome
}

#[test]
fn the_first_seeds_keep_every_invariant() {
    for seed in 1..=60 {
        let outcome = passing(seed, Scenario::Chaos);
        assert!(
            outcome.grants >= 1 && outcome.writes > 0,
            "seed {seed}: nothing happened"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in [3, 11] {
        let params = Params::from_seed(seed, 30, Scenario::Chaos);
        let (a, b) = (run(&params), run(&params));
        assert_eq!(a.hash, b.hash, "seed {seed}");
        assert_eq!(a.events, b.events, "seed {seed}");
    }
    assert_ne!(
        run(&Params::from_seed(3, 30, Scenario::Chaos)).hash,
        run(&Params::from_seed(4, 30, Scenario::Chaos)).hash
    );
}

/// SIM-2 across runs: what a process ran before must not reach a seed's
/// trace (a sweep's failure must replay alone). tokio numbers tasks
/// process-wide, and the order a crashed host's sockets close in follows
/// those numbers; `exclusive` starts every run at the same point.
#[test]
fn a_seed_replays_the_same_after_other_runs() {
    let params = Params::from_seed(3, 30, Scenario::Chaos);
    let alone = run(&params).hash;
    let other = Params::from_seed(2, 30, Scenario::Chaos).without(Without::SessionLeases);
    run(&other);
    assert_eq!(run(&params).hash, alone);
}

/// Without the database fence, a hot node whose messages were held past its
/// lease gets a stale write in, and the single-writer check catches it.
#[test]
fn without_the_fence_a_stale_write_is_caught() {
    let caught = (1..=60).find_map(|seed| {
        let params = Params::from_seed(seed, 30, Scenario::Chaos).without(Without::Fence);
        run(&params)
            .violation
            .filter(|v| v.invariant == "LEASE-1")
            .map(|v| (seed, v))
    });
    let (seed, v) = caught.expect("some seed lets a stale write through when the fence is off");
    assert!(v.detail.contains("under epoch"), "seed {seed}: {v:?}");
}

/// The trap: a writer stalls between its lease check and its write for
/// longer than its lease (a GC pause, SIGSTOP). Its write must be refused,
/// and was: the run shows refused writes and no violation.
#[test]
fn a_writer_paused_past_its_lease_is_fenced_off() {
    let mut refused = 0;
    for seed in 1..=10 {
        let outcome = passing(seed, Scenario::Pauses);
        refused += outcome.refused_writes;
    }
    assert!(
        refused > 0,
        "no pause outlived a lease: the scenario does not reach the trap"
    );
}

#[test]
fn every_scenario_keeps_every_invariant() {
    // Ownership runs its own seeds, shorter, in `tests/ownership.rs`.
    for (_, scenario) in Scenario::ALL {
        if scenario == Scenario::Ownership {
            continue;
        }
        for seed in 100..115 {
            passing(seed, scenario);
        }
    }
}

/// The trap: a standby blocked forever behind a frozen leader's row lock.
/// With the database never ending the frozen client's transaction, the
/// takeover check reports the stall; with the daemon's timeouts it does not
/// happen (`every_scenario_keeps_every_invariant` runs the same scenario).
#[test]
fn without_the_idle_timeout_a_frozen_lock_holder_stalls_failover() {
    let caught = (1..=40).find_map(|seed| {
        let params = Params::from_seed(seed, 30, Scenario::Locks).without(Without::IdleTimeout);
        run(&params).violation.map(|v| (seed, v))
    });
    let (seed, v) =
        caught.expect("some seed freezes the leader inside its transaction past the bound");
    assert_eq!(v.invariant, "LEASE-3", "seed {seed}: {v:?}");
    assert!(
        v.detail.contains("FreezeInTransaction"),
        "seed {seed}: {v:?}"
    );
}

/// Projections under faults: every committed event applied exactly once,
/// and some batches were refused by the fence along the way (stale hot
/// nodes tried).
#[test]
fn projections_apply_every_event_once_under_faults() {
    let mut events = 0;
    let mut refused = 0;
    for seed in 1..=20 {
        let outcome = passing(seed, Scenario::Projections);
        events += outcome.events_committed;
        refused += outcome.refused_writes;
    }
    assert!(events > 10_000, "the writer appended {events} events");
    assert!(refused > 0, "no stale batch reached the fence");
}

/// The trap: a reader that passes appends still open (as `position >
/// checkpoint` does) leaves late commits behind its checkpoint; the
/// projection checks catch it.
#[test]
fn without_the_horizon_a_late_commit_is_caught() {
    let caught = (1..=20).find_map(|seed| {
        let params = Params::from_seed(seed, 30, Scenario::Projections).without(Without::Horizon);
        run(&params).violation.map(|v| (seed, v))
    });
    let (seed, v) = caught.expect("some seed commits an append behind the checkpoint");
    assert_eq!(v.invariant, "PROJ-2", "seed {seed}: {v:?}");
}

/// The trap behind the read floor: a transaction that wrote other tables
/// first took its id before registering; readers passed it. Were its append
/// not refused (RF007), it would commit behind the checkpoint.
#[test]
fn without_the_floor_check_a_late_append_is_caught() {
    let caught = (1..=20).find_map(|seed| {
        let params =
            Params::from_seed(seed, 30, Scenario::Projections).without(Without::FloorCheck);
        run(&params).violation.map(|v| (seed, v))
    });
    let (seed, v) = caught.expect("some seed commits an append behind the checkpoint");
    assert_eq!(v.invariant, "PROJ-2", "seed {seed}: {v:?}");
}

/// The trap: a crashed hot node's lease bound by its ttl alone (the nodes
/// run with `--session-leases off`) is taken over only after the ttl and
/// the grace; the takeover check, expecting session-bound leases, reports
/// it.
#[test]
fn without_session_leases_a_crash_waits_for_the_ttl() {
    let caught = (1..=20).find_map(|seed| {
        let params = Params::from_seed(seed, 30, Scenario::Crashes).without(Without::SessionLeases);
        run(&params).violation.map(|v| (seed, v))
    });
    let (seed, v) = caught.expect("some seed crashes the active hot node");
    assert_eq!(v.invariant, "LEASE-3", "seed {seed}: {v:?}");
    assert!(v.detail.contains("Crash"), "seed {seed}: {v:?}");
}
